//! A living cluster: objects admitted earlier (here under Warn, then the policy is switched to
//! Enforce) can still be labeled, rolled out to their fixed version and deleted. Kubernetes' own
//! controllers (the Deployment controller scaling the old ReplicaSet, the pvc-protection
//! controller removing its finalizer) finish what was admitted; only what an update introduces
//! is enforced.

use std::time::Duration;

use serde_json::Value;

use crate::fixtures::{self, App};
use crate::harness::{
    accepts_eventually, eventually, kubectl, kubectl_ok, rejects_eventually, unique, warnings, Ctx,
    CACHE,
};
use crate::policy::{scoped_policy, SCOPE_LABEL};
use crate::shows_rule;
use phi_guard::verdict::notes::PRE_EXISTING;
use phi_guard::verdict::RuleId;

fn set_mode(policy: &str, mode: &str) {
    let patch = format!(r#"{{"spec":{{"mode":"{mode}"}}}}"#);
    let run = kubectl(
        &["patch", "phipolicy", policy, "--type=merge", "-p", &patch],
        None,
    );
    assert!(run.ok, "patch policy: {}", run.stderr);
}

/// The Deployment's YAML/JSON with `spec.strategy.type` set.
fn with_strategy(deployment: &str, strategy: &str) -> String {
    let mut v: Value = serde_json::from_str(deployment).expect("fixture is JSON");
    v["spec"]["strategy"] = serde_json::json!({ "type": strategy });
    v.to_string()
}

#[tokio::test]
async fn objects_admitted_earlier_can_be_labeled_rolled_out_and_deleted_after_enforce() {
    let key = unique("upd");
    let ctx = Ctx::new("updates", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-updates");
    kubectl_ok(&["apply"], &scoped_policy(&policy, &key, "Warn"));
    ctx.cleanup("phipolicy", &policy);
    let plain_class = unique("e2e-plain");
    kubectl_ok(&["apply"], &fixtures::plain_storage_class(&plain_class));
    ctx.cleanup("storageclass", &plain_class);

    // Under Warn: a non-compliant Deployment and an unencrypted claim are admitted.
    let old = App::bare(&ctx.ns, "records").without_phi_label();
    let old_deploy = with_strategy(&old.deployment(), "Recreate");
    accepts_eventually(&old_deploy, CACHE).await;
    let claim = fixtures::pvc(&ctx.ns, "scratch", &plain_class, false);
    kubectl_ok(&["apply"], &claim);

    // The policy is tightened; new objects like them are now denied.
    set_mode(&policy, "Enforce");
    let probe = App::bare(&ctx.ns, "probe").without_phi_label();
    rejects_eventually(&["--dry-run=server"], &probe.deployment(), CACHE).await;

    // A developer's label on the existing Deployment is admitted, with the old findings as
    // warnings that say they pre-exist.
    let run = kubectl(
        &[
            "label",
            "deployment",
            "records",
            "-n",
            &ctx.ns,
            "team=billing",
        ],
        None,
    );
    assert!(run.ok, "kubectl label was denied:\n{}", run.stderr);
    let warned = warnings(&run.stderr);
    assert!(
        warned.iter().any(|w| w.contains(PRE_EXISTING)),
        "expected pre-existing warnings, got:\n{}",
        run.stderr
    );

    // The fixed version rolls out: the Deployment controller scales the old ReplicaSet to 0
    // (an UPDATE of an object with pre-existing findings) and creates the new one.
    let old_rs = eventually("the old ReplicaSet exists", Duration::from_secs(30), || {
        let run = kubectl(
            &[
                "get",
                "rs",
                "-n",
                &ctx.ns,
                "-l",
                "app=records",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
            None,
        );
        let names: Vec<String> = run.stdout.split_whitespace().map(str::to_string).collect();
        if run.ok && names.len() == 1 {
            Ok(names[0].clone())
        } else {
            Err(format!("{names:?} {}", run.stderr))
        }
    })
    .await;
    kubectl_ok(
        &["apply"],
        &fixtures::isolate_app(&ctx.ns, "records-isolation", "records"),
    );
    let fixed = App::compliant(&ctx.ns, "records", None).without_phi_label();
    let run = kubectl(
        &["apply", "-f", "-"],
        Some(&with_strategy(&fixed.deployment(), "Recreate")),
    );
    assert!(run.ok, "the fixed Deployment was denied:\n{}", run.stderr);
    eventually(
        "the old ReplicaSet is scaled to 0",
        Duration::from_secs(60),
        || {
            let run = kubectl(
                &[
                    "get",
                    "rs",
                    &old_rs,
                    "-n",
                    &ctx.ns,
                    "-o",
                    "jsonpath={.spec.replicas}",
                ],
                None,
            );
            match run.stdout.trim() {
                "0" => Ok(()),
                other => Err(format!("replicas {other:?} {}", run.stderr)),
            }
        },
    )
    .await;

    // The unencrypted claim admitted under Warn can be deleted: the pvc-protection controller's
    // finalizer-removing UPDATE is not denied.
    eventually(
        "the claim carries the pvc-protection finalizer",
        Duration::from_secs(30),
        || {
            let run = kubectl(
                &[
                    "get",
                    "pvc",
                    "scratch",
                    "-n",
                    &ctx.ns,
                    "-o",
                    "jsonpath={.metadata.finalizers}",
                ],
                None,
            );
            if run.stdout.contains("kubernetes.io/pvc-protection") {
                Ok(())
            } else {
                Err(format!("{}{}", run.stdout, run.stderr))
            }
        },
    )
    .await;
    let run = kubectl(
        &["delete", "pvc", "scratch", "-n", &ctx.ns, "--wait=false"],
        None,
    );
    assert!(run.ok, "delete pvc: {}", run.stderr);
    eventually("the claim is gone", Duration::from_secs(30), || {
        let run = kubectl(
            &["get", "pvc", "scratch", "-n", &ctx.ns, "-o", "name"],
            None,
        );
        if !run.ok && run.stderr.contains("NotFound") {
            Ok(())
        } else {
            Err(format!("{}{}", run.stdout, run.stderr))
        }
    })
    .await;

    // What an update introduces is still enforced: a hostPath added to the fixed Deployment.
    let worse = App::compliant(&ctx.ns, "records", None)
        .without_phi_label()
        .with_host_path();
    let run = kubectl(
        &["apply", "-f", "-"],
        Some(&with_strategy(&worse.deployment(), "Recreate")),
    );
    assert!(!run.ok, "an update adding a hostPath volume was admitted");
    assert!(
        shows_rule(&run.stderr, RuleId::EncryptionAtRest),
        "{}",
        run.stderr
    );
}
