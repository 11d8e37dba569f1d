//! One admission request judged: decode the object(s) once, run the engine against a snapshot
//! of the caches, and answer. Fail closed: an object of a known kind that cannot be decoded, or
//! a request that needs the caches before they have synced, is refused, never admitted unjudged.

use std::borrow::Cow;
use std::sync::Arc;

use crate::engine;
use crate::object::{Body, Kind, Object};
use crate::policy::exception::{self, Exception, PhiException};
use crate::policy::{Policy, SYSTEM_NAMESPACES};
use crate::verdict::Decision;
use crate::view::{ClusterView, NetworkPolicyInfo};

use super::admission::{AdmissionRequest, AdmissionResponse, ObjectField, Operation, Status};

/// The verdict on one request, with what logs and metrics need (never object content).
#[derive(Debug)]
pub struct ReviewAnswer {
    pub response: AdmissionResponse,
    /// The kind when phi-guard knows it.
    pub kind: Option<Kind>,
    /// The engine's decision, when one was made.
    pub decision: Option<Decision>,
    /// `allowed`, `denied` (by a finding) or `invalid` (refused without a decision).
    pub label: &'static str,
}

impl ReviewAnswer {
    fn skip(uid: &str, kind: Option<Kind>, warning: Option<String>) -> ReviewAnswer {
        let mut response = AdmissionResponse::allow(uid);
        response.warnings.extend(warning);
        ReviewAnswer {
            response,
            kind,
            decision: None,
            label: "allowed",
        }
    }

    fn invalid(uid: &str, kind: Option<Kind>, status: Status) -> ReviewAnswer {
        ReviewAnswer {
            response: AdmissionResponse::refuse(uid, status),
            kind,
            decision: None,
            label: "invalid",
        }
    }

    fn decided(uid: &str, kind: Kind, object: &str, decision: Decision) -> ReviewAnswer {
        let response = AdmissionResponse::from_decision(uid, object, &decision);
        ReviewAnswer {
            label: if decision.allowed {
                "allowed"
            } else {
                "denied"
            },
            response,
            kind: Some(kind),
            decision: Some(decision),
        }
    }
}

