//! The `encryption-at-rest` rule (45 CFR 164.312(a)(2)(iv)): every volume of a PHI workload must
//! be provably encrypted. Claims are followed PVC -> StorageClass (or bound PV) -> provisioner
//! parameters with per-driver knowledge; inline volume types outside the allowed set and inline
//! CSI drivers outside the allowlist are violations; on-disk emptyDir is reported separately.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use crate::object::{Body, ClaimSpec, Object, Volume, VolumeSource};
use crate::policy::{AtRestConfig, Mode};
use crate::rules::RuleContext;
use crate::selector::Labels;
use crate::verdict::{Finding, RuleId};
use crate::view::StorageClassInfo;

/// Every encryption-at-rest finding for the workload.
pub fn check(w: &Object, ctx: &RuleContext, cfg: &AtRestConfig) -> Vec<Finding> {
    let judge = Judge {
        ctx,
        cfg,
        namespace: &w.namespace,
        available: OnceCell::new(),
    };
    let mut out = Vec::new();
    match &w.body {
        Body::Pods(p) => {
            for (i, v) in p.spec.volumes.iter().enumerate() {
                let path = format!("{}.volumes[{i}]", p.spec_path);
                judge.volume(v, &path, &mut out);
            }
            for (i, t) in p.claim_templates.iter().enumerate() {
                let subject = format!("volumeClaimTemplate {:?}", t.metadata.display_name());
                if let Some(pr) = judge.claim(&subject, &t.spec, &t.metadata.annotations) {
                    out.push(pr.finding(cfg.mode, format!("spec.volumeClaimTemplates[{i}]")));
                }
            }
        }
        Body::PersistentVolumeClaim(spec) => {
            let subject = format!("PersistentVolumeClaim {:?}", w.name);
            if let Some(pr) = judge.claim(&subject, spec, &w.annotations) {
                out.push(pr.finding(cfg.mode, "spec.storageClassName"));
            }
        }
        _ => {}
    }
    out
}

/// A problem before it gets its path and mode.
struct Problem {
    message: String,
    remediation: String,
}

impl Problem {
    fn finding(self, mode: Mode, path: impl Into<String>) -> Finding {
        Finding::new(
            RuleId::EncryptionAtRest,
            mode,
            path,
            self.message,
            self.remediation,
        )
    }
}

/// What built-in knowledge says about a provisioner's parameters.
#[derive(Debug, PartialEq)]
enum Verdict {
    Encrypted,
    /// Encrypted by the provider with its own keys, or outside Kubernetes' view; counts only
    /// with the policy's attestation. The text says what the provider does.
    ProviderDefault(&'static str),
    /// Not encrypted: why, and the fix for this provisioner.
    Not {
        reason: String,
        fix: String,
    },
}

struct Judge<'a> {
    ctx: &'a RuleContext<'a>,
    cfg: &'a AtRestConfig,
    namespace: &'a str,
    /// Names of StorageClasses in the cluster state that encrypt (computed on first need).
    available: OnceCell<Vec<String>>,
}

