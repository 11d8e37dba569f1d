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

/// A parameter by case-insensitive key, for drivers that lower-case keys before reading them
/// (and for the policy's own matchers, documented as case-insensitive).
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

/// A parameter by its exact key, for drivers that look keys up in a Go map as written.
pub(super) fn param_exact<'a>(params: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    params.get(key).map(String::as_str)
}

/// Go's `strconv.ParseBool` read as true: exactly `1`, `t`, `T`, `TRUE`, `true`, `True`
/// (no trimming; anything else is false or a parse error that fails provisioning).
pub(super) fn go_parse_bool_true(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "t" | "T" | "TRUE" | "true" | "True"))
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
    // Keys looked up case-insensitively (drivers that lower-case them) or exactly.
    let p = |k: &str| param(params, k);
    let exact = |k: &str| param_exact(params, k);
    let prov = provisioner.to_ascii_lowercase();
    let go_bool = |key: &str, fix: &str| {
        if go_parse_bool_true(exact(key)) {
            Verdict::Encrypted
        } else {
            Verdict::Not {
                reason: format!("does not set {field}.{key}: \"true\" (key spelled exactly so)"),
                fix: fix.to_string(),
            }
        }
    };
    match prov.as_str() {
        // kubernetes-sigs/aws-ebs-csi-driver pkg/driver/controller.go (429e202e, 2026-08):
        // `switch strings.ToLower(key)` then `case EncryptedKey: isEncrypted = isTrue(value)`
        // with `func isTrue(value string) bool { return value == trueStr }`: keys in any case,
        // the value only the exact string "true" ("True", "TRUE", " true" are unencrypted).
        // The in-tree kubernetes.io/aws-ebs plugin is migrated to this driver (CSI migration).
        "ebs.csi.aws.com" | "kubernetes.io/aws-ebs" => {
            if p("encrypted") == Some("true") {
                return Verdict::Encrypted;
            }
            let mut reason = format!("does not set {field}.encrypted: \"true\"");
            if p("encrypted").is_some() {
                reason.push_str(" (the driver compares the value to the exact lower-case string \"true\")");
            }
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
        // kubernetes-sigs/gcp-compute-persistent-disk-csi-driver pkg/parameters/parameters.go
        // (b560165c, 2026-08): `switch strings.ToLower(k)`, `disk-encryption-kms-key` taken as
        // the customer key when non-empty. Disks are always encrypted with Google keys.
        "pd.csi.storage.gke.io" | "kubernetes.io/gce-pd" => {
            if non_empty(p("disk-encryption-kms-key")) {
                Verdict::Encrypted
            } else {
                Verdict::ProviderDefault(
                    "Google-managed keys; no disk-encryption-kms-key customer key is set",
                )
            }
        }
        // kubernetes-sigs/azuredisk-csi-driver pkg/azureutils/azure_disk_utils.go (d983d613,
        // 2026-08): `switch strings.ToLower(k)`, `diskencryptionsetid`; and
        // pkg/azuredisk/azure_managedDiskController.go: a diskEncryptionType without a
        // DiskEncryptionSetID is an error ("should be empty when DiskEncryptionSetID is not
        // set"), so only the set ID selects customer-managed keys.
        "disk.csi.azure.com" | "kubernetes.io/azure-disk" => {
            if non_empty(p("diskEncryptionSetID")) {
                Verdict::Encrypted
            } else if non_empty(p("diskEncryptionType")) {
                Verdict::Not {
                    reason: format!("sets {field}.diskEncryptionType without diskEncryptionSetID, which the driver refuses to provision"),
                    fix: "Set parameters.diskEncryptionSetID to the resource ID of a disk encryption set (customer-managed key) alongside diskEncryptionType".into(),
                }
            } else {
                Verdict::ProviderDefault(
                    "Azure platform-managed keys; no diskEncryptionSetID (customer-managed key) is set",
                )
            }
        }
        "file.csi.azure.com" | "kubernetes.io/azure-file" => {
            Verdict::ProviderDefault("Azure Storage service encryption with Microsoft-managed keys")
        }
        "efs.csi.aws.com" => Verdict::ProviderDefault(
            "EFS encryption at rest is a property of the file system, set outside Kubernetes",
        ),
        // longhorn/longhorn-manager csi/util.go (5ddaa369, 2026-08):
        // `volOptions["encrypted"]` (exact key) parsed with `strconv.ParseBool`.
        "driver.longhorn.io" => go_bool(
            "encrypted",
            "Use a Longhorn StorageClass with parameters.encrypted: \"true\" and the csi.storage.k8s.io/*-secret-name parameters naming the encryption secret",
        ),
        // openebs/zfs-localpv pkg/driver/controller.go (d52f9a9a, 2024-10):
        // `helpers.GetCaseInsensitiveMap` (keys in any case), the value passed unchanged to
        // `zfs create -o encryption=<value>`; OpenZFS compares property values case-sensitively
        // (`on`, `aes-128-ccm` ... `aes-256-gcm`; `off` or anything else is no encryption).
        "zfs.csi.openebs.io" => {
            let v = p("encryption").unwrap_or_default();
            if v == "on" || v.starts_with("aes-") {
                Verdict::Encrypted
            } else {
                Verdict::Not {
                    reason: format!("does not set {field}.encryption: \"on\" (or an aes-* cipher, lower case)"),
                    fix: "Use an OpenEBS ZFS StorageClass with parameters.encryption: \"on\" (or an aes-* cipher) and keyformat/keylocation".into(),
                }
            }
        }
        // libopenstorage/openstorage api/spec/spec_handler.go (03325516, 2025-03), the
        // Portworx spec parser: `switch k` (exact key) `case api.SpecSecure` ("secure"):
        // `strconv.ParseBool(v)`. The claim annotation px/secure is read the same way.
        "pxd.portworx.com" | "kubernetes.io/portworx-volume" => {
            if go_parse_bool_true(exact("secure"))
                || go_parse_bool_true(annotations.get("px/secure").map(String::as_str))
            {
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
        // ceph/ceph-csi internal/rbd/encryption.go ParseEncryptionOpts and
        // internal/cephfs/store/volumeoptions.go parseEncryptionOpts (52fcb7b0, 2024-10):
        // `volOptions["encrypted"]` (exact key), `strconv.ParseBool`; `encryptionType` must be
        // `block` or `file` when set (RBD), and `file` for CephFS.
        _ if is_ceph(&prov, "rbd") || is_ceph(&prov, "cephfs") => {
            let enc_type = exact("encryptionType");
            let type_ok = if is_ceph(&prov, "rbd") {
                matches!(enc_type, None | Some("block" | "file"))
            } else {
                matches!(enc_type, None | Some("file"))
            };
            match go_bool(
                "encrypted",
                "Use a Ceph CSI StorageClass with parameters.encrypted: \"true\" and encryptionKMSID",
            ) {
                Verdict::Encrypted if !type_ok => Verdict::Not {
                    reason: format!("sets {field}.encryptionType to a type the driver does not encrypt with"),
                    fix: "Remove parameters.encryptionType or set it to a type the Ceph CSI driver supports (block or file for RBD, file for CephFS)".into(),
                },
                v => v,
            }
        }
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
