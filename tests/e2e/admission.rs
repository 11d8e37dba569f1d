//! Admission decisions seen through kubectl: deny with every finding, admit compliant and non-PHI
//! objects, namespace scope, bare Pods, server-side dry run.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};

use crate::fixtures::{self, App, PHI};
use crate::harness::{
    accepts, accepts_eventually, accepts_with, kubectl, kubectl_ok, rejects, rejects_with, unique,
    warnings, Ctx, CACHE,
};
use crate::{assert_findings, rules_named, CORE_RULES};
use std::time::Duration;

use phi_guard::verdict::notes::PRE_EXISTING;
use phi_guard::verdict::RuleId;

use crate::support::{check, shown_rules, try_wait_for_async};

/// A StorageClass for this test, deleted afterwards.
fn storage_class(ctx: &Ctx, encrypted: bool) -> String {
    let name = unique(if encrypted { "e2e-enc" } else { "e2e-plain" });
    let yaml = if encrypted {
        fixtures::encrypted_storage_class(&name)
    } else {
        fixtures::plain_storage_class(&name)
    };
    kubectl_ok(&["apply"], &yaml);
    ctx.cleanup("storageclass", &name);
    name
}

#[tokio::test]
async fn phi_deployment_without_safeguards_is_rejected_listing_every_finding() {
    let ctx = Ctx::new("reject-all", &[]).await;
    let class = storage_class(&ctx, false);
    // The claim itself is not labeled PHI and the namespace is not PHI: it is admitted; the PHI
    // Deployment that mounts it is what gets judged.
    accepts(&fixtures::pvc(&ctx.ns, "uploads", &class, false));
    let app = App::violating(&ctx.ns, "records-api", "uploads");

    let err = rejects(&app.deployment());
    assert_findings(&err, &CORE_RULES);
    assert!(
        err.contains("uploads") || err.contains(&class),
        "the encryption-at-rest finding should name the claim or its StorageClass:\n{err}"
    );
    assert!(
        err.contains("records-api"),
        "the denial should name the object:\n{err}"
    );
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    assert!(
        deployments
            .get_opt("records-api")
            .await
            .expect("get deployment")
            .is_none(),
        "a denied Deployment must not exist"
    );
}

#[tokio::test]
async fn compliant_phi_deployment_and_its_pods_are_admitted() {
    let ctx = Ctx::new("compliant", &[]).await;
    let class = storage_class(&ctx, true);
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    accepts_eventually(&fixtures::pvc(&ctx.ns, "records", &class, true), CACHE).await;
    let app = App::compliant(&ctx.ns, "records-api", Some("records"));

    let stderr = accepts_eventually(&app.deployment(), CACHE).await;
    assert!(
        warnings(&stderr).iter().all(|w| !w.contains("phi-guard")),
        "a compliant Deployment should get no phi-guard warnings:\n{stderr}"
    );

    // The ReplicaSet's Pods pass Pod-level admission too (they stay Pending: no nodes).
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let lp = ListParams::default().labels("app=records-api");
    let created = try_wait_for_async(
        "a Pod of the compliant Deployment",
        Duration::from_secs(30),
        Duration::from_millis(300),
        || {
            let (pods, lp) = (&pods, &lp);
            async move {
                let n = pods.list(lp).await.expect("list pods").items.len();
                check(n >= 1, || format!("{n} pods"))
            }
        },
    )
    .await;
    if let Err(e) = created {
        let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.ns);
        let ev: Vec<String> = events
            .list(&ListParams::default())
            .await
            .map(|l| l.items.into_iter().filter_map(|e| e.message).collect())
            .unwrap_or_default();
        panic!("{e}; events: {ev:#?}");
    }
}

#[tokio::test]
async fn non_phi_workload_is_admitted_untouched() {
    let ctx = Ctx::new("non-phi", &[]).await;
    // Everything the PHI rules dislike, but no PHI label and no PHI namespace.
    let app = App::bare(&ctx.ns, "build-cache")
        .without_phi_label()
        .with_host_path();
    let stderr = accepts(&app.deployment());
    assert!(
        warnings(&stderr).is_empty(),
        "a non-PHI workload should be admitted without warnings:\n{stderr}"
    );
    let stderr = accepts(&app.pod());
    assert!(warnings(&stderr).is_empty(), "bare pod warnings:\n{stderr}");

    // Stored as sent: the hostPath volume is still there.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let pod = pods.get("build-cache").await.expect("pod stored");
    let vols = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
    assert!(
        vols.iter().any(|v| v.host_path.is_some()),
        "stored pod lost its volumes: {vols:?}"
    );
}