/// Judge one request against `policies` and what `cluster` shows. `ready`: every cache has
/// synced.
pub fn judge(
    req: &AdmissionRequest<'_>,
    policies: &[Arc<Policy>],
    exceptions: &[Arc<Exception>],
    cluster: &dyn ClusterView,
    ready: bool,
) -> ReviewAnswer {
    let uid = req.uid.as_str();
    let kind = Kind::from_group_kind(&req.kind.group, &req.kind.kind);
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    if req.kind.group == "phiguard.io" && req.kind.kind == "PhiException" {
        return judge_exception(req, policies, now);
    }

    // Subresources (status, scale, binding, eviction, exec ...) carry other object types or
    // controller bookkeeping; judging them would block kubelets and controllers on objects that
    // were judged when created.
    if req.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        return ReviewAnswer::skip(uid, kind, None);
    }
    let needs_state = match (req.operation, kind) {
        (Operation::Connect, _) | (_, None) => false,
        (Operation::Delete, Some(k)) => k == Kind::NetworkPolicy,
        (Operation::Create | Operation::Update, Some(_)) => true,
    };
    let Some(kind) = kind else {
        let warning = matches!(req.operation, Operation::Create | Operation::Update).then(|| {
            let gk = if req.kind.group.is_empty() {
                req.kind.kind.clone()
            } else {
                format!("{}/{}", req.kind.group, req.kind.kind)
            };
            super::one_line::single_line(
                &format!("phi-guard does not check {gk}; admitted without HIPAA checks"),
                super::admission::MAX_WARNING_CHARS,
            )
        });
        return ReviewAnswer::skip(uid, None, warning);
    };
    if !needs_state {
        return ReviewAnswer::skip(uid, Some(kind), None);
    }
    if !ready && !SYSTEM_NAMESPACES.contains(&req.namespace()) {
        return ReviewAnswer::invalid(
            uid,
            Some(kind),
            Status::failure(
                503,
                "ServiceUnavailable",
                "phi-guard is starting: its cluster caches have not synced yet, so it cannot judge \
                 this object; retry in a few seconds",
            ),
        );
    }

    let decode = |field: &str, obj| decode(req, kind, field, obj);

    match req.operation {
        Operation::Create => match decode("object", req.object.as_ref()) {
            Ok(w) => {
                // A new NetworkPolicy is judged only by what it opens (below): no rule reads
                // the policy object itself, and one that opens nothing needs no namespace read.
                let mut d = if kind == Kind::NetworkPolicy {
                    Decision::allow()
                } else {
                    engine::evaluate(&w, cluster, policies)
                };
                // A child a controller made: judged through its owner when the owner is
                // verified (only looked up when there is something to inherit).
                let owners = if !d.findings.is_empty() && w.controller.is_some() {
                    engine::owners::verified(&w, cluster)
                } else {
                    Vec::new()
                };
                if let Some(owner) = owners.first() {
                    d = engine::owners::evaluate_made_by(&w, owner, cluster, policies);
                } else if !d.findings.is_empty() && w.controller.is_some() {
                    // An operator's Pod (a CloudNativePG instance): its owner's TLS, confirmed.
                    if let Some(owner) = engine::operator_made::operator_of(&w, cluster) {
                        d = engine::operator_made::credit_owner_tls(d, &w, &owner, policies);
                    }
                }
                if let Body::NetworkPolicy(n) = &w.body {
                    d = Decision::merge(d, engine::network_policy_create(n, cluster, policies));
                }
                let d = exception::apply_with_owners(d, &w, &owners, exceptions, now);
                ReviewAnswer::decided(uid, kind, &w.display(), d)
            }
            Err(st) => ReviewAnswer::invalid(uid, Some(kind), st),
        },
        Operation::Update => {
            let new = match decode("object", req.object.as_ref()) {
                Ok(w) => w,
                Err(st) => return ReviewAnswer::invalid(uid, Some(kind), st),
            };
            let old = match decode("oldObject", req.old_object.as_ref()) {
                Ok(w) => w,
                Err(st) => return ReviewAnswer::invalid(uid, Some(kind), st),
            };
            let actor = engine::Actor::from_username(&req.user);
            let mut d = engine::evaluate_update(&old, &new, cluster, policies, actor);
            let mut changed = engine::classification_change(&old, &new, cluster, policies);
            changed.extend(engine::namespace_labeling(
                &old, &new, cluster, policies, exceptions, now,
            ));
            if !changed.is_empty() {
                d = Decision::merge(d, Decision::from_findings(true, Vec::new(), changed));
            }
            if let (Body::NetworkPolicy(o), Body::NetworkPolicy(n)) = (&old.body, &new.body) {
                d = Decision::merge(
                    d,
                    engine::network_policy_change(o, Some(n), cluster, policies),
                );
            }
            let d = exception::apply(d, &new, exceptions, now);
            ReviewAnswer::decided(uid, kind, &new.display(), d)
        }
        Operation::Delete => {
            // Only NetworkPolicy DELETEs reach here. The API server sends the object being
            // deleted; fall back to the cache if it did not.
            let old: Option<Arc<NetworkPolicyInfo>> = match &req.old_object {
                Some(_) => match decode("oldObject", req.old_object.as_ref()) {
                    Ok(w) => match &w.body {
                        Body::NetworkPolicy(info) => Some(Arc::new(info.clone())),
                        _ => None,
                    },
                    Err(st) => return ReviewAnswer::invalid(uid, Some(kind), st),
                },
                None => cluster
                    .network_policies(req.namespace())
                    .iter()
                    .find(|p| p.name == req.name())
                    .cloned(),
            };
            let Some(old) = old else {
                return ReviewAnswer::invalid(
                    uid,
                    Some(kind),
                    Status::failure(
                        400,
                        "BadRequest",
                        format!(
                            "phi-guard cannot judge the deletion of NetworkPolicy {}: the request has \
                             no oldObject and the policy is not in its cache",
                            display_name(req)
                        ),
                    ),
                );
            };
            let d = engine::network_policy_change(&old, None, cluster, policies);
            let object = format!("deletion of NetworkPolicy {}/{}", old.namespace, old.name);
            ReviewAnswer::decided(uid, kind, &object, d)
        }
        Operation::Connect => ReviewAnswer::skip(uid, Some(kind), None),
    }
}

