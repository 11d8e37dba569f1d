//! A cluster view in which one namespace carries other labels: the state a Namespace UPDATE
//! would leave, so what runs in it can be judged as the audit will judge it once the update is
//! stored. Everything else is answered by the view underneath.

use std::sync::Arc;

use crate::selector::Labels;

use super::{
    ClusterView, KumaMeshInfo, KumaMeshTlsInfo, NamespaceInfo, NetworkPolicyInfo, PeerAuthInfo,
    PlatformEncryption, PlatformSource, PodInfo, PvInfo, PvcInfo, RawObject, ServiceInfo,
    StorageClassInfo,
};

/// `base`, except that `namespace` is answered with these labels.
pub(crate) struct Relabeled<'a> {
    base: &'a dyn ClusterView,
    namespace: Arc<NamespaceInfo>,
}

impl<'a> Relabeled<'a> {
    /// Namespace `name` with `labels` (its kept annotations as `base` knows them).
    pub(crate) fn new(base: &'a dyn ClusterView, name: &str, labels: &Labels) -> Self {
        let annotations = base
            .namespace(name)
            .map(|n| n.annotations.clone())
            .unwrap_or_default();
        Relabeled {
            base,
            namespace: Arc::new(NamespaceInfo {
                name: name.to_string(),
                labels: labels.clone(),
                annotations,
            }),
        }
    }
}

impl ClusterView for Relabeled<'_> {
    super::safeguards::forward_safeguard_lookups!(base);
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceInfo>> {
        if name == self.namespace.name {
            Some(self.namespace.clone())
        } else {
            self.base.namespace(name)
        }
    }
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClassInfo>> {
        self.base.storage_class(name)
    }
    fn default_storage_class(&self) -> Option<Arc<StorageClassInfo>> {
        self.base.default_storage_class()
    }
    fn storage_classes(&self) -> Vec<Arc<StorageClassInfo>> {
        self.base.storage_classes()
    }
    fn storage_class_count(&self) -> usize {
        self.base.storage_class_count()
    }
    fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PvcInfo>> {
        self.base.pvc(namespace, name)
    }
    fn pv(&self, name: &str) -> Option<Arc<PvInfo>> {
        self.base.pv(name)
    }
    fn network_policies(&self, namespace: &str) -> Arc<[Arc<NetworkPolicyInfo>]> {
        self.base.network_policies(namespace)
    }
    fn network_policies_selecting(
        &self,
        namespace: &str,
        pod_labels: &Labels,
    ) -> Vec<Arc<NetworkPolicyInfo>> {
        self.base.network_policies_selecting(namespace, pod_labels)
    }
    fn peer_authentications(&self, namespace: &str) -> Arc<[Arc<PeerAuthInfo>]> {
        self.base.peer_authentications(namespace)
    }
    fn secret_issued_by_certificate(&self, namespace: &str, secret: &str) -> bool {
        self.base.secret_issued_by_certificate(namespace, secret)
    }
    fn services(&self, namespace: &str) -> Arc<[Arc<ServiceInfo>]> {
        self.base.services(namespace)
    }
    fn pods(&self, namespace: &str) -> Arc<[Arc<PodInfo>]> {
        self.base.pods(namespace)
    }
    fn pods_with_labels(&self, namespace: &str, selector: &Labels) -> Vec<Arc<PodInfo>> {
        self.base.pods_with_labels(namespace, selector)
    }
    fn platform_encryption(&self, source: PlatformSource) -> Option<Arc<PlatformEncryption>> {
        self.base.platform_encryption(source)
    }
    fn kuma_mesh(&self, name: &str) -> Option<Arc<KumaMeshInfo>> {
        self.base.kuma_mesh(name)
    }
    fn kuma_mesh_tls(&self, mesh: &str) -> Vec<Arc<KumaMeshTlsInfo>> {
        self.base.kuma_mesh_tls(mesh)
    }
    fn namespace_objects(&self, namespace: &str) -> Option<Arc<[Arc<RawObject>]>> {
        self.base.namespace_objects(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures;
    use serde_json::json;

    #[test]
    fn only_the_relabeled_namespace_changes() {
        let state = ClusterState::new();
        fixtures::add_namespace(
            &state,
            "records",
            json!({"team": "a"}),
            json!({"linkerd.io/inject": "enabled"}),
        );
        fixtures::add_namespace(&state, "other", json!({"team": "b"}), json!({}));
        fixtures::add_pod(&state, "records", "p", &[]);
        let labels = fixtures::labels(json!({"phi": "true"}));
        let view = Relabeled::new(&state, "records", &labels);
        let ns = view.namespace("records").expect("relabeled");
        assert_eq!(ns.labels, labels);
        assert_eq!(
            ns.annotations.get("linkerd.io/inject").map(String::as_str),
            Some("enabled")
        );
        let other = view.namespace("other").expect("base");
        assert_eq!(other.labels.get("team").map(String::as_str), Some("b"));
        assert_eq!(view.pods("records").len(), 1);
        // A namespace the base does not know yet is answered too (labels from the request).
        let fresh = Relabeled::new(&state, "new", &labels);
        assert!(fresh.namespace("new").is_some());
    }
}