impl Judge<'_> {
    fn volume(&self, v: &Volume, path: &str, out: &mut Vec<Finding>) {
        let cfg = self.cfg;
        let type_name = v.source.type_name();
        if !cfg.allowed_inline_volume_types.contains(type_name) {
            out.push(
                Problem {
                    message: format!(
                        "volume {:?} is an inline {type_name} volume, a type this policy does not allow in PHI pods (its storage cannot be proven encrypted at rest)",
                        v.name
                    ),
                    remediation: format!(
                        "Replace volume {:?} with a persistentVolumeClaim or generic ephemeral volume on an encrypting StorageClass{}. Allowed inline types: {}.",
                        v.name,
                        self.available_suffix(),
                        join(cfg.allowed_inline_volume_types.iter())
                    ),
                }
                .finding(cfg.mode, path),
            );
            return;
        }
        match &v.source {
            VolumeSource::PersistentVolumeClaim { claim_name } => {
                if let Some(pr) = self.pod_claim(&v.name, claim_name) {
                    out.push(pr.finding(cfg.mode, path));
                }
            }
            VolumeSource::Ephemeral { template } => {
                let problem = match template {
                    Some(t) => {
                        let subject =
                            format!("generic ephemeral volume {:?} has a volumeClaimTemplate", v.name);
                        self.claim(&subject, &t.spec, &t.metadata.annotations)
                    }
                    None => Some(Problem {
                        message: format!(
                            "generic ephemeral volume {:?} has no volumeClaimTemplate, so its storage cannot be judged",
                            v.name
                        ),
                        remediation: format!(
                            "Set ephemeral.volumeClaimTemplate.spec.storageClassName to an encrypting StorageClass{}.",
                            self.available_suffix()
                        ),
                    }),
                };
                if let Some(pr) = problem {
                    out.push(pr.finding(cfg.mode, path));
                }
            }
            VolumeSource::EmptyDir { memory: false } | VolumeSource::Missing => {
                if let Some(mode) = cfg.on_disk_empty_dir {
                    let what = if matches!(v.source, VolumeSource::Missing) {
                        "has no volume source, so the API server makes it an emptyDir on the node's disk"
                    } else {
                        "is an emptyDir on the node's disk (no medium: Memory)"
                    };
                    out.push(
                        Problem {
                            message: format!(
                                "volume {:?} {what}; node disk encryption is not visible to Kubernetes",
                                v.name
                            ),
                            remediation: format!(
                                "Set emptyDir.medium: Memory on volume {:?} (it counts against the pod's memory limit), or use a generic ephemeral volume on an encrypting StorageClass{}; if node disks are encrypted, attest it with encryptionAtRest.attestNodeDiskEncryption: true.",
                                v.name,
                                self.available_suffix()
                            ),
                        }
                        .finding(mode, path),
                    );
                }
            }
            VolumeSource::Csi { driver } if !cfg.allowed_inline_csi_drivers.contains(driver) => {
                out.push(
                        Problem {
                            message: format!(
                                "volume {:?} is an inline csi volume of driver {driver:?}, which is not in encryptionAtRest.allowedInlineCsiDrivers",
                                v.name
                            ),
                            remediation: format!(
                                "Use a persistentVolumeClaim on an encrypting StorageClass{} instead, or, if driver {driver:?} only delivers secrets or certificates (no PHI) or encrypts its storage, add it to encryptionAtRest.allowedInlineCsiDrivers. Allowed drivers: {}.",
                                self.available_suffix(),
                                join(cfg.allowed_inline_csi_drivers.iter())
                            ),
                        }
                        .finding(cfg.mode, path),
                    );
            }
            _ => {}
        }
    }

    /// A pod volume that names a PVC: look it up, then judge its binding.
    fn pod_claim(&self, volume: &str, claim: &str) -> Option<Problem> {
        if claim.is_empty() {
            return Some(Problem {
                message: format!(
                    "volume {volume:?} is a persistentVolumeClaim volume without a claimName"
                ),
                remediation: "Set persistentVolumeClaim.claimName to a PersistentVolumeClaim on an encrypting StorageClass.".into(),
            });
        }
        let Some(pvc) = self.ctx.cluster.pvc(self.namespace, claim) else {
            return Some(Problem {
                message: format!(
                    "volume {volume:?} uses PersistentVolumeClaim {claim:?}, which does not exist in namespace {:?} as far as phi-guard knows, so its storage cannot be proven encrypted",
                    self.namespace
                ),
                remediation: format!(
                    "Create PersistentVolumeClaim {claim:?} (on an encrypting StorageClass{}) before the workload, or check the claim name.",
                    self.available_suffix()
                ),
            });
        };
        let subject = format!("volume {volume:?} uses PersistentVolumeClaim {claim:?}");
        let spec = ClaimSpec {
            storage_class_name: pvc.storage_class_name.clone(),
            volume_name: pvc.volume_name.clone(),
        };
        self.claim(&subject, &spec, &pvc.annotations).map(|mut pr| {
            pr.remediation.push_str(&format!(
                " A claim's storageClassName cannot change: create a new PersistentVolumeClaim on an encrypting class, migrate the data and point volume {volume:?} at it."
            ));
            pr
        })
    }

    /// Judge a claim's storage binding. `subject` reads as the start of a sentence naming the
    /// claim ("volume \"data\" uses PersistentVolumeClaim \"pg\"").
    fn claim(&self, subject: &str, spec: &ClaimSpec, annotations: &Labels) -> Option<Problem> {
        let cluster = self.ctx.cluster;
        match spec.storage_class_name.as_deref() {
            None => match cluster.default_storage_class() {
                Some(sc) => self.class(
                    &format!(
                        "{subject} whose storageClassName is unset, so it gets the default StorageClass {:?} (provisioner {}), which",
                        sc.name, sc.provisioner
                    ),
                    &sc,
                    annotations,
                ),
                None => Some(Problem {
                    message: format!(
                        "{subject} whose storageClassName is unset, and the cluster has no default StorageClass (annotation storageclass.kubernetes.io/is-default-class: \"true\"), so its storage cannot be proven encrypted"
                    ),
                    remediation: format!(
                        "Set storageClassName to an encrypting StorageClass{}.",
                        self.available_suffix()
                    ),
                }),
            },
            Some("") => self.static_binding(subject, spec.volume_name.as_deref(), annotations),
            Some(name) => match cluster.storage_class(name) {
                Some(sc) => self.class(
                    &format!(
                        "{subject} whose StorageClass {name:?} (provisioner {})",
                        sc.provisioner
                    ),
                    &sc,
                    annotations,
                ),
                None => Some(Problem {
                    message: format!(
                        "{subject} whose StorageClass {name:?} does not exist as far as phi-guard knows, so its storage cannot be proven encrypted"
                    ),
                    remediation: format!(
                        "Create StorageClass {name:?} with encryption enabled first, or set storageClassName to an existing encrypting StorageClass{}.",
                        self.available_suffix()
                    ),
                }),
            },
        }
    }

    /// `storageClassName: ""`: the claim binds to a pre-provisioned PV; judge that PV.
    fn static_binding(
        &self,
        subject: &str,
        volume_name: Option<&str>,
        annotations: &Labels,
    ) -> Option<Problem> {
        let Some(pv_name) = volume_name.filter(|n| !n.is_empty()) else {
            return Some(Problem {
                message: format!(
                    "{subject} whose storageClassName is \"\" (static binding) but whose spec.volumeName names no PersistentVolume, so phi-guard cannot tell which storage backs it"
                ),
                remediation: format!(
                    "Set spec.volumeName to a PersistentVolume on encrypted storage, or set storageClassName to an encrypting StorageClass{}.",
                    self.available_suffix()
                ),
            });
        };
        let Some(pv) = self.ctx.cluster.pv(pv_name) else {
            return Some(Problem {
                message: format!(
                    "{subject} whose storageClassName is \"\" (static binding) to PersistentVolume {pv_name:?}, which phi-guard does not know, so its storage cannot be proven encrypted"
                ),
                remediation: format!(
                    "Create PersistentVolume {pv_name:?} on encrypted storage first, or use an encrypting StorageClass{}.",
                    self.available_suffix()
                ),
            });
        };
        let lead = format!(
            "{subject} whose storageClassName is \"\" (static binding) to PersistentVolume {pv_name:?}"
        );
        if let Some(sc) = pv
            .storage_class_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .and_then(|n| self.ctx.cluster.storage_class(n))
        {
            return self.class(
                &format!(
                    "{lead}, whose StorageClass {:?} (provisioner {})",
                    sc.name, sc.provisioner
                ),
                &sc,
                annotations,
            );
        }
        if let Some(driver) = pv.csi_driver.as_deref() {
            let verdict = self.provisioner_verdict(
                driver,
                &pv.csi_attributes,
                "spec.csi.volumeAttributes",
                annotations,
            );
            return self.verdict_problem(
                &format!("{lead} (CSI driver {driver}), which"),
                verdict,
                &format!("PersistentVolume {pv_name:?}"),
            );
        }
        let source = pv
            .source_type
            .as_deref()
            .unwrap_or("an unknown volume source");
        Some(Problem {
            message: format!(
                "{lead}, which is backed by {source}, a source phi-guard cannot prove encrypted at rest"
            ),
            remediation: format!(
                "Bind the claim to a CSI PersistentVolume whose driver encrypts, or use an encrypting StorageClass{}.",
                self.available_suffix()
            ),
        })
    }

    /// Judge a StorageClass. `lead` names the claim and class; the reason follows it.
    fn class(&self, lead: &str, sc: &StorageClassInfo, annotations: &Labels) -> Option<Problem> {
        let verdict = self.class_verdict(sc, annotations);
        self.verdict_problem(lead, verdict, &format!("StorageClass {:?}", sc.name))
    }

    /// Turn a verdict into a problem, after applying the provider-default attestation.
    fn verdict_problem(&self, lead: &str, verdict: Verdict, object: &str) -> Option<Problem> {
        match verdict {
            Verdict::Encrypted => None,
            Verdict::ProviderDefault(_) if self.cfg.attest_provider_default_encryption => None,
            Verdict::ProviderDefault(what) => Some(Problem {
                message: format!(
                    "{lead} relies on provider-default encryption ({what}), which counts only when the policy attests it"
                ),
                remediation: format!(
                    "Use a StorageClass with explicit (customer-managed key) encryption{}, or, if a BAA with the provider covers {object}, set encryptionAtRest.attestProviderDefaultEncryption: true in the PhiPolicy.",
                    self.available_suffix()
                ),
            }),
            Verdict::Not { reason, fix } => Some(Problem {
                message: format!("{lead} {reason}"),
                remediation: format!(
                    "{fix}{}. Alternatively list a class whose encryption phi-guard cannot see in encryptionAtRest.encryptedStorageClasses.",
                    self.available_suffix()
                ),
            }),
        }
    }

    /// Does the StorageClass encrypt? The policy's allowlist and custom matchers come first,
    /// then built-in provisioner knowledge.
    fn class_verdict(&self, sc: &StorageClassInfo, annotations: &Labels) -> Verdict {
        if self.cfg.encrypted_storage_classes.contains(&sc.name) {
            return Verdict::Encrypted;
        }
        self.provisioner_verdict(&sc.provisioner, &sc.parameters, "parameters", annotations)
    }

    /// Custom matchers, then built-in knowledge, for a provisioner and its parameters.
    fn provisioner_verdict(
        &self,
        provisioner: &str,
        params: &BTreeMap<String, String>,
        field: &str,
        annotations: &Labels,
    ) -> Verdict {
        let custom = self.cfg.provisioners.iter().any(|(p, wanted)| {
            p.eq_ignore_ascii_case(provisioner)
                && wanted.iter().all(|(k, v)| {
                    param(params, k).is_some_and(|have| have.trim().eq_ignore_ascii_case(v))
                })
        });
        if custom {
            return Verdict::Encrypted;
        }
        builtin_verdict(provisioner, params, field, annotations)
    }

    /// ": encrypting StorageClasses available: a, b" (or a hint that none is known). The hint
    /// names at most [`HINT_NAMES`] classes and is skipped in clusters with more than
    /// [`HINT_MAX_CLASSES`] StorageClasses, so a denial costs the same at any cluster size.
    fn available_suffix(&self) -> String {
        let names = self.available.get_or_init(|| {
            if self.ctx.cluster.storage_class_count() > HINT_MAX_CLASSES {
                return Vec::new();
            }
            self.ctx
                .cluster
                .storage_classes()
                .iter()
                .filter(|sc| self.class_verdict(sc, &Labels::new()) == Verdict::Encrypted)
                .map(|sc| sc.name.clone())
                .collect()
        });
        let count = self.ctx.cluster.storage_class_count();
        if count > HINT_MAX_CLASSES {
            format!(" (the cluster has {count} StorageClasses: pick one that encrypts)")
        } else if names.is_empty() {
            " (no encrypting StorageClass is known in the cluster; create one)".into()
        } else if names.len() > HINT_NAMES {
            format!(
                " (encrypting classes available: {}, and {} more)",
                names[..HINT_NAMES].join(", "),
                names.len() - HINT_NAMES
            )
        } else {
            format!(" (encrypting classes available: {})", names.join(", "))
        }
    }
}

