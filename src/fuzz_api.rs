//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): the few crate-private paths they
//! drive, and the invariants they check that need the crate's own types. Not a stable API;
//! nothing in the crate imports it.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::cli::judging::Judging;
use crate::cluster::files::{self, Origin, Reader};
use crate::object::{Kind, Object};
use crate::telemetry::{Metrics, Readiness};
use crate::webhook::admission::{AdmissionReview, ObjectField, Operation};
use crate::webhook::{AppState, Shared};

/// The webhook's state built from cluster-state and policy files as `serve --cluster-state`
/// builds it, ready (every cache synced), without an API client (no confirming reads).
pub fn app_state(paths: &[PathBuf]) -> anyhow::Result<AppState> {
    let state = crate::cli::serve::state_from_files(paths)?;
    let metrics = Arc::new(Metrics::new());
    let defaults = crate::webhook::Options::new("", "");
    // Ready as `serve --cluster-state` is once its certificate is loaded (the one component it
    // waits for): without it every review outside the system namespaces is answered 503
    // "caches have not synced" and nothing past that gate is reached.
    let readiness = Readiness::new();
    readiness.set_ready(crate::webhook::TLS_COMPONENT);
    Ok(AppState::new(Shared {
        state: Arc::new(state),
        metrics: metrics.clone(),
        readiness,
        confirmer: None,
        budget: Arc::new(crate::webhook::budget::BodyBudget::new(
            defaults.body_buffer_mib.saturating_mul(1024 * 1024),
            defaults.large_review_slots,
            metrics,
        )),
    }))
}

/// Is this `request.kind` one phi-guard judges (and so refuses when its object is unreadable)?
pub fn is_judged_kind(group: &str, kind: &str) -> bool {
    Kind::from_group_kind(group, kind).is_some()
}

/// The review's objects as the fallback (two-pass) read takes them: raw JSON text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReview<'a> {
    #[serde(default, borrow)]
    request: Option<RawRequest<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest<'a> {
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old_object: Option<&'a RawValue>,
}

/// What the fuzz targets need to know about a review body, read independently of the
/// webhook's own decoder.
#[derive(Debug, Default)]
pub struct ReviewFacts {
    /// `AdmissionReview::parse` accepted the body.
    pub parsed: bool,
    /// A CREATE or UPDATE of a judged kind (not a subresource) whose object (or, for UPDATE,
    /// oldObject) cannot be read as that kind: the webhook must refuse it (fail closed). The
    /// value names the field.
    pub must_refuse: Option<&'static str>,
}

/// Check that the one-pass read (objects decoded while the envelope is read) and the two-pass
/// read (the object's raw JSON decoded afterwards, as the fallback and `judge` do) agree on
/// every object of `bytes`; and say what the webhook must do with it. `Err` describes a
/// disagreement (it names fields, never values, but the fuzz target prints it only on failure).
pub fn review_facts(bytes: &[u8]) -> Result<ReviewFacts, String> {
    let Ok(review) = AdmissionReview::parse(bytes) else {
        return Ok(ReviewFacts::default());
    };
    let mut facts = ReviewFacts {
        parsed: true,
        must_refuse: None,
    };
    let Some(req) = review.request else {
        return Ok(facts);
    };
    let raw: RawReview<'_> = serde_json::from_slice(bytes)
        .map_err(|e| format!("parse accepted the body but the raw read did not: {e}"))?;
    let raw = raw
        .request
        .ok_or("parse found a request, the raw read none")?;
    let kind = Kind::from_group_kind(&req.kind.group, &req.kind.kind);
    let subresource = req.sub_resource.as_deref().is_some_and(|s| !s.is_empty());
    let ns = req.namespace.as_deref();
    let fields = [
        ("object", &req.object, raw.object),
        ("oldObject", &req.old_object, raw.old_object),
    ];
    // Per field: None when absent, else whether it reads as its kind.
    let mut readable: [Option<bool>; 2] = [None, None];
    for (i, (field, one_pass, raw)) in fields.into_iter().enumerate() {
        // JSON null is no object, for both reads.
        let raw = raw.filter(|r| r.get() != "null");
        // (A subresource's object may be decoded too, when `subResource` comes after it;
        // `judge` skips it either way.)
        let two_pass = match (kind, raw) {
            (Some(k), Some(r)) => Some(Object::from_json(k, r.get(), ns)),
            _ => None,
        };
        match (one_pass, &two_pass) {
            (Some(ObjectField::Decoded(w)), Some(Ok(two))) if **w != *two => {
                return Err(format!(
                    "{field}: one-pass and two-pass reads differ:\n{w:#?}\n{two:#?}"
                ));
            }
            (Some(ObjectField::Decoded(_)), Some(Err(e))) => {
                return Err(format!(
                    "{field}: one-pass read decoded it, two-pass read failed: {}",
                    e.message
                ));
            }
            (Some(ObjectField::Decoded(_)), None) => {
                return Err(format!(
                    "{field}: decoded although the kind is not judged or the field absent"
                ));
            }
            (Some(ObjectField::Raw(r)), _) if raw.map(RawValue::get) != Some(r.get()) => {
                return Err(format!("{field}: the raw object differs between the reads"));
            }
            (None, _) if raw.is_some() => {
                return Err(format!("{field}: present in the body, lost by the read"));
            }
            _ => {}
        }
        readable[i] = match &two_pass {
            Some(r) => Some(r.is_ok()),
            None => raw.map(|_| true),
        };
    }
    if kind.is_some() && !subresource {
        // CREATE and UPDATE need their objects; a NetworkPolicy DELETE that carries its
        // oldObject is judged on it (without one, on the cache).
        facts.must_refuse = match req.operation {
            Operation::Create | Operation::Update if readable[0] != Some(true) => Some("object"),
            Operation::Update if readable[1] != Some(true) => Some("oldObject"),
            Operation::Delete
                if kind == Some(Kind::NetworkPolicy) && readable[1] == Some(false) =>
            {
                Some("oldObject")
            }
            _ => None,
        };
    }
    Ok(facts)
}

/// Read `text` as `phi-guard check -f -` reads standard input (documents one at a time, each
/// judged as the webhook would) and, separately, as `--cluster-state` content. Returns the
/// number of objects judged, or the error `check` would print.
pub fn check_text(text: &str) -> Result<usize, String> {
    let mut reader = Reader::new();
    let mut docs = Vec::new();
    reader
        .read_text_each("<stdin>", text, Origin::Named, &mut |d| {
            docs.push(d);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    // As cluster state (what --cluster-state and serve --cluster-state load).
    Judging::new(&docs, &[]).map_err(|e| e.to_string())?;
    let state = crate::cluster::ClusterState::new();
    files::load_state(&docs, &state).map_err(|e| e.to_string())?;
    // As inputs to judge.
    let mut judging = Judging::new(&[], &[]).map_err(|e| e.to_string())?;
    for d in docs {
        judging.take(d).map_err(|e| e.to_string())?;
    }
    let judged = judging.finish().map_err(|e| e.to_string())?;
    Ok(judged.report.results.len())
}

/// The documents of a manifest (YAML or JSON, any number) as JSON text, read by `check`'s
/// reader; what does not read is left out. Seeds the structure-aware targets.
pub fn documents(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let _ = Reader::new().read_text_each("seed", text, Origin::Walked, &mut |d| {
        out.push(d.value.to_string());
        Ok(())
    });
    out
}
