//! The optional safeguards beyond the four requirements: least privilege, integrity,
//! entity authentication and contingency. Their PhiPolicy sections (documented for
//! `kubectl explain`) and the validated settings the rules run with.
//!
//! All four are off in the built-in `hipaa-baseline` (and in any policy that does not enable
//! them): turning them on as Warn would add warnings to every admission of every existing PHI
//! workload and turn compliant objects into `warn` results in PolicyReports and the policies'
//! audit counts, which is a change of behaviour an upgrade must not bring. A policy enables each
//! with `enabled: true` and may set its own `mode` like the other rules.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_level::CheckLevel;
use super::{sub_check_mode, PolicyError};
use crate::verdict::Mode;

fn enforce() -> CheckLevel {
    CheckLevel::Enforce
}

fn two() -> i32 {
    2
}

/// Least privilege settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeastPrivilegeSpec {
    /// Whether this rule runs. Default false (off in hipaa-baseline).
    #[serde(default)]
    pub enabled: bool,
    /// Overrides the policy mode for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// PHI pods meet the Pod Security Standard "restricted" profile (the baseline controls plus
    /// allowPrivilegeEscalation false, runAsNonRoot, no root UID, seccomp RuntimeDefault or
    /// Localhost, capabilities dropping ALL and adding at most NET_BIND_SERVICE, restricted
    /// volume types) in containers, initContainers and ephemeralContainers, with pod-level
    /// settings inherited exactly as the standard defines. A pod in a Namespace labeled
    /// `pod-security.kubernetes.io/enforce: restricted` passes: the API server's Pod Security
    /// admission enforces the same profile (its exemptions are not visible to phi-guard).
    /// Default Enforce.
    #[serde(default = "enforce")]
    pub pod_security: CheckLevel,
    /// The pod sets `automountServiceAccountToken: false`. Unset counts as mounted (Kubernetes'
    /// default; the ServiceAccount's own setting is not read). Ignore to allow automounted
    /// tokens. Default Enforce.
    #[serde(default = "enforce")]
    pub service_account_token: CheckLevel,
    /// The pod names its own ServiceAccount, not `default`. Default Enforce.
    #[serde(default = "enforce")]
    pub default_service_account: CheckLevel,
}

impl Default for LeastPrivilegeSpec {
    fn default() -> Self {
        LeastPrivilegeSpec {
            enabled: false,
            mode: None,
            pod_security: CheckLevel::Enforce,
            service_account_token: CheckLevel::Enforce,
            default_service_account: CheckLevel::Enforce,
        }
    }
}

/// Integrity settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegritySpec {
    /// Whether this rule runs. Default false (off in hipaa-baseline).
    #[serde(default)]
    pub enabled: bool,
    /// Overrides the policy mode for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Every container image (containers, initContainers, ephemeralContainers; not only the
    /// audit sidecar) is pinned by `@sha256:` digest. Default Enforce.
    #[serde(default = "enforce")]
    pub require_digest: CheckLevel,
    /// Every container sets `securityContext.readOnlyRootFilesystem: true`. Default Enforce.
    #[serde(default = "enforce")]
    pub read_only_root_filesystem: CheckLevel,
}

impl Default for IntegritySpec {
    fn default() -> Self {
        IntegritySpec {
            enabled: false,
            mode: None,
            require_digest: CheckLevel::Enforce,
            read_only_root_filesystem: CheckLevel::Enforce,
        }
    }
}

