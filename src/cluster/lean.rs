//! Lean watch types: kinds with heavy churn decoded straight from the watch stream into the few
//! fields phi-guard keeps, instead of through the full k8s-openapi type.
//!
//! Pods are the busiest watch in any cluster (every rollout, every Job), and a full `Pod` decode
//! builds the whole spec, status and `managedFields` only to keep a name, labels and container
//! names. [`WatchedPod`] reads just those (and the `resourceVersion` the watcher resumes from);
//! everything else is skipped by the JSON scanner without allocating.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::object::null_default;
use crate::selector::Labels;
use crate::view::objects::{is_kept_annotation, PodInfo};

/// A Pod as phi-guard's watch reads it.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct WatchedPod {
    #[serde(default, deserialize_with = "lean_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<WatchedPodSpec>,
    #[serde(default)]
    pub status: Option<WatchedPodStatus>,
}

/// The container names of a Pod's spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WatchedPodSpec {
    #[serde(default, deserialize_with = "null_default")]
    pub containers: Vec<NameOnly>,
    #[serde(default, deserialize_with = "null_default")]
    pub init_containers: Vec<NameOnly>,
    /// Volumes, for the TLS material they mount (names and sources only).
    #[serde(default, deserialize_with = "null_default")]
    pub volumes: Vec<crate::object::Volume>,
    #[serde(default, deserialize_with = "null_default")]
    pub host_network: bool,
}

/// A container, by name, with the volumes it mounts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NameOnly {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub volume_mounts: Vec<crate::object::pod::VolumeMount>,
}

/// A Pod's phase.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct WatchedPodStatus {
    #[serde(default)]
    pub phase: Option<String>,
}

impl kube::Resource for WatchedPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl WatchedPod {
    /// What the cache keeps; `None` for Pods that finished (Succeeded, Failed): they run
    /// nothing and need no isolation.
    pub(crate) fn info(&self) -> Option<PodInfo> {
        let phase = self.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return None;
        }
        let m = &self.metadata;
        let (mounted_secrets, cert_manager_csi) = self
            .spec
            .as_ref()
            .map(|s| {
                crate::object::pod::mounted_tls_material(&s.volumes, |name| {
                    s.containers
                        .iter()
                        .chain(&s.init_containers)
                        .any(|c| c.volume_mounts.iter().any(|v| v.name == name))
                })
            })
            .unwrap_or_default();
        Some(PodInfo {
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            labels: Labels::from(m.labels.as_ref()),
            annotations: Labels::from(m.annotations.as_ref()),
            container_names: self
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().chain(&s.init_containers))
                .map(|c| c.name.clone())
                .collect(),
            host_network: self.spec.as_ref().is_some_and(|s| s.host_network),
            mounted_secrets,
            cert_manager_csi,
        })
    }
}

/// `metadata` with only name, namespace, labels, the annotations rules read (others are
/// skipped unread: their values may hold anything), uid and resourceVersion.
fn lean_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Lean {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
        #[serde(default)]
        annotations: Option<KeptAnnotations>,
        #[serde(default)]
        uid: Option<String>,
        #[serde(default)]
        resource_version: Option<String>,
    }
    let l = Option::<Lean>::deserialize(d)?;
    Ok(l.map(|l| ObjectMeta {
        name: l.name,
        namespace: l.namespace,
        labels: l.labels,
        annotations: l.annotations.map(|a| a.0),
        uid: l.uid,
        resource_version: l.resource_version,
        ..ObjectMeta::default()
    })
    .unwrap_or_default())
}

/// Annotations, keeping only the keys rules read.
struct KeptAnnotations(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for KeptAnnotations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeptAnnotations;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kept = BTreeMap::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if is_kept_annotation(&key) {
                        kept.insert(key.into_owned(), map.next_value::<String>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(KeptAnnotations(kept))
            }
        }
        d.deserialize_map(V)
    }
}

/// A map key, borrowed from the input when it has no escapes (no allocation for keys skipped).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod_json() -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "clinic", "uid": "u-1", "resourceVersion": "42",
                "labels": {"app": "web"},
                "annotations": {"sidecar.istio.io/status": "{}", "kubectl.kubernetes.io/last-applied-configuration": "{\"secret\":1}"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "r"}]
            },
            "spec": {
                "initContainers": [{"name": "istio-init", "image": "x"}],
                "containers": [{"name": "app", "image": "x", "env": [{"name": "A", "value": "s"}]},
                               {"name": "istio-proxy", "image": "y"}],
                "volumes": [{"name": "v", "emptyDir": {}}]
            },
            "status": {"phase": "Running", "podIP": "10.0.0.1"}
        })
    }

    #[test]
    fn watched_pod_keeps_what_the_full_pod_gives() {
        let lean: WatchedPod = serde_json::from_value(pod_json()).unwrap();
        let full: Pod = serde_json::from_value(pod_json()).unwrap();
        assert_eq!(lean.info(), Some(PodInfo::from(&full)));
        assert_eq!(lean.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(lean.metadata.uid.as_deref(), Some("u-1"));
        let info = lean.info().unwrap();
        assert_eq!(
            info.container_names,
            vec!["app", "istio-proxy", "istio-init"]
        );
        assert_eq!(
            lean.metadata
                .annotations
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["sidecar.istio.io/status"],
            "annotations rules do not read are not kept"
        );
    }

    #[test]
    fn finished_and_sparse_pods() {
        let mut v = pod_json();
        v["status"]["phase"] = json!("Succeeded");
        let lean: WatchedPod = serde_json::from_value(v).unwrap();
        assert_eq!(lean.info(), None);
        let bare: WatchedPod = serde_json::from_value(
            json!({"metadata": {"name": "p", "labels": null, "annotations": null}, "spec": {"containers": null}}),
        )
        .unwrap();
        let info = bare.info().unwrap();
        assert_eq!(info.name, "p");
        assert!(info.labels.is_empty() && info.container_names.is_empty());
        assert!(serde_json::from_value::<WatchedPod>(json!({"metadata": {"labels": 3}})).is_err());
    }
}
