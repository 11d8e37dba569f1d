//! Consistent reads of the controllers a child names as its owner (`engine::owners` verifies
//! them): the owner, and the controller that owner names in turn (a Pod's ReplicaSet and its
//! Deployment), so one confirmation settles the whole chain. Only on the deny path.

use std::sync::Arc;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::Client;

use crate::view::OwnerInfo;

/// (namespace, kind, name)
pub(crate) type OwnerKey = (String, String, String);

/// A pod controller kind of the registry by its name (`ReplicaSet`, `Deployment` ...), or
/// CloudNativePG's `Cluster`, whose instance Pods are credited with its TLS
/// (`engine::operator_made`; the other operators' resources carry no pod template to verify a
/// child against and make no Pods directly).
fn spec_of(kind: &str) -> Option<&'static crate::kinds::KindSpec> {
    crate::kinds::judged().find(|k| {
        k.kind == kind
            && k.kind != "Pod"
            && crate::object::Kind::from_group_kind(k.group, k.kind)
                .is_some_and(|x| x.has_pods() || x == crate::object::Kind::CnpgCluster)
    })
}

/// Read one owner; `Ok(None)` when it does not exist or is not a pod controller.
async fn read_one(client: &Client, key: &OwnerKey) -> Result<Option<OwnerInfo>, kube::Error> {
    let (namespace, kind, name) = key;
    let Some(spec) = spec_of(kind) else {
        return Ok(None);
    };
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(spec.group, spec.version, spec.kind),
        spec.plural,
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let Some(mut o) = api.get_opt(name).await? else {
        return Ok(None);
    };
    o.metadata.managed_fields = None;
    let uid = o.metadata.uid.clone().unwrap_or_default();
    let Ok(mut value) = serde_json::to_value(&o) else {
        return Ok(None);
    };
    value["apiVersion"] = spec.api_version().into();
    value["kind"] = spec.kind.into();
    Ok(Some(OwnerInfo {
        kind: kind.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
        uid,
        value: Arc::new(value),
    }))
}

/// The controller an owner names in turn, if it is a pod controller.
fn next(info: &OwnerInfo) -> Option<OwnerKey> {
    let refs = info
        .value
        .get("metadata")?
        .get("ownerReferences")?
        .as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(|c| c.as_bool()) == Some(true))?;
    let kind = r.get("kind")?.as_str()?;
    let name = r.get("name")?.as_str()?;
    spec_of(kind)?;
    Some((info.namespace.clone(), kind.to_string(), name.to_string()))
}

/// Read an owner and the owner above it (two levels: Pod -> ReplicaSet -> Deployment).
pub(crate) async fn read_chain(
    client: Client,
    key: OwnerKey,
) -> Result<Vec<(OwnerKey, Option<Arc<OwnerInfo>>)>, (String, kube::Error)> {
    let mut out = Vec::new();
    let mut key = Some(key);
    for _ in 0..2 {
        let Some(k) = key.take() else { break };
        let what = format!("{} {}/{}", k.1, k.0, k.2);
        let info = read_one(&client, &k).await.map_err(|e| (what, e))?;
        key = info.as_ref().and_then(next);
        out.push((k, info.map(Arc::new)));
    }
    Ok(out)
}

/// The pod a controller's template will make, for a selector that names its pods by the labels
/// controllers add (`policy::scope::pods_selected`); named `kind/name` as files name templates.
pub(crate) async fn read_template_pod(
    client: &Client,
    key: &OwnerKey,
) -> Result<Option<crate::view::PodInfo>, (String, kube::Error)> {
    let what = format!("{} {}/{}", key.1, key.0, key.2);
    let Some(info) = read_one(client, key).await.map_err(|e| (what, e))? else {
        return Ok(None);
    };
    let Some(kind) =
        crate::object::Kind::from_group_kind(spec_of(&key.1).map_or("", |s| s.group), &key.1)
    else {
        return Ok(None);
    };
    let pod = crate::object::Object::from_value(kind, &info.value, Some(&key.0))
        .ok()
        .and_then(|o| o.template_pod(format!("{}/{}", key.1.to_ascii_lowercase(), key.2)));
    Ok(pod)
}
