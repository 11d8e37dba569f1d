//! From a finding to its fix: which findings are mechanical and what each writes. A finding
//! not named here is a judgement and stays a finding, with why.

use super::edit::{scalar, Patch};
use super::network::Isolate;
use super::{patch_at, path_steps, value_at, Action, Context, FindingRef, Target};
use crate::cluster::files::Step;
use crate::policy::TransitEvidence;
use crate::rules::encryption_at_rest::encrypting_classes;
use crate::rules::encryption_in_transit::MESH_BYPASS_ANNOTATIONS;
use crate::rules::RuleContext;
use crate::verdict::Reason;

/// The form of in-transit evidence `fix` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransitForm {
    /// Pod label `sidecar.istio.io/inject: "true"`.
    Istio,
    /// Pod label `istio.io/dataplane-mode: ambient`.
    Ambient,
    /// Pod annotations `linkerd.io/inject: enabled` and an authenticated default inbound policy.
    Linkerd,
    /// A csi.cert-manager.io volume mounted into the serving containers.
    CertManager,
}

impl TransitForm {
    fn evidence(self) -> TransitEvidence {
        match self {
            TransitForm::Istio => TransitEvidence::IstioSidecar,
            TransitForm::Ambient => TransitEvidence::IstioAmbient,
            TransitForm::Linkerd => TransitEvidence::Linkerd,
            TransitForm::CertManager => TransitEvidence::AppTls,
        }
    }
}

/// In order of preference when the user names none: the policy's evidence as its
/// `acceptedEvidence` lists it by default.
const FORMS: [TransitForm; 4] = [
    TransitForm::Istio,
    TransitForm::Ambient,
    TransitForm::Linkerd,
    TransitForm::CertManager,
];

/// The annotation that makes ingress-nginx serve TLS hosts over plain HTTP too.
const SSL_REDIRECT: &str = "nginx.ingress.kubernetes.io/ssl-redirect";

/// The names of what `fix` adds.
const LOG_VOLUME: &str = "phi-audit-logs";
const LOG_PATH: &str = "/var/log/phi-audit";
const SIDECAR: &str = "audit-log-shipper";
const TLS_VOLUME: &str = "phi-tls";
const TLS_PATH: &str = "/etc/phi-guard/tls";

/// The fix of one finding, chosen by its reason code (never by its wording).
pub(super) fn action(t: &Target<'_>, f: &FindingRef<'_>, ctx: &Context<'_>) -> Action {
    let steps = path_steps(f.path);
    let is = |r: Reason| f.reason == r.as_str();
    match f.rule {
        "encryption-at-rest" => storage_class(t, &steps, ctx),
        "audit-sidecar" if is(Reason::NoAuditSidecar) => match steps.split_last() {
            Some((Step::Key(k), pod)) if k == "containers" => audit_sidecar(t, pod, ctx),
            _ => judgement(),
        },
        "encryption-in-transit" => {
            if let Some((Step::Key(key), map)) = steps.split_last() {
                if map.last() == Some(&Step::Key("annotations".into()))
                    && (MESH_BYPASS_ANNOTATIONS.contains(&key.as_str()) || key == SSL_REDIRECT)
                {
                    return Action::Delete {
                        map: map.to_vec(),
                        key: key.clone(),
                        what: format!("removed annotation {key}"),
                    };
                }
            }
            if is(Reason::NoTransitEvidence) {
                return transit(t, &steps, ctx);
            }
            judgement()
        }
        "network-segmentation"
            if is(Reason::IngressNotIsolated) || is(Reason::EgressNotIsolated) =>
        {
            match Isolate::new(t, &steps) {
                Some(i) => Action::Isolate(i),
                None => Action::Keep("the pods have no labels to select them by".into()),
            }
        }
        _ => judgement(),
    }
}

fn judgement() -> Action {
    Action::Keep("a judgement: stays a finding (see its fix text)".into())
}

