//! Faults injected through the real control plane, each one a way a stale cache could admit PHI
//! or a review could hang: the API server killed and
//! restarted, etcd compacted so that watches get `410 Gone`, phi-guard cut off from the API
//! server, a PhiPolicy edited 50 times in a second, phi-guard SIGKILLed mid-review, and an
//! unreachable or slow API server at phi-guard's start. Each test states the expectation and
//! prints what it measured (`make e2e E2E_ARGS='faults -- --nocapture'`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::consistency::{apiserver_addr, kubeconfig_via, lagged_kubeconfig};
use crate::fixtures::{self, App, PHI};
use crate::harness::*;
use crate::policy::{apply_scoped_policy, SCOPE_LABEL};
use crate::support::{check, shown_rules, try_wait_for_async, wait_for};
use phi_guard::verdict::RuleId;
use phi_guard::webhook::review::STALE_VIEW;

// ---- a proxy that can cut phi-guard off from the API server -------------------------------

/// A TCP proxy to the API server that can drop every connection and refuse new ones.
struct CutProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl CutProxy {
    fn start(upstream: SocketAddr) -> CutProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, rx) = tokio::sync::watch::channel(0u64);
        let is_cut = cut.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if is_cut.load(Ordering::SeqCst) {
                        let _ = client.shutdown().await;
                        continue;
                    }
                    let mut rx = rx.clone();
                    rx.mark_unchanged();
                    tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = rx.changed() => {} // cut: drop both ends
                        }
                    });
                }
            });
        });
        CutProxy {
            port,
            cut,
            generation,
        }
    }

    /// Drop every open connection and refuse new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

// ---- the control plane's processes ----------------------------------------------------------

fn control_plane_env(key: &str) -> String {
    let text =
        std::fs::read_to_string(Env::get().state_dir.join("env")).expect("control plane env");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} not in the control plane's env file"))
        .to_string()
}

/// The current etcd revision (etcd's JSON gateway).
async fn etcd_revision(client: &reqwest::Client, etcd: &str) -> i64 {
    let v: serde_json::Value = client
        .post(format!("{etcd}/v3/kv/range"))
        .json(&json!({"key": "L3JlZ2lzdHJ5"})) // "/registry"
        .send()
        .await
        .expect("etcd range")
        .json()
        .await
        .expect("etcd range JSON");
    v["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {v}"))
}

/// SIGKILL kube-apiserver and start it again with the same command line; wait until it serves.
fn restart_apiserver() -> Duration {
    let dir = Env::get().state_dir.clone();
    let pid: u32 = std::fs::read_to_string(dir.join("apiserver.pid"))
        .expect("apiserver.pid")
        .trim()
        .parse()
        .expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("apiserver cmdline");
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert!(args[0].ends_with("kube-apiserver"), "{args:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for(
        "the killed kube-apiserver is gone",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || {
            check(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                || format!("/proc/{pid} still exists"),
            )
        },
    );
    let started = Instant::now();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("apiserver.log"))
        .expect("apiserver.log");
    let child = Command::new("setsid")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start kube-apiserver again");
    // hack/controlplane.sh stop finds it by its pid file.
    std::fs::write(dir.join("apiserver.pid"), child.id().to_string()).unwrap();
    std::mem::forget(child);
    crate::support::wait_for(
        "kube-apiserver back",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || {
            let run = kubectl(&["get", "--raw=/readyz"], None);
            crate::support::check(run.ok, || run.stderr)
        },
    );
    started.elapsed()
}

// ---- a phi-guard of the test's own ------------------------------------------------------------

/// A phi-guard process of this test (no webhook traffic reaches it), not waited for.
struct Standalone {
    child: Child,
    admin_port: u16,
    log: PathBuf,
}

