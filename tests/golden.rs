// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! The wording of each finding's message, pinned once: `phi-guard check -o json` over
//! `tests/fixtures/reasons/` (everything wrong at once, under hipaa-baseline and
//! hipaa-safeguards) gives, per reason code, the first message it printed, and that table must
//! equal `tests/golden/reasons.txt` (`code<TAB>message`, sorted by code). Other tests assert on
//! reason codes, not on prose, so a rewording changes this one file.
//!
//! After an intended rewording (or a new reason reached by the fixtures):
//! `PHI_GUARD_BLESS=1 cargo test --test golden`, then review the diff of the table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use phi_guard::verdict::Reason;
use serde_json::Value;

mod support;

/// Reasons the fixtures do not reach yet, each with why; a reason leaves this list when a
/// fixture reaches it (the test fails while it is in both).
const NOT_YET_PINNED: &[(&str, &str)] = &[
    (
        "operator-node-disk",
        "needs an operator's resource (tests in rules::encryption_at_rest)",
    ),
    (
        "inline-csi-driver-not-allowed",
        "needs a policy restricting inline CSI drivers",
    ),
    (
        "unprovable-volume-source",
        "needs a PersistentVolume in the cluster state",
    ),
    (
        "provider-default-not-attested",
        "needs a cloud StorageClass relying on provider defaults",
    ),
    ("node-disk-not-attested", "needs a local-disk StorageClass"),
    ("operator-plaintext", "needs an operator's resource"),
    (
        "tls-switched-off",
        "needs a container configured with TLS off",
    ),
    ("allow-all-ingress", "needs an allow-all NetworkPolicy"),
    ("allow-all-egress", "needs an allow-all NetworkPolicy"),
    ("no-default-deny", "needs a policy requiring a default deny"),
    (
        "isolation-removed",
        "judged on a NetworkPolicy UPDATE or DELETE, not by check",
    ),
    (
        "isolation-opened",
        "judged on a NetworkPolicy UPDATE, not by check",
    ),
    (
        "init-sidecar-not-restarting",
        "needs an init container running an approved image",
    ),
    (
        "no-audit-sidecar",
        "reached by examples/broken (tests/cli.rs)",
    ),
    ("no-shared-log-volume", "needs the log-volume check enabled"),
    ("host-path-log-volume", "needs the log-volume check enabled"),
    ("operator-no-sidecar-field", "needs an operator's resource"),
    ("operator-no-sidecar", "needs an operator's resource"),
    ("operator-drops-phi-label", "needs an operator's resource"),
    ("phi-label-removed", "judged on UPDATE, not by check"),
    (
        "phi-label-removed-uncovered",
        "judged on UPDATE, not by check",
    ),
    (
        "namespace-label-removed",
        "judged on a Namespace UPDATE, not by check",
    ),
    (
        "namespace-declassifies-pods",
        "judged on a Namespace UPDATE, not by check",
    ),
    (
        "labeling-over-failing-workloads",
        "judged on a Namespace UPDATE, not by check",
    ),
    (
        "labeling-failing-workload",
        "judged on a Namespace UPDATE, not by check",
    ),
    (
        "labeling-more-failing",
        "judged on a Namespace UPDATE, not by check",
    ),
    (
        "labeling-unreadable",
        "judged on a Namespace UPDATE, not by check",
    ),
    ("host-process", "Windows pods"),
    ("no-authorization-policy", "needs a meshed pod"),
    (
        "disruption-budget-allows-all",
        "needs a PodDisruptionBudget",
    ),
    (
        "no-backup-schedule",
        "needs Velero installed (a Schedule in the cluster state)",
    ),
    ("excluded-from-backup", "needs Velero installed"),
    ("volume-excluded-from-backup", "needs Velero installed"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reason code -> the first message `check` printed for it.
fn observed() -> BTreeMap<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_phi-guard"))
        .current_dir(root())
        .args([
            "check",
            "-f",
            "tests/fixtures/reasons",
            "--policy",
            "examples/policies/hipaa-baseline.yaml",
            "--policy",
            "examples/policies/hipaa-safeguards.yaml",
            "-o",
            "json",
        ])
        .output()
        .expect("run phi-guard");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let mut table = BTreeMap::new();
    for r in report["results"].as_array().expect("results") {
        for f in r["findings"].as_array().expect("findings") {
            let code = f["reason"].as_str().expect("every finding has a reason");
            let message = f["message"].as_str().expect("message");
            table
                .entry(code.to_string())
                .or_insert_with(|| message.replace('\n', "\\n"));
        }
    }
    table
}

#[test]
fn every_reasons_wording_is_pinned_once() {
    let observed = observed();
    let path = root().join("tests/golden/reasons.txt");
    let rendered: String = observed
        .iter()
        .map(|(code, message)| format!("{code}\t{message}\n"))
        .collect();
    support::golden_table(&path, &rendered, "reasons reached by the fixtures changed");
    // Every code is either pinned here or listed, with why, as not yet reached.
    for r in Reason::ALL {
        let code = r.as_str();
        let pending = NOT_YET_PINNED.iter().any(|(c, _)| *c == code);
        assert!(
            observed.contains_key(code) != pending,
            "{code}: pinned {} and listed as not yet pinned {pending}",
            observed.contains_key(code)
        );
    }
    let rules_doc = std::fs::read_to_string(root().join("docs/rules.md")).expect("docs/rules.md");
    for r in Reason::ALL {
        assert!(
            rules_doc.contains(&format!("| `{}` |", r.as_str())),
            "docs/rules.md does not list reason {}",
            r.as_str()
        );
    }
    for (code, _) in NOT_YET_PINNED {
        assert!(
            Reason::ALL.iter().any(|r| r.as_str() == *code),
            "{code} is not a reason"
        );
    }
}
