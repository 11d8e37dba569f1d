//! The `audit-sidecar` rule (45 CFR 164.312(b)): PHI pods run an approved audit/log shipping
//! sidecar, as a native sidecar where pods run to completion, optionally digest-pinned and
//! sharing a log volume (not hostPath) with the application.

use crate::object::{Container, Object, PodView, VolumeSource};
use crate::policy::{image_has_digest, AuditSidecarConfig, Mode};
use crate::rules::RuleContext;
use crate::verdict::{Finding, Reason};

/// Where an approved-looking container sits in the pod spec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Placement {
    /// `spec.containers[i]`.
    Container,
    /// `spec.initContainers[i]` with `restartPolicy: Always`.
    NativeSidecar,
    /// `spec.initContainers[i]` without it: runs once before the app, audits nothing.
    PlainInit,
}

/// A container whose name and image pass the policy.
struct Candidate<'a> {
    container: &'a Container,
    index: usize,
    placement: Placement,
}

impl Candidate<'_> {
    fn path(&self, spec_path: &str) -> String {
        match self.placement {
            Placement::Container => format!("{spec_path}.containers[{}]", self.index),
            Placement::NativeSidecar | Placement::PlainInit => {
                format!("{spec_path}.initContainers[{}]", self.index)
            }
        }
    }

    fn describe(&self) -> String {
        match self.placement {
            Placement::Container => format!("container {}", self.container.name),
            Placement::NativeSidecar => format!("native sidecar {}", self.container.name),
            Placement::PlainInit => format!("init container {}", self.container.name),
        }
    }
}

/// Every audit-sidecar finding for the workload.
pub(crate) fn check(w: &Object, _ctx: &RuleContext, cfg: &AuditSidecarConfig) -> Vec<Finding> {
    let Some(pod) = w.pods() else {
        return crate::rules::operated::audit_sidecar(w, cfg);
    };
    let approved = |c: &Container| {
        c.image.as_deref().is_some_and(|i| cfg.image_approved(i)) && cfg.name_approved(&c.name)
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    for (index, c) in pod.spec.containers.iter().enumerate() {
        if approved(c) {
            candidates.push(Candidate {
                container: c,
                index,
                placement: Placement::Container,
            });
        }
    }
    for (index, c) in pod.spec.init_containers.iter().enumerate() {
        if approved(c) {
            candidates.push(Candidate {
                container: c,
                index,
                placement: if c.is_native_sidecar() {
                    Placement::NativeSidecar
                } else {
                    Placement::PlainInit
                },
            });
        }
    }

    let accepted: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| match c.placement {
            Placement::NativeSidecar => true,
            // A regular container never exits, so a Job's pod would never complete.
            Placement::Container => !pod.run_to_completion,
            Placement::PlainInit => false,
        })
        .collect();

    let mut out = Vec::new();
    // The sub-checks look at the accepted sidecars or, when there are none, at the misplaced
    // candidates, so a developer learns everything about the sidecar in one round trip.
    let targets: Vec<&Candidate> = if accepted.is_empty() {
        out.push(missing_finding(w, pod, cfg, &candidates));
        candidates.iter().collect()
    } else {
        accepted
    };

    if let Some(mode) = cfg.require_digest {
        for t in &targets {
            if !t.container.image.as_deref().is_some_and(image_has_digest) {
                out.push(Finding::new(
                    Reason::SidecarNotPinned,
                    mode,
                    format!("{}.image", t.path(pod.spec_path)),
                    format!(
                        "{}: the image of audit sidecar {} is not pinned by a `@sha256:` digest, so \
                         the image that runs can change without review.",
                        w.display(),
                        t.describe()
                    ),
                    "Pin the image by digest (`<repository>:<tag>@sha256:<digest>`; get the digest \
                     with `crane digest` or `docker buildx imagetools inspect`).",
                ));
            }
        }
    }

    if let Some(mode) = cfg.require_shared_log_volume {
        if let Some(f) = shared_volume_finding(w, pod, &candidates, &targets, mode) {
            out.push(f);
        }
    }
    out
}

