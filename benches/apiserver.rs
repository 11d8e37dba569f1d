// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! `make bench`, part two: the latency phi-guard adds to a Pod create through a real
//! kube-apiserver, against no admission check at all and against a built-in
//! ValidatingAdmissionPolicy (CEL) with the pod-level checks CEL can express. Prints a Markdown
//! table. Not a test.
//!
//! hack/bench.sh starts the control plane (hack/controlplane.sh, no nodes: Pods stay Pending)
//! and passes its env: KUBECONFIG, KUBECTL, HELM, WEBHOOK_CERT, WEBHOOK_KEY, WEBHOOK_CA_BUNDLE,
//! and PHI_GUARD_BIN. phi-guard is installed from the chart (hack/local-install.sh). BENCH_E2E_PODS: Pod creates per phase and round (default 150).
//!
//! Phases run in two interleaved rounds (none, CEL, phi-guard, none, CEL, phi-guard) so that
//! drift (etcd growing, caches warming) does not favour one of them. Before each phase a
//! server-side dry run of a non-compliant PHI Pod proves which check is in force.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::json;

mod support;
use support::{check, env, kubectl_ok, kubectl_out, metric_sum, wait_for_async, PhiGuard};

const NS: &str = "clinic";

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    None,
    Cel,
    PhiGuard,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::None => "no validating admission",
            Phase::Cel => "ValidatingAdmissionPolicy (CEL, pod-level checks only)",
            Phase::PhiGuard => "phi-guard webhook (hipaa-baseline, all four rules)",
        }
    }
}

struct Samples {
    c1: Vec<Duration>,
    c8: Vec<Duration>,
    c8_wall: f64,
    phi_guard_cpu: f64,
    /// Per-check mean waits, summed over rounds as (sum s, count) pairs.
    webhook: (f64, f64),
    cel: (f64, f64),
    own: (f64, f64),
}

