//! Decisions that do not depend on watch timing. phi-guard reaches the API server through a
//! proxy that delivers every byte from the API server 2 s late (as a loaded API server does):
//! its watch caches lag. A decision that would deny, or that rests on a namespace the cache does
//! not have yet, is confirmed with consistent reads; users (kubectl, Helm, Argo CD) apply
//! everything at once and never retry.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixtures::{self, App, PHI};
use crate::harness::*;

/// How late the proxy delivers the API server's bytes.
const LAG: Duration = Duration::from_secs(2);
/// Tries per scenario: every one must come out right.
const TRIES: usize = 20;

/// Start a TCP proxy to `upstream` on its own runtime thread (the tests block their own
/// runtime on kubectl); bytes towards the API server pass at once, bytes from it `delay` late.
fn start_delay_proxy(upstream: SocketAddr, delay: Duration) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = listener.local_addr().expect("proxy addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                        let _ = sw.shutdown().await;
                    });
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = sr.read(&mut buf).await.unwrap_or(0);
                            let chunk = buf[..n].to_vec();
                            if tx.send((Instant::now() + delay, chunk)).is_err() || n == 0 {
                                return;
                            }
                        }
                    });
                    while let Some((at, chunk)) = rx.recv().await {
                        tokio::time::sleep_until(at.into()).await;
                        if chunk.is_empty() || cw.write_all(&chunk).await.is_err() {
                            let _ = cw.shutdown().await;
                            return;
                        }
                    }
                });
            }
        });
    });
    port
}

/// The API server's address, from the test kubeconfig.
pub(crate) fn apiserver_addr() -> SocketAddr {
    let text = std::fs::read_to_string(&Env::get().kubeconfig).expect("read kubeconfig");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("server: https://"))
        .expect("kubeconfig has a server");
    let url = line.trim().trim_start_matches("server: ");
    let hostport = url.trim_start_matches("https://").trim_end_matches('/');
    hostport.parse().expect("server is https://IP:PORT")
}

/// A copy of the test kubeconfig (as `file` in the state dir) whose server is 127.0.0.1:`port`.
pub(crate) fn kubeconfig_via(port: u16, file: &str) -> PathBuf {
    let env = Env::get();
    let text = std::fs::read_to_string(&env.kubeconfig).expect("read kubeconfig");
    let via = text.replace(
        &format!("https://{}", apiserver_addr()),
        &format!("https://127.0.0.1:{port}"),
    );
    assert_ne!(via, text, "kubeconfig server not replaced");
    let path = env.state_dir.join(file);
    std::fs::write(&path, via).expect("write kubeconfig");
    path
}

/// A copy of the test kubeconfig whose server is the delaying proxy.
pub(crate) fn lagged_kubeconfig() -> PathBuf {
    kubeconfig_via(
        start_delay_proxy(apiserver_addr(), LAG),
        "lagged.kubeconfig",
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write manifest");
}

#[tokio::test]
async fn decisions_hold_when_the_watch_caches_lag() {
    let ctx = Ctx::exclusive("lag", &[PHI]).await;
    // Created while phi-guard still has fresh caches: a class that encrypts.
    let class = unique("e2e-lag-enc");
    kubectl_ok(&["apply"], &fixtures::encrypted_storage_class(&class));
    ctx.cleanup("storageclass", &class);

    let kubeconfig = lagged_kubeconfig();
    let lagged = ctx.run_phi_guard_with(&kubeconfig);

    // 1. A new PHI namespace and a non-compliant Deployment in one apply: the namespace is not
    //    in phi-guard's cache when the Deployment arrives; it must still be judged PHI.
    let mut admitted = Vec::new();
    for i in 0..TRIES {
        let ns = unique(&format!("e2e-lagns{i}"));
        ctx.cleanup("namespace", &ns);
        let yaml = format!(
            "{}\n---\n{}",
            fixtures::namespace(&ns, &[PHI, ("e2e.phiguard.io/test", "lag")]),
            App::bare(&ns, "records-api").deployment()
        );
        let run = kubectl(&["apply", "-f", "-"], Some(&yaml));
        if run.ok || !run.stderr.contains("phi-guard") {
            admitted.push(format!("try {i}: ok={} {}", run.ok, run.stderr));
        }
    }
    assert!(
        admitted.is_empty(),
        "a non-compliant Deployment in a just-created PHI namespace must be denied {TRIES}/{TRIES} \
         times; not denied:\n{}\nphi-guard log:\n{}",
        admitted.join("\n"),
        ctx.phi_guard_log()
    );

    // 2. A compliant app applied as a directory into an existing PHI namespace: its
    //    NetworkPolicies and claim are not in the cache when the Deployment arrives; admitted
    //    the first time, no retry.
    let mut denied = Vec::new();
    for i in 0..TRIES {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = format!("app{i}");
        let claim = format!("data{i}");
        write(
            dir.path(),
            "01-networkpolicies.yaml",
            &format!(
                "{}\n---\n{}",
                fixtures::default_deny(&ctx.ns, &format!("deny-{i}")),
                fixtures::isolate_app(&ctx.ns, &format!("isolate-{i}"), &app)
            ),
        );
        write(
            dir.path(),
            "02-claim.yaml",
            &fixtures::pvc(&ctx.ns, &claim, &class, true),
        );
        write(
            dir.path(),
            "03-deployment.yaml",
            &App::compliant(&ctx.ns, &app, Some(&claim)).deployment(),
        );
        write(
            dir.path(),
            "04-service.yaml",
            &serde_json::json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": app, "namespace": ctx.ns},
                "spec": {
                    "selector": {"app": app},
                    "ports": [{"name": "https", "port": 443, "targetPort": 8443, "appProtocol": "https"}],
                },
            })
            .to_string(),
        );
        let dir_arg = dir.path().to_string_lossy().into_owned();
        let run = kubectl(&["apply", "-f", &dir_arg], None);
        if !run.ok {
            denied.push(format!("try {i}: {}", run.stderr));
        }
    }
    assert!(
        denied.is_empty(),
        "a compliant app applied at once must be admitted the first time {TRIES}/{TRIES}; \
         refused:\n{}\nphi-guard log:\n{}",
        denied.join("\n"),
        ctx.phi_guard_log()
    );
    lagged.end();
}