/// The finding when no approved sidecar is in a place that counts.
fn missing_finding(
    w: &Object,
    pod: &PodView,
    cfg: &AuditSidecarConfig,
    candidates: &[Candidate],
) -> Finding {
    let sp = pod.spec_path;
    let patterns = cfg.approved_image_patterns.join(", ");
    if pod.run_to_completion {
        if let Some(c) = candidates
            .iter()
            .find(|c| c.placement == Placement::Container)
        {
            return Finding::new(
                Reason::SidecarBlocksCompletion,
                cfg.mode,
                c.path(sp),
                format!(
                    "{}: audit sidecar container {} is a regular container, but these pods run to \
                     completion: it would keep running after the work is done and the Job would \
                     never complete, so it does not count.",
                    w.display(),
                    c.container.name
                ),
                format!(
                    "Move container {} from `{sp}.containers` to `{sp}.initContainers` and set \
                     `restartPolicy: Always` on it (a native sidecar, Kubernetes 1.29+): it starts \
                     before the application and is stopped when the application containers finish.",
                    c.container.name
                ),
            );
        }
    }
    if let Some(c) = candidates
        .iter()
        .find(|c| c.placement == Placement::PlainInit)
    {
        return Finding::new(
            Reason::InitSidecarNotRestarting,
            cfg.mode,
            format!("{}.restartPolicy", c.path(sp)),
            format!(
                "{}: init container {} runs an approved audit sidecar image but has no \
                 `restartPolicy: Always`: it runs to completion before the application starts and \
                 records nothing of its activity, so it does not count.",
                w.display(),
                c.container.name
            ),
            format!(
                "Set `restartPolicy: Always` on init container {} to make it a native sidecar \
                 (Kubernetes 1.29+) that runs alongside the application.",
                c.container.name
            ),
        );
    }
    let mut message = format!(
        "{}: no container or native sidecar runs an approved audit sidecar image (approved \
         images, matched by registry and repository path: {patterns})",
        w.display()
    );
    let look_alikes: Vec<String> = pod
        .spec
        .containers
        .iter()
        .chain(pod.spec.init_containers.iter())
        .filter_map(|c| {
            let image = c.image.as_deref()?;
            cfg.approved_path_elsewhere(image)
                .then(|| format!("{} ({})", c.name, crate::policy::image_repository(image)))
        })
        .collect();
    if !look_alikes.is_empty() {
        message.push_str(&format!(
            "; container(s) {} run an approved repository path from a registry the policy does \
             not approve it from (a look-alike, or a mirror to add to \
             spec.auditSidecar.approvedImages with its registry)",
            look_alikes.join(", ")
        ));
    }
    if cfg.container_names.is_some() {
        let misnamed: Vec<&str> = pod
            .spec
            .containers
            .iter()
            .chain(pod.spec.init_containers.iter())
            .filter(|c| {
                c.image.as_deref().is_some_and(|i| cfg.image_approved(i))
                    && !cfg.name_approved(&c.name)
            })
            .map(|c| c.name.as_str())
            .collect();
        if !misnamed.is_empty() {
            message.push_str(&format!(
                "; container(s) {} run an approved image but their names do not match \
                 spec.auditSidecar.containerNames of the policy",
                misnamed.join(", ")
            ));
        }
    }
    message.push('.');
    let placement = if pod.run_to_completion {
        format!(
            "as a native sidecar (required for Jobs and CronJobs): an entry in \
             `{sp}.initContainers` with `restartPolicy: Always`"
        )
    } else {
        format!(
            "to `{sp}.containers`, or as a native sidecar in `{sp}.initContainers` with \
             `restartPolicy: Always`"
        )
    };
    Finding::new(
        Reason::NoAuditSidecar,
        cfg.mode,
        format!("{sp}.containers"),
        message,
        format!(
            "Add an audit sidecar that ships the application's logs {placement}, running one of the \
             approved images listed above from its registry (a mirror counts once the policy lists \
             it in spec.auditSidecar.approvedImages). If your platform injects it with a mutating \
             webhook, enable the injection for this workload."
        ),
    )
}

/// Can this volume carry logs from the application to the sidecar? Read-only projections
/// cannot, and hostPath never counts (it puts logs on the node's disk).
fn is_log_volume(source: &VolumeSource) -> bool {
    match source {
        VolumeSource::Secret { .. }
        | VolumeSource::SecretWithoutKey { .. }
        | VolumeSource::ConfigMap
        | VolumeSource::DownwardApi
        | VolumeSource::Projected { .. } => false,
        VolumeSource::Other(t) => !matches!(t.as_str(), "hostPath" | "gitRepo" | "image"),
        _ => true,
    }
}

