//! Children judged through their owner. A ReplicaSet, Pod or Job that a controller makes from
//! an owner's template inherits the owner's standing: its exceptions, and the findings its
//! template already had (a template in the API server was admitted, or predates the policy, so
//! the copies a controller makes of it are never refused: scaling and self-healing work, and
//! the audit keeps reporting the owner). Only what the child adds to the template is judged as
//! new (a container or volume a mutating webhook injected, say).
//!
//! An `ownerReferences` entry proves nothing: anyone who can create a Pod can write one. A
//! child inherits only when the owner it names exists (the cache, then a consistent read), is
//! of a kind that makes such children, has the uid the reference gives, and the child is the
//! owner's template as the controller derives it: the same containers (by name, equal in every
//! field phi-guard reads), the template's volumes, pod-level settings and annotations, and the
//! template's labels plus only the labels controllers add. Anything else is judged on its own.

use std::sync::Arc;

use crate::object::{Body, Container, Kind, Object, PodView};
use crate::policy::Policy;
use crate::verdict::Decision;
use crate::view::ClusterView;

/// How far up an owner chain phi-guard follows (Pod -> ReplicaSet -> Deployment, Pod -> Job ->
/// CronJob).
const MAX_DEPTH: usize = 2;

/// Labels Kubernetes' controllers add to the children they make (and the API server to a
/// Job's template), which the owner's template does not carry.
pub(crate) const CONTROLLER_LABELS: [&str; 10] = [
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-completion-index",
    "job-name",
    "controller-uid",
];

/// The note an inherited finding carries. Short: kubectl cuts a warning at its limit, and the
/// finding after the note is what the developer must read (why a copy is not refused is in the
/// README).
pub(crate) fn inherited_note(owner: &Object) -> String {
    crate::verdict::notes::made_by(owner.kind.as_str(), &owner.name)
}

/// Can `owner` make children of `child`'s kind?
fn makes(owner: Kind, child: Kind) -> bool {
    matches!(
        (owner, child),
        (
            Kind::ReplicaSet
                | Kind::StatefulSet
                | Kind::DaemonSet
                | Kind::Job
                | Kind::ReplicationController,
            Kind::Pod
        ) | (Kind::Deployment, Kind::ReplicaSet)
            | (Kind::CronJob, Kind::Job)
    )
}

/// The verified controllers a child was made by, nearest first (empty: judged on its own).
pub(crate) fn verified(child: &Object, cluster: &dyn ClusterView) -> Vec<Object> {
    let mut chain: Vec<Object> = Vec::new();
    for _ in 0..MAX_DEPTH {
        let current = chain.last().unwrap_or(child);
        let Some(r) = &current.controller else { break };
        let Some(kind) = Kind::from_api_version_kind(&r.api_version, &r.kind) else {
            break;
        };
        if !makes(kind, current.kind) || r.uid.is_empty() {
            break;
        }
        let Some(info) = cluster.owner(&child.namespace, kind.as_str(), &r.name) else {
            break;
        };
        if info.uid != r.uid || info.namespace != child.namespace {
            break;
        }
        let Ok(owner) = Object::from_value(kind, &info.value, Some(&child.namespace)) else {
            break;
        };
        if owner.uid != r.uid || !made_from(current, &owner) {
            break;
        }
        chain.push(owner);
    }
    chain
}

/// Is `child` the pod template of `owner`, as the controller derives it?
pub(crate) fn made_from(child: &Object, owner: &Object) -> bool {
    let (Body::Pods(c), Body::Pods(t)) = (&child.body, &owner.body) else {
        return false;
    };
    labels_derived(c, t) && annotations_kept(c, t) && spec_derived(c, t)
}

fn labels_derived(c: &PodView, t: &PodView) -> bool {
    t.labels.iter().all(|(k, v)| c.labels.get(k) == Some(v))
        && c.labels
            .iter()
            .all(|(k, _)| t.labels.contains_key(k) || CONTROLLER_LABELS.contains(&k.as_str()))
}

/// Mutating webhooks may add annotations (judged as new by the update-style comparison); none
/// of the template's may be missing or changed.
fn annotations_kept(c: &PodView, t: &PodView) -> bool {
    t.annotations
        .iter()
        .all(|(k, v)| c.annotations.get(k) == Some(v))
}

