use super::*;
use crate::cluster::ClusterState;
use crate::fixtures::{self, add_pv, add_storage_class, assert_names, assert_no_value, names};
use crate::object::Kind;
use crate::policy::{EncryptionAtRestSpec, Policy};
use crate::verdict::RuleId;
use serde_json::{json, Value};

const NS: &str = "phi";

fn policy_with(f: impl FnOnce(&mut EncryptionAtRestSpec)) -> Policy {
    fixtures::policy_with(|s| f(&mut s.encryption_at_rest))
}

fn baseline() -> Policy {
    policy_with(|_| {})
}

fn add_pvc(state: &ClusterState, name: &str, spec: Value, annotations: Value) {
    fixtures::add_pvc(state, NS, name, spec, annotations)
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
    let cfg = policy.encryption_at_rest.as_ref().expect("enabled");
    fixtures::judge(w, state, policy, |w, ctx| check(w, ctx, cfg))
}

fn run(w: &Object, state: &ClusterState) -> Vec<Finding> {
    run_with(w, state, &baseline())
}

/// A cluster with one encrypting EBS class, one plain one, and PVCs on each.
fn ebs_state() -> ClusterState {
    let s = ClusterState::new();
    add_storage_class(
        &s,
        "gp3-encrypted",
        "ebs.csi.aws.com",
        json!({ "Encrypted": "true", "type": "gp3" }),
        false,
    );
    add_storage_class(
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
        add_storage_class(
            &s,
            &format!("enc-{i}"),
            "ebs.csi.aws.com",
            json!({ "encrypted": "true" }),
            false,
        );
    }
    let f = run(&pod(json!([pvc_volume("data", "pg-data")])), &s);
    assert_eq!(f.len(), 1);
    // The first HINT_NAMES encrypting classes by name, not the rest.
    for i in 0..HINT_NAMES {
        assert_names(&f[0].remediation, &format!("enc-{i}"));
    }
    for unnamed in ["enc-5", "gp3-encrypted"] {
        assert!(!names(&f[0].remediation, unnamed), "{}", f[0].remediation);
    }
    for i in 0..HINT_MAX_CLASSES {
        add_storage_class(
            &s,
            &format!("plain-{i}"),
            "ebs.csi.aws.com",
            json!({}),
            false,
        );
    }
    let f = run(&pod(json!([pvc_volume("data", "pg-data")])), &s);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    // Past HINT_MAX_CLASSES the encrypting classes are not looked for, so none is named.
    for unnamed in ["enc-0", "gp3-encrypted"] {
        assert!(!names(&f[0].remediation, unnamed), "{}", f[0].remediation);
    }
}

#[test]
fn encrypted_ebs_class_with_a_mixed_case_key_is_compliant() {
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
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    // The volume, claim, class, provisioner and the parameter it lacks; the fix names the
    // parameter and the encrypting alternatives, not the failing class.
    for named in [
        "data",
        "pg-data",
        "standard",
        "ebs.csi.aws.com",
        "parameters.encrypted",
    ] {
        assert_names(&f[0].message, named);
    }
    assert_names(&f[0].remediation, "parameters.encrypted");
    assert_names(&f[0].remediation, "gp3-encrypted");
    assert!(
        !names(&f[0].remediation, "standard"),
        "{}",
        f[0].remediation
    );
}

#[test]
fn ebs_kms_key_alone_and_fscrypt_do_not_count() {
    let s = ClusterState::new();
    add_storage_class(
        &s,
        "kms",
        "ebs.csi.aws.com",
        json!({ "kmsKeyId": "arn:aws:kms:us-east-1:1:key/x", "ext4EncryptionSupport": "true" }),
        false,
    );
    add_pvc(&s, "c", json!({ "storageClassName": "kms" }), json!({}));
    let f = run(&pod(json!([pvc_volume("data", "c")])), &s);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    // Each parameter that does not encrypt is named, its value never.
    assert_names(&f[0].message, "kmsKeyId");
    assert_names(&f[0].message, "ext4EncryptionSupport");
    for text in [&f[0].message, &f[0].remediation] {
        assert_no_value(text, "arn:aws");
    }
    // No encrypting class to offer: the failing one is not offered.
    assert!(!names(&f[0].remediation, "kms"), "{}", f[0].remediation);
}

