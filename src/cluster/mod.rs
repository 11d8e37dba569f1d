//! What rules may ask about the cluster. [`ClusterState`] holds lean, indexed copies of the
//! objects rules read; it is filled either from files (`check`, `serve --cluster-state`, tests)
//! or by watch caches (`serve` in a cluster). The request path only reads it: no API calls.

pub(crate) mod backoff;
pub(crate) mod confirm;
pub(crate) mod default_deny;
pub(crate) mod files;
pub(crate) mod lean;
pub(crate) mod lease;
pub(crate) mod namespace_objects;
pub(crate) mod owner_reads;
pub(crate) mod safeguards;
pub(crate) mod snapshot;
pub(crate) mod watch;
pub(crate) mod webhook_config;
pub(crate) mod webhook_scope;

use crate::selector::Labels;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::view::{
    CertificateInfo, ClusterView, KumaMeshInfo, KumaMeshTlsInfo, NamespaceInfo, NetworkPolicyInfo,
    PeerAuthInfo, PlatformEncryption, PlatformSource, PodInfo, PvInfo, PvcInfo, ServiceInfo,
    StorageClassInfo,
};

use crate::policy::exception::Exception;
use crate::policy::PolicySet;

/// A cluster-scoped kind indexed by name.
#[derive(Debug)]
pub struct ClusterScoped<T> {
    items: RwLock<HashMap<String, Arc<T>>>,
}

impl<T> Default for ClusterScoped<T> {
    fn default() -> Self {
        ClusterScoped {
            items: RwLock::new(HashMap::new()),
        }
    }
}

impl<T> ClusterScoped<T> {
    pub fn get(&self, name: &str) -> Option<Arc<T>> {
        self.items.read().get(name).cloned()
    }
    pub fn insert(&self, name: String, item: T) {
        self.items.write().insert(name, Arc::new(item));
    }
    pub fn remove(&self, name: &str) {
        self.items.write().remove(name);
    }
    /// Replace everything (a watch relist).
    pub fn replace(&self, items: Vec<(String, T)>) {
        let map = items.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        *self.items.write() = map;
    }
    pub fn len(&self) -> usize {
        self.items.read().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn values(&self) -> Vec<Arc<T>> {
        self.items.read().values().cloned().collect()
    }
}

/// A namespaced kind indexed by namespace, then name.
///
/// Each namespace also keeps its objects as one name-ordered list, built on the first read
/// after a change and shared until the next one: rules that scan a namespace (its
/// NetworkPolicies, Services, Pods) get it for the price of one reference-count increment,
/// with no sorting or copying on the request path.
#[derive(Debug)]
pub struct Namespaced<T> {
    items: RwLock<HashMap<String, NsItems<T>>>,
}

#[derive(Debug)]
struct NsItems<T> {
    by_name: BTreeMap<String, Arc<T>>,
    list: OnceLock<Arc<[Arc<T>]>>,
    /// Positions in `list` by label, built on the first selector query after a change.
    index: OnceLock<LabelIndex>,
}

impl<T> Default for NsItems<T> {
    fn default() -> Self {
        NsItems {
            by_name: BTreeMap::new(),
            list: OnceLock::new(),
            index: OnceLock::new(),
        }
    }
}

impl<T> NsItems<T> {
    fn list(&self) -> Arc<[Arc<T>]> {
        self.list
            .get_or_init(|| self.by_name.values().cloned().collect())
            .clone()
    }

    fn changed(&mut self) {
        self.list = OnceLock::new();
        self.index = OnceLock::new();
    }
}

/// Positions in a namespace's name-ordered list, by label key and value: selector matching in
/// a namespace of thousands of NetworkPolicies, Services and pods costs a few hash lookups per
/// object instead of a scan (`check` of 20,000 objects in one namespace stays linear).
#[derive(Debug, Default)]
struct LabelIndex {
    by_pair: HashMap<String, HashMap<String, Vec<u32>>>,
    /// Candidates for every query.
    always: Vec<u32>,
}

/// Where an object is filed in its namespace's [`LabelIndex`].
pub enum IndexKeys<'a> {
    /// A candidate for every query (e.g. an empty or expression-only podSelector).
    Always,
    /// Found by any of these pairs (none: never a candidate).
    Pairs(Vec<(&'a str, &'a str)>),
}

