//! Watch caches: one kube-runtime watcher per kind, each event converted at once into the lean
//! types of [`super::objects`] and applied to the [`ClusterState`] stores (a relist is buffered
//! and swapped in whole at `InitDone`). No full objects are kept, so memory stays small at 10k
//! objects per kind, and the request path never calls the API server.
//!
//! PhiPolicies, Istio PeerAuthentications and cert-manager Certificates are custom resources
//! whose CRDs may be absent: discovery is polled every 30 s and the watcher starts when the CRD
//! appears; an absent CRD does not hold readiness. PhiPolicies are read leniently: a malformed
//! one is skipped, logged, counted and marked `Ready=False` in its status; the rest apply. With
//! no valid PhiPolicy the built-in hipaa-baseline applies, so the cluster is never unprotected.

mod exception_sink;
mod platform;
mod policies;
use policies::PolicySink;
mod safeguards;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::backoff::{is_not_served, watch_error_reason, WatchBackoff};
use super::lean::WatchedPod;
use super::{ClusterScoped, ClusterState, Namespaced};
use crate::kinds::{self, KindSpec, Store};
use crate::policy::PhiPolicy;
use crate::policy::{effective_policies, RejectedPolicy};
use crate::telemetry::{redact, Metrics, Readiness};
use crate::view::{
    CertificateInfo, NamespaceInfo, NetworkPolicyInfo, PeerAuthInfo, PvInfo, PvcInfo, ServiceInfo,
    StorageClassInfo,
};

/// How often discovery is polled for CRDs that are not installed (yet).
pub(crate) const CRD_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// The readiness component of a watched kind.
pub(crate) fn component(kind: &str) -> String {
    format!("watch/{kind}")
}

/// The running watchers; aborting stops them.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watchers {
    pub(crate) fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// What every watcher task shares.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) client: Client,
    pub(super) state: Arc<ClusterState>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) readiness: Arc<Readiness>,
}

/// Start every watcher. Each kind registers a readiness component (`watch/<Kind>`) that turns
/// ready at its first complete list (or, for an optional CRD, when discovery finds it absent).
pub(crate) fn spawn(
    client: Client,
    state: Arc<ClusterState>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
) -> Watchers {
    let ctx = Ctx {
        client,
        state,
        metrics,
        readiness,
    };
    let mut tasks = Vec::new();
    for (spec, store) in kinds::consulted() {
        watch_store(&ctx, spec, store, &mut tasks);
    }
    Watchers { tasks }
}

