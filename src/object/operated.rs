//! Custom resources of database, broker and search operators (CloudNativePG `Cluster`, Strimzi
//! `Kafka` and `KafkaNodePool`, ECK `Elasticsearch`, mariadb-operator `MariaDB`) read as their
//! operators read them: the claims the operator will create (with the storage class it will
//! write into them), the TLS settings of what it serves, and the labels it puts on its pods.
//! Each field is cited with the operator's source it was read from.

use serde::Deserialize;

use super::pod::{null_default, ClaimSpec, ClaimTemplate, Container, Meta, PodTemplate, Volume};
use crate::selector::Labels;

/// Which operator acts on the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    CloudNativePg,
    Strimzi,
    Eck,
    MariaDb,
}

impl Operator {
    pub fn name(self) -> &'static str {
        match self {
            Operator::CloudNativePg => "CloudNativePG",
            Operator::Strimzi => "Strimzi",
            Operator::Eck => "ECK",
            Operator::MariaDb => "mariadb-operator",
        }
    }
}

/// A claim the operator will create for the resource.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatedClaim {
    /// Where its storage class is set (or would be).
    pub path: String,
    /// Names it in a sentence: `"spec.storage" claims`.
    pub subject: String,
    /// The claim as the operator writes it (its storage class).
    pub spec: ClaimSpec,
    pub annotations: Labels,
}

/// A setting under which the operator serves plaintext, with where and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Plaintext {
    pub path: String,
    pub message: String,
    pub fix: String,
}

/// What phi-guard judges of an operator's resource.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatedView {
    pub operator: Operator,
    pub claims: Vec<OperatedClaim>,
    /// Data the operator keeps on the node's disk (`emptyDir`) instead of claims: the path of
    /// the setting.
    pub node_disk: Vec<String>,
    /// Volumes of a pod template the resource carries (ECK `podTemplate`), with their paths.
    pub volumes: Vec<(String, Volume)>,
    pub plaintext: Vec<Plaintext>,
    /// Labels the operator puts on the pods it runs (propagated from the resource and its pod
    /// metadata fields), and the metadata where to set them (`<path>.labels`).
    pub pod_labels: Labels,
    pub pod_meta_path: &'static str,
    /// Labels the operator itself sets on the pods (its selector labels, from the resource's
    /// name): what NetworkPolicies select them by.
    pub operator_labels: Labels,
    /// Where a sidecar container can be added to the operator's pods (`None`: the resource has
    /// no such field).
    pub sidecar_field: Option<&'static str>,
    /// The containers the resource adds to each group of pods (ECK node sets, MariaDB
    /// `sidecarContainers`), with their paths: where an audit sidecar would be.
    pub sidecar_groups: Vec<(String, Vec<Container>)>,
}

/// Selector labels from the resource's name (empty without one, e.g. only `generateName`).
fn named(name: Option<&str>, pairs: &[(&str, String)]) -> Labels {
    match name {
        Some(n) if !n.is_empty() => pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.replace("{}", n)))
            .collect(),
        _ => Labels::new(),
    }
}

/// Pod metadata as operators embed it.
#[derive(Deserialize, Default)]
struct PodMeta {
    #[serde(default, deserialize_with = "null_default")]
    labels: Labels,
}