async fn run() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let kubectl = PathBuf::from(env("KUBECTL"));
    let pods_per_round: usize = std::env::var("BENCH_E2E_PODS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);

    // The demo's PHI namespace, storage classes, NetworkPolicies and encrypted claim: the Pod
    // below is compliant, so every create is admitted and the figures compare like with like.
    support::apply_demo_state(&root, &kubectl);

    let client = kube::Client::try_default().await.expect("kube client");
    // `BENCH_ONLY=audit`: the cluster at scale and the audit over it, without the phases.
    if std::env::var("BENCH_AUDIT_ONLY").is_ok_and(|v| v == "1") {
        watch_path(&client).await;
        return;
    }
    let pg = PhiGuard::start();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);

    let phases = [Phase::None, Phase::Cel, Phase::PhiGuard];
    let mut samples: Vec<Samples> = phases
        .iter()
        .map(|_| Samples {
            c1: Vec::new(),
            c8: Vec::new(),
            c8_wall: 0.0,
            phi_guard_cpu: 0.0,
            webhook: (0.0, 0.0),
            cel: (0.0, 0.0),
            own: (0.0, 0.0),
        })
        .collect();
    for round in 0..2 {
        for (i, phase) in phases.iter().enumerate() {
            set_phase(&root, &kubectl, &pg, &pods, *phase).await;
            // Warm up the connection and the API server's caches for this configuration.
            for _ in 0..10 {
                create(&pods).await;
            }
            let cpu0 = pg.cpu_secs();
            let w0 = waits(&kubectl, &pg);
            let s = &mut samples[i];
            for _ in 0..pods_per_round {
                s.c1.push(create(&pods).await);
            }
            // The servers' own time per create, at concurrency 1 (at 8, the 2 cores are
            // saturated and every process's time includes waiting for a CPU).
            let w1 = waits(&kubectl, &pg);
            let add = |acc: &mut (f64, f64), a: (f64, f64), b: (f64, f64)| {
                acc.0 += b.0 - a.0;
                acc.1 += b.1 - a.1;
            };
            add(&mut s.webhook, w0.webhook, w1.webhook);
            add(&mut s.cel, w0.cel, w1.cel);
            add(&mut s.own, w0.phi_guard, w1.phi_guard);
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let pods = pods.clone();
                let n = pods_per_round / 8;
                tasks.push(tokio::spawn(async move {
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        v.push(create(&pods).await);
                    }
                    v
                }));
            }
            for t in tasks {
                s.c8.extend(t.await.expect("create task"));
            }
            s.c8_wall += started.elapsed().as_secs_f64();
            s.phi_guard_cpu += pg.cpu_secs() - cpu0;
            eprintln!("round {round}: {:?} done", phase);
        }
    }

    println!("## End to end: a Pod create through kube-apiserver\n");
    println!(
        "{} compliant PHI Pod creates per phase at concurrency 1 and {} at concurrency 8, in two \
         interleaved rounds; kube-apiserver, etcd, phi-guard and the client share the 2 cores.\n",
        2 * pods_per_round,
        2 * (pods_per_round / 8) * 8
    );
    println!("| admission | c=1 p50 ms | c=1 p99 ms | added p50 ms | c=8 p50 ms | c=8 p99 ms | c=8 creates/s | c=1 API server's VAP plugin ms/create | c=1 API server's webhook plugin ms/create | c=1 phi-guard's own handling µs/review | phi-guard CPU µs/create (c=1 and 8) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let base = pct(&mut samples[0].c1.clone(), 0.50);
    for (phase, s) in phases.iter().zip(samples.iter_mut()) {
        let p50 = pct(&mut s.c1, 0.50);
        let p99 = pct(&mut s.c1, 0.99);
        let c8_50 = pct(&mut s.c8, 0.50);
        let c8_99 = pct(&mut s.c8, 0.99);
        let cpu = if *phase == Phase::PhiGuard {
            format!(
                "{:.0}",
                s.phi_guard_cpu * 1e6 / (s.c1.len() + s.c8.len()) as f64
            )
        } else {
            "-".to_string()
        };
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3}", v * 1e3));
        let vap = ms(mean_delta((0.0, 0.0), s.cel));
        let hook = ms(mean_delta((0.0, 0.0), s.webhook));
        let own = match phase {
            Phase::PhiGuard => {
                mean_delta((0.0, 0.0), s.own).map_or("-".to_string(), |v| format!("{:.0}", v * 1e6))
            }
            _ => "-".to_string(),
        };
        println!(
            "| {} | {:.2} | {:.2} | {:+.2} | {:.2} | {:.2} | {:.0} | {} | {} | {} | {} |",
            phase.label(),
            p50,
            p99,
            p50 - base,
            c8_50,
            c8_99,
            s.c8.len() as f64 / s.c8_wall,
            vap,
            hook,
            own,
            cpu
        );
    }
    deny_path(&pods, &pg, &kubectl).await;

    // Take the webhook out before its server goes (it fails closed), then measure the watch path.
    set_phase(&root, &kubectl, &pg, &pods, Phase::None).await;
    drop(pg);

    watch_path(&client).await;
}

/// The deny path: a denial that rests on objects the cache lacks (here the namespace's
/// NetworkPolicies, always re-read for a denial) is confirmed with consistent API reads before
/// it is answered. BENCH_DENY (default 100) non-compliant PHI Pod creates at concurrency 1.
async fn deny_path(pods: &Api<Pod>, pg: &PhiGuard, kubectl: &Path) {
    let n: usize = std::env::var("BENCH_DENY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let before = pg.metrics();
    let api_before = waits(kubectl, pg);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let mut pod = probe_pod();
        pod.metadata.name = Some(format!("denied-{i}"));
        let started = Instant::now();
        match pods.create(&PostParams::default(), &pod).await {
            Err(kube::Error::Api(s)) if s.code == 403 || s.message.contains("denied") => {}
            other => panic!("a non-compliant PHI Pod was not denied: {other:?}"),
        }
        lat.push(started.elapsed());
    }
    let after = pg.metrics();
    let api_after = waits(kubectl, pg);
    let confirm = mean_delta(
        histogram(&before, "phi_guard_confirm_duration_seconds", &[]),
        histogram(&after, "phi_guard_confirm_duration_seconds", &[]),
    );
    let confirms = histogram(&after, "phi_guard_confirm_duration_seconds", &[]).1
        - histogram(&before, "phi_guard_confirm_duration_seconds", &[]).1;
    let own = mean_delta(api_before.phi_guard, api_after.phi_guard);
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3}", v * 1e3));
    println!("\n## The deny path: confirming reads\n");
    println!(
        "{n} non-compliant PHI Pod creates at concurrency 1, each denied. A denial is confirmed \
         with consistent API reads (GET/LIST without resourceVersion) of what it rests on and \
         the cache might lack (here: the namespace's NetworkPolicies) before it is answered; an \
         admitted create makes none.\n"
    );
    println!("| denied creates | confirmations | p50 ms | p99 ms | phi-guard's handling ms/review (incl. reads) | confirming reads ms/denial |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {n} | {confirms:.0} | {:.2} | {:.2} | {} | {} |",
        pct(&mut lat.clone(), 0.50),
        pct(&mut lat, 0.99),
        ms(own),
        ms(confirm)
    );
}

