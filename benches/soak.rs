// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! `make soak`: phi-guard against a real kube-apiserver for SOAK_MINUTES (default 30) with
//! steady admission traffic and churn of what its watch caches hold, recording each minute
//! phi-guard's RSS, open file descriptors, threads and open connections, the p50/p99 latency of
//! the requests it judged and every unexpected answer. Not a test: a benchmark-like run whose
//! figures go into RELIABILITY.md. Exits non-zero when a request got a wrong or failed answer,
//! or when RSS or file descriptors grew (thresholds below).
//!
//! hack/soak.sh starts the control plane (hack/controlplane.sh, no nodes: Pods stay Pending)
//! and passes its env (KUBECONFIG, KUBECTL, WEBHOOK_CERT, WEBHOOK_KEY, PHI_GUARD_BIN).
//!
//! Each second (SOAK_RATE rounds, default 4): a compliant PHI Pod created (admitted; the
//! benches' Pod: encrypted claim, cert-manager TLS, audit sidecar) and a non-compliant one
//! (denied), a label UPDATE of a compliant Pod (admitted), and churn in a
//! second PHI namespace: a NetworkPolicy, a PVC and a Pod created and deleted. Every 30 s a PHI
//! namespace is created and deleted.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

mod support;
use support::{check, env, kubectl_ok, metric_sum, wait_for_async, PhiGuard};

const NS: &str = "clinic";
const CHURN_NS: &str = "clinic-churn";
/// RSS may grow this much from the end of the first minute to the last (MiB), in all.
const RSS_GROWTH_MIB: f64 = 32.0;
/// Open file descriptors may grow this much.
const FD_GROWTH: i64 = 16;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ok = rt.block_on(run());
    std::process::exit(if ok { 0 } else { 1 });
}

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One minute's record.
struct Minute {
    rss_mib: f64,
    fds: i64,
    threads: i64,
    connections: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: usize,
    errors: usize,
}

fn proc_count(pid: u32, what: &str) -> i64 {
    match what {
        "fds" => std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(-1, |d| d.count() as i64),
        _ => std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1),
    }
}

