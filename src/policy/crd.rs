//! The PhiPolicy custom resource (`phiguard.io/v1alpha1`): what security teams edit.
//!
//! Doc comments here become the OpenAPI descriptions that `kubectl explain phipolicy.spec` shows,
//! so they are written for the person editing a policy.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::verdict::Mode;

pub use super::check_level::CheckLevel;
use super::images::default_sidecar_images;
pub use super::safeguards::{
    ContingencySpec, EntityAuthenticationSpec, IntegritySpec, LeastPrivilegeSpec,
};
use crate::verdict::Severity;

/// The label that marks PHI by default, on workloads, pod templates and Namespaces.
pub const DEFAULT_PHI_LABEL_KEY: &str = "phiguard.io/data-classification";
/// The value of [`DEFAULT_PHI_LABEL_KEY`] that marks PHI.
pub const DEFAULT_PHI_LABEL_VALUE: &str = "phi";

/// A PhiPolicy says which workloads handle protected health information (PHI) and what they must
/// prove before they are admitted: encrypted volumes, encrypted traffic, network segmentation and
/// an audit sidecar. Each rule cites the HIPAA Security Rule section it serves.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "phiguard.io",
    version = "v1alpha1",
    kind = "PhiPolicy",
    plural = "phipolicies",
    singular = "phipolicy",
    shortname = "phip",
    category = "phiguard",
    doc = "PhiPolicy: which workloads handle PHI and the HIPAA safeguards they must prove at admission.",
    status = "PhiPolicyStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode","description":"Enforce, Warn or Audit"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"Whether phi-guard accepted the policy"}"#,
    printcolumn = r#"{"name":"Judged","type":"integer","jsonPath":".status.audit.judged","description":"Objects in the policy's scope the background audit judged"}"#,
    printcolumn = r#"{"name":"Violating","type":"integer","jsonPath":".status.audit.violating","description":"Of those, objects with a fail or warn result"}"#,
    printcolumn = r#"{"name":"Excepted","type":"integer","jsonPath":".status.audit.excepted","description":"Of those, objects whose every finding a PhiException waives"}"#,
    printcolumn = r#"{"name":"Last Audit","type":"date","jsonPath":".status.audit.lastAuditTime","description":"When the audit last swept everything"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PhiPolicySpec {
    /// How violations are handled unless a rule overrides it. Enforce: the request is denied and
    /// every finding is listed. Warn: admitted, findings returned as warnings that kubectl prints.
    /// Audit: admitted, findings recorded as audit annotations only.
    #[serde(default)]
    pub mode: Mode,
    /// Which workloads handle PHI and are therefore judged by this policy.
    #[serde(default)]
    pub scope: ScopeSpec,
    /// How an UPDATE of an existing object is judged. AllowExisting (default): only findings the
    /// update introduces are enforced; findings the object already had come back as warnings
    /// that say they pre-exist, so objects admitted earlier (under Warn, before a policy was
    /// tightened, before phi-guard was installed) can still be labeled, scaled and fixed step by
    /// step. Enforce: an update made by a person is judged in full. Either way, updates that
    /// change nothing phi-guard judges (finalizers, owner references, replicas, status), updates
    /// by Kubernetes' own controllers and updates of objects being deleted are never denied.
    #[serde(default)]
    pub updates: UpdateMode,
    /// What happens when a Namespace is labeled into this policy's scope (namespaceSelector)
    /// while workloads in it would fail the policy. Warn (default): the label is applied and the
    /// answer warns, counting and naming the failing workloads (Deployments, StatefulSets,
    /// CronJobs ... and Pods without a controller) with the mode each falls under; the
    /// background audit reports the same findings. Refuse: the label is refused while workloads
    /// in the namespace would be denied if created now; fix them first, then label. Either way
    /// the answer never goes beyond the policy's mode (an Audit policy only records it).
    #[serde(default)]
    pub namespace_labeling: NamespaceLabeling,
    /// The longest a PhiException may run, in days, when it is written (1-365, default 90).
    /// With several policies in force the shortest applies.
    #[serde(default = "default_max_exception_days")]
    #[schemars(range(min = 1, max = 365))]
    pub max_exception_days: u32,
    /// Encryption at rest, 45 CFR 164.312(a)(2)(iv): PHI is stored only on volumes that are
    /// provably encrypted.
    #[serde(default)]
    pub encryption_at_rest: EncryptionAtRestSpec,
    /// Encryption in transit, 45 CFR 164.312(e)(1) and (e)(2)(ii): PHI traffic is encrypted by a
    /// service mesh with mutual TLS or by the application's own TLS.
    #[serde(default)]
    pub encryption_in_transit: EncryptionInTransitSpec,
    /// Network segmentation, 45 CFR 164.312(a)(1) and (e)(1): PHI pods are isolated by
    /// NetworkPolicies.
    #[serde(default)]
    pub network_segmentation: NetworkSegmentationSpec,
    /// Audit controls, 45 CFR 164.312(b): PHI pods run an approved audit/log-shipping sidecar.
    #[serde(default)]
    pub audit_sidecar: AuditSidecarSpec,
    /// Least privilege, 45 CFR 164.308(a)(3), (a)(4) and 164.312(a)(1): PHI pods meet Pod
    /// Security "restricted", mount no ServiceAccount token and do not run as the `default`
    /// ServiceAccount. Off unless enabled.
    #[serde(default)]
    pub least_privilege: LeastPrivilegeSpec,
    /// Integrity, 45 CFR 164.312(c)(1): every container image is pinned by digest and every
    /// root filesystem is read-only. Off unless enabled.
    #[serde(default)]
    pub integrity: IntegritySpec,
    /// Person or entity authentication, 45 CFR 164.312(d): meshed PHI pods are selected by a
    /// mesh authorization policy (Istio AuthorizationPolicy, Linkerd AuthorizationPolicy with
    /// MeshTLSAuthentication). Off unless enabled.
    #[serde(default)]
    pub entity_authentication: EntityAuthenticationSpec,
    /// Contingency plan, 45 CFR 164.308(a)(7): PHI Deployments and StatefulSets run several
    /// replicas under a PodDisruptionBudget; with Velero installed a Schedule backs up the
    /// namespace and no PHI volume is excluded. Off unless enabled.
    #[serde(default)]
    pub contingency: ContingencySpec,
    /// The severity PolicyReports give each rule's results, overriding phi-guard's default for
    /// the rule. Independent of mode: the mode says what admission does, the severity how urgent
    /// the fix is. Keys are the rule names reports use: encryption-at-rest (default high),
    /// encryption-in-transit (high), network-segmentation (high), audit-sidecar (medium),
    /// least-privilege (high), integrity (medium), entity-authentication (medium), contingency
    /// (medium). Values: info, low, medium, high, critical. Example: `{contingency: high}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub severity: BTreeMap<String, Severity>,
}

