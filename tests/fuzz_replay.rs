//! The fuzz targets' committed corpus (`fuzz/corpus/<target>`) and every crash kept so far
//! (`fuzz/regressions/<target>`), replayed through the targets' own bodies on stable Rust: the
//! same invariants `make fuzz` checks (the webhook's answer to any review, the PhiPolicy parser,
//! `check`'s reader), without the instrumented nightly build. `make fuzz` keeps cargo-fuzz for
//! real fuzzing; this is the regression run `make unit` (and so CI) does.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../fuzz/fuzz_targets/common/mod.rs"]
mod common;

#[path = "../fuzz/fuzz_targets/targets/admission_bytes.rs"]
mod admission_bytes;
#[path = "../fuzz/fuzz_targets/targets/admission_structured.rs"]
mod admission_structured;
#[path = "../fuzz/fuzz_targets/targets/check_reader.rs"]
mod check_reader;
#[path = "../fuzz/fuzz_targets/targets/policy_spec.rs"]
mod policy_spec;

use std::path::{Path, PathBuf};

/// Every file of the target's corpus and regressions, sorted (a failure names the same file
/// each run). The corpus must not be empty: a missing or emptied corpus fails, not passes.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    let mut corpus = 0;
    for dir in ["corpus", "regressions"] {
        let d = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&d) else {
            assert!(dir == "regressions", "no corpus at {}", d.display());
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                files.push(e.path());
                if dir == "corpus" {
                    corpus += 1;
                }
            }
        }
    }
    assert!(corpus >= 100, "{target}: only {corpus} corpus inputs");
    files.sort();
    files
}

/// Run every input; a panic (a broken invariant) names the file that caused it.
fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "{target}: the input {} broke an invariant (see the panic above); reproduce with \
             `cd fuzz && cargo fuzz run {target} {}`",
            f.display(),
            f.display()
        );
    }
    println!("{target}: {} inputs replayed", files.len());
}

#[test]
fn admission_bytes_corpus() {
    replay("admission_bytes", admission_bytes::run);
}

#[test]
fn admission_structured_corpus() {
    replay("admission_structured", admission_structured::run);
}

#[test]
fn check_reader_corpus() {
    replay("check_reader", check_reader::run);
}

#[test]
fn policy_spec_corpus() {
    replay("policy_spec", policy_spec::run);
}

/// The targets' webhook is ready, as `serve` is once started: a PHI workload outside the
/// system namespaces is judged by the rules (denied, naming one), not answered 503 "caches
/// have not synced", which would leave everything past that gate unfuzzed.
#[test]
fn the_targets_webhook_judges_reviews() {
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "api", "namespace": "fuzz-ns", "operation": "CREATE",
            "userInfo": {"username": "dev"},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "fuzz-ns",
                    "labels": {"phiguard.io/data-classification": "phi"}},
                "spec": {"selector": {"matchLabels": {"app": "api"}},
                    "template": {"metadata": {"labels": {"app": "api", "phiguard.io/data-classification": "phi"}},
                        "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}}});
    let (status, body) = common::post(review.to_string().as_bytes());
    assert_eq!(status, axum::http::StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let r = &v["response"];
    assert_eq!(r["allowed"], false, "{r}");
    assert_ne!(r["status"]["code"], 503, "not judged: {r}");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(message.contains("audit-sidecar"), "{message}");
}