/// A PhiException being written: well formed, expiring in the future, and no longer than the
/// policies in force allow (the shortest `maxExceptionDays`). Refused naming the field.
fn judge_exception(req: &AdmissionRequest<'_>, policies: &[Arc<Policy>], now: i64) -> ReviewAnswer {
    let uid = req.uid.as_str();
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return ReviewAnswer::skip(uid, None, None);
    }
    let parsed: Result<PhiException, String> = match &req.object {
        Some(ObjectField::Raw(raw)) => serde_json::from_str(raw.get()).map_err(|e| {
            format!(
                "not a PhiException: {}",
                crate::telemetry::redact(&e.to_string())
            )
        }),
        _ => Err("the request has no object".to_string()),
    };
    let max_days = policies
        .iter()
        .map(|p| p.max_exception_days)
        .min()
        .unwrap_or(90);
    match parsed.and_then(|x| exception::validate_new(&x, now, max_days)) {
        Ok(e) => {
            let mut o = ReviewAnswer::skip(uid, None, None);
            o.response.warnings.push(format!(
                "phi-guard: PhiException {} waives its findings until {} (ticket {})",
                e.name, e.expires_text, e.ticket
            ));
            o
        }
        Err(msg) => ReviewAnswer::invalid(
            uid,
            None,
            Status::failure(
                422,
                "Invalid",
                format!(
                    "phi-guard rejected PhiException {}: {msg}",
                    display_name(req)
                ),
            ),
        ),
    }
}

/// The object's namespace is not in the cache and could not be read: phi-guard cannot tell
/// whether the object is PHI, and never takes an unknown namespace as "not PHI".
pub(crate) fn unconfirmed_namespace(
    req: &AdmissionRequest<'_>,
    err: &crate::cluster::confirm::ConfirmError,
) -> ReviewAnswer {
    let kind = Kind::from_group_kind(&req.kind.group, &req.kind.kind);
    ReviewAnswer::invalid(
        &req.uid,
        kind,
        Status::failure(
            503,
            "ServiceUnavailable",
            format!(
                "phi-guard cannot judge {}: namespace {} is not in its cache yet and reading it \
                 from the API server failed ({}), so whether it holds PHI is unknown; retry in a \
                 few seconds",
                display_name(req),
                req.namespace(),
                err.label()
            ),
        ),
    )
}

/// What the refusal of [`stale_view`] says of phi-guard's cache.
pub const STALE_VIEW: &str = "its view of the cluster may be stale";

/// Refuse a PHI object's creation that would be admitted while phi-guard's watches have been
/// failing (its view of the cluster may be stale): whatever the cache shows, e.g. a
/// NetworkPolicy deleted since, cannot be trusted to admit. `failing` names the components and
/// says for how long; fail closed, retryable.
pub(crate) fn stale_view(req: &AdmissionRequest<'_>, failing: &str) -> ReviewAnswer {
    let kind = Kind::from_group_kind(&req.kind.group, &req.kind.kind);
    ReviewAnswer::invalid(
        &req.uid,
        kind,
        Status::failure(
            503,
            "ServiceUnavailable",
            format!(
                "phi-guard cannot admit {} (PHI) now: {STALE_VIEW} \
                 ({failing} reconnecting to the API server), so the safeguards it would rely on \
                 cannot be confirmed; retry in a few seconds",
                display_name(req)
            ),
        ),
    )
}

/// The request's object (or oldObject) as a workload view: decoded with the envelope, or now.
fn decode<'r>(
    req: &'r AdmissionRequest<'_>,
    kind: Kind,
    field: &str,
    obj: Option<&'r ObjectField<'_>>,
) -> Result<Cow<'r, Object>, Status> {
    let ns = req.namespace.as_deref();
    match obj {
        Some(ObjectField::Decoded(w)) => Ok(Cow::Borrowed(&**w)),
        Some(ObjectField::Raw(raw)) => Object::from_json(kind, raw.get(), ns)
            .map(Cow::Owned)
            .map_err(|e| {
                Status::failure(
                    400,
                    "BadRequest",
                    format!(
                        "phi-guard cannot judge {kind} {}: its {field} could not be read as a {kind} ({}); \
                         refusing rather than admitting it unchecked",
                        display_name(req),
                        crate::telemetry::redact(&e.message)
                    ),
                )
            }),
        None => Err(Status::failure(
            400,
            "BadRequest",
            format!(
                "phi-guard cannot judge {kind} {}: the request has no {field}",
                display_name(req)
            ),
        )),
    }
}

/// `namespace/name` from the request (for messages about objects that could not be decoded).
fn display_name(req: &AdmissionRequest<'_>) -> String {
    match (req.namespace(), req.name()) {
        ("", "") => "(unnamed)".to_string(),
        ("", n) => n.to_string(),
        (ns, "") => format!("{ns}/(unnamed)"),
        (ns, n) => format!("{ns}/{n}"),
    }
}
