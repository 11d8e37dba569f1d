//! The registry of kinds: every kind phi-guard admits, judges or reads as cluster state, with
//! its API coordinates and what each part of phi-guard does with it. The watches
//! (`cluster::watch`), loading state from files (`cluster::files`), the cluster snapshot of
//! `report --from-cluster` (`cluster::snapshot`), the audit (`audit::store`), `check`'s
//! classification of documents and the webhook rules (`policy::webhooks`) all read this table,
//! so a kind is added here once. What phi-guard keeps of a consulted kind is its [`Store`]; the
//! places that fill a store match on it exhaustively, so a new store that one of them forgets
//! does not compile.
//!
//! A leaf: plain data, no I/O.

use crate::verdict::RuleId;

/// Namespaced or cluster-scoped, as the API server serves the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// An operation the webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "CREATE",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }
}

/// Which lean view of cluster state a consulted kind fills (one store in `ClusterState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Store {
    Namespaces,
    StorageClasses,
    PersistentVolumes,
    PersistentVolumeClaims,
    NetworkPolicies,
    Services,
    Pods,
    PeerAuthentications,
    Certificates,
    PhiPolicies,
    PhiExceptions,
    /// The settings in named ConfigMaps (`view::PlatformSource`): the CNIs' encryption and
    /// ingress-nginx's global HTTP-to-HTTPS redirect; other ConfigMaps are never read.
    PlatformConfigMaps,
    /// Calico's `FelixConfiguration` named `default`.
    FelixConfiguration,
    KumaMeshes,
    KumaMeshTls,
    PodDisruptionBudgets,
    IstioAuthorizationPolicies,
    LinkerdAuthorizationPolicies,
    LinkerdServers,
    VeleroSchedules,
}

/// One kind and its roles.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub scope: Scope,
    /// Older versions the same objects may be served as (a CRD whose clusters still serve
    /// only those): the webhook's rules name them too, and the audit, the snapshot and a
    /// namespace's reads fall back to them when `version` is not served. Decoding does not
    /// depend on the version (the fields phi-guard reads are the same in each).
    pub also_versions: &'static [&'static str],
    /// Served by a CRD that may be absent (its watch waits for discovery, its reads treat a 404
    /// as "none").
    pub optional_crd: bool,
    /// Judged as it stands by the audit, `report` and `check` (the controllers' children are
    /// left to their controller there).
    pub judged: bool,
    /// Operations the webhook judges in PHI scope (empty: never admitted through phi-guard).
    pub admission: &'static [Op],
    /// Carries PHI labels itself or in its pod template: the `phi-objects` webhook selects it
    /// outside PHI namespaces.
    pub labeled: bool,
    /// Can expose PHI pods from outside PHI namespaces: the `network` webhook.
    pub exposes: bool,
    /// The cluster state kept of it, if rules consult it.
    pub store: Option<Store>,
    /// The rules whose answers rest on it (documentation, and the report's evidence list).
    pub read_by: &'static [RuleId],
}

const CU: &[Op] = &[Op::Create, Op::Update];
const NONE: &[Op] = &[];

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
) -> KindSpec {
    KindSpec {
        group,
        version,
        kind,
        plural,
        scope,
        also_versions: &[],
        optional_crd: false,
        judged: false,
        admission: NONE,
        labeled: false,
        exposes: false,
        store: None,
        read_by: &[],
    }
}

const fn ns(
    group: &'static str,
    version: &'static str,
    k: &'static str,
    plural: &'static str,
) -> KindSpec {
    kind(group, version, k, plural, Scope::Namespaced)
}

const fn cluster(
    group: &'static str,
    version: &'static str,
    k: &'static str,
    plural: &'static str,
) -> KindSpec {
    kind(group, version, k, plural, Scope::Cluster)
}

impl KindSpec {
    const fn judged(mut self, admission: &'static [Op]) -> Self {
        self.judged = true;
        self.admission = admission;
        self.labeled = true;
        self
    }
    const fn admitted(mut self, admission: &'static [Op]) -> Self {
        self.admission = admission;
        self
    }
    const fn exposes(mut self) -> Self {
        self.exposes = true;
        self
    }
    const fn store(mut self, store: Store, read_by: &'static [RuleId]) -> Self {
        self.store = Some(store);
        self.read_by = read_by;
        self
    }
    const fn optional(mut self) -> Self {
        self.optional_crd = true;
        self
    }
    const fn also(mut self, versions: &'static [&'static str]) -> Self {
        self.also_versions = versions;
        self
    }

    /// Every version it may be served as, preferred first.
    pub fn versions(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.version).chain(self.also_versions.iter().copied())
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name a watch and its readiness component go by: `Kind`, or `Kind.group` where two
    /// kinds share a name.
    pub fn label(&self) -> String {
        let shared = KINDS
            .iter()
            .filter(|k| k.kind == self.kind && k.group != self.group)
            .count()
            > 0;
        if shared {
            format!("{}.{}", self.kind, self.group)
        } else {
            self.kind.to_string()
        }
    }
}