/// The in-cluster path at scale: BENCH_WATCH_OBJECTS (default 10,000) each of Namespaces,
/// StorageClasses, PVCs and NetworkPolicies in the API server, then a fresh phi-guard that lists
/// and watches them: time to ready and memory.
async fn watch_path(client: &kube::Client) {
    let n: usize = std::env::var("BENCH_WATCH_OBJECTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let spread = 100.min(n.max(1));
    let started = Instant::now();
    let make = move |kind: &'static str, i: usize| -> (Option<String>, serde_json::Value) {
        let ns = format!("bench-{}", i % spread);
        match kind {
            "Namespace" => (
                None,
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": format!("bench-{i}"), "labels": {"team": "t"}}}),
            ),
            "StorageClass" => (
                None,
                json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                       "metadata": {"name": format!("bench-sc-{i}")},
                       "provisioner": "ebs.csi.aws.com",
                       "parameters": {"type": "gp3", "encrypted": "true"}}),
            ),
            "PersistentVolumeClaim" => (
                Some(ns),
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": {"name": format!("data-{i}"), "labels": {"app": "db"}},
                       "spec": {"storageClassName": "ebs-kms", "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "1Gi"}}}}),
            ),
            _ => (
                Some(ns),
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "metadata": {"name": format!("np-{i}")},
                       "spec": {"podSelector": {"matchLabels": {"app": format!("a{i}")}},
                                "policyTypes": ["Ingress"],
                                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}}),
            ),
        }
    };
    for kind in [
        "Namespace",
        "StorageClass",
        "PersistentVolumeClaim",
        "NetworkPolicy",
    ] {
        let ar = match kind {
            "Namespace" => ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
            "StorageClass" => {
                ApiResource::erase::<k8s_openapi::api::storage::v1::StorageClass>(&())
            }
            "PersistentVolumeClaim" => {
                ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&())
            }
            _ => ApiResource::erase::<k8s_openapi::api::networking::v1::NetworkPolicy>(&()),
        };
        let mut tasks = Vec::new();
        for t in 0..16 {
            let client = client.clone();
            let ar = ar.clone();
            tasks.push(tokio::spawn(async move {
                for i in (t..n).step_by(16) {
                    let (ns, obj) = make(kind, i);
                    let api: Api<DynamicObject> = match &ns {
                        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                        None => Api::all_with(client.clone(), &ar),
                    };
                    let o: DynamicObject = serde_json::from_value(obj).expect("object");
                    if let Err(e) = api.create(&PostParams::default(), &o).await {
                        panic!("creating {kind} {i}: {e}");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("create task");
        }
    }
    // PHI workloads for the audit: Deployments (replicas 0, so no Pods) labeled PHI, without
    // an audit sidecar, so each has a failing result.
    let deployments = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
    let mut tasks = Vec::new();
    for t in 0..16 {
        let client = client.clone();
        let ar = deployments.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..n).step_by(16) {
                let ns = format!("bench-{}", i % spread);
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
                let o: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": format!("phi-{i}"),
                                 "labels": {"phiguard.io/data-classification": "phi"}},
                    "spec": {"replicas": 0,
                             "selector": {"matchLabels": {"app": format!("phi-{i}")}},
                             "template": {"metadata": {"labels": {"app": format!("phi-{i}"),
                                             "phiguard.io/data-classification": "phi"}},
                                          "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}}}
                }))
                .expect("deployment");
                if let Err(e) = api.create(&PostParams::default(), &o).await {
                    panic!("creating Deployment {i}: {e}");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("create task");
    }
    let created = started.elapsed();
    let spawned = Instant::now();
    let pg = PhiGuard::start();
    let ready = spawned.elapsed();
    let (rss_ready, _) = pg.child.rss();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss, peak) = pg.child.rss();
    println!("\n## The in-cluster watch path at scale\n");
    println!(
        "{n} each of Namespaces, StorageClasses, PersistentVolumeClaims and NetworkPolicies \
         created in the API server ({:.0} s), plus the Pods of the phases above; then a fresh \
         phi-guard lists and watches them.\n",
        created.as_secs_f64()
    );
    println!(
        "| objects per kind | ready after | RSS at ready MB | RSS 3 s later MB | RSS peak MB |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {n} | {:.0} ms | {:.1} | {:.1} | {:.1} |",
        ready.as_secs_f64() * 1e3,
        rss_ready,
        rss,
        peak
    );
    drop(pg);
    audit_path(n).await;
}

/// The background audit at scale: a fresh phi-guard with `--audit` over the objects above
/// (and n PHI Deployments, each failing): its first full pass, memory, the reports it writes,
/// its writes in steady state, and the webhook's own latency while the audit is idle and while
/// it re-judges everything (a PhiPolicy mode flip every 2 s).
async fn audit_path(n: usize) {
    let kubectl = PathBuf::from(env("KUBECTL"));
    // The audit's Lease lives in phi-guard's own namespace (the chart's release namespace):
    // without it no replica leads and no pass runs (phi-guard says so, every 3 s, in its log).
    kubectl_out(
        &kubectl,
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: phi-guard\n"),
    );
    // What the chart installs (BENCH_ONLY=audit skips the phases that install it): phi-guard's
    // CRDs and the baseline PhiPolicy (flipped below), the report CRDs.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for path in ["crds", "examples/policies/hipaa-baseline.yaml"] {
        kubectl_out(
            &kubectl,
            &["apply", "-f", &root.join(path).to_string_lossy()],
            None,
        );
        if path == "crds" {
            kubectl_out(
                &kubectl,
                &[
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    "crd/phipolicies.phiguard.io",
                ],
                None,
            );
        }
    }
    let files = root.join("charts/phi-guard/files");
    for crd in ["policyreports", "clusterpolicyreports"] {
        let path = files.join(format!("wgpolicyk8s.io_{crd}.yaml"));
        kubectl_out(&kubectl, &["apply", "-f", &path.to_string_lossy()], None);
        kubectl_out(
            &kubectl,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{crd}.wgpolicyk8s.io"),
            ],
            None,
        );
    }
    let spawned = Instant::now();
    let pg = PhiGuard::start_with(&["--audit", "--pod-name=bench", "--namespace=phi-guard"]);
    let ready = spawned.elapsed();
    let cpu0 = pg.cpu_secs();
    // What the API server and etcd spend while the first pass writes (they share the cores).
    let store_cpu0 = control_plane_cpu();
    let count = |m: &str| histogram(m, "phi_guard_audit_pass_duration_seconds", &[]).1;
    first_audit_pass(&pg, "an audit pass", Duration::from_millis(250)).await;
    let first = spawned.elapsed();
    let store_cpu = control_plane_cpu() - store_cpu0;
    let (pass_sum, _) = histogram(&pg.metrics(), "phi_guard_audit_pass_duration_seconds", &[]);
    // Let follow-up passes (objects that arrived during the first) settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu = pg.cpu_secs() - cpu0;
    let (rss, peak) = pg.child.rss();
    let list = kubectl_out(
        &kubectl,
        &[
            "get",
            "policyreports.v1alpha2.wgpolicyk8s.io",
            "-A",
            "-o",
            "json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&list).unwrap_or_default();
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let bytes: usize = items.iter().map(|i| i.to_string().len()).sum();
    let biggest = items.iter().map(|i| i.to_string().len()).max().unwrap_or(0);
    let results: usize = items
        .iter()
        .map(|i| i["results"].as_array().map_or(0, Vec::len))
        .sum();
    let writes = |m: &str| metric_sum(m, "phi_guard_report_writes_total", &[]);
    let w0 = writes(&pg.metrics());
    let idle_lat = review_latencies(&pg, 1000).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let steady = writes(&pg.metrics()) - w0;

    // A restart (a rollout, a failover; the same identity, so the Lease is taken at once): the
    // new leader's first full pass over reports an earlier one wrote. It sweeps every second, so
    // that the audit's own work (judging everything, nothing to write) can be measured apart
    // from the API server's storing of reports.
    drop(pg);
    let spawned = Instant::now();
    let pg = PhiGuard::start_with(&[
        "--audit",
        "--pod-name=bench",
        "--namespace=phi-guard",
        "--audit-sweep=1s",
    ]);
    let re_ready = spawned.elapsed();
    first_audit_pass(
        &pg,
        "the restarted audit's first pass",
        Duration::from_millis(100),
    )
    .await;
    let re_first = spawned.elapsed();
    let re_writes = writes(&pg.metrics());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (re_rss, re_peak) = pg.child.rss();
    let passes_before = count(&pg.metrics());
    let mut sweeping_lat = Vec::new();
    let sweep_started = Instant::now();
    while count(&pg.metrics()) < passes_before + 5.0
        && sweep_started.elapsed() < Duration::from_secs(120)
    {
        sweeping_lat.extend(review_latencies(&pg, 200).await);
    }
    let sweeps = count(&pg.metrics()) - passes_before;
    let sweep_writes = writes(&pg.metrics()) - re_writes;

    // Busy: flip the baseline's mode so that every object is judged again, again and again.
    let flips = tokio::spawn({
        let kubectl = kubectl.clone();
        async move {
            for i in 0..30 {
                let mode = if i % 2 == 0 { "Warn" } else { "Enforce" };
                kubectl_ok(
                    &kubectl,
                    &[
                        "patch",
                        "phipolicy",
                        "hipaa-baseline",
                        "--type=merge",
                        "-p",
                        &format!(r#"{{"spec":{{"mode":"{mode}"}}}}"#),
                    ],
                    None,
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Reviews until two more full passes ended during them (or 120 s): 1,000 reviews alone
    // take under a second, shorter than one pass, and would measure an idle audit.
    let passes_before = count(&pg.metrics());
    let busy_started = Instant::now();
    let mut busy_lat = Vec::new();
    while count(&pg.metrics()) < passes_before + 2.0
        && busy_started.elapsed() < Duration::from_secs(120)
    {
        busy_lat.extend(review_latencies(&pg, 500).await);
    }
    let busy_passes = count(&pg.metrics()) - passes_before;
    flips.abort();
    kubectl_ok(
        &kubectl,
        &[
            "patch",
            "phipolicy",
            "hipaa-baseline",
            "--type=merge",
            "-p",
            r#"{"spec":{"mode":"Enforce"}}"#,
        ],
        None,
    );
    let passes = count(&pg.metrics());
    println!("\n## The background audit at scale\n");
    println!(
        "A fresh phi-guard with `--audit` over the objects above plus {n} PHI Deployments \
         (each failing audit-sidecar), all in 100 namespaces.\n"
    );
    println!("| ready after start | first full pass after ready | pass time (judge + write) | CPU s | API server + etcd CPU s during the pass | RSS MB (peak) | reports | report bytes (largest) | results | report writes in 60 s steady state |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {:.1} s | {:.1} s | {:.1} s | {:.1} | {:.1} | {:.0} ({:.0}) | {} | {} ({}) | {} | {:.0} |",
        ready.as_secs_f64(),
        first.saturating_sub(ready).as_secs_f64(),
        pass_sum,
        cpu,
        store_cpu,
        rss,
        peak,
        items.len(),
        bytes,
        biggest,
        results,
        steady
    );
    println!(
        "\nRestarted over the reports it wrote: ready after {:.1} s, first full pass {:.1} s after \
         ready, {re_writes:.0} report writes in it, RSS {re_rss:.0} MB (peak {re_peak:.0}) 5 s later.",
        re_ready.as_secs_f64(),
        re_first.saturating_sub(re_ready).as_secs_f64(),
    );
    let mut idle = idle_lat;
    let mut busy = busy_lat;
    println!(
        "\n1,000 reviews idle, reviews until two passes end while busy; load average (1, 5, 15 min) at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("\n| webhook review (direct POST, c=1) | p50 ms | p99 ms |");
    println!("|---|---|---|");
    println!(
        "| audit idle | {:.2} | {:.2} |",
        pct(&mut idle, 0.5),
        pct(&mut idle, 0.99)
    );
    let mut sweeping = sweeping_lat;
    println!(
        "| audit sweeping everything every second, nothing to write ({} reviews over {sweeps:.0} passes, {sweep_writes:.0} report writes) | {:.2} | {:.2} |",
        sweeping.len(),
        pct(&mut sweeping, 0.5),
        pct(&mut sweeping, 0.99)
    );
    println!(
        "| audit re-judging and rewriting everything ({} reviews over {busy_passes:.0} passes; {passes:.0} passes in all) | {:.2} | {:.2} |",
        busy.len(),
        pct(&mut busy, 0.5),
        pct(&mut busy, 0.99)
    );
}

/// Wait until phi-guard has finished its first audit pass.
async fn first_audit_pass(pg: &PhiGuard, what: &str, poll: Duration) {
    wait_for_async(what, Duration::from_secs(600), poll, || {
        let passes = histogram(&pg.metrics(), "phi_guard_audit_pass_duration_seconds", &[]).1;
        std::future::ready(check(passes >= 1.0, || "none yet".into()))
    })
    .await;
}

/// CPU seconds the API server and etcd have used (`hack/bench.sh` names their directory).
fn control_plane_cpu() -> f64 {
    let dir = PathBuf::from(env("BENCH_CONTROLPLANE_DIR"));
    ["apiserver", "etcd"]
        .iter()
        .map(|name| {
            let pid = std::fs::read_to_string(dir.join(format!("{name}.pid")))
                .unwrap_or_else(|e| panic!("{name}.pid in {}: {e}", dir.display()));
            let pid: u32 = pid
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{name}.pid: {e}"));
            support::cpu_secs(pid)
        })
        .sum()
}

/// `n` sequential reviews of the compliant PHI Pod (admitted from the caches, no API call),
/// straight to phi-guard's /validate.
async fn review_latencies(pg: &PhiGuard, n: usize) -> Vec<Duration> {
    let ca = std::fs::read(env("WEBHOOK_CA")).expect("read WEBHOOK_CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
        .build()
        .expect("client");
    let body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b0b0b0b-0000-4000-8000-000000000000",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": NS,
            "operation": "CREATE",
            "userInfo": {"username": "bench"},
            "object": compliant_pod(),
        }
    }))
    .expect("review");
    let url = format!("https://127.0.0.1:{}/validate", pg.port);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("review");
        assert!(r.status().is_success(), "review status {}", r.status());
        let text = r.text().await.unwrap_or_default();
        assert!(
            text.contains("\"allowed\":true"),
            "the compliant Pod was not admitted: {text}"
        );
        out.push(t.elapsed());
    }
    out
}

/// Percentile in milliseconds.
fn pct(v: &mut [Duration], q: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn compliant_pod() -> Pod {
    support::compliant_pod(NS)
}

/// A PHI Pod that both checks refuse: no audit sidecar, a hostPath volume, no digest.
fn probe_pod() -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "probe", "namespace": NS, "labels": { "app": "probe" } },
        "spec": {
            "containers": [{ "name": "app", "image": "nginx:1.27",
                             "volumeMounts": [{ "name": "host", "mountPath": "/data" }] }],
            "volumes": [{ "name": "host", "hostPath": { "path": "/var/data" } }]
        }
    }))
    .expect("pod")
}