/// At most this many encrypting class names in a remediation hint.
const HINT_NAMES: usize = 5;
/// Above this many StorageClasses the hint is not computed (it would cost a full scan per review).
const HINT_MAX_CLASSES: usize = 200;

/// A parameter by case-insensitive key.
fn param<'a>(params: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    params
        .get(key)
        .or_else(|| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn non_empty(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.trim().is_empty())
}

fn join<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// Built-in per-provisioner knowledge (DOMAIN.md). `field` names where the parameters live
/// (`parameters` of a StorageClass, `spec.csi.volumeAttributes` of a PV).
fn builtin_verdict(
    provisioner: &str,
    params: &BTreeMap<String, String>,
    field: &str,
    annotations: &Labels,
) -> Verdict {
    let p = |k: &str| param(params, k);
    let prov = provisioner.to_ascii_lowercase();
    let flag = |key: &str, fix: &str| {
        if is_true(p(key)) {
            Verdict::Encrypted
        } else {
            Verdict::Not {
                reason: format!("does not set {field}.{key}: \"true\""),
                fix: fix.to_string(),
            }
        }
    };
    match prov.as_str() {
        "ebs.csi.aws.com" | "kubernetes.io/aws-ebs" => {
            if is_true(p("encrypted")) {
                return Verdict::Encrypted;
            }
            let mut reason = format!("does not set {field}.encrypted: \"true\"");
            if non_empty(p("kmsKeyId")) {
                reason.push_str(" (kmsKeyId only chooses the key; the driver encrypts only with encrypted: \"true\")");
            }
            if p("ext4EncryptionSupport").is_some() {
                reason.push_str(" (ext4EncryptionSupport enables fscrypt support in the filesystem, not volume encryption)");
            }
            Verdict::Not {
                reason,
                fix: "Use an EBS StorageClass with parameters.encrypted: \"true\" (optionally kmsKeyId: <key ARN>); StorageClass parameters are immutable, so create a new class and point storageClassName at it".into(),
            }
        }
        "pd.csi.storage.gke.io" | "kubernetes.io/gce-pd" => {
            if non_empty(p("disk-encryption-kms-key")) {
                Verdict::Encrypted
            } else {
                Verdict::ProviderDefault(
                    "Google-managed keys; no disk-encryption-kms-key customer key is set",
                )
            }
        }
        "disk.csi.azure.com" | "kubernetes.io/azure-disk" => {
            if non_empty(p("diskEncryptionSetID")) || non_empty(p("diskEncryptionType")) {
                Verdict::Encrypted
            } else {
                Verdict::ProviderDefault(
                    "Azure platform-managed keys; neither diskEncryptionSetID nor diskEncryptionType is set",
                )
            }
        }
        "file.csi.azure.com" | "kubernetes.io/azure-file" => {
            Verdict::ProviderDefault("Azure Storage service encryption with Microsoft-managed keys")
        }
        "efs.csi.aws.com" => Verdict::ProviderDefault(
            "EFS encryption at rest is a property of the file system, set outside Kubernetes",
        ),
        "driver.longhorn.io" => flag(
            "encrypted",
            "Use a Longhorn StorageClass with parameters.encrypted: \"true\" and the csi.storage.k8s.io/*-secret-name parameters naming the encryption secret",
        ),
        "zfs.csi.openebs.io" => {
            let v = p("encryption").unwrap_or_default().trim().to_ascii_lowercase();
            if v == "on" || v.starts_with("aes-") {
                Verdict::Encrypted
            } else {
                Verdict::Not {
                    reason: format!("does not set {field}.encryption: \"on\" (or an aes-* cipher)"),
                    fix: "Use an OpenEBS ZFS StorageClass with parameters.encryption: \"on\" (or an aes-* cipher) and keyformat/keylocation".into(),
                }
            }
        }
        "pxd.portworx.com" | "kubernetes.io/portworx-volume" => {
            if is_true(p("secure")) || is_true(annotations.get("px/secure").map(String::as_str)) {
                Verdict::Encrypted
            } else {
                Verdict::Not {
                    reason: format!(
                        "does not set {field}.secure: \"true\" and the claim has no px/secure: \"true\" annotation"
                    ),
                    fix: "Use a Portworx StorageClass with parameters.secure: \"true\", or annotate the claim px/secure: \"true\"".into(),
                }
            }
        }
        "csi.vsphere.vmware.com" | "kubernetes.io/vsphere-volume" => Verdict::Not {
            reason: "uses a vSphere storage policy whose encryption Kubernetes cannot see".into(),
            fix: "If the class's storagepolicyname is a vSphere VM Encryption policy, list the StorageClass in encryptionAtRest.encryptedStorageClasses; otherwise use an encrypting StorageClass".into(),
        },
        _ if is_ceph(&prov, "rbd") || is_ceph(&prov, "cephfs") => flag(
            "encrypted",
            "Use a Ceph CSI StorageClass with parameters.encrypted: \"true\" and encryptionKMSID",
        ),
        _ => Verdict::Not {
            reason: "is of a provisioner phi-guard does not know to encrypt".into(),
            fix: format!(
                "Use a StorageClass of a provisioner phi-guard recognizes with encryption enabled, or teach phi-guard which parameters make {provisioner} encrypt with encryptionAtRest.provisioners"
            ),
        },
    }
}

