//! PHI policies: the PhiPolicy CRD, the built-in hipaa-baseline, and the one validating parser
//! that turns a spec into the [`Policy`] the engine runs (used by the webhook, `check` and policy
//! status alike).

mod check_level;
pub mod crd;
pub mod exception;
mod images;
mod safeguards;
pub(crate) mod scope;
mod set;
pub mod webhooks;

use std::collections::BTreeSet;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use kube::api::ObjectMeta;

pub use crd::{
    AuditSidecarSpec, CheckLevel, DefaultDenyStatus, EncryptionAtRestSpec, EncryptionInTransitSpec,
    Mode, NamespaceLabeling, NetworkSegmentationSpec, NotIsolated, PhiPolicy, PhiPolicySpec,
    PhiPolicyStatus, ProvisionerMatcher, ScopeSpec, TransitEvidence, UpdateMode,
};

use crate::selector::{Labels, Selector};

pub use safeguards::{
    ContingencyConfig, EntityAuthenticationConfig, IntegrityConfig, LeastPrivilegeConfig,
    Safeguards,
};

pub use images::{
    default_sidecar_images, image_has_digest, image_repository, normalize_image, normalize_pattern,
};
pub use scope::{in_scope, selects_phi_pods, service_routes_to_phi};
pub use set::{effective_policies, PolicySet, RejectedPolicy};

/// The name of the built-in policy.
pub const BASELINE_NAME: &str = "hipaa-baseline";

/// Namespaces phi-guard never judges, whatever a policy says: the cluster's own.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// A policy that could not be accepted; `field` is the JSON path inside the PhiPolicy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PhiPolicy {policy:?}: {field}: {message}")]
pub struct PolicyError {
    pub policy: String,
    pub field: String,
    pub message: String,
}

