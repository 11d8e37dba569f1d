//! Any admitted object as one normalized view: kind, name, namespace, labels and, for pod
//! controllers, the pod template with the field path it lives at (messages cite exact fields).

pub(crate) mod operated;
pub(crate) mod pod;
pub(crate) mod security;
pub(crate) mod tls_off;

use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::selector::Labels;
use crate::view::{NetworkPolicyInfo, ServiceInfo, ServicePortInfo};
pub(crate) use pod::{
    ClaimSpec, ClaimTemplate, Container, Meta, OwnerRef, PodSpec, PodTemplate, Volume, VolumeSource,
};

/// Deserialize `null` as the default value (the API server omits or nulls empty lists).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The kinds phi-guard judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
    PersistentVolumeClaim,
    Service,
    Ingress,
    NetworkPolicy,
    Namespace,
    /// CloudNativePG `Cluster` (`postgresql.cnpg.io`).
    CnpgCluster,
    /// Strimzi `Kafka` (`kafka.strimzi.io`).
    Kafka,
    /// Strimzi `KafkaNodePool` (`kafka.strimzi.io`).
    KafkaNodePool,
    /// ECK `Elasticsearch` (`elasticsearch.k8s.elastic.co`).
    Elasticsearch,
    /// mariadb-operator `MariaDB` (`k8s.mariadb.com`).
    MariaDb,
}

impl Kind {
    /// Every kind, for tests that hold the registry (`crate::kinds`) and this enum together.
    pub const ALL: [Kind; 18] = [
        Kind::Pod,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ReplicaSet,
        Kind::ReplicationController,
        Kind::Job,
        Kind::CronJob,
        Kind::PersistentVolumeClaim,
        Kind::Service,
        Kind::Ingress,
        Kind::NetworkPolicy,
        Kind::Namespace,
        Kind::CnpgCluster,
        Kind::Kafka,
        Kind::KafkaNodePool,
        Kind::Elasticsearch,
        Kind::MariaDb,
    ];

    /// Recognize a kind by API group and kind name (as in an AdmissionReview's `request.kind`
    /// or a manifest's `apiVersion`/`kind`). `None` for kinds phi-guard does not judge.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
        Some(match (group, kind) {
            ("", "Pod") => Kind::Pod,
            ("apps", "Deployment") => Kind::Deployment,
            ("apps", "StatefulSet") => Kind::StatefulSet,
            ("apps", "DaemonSet") => Kind::DaemonSet,
            ("apps", "ReplicaSet") => Kind::ReplicaSet,
            ("", "ReplicationController") => Kind::ReplicationController,
            ("batch", "Job") => Kind::Job,
            ("batch", "CronJob") => Kind::CronJob,
            ("", "PersistentVolumeClaim") => Kind::PersistentVolumeClaim,
            ("", "Service") => Kind::Service,
            ("networking.k8s.io", "Ingress") => Kind::Ingress,
            ("networking.k8s.io", "NetworkPolicy") => Kind::NetworkPolicy,
            ("", "Namespace") => Kind::Namespace,
            ("postgresql.cnpg.io", "Cluster") => Kind::CnpgCluster,
            ("kafka.strimzi.io", "Kafka") => Kind::Kafka,
            ("kafka.strimzi.io", "KafkaNodePool") => Kind::KafkaNodePool,
            ("elasticsearch.k8s.elastic.co", "Elasticsearch") => Kind::Elasticsearch,
            ("k8s.mariadb.com", "MariaDB") => Kind::MariaDb,
            _ => return None,
        })
    }

    /// Recognize a kind from a manifest's `apiVersion` (`group/version` or `version`).
    pub fn from_api_version_kind(api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Kind::from_group_kind(group, kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::Service => "Service",
            Kind::Ingress => "Ingress",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::Namespace => "Namespace",
            Kind::CnpgCluster => "Cluster",
            Kind::Kafka => "Kafka",
            Kind::KafkaNodePool => "KafkaNodePool",
            Kind::Elasticsearch => "Elasticsearch",
            Kind::MariaDb => "MariaDB",
        }
    }

    /// Is this a custom resource an operator turns into pods and claims?
    pub fn is_operated(self) -> bool {
        matches!(
            self,
            Kind::CnpgCluster
                | Kind::Kafka
                | Kind::KafkaNodePool
                | Kind::Elasticsearch
                | Kind::MariaDb
        )
    }

    /// Does this kind carry a pod template?
    pub fn has_pods(self) -> bool {
        matches!(
            self,
            Kind::Pod
                | Kind::Deployment
                | Kind::StatefulSet
                | Kind::DaemonSet
                | Kind::ReplicaSet
                | Kind::ReplicationController
                | Kind::Job
                | Kind::CronJob
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object that could not be read as its kind.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {kind} object: {message}")]
pub struct WorkloadError {
    pub kind: Kind,
    pub message: String,
}

/// A normalized object under review.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// `metadata.deletionTimestamp` is set: the object is being deleted and only its
    /// finalizers' owners still update it.
    pub deleting: bool,
    /// `metadata.uid` (empty before the API server assigns it, i.e. on CREATE).
    pub uid: String,
    /// The `ownerReferences` entry marked `controller: true`, as written (unverified).
    pub controller: Option<Box<OwnerRef>>,
    pub body: Body,
}

/// What a workload carries, per kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Pods and pod controllers.
    Pods(PodView),
    PersistentVolumeClaim(ClaimSpec),
    Service(ServiceInfo),
    Ingress(IngressView),
    NetworkPolicy(NetworkPolicyInfo),
    Namespace,
    /// A database, broker or search cluster an operator runs (`operated.rs`).
    Operated(Box<operated::OperatedView>),
}

