//! Judging documents as the webhook would: state, policies and exceptions gathered from the
//! documents, every checkable object decoded into its lean form and judged once everything is
//! read. Shared by `check` (files, streamed) and `report` (files or a cluster's objects).

use std::collections::HashMap;
use std::sync::Arc;

use super::results::{
    object_result, CheckError, Interner, ObjectResult, Report, SkipReason, Skipped,
};
use crate::cluster::files::{self, Document};
use crate::cluster::ClusterState;
use crate::engine;
use crate::object::{Kind, Object};
use crate::policy::exception::{self, PhiException};
use crate::policy::{hipaa_baseline, PhiPolicy, Policy, PolicySet};
use crate::verdict::Decision;

/// Namespace of manifests that do not set one (as `kubectl apply` without `-n`).
pub(crate) const DEFAULT_NAMESPACE: &str = "default";

/// What judging a set of documents gives: the report, and the policies and exceptions applied.
pub(crate) struct Judged {
    pub(crate) report: Report,
    pub(crate) policies: Vec<Arc<Policy>>,
    pub(crate) exceptions: Vec<Arc<exception::Exception>>,
    /// The cluster state the objects were judged against (for `fix`).
    pub(crate) state: ClusterState,
}

/// Judge `inputs` against the policies and cluster state among all the documents, as the
/// webhook would (`report` on files or a cluster's objects).
pub(crate) fn judge_documents(
    inputs: Vec<Document>,
    state_docs: &[Document],
    policy_docs: &[Document],
) -> Result<Judged, CheckError> {
    let mut judging = Judging::new(state_docs, policy_docs)?;
    for d in inputs {
        judging.take(d)?;
    }
    judging.finish()
}

/// Judging in progress: state, policies and exceptions gathered, objects decoded and waiting.
pub(crate) struct Judging {
    state: ClusterState,
    given: Vec<(String, PhiPolicy)>,
    exceptions: Vec<Arc<exception::Exception>>,
    pending: Vec<Pending>,
    skipped: Vec<Skipped>,
    inputs: usize,
}

impl Judging {
    /// Start from `--policy` documents (PhiPolicies only) and `--cluster-state` documents.
    pub(crate) fn new(
        state_docs: &[Document],
        policy_docs: &[Document],
    ) -> Result<Judging, CheckError> {
        let mut j = Judging {
            state: ClusterState::new(),
            given: Vec::new(),
            exceptions: Vec::new(),
            pending: Vec::new(),
            skipped: Vec::new(),
            inputs: 0,
        };
        for d in policy_docs {
            if !files::is_phi_policy(d) {
                return Err(CheckError::Input {
                    source_ref: d.source.clone(),
                    message: format!(
                        "--policy expects PhiPolicy objects (apiVersion phiguard.io/v1alpha1), found {} {:?}",
                        d.kind,
                        d.name()
                    ),
                });
            }
            j.given.push((d.source.clone(), read_policy(d)?));
        }
        // Cluster state: --cluster-state first, then the inputs (which win on a name clash).
        for d in state_docs {
            j.keep(d)?;
        }
        Ok(j)
    }

    /// Keep what a document says about the cluster: a policy, an exception, or state.
    fn keep(&mut self, d: &Document) -> Result<(), CheckError> {
        if files::is_phi_policy(d) {
            self.given.push((d.source.clone(), read_policy(d)?));
        } else if is_phi_exception(d) {
            self.exceptions.push(Arc::new(read_exception(d)?));
        } else {
            files::load_state(std::slice::from_ref(d), &self.state)?;
        }
        Ok(())
    }

    /// Take one input document.
    pub(crate) fn take(&mut self, d: Document) -> Result<(), CheckError> {
        self.inputs += 1;
        // A pod-running object is decoded once: the state gets the template of the object that
        // is judged, where `keep` would decode the document a second time.
        let once = files::judged_kind(d.group(), &d.kind).is_some_and(|k| k.has_pods())
            && no_own_pods(&d).is_none();
        if !once {
            self.keep(&d)?;
        }
        match take_input(d)? {
            Input::Judged(p) => {
                if once {
                    let written = p.written_kind.as_deref().unwrap_or(p.object.kind.as_str());
                    files::add_template_of(&p.object, written, &self.state);
                }
                self.pending.push(*p)
            }
            Input::Skipped(s) => self.skipped.push(s),
        }
        Ok(())
    }

    /// Judge everything taken, with every policy and exception in force now.
    pub(crate) fn finish(self) -> Result<Judged, CheckError> {
        if self.inputs == 0 {
            return Err(CheckError::NothingToCheck);
        }
        let policies = policy_set(self.given)?;
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let mut results = Vec::with_capacity(self.pending.len());
        let mut texts = Interner::default();
        for p in &self.pending {
            let decision = p.judge(&self.state, &policies, &self.exceptions, now);
            results.push(p.result(&decision, &mut texts));
        }
        let assumed = assumed(&self.pending, &results, &self.state);
        Ok(Judged {
            report: Report {
                results,
                skipped: self.skipped,
                assumed,
                stdin: None,
            },
            policies,
            exceptions: self.exceptions,
            state: self.state,
        })
    }
}