/// `storageClassName` of the claim the finding is about set to an encrypting class.
fn storage_class(t: &Target<'_>, steps: &[Step], ctx: &Context<'_>) -> Action {
    let claim: Vec<Step> = if t.kind == "PersistentVolumeClaim" {
        vec![Step::Key("spec".into())]
    } else if is_claim_template(steps) {
        let mut c = steps.to_vec();
        c.push(Step::Key("spec".into()));
        c
    } else if value_at(t.value, steps)
        .and_then(|v| v.pointer("/ephemeral/volumeClaimTemplate/spec"))
        .is_some()
    {
        // A generic ephemeral volume: its claim template is in the pod.
        let mut c = steps.to_vec();
        c.extend(["ephemeral", "volumeClaimTemplate", "spec"].map(|k| Step::Key(k.into())));
        c
    } else {
        return claim_elsewhere(t, steps);
    };
    let Some(spec) = value_at(t.value, &claim) else {
        return Action::Keep("the claim has no spec".into());
    };
    let (class, why) = match choose_class(ctx) {
        Ok(c) => c,
        Err(why) => return Action::Keep(why),
    };
    if spec.get("storageClassName").and_then(|v| v.as_str()) == Some(class.as_str()) {
        return Action::Keep(format!(
            "already on {class:?}; its class does not encrypt as the policy reads it"
        ));
    }
    let mut path = claim;
    path.push(Step::Key("storageClassName".into()));
    Action::Patch {
        patch: patch_at(&path, Patch::Scalar(scalar(&class))),
        what: format!("storageClassName set to {class:?} ({why})"),
    }
}

/// `spec.volumeClaimTemplates[i]`: a StatefulSet's claim template.
fn is_claim_template(steps: &[Step]) -> bool {
    matches!(steps, [Step::Key(s), Step::Key(v), Step::Index(_)]
        if s == "spec" && v == "volumeClaimTemplates")
}

/// A volume whose claim is defined elsewhere (fixed there), or a judgement.
fn claim_elsewhere(t: &Target<'_>, steps: &[Step]) -> Action {
    let volume = value_at(t.value, steps);
    if volume
        .and_then(|v| v.get("persistentVolumeClaim"))
        .is_some()
    {
        return Action::Keep(
            "fixed where its PersistentVolumeClaim is defined (give fix that file too)".into(),
        );
    }
    judgement()
}

/// The encrypting class a claim goes to, and why that one.
fn choose_class(ctx: &Context<'_>) -> Result<(String, String), String> {
    let mut listed: Vec<String> = Vec::new();
    let mut found: Vec<(String, bool)> = Vec::new();
    for p in ctx.policies {
        let Some(cfg) = &p.encryption_at_rest else {
            continue;
        };
        let rc = RuleContext::new(ctx.cluster, p, None);
        for c in encrypting_classes(&rc, cfg) {
            if !found.contains(&c) {
                found.push(c);
            }
        }
        listed.extend(cfg.encrypted_storage_classes.iter().cloned());
    }
    if let Some((name, _)) = found.iter().find(|(_, default)| *default) {
        return Ok((
            name.clone(),
            "the cluster's default class, and it encrypts".into(),
        ));
    }
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    match names.as_slice() {
        [] => {}
        [one] => {
            return Ok((
                one.to_string(),
                "the only encrypting StorageClass in the cluster state".into(),
            ))
        }
        [first, ..] => {
            return Ok((
                first.to_string(),
                format!(
                    "first by name of the encrypting classes {}; pass another in the file if it suits better",
                    names.join(", ")
                ),
            ))
        }
    }
    listed.sort();
    listed.dedup();
    match listed.first() {
        Some(name) => Ok((name.clone(), "listed in the policy's encryptedStorageClasses".into())),
        None => Err(format!("{} (none in the cluster state, none in the policy's encryptedStorageClasses): create one, then run fix again; nothing changed", crate::verdict::notes::NO_ENCRYPTING_CLASS)),
    }
}