async fn create(pods: &Api<Pod>) -> Duration {
    let pod = compliant_pod();
    let started = Instant::now();
    match pods.create(&PostParams::default(), &pod).await {
        Ok(_) => started.elapsed(),
        Err(e) => panic!("a compliant Pod create failed: {e}"),
    }
}

/// Switch the admission configuration, then wait until a dry run shows it in force.
async fn set_phase(root: &Path, kubectl: &Path, pg: &PhiGuard, pods: &Api<Pod>, phase: Phase) {
    let del = |what: &[&str]| {
        let mut args = vec!["delete", "--ignore-not-found", "--wait=true"];
        args.extend_from_slice(what);
        kubectl_ok(kubectl, &args, None);
    };
    if phase != Phase::PhiGuard {
        // The chart's webhook configuration (release phi-guard, see hack/local-install.sh); the
        // next install recreates it.
        del(&["validatingwebhookconfiguration", "phi-guard"]);
    }
    if phase != Phase::Cel {
        del(&[
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            "phi-pod-baseline",
        ]);
    }
    match phase {
        Phase::None => {}
        Phase::Cel => kubectl_ok(kubectl, &["apply", "-f", "-"], Some(VAP)),
        Phase::PhiGuard => {
            let st = Command::new(root.join("hack/local-install.sh"))
                .arg("install")
                .env("WEBHOOK_URL", pg.url())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run hack/local-install.sh");
            assert!(st.success(), "hack/local-install.sh install failed");
        }
    }
    let probe = probe_pod();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let (dry, probe) = (&dry, &probe);
    wait_for_async(
        &format!("phase {phase:?} in force"),
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async move {
            let verdict = pods.create(dry, probe).await;
            let ok = match (&verdict, phase) {
                (Ok(_), Phase::None) => true,
                (Err(kube::Error::Api(s)), Phase::Cel) => {
                    s.message.contains("ValidatingAdmissionPolicy")
                }
                (Err(kube::Error::Api(s)), Phase::PhiGuard) => {
                    // The chart's webhook name.
                    s.message.contains("phi-namespaces.phiguard.io")
                }
                _ => false,
            };
            check(ok, || {
                format!("probe: {:?}", verdict.err().map(|e| e.to_string()))
            })
        },
    )
    .await;
}