/// How UPDATEs of existing objects are judged; see `spec.updates`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum UpdateMode {
    /// Enforce only what the update introduces; pre-existing findings are warnings.
    #[default]
    AllowExisting,
    /// Judge updates made by people in full (controller bookkeeping is still never denied).
    Enforce,
}

/// What labelling a Namespace PHI over failing workloads does; see `spec.namespaceLabeling`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum NamespaceLabeling {
    /// Apply the label; warn, naming the workloads that fail the policy.
    #[default]
    Warn,
    /// Refuse the label while workloads in the namespace would be denied: fix first, then label.
    Refuse,
}

/// Which workloads handle PHI.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSpec {
    /// A workload is PHI when its own labels or its pod template's labels match this selector.
    /// Default: `phiguard.io/data-classification: phi`.
    #[serde(default = "default_phi_selector")]
    pub workload_selector: LabelSelector,
    /// Every workload in a Namespace whose labels match this selector is PHI.
    /// Default: `phiguard.io/data-classification: phi`. An empty selector (`{}`) puts every
    /// namespace in scope.
    #[serde(default = "default_phi_selector")]
    pub namespace_selector: LabelSelector,
    /// Namespaces never in scope, in addition to kube-system, kube-public and kube-node-lease,
    /// which phi-guard never judges.
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
}

