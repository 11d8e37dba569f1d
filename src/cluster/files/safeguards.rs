//! The safeguards' cluster state from files (`check --cluster-state`, `serve --cluster-state`):
//! PodDisruptionBudgets, Istio and Linkerd authorization objects, Velero Schedules. Velero
//! counts as installed when the files hold a Schedule or the `schedules.velero.io` CRD.

use super::*;
use crate::cluster::Namespaced;
use crate::kinds::Store;
use crate::view::objects::ObjectError;
use crate::view::{
    IstioAuthzInfo, LinkerdAuthzInfo, LinkerdServerInfo, PdbInfo, VeleroScheduleInfo,
};

fn put<T>(
    d: &Document,
    table: &Namespaced<T>,
    info: Result<T, ObjectError>,
    key: impl Fn(&T) -> (String, String),
) -> Result<(), FileError> {
    let info = info.map_err(|e| object_err(d, without_values(&e.message)))?;
    let (ns, name) = key(&info);
    let ns = if ns.is_empty() { "default".into() } else { ns };
    table.insert(ns, name, info);
    Ok(())
}

/// Velero counts as installed when the files hold its Schedule CRD.
pub(crate) fn note_crd(group: &str, d: &Document, state: &ClusterState) {
    if group == "apiextensions.k8s.io"
        && d.kind == "CustomResourceDefinition"
        && d.name() == "schedules.velero.io"
    {
        state.safeguards.set_velero_installed(true);
    }
}

/// Add a document of one of the safeguards' stores to the state.
pub(crate) fn load(store: Store, d: &Document, state: &ClusterState) -> Result<(), FileError> {
    let s = &state.safeguards;
    match store {
        Store::PodDisruptionBudgets => {
            let pdb: k8s_openapi::api::policy::v1::PodDisruptionBudget = typed(d)?;
            put(d, &s.pdbs, Ok(PdbInfo::from(&pdb)), |i| {
                (i.namespace.clone(), i.name.clone())
            })?;
        }
        Store::IstioAuthorizationPolicies => {
            put(
                d,
                &s.istio_authorization_policies,
                IstioAuthzInfo::from_value(&d.value),
                |i| (i.namespace.clone(), i.name.clone()),
            )?;
        }
        Store::LinkerdAuthorizationPolicies => {
            put(
                d,
                &s.linkerd_authorization_policies,
                LinkerdAuthzInfo::from_value(&d.value),
                |i| (i.namespace.clone(), i.name.clone()),
            )?;
        }
        Store::LinkerdServers => {
            put(
                d,
                &s.linkerd_servers,
                LinkerdServerInfo::from_value(&d.value),
                |i| (i.namespace.clone(), i.name.clone()),
            )?;
        }
        Store::VeleroSchedules => {
            s.set_velero_installed(true);
            put(
                d,
                &s.velero_schedules,
                VeleroScheduleInfo::from_value(&d.value),
                |i| (i.namespace.clone(), i.name.clone()),
            )?;
        }
        // The other stores are loaded by `load_state`.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::view::ClusterView;

    #[test]
    fn safeguard_kinds_are_read_and_velero_counts_as_installed_by_its_crd() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: api-http, namespace: phi}
spec: {podSelector: {matchLabels: {app: api}}, port: http}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: api, namespace: phi}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: api-http}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: web}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api}
spec: {maxUnavailable: 1, selector: {matchLabels: {app: api}}}
"#;
        std::fs::write(dir.path().join("state.yaml"), text).expect("write");
        let state = ClusterState::new();
        load_paths(
            &[dir.path().to_path_buf()],
            &state,
            DEFAULT_MAX_FILE_MIB * MIB,
        )
        .expect("load");
        assert_eq!(state.linkerd_servers("phi").len(), 1);
        assert!(state.linkerd_authorization_policies("phi")[0].requires_mesh_tls);
        assert_eq!(
            state.pod_disruption_budgets("default").len(),
            1,
            "no namespace: default"
        );
        assert!(
            state.velero_schedules().is_none(),
            "no Velero in these files"
        );

        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: schedules.velero.io}\n";
        std::fs::write(dir.path().join("velero.yaml"), crd).expect("write");
        load_paths(
            &[dir.path().to_path_buf()],
            &state,
            DEFAULT_MAX_FILE_MIB * MIB,
        )
        .expect("load");
        assert_eq!(state.velero_schedules().map(|s| s.len()), Some(0));
    }
}
