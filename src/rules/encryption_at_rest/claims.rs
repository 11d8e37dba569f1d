//! Following a pod's volumes to their storage: inline volume types, PVC -> StorageClass (or the
//! bound PV), ephemeral and StatefulSet claim templates, and the remediation hints.

use super::*;

/// Text written only when a finding needs it: the subjects and leads of messages are built
/// for every claim, and most claims pass.
pub(super) type Lazy<'a> = &'a dyn Fn() -> String;

pub(super) struct Judge<'a> {
    pub(super) ctx: &'a RuleContext<'a>,
    pub(super) cfg: &'a AtRestConfig,
    pub(super) namespace: &'a str,
    /// Names of StorageClasses in the cluster state that encrypt (computed on first need).
    pub(super) available: OnceCell<Vec<String>>,
}

impl Judge<'_> {
    /// An operator's resource: the claims it will create, the pod volumes it declares, and
    /// data it keeps on the node's disk.
    pub(super) fn operated(
        &self,
        w: &Object,
        v: &crate::object::operated::OperatedView,
        out: &mut Vec<Finding>,
    ) {
        for c in &v.claims {
            let subject = || format!("{} creates {}", v.operator.name(), c.subject);
            if let Some(pr) = self.claim(&subject, &c.spec, &c.annotations) {
                out.push(pr.finding(self.cfg.mode, c.path.clone()));
            }
        }
        for (path, vol) in &v.volumes {
            self.volume(vol, path, out);
        }
        // The database's own data on node disk, not scratch space: a finding with the rule's
        // mode (an on-disk emptyDir of a pod is a warning by default), unless node disk
        // encryption is attested.
        if self.cfg.on_disk_empty_dir.is_none() {
            return;
        }
        for path in &v.node_disk {
            out.push(
                Problem {
                    reason: Reason::OperatorNodeDisk,
                    message: format!(
                        "{}: {} keeps its data on an emptyDir on the node's disk ({path}); node disk encryption is not visible to Kubernetes",
                        w.display(),
                        v.operator.name()
                    ),
                    remediation: format!(
                        "Use persistent storage on an encrypting StorageClass{} instead of {path}; if node disks are encrypted, attest it with encryptionAtRest.attestNodeDiskEncryption: true.",
                        self.available_suffix()
                    ),
                }
                .finding(self.cfg.mode, path.clone()),
            );
        }
    }

    pub(super) fn volume(&self, v: &Volume, path: &str, out: &mut Vec<Finding>) {
        let cfg = self.cfg;
        let type_name = v.source.type_name();
        if !cfg.allowed_inline_volume_types.contains(type_name) {
            out.push(
                Problem {
                    reason: Reason::InlineVolumeNotAllowed,
                    message: format!(
                        "volume {:?} is an inline {type_name} volume, a type this policy does not allow in PHI pods (its storage cannot be proven encrypted at rest)",
                        v.name
                    ),
                    remediation: format!(
                        "Replace volume {:?} with a persistentVolumeClaim or generic ephemeral volume on an encrypting StorageClass{}. Allowed inline types: {}.",
                        v.name,
                        self.available_suffix(),
                        join(cfg.allowed_inline_volume_types.iter())
                    ),
                }
                .finding(cfg.mode, path),
            );
            return;
        }
        match &v.source {
            VolumeSource::PersistentVolumeClaim { claim_name } => {
                if let Some(pr) = self.pod_claim(&v.name, claim_name) {
                    out.push(pr.finding(cfg.mode, path));
                }
            }
            VolumeSource::Ephemeral { template } => {
                let problem = match template {
                    Some(t) => {
                        let subject = || {
                            format!("generic ephemeral volume {:?} has a volumeClaimTemplate", v.name)
                        };
                        self.claim(&subject, &t.spec, &t.metadata.annotations)
                    }
                    None => Some(Problem {
                        reason: Reason::EphemeralWithoutTemplate,
                        message: format!(
                            "generic ephemeral volume {:?} has no volumeClaimTemplate, so its storage cannot be judged",
                            v.name
                        ),
                        remediation: format!(
                            "Set ephemeral.volumeClaimTemplate.spec.storageClassName to an encrypting StorageClass{}.",
                            self.available_suffix()
                        ),
                    }),
                };
                if let Some(pr) = problem {
                    out.push(pr.finding(cfg.mode, path));
                }
            }
            VolumeSource::EmptyDir { memory: false } | VolumeSource::Missing => {
                if let Some(mode) = cfg.on_disk_empty_dir {
                    let what = if matches!(v.source, VolumeSource::Missing) {
                        "has no volume source, so the API server makes it an emptyDir on the node's disk"
                    } else {
                        "is an emptyDir on the node's disk (no medium: Memory)"
                    };
                    out.push(
                        Problem {
                            reason: Reason::NodeDiskVolume,
                            message: format!(
                                "volume {:?} {what}; node disk encryption is not visible to Kubernetes",
                                v.name
                            ),
                            remediation: format!(
                                "Set emptyDir.medium: Memory on volume {:?} (it counts against the pod's memory limit), or use a generic ephemeral volume on an encrypting StorageClass{}; if node disks are encrypted, attest it with encryptionAtRest.attestNodeDiskEncryption: true.",
                                v.name,
                                self.available_suffix()
                            ),
                        }
                        .finding(mode, path),
                    );
                }
            }
            VolumeSource::Csi { driver } if !cfg.allowed_inline_csi_drivers.contains(driver) => {
                out.push(
                        Problem {
                            reason: Reason::InlineCsiDriverNotAllowed,
                            message: format!(
                                "volume {:?} is an inline csi volume of driver {driver:?}, which is not in encryptionAtRest.allowedInlineCsiDrivers",
                                v.name
                            ),
                            remediation: format!(
                                "Use a persistentVolumeClaim on an encrypting StorageClass{} instead, or, if driver {driver:?} only delivers secrets or certificates (no PHI) or encrypts its storage, add it to encryptionAtRest.allowedInlineCsiDrivers. Allowed drivers: {}.",
                                self.available_suffix(),
                                join(cfg.allowed_inline_csi_drivers.iter())
                            ),
                        }
                        .finding(cfg.mode, path),
                    );
            }
            _ => {}
        }
    }

    /// A pod volume that names a PVC: look it up, then judge its binding.
    pub(super) fn pod_claim(&self, volume: &str, claim: &str) -> Option<Problem> {
        if claim.is_empty() {
            return Some(Problem {
                reason: Reason::ClaimWithoutName,
                message: format!(
                    "volume {volume:?} is a persistentVolumeClaim volume without a claimName"
                ),
                remediation: "Set persistentVolumeClaim.claimName to a PersistentVolumeClaim on an encrypting StorageClass.".into(),
            });
        }
        let Some(pvc) = self.ctx.cluster.pvc(self.namespace, claim) else {
            return Some(Problem {
                reason: Reason::UnknownClaim,
                message: format!(
                    "volume {volume:?} uses PersistentVolumeClaim {claim:?}, which does not exist in namespace {:?} as far as phi-guard knows, so its storage cannot be proven encrypted",
                    self.namespace
                ),
                remediation: format!(
                    "Create PersistentVolumeClaim {claim:?} (on an encrypting StorageClass{}) before the workload, or check the claim name.",
                    self.available_suffix()
                ),
            });
        };
        let subject = || format!("volume {volume:?} uses PersistentVolumeClaim {claim:?}");
        let spec = ClaimSpec {
            storage_class_name: pvc.storage_class_name.clone(),
            volume_name: pvc.volume_name.clone(),
        };
        self.claim(&subject, &spec, &pvc.annotations).map(|mut pr| {
            pr.remediation.push_str(&format!(
                " A claim's storageClassName cannot change: create a new PersistentVolumeClaim on an encrypting class, migrate the data and point volume {volume:?} at it."
            ));
            pr
        })
    }

    /// Judge a claim's storage binding. `subject` reads as the start of a sentence naming the
    /// claim ("volume \"data\" uses PersistentVolumeClaim \"pg\""); it is written only when
    /// a finding is (most claims pass).
    pub(super) fn claim(
        &self,
        subject: Lazy<'_>,
        spec: &ClaimSpec,
        annotations: &Labels,
    ) -> Option<Problem> {
        let cluster = self.ctx.cluster;
        match spec.storage_class_name.as_deref() {
            None => match cluster.default_storage_class() {
                Some(sc) => self.class(
                    &|| {
                        format!(
                            "{} whose storageClassName is unset, so it gets the default StorageClass {:?} (provisioner {}), which",
                            subject(), sc.name, sc.provisioner
                        )
                    },
                    &sc,
                    annotations,
                ),
                None => Some(Problem {
                    reason: Reason::NoDefaultStorageClass,
                    message: format!(
                        "{} whose storageClassName is unset, and the cluster has no default StorageClass (annotation storageclass.kubernetes.io/is-default-class: \"true\"), so its storage cannot be proven encrypted",
                        subject()
                    ),
                    remediation: format!(
                        "Set storageClassName to an encrypting StorageClass{}.",
                        self.available_suffix()
                    ),
                }),
            },
            Some("") => self.static_binding(subject, spec.volume_name.as_deref(), annotations),
            Some(name) => match cluster.storage_class(name) {
                Some(sc) => self.class(
                    &|| {
                        format!(
                            "{} whose StorageClass {name:?} (provisioner {})",
                            subject(),
                            sc.provisioner
                        )
                    },
                    &sc,
                    annotations,
                ),
                None => Some(Problem {
                    reason: Reason::UnknownStorageClass,
                    message: format!(
                        "{} whose StorageClass {name:?} does not exist as far as phi-guard knows, so its storage cannot be proven encrypted",
                        subject()
                    ),
                    remediation: format!(
                        "Create StorageClass {name:?} with encryption enabled first, or set storageClassName to an existing encrypting StorageClass{}.",
                        self.available_suffix()
                    ),
                }),
            },
        }
    }

    /// `storageClassName: ""`: the claim binds to a pre-provisioned PV; judge that PV.
    pub(super) fn static_binding(
        &self,
        subject: Lazy<'_>,
        volume_name: Option<&str>,
        annotations: &Labels,
    ) -> Option<Problem> {
        let Some(pv_name) = volume_name.filter(|n| !n.is_empty()) else {
            return Some(Problem {
                reason: Reason::StaticBindingWithoutVolume,
                message: format!(
                    "{} whose storageClassName is \"\" (static binding) but whose spec.volumeName names no PersistentVolume, so phi-guard cannot tell which storage backs it",
                    subject()
                ),
                remediation: format!(
                    "Set spec.volumeName to a PersistentVolume on encrypted storage, or set storageClassName to an encrypting StorageClass{}.",
                    self.available_suffix()
                ),
            });
        };
        let Some(pv) = self.ctx.cluster.pv(pv_name) else {
            return Some(Problem {
                reason: Reason::UnknownPersistentVolume,
                message: format!(
                    "{} whose storageClassName is \"\" (static binding) to PersistentVolume {pv_name:?}, which phi-guard does not know, so its storage cannot be proven encrypted",
                    subject()
                ),
                remediation: format!(
                    "Create PersistentVolume {pv_name:?} on encrypted storage first, or use an encrypting StorageClass{}.",
                    self.available_suffix()
                ),
            });
        };
        let lead = || {
            format!(
                "{} whose storageClassName is \"\" (static binding) to PersistentVolume {pv_name:?}",
                subject()
            )
        };
        if let Some(sc) = pv
            .storage_class_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .and_then(|n| self.ctx.cluster.storage_class(n))
        {
            return self.class(
                &|| {
                    format!(
                        "{}, whose StorageClass {:?} (provisioner {})",
                        lead(),
                        sc.name,
                        sc.provisioner
                    )
                },
                &sc,
                annotations,
            );
        }
        if let Some(driver) = pv.csi_driver.as_deref() {
            let verdict = self.provisioner_verdict(
                driver,
                &pv.csi_attributes,
                "spec.csi.volumeAttributes",
                annotations,
            );
            return self.verdict_problem(
                &|| format!("{} (CSI driver {driver}), which", lead()),
                verdict,
                &|| format!("PersistentVolume {pv_name:?}"),
            );
        }
        let source = pv
            .source_type
            .as_deref()
            .unwrap_or("an unknown volume source");
        let lead = lead();
        Some(Problem {
            reason: Reason::UnprovableVolumeSource,
            message: format!(
                "{lead}, which is backed by {source}, a source phi-guard cannot prove encrypted at rest"
            ),
            remediation: format!(
                "Bind the claim to a CSI PersistentVolume whose driver encrypts, or use an encrypting StorageClass{}.",
                self.available_suffix()
            ),
        })
    }

    /// Judge a StorageClass. `lead` names the claim and class; the reason follows it.
    pub(super) fn class(
        &self,
        lead: Lazy<'_>,
        sc: &StorageClassInfo,
        annotations: &Labels,
    ) -> Option<Problem> {
        let verdict = self.class_verdict(sc, annotations);
        self.verdict_problem(lead, verdict, &|| format!("StorageClass {:?}", sc.name))
    }

    /// Turn a verdict into a problem, after applying the provider-default attestation.
    pub(super) fn verdict_problem(
        &self,
        lead: Lazy<'_>,
        verdict: Verdict,
        object: Lazy<'_>,
    ) -> Option<Problem> {
        match verdict {
            Verdict::Encrypted => None,
            Verdict::ProviderDefault(_) if self.cfg.attest_provider_default_encryption => None,
            Verdict::ProviderDefault(what) => Some(Problem {
                reason: Reason::ProviderDefaultNotAttested,
                message: format!(
                    "{} relies on provider-default encryption ({what}), which counts only when the policy attests it",
                    lead()
                ),
                remediation: format!(
                    "Use a StorageClass with explicit (customer-managed key) encryption{}, or, if a BAA with the provider covers {}, set encryptionAtRest.attestProviderDefaultEncryption: true in the PhiPolicy.",
                    self.available_suffix(),
                    object()
                ),
            }),
            Verdict::NodeDisk(_) if self.cfg.attest_node_disk_encryption => None,
            Verdict::NodeDisk(what) => Some(Problem {
                reason: Reason::NodeDiskNotAttested,
                message: format!("{} is not encrypted by its driver: {what}", lead()),
                remediation: format!(
                    "Use an encrypting StorageClass{}, or, if the disks underneath {} are encrypted (LUKS on the nodes, Rook CephCluster encryptedDevice), set encryptionAtRest.attestNodeDiskEncryption: true in the PhiPolicy.",
                    self.available_suffix(),
                    object()
                ),
            }),
            Verdict::Not { reason, fix } => Some(Problem {
                reason: Reason::UnencryptedStorageClass,
                message: format!("{} {reason}", lead()),
                remediation: format!(
                    "{fix}{}. Alternatively list a class whose encryption phi-guard cannot see in encryptionAtRest.encryptedStorageClasses.",
                    self.available_suffix()
                ),
            }),
        }
    }

    /// Does the StorageClass encrypt? The policy's allowlist and custom matchers come first,
    /// then built-in provisioner knowledge.
    pub(super) fn class_verdict(&self, sc: &StorageClassInfo, annotations: &Labels) -> Verdict {
        if self.cfg.encrypted_storage_classes.contains(&sc.name) {
            return Verdict::Encrypted;
        }
        self.provisioner_verdict(&sc.provisioner, &sc.parameters, "parameters", annotations)
    }

    /// Custom matchers, then built-in knowledge, for a provisioner and its parameters.
    pub(super) fn provisioner_verdict(
        &self,
        provisioner: &str,
        params: &BTreeMap<String, String>,
        field: &str,
        annotations: &Labels,
    ) -> Verdict {
        let custom = self.cfg.provisioners.iter().any(|(p, wanted)| {
            p.eq_ignore_ascii_case(provisioner)
                && wanted.iter().all(|(k, v)| {
                    param(params, k).is_some_and(|have| have.trim().eq_ignore_ascii_case(v))
                })
        });
        if custom {
            return Verdict::Encrypted;
        }
        builtin_verdict(provisioner, params, field, annotations)
    }

    /// ": encrypting StorageClasses available: a, b" (or a hint that none is known). The hint
    /// names at most [`HINT_NAMES`] classes and is skipped in clusters with more than
    /// [`HINT_MAX_CLASSES`] StorageClasses, so a denial costs the same at any cluster size.
    pub(super) fn available_suffix(&self) -> String {
        let names = self.available.get_or_init(|| {
            if self.ctx.cluster.storage_class_count() > HINT_MAX_CLASSES {
                return Vec::new();
            }
            self.ctx
                .cluster
                .storage_classes()
                .iter()
                .filter(|sc| self.class_verdict(sc, &Labels::new()) == Verdict::Encrypted)
                .map(|sc| sc.name.clone())
                .collect()
        });
        let count = self.ctx.cluster.storage_class_count();
        if count > HINT_MAX_CLASSES {
            format!(" (the cluster has {count} StorageClasses: pick one that encrypts)")
        } else if names.is_empty() {
            format!(
                " ({} in the cluster; create one)",
                crate::verdict::notes::NO_ENCRYPTING_CLASS
            )
        } else if names.len() > HINT_NAMES {
            format!(
                " (encrypting classes available: {}, and {} more)",
                names[..HINT_NAMES].join(", "),
                names.len() - HINT_NAMES
            )
        } else {
            format!(" (encrypting classes available: {})", names.join(", "))
        }
    }
}

/// At most this many encrypting class names in a remediation hint.
pub(super) const HINT_NAMES: usize = 5;
/// Above this many StorageClasses the hint is not computed (it would cost a full scan per review).
pub(super) const HINT_MAX_CLASSES: usize = 200;
