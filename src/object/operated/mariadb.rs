//! mariadb-operator `MariaDB`: storage, TLS and pod metadata.
use serde::Deserialize;

use super::*;

// mariadb-operator `k8s.mariadb.com/v1alpha1` MariaDB (api/v1alpha1/mariadb_types.go: Storage,
// TLS with SetDefaults enabling it when unset, IsTLSRequired).

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct MariaDbSpec {
    #[serde(default)]
    storage: Option<MariaDbStorage>,
    #[serde(default)]
    tls: Option<MariaDbTls>,
    #[serde(default)]
    inherit_metadata: Option<PodMeta>,
    #[serde(default)]
    pod_metadata: Option<PodMeta>,
    #[serde(default, deserialize_with = "null_default")]
    sidecar_containers: Vec<Container>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MariaDbStorage {
    #[serde(default)]
    ephemeral: Option<bool>,
    #[serde(default)]
    storage_class_name: Option<String>,
    #[serde(default)]
    volume_claim_template: Option<ClaimSpec>,
}

#[derive(Deserialize, Default)]
struct MariaDbTls {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    required: Option<bool>,
}

pub(super) fn mariadb(meta: &Meta, spec: MariaDbSpec) -> OperatedView {
    let mut v = OperatedView {
        operator: Operator::MariaDb,
        claims: Vec::new(),
        node_disk: Vec::new(),
        volumes: Vec::new(),
        plaintext: Vec::new(),
        pod_labels: Labels::new(),
        pod_meta_path: "spec.podMetadata",
        // pkg/builder/labels WithMariaDBSelectorLabels.
        operator_labels: named(
            meta.name.as_deref(),
            &[
                ("app.kubernetes.io/name", "mariadb".into()),
                ("app.kubernetes.io/instance", "{}".into()),
            ],
        ),
        sidecar_field: Some("spec.sidecarContainers"),
        sidecar_groups: vec![(
            "spec.sidecarContainers".into(),
            spec.sidecar_containers.clone(),
        )],
    };
    let storage = spec.storage.unwrap_or_default();
    if storage.ephemeral == Some(true) {
        v.node_disk.push("spec.storage.ephemeral".into());
    } else {
        // `storageClassName` supersedes the template's; an empty one is unset (Go's zero
        // value: the field is a plain string).
        let own = storage.storage_class_name.filter(|s| !s.is_empty());
        let from_template = storage
            .volume_claim_template
            .and_then(|t| t.storage_class_name);
        let path = if own.is_some() || from_template.is_none() {
            "spec.storage.storageClassName"
        } else {
            "spec.storage.volumeClaimTemplate.storageClassName"
        };
        v.claims.push(claim(
            path.into(),
            "the spec.storage claims".into(),
            own.or(from_template),
        ));
    }
    // Unset `tls` is defaulted to enabled; `required` defaults to false: TLS offered, plaintext
    // still accepted.
    let tls = spec.tls.unwrap_or(MariaDbTls {
        enabled: Some(true),
        required: None,
    });
    if tls.enabled != Some(true) {
        v.plaintext.push(Plaintext {
            path: "spec.tls.enabled".into(),
            message: "MariaDB serves without TLS (spec.tls.enabled is not true)".into(),
            fix: "Set spec.tls.enabled: true and spec.tls.required: true.".into(),
        });
    } else if tls.required != Some(true) {
        v.plaintext.push(Plaintext {
            path: "spec.tls.required".into(),
            message: "MariaDB offers TLS but also accepts clients that connect without it (spec.tls.required is not true)".into(),
            fix: "Set spec.tls.required: true.".into(),
        });
    }
    let mut labels = spec.inherit_metadata.map(|m| m.labels).unwrap_or_default();
    labels.extend(
        spec.pod_metadata
            .map(|m| m.labels)
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    v.pod_labels = labels;
    v
}