use RuleId::{
    Contingency, EncryptionAtRest, EncryptionInTransit, EntityAuthentication, NetworkSegmentation,
};

const ALL_RULES: &[RuleId] = &RuleId::ALL;

/// Every kind phi-guard knows. Order matters only for the webhook rules derived from it (kinds
/// of one API group with the same operations share a rule, in this order).
pub const KINDS: &[KindSpec] = &[
    // Judged workloads and the objects that expose them.
    ns("", "v1", "Pod", "pods").judged(CU).store(
        Store::Pods,
        &[
            EncryptionInTransit,
            NetworkSegmentation,
            EntityAuthentication,
            Contingency,
        ],
    ),
    ns("", "v1", "ReplicationController", "replicationcontrollers").judged(CU),
    ns("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
        .judged(CU)
        .store(Store::PersistentVolumeClaims, &[EncryptionAtRest]),
    ns("", "v1", "Service", "services")
        .judged(CU)
        .exposes()
        .store(Store::Services, &[EncryptionInTransit]),
    ns("apps", "v1", "Deployment", "deployments").judged(CU),
    ns("apps", "v1", "StatefulSet", "statefulsets").judged(CU),
    ns("apps", "v1", "DaemonSet", "daemonsets").judged(CU),
    ns("apps", "v1", "ReplicaSet", "replicasets").judged(CU),
    ns("batch", "v1", "Job", "jobs").judged(CU),
    ns("batch", "v1", "CronJob", "cronjobs").judged(CU),
    ns("networking.k8s.io", "v1", "Ingress", "ingresses")
        .judged(CU)
        .exposes(),
    // Databases, brokers and search clusters run by operators: their storage classes and TLS
    // settings judged on the custom resource, before the operator creates pods and claims
    // (`object::operated`). Optional CRDs: watched by the audit once served; the webhook's rules
    // name them whether or not the CRD exists (a rule for a resource that is not served
    // matches nothing, and a CR created just after its CRD is judged with no discovery race).
    ns("postgresql.cnpg.io", "v1", "Cluster", "clusters")
        .judged(CU)
        .optional(),
    // Strimzi serves `v1` since 0.49 next to `v1beta2`, which every release since 0.22 serves
    // and most clusters still run alone; both name the same objects and fields.
    ns("kafka.strimzi.io", "v1", "Kafka", "kafkas")
        .judged(CU)
        .optional()
        .also(&["v1beta2"]),
    ns("kafka.strimzi.io", "v1", "KafkaNodePool", "kafkanodepools")
        .judged(CU)
        .optional()
        .also(&["v1beta2"]),
    ns(
        "elasticsearch.k8s.elastic.co",
        "v1",
        "Elasticsearch",
        "elasticsearches",
    )
    .judged(CU)
    .optional(),
    ns("k8s.mariadb.com", "v1alpha1", "MariaDB", "mariadbs")
        .judged(CU)
        .optional(),
    // A NetworkPolicy is judged with the others that select the same pods: a new one or a
    // change that opens PHI pods, and a deletion that leaves them unisolated.
    ns(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
    )
    .admitted(&[Op::Create, Op::Update, Op::Delete])
    .exposes()
    .store(Store::NetworkPolicies, &[NetworkSegmentation]),
    // A Namespace's PHI label, judged with what runs in it (its own webhook).
    cluster("", "v1", "Namespace", "namespaces")
        .admitted(&[Op::Update])
        .store(Store::Namespaces, ALL_RULES),
    // Consulted state.
    cluster("storage.k8s.io", "v1", "StorageClass", "storageclasses")
        .store(Store::StorageClasses, &[EncryptionAtRest]),
    cluster("", "v1", "PersistentVolume", "persistentvolumes")
        .store(Store::PersistentVolumes, &[EncryptionAtRest]),
    ns("", "v1", "ConfigMap", "configmaps")
        .store(Store::PlatformConfigMaps, &[EncryptionInTransit]),
    ns(
        "security.istio.io",
        "v1",
        "PeerAuthentication",
        "peerauthentications",
    )
    .optional()
    .store(Store::PeerAuthentications, &[EncryptionInTransit]),
    ns("cert-manager.io", "v1", "Certificate", "certificates")
        .optional()
        .store(Store::Certificates, &[EncryptionInTransit]),
    cluster(
        "crd.projectcalico.org",
        "v1",
        "FelixConfiguration",
        "felixconfigurations",
    )
    .optional()
    .store(Store::FelixConfiguration, &[EncryptionInTransit]),
    cluster("kuma.io", "v1alpha1", "Mesh", "meshes")
        .optional()
        .store(Store::KumaMeshes, &[EncryptionInTransit]),
    ns("kuma.io", "v1alpha1", "MeshTLS", "meshtlses")
        .optional()
        .store(Store::KumaMeshTls, &[EncryptionInTransit]),
    ns(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
    )
    .store(Store::PodDisruptionBudgets, &[Contingency]),
    ns(
        "security.istio.io",
        "v1",
        "AuthorizationPolicy",
        "authorizationpolicies",
    )
    .optional()
    .store(Store::IstioAuthorizationPolicies, &[EntityAuthentication]),
    ns(
        "policy.linkerd.io",
        "v1alpha1",
        "AuthorizationPolicy",
        "authorizationpolicies",
    )
    .optional()
    .store(Store::LinkerdAuthorizationPolicies, &[EntityAuthentication]),
    ns("policy.linkerd.io", "v1beta1", "Server", "servers")
        .optional()
        .store(Store::LinkerdServers, &[EntityAuthentication]),
    ns("velero.io", "v1", "Schedule", "schedules")
        .optional()
        .store(Store::VeleroSchedules, &[Contingency]),
    // phi-guard's own resources.
    cluster("phiguard.io", "v1alpha1", "PhiPolicy", "phipolicies")
        .optional()
        .store(Store::PhiPolicies, ALL_RULES),
    cluster("phiguard.io", "v1alpha1", "PhiException", "phiexceptions")
        .optional()
        .admitted(CU)
        .store(Store::PhiExceptions, ALL_RULES),
];

/// Other API groups a kind is also served under (Calico's API server serves
/// `projectcalico.org/v3` next to the `crd.projectcalico.org/v1` CRDs); files may hold either.
const ALIASES: &[(&str, &str, &str)] = &[(
    "projectcalico.org",
    "FelixConfiguration",
    "crd.projectcalico.org",
)];

/// The registry's entry for a group and kind (aliases included).
pub fn find(group: &str, kind: &str) -> Option<&'static KindSpec> {
    let group = ALIASES
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map_or(group, |(_, _, canonical)| canonical);
    KINDS.iter().find(|k| k.group == group && k.kind == kind)
}