fn claim(path: String, subject: String, class: Option<String>) -> OperatedClaim {
    OperatedClaim {
        path,
        subject,
        spec: ClaimSpec {
            storage_class_name: class,
            volume_name: None,
        },
        annotations: Labels::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// CloudNativePG `postgresql.cnpg.io/v1` Cluster (api/v1/cluster_types.go).

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CnpgSpec {
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
fn pg_hba_requires_tls(rules: &[String]) -> bool {
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

fn cnpg(meta: &Meta, spec: CnpgSpec) -> OperatedView {
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
        claims.push(cnpg_claim(&format!("spec.tablespaces[{i}].storage"), &t.storage));
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
        pod_labels: spec.inherited_metadata.map(|m| m.labels).unwrap_or_default(),
        pod_meta_path: "spec.inheritedMetadata",
        // pkg/utils/labels_annotations.go ClusterLabelName.
        operator_labels: named(meta.name.as_deref(), &[("cnpg.io/cluster", "{}".into())]),
        sidecar_field: None,
        sidecar_groups: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
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
struct StrimziKafkaSpec {
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
struct StrimziPoolSpec {
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
    out.extend(
        template
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
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

fn strimzi_kafka(meta: &Meta, spec: StrimziKafkaSpec) -> OperatedView {
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

fn strimzi_pool(meta: &Meta, spec: StrimziPoolSpec) -> OperatedView {
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
    if let Some(pool) = meta.name.as_deref().filter(|n| !n.is_empty() && !ops.is_empty()) {
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

// ---------------------------------------------------------------------------------------------
// ECK `elasticsearch.k8s.elastic.co/v1` Elasticsearch (pkg/apis/elasticsearch/v1,
// pkg/apis/common/v1/common.go TLSOptions.Enabled, pkg/controller/common/defaults/pvc.go).

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EckSpec {
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

fn eck(meta: &Meta, spec: EckSpec) -> OperatedView {
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
        let own_volumes: Vec<&str> = template.spec.volumes.iter().map(|x| x.name.as_str()).collect();
        for (j, vol) in template.spec.volumes.iter().enumerate() {
            let path = format!("spec.nodeSets[{i}].podTemplate.spec.volumes[{j}]");
            // The data volume on the node's disk holds the index itself, not scratch space.
            let on_disk = matches!(
                vol.source,
                super::VolumeSource::EmptyDir { memory: false } | super::VolumeSource::Missing
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

// ---------------------------------------------------------------------------------------------
// mariadb-operator `k8s.mariadb.com/v1alpha1` MariaDB (api/v1alpha1/mariadb_types.go: Storage,
// TLS with SetDefaults enabling it when unset, IsTLSRequired).

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MariaDbSpec {
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

fn mariadb(meta: &Meta, spec: MariaDbSpec) -> OperatedView {
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
        sidecar_groups: vec![("spec.sidecarContainers".into(), spec.sidecar_containers.clone())],
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

/// Decode an operator's resource kind from its `spec`.
pub(super) fn decode<'de, D: serde::Deserializer<'de>>(
    kind: super::Kind,
    d: D,
) -> Result<(Meta, OperatedView), D::Error> {
    use super::{Kind, Obj};
    Ok(match kind {
        Kind::CnpgCluster => {
            let o: Obj<CnpgSpec> = Deserialize::deserialize(d)?;
            let v = cnpg(&o.metadata, o.spec.unwrap_or_default());
            (o.metadata, v)
        }
        Kind::Kafka => {
            let o: Obj<StrimziKafkaSpec> = Deserialize::deserialize(d)?;
            let v = strimzi_kafka(&o.metadata, o.spec.unwrap_or_default());
            (o.metadata, v)
        }
        Kind::KafkaNodePool => {
            let o: Obj<StrimziPoolSpec> = Deserialize::deserialize(d)?;
            let v = strimzi_pool(&o.metadata, o.spec.unwrap_or_default());
            (o.metadata, v)
        }
        Kind::Elasticsearch => {
            let o: Obj<EckSpec> = Deserialize::deserialize(d)?;
            let v = eck(&o.metadata, o.spec.unwrap_or_default());
            (o.metadata, v)
        }
        _ => {
            let o: Obj<MariaDbSpec> = Deserialize::deserialize(d)?;
            let v = mariadb(&o.metadata, o.spec.unwrap_or_default());
            (o.metadata, v)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hba(lines: &[&str]) -> bool {
        pg_hba_requires_tls(&lines.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn view(kind: super::super::Kind, json: serde_json::Value) -> OperatedView {
        match super::super::Object::from_value(kind, &json, Some("ns")) {
            Ok(super::super::Object {
                body: super::super::Body::Operated(v),
                ..
            }) => *v,
            other => panic!("not an operated view: {other:?}"),
        }
    }

    #[test]
    fn cnpg_storage_class_wins_over_the_pvc_template_as_the_operator_applies_it() {
        let v = view(
            super::super::Kind::CnpgCluster,
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
                ("spec.walStorage.pvcTemplate.storageClassName", Some("plain"))
            ]
        );
        // The Cluster's own labels do not reach its pods; its selector label does.
        assert!(v.pod_labels.is_empty());
        assert_eq!(v.operator_labels.get("cnpg.io/cluster").map(String::as_str), Some("db"));
        assert_eq!(v.plaintext.len(), 1);
    }

    #[test]
    fn strimzi_copies_the_resources_labels_but_app_kubernetes_io() {
        let v = view(
            super::super::Kind::KafkaNodePool,
            serde_json::json!({"metadata": {"name": "pool", "labels": {
                    "strimzi.io/cluster": "events", "app.kubernetes.io/name": "x",
                    "app.kubernetes.io/part-of": "y", "team": "t"}},
                "spec": {"template": {"pod": {"metadata": {"labels": {"extra": "1"}}}}}}),
        );
        let keys: Vec<&String> = v.pod_labels.keys().collect();
        assert_eq!(keys, ["app.kubernetes.io/part-of", "extra", "strimzi.io/cluster", "team"]);
        assert_eq!(
            v.operator_labels.get("strimzi.io/pool-name").map(String::as_str),
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
                super::super::Kind::Elasticsearch,
                serde_json::json!({"metadata": {"name": "es"}, "spec": {"http": {"tls": tls}}}),
            )
            .plaintext
            .len()
        };
        assert_eq!(es(serde_json::json!({})), 0);
        assert_eq!(es(serde_json::json!({"selfSignedCertificate": {"disabled": true}})), 1);
        assert_eq!(
            es(serde_json::json!({"selfSignedCertificate": {"disabled": true},
                                  "certificate": {"secretName": "es-cert"}})),
            0
        );
    }

    #[test]
    fn mariadb_tls_is_on_by_default_but_required_only_when_set() {
        let m = |spec: serde_json::Value| {
            view(
                super::super::Kind::MariaDb,
                serde_json::json!({"metadata": {"name": "m"}, "spec": spec}),
            )
        };
        let unset = m(serde_json::json!({"storage": {"size": "1Gi"}}));
        assert_eq!(unset.plaintext[0].path, "spec.tls.required");
        let off = m(serde_json::json!({"tls": {"enabled": false, "required": true}}));
        assert_eq!(off.plaintext[0].path, "spec.tls.enabled");
        let on = m(serde_json::json!({"tls": {"enabled": true, "required": true},
            "storage": {"storageClassName": "", "volumeClaimTemplate": {"storageClassName": "enc"}}}));
        assert!(on.plaintext.is_empty());
        assert_eq!(on.claims[0].spec.storage_class_name.as_deref(), Some("enc"));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error_not_a_panic() {
        let r = super::super::Object::from_value(
            super::super::Kind::CnpgCluster,
            &serde_json::json!({"spec": {"tablespaces": {"a": {}}}}),
            None,
        );
        let e = r.err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn pg_hba_requires_tls_only_when_plaintext_is_rejected_first() {
        assert!(hba(&["hostnossl all all all reject"]));
        assert!(hba(&[
            "hostnossl all all 0.0.0.0/0 reject",
            "hostnossl all all ::/0 reject",
            "host all all all scram-sha-256",
        ]));
        assert!(!hba(&[]));
        assert!(!hba(&["hostnossl all all 0.0.0.0/0 reject"]));
        assert!(!hba(&["host app app 10.0.0.0/8 md5", "hostnossl all all all reject"]));
        assert!(!hba(&["hostnossl app all all reject"]));
        assert!(hba(&["hostssl all all all scram-sha-256", "hostnossl all all all reject"]));
    }
}