#[test]
fn legacy_in_tree_aws_provisioner_is_judged_like_the_csi_driver() {
    let s = ClusterState::new();
    add_storage_class(
        &s,
        "old",
        "kubernetes.io/aws-ebs",
        json!({ "encrypted": "true" }),
        false,
    );
    add_storage_class(&s, "old-plain", "kubernetes.io/aws-ebs", json!({}), false);
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
    add_storage_class(
        &s,
        "enc",
        "ebs.csi.aws.com",
        json!({ "encrypted": "true" }),
        true,
    );
    add_pvc(&s, "c", json!({}), json!({}));
    assert!(run(&pod(json!([pvc_volume("data", "c")])), &s).is_empty());

    let s = ClusterState::new();
    add_storage_class(&s, "plain", "ebs.csi.aws.com", json!({}), true);
    add_storage_class(
        &s,
        "enc",
        "ebs.csi.aws.com",
        json!({ "encrypted": "true" }),
        false,
    );
    add_pvc(&s, "c", json!({}), json!({}));
    let f = run(&pod(json!([pvc_volume("data", "c")])), &s);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    for named in [
        "storageClassName",
        "plain",
        "ebs.csi.aws.com",
        "parameters.encrypted",
    ] {
        assert_names(&f[0].message, named);
    }
    assert_names(&f[0].remediation, "enc");
}

#[test]
fn unset_class_without_a_default_class_is_a_finding() {
    let s = ClusterState::new();
    add_storage_class(
        &s,
        "enc",
        "ebs.csi.aws.com",
        json!({ "encrypted": "true" }),
        false,
    );
    add_pvc(&s, "c", json!({}), json!({}));
    let f = run(&pod(json!([pvc_volume("data", "c")])), &s);
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].reason,
        crate::verdict::Reason::NoDefaultStorageClass,
        "{}",
        f[0].message
    );
    assert_names(&f[0].remediation, "enc");
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
    assert_eq!(f[0].reason, Reason::UnknownClaim);
    assert_names(&f[0].message, "absent");
    assert_names(&f[0].message, NS);
    assert_names(&f[0].remediation, "absent");
    assert_eq!(f[1].reason, Reason::UnknownStorageClass);
    assert_names(&f[1].message, "nope");
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
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    for named in [
        "pv-plain",
        "ebs.csi.aws.com",
        "spec.csi.volumeAttributes.encrypted",
    ] {
        assert_names(&f[0].message, named);
    }
    assert_eq!(
        f[1].reason,
        crate::verdict::Reason::UnprovableVolumeSource,
        "{}",
        f[1].message
    );
    assert_eq!(f[2].reason, Reason::UnknownPersistentVolume);
    assert_names(&f[2].message, "pv-ghost");
    assert_eq!(f[3].reason, Reason::StaticBindingWithoutVolume);
    assert_names(&f[3].message, "spec.volumeName");
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
    assert_eq!(
        f[1].reason,
        crate::verdict::Reason::InlineVolumeNotAllowed,
        "{}",
        f[1].message
    );
    assert_eq!(f[1].mode, Mode::Enforce);
}

#[test]
fn statefulset_claim_templates_carry_their_own_class() {
    let s = ebs_state();
    add_storage_class(&s, "dflt", "ebs.csi.aws.com", json!({}), true);
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
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[0].message, "wal");
    assert_names(&f[0].message, "standard");
    assert_eq!(f[1].path, "spec.volumeClaimTemplates[2]");
    assert_eq!(f[1].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[1].message, "tmp");
    assert_names(&f[1].message, "dflt");
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
    assert_eq!(
        f[0].reason,
        crate::verdict::Reason::NodeDiskVolume,
        "{}",
        f[0].message
    );
    assert_names(&f[0].remediation, "emptyDir.medium");
    assert_eq!(f[1].path, "spec.jobTemplate.spec.template.spec.volumes[2]");
    assert_eq!(f[1].reason, Reason::NodeDiskVolume);
    assert_names(&f[1].message, "bare");

    let attested = policy_with(|a| a.attest_node_disk_encryption = true);
    assert!(run_with(&w, &s, &attested).is_empty());
}

