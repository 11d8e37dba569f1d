//! Pods an operator makes, judged with their owner's TLS evidence. A CloudNativePG instance Pod
//! mounts the server certificate the operator issues itself (not cert-manager's), and its
//! PostgreSQL runs with `ssl = on` fixed by the operator (cloudnative-pg
//! pkg/postgres/configuration.go: `ssl`, `ssl_cert_file` ... are fixed parameters a user
//! cannot override). Whether plaintext clients are refused is the `Cluster`'s `pg_hba`, which
//! the `Cluster` itself is judged on (`object::operated::cnpg`). So an instance Pod of a
//! `Cluster` that passes that judgment is credited for encryption in transit, where the policy
//! accepts application TLS (`AppTls`); every other finding of the Pod stands.
//!
//! An `ownerReferences` entry proves nothing (anyone who can create a Pod can write one), so
//! the owner must be confirmed: the reference is the controller, names a `Cluster` of
//! `postgresql.cnpg.io` with a uid, that `Cluster` is read (the cache, then a consistent read
//! on the deny path, as for pod controllers) with the same uid in the Pod's namespace, and the
//! Pod carries the labels the operator gives its instances (`cnpg.io/cluster: <name>`,
//! `cnpg.io/podRole: instance`; pkg/utils/labels_annotations.go). Pods of other operators are
//! judged on their own evidence: Strimzi's and mariadb-operator's pods come through their own
//! controllers (StrimziPodSet, StatefulSet) and ECK's through StatefulSets, whose templates
//! carry no TLS material phi-guard can attribute to the operator.

use std::sync::Arc;

use crate::object::{Body, Kind, Object};
use crate::policy::{Policy, TransitEvidence};
use crate::verdict::{Decision, Reason, RuleId};
use crate::view::ClusterView;

const CNPG_GROUP: &str = "postgresql.cnpg.io";
const CNPG_CLUSTER_LABEL: &str = "cnpg.io/cluster";
const CNPG_POD_ROLE_LABEL: &str = "cnpg.io/podRole";

/// The operator's resource that made `child`, confirmed as the module explains; `None` when
/// the Pod is not provably an operator's instance.
pub(crate) fn operator_of(child: &Object, cluster: &dyn ClusterView) -> Option<Object> {
    let Body::Pods(p) = &child.body else {
        return None;
    };
    if child.kind != Kind::Pod {
        return None;
    }
    let r = child.controller.as_deref()?;
    if r.controller != Some(true)
        || r.uid.is_empty()
        || r.kind != "Cluster"
        || r.api_version.rsplit_once('/').map(|(g, _)| g) != Some(CNPG_GROUP)
    {
        return None;
    }
    let labels_ok = p.labels.get(CNPG_CLUSTER_LABEL) == Some(&r.name)
        && p.labels.get(CNPG_POD_ROLE_LABEL).map(String::as_str) == Some("instance");
    if !labels_ok {
        return None;
    }
    let info = cluster.owner(&child.namespace, "Cluster", &r.name)?;
    if info.uid != r.uid || info.namespace != child.namespace {
        return None;
    }
    let owner = Object::from_value(Kind::CnpgCluster, &info.value, Some(&child.namespace)).ok()?;
    (owner.uid == r.uid && owner.name == r.name).then_some(owner)
}