fn spec_derived(c: &PodView, t: &PodView) -> bool {
    let (cs, ts) = (&c.spec, &t.spec);
    let template_volumes: Vec<&str> = ts.volumes.iter().map(|v| v.name.as_str()).collect();
    let same_container = |tc: &Container, pool: &[Container]| {
        pool.iter().any(|cc| {
            if cc.name != tc.name {
                return false;
            }
            // Mounts of volumes the template does not have were added at admission (the
            // ServiceAccount token, an injector's volumes); those volumes are judged as new.
            let mut cc = cc.clone();
            cc.volume_mounts.retain(|m| {
                template_volumes.contains(&m.name.as_str()) || tc.volume_mounts.contains(m)
            });
            cc == *tc
        })
    };
    let sa = |s: &Option<String>, legacy: &Option<String>| {
        s.clone()
            .or_else(|| legacy.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string())
    };
    ts.containers
        .iter()
        .all(|tc| same_container(tc, &cs.containers))
        && ts
            .init_containers
            .iter()
            .all(|tc| same_container(tc, &cs.init_containers))
        && ts.volumes.iter().all(|tv| cs.volumes.contains(tv))
        && cs.host_network == ts.host_network
        && cs.host_pid == ts.host_pid
        && cs.host_ipc == ts.host_ipc
        && cs.security_context == ts.security_context
        && cs.os == ts.os
        && cs.automount_service_account_token == ts.automount_service_account_token
        && sa(&cs.service_account_name, &cs.service_account)
            == sa(&ts.service_account_name, &ts.service_account)
}

