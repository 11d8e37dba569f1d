//! Built-in per-provisioner knowledge: which StorageClass parameters (or PV volume attributes)
//! prove a driver encrypts, read as the driver reads them. The next driver is one match arm here.

use super::*;

/// What built-in knowledge says about a provisioner's parameters.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
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

/// A parameter by case-insensitive key.
pub(super) fn param<'a>(params: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
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

pub(super) fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

pub(super) fn non_empty(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.trim().is_empty())
}

pub(super) fn join<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// Built-in per-provisioner knowledge (DOMAIN.md). `field` names where the parameters live
/// (`parameters` of a StorageClass, `spec.csi.volumeAttributes` of a PV).
pub(super) fn builtin_verdict(
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
pub(super) fn is_ceph(prov: &str, kind: &str) -> bool {
    let base = format!("{kind}.csi.ceph.com");
    prov == base || prov.ends_with(&format!(".{base}"))
}
