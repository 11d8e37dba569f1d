//! The `contingency` rule (45 CFR 164.308(a)(7)): PHI workloads survive the loss of a node and
//! can be restored.
//!
//! - Replicas and disruption budgets are judged on Deployments and StatefulSets (and what
//!   `check` reads as them: Argo Rollouts, OpenKruise CloneSets): `spec.replicas` at least the
//!   policy's `minReplicas` (unset counts as 1, the API server's default), and a
//!   PodDisruptionBudget in the namespace selecting the template's pods that does not allow
//!   evicting all of them. Bare Pods, Jobs, CronJobs and DaemonSets are not judged for these: a
//!   bare Pod has no replicas to count (its controller, when it has one, is judged instead), a
//!   Job runs to completion, a DaemonSet runs one pod per node. ReplicaSets are left to the
//!   Deployment that owns them.
//! - Backups, when Velero is installed (its Schedule CRD is served): every PHI workload kind
//!   (Pods included) is judged: a Velero Schedule covers the namespace and the pods' labels,
//!   and no claim-backed volume is excluded (`backup.velero.io/backup-volumes-excludes` naming
//!   it, `velero.io/exclude-from-backup: "true"` on the workload, its pods, the claim or the
//!   Namespace). Without Velero nothing is said about backups: other backup tools are
//!   invisible to phi-guard.

use crate::object::{Kind, Object, PodView, VolumeSource};
use crate::policy::ContingencyConfig;
use crate::rules::RuleContext;
use crate::verdict::{Finding, Mode, Reason};

/// Velero's pod annotation listing volumes its file-system backup skips.
pub(crate) const VELERO_VOLUME_EXCLUDES: &str = "backup.velero.io/backup-volumes-excludes";
/// Velero's label that keeps an object out of every backup.
pub(crate) const VELERO_EXCLUDE_LABEL: &str = "velero.io/exclude-from-backup";

/// Every contingency finding for the workload.
pub(crate) fn check(w: &Object, ctx: &RuleContext, cfg: &ContingencyConfig) -> Vec<Finding> {
    let Some(pod) = w.pods() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let finding = |reason: Reason, mode: Mode, path: String, message: String, fix: &str| {
        Finding::new(reason, mode, path, message, fix)
    };
    if matches!(w.kind, Kind::Deployment | Kind::StatefulSet) {
        if pod.replicas.unwrap_or(1) < cfg.min_replicas {
            out.push(finding(
                Reason::TooFewReplicas,
                cfg.mode,
                "spec.replicas".into(),
                // The count itself stays out of the message: an UPDATE that scales between two
                // short counts keeps the same finding (pre-existing, not newly introduced).
                format!(
                    "runs fewer replicas than the policy's minimum of {}, so the loss of one pod or node stops access to ePHI",
                    cfg.min_replicas
                ),
                "raise spec.replicas (with an autoscaler, set its minReplicas as well) and spread the pods across nodes (topologySpreadConstraints or pod anti-affinity)",
            ));
        }
        if let Some(mode) = cfg.pod_disruption_budget {
            let pdbs = ctx.cluster.pod_disruption_budgets(&w.namespace);
            let selecting: Vec<_> = pdbs
                .iter()
                .filter(|p| p.selector.as_ref().is_some_and(|s| s.matches(&pod.labels)))
                .collect();
            if !selecting.iter().any(|p| !p.protects_nothing) {
                let (reason, message) = if selecting.is_empty() {
                    (Reason::NoDisruptionBudget, "no PodDisruptionBudget in the namespace selects its pods, so a node drain may evict all of them at once".to_string())
                } else {
                    let names: Vec<&str> = selecting.iter().map(|p| p.name.as_str()).collect();
                    (Reason::DisruptionBudgetAllowsAll, format!(
                        "the PodDisruptionBudget(s) selecting its pods ({}) allow evicting every pod (minAvailable 0 or maxUnavailable 100%)",
                        names.join(", ")
                    ))
                };
                out.push(finding(
                    reason,
                    mode,
                    pod.meta_path.to_string() + ".labels",
                    message,
                    "create a policy/v1 PodDisruptionBudget whose selector matches the pod template's labels, with minAvailable: 1 or maxUnavailable: 1",
                ));
            }
        }
    }
    if let Some(mode) = cfg.backup {
        backup(w, pod, ctx, &mut |reason, subject, path, message, fix| {
            out.push(finding(reason, mode, path, message, fix).about(subject))
        });
    }
    out
}

