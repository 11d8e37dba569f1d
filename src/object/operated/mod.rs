//! Custom resources of database, broker and search operators (CloudNativePG `Cluster`, Strimzi
//! `Kafka` and `KafkaNodePool`, ECK `Elasticsearch`, mariadb-operator `MariaDB`) read as their
//! operators read them: the claims the operator will create (with the storage class it will
//! write into them), the TLS settings of what it serves, and the labels it puts on its pods.
//! Each field is cited with the operator's source it was read from.

use serde::Deserialize;

mod cnpg;
mod eck;
mod mariadb;
mod strimzi;
#[cfg(test)]
mod tests;

use cnpg::{cnpg, CnpgSpec};
use eck::{eck, EckSpec};
use mariadb::{mariadb, MariaDbSpec};
use strimzi::{strimzi_kafka, strimzi_pool, StrimziKafkaSpec, StrimziPoolSpec};

use super::null_default;
use super::pod::{ClaimSpec, ClaimTemplate, Container, Meta, PodTemplate, Volume};
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

/// Decode an operator's resource kind from its `spec`.
pub(super) fn decode<'de, D: serde::Deserializer<'de>>(
    kind: super::Kind,
    d: D,
) -> Result<(Meta, OperatedView), D::Error> {
    use crate::object::{Kind, Obj};
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