/// Kinds judged as they stand (the audit, `report`, `check`).
pub fn judged() -> impl Iterator<Item = &'static KindSpec> {
    KINDS.iter().filter(|k| k.judged)
}

/// Kinds whose lean view is kept as cluster state.
pub fn consulted() -> impl Iterator<Item = (&'static KindSpec, Store)> {
    KINDS.iter().filter_map(|k| k.store.map(|s| (k, s)))
}

/// Kinds read as cluster state only (not judged themselves).
pub fn is_state_only(group: &str, kind: &str) -> bool {
    find(group, kind).is_some_and(|k| k.store.is_some() && !k.judged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_kind_is_listed_once_and_every_store_has_one_kind() {
        let mut seen = BTreeSet::new();
        for k in KINDS {
            assert!(
                seen.insert((k.group, k.kind)),
                "{}/{} listed twice",
                k.group,
                k.kind
            );
            assert!(!k.plural.is_empty() && k.plural.chars().all(|c| c.is_ascii_lowercase()));
        }
        let stores: Vec<Store> = consulted().map(|(_, s)| s).collect();
        let distinct: BTreeSet<Store> = stores.iter().copied().collect();
        assert_eq!(stores.len(), distinct.len(), "a store filled by two kinds");
    }

    #[test]
    fn judged_kinds_are_admitted_and_labeled() {
        for k in judged() {
            assert!(
                k.admission.contains(&Op::Create),
                "{} judged but not admitted",
                k.kind
            );
            assert!(k.labeled && k.scope == Scope::Namespaced, "{}", k.kind);
        }
    }

    #[test]
    fn labels_name_kinds_that_share_a_name_by_group() {
        let labels: Vec<String> = KINDS.iter().map(KindSpec::label).collect();
        assert!(labels.contains(&"AuthorizationPolicy.security.istio.io".to_string()));
        assert!(labels.contains(&"AuthorizationPolicy.policy.linkerd.io".to_string()));
        assert!(labels.contains(&"Pod".to_string()));
        let distinct: BTreeSet<&String> = labels.iter().collect();
        assert_eq!(distinct.len(), labels.len());
    }

    #[test]
    fn aliases_resolve_to_the_canonical_group() {
        let felix = find("projectcalico.org", "FelixConfiguration").map(|k| k.group);
        assert_eq!(felix, Some("crd.projectcalico.org"));
        assert!(find("apps", "Pod").is_none());
    }
}
