//! What phi-guard's ValidatingWebhookConfiguration should be, decided from what was seen of it.
//! Pure: JSON in, JSON out; `webhook_scope` watches the object and does the writes.
//!
//! The source of truth is the **baseline**: the configuration as its owner (Helm, by default)
//! last wrote it, as phi-guard saw it through its watch; the first version seen after start is
//! taken as is (phi-guard cannot tell who wrote what before it ran). From the baseline come the
//! metadata (name, labels, annotations: Helm's `app.kubernetes.io/managed-by` and
//! `meta.helm.sh/release-*` stay, so Helm still owns a restored object) and the client settings
//! of every webhook (clientConfig, failurePolicy, timeoutSeconds, sideEffects,
//! admissionReviewVersions, matchPolicy, the excluded namespaces); from the PhiPolicies' scopes
//! come the webhooks and their selectors (`policy::webhooks`). The `caBundle` is the one client
//! setting taken from the live object: cert-manager and phi-guard's own TLS rotate it.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::policy::webhooks::{excluded_namespaces, scope_webhooks, PHI_NAMESPACES};
use crate::policy::Policy;

/// phi-guard's field manager for its writes to the configuration (and the policies' status).
pub(crate) const MANAGER: &str = "phi-guard-webhook-scope";
/// Set by hand before deleting the configuration to uninstall phi-guard (installs without
/// Helm): a deletion of an object carrying it is an uninstall, not drift, and is not undone.
pub(crate) const UNINSTALLING: &str = "phiguard.io/uninstalling";
/// Helm's ownership annotations (Helm adopts an existing object that carries them).
const HELM_RELEASE_NAME: &str = "meta.helm.sh/release-name";
const HELM_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
/// Fields the API server manages; never carried into a restored object.
const SERVER_METADATA: [&str; 7] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

/// What drifted (the `drift` label of `phi_guard_webhook_configuration_drift_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drift {
    /// The configuration was deleted.
    Deleted,
    /// Its webhooks were changed (a webhook removed, a failurePolicy, clientConfig, timeout or
    /// selector changed) by someone other than its owner or phi-guard.
    Edited,
}

impl Drift {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Drift::Deleted => "deleted",
            Drift::Edited => "edited",
        }
    }
}

/// The configuration as its owner last wrote it (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Baseline {
    object: Value,
}

impl Baseline {
    /// The baseline a seen version gives: metadata without the server's fields, the webhooks.
    /// `None` when it has no webhook to take the client settings from.
    pub(crate) fn from_seen(seen: &Value) -> Option<Baseline> {
        let hooks = seen.get("webhooks").and_then(Value::as_array)?;
        if hooks.is_empty() {
            return None;
        }
        let mut metadata = seen.get("metadata").cloned().unwrap_or_else(|| json!({}));
        if let Some(m) = metadata.as_object_mut() {
            for k in SERVER_METADATA {
                m.remove(k);
            }
            if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove(UNINSTALLING);
            }
        }
        Some(Baseline {
            object: json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": metadata,
                "webhooks": hooks,
            }),
        })
    }

    /// The Helm release (name, namespace) that owns the configuration, if Helm does.
    pub(crate) fn helm_release(&self) -> Option<(String, String)> {
        let a = self.object.pointer("/metadata/annotations")?;
        let name = a.get(HELM_RELEASE_NAME)?.as_str()?;
        let ns = a.get(HELM_RELEASE_NAMESPACE)?.as_str()?;
        Some((name.to_string(), ns.to_string()))
    }
}

/// The webhook whose client settings every derived webhook takes.
fn client_template(object: &Value) -> Option<&Value> {
    let hooks = object.get("webhooks").and_then(Value::as_array)?;
    hooks
        .iter()
        .find(|w| w.get("name").and_then(Value::as_str) == Some(PHI_NAMESPACES))
        .or_else(|| hooks.first())
}

