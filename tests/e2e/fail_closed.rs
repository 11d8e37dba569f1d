//! With phi-guard down, the webhook fails closed (failurePolicy Fail): PHI workloads are
//! rejected, while kube-system and phi-guard's own namespace still accept writes (the
//! namespaceSelector excludes them), so an outage cannot deadlock the cluster.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

use crate::fixtures::{self, App, PHI};
use crate::harness::{accepts_eventually, kubectl, kubectl_ok, unique, Ctx, CACHE};

/// phi-guard's own namespace (the chart's default, and hack/local-install.sh's).
const PHI_GUARD_NS: &str = "phi-guard";

#[tokio::test]
async fn with_phi_guard_down_phi_workloads_are_rejected_but_system_namespaces_accept_writes() {
    // Exclusive: no other test runs while phi-guard is down.
    let ctx = Ctx::exclusive("fail-closed", &[PHI]).await;
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    // Sanity: this compliant workload is admitted while phi-guard runs...
    accepts_eventually(&App::compliant(&ctx.ns, "before", None).pod(), CACHE).await;

    let outage = ctx.stop_phi_guard();
    assert!(!ctx.phi_guard_alive(), "phi-guard still answers after stop");

    // ...and the same workload is rejected while it is down: nobody vouched for it.
    let app = App::compliant(&ctx.ns, "records-api", None);
    let run = kubectl(&["apply", "-f", "-"], Some(&app.deployment()));
    assert!(
        !run.ok,
        "a PHI Deployment was admitted while phi-guard was down"
    );
    assert!(
        run.stderr.contains("failed calling webhook"),
        "expected the API server's fail-closed error, got:\n{}",
        run.stderr
    );
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    assert!(deployments
        .get_opt("records-api")
        .await
        .expect("get")
        .is_none());

    // Excluded namespaces still take writes of judged kinds, even non-compliant PHI ones.
    for ns in ["kube-system", PHI_GUARD_NS] {
        let name = unique("e2e-outage");
        let sys = App::bare(ns, &name).with_host_path().with_replicas(0);
        let run = kubectl(&["apply", "-f", "-"], Some(&sys.deployment()));
        assert!(
            run.ok,
            "writes to {ns} must not depend on phi-guard, got:\n{}",
            run.stderr
        );
        let _ = kubectl(
            &["delete", "deployment", &name, "-n", ns, "--wait=false"],
            None,
        );
    }
    // Kinds phi-guard does not judge are unaffected everywhere.
    let run = kubectl(
        &[
            "create",
            "configmap",
            "settings",
            "-n",
            &ctx.ns,
            "--from-literal=a=b",
        ],
        None,
    );
    assert!(
        run.ok,
        "a ConfigMap write failed during the outage: {}",
        run.stderr
    );

    outage.end();
    assert!(ctx.phi_guard_alive());
    tokio::time::timeout(
        Duration::from_secs(60),
        accepts_eventually(&app.deployment(), CACHE),
    )
    .await
    .expect("admitted again after restart");
}