fn shared_volume_finding(
    w: &Object,
    pod: &PodView,
    candidates: &[Candidate],
    targets: &[&Candidate],
    mode: Mode,
) -> Option<Finding> {
    let first = targets.first()?;
    // Application containers: regular containers that are not approved sidecars themselves.
    let sidecar_containers: Vec<usize> = candidates
        .iter()
        .filter(|c| c.placement == Placement::Container)
        .map(|c| c.index)
        .collect();
    let apps: Vec<&Container> = pod
        .spec
        .containers
        .iter()
        .enumerate()
        .filter(|(i, _)| !sidecar_containers.contains(i))
        .map(|(_, c)| c)
        .collect();
    let mut host_path_shared: Vec<&str> = Vec::new();
    // Indexes, not nested scans: a pod with tens of thousands of volumes stays linear.
    let app_mounts: std::collections::HashSet<&str> = apps
        .iter()
        .flat_map(|a| a.volume_mounts.iter().map(|m| m.name.as_str()))
        .collect();
    let volumes: std::collections::HashMap<&str, &crate::object::Volume> = pod
        .spec
        .volumes
        .iter()
        .rev()
        .map(|v| (v.name.as_str(), v))
        .collect();
    for t in targets {
        for m in &t.container.volume_mounts {
            if !app_mounts.contains(m.name.as_str()) {
                continue;
            }
            match volumes.get(m.name.as_str()).copied() {
                Some(v) if matches!(&v.source, VolumeSource::Other(t) if t == "hostPath") => {
                    host_path_shared.push(m.name.as_str());
                }
                Some(v) if is_log_volume(&v.source) => return None,
                _ => {}
            }
        }
    }
    let app_names: Vec<&str> = apps.iter().map(|c| c.name.as_str()).collect();
    let apps_text = if app_names.is_empty() {
        "no application container".to_string()
    } else {
        format!("application container(s) {}", app_names.join(", "))
    };
    let (reason, message) = if host_path_shared.is_empty() {
        (
            Reason::NoSharedLogVolume,
            format!(
            "{}: audit sidecar {} shares no writable log volume with {apps_text}, so it cannot \
             read their log files.",
            w.display(),
            first.describe()
        ),
        )
    } else {
        (
            Reason::HostPathLogVolume,
            format!(
            "{}: audit sidecar {} shares only hostPath volume(s) {} with {apps_text}; hostPath \
             puts PHI logs on the node's disk outside the pod, so it does not count.",
            w.display(),
            first.describe(),
            host_path_shared.join(", ")
        ),
        )
    };
    Some(Finding::new(
        reason,
        mode,
        format!("{}.volumeMounts", first.path(pod.spec_path)),
        message,
        format!(
            "Add a volume such as `{{name: app-logs, emptyDir: {{}}}}` to `{}.volumes` (not \
             hostPath) and mount it in both the application container and the audit sidecar; \
             have the application write its logs there.",
            pod.spec_path
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::{self, assert_names, assert_no_value};
    use crate::object::Kind;
    use crate::policy::{hipaa_baseline, CheckLevel, Policy};
    use crate::verdict::RuleId;
    use serde_json::{json, Value};

    const DIGEST: &str = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn cfg_with(
        digest: CheckLevel,
        shared: CheckLevel,
        names: &[&str],
    ) -> (Policy, AuditSidecarConfig) {
        let mut p = hipaa_baseline();
        p.spec.audit_sidecar.require_digest = digest;
        p.spec.audit_sidecar.require_shared_log_volume = shared;
        p.spec.audit_sidecar.container_names = names.iter().map(|s| s.to_string()).collect();
        let policy = Policy::try_from(&p).expect("valid");
        let cfg = policy.audit_sidecar.clone().expect("enabled");
        (policy, cfg)
    }

    fn baseline() -> (Policy, AuditSidecarConfig) {
        cfg_with(CheckLevel::Warn, CheckLevel::Ignore, &[])
    }

    fn run(w: &Object, policy: &Policy, cfg: &AuditSidecarConfig) -> Vec<Finding> {
        fixtures::judge(w, &ClusterState::new(), policy, |w, ctx| check(w, ctx, cfg))
    }

    fn run_baseline(w: &Object) -> Vec<Finding> {
        let (p, c) = baseline();
        run(w, &p, &c)
    }

    fn pod_spec(kind: Kind, spec: Value) -> Object {
        let value = match kind {
            Kind::Pod => json!({"metadata": {"name": "api"}, "spec": spec}),
            Kind::CronJob => json!({"metadata": {"name": "api"}, "spec": {"jobTemplate": {"spec": {
                "template": {"spec": spec}}}}}),
            _ => json!({"metadata": {"name": "api"}, "spec": {"template": {"spec": spec}}}),
        };
        Object::from_value(kind, &value, Some("phi")).expect("workload")
    }

    fn app() -> Value {
        json!({"name": "app", "image": "registry.example.com/app:1",
               "env": [{"name": "DB_PASSWORD", "value": "hunter2-secret"}]})
    }

    fn fluent(image: &str) -> Value {
        json!({"name": "fluent-bit", "image": image})
    }

    fn native(image: &str) -> Value {
        json!({"name": "fluent-bit", "image": image, "restartPolicy": "Always"})
    }

    #[test]
    fn pinned_sidecar_container_is_compliant() {
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app(), fluent(&format!("fluent/fluent-bit:3.1{DIGEST}"))]}),
        );
        assert_eq!(run_baseline(&w), vec![]);
    }

    #[test]
    fn missing_sidecar_lists_the_approved_patterns() {
        let w = pod_spec(Kind::Deployment, json!({"containers": [app()]}));
        let f = run_baseline(&w);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, RuleId::AuditSidecar);
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].path, "spec.template.spec.containers");
        assert_eq!(f[0].reason, Reason::NoAuditSidecar);
        assert_names(&f[0].message, "phi/api");
        let (_, cfg) = baseline();
        assert!(!cfg.approved_image_patterns.is_empty());
        for p in &cfg.approved_image_patterns {
            assert_names(&f[0].message, p);
        }
        for text in [&f[0].message, &f[0].remediation] {
            assert_no_value(text, "hunter2");
        }
    }

    #[test]
    fn native_sidecar_counts_for_pods_and_controllers() {
        for kind in [
            Kind::Pod,
            Kind::Deployment,
            Kind::StatefulSet,
            Kind::Job,
            Kind::CronJob,
        ] {
            let w = pod_spec(
                kind,
                json!({"containers": [app()],
                       "initContainers": [native(&format!("timberio/vector:0.40{DIGEST}"))]}),
            );
            assert_eq!(run_baseline(&w), vec![], "{kind}");
        }
    }

    #[test]
    fn jobs_need_a_native_sidecar() {
        let w = pod_spec(
            Kind::Job,
            json!({"containers": [app(), fluent(&format!("fluent/fluent-bit:3{DIGEST}"))]}),
        );
        let f = run_baseline(&w);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].path, "spec.template.spec.containers[1]");
        assert_eq!(
            f[0].reason,
            crate::verdict::Reason::SidecarBlocksCompletion,
            "{}",
            f[0].message
        );
        // Where to move it, and the field that makes it a native sidecar.
        assert_names(&f[0].remediation, "spec.template.spec.initContainers");
        assert_names(&f[0].remediation, "restartPolicy");
    }

    #[test]
    fn cronjobs_need_a_native_sidecar_with_the_cronjob_path() {
        let w = pod_spec(
            Kind::CronJob,
            json!({"containers": [app(), fluent("fluent/fluent-bit:3")]}),
        );
        let f = run_baseline(&w);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(
            f[0].path,
            "spec.jobTemplate.spec.template.spec.containers[1]"
        );
        assert_eq!(f[0].mode, Mode::Enforce);
        // The misplaced sidecar is also told about its digest, in the same round trip.
        assert_eq!(
            f[1].path,
            "spec.jobTemplate.spec.template.spec.containers[1].image"
        );
        assert_eq!(f[1].mode, Mode::Warn);
    }

    #[test]
    fn regular_sidecar_container_is_fine_outside_jobs() {
        let w = pod_spec(
            Kind::DaemonSet,
            json!({"containers": [app(), fluent(&format!("fluent/fluent-bit{DIGEST}"))]}),
        );
        assert_eq!(run_baseline(&w), vec![]);
    }

    #[test]
    fn plain_init_container_does_not_count() {
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app()],
                   "initContainers": [fluent(&format!("fluent/fluent-bit{DIGEST}"))]}),
        );
        let f = run_baseline(&w);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Enforce);
        assert_eq!(f[0].path, "spec.initContainers[0].restartPolicy");
        assert_eq!(f[0].reason, Reason::InitSidecarNotRestarting);
        assert_names(&f[0].remediation, "fluent-bit");
        assert_names(&f[0].remediation, "restartPolicy");

        // restartPolicy on a regular init container set to something else is not a sidecar.
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app()], "initContainers": [{
                "name": "fluent-bit", "image": "fluent/fluent-bit", "restartPolicy": "OnFailure"}]}),
        );
        assert!(run_baseline(&w).iter().any(|f| f.mode == Mode::Enforce));
    }

    #[test]
    fn images_are_approved_by_registry_and_path_tag_and_digest_ignored() {
        for image in [
            "cr.fluentbit.io/fluent/fluent-bit:3.1.4",
            "fluent/fluent-bit:3@sha256:0",
            "index.docker.io/fluent/fluent-bit",
            "docker.io/otel/opentelemetry-collector-contrib:0.110.0",
            "otel/opentelemetry-collector-k8s",
            "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib:0.110.0",
            "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0",
            "bitnami/fluent-bit:3.1.9",
        ] {
            let w = pod_spec(Kind::Pod, json!({"containers": [app(), fluent(image)]}));
            let f = run_baseline(&w);
            assert!(f.iter().all(|f| f.mode != Mode::Enforce), "{image}: {f:?}");
        }
        for image in [
            "fluent/fluent-bit-evil:1",
            "evil/fluent-bit:1",
            "nginx:1.27",
            "registry.example.com:5000/vector:1",
            // The same path on another registry is a look-alike, not Fluent Bit.
            "evil.example.com/fluent/fluent-bit:3.1",
            "registry.example.com:5000/mirror/fluent/fluent-bit:3",
        ] {
            let w = pod_spec(Kind::Pod, json!({"containers": [app(), fluent(image)]}));
            let f = run_baseline(&w);
            assert_eq!(f.len(), 1, "{image}");
            assert_eq!(f[0].path, "spec.containers", "{image}");
            assert_eq!(f[0].rule.citation(), "45 CFR 164.312(b)");
        }
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app(), fluent("evil.example.com/fluent/fluent-bit:3.1")]}),
        );
        let f = run_baseline(&w);
        // The look-alike container and its repository, the policy field a mirror goes in, and
        // the approved registries of that path.
        assert_eq!(f[0].reason, Reason::NoAuditSidecar);
        for named in [
            "fluent-bit",
            "evil.example.com/fluent/fluent-bit",
            "spec.auditSidecar.approvedImages",
            "cr.fluentbit.io/fluent/fluent-bit",
        ] {
            assert_names(&f[0].message, named);
        }
    }

    #[test]
    fn unpinned_image_is_a_warning_naming_the_container() {
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app()], "initContainers": [native("fluent/fluent-bit:3.1")]}),
        );
        let f = run_baseline(&w);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Warn);
        assert_eq!(f[0].path, "spec.initContainers[0].image");
        assert_names(&f[0].message, "fluent-bit");
        assert_eq!(
            f[0].reason,
            crate::verdict::Reason::SidecarNotPinned,
            "{}",
            f[0].message
        );

        // A malformed digest is not a pin.
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app(), fluent("fluent/fluent-bit@sha256:abc")]}),
        );
        let f = run_baseline(&w);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "spec.containers[1].image");

        // Digest check off: nothing.
        let (p, c) = cfg_with(CheckLevel::Ignore, CheckLevel::Ignore, &[]);
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app(), fluent("fluent/fluent-bit")]}),
        );
        assert_eq!(run(&w, &p, &c), vec![]);
    }

    #[test]
    fn digest_enforce_level_follows_the_rule_mode() {
        let (p, c) = cfg_with(CheckLevel::Enforce, CheckLevel::Ignore, &[]);
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app(), fluent("fluent/fluent-bit")]}),
        );
        let f = run(&w, &p, &c);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].mode, Mode::Enforce);
    }

    #[test]
    fn container_name_patterns() {
        let (p, c) = cfg_with(CheckLevel::Ignore, CheckLevel::Ignore, &["audit-*"]);
        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app(), fluent("fluent/fluent-bit")]}),
        );
        let f = run(&w, &p, &c);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "spec.containers");
        // The approved image under a name the policy does not accept: both are named.
        assert_eq!(f[0].reason, Reason::NoAuditSidecar);
        assert_names(&f[0].message, "fluent-bit");
        assert_names(&f[0].message, "spec.auditSidecar.containerNames");

        let w = pod_spec(
            Kind::Pod,
            json!({"containers": [app(), {"name": "audit-logs", "image": "fluent/fluent-bit"}]}),
        );
        assert_eq!(run(&w, &p, &c), vec![]);
    }

    fn with_volumes(sidecar_mounts: Value, app_mounts: Value, volumes: Value) -> Object {
        pod_spec(
            Kind::Pod,
            json!({
                "containers": [
                    {"name": "app", "image": "app:1", "volumeMounts": app_mounts},
                    {"name": "fluent-bit", "image": "fluent/fluent-bit", "volumeMounts": sidecar_mounts},
                ],
                "volumes": volumes,
            }),
        )
    }

    #[test]
    fn shared_empty_dir_log_volume_is_compliant() {
        let (p, c) = cfg_with(CheckLevel::Ignore, CheckLevel::Enforce, &[]);
        let w = with_volumes(
            json!([{"name": "logs", "mountPath": "/var/log/app"}]),
            json!([{"name": "logs", "mountPath": "/logs"}]),
            json!([{"name": "logs", "emptyDir": {}}]),
        );
        assert_eq!(run(&w, &p, &c), vec![]);
    }

    #[test]
    fn shared_host_path_does_not_count() {
        let (p, c) = cfg_with(CheckLevel::Ignore, CheckLevel::Warn, &[]);
        let w = with_volumes(
            json!([{"name": "node-logs", "mountPath": "/var/log"}]),
            json!([{"name": "node-logs", "mountPath": "/var/log"}]),
            json!([{"name": "node-logs", "hostPath": {"path": "/var/log"}}]),
        );
        let f = run(&w, &p, &c);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].mode, Mode::Warn);
        assert_eq!(f[0].path, "spec.containers[1].volumeMounts");
        assert_eq!(f[0].reason, Reason::HostPathLogVolume);
        assert_names(&f[0].message, "node-logs");
        assert_names(&f[0].remediation, "emptyDir");
    }

    #[test]
    fn unshared_or_read_only_volumes_do_not_count() {
        let (p, c) = cfg_with(CheckLevel::Ignore, CheckLevel::Enforce, &[]);
        // Each mounts its own volume.
        let w = with_volumes(
            json!([{"name": "a", "mountPath": "/a"}]),
            json!([{"name": "b", "mountPath": "/b"}]),
            json!([{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]),
        );
        let f = run(&w, &p, &c);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, Reason::NoSharedLogVolume);
        assert_names(&f[0].message, "app");
        // A shared ConfigMap is configuration, not a log volume.
        let w = with_volumes(
            json!([{"name": "conf", "mountPath": "/etc/fb"}]),
            json!([{"name": "conf", "mountPath": "/etc/app"}]),
            json!([{"name": "conf", "configMap": {"name": "c"}}]),
        );
        assert_eq!(run(&w, &p, &c).len(), 1);
        // Sharing with another approved sidecar is not sharing with the application.
        let w = pod_spec(
            Kind::Pod,
            json!({
                "containers": [
                    {"name": "app", "image": "app:1"},
                    {"name": "fluent-bit", "image": "fluent/fluent-bit", "volumeMounts": [{"name": "l", "mountPath": "/l"}]},
                    {"name": "vector", "image": "timberio/vector", "volumeMounts": [{"name": "l", "mountPath": "/l"}]},
                ],
                "volumes": [{"name": "l", "emptyDir": {}}],
            }),
        );
        assert_eq!(run(&w, &p, &c).len(), 1);
    }

    #[test]
    fn shared_volume_with_native_sidecar_and_pvc() {
        let (p, c) = cfg_with(CheckLevel::Ignore, CheckLevel::Enforce, &[]);
        let w = pod_spec(
            Kind::Job,
            json!({
                "containers": [{"name": "batch", "image": "app:1", "volumeMounts": [{"name": "l", "mountPath": "/l"}]}],
                "initContainers": [{"name": "otel", "image": "otel/opentelemetry-collector-contrib:0.1",
                    "restartPolicy": "Always", "volumeMounts": [{"name": "l", "mountPath": "/l"}]}],
                "volumes": [{"name": "l", "persistentVolumeClaim": {"claimName": "logs"}}],
            }),
        );
        assert_eq!(run(&w, &p, &c), vec![]);
    }

    #[test]
    fn non_pod_objects_are_ignored() {
        let w = Object::from_value(
            Kind::PersistentVolumeClaim,
            &json!({"metadata": {"name": "data"}, "spec": {}}),
            Some("phi"),
        )
        .expect("pvc");
        assert_eq!(run_baseline(&w), vec![]);
    }
}