/// A compliant PHI Pod (the benches' one; in the churn namespace without its claim), or a
/// non-compliant one (a hostPath volume, no audit sidecar, no TLS).
fn pod(name: &str, ns: &str, compliant: bool) -> Pod {
    let mut v = serde_json::to_value(support::compliant_pod(ns)).unwrap();
    v["metadata"]["name"] = name.into();
    v["metadata"]["generateName"] = serde_json::Value::Null;
    if ns == CHURN_NS {
        v["spec"]["volumes"]
            .as_array_mut()
            .unwrap()
            .retain(|vol| vol["name"] != "records");
        v["spec"]["containers"][0]["volumeMounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["name"] != "records");
    }
    if !compliant {
        v["spec"]["containers"].as_array_mut().unwrap().truncate(1);
        v["spec"]["volumes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "host", "hostPath": {"path": "/var/data"}}));
    }
    serde_json::from_value(v).unwrap()
}

async fn run() -> bool {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let kubectl = PathBuf::from(env("KUBECTL"));
    let minutes = var("SOAK_MINUTES", 30);
    let rate = var("SOAK_RATE", 4).max(1);
    support::apply_demo_state(&root, &kubectl);
    kubectl_ok(
        &kubectl,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {CHURN_NS}\n  labels:\n    phiguard.io/data-classification: phi\n---\n\
             apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\n  namespace: {CHURN_NS}\n\
             spec:\n  podSelector: {{}}\n  policyTypes: [Ingress, Egress]\n"
        )),
    );
    let pg = PhiGuard::start();
    let st = Command::new(root.join("hack/local-install.sh"))
        .arg("install")
        .env("WEBHOOK_URL", pg.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run hack/local-install.sh");
    assert!(st.success(), "hack/local-install.sh install failed");
    let client = kube::Client::try_default().await.expect("kube client");
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let churn_pods: Api<Pod> = Api::namespaced(client.clone(), CHURN_NS);
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), CHURN_NS);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), CHURN_NS);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());

    // Wait until phi-guard judges: a non-compliant PHI Pod is denied.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let (pods_api, dry) = (&pods, &dry);
    wait_for_async(
        "phi-guard in force",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async move {
            let admitted = pods_api.create(dry, &pod("probe", NS, false)).await.is_ok();
            check(!admitted, || "a non-compliant PHI Pod admitted".into())
        },
    )
    .await;
    // A standing compliant Pod that the UPDATEs relabel.
    let _ = pods
        .create(&PostParams::default(), &pod("standing", NS, true))
        .await;

    let pid = pg.child.id();
    let mut table: Vec<Minute> = Vec::new();
    let mut errors_seen: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut n: u64 = 0;
    for minute in 0..minutes {
        let mut lat: Vec<Duration> = Vec::new();
        let mut errors = 0;
        let minute_end = started + Duration::from_secs(60 * (minute + 1));
        while Instant::now() < minute_end {
            let round_start = Instant::now();
            n += 1;
            let mut check = |what: &str, ok: bool, t: Duration| {
                lat.push(t);
                if !ok {
                    errors += 1;
                    if errors_seen.len() < 20 {
                        errors_seen.push(format!("minute {minute}: {what}"));
                    }
                }
            };
            // Admitted create, then delete.
            let t = Instant::now();
            let name = format!("ok-{n}");
            let r = pods
                .create(&PostParams::default(), &pod(&name, NS, true))
                .await;
            check(
                &format!("compliant create: {:?}", r.as_ref().err()),
                r.is_ok(),
                t.elapsed(),
            );
            let _ = pods.delete(&name, &DeleteParams::default()).await;
            // Denied create.
            let t = Instant::now();
            let r = pods
                .create(&PostParams::default(), &pod(&format!("bad-{n}"), NS, false))
                .await;
            let denied = matches!(&r, Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("phi-guard denied"));
            check(
                &format!("non-compliant create: {:?}", r.as_ref().err()),
                denied,
                t.elapsed(),
            );
            // Admitted UPDATE.
            let t = Instant::now();
            let r = pods
                .patch(
                    "standing",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {"round": n.to_string()}}})),
                )
                .await;
            check(
                &format!("update: {:?}", r.as_ref().err()),
                r.is_ok(),
                t.elapsed(),
            );
            // Churn of cached objects in the second PHI namespace.
            let np: NetworkPolicy = serde_json::from_value(json!({
                "metadata": {"name": format!("np-{n}")},
                "spec": {"podSelector": {"matchLabels": {"app": format!("x{n}")}}, "policyTypes": ["Ingress"]},
            }))
            .unwrap();
            let _ = nps.create(&PostParams::default(), &np).await;
            let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
                "metadata": {"name": format!("pvc-{n}")},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "ebs-kms",
                         "resources": {"requests": {"storage": "1Gi"}}},
            }))
            .unwrap();
            let _ = pvcs.create(&PostParams::default(), &pvc).await;
            let _ = churn_pods
                .create(
                    &PostParams::default(),
                    &pod(&format!("churn-{n}"), CHURN_NS, true),
                )
                .await;
            let _ = nps
                .delete(&format!("np-{n}"), &DeleteParams::default())
                .await;
            let _ = pvcs
                .delete(&format!("pvc-{n}"), &DeleteParams::default())
                .await;
            let _ = churn_pods
                .delete(&format!("churn-{n}"), &DeleteParams::default())
                .await;
            if n.is_multiple_of(30 * rate) {
                let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({
                    "metadata": {"name": format!("soak-ns-{n}"), "labels": {"phiguard.io/data-classification": "phi"}},
                }))
                .unwrap();
                let _ = namespaces.create(&PostParams::default(), &ns).await;
                let _ = namespaces
                    .delete(&format!("soak-ns-{n}"), &DeleteParams::default())
                    .await;
            }
            let pause = Duration::from_millis(1000 / rate).saturating_sub(round_start.elapsed());
            tokio::time::sleep(pause).await;
        }
        lat.sort();
        let q = |p: f64| {
            lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        let metrics = pg.metrics();
        let m = Minute {
            rss_mib: pg.child.rss().0,
            fds: proc_count(pid, "fds"),
            threads: proc_count(pid, "threads"),
            connections: metric_sum(&metrics, "phi_guard_open_connections", &[]),
            p50_ms: q(0.50),
            p99_ms: q(0.99),
            requests: lat.len(),
            errors,
        };
        eprintln!(
            "minute {}: RSS {:.1} MiB, fds {}, threads {}, connections {}, p99 {:.1} ms, {} requests, {} errors",
            minute + 1, m.rss_mib, m.fds, m.threads, m.connections, m.p99_ms, m.requests, m.errors
        );
        table.push(m);
    }

    println!("## Soak: {minutes} min, {rate} rounds/s\n");
    println!("| minute | RSS MiB | open fds | threads | open connections | p50 ms | p99 ms | requests judged | errors |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, m) in table.iter().enumerate() {
        println!(
            "| {} | {:.1} | {} | {} | {} | {:.1} | {:.1} | {} | {} |",
            i + 1,
            m.rss_mib,
            m.fds,
            m.threads,
            m.connections,
            m.p50_ms,
            m.p99_ms,
            m.requests,
            m.errors
        );
    }
    let errors: usize = table.iter().map(|m| m.errors).sum();
    let (first, last) = (table.first(), table.last());
    let rss_growth = match (first, last) {
        (Some(a), Some(b)) => b.rss_mib - a.rss_mib,
        _ => 0.0,
    };
    let fd_growth = match (first, last) {
        (Some(a), Some(b)) => b.fds - a.fds,
        _ => 0,
    };
    let requests: usize = table.iter().map(|m| m.requests).sum();
    println!(
        "\n{requests} requests judged, {errors} errors; RSS {rss_growth:+.1} MiB from minute 1 to \
         {minutes} (limit +{RSS_GROWTH_MIB}), open fds {fd_growth:+} (limit +{FD_GROWTH})."
    );
    for e in &errors_seen {
        println!("- {e}");
    }
    let pass = errors == 0 && rss_growth <= RSS_GROWTH_MIB && fd_growth <= FD_GROWTH;
    println!("{}", if pass { "PASS" } else { "FAIL" });
    pass
}