/// The Pod's decision with its owner's TLS credited: the in-transit finding that the Pod holds
/// no accepted evidence is dropped when the owner serves TLS and refuses plaintext (no
/// plaintext finding on it) and the finding's policy accepts application TLS. Every other
/// finding is the Pod's own and stays.
pub(crate) fn credit_owner_tls(
    decision: Decision,
    child: &Object,
    owner: &Object,
    policies: &[Arc<Policy>],
) -> Decision {
    let Body::Operated(v) = &owner.body else {
        return decision;
    };
    if !v.plaintext.is_empty() {
        return decision;
    }
    let Some(p) = child.pods() else {
        return decision;
    };
    let accepts_app_tls = |name: &str| {
        policies.iter().any(|pol| {
            pol.name == name
                && pol
                    .encryption_in_transit
                    .as_ref()
                    .is_some_and(|c| c.accepts(TransitEvidence::AppTls))
        })
    };
    let before = decision.findings.len();
    let findings: Vec<_> = decision
        .findings
        .into_iter()
        .filter(|f| {
            !(f.rule == RuleId::EncryptionInTransit
                && f.path == p.meta_path
                && f.reason == Reason::NoTransitEvidence
                && accepts_app_tls(&f.policy))
        })
        .collect();
    if findings.len() == before {
        return Decision {
            findings,
            ..decision
        };
    }
    Decision::from_findings(decision.phi, decision.policies, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::view::confirm::{Fresh, Overlay};
    use crate::view::OwnerInfo;
    use serde_json::{json, Value};

    fn cnpg_cluster(pg_hba: Value) -> Value {
        json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
               "metadata": {"name": "records-db", "namespace": "phi", "uid": "c-1"},
               "spec": {"instances": 3, "storage": {"size": "10Gi"},
                        "postgresql": {"pg_hba": pg_hba}}})
    }

    fn instance_pod(uid: &str, role: &str) -> Object {
        let v = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "records-db-1", "namespace": "phi",
                         "labels": {"cnpg.io/cluster": "records-db", "cnpg.io/podRole": role,
                                    "cnpg.io/instanceName": "records-db-1"},
                         "ownerReferences": [{"apiVersion": "postgresql.cnpg.io/v1",
                                              "kind": "Cluster", "name": "records-db",
                                              "uid": uid, "controller": true}]},
            "spec": {"containers": [{"name": "postgres", "image": "ghcr.io/cloudnative-pg/postgresql:17",
                                     "ports": [{"containerPort": 5432, "name": "postgresql"}],
                                     "volumeMounts": [{"name": "certificates", "mountPath": "/controller/certificates"}]}],
                     "volumes": [{"name": "certificates",
                                  "projected": {"sources": [{"secret": {"name": "records-db-server"}}]}}]}});
        Object::from_value(Kind::Pod, &v, Some("phi")).expect("pod")
    }

    fn fresh_with(cluster: &Value) -> Fresh {
        let mut fresh = Fresh::default();
        let info = OwnerInfo {
            kind: "Cluster".into(),
            namespace: "phi".into(),
            name: "records-db".into(),
            uid: "c-1".into(),
            value: Arc::new(cluster.clone()),
        };
        fresh.owners.insert(
            ("phi".into(), "Cluster".into(), "records-db".into()),
            Some(Arc::new(info)),
        );
        fresh
    }

    fn transit(d: &Decision) -> Vec<&str> {
        d.findings
            .iter()
            .filter(|f| f.rule == RuleId::EncryptionInTransit)
            .map(|f| f.message.as_str())
            .collect()
    }

    /// An instance Pod of a Cluster whose pg_hba refuses plaintext is credited with the
    /// operator's TLS; its other findings stand.
    #[test]
    fn a_cnpg_instance_of_a_tls_only_cluster_is_credited_for_transit() {
        let state = crate::cluster::ClusterState::new();
        add_namespace(&state, "phi", json!({PHI.0: PHI.1}), json!({}));
        let policies = vec![Arc::new(baseline())];
        let strict = cnpg_cluster(json!(["hostnossl all all all reject"]));
        let fresh = fresh_with(&strict);
        let view = Overlay {
            base: &state,
            fresh: &fresh,
        };
        let pod = instance_pod("c-1", "instance");
        let d = crate::engine::evaluate(&pod, &view, &policies);
        assert_eq!(transit(&d).len(), 1, "{:?}", d.findings);
        let owner = operator_of(&pod, &view).expect("confirmed owner");
        let credited = credit_owner_tls(d.clone(), &pod, &owner, &policies);
        assert!(transit(&credited).is_empty(), "{:?}", credited.findings);
        assert_eq!(credited.findings.len(), d.findings.len() - 1);
        assert!(
            !credited.allowed,
            "segmentation and the audit sidecar still apply"
        );

        // A Cluster that accepts plaintext (CNPG's default pg_hba) gives no credit.
        let lax = fresh_with(&cnpg_cluster(json!([])));
        let view = Overlay {
            base: &state,
            fresh: &lax,
        };
        let owner = operator_of(&pod, &view).expect("confirmed owner");
        let d = crate::engine::evaluate(&pod, &view, &policies);
        assert_eq!(
            transit(&credit_owner_tls(d, &pod, &owner, &policies)).len(),
            1
        );
    }

    /// A forged reference (another uid), a Pod without the operator's instance labels, or an
    /// owner phi-guard cannot read is no owner.
    #[test]
    fn a_forged_or_unlabeled_operator_pod_is_judged_on_its_own() {
        let state = crate::cluster::ClusterState::new();
        add_namespace(&state, "phi", json!({PHI.0: PHI.1}), json!({}));
        let strict = cnpg_cluster(json!(["hostnossl all all all reject"]));
        let fresh = fresh_with(&strict);
        let view = Overlay {
            base: &state,
            fresh: &fresh,
        };
        assert!(operator_of(&instance_pod("forged", "instance"), &view).is_none());
        assert!(operator_of(&instance_pod("c-1", "pooler"), &view).is_none());
        assert!(operator_of(&instance_pod("c-1", "instance"), &state).is_none());
    }

    /// A policy that does not accept application TLS gives no credit.
    #[test]
    fn no_credit_where_the_policy_does_not_accept_app_tls() {
        let state = crate::cluster::ClusterState::new();
        add_namespace(&state, "phi", json!({PHI.0: PHI.1}), json!({}));
        let mut policy = baseline();
        if let Some(c) = policy.encryption_in_transit.as_mut() {
            c.accepted_evidence
                .retain(|e| *e != TransitEvidence::AppTls);
        }
        let policies = vec![Arc::new(policy)];
        let strict = cnpg_cluster(json!(["hostnossl all all all reject"]));
        let fresh = fresh_with(&strict);
        let view = Overlay {
            base: &state,
            fresh: &fresh,
        };
        let pod = instance_pod("c-1", "instance");
        let owner = operator_of(&pod, &view).expect("confirmed owner");
        let d = crate::engine::evaluate(&pod, &view, &policies);
        assert_eq!(
            transit(&credit_owner_tls(d, &pod, &owner, &policies)).len(),
            1
        );
    }
}
