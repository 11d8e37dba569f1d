//! What the audit judges: every object of a judged kind, as the webhook would decode it, kept
//! while this replica leads. Objects a controller owns (a Deployment's ReplicaSets, their Pods,
//! a CronJob's Jobs) are left out: their controller's result speaks for them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use parking_lot::Mutex;

use crate::object::{Kind, Object};
use crate::telemetry::{redact, Metrics};

use crate::cluster::backoff::WatchBackoff;
/// The kinds the audit judges (the registry's judged kinds), with their API group, version and
/// plural.
pub(crate) use crate::cluster::namespace_objects::judged_resources as audited;
use crate::cluster::namespace_objects::owned_by_controller;

/// (namespace, kind, name)
pub(crate) type Key = (String, Kind, String);

/// The audited objects, and which changed since the audit last looked.
#[derive(Default)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<Key, Arc<Object>>,
    changed: BTreeSet<Key>,
    synced: BTreeSet<Kind>,
}

impl Store {
    fn put(&self, key: Key, o: Option<Object>) {
        let mut s = self.inner.lock();
        match o {
            Some(o) => {
                let o = Arc::new(o);
                if s.objects.get(&key) != Some(&o) {
                    s.objects.insert(key.clone(), o);
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

    /// Every kind has listed once.
    pub(crate) fn synced(&self) -> bool {
        self.inner.lock().synced.len() == audited().len()
    }

    /// The objects changed since the last call.
    pub(crate) fn take_changed(&self) -> BTreeSet<Key> {
        std::mem::take(&mut self.inner.lock().changed)
    }

    /// The objects of these namespaces (all with `None`).
    pub(crate) fn objects(&self, namespaces: Option<&BTreeSet<String>>) -> Vec<(Key, Arc<Object>)> {
        let s = self.inner.lock();
        match namespaces {
            None => s
                .objects
                .iter()
                .map(|(k, o)| (k.clone(), o.clone()))
                .collect(),
            Some(set) => s
                .objects
                .iter()
                .filter(|(k, _)| set.contains(&k.0))
                .map(|(k, o)| (k.clone(), o.clone()))
                .collect(),
        }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Object>> {
        self.inner.lock().objects.get(key).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.lock().objects.len()
    }
}

/// Decode as the webhook does; `None` for objects left out (owned ones).
fn decode(kind: Kind, o: &DynamicObject) -> Result<Option<(Key, Object)>, String> {
    if owned_by_controller(o) {
        return Ok(None);
    }
    let ns = o.namespace().unwrap_or_default();
    let name = o.name_any();
    let v = serde_json::to_value(o).map_err(|e| e.to_string())?;
    let obj = Object::from_value(kind, &v, Some(&ns)).map_err(|e| e.message)?;
    Ok(Some(((ns, kind, name), obj)))
}

/// Watch every audited kind into `store` until the returned tasks are aborted.
pub(crate) fn spawn(
    client: Client,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
) -> Vec<tokio::task::JoinHandle<()>> {
    audited()
        .into_iter()
        .map(|(kind, group, version, plural)| {
            let spec = crate::kinds::find(group, kind.as_str());
            let optional = spec.is_some_and(|k| k.optional_crd);
            let versions: Vec<&'static str> = match spec {
                Some(k) => k.versions().collect(),
                None => vec![version],
            };
            let client = client.clone();
            let store = store.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                // A CRD served at none of its versions is watched at each in turn: the one
                // served once it is installed (an older release may serve only `also_versions`).
                for version in versions.iter().copied().cycle() {
                    let ar = ApiResource::from_gvk_with_plural(
                        &GroupVersionKind::gvk(group, version, kind.as_str()),
                        plural,
                    );
                    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
                    watch_version(
                        api,
                        kind,
                        group,
                        optional && versions.len() > 1,
                        optional,
                        &store,
                        &metrics,
                    )
                    .await;
                    tokio::time::sleep(VERSION_RETRY).await;
                }
            })
        })
        .collect()
}

/// How long a kind served at none of its versions waits before trying the next.
const VERSION_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Watch one version of a kind into `store`. Returns only when the version is not served and
/// `switch` says another version may be (the caller tries the next); otherwise watches forever.
async fn watch_version(
    api: Api<DynamicObject>,
    kind: Kind,
    group: &'static str,
    switch: bool,
    optional: bool,
    store: &Store,
    metrics: &Metrics,
) {
    let stream = watcher::watcher(api, watcher::Config::default()).backoff(WatchBackoff::new());
    futures::pin_mut!(stream);
    let mut buffer = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => buffer.clear(),
            Ok(Event::InitApply(o)) => match decode(kind, &o) {
                Ok(Some(item)) => buffer.push(item),
                Ok(None) => {}
                Err(e) => skipped(metrics, kind, &o, &e),
            },
            Ok(Event::InitDone) => store.reset(kind, std::mem::take(&mut buffer)),
            Ok(Event::Apply(o)) => {
                let key = (o.namespace().unwrap_or_default(), kind, o.name_any());
                match decode(kind, &o) {
                    Ok(Some((k, obj))) => store.put(k, Some(obj)),
                    Ok(None) => store.put(key, None),
                    Err(e) => {
                        store.put(key, None);
                        skipped(metrics, kind, &o, &e);
                    }
                }
            }
            Ok(Event::Delete(o)) => {
                store.put(
                    (o.namespace().unwrap_or_default(), kind, o.name_any()),
                    None,
                );
            }
            // An optional CRD that is not installed has no objects: the audit does not wait
            // for it (the watch keeps retrying and lists once it is served).
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

/// The API server does not serve the resource (its CRD is not installed).
fn crd_absent(e: &watcher::Error) -> bool {
    matches!(
        e,
        watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 404
    )
}

fn skipped(metrics: &Metrics, kind: Kind, o: &DynamicObject, error: &str) {
    metrics.watch_skip(kind.as_str());
    tracing::warn!(
        kind = kind.as_str(),
        namespace = o.namespace().unwrap_or_default(),
        name = o.name_any(),
        error = %redact(error),
        "audit: object skipped, could not be read"
    );
}
