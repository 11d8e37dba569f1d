//! The lean views of cluster objects that rules read. Watch caches and files both convert into
//! these, keeping only what rules need (memory stays small at 10k objects per kind), and never
//! any Secret data.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolume, PersistentVolumeClaim, Pod, Service,
};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::Deserialize;

use crate::selector::Labels;

/// The annotation that marks the default StorageClass.
pub(crate) const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// Annotation keys (prefixes) whose values rules read; other annotations are not kept.
const KEPT_ANNOTATION_PREFIXES: [&str; 10] = [
    "linkerd.io/",
    "config.linkerd.io/",
    "sidecar.istio.io/",
    "traffic.sidecar.istio.io/",
    "px/",
    "istio.io/",
    "ambient.istio.io/",
    "consul.hashicorp.com/",
    "kuma.io/",
    "csi.vsphere.",
];

/// Is this an annotation rules read?
pub(crate) fn is_kept_annotation(key: &str) -> bool {
    KEPT_ANNOTATION_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Keep only annotations rules read.
pub(crate) fn kept_annotations<'a>(
    all: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Labels {
    all.into_iter()
        .filter(|(k, _)| is_kept_annotation(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An object of a judged kind as the API server returned it, for judging whole: the caches keep
/// pods lean (no spec), so judging what runs in a namespace reads its objects when asked.
#[derive(Debug, Clone, PartialEq)]
pub struct RawObject {
    /// API group (`""` for the core group) and kind, e.g. `apps` / `Deployment`.
    pub group: String,
    pub kind: String,
    pub json: serde_json::Value,
    /// Pods it runs (those its controller chain owns); 0 for a Pod and for kinds without pods.
    pub pods: usize,
}

/// A Namespace's labels and kept annotations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
}

impl From<&Namespace> for NamespaceInfo {
    fn from(ns: &Namespace) -> Self {
        NamespaceInfo {
            name: ns.metadata.name.clone().unwrap_or_default(),
            labels: Labels::from(ns.metadata.labels.as_ref()),
            annotations: kept_annotations(ns.metadata.annotations.iter().flatten()),
        }
    }
}

/// A StorageClass: provisioner, parameters (as written) and whether it is the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageClassInfo {
    pub name: String,
    pub provisioner: String,
    /// Parameters exactly as written: some drivers read keys case-insensitively (EBS, GCE PD,
    /// Azure Disk, OpenEBS ZFS), others only in the exact spelling (Ceph CSI, Longhorn,
    /// Portworx), so the rule, not the view, decides how to look a key up.
    pub parameters: BTreeMap<String, String>,
    pub is_default: bool,
    /// RFC 3339 creation time, to pick the newest default like the API server does.
    pub created: String,
}

impl StorageClassInfo {
    /// A parameter by case-insensitive key (the exact spelling first).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.parameters
            .get(key)
            .or_else(|| {
                self.parameters
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }
}

impl From<&StorageClass> for StorageClassInfo {
    fn from(sc: &StorageClass) -> Self {
        StorageClassInfo {
            name: sc.metadata.name.clone().unwrap_or_default(),
            provisioner: sc.provisioner.clone(),
            parameters: sc.parameters.clone().unwrap_or_default(),
            is_default: sc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|v| v == "true"),
            created: sc
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
        }
    }
}

/// A PersistentVolumeClaim's storage binding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PvcInfo {
    pub namespace: String,
    pub name: String,
    /// `None`: unset (default class); `Some("")`: static binding.
    pub storage_class_name: Option<String>,
    pub volume_name: Option<String>,
    pub annotations: Labels,
    pub labels: Labels,
    /// `metadata.uid`, and whether a controller owns the claim: the audit judges claims from
    /// this cache (no second copy), naming each by uid and leaving owned ones to their owner.
    pub uid: String,
    pub owned: bool,
}

impl From<&PersistentVolumeClaim> for PvcInfo {
    fn from(pvc: &PersistentVolumeClaim) -> Self {
        let spec = pvc.spec.as_ref();
        PvcInfo {
            namespace: pvc.metadata.namespace.clone().unwrap_or_default(),
            name: pvc.metadata.name.clone().unwrap_or_default(),
            storage_class_name: spec.and_then(|s| s.storage_class_name.clone()),
            volume_name: spec
                .and_then(|s| s.volume_name.clone())
                .filter(|v| !v.is_empty()),
            annotations: kept_annotations(pvc.metadata.annotations.iter().flatten()),
            labels: Labels::from(pvc.metadata.labels.as_ref()),
            uid: pvc.metadata.uid.clone().unwrap_or_default(),
            owned: controlled(&pvc.metadata),
        }
    }
}

/// A PersistentVolume's backing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PvInfo {
    pub name: String,
    pub storage_class_name: Option<String>,
    /// The CSI driver, when CSI-backed.
    pub csi_driver: Option<String>,
    /// CSI volume attributes, exactly as written (see [`StorageClassInfo::parameters`]).
    pub csi_attributes: BTreeMap<String, String>,
    /// The in-tree volume type field name when not CSI (e.g. `hostPath`, `nfs`, `local`).
    pub source_type: Option<String>,
}

