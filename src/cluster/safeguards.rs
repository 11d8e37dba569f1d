//! The stores behind the optional safeguards' lookups: PodDisruptionBudgets, Istio
//! and Linkerd authorization objects, Velero Schedules and whether Velero is installed. Filled
//! by `watch::safeguards` in a cluster and by `files::safeguards` offline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::Namespaced;
use crate::view::{
    IstioAuthzInfo, LinkerdAuthzInfo, LinkerdServerInfo, PdbInfo, VeleroScheduleInfo,
};

/// The safeguards' part of [`super::ClusterState`].
#[derive(Debug, Default)]
pub struct SafeguardStores {
    pub pdbs: Namespaced<PdbInfo>,
    pub istio_authorization_policies: Namespaced<IstioAuthzInfo>,
    pub linkerd_authorization_policies: Namespaced<LinkerdAuthzInfo>,
    pub linkerd_servers: Namespaced<LinkerdServerInfo>,
    pub velero_schedules: Namespaced<VeleroScheduleInfo>,
    /// Velero's Schedule CRD is served (in a cluster: discovery found it; offline: the files
    /// hold a Schedule or its CRD).
    velero_installed: AtomicBool,
}

impl SafeguardStores {
    pub(crate) fn set_velero_installed(&self, installed: bool) {
        self.velero_installed.store(installed, Ordering::Relaxed);
    }

    pub(crate) fn pod_disruption_budgets(&self, namespace: &str) -> Arc<[Arc<PdbInfo>]> {
        self.pdbs.list(namespace)
    }
    pub(crate) fn istio_authorization_policies(
        &self,
        namespace: &str,
    ) -> Arc<[Arc<IstioAuthzInfo>]> {
        self.istio_authorization_policies.list(namespace)
    }
    pub(crate) fn linkerd_authorization_policies(
        &self,
        namespace: &str,
    ) -> Arc<[Arc<LinkerdAuthzInfo>]> {
        self.linkerd_authorization_policies.list(namespace)
    }
    pub(crate) fn linkerd_servers(&self, namespace: &str) -> Arc<[Arc<LinkerdServerInfo>]> {
        self.linkerd_servers.list(namespace)
    }
    pub(crate) fn velero_schedules(&self) -> Option<Vec<Arc<VeleroScheduleInfo>>> {
        if !self.velero_installed.load(Ordering::Relaxed) {
            return None;
        }
        let all = self.velero_schedules.items.read();
        let mut out: Vec<Arc<VeleroScheduleInfo>> = all
            .values()
            .flat_map(|ns| ns.by_name.values().cloned())
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Some(out)
    }

    /// Object counts per kind, for metrics and logs.
    pub(crate) fn sizes(&self) -> [(&'static str, usize); 5] {
        [
            ("PodDisruptionBudget", self.pdbs.len()),
            (
                "AuthorizationPolicy.security.istio.io",
                self.istio_authorization_policies.len(),
            ),
            (
                "AuthorizationPolicy.policy.linkerd.io",
                self.linkerd_authorization_policies.len(),
            ),
            ("Server.policy.linkerd.io", self.linkerd_servers.len()),
            ("Schedule.velero.io", self.velero_schedules.len()),
        ]
    }
}