impl Standalone {
    fn start(name: &str, kubeconfig: &std::path::Path) -> Standalone {
        let env = Env::get();
        let admin_port = crate::support::free_port();
        let log = env.state_dir.join(format!("{name}.log"));
        let child = Command::new(&env.phi_guard_bin)
            .arg("serve")
            .arg(format!(
                "--listen=127.0.0.1:{}",
                crate::support::free_port()
            ))
            .arg(format!("--admin-listen=127.0.0.1:{admin_port}"))
            .arg("--tls-cert-file")
            .arg(&env.webhook_cert)
            .arg("--tls-key-file")
            .arg(&env.webhook_key)
            .arg("--shutdown-delay=0s")
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start phi-guard");
        Standalone {
            child,
            admin_port,
            log,
        }
    }

    fn readyz(&self) -> Option<(u16, String)> {
        http_get(self.admin_port, "/readyz")
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn must(args: &[&str]) {
    let run = kubectl(args, None);
    assert!(run.ok, "kubectl {}: {}", args.join(" "), run.stderr);
}

fn server_dry_run(yaml: &str) -> Run {
    kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(yaml))
}

// ---- the faults ---------------------------------------------------------------------------------

/// phi-guard cut off from the API server; meanwhile the NetworkPolicy a PHI app relies on is
/// deleted, etcd is compacted past phi-guard's resourceVersions, and kube-apiserver is killed
/// and restarted (its watch cache starts empty, so phi-guard's resumed watches get 410 Gone).
/// Expected: while cut off, `/readyz` stays 200 and says which watches are failing; after 5 s a
/// PHI creation is refused as stale (fail closed), never admitted on the old cache; once
/// reconnected, the caches relist and the first answers already see the deletion.
#[tokio::test]
async fn api_server_restart_and_compaction_while_phi_guard_is_cut_off() {
    let ctx = Ctx::exclusive("faults-restart", &[PHI]).await;
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let proxy = CutProxy::start(apiserver_addr());
    let kubeconfig = kubeconfig_via(proxy.port, "cut.kubeconfig");
    let running = ctx.run_phi_guard_with(&kubeconfig);
    let admin = ctx.phi_guard_admin_port();
    let app = |n: &str| App::compliant(&ctx.ns, n, None).deployment();
    // Dry runs only: no PHI pods exist, so phi-guard lets the NetworkPolicy be deleted below
    // (with PHI pods running it refuses that deletion, a guard of its own).
    eventually("the compliant app admitted", CACHE, || {
        let run = server_dry_run(&app("records-0"));
        if run.ok {
            Ok(())
        } else {
            Err(run.stderr)
        }
    })
    .await;

    proxy.cut();
    let cut_at = Instant::now();
    // Honest readiness: still serving (200), saying what is failing.
    let body = eventually(
        "a degraded /readyz",
        Duration::from_secs(15),
        || match http_get(admin, "/readyz") {
            Some((200, b)) if b.contains("degraded") && b.contains("watch/") => Ok(b),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    println!(
        "cut off: /readyz degraded after {:?}: {}",
        cut_at.elapsed(),
        body.trim()
    );
    // Past STALE_AFTER (5 s) a PHI creation is refused, not admitted on the old cache.
    // Waits out STALE_AFTER, the timeout under test.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(cut_at.elapsed())).await;
    let stale = server_dry_run(&app("records-1"));
    assert!(
        !stale.ok && stale.stderr.contains(STALE_VIEW),
        "a PHI creation while the watches are failing must be refused as stale: ok={} {}\n{}",
        stale.ok,
        stale.stderr,
        ctx.phi_guard_log()
    );

    // Changes phi-guard cannot see: the NetworkPolicy goes, etcd is compacted past it.
    must(&["delete", "networkpolicy", "default-deny", "-n", &ctx.ns]);
    for i in 0..20 {
        let cm = format!("churn-{i}");
        must(&["create", "configmap", &cm, "-n", &ctx.ns]);
        must(&["delete", "configmap", &cm, "-n", &ctx.ns]);
    }
    let http = reqwest::Client::new();
    let etcd = control_plane_env("ETCD_URL");
    let revision = etcd_revision(&http, &etcd).await;
    let compacted = http
        .post(format!("{etcd}/v3/kv/compaction"))
        .json(&json!({"revision": revision.to_string(), "physical": true}))
        .send()
        .await
        .expect("etcd compaction");
    assert!(
        compacted.status().is_success(),
        "{:?}",
        compacted.text().await
    );
    let restart = restart_apiserver();
    println!("etcd compacted at revision {revision}; kube-apiserver back after {restart:?}");

    proxy.restore();
    let restored_at = Instant::now();
    // Every answer from now on is either "stale" (refused) or the right denial; never admitted.
    let mut answers = Vec::new();
    let denied_at = try_wait_for_async(
        "a correct denial after reconnecting",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let run = server_dry_run(&app("records-2"));
            assert!(
                !run.ok,
                "admitted on a stale cache {:?} after reconnecting (answers so far: {answers:?})\n{}",
                restored_at.elapsed(),
                ctx.phi_guard_log()
            );
            let segmentation = RuleId::NetworkSegmentation.as_str();
            std::future::ready(if shown_rules(&run.stderr).iter().any(|r| r == segmentation) {
                Ok(restored_at.elapsed())
            } else {
                answers.push(format!(
                    "{:?}: {}",
                    restored_at.elapsed(),
                    run.stderr.lines().next().unwrap_or_default()
                ));
                Err(format!("{} answers: {answers:?}", answers.len()))
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", ctx.phi_guard_log()));
    let clean_at = eventually(
        "/readyz no longer degraded",
        Duration::from_secs(30),
        || match http_get(admin, "/readyz") {
            Some((200, b)) if b == "ok\n" => Ok(restored_at.elapsed()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let log =
        std::fs::read_to_string(Env::get().state_dir.join("phi-guard.log")).unwrap_or_default();
    let gone = log.matches("too old resource version").count() + log.matches("Expired").count();
    println!(
        "reconnected: correct denial after {denied_at:?} ({} stale refusals before), /readyz clean \
         after {clean_at:?}; 410 Gone seen {gone} times in the log",
        answers.len()
    );
    running.end();
}

/// phi-guard SIGKILLed while a review is in flight (held by a 2 s-lagged confirming read):
/// the API server sees the connection die and refuses the request (failurePolicy Fail);
/// nothing is admitted. After the restart the same apply is admitted.
#[tokio::test]
async fn phi_guard_killed_mid_review_fails_closed() {
    let ctx = Ctx::exclusive("faults-kill", &[PHI]).await;
    let lagged = ctx.run_phi_guard_with(&lagged_kubeconfig());
    let mut mid_review = None;
    for attempt in 0..5 {
        let ns = unique(&format!("e2e-kill{attempt}"));
        ctx.cleanup("namespace", &ns);
        let yaml = format!(
            "{}\n---\n{}\n---\n{}",
            fixtures::namespace(&ns, &[PHI, ("e2e.phiguard.io/test", "faults-kill")]),
            fixtures::default_deny(&ns, "default-deny"),
            App::compliant(&ns, "records-api", None).deployment()
        );
        let apply = {
            let yaml = yaml.clone();
            std::thread::spawn(move || kubectl(&["apply", "-f", "-"], Some(&yaml)))
        };
        // The Deployment's review waits ~2 s on the lagged read of its new namespace.
        // Paces the kill into that review (no condition to poll from outside).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let outage = ctx.kill_phi_guard();
        let run = apply.join().expect("kubectl thread");
        let exists = kubectl(&["get", "deployment", "records-api", "-n", &ns], None).ok;
        assert!(
            !exists,
            "a Deployment whose review was cut off by SIGKILL exists: {}",
            run.stderr
        );
        outage.end();
        if !run.ok
            && run.stderr.contains("failed calling webhook")
            && !run.stderr.contains("connection refused")
        {
            mid_review = Some((ns, yaml, run.stderr));
            break;
        }
        println!(
            "attempt {attempt}: not caught mid-review (ok={}): {}",
            run.ok, run.stderr
        );
        // Back to the lagged phi-guard for the next attempt.
        drop(ctx.run_phi_guard_with(&lagged_kubeconfig()));
    }
    let (ns, yaml, stderr) = mid_review.expect("no attempt killed phi-guard mid-review");
    println!(
        "killed mid-review, the API server answered: {}",
        stderr.trim()
    );
    let run = kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert!(run.ok, "after the restart: {}", run.stderr);
    assert!(kubectl(&["get", "deployment", "records-api", "-n", &ns], None).ok);
    drop(lagged);
}

/// A PhiPolicy edited 50 times in about a second (mode cycling Enforce, Audit, Warn; the last
/// edit is Warn): phi-guard ends on the last spec, in its decisions and in the policy's status.
#[tokio::test]
async fn policy_edited_fifty_times_in_a_second_the_last_spec_wins() {
    let key = unique("burst");
    let ctx = Ctx::new("burst", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-burst");
    apply_scoped_policy(&ctx, &policy, &key, "Enforce");
    let ar = ApiResource {
        group: "phiguard.io".into(),
        version: "v1alpha1".into(),
        api_version: "phiguard.io/v1alpha1".into(),
        kind: "PhiPolicy".into(),
        plural: "phipolicies".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
    let modes = ["Enforce", "Audit", "Warn"];
    let started = Instant::now();
    for i in 0..50 {
        let mode = modes[(i + 1) % 3]; // i = 49 -> Warn
        api.patch(
            &policy,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mode": mode}})),
        )
        .await
        .expect("patch");
    }
    let took = started.elapsed();
    let generation = api.get(&policy).await.expect("get").metadata.generation;
    println!("50 edits in {took:?}; generation {generation:?}");
    let app = App::bare(&ctx.ns, "burst-app")
        .without_phi_label()
        .deployment();
    let settled = Instant::now();
    eventually(
        "the last spec (Warn) in decisions and status",
        CACHE,
        || {
            let run = server_dry_run(&app);
            if !run.ok || warnings(&run.stderr).is_empty() {
                return Err(format!("not Warn yet: ok={} {}", run.ok, run.stderr));
            }
            let p = kubectl(&["get", "phipolicy", &policy, "-o", "json"], None);
            let v: serde_json::Value =
                serde_json::from_str(&p.stdout).map_err(|e| e.to_string())?;
            if v["status"]["observedGeneration"].as_i64() != generation {
                return Err(format!(
                    "status at {} of {generation:?}",
                    v["status"]["observedGeneration"]
                ));
            }
            Ok(())
        },
    )
    .await;
    println!("settled {:?} after the last edit", settled.elapsed());
    // And it stays there (five checks, 400 ms apart: a duration, not a condition to poll).
    for _ in 0..5 {
        let run = server_dry_run(&app);
        assert!(
            run.ok && !warnings(&run.stderr).is_empty(),
            "{}",
            run.stderr
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// An unreachable API server at start: not ready, and `/readyz` says why. A slow one (every
/// byte 2 s late): not ready until the caches have synced, then ready.
#[tokio::test]
async fn unreachable_or_slow_api_server_at_start() {
    let dead = kubeconfig_via(crate::support::free_port(), "dead.kubeconfig");
    let p = Standalone::start("phi-guard-dead-apiserver", &dead);
    let body = eventually(
        "/readyz naming the failure",
        Duration::from_secs(20),
        || match p.readyz() {
            Some((503, b)) if b.contains("failing for") => Ok(b),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    println!("unreachable API server: {}", body.trim());
    assert!(body.starts_with("not ready; waiting for: "), "{body}");
    assert!(body.contains("watch/Namespace"), "{body}");
    assert!(
        body.to_lowercase().contains("connect"),
        "the reason names the connection failure: {body}"
    );
    drop(p);

    let slow = Standalone::start("phi-guard-slow-apiserver", &lagged_kubeconfig());
    let started = Instant::now();
    let first = slow.readyz();
    let ready_after = eventually(
        "ready through a slow API server",
        Duration::from_secs(90),
        || match slow.readyz() {
            Some((200, _)) => Ok(started.elapsed()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let log = std::fs::read_to_string(&slow.log).unwrap_or_default();
    assert!(
        matches!(&first, Some((503, b)) if b.starts_with("not ready")) || first.is_none(),
        "not ready before the caches sync: {first:?}"
    );
    assert!(log.contains("watch cache synced"), "{log}");
    println!("slow API server (2 s per response): ready after {ready_after:?}");
}