/// Ceph CSI provisioners: `rbd.csi.ceph.com`, or prefixed by the operator namespace as Rook
/// deploys them (`rook-ceph.rbd.csi.ceph.com`).
fn is_ceph(prov: &str, kind: &str) -> bool {
    let base = format!("{kind}.csi.ceph.com");
    prov == base || prov.ends_with(&format!(".{base}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::object::Kind;
    use crate::policy::{EncryptionAtRestSpec, PhiPolicySpec, Policy};
    use crate::view::{ClusterView, PvInfo, PvcInfo};
    use serde_json::{json, Value};

    const NS: &str = "phi";

    fn policy_with(f: impl FnOnce(&mut EncryptionAtRestSpec)) -> Policy {
        let mut spec = PhiPolicySpec::default();
        f(&mut spec.encryption_at_rest);
        Policy::from_spec("test", &spec).expect("valid policy")
    }

    fn baseline() -> Policy {
        policy_with(|_| {})
    }

    fn add_sc(state: &ClusterState, name: &str, provisioner: &str, params: Value, default: bool) {
        let mut meta = json!({ "name": name, "creationTimestamp": "2024-01-01T00:00:00Z" });
        if default {
            meta["annotations"] = json!({ "storageclass.kubernetes.io/is-default-class": "true" });
        }
        let sc: k8s_openapi::api::storage::v1::StorageClass = serde_json::from_value(json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": meta, "provisioner": provisioner, "parameters": params,
        }))
        .expect("storage class");
        state
            .storage_classes
            .insert(name.into(), StorageClassInfo::from(&sc));
    }

    fn add_pvc(state: &ClusterState, name: &str, spec: Value, annotations: Value) {
        let pvc: k8s_openapi::api::core::v1::PersistentVolumeClaim =
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": { "name": name, "namespace": NS, "annotations": annotations },
                "spec": spec,
            }))
            .expect("pvc");
        state
            .pvcs
            .insert(NS.into(), name.into(), PvcInfo::from(&pvc));
    }

    fn add_pv(state: &ClusterState, name: &str, spec: Value) {
        let pv: k8s_openapi::api::core::v1::PersistentVolume = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": { "name": name }, "spec": spec,
        }))
        .expect("pv");
        state.pvs.insert(name.into(), PvInfo::from(&pv));
    }

    fn pod(volumes: Value) -> Object {
        let v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "api", "labels": { "phiguard.io/data-classification": "phi" } },
            "spec": { "containers": [{ "name": "app", "image": "app:1" }], "volumes": volumes },
        });
        Object::from_value(Kind::Pod, &v, Some(NS)).expect("pod")
    }

    fn pvc_volume(name: &str, claim: &str) -> Value {
        json!({ "name": name, "persistentVolumeClaim": { "claimName": claim } })
    }

    fn run_with(w: &Object, state: &ClusterState, policy: &Policy) -> Vec<Finding> {
        let ctx = RuleContext {
            cluster: state,
            policy,
            namespace: state.namespace(NS),
        };
        check(
            w,
            &ctx,
            policy.encryption_at_rest.as_ref().expect("enabled"),
        )
    }

    fn run(w: &Object, state: &ClusterState) -> Vec<Finding> {
        run_with(w, state, &baseline())
    }

    /// A cluster with one encrypting EBS class, one plain one, and PVCs on each.
    fn ebs_state() -> ClusterState {
        let s = ClusterState::new();
        add_sc(
            &s,
            "gp3-encrypted",
            "ebs.csi.aws.com",
            json!({ "Encrypted": "TRUE", "type": "gp3" }),
            false,
        );
        add_sc(
            &s,
            "standard",
            "ebs.csi.aws.com",
            json!({ "type": "gp3" }),
            false,
        );
        add_pvc(
            &s,
            "good",
            json!({ "storageClassName": "gp3-encrypted" }),
            json!({}),
        );
        add_pvc(
            &s,
            "pg-data",
            json!({ "storageClassName": "standard" }),
            json!({}),
        );
        s
    }

    #[test]
    fn the_available_classes_hint_is_bounded_at_scale() {
        let s = ebs_state();
        for i in 0..6 {
            add_sc(
                &s,
                &format!("enc-{i}"),
                "ebs.csi.aws.com",
                json!({ "encrypted": "true" }),
                false,
            );
        }
        let f = run(&pod(json!([pvc_volume("data", "pg-data")])), &s);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].remediation.contains(
                "encrypting classes available: enc-0, enc-1, enc-2, enc-3, enc-4, and 2 more"
            ),
            "{}",
            f[0].remediation
        );
        for i in 0..HINT_MAX_CLASSES {
            add_sc(
                &s,
                &format!("plain-{i}"),
                "ebs.csi.aws.com",
                json!({}),
                false,
            );
        }
        let f = run(&pod(json!([pvc_volume("data", "pg-data")])), &s);
        assert_eq!(f.len(), 1);
        let count = HINT_MAX_CLASSES + 8;
        assert!(
            f[0].remediation
                .contains(&format!("the cluster has {count} StorageClasses")),
            "{}",
            f[0].remediation
        );
    }

    #[test]
    fn encrypted_ebs_class_with_mixed_case_key_and_value_is_compliant() {
        let s = ebs_state();
        assert!(run(&pod(json!([pvc_volume("data", "good")])), &s).is_empty());
    }

    #[test]
    fn unencrypted_ebs_class_is_named_with_fix_and_alternatives() {
        let s = ebs_state();
        let f = run(&pod(json!([pvc_volume("data", "pg-data")])), &s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].rule, RuleId::EncryptionAtRest);
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].path, "spec.volumes[0]");
        assert_eq!(
            f[0].message,
            "volume \"data\" uses PersistentVolumeClaim \"pg-data\" whose StorageClass \"standard\" (provisioner ebs.csi.aws.com) does not set parameters.encrypted: \"true\""
        );
        assert!(f[0].remediation.contains("parameters.encrypted: \"true\""));
        assert!(
            f[0].remediation
                .contains("encrypting classes available: gp3-encrypted)"),
            "{}",
            f[0].remediation
        );
        assert!(!f[0].remediation.contains("standard"));
    }

    #[test]
    fn ebs_kms_key_alone_and_fscrypt_do_not_count() {
        let s = ClusterState::new();
        add_sc(
            &s,
            "kms",
            "ebs.csi.aws.com",
            json!({ "kmsKeyId": "arn:aws:kms:us-east-1:1:key/x", "ext4EncryptionSupport": "true" }),
            false,
        );
        add_pvc(&s, "c", json!({ "storageClassName": "kms" }), json!({}));
        let f = run(&pod(json!([pvc_volume("data", "c")])), &s);
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("kmsKeyId only chooses the key"));
        assert!(f[0].message.contains("fscrypt"));
        assert!(!f[0].message.contains("arn:aws"), "no parameter values");
        assert!(f[0]
            .remediation
            .contains("no encrypting StorageClass is known"));
    }

    #[test]
    fn legacy_in_tree_aws_provisioner_is_judged_like_the_csi_driver() {
        let s = ClusterState::new();
        add_sc(
            &s,
            "old",
            "kubernetes.io/aws-ebs",
            json!({ "encrypted": "true" }),
            false,
        );
        add_sc(&s, "old-plain", "kubernetes.io/aws-ebs", json!({}), false);
        add_pvc(&s, "a", json!({ "storageClassName": "old" }), json!({}));
        add_pvc(
            &s,
            "b",
            json!({ "storageClassName": "old-plain" }),
            json!({}),
        );
        let f = run(
            &pod(json!([pvc_volume("a", "a"), pvc_volume("b", "b")])),
            &s,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "spec.volumes[1]");
    }

    #[test]
    fn unset_class_resolves_to_the_default_class() {
        let s = ClusterState::new();
        add_sc(
            &s,
            "enc",
            "ebs.csi.aws.com",
            json!({ "encrypted": "true" }),
            true,
        );
        add_pvc(&s, "c", json!({}), json!({}));
        assert!(run(&pod(json!([pvc_volume("data", "c")])), &s).is_empty());

        let s = ClusterState::new();
        add_sc(&s, "plain", "ebs.csi.aws.com", json!({}), true);
        add_sc(
            &s,
            "enc",
            "ebs.csi.aws.com",
            json!({ "encrypted": "true" }),
            false,
        );
        add_pvc(&s, "c", json!({}), json!({}));
        let f = run(&pod(json!([pvc_volume("data", "c")])), &s);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.contains("storageClassName is unset, so it gets the default StorageClass \"plain\" (provisioner ebs.csi.aws.com), which does not set parameters.encrypted"),
            "{}",
            f[0].message
        );
        assert!(f[0].remediation.contains("available: enc"));
    }

    #[test]
    fn unset_class_without_a_default_class_is_a_finding() {
        let s = ClusterState::new();
        add_sc(
            &s,
            "enc",
            "ebs.csi.aws.com",
            json!({ "encrypted": "true" }),
            false,
        );
        add_pvc(&s, "c", json!({}), json!({}));
        let f = run(&pod(json!([pvc_volume("data", "c")])), &s);
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("no default StorageClass"));
        assert!(f[0].remediation.contains("available: enc"));
    }

    #[test]
    fn missing_pvc_and_missing_class_cannot_be_proven() {
        let s = ebs_state();
        add_pvc(
            &s,
            "ghost-class",
            json!({ "storageClassName": "nope" }),
            json!({}),
        );
        let f = run(
            &pod(json!([
                pvc_volume("a", "absent"),
                pvc_volume("b", "ghost-class")
            ])),
            &s,
        );
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f[0].message.contains(
            "PersistentVolumeClaim \"absent\", which does not exist in namespace \"phi\""
        ));
        assert!(f[0]
            .remediation
            .contains("Create PersistentVolumeClaim \"absent\""));
        assert!(f[1]
            .message
            .contains("StorageClass \"nope\" does not exist"));
        assert_eq!(f[1].path, "spec.volumes[1]");
    }

    #[test]
    fn static_binding_is_judged_through_the_bound_pv() {
        let s = ebs_state();
        add_pv(
            &s,
            "pv-enc",
            json!({ "csi": { "driver": "ebs.csi.aws.com", "volumeHandle": "vol-1", "volumeAttributes": { "Encrypted": "true" } } }),
        );
        add_pv(
            &s,
            "pv-plain",
            json!({ "csi": { "driver": "ebs.csi.aws.com", "volumeHandle": "vol-2" } }),
        );
        add_pv(
            &s,
            "pv-nfs",
            json!({ "nfs": { "server": "10.0.0.1", "path": "/x" } }),
        );
        add_pv(
            &s,
            "pv-classed",
            json!({ "storageClassName": "gp3-encrypted", "csi": { "driver": "ebs.csi.aws.com", "volumeHandle": "vol-3" } }),
        );
        for (claim, pv) in [
            ("c-enc", "pv-enc"),
            ("c-plain", "pv-plain"),
            ("c-nfs", "pv-nfs"),
            ("c-classed", "pv-classed"),
            ("c-ghost", "pv-ghost"),
        ] {
            add_pvc(
                &s,
                claim,
                json!({ "storageClassName": "", "volumeName": pv }),
                json!({}),
            );
        }
        add_pvc(
            &s,
            "c-unbound",
            json!({ "storageClassName": "" }),
            json!({}),
        );
        let w = pod(json!([
            pvc_volume("enc", "c-enc"),
            pvc_volume("plain", "c-plain"),
            pvc_volume("nfs", "c-nfs"),
            pvc_volume("classed", "c-classed"),
            pvc_volume("ghost", "c-ghost"),
            pvc_volume("unbound", "c-unbound"),
        ]));
        let f = run(&w, &s);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.volumes[1]",
                "spec.volumes[2]",
                "spec.volumes[4]",
                "spec.volumes[5]"
            ],
            "{f:#?}"
        );
        assert!(f[0].message.contains("PersistentVolume \"pv-plain\" (CSI driver ebs.csi.aws.com), which does not set spec.csi.volumeAttributes.encrypted"), "{}", f[0].message);
        assert!(f[1].message.contains("backed by nfs"), "{}", f[1].message);
        assert!(f[2]
            .message
            .contains("PersistentVolume \"pv-ghost\", which phi-guard does not know"));
        assert!(f[3]
            .message
            .contains("spec.volumeName names no PersistentVolume"));
    }

    #[test]
    fn deployment_paths_point_into_the_template() {
        let s = ebs_state();
        let v = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "api" },
            "spec": { "template": { "metadata": {}, "spec": {
                "containers": [{ "name": "app" }],
                "volumes": [ pvc_volume("ok", "good"), pvc_volume("bad", "pg-data"), { "name": "logs", "hostPath": { "path": "/var/log" } } ],
            } } },
        });
        let w = Object::from_value(Kind::Deployment, &v, Some(NS)).expect("deployment");
        let f = run(&w, &s);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0].path, "spec.template.spec.volumes[1]");
        assert_eq!(f[1].path, "spec.template.spec.volumes[2]");
        assert!(f[1].message.contains("inline hostPath volume"));
        assert_eq!(f[1].mode, Mode::Enforce);
    }

    #[test]
    fn statefulset_claim_templates_carry_their_own_class() {
        let s = ebs_state();
        add_sc(&s, "dflt", "ebs.csi.aws.com", json!({}), true);
        let v = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": { "name": "db" },
            "spec": {
                "template": { "spec": { "containers": [{ "name": "db" }] } },
                "volumeClaimTemplates": [
                    { "metadata": { "name": "data" }, "spec": { "storageClassName": "gp3-encrypted" } },
                    { "metadata": { "name": "wal" }, "spec": { "storageClassName": "standard" } },
                    { "metadata": { "name": "tmp" }, "spec": {} },
                ],
            },
        });
        let w = Object::from_value(Kind::StatefulSet, &v, Some(NS)).expect("sts");
        let f = run(&w, &s);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0].path, "spec.volumeClaimTemplates[1]");
        assert!(f[0]
            .message
            .starts_with("volumeClaimTemplate \"wal\" whose StorageClass \"standard\""));
        assert_eq!(f[1].path, "spec.volumeClaimTemplates[2]");
        assert!(f[1].message.contains("default StorageClass \"dflt\""));
    }

    #[test]
    fn cronjob_empty_dir_on_disk_is_a_warning_and_memory_is_fine() {
        let s = ClusterState::new();
        let v = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": { "name": "report" },
            "spec": { "jobTemplate": { "spec": { "template": { "spec": {
                "containers": [{ "name": "job" }],
                "volumes": [
                    { "name": "scratch", "emptyDir": {} },
                    { "name": "ram", "emptyDir": { "medium": "Memory" } },
                    { "name": "bare" },
                ],
            } } } } },
        });
        let w = Object::from_value(Kind::CronJob, &v, Some(NS)).expect("cronjob");
        let f = run(&w, &s);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0].path, "spec.jobTemplate.spec.template.spec.volumes[0]");
        assert_eq!(f[0].mode, Mode::Warn);
        assert!(f[0].message.contains("emptyDir on the node's disk"));
        assert!(f[0].remediation.contains("medium: Memory"));
        assert_eq!(f[1].path, "spec.jobTemplate.spec.template.spec.volumes[2]");
        assert!(f[1].message.contains("no volume source"));

        let attested = policy_with(|a| a.attest_node_disk_encryption = true);
        assert!(run_with(&w, &s, &attested).is_empty());
    }

    #[test]
    fn generic_ephemeral_volumes_use_their_template_class() {
        let s = ebs_state();
        add_sc(&s, "px", "pxd.portworx.com", json!({}), false);
        let w = pod(json!([
            { "name": "a", "ephemeral": { "volumeClaimTemplate": { "spec": { "storageClassName": "gp3-encrypted" } } } },
            { "name": "b", "ephemeral": { "volumeClaimTemplate": { "spec": { "storageClassName": "standard" } } } },
            { "name": "c", "ephemeral": { "volumeClaimTemplate": { "metadata": { "annotations": { "px/secure": "true" } }, "spec": { "storageClassName": "px" } } } },
            { "name": "d", "ephemeral": { "volumeClaimTemplate": { "spec": { "storageClassName": "px" } } } },
            { "name": "e", "ephemeral": {} },
        ]));
        let f = run(&w, &s);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.volumes[1]", "spec.volumes[3]", "spec.volumes[4]"],
            "{f:#?}"
        );
        assert!(f[0].message.starts_with("generic ephemeral volume \"b\" has a volumeClaimTemplate whose StorageClass \"standard\""));
        assert!(f[1].message.contains("px/secure"));
        assert!(f[2].message.contains("no volumeClaimTemplate"));
    }

    #[test]
    fn inline_types_outside_the_allowed_set_are_violations() {
        let s = ClusterState::new();
        let w = pod(json!([
            { "name": "host", "hostPath": { "path": "/data" } },
            { "name": "share", "nfs": { "server": "nfs", "path": "/x" } },
            { "name": "ebs", "awsElasticBlockStore": { "volumeID": "vol-1" } },
            { "name": "cfg", "configMap": { "name": "cfg" } },
            { "name": "tok", "projected": { "sources": [] } },
            { "name": "sec", "secret": { "secretName": "s" } },
            { "name": "dapi", "downwardAPI": {} },
        ]));
        let f = run(&w, &s);
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(f[0]
            .message
            .contains("\"host\" is an inline hostPath volume"));
        assert!(f[1].message.contains("inline nfs volume"));
        assert!(f[2].message.contains("inline awsElasticBlockStore volume"));
        assert!(f[0].remediation.contains("Allowed inline types:"));

        let lenient = policy_with(|a| a.allowed_inline_volume_types.push("nfs".into()));
        assert_eq!(run_with(&w, &s, &lenient).len(), 2);
        let strict = policy_with(|a| a.allowed_inline_volume_types.retain(|t| t != "configMap"));
        assert_eq!(run_with(&w, &s, &strict).len(), 4);
    }

    #[test]
    fn inline_csi_drivers_are_allowlisted() {
        let s = ClusterState::new();
        let w = pod(json!([
            { "name": "vault", "csi": { "driver": "secrets-store.csi.k8s.io" } },
            { "name": "tls", "csi": { "driver": "csi.cert-manager.io" } },
            { "name": "blob", "csi": { "driver": "blob.csi.azure.com" } },
        ]));
        let f = run(&w, &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "spec.volumes[2]");
        assert!(f[0].message.contains("driver \"blob.csi.azure.com\""));
        assert!(f[0].remediation.contains("allowedInlineCsiDrivers"));
    }

    #[test]
    fn provider_default_encryption_counts_only_with_attestation() {
        let s = ClusterState::new();
        add_sc(
            &s,
            "gke",
            "pd.csi.storage.gke.io",
            json!({ "type": "pd-ssd" }),
            false,
        );
        add_sc(
            &s,
            "gke-cmek",
            "pd.csi.storage.gke.io",
            json!({ "disk-encryption-kms-key": "projects/p/locations/l/keyRings/r/cryptoKeys/k" }),
            false,
        );
        add_sc(&s, "legacy-gce", "kubernetes.io/gce-pd", json!({}), false);
        add_sc(&s, "azd", "disk.csi.azure.com", json!({}), false);
        add_sc(
            &s,
            "azd-des",
            "disk.csi.azure.com",
            json!({ "DiskEncryptionSetID": "/subscriptions/x" }),
            false,
        );
        add_sc(
            &s,
            "azd-type",
            "disk.csi.azure.com",
            json!({ "diskEncryptionType": "EncryptionAtRestWithCustomerKey" }),
            false,
        );
        add_sc(&s, "azf", "file.csi.azure.com", json!({}), false);
        add_sc(
            &s,
            "efs",
            "efs.csi.aws.com",
            json!({ "provisioningMode": "efs-ap" }),
            false,
        );
        let names = [
            "gke",
            "gke-cmek",
            "legacy-gce",
            "azd",
            "azd-des",
            "azd-type",
            "azf",
            "efs",
        ];
        let mut vols = Vec::new();
        for n in names {
            add_pvc(&s, n, json!({ "storageClassName": n }), json!({}));
            vols.push(pvc_volume(n, n));
        }
        let w = pod(Value::Array(vols));
        let f = run(&w, &s);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.volumes[0]",
                "spec.volumes[2]",
                "spec.volumes[3]",
                "spec.volumes[6]",
                "spec.volumes[7]"
            ],
            "{f:#?}"
        );
        assert!(f[0]
            .message
            .contains("relies on provider-default encryption (Google-managed keys"));
        assert!(f[0]
            .remediation
            .contains("attestProviderDefaultEncryption: true"));
        assert!(
            f[0].remediation
                .contains("available: azd-des, azd-type, gke-cmek"),
            "{}",
            f[0].remediation
        );
        assert!(!f[0].message.contains("projects/"), "no parameter values");
        assert!(f[4].message.contains("EFS encryption at rest"));

        let attested = policy_with(|a| a.attest_provider_default_encryption = true);
        assert!(run_with(&w, &s, &attested).is_empty());
    }

    #[test]
    fn ceph_longhorn_zfs_and_portworx_parameters() {
        let s = ClusterState::new();
        let classes = [
            (
                "rook-rbd",
                "rook-ceph.rbd.csi.ceph.com",
                json!({ "encrypted": "true", "encryptionKMSID": "vault" }),
                true,
            ),
            (
                "cephfs",
                "cephfs.csi.ceph.com",
                json!({ "encrypted": "false" }),
                false,
            ),
            (
                "notceph",
                "evilrbd.csi.ceph.com.example",
                json!({ "encrypted": "true" }),
                false,
            ),
            (
                "longhorn",
                "driver.longhorn.io",
                json!({ "encrypted": "True" }),
                true,
            ),
            (
                "longhorn-plain",
                "driver.longhorn.io",
                json!({ "numberOfReplicas": "3" }),
                false,
            ),
            (
                "zfs-aes",
                "zfs.csi.openebs.io",
                json!({ "encryption": "aes-256-gcm" }),
                true,
            ),
            (
                "zfs-on",
                "zfs.csi.openebs.io",
                json!({ "Encryption": "ON" }),
                true,
            ),
            (
                "zfs-off",
                "zfs.csi.openebs.io",
                json!({ "encryption": "off" }),
                false,
            ),
            (
                "px-secure",
                "pxd.portworx.com",
                json!({ "secure": "true" }),
                true,
            ),
            ("px", "pxd.portworx.com", json!({ "repl": "3" }), false),
        ];
        let mut vols = Vec::new();
        for (name, prov, params, _) in &classes {
            add_sc(&s, name, prov, params.clone(), false);
            add_pvc(&s, name, json!({ "storageClassName": name }), json!({}));
            vols.push(pvc_volume(name, name));
        }
        // The same plain Portworx class, but the claim asks for encryption.
        add_pvc(
            &s,
            "px-annotated",
            json!({ "storageClassName": "px" }),
            json!({ "px/secure": "true" }),
        );
        vols.push(pvc_volume("px-annotated", "px-annotated"));
        let f = run(&pod(Value::Array(vols)), &s);
        let expected: Vec<String> = classes
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.3)
            .map(|(i, _)| format!("spec.volumes[{i}]"))
            .collect();
        let paths: Vec<String> = f.iter().map(|f| f.path.clone()).collect();
        assert_eq!(paths, expected, "{f:#?}");
        assert!(f[0].message.contains("parameters.encrypted: \"true\""));
        assert!(f[1].message.contains("phi-guard does not know to encrypt"));
        assert!(f[3].message.contains("parameters.encryption: \"on\""));
    }

    #[test]
    fn vsphere_counts_only_when_allowlisted_by_name() {
        let s = ClusterState::new();
        add_sc(
            &s,
            "vsan-encrypted",
            "csi.vsphere.vmware.com",
            json!({ "storagepolicyname": "VM Encryption Policy" }),
            false,
        );
        add_pvc(
            &s,
            "c",
            json!({ "storageClassName": "vsan-encrypted" }),
            json!({}),
        );
        let w = pod(json!([pvc_volume("data", "c")]));
        let f = run(&w, &s);
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("vSphere storage policy"));
        assert!(f[0].remediation.contains("encryptedStorageClasses"));
        assert!(!f[0].message.contains("VM Encryption Policy"));
        let allow = policy_with(|a| a.encrypted_storage_classes = vec!["vsan-encrypted".into()]);
        assert!(run_with(&w, &s, &allow).is_empty());
    }

    #[test]
    fn custom_provisioner_matchers_need_every_parameter() {
        let s = ClusterState::new();
        add_sc(
            &s,
            "acme-enc",
            "storage.acme.io",
            json!({ "Encryption": "YES", "Cipher": "AES" }),
            false,
        );
        add_sc(
            &s,
            "acme-half",
            "storage.acme.io",
            json!({ "encryption": "yes" }),
            false,
        );
        add_sc(&s, "acme", "storage.acme.io", json!({}), false);
        let mut vols = Vec::new();
        for n in ["acme-enc", "acme-half", "acme"] {
            add_pvc(&s, n, json!({ "storageClassName": n }), json!({}));
            vols.push(pvc_volume(n, n));
        }
        let w = pod(Value::Array(vols));
        let f = run(&w, &s);
        assert_eq!(f.len(), 3, "unknown provisioner is not encrypted");
        assert!(f[0]
            .message
            .contains("(provisioner storage.acme.io) is of a provisioner phi-guard does not know"));
        assert!(f[0].remediation.contains("encryptionAtRest.provisioners"));

        let p = policy_with(|a| {
            a.provisioners = vec![crate::policy::ProvisionerMatcher {
                provisioner: "storage.acme.io".into(),
                parameters: [
                    ("encryption".to_string(), "Yes".to_string()),
                    ("CIPHER".to_string(), "aes".to_string()),
                ]
                .into(),
            }]
        });
        let f = run_with(&w, &s, &p);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["spec.volumes[1]", "spec.volumes[2]"]);
        assert!(
            f[0].remediation.contains("available: acme-enc)"),
            "{}",
            f[0].remediation
        );
    }

    #[test]
    fn engine_denies_a_phi_deployment_on_unencrypted_storage() {
        let s = ebs_state();
        let v = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "api", "labels": { "phiguard.io/data-classification": "phi" } },
            "spec": { "template": { "spec": {
                "containers": [{ "name": "app" }],
                "volumes": [pvc_volume("data", "pg-data"), { "name": "tmp", "emptyDir": {} }],
            } } },
        });
        let w = Object::from_value(Kind::Deployment, &v, Some(NS)).expect("deployment");
        let d = crate::engine::evaluate(&w, &s, &[std::sync::Arc::new(baseline())]);
        assert!(d.phi);
        assert!(!d.allowed);
        let at_rest: Vec<&Finding> = d
            .findings
            .iter()
            .filter(|f| f.rule == RuleId::EncryptionAtRest)
            .collect();
        assert_eq!(at_rest.len(), 2, "{at_rest:#?}");
        assert_eq!(at_rest[0].citation, "45 CFR 164.312(a)(2)(iv)");
        assert_eq!(at_rest[0].policy, "test");
        assert_eq!(at_rest[1].mode, Mode::Warn);
        assert!(at_rest[0]
            .remediation
            .contains("create a new PersistentVolumeClaim"));
    }

    #[test]
    fn a_pvc_in_scope_is_judged_itself() {
        let s = ebs_state();
        add_sc(&s, "px", "pxd.portworx.com", json!({}), false);
        let pvc = |class: &str, ann: Value| {
            let v = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": { "name": "pg-data", "annotations": ann },
                "spec": { "storageClassName": class },
            });
            Object::from_value(Kind::PersistentVolumeClaim, &v, Some(NS)).expect("pvc")
        };
        let f = run(&pvc("standard", json!({})), &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "spec.storageClassName");
        assert!(f[0]
            .message
            .starts_with("PersistentVolumeClaim \"pg-data\" whose StorageClass \"standard\""));
        assert!(run(&pvc("gp3-encrypted", json!({})), &s).is_empty());
        assert!(run(&pvc("px", json!({ "px/secure": "true" })), &s).is_empty());
        assert_eq!(run(&pvc("px", json!({})), &s).len(), 1);
    }

    #[test]
    fn other_kinds_produce_nothing_and_findings_never_echo_annotation_values() {
        let s = ebs_state();
        let svc = Object::from_value(
            Kind::Service,
            &json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "x" }, "spec": {} }),
            Some(NS),
        )
        .expect("svc");
        assert!(run(&svc, &s).is_empty());

        let v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "annotations": { "note": "patient-ssn-123" } },
            "spec": { "containers": [{ "name": "c", "env": [{ "name": "X", "value": "secret-env-value" }] }],
                      "volumes": [pvc_volume("data", "pg-data"), { "name": "h", "hostPath": { "path": "/secret-path" } }] },
        });
        let w = Object::from_value(Kind::Pod, &v, Some(NS)).expect("pod");
        let f = run(&w, &s);
        assert_eq!(f.len(), 2);
        for x in &f {
            for text in [&x.message, &x.remediation] {
                assert!(!text.contains("patient-ssn-123"));
                assert!(!text.contains("secret-env-value"));
                assert!(!text.contains("/secret-path"));
            }
        }
    }
}
