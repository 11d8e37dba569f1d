//! The `integrity` rule (45 CFR 164.312(c)(1)): every container image of a PHI pod (app
//! containers, init containers, native sidecars and ephemeral debug containers alike, not only
//! the audit sidecar) is pinned by `@sha256:` digest, so what runs is what was reviewed; every
//! container's root filesystem is read-only, so a compromised process cannot change the code
//! that handles ePHI.

use crate::object::Object;
use crate::policy::{image_has_digest, IntegrityConfig};
use crate::rules::least_privilege::all_containers;
use crate::rules::RuleContext;
use crate::verdict::{Finding, Reason};

/// Every integrity finding for the workload.
pub(crate) fn check(w: &Object, _ctx: &RuleContext, cfg: &IntegrityConfig) -> Vec<Finding> {
    let Some(pod) = w.pods() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, c) in all_containers(pod) {
        if let Some(mode) = cfg.require_digest {
            if !c.image.as_deref().is_some_and(image_has_digest) {
                out.push(Finding::new(
                    Reason::ImageNotPinned,
                    mode,
                    format!("{path}.image"),
                    format!("the image of container {} is not pinned by digest (a tag can be moved to other content)", c.name),
                    "reference the image as repository@sha256:<digest> (tools such as crane digest or kustomize images resolve it)",
                ));
            }
        }
        if let Some(mode) = cfg.read_only_root_filesystem {
            let read_only = c
                .security_context
                .as_ref()
                .is_some_and(|s| s.read_only_root_filesystem == Some(true));
            if !read_only {
                out.push(Finding::new(
                    Reason::WritableRootFilesystem,
                    mode,
                    format!("{path}.securityContext.readOnlyRootFilesystem"),
                    format!("container {} does not set readOnlyRootFilesystem: true", c.name),
                    "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the program must write",
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::*;
    use crate::verdict::Mode;
    use crate::verdict::RuleId;

    const DIGEST: &str = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn run(w: &Object, f: impl FnOnce(&mut crate::policy::PhiPolicySpec)) -> Vec<Finding> {
        let p = policy_with(|s| {
            s.integrity.enabled = true;
            f(s)
        });
        let cfg = p.safeguards.integrity.clone().expect("on");
        judge(w, &ClusterState::new(), &p, |w, ctx| check(w, ctx, &cfg))
    }

    #[test]
    fn every_container_is_pinned_and_read_only() {
        let ro = json!({"readOnlyRootFilesystem": true});
        let pinned = deployment(
            "phi",
            json!({}),
            json!({"app": "api"}),
            json!({
                "initContainers": [{"name": "migrate", "image": format!("ghcr.io/acme/migrate{DIGEST}"), "securityContext": ro},
                                   {"name": "fluent-bit", "image": format!("fluent/fluent-bit:3.1{DIGEST}"), "restartPolicy": "Always", "securityContext": ro}],
                "containers": [{"name": "app", "image": format!("registry.example.com/api:1.2{DIGEST}"), "securityContext": ro}],
            }),
        );
        assert_eq!(run(&pinned, |_| {}), Vec::new());

        let loose = deployment(
            "phi",
            json!({}),
            json!({"app": "api"}),
            json!({
                "initContainers": [{"name": "migrate", "image": "ghcr.io/acme/migrate:latest"}],
                "containers": [{"name": "app", "image": format!("registry.example.com/api:1.2{DIGEST}"),
                                "securityContext": {"readOnlyRootFilesystem": false}},
                               // A digest that is not 64 hex digits pins nothing.
                               {"name": "web", "image": "nginx@sha256:abc", "securityContext": ro}],
                "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
            }),
        );
        let f = run(&loose, |_| {});
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem",
                "spec.template.spec.containers[1].image",
                "spec.template.spec.initContainers[0].image",
                "spec.template.spec.initContainers[0].securityContext.readOnlyRootFilesystem",
                "spec.template.spec.ephemeralContainers[0].image",
                "spec.template.spec.ephemeralContainers[0].securityContext.readOnlyRootFilesystem",
            ]
        );
        assert!(f.iter().all(|f| f.rule == RuleId::Integrity
            && f.citation == "45 CFR 164.312(c)(1)"
            && f.mode == Mode::Enforce));
        // Messages name containers, never image references.
        for f in &f {
            assert_no_value(&f.message, "latest");
            assert_no_value(&f.message, "busybox");
        }

        let digest_only = run(&loose, |s| {
            s.integrity.read_only_root_filesystem = crate::policy::CheckLevel::Ignore;
            s.integrity.mode = Some(Mode::Warn);
        });
        assert_eq!(digest_only.len(), 3);
        assert!(digest_only.iter().all(|f| f.mode == Mode::Warn));
    }

    #[test]
    fn objects_without_pods_are_not_judged() {
        let pvc = object(
            crate::object::Kind::PersistentVolumeClaim,
            Some("phi"),
            json!({"metadata": {"name": "data"}, "spec": {}}),
        );
        assert!(run(&pvc, |_| {}).is_empty());
    }
}