/// Person or entity authentication settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityAuthenticationSpec {
    /// Whether this rule runs. Default false (off in hipaa-baseline). When on, a PHI pod that is
    /// meshed (Istio sidecar or ambient, Linkerd; detected as for encryption in transit) must be
    /// selected by an authorization policy of its mesh: an Istio `AuthorizationPolicy`
    /// (security.istio.io, action ALLOW, no rule that allows everything) selecting the pod by
    /// `selector.matchLabels`, namespace-wide (no selector) or mesh-wide (no selector, in the
    /// Istio root namespace, `encryptionInTransit.istioRootNamespace`); or a Linkerd
    /// `AuthorizationPolicy` (policy.linkerd.io) requiring a `MeshTLSAuthentication` and
    /// targeting the pod's Namespace or a `Server` whose podSelector selects the pod. Unmeshed
    /// pods are not judged by this rule.
    #[serde(default)]
    pub enabled: bool,
    /// Overrides the policy mode for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// Contingency plan settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContingencySpec {
    /// Whether this rule runs. Default false (off in hipaa-baseline).
    #[serde(default)]
    pub enabled: bool,
    /// Overrides the policy mode for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The fewest `spec.replicas` a PHI Deployment or StatefulSet may run (unset replicas count
    /// as 1, the API server's default). Bare Pods and other controllers are not judged for
    /// replicas. Default 2.
    #[serde(default = "two")]
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// A policy/v1 PodDisruptionBudget in the namespace selects the pods of a PHI Deployment or
    /// StatefulSet (one with `minAvailable: 0` or `maxUnavailable: 100%` protects nothing).
    /// Default Enforce.
    #[serde(default = "enforce")]
    pub pod_disruption_budget: CheckLevel,
    /// When Velero is installed (its Schedule CRD is served): a Velero `Schedule` (not paused)
    /// covers the PHI workload's namespace (`spec.template.includedNamespaces` empty, `*` or
    /// naming it, not in `excludedNamespaces`, its labelSelector matching the pods), and no PHI
    /// volume is excluded from backup (pod annotation `backup.velero.io/backup-volumes-excludes`
    /// naming a claim-backed volume; label `velero.io/exclude-from-backup: "true"` on the
    /// workload, its pods, their claims or the Namespace). Judged for every PHI workload kind.
    /// Default Enforce.
    #[serde(default = "enforce")]
    pub backup: CheckLevel,
}

impl Default for ContingencySpec {
    fn default() -> Self {
        ContingencySpec {
            enabled: false,
            mode: None,
            min_replicas: 2,
            pod_disruption_budget: CheckLevel::Enforce,
            backup: CheckLevel::Enforce,
        }
    }
}

/// Validated least-privilege settings (`None`: the sub-check is off).
#[derive(Debug, Clone)]
pub struct LeastPrivilegeConfig {
    pub mode: Mode,
    pub pod_security: Option<Mode>,
    pub service_account_token: Option<Mode>,
    pub default_service_account: Option<Mode>,
}

/// Validated integrity settings.
#[derive(Debug, Clone)]
pub struct IntegrityConfig {
    pub mode: Mode,
    pub require_digest: Option<Mode>,
    pub read_only_root_filesystem: Option<Mode>,
}

/// Validated entity-authentication settings.
#[derive(Debug, Clone)]
pub struct EntityAuthenticationConfig {
    pub mode: Mode,
}

/// Validated contingency settings.
#[derive(Debug, Clone)]
pub struct ContingencyConfig {
    pub mode: Mode,
    pub min_replicas: i32,
    pub pod_disruption_budget: Option<Mode>,
    pub backup: Option<Mode>,
}

/// The validated safeguards of one policy.
#[derive(Debug, Clone, Default)]
pub struct Safeguards {
    pub least_privilege: Option<LeastPrivilegeConfig>,
    pub integrity: Option<IntegrityConfig>,
    pub entity_authentication: Option<EntityAuthenticationConfig>,
    pub contingency: Option<ContingencyConfig>,
}