impl Default for ScopeSpec {
    fn default() -> Self {
        ScopeSpec {
            workload_selector: default_phi_selector(),
            namespace_selector: default_phi_selector(),
            excluded_namespaces: Vec::new(),
        }
    }
}

fn default_max_exception_days() -> u32 {
    90
}

fn default_phi_selector() -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            DEFAULT_PHI_LABEL_KEY.to_string(),
            DEFAULT_PHI_LABEL_VALUE.to_string(),
        )])),
        match_expressions: None,
    }
}

fn yes() -> bool {
    true
}

/// Encryption at rest settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionAtRestSpec {
    /// Whether this rule runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Overrides the policy mode for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// StorageClass names accepted as encrypting whatever their parameters say (for classes whose
    /// encryption is invisible to Kubernetes, e.g. vSphere storage policies).
    #[serde(default)]
    pub encrypted_storage_classes: Vec<String>,
    /// Extra provisioners recognized as encrypting when all the given parameters match. Built-in
    /// knowledge covers AWS EBS, GCE PD, Azure Disk/File, Ceph RBD/CephFS (Rook, ODF), Longhorn,
    /// OpenEBS ZFS, Portworx, NetApp Trident, vSphere (EncryptionClass claim annotation),
    /// Hetzner, DigitalOcean, cloudscale, Linode, Oracle and IBM VPC block volumes, LINSTOR and
    /// TopoLVM (never encrypts).
    #[serde(default)]
    pub provisioners: Vec<ProvisionerMatcher>,
    /// Attest that provider-default encryption (e.g. GCE PD and Azure Disk with provider-managed
    /// keys) is acceptable because a BAA with the provider covers it. Default false: only
    /// explicitly configured encryption counts.
    #[serde(default)]
    pub attest_provider_default_encryption: bool,
    /// Attest that node disks are encrypted, so on-disk emptyDir volumes are acceptable, and so
    /// are volumes whose driver cannot encrypt but which live on those disks: TopoLVM, and Ceph
    /// RBD/CephFS without `encrypted: "true"` on OSDs encrypted by Rook (CephCluster
    /// `encryptedDevice`).
    #[serde(default)]
    pub attest_node_disk_encryption: bool,
    /// Inline volume types allowed in PHI pods, by their pod spec field name. Default: the
    /// restricted Pod Security set (configMap, csi, downwardAPI, emptyDir, ephemeral,
    /// persistentVolumeClaim, projected, secret). Anything else (hostPath, nfs, iscsi, ...)
    /// cannot be proven encrypted and is a violation.
    #[serde(default = "default_inline_volume_types")]
    #[schemars(length(min = 1))]
    pub allowed_inline_volume_types: Vec<String>,
    /// CSI drivers allowed as inline `csi` volumes (they carry no PHI).
    #[serde(default = "default_inline_csi_drivers")]
    pub allowed_inline_csi_drivers: Vec<String>,
    /// How an emptyDir on node disk (not `medium: Memory`) is treated. Default Warn.
    #[serde(default = "default_warn")]
    pub on_disk_empty_dir: CheckLevel,
}

impl Default for EncryptionAtRestSpec {
    fn default() -> Self {
        EncryptionAtRestSpec {
            enabled: true,
            mode: None,
            encrypted_storage_classes: Vec::new(),
            provisioners: Vec::new(),
            attest_provider_default_encryption: false,
            attest_node_disk_encryption: false,
            allowed_inline_volume_types: default_inline_volume_types(),
            allowed_inline_csi_drivers: default_inline_csi_drivers(),
            on_disk_empty_dir: CheckLevel::Warn,
        }
    }
}

/// The restricted Pod Security Standard's volume types.
pub fn default_inline_volume_types() -> Vec<String> {
    [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ]
    .map(String::from)
    .to_vec()
}

fn default_inline_csi_drivers() -> Vec<String> {
    ["secrets-store.csi.k8s.io", "csi.cert-manager.io"]
        .map(String::from)
        .to_vec()
}

