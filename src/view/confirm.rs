//! Decisions that do not depend on watch timing. A watch cache lags the API server: a Namespace,
//! NetworkPolicy or PVC created a moment before the workload that needs it may not be in it yet.
//! [`Recorder`] wraps the cache view during a decision and notes every answer that rests on
//! something the cache *lacks*; when such a decision would deny (or when the object's namespace
//! is unknown), the webhook reads exactly those objects from the API server (`cluster::confirm`)
//! into [`Fresh`] and decides again through an [`Overlay`] of the fresh reads over the cache.
//! Pure: the reading itself happens elsewhere.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::selector::Labels;
use parking_lot::Mutex;

use super::{
    CertificateInfo, ClusterView, KumaMeshInfo, KumaMeshTlsInfo, NamespaceInfo, NetworkPolicyInfo,
    OwnerInfo, PeerAuthInfo, PlatformEncryption, PlatformSource, PodInfo, PvInfo, PvcInfo,
    RawObject, ServiceInfo, StorageClassInfo,
};

/// What a decision read that the cache could not answer for certain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lookups {
    /// Namespaces asked for and not in the cache.
    pub(crate) namespaces: BTreeSet<String>,
    /// A StorageClass (by name, or the default one) was asked for and missing.
    pub(crate) storage_classes: bool,
    /// PVCs (namespace, name) asked for and missing.
    pub(crate) pvcs: BTreeSet<(String, String)>,
    /// PVs asked for and missing.
    pub(crate) pvs: BTreeSet<String>,
    /// Namespaces whose NetworkPolicies were read: the cache cannot show that a policy created
    /// a moment ago is missing, so a denial re-reads the list.
    pub(crate) network_policies: BTreeSet<String>,
    /// Namespaces whose PeerAuthentications were read (the workload's and the mesh root).
    pub(crate) peer_authentications: BTreeSet<String>,
    /// Namespaces where a Secret was found not to be issued by a cert-manager Certificate.
    pub(crate) certificates: BTreeSet<String>,
    /// Platform encryption objects read (a setting switched on a moment ago may not be cached
    /// yet, so a denial re-reads them).
    pub(crate) platform: BTreeSet<PlatformSource>,
    /// Kuma Meshes read (by name).
    pub(crate) kuma_meshes: BTreeSet<String>,
    /// Kuma MeshTLS policies were read.
    pub(crate) kuma_mesh_tls: bool,
    /// Controllers (namespace, kind, name) a child named as its owner and the cache lacks.
    pub(crate) owners: BTreeSet<(String, String, String)>,
    /// Controllers (namespace, kind, name) a selector names the pods of, by the labels
    /// controllers add, with no such pod in the cache yet.
    pub(crate) controller_pods: BTreeSet<(String, String, String)>,
    /// Namespaces whose objects were asked for whole (a Namespace labeled into PHI scope): the
    /// caches never hold them, so they are always read.
    pub(crate) namespace_objects: BTreeSet<String>,
}

impl Lookups {
    /// Nothing was missing.
    pub(crate) fn is_empty(&self) -> bool {
        self == &Lookups::default()
    }

    /// Reads a confirmation makes (for logs and metrics).
    pub(crate) fn reads(&self) -> usize {
        self.namespaces.len()
            + usize::from(self.storage_classes)
            + self.pvcs.len()
            + self.pvs.len()
            + self.network_policies.len()
            + self.peer_authentications.len()
            + self.certificates.len()
            + self.platform.len()
            + self.kuma_meshes.len()
            + usize::from(self.kuma_mesh_tls)
            + self.owners.len()
            + self.controller_pods.len()
            + self.namespace_objects.len()
    }
}

/// A [`ClusterView`] that answers from `inner` and records what it could not answer for certain.
pub(crate) struct Recorder<'a> {
    inner: &'a dyn ClusterView,
    seen: Mutex<Lookups>,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(inner: &'a dyn ClusterView) -> Self {
        Recorder {
            inner,
            seen: Mutex::new(Lookups::default()),
        }
    }

    /// What was recorded.
    pub(crate) fn lookups(&self) -> Lookups {
        self.seen.lock().clone()
    }
}

