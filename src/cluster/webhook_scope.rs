//! Keeps phi-guard's ValidatingWebhookConfiguration in place and in step with the PhiPolicies'
//! scopes (`policy::webhooks` says which webhooks and why), so the API server sends phi-guard
//! exactly the objects in PHI scope: every object a policy covers reaches phi-guard, and an
//! outage touches nothing else. Runs in `serve` when `--webhook-scope-config` names the
//! configuration.
//!
//! A watch on that one object (field selector `metadata.name`) shows every change within
//! moments. A deleted configuration is created again, an edited one corrected, from the
//! baseline `webhook_config` keeps (the owner's last write); each time with an Event regarding
//! the configuration, `phi_guard_webhook_configuration_drift_total{drift}` and the policies'
//! `WebhookScope` condition. Every replica watches (so a new leader knows the baseline); one
//! writes, the holder of the Lease `phi-guard-webhook-scope`.
//!
//! An uninstall is not undone: a deletion is left alone while Helm's record of the release says
//! `uninstalling` (Helm 4 deletes the configuration first), while the release's pre-delete hook
//! runs, once its Deployment is gone (Helm 3 deletes it before the configuration), when the
//! object was marked `phiguard.io/uninstalling`, or when this replica is shutting down
//! (`webhook_config::uninstall_sign`).
//!
//! Each policy's `WebhookScope` condition says whether the configuration covers it. Both
//! writers of PhiPolicy status (this one and the `Ready` writer in `watch`) use server-side
//! apply with their own field manager; the CRD declares conditions a map keyed by type, so
//! neither overwrites the other's condition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt as _;
use kube::Client;
use serde_json::{json, Value};

use super::backoff::WatchBackoff;
use super::lease::{self, Elector};
use super::webhook_config::{
    plan, uninstall_sign, written_by_owner, Action, Baseline, Drift, Plan, MANAGER,
};
use super::ClusterState;
use crate::policy::PolicySet;
use crate::telemetry::{redact, Metrics, Readiness};

/// How often the policy set and the lease are looked at.
const POLL: Duration = Duration::from_secs(1);
/// How often the configuration is compared again without a change seen (belt and braces: the
/// watch shows every change).
const RECHECK: Duration = Duration::from_secs(30);
/// After a failed write, the next attempt (doubling up to `RECHECK`).
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The Lease of the one writer.
pub(crate) const LEASE_NAME: &str = "phi-guard-webhook-scope";

/// How the configuration is kept.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The ValidatingWebhookConfiguration's name.
    pub(crate) config_name: String,
    /// Namespace of the Lease (phi-guard's own).
    pub(crate) namespace: String,
    /// This replica's identity in the Lease (the pod name).
    pub(crate) identity: String,
    /// Field managers whose writes are the owner's (taken as the new baseline), e.g. `helm`.
    pub(crate) owners: Vec<String>,
}

/// What the watch has shown.
#[derive(Default)]
struct Seen {
    /// The object now (`None`: it does not exist).
    live: Option<Value>,
    /// The last version that existed (a deletion's final state: the uninstall mark).
    last: Option<Value>,
    baseline: Option<Baseline>,
    /// The watch has listed once.
    synced: bool,
    /// Objects seen during the current (re)list.
    listing: bool,
    /// Something changed since the last look.
    dirty: bool,
}

impl Seen {
    fn apply(&mut self, event: Event<ValidatingWebhookConfiguration>, owners: &[String]) {
        match event {
            Event::Init => self.listing = false,
            Event::InitApply(o) => {
                self.listing = true;
                self.observe(&o, owners);
            }
            Event::InitDone => {
                if !self.listing {
                    self.live = None;
                }
                self.synced = true;
            }
            Event::Apply(o) => self.observe(&o, owners),
            Event::Delete(o) => {
                if let Ok(v) = serde_json::to_value(&o) {
                    self.last = Some(v);
                }
                self.live = None;
            }
        }
        self.dirty = true;
    }

    fn observe(&mut self, o: &ValidatingWebhookConfiguration, owners: &[String]) {
        let Ok(v) = serde_json::to_value(o) else {
            return;
        };
        // The owner's writes move the baseline; the first version seen is taken as is.
        if self.baseline.is_none() || written_by_owner(&v, owners) {
            if let Some(b) = Baseline::from_seen(&v) {
                self.baseline = Some(b);
            }
        }
        self.last = Some(v.clone());
        self.live = Some(v);
    }
}

