// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! The committed CRD YAML must equal what `phi-guard crd` prints (the Rust types are the source).

use std::path::Path;
use std::process::Command;

const FIX: &str = "run `cargo run -- crd > crds/phipolicies.phiguard.io.yaml` (and copy it to \
                   charts/phi-guard/crds/, or run `make crd`) and commit the result";

fn generated() -> String {
    generated_with(&[])
}

fn generated_with(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_phi-guard"))
        .arg("crd")
        .args(args)
        .output()
        .expect("run phi-guard crd");
    assert!(out.status.success(), "phi-guard crd failed: {out:?}");
    String::from_utf8(out.stdout).expect("CRD YAML is UTF-8")
}

fn assert_same(committed: &Path, generated: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(committed);
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {FIX}", committed.display()));
    if on_disk != generated {
        let line = on_disk
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || on_disk.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{} differs from `phi-guard crd` (first difference at line {line}); {FIX}",
            committed.display()
        );
    }
}

#[test]
fn committed_crd_matches_generated() {
    assert_same(Path::new("crds/phipolicies.phiguard.io.yaml"), &generated());
}

#[test]
fn chart_crd_matches_generated() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/phi-guard/crds");
    if !dir.exists() {
        return; // no chart yet
    }
    assert_same(
        Path::new("charts/phi-guard/crds/phipolicies.phiguard.io.yaml"),
        &generated(),
    );
}

#[test]
fn exception_crds_match_generated() {
    let generated = generated_with(&["--exception"]);
    assert!(generated.contains("kind: PhiException") || generated.contains("PhiException"));
    assert_same(Path::new("crds/phiexceptions.phiguard.io.yaml"), &generated);
    assert_same(
        Path::new("charts/phi-guard/crds/phiexceptions.phiguard.io.yaml"),
        &generated,
    );
}