impl ClusterView for Recorder<'_> {
    super::safeguards::forward_safeguard_lookups!(inner);
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceInfo>> {
        let r = self.inner.namespace(name);
        if r.is_none() {
            self.seen.lock().namespaces.insert(name.to_string());
        }
        r
    }
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClassInfo>> {
        let r = self.inner.storage_class(name);
        if r.is_none() {
            self.seen.lock().storage_classes = true;
        }
        r
    }
    fn default_storage_class(&self) -> Option<Arc<StorageClassInfo>> {
        let r = self.inner.default_storage_class();
        if r.is_none() {
            self.seen.lock().storage_classes = true;
        }
        r
    }
    fn storage_classes(&self) -> Vec<Arc<StorageClassInfo>> {
        self.inner.storage_classes()
    }
    fn storage_class_count(&self) -> usize {
        self.inner.storage_class_count()
    }
    fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PvcInfo>> {
        let r = self.inner.pvc(namespace, name);
        if r.is_none() {
            self.seen
                .lock()
                .pvcs
                .insert((namespace.to_string(), name.to_string()));
        }
        r
    }
    fn pv(&self, name: &str) -> Option<Arc<PvInfo>> {
        let r = self.inner.pv(name);
        if r.is_none() {
            self.seen.lock().pvs.insert(name.to_string());
        }
        r
    }
    fn network_policies(&self, namespace: &str) -> Arc<[Arc<NetworkPolicyInfo>]> {
        {
            // Rules ask for a namespace's list many times: allocate its name once.
            let mut seen = self.seen.lock();
            if !seen.network_policies.contains(namespace) {
                seen.network_policies.insert(namespace.to_string());
            }
        }
        self.inner.network_policies(namespace)
    }
    fn network_policies_selecting(
        &self,
        namespace: &str,
        pod_labels: &Labels,
    ) -> Vec<Arc<NetworkPolicyInfo>> {
        // Recorded as a read of the namespace's list, as `network_policies` is.
        let _ = self.network_policies(namespace);
        self.inner.network_policies_selecting(namespace, pod_labels)
    }
    fn pods_with_labels(&self, namespace: &str, selector: &Labels) -> Vec<Arc<PodInfo>> {
        self.inner.pods_with_labels(namespace, selector)
    }
    fn peer_authentications(&self, namespace: &str) -> Arc<[Arc<PeerAuthInfo>]> {
        {
            let mut seen = self.seen.lock();
            if !seen.peer_authentications.contains(namespace) {
                seen.peer_authentications.insert(namespace.to_string());
            }
        }
        self.inner.peer_authentications(namespace)
    }
    fn secret_issued_by_certificate(&self, namespace: &str, secret: &str) -> bool {
        let r = self.inner.secret_issued_by_certificate(namespace, secret);
        if !r {
            let mut seen = self.seen.lock();
            if !seen.certificates.contains(namespace) {
                seen.certificates.insert(namespace.to_string());
            }
        }
        r
    }
    fn services(&self, namespace: &str) -> Arc<[Arc<ServiceInfo>]> {
        self.inner.services(namespace)
    }
    fn pods(&self, namespace: &str) -> Arc<[Arc<PodInfo>]> {
        self.inner.pods(namespace)
    }
    fn platform_encryption(&self, source: PlatformSource) -> Option<Arc<PlatformEncryption>> {
        self.seen.lock().platform.insert(source);
        self.inner.platform_encryption(source)
    }
    fn kuma_mesh(&self, name: &str) -> Option<Arc<KumaMeshInfo>> {
        {
            let mut seen = self.seen.lock();
            if !seen.kuma_meshes.contains(name) {
                seen.kuma_meshes.insert(name.to_string());
            }
        }
        self.inner.kuma_mesh(name)
    }
    fn kuma_mesh_tls(&self, mesh: &str) -> Vec<Arc<KumaMeshTlsInfo>> {
        self.seen.lock().kuma_mesh_tls = true;
        self.inner.kuma_mesh_tls(mesh)
    }
    fn namespace_objects(&self, namespace: &str) -> Option<Arc<[Arc<RawObject>]>> {
        let r = self.inner.namespace_objects(namespace);
        if r.is_none() {
            self.seen
                .lock()
                .namespace_objects
                .insert(namespace.to_string());
        }
        r
    }
    fn controller_pod(&self, namespace: &str, kind: &str, name: &str) -> Option<Arc<PodInfo>> {
        let r = self.inner.controller_pod(namespace, kind, name);
        if r.is_none() {
            self.seen.lock().controller_pods.insert((
                namespace.to_string(),
                kind.to_string(),
                name.to_string(),
            ));
        }
        r
    }
    fn owner(&self, namespace: &str, kind: &str, name: &str) -> Option<Arc<OwnerInfo>> {
        let r = self.inner.owner(namespace, kind, name);
        if r.is_none() {
            self.seen.lock().owners.insert((
                namespace.to_string(),
                kind.to_string(),
                name.to_string(),
            ));
        }
        r
    }
}