/// Every object judged twice, under the policies in force and under the proposed ones.
pub(crate) struct Compared {
    pub(crate) in_force: Vec<Arc<Policy>>,
    pub(crate) proposed: Vec<Arc<Policy>>,
    /// Each object as `check` reports it in force, with both decisions (in force, proposed).
    pub(crate) objects: Vec<(ObjectResult, Decision, Decision)>,
}

impl Judging {
    /// Judge everything taken under the policies in force and again with `proposed` replacing
    /// the policies of the same names (or added next to them); the same state and exceptions.
    pub(crate) fn finish_compared(
        self,
        proposed: Vec<(String, PhiPolicy)>,
    ) -> Result<Compared, CheckError> {
        if self.inputs == 0 {
            return Err(CheckError::NothingToCheck);
        }
        let replaced: Vec<Option<String>> = proposed
            .iter()
            .map(|(_, p)| p.metadata.name.clone())
            .collect();
        let mut after: Vec<(String, PhiPolicy)> = self
            .given
            .iter()
            .filter(|(_, p)| !replaced.contains(&p.metadata.name))
            .cloned()
            .collect();
        after.extend(proposed);
        let in_force = policy_set(self.given)?;
        let proposed = policy_set(after)?;
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let mut texts = Interner::default();
        let objects = self
            .pending
            .iter()
            .map(|p| {
                let before = p.judge(&self.state, &in_force, &self.exceptions, now);
                let after = p.judge(&self.state, &proposed, &self.exceptions, now);
                (p.result(&before, &mut texts), before, after)
            })
            .collect();
        Ok(Compared {
            in_force,
            proposed,
            objects,
        })
    }
}

/// What the verdicts took for granted: ingress-nginx's controller ConfigMap, when no input gave
/// it and a PHI Ingress's redirect rests on it, at the controller's defaults (HTTP redirected
/// to HTTPS for TLS hosts).
fn assumed(pending: &[Pending], results: &[ObjectResult], state: &ClusterState) -> Vec<String> {
    use crate::view::{ClusterView, PlatformSource};
    let source = PlatformSource::IngressNginx;
    if state.platform_encryption(source).is_some() {
        return Vec::new();
    }
    let resting: Vec<String> = pending
        .iter()
        .zip(results)
        .filter(|(p, r)| {
            r.phi
                && match &p.object.body {
                    crate::object::Body::Ingress(ing) => {
                        crate::rules::encryption_in_transit::redirect_rests_on_global(
                            &p.object, ing,
                        )
                    }
                    _ => false,
                }
        })
        .map(|(p, _)| format!("{}/{}", p.object.namespace, p.object.name))
        .collect();
    if resting.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{} not given (--cluster-state): ingress-nginx's defaults assumed (ssl-redirect: \"true\", \
         force-ssl-redirect: \"false\"), so HTTP is taken as redirected to HTTPS for Ingress {}; \
         give the ConfigMap, or set nginx.ingress.kubernetes.io/force-ssl-redirect: \"true\" on \
         the Ingress to depend on no ConfigMap",
        source.object(),
        resting.join(", ")
    )]
}

fn is_phi_exception(d: &Document) -> bool {
    d.kind == "PhiException" && d.api_version.starts_with("phiguard.io/")
}

/// Read a PhiException document, naming the field that is wrong (exit 2).
fn read_exception(d: &Document) -> Result<exception::Exception, CheckError> {
    let x: PhiException =
        serde_json::from_value(d.value.clone()).map_err(|e| CheckError::Input {
            source_ref: d.source.clone(),
            message: format!(
                "not a valid PhiException: {}",
                crate::telemetry::redact(&e.to_string())
            ),
        })?;
    exception::parse(&x).map_err(|m| CheckError::Input {
        source_ref: files::object_ref(&d.source, &d.kind, &d.name()),
        message: m,
    })
}

/// An input object to judge once everything is read: its lean form, not its tree.
struct Pending {
    object: Object,
    /// The kind as written, when it is a custom resource judged as a built-in kind.
    written_kind: Option<String>,
    source: String,
}

impl Pending {
    /// The decision on this object under `policies`, exceptions applied.
    fn judge(
        &self,
        state: &ClusterState,
        policies: &[Arc<Policy>],
        exceptions: &[Arc<exception::Exception>],
        now: i64,
    ) -> Decision {
        let decision = engine::evaluate(&self.object, state, policies);
        exception::apply(decision, &self.object, exceptions, now)
    }