#[test]
fn generic_ephemeral_volumes_use_their_template_class() {
    let s = ebs_state();
    add_storage_class(&s, "px", "pxd.portworx.com", json!({}), false);
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
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[0].message, "b");
    assert_names(&f[0].message, "standard");
    assert_eq!(f[1].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[1].message, "px/secure");
    assert_eq!(
        f[2].reason,
        crate::verdict::Reason::EphemeralWithoutTemplate,
        "{}",
        f[2].message
    );
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
    assert_eq!(f[0].reason, Reason::InlineVolumeNotAllowed);
    assert_names(&f[0].message, "host");
    assert_names(&f[0].message, "hostPath");
    assert_eq!(
        f[1].reason,
        crate::verdict::Reason::InlineVolumeNotAllowed,
        "{}",
        f[1].message
    );
    assert_eq!(
        f[2].reason,
        crate::verdict::Reason::InlineVolumeNotAllowed,
        "{}",
        f[2].message
    );
    // The fix lists the policy's allowed types, which hostPath is not.
    assert_names(&f[0].remediation, "configMap");
    assert!(
        !names(&f[0].remediation, "hostPath"),
        "{}",
        f[0].remediation
    );

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
    assert_eq!(
        f[0].reason,
        crate::verdict::Reason::InlineCsiDriverNotAllowed,
        "{}",
        f[0].message
    );
    assert_names(&f[0].message, "blob.csi.azure.com");
    assert_names(
        &f[0].remediation,
        "encryptionAtRest.allowedInlineCsiDrivers",
    );
}

#[test]
fn provider_default_encryption_counts_only_with_attestation() {
    let s = ClusterState::new();
    add_storage_class(
        &s,
        "gke",
        "pd.csi.storage.gke.io",
        json!({ "type": "pd-ssd" }),
        false,
    );
    add_storage_class(
        &s,
        "gke-cmek",
        "pd.csi.storage.gke.io",
        json!({ "disk-encryption-kms-key": "projects/p/locations/l/keyRings/r/cryptoKeys/k" }),
        false,
    );
    add_storage_class(&s, "legacy-gce", "kubernetes.io/gce-pd", json!({}), false);
    add_storage_class(&s, "azd", "disk.csi.azure.com", json!({}), false);
    add_storage_class(
        &s,
        "azd-des",
        "disk.csi.azure.com",
        json!({ "DiskEncryptionSetID": "/subscriptions/x" }),
        false,
    );
    add_storage_class(&s, "azf", "file.csi.azure.com", json!({}), false);
    add_storage_class(
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
            "spec.volumes[5]",
            "spec.volumes[6]"
        ],
        "{f:#?}"
    );
    assert_eq!(f[0].reason, Reason::ProviderDefaultNotAttested);
    assert_names(&f[0].message, "disk-encryption-kms-key");
    assert_names(
        &f[0].remediation,
        "encryptionAtRest.attestProviderDefaultEncryption",
    );
    for available in ["azd-des", "gke-cmek"] {
        assert_names(&f[0].remediation, available);
    }
    for x in &f {
        for text in [&x.message, &x.remediation] {
            assert_no_value(text, "projects/");
            assert_no_value(text, "/subscriptions/x");
        }
    }
    assert_eq!(f[4].reason, Reason::ProviderDefaultNotAttested);
    assert_names(&f[4].message, "efs.csi.aws.com");

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
            json!({ "encrypted": "True" }), // strconv.ParseBool accepts True
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
            json!({ "Encryption": "on" }), // keys in any case, values exact
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
        add_storage_class(&s, name, prov, params.clone(), false);
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
    // CephFS with encrypted: "false": only OSD disk encryption could protect it.
    assert_eq!(f[0].reason, Reason::NodeDiskNotAttested);
    assert_names(&f[0].message, "parameters.encrypted");
    assert_eq!(
        f[1].reason,
        crate::verdict::Reason::UnencryptedStorageClass,
        "{}",
        f[1].message
    );
    assert_eq!(f[3].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[3].message, "parameters.encryption");
}