/// This replica's hold on the Lease.
struct Leadership {
    held: bool,
    renewed: Instant,
    /// The last attempt: a standby replica asks every `lease::RETRY`, not every poll.
    tried: Option<Instant>,
}

impl Leadership {
    async fn hold(&mut self, elector: &Elector) -> bool {
        if self.held && self.renewed.elapsed() < lease::RETRY {
            return true;
        }
        if !self.held && self.tried.is_some_and(|t| t.elapsed() < lease::RETRY) {
            return false;
        }
        self.tried = Some(Instant::now());
        match elector.try_hold().await {
            Ok(h) => {
                if h != self.held {
                    tracing::info!(
                        held = h,
                        lease = LEASE_NAME,
                        "webhook configuration: leadership changed"
                    );
                }
                self.held = h;
                if h {
                    self.renewed = Instant::now();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, lease = LEASE_NAME, "webhook configuration: could not renew the lease");
                // Stop writing well before another replica may take the lease over.
                if self.renewed.elapsed() + lease::RETRY >= lease::LEASE_DURATION {
                    self.held = false;
                }
            }
        }
        self.held
    }
}

/// The outcome of one look, as the policies' condition says it.
struct ScopeCondition {
    ok: bool,
    reason: &'static str,
    message: String,
}

/// The writer's memory between looks.
struct Keeper {
    api: Api<ValidatingWebhookConfiguration>,
    client: Client,
    opts: Options,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    last_set: Option<Arc<PolicySet>>,
    checked: Instant,
    /// The webhooks the live object last matched.
    in_step: Option<Vec<Value>>,
    /// Not before this instant (after a failure), and the delay after the next failure.
    retry: Option<(Instant, Duration)>,
    /// The drift occurrence already counted (a deletion by uid, an edit by resourceVersion).
    counted: Option<String>,
    /// This deletion is an uninstall: left alone until the object is seen again.
    declined: bool,
    /// The last drift undone (condition reason and message), said until the scopes change.
    sticky: Option<(&'static str, String)>,
}

/// Run until `stop` resolves.
pub(crate) async fn run(
    client: Client,
    opts: Options,
    state: Arc<ClusterState>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    stop: impl std::future::Future<Output = ()>,
) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("phiguard.io", "v1alpha1", "PhiPolicy"),
        "phipolicies",
    );
    let policies: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let elector = Elector::new(client.clone(), &opts.namespace, LEASE_NAME, &opts.identity);
    let selector = format!("metadata.name={}", opts.config_name);
    let mut events = watcher(api, watcher::Config::default().fields(&selector))
        .backoff(WatchBackoff::new())
        .boxed();
    let mut seen = Seen::default();
    let mut leader = Leadership {
        held: false,
        renewed: Instant::now(),
        tried: None,
    };
    let mut keeper = Keeper::new(client, opts, metrics);
    let mut written: BTreeMap<String, (bool, String)> = BTreeMap::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            event = events.next() => match event {
                Some(Ok(e)) => {
                    if matches!(e, Event::Apply(_) | Event::InitApply(_)) {
                        keeper.declined = false;
                    }
                    seen.apply(e, &keeper.opts.owners);
                }
                // The watcher retries with backoff; what it last showed stands meanwhile.
                Some(Err(e)) => tracing::warn!(
                    webhook_config = %keeper.opts.config_name,
                    error = %redact(&e.to_string()),
                    "webhook configuration watch failed; retrying"
                ),
                None => break,
            },
            () = tokio::time::sleep(POLL) => {}
        }
        // Shutting down (SIGTERM: a rollout, or the release being uninstalled): write nothing
        // more, and let another replica lead at once.
        if readiness.is_draining() {
            if leader.held {
                elector.release().await;
                leader.held = false;
            }
            continue;
        }
        // Before the PhiPolicy cache has synced the set is a placeholder: writing it would
        // drop the webhooks of policies not loaded yet.
        if !readiness.is_ready() || !seen.synced || !leader.hold(&elector).await {
            continue;
        }
        let set = state.policies();
        let Some(outcome) = keeper.look(&mut seen, &set).await else {
            continue;
        };
        write_conditions(&policies, &set, &outcome, &mut written).await;
    }
    if leader.held {
        elector.release().await;
    }
}

