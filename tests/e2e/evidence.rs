//! The auditor's evidence: `phi-guard report --from-cluster` against the real API server lists
//! every PHI workload with its status per rule and every exception, and the HTML renders in a
//! real browser (Debian's headless Chromium).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::fixtures::App;
use crate::harness::*;
use crate::policy::{apply_scoped_policy, SCOPE_LABEL};

fn chromium() -> String {
    std::env::var("PHI_GUARD_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Run `phi-guard report --from-cluster` into a temporary directory; its JSON evidence.
pub(crate) fn report_from_cluster() -> (tempfile::TempDir, Value) {
    let out = tempfile::tempdir().expect("tempdir");
    let env = Env::get();
    let report = Command::new(&env.phi_guard_bin)
        .args(["report", "--from-cluster", "--out"])
        .arg(out.path())
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .expect("run phi-guard report");
    assert!(
        report.status.success(),
        "phi-guard report failed: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    let json: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("phi-guard-evidence.json")).expect("evidence json"),
    )
    .expect("evidence is JSON");
    (out, json)
}

#[tokio::test]
async fn report_lists_phi_workloads_and_exceptions_and_renders() {
    let key = unique("evidence");
    let ctx = Ctx::new("evidence", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-evidence");
    apply_scoped_policy(&ctx, &policy, &key, "Warn");
    let app = App::bare(&ctx.ns, "intake-api").without_phi_label();
    let _ = accepts_eventually(&app.deployment(), CACHE).await;
    let exception = unique("e2e-evidence-x");
    ctx.cleanup("phiexception", &exception);
    let expires = k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_hours(24))
        .expect("time")
        .round(k8s_openapi::jiff::Unit::Second)
        .expect("round");
    let run = kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            r#"apiVersion: phiguard.io/v1alpha1
kind: PhiException
metadata: {{name: {exception}}}
spec:
  match: {{namespaces: [{ns}], kinds: [Deployment], names: [intake-api]}}
  rules: [{{rule: audit-sidecar}}]
  expiresAt: "{expires}"
  ticket: SEC-9001
  justification: evidence test
"#,
            ns = ctx.ns
        )),
    );
    assert!(run.ok, "{}", run.stderr);

    let (out, json) = report_from_cluster();
    let w = json["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .find(|w| w["namespace"] == ctx.ns.as_str() && w["name"] == "intake-api")
        .unwrap_or_else(|| panic!("the PHI Deployment is missing from the evidence: {json:#}"));
    assert_eq!(w["rules"]["audit-sidecar"], "excepted", "{w:#}");
    assert_eq!(w["rules"]["network-segmentation"], "fail", "{w:#}");
    let x = json["exceptions"]
        .as_array()
        .expect("exceptions")
        .iter()
        .find(|x| x["name"] == exception.as_str())
        .unwrap_or_else(|| panic!("the exception is missing: {json:#}"));
    assert_eq!(x["ticket"], "SEC-9001");
    assert_eq!(x["active"], true);
    assert!(
        json["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .any(|p| p["name"] == policy.as_str() && p["generation"].is_i64()),
        "the policy in force with its generation: {json:#}"
    );

    // What a browser renders: the workload, its statuses and the ticket are in the DOM.
    let html = out.path().join("phi-guard-evidence.html");
    let dom = render(&html);
    for want in [
        "intake-api",
        "SEC-9001",
        "45 CFR 164.312(b)",
        "excepted",
        &policy,
    ] {
        assert!(dom.contains(want), "the rendered page lacks {want:?}");
    }
}

/// The DOM headless Chromium builds from the page.
fn render(html: &Path) -> String {
    let abs = std::fs::canonicalize(html).expect("html path");
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", abs.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): the evidence test needs Debian's chromium (.ci/run installs it)",
                chromium()
            )
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