fn default_warn() -> CheckLevel {
    CheckLevel::Warn
}

fn default_ignore() -> CheckLevel {
    CheckLevel::Ignore
}

/// A provisioner whose StorageClasses encrypt when the given parameters match.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionerMatcher {
    /// The StorageClass `provisioner`, e.g. `ebs.csi.aws.com`.
    #[schemars(length(min = 1))]
    pub provisioner: String,
    /// Parameters that must all be present with these values (keys and values compared
    /// case-insensitively). Empty: every class of this provisioner encrypts.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// Evidence accepted for encryption in transit.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum TransitEvidence {
    /// Istio sidecar injection (namespace/pod labels or an istio-proxy container).
    IstioSidecar,
    /// Istio ambient mode (`istio.io/dataplane-mode: ambient`).
    IstioAmbient,
    /// Linkerd proxy injection with an authenticated default inbound policy.
    Linkerd,
    /// Application TLS: a csi.cert-manager.io volume, a Kubernetes Pod Certificate (a projected
    /// `podCertificate` source, beta in 1.35) or a Secret issued by a cert-manager Certificate,
    /// mounted by the pod.
    AppTls,
    /// Cilium transparent encryption: ConfigMap kube-system/cilium-config sets
    /// `enable-wireguard` or `enable-ipsec` to "true". Node-to-node only: traffic between pods
    /// on the same node is not encrypted. Not in the default list.
    CiliumEncryption,
    /// Calico WireGuard: FelixConfiguration `default` sets `spec.wireguardEnabled` (or
    /// `wireguardEnabledV6`) to true. Node-to-node only: traffic between pods on the same node
    /// is not encrypted. Not in the default list.
    CalicoWireGuard,
    /// Antrea traffic encryption: ConfigMap kube-system/antrea-config's `antrea-agent.conf` sets
    /// `trafficEncryptionMode` to wireGuard or ipsec. Node-to-node only: traffic between pods
    /// on the same node is not encrypted. Not in the default list.
    AntreaEncryption,
    /// Flannel's encrypting backends: ConfigMap kube-flannel/kube-flannel-cfg's `net-conf.json`
    /// sets `Backend.Type` to wireguard (or ipsec). Node-to-node only: traffic between pods on
    /// the same node is not encrypted. Not in the default list.
    FlannelEncryption,
    /// Consul service mesh: pod annotation `consul.hashicorp.com/connect-inject-status:
    /// injected` (or `consul.hashicorp.com/connect-inject: "true"` on the template). phi-guard
    /// does not read Consul's Mesh, ServiceDefaults or ProxyDefaults, so it cannot see
    /// `mutualTLSMode: permissive`: listing this attests that permissive mTLS is not allowed.
    /// Not in the default list.
    Consul,
    /// Kuma / Kong Mesh: sidecar injection (`kuma.io/sidecar-injection: enabled` on the pod or
    /// namespace, or a `kuma-sidecar` container) in a Mesh (`kuma.io/mesh`, default `default`)
    /// whose `spec.mtls.enabledBackend` is set and not PERMISSIVE, and no MeshTLS of that Mesh
    /// sets `mode: Permissive` (targetRefs are not resolved: any permissive one fails). Not in
    /// the default list.
    Kuma,
}

