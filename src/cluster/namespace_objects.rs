//! The objects of the judged kinds in one namespace, read whole with consistent LISTs: what the
//! audit judges there (objects a controller owns are left out, their controller speaks for
//! them). The watch caches keep only lean views, so judging a namespace's workloads under new
//! labels reads them; only when a Namespace UPDATE labels it into PHI scope.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::try_join_all;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Client;

use crate::object::Kind;
use crate::view::RawObject;

/// The judged kinds phi-guard reads whole (the registry's judged kinds, `crate::kinds`), with
/// their API group, version and plural (the audit's watches and a namespace's objects alike):
/// pod controllers first, then Pods, then the rest, so answers name owners before what they
/// own.
pub(crate) fn judged_resources() -> Vec<(Kind, &'static str, &'static str, &'static str)> {
    let mut out: Vec<_> = crate::kinds::judged()
        .filter_map(|k| {
            Kind::from_group_kind(k.group, k.kind).map(|kind| (kind, k.group, k.version, k.plural))
        })
        .collect();
    out.sort_by_key(|(kind, ..)| match kind {
        Kind::Pod => 1,
        k if k.has_pods() => 0,
        _ => 2,
    });
    out
}

/// Does a controller own this object (its results belong to the controller)?
pub(crate) fn owned_by_controller(o: &DynamicObject) -> bool {
    o.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true))
}

/// Every object of [`judged_resources`] in `namespace` that no controller owns, sorted by kind
/// (in the table's order) and name, each with the number of Pods it runs (followed down the
/// controller chain: Deployment, ReplicaSet, Pod). One LIST per kind, all at once.
pub(crate) async fn read(
    client: &Client,
    namespace: &str,
) -> Result<Vec<Arc<RawObject>>, kube::Error> {
    let lists = judged_resources()
        .into_iter()
        .map(|(kind, group, version, plural)| {
            let spec = crate::kinds::find(group, kind.as_str());
            let optional = spec.is_some_and(|k| k.optional_crd);
            let versions: Vec<&'static str> = match spec {
                Some(k) => k.versions().collect(),
                None => vec![version],
            };
            async move {
                let mut items = Vec::new();
                for version in versions {
                    let ar = ApiResource::from_gvk_with_plural(
                        &GroupVersionKind::gvk(group, version, kind.as_str()),
                        plural,
                    );
                    let api: Api<DynamicObject> =
                        Api::namespaced_with(client.clone(), namespace, &ar);
                    match api.list(&ListParams::default()).await {
                        Ok(list) => {
                            items = list.items;
                            break;
                        }
                        // A CRD that is not installed, or not at this version: the next
                        // version it may be served as, else no such objects.
                        Err(kube::Error::Api(s)) if optional && s.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok::<_, kube::Error>((kind, group, items))
            }
        });
    let lists = try_join_all(lists).await?;
    let pods = pods_per_controller(&lists);
    let mut out = Vec::new();
    for (kind, group, items) in &lists {
        let mut kept: Vec<Arc<RawObject>> = items
            .iter()
            .filter(|o| !owned_by_controller(o))
            .filter_map(|o| {
                let json = serde_json::to_value(o).ok()?;
                let uid = o.metadata.uid.as_deref().unwrap_or_default();
                Some(Arc::new(RawObject {
                    group: (*group).to_string(),
                    kind: kind.as_str().to_string(),
                    json,
                    pods: pods.get(uid).copied().unwrap_or(0),
                }))
            })
            .collect();
        kept.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        out.extend(kept);
    }
    Ok(out)
}

/// The uid of the controller that owns an object, if any.
fn controller_uid(o: &DynamicObject) -> Option<&str> {
    o.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// Pods per top-level controller uid: each Pod counted for the controller at the top of its
/// chain of controller owners (a few steps at most: CronJob, Job, Pod).
fn pods_per_controller(lists: &[(Kind, &str, Vec<DynamicObject>)]) -> HashMap<String, usize> {
    let owner: HashMap<&str, &str> = lists
        .iter()
        .flat_map(|(_, _, items)| items.iter())
        .filter_map(|o| Some((o.metadata.uid.as_deref()?, controller_uid(o)?)))
        .collect();
    let mut out: HashMap<String, usize> = HashMap::new();
    for (_, _, items) in lists.iter().filter(|(k, _, _)| *k == Kind::Pod) {
        for pod in items {
            let Some(mut top) = controller_uid(pod) else {
                continue;
            };
            for _ in 0..4 {
                match owner.get(top) {
                    Some(up) => top = up,
                    None => break,
                }
            }
            *out.entry(top.to_string()).or_default() += 1;
        }
    }
    out
}
fn name_of(o: &RawObject) -> &str {
    o.json
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}
