//! What rules may read of the cluster: the lean views of cluster objects ([`objects`]) and the
//! [`ClusterView`] trait they are read through. Watch caches and files (`cluster`) both fill
//! it; the engine and rules only read it. Depends on nothing but labels and selectors, so the
//! admitted-object views (`object`) and the policy's scope matching can use it without cycles.

pub(crate) mod confirm;
pub(crate) mod network_policy;
pub(crate) mod objects;
pub(crate) mod platform;
pub(crate) mod relabeled;
pub(crate) mod safeguards;

use std::sync::Arc;

use crate::selector::Labels;

pub(crate) use network_policy::NetworkPolicyInfo;
pub(crate) use objects::{
    CertificateInfo, MtlsMode, NamespaceInfo, PeerAuthInfo, PodInfo, PvInfo, PvcInfo, RawObject,
    ServiceInfo, ServicePortInfo, StorageClassInfo,
};
pub(crate) use platform::{KumaMeshInfo, KumaMeshTlsInfo, PlatformEncryption, PlatformSource};
pub(crate) use safeguards::{
    IstioAuthzInfo, LinkerdAuthzInfo, LinkerdServerInfo, PdbInfo, VeleroScheduleInfo,
};

/// Read access to cluster state for rules.
pub trait ClusterView: Send + Sync {
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceInfo>>;
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClassInfo>>;
    /// The default StorageClass (newest of those annotated default, as the API server picks).
    fn default_storage_class(&self) -> Option<Arc<StorageClassInfo>>;
    /// Every known StorageClass, sorted by name (to suggest encrypting alternatives).
    fn storage_classes(&self) -> Vec<Arc<StorageClassInfo>> {
        Vec::new()
    }
    /// How many StorageClasses there are (cheap; lets rules skip a full listing at scale).
    fn storage_class_count(&self) -> usize {
        self.storage_classes().len()
    }
    fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PvcInfo>>;
    fn pv(&self, name: &str) -> Option<Arc<PvInfo>>;
    fn network_policies(&self, namespace: &str) -> Arc<[Arc<NetworkPolicyInfo>]>;
    fn peer_authentications(&self, namespace: &str) -> Arc<[Arc<PeerAuthInfo>]>;
    /// Is this Secret issued by a cert-manager Certificate in the namespace?
    fn secret_issued_by_certificate(&self, namespace: &str, secret: &str) -> bool;
    fn services(&self, namespace: &str) -> Arc<[Arc<ServiceInfo>]>;
    /// Pods (and, offline, pod templates of known workloads) in a namespace.
    fn pods(&self, namespace: &str) -> Arc<[Arc<PodInfo>]>;
    /// PodDisruptionBudgets in a namespace.
    fn pod_disruption_budgets(&self, namespace: &str) -> Arc<[Arc<PdbInfo>]>;
    /// Istio AuthorizationPolicies in a namespace.
    fn istio_authorization_policies(&self, namespace: &str) -> Arc<[Arc<IstioAuthzInfo>]>;
    /// Linkerd AuthorizationPolicies in a namespace.
    fn linkerd_authorization_policies(&self, namespace: &str) -> Arc<[Arc<LinkerdAuthzInfo>]>;
    /// Linkerd Servers in a namespace.
    fn linkerd_servers(&self, namespace: &str) -> Arc<[Arc<LinkerdServerInfo>]>;
    /// Every Velero Schedule; `None` when Velero is not installed (its Schedule CRD is not
    /// served, or offline: no Schedule and no Schedule CRD among the files).
    fn velero_schedules(&self) -> Option<Vec<Arc<VeleroScheduleInfo>>>;
    /// The namespace's NetworkPolicies whose podSelector selects these pod labels, in name
    /// order. [`crate::cluster::ClusterState`] answers from an index instead of a scan.
    fn network_policies_selecting(
        &self,
        namespace: &str,
        pod_labels: &Labels,
    ) -> Vec<Arc<NetworkPolicyInfo>> {
        self.network_policies(namespace)
            .iter()
            .filter(|p| p.selects(pod_labels))
            .cloned()
            .collect()
    }
    /// The namespace's pods carrying every label of a Service-style `selector` (all pods for an
    /// empty one), in name order. [`crate::cluster::ClusterState`] answers from an index.
    fn pods_with_labels(&self, namespace: &str, selector: &Labels) -> Vec<Arc<PodInfo>> {
        self.pods(namespace)
            .iter()
            .filter(|p| selector_matches(selector, &p.labels))
            .cloned()
            .collect()
    }
    /// The platform (CNI) encryption settings read from `source`'s object; `None` when that
    /// object is not known (not installed, not readable, or not yet seen).
    fn platform_encryption(&self, _source: PlatformSource) -> Option<Arc<PlatformEncryption>> {
        None
    }
    /// A Kuma `Mesh` by name; `None` when not known.
    fn kuma_mesh(&self, _name: &str) -> Option<Arc<KumaMeshInfo>> {
        None
    }
    /// Kuma MeshTLS policies of a Mesh (in any namespace).
    fn kuma_mesh_tls(&self, _mesh: &str) -> Vec<Arc<KumaMeshTlsInfo>> {
        Vec::new()
    }
    /// The objects of the judged kinds in a namespace that no controller owns (what the audit
    /// judges: a Deployment, not its ReplicaSets and Pods), whole. `None` when this view does
    /// not hold them: the watch caches keep only lean views, so the webhook reads them from the
    /// API server (`view::confirm`) when a namespace is labeled into PHI scope.
    fn namespace_objects(&self, _namespace: &str) -> Option<Arc<[Arc<RawObject>]>> {
        None
    }
    /// A pod controller (`kind` as in `ownerReferences`, e.g. `ReplicaSet`) that a child names
    /// as its controller. The watch caches keep none (children are judged through their owner
    /// only on the deny path, where the owner is read from the API server); files keep those
    /// with a uid.
    fn owner(&self, _namespace: &str, _kind: &str, _name: &str) -> Option<Arc<OwnerInfo>> {
        None
    }
    /// The pod a controller's template will make (`kind` e.g. `StatefulSet`), for a selector
    /// that names a controller's pods by the labels controllers add before they exist
    /// (`policy::scope::pods_selected`). Files hold every template; the watch caches none (a
    /// consistent read answers, `cluster::confirm`).
    fn controller_pod(&self, _namespace: &str, _kind: &str, _name: &str) -> Option<Arc<PodInfo>> {
        None
    }
}

/// A pod controller as read to verify a child made from its template (`engine::owners`): its
/// kind and uid, and the object itself as JSON, decoded only when a child is judged through it.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerInfo {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub value: Arc<serde_json::Value>,
}

/// Does a Service-style selector (every pair must be present) match these labels?
pub(crate) fn selector_matches(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
