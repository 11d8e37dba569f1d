//! The `least-privilege` rule (45 CFR 164.308(a)(3), (a)(4); 164.312(a)(1)): PHI pods meet the
//! Pod Security Standard "restricted" profile, or run in a Namespace whose Pod Security
//! admission enforces it; they mount no ServiceAccount token unless the policy allows it; they
//! do not run as the `default` ServiceAccount.
//!
//! The profile is checked as the standard defines it (kubernetes.io/docs/concepts/security/
//! pod-security-standards, "restricted", latest version), in `containers`, `initContainers` and
//! `ephemeralContainers`:
//! - baseline: no `hostNetwork`/`hostPID`/`hostIPC`, no `privileged`, no Windows `hostProcess`,
//!   no `hostPort`, AppArmor not `Unconfined` (field or the beta annotation), SELinux type only
//!   `container_t`/`container_init_t`/`container_kvm_t`/`container_engine_t` and no user or
//!   role, `procMount` Default, only the safe sysctls;
//! - restricted: only the restricted volume types; `allowPrivilegeEscalation: false` on every
//!   container; `runAsNonRoot: true` on the pod (containers may then leave it unset, but not set
//!   it false) or on every container; no `runAsUser: 0` anywhere; seccomp `RuntimeDefault` or
//!   `Localhost` on the pod (containers may then leave it unset, never `Unconfined`) or on every
//!   container; capabilities drop `ALL` and add nothing but `NET_BIND_SERVICE`.
//!
//! Pods with `spec.os.name: windows` are exempt from the privilege-escalation, seccomp and
//! capabilities checks, as in the standard.
//!
//! The Namespace label `pod-security.kubernetes.io/enforce: restricted` passes the profile check
//! (whatever `enforce-version` pins): the API server enforces it before phi-guard is asked. Its
//! exemptions (users, runtime classes, namespaces in the admission configuration) are invisible
//! here; a cluster that exempts PHI workloads should not rely on the label.
//!
//! The ServiceAccount token: only the pod field `automountServiceAccountToken: false` counts.
//! The ServiceAccount's own `automountServiceAccountToken` is not in phi-guard's caches (it
//! watches no ServiceAccounts), so an unset pod field counts as mounted, Kubernetes' default.

use crate::object::security::ContainerSecurityContext;
use crate::object::{Container, Object, PodView};
use crate::policy::{LeastPrivilegeConfig, Mode};
use crate::rules::RuleContext;
use crate::verdict::{Finding, Reason};