/// Encryption in transit settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionInTransitSpec {
    /// Whether this rule runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Overrides the policy mode for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Which evidence counts. Default: IstioSidecar, IstioAmbient (label, or the
    /// `ambient.istio.io/redirection: enabled` annotation the Istio CNI writes), Linkerd and
    /// AppTls (csi.cert-manager.io, a Secret a cert-manager Certificate issues, or a projected
    /// `podCertificate`): pod-to-pod mTLS or the application's own TLS. Counted only when
    /// listed: CiliumEncryption (ConfigMap kube-system/cilium-config `enable-wireguard` or
    /// `enable-ipsec` "true"), CalicoWireGuard (FelixConfiguration default
    /// `spec.wireguardEnabled`/`wireguardEnabledV6`), AntreaEncryption (ConfigMap
    /// kube-system/antrea-config `trafficEncryptionMode` wireGuard or ipsec), FlannelEncryption
    /// (ConfigMap kube-flannel/kube-flannel-cfg `Backend.Type` wireguard or ipsec): CNI
    /// encryption is node-to-node only, traffic between pods on the same node is not
    /// encrypted; Consul (`consul.hashicorp.com/connect-inject-status: injected`; Consul's
    /// Mesh/ServiceDefaults/ProxyDefaults are not read, so listing it attests mTLS is not
    /// permissive); Kuma (`kuma.io/sidecar-injection` and a Mesh whose
    /// `spec.mtls.enabledBackend` is set and not PERMISSIVE, with no permissive MeshTLS).
    #[serde(default = "default_evidence")]
    #[schemars(length(min = 1))]
    pub accepted_evidence: Vec<TransitEvidence>,
    /// Istio evidence counts only with an effective STRICT PeerAuthentication (mesh-wide in the
    /// root namespace, namespace-wide, or selecting the pod; port-level DISABLE or PERMISSIVE on
    /// one of the pod's ports breaks it). Default true.
    #[serde(default = "yes")]
    pub require_strict_peer_authentication: bool,
    /// Istio's root namespace, where a selector-less PeerAuthentication applies mesh-wide.
    #[serde(default = "default_istio_root")]
    pub istio_root_namespace: String,
    /// Linkerd default inbound policies accepted as authenticated.
    #[serde(default = "default_linkerd_policies")]
    #[schemars(length(min = 1))]
    pub linkerd_accepted_inbound_policies: Vec<String>,
    /// The cluster-wide Linkerd default inbound policy, used when neither the workload nor its
    /// namespace sets `config.linkerd.io/default-inbound-policy`. Linkerd's own default is
    /// all-unauthenticated.
    #[serde(default = "default_linkerd_cluster_policy")]
    pub linkerd_cluster_default_inbound_policy: String,
    /// An Ingress routing to PHI pods must list every host under `spec.tls` with a secretName,
    /// must not turn off ingress-nginx's HTTP-to-HTTPS redirect
    /// (`nginx.ingress.kubernetes.io/ssl-redirect: "false"` without `force-ssl-redirect: "true"`),
    /// and may have a `spec.defaultBackend` (it answers every host) only to a Service that
    /// provably selects non-PHI pods.
    #[serde(default = "yes")]
    pub require_ingress_tls: bool,
    /// A Service selecting unmeshed PHI pods must not expose plaintext ports (appProtocol or port
    /// name not https/tls). A protocol that negotiates TLS in-band (appProtocol postgresql,
    /// mysql, smtp, submission, ldap, imap, pop3, xmpp-client, optionally `kubernetes.io/`-
    /// prefixed) is accepted when every selected unmeshed PHI pod mounts cert-manager TLS
    /// material and the Service is annotated `phiguard.io/tls-required: "<port name or
    /// number>,..."`, attesting that the server refuses clients that do not negotiate TLS;
    /// phi-guard cannot observe that and relies on the attestation.
    #[serde(default = "yes")]
    pub forbid_plaintext_service_ports: bool,
    /// Mesh bypass annotations (traffic.sidecar.istio.io/exclude*, config.linkerd.io/skip-*) are
    /// violations.
    #[serde(default = "yes")]
    pub forbid_mesh_bypass: bool,
}

impl Default for EncryptionInTransitSpec {
    fn default() -> Self {
        EncryptionInTransitSpec {
            enabled: true,
            mode: None,
            accepted_evidence: default_evidence(),
            require_strict_peer_authentication: true,
            istio_root_namespace: default_istio_root(),
            linkerd_accepted_inbound_policies: default_linkerd_policies(),
            linkerd_cluster_default_inbound_policy: default_linkerd_cluster_policy(),
            require_ingress_tls: true,
            forbid_plaintext_service_ports: true,
            forbid_mesh_bypass: true,
        }
    }
}

fn default_evidence() -> Vec<TransitEvidence> {
    vec![
        TransitEvidence::IstioSidecar,
        TransitEvidence::IstioAmbient,
        TransitEvidence::Linkerd,
        TransitEvidence::AppTls,
    ]
}

