//! What the audit judges: every object of a judged kind, as the webhook would decode it, kept
//! while this replica leads. Objects a controller owns (a Deployment's ReplicaSets, their Pods,
//! a CronJob's Jobs) are left out: their controller's result speaks for them.
//!
//! Lean, and one copy: each object is decoded straight from the watch stream into what rules
//! read ([`Audited`], the webhook's own decoder; no JSON tree, no `managedFields`), and the kinds
//! the webhook's caches already hold (PersistentVolumeClaims, Services) are not watched again:
//! they are judged from those caches ([`SHARED`]), a change there marking its namespace for the
//! audit as any change of cluster state does.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer};

use crate::cluster::ClusterState;
use crate::object::{Body, ClaimSpec, Kind, Object};
use crate::telemetry::{redact, Metrics};

use crate::cluster::backoff::WatchBackoff;
/// The kinds the audit judges (the registry's judged kinds), with their API group, version and
/// plural.
pub(crate) use crate::cluster::namespace_objects::judged_resources as audited;

/// (namespace, kind, name)
pub(crate) type Key = (String, Kind, String);

/// Judged kinds the webhook's caches hold: judged from there, never watched twice.
pub(crate) const SHARED: [Kind; 2] = [Kind::PersistentVolumeClaim, Kind::Service];

/// The audited objects, and which changed since the audit last looked.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    /// The webhook's caches (the [`SHARED`] kinds).
    shared: Arc<ClusterState>,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<Key, Arc<Object>>,
    changed: BTreeSet<Key>,
    synced: BTreeSet<Kind>,
}

impl Store {
    pub(crate) fn new(shared: Arc<ClusterState>) -> Self {
        Store {
            inner: Mutex::default(),
            shared,
        }
    }

    fn put(&self, key: Key, o: Option<Object>) {
        let mut s = self.inner.lock();
        match o {
            Some(o) => {
                if s.objects.get(&key).map(|a| &**a) != Some(&o) {
                    s.objects.insert(key.clone(), Arc::new(o));
                    s.changed.insert(key);
                }
            }
            None => {
                if s.objects.remove(&key).is_some() {
                    s.changed.insert(key);
                }
            }
        }
    }

    fn reset(&self, kind: Kind, items: Vec<(Key, Object)>) {
        let mut s = self.inner.lock();
        let old: Vec<Key> = s.objects.keys().filter(|k| k.1 == kind).cloned().collect();
        for k in old {
            s.objects.remove(&k);
            s.changed.insert(k);
        }
        for (k, o) in items {
            s.objects.insert(k.clone(), Arc::new(o));
            s.changed.insert(k);
        }
        s.synced.insert(kind);
    }

    fn is_synced(&self, kind: Kind) -> bool {
        self.inner.lock().synced.contains(&kind)
    }

    /// Every watched kind has listed once (the shared ones are the webhook's, synced before
    /// the audit starts: it waits for readiness).
    pub(crate) fn synced(&self) -> bool {
        let watched = audited()
            .iter()
            .filter(|(k, ..)| !SHARED.contains(k))
            .count();
        self.inner.lock().synced.len() == watched
    }

    /// The objects changed since the last call (of the watched kinds; the shared ones mark
    /// their namespace in the cluster state instead).
    pub(crate) fn take_changed(&self) -> BTreeSet<Key> {
        std::mem::take(&mut self.inner.lock().changed)
    }

    /// The keys of the objects of these namespaces (all with `None`).
    pub(crate) fn keys(&self, namespaces: Option<&BTreeSet<String>>) -> Vec<Key> {
        let wanted = |ns: &str| namespaces.is_none_or(|set| set.contains(ns));
        let mut out: Vec<Key> = {
            let s = self.inner.lock();
            s.objects.keys().filter(|k| wanted(&k.0)).cloned().collect()
        };
        self.shared.pvcs.for_each(|ns, name, p| {
            if !p.owned && wanted(ns) {
                out.push((
                    ns.to_string(),
                    Kind::PersistentVolumeClaim,
                    name.to_string(),
                ));
            }
        });
        self.shared.services.for_each(|ns, name, svc| {
            if judged_service(svc) && wanted(ns) {
                out.push((ns.to_string(), Kind::Service, name.to_string()));
            }
        });
        out
    }

    /// How many objects are audited.
    pub(crate) fn len(&self) -> usize {
        let mut n = self.inner.lock().objects.len();
        self.shared
            .pvcs
            .for_each(|_, _, p| n += usize::from(!p.owned));
        self.shared
            .services
            .for_each(|_, _, s| n += usize::from(judged_service(s)));
        n
    }