/// The approved audit sidecar with its log volume, as a native sidecar where the kind needs it.
fn audit_sidecar(t: &Target<'_>, pod: &[Step], ctx: &Context<'_>) -> Action {
    let cfgs: Vec<_> = ctx
        .policies
        .iter()
        .filter_map(|p| p.audit_sidecar.as_ref())
        .collect();
    let Some(first) = cfgs.first() else {
        return judgement();
    };
    let image = match &ctx.options.sidecar_image {
        Some(i) if cfgs.iter().all(|c| c.image_approved(i)) => i.clone(),
        Some(_) => {
            return Action::Keep(
                "the --sidecar-image given is not approved by the policy; nothing changed".into(),
            )
        }
        None => {
            match first.approved_image_patterns.iter().find(|p| {
                !p.contains(['*', '?', '[', '{']) && cfgs.iter().all(|c| c.image_approved(p))
            }) {
                Some(p) => p.clone(),
                None => return Action::Keep(
                    "the policy names no approved image without a wildcard: pass --sidecar-image"
                        .into(),
                ),
            }
        }
    };
    let name = SIDECAR;
    if cfgs.iter().any(|c| {
        c.container_names
            .as_ref()
            .is_some_and(|g| !g.is_match(name))
    }) {
        return Action::Keep(format!(
            "the policy's containerNames do not allow the name {name:?}: add the sidecar by hand"
        ));
    }
    let native = matches!(t.kind, "Job" | "CronJob")
        || value_at(t.value, pod)
            .and_then(|s| s.get("restartPolicy"))
            .and_then(|r| r.as_str())
            .is_some_and(|r| r != "Always");
    let mount = |read_only: bool| {
        let mut m = vec![
            ("name".to_string(), Patch::Scalar(LOG_VOLUME.into())),
            ("mountPath".to_string(), Patch::Scalar(LOG_PATH.into())),
        ];
        if read_only {
            m.push(("readOnly".into(), Patch::Scalar("true".into())));
        }
        Patch::Map(m)
    };
    let mut sidecar = vec![
        ("name".to_string(), Patch::Scalar(scalar(name))),
        ("image".to_string(), Patch::Scalar(scalar(&image))),
    ];
    if native {
        sidecar.push(("restartPolicy".into(), Patch::Scalar("Always".into())));
    }
    sidecar.push(("volumeMounts".into(), Patch::append(vec![mount(true)])));
    let spec = value_at(t.value, pod);
    let mut entries = Vec::new();
    // The app containers write their logs where the sidecar reads them.
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(|c| c.as_array())
        .map_or(0, Vec::len);
    let mounts: Vec<(usize, Patch)> = (0..containers)
        .map(|i| {
            let m = Patch::append(vec![mount(false)]);
            (i, Patch::Map(vec![("volumeMounts".into(), m)]))
        })
        .collect();
    let sidecar = Patch::append(vec![Patch::Map(sidecar)]);
    if native {
        entries.push(("containers".to_string(), Patch::items(mounts)));
        entries.push(("initContainers".to_string(), sidecar));
    } else {
        let mut containers = Patch::items(mounts);
        containers.merge(sidecar);
        entries.push(("containers".to_string(), containers));
    }
    let has_volume = spec
        .and_then(|s| s.get("volumes"))
        .and_then(|v| v.as_array())
        .is_some_and(|v| {
            v.iter()
                .any(|v| v.get("name").and_then(|n| n.as_str()) == Some(LOG_VOLUME))
        });
    if !has_volume {
        entries.push((
            "volumes".into(),
            Patch::append(vec![Patch::Map(vec![
                ("name".into(), Patch::Scalar(LOG_VOLUME.into())),
                (
                    "emptyDir".into(),
                    Patch::Map(vec![("medium".into(), Patch::Scalar("Memory".into()))]),
                ),
            ])]),
        ));
    }
    let mut patch = Patch::Map(Vec::new());
    for e in entries {
        patch.merge(Patch::Map(vec![e]));
    }
    let placement = if native {
        "a native sidecar (initContainers, restartPolicy: Always)"
    } else {
        "a sidecar container"
    };
    Action::Patch {
        patch: patch_at(pod, patch),
        what: format!(
            "added audit sidecar {name:?} ({image}) as {placement}, with an in-memory log volume {LOG_VOLUME:?} at {LOG_PATH} shared with the app containers"
        ),
    }
}