/// The built-in `hipaa-baseline` PhiPolicy: all defaults, Enforce.
pub fn hipaa_baseline() -> PhiPolicy {
    PhiPolicy {
        metadata: ObjectMeta {
            name: Some(BASELINE_NAME.to_string()),
            labels: Some(
                [(
                    "app.kubernetes.io/part-of".to_string(),
                    "phi-guard".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        spec: PhiPolicySpec::default(),
        status: None,
    }
}

impl Default for PhiPolicySpec {
    fn default() -> Self {
        PhiPolicySpec {
            mode: Mode::Enforce,
            scope: ScopeSpec::default(),
            updates: UpdateMode::default(),
            namespace_labeling: NamespaceLabeling::default(),
            max_exception_days: 90,
            encryption_at_rest: EncryptionAtRestSpec::default(),
            encryption_in_transit: EncryptionInTransitSpec::default(),
            network_segmentation: NetworkSegmentationSpec::default(),
            audit_sidecar: AuditSidecarSpec::default(),
            least_privilege: Default::default(),
            integrity: Default::default(),
            entity_authentication: Default::default(),
            contingency: Default::default(),
            severity: Default::default(),
        }
    }
}

/// A validated policy, ready for the engine.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub mode: Mode,
    pub scope: Scope,
    /// How UPDATEs are judged.
    pub updates: UpdateMode,
    /// Labelling a namespace PHI over failing workloads: warn, or refuse.
    pub namespace_labeling: NamespaceLabeling,
    /// The longest PhiException accepted while this policy is in force.
    pub max_exception_days: u32,
    /// `None` when the rule is disabled.
    pub encryption_at_rest: Option<AtRestConfig>,
    pub encryption_in_transit: Option<InTransitConfig>,
    pub network_segmentation: Option<SegmentationConfig>,
    pub audit_sidecar: Option<AuditSidecarConfig>,
    /// The optional safeguards (least privilege, integrity, entity authentication,
    /// contingency); each `None` when disabled.
    pub safeguards: Safeguards,
    /// Severities `spec.severity` sets instead of the rules' defaults.
    pub severities: std::collections::BTreeMap<crate::verdict::RuleId, crate::verdict::Severity>,
    /// Everything of the spec but its scope, canonical: two policies with the same key get the
    /// same findings from a rule that does not read the scope (`engine::evaluate` shares them).
    /// Computed by the parser; interned by [`PolicySet::build`], so the engine compares pointers.
    pub(crate) rules_key: std::sync::Arc<str>,
    /// The scope, canonical: policies with the same key select the same objects.
    pub(crate) scope_key: std::sync::Arc<str>,
}

impl Policy {
    /// Is this requirement checked by the policy?
    pub fn rule_enabled(&self, rule: crate::verdict::RuleId) -> bool {
        use crate::verdict::RuleId;
        match rule {
            RuleId::EncryptionAtRest => self.encryption_at_rest.is_some(),
            RuleId::EncryptionInTransit => self.encryption_in_transit.is_some(),
            RuleId::NetworkSegmentation => self.network_segmentation.is_some(),
            RuleId::AuditSidecar => self.audit_sidecar.is_some(),
            RuleId::PhiClassification => true,
            RuleId::LeastPrivilege => self.safeguards.least_privilege.is_some(),
            RuleId::Integrity => self.safeguards.integrity.is_some(),
            RuleId::EntityAuthentication => self.safeguards.entity_authentication.is_some(),
            RuleId::Contingency => self.safeguards.contingency.is_some(),
        }
    }

    /// The severity of this policy's results for `rule`: its override, else the rule's default.
    pub fn severity(&self, rule: crate::verdict::RuleId) -> crate::verdict::Severity {
        self.severities
            .get(&rule)
            .copied()
            .unwrap_or(rule.meta().severity)
    }
}

/// Which objects a policy judges.
#[derive(Debug, Clone)]
pub struct Scope {
    pub workload_selector: Selector,
    pub namespace_selector: Selector,
    pub excluded_namespaces: BTreeSet<String>,
}

impl Scope {
    /// Is this namespace excluded (always true for the cluster's system namespaces)?
    pub fn excludes_namespace(&self, namespace: &str) -> bool {
        SYSTEM_NAMESPACES.contains(&namespace) || self.excluded_namespaces.contains(namespace)
    }

    /// Is an object with these label sets, in a namespace with these labels, PHI?
    /// `label_sets` are the object's own labels and, for pod controllers, its template's labels.
    pub fn covers(
        &self,
        namespace: &str,
        namespace_labels: Option<&Labels>,
        label_sets: &[&Labels],
    ) -> bool {
        if self.excludes_namespace(namespace) {
            return false;
        }
        label_sets.iter().any(|l| self.workload_selector.matches(l))
            || namespace_labels.is_some_and(|l| self.namespace_selector.matches(l))
    }
}

/// The effective level of a sub-check: `None` when off; never stricter than the rule's mode.
pub fn sub_check_mode(rule_mode: Mode, level: CheckLevel) -> Option<Mode> {
    match level {
        CheckLevel::Ignore => None,
        CheckLevel::Audit => Some(Mode::Audit),
        CheckLevel::Warn => Some(rule_mode.min(Mode::Warn)),
        CheckLevel::Enforce => Some(rule_mode),
    }
}

/// Validated encryption-at-rest settings.
#[derive(Debug, Clone)]
pub struct AtRestConfig {
    pub mode: Mode,
    pub encrypted_storage_classes: BTreeSet<String>,
    /// Provisioner name and the (lower-cased key, lower-cased value) pairs that must all match.
    pub provisioners: Vec<(String, Vec<(String, String)>)>,
    pub attest_provider_default_encryption: bool,
    pub attest_node_disk_encryption: bool,
    pub allowed_inline_volume_types: BTreeSet<String>,
    pub allowed_inline_csi_drivers: BTreeSet<String>,
    /// Mode of the on-disk emptyDir finding; `None` when not reported.
    pub on_disk_empty_dir: Option<Mode>,
}

/// Validated encryption-in-transit settings.
#[derive(Debug, Clone)]
pub struct InTransitConfig {
    pub mode: Mode,
    pub accepted_evidence: BTreeSet<TransitEvidence>,
    pub require_strict_peer_authentication: bool,
    pub istio_root_namespace: String,
    pub linkerd_accepted_inbound_policies: BTreeSet<String>,
    pub linkerd_cluster_default_inbound_policy: String,
    pub require_ingress_tls: bool,
    pub forbid_plaintext_service_ports: bool,
    pub forbid_mesh_bypass: bool,
}

impl InTransitConfig {
    /// Does the policy accept this kind of evidence?
    pub fn accepts(&self, e: TransitEvidence) -> bool {
        self.accepted_evidence.contains(&e)
    }
}

/// Validated network-segmentation settings.
#[derive(Debug, Clone)]
pub struct SegmentationConfig {
    pub mode: Mode,
    pub egress_isolation: Option<Mode>,
    pub namespace_default_deny: Option<Mode>,
    pub protect_isolating_policies: bool,
    /// phi-guard creates a default-deny NetworkPolicy in each namespace the policy makes PHI.
    pub generate_default_deny: bool,
}

/// Validated audit-sidecar settings.
#[derive(Debug, Clone)]
pub struct AuditSidecarConfig {
    pub mode: Mode,
    pub approved_images: GlobSet,
    /// The patterns as written, for messages.
    pub approved_image_patterns: Vec<String>,
    /// The registries the patterns name (to tell a look-alike on another registry apart).
    pub approved_registries: BTreeSet<String>,
    /// `None`: any container name.
    pub container_names: Option<GlobSet>,
    pub require_digest: Option<Mode>,
    pub require_shared_log_volume: Option<Mode>,
}

impl AuditSidecarConfig {
    /// Is the image approved? Its reference is normalized as a container runtime reads it
    /// (registry and repository path, Docker Hub short names expanded, tag and digest dropped)
    /// and matched against the normalized patterns as a whole: the registry counts.
    pub fn image_approved(&self, image: &str) -> bool {
        self.approved_images.is_match(normalize_image(image))
    }

    /// Is this unapproved image an approved repository path on a registry the policy does not
    /// approve it from (a look-alike or an unlisted mirror)?
    pub fn approved_path_elsewhere(&self, image: &str) -> bool {
        let normalized = normalize_image(image);
        let Some((_, path)) = normalized.split_once('/') else {
            return false;
        };
        if self.approved_images.is_match(&normalized) {
            return false;
        }
        // One buffer for every candidate (`<registry>/<path>`), not one allocation each.
        let mut candidate = String::with_capacity(normalized.len() + 64);
        self.approved_registries.iter().any(|r| {
            candidate.clear();
            candidate.push_str(r);
            candidate.push('/');
            candidate.push_str(path);
            self.approved_images.is_match(&candidate)
        })
    }

    /// Does the container name satisfy the optional name patterns?
    pub fn name_approved(&self, name: &str) -> bool {
        self.container_names
            .as_ref()
            .is_none_or(|set| set.is_match(name))
    }
}

/// Volume types a pod spec can carry, by field name.
pub const KNOWN_VOLUME_TYPES: [&str; 30] = [
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

/// Linkerd's default inbound policy values.
pub const LINKERD_INBOUND_POLICIES: [&str; 6] = [
    "all-unauthenticated",
    "all-authenticated",
    "cluster-unauthenticated",
    "cluster-authenticated",
    "deny",
    "audit",
];

struct Ctx<'a> {
    policy: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            policy: self.policy.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}

fn globs(ctx: &Ctx, field: &str, patterns: &[String]) -> Result<GlobSet, PolicyError> {
    let mut b = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        if p.trim().is_empty() {
            return Err(ctx.err(format!("{field}[{i}]"), "must not be empty"));
        }
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                ctx.err(
                    format!("{field}[{i}]"),
                    format!("invalid pattern: {}", e.kind()),
                )
            })?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| ctx.err(field, format!("invalid patterns: {e}")))
}

