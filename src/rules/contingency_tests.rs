use serde_json::{json, Value};

use super::*;
use crate::cluster::ClusterState;
use crate::fixtures::*;
use crate::view::{PdbInfo, VeleroScheduleInfo};

fn run_in(state: &ClusterState, w: &Object) -> Vec<Finding> {
    let p = policy_with(|s| s.contingency.enabled = true);
    let cfg = p.safeguards.contingency.clone().expect("on");
    judge(w, state, &p, |w, ctx| check(w, ctx, &cfg))
}

fn paths(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.path.as_str()).collect()
}

fn workload(kind: Kind, replicas: Option<i32>, annotations: Value, spec: Value) -> Object {
    let mut s = json!({"template": {"metadata": {"labels": {"app": "api"}, "annotations": annotations}, "spec": spec}});
    if let Some(r) = replicas {
        s["replicas"] = json!(r);
    }
    object(
        kind,
        Some("phi"),
        json!({"metadata": {"name": "api"}, "spec": s}),
    )
}

fn add_pdb(state: &ClusterState, name: &str, spec: Value) {
    let p: k8s_openapi::api::policy::v1::PodDisruptionBudget = serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "phi"}, "spec": spec}),
    )
    .expect("pdb");
    state
        .safeguards
        .pdbs
        .insert("phi".into(), name.into(), PdbInfo::from(&p));
}

fn add_schedule(state: &ClusterState, template: Value) {
    let s = VeleroScheduleInfo::from_value(&json!({
        "apiVersion": "velero.io/v1", "kind": "Schedule",
        "metadata": {"name": "daily", "namespace": "velero"},
        "spec": {"schedule": "0 1 * * *", "template": template}}))
    .expect("schedule");
    state.safeguards.set_velero_installed(true);
    state
        .safeguards
        .velero_schedules
        .insert("velero".into(), "daily".into(), s);
}

#[test]
fn deployments_need_replicas_and_a_protecting_pdb() {
    let state = ClusterState::new();
    let one = workload(Kind::Deployment, None, json!({}), app_spec());
    let f = run_in(&state, &one);
    assert_eq!(
        paths(&f),
        ["spec.replicas", "spec.template.metadata.labels"]
    );
    assert!(
        f[0].message
            .contains("fewer replicas than the policy's minimum of 2"),
        "{}",
        f[0].message
    );
    assert!(f
        .iter()
        .all(|f| f.rule == RuleId::Contingency && f.citation == "45 CFR 164.308(a)(7)"));

    add_pdb(
        &state,
        "all-evictable",
        json!({"maxUnavailable": "100%", "selector": {"matchLabels": {"app": "api"}}}),
    );
    add_pdb(
        &state,
        "other",
        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}),
    );
    let three = workload(Kind::StatefulSet, Some(3), json!({}), app_spec());
    let f = run_in(&state, &three);
    assert_eq!(paths(&f), ["spec.template.metadata.labels"]);
    assert!(f[0].message.contains("all-evictable"), "{}", f[0].message);

    add_pdb(
        &state,
        "api",
        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}),
    );
    assert_eq!(run_in(&state, &three), Vec::new());
}

#[test]
fn bare_pods_jobs_and_daemonsets_are_not_judged_for_replicas() {
    let state = ClusterState::new();
    for w in [
        object(
            Kind::Pod,
            Some("phi"),
            json!({"metadata": {"name": "api", "labels": {"app": "api"}}, "spec": app_spec()}),
        ),
        workload(Kind::DaemonSet, None, json!({}), app_spec()),
        workload(Kind::Job, None, json!({}), app_spec()),
    ] {
        assert_eq!(run_in(&state, &w), Vec::new(), "{}", w.kind);
    }
}