/// Was this version written last by one of `owners` (field managers, e.g. `helm`)? The newest
/// entry of `managedFields` says who wrote last.
pub(crate) fn written_by_owner(seen: &Value, owners: &[String]) -> bool {
    let newest = seen
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .max_by(|a, b| {
            let t = |e: &Value| {
                e.get("time")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            t(a).cmp(&t(b))
        });
    newest
        .and_then(|e| e.get("manager"))
        .and_then(Value::as_str)
        .is_some_and(|m| owners.iter().any(|o| o == m))
}

/// Was this version marked for uninstalling?
fn marked_for_uninstall(seen: &Value) -> bool {
    seen.pointer("/metadata/annotations")
        .and_then(|a| a.get(UNINSTALLING))
        .is_some()
}

/// Why a deletion is an uninstall, if it is: the last version seen was marked
/// `phiguard.io/uninstalling`; or, for a Helm release (`release`), Helm's own record of the
/// release says `uninstalling`, its pre-delete hook Job is under way (the chart's hook deletes
/// the configuration first) or its Deployment is gone. `records` are the metadata of the
/// release's records (Secrets, or ConfigMaps with `HELM_DRIVER=configmap`, labeled
/// `owner=helm,name=<release>`, one per revision; Helm 3 and 4 label the newest
/// `status=uninstalling` before they delete anything); `deployments` and
/// `jobs` the release namespace's objects labeled with the release
/// (`app.kubernetes.io/instance`), as JSON. The record is what tells Helm 4's uninstall, which
/// deletes validating webhook configurations first, while the Deployment still stands; Helm 3
/// deleted the Deployment first. A `helm rollback` or a GitOps prune leaves the Deployment in
/// place, runs no pre-delete hook and marks no record: undone.
pub(crate) fn uninstall_sign(
    last: Option<&Value>,
    release: Option<&str>,
    records: &[Value],
    deployments: &[Value],
    jobs: &[Value],
) -> Option<&'static str> {
    if last.is_some_and(marked_for_uninstall) {
        return Some("marked phiguard.io/uninstalling");
    }
    let release = release?;
    if newest_record_status(records, release) == Some("uninstalling") {
        return Some("the Helm release is being uninstalled");
    }
    let hook_running = jobs.iter().any(|j| {
        let hook = j
            .pointer("/metadata/annotations/helm.sh~1hook")
            .and_then(Value::as_str)
            .unwrap_or("");
        let failed = j
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Failed" && c["status"] == "True");
        hook.split(',').any(|h| h.trim() == "pre-delete") && !failed
    });
    if hook_running {
        return Some("the Helm release's pre-delete hook is running");
    }
    let stands = deployments.iter().any(|d| {
        d.pointer("/metadata/deletionTimestamp").is_none()
            && d.pointer("/metadata/annotations/meta.helm.sh~1release-name")
                .and_then(Value::as_str)
                == Some(release)
    });
    (!stands).then_some("the Helm release's Deployment is gone")
}

/// The `status` label of the newest of `release`'s Helm records (by its `version` label).
fn newest_record_status<'a>(records: &'a [Value], release: &str) -> Option<&'a str> {
    records
        .iter()
        .filter_map(|r| r.pointer("/metadata/labels"))
        .filter(|l| l["owner"] == "helm" && l["name"] == release)
        .filter_map(|l| {
            let version = l["version"].as_str()?.parse::<u64>().ok()?;
            Some((version, l["status"].as_str()?))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, status)| status)
}

/// The webhooks wanted: the baseline's client settings, the `caBundle` of `live` when it has
/// one, the selectors the policies' scopes need.
pub(crate) fn desired_webhooks(
    baseline: &Baseline,
    live: Option<&Value>,
    policies: &[Arc<Policy>],
) -> Vec<Value> {
    let Some(template) = client_template(&baseline.object) else {
        return Vec::new();
    };
    let mut template = template.clone();
    let live_ca = live
        .and_then(client_template)
        .and_then(|t| t.pointer("/clientConfig/caBundle").cloned());
    if let (Some(ca), Some(cc)) = (
        live_ca,
        template
            .get_mut("clientConfig")
            .and_then(Value::as_object_mut),
    ) {
        cc.insert("caBundle".into(), ca);
    }
    let excluded = excluded_namespaces(&template);
    scope_webhooks(policies, &template, &excluded)
}

/// What to do about the live configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// It says what it should.
    InStep,
    /// Replace its webhooks with these.
    Correct(Vec<Value>),
    /// It is gone: create this object.
    Restore(Value),
}