impl TryFrom<&PhiPolicy> for Policy {
    type Error = PolicyError;

    fn try_from(p: &PhiPolicy) -> Result<Self, Self::Error> {
        let name = p.metadata.name.clone().unwrap_or_default();
        Policy::from_spec(&name, &p.spec)
    }
}

impl Policy {
    /// The one validating parser: spec -> validated policy, or the first problem with its field.
    pub fn from_spec(name: &str, spec: &PhiPolicySpec) -> Result<Policy, PolicyError> {
        let ctx = Ctx { policy: name };
        let (rules_key, scope_key) = set::sharing_keys(spec);
        if name.is_empty() {
            return Err(ctx.err("metadata.name", "must not be empty"));
        }
        let sel = |field: &str, s| {
            Selector::try_from(s).map_err(|e| {
                ctx.err(format!("spec.scope.{field}.{e}"), "")
                    .into_field_message()
            })
        };
        let scope = Scope {
            workload_selector: sel("workloadSelector", &spec.scope.workload_selector)?,
            namespace_selector: sel("namespaceSelector", &spec.scope.namespace_selector)?,
            excluded_namespaces: spec.scope.excluded_namespaces.iter().cloned().collect(),
        };
        if scope.workload_selector.is_empty() {
            return Err(ctx.err(
                "spec.scope.workloadSelector",
                "must not be empty: an empty selector would mark every workload in the cluster as PHI (use namespaceSelector to cover whole namespaces)",
            ));
        }
        for (i, ns) in spec.scope.excluded_namespaces.iter().enumerate() {
            if ns.is_empty() {
                return Err(ctx.err(
                    format!("spec.scope.excludedNamespaces[{i}]"),
                    "must not be empty",
                ));
            }
        }

        let ar = &spec.encryption_at_rest;
        let encryption_at_rest = if ar.enabled {
            let mode = ar.mode.unwrap_or(spec.mode);
            let mut provisioners = Vec::new();
            for (i, m) in ar.provisioners.iter().enumerate() {
                if m.provisioner.trim().is_empty() {
                    return Err(ctx.err(
                        format!("spec.encryptionAtRest.provisioners[{i}].provisioner"),
                        "must not be empty",
                    ));
                }
                let mut params = Vec::new();
                for (k, v) in &m.parameters {
                    if k.trim().is_empty() {
                        return Err(ctx.err(
                            format!("spec.encryptionAtRest.provisioners[{i}].parameters"),
                            "parameter keys must not be empty",
                        ));
                    }
                    params.push((k.to_ascii_lowercase(), v.to_ascii_lowercase()));
                }
                provisioners.push((m.provisioner.clone(), params));
            }
            if ar.allowed_inline_volume_types.is_empty() {
                return Err(ctx.err(
                    "spec.encryptionAtRest.allowedInlineVolumeTypes",
                    "must not be empty",
                ));
            }
            for (i, t) in ar.allowed_inline_volume_types.iter().enumerate() {
                if !KNOWN_VOLUME_TYPES.contains(&t.as_str()) {
                    return Err(ctx.err(
                        format!("spec.encryptionAtRest.allowedInlineVolumeTypes[{i}]"),
                        format!(
                            "unknown volume type {t:?}; use a pod spec volume field name such as {}",
                            KNOWN_VOLUME_TYPES.join(", ")
                        ),
                    ));
                }
            }
            Some(AtRestConfig {
                mode,
                encrypted_storage_classes: ar.encrypted_storage_classes.iter().cloned().collect(),
                provisioners,
                attest_provider_default_encryption: ar.attest_provider_default_encryption,
                attest_node_disk_encryption: ar.attest_node_disk_encryption,
                allowed_inline_volume_types: ar
                    .allowed_inline_volume_types
                    .iter()
                    .cloned()
                    .collect(),
                allowed_inline_csi_drivers: ar.allowed_inline_csi_drivers.iter().cloned().collect(),
                on_disk_empty_dir: if ar.attest_node_disk_encryption {
                    None
                } else {
                    sub_check_mode(mode, ar.on_disk_empty_dir)
                },
            })
        } else {
            None
        };

        let it = &spec.encryption_in_transit;
        let encryption_in_transit = if it.enabled {
            if it.accepted_evidence.is_empty() {
                return Err(ctx.err(
                    "spec.encryptionInTransit.acceptedEvidence",
                    "must not be empty",
                ));
            }
            if it.istio_root_namespace.trim().is_empty() {
                return Err(ctx.err(
                    "spec.encryptionInTransit.istioRootNamespace",
                    "must not be empty",
                ));
            }
            for (i, v) in it.linkerd_accepted_inbound_policies.iter().enumerate() {
                if !LINKERD_INBOUND_POLICIES.contains(&v.as_str()) {
                    return Err(ctx.err(
                        format!("spec.encryptionInTransit.linkerdAcceptedInboundPolicies[{i}]"),
                        format!(
                            "unknown Linkerd inbound policy {v:?}; one of {}",
                            LINKERD_INBOUND_POLICIES.join(", ")
                        ),
                    ));
                }
            }
            if !LINKERD_INBOUND_POLICIES
                .contains(&it.linkerd_cluster_default_inbound_policy.as_str())
            {
                return Err(ctx.err(
                    "spec.encryptionInTransit.linkerdClusterDefaultInboundPolicy",
                    format!(
                        "unknown Linkerd inbound policy; one of {}",
                        LINKERD_INBOUND_POLICIES.join(", ")
                    ),
                ));
            }
            Some(InTransitConfig {
                mode: it.mode.unwrap_or(spec.mode),
                accepted_evidence: it.accepted_evidence.iter().copied().collect(),
                require_strict_peer_authentication: it.require_strict_peer_authentication,
                istio_root_namespace: it.istio_root_namespace.clone(),
                linkerd_accepted_inbound_policies: it
                    .linkerd_accepted_inbound_policies
                    .iter()
                    .cloned()
                    .collect(),
                linkerd_cluster_default_inbound_policy: it
                    .linkerd_cluster_default_inbound_policy
                    .clone(),
                require_ingress_tls: it.require_ingress_tls,
                forbid_plaintext_service_ports: it.forbid_plaintext_service_ports,
                forbid_mesh_bypass: it.forbid_mesh_bypass,
            })
        } else {
            None
        };

        let ns = &spec.network_segmentation;
        let network_segmentation = if ns.enabled {
            let mode = ns.mode.unwrap_or(spec.mode);
            Some(SegmentationConfig {
                mode,
                egress_isolation: sub_check_mode(mode, ns.egress_isolation),
                namespace_default_deny: sub_check_mode(mode, ns.namespace_default_deny),
                protect_isolating_policies: ns.protect_isolating_policies,
                generate_default_deny: ns.generate_default_deny,
            })
        } else {
            None
        };

        let au = &spec.audit_sidecar;
        let audit_sidecar = if au.enabled {
            if au.approved_images.is_empty() {
                return Err(ctx.err("spec.auditSidecar.approvedImages", "must not be empty"));
            }
            let mode = au.mode.unwrap_or(spec.mode);
            Some(AuditSidecarConfig {
                mode,
                approved_images: globs(
                    &ctx,
                    "spec.auditSidecar.approvedImages",
                    &au.approved_images
                        .iter()
                        .map(|p| {
                            if p.trim().is_empty() {
                                String::new()
                            } else {
                                normalize_pattern(p)
                            }
                        })
                        .collect::<Vec<_>>(),
                )?,
                approved_image_patterns: au.approved_images.clone(),
                approved_registries: au
                    .approved_images
                    .iter()
                    .filter_map(|p| {
                        let n = normalize_pattern(p);
                        let (registry, _) = n.split_once('/')?;
                        (!registry.contains(['*', '?', '[', '{'])).then(|| registry.to_string())
                    })
                    .collect(),
                container_names: if au.container_names.is_empty() {
                    None
                } else {
                    Some(globs(
                        &ctx,
                        "spec.auditSidecar.containerNames",
                        &au.container_names,
                    )?)
                },
                require_digest: sub_check_mode(mode, au.require_digest),
                require_shared_log_volume: sub_check_mode(mode, au.require_shared_log_volume),
            })
        } else {
            None
        };

        let safeguards = safeguards::parse(
            name,
            spec.mode,
            &spec.least_privilege,
            &spec.integrity,
            &spec.entity_authentication,
            &spec.contingency,
        )?;

        let mut severities = std::collections::BTreeMap::new();
        for (key, sev) in &spec.severity {
            let Some(rule) = crate::verdict::RULES
                .iter()
                .find(|m| m.reported && m.id.as_str() == key)
            else {
                let names: Vec<&str> = crate::verdict::RULES
                    .iter()
                    .filter(|m| m.reported)
                    .map(|m| m.id.as_str())
                    .collect();
                return Err(ctx.err(
                    format!("spec.severity.{key}"),
                    format!("unknown rule; use one of {}", names.join(", ")),
                ));
            };
            severities.insert(rule.id, *sev);
        }

        Ok(Policy {
            name: name.to_string(),
            mode: spec.mode,
            scope,
            updates: spec.updates,
            namespace_labeling: spec.namespace_labeling,
            max_exception_days: spec.max_exception_days.clamp(1, 365),
            encryption_at_rest,
            encryption_in_transit,
            network_segmentation,
            audit_sidecar,
            safeguards,
            severities,
            rules_key,
            scope_key,
        })
    }
}

