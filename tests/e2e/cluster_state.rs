//! phi-guard's view of the cluster comes from watch caches: objects created through the API
//! change its decisions within seconds, and it guards the NetworkPolicies running PHI pods
//! depend on (it sees those Pods even though they never run: no nodes, they stay Pending).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, PostParams};

use crate::fixtures::{self, App, PHI};
use crate::harness::{accepts_eventually, kubectl, kubectl_ok, rejects, unique, Ctx, CACHE};
use crate::rules_named;
use crate::support::{check, shown_rules, wait_for_async};
use phi_guard::verdict::RuleId;

/// How long a change may take to reach phi-guard's decisions.
const FRESHNESS: Duration = Duration::from_secs(10);

#[tokio::test]
async fn decisions_follow_new_storage_classes_and_network_policies() {
    let ctx = Ctx::new("cluster-view", &[PHI]).await;

    // A claim of a class that does not exist yet cannot be proven encrypted.
    let class = unique("e2e-late");
    ctx.cleanup("storageclass", &class);
    let claim = fixtures::pvc(&ctx.ns, "records", &class, true);
    let err = rejects(&claim);
    assert_eq!(
        rules_named(&err),
        vec![RuleId::EncryptionAtRest],
        "only encryption at rest concerns a claim:\n{err}"
    );

    // Create the encrypting class through the API (kube-rs, not kubectl): the claim is
    // admitted as soon as phi-guard's StorageClass cache has it.
    let sc: k8s_openapi::api::storage::v1::StorageClass =
        serde_json::from_str(&fixtures::encrypted_storage_class(&class)).expect("sc json");
    let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(ctx.client.clone());
    classes
        .create(&PostParams::default(), &sc)
        .await
        .expect("create StorageClass");
    let t0 = Instant::now();
    accepts_eventually(&claim, FRESHNESS).await;
    eprintln!(
        "StorageClass reached phi-guard's decision in {:?}",
        t0.elapsed()
    );

    // A PHI Deployment with every safeguard but segmentation: only that finding...
    let app = App::compliant(&ctx.ns, "records-api", Some("records"));
    let err = rejects(&app.deployment());
    assert_eq!(
        rules_named(&err),
        vec![RuleId::NetworkSegmentation],
        "only segmentation is missing:\n{err}"
    );
    // ...until a NetworkPolicy isolating it exists.
    let np: NetworkPolicy = serde_json::from_str(&fixtures::isolate_app(
        &ctx.ns,
        "records-api",
        "records-api",
    ))
    .expect("np json");
    let policies: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    policies
        .create(&PostParams::default(), &np)
        .await
        .expect("create NetworkPolicy");
    let t0 = Instant::now();
    accepts_eventually(&app.deployment(), FRESHNESS).await;
    eprintln!(
        "NetworkPolicy reached phi-guard's decision in {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn deleting_the_only_isolating_network_policy_of_running_phi_pods_is_denied() {
    let ctx = Ctx::new("np-guard", &[PHI]).await;
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    kubectl_ok(
        &["apply"],
        &fixtures::isolate_app(&ctx.ns, "records-api", "records-api"),
    );
    let app = App::compliant(&ctx.ns, "records-api", None);
    accepts_eventually(&app.deployment(), CACHE).await;

    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let lp = ListParams::default().labels("app=records-api");
    wait_for_async(
        "a Pod of the Deployment",
        Duration::from_secs(30),
        Duration::from_millis(300),
        || {
            let (pods, lp) = (&pods, &lp);
            async move {
                let n = pods.list(lp).await.expect("list pods").items.len();
                check(n > 0, || "no Pod".into())
            }
        },
    )
    .await;

    // Two policies isolate the pods: removing one leaves them isolated, which is allowed.
    let run = kubectl(
        &["delete", "networkpolicy", "default-deny", "-n", &ctx.ns],
        None,
    );
    assert!(
        run.ok,
        "deleting a redundant isolating policy should be allowed: {}",
        run.stderr
    );

    // The last one is guarded (server dry runs until phi-guard's Pod cache has the Pod, so a
    // stale cache cannot delete it for real).
    let err = eventually_denied_delete(&ctx.ns, "records-api").await;
    assert!(
        shown_rules(&err).contains(&RuleId::NetworkSegmentation.as_str().to_string()),
        "the denial should name network-segmentation:\n{err}"
    );
    let run = kubectl(
        &["delete", "networkpolicy", "records-api", "-n", &ctx.ns],
        None,
    );
    assert!(
        !run.ok,
        "deleting the last isolating NetworkPolicy was allowed"
    );
    crate::harness::assert_denied_by_phi_guard(&run.stderr);
    let policies: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    assert!(
        policies
            .get_opt("records-api")
            .await
            .expect("get")
            .is_some(),
        "the NetworkPolicy must still exist"
    );
}

async fn eventually_denied_delete(ns: &str, name: &str) -> String {
    crate::harness::eventually("delete denied", CACHE, || {
        let run = kubectl(
            &[
                "delete",
                "networkpolicy",
                name,
                "-n",
                ns,
                "--dry-run=server",
            ],
            None,
        );
        if !run.ok && run.stderr.contains("denied the request") {
            Ok(run.stderr)
        } else {
            Err(format!("ok={} {}{}", run.ok, run.stdout, run.stderr))
        }
    })
    .await
}