/// The action, and the drift it undoes (none for a scope change or an owner's write).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) action: Action,
    pub(crate) drift: Option<Drift>,
    /// The webhooks wanted (remembered once in step, to tell drift from a scope change).
    pub(crate) desired: Vec<Value>,
}

/// Decide. `in_step` are the webhooks the live object last matched (`None` before it ever did
/// since start): a difference from them, with the same webhooks still wanted and not written by
/// an owner, is drift.
pub(crate) fn plan(
    baseline: &Baseline,
    live: Option<&Value>,
    policies: &[Arc<Policy>],
    owners: &[String],
    in_step: Option<&[Value]>,
) -> Plan {
    let desired = desired_webhooks(baseline, live, policies);
    let Some(live) = live else {
        let mut object = baseline.object.clone();
        object["webhooks"] = Value::Array(desired.clone());
        return Plan {
            action: Action::Restore(object),
            drift: Some(Drift::Deleted),
            desired,
        };
    };
    let hooks = live
        .get("webhooks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if same(hooks, &desired) {
        return Plan {
            action: Action::InStep,
            drift: None,
            desired,
        };
    }
    let drifted = in_step.is_some_and(|s| same(s, &desired)) && !written_by_owner(live, owners);
    Plan {
        action: Action::Correct(desired.clone()),
        drift: drifted.then_some(Drift::Edited),
        desired,
    }
}

