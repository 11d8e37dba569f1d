//! Keeps phi-guard's ValidatingWebhookConfiguration in step with the PhiPolicies' scopes
//! (`policy::webhooks` says which webhooks and why), so the API server sends phi-guard exactly
//! the objects in PHI scope: every object a policy covers reaches phi-guard, and an outage
//! touches nothing else. Runs in `serve` when `--webhook-scope-config` names the configuration.
//!
//! Each policy's `WebhookScope` condition says whether the configuration covers it. Both
//! writers of PhiPolicy status (this one and the `Ready` writer in `watch`) use server-side
//! apply with their own field manager; the CRD declares conditions a map keyed by type, so
//! neither overwrites the other's condition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::Client;
use serde_json::{json, Value};

use super::ClusterState;
use crate::policy::webhooks::{excluded_namespaces, scope_webhooks, PHI_NAMESPACES};
use crate::policy::PolicySet;
use crate::telemetry::{redact, Readiness};

/// How often the policy set is looked at for changes.
const POLL: Duration = Duration::from_secs(1);
/// How often the configuration is re-checked without a policy change (a `helm upgrade` may
/// have reset it).
const RECHECK: Duration = Duration::from_secs(30);
/// The field manager of the `WebhookScope` condition.
const MANAGER: &str = "phi-guard-webhook-scope";

/// Run until `stop` resolves.
pub(crate) async fn run(
    client: Client,
    config_name: String,
    state: Arc<ClusterState>,
    readiness: Arc<Readiness>,
    stop: impl std::future::Future<Output = ()>,
) {
    let vwc: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("phiguard.io", "v1alpha1", "PhiPolicy"),
        "phipolicies",
    );
    let policies: Api<DynamicObject> = Api::all_with(client, &ar);
    let mut last: Option<Arc<PolicySet>> = None;
    let mut checked = Instant::now();
    let mut written: BTreeMap<String, (bool, String)> = BTreeMap::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(POLL) => {}
        }
        // Before the PhiPolicy cache has synced the set is a placeholder: writing it would
        // drop the webhooks of policies not loaded yet.
        if !readiness.is_ready() {
            continue;
        }
        let set = state.policies();
        let changed = last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &set));
        if !changed && checked.elapsed() < RECHECK {
            continue;
        }
        checked = Instant::now();
        let result = sync_once(&vwc, &config_name, &set).await;
        let (ok, message) = match &result {
            Ok(true) => {
                tracing::info!(webhook_config = %config_name, "webhook selectors updated to the PhiPolicies' scopes");
                (true, covered(&config_name))
            }
            Ok(false) => (true, covered(&config_name)),
            Err(e) => {
                tracing::warn!(webhook_config = %config_name, error = %e, "could not update the webhook selectors");
                (
                    false,
                    format!(
                        "phi-guard could not bring ValidatingWebhookConfiguration {config_name} \
                         in step with this policy's scope ({e}); objects outside the chart's \
                         static selectors may not reach phi-guard; retrying"
                    ),
                )
            }
        };
        if ok {
            last = Some(set.clone());
        }
        for p in &set.policies {
            let stamp = (ok, message.clone());
            if written.get(&p.name) == Some(&stamp) {
                continue;
            }
            match write_condition(&policies, &p.name, ok, &message).await {
                Ok(()) => {
                    written.insert(p.name.clone(), stamp);
                }
                // The built-in baseline (no PhiPolicy object) has no status to write.
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    written.insert(p.name.clone(), stamp);
                }
                Err(e) => {
                    tracing::warn!(policy = %p.name, error = %e, "could not write the WebhookScope condition");
                }
            }
        }
        written.retain(|name, _| set.policies.iter().any(|p| &p.name == name));
    }
}

fn covered(config: &str) -> String {
    format!(
        "ValidatingWebhookConfiguration {config} sends phi-guard every object this policy's scope \
         covers"
    )
}

/// Bring the configuration in step; `Ok(true)` when it was changed.
async fn sync_once(
    api: &Api<ValidatingWebhookConfiguration>,
    name: &str,
    set: &PolicySet,
) -> Result<bool, String> {
    let live = api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading it failed: {e}"))?
        .ok_or_else(|| "it does not exist".to_string())?;
    let live = serde_json::to_value(&live).map_err(|e| e.to_string())?;
    let hooks = live
        .get("webhooks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let template = hooks
        .iter()
        .find(|w| w.get("name").and_then(Value::as_str) == Some(PHI_NAMESPACES))
        .or_else(|| hooks.first())
        .ok_or_else(|| "it has no webhooks to take the client configuration from".to_string())?;
    let excluded = excluded_namespaces(template);
    let desired = scope_webhooks(&set.policies, template, &excluded);
    if same(&hooks, &desired) {
        return Ok(false);
    }
    let rv = live
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::Null);
    // A merge patch replaces the list whole; the resourceVersion makes it conditional, so a
    // concurrent caBundle update is never lost (the next pass retries).
    let patch = json!({"metadata": {"resourceVersion": rv}, "webhooks": desired});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("updating it failed: {}", redact(&e.to_string())))?;
    Ok(true)
}

/// Do the live webhooks say what `desired` says (ignoring what the API server defaults)?
fn same(live: &[Value], desired: &[Value]) -> bool {
    let empty = json!({});
    let field = |w: &Value, k: &str| -> Value {
        match w.get(k) {
            None | Some(Value::Null) => match k {
                "namespaceSelector" | "objectSelector" => empty.clone(),
                "matchConditions" => json!([]),
                _ => Value::Null,
            },
            Some(v) => v.clone(),
        }
    };
    let rules = |w: &Value| -> Value {
        // The API server adds `scope: "*"` where it was left out; ours always say it.
        field(w, "rules")
    };
    live.len() == desired.len()
        && live.iter().zip(desired).all(|(l, d)| {
            [
                "name",
                "namespaceSelector",
                "objectSelector",
                "matchConditions",
                "failurePolicy",
            ]
            .iter()
            .all(|k| field(l, k) == field(d, k))
                && rules(l) == rules(d)
                && field(l, "clientConfig") == field(d, "clientConfig")
        })
}

async fn write_condition(
    api: &Api<DynamicObject>,
    policy: &str,
    ok: bool,
    message: &str,
) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": "phiguard.io/v1alpha1",
        "kind": "PhiPolicy",
        "status": {"conditions": [{
            "type": "WebhookScope",
            "status": if ok { "True" } else { "False" },
            "reason": if ok { "Synced" } else { "SyncFailed" },
            "message": message,
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
        }]},
    });
    api.patch_status(
        policy,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_the_api_server_adds_do_not_count_as_a_change() {
        let desired = vec![json!({
            "name": "a.phiguard.io", "failurePolicy": "Fail",
            "namespaceSelector": {}, "rules": [], "clientConfig": {"url": "https://x"}})];
        let mut live = desired.clone();
        live[0]["objectSelector"] = json!({});
        live[0]["matchPolicy"] = json!("Equivalent");
        assert!(same(&live, &desired));
        live[0]["failurePolicy"] = json!("Ignore");
        assert!(!same(&live, &desired));
        assert!(!same(&[], &desired));
    }
}
