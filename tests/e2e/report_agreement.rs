//! `phi-guard report --from-cluster` judges what the webhook and the audit judge: its snapshot
//! lists every kind of the registry, so a PHI Deployment whose contingency rests on a
//! PodDisruptionBudget and whose encryption in transit rests on Cilium's ConfigMap passes those
//! rules in the auditor's report exactly as in the audit's PolicyReport (before the registry, the
//! snapshot left both out and the report failed them).

use std::collections::BTreeSet;
use std::time::Duration;

use phi_guard::verdict::RuleId;

use serde_json::Value;

use crate::fixtures::App;
use crate::harness::*;
use crate::platform_evidence::{cilium_config, Remove};
use crate::policy::{scoped_policy, SCOPE_LABEL};
use crate::shows_rule;
use crate::support::wait_for_async;

/// Rules the audit's PolicyReport fails or warns for `name` in `ns` (passes are not written by
/// default), once it has a result for the object.
fn reported_problems(ns: &str, name: &str) -> Option<BTreeSet<String>> {
    let run = kubectl(&["get", "policyreports", "-n", ns, "-o", "json"], None);
    let v: Value = serde_json::from_str(&run.stdout).ok()?;
    let mut seen = false;
    let mut rules = BTreeSet::new();
    for r in v["items"].as_array()? {
        for x in r["results"].as_array().into_iter().flatten() {
            if x["resources"][0]["name"] != name {
                continue;
            }
            seen = true;
            if matches!(x["result"].as_str(), Some("fail" | "warn")) {
                rules.insert(x["rule"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    seen.then_some(rules)
}

#[tokio::test]
async fn report_from_cluster_agrees_with_the_audit_on_safeguards_and_cni_evidence() {
    let key = unique("agree");
    let ctx = Ctx::exclusive("agree", &[(SCOPE_LABEL, &key)]).await;
    let _cm = Remove("configmap", "kube-system", "cilium-config");
    kubectl_ok(&["apply"], &cilium_config("true"));
    let policy = unique("e2e-agree");
    kubectl_ok(
        &["apply"],
        &(scoped_policy(&policy, &key, "Warn")
            + "  encryptionInTransit:\n    acceptedEvidence: [IstioSidecar, Linkerd, AppTls, CiliumEncryption]\n  \
               contingency: {enabled: true}\n"),
    );
    ctx.cleanup("phipolicy", &policy);
    let pdb = serde_json::to_string(&serde_json::json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "ledger", "namespace": ctx.ns},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "ledger"}}},
    }))
    .expect("manifest");
    kubectl_ok(&["apply"], &pdb);
    let app = App::bare(&ctx.ns, "ledger")
        .without_phi_label()
        .with_replicas(2);
    // Admitted (Warn) once the policy is in force: server dry runs until they are warned (a
    // real apply before that would create the Deployment unjudged), then the real apply.
    crate::harness::eventually("the policy in force", CACHE, || {
        let run = kubectl(
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&app.deployment()),
        );
        if run.ok && run.stderr.contains("phi-guard") {
            Ok(())
        } else {
            Err(format!("{}{}", run.stdout, run.stderr))
        }
    })
    .await;
    let stderr = accepts(&app.deployment());
    assert!(shows_rule(&stderr, RuleId::AuditSidecar), "{stderr}");

    // The audit's view: what fails, once it has judged the Deployment.
    let audit = wait_for_async(
        "a PolicyReport result for the Deployment",
        Duration::from_secs(30),
        Duration::from_millis(500),
        || {
            std::future::ready(
                reported_problems(&ctx.ns, "ledger").ok_or_else(|| "no result".to_string()),
            )
        },
    )
    .await;

    // The auditor's report from the cluster.
    let (_out, json) = crate::evidence::report_from_cluster();
    let w = json["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .find(|w| w["namespace"] == ctx.ns.as_str() && w["name"] == "ledger")
        .unwrap_or_else(|| panic!("the PHI Deployment is missing from the evidence: {json:#}"))
        .clone();
    // The rules that rest on the PDB and the CNI ConfigMap pass in both.
    assert_eq!(w["rules"]["contingency"], "pass", "{w:#}");
    assert_eq!(w["rules"]["encryption-in-transit"], "pass", "{w:#}");
    let report_fails: BTreeSet<String> = w["rules"]
        .as_object()
        .expect("rules")
        .iter()
        .filter(|(_, s)| *s == "fail")
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(
        report_fails, audit,
        "the auditor's report and the audit disagree about Deployment ledger"
    );
    assert!(
        audit.contains("audit-sidecar") && !audit.contains("contingency"),
        "{audit:?}"
    );
}