/// The pod a workload will run, with the paths its parts live at.
#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    /// Path of the pod spec: `spec`, `spec.template.spec` or `spec.jobTemplate.spec.template.spec`.
    pub spec_path: &'static str,
    /// Path of the pod metadata: `metadata`, `spec.template.metadata`, ...
    pub meta_path: &'static str,
    /// Labels of the pods (the Pod's own, or the template's).
    pub labels: Labels,
    /// Annotations of the pods (values never logged).
    pub annotations: Labels,
    /// Boxed: the pod spec is most of a decoded object's size, and `Body`'s other variants are
    /// small.
    pub spec: Box<PodSpec>,
    /// StatefulSet `spec.volumeClaimTemplates`.
    pub claim_templates: Vec<ClaimTemplate>,
    /// Job or CronJob: pods run to completion, so sidecars must be native.
    pub run_to_completion: bool,
    /// `spec.replicas` of a Deployment, StatefulSet, ReplicaSet or ReplicationController
    /// (`None`: unset, which the API server defaults to 1); `None` for other kinds.
    pub replicas: Option<i32>,
}

/// An Ingress, reduced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngressView {
    /// `spec.rules[i].host` with the Service names it routes to.
    pub rules: Vec<IngressRuleView>,
    /// Service of `spec.defaultBackend`.
    pub default_backend: Option<String>,
    /// `spec.tls[i]`: hosts and whether a secretName is set.
    pub tls: Vec<IngressTlsView>,
    /// `spec.ingressClassName`, else the legacy annotation `kubernetes.io/ingress.class`: which
    /// controller serves it (`None`: the default IngressClass's).
    pub class: Option<String>,
}

/// One Ingress rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngressRuleView {
    pub host: Option<String>,
    pub services: Vec<String>,
}

/// One Ingress TLS entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngressTlsView {
    pub hosts: Vec<String>,
    pub has_secret: bool,
}

impl Object {
    /// Drop the spare capacity decoding left in the pod spec ([`PodSpec::shrink_to_fit`]): for
    /// objects kept a long time (the audit's store), not for one review's.
    pub(crate) fn shrink_to_fit(&mut self) {
        if let Body::Pods(p) = &mut self.body {
            p.spec.shrink_to_fit();
            p.claim_templates.shrink_to_fit();
        }
    }