/// The Namespace label of Pod Security admission's enforced level.
pub(crate) const PSA_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Volume types of the restricted profile.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// SELinux types the baseline profile allows (besides unset/empty).
const SELINUX_TYPES: [&str; 4] = [
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The sysctls the baseline profile allows.
const SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

struct Out {
    mode: Mode,
    findings: Vec<Finding>,
}

impl Out {
    fn push(&mut self, reason: Reason, path: String, message: String, fix: &str) {
        self.findings
            .push(Finding::new(reason, self.mode, path, message, fix));
    }

    /// A finding whose path is shared by several subjects (one annotation map, many containers).
    fn push_about(
        &mut self,
        subject: &str,
        reason: Reason,
        path: String,
        message: String,
        fix: &str,
    ) {
        self.findings
            .push(Finding::new(reason, self.mode, path, message, fix).about(subject));
    }
}

/// Every container of the pod with its path: containers, initContainers, ephemeralContainers.
pub(crate) fn all_containers<'p>(
    pod: &'p PodView,
) -> impl Iterator<Item = (String, &'p Container)> + 'p {
    let spec = pod.spec_path;
    let list = move |field: &'static str, cs: &'p [Container]| {
        cs.iter()
            .enumerate()
            .map(move |(i, c)| (format!("{spec}.{field}[{i}]"), c))
    };
    list("containers", &pod.spec.containers)
        .chain(list("initContainers", &pod.spec.init_containers))
        .chain(list("ephemeralContainers", &pod.spec.ephemeral_containers))
}

/// Every least-privilege finding for the workload.
pub(crate) fn check(w: &Object, ctx: &RuleContext, cfg: &LeastPrivilegeConfig) -> Vec<Finding> {
    let Some(pod) = w.pods() else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    let namespace_enforces = ctx
        .namespace_labels()
        .and_then(|l| l.get(PSA_ENFORCE_LABEL))
        .is_some_and(|v| v == "restricted");
    if let Some(mode) = cfg.pod_security.filter(|_| !namespace_enforces) {
        let mut out = Out {
            mode,
            findings: Vec::new(),
        };
        pod_security(pod, &mut out);
        findings.extend(out.findings);
    }
    let spec = pod.spec_path;
    if let Some(mode) = cfg.service_account_token {
        if pod.spec.automount_service_account_token != Some(false) {
            findings.push(Finding::new(
                Reason::ServiceAccountToken,
                mode,
                format!("{spec}.automountServiceAccountToken"),
                "the pod does not set automountServiceAccountToken: false, so a ServiceAccount token is mounted into every container (the ServiceAccount's own setting is not read)",
                "set automountServiceAccountToken: false in the pod spec; a pod that calls the Kubernetes API mounts a projected serviceAccountToken volume in the container that needs it, or the policy sets leastPrivilege.serviceAccountToken: Ignore",
            ));
        }
    }
    if let Some(mode) = cfg.default_service_account {
        let sa = pod
            .spec
            .service_account_name
            .as_deref()
            .or(pod.spec.service_account.as_deref())
            .filter(|s| !s.is_empty());
        if sa.is_none_or(|s| s == "default") {
            findings.push(Finding::new(
                Reason::DefaultServiceAccount,
                mode,
                format!("{spec}.serviceAccountName"),
                "the pod runs as the namespace's default ServiceAccount, which every pod without its own shares",
                "create a ServiceAccount for this workload (granted only what it needs) and set serviceAccountName",
            ));
        }
    }
    findings
}

/// The Pod Security "restricted" profile.
fn pod_security(pod: &PodView, out: &mut Out) {
    let spec = pod.spec_path;
    let s = &pod.spec;
    let windows = s.os.as_ref().is_some_and(|o| o.name == "windows");
    let psc = s.security_context.clone().unwrap_or_default();

    for (field, on) in [
        ("hostNetwork", s.host_network),
        ("hostPID", s.host_pid),
        ("hostIPC", s.host_ipc),
    ] {
        if on {
            out.push(
                Reason::HostNamespace,
                format!("{spec}.{field}"),
                format!("the pod sets {field}: true (shares the node's namespace)"),
                "remove the host namespace; PHI pods run in their own network, PID and IPC namespaces",
            );
        }
    }
    for (i, v) in s.volumes.iter().enumerate() {
        let t = v.source.type_name();
        if !RESTRICTED_VOLUMES.contains(&t) {
            out.push(
                Reason::VolumeTypeNotRestricted,
                format!("{spec}.volumes[{i}]"),
                format!("volume {} is of type {t}, outside the restricted profile's volume types", v.name),
                "use configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected or secret volumes",
            );
        }
    }
    let ctx_path = format!("{spec}.securityContext");
    if psc
        .windows_options
        .as_ref()
        .is_some_and(|w| w.host_process == Some(true))
    {
        out.push(
            Reason::HostProcess,
            format!("{ctx_path}.windowsOptions.hostProcess"),
            "the pod sets windowsOptions.hostProcess: true".into(),
            "remove hostProcess; PHI pods do not run as Windows host processes",
        );
    }
    selinux(psc.se_linux_options.as_ref(), &ctx_path, "the pod", out);
    if psc
        .app_armor_profile
        .as_ref()
        .is_some_and(|p| p.kind == "Unconfined")
    {
        out.push(
            Reason::ApparmorUnconfined,
            format!("{ctx_path}.appArmorProfile.type"),
            "the pod sets appArmorProfile.type: Unconfined".into(),
            "use RuntimeDefault or a Localhost AppArmor profile",
        );
    }
    for (key, value) in pod.annotations.iter() {
        if let Some(c) = key.strip_prefix(APPARMOR_ANNOTATION_PREFIX) {
            if value != "runtime/default" && !value.starts_with("localhost/") {
                out.push_about(
                    c,
                    Reason::ApparmorUnconfined,
                    format!("{}.annotations", pod.meta_path),
                    format!("the AppArmor annotation of container {c} is neither runtime/default nor localhost/<profile>"),
                    "use runtime/default or a localhost profile (or securityContext.appArmorProfile)",
                );
            }
        }
    }
    if psc
        .sysctls
        .iter()
        .any(|x| !SAFE_SYSCTLS.contains(&x.name.as_str()))
    {
        out.push(
            Reason::UnsafeSysctl,
            format!("{ctx_path}.sysctls"),
            "the pod sets a sysctl outside the baseline profile's safe set".into(),
            "set only the safe sysctls (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, ...)",
        );
    }
    if psc.run_as_user == Some(0) {
        out.push(
            Reason::RunAsRoot,
            format!("{ctx_path}.runAsUser"),
            "the pod sets runAsUser: 0 (root)".into(),
            "run as a non-zero UID",
        );
    }
    let pod_non_root = psc.run_as_non_root == Some(true);
    if psc.run_as_non_root == Some(false) {
        out.push(
            Reason::RunAsNonRootFalse,
            format!("{ctx_path}.runAsNonRoot"),
            "the pod sets runAsNonRoot: false".into(),
            "set runAsNonRoot: true",
        );
    }
    let seccomp_ok = |k: &str| k == "RuntimeDefault" || k == "Localhost";
    let pod_seccomp = psc.seccomp_profile.as_ref().map(|p| p.kind.as_str());
    if !windows && pod_seccomp.is_some_and(|k| !seccomp_ok(k)) {
        out.push(
            Reason::SeccompNotRestricted,
            format!("{ctx_path}.seccompProfile.type"),
            "the pod's seccomp profile is neither RuntimeDefault nor Localhost".into(),
            "set securityContext.seccompProfile.type: RuntimeDefault",
        );
    }
    let pod_seccomp_ok = pod_seccomp.is_some_and(seccomp_ok);

    for (path, c) in all_containers(pod) {
        let sc = c.security_context.clone().unwrap_or_default();
        let who = format!("container {}", c.name);
        container_baseline(c, &sc, &path, &who, out);
        let cp = format!("{path}.securityContext");
        if sc.run_as_user == Some(0) {
            out.push(
                Reason::RunAsRoot,
                format!("{cp}.runAsUser"),
                format!("{who} sets runAsUser: 0 (root)"),
                "run as a non-zero UID",
            );
        }
        match sc.run_as_non_root {
            Some(true) => {}
            Some(false) => out.push(
                Reason::RunAsNonRootFalse,
                format!("{cp}.runAsNonRoot"),
                format!("{who} sets runAsNonRoot: false"),
                "set runAsNonRoot: true (on the pod or the container)",
            ),
            None if !pod_non_root => out.push(
                Reason::MayRunAsRoot,
                format!("{cp}.runAsNonRoot"),
                format!("{who} may run as root: neither it nor the pod sets runAsNonRoot: true"),
                "set securityContext.runAsNonRoot: true on the pod (or on every container)",
            ),
            None => {}
        }
        if windows {
            continue;
        }
        if sc.allow_privilege_escalation != Some(false) {
            out.push(
                Reason::PrivilegeEscalation,
                format!("{cp}.allowPrivilegeEscalation"),
                format!("{who} does not set allowPrivilegeEscalation: false"),
                "set securityContext.allowPrivilegeEscalation: false",
            );
        }
        match sc.seccomp_profile.as_ref().map(|p| p.kind.as_str()) {
            Some(k) if seccomp_ok(k) => {}
            Some(_) => out.push(
                Reason::SeccompNotRestricted,
                format!("{cp}.seccompProfile.type"),
                format!("{who}'s seccomp profile is neither RuntimeDefault nor Localhost"),
                "set seccompProfile.type: RuntimeDefault",
            ),
            None if !pod_seccomp_ok => out.push(
                Reason::NoSeccompProfile,
                format!("{cp}.seccompProfile"),
                format!("{who} runs without a seccomp profile: neither it nor the pod sets RuntimeDefault or Localhost"),
                "set securityContext.seccompProfile.type: RuntimeDefault on the pod (or on every container)",
            ),
            None => {}
        }
        let caps = sc.capabilities.clone().unwrap_or_default();
        if !caps.drop.iter().any(|d| d == "ALL") {
            out.push(
                Reason::CapabilitiesNotDropped,
                format!("{cp}.capabilities.drop"),
                format!("{who} does not drop ALL capabilities"),
                "set securityContext.capabilities.drop: [ALL]",
            );
        }
        if caps.add.iter().any(|a| a != "NET_BIND_SERVICE") {
            out.push(
                Reason::CapabilitiesAdded,
                format!("{cp}.capabilities.add"),
                format!("{who} adds capabilities other than NET_BIND_SERVICE"),
                "add no capability but NET_BIND_SERVICE",
            );
        }
    }
}

/// The baseline profile's container checks.
fn container_baseline(
    c: &Container,
    sc: &ContainerSecurityContext,
    path: &str,
    who: &str,
    out: &mut Out,
) {
    let cp = format!("{path}.securityContext");
    if sc.privileged == Some(true) {
        out.push(
            Reason::Privileged,
            format!("{cp}.privileged"),
            format!("{who} is privileged"),
            "remove privileged: true",
        );
    }
    if sc
        .windows_options
        .as_ref()
        .is_some_and(|w| w.host_process == Some(true))
    {
        out.push(
            Reason::HostProcess,
            format!("{cp}.windowsOptions.hostProcess"),
            format!("{who} sets windowsOptions.hostProcess: true"),
            "remove hostProcess",
        );
    }
    for (i, p) in c.ports.iter().enumerate() {
        if p.host_port.is_some_and(|h| h != 0) {
            out.push(
                Reason::HostPort,
                format!("{path}.ports[{i}].hostPort"),
                format!("{who} binds a hostPort"),
                "remove hostPort; expose the pod through a Service",
            );
        }
    }
    selinux(sc.se_linux_options.as_ref(), &cp, who, out);
    if sc
        .app_armor_profile
        .as_ref()
        .is_some_and(|p| p.kind == "Unconfined")
    {
        out.push(
            Reason::ApparmorUnconfined,
            format!("{cp}.appArmorProfile.type"),
            format!("{who} sets appArmorProfile.type: Unconfined"),
            "use RuntimeDefault or a Localhost AppArmor profile",
        );
    }
    if sc.proc_mount.as_deref().is_some_and(|m| m != "Default") {
        out.push(
            Reason::ProcMountUnmasked,
            format!("{cp}.procMount"),
            format!("{who} unmasks /proc (procMount other than Default)"),
            "remove procMount",
        );
    }
}

fn selinux(
    o: Option<&crate::object::security::SeLinuxOptions>,
    path: &str,
    who: &str,
    out: &mut Out,
) {
    let Some(o) = o else { return };
    if o.kind
        .as_deref()
        .is_some_and(|t| !t.is_empty() && !SELINUX_TYPES.contains(&t))
    {
        out.push(
            Reason::SelinuxType,
            format!("{path}.seLinuxOptions.type"),
            format!("{who} sets an SELinux type outside container_t, container_init_t, container_kvm_t, container_engine_t"),
            "remove seLinuxOptions.type or use container_t",
        );
    }
    if o.user.as_deref().is_some_and(|u| !u.is_empty())
        || o.role.as_deref().is_some_and(|r| !r.is_empty())
    {
        out.push(
            Reason::SelinuxUserRole,
            format!("{path}.seLinuxOptions"),
            format!("{who} sets an SELinux user or role"),
            "remove seLinuxOptions.user and seLinuxOptions.role",
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::*;
    use crate::object::Kind;
    use crate::policy::CheckLevel;
    use crate::verdict::RuleId;

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
        spec["initContainers"][0]["securityContext"] =
            hardened("migrate")["securityContext"].clone();
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
                assert_no_value(&f.message, secret);
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
}