fn default_istio_root() -> String {
    "istio-system".into()
}

fn default_linkerd_policies() -> Vec<String> {
    ["all-authenticated", "cluster-authenticated", "deny"]
        .map(String::from)
        .to_vec()
}

fn default_linkerd_cluster_policy() -> String {
    "all-unauthenticated".into()
}

/// Network segmentation settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSegmentationSpec {
    /// Whether this rule runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Overrides the policy mode for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Require a NetworkPolicy that selects the pod and isolates it for egress. Default Warn.
    #[serde(default = "default_warn")]
    pub egress_isolation: CheckLevel,
    /// Require a namespace-wide default deny (`podSelector: {}`, policyTypes Ingress and Egress,
    /// no rules but egress to port 53 for DNS) in the pod's namespace. Default Ignore.
    #[serde(default = "default_ignore")]
    pub namespace_default_deny: CheckLevel,
    /// Deny deleting (or loosening) a NetworkPolicy that is the only ingress isolation of running
    /// PHI pods. Default true.
    #[serde(default = "yes")]
    pub protect_isolating_policies: bool,
    /// Opt-in: phi-guard creates a NetworkPolicy `phi-guard-default-deny` (every pod isolated
    /// for ingress and egress, egress allowed only to port 53 UDP/TCP for DNS) in every
    /// namespace this policy makes PHI by its namespace selector, owned by the Namespace so it
    /// goes with it. It is never created where the namespace's own NetworkPolicies already
    /// isolate every pod both ways, never written over an object of that name, never changed
    /// or deleted once created (removing isolation is a person's decision: delete it with
    /// `kubectl delete networkpolicy -l phiguard.io/generated=default-deny`). The replica
    /// holding the Lease `phi-guard-default-deny` writes; `status.defaultDeny` says what it
    /// did. Runs whatever the rule's mode (mode governs admission, not this). It applies to
    /// namespaces that exist already: their running pods then keep only the traffic other
    /// NetworkPolicies allow them (and DNS), so list those first. Default false.
    #[serde(default)]
    pub generate_default_deny: bool,
}

impl Default for NetworkSegmentationSpec {
    fn default() -> Self {
        NetworkSegmentationSpec {
            enabled: true,
            mode: None,
            egress_isolation: CheckLevel::Warn,
            namespace_default_deny: CheckLevel::Ignore,
            protect_isolating_policies: true,
            generate_default_deny: false,
        }
    }
}

/// Audit sidecar settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditSidecarSpec {
    /// Whether this rule runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Overrides the policy mode for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Approved sidecar images by registry and repository path. A container's image reference
    /// and each pattern are normalized as container runtimes normalize references: a name without
    /// a registry (no `.` or `:` in its first segment, not `localhost`) is on Docker Hub
    /// (`fluent/fluent-bit` means `docker.io/fluent/fluent-bit`, `nginx` means
    /// `docker.io/library/nginx`), `index.docker.io` is `docker.io`, tag and digest are ignored.
    /// The pattern then matches the whole `registry/path` (`*` within a path segment, `**`
    /// across), so `evil.example.com/fluent/fluent-bit` matches none of the defaults. Add your
    /// mirrors with their registry, e.g. `registry.example.com/mirror/fluent/fluent-bit` or
    /// `registry.example.com/mirror/**`; a pattern starting with a wildcard segment
    /// (`**/fluent/fluent-bit`) accepts any registry and is rarely what you want. Default: the
    /// upstream images of Fluent Bit (docker.io, cr.fluentbit.io, ghcr.io, AWS for Fluent Bit on
    /// public.ecr.aws and docker.io, Bitnami), Fluentd, Vector, the OpenTelemetry Collector
    /// (docker.io/otel and ghcr.io/open-telemetry releases: core, contrib, k8s; AWS ADOT),
    /// Grafana Promtail and Alloy, and Elastic Filebeat.
    #[serde(default = "default_sidecar_images")]
    #[schemars(length(min = 1))]
    pub approved_images: Vec<String>,
    /// If set, the sidecar container's name must match one of these patterns (`*` wildcard).
    #[serde(default)]
    pub container_names: Vec<String>,
    /// Require the sidecar image to be pinned by `@sha256:` digest. Default Warn.
    #[serde(default = "default_warn")]
    pub require_digest: CheckLevel,
    /// Require a log volume (not hostPath) mounted by both the sidecar and an application
    /// container. Default Ignore.
    #[serde(default = "default_ignore")]
    pub require_shared_log_volume: CheckLevel,
}