    /// Label sets that mark a workload PHI: its own labels and its pods' labels.
    pub fn label_sets(&self) -> Vec<&Labels> {
        match &self.body {
            Body::Pods(p) => vec![&self.labels, &p.labels],
            Body::Operated(v) => vec![&self.labels, &v.pod_labels],
            _ => vec![&self.labels],
        }
    }

    /// The pod view, for kinds that run pods.
    pub fn pods(&self) -> Option<&PodView> {
        match &self.body {
            Body::Pods(p) => Some(p),
            _ => None,
        }
    }

    /// Equal in everything rules read except `spec.replicas`: scaling is bookkeeping for the
    /// findings an object already had (as before the contingency rule read replicas); a finding
    /// a scale-down introduces is new and judged as such.
    pub fn same_but_replicas(&self, other: &Object) -> bool {
        // Owner references are controller bookkeeping too (adoption, orphaning).
        let mut scaled = other.clone();
        scaled.controller.clone_from(&self.controller);
        scaled.uid.clone_from(&self.uid);
        if let (Body::Pods(a), Body::Pods(p)) = (&self.body, &mut scaled.body) {
            p.replicas = a.replicas;
        }
        *self == scaled
    }

    /// The pod this object runs (its own, or its template), as the cluster view keeps pods,
    /// named `name`: a controller's template stands for the pods it will make.
    pub(crate) fn template_pod(&self, name: String) -> Option<crate::view::PodInfo> {
        let p = self.pods()?;
        let (mounted_secrets, cert_manager_csi) = p.spec.tls_material();
        Some(crate::view::PodInfo {
            namespace: self.namespace.clone(),
            name,
            labels: p.labels.clone(),
            annotations: crate::view::objects::kept_annotations(&p.annotations),
            container_names: p
                .spec
                .containers
                .iter()
                .chain(p.spec.init_containers.iter())
                .map(|c| c.name.clone())
                .collect(),
            host_network: p.spec.host_network,
            mounted_secrets,
            cert_manager_csi,
        })
    }

    /// `Kind namespace/name`, for messages and logs.
    pub fn display(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }

    /// Decode an object of a known kind from JSON text (the webhook's path: no intermediate tree).
    /// `namespace` is the request's namespace, used when the object omits it.
    pub fn from_json(
        kind: Kind,
        json: &str,
        namespace: Option<&str>,
    ) -> Result<Object, WorkloadError> {
        let mut de = serde_json::Deserializer::from_str(json);
        Self::deserialize_as(kind, namespace, &mut de)
            .and_then(|w| de.end().map(|()| w))
            .map_err(|e| WorkloadError {
                kind,
                message: e.to_string(),
            })
    }

    /// Decode an object of a known kind from a JSON tree (files, tests).
    pub fn from_value(
        kind: Kind,
        value: &serde_json::Value,
        namespace: Option<&str>,
    ) -> Result<Object, WorkloadError> {
        Self::deserialize_as(kind, namespace, value).map_err(|e| WorkloadError {
            kind,
            message: e.to_string(),
        })
    }

    /// Give an object that names no namespace the request's (what `namespace` does when
    /// decoding, for objects decoded before the request's namespace was read).
    pub fn default_namespace(&mut self, namespace: &str) {
        if self.kind == Kind::Namespace || namespace.is_empty() {
            return;
        }
        if self.namespace.is_empty() {
            self.namespace = namespace.to_string();
        }
        match &mut self.body {
            Body::Service(s) if s.namespace.is_empty() => s.namespace = namespace.to_string(),
            Body::NetworkPolicy(n) if n.namespace.is_empty() => n.namespace = namespace.to_string(),
            _ => {}
        }
    }