/// Do the live webhooks say what `desired` says (ignoring what the API server defaults)?
pub(crate) fn same(live: &[Value], desired: &[Value]) -> bool {
    let field = |w: &Value, k: &str| -> Value {
        match w.get(k) {
            None | Some(Value::Null) => match k {
                "namespaceSelector" | "objectSelector" => json!({}),
                "matchConditions" => json!([]),
                "matchPolicy" => json!("Equivalent"),
                "timeoutSeconds" => json!(10),
                _ => Value::Null,
            },
            Some(v) => v.clone(),
        }
    };
    live.len() == desired.len()
        && live.iter().zip(desired).all(|(l, d)| {
            [
                "name",
                "namespaceSelector",
                "objectSelector",
                "matchConditions",
                "failurePolicy",
                "rules",
                "clientConfig",
                "timeoutSeconds",
                "sideEffects",
                "admissionReviewVersions",
                "matchPolicy",
            ]
            .iter()
            .all(|k| field(l, k) == field(d, k))
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fixtures::baseline as baseline_policy;
    use crate::policy::webhooks::{EXCEPTIONS, NAME_LABEL, NETWORK};

    fn owners() -> Vec<String> {
        vec!["helm".to_string()]
    }

    fn policies() -> Vec<Arc<Policy>> {
        vec![Arc::new(baseline_policy())]
    }

    pub(crate) fn hook(name: &str) -> Value {
        json!({
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "matchPolicy": "Equivalent",
            "clientConfig": {"service": {"name": "phi-guard", "namespace": "phi-guard",
                                         "path": "/validate", "port": 443},
                             "caBundle": "T0xE"},
            "namespaceSelector": {"matchExpressions": [
                {"key": NAME_LABEL, "operator": "NotIn", "values": ["kube-system", "phi-guard"]}]},
            "rules": [],
        })
    }

    /// The chart's object as the API server returns it after `helm install`.
    pub(crate) fn installed() -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {
                "name": "phi-guard",
                "uid": "0b7c", "resourceVersion": "41", "generation": 1,
                "creationTimestamp": "2026-12-06T08:00:00Z",
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": "phi-guard",
                                "meta.helm.sh/release-namespace": "phi-guard"},
                "managedFields": [
                    {"manager": "helm", "operation": "Update", "time": "2026-12-06T08:00:00Z"}],
            },
            "webhooks": [hook(PHI_NAMESPACES), hook(EXCEPTIONS)],
        })
    }

    /// `installed` as phi-guard keeps it: the scopes' webhooks, written by phi-guard.
    fn synced() -> Value {
        let b = Baseline::from_seen(&installed()).unwrap();
        let mut live = installed();
        live["webhooks"] = Value::Array(desired_webhooks(&b, None, &policies()));
        live["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"manager": MANAGER, "operation": "Update", "time": "2026-12-06T08:00:05Z"}),
            );
        live
    }

    fn edited_by(mut live: Value, manager: &str, edit: impl FnOnce(&mut Vec<Value>)) -> Value {
        edit(live["webhooks"].as_array_mut().unwrap());
        live["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"manager": manager, "operation": "Update", "time": "2026-12-06T09:00:00Z"}),
            );
        live
    }

    #[test]
    fn a_deleted_configuration_is_restored_whole_with_helms_ownership() {
        let b = Baseline::from_seen(&synced()).unwrap();
        let desired = desired_webhooks(&b, None, &policies());
        let p = plan(&b, None, &policies(), &owners(), Some(&desired));
        assert_eq!(p.drift, Some(Drift::Deleted));
        let Action::Restore(obj) = p.action else {
            panic!("expected a restore, got {:?}", p.action)
        };
        assert_eq!(obj["kind"], "ValidatingWebhookConfiguration");
        assert_eq!(obj["metadata"]["name"], "phi-guard");
        // Helm still owns it: its label and release annotations are kept.
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
        assert_eq!(
            b.helm_release(),
            Some(("phi-guard".to_string(), "phi-guard".to_string()))
        );
        assert_eq!(
            obj["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "phi-guard"
        );
        // Nothing the API server owns is sent back (a create with a uid or resourceVersion
        // fails).
        for k in SERVER_METADATA {
            assert!(obj["metadata"].get(k).is_none(), "{k} kept");
        }
        // Every webhook: the client settings seen, the scopes' selectors.
        let hooks = obj["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 5, "{hooks:?}");
        for h in hooks {
            assert_eq!(h["clientConfig"], hook(PHI_NAMESPACES)["clientConfig"]);
            assert_eq!(h["timeoutSeconds"], 5);
            assert_eq!(h["sideEffects"], "None");
            assert_eq!(h["admissionReviewVersions"], json!(["v1"]));
            let fp = if h["name"] == NETWORK {
                "Ignore"
            } else {
                "Fail"
            };
            assert_eq!(h["failurePolicy"], fp, "{}", h["name"]);
        }
        assert!(same(hooks, &desired));
    }

    #[test]
    fn the_uninstall_mark_is_seen_and_never_restored_with_the_object() {
        let mut live = synced();
        assert!(!marked_for_uninstall(&live));
        live["metadata"]["annotations"][UNINSTALLING] = json!("true");
        assert!(marked_for_uninstall(&live));
        assert!(uninstall_sign(Some(&live), None, &[], &[], &[]).is_some());
        let b = Baseline::from_seen(&live).unwrap();
        let Action::Restore(obj) = plan(&b, None, &policies(), &owners(), None).action else {
            panic!("expected a restore")
        };
        assert!(!marked_for_uninstall(&obj));
    }

    fn deployment(release: &str) -> Value {
        json!({"metadata": {"name": "phi-guard", "namespace": "phi-guard",
                            "annotations": {"meta.helm.sh/release-name": release}}})
    }

    fn hook_job(conditions: Value) -> Value {
        json!({"metadata": {"name": "phi-guard-uninstall",
                            "annotations": {"helm.sh/hook": "pre-delete"}},
               "status": {"conditions": conditions}})
    }

    #[test]
    fn an_uninstall_is_told_from_a_deletion_to_undo() {
        let last = synced();
        let b = Baseline::from_seen(&last).unwrap();
        let (release, _) = b.helm_release().unwrap();
        let release = Some(release.as_str());
        let deployments = [deployment("phi-guard")];
        // A rollback, a prune, a hand: the release's Deployment stands, no hook runs.
        assert_eq!(
            uninstall_sign(Some(&last), release, &[], &deployments, &[]),
            None
        );
        // The chart's pre-delete hook Job deletes the configuration while phi-guard runs.
        let running = hook_job(json!([]));
        assert!(uninstall_sign(Some(&last), release, &[], &deployments, &[running]).is_some());
        // A hook that failed earlier is no uninstall now.
        let failed = hook_job(json!([{"type": "Failed", "status": "True"}]));
        assert_eq!(
            uninstall_sign(Some(&last), release, &[], &deployments, &[failed]),
            None
        );
        // Without the hook, Helm deletes the Deployment before the configuration.
        assert!(uninstall_sign(Some(&last), release, &[], &[], &[]).is_some());
        let mut going = deployment("phi-guard");
        going["metadata"]["deletionTimestamp"] = json!("2026-12-06T09:00:00Z");
        assert!(uninstall_sign(Some(&last), release, &[], &[going], &[]).is_some());
        // Another release's Deployment does not count.
        assert!(uninstall_sign(Some(&last), release, &[], &[deployment("other")], &[]).is_some());
        // Not installed with Helm: only the mark says uninstall.
        assert_eq!(uninstall_sign(Some(&last), None, &[], &[], &[]), None);
    }

    /// A Helm release record's metadata, as `list_metadata` returns it.
    fn record(name: &str, version: u32, status: &str) -> Value {
        json!({"metadata": {
            "name": format!("sh.helm.release.v1.{name}.v{version}"),
            "labels": {"owner": "helm", "name": name, "status": status,
                       "version": version.to_string()}}})
    }

    #[test]
    fn helm_4_deleting_the_configuration_first_is_told_by_the_release_record() {
        let last = synced();
        let b = Baseline::from_seen(&last).unwrap();
        let (release, _) = b.helm_release().unwrap();
        let name = release.as_str();
        let release = Some(name);
        // Helm 4 deletes validating webhook configurations before the Deployment, and without
        // the chart's pre-delete hook no Job runs: the Deployment still stands.
        let deployments = [deployment("phi-guard")];
        let uninstalling = [
            record(name, 1, "superseded"),
            record(name, 2, "uninstalling"),
        ];
        assert_eq!(
            uninstall_sign(Some(&last), release, &uninstalling, &deployments, &[]),
            Some("the Helm release is being uninstalled")
        );
        // The newest record decides: an older revision's status is history (a rollback writes
        // a newer revision as deployed).
        let rolled_back = [
            record(name, 10, "uninstalling"),
            record(name, 2, "superseded"),
            record(name, 11, "deployed"),
        ];
        assert_eq!(
            uninstall_sign(Some(&last), release, &rolled_back, &deployments, &[]),
            None
        );
        // Another release's record, or one not written by Helm, does not count.
        let other = [record("other", 3, "uninstalling")];
        assert_eq!(
            uninstall_sign(Some(&last), release, &other, &deployments, &[]),
            None
        );
        let mut forged = record(name, 4, "uninstalling");
        forged["metadata"]["labels"]["owner"] = json!("someone");
        assert_eq!(
            uninstall_sign(Some(&last), release, &[forged], &deployments, &[]),
            None
        );
    }

    #[test]
    fn an_edit_by_someone_else_is_corrected_and_counted() {
        let b = Baseline::from_seen(&installed()).unwrap();
        let live = synced();
        let first = plan(&b, Some(&live), &policies(), &owners(), None);
        assert_eq!(first.action, Action::InStep);
        let in_step = first.desired;

        // failurePolicy Ignore on the webhook of PHI namespaces.
        let ignore = edited_by(live.clone(), "kubectl-patch", |w| {
            w[0]["failurePolicy"] = json!("Ignore");
        });
        let p = plan(&b, Some(&ignore), &policies(), &owners(), Some(&in_step));
        assert_eq!(p.drift, Some(Drift::Edited));
        let Action::Correct(hooks) = p.action else {
            panic!("expected a correction")
        };
        assert_eq!(hooks[0]["failurePolicy"], "Fail");
        assert!(same(&hooks, &in_step));

        // A webhook removed.
        let removed = edited_by(live.clone(), "kubectl-edit", |w| {
            w.remove(1);
        });
        let p = plan(&b, Some(&removed), &policies(), &owners(), Some(&in_step));
        assert_eq!(p.drift, Some(Drift::Edited));
        assert!(matches!(p.action, Action::Correct(ref h) if h.len() == in_step.len()));

        // The webhooks pointed elsewhere.
        let redirected = edited_by(live.clone(), "kubectl-edit", |w| {
            for h in w.iter_mut() {
                h["clientConfig"] = json!({"url": "https://elsewhere.example/validate"});
            }
        });
        let p = plan(
            &b,
            Some(&redirected),
            &policies(),
            &owners(),
            Some(&in_step),
        );
        let Action::Correct(hooks) = p.action else {
            panic!("expected a correction")
        };
        assert_eq!(hooks[0]["clientConfig"]["service"]["name"], "phi-guard");
    }

    #[test]
    fn the_owners_write_becomes_the_baseline_and_is_not_drift() {
        let live = synced();
        let in_step = plan(
            &Baseline::from_seen(&installed()).unwrap(),
            Some(&live),
            &policies(),
            &owners(),
            None,
        )
        .desired;
        // `helm upgrade` with a longer timeout: the owner's write is taken, not undone.
        let upgraded = edited_by(installed(), "helm", |w| {
            for h in w.iter_mut() {
                h["timeoutSeconds"] = json!(8);
            }
        });
        assert!(written_by_owner(&upgraded, &owners()));
        // `helm upgrade` setting the chart's selectors again: the scopes' are applied, not
        // counted as drift.
        let reset = edited_by(live.clone(), "helm", |w| {
            *w = installed()["webhooks"].as_array().unwrap().clone();
        });
        let b = Baseline::from_seen(&reset).unwrap();
        let p = plan(&b, Some(&reset), &policies(), &owners(), Some(&in_step));
        assert_eq!(p.drift, None, "an owner's write is not drift");
        assert_eq!(p.action, Action::Correct(in_step.clone()));
        // The same write by anyone else is.
        let by_hand = edited_by(live.clone(), "kubectl-edit", |w| {
            *w = installed()["webhooks"].as_array().unwrap().clone();
        });
        let p = plan(&b, Some(&by_hand), &policies(), &owners(), Some(&in_step));
        assert_eq!(p.drift, Some(Drift::Edited));
        assert!(!written_by_owner(&live, &owners()));
        let b = Baseline::from_seen(&upgraded).unwrap();
        let p = plan(&b, Some(&upgraded), &policies(), &owners(), Some(&in_step));
        assert_eq!(p.drift, None, "an owner's write is not drift");
        let Action::Correct(hooks) = p.action else {
            panic!("the scopes' selectors are applied again")
        };
        assert!(hooks.iter().all(|h| h["timeoutSeconds"] == 8));
    }

    #[test]
    fn a_scope_change_is_not_drift_and_the_ca_bundle_follows_the_live_object() {
        let b = Baseline::from_seen(&installed()).unwrap();
        let mut live = synced();
        for h in live["webhooks"].as_array_mut().unwrap() {
            h["clientConfig"]["caBundle"] = json!("TkVX");
        }
        // The policies now scope by a second namespace label.
        let other = crate::fixtures::policy_with(|s| {
            s.scope.namespace_selector.match_labels =
                Some([("team".to_string(), "records".to_string())].into());
        });
        let more = vec![Arc::new(baseline_policy()), Arc::new(other)];
        let old = desired_webhooks(&b, Some(&live), &policies());
        assert!(same(live["webhooks"].as_array().unwrap(), &old));
        let p = plan(&b, Some(&live), &more, &owners(), Some(&old));
        assert_eq!(p.drift, None);
        let Action::Correct(hooks) = p.action else {
            panic!("expected the new scope written")
        };
        assert!(hooks.len() > old.len());
        assert!(hooks
            .iter()
            .all(|h| h["clientConfig"]["caBundle"] == "TkVX"));
    }

    #[test]
    fn defaults_the_api_server_adds_do_not_count_as_a_change() {
        let desired = vec![json!({
            "name": "a.phiguard.io", "failurePolicy": "Fail", "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "namespaceSelector": {}, "rules": [], "clientConfig": {"url": "https://x"}})];
        let mut live = desired.clone();
        live[0]["objectSelector"] = json!({});
        live[0]["matchPolicy"] = json!("Equivalent");
        live[0]["timeoutSeconds"] = json!(10);
        assert!(same(&live, &desired));
        live[0]["timeoutSeconds"] = json!(30);
        assert!(!same(&live, &desired));
        live[0]["timeoutSeconds"] = json!(10);
        live[0]["failurePolicy"] = json!("Ignore");
        assert!(!same(&live, &desired));
        assert!(!same(&[], &desired));
    }

    #[test]
    fn a_configuration_without_webhooks_gives_no_baseline_and_no_writer_is_no_owner() {
        let mut empty = installed();
        empty["webhooks"] = json!([]);
        assert!(Baseline::from_seen(&empty).is_none());
        let mut unmanaged = installed();
        unmanaged["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert!(!written_by_owner(&unmanaged, &owners()));
    }
}
