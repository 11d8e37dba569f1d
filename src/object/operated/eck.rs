//! ECK `Elasticsearch`: node sets' claims and volumes, HTTP TLS, pod template labels.
use serde::Deserialize;

use super::*;

// ECK `elasticsearch.k8s.elastic.co/v1` Elasticsearch (pkg/apis/elasticsearch/v1,
// pkg/apis/common/v1/common.go TLSOptions.Enabled, pkg/controller/common/defaults/pvc.go).

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct EckSpec {
    #[serde(default)]
    http: Option<EckHttp>,
    #[serde(default, deserialize_with = "null_default")]
    node_sets: Vec<EckNodeSet>,
}

#[derive(Deserialize, Default)]
struct EckHttp {
    #[serde(default)]
    tls: Option<EckTls>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EckTls {
    #[serde(default)]
    self_signed_certificate: Option<EckSelfSigned>,
    #[serde(default)]
    certificate: Option<EckSecretRef>,
}

#[derive(Deserialize, Default)]
struct EckSelfSigned {
    #[serde(default)]
    disabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EckSecretRef {
    #[serde(default)]
    secret_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EckNodeSet {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    pod_template: Option<PodTemplate>,
    #[serde(default, deserialize_with = "null_default")]
    volume_claim_templates: Vec<ClaimTemplate>,
}

/// ECK's default data claim (pkg/controller/elasticsearch/volume/names.go).
const ECK_DATA_VOLUME: &str = "elasticsearch-data";

pub(super) fn eck(meta: &Meta, spec: EckSpec) -> OperatedView {
    let mut v = OperatedView {
        operator: Operator::Eck,
        claims: Vec::new(),
        node_disk: Vec::new(),
        volumes: Vec::new(),
        plaintext: Vec::new(),
        pod_labels: Labels::new(),
        pod_meta_path: "spec.nodeSets[*].podTemplate.metadata",
        // pkg/controller/elasticsearch/label/label.go.
        operator_labels: named(
            meta.name.as_deref(),
            &[
                ("elasticsearch.k8s.elastic.co/cluster-name", "{}".into()),
                ("common.k8s.elastic.co/type", "elasticsearch".into()),
            ],
        ),
        sidecar_field: Some("spec.nodeSets[*].podTemplate.spec.containers"),
        sidecar_groups: Vec::new(),
    };
    // TLS on HTTP unless the self-signed certificate is disabled and no certificate is given.
    let tls = spec.http.and_then(|h| h.tls).unwrap_or_default();
    let disabled = tls
        .self_signed_certificate
        .and_then(|s| s.disabled)
        .unwrap_or(false);
    let own_cert = tls
        .certificate
        .and_then(|c| c.secret_name)
        .is_some_and(|s| !s.is_empty());
    if disabled && !own_cert {
        v.plaintext.push(Plaintext {
            path: "spec.http.tls.selfSignedCertificate.disabled".into(),
            message: "Elasticsearch serves its HTTP API without TLS (the self-signed certificate is disabled and no spec.http.tls.certificate is given)".into(),
            fix: "Remove spec.http.tls.selfSignedCertificate.disabled, or set spec.http.tls.certificate.secretName to a TLS Secret (e.g. issued by cert-manager).".into(),
        });
    }
    let mut labels_seen = false;
    for (i, set) in spec.node_sets.into_iter().enumerate() {
        let name = set.name.unwrap_or_default();
        let template = set.pod_template.unwrap_or_default();
        // Pods of every node set must carry the label: take what all of them share.
        let set_labels = template.metadata.labels.clone();
        if labels_seen {
            v.pod_labels
                .retain(|k, val| set_labels.get(k.as_str()) == Some(&*val));
        } else {
            v.pod_labels = set_labels;
        }
        labels_seen = true;
        v.sidecar_groups.push((
            format!("spec.nodeSets[{i}].podTemplate.spec.containers"),
            template.spec.containers.clone(),
        ));
        let own_volumes: Vec<&str> = template
            .spec
            .volumes
            .iter()
            .map(|x| x.name.as_str())
            .collect();
        for (j, vol) in template.spec.volumes.iter().enumerate() {
            let path = format!("spec.nodeSets[{i}].podTemplate.spec.volumes[{j}]");
            // The data volume on the node's disk holds the index itself, not scratch space.
            let on_disk = matches!(
                vol.source,
                crate::object::VolumeSource::EmptyDir { memory: false }
                    | crate::object::VolumeSource::Missing
            );
            if vol.name == ECK_DATA_VOLUME && on_disk {
                v.node_disk.push(path);
            } else {
                v.volumes.push((path, vol.clone()));
            }
        }
        if set.volume_claim_templates.is_empty() {
            // The default 1Gi claim on the default class, unless a pod volume takes its name.
            if !own_volumes.contains(&ECK_DATA_VOLUME) {
                v.claims.push(claim(
                    format!("spec.nodeSets[{i}].volumeClaimTemplates"),
                    format!("its default {ECK_DATA_VOLUME:?} claims for node set {name:?} (the node set has no volumeClaimTemplates),"),
                    None,
                ));
            }
        }
        for (j, t) in set.volume_claim_templates.into_iter().enumerate() {
            v.claims.push(OperatedClaim {
                path: format!("spec.nodeSets[{i}].volumeClaimTemplates[{j}].spec.storageClassName"),
                subject: format!(
                    "the claims of node set {name:?} volumeClaimTemplate {:?},",
                    t.metadata.display_name()
                ),
                spec: t.spec,
                annotations: t.metadata.annotations,
            });
        }
    }
    v
}