/// The Velero checks (only when Velero is installed).
fn backup(
    w: &Object,
    pod: &PodView,
    ctx: &RuleContext,
    push: &mut dyn FnMut(Reason, &str, String, String, &str),
) {
    let Some(schedules) = ctx.cluster.velero_schedules() else {
        return;
    };
    if !schedules
        .iter()
        .any(|s| s.covers(&w.namespace, &pod.labels))
    {
        push(
            Reason::NoBackupSchedule,
            "",
            format!("{}.labels", pod.meta_path),
            format!("Velero is installed but no active Schedule backs up namespace {} with these pods (includedNamespaces, excludedNamespaces, labelSelector, paused)", w.namespace),
            "create a velero.io/v1 Schedule whose spec.template.includedNamespaces lists the namespace (or *) and whose labelSelector, if any, matches the pods",
        );
    }
    let excluded = |l: &crate::selector::Labels| {
        l.get(VELERO_EXCLUDE_LABEL)
            .is_some_and(|v| v.trim() == "true")
    };
    if excluded(&w.labels) {
        push(
            Reason::ExcludedFromBackup,
            "",
            format!("metadata.labels[\"{VELERO_EXCLUDE_LABEL}\"]"),
            "the workload is labeled velero.io/exclude-from-backup".into(),
            "remove the velero.io/exclude-from-backup label",
        );
    }
    if w.kind != Kind::Pod && excluded(&pod.labels) {
        push(
            Reason::ExcludedFromBackup,
            "",
            format!("{}.labels[\"{VELERO_EXCLUDE_LABEL}\"]", pod.meta_path),
            "its pods are labeled velero.io/exclude-from-backup".into(),
            "remove the velero.io/exclude-from-backup label from the pod template",
        );
    }
    if ctx.namespace_labels().is_some_and(excluded) {
        push(
            Reason::ExcludedFromBackup,
            "namespace",
            format!("{}.labels", pod.meta_path),
            format!(
                "namespace {} is labeled velero.io/exclude-from-backup",
                w.namespace
            ),
            "remove the velero.io/exclude-from-backup label from the Namespace",
        );
    }
    let skipped: Vec<&str> = pod
        .annotations
        .get(VELERO_VOLUME_EXCLUDES)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for (i, v) in pod.spec.volumes.iter().enumerate() {
        let claim = match &v.source {
            VolumeSource::PersistentVolumeClaim { claim_name } => Some(claim_name.as_str()),
            VolumeSource::Ephemeral { .. } => None,
            _ => continue,
        };
        if skipped.contains(&v.name.as_str()) {
            push(
                Reason::VolumeExcludedFromBackup,
                &v.name,
                format!(
                    "{}.annotations[\"{VELERO_VOLUME_EXCLUDES}\"]",
                    pod.meta_path
                ),
                format!(
                    "volume {} (claim-backed) is excluded from Velero backups",
                    v.name
                ),
                "remove the volume from backup.velero.io/backup-volumes-excludes",
            );
        }
        if let Some(c) = claim.and_then(|c| ctx.cluster.pvc(&w.namespace, c)) {
            if excluded(&c.labels) {
                push(
                    Reason::VolumeExcludedFromBackup,
                    "",
                    format!("{}.volumes[{i}]", pod.spec_path),
                    format!("PersistentVolumeClaim {} of volume {} is labeled velero.io/exclude-from-backup", c.name, v.name),
                    "remove the velero.io/exclude-from-backup label from the claim",
                );
            }
        }
    }
    for (i, t) in pod.claim_templates.iter().enumerate() {
        let name = t.metadata.name.as_deref().unwrap_or_default();
        if skipped.contains(&name) {
            push(
                Reason::VolumeExcludedFromBackup,
                name,
                format!("{}.annotations[\"{VELERO_VOLUME_EXCLUDES}\"]", pod.meta_path),
                format!("volume {name} (spec.volumeClaimTemplates[{i}]) is excluded from Velero backups"),
                "remove the volume from backup.velero.io/backup-volumes-excludes",
            );
        }
        if excluded(&t.metadata.labels) {
            push(
                Reason::VolumeExcludedFromBackup,
                "",
                format!("spec.volumeClaimTemplates[{i}].metadata.labels"),
                format!("claim template {name} is labeled velero.io/exclude-from-backup"),
                "remove the velero.io/exclude-from-backup label from the claim template",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::*;
    use crate::verdict::RuleId;
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
        assert_eq!(f[0].reason, Reason::TooFewReplicas);
        assert_eq!(f[1].reason, Reason::NoDisruptionBudget);
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
        // The budget that selects the pods but protects none is named; the other is not.
        assert_eq!(f[0].reason, Reason::DisruptionBudgetAllowsAll);
        assert_names(&f[0].message, "all-evictable");
        assert!(!names(&f[0].message, "other"), "{}", f[0].message);

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
        // The claim-backed volume is the subject; the emptyDir is not judged for backups.
        assert_eq!(f[1].reason, Reason::VolumeExcludedFromBackup);
        assert_eq!(f[1].subject, "data");
        assert_names(&f[1].message, "data");
        assert!(
            f.iter()
                .all(|f| f.subject != "scratch" && !names(&f.message, "scratch")),
            "{f:#?}"
        );

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
}
