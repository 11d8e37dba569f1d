//! What-if for a policy change against the real API server: `phi-guard check --from-cluster
//! --policy proposed.yaml` (and `report --from-cluster --policy`) lists the Deployments a
//! stricter proposal would deny, and the webhook agrees once the proposal is applied.

use std::process::Command;

use serde_json::Value;

use crate::fixtures::App;
use crate::harness::*;
use crate::policy::{apply_scoped_policy, scoped_policy, SCOPE_LABEL};

/// `phi-guard check --from-cluster --policy <proposal> -o json`: exit code and the JSON.
fn what_if(proposal: &str) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("proposed.yaml");
    std::fs::write(&file, proposal).expect("write the proposal");
    let env = Env::get();
    let run = Command::new(&env.phi_guard_bin)
        .args(["check", "--from-cluster", "-o", "json", "--policy"])
        .arg(&file)
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .expect("run phi-guard check --from-cluster");
    let json = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "what-if output is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    (run.status.code(), json)
}

/// The changes the what-if lists for namespace `ns`.
fn changes_in<'a>(w: &'a Value, ns: &str) -> Vec<&'a Value> {
    w["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["namespace"] == ns)
        .collect()
}

#[tokio::test]
async fn what_if_lists_the_deployments_a_stricter_policy_would_deny() {
    let key = unique("whatif");
    let ctx = Ctx::new("whatif", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-whatif");
    apply_scoped_policy(&ctx, &policy, &key, "Warn");
    // Admitted with warnings under Warn: no audit sidecar, no TLS, no NetworkPolicy.
    let app = App::bare(&ctx.ns, "intake-api").without_phi_label();
    let _ = accepts_eventually(&app.deployment(), CACHE).await;

    // The same policy proposed unchanged: nothing in the cluster is judged differently.
    let (code, same) = what_if(&scoped_policy(&policy, &key, "Warn"));
    assert_eq!(
        code,
        Some(0),
        "an unchanged proposal denies nothing: {same:#}"
    );
    assert_eq!(same["changes"], serde_json::json!([]), "{same:#}");

    // Tightened to Enforce: the Deployment is newly denied, every finding Warn -> Enforce.
    let stricter = scoped_policy(&policy, &key, "Enforce");
    let (code, w) = what_if(&stricter);
    assert_eq!(code, Some(1), "a newly denied workload exits 1: {w:#}");
    assert!(
        w["inForce"]
            .as_array()
            .expect("inForce")
            .iter()
            .any(|p| p == format!("{policy} (Warn)").as_str()),
        "the policy in force is named with its mode: {w:#}"
    );
    let ours = changes_in(&w, &ctx.ns);
    assert_eq!(
        ours.len(),
        1,
        "only the Deployment changes in {}: {w:#}",
        ctx.ns
    );
    let c = ours[0];
    assert_eq!(c["kind"], "Deployment");
    assert_eq!(c["name"], "intake-api");
    assert_eq!(c["effect"], "newly-denied");
    assert_eq!(
        (c["before"].as_str(), c["after"].as_str()),
        (Some("admitted"), Some("denied"))
    );
    assert_eq!(
        c["nextRollout"], "admitted-with-warnings",
        "updates: Warn keeps rollouts going"
    );
    let findings = c["findings"].as_array().expect("findings");
    assert!(!findings.is_empty(), "{c:#}");
    for f in findings {
        assert_eq!(
            (f["before"].as_str(), f["after"].as_str()),
            (Some("Warn"), Some("Enforce")),
            "{f:#}"
        );
    }
    assert!(
        findings.iter().any(|f| f["rule"] == "audit-sidecar"),
        "the missing audit sidecar is among the findings: {c:#}"
    );

    // `report --from-cluster --policy` writes the same what-if next to the evidence.
    let out = tempfile::tempdir().expect("tempdir");
    let proposal = out.path().join("proposed.yaml");
    std::fs::write(&proposal, &stricter).expect("write the proposal");
    let env = Env::get();
    let report = Command::new(&env.phi_guard_bin)
        .args(["report", "--from-cluster", "--policy"])
        .arg(&proposal)
        .arg("--out")
        .arg(out.path())
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .expect("run phi-guard report");
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let written: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("phi-guard-what-if.json")).expect("what-if json"),
    )
    .expect("what-if is JSON");
    let listed = changes_in(&written, &ctx.ns);
    assert!(
        listed.len() == 1
            && listed[0]["name"] == "intake-api"
            && listed[0]["effect"] == "newly-denied",
        "report's what-if lists the Deployment: {written:#}"
    );

    // The webhook agrees once the proposal is in force: the same Deployment is refused.
    kubectl_ok(&["apply"], &stricter);
    let again = App::bare(&ctx.ns, "intake-api-2").without_phi_label();
    let err = rejects_eventually(&["--dry-run=server"], &again.deployment(), CACHE).await;
    assert!(err.contains(&policy), "denied by {policy}: {err}");
}
