//! CloudNativePG `Cluster`: its claims, pg_hba and inherited labels.
use serde::Deserialize;

use super::*;

// CloudNativePG `postgresql.cnpg.io/v1` Cluster (api/v1/cluster_types.go).

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct CnpgSpec {
    #[serde(default)]
    storage: Option<CnpgStorage>,
    #[serde(default)]
    wal_storage: Option<CnpgStorage>,
    #[serde(default, deserialize_with = "null_default")]
    tablespaces: Vec<CnpgTablespace>,
    #[serde(default)]
    ephemeral_volume_source: Option<CnpgEphemeral>,
    #[serde(default)]
    postgresql: Option<CnpgPostgres>,
    #[serde(default)]
    inherited_metadata: Option<PodMeta>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CnpgStorage {
    #[serde(default)]
    storage_class: Option<String>,
    #[serde(default)]
    pvc_template: Option<ClaimSpec>,
}

#[derive(Deserialize, Default)]
struct CnpgTablespace {
    #[serde(default)]
    storage: CnpgStorage,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CnpgEphemeral {
    #[serde(default)]
    volume_claim_template: Option<ClaimTemplate>,
}

#[derive(Deserialize, Default)]
struct CnpgPostgres {
    #[serde(default, deserialize_with = "null_default")]
    pg_hba: Vec<String>,
}

/// `storageClass` is applied after the `pvcTemplate` (pkg/reconciler/persistentvolumeclaim/
/// build.go), so it wins; neither set means the default class.
fn cnpg_claim(path: &str, s: &CnpgStorage) -> OperatedClaim {
    let class = s.storage_class.clone().or_else(|| {
        s.pvc_template
            .as_ref()
            .and_then(|t| t.storage_class_name.clone())
    });
    let at = if s.storage_class.is_some() || class.is_none() {
        format!("{path}.storageClass")
    } else {
        format!("{path}.pvcTemplate.storageClassName")
    };
    claim(at, format!("the {path} claims"), class)
}

/// Does `pg_hba` reject every connection without TLS before CloudNativePG's default rule
/// `host all all all <method>` (pkg/postgres/configuration.go: user rules come first, then the
/// default, which accepts plaintext)? PostgreSQL takes the first matching line, so a
/// `hostnossl all all <everywhere> reject` line must come before any `host` line that could
/// match first.
pub(super) fn pg_hba_requires_tls(rules: &[String]) -> bool {
    let mut v4 = false;
    let mut v6 = false;
    for rule in rules {
        let f: Vec<&str> = rule.split_whitespace().collect();
        match f.as_slice() {
            ["hostnossl", "all", "all", addr, "reject", ..] => match *addr {
                "all" => return true,
                "0.0.0.0/0" => v4 = true,
                "::/0" | "::0/0" => v6 = true,
                _ => {}
            },
            // Earlier lines that can accept a plaintext connection first.
            ["host" | "hostnossl", ..] => return false,
            _ => {}
        }
        if v4 && v6 {
            return true;
        }
    }
    false
}

pub(super) fn cnpg(meta: &Meta, spec: CnpgSpec) -> OperatedView {
    let mut claims = Vec::new();
    if let Some(e) = spec.ephemeral_volume_source.as_ref() {
        let class = e
            .volume_claim_template
            .as_ref()
            .and_then(|t| t.spec.storage_class_name.clone());
        claims.push(claim(
            "spec.ephemeralVolumeSource.volumeClaimTemplate.spec.storageClassName".into(),
            "the spec.ephemeralVolumeSource claims (PostgreSQL's scratch data)".into(),
            class,
        ));
    }
    claims.push(cnpg_claim(
        "spec.storage",
        spec.storage.as_ref().unwrap_or(&CnpgStorage::default()),
    ));
    if let Some(w) = &spec.wal_storage {
        claims.push(cnpg_claim("spec.walStorage", w));
    }
    for (i, t) in spec.tablespaces.iter().enumerate() {
        claims.push(cnpg_claim(
            &format!("spec.tablespaces[{i}].storage"),
            &t.storage,
        ));
    }
    let hba = spec.postgresql.map(|p| p.pg_hba).unwrap_or_default();
    let mut plaintext = Vec::new();
    if !pg_hba_requires_tls(&hba) {
        plaintext.push(Plaintext {
            path: "spec.postgresql.pg_hba".into(),
            message: "CloudNativePG always serves TLS, but its default pg_hba rule (host all all all) also accepts clients that connect without it, and no earlier rule rejects them".into(),
            fix: "Add \"hostnossl all all all reject\" as the first entry of spec.postgresql.pg_hba, so PostgreSQL refuses connections without TLS.".into(),
        });
    }
    OperatedView {
        operator: Operator::CloudNativePg,
        claims,
        node_disk: Vec::new(),
        volumes: Vec::new(),
        plaintext,
        // Only `inheritedMetadata` reaches the pods (the Cluster's own labels do not).
        pod_labels: spec
            .inherited_metadata
            .map(|m| m.labels)
            .unwrap_or_default(),
        pod_meta_path: "spec.inheritedMetadata",
        // pkg/utils/labels_annotations.go ClusterLabelName.
        operator_labels: named(meta.name.as_deref(), &[("cnpg.io/cluster", "{}".into())]),
        sidecar_field: None,
        sidecar_groups: Vec::new(),
    }
}