    /// The object to judge: from the audit's own watches, or built from the webhook's cache
    /// for the shared kinds (only while judging it).
    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Object>> {
        let (ns, kind, name) = key;
        match kind {
            Kind::PersistentVolumeClaim => {
                let p = self.shared.pvcs.get(ns, name).filter(|p| !p.owned)?;
                Some(Arc::new(Object {
                    kind: *kind,
                    name: p.name.clone(),
                    namespace: p.namespace.clone(),
                    labels: p.labels.clone(),
                    annotations: p.annotations.clone(),
                    deleting: false,
                    uid: p.uid.clone(),
                    controller: None,
                    body: Body::PersistentVolumeClaim(ClaimSpec {
                        storage_class_name: p.storage_class_name.clone(),
                        volume_name: p.volume_name.clone(),
                    }),
                }))
            }
            Kind::Service => {
                let svc = self.shared.services.get(ns, name)?;
                let id = svc.identity.as_deref().filter(|i| !i.owned)?;
                Some(Arc::new(Object {
                    kind: *kind,
                    name: svc.name.clone(),
                    namespace: svc.namespace.clone(),
                    labels: id.labels.clone(),
                    annotations: id.annotations.clone(),
                    deleting: false,
                    uid: id.uid.clone(),
                    controller: None,
                    body: Body::Service(crate::view::ServiceInfo {
                        identity: None,
                        ..(*svc).clone()
                    }),
                }))
            }
            _ => self.inner.lock().objects.get(key).cloned(),
        }
    }
}

/// A cached Service the audit judges: one the watch filled in (with its identity) that no
/// controller owns.
fn judged_service(s: &crate::view::ServiceInfo) -> bool {
    s.identity.as_deref().is_some_and(|i| !i.owned)
}

/// An audited object as the watch stream delivers it, decoded at once into what the rules read
/// (`Object::from_json`, the webhook's decoder) with the metadata the watcher needs; `object` is
/// `Err` for one that could not be read (skipped and counted, the watch goes on). `K` is the
/// kind's index in [`Kind::ALL`].
#[derive(Debug, Clone)]
pub(crate) struct Audited<const K: usize> {
    meta: ObjectMeta,
    object: Result<Object, String>,
}

/// The metadata the watcher resumes from and the key is made of.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    metadata: HeadMeta,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeadMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
}

impl<'de, const K: usize> Deserialize<'de> for Audited<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // The object's text, copied once (watch events name their type before the object, so
        // it is read straight from the stream), then read twice: its metadata, and the object
        // as the webhook reads it. An object the second read refuses is one the audit skips;
        // only text that is not JSON fails the stream.
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        let head: Head = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        let kind = Kind::ALL
            .get(K)
            .copied()
            .ok_or_else(|| D::Error::custom("unknown kind"))?;
        // Kept for as long as the object exists: without the spare capacity decoding left.
        let object = Object::from_json(kind, raw.get(), None)
            .map(|mut o| {
                o.shrink_to_fit();
                o
            })
            .map_err(|e| e.message);
        Ok(Audited {
            meta: ObjectMeta {
                name: head.metadata.name,
                namespace: head.metadata.namespace,
                resource_version: head.metadata.resource_version,
                ..ObjectMeta::default()
            },
            object,
        })
    }
}

impl<const K: usize> kube::Resource for Audited<K> {
    type DynamicType = ApiResource;
    type Scope = kube::core::DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

impl<const K: usize> Audited<K> {
    fn key(&self, kind: Kind) -> Key {
        (
            self.meta.namespace.clone().unwrap_or_default(),
            kind,
            self.meta.name.clone().unwrap_or_default(),
        )
    }

    /// What the store keeps: `Ok(None)` for objects left out (owned ones).
    fn into_kept(self, kind: Kind) -> (Key, Result<Option<Object>, String>) {
        let key = self.key(kind);
        let kept = self.object.map(|o| o.controller.is_none().then_some(o));
        (key, kept)
    }
}

/// Watch every audited kind but the [`SHARED`] ones into `store` until the returned tasks are
/// aborted.
pub(crate) fn spawn(
    client: Client,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
) -> Vec<tokio::task::JoinHandle<()>> {
    audited()
        .into_iter()
        .filter(|(kind, ..)| !SHARED.contains(kind))
        .filter_map(|(kind, group, version, plural)| {
            let spec = crate::kinds::find(group, kind.as_str());
            let optional = spec.is_some_and(|k| k.optional_crd);
            let versions: Vec<&'static str> = match spec {
                Some(k) => k.versions().collect(),
                None => vec![version],
            };
            let w = Watch {
                client: client.clone(),
                store: store.clone(),
                metrics: metrics.clone(),
                kind,
                group,
                plural,
                versions,
                optional,
            };
            let index = Kind::ALL.iter().position(|k| *k == kind)?;
            // One decoder per kind: the kind is a type parameter of what the watcher decodes.
            macro_rules! by_index {
                ($($n:literal)*) => {
                    match index {
                        $($n => Some(tokio::spawn(w.run::<$n>())),)*
                        _ => None,
                    }
                };
            }
            by_index!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17)
        })
        .collect()
}

