//! What the benches need beyond the test support they share with the test tiers
//! (tests/support/mod.rs, re-exported here): child processes that die with the bench, phi-guard
//! on the host, the demo's state. Each bench uses a part of it.
#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "../../tests/support/mod.rs"]
mod shared;
pub use shared::*;

/// A server process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// CPU seconds (user + system) the process has used.
    pub fn cpu_secs(&self) -> f64 {
        shared::cpu_secs(self.id())
    }

    /// (RSS now, peak RSS) in MB.
    pub fn rss(&self) -> (f64, f64) {
        let mb = |kib: u64| kib as f64 / 1024.0;
        (mb(rss_kib(self.id())), mb(peak_rss_kib(self.id())))
    }
}

/// An environment variable hack/bench.sh or hack/soak.sh sets.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (run via hack/bench.sh)"))
}

pub fn kubectl_ok(kubectl: &Path, args: &[&str], stdin: Option<&str>) {
    kubectl_out(kubectl, args, stdin);
}

/// kubectl (the environment's KUBECONFIG, 30 s request timeout) that must succeed: its stdout.
pub fn kubectl_out(kubectl: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let run = run_cmd(
        Command::new(kubectl)
            .arg("--request-timeout=30s")
            .args(args),
        stdin,
    );
    assert!(run.ok, "kubectl {args:?} failed: {}", run.stderr);
    run.stdout
}

/// phi-guard serving the webhook from the host, watching the control plane.
pub struct PhiGuard {
    pub child: Proc,
    pub port: u16,
    pub admin: u16,
}

impl PhiGuard {
    pub fn start() -> PhiGuard {
        PhiGuard::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> PhiGuard {
        let port = free_port();
        let admin = free_port();
        let child = Command::new(env("PHI_GUARD_BIN"))
            .arg("serve")
            .args(extra)
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--admin-listen=127.0.0.1:{admin}"))
            .arg("--tls-cert-file")
            .arg(env("WEBHOOK_CERT"))
            .arg("--tls-key-file")
            .arg(env("WEBHOOK_KEY"))
            .stdout(Stdio::null())
            .stderr(log_to())
            .spawn()
            .map(Proc)
            .expect("spawn phi-guard");
        let pg = PhiGuard { child, port, admin };
        wait_for(
            "phi-guard ready",
            Duration::from_secs(60),
            Duration::from_millis(100),
            || {
                let ready = pg.get("/readyz");
                check(ready.is_some_and(|r| r.starts_with("HTTP/1.1 200")), || {
                    "/readyz not 200".into()
                })
            },
        );
        pg
    }

    /// GET from the admin port: the raw HTTP response.
    pub fn get(&self, path: &str) -> Option<String> {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.admin)).ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/validate", self.port)
    }

    pub fn cpu_secs(&self) -> f64 {
        self.child.cpu_secs()
    }
}

/// A compliant PHI Pod for the demo's `clinic` namespace (PHI by its namespace label): its
/// encrypted claim `records-data`, a cert-manager CSI certificate, a Fluent Bit sidecar.
pub fn compliant_pod(ns: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "records-api-",
            "namespace": ns,
            "labels": { "app": "records-api" }
        },
        "spec": {
            "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
            "containers": [
                {
                    "name": "api",
                    "image": "registry.example-health.com/clinic/records-api@sha256:99a6d3ef64658dbfe9d50401cbb711450ebffcecac9c3fd780720e7db645e30f",
                    "ports": [{ "name": "https", "containerPort": 8443 }],
                    "volumeMounts": [
                        { "name": "records", "mountPath": "/var/lib/records" },
                        { "name": "tls", "mountPath": "/etc/tls", "readOnly": true },
                        { "name": "app-logs", "mountPath": "/var/log/app" }
                    ]
                },
                {
                    "name": "fluent-bit",
                    "image": "cr.fluentbit.io/fluent/fluent-bit:3.2.2@sha256:6b50cf23cac8bc5104461a26c745bdd732e1c2a16caba311051d0b56b1971a25",
                    "volumeMounts": [{ "name": "app-logs", "mountPath": "/var/log/app", "readOnly": true }]
                }
            ],
            "volumes": [
                { "name": "records", "persistentVolumeClaim": { "claimName": "records-data" } },
                { "name": "tls", "csi": { "driver": "csi.cert-manager.io", "readOnly": true,
                  "volumeAttributes": { "csi.cert-manager.io/issuer-name": "clinic-ca" } } },
                { "name": "app-logs", "emptyDir": { "medium": "Memory", "sizeLimit": "64Mi" } }
            ]
        }
    }))
    .expect("pod")
}

/// The demo's PHI namespace `clinic`, its storage classes, NetworkPolicies and encrypted claim
/// `records-data`: what [`compliant_pod`] needs to be admitted.
pub fn apply_demo_state(root: &Path, kubectl: &Path) {
    for f in [
        "examples/demo/cluster/",
        "examples/demo/fixed/00-network-policies.yaml",
        "examples/demo/fixed/10-records-data.yaml",
    ] {
        kubectl_ok(
            kubectl,
            &["apply", "-f", &root.join(f).to_string_lossy()],
            None,
        );
    }
}

/// Where phi-guard's log goes: the file `BENCH_PHI_GUARD_LOG` names (appended to, e.g. with
/// `RUST_LOG=info,phi_guard::audit=debug` for the audit's per-pass timings), else nowhere.
fn log_to() -> Stdio {
    std::env::var_os("BENCH_PHI_GUARD_LOG")
        .and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        })
        .map_or_else(Stdio::null, Stdio::from)
}
