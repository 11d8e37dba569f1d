//! How operators' resources are read.

use super::*;

fn hba(lines: &[&str]) -> bool {
    cnpg::pg_hba_requires_tls(&lines.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

fn view(kind: crate::object::Kind, json: serde_json::Value) -> OperatedView {
    match crate::object::Object::from_value(kind, &json, Some("ns")) {
        Ok(crate::object::Object {
            body: crate::object::Body::Operated(v),
            ..
        }) => *v,
        other => panic!("not an operated view: {other:?}"),
    }
}

#[test]
fn cnpg_storage_class_wins_over_the_pvc_template_as_the_operator_applies_it() {
    let v = view(
        crate::object::Kind::CnpgCluster,
        serde_json::json!({"metadata": {"name": "db", "labels": {"a": "b"}},
            "spec": {"storage": {"storageClass": "enc", "pvcTemplate": {"storageClassName": "plain"}},
                     "walStorage": {"pvcTemplate": {"storageClassName": "plain"}}}}),
    );
    let classes: Vec<_> = v
        .claims
        .iter()
        .map(|c| (c.path.as_str(), c.spec.storage_class_name.as_deref()))
        .collect();
    assert_eq!(
        classes,
        [
            ("spec.storage.storageClass", Some("enc")),
            (
                "spec.walStorage.pvcTemplate.storageClassName",
                Some("plain")
            )
        ]
    );
    // The Cluster's own labels do not reach its pods; its selector label does.
    assert!(v.pod_labels.is_empty());
    assert_eq!(
        v.operator_labels.get("cnpg.io/cluster").map(String::as_str),
        Some("db")
    );
    assert_eq!(v.plaintext.len(), 1);
}

#[test]
fn strimzi_copies_the_resources_labels_but_app_kubernetes_io() {
    let v = view(
        crate::object::Kind::KafkaNodePool,
        serde_json::json!({"metadata": {"name": "pool", "labels": {
                "strimzi.io/cluster": "events", "app.kubernetes.io/name": "x",
                "app.kubernetes.io/part-of": "y", "team": "t"}},
            "spec": {"template": {"pod": {"metadata": {"labels": {"extra": "1"}}}}}}),
    );
    let keys: Vec<&String> = v.pod_labels.keys().collect();
    assert_eq!(
        keys,
        [
            "app.kubernetes.io/part-of",
            "extra",
            "strimzi.io/cluster",
            "team"
        ]
    );
    assert_eq!(
        v.operator_labels
            .get("strimzi.io/pool-name")
            .map(String::as_str),
        Some("pool")
    );
    // No storage: judged as claims on the default class, never as encrypted.
    assert_eq!(v.claims.len(), 1);
    assert_eq!(v.claims[0].spec.storage_class_name, None);
}

#[test]
fn eck_http_tls_is_off_only_without_a_self_signed_or_own_certificate() {
    let es = |tls: serde_json::Value| {
        view(
            crate::object::Kind::Elasticsearch,
            serde_json::json!({"metadata": {"name": "es"}, "spec": {"http": {"tls": tls}}}),
        )
        .plaintext
        .len()
    };
    assert_eq!(es(serde_json::json!({})), 0);
    assert_eq!(
        es(serde_json::json!({"selfSignedCertificate": {"disabled": true}})),
        1
    );
    assert_eq!(
        es(
            serde_json::json!({"selfSignedCertificate": {"disabled": true},
                              "certificate": {"secretName": "es-cert"}})
        ),
        0
    );
}

#[test]
fn mariadb_tls_is_on_by_default_but_required_only_when_set() {
    let m = |spec: serde_json::Value| {
        view(
            crate::object::Kind::MariaDb,
            serde_json::json!({"metadata": {"name": "m"}, "spec": spec}),
        )
    };
    let unset = m(serde_json::json!({"storage": {"size": "1Gi"}}));
    assert_eq!(unset.plaintext[0].path, "spec.tls.required");
    let off = m(serde_json::json!({"tls": {"enabled": false, "required": true}}));
    assert_eq!(off.plaintext[0].path, "spec.tls.enabled");
    let on = m(
        serde_json::json!({"tls": {"enabled": true, "required": true},
        "storage": {"storageClassName": "", "volumeClaimTemplate": {"storageClassName": "enc"}}}),
    );
    assert!(on.plaintext.is_empty());
    assert_eq!(on.claims[0].spec.storage_class_name.as_deref(), Some("enc"));
}

#[test]
fn a_field_of_the_wrong_type_is_an_error_not_a_panic() {
    let r = crate::object::Object::from_value(
        crate::object::Kind::CnpgCluster,
        &serde_json::json!({"spec": {"tablespaces": {"a": {}}}}),
        None,
    );
    let e = r.err().map(|e| e.message).unwrap_or_default();
    assert!(e.contains("invalid type"), "{e}");
}

#[test]
pub(super) fn pg_hba_requires_tls_only_when_plaintext_is_rejected_first() {
    assert!(hba(&["hostnossl all all all reject"]));
    assert!(hba(&[
        "hostnossl all all 0.0.0.0/0 reject",
        "hostnossl all all ::/0 reject",
        "host all all all scram-sha-256",
    ]));
    assert!(!hba(&[]));
    assert!(!hba(&["hostnossl all all 0.0.0.0/0 reject"]));
    assert!(!hba(&[
        "host app app 10.0.0.0/8 md5",
        "hostnossl all all all reject"
    ]));
    assert!(!hba(&["hostnossl app all all reject"]));
    assert!(hba(&[
        "hostssl all all all scram-sha-256",
        "hostnossl all all all reject"
    ]));
}