/// How long a kind served at none of its versions waits before trying the next.
const VERSION_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// One kind's watch.
struct Watch {
    client: Client,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    kind: Kind,
    group: &'static str,
    plural: &'static str,
    /// The versions the kind may be served at (the registry's, preferred first).
    versions: Vec<&'static str>,
    optional: bool,
}

impl Watch {
    /// Watch the kind; a CRD served at none of its versions is watched at each in turn, so the
    /// one served once it is installed is found (an older release may serve only
    /// `also_versions`).
    async fn run<const K: usize>(self) {
        let switch = self.optional && self.versions.len() > 1;
        for version in self.versions.iter().copied().cycle() {
            let ar = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(self.group, version, self.kind.as_str()),
                self.plural,
            );
            self.watch_version::<K>(ar, switch).await;
            tokio::time::sleep(VERSION_RETRY).await;
        }
    }

    /// Watch one version. Returns only when it is not served and `switch` says another version
    /// may be (the caller tries the next); otherwise watches forever.
    async fn watch_version<const K: usize>(&self, ar: ApiResource, switch: bool) {
        let Watch {
            client,
            store,
            metrics,
            kind,
            group,
            optional,
            ..
        } = self;
        let (kind, group, optional) = (*kind, *group, *optional);
        let api: Api<Audited<K>> = Api::all_with(client.clone(), &ar);
        let stream = watcher::watcher(api, watcher::Config::default()).backoff(WatchBackoff::new());
        futures::pin_mut!(stream);
        let mut buffer = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => buffer.clear(),
                Ok(Event::InitApply(o)) => match o.into_kept(kind) {
                    (k, Ok(Some(obj))) => buffer.push((k, obj)),
                    (_, Ok(None)) => {}
                    (k, Err(e)) => skipped(metrics, &k, &e),
                },
                Ok(Event::InitDone) => store.reset(kind, std::mem::take(&mut buffer)),
                Ok(Event::Apply(o)) => match o.into_kept(kind) {
                    (k, Ok(kept)) => store.put(k, kept),
                    (k, Err(e)) => {
                        store.put(k.clone(), None);
                        skipped(metrics, &k, &e);
                    }
                },
                Ok(Event::Delete(o)) => store.put(o.key(kind), None),
                // An optional CRD that is not installed has no objects: the audit does not
                // wait for it (the watch keeps retrying and lists once it is served).
                Err(e) if optional && crd_absent(&e) => {
                    if !store.is_synced(kind) {
                        tracing::info!(
                            kind = kind.as_str(),
                            group,
                            "CRD not installed; audited as empty until it is"
                        );
                        store.reset(kind, Vec::new());
                    }
                    if switch {
                        return;
                    }
                }
                Err(e) => {
                    metrics.watch_error(kind.as_str());
                    tracing::warn!(kind = kind.as_str(), error = %e, "audit watch failed; retrying with backoff");
                }
            }
        }
    }
}

/// The API server does not serve the resource (its CRD is not installed).
fn crd_absent(e: &watcher::Error) -> bool {
    matches!(
        e,
        watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 404
    )
}

