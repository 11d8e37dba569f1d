//! The optional safeguards through the real API server: a policy enabling
//! `integrity` in Enforce denies a Deployment with an unpinned image, naming the rule and its
//! HIPAA citation; one enabling `least-privilege` in Warn admits a Deployment that misses the
//! restricted profile and kubectl prints the findings as warnings. Both policies switch the four
//! requirements off and are scoped to the test's namespace, so only the new rule speaks.

use crate::fixtures::App;
use crate::harness::{
    accepts, accepts_eventually, kubectl, kubectl_ok, rejects, rejects_eventually, unique,
    warnings, Ctx, CACHE,
};
use crate::policy::{scoped_policy, SCOPE_LABEL};
use crate::support::shown_findings;
use crate::{assert_findings, denial, shows, shows_rule};
use phi_guard::verdict::{Reason, RuleId};

/// A policy scoped to `key` with the four requirements off and `rules` (YAML under `spec:`).
fn safeguard_policy(name: &str, key: &str, rules: &str) -> String {
    scoped_policy(name, key, "Enforce")
        + "  encryptionAtRest: {enabled: false}\n  encryptionInTransit: {enabled: false}\n  \
           networkSegmentation: {enabled: false}\n  auditSidecar: {enabled: false}\n"
        + rules
}

fn apply_policy(ctx: &Ctx, name: &str, yaml: &str) {
    kubectl_ok(&["apply"], yaml);
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
    assert!(wait.ok, "policy {name} never covered: {}", wait.stderr);
}

/// A Deployment whose image is a tag (no digest) and whose root filesystem is writable.
fn unpinned_deployment(ns: &str, name: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "api",
                    "image": "registry.example-health.com/records/api:1.4.2"}]},
            },
        },
    }))
    .expect("manifest")
}

#[tokio::test]
async fn integrity_in_enforce_denies_an_unpinned_image_with_its_citation() {
    let key = unique("integrity");
    let ctx = Ctx::new("integrity", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-integrity");
    apply_policy(
        &ctx,
        &policy,
        &safeguard_policy(&policy, &key, "  integrity: {enabled: true}\n"),
    );

    let bad = unpinned_deployment(&ctx.ns, "records");
    rejects_eventually(&["--dry-run=server"], &bad, CACHE).await;
    let err = rejects(&bad);
    assert_findings(&err, &[RuleId::Integrity]);
    let msg = denial(&err);
    for needle in [
        "spec.template.spec.containers[0].image",
        "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem",
        &policy,
    ] {
        assert!(msg.contains(needle), "{needle:?} missing:\n{msg}");
    }
    assert!(!msg.contains("1.4.2"), "the image reference leaked:\n{msg}");
    for other in [
        RuleId::EncryptionAtRest,
        RuleId::LeastPrivilege,
        RuleId::Contingency,
    ] {
        assert!(
            !shows_rule(msg, other),
            "{} is off in this policy:\n{msg}",
            other.as_str()
        );
    }

    // Pinned by digest with a read-only root filesystem: admitted without a word.
    let good = App::bare(&ctx.ns, "records-pinned").without_phi_label();
    let stderr = accepts(&good.deployment());
    assert!(
        !stderr.contains("phi-guard"),
        "a compliant workload drew phi-guard output:\n{stderr}"
    );
}

#[tokio::test]
async fn least_privilege_in_warn_admits_with_warnings() {
    let key = unique("least-priv");
    let ctx = Ctx::new("least-priv", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-least-priv");
    apply_policy(
        &ctx,
        &policy,
        &safeguard_policy(
            &policy,
            &key,
            "  leastPrivilege: {enabled: true, mode: Warn}\n  integrity: {enabled: true}\n",
        ),
    );
    // The integrity rule (Enforce) tells when the policy is in phi-guard's cache.
    rejects_eventually(
        &["--dry-run=server"],
        &unpinned_deployment(&ctx.ns, "probe"),
        CACHE,
    )
    .await;

    // Hardened but for capabilities, the ServiceAccount and its token: admitted, warned.
    let app = App::bare(&ctx.ns, "records").without_phi_label();
    let stderr = accepts(&app.deployment());
    let warned: Vec<&str> = warnings(&stderr)
        .into_iter()
        .filter(|w| shows_rule(w, RuleId::LeastPrivilege))
        .collect();
    for needle in [
        "capabilities.drop",
        "automountServiceAccountToken",
        "serviceAccountName",
    ] {
        assert!(
            warned.iter().any(|w| w.contains(needle)),
            "no least-privilege warning about {needle}:\n{stderr}"
        );
    }
    assert!(
        warned
            .iter()
            .all(|w| w.contains(RuleId::LeastPrivilege.citation())),
        "a warning without its citation:\n{stderr}"
    );
    let run = kubectl(&["get", "deployment", "records", "-n", &ctx.ns], None);
    assert!(
        run.ok,
        "the warned Deployment was not created: {}",
        run.stderr
    );
}

/// Contingency through the PodDisruptionBudget watch: a two-replica Deployment is denied until a
/// PDB selecting its pods exists, then admitted; scaling it down to one replica (an UPDATE that
/// introduces a finding) is denied for the replicas alone.
#[tokio::test]
async fn contingency_follows_the_pod_disruption_budget_watch() {
    let key = unique("contingency");
    let ctx = Ctx::new("contingency", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-contingency");
    apply_policy(
        &ctx,
        &policy,
        &safeguard_policy(&policy, &key, "  contingency: {enabled: true}\n"),
    );
    let app = App::bare(&ctx.ns, "ledger")
        .without_phi_label()
        .with_replicas(2);
    let err = rejects_eventually(&["--dry-run=server"], &app.deployment(), CACHE).await;
    assert_findings(&err, &[RuleId::Contingency]);
    assert!(
        shows(denial(&err), Reason::NoDisruptionBudget),
        "{}",
        denial(&err)
    );

    let pdb = serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "ledger", "namespace": ctx.ns},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "ledger"}}},
    }))
    .expect("manifest");
    kubectl_ok(&["apply"], &pdb);
    let stderr = accepts_eventually(&app.deployment(), CACHE).await;
    assert!(!stderr.contains("phi-guard"), "{stderr}");

    let single = App::bare(&ctx.ns, "ledger")
        .without_phi_label()
        .with_replicas(1);
    let err = rejects(&single.deployment());
    let msg = denial(&err);
    let replicas = shown_findings(msg)
        .iter()
        .any(|s| s.rule == RuleId::Contingency.as_str() && s.path == "spec.replicas");
    assert!(replicas && !shows(msg, Reason::NoDisruptionBudget), "{msg}");
}