impl Default for AuditSidecarSpec {
    fn default() -> Self {
        AuditSidecarSpec {
            enabled: true,
            mode: None,
            approved_images: default_sidecar_images(),
            container_names: Vec::new(),
            require_digest: CheckLevel::Warn,
            require_shared_log_volume: CheckLevel::Ignore,
        }
    }
}

/// What phi-guard observed of this policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhiPolicyStatus {
    /// `Ready` is True when phi-guard parsed and applies the policy, False with the reason when
    /// it rejected it. `WebhookScope` is True when the API server sends phi-guard every object
    /// the policy's scope covers (phi-guard keeps its ValidatingWebhookConfiguration's selectors
    /// in step with the policies' scopes), False with the reason while it does not (then objects
    /// the chart's static selectors miss are not judged). One entry per type; phi-guard's
    /// writers each own theirs (server-side apply).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation phi-guard last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// What the background audit found for this policy (written by the replica holding the
    /// audit Lease; absent until its first pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditStatus>,
    /// What phi-guard's generated default-deny NetworkPolicies cover for this policy (present
    /// while `spec.networkSegmentation.generateDefaultDeny` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_deny: Option<DefaultDenyStatus>,
}

/// The namespaces a policy with `generateDefaultDeny` makes PHI, and how each is isolated.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultDenyStatus {
    /// Namespaces this policy makes PHI by their labels (or names).
    #[serde(default)]
    pub namespaces: i64,
    /// Of those, namespaces isolated by phi-guard's generated `phi-guard-default-deny`.
    #[serde(default)]
    pub generated: i64,
    /// Of those, namespaces whose own NetworkPolicies already isolate every pod for ingress and
    /// egress (phi-guard generated nothing there).
    #[serde(default)]
    pub isolated_by_user: i64,
    /// Namespaces not isolated, each with the reason (at most 100 listed; `namespaces` minus
    /// `generated` minus `isolatedByUser` is the full count).
    #[serde(default)]
    pub not_isolated: Vec<NotIsolated>,
}

/// A PHI namespace without a default deny, and why.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotIsolated {
    pub namespace: String,
    /// Why: `NameTaken` (an object named phi-guard-default-deny that does not isolate every pod
    /// both ways exists and is left alone), `CreateFailed` (the API server refused; the message
    /// says its status, e.g. Forbidden when the chart's `defaultDenyGeneration.enabled` is
    /// false), `Pending` (being created).
    pub reason: String,
    /// Details, never values from workloads.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The background audit's counts for one policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditStatus {
    /// Objects in the policy's scope that the audit judged (controller-owned ReplicaSets,
    /// Jobs and Pods are counted through their controller).
    #[serde(default)]
    pub judged: i64,
    /// Judged objects without a finding of this policy (no fail, warn or skip result).
    #[serde(default)]
    pub compliant: i64,
    /// Judged objects with at least one fail or warn result of this policy.
    #[serde(default)]
    pub violating: i64,
    /// Judged objects whose every finding of this policy a PhiException waives (only skip
    /// results): neither compliant nor violating. compliant + violating + excepted = judged.
    #[serde(default)]
    pub excepted: i64,
    /// Violating objects per rule (`encryption-at-rest`, `encryption-in-transit`,
    /// `network-segmentation`, `audit-sidecar`, and when enabled `least-privilege`,
    /// `integrity`, `entity-authentication`, `contingency`).
    #[serde(default)]
    pub violations_by_rule: std::collections::BTreeMap<String, i64>,
    /// When the audit last re-judged everything (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_audit_time: Option<String>,
}
