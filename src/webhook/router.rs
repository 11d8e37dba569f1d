//! HTTP routes of the TLS port: `POST /validate` (the admin port's are in `admin.rs`). Bad input gets a clear 4xx (a metav1.Status body), never a panic; a body
//! over 3 MiB gets 413; the whole request, body read included, is capped by a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;

use super::admission::{
    AdmissionResponse, AdmissionReview, LenientReview, ReviewResponse, Status, API_VERSION, KIND,
};
pub use super::budget::MAX_BODY_BYTES;
use super::budget::{Reserved, INLINE_MAX_BYTES};
use super::review::{judge, ReviewAnswer};
use crate::cluster::confirm::{ConfirmError, Confirmer};
use crate::cluster::ClusterState;
use crate::telemetry::{redact, Metrics, Readiness};
use crate::view::confirm::{Fresh, Lookups, Overlay, Recorder};
use crate::view::ClusterView;

/// What the handlers share: one reference, cloned for every request (axum's `State` clones it
/// once per extractor), so a clone is one atomic increment whatever the state holds (the
/// confirmer's API client alone holds several references and a string).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The handlers' state behind [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub state: Arc<ClusterState>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// Consistent reads for decisions the caches cannot settle (`None` on files: they are
    /// complete by construction).
    pub(crate) confirmer: Option<Confirmer>,
    /// Room for request bodies being read.
    pub(crate) budget: Arc<super::budget::BodyBudget>,
}

/// The webhook router (TLS port).
pub fn webhook_router(app: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .fallback(not_found)
        .with_state(app.clone())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(axum::middleware::map_response_with_state(
            app,
            count_timeouts,
        ))
}

/// A request past `--request-timeout` (a slow body, or a review that took too long) is answered
/// 408 by the timeout layer, before any handler can say so: count and log it here, so fail-closed
/// answers are never invisible.
async fn count_timeouts(State(app): State<AppState>, response: Response) -> Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        app.metrics.request_timeouts.inc();
        tracing::warn!(
            code = 408,
            "request timed out (answered 408; the API server fails the call closed)"
        );
    }
    response
}

pub(super) async fn not_found() -> Response {
    status_response(
        StatusCode::NOT_FOUND,
        "NotFound",
        "no such path; the webhook serves POST /validate",
    )
}

/// A metav1.Status body, as the API server itself answers errors.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a> {
    api_version: &'static str,
    kind: &'static str,
    status: &'static str,
    message: &'a str,
    reason: &'a str,
    code: u16,
}

