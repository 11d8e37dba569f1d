//! Strimzi `Kafka` and `KafkaNodePool`: storage, listeners and propagated labels.
use serde::Deserialize;

use super::*;

// Strimzi `kafka.strimzi.io` Kafka and KafkaNodePool (api/src/main/java/io/strimzi/api/kafka/
// model: storage `type` persistent-claim | ephemeral | jbod with `class`; listeners' `tls`).

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StrimziStorage {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, rename = "class")]
    class: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    volumes: Vec<StrimziStorage>,
}

#[derive(Deserialize, Default)]
struct StrimziTemplate {
    #[serde(default)]
    pod: Option<StrimziPod>,
}

#[derive(Deserialize, Default)]
struct StrimziPod {
    #[serde(default)]
    metadata: Option<PodMeta>,
}

#[derive(Deserialize, Default)]
struct StrimziListener {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tls: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct StrimziKafkaSpec {
    #[serde(default)]
    kafka: Option<StrimziCluster>,
    #[serde(default)]
    zookeeper: Option<StrimziCluster>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StrimziCluster {
    #[serde(default)]
    storage: Option<StrimziStorage>,
    #[serde(default, deserialize_with = "null_default")]
    listeners: Vec<StrimziListener>,
    #[serde(default)]
    template: Option<StrimziTemplate>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct StrimziPoolSpec {
    #[serde(default)]
    storage: Option<StrimziStorage>,
    #[serde(default)]
    template: Option<StrimziTemplate>,
}

fn strimzi_storage(path: &str, s: &StrimziStorage, v: &mut OperatedView) {
    match s.kind.as_deref() {
        Some("jbod") => {
            for (i, vol) in s.volumes.iter().enumerate() {
                strimzi_storage(&format!("{path}.volumes[{i}]"), vol, v);
            }
        }
        Some("ephemeral") => v.node_disk.push(format!("{path}.type")),
        // `persistent-claim` (and anything a newer Strimzi adds: judged as a claim, so an
        // unknown type is never taken as encrypted).
        _ => v.claims.push(claim(
            format!("{path}.class"),
            format!("the {path} claims"),
            s.class.clone(),
        )),
    }
}

fn template_labels(t: Option<StrimziTemplate>) -> Labels {
    t.and_then(|t| t.pod)
        .and_then(|p| p.metadata)
        .map(|m| m.labels)
        .unwrap_or_default()
}

/// Strimzi copies the resource's own labels to what it creates, except `app.kubernetes.io/*`
/// (but `part-of`) and Flux's (operator-common Labels.fromResource and its default
/// STRIMZI_LABELS_EXCLUSION_PATTERN); the pod template's labels are added.
fn strimzi_pod_labels(own: &Labels, template: Labels) -> Labels {
    let mut out: Labels = own
        .iter()
        .filter(|(k, _)| {
            let app = k.starts_with("app.kubernetes.io/") && *k != "app.kubernetes.io/part-of";
            !app && !k.starts_with("kustomize.toolkit.fluxcd.io")
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.extend(template.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    out
}

fn strimzi_view(
    pod_labels: Labels,
    pod_meta_path: &'static str,
    operator_labels: Labels,
) -> OperatedView {
    OperatedView {
        operator: Operator::Strimzi,
        claims: Vec::new(),
        node_disk: Vec::new(),
        volumes: Vec::new(),
        plaintext: Vec::new(),
        pod_labels,
        pod_meta_path,
        operator_labels,
        sidecar_field: None,
        sidecar_groups: Vec::new(),
    }
}

pub(super) fn strimzi_kafka(meta: &Meta, spec: StrimziKafkaSpec) -> OperatedView {
    let kafka = spec.kafka.unwrap_or_default();
    let labels = strimzi_pod_labels(&meta.labels, template_labels(kafka.template));
    // The brokers' labels (cluster-operator KafkaPool and Labels: strimzi.io/cluster, kind,
    // name `<cluster>-kafka`).
    let ops = named(
        meta.name.as_deref(),
        &[
            ("strimzi.io/cluster", "{}".into()),
            ("strimzi.io/kind", "Kafka".into()),
            ("strimzi.io/name", "{}-kafka".into()),
        ],
    );
    let mut v = strimzi_view(labels, "spec.kafka.template.pod.metadata", ops);
    // With node pools (every Strimzi 0.46+ cluster) `spec.kafka.storage` is absent and the
    // pools' storage is judged on each KafkaNodePool.
    if let Some(s) = &kafka.storage {
        strimzi_storage("spec.kafka.storage", s, &mut v);
    }
    if let Some(s) = spec.zookeeper.as_ref().and_then(|z| z.storage.as_ref()) {
        strimzi_storage("spec.zookeeper.storage", s, &mut v);
    }
    for (i, l) in kafka.listeners.iter().enumerate() {
        // `tls` is required by the CRD; a listener without it is read as the operator's
        // model defaults it: false.
        if l.tls != Some(true) {
            let name = l.name.as_deref().unwrap_or("(no name)");
            v.plaintext.push(Plaintext {
                path: format!("spec.kafka.listeners[{i}].tls"),
                message: format!(
                    "Kafka listener {name:?} serves clients without TLS (tls is not true)"
                ),
                fix: format!("Set spec.kafka.listeners[{i}].tls: true (the brokers' own replication traffic is always TLS in Strimzi)."),
            });
        }
    }
    v
}

pub(super) fn strimzi_pool(meta: &Meta, spec: StrimziPoolSpec) -> OperatedView {
    let labels = strimzi_pod_labels(&meta.labels, template_labels(spec.template));
    // A pool belongs to the Kafka named by its `strimzi.io/cluster` label.
    let cluster = meta.labels.get("strimzi.io/cluster").cloned();
    let mut ops = named(
        cluster.as_deref(),
        &[
            ("strimzi.io/cluster", "{}".into()),
            ("strimzi.io/kind", "Kafka".into()),
        ],
    );
    if let Some(pool) = meta
        .name
        .as_deref()
        .filter(|n| !n.is_empty() && !ops.is_empty())
    {
        ops.insert("strimzi.io/pool-name".into(), pool.into());
    }
    let mut v = strimzi_view(labels, "spec.template.pod.metadata", ops);
    match &spec.storage {
        Some(s) => strimzi_storage("spec.storage", s, &mut v),
        None => v.claims.push(claim(
            "spec.storage".into(),
            "the spec.storage claims".into(),
            None,
        )),
    }
    v
}