impl From<&PersistentVolume> for PvInfo {
    fn from(pv: &PersistentVolume) -> Self {
        let spec = pv.spec.as_ref();
        let csi = spec.and_then(|s| s.csi.as_ref());
        let source_type = spec.and_then(|s| {
            let v = serde_json::to_value(s).ok()?;
            let obj = v.as_object()?;
            const NOT_SOURCES: [&str; 8] = [
                "accessModes",
                "capacity",
                "claimRef",
                "mountOptions",
                "nodeAffinity",
                "persistentVolumeReclaimPolicy",
                "storageClassName",
                "volumeMode",
            ];
            obj.keys()
                .find(|k| {
                    !NOT_SOURCES.contains(&k.as_str()) && k.as_str() != "volumeAttributesClassName"
                })
                .cloned()
        });
        PvInfo {
            name: pv.metadata.name.clone().unwrap_or_default(),
            storage_class_name: spec.and_then(|s| s.storage_class_name.clone()),
            csi_driver: csi.map(|c| c.driver.clone()),
            csi_attributes: csi
                .and_then(|c| c.volume_attributes.as_ref())
                .cloned()
                .unwrap_or_default(),
            source_type,
        }
    }
}

/// Istio mutual TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum MtlsMode {
    #[default]
    Unset,
    Disable,
    Permissive,
    Strict,
}

/// An Istio `security.istio.io` PeerAuthentication.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerAuthInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.selector.matchLabels`; `None` means namespace-wide (or mesh-wide in the root namespace).
    pub selector: Option<Labels>,
    pub mode: MtlsMode,
    /// `spec.portLevelMtls`: container port number -> mode.
    pub port_level: BTreeMap<u32, MtlsMode>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PeerAuthSpecWire {
    #[serde(default)]
    selector: Option<MatchLabelsWire>,
    #[serde(default)]
    mtls: Option<MtlsWire>,
    #[serde(default)]
    port_level_mtls: Option<BTreeMap<String, MtlsWire>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MatchLabelsWire {
    #[serde(default)]
    match_labels: Option<Labels>,
}

#[derive(Deserialize, Default)]
struct MtlsWire {
    #[serde(default)]
    mode: Option<MtlsMode>,
}

#[derive(Deserialize, Default)]
struct MetaWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct CustomWire<S> {
    #[serde(default)]
    metadata: Option<MetaWire>,
    #[serde(default)]
    spec: Option<S>,
}

/// A custom object could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {namespace}/{name}: {message}")]
pub struct ObjectError {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub message: String,
}

impl PeerAuthInfo {
    /// From a PeerAuthentication as JSON (watch event or file).
    pub fn from_value(v: &serde_json::Value) -> Result<Self, ObjectError> {
        let w: CustomWire<PeerAuthSpecWire> =
            serde_json::from_value(v.clone()).map_err(|e| ObjectError {
                kind: "PeerAuthentication",
                namespace: meta_str(v, "namespace"),
                name: meta_str(v, "name"),
                message: e.to_string(),
            })?;
        let meta = w.metadata.unwrap_or_default();
        let spec = w.spec.unwrap_or_default();
        let mut port_level = BTreeMap::new();
        for (port, m) in spec.port_level_mtls.unwrap_or_default() {
            let Ok(p) = port.parse::<u32>() else {
                return Err(ObjectError {
                    kind: "PeerAuthentication",
                    namespace: meta.namespace.unwrap_or_default(),
                    name: meta.name.unwrap_or_default(),
                    message: "spec.portLevelMtls: keys must be port numbers".into(),
                });
            };
            port_level.insert(p, m.mode.unwrap_or_default());
        }
        Ok(PeerAuthInfo {
            namespace: meta.namespace.unwrap_or_default(),
            name: meta.name.unwrap_or_default(),
            selector: spec
                .selector
                .and_then(|s| s.match_labels)
                .filter(|l| !l.is_empty()),
            mode: spec.mtls.and_then(|m| m.mode).unwrap_or_default(),
            port_level,
        })
    }
}

fn meta_str(v: &serde_json::Value, key: &str) -> String {
    v.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_string()
}

/// A cert-manager Certificate: which Secret it issues.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CertificateInfo {
    pub namespace: String,
    pub name: String,
    pub secret_name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CertificateSpecWire {
    #[serde(default)]
    secret_name: Option<String>,
}

impl CertificateInfo {
    /// From a Certificate as JSON (watch event or file).
    pub fn from_value(v: &serde_json::Value) -> Result<Self, ObjectError> {
        let w: CustomWire<CertificateSpecWire> =
            serde_json::from_value(v.clone()).map_err(|e| ObjectError {
                kind: "Certificate",
                namespace: meta_str(v, "namespace"),
                name: meta_str(v, "name"),
                message: e.to_string(),
            })?;
        let meta = w.metadata.unwrap_or_default();
        Ok(CertificateInfo {
            namespace: meta.namespace.unwrap_or_default(),
            name: meta.name.unwrap_or_default(),
            secret_name: w.spec.and_then(|s| s.secret_name).unwrap_or_default(),
        })
    }
}

/// A Pod (or, in offline checks, a pod template) reduced to what selection and mesh checks need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    /// Kept annotations (mesh-related only).
    pub annotations: Labels,
    /// Names of containers and init containers (mesh proxies show up here).
    pub container_names: Vec<String>,
    /// `hostNetwork: true`: no mesh injects or captures it.
    pub host_network: bool,
    /// Secrets mounted from `secret` or `projected` volumes (TLS material when cert-manager
    /// issues them); names only, never data.
    pub mounted_secrets: Vec<String>,
    /// A `csi.cert-manager.io` volume, or a projected `podCertificate`, is mounted (TLS
    /// material without a Secret).
    pub cert_manager_csi: bool,
}

