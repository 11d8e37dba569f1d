//! Availability under disruption, with failurePolicy Fail as shipped: while clients keep sending
//! PHI pods (server-side dry runs, each one reviewed by phi-guard through the Service), one replica
//! is deleted, then `helm upgrade` rolls both. Every request must get phi-guard's answer; a
//! "failed calling webhook" (connection refused or reset, timeout) is a failed admission: in a
//! user's cluster it blocks a deploy.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};

use crate::chart::{wait_replicas_ready, wait_webhook_effective, webhook_pods};
use crate::fixtures;
use crate::harness::{
    diagnostics, eventually, exclusive, install, kubectl, kubectl_ok, Namespace, NAMESPACE,
};

/// Concurrent clients.
const CLIENTS: usize = 4;

#[derive(Debug, Default)]
struct Tally {
    reviews: u64,
    failures: Vec<String>,
}

/// Clients sending a non-compliant PHI pod until `stop`: each answer must be phi-guard's denial
/// (counted in `answered` as they come).
fn start_traffic(
    rt: &tokio::runtime::Runtime,
    client: kube::Client,
    ns: &str,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Tally>> {
    let pod: Pod =
        serde_json::from_str(&fixtures::bare_pod(ns, "load", &[], false)).expect("pod fixture");
    (0..CLIENTS)
        .map(|_| {
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            let pod = pod.clone();
            let stop = stop.clone();
            let answered = answered.clone();
            rt.spawn(async move {
                let pp = PostParams {
                    dry_run: true,
                    ..PostParams::default()
                };
                let mut t = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match pods.create(&pp, &pod).await {
                        Err(kube::Error::Api(s)) if s.message.contains("denied the request") => {
                            t.reviews += 1;
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => t
                            .failures
                            .push(format!("after {:?}: {e}", started.elapsed())),
                        Ok(_) => t
                            .failures
                            .push("a non-compliant PHI pod was admitted".to_string()),
                    }
                }
                t
            })
        })
        .collect()
}

/// Names of the webhook pods not terminating.
fn webhook_pod_names() -> Vec<String> {
    webhook_pods().into_iter().map(|p| p.0).collect()
}

#[test]
fn replica_loss_and_rolling_upgrade_under_traffic_fail_no_review() {
    let _one = exclusive();
    let _ = rustls::crypto::ring::default_provider().install_default();
    install(&[]);
    wait_replicas_ready(2);
    let ns = Namespace::new("e2e-node-load", true);
    wait_webhook_effective(&ns.0);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt
        .block_on(kube::Client::try_default())
        .expect("kube client from KUBECONFIG");
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let clients = start_traffic(&rt, client, &ns.0, stop.clone(), answered.clone());
    // Traffic runs for 5 s before and after each disruption (the span is the point), and until
    // it is seen flowing: one more answer per client than when the span began.
    let settle = || {
        let from = answered.load(Ordering::Relaxed);
        // Paces the load: 5 s of traffic is the span under test.
        std::thread::sleep(Duration::from_secs(5));
        eventually("traffic answered", Duration::from_secs(60), || {
            let n = answered.load(Ordering::Relaxed) - from;
            crate::support::check(n >= CLIENTS as u64, || format!("{n} answers"))
        });
    };
    settle();

    // 1. One replica deleted (SIGTERM, then its replacement starts).
    let victim = webhook_pod_names()
        .into_iter()
        .next()
        .expect("a webhook pod");
    kubectl_ok(
        &["delete", "pod", "-n", NAMESPACE, &victim, "--wait=true"],
        None,
    );
    wait_replicas_ready(2);
    settle();
    stop.store(true, Ordering::Relaxed);
    let deleted = collect(&rt, clients);

    // 2. `helm upgrade` changing the pod template: both replicas roll (maxUnavailable 0).
    stop.store(false, Ordering::Relaxed);
    let client = rt
        .block_on(kube::Client::try_default())
        .expect("kube client");
    let clients = start_traffic(&rt, client, &ns.0, stop.clone(), answered.clone());
    settle();
    let before = webhook_pod_names();
    let r = crate::harness::helm(&[
        "upgrade",
        crate::harness::RELEASE,
        &format!("{}/charts/phi-guard", crate::harness::ROOT),
        "-n",
        NAMESPACE,
        "--reuse-values",
        "--set-string",
        "podAnnotations.e2e\\.phiguard\\.io/rollout=1",
        "--wait",
        "--timeout",
        "180s",
    ]);
    assert!(
        r.ok,
        "helm upgrade failed:\n{}{}\n{}",
        r.stdout,
        r.stderr,
        diagnostics()
    );
    wait_replicas_ready(2);
    let after = webhook_pod_names();
    assert!(
        before.iter().all(|p| !after.contains(p)),
        "the upgrade did not replace both replicas: before {before:?}, after {after:?}"
    );
    settle();
    stop.store(true, Ordering::Relaxed);
    let rolled = collect(&rt, clients);

    let _ = kubectl(&["get", "pods", "-n", NAMESPACE], None);
    eprintln!(
        "under traffic: replica deleted: {} reviews, {} failed; rolling upgrade: {} reviews, {} failed",
        deleted.reviews,
        deleted.failures.len(),
        rolled.reviews,
        rolled.failures.len()
    );
    for (what, t) in [
        ("deleting a replica", &deleted),
        ("the rolling upgrade", &rolled),
    ] {
        assert!(t.reviews > 0, "no review succeeded during {what}");
        assert!(
            t.failures.is_empty(),
            "{} of {} admission requests failed during {what} (failurePolicy Fail: each one is a \
             blocked deploy); first ones:\n{}",
            t.failures.len(),
            t.reviews + t.failures.len() as u64,
            t.failures
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

fn collect(rt: &tokio::runtime::Runtime, clients: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut all = Tally::default();
    for c in clients {
        let t = rt.block_on(c).expect("traffic task");
        all.reviews += t.reviews;
        all.failures.extend(t.failures);
    }
    all
}
