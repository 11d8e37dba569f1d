use serde_json::{json, Value};

use super::*;
use crate::cluster::ClusterState;
use crate::fixtures::*;
use crate::object::Kind;
use crate::policy::CheckLevel;

fn policy(f: impl FnOnce(&mut crate::policy::PhiPolicySpec)) -> crate::policy::Policy {
    policy_with(|s| {
        s.least_privilege.enabled = true;
        f(s)
    })
}

fn run_in(state: &ClusterState, w: &Object, p: &crate::policy::Policy) -> Vec<Finding> {
    let cfg = p.safeguards.least_privilege.clone().expect("on");
    judge(w, state, p, |w, ctx| check(w, ctx, &cfg))
}

fn paths(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.path.as_str()).collect()
}

/// A container hardened as the restricted profile asks.
fn hardened(name: &str) -> Value {
    json!({"name": name, "image": "registry.example.com/api:1",
           "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
}

/// A pod spec that meets restricted with pod-level runAsNonRoot and seccomp.
fn restricted_spec() -> Value {
    json!({
        "serviceAccountName": "api",
        "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [hardened("migrate")],
        "containers": [hardened("app")],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "tmp", "emptyDir": {}}],
    })
}

#[test]
fn a_restricted_pod_with_its_own_service_account_passes() {
    let w = deployment("phi", json!({}), json!({"app": "api"}), restricted_spec());
    assert_eq!(
        run_in(&ClusterState::new(), &w, &policy(|_| {})),
        Vec::new()
    );
}

#[test]
fn container_fields_may_replace_pod_fields_as_the_standard_allows() {
    let mut spec = restricted_spec();
    spec["securityContext"] = json!({});
    for c in ["containers", "initContainers"] {
        spec[c][0]["securityContext"]["runAsNonRoot"] = json!(true);
        spec[c][0]["securityContext"]["seccompProfile"] =
            json!({"type": "Localhost", "localhostProfile": "p.json"});
    }
    let w = deployment("phi", json!({}), json!({"app": "api"}), spec.clone());
    assert_eq!(
        run_in(&ClusterState::new(), &w, &policy(|_| {})),
        Vec::new()
    );

    // Only one container covered: the other one is a finding for each field.
    spec["initContainers"][0]["securityContext"] = hardened("migrate")["securityContext"].clone();
    let w = deployment("phi", json!({}), json!({"app": "api"}), spec);
    let f = run_in(&ClusterState::new(), &w, &policy(|_| {}));
    assert_eq!(
        paths(&f),
        [
            "spec.template.spec.initContainers[0].securityContext.runAsNonRoot",
            "spec.template.spec.initContainers[0].securityContext.seccompProfile",
        ]
    );
}

#[test]
fn every_restricted_control_is_reported_with_its_field() {
    let pod = object(
        Kind::Pod,
        Some("phi"),
        json!({
            "metadata": {"name": "api", "annotations": {
                "container.apparmor.security.beta.kubernetes.io/app": "unconfined"}},
            "spec": {
                "hostNetwork": true, "hostPID": true, "hostIPC": true,
                "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"},
                                    "sysctls": [{"name": "kernel.msgmax", "value": "65536"}],
                                    "seLinuxOptions": {"type": "spc_t"}},
                "containers": [{"name": "app", "image": "app:1",
                    "ports": [{"containerPort": 8443, "hostPort": 8443}],
                    "securityContext": {"privileged": true, "allowPrivilegeEscalation": true,
                        "runAsNonRoot": false, "procMount": "Unmasked",
                        "capabilities": {"add": ["NET_ADMIN", "NET_BIND_SERVICE"]}}}],
                "ephemeralContainers": [{"name": "debug", "image": "busybox",
                    "securityContext": {"capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": false,
                                        "seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": true}}],
                "volumes": [{"name": "host", "hostPath": {"path": "/var/lib/app"}}],
            }
        }),
    );
    let f = run_in(&ClusterState::new(), &pod, &policy(|_| {}));
    let p = paths(&f);
    for want in [
        "spec.hostNetwork",
        "spec.hostPID",
        "spec.hostIPC",
        "spec.volumes[0]",
        "spec.securityContext.seLinuxOptions.type",
        "metadata.annotations",
        "spec.securityContext.sysctls",
        "spec.securityContext.runAsUser",
        "spec.securityContext.seccompProfile.type",
        "spec.containers[0].securityContext.privileged",
        "spec.containers[0].ports[0].hostPort",
        "spec.containers[0].securityContext.procMount",
        "spec.containers[0].securityContext.runAsNonRoot",
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
        "spec.containers[0].securityContext.seccompProfile",
        "spec.containers[0].securityContext.capabilities.drop",
        "spec.containers[0].securityContext.capabilities.add",
        "spec.automountServiceAccountToken",
        "spec.serviceAccountName",
    ] {
        assert!(p.contains(&want), "missing {want} in {p:#?}");
    }
    // The ephemeral container is hardened itself; the pod's Unconfined seccomp is reported
    // once, at the pod.
    assert!(
        !p.iter().any(|p| p.starts_with("spec.ephemeralContainers")),
        "{p:#?}"
    );
    assert!(f.iter().all(|f| f.rule == RuleId::LeastPrivilege
        && f.citation == "45 CFR 164.308(a)(3), (a)(4); 164.312(a)(1)"));
    // No values: neither the sysctl, the capability nor the path of the hostPath volume.
    for f in &f {
        for secret in [
            "kernel.msgmax",
            "NET_ADMIN",
            "/var/lib/app",
            "spc_t",
            "8443",
        ] {
            assert!(!f.message.contains(secret), "{}", f.message);
        }
    }
}