impl Keeper {
    fn new(client: Client, opts: Options, metrics: Arc<Metrics>) -> Keeper {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "phi-guard".into(),
                instance: Some(opts.identity.clone()),
            },
        );
        Keeper {
            api: Api::all(client.clone()),
            client,
            opts,
            metrics,
            recorder,
            last_set: None,
            checked: Instant::now(),
            in_step: None,
            retry: None,
            counted: None,
            declined: false,
            sticky: None,
        }
    }

    /// One look, when something is due: `None` when nothing was.
    async fn look(&mut self, seen: &mut Seen, set: &Arc<PolicySet>) -> Option<ScopeCondition> {
        let changed = self.last_set.as_ref().is_none_or(|l| !Arc::ptr_eq(l, set));
        let retry_due = self.retry.is_some_and(|(at, _)| Instant::now() >= at);
        let waiting = self.retry.is_some_and(|(at, _)| Instant::now() < at);
        let due =
            retry_due || (!waiting && (seen.dirty || changed || self.checked.elapsed() >= RECHECK));
        if !due {
            return None;
        }
        seen.dirty = false;
        self.checked = Instant::now();
        let name = self.opts.config_name.clone();
        let Some(baseline) = seen.baseline.clone() else {
            self.last_set = Some(set.clone());
            return Some(ScopeCondition {
                ok: false,
                reason: "Missing",
                message: format!(
                    "ValidatingWebhookConfiguration {name} does not exist and phi-guard has not \
                     seen it since it started, so it has nothing to restore it from; install \
                     or upgrade the chart"
                ),
            });
        };
        let p = plan(
            &baseline,
            seen.live.as_ref(),
            &set.policies,
            &self.opts.owners,
            self.in_step.as_deref(),
        );
        let result = match &p.action {
            Action::InStep => Ok(None),
            Action::Correct(hooks) => self.correct(seen, hooks, &p).await,
            Action::Restore(object) => {
                if self.declined {
                    return None;
                }
                match self.uninstalling(seen, &baseline).await {
                    Ok(Some(why)) => {
                        self.declined = true;
                        tracing::info!(webhook_config = %name, why, "webhook configuration deleted by an uninstall; not restoring it");
                        return Some(ScopeCondition {
                            ok: false,
                            reason: "Uninstalled",
                            message: format!(
                                "ValidatingWebhookConfiguration {name} was deleted by an \
                                 uninstall ({why}); phi-guard does not restore it"
                            ),
                        });
                    }
                    Ok(None) => self.restore(seen, object).await,
                    Err(e) => Err(format!(
                        "could not tell whether the release is being uninstalled: {e}"
                    )),
                }
            }
        };
        match result {
            Ok(drift) => {
                self.retry = None;
                self.last_set = Some(set.clone());
                self.in_step = Some(p.desired);
                let at = k8s_openapi::jiff::Timestamp::now();
                match drift {
                    Some(Drift::Deleted) => {
                        self.sticky = Some((
                            "Restored",
                            format!(
                                "ValidatingWebhookConfiguration {name} was deleted and phi-guard \
                                 restored it at {at}; it sends phi-guard every object this \
                                 policy's scope covers"
                            ),
                        ));
                    }
                    Some(Drift::Edited) => {
                        self.sticky = Some((
                            "Corrected",
                            format!(
                                "ValidatingWebhookConfiguration {name} was edited and phi-guard \
                                 corrected it at {at}; it sends phi-guard every object this \
                                 policy's scope covers"
                            ),
                        ));
                    }
                    None if changed => self.sticky = None,
                    None => {}
                }
                let (reason, message) = self
                    .sticky
                    .clone()
                    .unwrap_or_else(|| ("Synced", covered(&name)));
                Some(ScopeCondition {
                    ok: true,
                    reason,
                    message,
                })
            }
            Err(e) => {
                let delay = self
                    .retry
                    .map_or(RETRY_FIRST, |(_, d)| (d * 2).min(RECHECK));
                self.retry = Some((Instant::now() + delay, delay));
                tracing::warn!(webhook_config = %name, error = %e, retry_in = ?delay, "could not bring the webhook configuration in step");
                Some(ScopeCondition {
                    ok: false,
                    reason: "SyncFailed",
                    message: format!(
                        "phi-guard could not bring ValidatingWebhookConfiguration {name} in step \
                         with this policy's scope ({e}); objects outside the chart's static \
                         selectors may not reach phi-guard; retrying"
                    ),
                })
            }
        }
    }

    /// Count a drift once per occurrence.
    fn count(&mut self, drift: Drift, occurrence: String) {
        if self.counted.as_deref() != Some(occurrence.as_str()) {
            self.metrics.count_webhook_drift(drift.as_str());
            self.counted = Some(occurrence);
        }
    }

    /// Replace the live webhooks; the drift undone, if any.
    async fn correct(
        &mut self,
        seen: &mut Seen,
        hooks: &[Value],
        p: &Plan,
    ) -> Result<Option<Drift>, String> {
        let live = seen
            .live
            .as_ref()
            .ok_or_else(|| "it vanished".to_string())?;
        let rv = live
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null);
        let uid = live
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if let Some(d) = p.drift {
            self.count(d, format!("edited:{}", rv.as_str().unwrap_or("")));
            tracing::warn!(webhook_config = %self.opts.config_name, "webhook configuration edited by someone other than its owner; correcting it");
        }
        // A merge patch replaces the list whole; the resourceVersion makes it conditional, so a
        // concurrent caBundle update is never lost (the watch shows it and the next look
        // retries).
        let patch = json!({"metadata": {"resourceVersion": rv}, "webhooks": hooks});
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..PatchParams::default()
        };
        match self
            .api
            .patch(&self.opts.config_name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                seen.dirty = true;
                return Err("it changed meanwhile".into());
            }
            Err(e) => return Err(format!("updating it failed: {}", redact(&e.to_string()))),
        }
        tracing::info!(webhook_config = %self.opts.config_name, "webhook configuration brought in step");
        if p.drift == Some(Drift::Edited) {
            self.event(
                EventType::Warning,
                "WebhookConfigurationCorrected",
                "Correct",
                "edited by someone other than its owner: phi-guard set its webhooks back \
                 (failurePolicy, clientConfig, timeouts, selectors as its owner and the \
                 PhiPolicies' scopes say)",
                &uid,
            )
            .await;
        }
        Ok(p.drift)
    }

    /// Create the configuration again.
    async fn restore(&mut self, seen: &mut Seen, object: &Value) -> Result<Option<Drift>, String> {
        let last_uid = seen
            .last
            .as_ref()
            .and_then(|l| l.pointer("/metadata/uid"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        self.count(Drift::Deleted, format!("deleted:{last_uid}"));
        tracing::warn!(webhook_config = %self.opts.config_name, "webhook configuration deleted; restoring it");
        let vwc: ValidatingWebhookConfiguration =
            serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
        let params = PostParams {
            field_manager: Some(MANAGER.into()),
            ..PostParams::default()
        };
        let created = match self.api.create(&params, &vwc).await {
            Ok(c) => c,
            // Someone (Helm) created it meanwhile: the watch shows it, the next look compares.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                seen.dirty = true;
                return Err("it was created by someone else meanwhile".into());
            }
            Err(e) => return Err(format!("creating it failed: {}", redact(&e.to_string()))),
        };
        let uid = created.metadata.uid.unwrap_or_default();
        tracing::info!(webhook_config = %self.opts.config_name, "webhook configuration restored");
        self.event(
            EventType::Warning,
            "WebhookConfigurationRestored",
            "Restore",
            "deleted while phi-guard runs: phi-guard created it again from its owner's last \
             version, with the PhiPolicies' scopes",
            &uid,
        )
        .await;
        Ok(Some(Drift::Deleted))
    }

    /// Is this deletion an uninstall? `Some(why)` when it is.
    async fn uninstalling(
        &self,
        seen: &Seen,
        baseline: &Baseline,
    ) -> Result<Option<&'static str>, String> {
        let release = baseline.helm_release();
        let (mut records, mut deployments, mut jobs) = (Vec::new(), Vec::new(), Vec::new());
        if let Some((name, ns)) = &release {
            let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={name}"));
            let err = |e: kube::Error| redact(&e.to_string());
            // Helm's records of the release, their metadata only: Secrets (the storage driver
            // Helm uses by default) and, only when there are none, ConfigMaps
            // (`HELM_DRIVER=configmap`; a release's records are in one driver, and a ConfigMap
            // that says `uninstalling` is not taken over the Secrets that say otherwise).
            // Without the permission (a chart before it was granted), the other signs decide.
            let by_release = ListParams::default().labels(&format!("owner=helm,name={name}"));
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
            records = helm_records(secrets, &by_release).await?;
            if records.is_empty() {
                let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
                records = helm_records(maps, &by_release).await?;
            }
            let d: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
            for o in d.list_metadata(&lp).await.map_err(err)? {
                deployments.push(serde_json::to_value(o).map_err(|e| e.to_string())?);
            }
            let j: Api<Job> = Api::namespaced(self.client.clone(), ns);
            for o in j.list(&lp).await.map_err(err)? {
                jobs.push(serde_json::to_value(o).map_err(|e| e.to_string())?);
            }
        }
        Ok(uninstall_sign(
            seen.last.as_ref(),
            release.as_ref().map(|(n, _)| n.as_str()),
            &records,
            &deployments,
            &jobs,
        ))
    }

    /// An Event regarding the configuration (in `default`: Events about cluster-scoped objects
    /// live there). It names the object and what happened, never field values.
    async fn event(&self, type_: EventType, reason: &str, action: &str, note: &str, uid: &str) {
        let reference = ObjectReference {
            api_version: Some("admissionregistration.k8s.io/v1".into()),
            kind: Some("ValidatingWebhookConfiguration".into()),
            name: Some(self.opts.config_name.clone()),
            uid: (!uid.is_empty()).then(|| uid.to_string()),
            ..ObjectReference::default()
        };
        let ev = KubeEvent {
            type_,
            reason: reason.into(),
            note: Some(format!(
                "ValidatingWebhookConfiguration {} {note}",
                self.opts.config_name
            )),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::warn!(error = %redact(&e.to_string()), reason, "could not record the Event");
        }
    }
}

