//! Which kinds `check` judges, reads as cluster state, or knows to be cluster-scoped, and where
//! pod-bearing custom resources keep their pod template.

use super::*;

/// The kind phi-guard judges an object as: its own, or for custom resources that run pods
/// from a standard pod template (`spec.template`), the built-in kind they mirror.
pub(crate) fn judged_kind(group: &str, kind: &str) -> Option<Kind> {
    Kind::from_group_kind(group, kind).or(match (group, kind) {
        // Argo Rollouts: a Deployment with a rollout strategy.
        ("argoproj.io", "Rollout") => Some(Kind::Deployment),
        // OpenKruise workloads.
        ("apps.kruise.io", "CloneSet") => Some(Kind::Deployment),
        ("apps.kruise.io", "StatefulSet") => Some(Kind::StatefulSet),
        ("apps.kruise.io", "DaemonSet") => Some(Kind::DaemonSet),
        _ => None,
    })
}

/// Kinds [`load_state`] reads as cluster state and `check` does not judge itself (the
/// registry's consulted kinds that are not judged; of ConfigMaps only the platform ones, see
/// [`is_platform_config_map`]).
pub(crate) fn is_state_kind(group: &str, kind: &str) -> bool {
    crate::kinds::is_state_only(group, kind) && !(group.is_empty() && kind == "ConfigMap")
}

/// A ConfigMap whose settings are read as cluster state (`kube-system/cilium-config`,
/// `ingress-nginx/ingress-nginx-controller` and the other [`PlatformSource`] ConfigMaps); other
/// ConfigMaps are not read.
pub(crate) fn is_platform_config_map(d: &Document) -> bool {
    d.group().is_empty()
        && d.kind == "ConfigMap"
        && PlatformSource::of_config_map(&d.namespace(), &d.name()).is_some()
}

/// Kinds that are cluster-scoped: `--namespace` neither applies to them nor conflicts.
pub(crate) fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    if let Some(spec) = crate::kinds::find(group, kind) {
        return spec.scope == crate::kinds::Scope::Cluster;
    }
    // Kinds phi-guard does not read, as the API server serves them.
    matches!(
        (group, kind),
        (
            "",
            "Namespace" | "PersistentVolume" | "Node" | "ComponentStatus"
        ) | ("storage.k8s.io", _)
            | (
                "rbac.authorization.k8s.io",
                "ClusterRole" | "ClusterRoleBinding"
            )
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("admissionregistration.k8s.io", _)
            | ("apiregistration.k8s.io", "APIService")
            | ("scheduling.k8s.io", "PriorityClass")
            | (
                "networking.k8s.io",
                "IngressClass" | "IPAddress" | "ServiceCIDR"
            )
            | ("node.k8s.io", "RuntimeClass")
            | ("certificates.k8s.io", "CertificateSigningRequest")
            | ("flowcontrol.apiserver.k8s.io", _)
            | ("phiguard.io", "PhiPolicy" | "PhiException")
            | ("cert-manager.io" | "certmanager.k8s.io", "ClusterIssuer")
            | (
                "crd.projectcalico.org" | "projectcalico.org",
                "FelixConfiguration"
            )
            | ("kuma.io", "Mesh")
            | (
                "snapshot.storage.k8s.io",
                "VolumeSnapshotClass" | "VolumeSnapshotContent"
            )
            | ("gateway.networking.k8s.io", "GatewayClass")
    ) && !matches!((group, kind), ("storage.k8s.io", "CSIStorageCapacity"))
}

/// Custom resources whose operator runs pods (and claims volumes) for them without a pod
/// template in the object: databases, brokers and search clusters that hold PHI, so their
/// skip says that the webhook judges what the operator creates.
pub(crate) fn operator_runs_pods(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("postgresql.cnpg.io", "Pooler")
            | ("postgres-operator.crunchydata.com", "PostgresCluster")
            | ("acid.zalan.do", "postgresql")
            | (
                "kafka.strimzi.io",
                "KafkaConnect" | "KafkaMirrorMaker2" | "KafkaBridge"
            )
            | ("kibana.k8s.elastic.co", "Kibana")
            | ("logstash.k8s.elastic.co", "Logstash")
            | ("apm.k8s.elastic.co", "ApmServer")
            | ("enterprisesearch.k8s.elastic.co", "EnterpriseSearch")
            | ("k8s.mariadb.com", "MaxScale")
            | ("mongodbcommunity.mongodb.com", "MongoDBCommunity")
            | ("rabbitmq.com", "RabbitmqCluster")
    )
}

/// Where a custom resource carries containers (a `containers` list, or a `container`, with an
/// `image`), as a field path, so an object that runs pods is never skipped silently.
pub(crate) fn pod_spec_path(value: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut String, depth: usize) -> bool {
        if depth > 12 {
            return false;
        }
        match v {
            Value::Object(m) => {
                let runs = |field: &str| match m.get(field) {
                    Some(Value::Array(cs)) => cs.iter().any(|c| c.get("image").is_some()),
                    Some(c @ Value::Object(_)) => c.get("image").is_some(),
                    _ => false,
                };
                // `containers: [...]` of a pod spec, or one `container:` (Argo Workflows,
                // Tekton steps' shape).
                for field in ["containers", "container"] {
                    if runs(field) {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(field);
                        return true;
                    }
                }
                for (k, child) in m {
                    if k == "metadata" || k == "status" {
                        continue;
                    }
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    if walk(child, path, depth + 1) {
                        return true;
                    }
                    path.truncate(len);
                }
                false
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    if walk(child, path, depth + 1) {
                        return true;
                    }
                    path.truncate(len);
                }
                false
            }
            _ => false,
        }
    }
    let mut path = String::new();
    if walk(value, &mut path, 0) {
        return Some(path);
    }
    // An operator's resource naming the image of the pods it runs (`spec.image`, a
    // `*.image` string at any depth under `spec`).
    image_path(value.get("spec")?, "spec", 0)
}

/// The path of the first `image` string field under `v`.
fn image_path(v: &Value, path: &str, depth: usize) -> Option<String> {
    if depth > 12 {
        return None;
    }
    match v {
        Value::Object(m) => {
            if m.get("image").is_some_and(Value::is_string) {
                return Some(format!("{path}.image"));
            }
            m.iter()
                .filter(|(k, _)| k.as_str() != "metadata")
                .find_map(|(k, child)| image_path(child, &format!("{path}.{k}"), depth + 1))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| image_path(child, &format!("{path}[{i}]"), depth + 1)),
        _ => None,
    }
}