/// Start the watch that fills one store of the registry (`crate::kinds`).
fn watch_store(
    ctx: &Ctx,
    spec: &'static KindSpec,
    store: Store,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) {
    let gvk = GroupVersionKind::gvk(spec.group, spec.version, spec.kind);
    let task = match store {
        Store::Namespaces => typed::<Namespace, _>(
            ctx,
            spec.kind,
            |s| &s.namespaces,
            |o| Ok(Some(NamespaceInfo::from(o))),
        ),
        Store::StorageClasses => typed::<StorageClass, _>(
            ctx,
            spec.kind,
            |s| &s.storage_classes,
            |o| Ok(Some(StorageClassInfo::from(o))),
        ),
        Store::PersistentVolumes => {
            typed::<PersistentVolume, _>(ctx, spec.kind, |s| &s.pvs, |o| Ok(Some(PvInfo::from(o))))
        }
        Store::PersistentVolumeClaims => typed::<PersistentVolumeClaim, _>(
            ctx,
            spec.kind,
            |s| &s.pvcs,
            |o| Ok(Some(PvcInfo::from(o))),
        ),
        Store::NetworkPolicies => typed::<NetworkPolicy, _>(
            ctx,
            spec.kind,
            |s| &s.network_policies,
            |o| Ok(Some(NetworkPolicyInfo::from(o))),
        ),
        Store::Services => typed::<Service, _>(
            ctx,
            spec.kind,
            |s| &s.services,
            |o| Ok(Some(ServiceInfo::from(o))),
        ),
        // The busiest watch: decoded lean, straight into what the cache keeps.
        Store::Pods => typed::<WatchedPod, _>(ctx, spec.kind, |s| &s.pods, |o| Ok(o.info())),
        Store::PeerAuthentications => optional(ctx, gvk, |ctx, ar| {
            let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
            let sink = TableSink::new(
                ctx.state.clone(),
                |s: &ClusterState| &s.peer_authentications as &dyn Table<PeerAuthInfo>,
                |o: &DynamicObject| {
                    to_value(o)
                        .and_then(|v| PeerAuthInfo::from_value(&v).map_err(|e| e.message))
                        .map(Some)
                },
            );
            run(ctx, api, "PeerAuthentication", sink)
        }),
        Store::Certificates => optional(ctx, gvk, |ctx, ar| {
            let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
            let sink = TableSink::new(
                ctx.state.clone(),
                |s: &ClusterState| &s.certificates as &dyn Table<CertificateInfo>,
                |o: &DynamicObject| {
                    to_value(o)
                        .and_then(|v| CertificateInfo::from_value(&v).map_err(|e| e.message))
                        .map(Some)
                },
            );
            run(ctx, api, "Certificate", sink)
        }),
        Store::PhiPolicies => optional(ctx, gvk, |ctx, ar| {
            let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
            let sink = PolicySink::new(ctx.clone(), ar);
            run(ctx, api, "PhiPolicy", sink)
        }),
        Store::PhiExceptions => optional(ctx, gvk, |ctx, ar| {
            let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
            let sink = exception_sink::ExceptionSink::new(ctx.clone());
            run(ctx, api, "PhiException", sink)
        }),
        Store::PlatformConfigMaps => {
            platform::config_maps(ctx, tasks);
            return;
        }
        Store::FelixConfiguration => platform::felix_configuration(ctx, gvk),
        Store::KumaMeshes => platform::kuma_meshes(ctx, gvk),
        Store::KumaMeshTls => platform::kuma_mesh_tls(ctx, gvk),
        Store::PodDisruptionBudgets
        | Store::IstioAuthorizationPolicies
        | Store::LinkerdAuthorizationPolicies
        | Store::LinkerdServers
        | Store::VeleroSchedules => safeguards::watch(ctx, spec, store, gvk),
    };
    tasks.push(task);
}

pub(super) fn to_value(o: &DynamicObject) -> Result<Value, String> {
    serde_json::to_value(o).map_err(|e| e.to_string())
}

// ---- stores -------------------------------------------------------------------------------

/// A store the watchers write: cluster-scoped (namespace ignored) or namespaced.
pub(crate) trait Table<T>: Send + Sync {
    fn put(&self, namespace: String, name: String, item: T);
    fn del(&self, namespace: &str, name: &str);
    fn reset(&self, items: Vec<(String, String, T)>);
}

impl<T: Send + Sync> Table<T> for ClusterScoped<T> {
    fn put(&self, _namespace: String, name: String, item: T) {
        self.insert(name, item);
    }
    fn del(&self, _namespace: &str, name: &str) {
        self.remove(name);
    }
    fn reset(&self, items: Vec<(String, String, T)>) {
        self.replace(items.into_iter().map(|(_, n, t)| (n, t)).collect());
    }
}

impl<T: Send + Sync> Table<T> for Namespaced<T> {
    fn put(&self, namespace: String, name: String, item: T) {
        self.insert(namespace, name, item);
    }
    fn del(&self, namespace: &str, name: &str) {
        self.remove(namespace, name);
    }
    fn reset(&self, items: Vec<(String, String, T)>) {
        self.replace(items);
    }
}

/// Where watch events go.
pub(super) trait Sink<K>: Send + 'static {
    /// A relist starts.
    fn init(&mut self);
    /// An object of the relist; `Err` when it could not be read (skipped).
    fn init_apply(&mut self, obj: K) -> Result<(), String>;
    /// The relist is complete: swap it in.
    fn init_done(&mut self);
    fn apply(&mut self, obj: K) -> Result<(), String>;
    fn delete(&mut self, obj: K);
    /// The watcher's configuration (e.g. a field selector for one named object).
    fn config(&self) -> watcher::Config {
        watcher::Config::default()
    }
}

type Select<T> = fn(&ClusterState) -> &dyn Table<T>;

/// Converts objects to `T` and writes them to a table. The converter returns `Ok(None)` for
/// objects that are not kept (and removes a kept one that stopped qualifying).
struct TableSink<K, T, F> {
    state: Arc<ClusterState>,
    /// Tell the background audit what changed (not for Pods: their status churns, and only
    /// Service judging reads them; the periodic sweep catches those).
    marks: bool,
    select: Select<T>,
    convert: F,
    buffer: Vec<(String, String, T)>,
    _k: std::marker::PhantomData<fn(K)>,
}