/// Helm's release records of one storage driver (`api`), as metadata; none without the
/// permission to list them.
async fn helm_records<K>(api: Api<K>, by_release: &ListParams) -> Result<Vec<Value>, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list_metadata(by_release).await {
        Ok(list) => list
            .into_iter()
            .map(|o| serde_json::to_value(o).map_err(|e| e.to_string()))
            .collect(),
        Err(kube::Error::Api(e)) if e.code == 403 => Ok(Vec::new()),
        Err(e) => Err(redact(&e.to_string())),
    }
}

fn covered(config: &str) -> String {
    format!(
        "ValidatingWebhookConfiguration {config} sends phi-guard every object this policy's scope \
         covers"
    )
}

/// Each policy's `WebhookScope` condition, written when it changes.
async fn write_conditions(
    api: &Api<DynamicObject>,
    set: &PolicySet,
    outcome: &ScopeCondition,
    written: &mut BTreeMap<String, (bool, String)>,
) {
    for p in &set.policies {
        let stamp = (outcome.ok, outcome.message.clone());
        if written.get(&p.name) == Some(&stamp) {
            continue;
        }
        match write_condition(api, &p.name, outcome).await {
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

async fn write_condition(
    api: &Api<DynamicObject>,
    policy: &str,
    outcome: &ScopeCondition,
) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": "phiguard.io/v1alpha1",
        "kind": "PhiPolicy",
        "status": {"conditions": [{
            "type": "WebhookScope",
            "status": if outcome.ok { "True" } else { "False" },
            "reason": outcome.reason,
            "message": outcome.message,
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

/// The keeper's calls to the API server, against a scripted one (`fixtures::mock_api`): what it
/// sends when the configuration was deleted or edited, and what it does when a write races.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::webhook_config::tests::{hook, installed};
    use crate::fixtures::mock_api::{status, step, MockApi};
    use crate::policy::webhooks::PHI_NAMESPACES;

    const VWCS: &str = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

    fn keeper(client: Client) -> Keeper {
        Keeper::new(
            client,
            Options {
                config_name: "phi-guard".into(),
                namespace: "phi-guard".into(),
                identity: "replica-a".into(),
                owners: vec!["helm".into()],
            },
            Arc::new(Metrics::new()),
        )
    }

    /// The watch saw `installed` and then its deletion.
    fn deleted() -> Seen {
        let mut seen = Seen::default();
        seen.observe(
            &serde_json::from_value(installed()).unwrap(),
            &["helm".into()],
        );
        seen.live = None;
        seen.synced = true;
        seen.dirty = true;
        seen
    }

    fn drift(k: &Keeper, d: &str) -> u64 {
        k.metrics
            .webhook_drift
            .get_or_create(&[("drift", d.to_string())])
            .get()
    }

    fn policies() -> Arc<PolicySet> {
        Arc::new(PolicySet::build(&[crate::policy::hipaa_baseline()]))
    }

    /// Helm's records of the release, the newest (revision 2) with `status`.
    fn records(status: &str) -> crate::fixtures::mock_api::Step {
        let record = |v: u32, status: &str| {
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                   "metadata": {"name": format!("sh.helm.release.v1.phi-guard.v{v}"),
                       "namespace": "phi-guard",
                       "labels": {"owner": "helm", "name": "phi-guard", "status": status,
                                  "version": v.to_string()}}})
        };
        step(
            "GET",
            "/api/v1/namespaces/phi-guard/secrets",
            200,
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                   "metadata": {}, "items": [record(1, "superseded"), record(2, status)]}),
        )
    }

    /// The release's Deployment is there and no uninstall hook ran: a deletion to undo.
    fn release_running() -> Vec<crate::fixtures::mock_api::Step> {
        vec![
            records("deployed"),
            step(
                "GET",
                "/apis/apps/v1/namespaces/phi-guard/deployments",
                200,
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                       "metadata": {}, "items": [{"apiVersion": "meta.k8s.io/v1",
                           "kind": "PartialObjectMetadata",
                           "metadata": {"name": "phi-guard", "namespace": "phi-guard",
                               "annotations": {"meta.helm.sh/release-name": "phi-guard"}}}]}),
            ),
            step(
                "GET",
                "/apis/batch/v1/namespaces/phi-guard/jobs",
                200,
                json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": []}),
            ),
        ]
    }

    #[tokio::test]
    async fn a_deleted_configuration_is_created_again_and_said_in_an_event() {
        let mut script = release_running();
        let mut created = installed();
        created["metadata"]["uid"] = json!("9f1d");
        script.push(step("POST", VWCS, 201, created));
        script.push(step("POST", EVENTS, 201, json!({})));
        let (client, api) = MockApi::new(script);
        let mut k = keeper(client);
        let mut seen = deleted();
        let set = policies();
        let outcome = k.look(&mut seen, &set).await.expect("a look was due");
        assert!(outcome.ok, "{}", outcome.message);
        assert_eq!(outcome.reason, "Restored");
        assert_eq!(api.unused(), 0, "{:?}", api.calls());
        let sent = &api.requests()[3].body;
        // Nothing the API server owns is sent back; Helm's ownership is kept.
        assert!(sent["metadata"].get("uid").is_none());
        assert!(sent["metadata"].get("resourceVersion").is_none());
        assert_eq!(
            sent["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "phi-guard"
        );
        assert!(
            api.requests()[3].query.contains("fieldManager=phi-guard"),
            "{}",
            api.requests()[3].query
        );
        // The Event names the restored object by its new uid, and no field value.
        let event = &api.requests()[4].body;
        assert_eq!(event["reason"], "WebhookConfigurationRestored");
        assert_eq!(event["regarding"]["uid"], "9f1d");
        assert_eq!(drift(&k, "deleted"), 1);
        // Nothing more is due until something changes.
        assert!(k.look(&mut seen, &set).await.is_none());
    }

    #[tokio::test]
    async fn a_restore_that_races_helm_waits_for_the_watch_and_retries_later() {
        let mut script = release_running();
        script.push(step("POST", VWCS, 409, status(409, "AlreadyExists")));
        let (client, api) = MockApi::new(script);
        let mut k = keeper(client);
        let mut seen = deleted();
        let set = policies();
        let outcome = k.look(&mut seen, &set).await.expect("a look was due");
        assert!(!outcome.ok);
        assert_eq!(outcome.reason, "SyncFailed", "{}", outcome.message);
        // Only the 409 of a create marks the watch dirty: that is the race with Helm, whatever
        // the outcome's wording.
        assert!(seen.dirty, "the watch's next event must be looked at");
        assert!(k.retry.is_some());
        assert_eq!(api.unused(), 0);
        // Backing off: no call before the retry is due, whatever the watch says.
        assert!(k.look(&mut seen, &set).await.is_none());
        assert_eq!(api.requests().len(), 4);
    }

    /// The deletion looked at with the API answering `script`: left alone as an uninstall,
    /// with nothing but reads.
    async fn left_alone(script: Vec<crate::fixtures::mock_api::Step>) -> MockApi {
        let (client, api) = MockApi::new(script);
        let mut k = keeper(client);
        let mut seen = deleted();
        let set = policies();
        let outcome = k.look(&mut seen, &set).await.expect("a look was due");
        assert_eq!(outcome.reason, "Uninstalled", "{}", outcome.message);
        assert!(k.declined);
        assert!(
            api.calls().iter().all(|c| c.starts_with("GET ")),
            "{:?}",
            api.calls()
        );
        api
    }

    #[tokio::test]
    async fn helm_4_deleting_the_configuration_before_the_deployment_is_left_alone() {
        // Helm 4 deletes webhook configurations first: the Deployment still stands, no hook
        // runs, and only the release record says `uninstalling`.
        let mut script = release_running();
        script[0] = records("uninstalling");
        left_alone(script).await;
    }

    #[tokio::test]
    async fn helm_4_with_the_configmap_driver_is_told_by_its_configmap_records() {
        // HELM_DRIVER=configmap: no Secret records, the ConfigMaps say `uninstalling`.
        let mut script = release_running();
        let body = records("uninstalling").body;
        script[0] = step(
            "GET",
            "/api/v1/namespaces/phi-guard/secrets",
            200,
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                   "metadata": {}, "items": []}),
        );
        script.insert(
            1,
            step("GET", "/api/v1/namespaces/phi-guard/configmaps", 200, body),
        );
        let api = left_alone(script).await;
        assert!(
            api.requests()[1].query.contains("owner%3Dhelm"),
            "{}",
            api.requests()[1].query
        );
    }

    #[tokio::test]
    async fn an_uninstall_is_left_alone_without_a_write() {
        // The release's Deployment is gone: Helm 3 is uninstalling it.
        left_alone(vec![
            records("deployed"),
            step(
                "GET",
                "/apis/apps/v1/namespaces/phi-guard/deployments",
                200,
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                       "metadata": {}, "items": []}),
            ),
            step(
                "GET",
                "/apis/batch/v1/namespaces/phi-guard/jobs",
                200,
                json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": []}),
            ),
        ])
        .await;
    }

    #[tokio::test]
    async fn an_edit_is_patched_back_conditionally_on_what_was_seen() {
        let (client, api) = MockApi::new(vec![
            step("PATCH", &format!("{VWCS}/phi-guard"), 200, installed()),
            step("POST", EVENTS, 201, json!({})),
        ]);
        let mut k = keeper(client);
        let mut seen = Seen::default();
        seen.observe(
            &serde_json::from_value(installed()).unwrap(),
            &["helm".into()],
        );
        seen.synced = true;
        // First look: brought in step with the policies' scopes (a scope change, no drift).
        let Some(first) = ({
            let mut synced = installed();
            let set = policies();
            let b = seen.baseline.clone().unwrap();
            synced["webhooks"] = Value::Array(super::super::webhook_config::desired_webhooks(
                &b,
                None,
                &set.policies,
            ));
            k.in_step = Some(synced["webhooks"].as_array().cloned().unwrap_or_default());
            // Someone else removes every webhook but one.
            let mut edited = synced.clone();
            edited["webhooks"] = json!([hook(PHI_NAMESPACES)]);
            edited["metadata"]["resourceVersion"] = json!("77");
            edited["metadata"]["managedFields"]
                .as_array_mut()
                .unwrap()
                .push(json!({"manager": "kubectl-edit", "operation": "Update",
                             "time": "2026-12-06T09:00:00Z"}));
            seen.live = Some(edited);
            seen.dirty = true;
            k.look(&mut seen, &set).await
        }) else {
            panic!("a look was due")
        };
        assert!(first.ok, "{}", first.message);
        assert_eq!(first.reason, "Corrected");
        let patch = &api.requests()[0].body;
        // Conditional on the version seen: a concurrent caBundle update is never overwritten.
        assert_eq!(patch["metadata"]["resourceVersion"], "77");
        assert!(
            patch["webhooks"].as_array().is_some_and(|h| h.len() > 1),
            "{patch}"
        );
        assert_eq!(
            api.requests()[1].body["reason"],
            "WebhookConfigurationCorrected"
        );
        assert_eq!(drift(&k, "edited"), 1);
    }
}
