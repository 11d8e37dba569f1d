//! Scope matching: which objects a policy considers PHI. Pods and pod controllers by their own
//! labels or their namespace's; Services and Ingresses also when they route to PHI pods.

use super::Policy;
use crate::object::{Body, Object};
use crate::selector::Labels;
use std::sync::Arc;

use crate::view::{ClusterView, NamespaceInfo, PodInfo};

/// Does `policy` consider the workload PHI? Services and Ingresses are also PHI when they route
/// to PHI pods.
pub fn in_scope(
    w: &Object,
    policy: &Policy,
    cluster: &dyn ClusterView,
    ns: Option<&NamespaceInfo>,
) -> bool {
    let ns_labels = ns.map(|n| &n.labels);
    if policy
        .scope
        .covers(&w.namespace, ns_labels, &w.label_sets())
    {
        return true;
    }
    if policy.scope.excludes_namespace(&w.namespace) {
        return false;
    }
    match &w.body {
        Body::Service(svc) => svc
            .selector
            .as_ref()
            .is_some_and(|sel| selects_phi_pods(sel, &w.namespace, policy, cluster)),
        Body::Ingress(ing) => ing
            .rules
            .iter()
            .flat_map(|r| r.services.iter())
            .chain(ing.default_backend.iter())
            .any(|svc| service_routes_to_phi(svc, &w.namespace, policy, cluster)),
        _ => false,
    }
}

/// Labels controllers add to their pods that name the controller: (label, controller kind).
/// A StatefulSet's pod name is `<statefulset>-<ordinal>`; a Job's pods carry the Job's name.
const NAMING_LABELS: [(&str, &str); 3] = [
    ("statefulset.kubernetes.io/pod-name", "StatefulSet"),
    ("batch.kubernetes.io/job-name", "Job"),
    ("job-name", "Job"),
];

/// Labels controllers add whose values cannot be known before the pods exist (hashes, uids):
/// a selector pair on one of them is taken to match the controller's future pods.
const UNPREDICTABLE_LABELS: [&str; 5] = [
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "batch.kubernetes.io/controller-uid",
    "controller-uid",
];

/// The pods a Service-style selector in `namespace` selects: those that exist, or, when none
/// does and the selector names a controller's pods by the labels controllers add
/// (`statefulset.kubernetes.io/pod-name: db-0`, `job-name: export`), the pod that controller's
/// template will make, so a Service applied with its StatefulSet is judged before the pods run.
pub(crate) fn pods_selected(
    cluster: &dyn ClusterView,
    namespace: &str,
    selector: &Labels,
) -> Vec<Arc<PodInfo>> {
    let pods = cluster.pods_with_labels(namespace, selector);
    if !pods.is_empty() {
        return pods;
    }
    let Some((kind, name, mut added)) = named_controller(selector) else {
        return pods;
    };
    let Some(template) = cluster.controller_pod(namespace, kind, &name) else {
        return pods;
    };
    added.extend(template.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let matches = selector
        .iter()
        .all(|(k, v)| added.get(k) == Some(v) || UNPREDICTABLE_LABELS.contains(&k.as_str()));
    if matches {
        let mut pod = (*template).clone();
        pod.labels = added;
        vec![Arc::new(pod)]
    } else {
        pods
    }
}

/// The controller a selector names by a controller-added label, with the labels its pod will
/// carry that the template does not.
fn named_controller(selector: &Labels) -> Option<(&'static str, String, Labels)> {
    for (label, kind) in NAMING_LABELS {
        let Some(value) = selector.get(label) else {
            continue;
        };
        let mut added = Labels::new();
        added.insert(label.to_string(), value.clone());
        if kind == "StatefulSet" {
            let (set, ordinal) = value.rsplit_once('-')?;
            if set.is_empty() || ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            added.insert("apps.kubernetes.io/pod-index".into(), ordinal.into());
            return Some((kind, set.to_string(), added));
        }
        added.insert("job-name".into(), value.clone());
        added.insert("batch.kubernetes.io/job-name".into(), value.clone());
        return Some((kind, value.clone(), added));
    }
    None
}

/// Does a Service selector in `namespace` select pods the policy considers PHI?
pub fn selects_phi_pods(
    selector: &Labels,
    namespace: &str,
    policy: &Policy,
    cluster: &dyn ClusterView,
) -> bool {
    let ns = cluster.namespace(namespace);
    let ns_labels = ns.as_deref().map(|n| &n.labels);
    pods_selected(cluster, namespace, selector)
        .iter()
        .any(|p| policy.scope.covers(namespace, ns_labels, &[&p.labels]))
}

/// Does the named Service in `namespace` route to PHI pods?
pub fn service_routes_to_phi(
    service: &str,
    namespace: &str,
    policy: &Policy,
    cluster: &dyn ClusterView,
) -> bool {
    cluster
        .services(namespace)
        .iter()
        .filter(|s| s.name == service)
        .any(|s| {
            s.selector
                .as_ref()
                .is_some_and(|sel| selects_phi_pods(sel, namespace, policy, cluster))
        })
}

#[cfg(test)]
mod derived_tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::{self, PHI};
    use serde_json::json;

    fn state() -> ClusterState {
        let state = ClusterState::new();
        fixtures::add_namespace(&state, "ehr", json!({}), json!({}));
        // A StatefulSet's template as files load it (a pod named `statefulset/db`).
        let sts = crate::object::Object::from_value(
            crate::object::Kind::StatefulSet,
            &json!({"metadata": {"name": "db", "namespace": "ehr"},
                    "spec": {"template": {"metadata": {"labels": {"app": "db", PHI.0: PHI.1}},
                             "spec": {"containers": [{"name": "mysql", "image": "mysql:8"}]}}}}),
            Some("ehr"),
        )
        .expect("sts");
        let pod = sts.template_pod("statefulset/db".into()).expect("template");
        state.pods.insert("ehr".into(), pod.name.clone(), pod);
        state
    }

    fn selector(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn a_selector_by_pod_name_is_traced_to_the_statefulset_before_its_pods_exist() {
        let state = state();
        let by_name = selector(&[("statefulset.kubernetes.io/pod-name", "db-0")]);
        let pods = pods_selected(&state, "ehr", &by_name);
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].labels.get(PHI.0).map(String::as_str), Some(PHI.1));
        let policy = fixtures::baseline();
        assert!(selects_phi_pods(&by_name, "ehr", &policy, &state));
        // With a hash nobody can know yet, and with the template's own label.
        let with_hash = selector(&[
            ("app", "db"),
            ("controller-revision-hash", "db-5d8f"),
            ("apps.kubernetes.io/pod-index", "2"),
            ("statefulset.kubernetes.io/pod-name", "db-2"),
        ]);
        assert_eq!(pods_selected(&state, "ehr", &with_hash).len(), 1);
    }

    #[test]
    fn selectors_that_name_no_known_controller_select_nothing() {
        let state = state();
        for pairs in [
            vec![("statefulset.kubernetes.io/pod-name", "cache-0")],
            vec![("statefulset.kubernetes.io/pod-name", "db")],
            vec![
                ("statefulset.kubernetes.io/pod-name", "db-0"),
                ("app", "web"),
            ],
            vec![
                ("statefulset.kubernetes.io/pod-name", "db-0"),
                ("apps.kubernetes.io/pod-index", "1"),
            ],
            vec![("job-name", "db")],
        ] {
            assert!(
                pods_selected(&state, "ehr", &selector(&pairs)).is_empty(),
                "{pairs:?}"
            );
        }
    }
}