impl<K, T, F> TableSink<K, T, F>
where
    F: Fn(&K) -> Result<Option<T>, String>,
{
    fn new(state: Arc<ClusterState>, select: Select<T>, convert: F) -> Self {
        TableSink {
            state,
            marks: true,
            select,
            convert,
            buffer: Vec::new(),
            _k: std::marker::PhantomData,
        }
    }
}

fn key<K: ResourceExt>(o: &K) -> (String, String) {
    (o.namespace().unwrap_or_default(), o.name_any())
}

impl<K, T, F> Sink<K> for TableSink<K, T, F>
where
    K: ResourceExt + Send + 'static,
    T: Send + 'static,
    F: Fn(&K) -> Result<Option<T>, String> + Send + 'static,
{
    fn init(&mut self) {
        self.buffer.clear();
    }
    fn init_apply(&mut self, obj: K) -> Result<(), String> {
        let (ns, name) = key(&obj);
        if let Some(t) = (self.convert)(&obj)? {
            self.buffer.push((ns, name, t));
        }
        Ok(())
    }
    fn init_done(&mut self) {
        let items = std::mem::take(&mut self.buffer);
        (self.select)(&self.state).reset(items);
        if self.marks {
            self.state.mark_dirty(None);
        }
    }
    fn apply(&mut self, obj: K) -> Result<(), String> {
        let (ns, name) = key(&obj);
        if self.marks {
            // Cluster-scoped kinds (Namespaces, StorageClasses, PVs) touch every namespace.
            self.state.mark_dirty(Some(&ns));
        }
        let table = (self.select)(&self.state);
        match (self.convert)(&obj) {
            Ok(Some(t)) => {
                table.put(ns, name, t);
                Ok(())
            }
            Ok(None) => {
                table.del(&ns, &name);
                Ok(())
            }
            Err(e) => {
                // An unreadable update must not leave the old version's evidence behind.
                table.del(&ns, &name);
                Err(e)
            }
        }
    }
    fn delete(&mut self, obj: K) {
        let (ns, name) = key(&obj);
        if self.marks {
            self.state.mark_dirty(Some(&ns));
        }
        (self.select)(&self.state).del(&ns, &name);
    }
}

// ---- the watch loop -----------------------------------------------------------------------

/// Watch a built-in kind (always installed).
fn typed<K, T>(
    ctx: &Ctx,
    kind: &'static str,
    select: Select<T>,
    convert: fn(&K) -> Result<Option<T>, String>,
) -> tokio::task::JoinHandle<()>
where
    K: Resource<DynamicType = ()>
        + ResourceExt
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    T: Send + 'static,
{
    ctx.readiness.register(component(kind));
    let api = Api::<K>::all(ctx.client.clone());
    let mut sink = TableSink::new(ctx.state.clone(), select, convert);
    sink.marks = kind != "Pod";
    tokio::spawn(run(ctx.clone(), api, kind, sink))
}

/// Drive one watcher forever: events into the sink, errors logged, counted and retried with
/// backoff; the kind's readiness component turns ready at its first complete list.
pub(super) async fn run<K, S>(ctx: Ctx, api: Api<K>, kind: &'static str, mut sink: S)
where
    K: Resource + ResourceExt + Clone + DeserializeOwned + Debug + Send + 'static,
    S: Sink<K>,
{
    let name = component(kind);
    let stream = watcher::watcher(api, sink.config()).backoff(WatchBackoff::new());
    futures::pin_mut!(stream);
    let mut synced = false;
    while let Some(event) = stream.next().await {
        // Working again once the stream delivers current state: a change, or the end of a
        // relist (not its start: until InitDone the cache still holds the old list).
        if matches!(
            event,
            Ok(Event::InitDone | Event::Apply(_) | Event::Delete(_))
        ) {
            ctx.readiness.clear_failing(&name);
        }
        let skipped = match event {
            Ok(Event::Init) => {
                sink.init();
                None
            }
            Ok(Event::InitApply(o)) => {
                let k = key(&o);
                sink.init_apply(o).err().map(|e| (k, e))
            }
            Ok(Event::InitDone) => {
                sink.init_done();
                if !synced {
                    synced = true;
                    ctx.readiness.set_ready(&name);
                    tracing::info!(kind, "watch cache synced");
                }
                None
            }
            Ok(Event::Apply(o)) => {
                let k = key(&o);
                sink.apply(o).err().map(|e| (k, e))
            }
            Ok(Event::Delete(o)) => {
                sink.delete(o);
                None
            }
            Err(e) => {
                ctx.metrics.watch_error(kind);
                if is_not_served(&e) {
                    ctx.readiness.clear_failing(&name);
                } else {
                    ctx.readiness.set_failing(&name, &watch_error_reason(&e));
                }
                tracing::warn!(kind, error = %e, "watch failed; retrying with backoff");
                None
            }
        };
        if let Some(((namespace, obj_name), error)) = skipped {
            ctx.metrics.watch_skip(kind);
            tracing::warn!(kind, namespace, name = obj_name, error = %redact(&error), "object skipped: could not be read");
        }
    }
}

/// Watch a custom resource whose CRD may be absent: poll discovery until it is served, then
/// run the watcher. Readiness waits for the first discovery answer, and for the first list
/// only if the CRD exists.
pub(super) fn optional<F, Fut>(
    ctx: &Ctx,
    gvk: GroupVersionKind,
    start: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Ctx, ApiResource) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let kind = gvk.kind.clone();
    optional_as(ctx, &kind, gvk, start)
}