fn skipped(metrics: &Metrics, (namespace, kind, name): &Key, error: &str) {
    metrics.watch_skip(kind.as_str());
    tracing::warn!(
        kind = kind.as_str(),
        namespace,
        name,
        error = %redact(error),
        "audit: object skipped, could not be read"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::{ObjectList, WatchEvent};
    use serde_json::json;

    const DEPLOYMENT: usize = 1;

    fn deployment(name: &str, owned: bool) -> serde_json::Value {
        let mut meta = json!({
            "name": name, "namespace": "clinic", "uid": format!("u-{name}"),
            "resourceVersion": "7",
            "labels": {"phiguard.io/data-classification": "phi"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        });
        if owned {
            meta["ownerReferences"] = json!([{"apiVersion": "x/v1", "kind": "X", "name": "x",
                                              "uid": "o", "controller": true}]);
        }
        json!({"metadata": meta, "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "registry.example.com/app:1",
             "ports": [{"name": "https", "containerPort": 8443}]}]}}}})
    }

    #[test]
    fn audited_objects_decode_as_the_webhook_reads_them() {
        assert_eq!(Kind::ALL[DEPLOYMENT], Kind::Deployment);
        let list = json!({"metadata": {"resourceVersion": "9"}, "items": [
            deployment("a", false),
            deployment("b", true),
            // Not a Deployment as the webhook reads one: skipped, the rest still listed.
            {"metadata": {"name": "c", "namespace": "clinic"}, "spec": {"template": {"spec": {"containers": 3}}}},
        ]});
        let list: ObjectList<Audited<DEPLOYMENT>> =
            serde_json::from_str(&list.to_string()).unwrap();
        let mut kept: Vec<_> = list
            .items
            .into_iter()
            .map(|o| o.into_kept(Kind::Deployment))
            .collect();
        let (key, c) = kept.pop().unwrap();
        assert_eq!(key, ("clinic".into(), Kind::Deployment, "c".into()));
        assert!(c.is_err());
        let (_, b) = kept.pop().unwrap();
        assert_eq!(b, Ok(None), "an owned object is left to its owner");
        let (key, a) = kept.pop().unwrap();
        let a = a.unwrap().unwrap();
        let v = deployment("a", false);
        assert_eq!(a, Object::from_value(Kind::Deployment, &v, None).unwrap());
        assert_eq!((key.2.as_str(), a.uid.as_str()), ("a", "u-a"));
        // Kept without spare capacity (a one-container list grows to four as it is decoded).
        let Body::Pods(p) = &a.body else {
            panic!("not a pod template")
        };
        assert!(!p.spec.containers.is_empty());
        assert_eq!(p.spec.containers.capacity(), p.spec.containers.len());
        assert_eq!(p.spec.containers[0].ports.len(), 1);
        assert_eq!(p.spec.containers[0].ports.capacity(), 1);

        // A watch event as the API server writes it (its type first): the resourceVersion the
        // watcher resumes from is read.
        let ev = format!(
            r#"{{"type":"MODIFIED","object":{}}}"#,
            deployment("a", false)
        );
        let ev: WatchEvent<Audited<DEPLOYMENT>> = serde_json::from_str(&ev).unwrap();
        let WatchEvent::Modified(o) = ev else {
            panic!("not a modification")
        };
        assert_eq!(o.meta.resource_version.as_deref(), Some("7"));
        assert!(o.object.is_ok());
    }

    #[test]
    fn shared_kinds_are_judged_from_the_webhook_cache() {
        use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
        let state = Arc::new(ClusterState::new());
        let pvc = |name: &str, owned: bool| -> PersistentVolumeClaim {
            let mut v = json!({"metadata": {"name": name, "namespace": "clinic", "uid": format!("u-{name}"),
                                            "labels": {"phiguard.io/data-classification": "phi"}},
                               "spec": {"storageClassName": "fast"}});
            if owned {
                v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                                           "name": "s", "uid": "s", "controller": true}]);
            }
            serde_json::from_value(v).unwrap()
        };
        for (name, owned) in [("data", false), ("owned", true)] {
            state.pvcs.insert(
                "clinic".into(),
                name.into(),
                crate::view::PvcInfo::from(&pvc(name, owned)),
            );
        }
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "api", "namespace": "other", "uid": "u-api", "labels": {"app": "api"}},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}}))
        .unwrap();
        state.services.insert(
            "other".into(),
            "api".into(),
            crate::view::ServiceInfo::from(&svc),
        );
        let store = Store::new(state.clone());
        let mut keys = store.keys(None);
        keys.sort();
        assert_eq!(
            keys,
            vec![
                ("clinic".into(), Kind::PersistentVolumeClaim, "data".into()),
                ("other".into(), Kind::Service, "api".into()),
            ]
        );
        assert_eq!(store.len(), 2);
        assert_eq!(
            store.keys(Some(&BTreeSet::from(["other".to_string()]))),
            vec![("other".into(), Kind::Service, "api".into())]
        );
        // The object judged is the one the webhook would decode, but for annotations rules do
        // not read.
        let data = store.get(&keys[0]).unwrap();
        let decoded = Object::from_value(
            Kind::PersistentVolumeClaim,
            &serde_json::to_value(pvc("data", false)).unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(*data, decoded);
        let api = store.get(&keys[1]).unwrap();
        let decoded =
            Object::from_value(Kind::Service, &serde_json::to_value(&svc).unwrap(), None).unwrap();
        assert_eq!(*api, decoded);
        assert!(store
            .get(&("clinic".into(), Kind::PersistentVolumeClaim, "owned".into()))
            .is_none());
    }
}
