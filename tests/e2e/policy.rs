//! PhiPolicy objects: a mode change applies without restarting phi-guard, and the API server
//! itself rejects an invalid policy (CRD schema).
//!
//! PhiPolicies are cluster-scoped and every test shares them, so these tests use their own
//! policy scoped to their own namespace (by a label nothing else carries), never the baseline.

use crate::fixtures::App;
use crate::harness::{
    accepts_eventually, kubectl, kubectl_ok, rejects, rejects_eventually, unique, warnings, Ctx,
    CACHE,
};
use phi_guard::verdict::RuleId;

pub(crate) const SCOPE_LABEL: &str = "e2e.phiguard.io/policy";

pub(crate) fn scoped_policy(name: &str, scope_value: &str, mode: &str) -> String {
    format!(
        r#"apiVersion: phiguard.io/v1alpha1
kind: PhiPolicy
metadata:
  name: {name}
spec:
  mode: {mode}
  scope:
    namespaceSelector:
      matchLabels:
        {SCOPE_LABEL}: {scope_value}
    workloadSelector:
      matchLabels:
        {SCOPE_LABEL}: {scope_value}
"#
    )
}

/// Apply a policy scoped to `key` at `mode`, delete it with `ctx`, and wait until the webhook
/// configuration covers its scope (its WebhookScope condition), as a user would.
pub(crate) fn apply_scoped_policy(ctx: &Ctx, name: &str, key: &str, mode: &str) {
    kubectl_ok(&["apply"], &scoped_policy(name, key, mode));
    ctx.cleanup("phipolicy", name);
    let wait = kubectl(
        &[
            "wait",
            "--for=condition=WebhookScope",
            &format!("phipolicy/{name}"),
            "--timeout=30s",
        ],
        None,
    );
    assert!(
        wait.ok,
        "policy {name} never covered by the webhook: {}",
        wait.stderr
    );
}

#[tokio::test]
async fn switching_policy_to_warn_applies_without_restart_and_kubectl_prints_warnings() {
    let key = unique("warn");
    let ctx = Ctx::new("warn", &[(SCOPE_LABEL, &key)]).await;
    let pid_before = ctx.phi_guard_pid();
    let policy = unique("e2e-warn");
    kubectl_ok(&["apply"], &scoped_policy(&policy, &key, "Enforce"));
    ctx.cleanup("phipolicy", &policy);

    // No PHI label: only this test's policy covers the workload (via the namespace).
    let app = App::bare(&ctx.ns, "scheduler").without_phi_label();
    // Server dry runs until phi-guard's policy cache has the new policy (a real apply before
    // that would create the object); then the real apply is denied as well.
    rejects_eventually(&["--dry-run=server"], &app.deployment(), CACHE).await;
    let err = rejects(&app.deployment());
    assert!(
        err.contains(&policy),
        "the denial should name the policy {policy}:\n{err}"
    );

    let run = kubectl(
        &[
            "patch",
            "phipolicy",
            &policy,
            "--type=merge",
            "-p",
            r#"{"spec":{"mode":"Warn"}}"#,
        ],
        None,
    );
    assert!(run.ok, "patch policy: {}", run.stderr);
    let stderr = accepts_eventually(&app.deployment(), CACHE).await;
    let warned: Vec<&str> = warnings(&stderr)
        .into_iter()
        .filter(|w| w.contains("phi-guard"))
        .collect();
    for rule in [
        RuleId::EncryptionInTransit,
        RuleId::NetworkSegmentation,
        RuleId::AuditSidecar,
    ] {
        assert!(
            warned.iter().any(|w| crate::shows_rule(w, rule)),
            "kubectl printed no phi-guard warning for {}:\n{stderr}",
            rule.as_str()
        );
    }
    assert_eq!(
        ctx.phi_guard_pid(),
        pid_before,
        "phi-guard was restarted; the change must apply live"
    );

    // Audit: admitted, and nothing printed.
    let run = kubectl(
        &[
            "patch",
            "phipolicy",
            &policy,
            "--type=merge",
            "-p",
            r#"{"spec":{"mode":"Audit"}}"#,
        ],
        None,
    );
    assert!(run.ok, "patch policy: {}", run.stderr);
    let audited = App::bare(&ctx.ns, "reporter").without_phi_label();
    let stderr = crate::harness::eventually("Audit mode in effect", CACHE, || {
        let run = kubectl(
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&audited.deployment()),
        );
        if run.ok && !run.stderr.contains("phi-guard") {
            Ok(run.stderr)
        } else {
            Err(run.stderr)
        }
    })
    .await;
    assert!(warnings(&stderr).is_empty(), "{stderr}");
}

#[tokio::test]
async fn invalid_phipolicy_is_rejected_by_the_api_server() {
    let ctx = Ctx::new("invalid-policy", &[]).await;
    let name = unique("e2e-invalid");
    ctx.cleanup("phipolicy", &name);

    let bad_mode = format!(
        "apiVersion: phiguard.io/v1alpha1\nkind: PhiPolicy\nmetadata:\n  name: {name}\nspec:\n  mode: Sometimes\n"
    );
    let run = kubectl(&["apply", "-f", "-"], Some(&bad_mode));
    assert!(!run.ok, "a PhiPolicy with mode Sometimes was accepted");
    for needle in ["spec.mode", "Unsupported value", "\"Sometimes\"", "Enforce"] {
        assert!(
            run.stderr.contains(needle),
            "the API server's error should contain {needle:?}:\n{}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("admission webhook"),
        "the schema, not a webhook, should reject it:\n{}",
        run.stderr
    );

    let no_images = format!(
        "apiVersion: phiguard.io/v1alpha1\nkind: PhiPolicy\nmetadata:\n  name: {name}\nspec:\n  auditSidecar:\n    approvedImages: []\n  encryptionInTransit:\n    acceptedEvidence: [CarrierPigeon]\n"
    );
    let run = kubectl(&["apply", "-f", "-"], Some(&no_images));
    assert!(!run.ok, "a PhiPolicy without approved images was accepted");
    for needle in [
        "spec.auditSidecar.approvedImages",
        "at least 1 items",
        "spec.encryptionInTransit.acceptedEvidence[0]",
        "CarrierPigeon",
    ] {
        assert!(
            run.stderr.contains(needle),
            "the API server's error should contain {needle:?}:\n{}",
            run.stderr
        );
    }
    let run = kubectl(&["get", "phipolicy", &name], None);
    assert!(!run.ok, "the invalid policy must not exist");

    // The valid version goes in, and the API server fills in the schema's defaults.
    let ok = format!(
        "apiVersion: phiguard.io/v1alpha1\nkind: PhiPolicy\nmetadata:\n  name: {name}\nspec:\n  mode: Warn\n  scope:\n    namespaceSelector: {{matchLabels: {{{SCOPE_LABEL}: {name}}}}}\n    workloadSelector: {{matchLabels: {{{SCOPE_LABEL}: {name}}}}}\n"
    );
    kubectl_ok(&["apply"], &ok);
    let run = kubectl(
        &[
            "get",
            "phipolicy",
            &name,
            "-o",
            "jsonpath={.spec.auditSidecar.approvedImages}",
        ],
        None,
    );
    assert!(
        run.ok && run.stdout.contains("fluent"),
        "defaults not applied: {}{}",
        run.stdout,
        run.stderr
    );
}