impl From<&Pod> for PodInfo {
    fn from(p: &Pod) -> Self {
        let spec = p.spec.as_ref();
        let tls = pod_tls_material(spec);
        PodInfo {
            namespace: p.metadata.namespace.clone().unwrap_or_default(),
            name: p.metadata.name.clone().unwrap_or_default(),
            labels: Labels::from(p.metadata.labels.as_ref()),
            annotations: kept_annotations(p.metadata.annotations.iter().flatten()),
            container_names: spec
                .into_iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .map(|c| c.name.clone())
                .collect(),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            mounted_secrets: tls.0,
            cert_manager_csi: tls.1,
        }
    }
}

/// The Secrets of mounted secret/projected volumes and whether a cert-manager CSI volume is
/// mounted (see `object::pod::mounted_tls_material`, the same for decoded pod specs).
fn pod_tls_material(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> (Vec<String>, bool) {
    let mut secrets = Vec::new();
    let mut csi = false;
    let Some(spec) = spec else {
        return (secrets, csi);
    };
    let mounted = |name: &str| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.volume_mounts.iter().flatten().any(|m| m.name == name))
    };
    for v in spec.volumes.iter().flatten().filter(|v| mounted(&v.name)) {
        if v.csi
            .as_ref()
            .is_some_and(|c| c.driver == "csi.cert-manager.io")
        {
            csi = true;
        }
        // A Kubernetes Pod Certificate counts as cert-manager's csi volume does.
        if v.projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
            .any(|s| s.pod_certificate.is_some())
        {
            csi = true;
        }
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.push(name);
        }
        for p in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(s) = &p.secret {
                secrets.push(s.name.clone());
            }
        }
    }
    (secrets, csi)
}

/// A Service: selector and ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    /// `None`: no selector (endpoints managed by hand).
    pub selector: Option<Labels>,
    pub ports: Vec<ServicePortInfo>,
    /// Filled by the watch cache, from which the audit judges Services (no second copy);
    /// `None` in the body of an admitted Service, whose object holds these. Boxed: every
    /// decoded object's body is as large as its largest variant.
    pub identity: Option<Box<Identity>>,
}

/// What judging a cached object needs beyond what rules read of it as cluster state: its own
/// labels, the annotations rules read, `metadata.uid`, and whether a controller owns it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub labels: Labels,
    pub annotations: Labels,
    pub uid: String,
    pub owned: bool,
}

/// One Service port.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServicePortInfo {
    pub name: Option<String>,
    pub port: i32,
    pub app_protocol: Option<String>,
}

impl From<&Service> for ServiceInfo {
    fn from(s: &Service) -> Self {
        let spec = s.spec.as_ref();
        ServiceInfo {
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            name: s.metadata.name.clone().unwrap_or_default(),
            selector: spec
                .and_then(|s| s.selector.as_ref())
                .filter(|l| !l.is_empty())
                .map(Labels::from),
            ports: spec
                .and_then(|s| s.ports.as_ref())
                .into_iter()
                .flatten()
                .map(|p| ServicePortInfo {
                    name: p.name.clone(),
                    port: p.port,
                    app_protocol: p.app_protocol.clone(),
                })
                .collect(),
            identity: Some(Box::new(Identity {
                labels: Labels::from(s.metadata.labels.as_ref()),
                annotations: kept_annotations(s.metadata.annotations.iter().flatten()),
                uid: s.metadata.uid.clone().unwrap_or_default(),
                owned: controlled(&s.metadata),
            })),
        }
    }
}

/// Does a controller own the object (an `ownerReferences` entry with `controller: true`)?
fn controlled(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    m.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true))
}