#[test]
fn vsphere_counts_only_when_allowlisted_by_name() {
    let s = ClusterState::new();
    add_storage_class(
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
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[0].message, VSPHERE_ENCRYPTION_CLASS);
    assert_names(
        &f[0].remediation,
        "encryptionAtRest.encryptedStorageClasses",
    );
    for text in [&f[0].message, &f[0].remediation] {
        assert_no_value(text, "VM Encryption Policy");
    }
    let allow = policy_with(|a| a.encrypted_storage_classes = vec!["vsan-encrypted".into()]);
    assert!(run_with(&w, &s, &allow).is_empty());
}

#[test]
fn custom_provisioner_matchers_need_every_parameter() {
    let s = ClusterState::new();
    add_storage_class(
        &s,
        "acme-enc",
        "storage.acme.io",
        json!({ "Encryption": "YES", "Cipher": "AES" }),
        false,
    );
    add_storage_class(
        &s,
        "acme-half",
        "storage.acme.io",
        json!({ "encryption": "yes" }),
        false,
    );
    add_storage_class(&s, "acme", "storage.acme.io", json!({}), false);
    let mut vols = Vec::new();
    for n in ["acme-enc", "acme-half", "acme"] {
        add_pvc(&s, n, json!({ "storageClassName": n }), json!({}));
        vols.push(pvc_volume(n, n));
    }
    let w = pod(Value::Array(vols));
    let f = run(&w, &s);
    assert_eq!(f.len(), 3, "unknown provisioner is not encrypted");
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[0].message, "storage.acme.io");
    assert_names(&f[0].remediation, "encryptionAtRest.provisioners");

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
    assert_names(&f[0].remediation, "acme-enc");
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
    assert_eq!(at_rest[0].reason, Reason::UnencryptedStorageClass);
    // A claim's class cannot change: the fix says which volume to point at a new claim.
    assert_names(&at_rest[0].remediation, "data");
}

#[test]
fn a_pvc_in_scope_is_judged_itself() {
    let s = ebs_state();
    add_storage_class(&s, "px", "pxd.portworx.com", json!({}), false);
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
    assert_eq!(f[0].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[0].message, "pg-data");
    assert_names(&f[0].message, "standard");
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
            assert_no_value(text, "patient-ssn-123");
            assert_no_value(text, "secret-env-value");
            assert_no_value(text, "/secret-path");
        }
    }
}

