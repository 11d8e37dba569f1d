//! The parts of a pod spec that rules read, decoded directly from the request body (no full
//! k8s-openapi decode on the request path: fields rules never read are skipped).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::null_default;
use crate::selector::Labels;

/// Object metadata: name, namespace, labels, annotations. Everything else is skipped.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub generate_name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: Labels,
    /// Values are read by rules (e.g. `linkerd.io/inject`) but never logged or echoed.
    /// kubectl's [`LAST_APPLIED`] copy of the object is not kept.
    #[serde(default, deserialize_with = "annotations")]
    pub annotations: Labels,
    /// Set once deletion has begun (finalizers still to run).
    #[serde(default)]
    pub deletion_timestamp: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub owner_references: Vec<OwnerRef>,
}

/// One `metadata.ownerReferences` entry. Anyone who can write the object can write one, so it
/// proves nothing until the owner it names is read and checked (`engine::owners`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRef {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

/// The annotation `kubectl apply` (client side) writes on every object it applies: the whole
/// object again, as JSON in a string (escaped, often the largest field of a review). No rule
/// reads it, so it is checked to be a string, as every annotation value is, and not kept.
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `metadata.annotations` (`null` as none) without [`LAST_APPLIED`]: its value is read in place
/// (serde_json borrows a string without escapes and unescapes others into its scratch buffer),
/// never copied into the map.
fn annotations<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Labels;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of strings to strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Labels, E> {
            Ok(Labels::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Labels, E> {
            Ok(Labels::new())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Labels, D2::Error> {
            d.deserialize_map(Entries)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
            while let Some(key) = map.next_key::<String>()? {
                if key == LAST_APPLIED {
                    map.next_value::<AnyString>()?;
                } else {
                    entries.push((key, map.next_value::<String>()?));
                }
            }
            Ok(entries.into_iter().collect())
        }
    }
    d.deserialize_option(Entries)
}

/// A string value, read and not kept.
struct AnyString;

impl<'de> Deserialize<'de> for AnyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AnyString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyString, E> {
                Ok(AnyString)
            }
        }
        d.deserialize_str(V)
    }
}

impl Meta {
    /// The name, or `generateName` for objects the API server will name (e.g. ReplicaSet pods).
    pub fn display_name(&self) -> String {
        match (&self.name, &self.generate_name) {
            (Some(n), _) if !n.is_empty() => n.clone(),
            (_, Some(g)) if !g.is_empty() => g.clone(),
            _ => String::new(),
        }
    }
}

/// A pod spec, reduced.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default, deserialize_with = "null_default")]
    pub containers: Vec<Container>,
    #[serde(default, deserialize_with = "null_default")]
    pub init_containers: Vec<Container>,
    #[serde(default, deserialize_with = "null_default")]
    pub volumes: Vec<Volume>,
    /// `hostNetwork: true`: the pod shares the node's network namespace.
    #[serde(default, deserialize_with = "null_default")]
    pub host_network: bool,
    /// Debug containers added through the `ephemeralcontainers` subresource.
    #[serde(default, deserialize_with = "null_default")]
    pub ephemeral_containers: Vec<Container>,
    #[serde(default, rename = "hostPID", deserialize_with = "null_default")]
    pub host_pid: bool,
    #[serde(default, rename = "hostIPC", deserialize_with = "null_default")]
    pub host_ipc: bool,
    /// Pod-level security settings (inherited by containers where Pod Security says so).
    #[serde(default)]
    pub security_context: Option<super::security::PodSecurityContext>,
    #[serde(default)]
    pub service_account_name: Option<String>,
    /// The deprecated alias of `serviceAccountName`.
    #[serde(default)]
    pub service_account: Option<String>,
    /// `None`: the ServiceAccount's setting decides (Kubernetes' default: mounted).
    #[serde(default)]
    pub automount_service_account_token: Option<bool>,
    /// `spec.os.name`: Pod Security exempts `windows` pods from Linux-only checks.
    #[serde(default)]
    pub os: Option<super::security::PodOs>,
}

impl PodSpec {
    /// Drop the spare capacity decoding leaves (a `Vec` grows to four elements for its first):
    /// for specs kept a long time, as in the audit's store of every workload, where a
    /// one-container Deployment's spec was ~1.6 KB, three quarters of it unused.
    pub fn shrink_to_fit(&mut self) {
        for list in [
            &mut self.containers,
            &mut self.init_containers,
            &mut self.ephemeral_containers,
        ] {
            for c in list.iter_mut() {
                c.ports.shrink_to_fit();
                c.volume_mounts.shrink_to_fit();
                c.env.shrink_to_fit();
                c.command.shrink_to_fit();
                c.args.shrink_to_fit();
            }
            list.shrink_to_fit();
        }
        self.volumes.shrink_to_fit();
    }
}