    /// Decode an object of a known kind from any deserializer, reading only the fields rules
    /// need. The webhook uses this to decode `request.object` in the same pass as the
    /// AdmissionReview envelope.
    pub fn deserialize_as<'de, D: serde::Deserializer<'de>>(
        kind: Kind,
        namespace: Option<&str>,
        d: D,
    ) -> Result<Object, D::Error> {
        let (meta, body) = match kind {
            Kind::Pod => {
                let o: Obj<PodSpec> = Deserialize::deserialize(d)?;
                let spec = o.spec.unwrap_or_default();
                let view = PodView {
                    spec_path: "spec",
                    meta_path: "metadata",
                    labels: o.metadata.labels.clone(),
                    annotations: o.metadata.annotations.clone(),
                    spec: Box::new(spec),
                    claim_templates: Vec::new(),
                    run_to_completion: false,
                    replicas: None,
                };
                (o.metadata, Body::Pods(view))
            }
            Kind::Deployment
            | Kind::DaemonSet
            | Kind::ReplicaSet
            | Kind::ReplicationController
            | Kind::StatefulSet
            | Kind::Job => {
                let o: Obj<ControllerSpec> = Deserialize::deserialize(d)?;
                let spec = o.spec.unwrap_or_default();
                let t = spec.template.unwrap_or_default();
                let view = PodView {
                    spec_path: "spec.template.spec",
                    meta_path: "spec.template.metadata",
                    labels: t.metadata.labels,
                    annotations: t.metadata.annotations,
                    spec: Box::new(t.spec),
                    claim_templates: if kind == Kind::StatefulSet {
                        spec.volume_claim_templates
                    } else {
                        Vec::new()
                    },
                    run_to_completion: kind == Kind::Job,
                    replicas: spec.replicas,
                };
                (o.metadata, Body::Pods(view))
            }
            Kind::CronJob => {
                let o: Obj<CronJobSpec> = Deserialize::deserialize(d)?;
                let t = o
                    .spec
                    .unwrap_or_default()
                    .job_template
                    .unwrap_or_default()
                    .spec
                    .unwrap_or_default()
                    .template
                    .unwrap_or_default();
                let view = PodView {
                    spec_path: "spec.jobTemplate.spec.template.spec",
                    meta_path: "spec.jobTemplate.spec.template.metadata",
                    labels: t.metadata.labels,
                    annotations: t.metadata.annotations,
                    spec: Box::new(t.spec),
                    claim_templates: Vec::new(),
                    run_to_completion: true,
                    replicas: None,
                };
                (o.metadata, Body::Pods(view))
            }
            Kind::PersistentVolumeClaim => {
                let o: Obj<ClaimSpec> = Deserialize::deserialize(d)?;
                let spec = o.spec.unwrap_or_default();
                (o.metadata, Body::PersistentVolumeClaim(spec))
            }
            Kind::Service => {
                let o: Obj<ServiceSpecWire> = Deserialize::deserialize(d)?;
                let spec = o.spec.unwrap_or_default();
                let info = ServiceInfo {
                    // An empty `metadata.namespace` is no namespace, as for the object itself
                    // (found by fuzzing: the Service kept "" and was traced to no pods).
                    namespace: o
                        .metadata
                        .namespace
                        .clone()
                        .filter(|n| !n.is_empty())
                        .or(namespace.map(String::from))
                        .unwrap_or_default(),
                    name: o.metadata.display_name(),
                    selector: spec.selector.filter(|s| !s.is_empty()),
                    ports: spec
                        .ports
                        .into_iter()
                        .map(|p| ServicePortInfo {
                            name: p.name,
                            port: p.port,
                            app_protocol: p.app_protocol,
                        })
                        .collect(),
                    ..ServiceInfo::default()
                };
                (o.metadata, Body::Service(info))
            }
            Kind::Ingress => {
                let o: Obj<IngressSpecWire> = Deserialize::deserialize(d)?;
                let spec = o.spec.unwrap_or_default();
                let class = spec
                    .ingress_class_name
                    .or_else(|| {
                        o.metadata
                            .annotations
                            .get("kubernetes.io/ingress.class")
                            .cloned()
                    })
                    .filter(|c| !c.is_empty());
                let view = IngressView {
                    class,
                    rules: spec
                        .rules
                        .into_iter()
                        .map(|r| IngressRuleView {
                            host: r.host.filter(|h| !h.is_empty()),
                            services: r
                                .http
                                .map(|h| {
                                    h.paths
                                        .into_iter()
                                        .filter_map(|p| p.backend.service.map(|s| s.name))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        })
                        .collect(),
                    default_backend: spec.default_backend.and_then(|b| b.service).map(|s| s.name),
                    tls: spec
                        .tls
                        .into_iter()
                        .map(|t| IngressTlsView {
                            hosts: t.hosts,
                            has_secret: t.secret_name.is_some_and(|s| !s.is_empty()),
                        })
                        .collect(),
                };
                (o.metadata, Body::Ingress(view))
            }
            Kind::NetworkPolicy => {
                let np: k8s_openapi::api::networking::v1::NetworkPolicy =
                    Deserialize::deserialize(d)?;
                let mut info = NetworkPolicyInfo::from(&np);
                if info.namespace.is_empty() {
                    info.namespace = namespace.unwrap_or_default().to_string();
                }
                let meta = Meta {
                    name: np.metadata.name.clone(),
                    generate_name: np.metadata.generate_name.clone(),
                    namespace: np.metadata.namespace.clone(),
                    labels: Labels::from(np.metadata.labels.as_ref()),
                    annotations: Labels::new(),
                    deletion_timestamp: np
                        .metadata
                        .deletion_timestamp
                        .as_ref()
                        .map(|_| serde::de::IgnoredAny),
                    uid: np.metadata.uid.clone(),
                    owner_references: Vec::new(),
                };
                (meta, Body::NetworkPolicy(info))
            }
            Kind::Namespace => {
                let o: Obj<serde::de::IgnoredAny> = Deserialize::deserialize(d)?;
                (o.metadata, Body::Namespace)
            }
            Kind::CnpgCluster
            | Kind::Kafka
            | Kind::KafkaNodePool
            | Kind::Elasticsearch
            | Kind::MariaDb => {
                let (meta, view) = operated::decode(kind, d)?;
                (meta, Body::Operated(Box::new(view)))
            }
        };
        let ns = if kind == Kind::Namespace {
            String::new()
        } else {
            meta.namespace
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| namespace.map(String::from))
                .unwrap_or_default()
        };
        Ok(Object {
            kind,
            name: meta.display_name(),
            namespace: ns,
            deleting: meta.deletion_timestamp.is_some(),
            uid: meta.uid.unwrap_or_default(),
            controller: meta
                .owner_references
                .into_iter()
                .find(|r| r.controller == Some(true))
                .map(Box::new),
            labels: meta.labels,
            annotations: meta.annotations,
            body,
        })
    }
}

#[derive(Deserialize)]
#[serde(bound = "S: Deserialize<'de>")]
struct Obj<S> {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Option<S>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ControllerSpec {
    #[serde(default)]
    template: Option<PodTemplate>,
    #[serde(default)]
    replicas: Option<i32>,
    #[serde(default, deserialize_with = "null_default")]
    volume_claim_templates: Vec<ClaimTemplate>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CronJobSpec {
    #[serde(default)]
    job_template: Option<JobTemplate>,
}

#[derive(Deserialize, Default)]
struct JobTemplate {
    #[serde(default)]
    spec: Option<ControllerSpec>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ServiceSpecWire {
    #[serde(default)]
    selector: Option<Labels>,
    #[serde(default, deserialize_with = "null_default")]
    ports: Vec<ServicePortWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ServicePortWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    port: i32,
    #[serde(default)]
    app_protocol: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IngressSpecWire {
    #[serde(default, deserialize_with = "null_default")]
    rules: Vec<IngressRuleWire>,
    #[serde(default)]
    default_backend: Option<BackendWire>,
    #[serde(default, deserialize_with = "null_default")]
    tls: Vec<IngressTlsWire>,
    #[serde(default)]
    ingress_class_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct IngressRuleWire {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    http: Option<HttpWire>,
}

#[derive(Deserialize, Default)]
struct HttpWire {
    #[serde(default, deserialize_with = "null_default")]
    paths: Vec<PathWire>,
}

#[derive(Deserialize, Default)]
struct PathWire {
    #[serde(default)]
    backend: BackendWire,
}

#[derive(Deserialize, Default)]
struct BackendWire {
    #[serde(default)]
    service: Option<NamedRef>,
}

#[derive(Deserialize, Default)]
struct NamedRef {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IngressTlsWire {
    #[serde(default, deserialize_with = "null_default")]
    hosts: Vec<String>,
    #[serde(default)]
    secret_name: Option<String>,
}

#[cfg(test)]
mod deletion_tests {
    use super::*;

    #[test]
    fn deletion_timestamp_marks_the_object_deleting() {
        let v = serde_json::json!({"metadata": {"name": "api", "deletionTimestamp": "2026-12-01T00:00:00Z",
            "finalizers": ["kubernetes.io/pvc-protection"]},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}});
        let o = Object::from_value(Kind::Pod, &v, Some("phi")).expect("decodes");
        assert!(o.deleting);
        let v = serde_json::json!({"metadata": {"name": "api"}, "spec": {}});
        assert!(
            !Object::from_value(Kind::Pod, &v, Some("phi"))
                .expect("decodes")
                .deleting
        );
    }
}

#[cfg(test)]
mod annotation_tests {
    use super::*;

    /// kubectl's copy of the object is read (it must still be a string) but not kept, at the
    /// object's level and the template's, from JSON text (the webhook) and from a tree (`check`);
    /// every other annotation is kept as written.
    #[test]
    fn last_applied_is_read_but_not_kept() {
        let copy = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{}}}"#;
        let v = serde_json::json!({
            "metadata": {"name": "api", "annotations": {pod::LAST_APPLIED: copy, "team": "x\"y"}},
            "spec": {"template": {
                "metadata": {"annotations": {"linkerd.io/inject": "enabled", pod::LAST_APPLIED: copy}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}});
        let text = serde_json::to_string(&v).expect("json");
        for o in [
            Object::from_json(Kind::Deployment, &text, Some("phi")).expect("decodes"),
            Object::from_value(Kind::Deployment, &v, Some("phi")).expect("decodes"),
        ] {
            assert_eq!(o.annotations, Labels::from([("team", "x\"y")]));
            let Body::Pods(p) = &o.body else {
                panic!("not a pod view: {:?}", o.body)
            };
            assert_eq!(
                p.annotations,
                Labels::from([("linkerd.io/inject", "enabled")])
            );
        }
        // As strict as any other annotation: a value that is not a string is refused, in the
        // same words as for another key of the same length; null annotations are none.
        let refusal = |key: &str| {
            let bad = format!(
                r#"{{"metadata":{{"name":"api","annotations":{{"{key}":{{"a":1}}}}}},"spec":{{}}}}"#
            );
            Object::from_json(Kind::Pod, &bad, None)
                .expect_err("not a string")
                .to_string()
        };
        let other = "x".repeat(pod::LAST_APPLIED.len());
        assert_eq!(refusal(pod::LAST_APPLIED), refusal(&other));
        let none = r#"{"metadata":{"name":"api","annotations":null},"spec":{}}"#;
        let o = Object::from_json(Kind::Pod, none, None).expect("decodes");
        assert!(o.annotations.is_empty());
    }
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn every_admitted_kind_of_the_registry_decodes_and_every_kind_is_registered() {
        for k in crate::kinds::KINDS
            .iter()
            .filter(|k| !k.admission.is_empty())
        {
            if k.group == "phiguard.io" {
                continue; // PhiExceptions are validated, not judged as objects
            }
            assert!(
                Kind::from_group_kind(k.group, k.kind).is_some(),
                "{}/{} is admitted but object::Kind cannot decode it",
                k.group,
                k.kind
            );
        }
        for kind in Kind::ALL {
            let spec = crate::kinds::KINDS
                .iter()
                .find(|k| Kind::from_group_kind(k.group, k.kind) == Some(kind));
            assert!(
                spec.is_some_and(|s| !s.admission.is_empty()),
                "{kind} is decoded but not admitted in the registry"
            );
            let judged = !matches!(kind, Kind::NetworkPolicy | Kind::Namespace);
            assert_eq!(spec.is_some_and(|s| s.judged), judged, "{kind}");
        }
    }
}