/// Parameters are read as each driver reads them (a spelling the driver ignores must not pass): the EBS driver lower-cases
/// keys but encrypts only for the exact value "true"; Ceph CSI, Longhorn and Portworx look the
/// key up as written and parse the value with Go's strconv.ParseBool; OpenEBS ZFS takes keys in
/// any case and hands the value to ZFS, which compares it case-sensitively; Azure Disk refuses a
/// diskEncryptionType without a diskEncryptionSetID.
#[test]
fn parameters_are_read_exactly_as_each_driver_reads_them() {
    let s = ClusterState::new();
    let classes = [
        (
            "ebs-lower",
            "ebs.csi.aws.com",
            json!({ "encrypted": "true" }),
            true,
        ),
        (
            "ebs-key-case",
            "ebs.csi.aws.com",
            json!({ "ENCRYPTED": "true" }),
            true,
        ),
        (
            "ebs-title",
            "ebs.csi.aws.com",
            json!({ "encrypted": "True" }),
            false,
        ),
        (
            "ebs-upper",
            "ebs.csi.aws.com",
            json!({ "encrypted": "TRUE" }),
            false,
        ),
        (
            "ebs-space",
            "ebs.csi.aws.com",
            json!({ "encrypted": " true" }),
            false,
        ),
        (
            "ebs-one",
            "ebs.csi.aws.com",
            json!({ "encrypted": "1" }),
            false,
        ),
        (
            "intree-ebs",
            "kubernetes.io/aws-ebs",
            json!({ "encrypted": "True" }),
            false,
        ),
        (
            "rbd-T",
            "rbd.csi.ceph.com",
            json!({ "encrypted": "T" }),
            true,
        ),
        (
            "rbd-key-case",
            "rbd.csi.ceph.com",
            json!({ "Encrypted": "true" }),
            false,
        ),
        (
            "rbd-yes",
            "rbd.csi.ceph.com",
            json!({ "encrypted": "yes" }),
            false,
        ),
        (
            "rbd-luks-type",
            "rbd.csi.ceph.com",
            json!({ "encrypted": "true", "encryptionType": "luks" }),
            false,
        ),
        (
            "cephfs-block",
            "cephfs.csi.ceph.com",
            json!({ "encrypted": "true", "encryptionType": "block" }),
            false,
        ),
        (
            "cephfs-file",
            "cephfs.csi.ceph.com",
            json!({ "encrypted": "1", "encryptionType": "file" }),
            true,
        ),
        (
            "longhorn-key-case",
            "driver.longhorn.io",
            json!({ "Encrypted": "true" }),
            false,
        ),
        (
            "longhorn-TRUE",
            "driver.longhorn.io",
            json!({ "encrypted": "TRUE" }),
            true,
        ),
        (
            "zfs-ON",
            "zfs.csi.openebs.io",
            json!({ "encryption": "ON" }),
            false,
        ),
        (
            "zfs-AES",
            "zfs.csi.openebs.io",
            json!({ "encryption": "AES-256-GCM" }),
            false,
        ),
        (
            "px-key-case",
            "pxd.portworx.com",
            json!({ "Secure": "true" }),
            false,
        ),
        ("px-t", "pxd.portworx.com", json!({ "secure": "t" }), true),
        (
            "azd-type-only",
            "disk.csi.azure.com",
            json!({ "diskEncryptionType": "EncryptionAtRestWithCustomerKey" }),
            false,
        ),
        (
            "azd-des-lower",
            "disk.csi.azure.com",
            json!({ "diskencryptionsetid": "/subscriptions/x" }),
            true,
        ),
    ];
    let mut vols = Vec::new();
    for (name, prov, params, _) in &classes {
        add_storage_class(&s, name, prov, params.clone(), false);
        add_pvc(&s, name, json!({ "storageClassName": name }), json!({}));
        vols.push(pvc_volume(name, name));
    }
    let f = run(&pod(Value::Array(vols)), &s);
    let flagged: Vec<&str> = f
        .iter()
        .filter_map(|f| {
            let i: usize = f
                .path
                .strip_prefix("spec.volumes[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some(classes[i].0)
        })
        .collect();
    let expected: Vec<&str> = classes.iter().filter(|c| !c.3).map(|c| c.0).collect();
    assert_eq!(flagged, expected, "{f:#?}");
    let title = f
        .iter()
        .find(|f| names(&f.message, "ebs-title"))
        .expect("ebs-title");
    assert_eq!(title.reason, Reason::UnencryptedStorageClass);
    assert_names(&title.message, "parameters.encrypted");
    assert!(f.iter().all(|f| f.rule == RuleId::EncryptionAtRest));
    let azd = f
        .iter()
        .find(|f| names(&f.message, "azd-type-only"))
        .expect("azd");
    assert_eq!(azd.reason, Reason::UnencryptedStorageClass);
    assert_names(&azd.message, "parameters.diskEncryptionType");
    assert_names(&azd.message, "diskEncryptionSetID");
}

/// The LUKS and CSI-native provisioners (Trident, Hetzner, DigitalOcean, cloudscale, Linode,
/// Oracle, IBM VPC, LINSTOR, TopoLVM), from StorageClass manifests as their drivers' docs ship
/// them, each read as the driver reads it.
#[test]
fn more_provisioners_from_realistic_manifests() {
    let s = ClusterState::new();
    let classes = [
        // NetApp Trident (docs: ontap-nas with NVE pools).
        (
            "trident-enc",
            "csi.trident.netapp.io",
            json!({ "backendType": "ontap-nas", "encryption": "true", "fsType": "ext4" }),
            true,
        ),
        (
            "trident-prefixed",
            "csi.trident.netapp.io",
            json!({ "trident.netapp.io/encryption": "True" }),
            true,
        ),
        (
            "trident-plain",
            "csi.trident.netapp.io",
            json!({ "backendType": "ontap-san", "media": "ssd" }),
            false,
        ),
        // Hetzner: LUKS through the node-publish Secret.
        (
            "hcloud-luks",
            "csi.hetzner.cloud",
            json!({
                "csi.storage.k8s.io/node-publish-secret-name": "encryption-secret",
                "csi.storage.k8s.io/node-publish-secret-namespace": "kube-system",
            }),
            true,
        ),
        ("hcloud", "csi.hetzner.cloud", json!({}), false),
        // DigitalOcean LUKS.
        (
            "do-luks",
            "dobs.csi.digitalocean.com",
            json!({
                "dobs.csi.digitalocean.com/luks-encrypted": "true",
                "dobs.csi.digitalocean.com/luks-cipher": "aes-xts-plain64",
                "dobs.csi.digitalocean.com/luks-key-size": "512",
                "csi.storage.k8s.io/node-stage-secret-namespace": "default",
                "csi.storage.k8s.io/node-stage-secret-name": "luks-key",
            }),
            true,
        ),
        (
            "do-luks-True",
            "dobs.csi.digitalocean.com",
            json!({ "dobs.csi.digitalocean.com/luks-encrypted": "True" }),
            false,
        ),
        // cloudscale's shipped LUKS class.
        (
            "cloudscale-volume-ssd-luks",
            "csi.cloudscale.ch",
            json!({
                "csi.cloudscale.ch/volume-type": "ssd",
                "csi.cloudscale.ch/luks-encrypted": "true",
                "csi.cloudscale.ch/luks-cipher": "aes-xts-plain64",
                "csi.cloudscale.ch/luks-key-size": "512",
                "csi.storage.k8s.io/node-stage-secret-namespace": "${pvc.namespace}",
                "csi.storage.k8s.io/node-stage-secret-name": "${pvc.name}-luks-key",
            }),
            true,
        ),
        (
            "cloudscale-volume-ssd",
            "csi.cloudscale.ch",
            json!({ "csi.cloudscale.ch/volume-type": "ssd" }),
            false,
        ),
        // Linode: Block Storage encryption, LUKS, and neither.
        (
            "linode-block-storage-encrypted",
            "linodebs.csi.linode.com",
            json!({ "linodebs.csi.linode.com/encrypted": "true" }),
            true,
        ),
        (
            "linode-block-storage-retain-luks",
            "linodebs.csi.linode.com",
            json!({
                "linodebs.csi.linode.com/luks-encrypted": "true",
                "linodebs.csi.linode.com/luks-cipher": "aes-xts-plain64",
                "linodebs.csi.linode.com/luks-key-size": "512",
                "csi.storage.k8s.io/node-stage-secret-namespace": "csi-encrypt-example",
                "csi.storage.k8s.io/node-stage-secret-name": "csi-encrypt-example-luks-key",
            }),
            true,
        ),
        (
            "linode-block-storage",
            "linodebs.csi.linode.com",
            json!({}),
            false,
        ),
        // Oracle with a customer key (without one: provider default, below).
        (
            "oci-bv-cmk",
            "blockvolume.csi.oraclecloud.com",
            json!({ "kms-key-id": "ocid1.key.oc1.iad.example", "attachment-type": "paravirtualized" }),
            true,
        ),
        // IBM VPC with a customer key.
        (
            "ibmc-vpc-block-10iops-tier-cmk",
            "vpc.block.csi.ibm.io",
            json!({
                "profile": "10iops-tier",
                "encrypted": "true",
                "encryptionKey": "crn:v1:bluemix:public:kms:us-south:a/x:y:key:z",
                "csi.storage.k8s.io/fstype": "ext4",
            }),
            true,
        ),
        // LINSTOR: luks in the layer list, in either key spelling the driver accepts.
        (
            "linstor-luks",
            "linstor.csi.linbit.com",
            json!({
                "linstor.csi.linbit.com/storagePool": "lvm-thin",
                "linstor.csi.linbit.com/layerList": "drbd luks storage",
                "linstor.csi.linbit.com/placementCount": "2",
            }),
            true,
        ),
        (
            "linstor-bare-key",
            "linstor.csi.linbit.com",
            json!({ "layerlist": "LUKS storage" }),
            true,
        ),
        (
            "linstor-drbd",
            "linstor.csi.linbit.com",
            json!({ "linstor.csi.linbit.com/layerList": "drbd storage" }),
            false,
        ),
        (
            "linstor-other-namespace",
            "linstor.csi.linbit.com",
            json!({ "example.com/layerList": "luks storage" }),
            false,
        ),
        // Rook/ODF RBD with a KMS.
        (
            "ocs-storagecluster-ceph-rbd-encrypted",
            "openshift-storage.rbd.csi.ceph.com",
            json!({
                "clusterID": "openshift-storage",
                "pool": "ocs-storagecluster-cephblockpool",
                "encrypted": "true",
                "encryptionKMSID": "vault-kms",
            }),
            true,
        ),
        // TopoLVM: never encrypted by the driver.
        (
            "topolvm-provisioner",
            "topolvm.io",
            json!({ "csi.storage.k8s.io/fstype": "xfs", "topolvm.io/device-class": "ssd" }),
            false,
        ),
    ];
    let mut vols = Vec::new();
    for (name, prov, params, _) in &classes {
        add_storage_class(&s, name, prov, params.clone(), false);
        add_pvc(&s, name, json!({ "storageClassName": name }), json!({}));
        vols.push(pvc_volume(name, name));
    }
    let w = pod(Value::Array(vols));
    let f = run(&w, &s);
    let flagged: Vec<&str> = f
        .iter()
        .filter_map(|f| {
            let i: usize = f
                .path
                .strip_prefix("spec.volumes[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some(classes[i].0)
        })
        .collect();
    let expected: Vec<&str> = classes.iter().filter(|c| !c.3).map(|c| c.0).collect();
    assert_eq!(flagged, expected, "{f:#?}");
    let of = |class: &str| {
        f.iter()
            .find(|f| names(&f.message, class))
            .unwrap_or_else(|| panic!("no finding for {class}"))
    };
    // Each names the parameter the driver reads (as the driver spells it).
    for (class, parameter) in [
        ("trident-plain", "parameters.encryption"),
        (
            "hcloud",
            "parameters.csi.storage.k8s.io/node-publish-secret-name",
        ),
        (
            "do-luks-True",
            "parameters.dobs.csi.digitalocean.com/luks-encrypted",
        ),
        (
            "linstor-drbd",
            "parameters.linstor.csi.linbit.com/layerList",
        ),
    ] {
        assert_eq!(of(class).reason, Reason::UnencryptedStorageClass, "{class}");
        assert_names(&of(class).message, parameter);
    }
    let topo = of("topolvm-provisioner");
    assert_eq!(topo.reason, Reason::NodeDiskNotAttested);
    assert_names(&topo.message, "topolvm.io");
    assert_names(
        &topo.remediation,
        "encryptionAtRest.attestNodeDiskEncryption",
    );
    for x in &f {
        // Parameter values (key IDs, CRNs, Secret names) are never echoed.
        for text in [&x.message, &x.remediation] {
            assert_no_value(text, "ocid1.key");
            assert_no_value(text, "crn:v1");
            assert_no_value(text, "csi-encrypt-example-luks-key");
        }
    }

    // TopoLVM counts once node disks are attested encrypted; nothing else changes.
    let attested = policy_with(|a| a.attest_node_disk_encryption = true);
    let f2 = run_with(&w, &s, &attested);
    assert_eq!(f2.len(), expected.len() - 1, "{f2:#?}");
    assert!(f2.iter().all(|f| f.path != topo.path), "{f2:#?}");
}

/// Oracle and IBM VPC volumes are always encrypted by the provider: without a customer key they
/// count only with the provider-default attestation.
#[test]
fn oracle_and_ibm_provider_default_needs_attestation() {
    let s = ClusterState::new();
    add_storage_class(
        &s,
        "oci-bv",
        "blockvolume.csi.oraclecloud.com",
        json!({ "attachment-type": "paravirtualized" }),
        false,
    );
    add_storage_class(
        &s,
        "ibmc-vpc-block-5iops-tier",
        "vpc.block.csi.ibm.io",
        json!({ "profile": "5iops-tier", "encrypted": "false" }),
        false,
    );
    add_pvc(&s, "a", json!({ "storageClassName": "oci-bv" }), json!({}));
    add_pvc(
        &s,
        "b",
        json!({ "storageClassName": "ibmc-vpc-block-5iops-tier" }),
        json!({}),
    );
    let w = pod(json!([pvc_volume("a", "a"), pvc_volume("b", "b")]));
    let f = run(&w, &s);
    assert_eq!(f.len(), 2, "{f:#?}");
    // Each names its provisioner and the customer-key parameter it lacks.
    for (x, named) in f.iter().zip([
        ["blockvolume.csi.oraclecloud.com", "kms-key-id"],
        ["vpc.block.csi.ibm.io", "encryptionKey"],
    ]) {
        assert_eq!(x.reason, Reason::ProviderDefaultNotAttested);
        for id in named {
            assert_names(&x.message, id);
        }
        assert_names(
            &x.remediation,
            "encryptionAtRest.attestProviderDefaultEncryption",
        );
    }
    let attested = policy_with(|a| a.attest_provider_default_encryption = true);
    assert!(run_with(&w, &s, &attested).is_empty());
}

/// Ceph RBD without `encrypted: "true"` can only be protected by OSD disk encryption (Rook
/// CephCluster encryptedDevice), attested as node disk encryption; vSphere counts with the
/// claim's EncryptionClass annotation.
#[test]
fn ceph_osd_encryption_is_attested_and_vsphere_encryption_class_counts() {
    let s = ClusterState::new();
    add_storage_class(
        &s,
        "rook-ceph-block",
        "rook-ceph.rbd.csi.ceph.com",
        json!({ "clusterID": "rook-ceph", "pool": "replicapool", "imageFeatures": "layering" }),
        false,
    );
    add_storage_class(
        &s,
        "wcp-policy",
        "csi.vsphere.vmware.com",
        json!({ "storagePolicyID": "aa6d5a82-1c88-45da-85d3-3d74b91a5bad" }),
        false,
    );
    add_pvc(
        &s,
        "ceph",
        json!({ "storageClassName": "rook-ceph-block" }),
        json!({}),
    );
    add_pvc(
        &s,
        "vs-plain",
        json!({ "storageClassName": "wcp-policy" }),
        json!({}),
    );
    add_pvc(
        &s,
        "vs-enc",
        json!({ "storageClassName": "wcp-policy" }),
        json!({ "csi.vsphere.encryption-class": "my-encryption-class" }),
    );
    let w = pod(json!([
        pvc_volume("ceph", "ceph"),
        pvc_volume("vs-plain", "vs-plain"),
        pvc_volume("vs-enc", "vs-enc")
    ]));
    let f = run(&w, &s);
    let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["spec.volumes[0]", "spec.volumes[1]"], "{f:#?}");
    // Ceph without encrypted: "true" is a node (OSD) disk matter, attestable.
    assert_eq!(f[0].reason, Reason::NodeDiskNotAttested);
    assert_names(&f[0].message, "parameters.encrypted");
    assert_names(
        &f[0].remediation,
        "encryptionAtRest.attestNodeDiskEncryption",
    );
    assert_eq!(f[1].reason, Reason::UnencryptedStorageClass);
    assert_names(&f[1].message, VSPHERE_ENCRYPTION_CLASS);
    for x in &f {
        for text in [&x.message, &x.remediation] {
            assert_no_value(text, "my-encryption-class");
            assert_no_value(text, "aa6d5a82");
        }
    }
    let attested = policy_with(|a| a.attest_node_disk_encryption = true);
    let f2 = run_with(&w, &s, &attested);
    let paths: Vec<&str> = f2.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["spec.volumes[1]"], "{f2:#?}");
}