#[tokio::test]
async fn phi_namespace_brings_its_workloads_into_scope() {
    let ctx = Ctx::new("ns-scope", &[]).await;
    // Nothing in the object says PHI: outside a PHI namespace it is admitted...
    let app = App::bare(&ctx.ns, "intake").without_phi_label();
    accepts(&app.deployment());

    // ...in a namespace labeled PHI the same workload is judged and denied.
    let phi_ns = unique("e2e-ns-scope-phi");
    kubectl_ok(&["apply"], &fixtures::namespace(&phi_ns, &[PHI]));
    ctx.cleanup("namespace", &phi_ns);
    let in_phi_ns = App::bare(&phi_ns, "intake").without_phi_label();
    let err = rejects(&in_phi_ns.deployment());
    assert_findings(
        &err,
        &[
            RuleId::EncryptionInTransit,
            RuleId::NetworkSegmentation,
            RuleId::AuditSidecar,
        ],
    );

    // Labeling the first namespace PHI brings the admitted Deployment into scope. Its next
    // update is judged by what it changes, not by its history (else labeling a namespace would
    // block every later update of what already runs there):
    // a harmless label is admitted with the findings it already had as `pre-existing`
    // warnings; an update that adds a new problem is denied for that problem.
    let run = kubectl(
        &[
            "label",
            "namespace",
            &ctx.ns,
            &format!("{}={}", PHI.0, PHI.1),
        ],
        None,
    );
    assert!(run.ok, "labeling the namespace PHI failed: {}", run.stderr);
    let updated = app.clone().with_label("release", "2");
    let stderr = crate::harness::eventually("the namespace is PHI for phi-guard", CACHE, || {
        let run = kubectl(
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&updated.deployment()),
        );
        if run.ok && run.stderr.contains(PRE_EXISTING) {
            Ok(run.stderr)
        } else {
            Err(format!("ok={} {}", run.ok, run.stderr))
        }
    })
    .await;
    for rule in [RuleId::EncryptionInTransit, RuleId::AuditSidecar] {
        assert!(
            warnings(&stderr).iter().any(|w| {
                shown_rules(w).iter().any(|r| r == rule.as_str()) && w.contains(PRE_EXISTING)
            }),
            "no pre-existing warning for {}:\n{stderr}",
            rule.as_str()
        );
    }
    accepts(&updated.deployment());
    let worse = updated.with_host_path();
    let err = rejects(&worse.deployment());
    assert_findings(&err, &[RuleId::EncryptionAtRest]);
}

#[tokio::test]
async fn bare_pods_are_judged() {
    let ctx = Ctx::new("bare-pods", &[PHI]).await;
    let err = rejects(&App::bare(&ctx.ns, "adhoc").pod());
    assert_findings(
        &err,
        &[
            RuleId::EncryptionInTransit,
            RuleId::NetworkSegmentation,
            RuleId::AuditSidecar,
        ],
    );
    assert!(
        err.contains("Pod"),
        "the denial should say it is about a Pod:\n{err}"
    );
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let stderr = accepts_eventually(&App::compliant(&ctx.ns, "adhoc", None).pod(), CACHE).await;
    assert!(
        warnings(&stderr).iter().all(|w| !w.contains("phi-guard")),
        "compliant pod got warnings:\n{stderr}"
    );

    // Compliant but for one hostPath volume: exactly the at-rest finding.
    let err = rejects(
        &App::compliant(&ctx.ns, "scratch", None)
            .with_host_path()
            .pod(),
    );
    assert_eq!(rules_named(&err), vec![RuleId::EncryptionAtRest], "{err}");
    assert_findings(&err, &[RuleId::EncryptionAtRest]);
    assert!(err.contains("hostPath"), "should name hostPath:\n{err}");
}

#[tokio::test]
async fn server_side_dry_run_gets_the_same_decision() {
    let ctx = Ctx::new("dry-run", &[PHI]).await;
    let app = App::bare(&ctx.ns, "claims").with_host_path();
    let dry = rejects_with(&["--dry-run=server"], &app.deployment());
    let real = rejects(&app.deployment());
    assert_eq!(
        rules_named(&dry),
        rules_named(&real),
        "dry run and real apply name different rules:\n--- dry run:\n{dry}\n--- real:\n{real}"
    );
    assert_findings(&dry, &CORE_RULES);

    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let good = App::compliant(&ctx.ns, "claims", None);
    // Wait for the NetworkPolicy to reach the cache with dry runs only, then check that the dry
    // run admitted without creating anything.
    let manifest = good.deployment();
    let out = crate::harness::eventually("dry-run admission", CACHE, || {
        let run = kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&manifest));
        if run.ok {
            Ok(run.stdout)
        } else {
            Err(run.stderr)
        }
    })
    .await;
    assert!(out.contains("server dry run"), "{out}");
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    assert!(
        deployments.get_opt("claims").await.expect("get").is_none(),
        "a server dry run must not create the Deployment"
    );
    accepts_with(&[], &good.deployment());
    assert!(deployments.get_opt("claims").await.expect("get").is_some());
}