/// A container, reduced.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    /// `Always` on an init container makes it a native sidecar.
    #[serde(default)]
    pub restart_policy: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<ContainerPort>,
    #[serde(default, deserialize_with = "null_default")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    pub security_context: Option<super::security::ContainerSecurityContext>,
    /// Settings in `env` literals, `command` and `args` that switch TLS off (only the matches
    /// are kept, never a value).
    #[serde(default, deserialize_with = "super::tls_off::env")]
    pub env: Vec<super::tls_off::TlsOff>,
    #[serde(default, deserialize_with = "super::tls_off::command")]
    pub command: Vec<super::tls_off::TlsOff>,
    #[serde(default, deserialize_with = "super::tls_off::args")]
    pub args: Vec<super::tls_off::TlsOff>,
}

impl Container {
    /// Every TLS-off setting of this container.
    pub fn tls_off(&self) -> impl Iterator<Item = &super::tls_off::TlsOff> {
        self.env.iter().chain(&self.command).chain(&self.args)
    }

    /// Is this (init) container a native sidecar (`restartPolicy: Always`)?
    pub fn is_native_sidecar(&self) -> bool {
        self.restart_policy.as_deref() == Some("Always")
    }
}

/// A container port.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub container_port: i32,
    /// Exposed on the node's address at this port.
    #[serde(default)]
    pub host_port: Option<i32>,
}

/// A volume mount.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
}

/// A persistent volume claim spec, reduced to its storage binding.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    /// `None`: unset (the default class); `Some("")`: static binding to a PV.
    #[serde(default)]
    pub storage_class_name: Option<String>,
    #[serde(default)]
    pub volume_name: Option<String>,
}

/// A claim template (StatefulSet `volumeClaimTemplates[]` or ephemeral `volumeClaimTemplate`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClaimTemplate {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: ClaimSpec,
}

/// A pod volume: its name and the source type rules care about.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

/// The source of a pod volume.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeSource {
    PersistentVolumeClaim {
        claim_name: String,
    },
    Ephemeral {
        template: Option<ClaimTemplate>,
    },
    EmptyDir {
        memory: bool,
    },
    Csi {
        driver: String,
    },
    Secret {
        secret_name: String,
    },
    /// A Secret mounted with `items` that leave out every private key (`tls.key`, keystores):
    /// a CA bundle or a certificate, never a server's TLS material.
    SecretWithoutKey {
        secret_name: String,
    },
    /// Projected volume; the Secrets it projects, and whether it projects a Kubernetes Pod
    /// Certificate (`podCertificate`, beta in 1.35: a kubelet-issued key and certificate chain).
    Projected {
        secret_names: Vec<String>,
        pod_certificate: bool,
    },
    ConfigMap,
    DownwardApi,
    /// Any other type, by its pod spec field name (`hostPath`, `nfs`, ...).
    Other(String),
    /// No source given (the API server defaults this to emptyDir).
    Missing,
}