/// Sum and count of a Prometheus histogram over the series whose labels include `labels`.
fn histogram(text: &str, name: &str, labels: &[&str]) -> (f64, f64) {
    let value = |suffix: &str| metric_sum(text, &format!("{name}_{suffix}"), labels);
    (value("sum"), value("count"))
}

/// Where a phase's time went, from the servers' own histograms (deltas over the phase).
#[derive(Default, Clone, Copy)]
struct Waits {
    /// kube-apiserver's time in its ValidatingAdmissionWebhook plugin, CREATEs (sum s, count).
    webhook: (f64, f64),
    /// kube-apiserver's time in its ValidatingAdmissionPolicy plugin, CREATEs (sum s, count).
    cel: (f64, f64),
    /// phi-guard's own handling, body read to response encoded (sum s, count).
    phi_guard: (f64, f64),
}

fn waits(kubectl: &Path, pg: &PhiGuard) -> Waits {
    let api = kubectl_out(kubectl, &["get", "--raw", "/metrics"], None);
    let own = pg.metrics();
    Waits {
        webhook: histogram(
            &api,
            "apiserver_admission_controller_admission_duration_seconds",
            &[
                "name=\"ValidatingAdmissionWebhook\"",
                "operation=\"CREATE\"",
            ],
        ),
        cel: histogram(
            &api,
            "apiserver_admission_controller_admission_duration_seconds",
            &["name=\"ValidatingAdmissionPolicy\"", "operation=\"CREATE\""],
        ),
        phi_guard: histogram(&own, "phi_guard_review_duration_seconds", &[]),
    }
}