/// Validate the four sections (`policy_mode`: the policy's mode, the default of each rule).
pub(super) fn parse(
    policy: &str,
    policy_mode: Mode,
    lp: &LeastPrivilegeSpec,
    it: &IntegritySpec,
    ea: &EntityAuthenticationSpec,
    co: &ContingencySpec,
) -> Result<Safeguards, PolicyError> {
    let least_privilege = lp.enabled.then(|| {
        let mode = lp.mode.unwrap_or(policy_mode);
        LeastPrivilegeConfig {
            mode,
            pod_security: sub_check_mode(mode, lp.pod_security),
            service_account_token: sub_check_mode(mode, lp.service_account_token),
            default_service_account: sub_check_mode(mode, lp.default_service_account),
        }
    });
    let integrity = it.enabled.then(|| {
        let mode = it.mode.unwrap_or(policy_mode);
        IntegrityConfig {
            mode,
            require_digest: sub_check_mode(mode, it.require_digest),
            read_only_root_filesystem: sub_check_mode(mode, it.read_only_root_filesystem),
        }
    });
    let entity_authentication = ea.enabled.then(|| EntityAuthenticationConfig {
        mode: ea.mode.unwrap_or(policy_mode),
    });
    let contingency = if co.enabled {
        if co.min_replicas < 1 {
            return Err(PolicyError {
                policy: policy.to_string(),
                field: "spec.contingency.minReplicas".into(),
                message: "must be at least 1".into(),
            });
        }
        let mode = co.mode.unwrap_or(policy_mode);
        Some(ContingencyConfig {
            mode,
            min_replicas: co.min_replicas,
            pod_disruption_budget: sub_check_mode(mode, co.pod_disruption_budget),
            backup: sub_check_mode(mode, co.backup),
        })
    } else {
        None
    };
    Ok(Safeguards {
        least_privilege,
        integrity,
        entity_authentication,
        contingency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{hipaa_baseline, PhiPolicySpec, Policy};

    #[test]
    fn baseline_keeps_every_safeguard_off() {
        let p = Policy::try_from(&hipaa_baseline()).expect("valid");
        assert!(p.safeguards.least_privilege.is_none());
        assert!(p.safeguards.integrity.is_none());
        assert!(p.safeguards.entity_authentication.is_none());
        assert!(p.safeguards.contingency.is_none());
        for r in [
            crate::verdict::RuleId::LeastPrivilege,
            crate::verdict::RuleId::Integrity,
            crate::verdict::RuleId::EntityAuthentication,
            crate::verdict::RuleId::Contingency,
        ] {
            assert!(!p.rule_enabled(r), "{r:?}");
        }
    }

    #[test]
    fn enabled_rules_take_their_own_mode_and_sub_checks_stay_below_it() {
        let spec: PhiPolicySpec = serde_json::from_value(serde_json::json!({
            "mode": "Enforce",
            "leastPrivilege": {"enabled": true, "mode": "Warn", "serviceAccountToken": "Ignore"},
            "integrity": {"enabled": true, "requireDigest": "Audit"},
            "entityAuthentication": {"enabled": true},
            "contingency": {"enabled": true, "minReplicas": 3, "backup": "Warn"},
        }))
        .expect("spec");
        let p = Policy::from_spec("p", &spec).expect("valid");
        let lp = p.safeguards.least_privilege.expect("on");
        assert_eq!(lp.mode, Mode::Warn);
        assert_eq!(lp.pod_security, Some(Mode::Warn));
        assert_eq!(lp.service_account_token, None);
        let it = p.safeguards.integrity.expect("on");
        assert_eq!(it.require_digest, Some(Mode::Audit));
        assert_eq!(it.read_only_root_filesystem, Some(Mode::Enforce));
        assert_eq!(
            p.safeguards.entity_authentication.map(|c| c.mode),
            Some(Mode::Enforce)
        );
        let co = p.safeguards.contingency.expect("on");
        assert_eq!(co.min_replicas, 3);
        assert_eq!(co.pod_disruption_budget, Some(Mode::Enforce));
        assert_eq!(co.backup, Some(Mode::Warn));

        let mut spec = PhiPolicySpec::default();
        spec.contingency.enabled = true;
        spec.contingency.min_replicas = 0;
        let err = Policy::from_spec("p", &spec).unwrap_err();
        assert_eq!(err.field, "spec.contingency.minReplicas");
    }
}