impl PolicyError {
    /// Selector errors carry "field: message" in one string; split it for a clean error.
    fn into_field_message(self) -> PolicyError {
        match self.field.split_once(": ") {
            Some((f, m)) => PolicyError {
                policy: self.policy,
                field: f.to_string(),
                message: m.to_string(),
            },
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_is_valid_and_enforces_all_four_rules() {
        let p = Policy::try_from(&hipaa_baseline()).expect("baseline valid");
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(
            p.encryption_at_rest.as_ref().map(|c| c.mode),
            Some(Mode::Enforce)
        );
        assert_eq!(
            p.encryption_at_rest
                .as_ref()
                .and_then(|c| c.on_disk_empty_dir),
            Some(Mode::Warn)
        );
        assert_eq!(
            p.encryption_in_transit.as_ref().map(|c| c.mode),
            Some(Mode::Enforce)
        );
        assert_eq!(
            p.network_segmentation
                .as_ref()
                .and_then(|c| c.egress_isolation),
            Some(Mode::Warn)
        );
        assert_eq!(
            p.network_segmentation
                .as_ref()
                .and_then(|c| c.namespace_default_deny),
            None
        );
        assert_eq!(
            p.audit_sidecar.as_ref().and_then(|c| c.require_digest),
            Some(Mode::Warn)
        );
        assert!(p.scope.excludes_namespace("kube-system"));
        assert!(!p.scope.excludes_namespace("default"));
    }

    #[test]
    fn sub_checks_never_exceed_the_rule_mode() {
        assert_eq!(
            sub_check_mode(Mode::Audit, CheckLevel::Warn),
            Some(Mode::Audit)
        );
        assert_eq!(
            sub_check_mode(Mode::Audit, CheckLevel::Enforce),
            Some(Mode::Audit)
        );
        assert_eq!(
            sub_check_mode(Mode::Enforce, CheckLevel::Warn),
            Some(Mode::Warn)
        );
        assert_eq!(sub_check_mode(Mode::Enforce, CheckLevel::Ignore), None);
    }

    #[test]
    fn images_are_approved_by_registry_and_path() {
        let p = Policy::try_from(&hipaa_baseline()).expect("valid");
        let a = p.audit_sidecar.expect("enabled");
        for ok in [
            "fluent/fluent-bit:3.1",
            "docker.io/fluent/fluent-bit",
            "index.docker.io/fluent/fluent-bit:3",
            "cr.fluentbit.io/fluent/fluent-bit:3.1.4",
            "docker.io/timberio/vector:0.40.0-distroless-libc",
            "otel/opentelemetry-collector-contrib:0.110.0",
            "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib:0.110.0",
            "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-k8s@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0",
            "bitnami/fluent-bit:3",
            "docker.elastic.co/beats/filebeat:8.15.0",
            "grafana/alloy:v1.4.0",
        ] {
            assert!(a.image_approved(ok), "{ok}");
        }
        for bad in [
            "nginx:1.27",
            "fluent/fluent-bit-evil:1",
            "evil/fluent-bit",
            "evil.example.com/fluent/fluent-bit:3",
            "registry.example.com:5000/mirror/fluent/fluent-bit",
            "ghcr.io/acme/otel/opentelemetry-collector-k8s",
            "otel/opentelemetry-collector-builder",
            "localhost/fluent/fluent-bit",
        ] {
            assert!(!a.image_approved(bad), "{bad}");
        }
    }

    #[test]
    fn policies_add_their_mirrors_and_short_names_mean_docker_hub() {
        let mut spec = PhiPolicySpec::default();
        spec.audit_sidecar.approved_images = vec![
            "fluent/fluent-bit".into(),
            "registry.example.com:5000/mirror/**".into(),
        ];
        let p = Policy::from_spec("mirrors", &spec).expect("valid");
        let a = p.audit_sidecar.expect("enabled");
        assert!(a.image_approved("fluent/fluent-bit:3"));
        assert!(a.image_approved("docker.io/fluent/fluent-bit:3"));
        assert!(a.image_approved("registry.example.com:5000/mirror/fluent/fluent-bit:3"));
        assert!(!a.image_approved("cr.fluentbit.io/fluent/fluent-bit:3"));
        assert!(!a.image_approved("evil.example.com/fluent/fluent-bit:3"));
        assert!(!a.image_approved("registry.example.com:5000/other/fluent-bit"));
    }

    #[test]
    fn invalid_policies_name_the_field() {
        let mut spec = PhiPolicySpec::default();
        spec.encryption_at_rest
            .allowed_inline_volume_types
            .push("hostpath".into());
        let err = Policy::from_spec("p", &spec).unwrap_err();
        assert_eq!(
            err.field,
            "spec.encryptionAtRest.allowedInlineVolumeTypes[8]"
        );
        // The type as the policy spells it, for a value that differs only in case.
        crate::fixtures::assert_names(&err.message, "hostPath");

        let mut spec = PhiPolicySpec::default();
        spec.scope.workload_selector.match_expressions = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                key: "x".into(),
                operator: "In".into(),
                values: None,
            },
        ]);
        let err = Policy::from_spec("p", &spec).unwrap_err();
        assert_eq!(
            err.field,
            "spec.scope.workloadSelector.matchExpressions[0].values"
        );
        assert!(err
            .to_string()
            .starts_with("PhiPolicy \"p\": spec.scope.workloadSelector"));

        let mut spec = PhiPolicySpec::default();
        spec.audit_sidecar.approved_images = vec!["fluent/[".into()];
        let err = Policy::from_spec("p", &spec).unwrap_err();
        assert_eq!(err.field, "spec.auditSidecar.approvedImages[0]");

        let mut spec = PhiPolicySpec::default();
        spec.encryption_in_transit.linkerd_accepted_inbound_policies = vec!["everyone".into()];
        let err = Policy::from_spec("p", &spec).unwrap_err();
        assert_eq!(
            err.field,
            "spec.encryptionInTransit.linkerdAcceptedInboundPolicies[0]"
        );
    }
}