/// Objects that can be found by label in their namespace.
pub trait IndexedByLabels {
    fn index_keys(&self) -> IndexKeys<'_>;
}

impl IndexedByLabels for NetworkPolicyInfo {
    /// A podSelector with matchLabels selects only pods carrying its first pair; one without
    /// (empty, or expressions only) may select any pod; an invalid one selects none.
    fn index_keys(&self) -> IndexKeys<'_> {
        if self.invalid_selector {
            return IndexKeys::Pairs(Vec::new());
        }
        match self.pod_selector.match_labels.first() {
            Some((k, v)) => IndexKeys::Pairs(vec![(k.as_str(), v.as_str())]),
            None => IndexKeys::Always,
        }
    }
}

impl IndexedByLabels for PodInfo {
    fn index_keys(&self) -> IndexKeys<'_> {
        IndexKeys::Pairs(
            self.labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        )
    }
}

impl<T: IndexedByLabels> NsItems<T> {
    fn index(&self) -> &LabelIndex {
        self.index.get_or_init(|| {
            let mut idx = LabelIndex::default();
            for (i, item) in self.list().iter().enumerate() {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                match item.index_keys() {
                    IndexKeys::Always => idx.always.push(i),
                    IndexKeys::Pairs(pairs) => {
                        for (k, v) in pairs {
                            idx.by_pair
                                .entry(k.to_string())
                                .or_default()
                                .entry(v.to_string())
                                .or_default()
                                .push(i);
                        }
                    }
                }
            }
            idx
        })
    }
}

impl<T> Default for Namespaced<T> {
    fn default() -> Self {
        Namespaced {
            items: RwLock::new(HashMap::new()),
        }
    }
}

