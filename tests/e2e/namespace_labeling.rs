//! Labelling a namespace PHI around what already runs in it: `kubectl label namespace` is
//! answered with the workloads that would fail (warned by default, refused under
//! `namespaceLabeling: Refuse`), through the `namespace-labels` webhook the API server calls
//! for the UPDATE that adds the label.
//!
//! Each test uses its own policy scoped to a label nothing else carries, never the baseline.

use crate::fixtures::{self, App};
use crate::harness::{
    assert_denied_by_phi_guard, eventually, kubectl, kubectl_ok, unique, warnings, Ctx, CACHE,
};
use crate::policy::{scoped_policy, SCOPE_LABEL};
use crate::{shown_with, shows};
use phi_guard::verdict::notes::fails_under;
use phi_guard::verdict::{Mode, Reason};

/// How the answer names the violating Deployment: with the pods its ReplicaSet runs.
const LEDGER: &str = "Deployment ledger (2 pods)";

/// Apply a policy scoped to `key` (Enforce, with `namespaceLabeling` when given), delete it
/// with `ctx`, and wait until the webhook configuration covers its scope.
fn apply_policy(ctx: &Ctx, name: &str, key: &str, labeling: Option<&str>) {
    let mut yaml = scoped_policy(name, key, "Enforce");
    if let Some(l) = labeling {
        yaml.push_str(&format!("  namespaceLabeling: {l}\n"));
    }
    kubectl_ok(&["apply"], &yaml);
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

/// A plain namespace holding a violating Deployment (whose ReplicaSet and Pods the controllers
/// create), a violating bare Pod and a compliant one; none carries a PHI label, so all are
/// admitted unjudged.
fn workloads(ctx: &Ctx) {
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let ledger = App::bare(&ctx.ns, "ledger")
        .without_phi_label()
        .with_replicas(2);
    kubectl_ok(&["apply"], &ledger.deployment());
    kubectl_ok(
        &["apply"],
        &App::bare(&ctx.ns, "debug").without_phi_label().pod(),
    );
    kubectl_ok(
        &["apply"],
        &App::compliant(&ctx.ns, "steady", None)
            .without_phi_label()
            .pod(),
    );
}

fn label_arg(key: &str) -> String {
    format!("{SCOPE_LABEL}={key}")
}

fn namespace_labels(ns: &str) -> String {
    let run = kubectl(
        &["get", "namespace", ns, "-o", "jsonpath={.metadata.labels}"],
        None,
    );
    assert!(run.ok, "get namespace {ns}: {}", run.stderr);
    run.stdout
}

#[tokio::test]
async fn labelling_a_namespace_phi_warns_naming_the_failing_workloads() {
    let ctx = Ctx::new("nslabel-warn", &[]).await;
    workloads(&ctx);
    let key = unique("nslabel");
    let policy = unique("e2e-nslabel");
    apply_policy(&ctx, &policy, &key, None);

    // Server dry runs until phi-guard's caches have the policy and the ReplicaSet's pods exist;
    // then the real label.
    let label = label_arg(&key);
    let args = ["label", "namespace", ctx.ns.as_str(), label.as_str()];
    eventually("the relabel warns", CACHE, || {
        let mut dry = args.to_vec();
        dry.push("--dry-run=server");
        let run = kubectl(&dry, None);
        let warned = warnings(&run.stderr).join("\n");
        if run.ok && warned.contains(&fails_under(LEDGER, Mode::Enforce, &policy)) {
            Ok(())
        } else {
            Err(run.stderr)
        }
    })
    .await;
    let run = kubectl(&args, None);
    assert!(run.ok, "the label is admitted under Warn:\n{}", run.stderr);
    let warned: Vec<&str> = warnings(&run.stderr)
        .into_iter()
        .filter(|w| w.contains("phi-guard"))
        .collect();
    let all = warned.join("\n");
    // A summary naming the namespace and the policy, then one finding per failing workload:
    // two, both under Enforce.
    let summary = shown_with(&all, Reason::LabelingOverFailingWorkloads);
    assert_eq!(summary.len(), 1, "one summary warning:\n{all}");
    assert_eq!(summary[0].path, "metadata.labels", "{all}");
    assert!(
        warned.iter().any(|w| {
            shows(w, Reason::LabelingOverFailingWorkloads)
                && w.contains(ctx.ns.as_str())
                && w.contains(policy.as_str())
        }),
        "the summary names the namespace and the policy:\n{all}"
    );
    assert_eq!(
        shown_with(&all, Reason::LabelingFailingWorkload).len(),
        2,
        "two failing workloads:\n{all}"
    );
    // The Deployment is named with the pods its ReplicaSet runs.
    for name in [LEDGER, "Pod debug"] {
        assert!(
            warned
                .iter()
                .any(|w| w.contains(&fails_under(name, Mode::Enforce, &policy))),
            "no warning names {name}:\n{all}"
        );
    }
    // The Deployment speaks for its ReplicaSet and Pods; the compliant Pod is not named.
    for absent in ["ReplicaSet", "Pod ledger", "steady"] {
        assert!(
            !all.contains(absent),
            "{absent} should not be named:\n{all}"
        );
    }
    assert!(
        namespace_labels(&ctx.ns).contains(&key),
        "the label is stored under Warn"
    );
}

#[tokio::test]
async fn refuse_keeps_the_label_off_until_the_workloads_are_fixed() {
    let ctx = Ctx::new("nslabel-refuse", &[]).await;
    workloads(&ctx);
    let key = unique("nslabel");
    let policy = unique("e2e-nslabel");
    apply_policy(&ctx, &policy, &key, Some("Refuse"));

    let label = label_arg(&key);
    let args = ["label", "namespace", ctx.ns.as_str(), label.as_str()];
    // Server dry runs until phi-guard's caches have the policy; then the real label.
    eventually("the relabel is refused", CACHE, || {
        let mut dry = args.to_vec();
        dry.push("--dry-run=server");
        let run = kubectl(&dry, None);
        if !run.ok && run.stderr.contains("Deployment ledger") {
            Ok(())
        } else {
            Err(format!("ok={} {}", run.ok, run.stderr))
        }
    })
    .await;
    let run = kubectl(&args, None);
    assert!(!run.ok, "the label must be refused:\n{}", run.stdout);
    let err = run.stderr;
    assert_denied_by_phi_guard(&err);
    // Refused for the failing workloads (namespaceLabeling: Refuse), naming them.
    assert!(shows(&err, Reason::LabelingOverFailingWorkloads), "{err}");
    assert!(
        err.contains(&fails_under("Pod debug", Mode::Enforce, &policy)),
        "{err}"
    );
    assert!(!err.contains("steady"), "{err}");
    assert!(
        !namespace_labels(&ctx.ns).contains(&key),
        "a refused label must not be stored"
    );

    // Fixed (the failing workloads removed): the label is admitted.
    let run = kubectl(
        &[
            "delete",
            "deployment",
            "ledger",
            "-n",
            &ctx.ns,
            "--wait=false",
        ],
        None,
    );
    assert!(run.ok, "{}", run.stderr);
    let run = kubectl(
        &[
            "delete",
            "pod",
            "debug",
            "-n",
            &ctx.ns,
            "--grace-period=0",
            "--force",
        ],
        None,
    );
    assert!(run.ok, "{}", run.stderr);
    eventually("the label is admitted once fixed", CACHE, || {
        let run = kubectl(&args, None);
        if run.ok {
            Ok(())
        } else {
            Err(run.stderr)
        }
    })
    .await;
    assert!(namespace_labels(&ctx.ns).contains(&key));
}