/// Objects read from the API server with a consistent read, for the [`Lookups`] of one
/// decision. `None` entries were read and do not exist.
#[derive(Debug, Default)]
pub(crate) struct Fresh {
    pub(crate) namespaces: HashMap<String, Option<Arc<NamespaceInfo>>>,
    /// Every StorageClass, when they were read.
    pub(crate) storage_classes: Option<Vec<Arc<StorageClassInfo>>>,
    pub(crate) pvcs: HashMap<(String, String), Option<Arc<PvcInfo>>>,
    pub(crate) pvs: HashMap<String, Option<Arc<PvInfo>>>,
    pub(crate) network_policies: HashMap<String, Arc<[Arc<NetworkPolicyInfo>]>>,
    pub(crate) peer_authentications: HashMap<String, Arc<[Arc<PeerAuthInfo>]>>,
    pub(crate) certificates: HashMap<String, Vec<Arc<CertificateInfo>>>,
    pub(crate) platform: HashMap<PlatformSource, Option<Arc<PlatformEncryption>>>,
    pub(crate) kuma_meshes: HashMap<String, Option<Arc<KumaMeshInfo>>>,
    /// Every MeshTLS, when they were read.
    pub(crate) kuma_mesh_tls: Option<Vec<Arc<KumaMeshTlsInfo>>>,
    /// Owners read, with the controllers they name in turn (a Pod's ReplicaSet and its
    /// Deployment), keyed (namespace, kind, name).
    pub(crate) owners: HashMap<(String, String, String), Option<Arc<OwnerInfo>>>,
    /// Controllers' template pods read, keyed (namespace, kind, name).
    pub(crate) controller_pods: HashMap<(String, String, String), Option<Arc<PodInfo>>>,
    /// The objects of a namespace, whole (see [`ClusterView::namespace_objects`]).
    pub(crate) namespace_objects: HashMap<String, Arc<[Arc<RawObject>]>>,
}

/// Fresh reads over the cache: what was read answers, the cache answers the rest.
pub(crate) struct Overlay<'a> {
    pub(crate) base: &'a dyn ClusterView,
    pub(crate) fresh: &'a Fresh,
}

