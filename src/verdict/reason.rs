//! Why a finding was made: a stable code per distinct shortfall of each rule. Machines (merging,
//! SARIF, PolicyReports, JSON, JUnit, tests) read the code; people read the message. A code,
//! once published, keeps its meaning; the message's wording may change (it is pinned once, in
//! the golden-text test `rules::golden`, not in every test that looks at a finding).
//!
//! One enum for all rules, each variant belonging to exactly one rule (`Reason::rule`): a
//! finding is built from its reason, so its rule cannot disagree with it. Codes are unique
//! across rules, so a code alone names the shortfall.

use serde::{Serialize, Serializer};

use super::RuleId;

macro_rules! reasons {
    ($( $rule:ident { $( $(#[$doc:meta])* $variant:ident = $code:literal, )* } )*) => {
        /// A stable reason code (kebab-case); see the module documentation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $( $( $(#[$doc])* $variant, )* )*
        }

        impl Reason {
            /// Every reason, grouped by rule in the order of `RuleId::ALL`.
            pub const ALL: &'static [Reason] = &[ $( $( Reason::$variant, )* )* ];

            /// The code as outputs write it.
            pub fn as_str(self) -> &'static str {
                match self { $( $( Reason::$variant => $code, )* )* }
            }

            /// The rule the reason belongs to.
            pub fn rule(self) -> RuleId {
                match self { $( $( Reason::$variant => RuleId::$rule, )* )* }
            }
        }
    };
}

reasons! {
    EncryptionAtRest {
        /// An operator's resource keeps its data on an emptyDir.
        OperatorNodeDisk = "operator-node-disk",
        /// An inline volume type the policy does not allow.
        InlineVolumeNotAllowed = "inline-volume-not-allowed",
        /// A generic ephemeral volume without a volumeClaimTemplate.
        EphemeralWithoutTemplate = "ephemeral-without-template",
        /// An emptyDir or hostPath on the node's disk.
        NodeDiskVolume = "node-disk-volume",
        /// An inline CSI volume of a driver not allowed inline.
        InlineCsiDriverNotAllowed = "inline-csi-driver-not-allowed",
        /// A persistentVolumeClaim volume without a claimName.
        ClaimWithoutName = "claim-without-name",
        /// A claim phi-guard does not know.
        UnknownClaim = "unknown-claim",
        /// No storageClassName and no default StorageClass.
        NoDefaultStorageClass = "no-default-storage-class",
        /// A StorageClass phi-guard does not know.
        UnknownStorageClass = "unknown-storage-class",
        /// Static binding (storageClassName "") without a volumeName.
        StaticBindingWithoutVolume = "static-binding-without-volume",
        /// Static binding to a PersistentVolume phi-guard does not know.
        UnknownPersistentVolume = "unknown-persistent-volume",
        /// A PersistentVolume source phi-guard cannot prove encrypted.
        UnprovableVolumeSource = "unprovable-volume-source",
        /// Provider-default encryption the policy does not attest.
        ProviderDefaultNotAttested = "provider-default-not-attested",
        /// A driver writing to the node's disk without attested node-disk encryption.
        NodeDiskNotAttested = "node-disk-not-attested",
        /// A StorageClass whose driver and parameters do not encrypt.
        UnencryptedStorageClass = "unencrypted-storage-class",
    }
    EncryptionInTransit {
        /// An operator's resource serves plaintext by its own settings.
        OperatorPlaintext = "operator-plaintext",
        /// No accepted evidence (mesh, CNI, app TLS) for the pods.
        NoTransitEvidence = "no-transit-evidence",
        /// An annotation that makes traffic bypass the mesh proxy.
        MeshBypassAnnotation = "mesh-bypass-annotation",
        /// A container's configuration switches TLS off.
        TlsSwitchedOff = "tls-switched-off",
        /// An Ingress to PHI pods without spec.tls.
        IngressWithoutTls = "ingress-without-tls",
        /// An Ingress rule without a host.
        IngressRuleWithoutHost = "ingress-rule-without-host",
        /// An Ingress host listed in a TLS entry without a secretName.
        IngressTlsWithoutSecret = "ingress-tls-without-secret",
        /// An Ingress host no TLS entry covers.
        IngressHostNotCovered = "ingress-host-not-covered",
        /// An Ingress default backend that may reach PHI pods.
        IngressDefaultBackend = "ingress-default-backend",
        /// ingress-nginx told not to redirect HTTP to HTTPS.
        IngressSslRedirectOff = "ingress-ssl-redirect-off",
        /// A plaintext Service port selecting unmeshed PHI pods.
        PlaintextServicePort = "plaintext-service-port",
    }
    NetworkSegmentation {
        /// Pods in the node's network namespace.
        HostNetworkUnsegmented = "host-network-unsegmented",
        /// A hostPort on the node's addresses.
        HostPortUnsegmented = "host-port-unsegmented",
        /// No NetworkPolicy isolates the pods for ingress.
        IngressNotIsolated = "ingress-not-isolated",
        /// No NetworkPolicy isolates the pods for egress.
        EgressNotIsolated = "egress-not-isolated",
        /// A NetworkPolicy rule allows any source.
        AllowAllIngress = "allow-all-ingress",
        /// A NetworkPolicy rule allows any destination.
        AllowAllEgress = "allow-all-egress",
        /// The namespace has no default deny NetworkPolicy.
        NoDefaultDeny = "no-default-deny",
        /// A NetworkPolicy change or deletion leaves PHI pods without ingress isolation.
        IsolationRemoved = "isolation-removed",
        /// A NetworkPolicy change or creation opens PHI pods to any source.
        IsolationOpened = "isolation-opened",
    }
    AuditSidecar {
        /// The audit sidecar's image is not pinned by digest.
        SidecarNotPinned = "sidecar-not-pinned",
        /// The audit sidecar is a regular container of run-to-completion pods.
        SidecarBlocksCompletion = "sidecar-blocks-completion",
        /// The audit sidecar is an init container without restartPolicy: Always.
        InitSidecarNotRestarting = "init-sidecar-not-restarting",
        /// No container runs an approved audit sidecar image.
        NoAuditSidecar = "no-audit-sidecar",
        /// The sidecar shares no writable log volume with the application.
        NoSharedLogVolume = "no-shared-log-volume",
        /// The sidecar shares only hostPath volumes with the application.
        HostPathLogVolume = "host-path-log-volume",
        /// An operator's resource has no field for a sidecar.
        OperatorNoSidecarField = "operator-no-sidecar-field",
        /// An operator's pod template without an approved sidecar.
        OperatorNoSidecar = "operator-no-sidecar",
    }
    PhiClassification {
        /// An operator does not copy the PHI label to its pods.
        OperatorDropsPhiLabel = "operator-drops-phi-label",
        /// The PHI label was removed while a policy still classifies the object.
        PhiLabelRemoved = "phi-label-removed",
        /// The PHI label was removed and no policy covers the object anymore.
        PhiLabelRemovedUncovered = "phi-label-removed-uncovered",
        /// A namespace lost its PHI label; no running pod is declassified.
        NamespaceLabelRemoved = "namespace-label-removed",
        /// A namespace lost its PHI label, declassifying running pods.
        NamespaceDeclassifiesPods = "namespace-declassifies-pods",
        /// A namespace labeled into scope over failing workloads (the summary).
        LabelingOverFailingWorkloads = "labeling-over-failing-workloads",
        /// One failing workload of a namespace labeled into scope.
        LabelingFailingWorkload = "labeling-failing-workload",
        /// The failing workloads not named one by one.
        LabelingMoreFailing = "labeling-more-failing",
        /// The workloads of a namespace labeled into scope could not be read.
        LabelingUnreadable = "labeling-unreadable",
    }
    LeastPrivilege {
        /// hostNetwork, hostPID or hostIPC.
        HostNamespace = "host-namespace",
        /// A volume type outside the restricted profile.
        VolumeTypeNotRestricted = "volume-type-not-restricted",
        /// windowsOptions.hostProcess.
        HostProcess = "host-process",
        /// An SELinux type outside the allowed set.
        SelinuxType = "selinux-type",
        /// An SELinux user or role.
        SelinuxUserRole = "selinux-user-role",
        /// AppArmor Unconfined (field or annotation).
        ApparmorUnconfined = "apparmor-unconfined",
        /// A sysctl outside the safe set.
        UnsafeSysctl = "unsafe-sysctl",
        /// runAsUser: 0.
        RunAsRoot = "run-as-root",
        /// runAsNonRoot: false.
        RunAsNonRootFalse = "run-as-non-root-false",
        /// runAsNonRoot set nowhere.
        MayRunAsRoot = "may-run-as-root",
        /// allowPrivilegeEscalation not false.
        PrivilegeEscalation = "privilege-escalation",
        /// A seccomp profile neither RuntimeDefault nor Localhost.
        SeccompNotRestricted = "seccomp-not-restricted",
        /// No seccomp profile at all.
        NoSeccompProfile = "no-seccomp-profile",
        /// Capabilities not dropping ALL.
        CapabilitiesNotDropped = "capabilities-not-dropped",
        /// Capabilities added beyond NET_BIND_SERVICE.
        CapabilitiesAdded = "capabilities-added",
        /// A privileged container.
        Privileged = "privileged",
        /// A container binding a hostPort.
        HostPort = "host-port",
        /// /proc unmasked.
        ProcMountUnmasked = "proc-mount-unmasked",
        /// A ServiceAccount token mounted automatically.
        ServiceAccountToken = "service-account-token",
        /// The namespace's default ServiceAccount.
        DefaultServiceAccount = "default-service-account",
    }
    Integrity {
        /// An image not pinned by digest.
        ImageNotPinned = "image-not-pinned",
        /// A writable root filesystem.
        WritableRootFilesystem = "writable-root-filesystem",
    }
    EntityAuthentication {
        /// A meshed pod no authorization policy selects.
        NoAuthorizationPolicy = "no-authorization-policy",
    }
    Contingency {
        /// Fewer replicas than the policy's minimum.
        TooFewReplicas = "too-few-replicas",
        /// No PodDisruptionBudget selects the pods.
        NoDisruptionBudget = "no-disruption-budget",
        /// The PodDisruptionBudgets selecting the pods allow evicting all of them.
        DisruptionBudgetAllowsAll = "disruption-budget-allows-all",
        /// No active Velero Schedule backs the pods up.
        NoBackupSchedule = "no-backup-schedule",
        /// The workload, its pods or its namespace are excluded from backups.
        ExcludedFromBackup = "excluded-from-backup",
        /// A claim-backed volume or claim excluded from backups.
        VolumeExcludedFromBackup = "volume-excluded-from-backup",
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_every_rule_but_none_lacks_reasons() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let c = r.as_str();
            assert!(seen.insert(c), "duplicate code {c}");
            assert!(
                !c.is_empty()
                    && c.split('-').all(|w| !w.is_empty()
                        && w.chars()
                            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())),
                "{c} is not kebab-case"
            );
        }
        for rule in RuleId::ALL {
            assert!(
                Reason::ALL.iter().any(|r| r.rule() == rule),
                "{} has no reason",
                rule.as_str()
            );
        }
        assert_eq!(
            Reason::UnencryptedStorageClass.rule(),
            RuleId::EncryptionAtRest
        );
        assert_eq!(
            serde_json::to_string(&Reason::AllowAllIngress)
                .ok()
                .as_deref(),
            Some("\"allow-all-ingress\"")
        );
    }
}