#[test]
fn ephemeral_debug_containers_are_judged_too() {
    let mut spec = restricted_spec();
    spec["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox",
        "securityContext": {"privileged": true}}]);
    let pod = object(
        Kind::Pod,
        Some("phi"),
        json!({"metadata": {"name": "api"}, "spec": spec}),
    );
    let f = run_in(&ClusterState::new(), &pod, &policy(|_| {}));
    assert_eq!(
        paths(&f),
        [
            "spec.ephemeralContainers[0].securityContext.privileged",
            "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
            "spec.ephemeralContainers[0].securityContext.capabilities.drop",
        ]
    );
}

#[test]
fn a_namespace_enforcing_restricted_passes_the_profile_but_not_the_service_account_checks() {
    let state = ClusterState::new();
    add_namespace(
        &state,
        "phi",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        json!({}),
    );
    add_namespace(
        &state,
        "baseline",
        json!({"pod-security.kubernetes.io/enforce": "baseline"}),
        json!({}),
    );
    let spec = json!({"containers": [{"name": "app", "image": "app:1"}]});
    let w = deployment("phi", json!({}), json!({"app": "api"}), spec.clone());
    let f = run_in(&state, &w, &policy(|_| {}));
    assert_eq!(
        paths(&f),
        [
            "spec.template.spec.automountServiceAccountToken",
            "spec.template.spec.serviceAccountName"
        ]
    );
    let w = deployment("baseline", json!({}), json!({"app": "api"}), spec);
    assert!(run_in(&state, &w, &policy(|_| {})).len() > 2);
}

#[test]
fn the_policy_decides_about_tokens_and_modes() {
    let mut spec = restricted_spec();
    spec["automountServiceAccountToken"] = json!(true);
    spec["serviceAccountName"] = json!("default");
    let w = deployment("phi", json!({}), json!({"app": "api"}), spec);
    let f = run_in(&ClusterState::new(), &w, &policy(|_| {}));
    assert_eq!(f.len(), 2);
    assert!(f.iter().all(|f| f.mode == Mode::Enforce));
    let p = policy(|s| {
        s.least_privilege.service_account_token = CheckLevel::Ignore;
        s.least_privilege.mode = Some(Mode::Warn);
    });
    let f = run_in(&ClusterState::new(), &w, &p);
    assert_eq!(paths(&f), ["spec.template.spec.serviceAccountName"]);
    assert_eq!(f[0].mode, Mode::Warn);
}

#[test]
fn windows_pods_are_exempt_from_linux_only_controls() {
    let pod = object(
        Kind::Pod,
        Some("phi"),
        json!({"metadata": {"name": "api"}, "spec": {
            "os": {"name": "windows"}, "serviceAccountName": "api", "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "app", "image": "app:1"}]}}),
    );
    assert_eq!(
        run_in(&ClusterState::new(), &pod, &policy(|_| {})),
        Vec::new()
    );
}
