//! The Helm chart against the real API server: the suite installs phi-guard with it
//! (hack/local-install.sh, webhook.url pointing at the local phi-guard process); here a chart
//! value change rolls out live with `helm upgrade`, and `helm uninstall` leaves the API usable.

use std::path::Path;

use crate::fixtures::{App, PHI};
use crate::harness::{accepts, kubectl, warnings, Ctx, CACHE, ROOT};
use phi_guard::verdict::RuleId;

const RELEASE: &str = "phi-guard";
const NAMESPACE: &str = "phi-guard";

/// helm; (success, stdout and stderr).
fn helm(args: &[&str]) -> (bool, String) {
    let run = crate::harness::helm(args);
    (run.ok, run.output())
}

#[tokio::test]
async fn helm_upgrade_applies_live_and_uninstall_leaves_the_api_usable() {
    assert!(
        Path::new(ROOT)
            .join("charts/phi-guard/Chart.yaml")
            .is_file(),
        "charts/phi-guard is missing: this test needs the Helm chart"
    );
    // Exclusive: the baseline policy and the webhook change under every other test's feet.
    let ctx = Ctx::exclusive("helm", &[PHI]).await;
    let (ok, status) = helm(&["status", RELEASE, "-n", NAMESPACE]);
    assert!(
        ok,
        "the suite should have installed phi-guard with Helm: {status}"
    );

    let app = App::bare(&ctx.ns, "intake");
    crate::harness::rejects(&app.deployment());

    // A chart value (the baseline's mode) changes what phi-guard decides, without restarting it.
    let pid = ctx.phi_guard_pid();
    let (ok, out) = helm(&[
        "upgrade",
        RELEASE,
        &format!("{ROOT}/charts/phi-guard"),
        "-n",
        NAMESPACE,
        "--reuse-values",
        "--set",
        "policy.baseline.mode=Warn",
    ]);
    assert!(ok, "helm upgrade failed: {out}");
    let stderr = crate::harness::accepts_eventually(&app.deployment(), CACHE).await;
    assert!(
        warnings(&stderr)
            .iter()
            .any(|w| crate::shows_rule(w, RuleId::AuditSidecar)),
        "Warn mode should print the findings as warnings:\n{stderr}"
    );
    assert_eq!(ctx.phi_guard_pid(), pid, "phi-guard was restarted");

    // Uninstall removes the webhook configuration: nothing is left that could block writes.
    let (ok, out) = helm(&["uninstall", RELEASE, "-n", NAMESPACE, "--wait"]);
    assert!(ok, "helm uninstall failed: {out}");
    let run = kubectl(
        &["get", "validatingwebhookconfigurations", "-o", "name"],
        None,
    );
    assert!(run.ok, "{}", run.stderr);
    assert!(
        !run.stdout.contains("phi-guard"),
        "a phi-guard webhook configuration survived the uninstall:\n{}",
        run.stdout
    );
    let stderr = accepts(&App::bare(&ctx.ns, "after-uninstall").pod());
    assert!(warnings(&stderr).is_empty(), "{stderr}");

    // Back to the suite's installation (Enforce) for the tests after this one.
    ctx.reinstall();
    let err = crate::harness::rejects(&App::bare(&ctx.ns, "reinstalled").deployment());
    crate::assert_findings(&err, &[RuleId::AuditSidecar]);
}