impl VolumeSource {
    /// The pod spec field name of this volume type.
    pub fn type_name(&self) -> &str {
        match self {
            VolumeSource::PersistentVolumeClaim { .. } => "persistentVolumeClaim",
            VolumeSource::Ephemeral { .. } => "ephemeral",
            VolumeSource::EmptyDir { .. } | VolumeSource::Missing => "emptyDir",
            VolumeSource::Csi { .. } => "csi",
            VolumeSource::Secret { .. } | VolumeSource::SecretWithoutKey { .. } => "secret",
            VolumeSource::Projected { .. } => "projected",
            VolumeSource::ConfigMap => "configMap",
            VolumeSource::DownwardApi => "downwardAPI",
            VolumeSource::Other(t) => t,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PvcSourceWire {
    #[serde(default)]
    claim_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EphemeralWire {
    #[serde(default)]
    volume_claim_template: Option<ClaimTemplate>,
}

#[derive(Deserialize)]
struct EmptyDirWire {
    #[serde(default)]
    medium: Option<String>,
}

#[derive(Deserialize)]
struct CsiWire {
    #[serde(default)]
    driver: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretWire {
    #[serde(default)]
    secret_name: String,
    #[serde(default)]
    items: Option<Vec<KeyWire>>,
}

/// One `items` entry of a Secret volume or projection (only its key is read).
#[derive(Deserialize)]
struct KeyWire {
    #[serde(default)]
    key: String,
}

/// Secret keys that hold a private key (cert-manager's `tls.key` and its keystores): without
/// one a mounted Secret is a CA bundle or a certificate, not what a server needs to serve TLS.
const PRIVATE_KEY_ITEMS: [&str; 3] = ["tls.key", "keystore.jks", "keystore.p12"];

/// Does a Secret mounted with these `items` (all keys when `None`) reach the container with a
/// private key?
fn carries_private_key(items: Option<&[KeyWire]>) -> bool {
    items.is_none_or(|items| {
        items
            .iter()
            .any(|i| PRIVATE_KEY_ITEMS.contains(&i.key.as_str()))
    })
}

#[derive(Deserialize)]
struct ProjectedWire {
    #[serde(default, deserialize_with = "null_default")]
    sources: Vec<ProjectionWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectionWire {
    #[serde(default)]
    secret: Option<SecretProjectionWire>,
    #[serde(default)]
    pod_certificate: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct SecretProjectionWire {
    #[serde(default)]
    name: String,
    #[serde(default)]
    items: Option<Vec<KeyWire>>,
}

impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Volume;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a pod volume")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Volume, A::Error> {
                let mut name = None;
                let mut source = VolumeSource::Missing;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let s = match key.as_ref() {
                        "name" => {
                            name = Some(map.next_value::<String>()?);
                            continue;
                        }
                        "persistentVolumeClaim" => {
                            let w: PvcSourceWire = map.next_value()?;
                            VolumeSource::PersistentVolumeClaim {
                                claim_name: w.claim_name,
                            }
                        }
                        "ephemeral" => {
                            let w: EphemeralWire = map.next_value()?;
                            VolumeSource::Ephemeral {
                                template: w.volume_claim_template,
                            }
                        }
                        "emptyDir" => {
                            let w: Option<EmptyDirWire> = map.next_value()?;
                            VolumeSource::EmptyDir {
                                memory: w.and_then(|w| w.medium).is_some_and(|m| m == "Memory"),
                            }
                        }
                        "csi" => {
                            let w: CsiWire = map.next_value()?;
                            VolumeSource::Csi { driver: w.driver }
                        }
                        "secret" => {
                            let w: SecretWire = map.next_value()?;
                            if carries_private_key(w.items.as_deref()) {
                                VolumeSource::Secret {
                                    secret_name: w.secret_name,
                                }
                            } else {
                                VolumeSource::SecretWithoutKey {
                                    secret_name: w.secret_name,
                                }
                            }
                        }
                        "projected" => {
                            let w: ProjectedWire = map.next_value()?;
                            let pod_certificate =
                                w.sources.iter().any(|s| s.pod_certificate.is_some());
                            VolumeSource::Projected {
                                // A projection that leaves out the private key is not TLS
                                // material.
                                secret_names: w
                                    .sources
                                    .into_iter()
                                    .filter_map(|s| s.secret)
                                    .filter(|s| carries_private_key(s.items.as_deref()))
                                    .map(|s| s.name)
                                    .collect(),
                                pod_certificate,
                            }
                        }
                        "configMap" => {
                            map.next_value::<IgnoredAny>()?;
                            VolumeSource::ConfigMap
                        }
                        "downwardAPI" => {
                            map.next_value::<IgnoredAny>()?;
                            VolumeSource::DownwardApi
                        }
                        other => {
                            let v: IgnoredAny = map.next_value()?;
                            let _ = v;
                            VolumeSource::Other(other.to_string())
                        }
                    };
                    // A volume with several sources is invalid for the API server; keep the
                    // least provable one so phi-guard never under-reports.
                    if matches!(source, VolumeSource::Missing)
                        || matches!(s, VolumeSource::Other(_))
                    {
                        source = s;
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
                Ok(Volume { name, source })
            }
        }
        d.deserialize_map(V)
    }
}

/// TLS material a pod mounts: the Secrets of mounted `secret` and `projected` volumes (whether
/// cert-manager issues them is decided later, against the cluster), and whether a mounted
/// `csi.cert-manager.io` volume or a projected `podCertificate` (key and certificate issued
/// to the pod without a Secret) is present. Secret data is never read.
pub(crate) fn mounted_tls_material(
    volumes: &[Volume],
    mounted: impl Fn(&str) -> bool,
) -> (Vec<String>, bool) {
    let mut secrets = Vec::new();
    let mut cert_manager_csi = false;
    for v in volumes.iter().filter(|v| mounted(&v.name)) {
        match &v.source {
            VolumeSource::Csi { driver } if driver == "csi.cert-manager.io" => {
                cert_manager_csi = true
            }
            VolumeSource::Secret { secret_name } => secrets.push(secret_name.clone()),
            VolumeSource::Projected {
                secret_names,
                pod_certificate,
            } => {
                cert_manager_csi |= *pod_certificate;
                secrets.extend(secret_names.iter().cloned())
            }
            _ => {}
        }
    }
    (secrets, cert_manager_csi)
}

impl PodSpec {
    /// Volumes mounted into a container that serves: app containers and native sidecars (an
    /// init container that runs to completion serves nothing).
    pub fn serving_mounts(&self) -> std::collections::HashSet<&str> {
        self.containers
            .iter()
            .chain(
                self.init_containers
                    .iter()
                    .filter(|c| c.is_native_sidecar()),
            )
            .flat_map(|c| c.volume_mounts.iter().map(|m| m.name.as_str()))
            .collect()
    }

    /// [`mounted_tls_material`] of the volumes mounted into serving containers.
    pub fn tls_material(&self) -> (Vec<String>, bool) {
        let mounted = self.serving_mounts();
        mounted_tls_material(&self.volumes, |name| mounted.contains(name))
    }
}

/// Pod template metadata and spec.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct PodTemplate {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: PodSpec,
}