impl<T> Namespaced<T> {
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        self.items.read().get(namespace)?.by_name.get(name).cloned()
    }
    /// The objects of a namespace in name order (stable, so findings are deterministic).
    pub fn list(&self, namespace: &str) -> Arc<[Arc<T>]> {
        self.items
            .read()
            .get(namespace)
            .map_or_else(|| Arc::from(Vec::new()), NsItems::list)
    }
    pub fn insert(&self, namespace: String, name: String, item: T) {
        let mut w = self.items.write();
        let entry = w.entry(namespace).or_default();
        entry.by_name.insert(name, Arc::new(item));
        entry.changed();
    }
    pub fn remove(&self, namespace: &str, name: &str) {
        let mut w = self.items.write();
        if let Some(m) = w.get_mut(namespace) {
            if m.by_name.remove(name).is_some() {
                m.changed();
            }
            if m.by_name.is_empty() {
                w.remove(namespace);
            }
        }
    }
    /// Replace everything (a watch relist).
    pub fn replace(&self, items: Vec<(String, String, T)>) {
        let mut map: HashMap<String, NsItems<T>> = HashMap::new();
        for (ns, name, v) in items {
            map.entry(ns).or_default().by_name.insert(name, Arc::new(v));
        }
        *self.items.write() = map;
    }
    /// Every object with its namespace and name (under the read lock: `f` must be quick).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str, &str, &Arc<T>)) {
        for (ns, items) in self.items.read().iter() {
            for (name, item) in &items.by_name {
                f(ns, name, item);
            }
        }
    }
    /// Does any object of the namespace satisfy `f`?
    pub fn any(&self, namespace: &str, f: impl Fn(&T) -> bool) -> bool {
        self.items
            .read()
            .get(namespace)
            .is_some_and(|m| m.by_name.values().any(|x| f(x)))
    }
    pub fn len(&self) -> usize {
        self.items.read().values().map(|m| m.by_name.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: IndexedByLabels> Namespaced<T> {
    /// The namespace's objects filed under any of `pairs`, or under every query, in name order
    /// (callers still match each candidate exactly).
    pub(crate) fn candidates<'a>(
        &self,
        namespace: &str,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Vec<Arc<T>> {
        let items = self.items.read();
        let Some(ns) = items.get(namespace) else {
            return Vec::new();
        };
        let list = ns.list();
        let idx = ns.index();
        let mut hits: Vec<u32> = idx.always.clone();
        for (k, v) in pairs {
            if let Some(ids) = idx.by_pair.get(k).and_then(|m| m.get(v)) {
                hits.extend_from_slice(ids);
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits.into_iter()
            .filter_map(|i| list.get(usize::try_from(i).ok()?).cloned())
            .collect()
    }
}

/// Lean, indexed cluster state, shared by the request path and whatever fills it.
#[derive(Debug, Default)]
pub struct ClusterState {
    pub namespaces: ClusterScoped<NamespaceInfo>,
    pub storage_classes: ClusterScoped<StorageClassInfo>,
    pub pvs: ClusterScoped<PvInfo>,
    pub pvcs: Namespaced<PvcInfo>,
    pub network_policies: Namespaced<NetworkPolicyInfo>,
    pub peer_authentications: Namespaced<PeerAuthInfo>,
    pub certificates: Namespaced<CertificateInfo>,
    pub services: Namespaced<ServiceInfo>,
    pub pods: Namespaced<PodInfo>,
    /// Platform (CNI) encryption settings, by [`PlatformSource::key`].
    pub platform: ClusterScoped<PlatformEncryption>,
    /// Kuma Meshes, by name.
    pub kuma_meshes: ClusterScoped<KumaMeshInfo>,
    /// Kuma MeshTLS policies, by `namespace/name`.
    pub kuma_mesh_tls: ClusterScoped<KumaMeshTlsInfo>,
    /// PodDisruptionBudgets, authorization objects, Velero Schedules (the optional safeguards).
    pub safeguards: safeguards::SafeguardStores,
    policies: RwLock<Arc<PolicySet>>,
    /// The valid PhiExceptions (expired ones included: each decision compares with its time).
    exceptions: RwLock<Arc<[Arc<Exception>]>>,
    /// What changed since the background audit last looked.
    dirty: parking_lot::Mutex<Dirty>,
}

/// Which namespaces' cluster state changed (`all`: something cluster-wide did).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Dirty {
    pub(crate) all: bool,
    pub(crate) namespaces: std::collections::BTreeSet<String>,
}

impl ClusterState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The policies in force (a cheap snapshot).
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.read().clone()
    }

    /// The PhiExceptions (a cheap snapshot).
    pub(crate) fn exceptions(&self) -> Arc<[Arc<Exception>]> {
        self.exceptions.read().clone()
    }

    /// Swap in new PhiExceptions.
    pub(crate) fn set_exceptions(&self, list: Vec<Arc<Exception>>) {
        *self.exceptions.write() = list.into();
    }

    /// Swap in a new policy set.
    pub fn set_policies(&self, set: PolicySet) {
        *self.policies.write() = Arc::new(set);
    }

    /// Note a change of cluster state in `namespace` (`None`: cluster-wide).
    pub(crate) fn mark_dirty(&self, namespace: Option<&str>) {
        let mut d = self.dirty.lock();
        match namespace {
            Some(ns) if !ns.is_empty() => {
                if !d.all {
                    d.namespaces.insert(ns.to_string());
                }
            }
            _ => {
                d.all = true;
                d.namespaces.clear();
            }
        }
    }

    /// What changed since the last call.
    pub(crate) fn take_dirty(&self) -> Dirty {
        std::mem::take(&mut *self.dirty.lock())
    }

    /// Object counts per kind, for metrics and logs.
    pub fn sizes(&self) -> Vec<(&'static str, usize)> {
        let mut v = vec![
            ("Namespace", self.namespaces.len()),
            ("StorageClass", self.storage_classes.len()),
            ("PersistentVolume", self.pvs.len()),
            ("PersistentVolumeClaim", self.pvcs.len()),
            ("NetworkPolicy", self.network_policies.len()),
            ("PeerAuthentication", self.peer_authentications.len()),
            ("Certificate", self.certificates.len()),
            ("Service", self.services.len()),
            ("Pod", self.pods.len()),
            ("PlatformEncryption", self.platform.len()),
            ("KumaMesh", self.kuma_meshes.len()),
            ("KumaMeshTLS", self.kuma_mesh_tls.len()),
            ("PhiPolicy", self.policies.read().policies.len()),
        ];
        v.extend(self.safeguards.sizes());
        v
    }
}

impl ClusterView for ClusterState {
    crate::view::safeguards::forward_safeguard_lookups!(safeguards);
    fn namespace(&self, name: &str) -> Option<Arc<NamespaceInfo>> {
        self.namespaces.get(name)
    }
    fn storage_class(&self, name: &str) -> Option<Arc<StorageClassInfo>> {
        self.storage_classes.get(name)
    }
    fn default_storage_class(&self) -> Option<Arc<StorageClassInfo>> {
        self.storage_classes
            .items
            .read()
            .values()
            .filter(|c| c.is_default)
            .max_by(|a, b| a.created.cmp(&b.created).then_with(|| b.name.cmp(&a.name)))
            .cloned()
    }
    fn storage_class_count(&self) -> usize {
        self.storage_classes.len()
    }
    fn storage_classes(&self) -> Vec<Arc<StorageClassInfo>> {
        let mut v = self.storage_classes.values();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
    fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PvcInfo>> {
        self.pvcs.get(namespace, name)
    }
    fn pv(&self, name: &str) -> Option<Arc<PvInfo>> {
        self.pvs.get(name)
    }
    fn network_policies(&self, namespace: &str) -> Arc<[Arc<NetworkPolicyInfo>]> {
        self.network_policies.list(namespace)
    }
    fn network_policies_selecting(
        &self,
        namespace: &str,
        pod_labels: &Labels,
    ) -> Vec<Arc<NetworkPolicyInfo>> {
        let mut v = self.network_policies.candidates(
            namespace,
            pod_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        v.retain(|p| p.selects(pod_labels));
        v
    }
    fn controller_pod(&self, namespace: &str, kind: &str, name: &str) -> Option<Arc<PodInfo>> {
        // Files add each controller's template as a pod named `kind/name`; watched pods never
        // have a `/` in their name.
        self.pods
            .get(namespace, &format!("{}/{name}", kind.to_ascii_lowercase()))
    }
    fn pods_with_labels(&self, namespace: &str, selector: &Labels) -> Vec<Arc<PodInfo>> {
        let Some((k, v)) = selector.iter().next() else {
            return self.pods.list(namespace).to_vec();
        };
        let mut pods = self
            .pods
            .candidates(namespace, std::iter::once((k.as_str(), v.as_str())));
        pods.retain(|p| crate::view::selector_matches(selector, &p.labels));
        pods
    }
    fn peer_authentications(&self, namespace: &str) -> Arc<[Arc<PeerAuthInfo>]> {
        self.peer_authentications.list(namespace)
    }
    fn secret_issued_by_certificate(&self, namespace: &str, secret: &str) -> bool {
        self.certificates
            .any(namespace, |c| c.secret_name == secret)
    }
    fn services(&self, namespace: &str) -> Arc<[Arc<ServiceInfo>]> {
        self.services.list(namespace)
    }
    fn pods(&self, namespace: &str) -> Arc<[Arc<PodInfo>]> {
        self.pods.list(namespace)
    }
    fn platform_encryption(&self, source: PlatformSource) -> Option<Arc<PlatformEncryption>> {
        self.platform.get(source.key())
    }
    fn kuma_mesh(&self, name: &str) -> Option<Arc<KumaMeshInfo>> {
        self.kuma_meshes.get(name)
    }
    fn kuma_mesh_tls(&self, mesh: &str) -> Vec<Arc<KumaMeshTlsInfo>> {
        let mut v: Vec<_> = self
            .kuma_mesh_tls
            .values()
            .into_iter()
            .filter(|t| t.mesh == mesh)
            .collect();
        v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{add_network_policy, add_pod, label_pairs, network_policy};
    use serde_json::json;

    /// The label index answers exactly what a scan answers, in the same order, and is rebuilt
    /// after every change.
    #[test]
    fn label_index_answers_as_a_scan_does() {
        /// The scan the index replaces (the trait's default methods).
        struct Scan<'a>(&'a ClusterState);
        impl ClusterView for Scan<'_> {
            fn namespace(&self, n: &str) -> Option<Arc<NamespaceInfo>> {
                self.0.namespace(n)
            }
            fn storage_class(&self, n: &str) -> Option<Arc<StorageClassInfo>> {
                self.0.storage_class(n)
            }
            fn default_storage_class(&self) -> Option<Arc<StorageClassInfo>> {
                None
            }
            fn pvc(&self, ns: &str, n: &str) -> Option<Arc<PvcInfo>> {
                self.0.pvc(ns, n)
            }
            fn pv(&self, n: &str) -> Option<Arc<PvInfo>> {
                self.0.pv(n)
            }
            fn network_policies(&self, ns: &str) -> Arc<[Arc<NetworkPolicyInfo>]> {
                self.0.network_policies(ns)
            }
            fn peer_authentications(&self, ns: &str) -> Arc<[Arc<PeerAuthInfo>]> {
                self.0.peer_authentications(ns)
            }
            fn secret_issued_by_certificate(&self, _: &str, _: &str) -> bool {
                false
            }
            fn services(&self, ns: &str) -> Arc<[Arc<ServiceInfo>]> {
                self.0.services(ns)
            }
            fn pods(&self, ns: &str) -> Arc<[Arc<PodInfo>]> {
                self.0.pods(ns)
            }
            fn pod_disruption_budgets(&self, ns: &str) -> Arc<[Arc<crate::view::PdbInfo>]> {
                self.0.pod_disruption_budgets(ns)
            }
            fn istio_authorization_policies(
                &self,
                ns: &str,
            ) -> Arc<[Arc<crate::view::IstioAuthzInfo>]> {
                self.0.istio_authorization_policies(ns)
            }
            fn linkerd_authorization_policies(
                &self,
                ns: &str,
            ) -> Arc<[Arc<crate::view::LinkerdAuthzInfo>]> {
                self.0.linkerd_authorization_policies(ns)
            }
            fn linkerd_servers(&self, ns: &str) -> Arc<[Arc<crate::view::LinkerdServerInfo>]> {
                self.0.linkerd_servers(ns)
            }
            fn velero_schedules(&self) -> Option<Vec<Arc<crate::view::VeleroScheduleInfo>>> {
                self.0.velero_schedules()
            }
        }
        let state = ClusterState::new();
        let specs = [
            json!({"podSelector": {}}),
            json!({"podSelector": {"matchLabels": {"app": "a"}}}),
            json!({"podSelector": {"matchLabels": {"app": "a", "tier": "db"}}}),
            json!({"podSelector": {"matchLabels": {"tier": "db"}}}),
            json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["b"]}]}}),
            json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Bogus"}]}}),
            json!({"podSelector": {"matchLabels": {"app": "b"}, "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}}),
        ];
        for (i, spec) in specs.iter().enumerate() {
            add_network_policy(
                &state,
                network_policy("ns", &format!("np{i}"), spec.clone()),
            );
        }
        let pods: [&[(&str, &str)]; 5] = [
            &[("app", "a")],
            &[("app", "a"), ("tier", "db")],
            &[("app", "b")],
            &[("app", "b"), ("tier", "db")],
            &[],
        ];
        for (i, l) in pods.iter().enumerate() {
            add_pod(&state, "ns", &format!("pod{i}"), l);
        }
        let check = |state: &ClusterState| {
            for l in pods {
                let labels = label_pairs(l);
                let names = |v: Vec<Arc<NetworkPolicyInfo>>| -> Vec<String> {
                    v.iter().map(|p| p.name.clone()).collect()
                };
                assert_eq!(
                    names(state.network_policies_selecting("ns", &labels)),
                    names(Scan(state).network_policies_selecting("ns", &labels)),
                    "{l:?}"
                );
                let pod_names = |v: Vec<Arc<PodInfo>>| -> Vec<String> {
                    v.iter().map(|p| p.name.clone()).collect()
                };
                assert_eq!(
                    pod_names(state.pods_with_labels("ns", &labels)),
                    pod_names(Scan(state).pods_with_labels("ns", &labels)),
                    "{l:?}"
                );
            }
        };
        check(&state);
        let selecting = |state: &ClusterState| -> Vec<String> {
            state
                .network_policies_selecting("ns", &label_pairs(&[("app", "a"), ("tier", "db")]))
                .iter()
                .map(|p| p.name.clone())
                .collect()
        };
        assert_eq!(selecting(&state), ["np0", "np1", "np2", "np3"]);
        state.network_policies.remove("ns", "np2");
        add_network_policy(
            &state,
            network_policy(
                "ns",
                "np9",
                json!({"podSelector": {"matchLabels": {"tier": "db"}}}),
            ),
        );
        check(&state);
        assert_eq!(selecting(&state), ["np0", "np1", "np3", "np9"]);
        assert!(state
            .network_policies_selecting("other", &label_pairs(&[]))
            .is_empty());
    }

    fn names(list: &[Arc<String>]) -> Vec<&str> {
        list.iter().map(|s| s.as_str()).collect()
    }

    /// The shared per-namespace list is rebuilt after every change: a stale list would judge
    /// a workload against NetworkPolicies that no longer exist (or miss new ones).
    #[test]
    fn namespace_lists_are_ordered_and_never_stale() {
        let t: Namespaced<String> = Namespaced::default();
        assert!(t.list("a").is_empty());
        t.insert("a".into(), "p2".into(), "p2".into());
        t.insert("a".into(), "p1".into(), "p1".into());
        t.insert("b".into(), "q".into(), "q".into());
        let first = t.list("a");
        assert_eq!(names(&first), ["p1", "p2"]);
        assert!(Arc::ptr_eq(&first, &t.list("a")), "shared until a change");

        t.insert("a".into(), "p0".into(), "p0".into());
        assert_eq!(names(&t.list("a")), ["p0", "p1", "p2"]);
        assert_eq!(
            names(&first),
            ["p1", "p2"],
            "an earlier snapshot stays as it was"
        );
        t.insert("a".into(), "p1".into(), "p1-new".into());
        assert_eq!(names(&t.list("a")), ["p0", "p1-new", "p2"]);
        t.remove("a", "p0");
        t.remove("a", "absent");
        assert_eq!(names(&t.list("a")), ["p1-new", "p2"]);
        assert_eq!(names(&t.list("b")), ["q"]);

        t.replace(vec![("a".into(), "z".into(), "z".into())]);
        assert_eq!(names(&t.list("a")), ["z"]);
        assert!(t.list("b").is_empty());
        t.remove("a", "z");
        assert!(t.list("a").is_empty());
        assert_eq!(t.len(), 0);
        assert!(!t.any("a", |_| true));
    }
}