    /// The decision as `check` reports it, the object named as written.
    fn result(&self, decision: &Decision, texts: &mut Interner) -> ObjectResult {
        let mut r = object_result(&self.object, decision, &self.source, texts);
        if let Some(written) = &self.written_kind {
            // A custom resource judged as the built-in kind it mirrors: name it as written.
            let w = &self.object;
            let (judged, own) = (w.display(), format!("{written} {}/{}", w.namespace, w.name));
            for f in &mut r.findings {
                f.message = texts.get(&f.message.replace(&judged, &own));
                f.remediation = texts.get(&f.remediation.replace(&judged, &own));
            }
            r.kind = written.clone();
        }
        r
    }
}

enum Input {
    Judged(Box<Pending>),
    Skipped(Skipped),
}

/// Decide what an input document is: decoded for judging, or listed as skipped with why.
fn take_input(d: Document) -> Result<Input, CheckError> {
    let group = d.group();
    let skip = |reason, message: String| {
        Input::Skipped(Skipped {
            kind: d.kind.clone(),
            api_version: d.api_version.clone(),
            namespace: d.namespace(),
            name: d.name(),
            source: d.source.clone(),
            reason,
            message,
        })
    };
    let kind = match files::judged_kind(group, &d.kind) {
        Some(Kind::Namespace | Kind::NetworkPolicy) => None,
        other => other,
    };
    let Some(kind) = kind else {
        return Ok(
            if files::is_phi_policy(&d)
                || files::is_state_kind(group, &d.kind)
                || files::is_platform_config_map(&d)
            {
                skip(SkipReason::ClusterState, "read as cluster state".into())
            } else if let Some(path) = files::pod_spec_path(&d.value) {
                skip(
                    SkipReason::KindNotJudged,
                    format!(
                        "runs pods ({path}): they are judged when they are created (the webhook judges each Pod with the same rules), not here"
                    ),
                )
            } else if files::operator_runs_pods(group, &d.kind) {
                skip(
                    SkipReason::KindNotJudged,
                    "its operator runs pods and claims volumes for it: they are judged when they \
                     are created (the webhook judges each Pod and PersistentVolumeClaim with the \
                     same rules), not here"
                        .into(),
                )
            } else {
                skip(SkipReason::KindNotJudged, "kind not judged".into())
            },
        );
    };
    if let Some(message) = no_own_pods(&d) {
        return Ok(skip(SkipReason::KindNotJudged, message));
    }
    let object = files::decode_object(kind, &d.value, Some(DEFAULT_NAMESPACE)).map_err(|m| {
        CheckError::Input {
            source_ref: files::object_ref(&d.source, &d.kind, &d.name()),
            message: m,
        }
    })?;
    Ok(Input::Judged(Box::new(Pending {
        object,
        written_kind: (d.kind != kind.as_str()).then(|| d.kind.clone()),
        source: d.source,
    })))
}

/// An Argo Rollout that takes its pods from a Deployment (`spec.workloadRef`) has no pod
/// template of its own: judging it would report an empty pod. Say where the pods are judged.
fn no_own_pods(d: &files::Document) -> Option<String> {
    if d.kind != "Rollout" {
        return None;
    }
    let spec = d.value.get("spec")?;
    if spec.get("template").is_some() {
        return None;
    }
    let r = spec.get("workloadRef")?;
    let kind = r
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("Deployment");
    let name = r.get("name").and_then(|k| k.as_str()).unwrap_or_default();
    Some(format!(
        "takes its pods from spec.workloadRef ({kind} {name:?}): that {kind} is judged instead"
    ))
}

/// Decode a PhiPolicy document, naming the field when its shape is wrong (an unknown mode, a
/// string where a list belongs), as the API server's schema validation would.
pub(crate) fn read_policy(d: &Document) -> Result<PhiPolicy, CheckError> {
    files::decode::<PhiPolicy>(&d.value).map_err(|m| CheckError::InvalidPolicy {
        source_ref: d.source.clone(),
        message: format!("PhiPolicy {:?}: {m}", d.name()),
    })
}

/// Validate the given policies with the one parser; none given means the built-in baseline.
pub(crate) fn policy_set(given: Vec<(String, PhiPolicy)>) -> Result<Vec<Arc<Policy>>, CheckError> {
    if given.is_empty() {
        let set = PolicySet::build(&[hipaa_baseline()]);
        return Ok(set.policies);
    }
    let mut sources: HashMap<String, String> = HashMap::new();
    for (source, p) in &given {
        let name = p.metadata.name.clone().unwrap_or_default();
        if let Some(first) = sources.insert(name.clone(), source.clone()) {
            return Err(CheckError::DuplicatePolicy {
                name,
                first,
                second: source.clone(),
            });
        }
    }
    let policies: Vec<PhiPolicy> = given.into_iter().map(|(_, p)| p).collect();
    let set = PolicySet::build(&policies);
    if let Some(r) = set.rejected.first() {
        return Err(CheckError::InvalidPolicy {
            source_ref: sources.get(&r.name).cloned().unwrap_or_default(),
            message: r.error.clone(),
        });
    }
    Ok(set.policies)
}