/// Judge a child made by `owner` (verified): what the child shares with the owner's template
/// is inherited (a warning, never a refusal); what it adds is judged as on CREATE.
pub(crate) fn evaluate_made_by(
    child: &Object,
    owner: &Object,
    cluster: &dyn ClusterView,
    policies: &[Arc<Policy>],
) -> Decision {
    let mut template = child.clone();
    if let (Body::Pods(t), Some(o)) = (&mut template.body, owner.pods()) {
        t.spec = o.spec.clone();
        t.annotations = o.annotations.clone();
    }
    super::evaluate_against(
        &template,
        child,
        cluster,
        policies,
        &inherited_note(owner),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::policy::Mode;
    use crate::view::confirm::{Fresh, Overlay};
    use crate::view::OwnerInfo;
    use serde_json::{json, Value};

    fn owner_info(kind: &str, v: &Value) -> OwnerInfo {
        OwnerInfo {
            kind: kind.into(),
            namespace: "phi".into(),
            name: v["metadata"]["name"].as_str().unwrap_or_default().into(),
            uid: v["metadata"]["uid"].as_str().unwrap_or_default().into(),
            value: Arc::new(v.clone()),
        }
    }

    /// A PHI app without an audit sidecar or a NetworkPolicy: non-compliant.
    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "ledger"}},
               "spec": {"containers": [{"name": "app", "image": "ledger:1",
                                         "ports": [{"containerPort": 8080}]}]}})
    }

    fn deployment_json() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "ledger", "namespace": "phi", "uid": "d-1"},
               "spec": {"replicas": 1, "template": template()}})
    }

    fn replica_set_json() -> Value {
        let mut t = template();
        t["metadata"]["labels"]["pod-template-hash"] = json!("7d9");
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "ledger-7d9", "namespace": "phi", "uid": "rs-1",
                            "labels": {"app": "ledger", "pod-template-hash": "7d9"},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": "ledger", "uid": "d-1", "controller": true}]},
               "spec": {"replicas": 1, "template": t}})
    }

    fn pod_json(image: &str, uid: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "ledger-7d9-x1", "namespace": "phi",
                            "labels": {"app": "ledger", "pod-template-hash": "7d9"},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                 "name": "ledger-7d9", "uid": uid, "controller": true}]},
               "spec": {"serviceAccountName": "default",
                        "containers": [{"name": "app", "image": image,
                                        "ports": [{"containerPort": 8080}],
                                        "volumeMounts": [{"name": "kube-api-access-abcde",
                                                          "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
                        "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}]}})
    }

    fn setup() -> (crate::cluster::ClusterState, Vec<Arc<Policy>>) {
        let state = crate::cluster::ClusterState::new();
        add_namespace(&state, "phi", json!({PHI.0: PHI.1}), json!({}));
        (state, vec![Arc::new(baseline())])
    }

    /// The owners as a consistent read gives them (the webhook's second pass).
    fn fresh() -> Fresh {
        let mut fresh = Fresh::default();
        for info in [
            owner_info("Deployment", &deployment_json()),
            owner_info("ReplicaSet", &replica_set_json()),
        ] {
            let key = (info.namespace.clone(), info.kind.clone(), info.name.clone());
            fresh.owners.insert(key, Some(Arc::new(info)));
        }
        fresh
    }

    fn view<'a>(state: &'a crate::cluster::ClusterState, fresh: &'a Fresh) -> Overlay<'a> {
        Overlay { base: state, fresh }
    }

    fn judge(
        v: &dyn ClusterView,
        child: &Object,
        policies: &[Arc<Policy>],
    ) -> (Decision, Vec<Object>) {
        let owners = verified(child, v);
        let d = match owners.first() {
            Some(o) => evaluate_made_by(child, o, v, policies),
            None => crate::engine::evaluate(child, v, policies),
        };
        (d, owners)
    }

    #[test]
    fn a_pod_made_from_an_admitted_template_inherits_its_findings_as_warnings() {
        let (state, policies) = setup();
        let fresh = fresh();
        let v = view(&state, &fresh);
        let pod =
            Object::from_value(Kind::Pod, &pod_json("ledger:1", "rs-1"), Some("phi")).expect("pod");
        let (on_its_own, _) = judge(&state, &pod, &policies);
        assert!(
            !on_its_own.allowed,
            "the pod alone is non-compliant: {on_its_own:?}"
        );
        let (d, owners) = judge(&v, &pod, &policies);
        assert_eq!(
            owners
                .iter()
                .map(|o| (o.kind, o.name.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (Kind::ReplicaSet, "ledger-7d9"),
                (Kind::Deployment, "ledger")
            ]
        );
        assert!(d.allowed, "{d:?}");
        assert!(!d.findings.is_empty());
        assert!(d.findings.iter().all(|f| f.mode == Mode::Warn));
        let enforced_alone = on_its_own
            .findings
            .iter()
            .filter(|f| f.mode == Mode::Enforce)
            .count();
        let inherited = d
            .findings
            .iter()
            .filter(|f| {
                f.message
                    .starts_with("made by ReplicaSet ledger-7d9 from its admitted template")
            })
            .count();
        assert!(enforced_alone > 0);
        assert_eq!(inherited, enforced_alone, "{:#?}", d.findings);
    }

    #[test]
    fn a_replica_set_made_from_a_deployment_inherits() {
        let (state, policies) = setup();
        let fresh = fresh();
        let v = view(&state, &fresh);
        let rs =
            Object::from_value(Kind::ReplicaSet, &replica_set_json(), Some("phi")).expect("rs");
        let (d, owners) = judge(&v, &rs, &policies);
        assert_eq!(owners.len(), 1);
        assert!(d.allowed, "{d:?}");
    }

    #[test]
    fn a_forged_owner_reference_is_judged_on_its_own() {
        let (state, policies) = setup();
        let fresh = fresh();
        let v = view(&state, &fresh);
        // Copied ownerReferences, a different image.
        let other =
            Object::from_value(Kind::Pod, &pod_json("miner:1", "rs-1"), Some("phi")).expect("pod");
        let (d, owners) = judge(&v, &other, &policies);
        assert!(owners.is_empty() && !d.allowed, "{d:?}");
        // The right spec, a uid that is not the owner's.
        let wrong_uid =
            Object::from_value(Kind::Pod, &pod_json("ledger:1", "rs-2"), Some("phi")).expect("pod");
        let (d, owners) = judge(&v, &wrong_uid, &policies);
        assert!(owners.is_empty() && !d.allowed, "{d:?}");
        // An owner that does not exist.
        let mut gone = pod_json("ledger:1", "rs-1");
        gone["metadata"]["ownerReferences"][0]["name"] = json!("ledger-gone");
        let gone = Object::from_value(Kind::Pod, &gone, Some("phi")).expect("pod");
        assert!(judge(&v, &gone, &policies).1.is_empty());
        // A label the template does not have and no controller adds.
        let mut relabelled = pod_json("ledger:1", "rs-1");
        relabelled["metadata"]["labels"]["tier"] = json!("admin");
        let relabelled = Object::from_value(Kind::Pod, &relabelled, Some("phi")).expect("pod");
        assert!(judge(&v, &relabelled, &policies).1.is_empty());
        // A Deployment cannot own a Pod directly.
        let mut direct = pod_json("ledger:1", "d-1");
        direct["metadata"]["ownerReferences"][0]["kind"] = json!("Deployment");
        direct["metadata"]["ownerReferences"][0]["name"] = json!("ledger");
        let direct = Object::from_value(Kind::Pod, &direct, Some("phi")).expect("pod");
        assert!(judge(&v, &direct, &policies).1.is_empty());
    }

    #[test]
    fn what_a_child_adds_to_the_template_is_judged_as_new() {
        let (state, policies) = setup();
        let fresh = fresh();
        let v = view(&state, &fresh);
        let mut pod = pod_json("ledger:1", "rs-1");
        pod["spec"]["volumes"]
            .as_array_mut()
            .expect("volumes")
            .push(json!({"name": "host", "hostPath": {"path": "/var/lib"}}));
        pod["spec"]["containers"][0]["volumeMounts"]
            .as_array_mut()
            .expect("mounts")
            .push(json!({"name": "host", "mountPath": "/host"}));
        let pod = Object::from_value(Kind::Pod, &pod, Some("phi")).expect("pod");
        let (d, owners) = judge(&v, &pod, &policies);
        assert_eq!(
            owners.len(),
            2,
            "the template's containers and volumes are all there"
        );
        assert!(!d.allowed, "the hostPath volume is new: {d:?}");
        assert!(d
            .findings
            .iter()
            .any(|f| f.mode == Mode::Enforce && f.path.contains("volumes[1]")));
    }
}