#[test]
fn backups_are_judged_only_when_velero_is_installed() {
    let state = ClusterState::new();
    add_pdb(
        &state,
        "api",
        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}),
    );
    let spec = json!({"containers": [{"name": "app", "image": "app:1"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "scratch", "emptyDir": {}}]});
    let excludes = json!({"backup.velero.io/backup-volumes-excludes": "scratch,data"});
    let w = workload(Kind::Deployment, Some(2), excludes.clone(), spec.clone());
    assert_eq!(
        run_in(&state, &w),
        Vec::new(),
        "no Velero: nothing about backups"
    );

    add_schedule(&state, json!({"includedNamespaces": ["billing"]}));
    let f = run_in(&state, &w);
    assert_eq!(
        paths(&f),
        [
            "spec.template.metadata.labels",
            "spec.template.metadata.annotations[\"backup.velero.io/backup-volumes-excludes\"]"
        ]
    );
    assert!(f[1].message.contains("volume data"), "{}", f[1].message);
    assert!(!f.iter().any(|f| f.message.contains("scratch")));

    add_schedule(&state, json!({"includedNamespaces": ["*"]}));
    let w = workload(Kind::Deployment, Some(2), json!({}), spec);
    assert_eq!(run_in(&state, &w), Vec::new());

    add_pvc(&state, "phi", "data", json!({}), json!({}));
    let mut pvc = (*state.pvcs.get("phi", "data").expect("pvc")).clone();
    pvc.labels
        .insert("velero.io/exclude-from-backup".into(), "true".into());
    state.pvcs.insert("phi".into(), "data".into(), pvc);
    assert_eq!(
        paths(&run_in(&state, &w)),
        ["spec.template.spec.volumes[0]"]
    );

    add_namespace(
        &state,
        "phi",
        json!({"velero.io/exclude-from-backup": "true"}),
        json!({}),
    );
    assert_eq!(run_in(&state, &w).len(), 2);
}

#[test]
fn statefulset_claim_templates_may_not_be_excluded() {
    let state = ClusterState::new();
    add_pdb(
        &state,
        "api",
        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}),
    );
    add_schedule(&state, json!({}));
    let w = object(
        Kind::StatefulSet,
        Some("phi"),
        json!({"metadata": {"name": "db"}, "spec": {"replicas": 3,
            "template": {"metadata": {"labels": {"app": "api"},
                "annotations": {"backup.velero.io/backup-volumes-excludes": "pgdata"}},
                "spec": app_spec()},
            "volumeClaimTemplates": [{"metadata": {"name": "pgdata",
                "labels": {"velero.io/exclude-from-backup": "true"}}, "spec": {}}]}}),
    );
    assert_eq!(
        paths(&run_in(&state, &w)),
        [
            "spec.template.metadata.annotations[\"backup.velero.io/backup-volumes-excludes\"]",
            "spec.volumeClaimTemplates[0].metadata.labels"
        ]
    );
}

/// UPDATE semantics: scaling keeps findings the object already had pre-existing (as before the
/// rule read replicas, also under `updates: Enforce`), while a scale-down below the minimum is
/// new and denied.
#[test]
fn scaling_is_judged_by_what_it_introduces() {
    use crate::engine::{evaluate_update, Actor};
    use std::sync::Arc;
    let state = ClusterState::new();
    add_pdb(
        &state,
        "api",
        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}),
    );
    let strict = Arc::new(policy_with(|s| {
        s.contingency.enabled = true;
        s.updates = crate::policy::UpdateMode::Enforce;
        s.scope.workload_selector.match_labels =
            Some([("app".to_string(), "api".to_string())].into());
    }));
    let at = |n: i32| workload(Kind::Deployment, Some(n), json!({}), app_spec());
    let policies = [strict];
    // The other rules' findings are pre-existing; scaling 3 -> 4 is bookkeeping for them.
    let d = evaluate_update(&at(3), &at(4), &state, &policies, Actor::Person);
    assert!(d.allowed, "{d:#?}");
    // 3 -> 1 introduces the replicas finding: denied.
    let d = evaluate_update(&at(3), &at(1), &state, &policies, Actor::Person);
    assert!(!d.allowed);
    assert!(d
        .with_mode(Mode::Enforce)
        .all(|f| f.rule == RuleId::Contingency && f.path == "spec.replicas"));
    // 1 -> 0: the same finding as before, not made worse in what phi-guard says.
    let d = evaluate_update(&at(1), &at(0), &state, &policies, Actor::Person);
    assert!(d.allowed, "{d:#?}");
}