/// [`optional`] with the readiness component named `watch/<label>` (for kinds whose name two
/// API groups share, e.g. Istio's and Linkerd's AuthorizationPolicy).
fn optional_as<F, Fut>(
    ctx: &Ctx,
    label: &str,
    gvk: GroupVersionKind,
    start: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Ctx, ApiResource) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let name = component(label);
    ctx.readiness.register(name.clone());
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let api_version = format!("{}/{}", gvk.group, gvk.version);
        let mut reported_absent = false;
        loop {
            match ctx.client.list_api_group_resources(&api_version).await {
                Ok(list) => {
                    if let Some(r) = list
                        .resources
                        .iter()
                        .find(|r| r.kind == gvk.kind && !r.name.contains('/'))
                    {
                        tracing::info!(kind = %gvk.kind, %api_version, "CRD found; starting its watch");
                        let ar = ApiResource::from_gvk_with_plural(&gvk, &r.name);
                        start(ctx.clone(), ar).await;
                        return;
                    }
                    absent(&ctx, &gvk, &name, &mut reported_absent);
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    absent(&ctx, &gvk, &name, &mut reported_absent);
                }
                Err(e) => {
                    ctx.metrics.watch_error(&gvk.kind);
                    tracing::warn!(kind = %gvk.kind, error = %e, "discovery failed; retrying");
                }
            }
            tokio::time::sleep(CRD_POLL_INTERVAL).await;
        }
    })
}

fn absent(ctx: &Ctx, gvk: &GroupVersionKind, name: &str, reported: &mut bool) {
    if !*reported {
        *reported = true;
        tracing::info!(
            kind = %gvk.kind,
            api_version = %format!("{}/{}", gvk.group, gvk.version),
            "CRD not installed; checking again every 30 s"
        );
    }
    ctx.readiness.set_ready(name);
}

#[cfg(test)]
mod tests {
    use super::policies::*;
    use super::*;
    use crate::view::objects::PodInfo;