fn status_response(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = StatusBody {
        api_version: "v1",
        kind: "Status",
        status: "Failure",
        message,
        reason,
        code: code.as_u16(),
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

fn bad(app: &AppState, code: StatusCode, reason: &str, message: &str) -> Response {
    app.metrics.bad_request(code.as_u16());
    // The message may quote parts of the body (serde errors do): log only the reason.
    tracing::info!(code = code.as_u16(), reason, "bad admission request");
    status_response(code, reason, message)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// While draining (shutdown delay), HTTP/1.1 answers carry `Connection: close`: the API server
/// stops reusing its keep-alive connections to this pod one answer at a time, so none is left
/// idle when the listener closes (closing an idle connection races a review sent on it, which
/// the API server does not retry). HTTP/2 ends with GOAWAY, which clients retry safely.
async fn validate(State(app): State<AppState>, req: Request) -> Response {
    let http1 = req.version() <= axum::http::Version::HTTP_11;
    let draining = app.readiness.clone();
    let mut resp = validate_request(app, req).await;
    if http1 && draining.is_draining() {
        resp.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

async fn validate_request(app: AppState, req: Request) -> Response {
    if !is_json(req.headers()) {
        return bad(
            &app,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "phi-guard expects Content-Type: application/json (an admission.k8s.io/v1 AdmissionReview)",
        );
    }
    let too_large = || {
        bad(
            &app,
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "request body exceeds 3 MiB, the API server's own limit",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    // Held until the work on this request ends (not merely until it is answered: see
    // `review`): the bytes and what is decoded from them.
    let Some(reserved) = app.budget.reserve(declared).await else {
        return crashed_msg(&app, "request body budget closed");
    };
    let body: Body = req.into_body();
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(e) => {
            return bad(
                &app,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("could not read the request body: {e}"),
            )
        }
    };
    let started = Instant::now();
    let response = review(&app, bytes, reserved, started).await;
    app.metrics
        .review_duration
        .observe(started.elapsed().as_secs_f64());
    response
}

/// What the first, cache-only pass concluded.
enum Pass {
    /// The answer.
    Done(Response),
    /// The decision rests on objects the cache lacks: confirm them, then decide again.
    Confirm {
        lookups: Lookups,
        /// The object's own namespace was not in the cache: without a read, phi-guard cannot
        /// tell whether the object is PHI, so a failed read refuses the request.
        namespace_unknown: bool,
    },
}

/// Judge a request. A large review is decoded and judged on the blocking pool, so it never
/// stalls the async workers that answer health checks and other reviews, and the request
/// timeout (a layer around this handler) can fire: a review past it is answered 408, which the
/// API server treats as a failed call (fail closed). A decision that would deny, or that
/// rests on an unknown namespace, is confirmed with consistent reads and made again.
///
/// A 408 drops this future but cannot stop a task already on the blocking pool, so what the
/// request holds (its body's room in the budget, its judging slot) is moved into that task and
/// released when the task ends, not when the 408 is sent: work that timed out still counts
/// against the limits, and a client that retries on timeout cannot pile up judgments.
async fn review(
    app: &AppState,
    bytes: axum::body::Bytes,
    reserved: Reserved,
    started: Instant,
) -> Response {
    // Small reviews (nearly all) are judged inline: their cost is linear and measured in tens
    // of microseconds, less than a hop to the blocking pool. Large ones go to the blocking pool,
    // where a slow judgment cannot stall health checks or other reviews and the request
    // timeout can fire.
    let large = bytes.len() > INLINE_MAX_BYTES;
    let (first, reserved) = if large {
        let Some(slot) = judging_slot(app).await else {
            return crashed_msg(app, "judging slots closed");
        };
        let (a, b) = (app.clone(), bytes.clone());
        match tokio::task::spawn_blocking(move || {
            let pass = first_pass(&a, &b, started);
            drop(slot);
            (pass, reserved)
        })
        .await
        {
            Ok(p) => p,
            Err(e) => return crashed(app, &e),
        }
    } else {
        (first_pass(app, &bytes, started), reserved)
    };
    let (lookups, namespace_unknown) = match first {
        Pass::Done(r) => return r,
        Pass::Confirm {
            lookups,
            namespace_unknown,
        } => (lookups, namespace_unknown),
    };
    let Some(confirmer) = app.confirmer.clone() else {
        // first_pass asks only when there is a confirmer.
        return crashed_msg(app, "confirmation requested without an API client");
    };
    let read_started = Instant::now();
    let fresh = confirmer.read(&lookups).await;
    tracing::debug!(
        reads = lookups.reads(),
        namespace_unknown,
        ok = fresh.is_ok(),
        duration_us = u64::try_from(read_started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "confirmed a decision with consistent reads"
    );
    app.metrics.confirm(
        match &fresh {
            Ok(_) => "ok",
            Err(e) => e.label(),
        },
        read_started.elapsed().as_secs_f64(),
    );
    // Small reviews are judged again without a slot: their budget is the small pool's.
    let slot = if large {
        let Some(slot) = judging_slot(app).await else {
            return crashed_msg(app, "judging slots closed");
        };
        Some(slot)
    } else {
        None
    };
    let a = app.clone();
    match tokio::task::spawn_blocking(move || {
        let response = second_pass(&a, &bytes, started, fresh, namespace_unknown);
        drop((slot, reserved));
        response
    })
    .await
    {
        Ok(r) => r,
        Err(e) => crashed(app, &e),
    }
}

/// One of the slots large reviews are judged in (see [`super::budget::BodyBudget`]).
async fn judging_slot(app: &AppState) -> Option<tokio::sync::OwnedSemaphorePermit> {
    app.budget.judging.clone().acquire_owned().await.ok()
}

/// A judging task panicked: answer 500 (the API server fails the call: fail closed).
fn crashed(app: &AppState, e: &tokio::task::JoinError) -> Response {
    tracing::error!(error = %e, "judging a review failed");
    crashed_msg(app, "phi-guard failed while judging this request")
}

fn crashed_msg(app: &AppState, msg: &str) -> Response {
    bad(app, StatusCode::INTERNAL_SERVER_ERROR, "InternalError", msg)
}

fn first_pass(app: &AppState, bytes: &[u8], started: Instant) -> Pass {
    let review = match AdmissionReview::parse(bytes) {
        Ok(r) => r,
        Err(e) => return Pass::Done(undecodable(app, bytes, &e)),
    };
    if let Some(resp) = check_envelope(app, review.api_version.as_deref(), review.kind.as_deref()) {
        return Pass::Done(resp);
    }
    let Some(req) = review.request else {
        return Pass::Done(bad(
            app,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the AdmissionReview has no request",
        ));
    };
    let exceptions = app.state.exceptions();
    let policies = app.state.policies();
    let ready = app.readiness.is_ready();
    // Recording what the cache lacked only matters when it can be confirmed (in a cluster).
    let (outcome, recorder) = if app.confirmer.is_some() {
        let recorder = Recorder::new(&*app.state);
        let outcome = judge(&req, &policies.policies, &exceptions, &recorder, ready);
        (outcome, Some(recorder))
    } else {
        let outcome = judge(
            &req,
            &policies.policies,
            &exceptions,
            &*app.state as &dyn ClusterView,
            ready,
        );
        (outcome, None)
    };
    if let (Some(recorder), true) = (&recorder, outcome.decision.is_some()) {
        let lookups = recorder.lookups();
        let ns = req.namespace();
        let namespace_unknown = !ns.is_empty() && lookups.namespaces.contains(ns);
        // A selector naming pods a controller will make (before they exist) rests on the
        // controller's template, which the cache does not hold; a Namespace labeled into PHI
        // scope is judged with its workloads, which only a read provides: whatever the first
        // answer, both are made again with what was read.
        let derived = !lookups.controller_pods.is_empty();
        let objects = !lookups.namespace_objects.is_empty();
        if namespace_unknown
            || derived
            || objects
            || (!outcome.response.allowed && !lookups.is_empty())
        {
            return Pass::Confirm {
                lookups,
                namespace_unknown,
            };
        }
    }
    let outcome = guard_stale(app, &req, outcome);
    record(app, &req, &outcome, started);
    Pass::Done(encode_review(outcome.response))
}

/// How long a watch may fail before the cache is not trusted to admit PHI creations: a watch
/// that reconnects at once (a normal API server restart) costs nothing; one failing longer may
/// have missed a deletion.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(5);

/// A PHI object's CREATE that would be admitted while a watch has failed for longer than
/// [`STALE_AFTER`] is refused instead (503, fail closed). Updates and deletes go on: Kubernetes'
/// controllers must finish what was already admitted, and nothing outside PHI scope waits.
fn guard_stale(
    app: &AppState,
    req: &super::admission::AdmissionRequest<'_>,
    outcome: ReviewAnswer,
) -> ReviewAnswer {
    if !outcome.response.allowed
        || req.operation != super::admission::Operation::Create
        || !outcome.decision.as_ref().is_some_and(|d| d.phi)
    {
        return outcome;
    }
    let stale: Vec<String> = app
        .readiness
        .failing()
        .into_iter()
        .filter(|(_, for_, _)| *for_ >= STALE_AFTER)
        .map(|(name, for_, _)| format!("{name} for {}s", for_.as_secs()))
        .collect();
    if stale.is_empty() {
        return outcome;
    }
    tracing::warn!(
        failing = %stale.join(", "),
        "refused a PHI creation: watches failing, the cache may be stale"
    );
    super::review::stale_view(req, &stale.join(", "))
}

fn second_pass(
    app: &AppState,
    bytes: &[u8],
    started: Instant,
    fresh: Result<Fresh, ConfirmError>,
    namespace_unknown: bool,
) -> Response {
    let review = match AdmissionReview::parse(bytes) {
        Ok(r) => r,
        Err(e) => return undecodable(app, bytes, &e),
    };
    let Some(req) = review.request else {
        return bad(
            app,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the AdmissionReview has no request",
        );
    };
    let policies = app.state.policies();
    let exceptions = app.state.exceptions();
    let ready = app.readiness.is_ready();
    let outcome = match &fresh {
        Ok(fresh) => {
            let view = Overlay {
                base: &*app.state,
                fresh,
            };
            judge(&req, &policies.policies, &exceptions, &view, ready)
        }
        Err(e) if namespace_unknown => {
            tracing::warn!(error = %e, namespace = req.namespace(), "could not confirm an unknown namespace");
            super::review::unconfirmed_namespace(&req, e)
        }
        Err(e) => {
            // The denial stands (fail closed); the objects it missed may just be slow to reach
            // the cache, so the message says so.
            tracing::warn!(error = %e, "could not confirm a denial with the API server");
            let mut o = judge(
                &req,
                &policies.policies,
                &exceptions,
                &*app.state as &dyn ClusterView,
                ready,
            );
            if !o.response.allowed {
                o.response.warnings.push(format!(
                    "phi-guard could not confirm this denial with the API server ({}): objects \
                     created a moment ago may not be seen yet; retry",
                    e.label()
                ));
            }
            o
        }
    };
    let outcome = guard_stale(app, &req, outcome);
    record(app, &req, &outcome, started);
    encode_review(outcome.response)
}

fn check_envelope(
    app: &AppState,
    api_version: Option<&str>,
    kind: Option<&str>,
) -> Option<Response> {
    if api_version != Some(API_VERSION) || kind != Some(KIND) {
        return Some(bad(
            app,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "expected apiVersion {API_VERSION} and kind {KIND}, got apiVersion {:?} and kind {:?}",
                api_version.unwrap_or_default(),
                kind.unwrap_or_default()
            ),
        ));
    }
    None
}

/// The body did not decode as an AdmissionReview: say why, as an `invalid` review carrying the
/// uid when one can be read, else as a 400.
fn undecodable(app: &AppState, bytes: &[u8], err: &serde_json::Error) -> Response {
    let lenient: LenientReview = match serde_json::from_slice(bytes) {
        Ok(l) => l,
        Err(_) => {
            return bad(
                app,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "the body is not an AdmissionReview JSON object: {}",
                    redact(&err.to_string())
                ),
            )
        }
    };
    let as_str =
        |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| v.as_str()).map(str::to_owned);
    let (api_version, kind) = (as_str(&lenient.api_version), as_str(&lenient.kind));
    if let Some(resp) = check_envelope(app, api_version.as_deref(), kind.as_deref()) {
        return resp;
    }
    let Some(request) = lenient.request else {
        return bad(
            app,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the AdmissionReview has no request",
        );
    };
    match request.uid.as_ref().and_then(|u| u.as_str()) {
        Some(uid) if !uid.is_empty() => {
            app.metrics.review("invalid", "Unknown", "Unknown");
            tracing::info!(
                uid,
                decision = "invalid",
                line = err.line(),
                column = err.column(),
                "undecodable admission request"
            );
            encode_review(AdmissionResponse::refuse(
                uid,
                Status::failure(
                    400,
                    "BadRequest",
                    format!(
                        "phi-guard could not read the AdmissionReview request: {}",
                        redact(&err.to_string())
                    ),
                ),
            ))
        }
        _ => bad(
            app,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "the AdmissionReview request could not be read and has no uid: {}",
                redact(&err.to_string())
            ),
        ),
    }
}

fn encode_review(response: AdmissionResponse) -> Response {
    if response.uid.len() > super::admission::MAX_UID_BYTES {
        // Not an API server (it sends UUIDs), and the uid cannot be cut: a short 400 instead
        // of echoing it.
        return status_response(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the AdmissionReview request's uid is longer than 256 bytes",
        );
    }
    match serde_json::to_vec(&ReviewResponse::new(response.bounded())) {
        Ok(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not encode an AdmissionReview response");
            status_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "could not encode the response",
            )
        }
    }
}

/// A request-supplied string for a log field: one line, bounded.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    super::one_line::single_line_cow(s, 256)
}

/// Metrics and the one log line of a review. Names objects and rules; never object content.
fn record(
    app: &AppState,
    req: &super::admission::AdmissionRequest<'_>,
    outcome: &ReviewAnswer,
    started: Instant,
) {
    let kind = outcome.kind.map_or("Other", |k| k.as_str());
    let op = req.operation.as_str();
    app.metrics.review(outcome.label, kind, op);
    let mut rules: Vec<&'static str> = Vec::new();
    if let Some(d) = &outcome.decision {
        for f in &d.findings {
            app.metrics.finding(
                &f.policy,
                (f.rule.as_str(), f.reason.as_str()),
                f.mode.as_str(),
                kind,
                op,
            );
            if !rules.contains(&f.rule.as_str()) {
                rules.push(f.rule.as_str());
            }
        }
    }
    let rules = rules.join(",");
    let policies = outcome
        .decision
        .as_ref()
        .map(|d| d.policies.join(","))
        .unwrap_or_default();
    tracing::info!(
        target: "phi_guard::review",
        // Request fields are written with control characters collapsed: a newline in a uid
        // or name must not forge a log line in the text format.
        // As `&str`, not `%` (Display): the same text in both formats, written without going
        // through `core::fmt` (JSON) or a formatted copy (text).
        uid = &*clean(&req.uid),
        kind = &*clean(&req.kind.kind),
        group = &*clean(&req.kind.group),
        namespace = &*clean(req.namespace()),
        name = &*clean(req.name()),
        operation = op,
        dry_run = req.dry_run(),
        allowed = outcome.response.allowed,
        decision = outcome.label,
        code = outcome.response.status.as_ref().map(|s| s.code),
        policies = policies.as_str(),
        rules = rules.as_str(),
        duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "review"
    );
}

#[cfg(test)]
mod tests {
    use super::clean;

    /// A uid or name with a newline cannot forge a second log line in the text format.
    #[test]
    fn log_fields_stay_on_one_line() {
        let forged = "abc\n2026-12-01T00:00:00Z INFO review allowed=true";
        let c = clean(forged);
        assert!(!c.contains('\n') && !c.contains('\r'), "{c:?}");
        assert!(c.starts_with("abc "));
        assert!(clean(&"x".repeat(10_000)).chars().count() <= 256);
    }
}