impl ClusterView for Overlay<'_> {
    super::safeguards::forward_safeguard_lookups!(base);
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceInfo>> {
        match self.fresh.namespaces.get(name) {
            Some(read) => read.clone(),
            None => self.base.namespace(name),
        }
    }
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClassInfo>> {
        match &self.fresh.storage_classes {
            Some(all) => all.iter().find(|c| c.name == name).cloned(),
            None => self.base.storage_class(name),
        }
    }
    fn default_storage_class(&self) -> Option<Arc<StorageClassInfo>> {
        match &self.fresh.storage_classes {
            // As the API server picks: the newest of those marked default.
            Some(all) => all
                .iter()
                .filter(|c| c.is_default)
                .max_by(|a, b| a.created.cmp(&b.created).then_with(|| b.name.cmp(&a.name)))
                .cloned(),
            None => self.base.default_storage_class(),
        }
    }
    fn storage_classes(&self) -> Vec<Arc<StorageClassInfo>> {
        match &self.fresh.storage_classes {
            Some(all) => {
                let mut v = all.clone();
                v.sort_by(|a, b| a.name.cmp(&b.name));
                v
            }
            None => self.base.storage_classes(),
        }
    }
    fn storage_class_count(&self) -> usize {
        match &self.fresh.storage_classes {
            Some(all) => all.len(),
            None => self.base.storage_class_count(),
        }
    }
    fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PvcInfo>> {
        match self
            .fresh
            .pvcs
            .get(&(namespace.to_string(), name.to_string()))
        {
            Some(read) => read.clone(),
            None => self.base.pvc(namespace, name),
        }
    }
    fn pv(&self, name: &str) -> Option<Arc<PvInfo>> {
        match self.fresh.pvs.get(name) {
            Some(read) => read.clone(),
            None => self.base.pv(name),
        }
    }
    fn network_policies(&self, namespace: &str) -> Arc<[Arc<NetworkPolicyInfo>]> {
        match self.fresh.network_policies.get(namespace) {
            Some(read) => read.clone(),
            None => self.base.network_policies(namespace),
        }
    }
    fn network_policies_selecting(
        &self,
        namespace: &str,
        pod_labels: &Labels,
    ) -> Vec<Arc<NetworkPolicyInfo>> {
        match self.fresh.network_policies.get(namespace) {
            Some(read) => read
                .iter()
                .filter(|p| p.selects(pod_labels))
                .cloned()
                .collect(),
            None => self.base.network_policies_selecting(namespace, pod_labels),
        }
    }
    fn pods_with_labels(&self, namespace: &str, selector: &Labels) -> Vec<Arc<PodInfo>> {
        self.base.pods_with_labels(namespace, selector)
    }
    fn peer_authentications(&self, namespace: &str) -> Arc<[Arc<PeerAuthInfo>]> {
        match self.fresh.peer_authentications.get(namespace) {
            Some(read) => read.clone(),
            None => self.base.peer_authentications(namespace),
        }
    }
    fn secret_issued_by_certificate(&self, namespace: &str, secret: &str) -> bool {
        match self.fresh.certificates.get(namespace) {
            Some(read) => read.iter().any(|c| c.secret_name == secret),
            None => self.base.secret_issued_by_certificate(namespace, secret),
        }
    }
    fn services(&self, namespace: &str) -> Arc<[Arc<ServiceInfo>]> {
        self.base.services(namespace)
    }
    fn pods(&self, namespace: &str) -> Arc<[Arc<PodInfo>]> {
        self.base.pods(namespace)
    }
    fn platform_encryption(&self, source: PlatformSource) -> Option<Arc<PlatformEncryption>> {
        match self.fresh.platform.get(&source) {
            Some(read) => read.clone(),
            None => self.base.platform_encryption(source),
        }
    }
    fn kuma_mesh(&self, name: &str) -> Option<Arc<KumaMeshInfo>> {
        match self.fresh.kuma_meshes.get(name) {
            Some(read) => read.clone(),
            None => self.base.kuma_mesh(name),
        }
    }
    fn kuma_mesh_tls(&self, mesh: &str) -> Vec<Arc<KumaMeshTlsInfo>> {
        match &self.fresh.kuma_mesh_tls {
            Some(all) => all.iter().filter(|t| t.mesh == mesh).cloned().collect(),
            None => self.base.kuma_mesh_tls(mesh),
        }
    }
    fn namespace_objects(&self, namespace: &str) -> Option<Arc<[Arc<RawObject>]>> {
        match self.fresh.namespace_objects.get(namespace) {
            Some(read) => Some(read.clone()),
            None => self.base.namespace_objects(namespace),
        }
    }
    fn controller_pod(&self, namespace: &str, kind: &str, name: &str) -> Option<Arc<PodInfo>> {
        let key = (namespace.to_string(), kind.to_string(), name.to_string());
        match self.fresh.controller_pods.get(&key) {
            Some(read) => read.clone(),
            None => self.base.controller_pod(namespace, kind, name),
        }
    }
    fn owner(&self, namespace: &str, kind: &str, name: &str) -> Option<Arc<OwnerInfo>> {
        let key = (namespace.to_string(), kind.to_string(), name.to_string());
        match self.fresh.owners.get(&key) {
            Some(read) => read.clone(),
            None => self.base.owner(namespace, kind, name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::engine;
    use crate::fixtures::*;
    use serde_json::json;

    fn decide(view: &dyn ClusterView, w: &crate::object::Object) -> crate::verdict::Decision {
        let policies = vec![Arc::new(baseline())];
        engine::evaluate(w, view, &policies)
    }

    /// The fail-open case of a lagging cache: the namespace is not in the cache yet. The
    /// recorder says so, and the decision over the fresh read judges the workload as PHI.
    #[test]
    fn a_namespaces_objects_are_recorded_when_missing_and_answered_when_read() {
        let state = ClusterState::new();
        let recorder = Recorder::new(&state);
        assert!(recorder.namespace_objects("records").is_none());
        let lookups = recorder.lookups();
        assert!(lookups.namespace_objects.contains("records"));
        assert_eq!(lookups.reads(), 1);
        let mut fresh = Fresh::default();
        let pod = Arc::new(RawObject {
            group: String::new(),
            kind: "Pod".into(),
            json: json!({"metadata": {"name": "p"}}),
            pods: 0,
        });
        fresh
            .namespace_objects
            .insert("records".into(), vec![pod.clone()].into());
        let view = Overlay {
            base: &state,
            fresh: &fresh,
        };
        assert_eq!(
            view.namespace_objects("records").as_deref(),
            Some(&[pod][..])
        );
        assert!(view.namespace_objects("other").is_none());
    }

    #[test]
    fn an_unknown_namespace_is_recorded_and_the_fresh_read_decides() {
        let state = ClusterState::new();
        let w = deployment("fresh-ns", json!({}), json!({}), app_spec());
        let rec = Recorder::new(&state);
        let first = decide(&rec, &w);
        assert!(!first.phi, "without its namespace the workload looks plain");
        let seen = rec.lookups();
        assert_eq!(seen.namespaces, BTreeSet::from(["fresh-ns".to_string()]));

        let mut fresh = Fresh::default();
        fresh.namespaces.insert(
            "fresh-ns".into(),
            Some(Arc::new(NamespaceInfo {
                name: "fresh-ns".into(),
                labels: label_pairs(&[PHI]),
                annotations: Default::default(),
            })),
        );
        let second = decide(
            &Overlay {
                base: &state,
                fresh: &fresh,
            },
            &w,
        );
        assert!(second.phi && !second.allowed, "{second:?}");
    }

    /// A claim created a moment before the workload: missing from the cache, recorded, found by
    /// the fresh read (and a fresh "does not exist" stays missing).
    #[test]
    fn missing_claims_are_recorded_and_overlaid() {
        let state = ClusterState::new();
        add_namespace(&state, "db", json!({PHI.0: PHI.1}), json!({}));
        let rec = Recorder::new(&state);
        assert!(rec.pvc("db", "data").is_none());
        assert!(rec.network_policies("db").is_empty());
        assert!(!rec.secret_issued_by_certificate("db", "tls"));
        assert!(rec.namespace("db").is_some());
        let seen = rec.lookups();
        assert_eq!(
            seen.pvcs,
            BTreeSet::from([("db".to_string(), "data".to_string())])
        );
        assert!(seen.namespaces.is_empty(), "a cached namespace is certain");
        assert_eq!(seen.network_policies.len(), 1);
        assert_eq!(seen.certificates.len(), 1);
        assert_eq!(seen.reads(), 3);

        let mut fresh = Fresh::default();
        fresh.pvcs.insert(
            ("db".into(), "data".into()),
            Some(Arc::new(PvcInfo {
                namespace: "db".into(),
                name: "data".into(),
                ..Default::default()
            })),
        );
        fresh
            .pvcs
            .insert(("db".into(), "gone".into()), None::<Arc<PvcInfo>>);
        fresh.certificates.insert(
            "db".into(),
            vec![Arc::new(CertificateInfo {
                namespace: "db".into(),
                name: "c".into(),
                secret_name: "tls".into(),
            })],
        );
        let o = Overlay {
            base: &state,
            fresh: &fresh,
        };
        assert!(o.pvc("db", "data").is_some());
        assert!(o.pvc("db", "gone").is_none());
        assert!(o.secret_issued_by_certificate("db", "tls"));
        assert!(
            o.namespace("db").is_some(),
            "unread objects come from the cache"
        );
    }

    /// Platform settings are always recorded when read (one switched on a moment ago may not be
    /// cached yet), and the fresh read answers, including "does not exist".
    #[test]
    fn platform_lookups_are_recorded_and_overlaid() {
        let state = ClusterState::new();
        state.platform.insert(
            "cilium".into(),
            PlatformEncryption {
                source: PlatformSource::Cilium,
                enabled: Vec::new(),
            },
        );
        let rec = Recorder::new(&state);
        assert!(rec
            .platform_encryption(PlatformSource::Cilium)
            .is_some_and(|p| !p.encrypts()));
        assert!(rec.platform_encryption(PlatformSource::Calico).is_none());
        assert!(rec.kuma_mesh("default").is_none());
        let seen = rec.lookups();
        assert_eq!(
            seen.platform,
            BTreeSet::from([PlatformSource::Cilium, PlatformSource::Calico])
        );
        assert_eq!(seen.kuma_meshes, BTreeSet::from(["default".to_string()]));
        assert_eq!(seen.reads(), 3);

        let mut fresh = Fresh::default();
        fresh.platform.insert(
            PlatformSource::Cilium,
            Some(Arc::new(PlatformEncryption {
                source: PlatformSource::Cilium,
                enabled: vec!["enable-wireguard: \"true\""],
            })),
        );
        fresh.platform.insert(PlatformSource::Calico, None);
        let o = Overlay {
            base: &state,
            fresh: &fresh,
        };
        assert!(o
            .platform_encryption(PlatformSource::Cilium)
            .is_some_and(|p| p.encrypts()));
        assert!(o.platform_encryption(PlatformSource::Calico).is_none());
    }
}