    #[test]
    fn table_sink_relists_and_applies() {
        let state = Arc::new(ClusterState::new());
        let mut sink = TableSink::new(
            state.clone(),
            |s: &ClusterState| &s.pods as &dyn Table<PodInfo>,
            |p: &WatchedPod| Ok(p.info()),
        );
        let pod = |name: &str, phase: Option<&str>| -> WatchedPod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "labels": {"app": name},
                             "annotations": {"secret": "x", "sidecar.istio.io/status": "{}"}},
                "spec": {"containers": [{"name": "c"}]},
                "status": {"phase": phase}
            }))
            .unwrap()
        };
        state
            .pods
            .insert("ns".into(), "stale".into(), PodInfo::default());
        sink.init();
        sink.init_apply(pod("a", Some("Running"))).unwrap();
        sink.init_apply(pod("done", Some("Succeeded"))).unwrap();
        assert!(
            state.pods.get("ns", "stale").is_some(),
            "old state served until InitDone"
        );
        sink.init_done();
        assert!(state.pods.get("ns", "stale").is_none());
        assert!(
            state.pods.get("ns", "done").is_none(),
            "finished pods are not kept"
        );
        let a = state.pods.get("ns", "a").unwrap();
        assert_eq!(a.container_names, vec!["c".to_string()]);
        assert!(
            !a.annotations.contains_key("secret"),
            "only mesh annotations are kept"
        );
        sink.apply(pod("b", None)).unwrap();
        assert_eq!(state.pods.len(), 2);
        sink.apply(pod("b", Some("Failed"))).unwrap();
        sink.delete(pod("a", None));
        assert_eq!(state.pods.len(), 0);
    }

    #[tokio::test]
    async fn status_writes_leave_the_policy_set_in_force() {
        // The audit re-judges everything when the set in force is replaced; phi-guard's own
        // status writes must not replace it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Nothing listens there: the condition writes this test provokes fail in the background.
        let cfg = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(cfg).unwrap();
        let state = Arc::new(ClusterState::new());
        let ctx = Ctx {
            client,
            state: state.clone(),
            metrics: Arc::new(Metrics::new()),
            readiness: Readiness::new(),
        };
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("phiguard.io", "v1alpha1", "PhiPolicy"),
            "phipolicies",
        );
        let mut sink = PolicySink::new(ctx, ar);
        let policy = |generation: i64, status: Value, mode: &str| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "phiguard.io/v1alpha1", "kind": "PhiPolicy",
                "metadata": {"name": "p", "generation": generation},
                "spec": {"mode": mode, "scope": {"workloadSelector": {"matchLabels": {"phi": "true"}}}},
                "status": status,
            }))
            .unwrap()
        };
        let ready = Condition::accepted()
            .patch(None, Some(1))
            .get("status")
            .cloned()
            .unwrap();
        sink.init();
        sink.init_apply(policy(1, ready.clone(), "Warn")).unwrap();
        sink.init_done();
        let first = state.policies();
        assert_eq!(first.policies.len(), 1);
        // The audit's counts and a re-sent condition: the same set.
        let mut with_counts = ready.clone();
        with_counts["audit"] =
            json!({"judged": 3, "violating": 1, "lastAuditTime": "2026-12-06T10:00:00Z"});
        sink.apply(policy(1, with_counts.clone(), "Warn")).unwrap();
        sink.apply(policy(1, ready, "Warn")).unwrap();
        assert!(
            Arc::ptr_eq(&first, &state.policies()),
            "a status write replaced the set"
        );
        // A change of the spec does replace it.
        sink.apply(policy(2, with_counts, "Enforce")).unwrap();
        assert!(!Arc::ptr_eq(&first, &state.policies()));
        assert_eq!(
            state.policies().policies[0].mode,
            crate::policy::Mode::Enforce
        );
    }

    #[test]
    fn changed_names_are_the_added_edited_and_removed() {
        let spec = |mode: &str| -> Result<crate::policy::PhiPolicySpec, String> {
            serde_json::from_value(json!({"mode": mode})).map_err(|e| e.to_string())
        };
        let before = vec![
            ("a".to_string(), spec("Warn")),
            ("b".to_string(), spec("Warn")),
            ("c".to_string(), Err("bad".to_string())),
        ];
        let after = vec![
            ("a".to_string(), spec("Warn")),
            ("b".to_string(), spec("Enforce")),
            ("d".to_string(), spec("Audit")),
        ];
        assert_eq!(changed_names(&before, &after), vec!["b", "c", "d"]);
        assert!(changed_names(&after, &after).is_empty());
        assert_eq!(changed_names(&[], &after), vec!["a", "b", "d"]);
    }

    #[test]
    fn condition_patch_and_match() {
        let c = Condition::rejected("PhiPolicy \"x\": spec.scope: bad");
        let p = c.patch(None, Some(3));
        let st = &p["status"];
        assert_eq!(st["observedGeneration"], 3);
        assert_eq!(st["conditions"][0]["status"], "False");
        assert_eq!(st["conditions"][0]["reason"], "Invalid");
        assert!(c.matches(Some(st), Some(3)));
        assert!(!c.matches(Some(st), Some(4)));
        assert!(!Condition::accepted().matches(Some(st), Some(3)));
        // The transition time is kept while the status value holds.
        let again = c.patch(Some(st), Some(4));
        assert_eq!(
            again["status"]["conditions"][0]["lastTransitionTime"],
            st["conditions"][0]["lastTransitionTime"]
        );
    }
}
