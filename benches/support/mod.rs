//! What both benches need: free ports, child processes that die with the bench, and the
//! kernel's accounting of a process (CPU time, RSS) from /proc. Each bench uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

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
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.id())).unwrap_or_default();
        // The command name may contain spaces: fields are counted after its closing ')', where
        // field 3 (state) is index 0, so utime (14) and stime (15) are indices 11 and 12.
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }

    /// (RSS now, peak RSS) in MB.
    pub fn rss(&self) -> (f64, f64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// An environment variable hack/bench.sh or hack/soak.sh sets.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (run via hack/bench.sh)"))
}

pub fn kubectl_ok(kubectl: &Path, args: &[&str], stdin: Option<&str>) {
    kubectl_out(kubectl, args, stdin);
}

pub fn kubectl_out(kubectl: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(kubectl);
    cmd.arg("--request-timeout=30s")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kubectl");
    if let Some(input) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write kubectl stdin");
    }
    let out = child.wait_with_output().expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
            .stderr(Stdio::null())
            .spawn()
            .map(Proc)
            .expect("spawn phi-guard");
        let pg = PhiGuard { child, port, admin };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pg
            .get("/readyz")
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            assert!(Instant::now() < deadline, "phi-guard not ready after 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
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