fn mean_delta(a: (f64, f64), b: (f64, f64)) -> Option<f64> {
    let n = b.1 - a.1;
    (n > 0.0).then(|| (b.0 - a.0) / n)
}

/// What a platform team would write in CEL for the same PHI pods: the checks CEL can make on
/// the Pod alone. It cannot follow a PVC to its StorageClass, see NetworkPolicies, or know a
/// mesh's namespace-wide settings: those need cluster state, which phi-guard keeps in its
/// watch caches.
const VAP: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: phi-pod-baseline
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [pods]
  validations:
    - expression: >-
        object.spec.containers.exists(c, c.image.matches('(^|/)(fluent/fluent-bit|timberio/vector)([:@]|$)'))
        || (has(object.spec.initContainers) && object.spec.initContainers.exists(c,
            has(c.restartPolicy) && c.restartPolicy == 'Always'
            && c.image.matches('(^|/)(fluent/fluent-bit|timberio/vector)([:@]|$)')))
      message: "PHI pods need an approved audit sidecar (45 CFR 164.312(b))"
    - expression: "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))"
      message: "PHI pods may not use hostPath volumes (45 CFR 164.312(a)(2)(iv))"
    - expression: >-
        !has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.emptyDir)
        || (has(v.emptyDir.medium) && v.emptyDir.medium == 'Memory'))
      message: "PHI pods may only use in-memory emptyDir volumes (45 CFR 164.312(a)(2)(iv))"
    - expression: "object.spec.containers.all(c, c.image.contains('@sha256:'))"
      message: "PHI pods must pin images by digest"
    - expression: >-
        (has(object.metadata.annotations) && 'sidecar.istio.io/status' in object.metadata.annotations)
        || (has(object.spec.volumes) && object.spec.volumes.exists(v, has(v.csi)
            && v.csi.driver == 'csi.cert-manager.io'))
      message: "PHI pods need TLS: a mesh sidecar or a cert-manager certificate (45 CFR 164.312(e)(1))"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: phi-pod-baseline
spec:
  policyName: phi-pod-baseline
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        phiguard.io/data-classification: phi
"#;