/// In-transit evidence in the form the user or the policy picks.
fn transit(t: &Target<'_>, meta: &[Step], ctx: &Context<'_>) -> Action {
    let accepted = |f: TransitForm| {
        ctx.policies
            .iter()
            .filter_map(|p| p.encryption_in_transit.as_ref())
            .all(|c| c.accepts(f.evidence()))
    };
    let form = match ctx.options.transit {
        Some(f) if accepted(f) => f,
        Some(_) => {
            return Action::Keep("the policy does not accept the --transit form given".into())
        }
        None => match FORMS.into_iter().find(|f| accepted(*f)) {
            Some(f) => f,
            None => return judgement(),
        },
    };
    let pair = |k: &str, v: &str| (k.to_string(), Patch::Scalar(scalar(v)));
    let (patch, what) = match form {
        TransitForm::Istio => (
            Patch::Map(vec![("labels".into(), Patch::Map(vec![pair("sidecar.istio.io/inject", "true")]))]),
            "added pod label sidecar.istio.io/inject: \"true\" (Istio sidecar injection; the namespace still needs a STRICT PeerAuthentication)",
        ),
        TransitForm::Ambient => (
            Patch::Map(vec![("labels".into(), Patch::Map(vec![pair("istio.io/dataplane-mode", "ambient")]))]),
            "added pod label istio.io/dataplane-mode: ambient (Istio ambient; the namespace still needs a STRICT PeerAuthentication)",
        ),
        TransitForm::Linkerd => (
            Patch::Map(vec![(
                "annotations".into(),
                Patch::Map(vec![
                    pair("linkerd.io/inject", "enabled"),
                    pair("config.linkerd.io/default-inbound-policy", "all-authenticated"),
                ]),
            )]),
            "added pod annotations linkerd.io/inject: enabled and config.linkerd.io/default-inbound-policy: all-authenticated",
        ),
        TransitForm::CertManager => return cert_manager(t, meta, ctx),
    };
    Action::Patch {
        patch: patch_at(meta, patch),
        what: what.to_string(),
    }
}

/// A csi.cert-manager.io volume mounted into the containers that serve (those with ports).
fn cert_manager(t: &Target<'_>, meta: &[Step], ctx: &Context<'_>) -> Action {
    let Some((kind, issuer)) = ctx
        .options
        .tls_issuer
        .as_deref()
        .and_then(|i| i.split_once('/'))
    else {
        return Action::Keep(
            "cert-manager TLS needs an issuer: pass --tls-issuer Kind/name (e.g. ClusterIssuer/clinic-ca)".into(),
        );
    };
    let mut pod = meta.to_vec();
    if pod.pop() != Some(Step::Key("metadata".into())) {
        return judgement();
    }
    pod.push(Step::Key("spec".into()));
    let containers: Vec<bool> = value_at(t.value, &pod)
        .and_then(|s| s.get("containers"))
        .and_then(|c| c.as_array())
        .map(|c| c.iter().map(|c| c.get("ports").is_some()).collect())
        .unwrap_or_default();
    let serving: Vec<usize> = match containers.iter().any(|p| *p) {
        true => (0..containers.len()).filter(|i| containers[*i]).collect(),
        false => (0..containers.len()).collect(),
    };
    let mount = Patch::Map(vec![
        ("name".into(), Patch::Scalar(TLS_VOLUME.into())),
        ("mountPath".into(), Patch::Scalar(TLS_PATH.into())),
        ("readOnly".into(), Patch::Scalar("true".into())),
    ]);
    let attr = |k: &str, v: &str| (format!("csi.cert-manager.io/{k}"), Patch::Scalar(scalar(v)));
    let volume = Patch::Map(vec![
        ("name".into(), Patch::Scalar(TLS_VOLUME.into())),
        (
            "csi".into(),
            Patch::Map(vec![
                ("driver".into(), Patch::Scalar("csi.cert-manager.io".into())),
                ("readOnly".into(), Patch::Scalar("true".into())),
                (
                    "volumeAttributes".into(),
                    Patch::Map(vec![
                        attr("issuer-name", issuer),
                        attr("issuer-kind", kind),
                        attr("dns-names", &format!("{}.{}.svc", t.name, t.namespace)),
                    ]),
                ),
            ]),
        ),
    ]);
    let patch = Patch::Map(vec![
        (
            "containers".into(),
            Patch::items(
                serving
                    .into_iter()
                    .map(|i| {
                        (
                            i,
                            Patch::Map(vec![(
                                "volumeMounts".into(),
                                Patch::append(vec![mount.clone()]),
                            )]),
                        )
                    })
                    .collect(),
            ),
        ),
        ("volumes".into(), Patch::append(vec![volume])),
    ]);
    Action::Patch {
        patch: patch_at(&pod, patch),
        what: format!(
            "added a csi.cert-manager.io volume {TLS_VOLUME:?} (issuer {kind}/{issuer}) mounted at {TLS_PATH} in the serving containers: serve TLS with tls.crt and tls.key from there"
        ),
    }
}
