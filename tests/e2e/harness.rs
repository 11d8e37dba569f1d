//! The shared test environment: one `phi-guard serve` process per test binary, started on first
//! use against the control plane that hack/e2e.sh started, and phi-guard installed into it
//! (hack/local-install.sh: the Helm chart, its webhook pointing at that process).
//!
//! Every test takes a [`Ctx`]: a read lock on the shared server (the fail-closed test takes the
//! write lock, stops phi-guard and restarts it), a kube client and its own namespace.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::support::{check, free_port, try_wait_for};
pub use crate::support::{unique, Run};

/// The repository root (for hack/ and crds/).
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What the environment must provide (hack/e2e.sh exports all of it).
#[derive(Debug, Clone)]
pub struct Env {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub helm: PathBuf,
    pub webhook_cert: PathBuf,
    pub webhook_key: PathBuf,
    pub webhook_ca_bundle: String,
    pub phi_guard_bin: PathBuf,
    /// Where phi-guard's log and pid file go (default: the control plane's directory).
    pub state_dir: PathBuf,
}

impl Env {
    /// Read the environment, or fail the test with what is missing and how to run the suite.
    pub fn get() -> &'static Env {
        static ENV: OnceLock<Result<Env, String>> = OnceLock::new();
        match ENV.get_or_init(Env::read) {
            Ok(env) => env,
            Err(e) => panic!("{e}"),
        }
    }

    fn read() -> Result<Env, String> {
        let mut missing = Vec::new();
        let mut var = |name: &str| match std::env::var(name) {
            Ok(v) if !v.is_empty() => v,
            _ => {
                missing.push(name.to_string());
                String::new()
            }
        };
        let kubeconfig = PathBuf::from(var("KUBECONFIG"));
        let kubectl = PathBuf::from(var("KUBECTL"));
        let helm = PathBuf::from(var("HELM"));
        let webhook_cert = PathBuf::from(var("WEBHOOK_CERT"));
        let webhook_key = PathBuf::from(var("WEBHOOK_KEY"));
        let webhook_ca_bundle = var("WEBHOOK_CA_BUNDLE");
        let phi_guard_bin = PathBuf::from(var("PHI_GUARD_BIN"));
        if !missing.is_empty() {
            return Err(format!(
                "e2e environment incomplete: {} not set. The e2e tests need a running control \
                 plane and a phi-guard binary; run them with `make e2e` (hack/e2e.sh), which \
                 starts both and exports these variables.",
                missing.join(", ")
            ));
        }
        let state_dir = match std::env::var("E2E_STATE_DIR") {
            Ok(d) if !d.is_empty() => PathBuf::from(d),
            _ => kubeconfig
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir),
        };
        for (what, p) in [
            ("KUBECONFIG", &kubeconfig),
            ("KUBECTL", &kubectl),
            ("HELM", &helm),
            ("WEBHOOK_CERT", &webhook_cert),
            ("WEBHOOK_KEY", &webhook_key),
            ("PHI_GUARD_BIN", &phi_guard_bin),
        ] {
            if !p.is_file() {
                return Err(format!("{what}={} does not exist", p.display()));
            }
        }
        Ok(Env {
            kubeconfig,
            kubectl,
            helm,
            webhook_cert,
            webhook_key,
            webhook_ca_bundle,
            phi_guard_bin,
            state_dir,
        })
    }
}

// ---- kubectl ------------------------------------------------------------------------------

/// Run the real kubectl (the environment's KUBECONFIG, 30 s request timeout) with `stdin` as
/// its input.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Run {
    let env = Env::get();
    let mut cmd = Command::new(&env.kubectl);
    cmd.env("KUBECONFIG", &env.kubeconfig)
        .arg("--request-timeout=30s")
        .args(args);
    crate::support::run_cmd(&mut cmd, stdin)
}

/// Run the real helm (the environment's KUBECONFIG).
pub fn helm(args: &[&str]) -> Run {
    let env = Env::get();
    let mut cmd = Command::new(&env.helm);
    cmd.env("KUBECONFIG", &env.kubeconfig).args(args);
    crate::support::run_cmd(&mut cmd, None)
}

/// `kubectl <args> -f -` with `yaml`; panics unless it succeeds.
pub fn kubectl_ok(args: &[&str], yaml: &str) -> Run {
    let mut all = args.to_vec();
    all.extend(["-f", "-"]);
    let run = kubectl(&all, Some(yaml));
    assert!(
        run.ok,
        "kubectl {} failed:\n{}\n--- input:\n{yaml}",
        all.join(" "),
        run.stderr
    );
    run
}

/// Lines kubectl printed as warnings (`Warning: ...`), which is how the API server relays an
/// admission webhook's `warnings`.
pub fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("Warning: "))
        .collect()
}

/// Apply `yaml` with kubectl (extra args e.g. `--dry-run=server`); assert that it is admitted.
/// Returns kubectl's stderr (warnings).
pub fn accepts_with(extra: &[&str], yaml: &str) -> String {
    let mut args = vec!["apply"];
    args.extend(extra);
    args.extend(["-f", "-"]);
    let run = kubectl(&args, Some(yaml));
    assert!(
        run.ok,
        "expected `kubectl {}` to be admitted, but it failed:\n{}\n--- input:\n{yaml}",
        args.join(" "),
        run.stderr
    );
    run.stderr
}

/// [`accepts_with`] without extra arguments.
pub fn accepts(yaml: &str) -> String {
    accepts_with(&[], yaml)
}

/// Apply `yaml` with kubectl; assert that phi-guard's webhook denied it. Returns the error.
pub fn rejects_with(extra: &[&str], yaml: &str) -> String {
    let mut args = vec!["apply"];
    args.extend(extra);
    args.extend(["-f", "-"]);
    let run = kubectl(&args, Some(yaml));
    assert!(
        !run.ok,
        "expected `kubectl {}` to be rejected, but it was admitted:\n{}{}\n--- input:\n{yaml}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    assert_denied_by_phi_guard(&run.stderr);
    run.stderr
}

/// [`rejects_with`] without extra arguments.
pub fn rejects(yaml: &str) -> String {
    rejects_with(&[], yaml)
}

/// The error is an admission denial from phi-guard (not a schema error, not a webhook outage).
pub fn assert_denied_by_phi_guard(stderr: &str) {
    assert!(
        stderr.contains("admission webhook") && stderr.contains("denied the request"),
        "expected a denial by phi-guard's admission webhook, got:\n{stderr}"
    );
    assert!(
        stderr.contains("phi-guard"),
        "the denial does not say it comes from phi-guard:\n{stderr}"
    );
}

/// Retry `f` every 250 ms until it returns Ok or `timeout` passes; the last error goes into the
/// panic. (Many tests call it: a thin wrapper over the shared async poll.)
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    crate::support::wait_for_async(what, timeout, Duration::from_millis(250), || {
        std::future::ready(f())
    })
    .await
}

// ---- the phi-guard process ------------------------------------------------------------------

/// The shared phi-guard's name in the audit Lease.
pub const HOST_IDENTITY: &str = "e2e-host";

/// The shared server: ports stay fixed across restarts (the webhook configuration names them).
struct Server {
    listen_port: u16,
    admin_port: u16,
    child: Option<Child>,
    /// A kubeconfig other than the environment's (e.g. through a delaying proxy).
    kubeconfig: Option<PathBuf>,
    /// Flags added for one exclusive test (e.g. a lower report split threshold).
    extra_args: Vec<String>,
}

static SERVER: OnceLock<Mutex<Server>> = OnceLock::new();
/// Readers: ordinary tests. Writer: a test that stops phi-guard.
static LOCK: RwLock<()> = RwLock::const_new(());

impl Server {
    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/validate", self.listen_port)
    }

    fn log_path() -> PathBuf {
        Env::get().state_dir.join("phi-guard.log")
    }

    fn start(&mut self) -> Result<(), String> {
        let env = Env::get();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Self::log_path())
            .map_err(|e| format!("open phi-guard.log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("dup log: {e}"))?;
        let mut child = Command::new(&env.phi_guard_bin)
            .arg("serve")
            .arg(format!("--listen=127.0.0.1:{}", self.listen_port))
            .arg(format!("--admin-listen=127.0.0.1:{}", self.admin_port))
            .arg("--tls-cert-file")
            .arg(&env.webhook_cert)
            .arg("--tls-key-file")
            .arg(&env.webhook_key)
            // The release hack/local-install.sh installs: its webhooks follow the policies.
            .arg("--webhook-scope-config=phi-guard")
            // The background audit, leading as HOST_IDENTITY in the release namespace.
            .arg("--audit")
            .arg(format!("--pod-name={HOST_IDENTITY}"))
            .arg("--namespace=phi-guard")
            // Default-deny NetworkPolicies for the policies that ask (the chart's default).
            .arg("--generate-default-deny")
            .args(&self.extra_args)
            .env(
                "KUBECONFIG",
                self.kubeconfig.as_ref().unwrap_or(&env.kubeconfig),
            )
            .env(
                "RUST_LOG",
                std::env::var("PHI_GUARD_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log2)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", env.phi_guard_bin.display()))?;
        let pid = child.id();
        // Statics are never dropped: a watchdog stops phi-guard when this test binary exits,
        // and hack/e2e.sh kills what the pid file names.
        let _ = std::fs::write(env.state_dir.join("phi-guard.pid"), format!("{pid}\n"));
        let _ = Command::new("sh")
            .args([
                "-c",
                "while kill -0 \"$1\" 2>/dev/null && kill -0 \"$2\" 2>/dev/null; do sleep 1; done; \
                 kill \"$2\" 2>/dev/null",
                "phi-guard-watchdog",
                &std::process::id().to_string(),
                &pid.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        // Ready, or exited (Some: its status; polling stops either way).
        let admin_port = self.admin_port;
        let started = try_wait_for(
            "phi-guard /readyz 200",
            Duration::from_secs(90),
            Duration::from_millis(200),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Ok(Some(status));
                }
                let code = http_get_status(admin_port, "/readyz");
                check(code == Some(200), || format!("/readyz {code:?}")).map(|()| None)
            },
        );
        match started {
            Ok(None) => {}
            Ok(Some(status)) => {
                return Err(format!(
                    "phi-guard serve exited during startup ({status}); log:\n{}",
                    log_tail(&Self::log_path(), 40)
                ))
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{e}; log:\n{}", log_tail(&Self::log_path(), 40)));
            }
        }
        self.child = Some(child);
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM first (graceful shutdown), SIGKILL if it lingers.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let exited = try_wait_for(
                "phi-guard exits on SIGTERM",
                Duration::from_secs(30),
                Duration::from_millis(100),
                || exited(&mut child),
            );
            if exited.is_err() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Ok once `child` has exited (for polling).
fn exited(child: &mut Child) -> Result<(), String> {
    match child.try_wait() {
        Ok(Some(_)) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// Minimal HTTP/1.0 GET on the admin port; the status code if any answer came.
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(code, _)| code)
}

/// GET `path` on 127.0.0.1:`port` (plain HTTP): status and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((code, body))
}

/// The last `n` lines of a file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn run_install() {
    run_install_with(&[]);
}

fn run_install_with(vars: &[(&str, &str)]) {
    let env = Env::get();
    let server = SERVER.get().expect("server").lock().expect("server lock");
    let out = Command::new(Path::new(ROOT).join("hack/local-install.sh"))
        .arg("install")
        .env("KUBECONFIG", &env.kubeconfig)
        .env("KUBECTL", &env.kubectl)
        .env("HELM", &env.helm)
        .env("WEBHOOK_URL", server.url())
        .env("WEBHOOK_CA_BUNDLE", &env.webhook_ca_bundle)
        .envs(vars.iter().copied())
        .output()
        .expect("run hack/local-install.sh");
    assert!(
        out.status.success(),
        "hack/local-install.sh install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start phi-guard and install it, once per test binary.
fn setup() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        std::panic::catch_unwind(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            Env::get();
            SERVER.get_or_init(|| {
                Mutex::new(Server {
                    listen_port: free_port(),
                    admin_port: free_port(),
                    child: None,
                    kubeconfig: None,
                    extra_args: Vec::new(),
                })
            });
            // CRD first: phi-guard's PhiPolicy cache needs it to become ready.
            run_install();
            SERVER
                .get()
                .expect("server")
                .lock()
                .expect("server lock")
                .start()
                .unwrap_or_else(|e| panic!("{e}"));
            // A PHI namespace in which a probe shows that the API server reaches phi-guard.
            let probe = kubectl(
                &["apply", "-f", "-"],
                Some(&crate::fixtures::namespace(
                    PROBE_NS,
                    &[(crate::fixtures::PHI_KEY, crate::fixtures::PHI_VALUE)],
                )),
            );
            assert!(probe.ok, "create namespace {PROBE_NS}: {}", probe.stderr);
            wait_webhook_effective().unwrap_or_else(|e| panic!("{e}"));
        })
        .map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "setup panicked".into())
        })
    });
    if let Err(e) = r {
        panic!("e2e setup failed: {e}");
    }
}

const PROBE_NS: &str = "e2e-probe";

/// Poll until a server-side dry run of a bare PHI pod without safeguards is denied by phi-guard:
/// the webhook configuration is active and phi-guard answers.
fn wait_webhook_effective() -> Result<(), String> {
    let pod = crate::fixtures::bare_pod(PROBE_NS, "probe", &[], false);
    try_wait_for(
        "the webhook effective (a non-compliant PHI pod denied, dry run)",
        Duration::from_secs(60),
        Duration::from_millis(300),
        || {
            let run = kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&pod));
            let denied = !run.ok
                && run.stderr.contains("denied the request")
                && run.stderr.contains("phi-guard");
            crate::support::check(denied, || {
                format!("ok={} {}{}", run.ok, run.stdout, run.stderr)
            })
        },
    )
    .map_err(|e| format!("{e}\nphi-guard log:\n{}", log_tail(&Server::log_path(), 30)))
}

// ---- per-test context ---------------------------------------------------------------------

/// What a test works with. Dropping it deletes the test's namespace (and cluster-scoped objects
/// it registered).
pub struct Ctx {
    pub client: kube::Client,
    pub ns: String,
    cleanup: Mutex<Vec<(String, String)>>,
    _read: Option<RwLockReadGuard<'static, ()>>,
    _write: Option<RwLockWriteGuard<'static, ()>>,
}

impl Ctx {
    /// A test namespace `e2e-<name>-<suffix>` with `labels`, phi-guard running.
    pub async fn new(name: &str, labels: &[(&str, &str)]) -> Ctx {
        let guard = LOCK.read().await;
        Ctx::build(name, labels, Some(guard), None).await
    }

    /// Like [`Ctx::new`], but exclusive: no other test runs meanwhile (for stopping phi-guard).
    pub async fn exclusive(name: &str, labels: &[(&str, &str)]) -> Ctx {
        let guard = LOCK.write().await;
        Ctx::build(name, labels, None, Some(guard)).await
    }

    async fn build(
        name: &str,
        labels: &[(&str, &str)],
        read: Option<RwLockReadGuard<'static, ()>>,
        write: Option<RwLockWriteGuard<'static, ()>>,
    ) -> Ctx {
        // Blocking is fine here: each test has its own runtime and nothing else runs on it.
        setup();
        let client = kube::Client::try_default()
            .await
            .expect("kube client from KUBECONFIG");
        let ns = unique(&format!("e2e-{name}"));
        let mut all: Vec<(&str, &str)> = labels.to_vec();
        all.push(("e2e.phiguard.io/test", name));
        kubectl_ok(&["apply"], &crate::fixtures::namespace(&ns, &all));
        Ctx {
            client,
            ns,
            cleanup: Mutex::new(Vec::new()),
            _read: read,
            _write: write,
        }
    }

    /// Delete this cluster-scoped object (`kind`, `name`) when the test ends.
    pub fn cleanup(&self, kind: &str, name: &str) {
        self.cleanup
            .lock()
            .expect("cleanup lock")
            .push((kind.to_string(), name.to_string()));
    }

    /// Stop the shared phi-guard (only with [`Ctx::exclusive`]) until the returned [`Outage`]
    /// ends; it restarts phi-guard also when the test fails.
    pub fn stop_phi_guard(&self) -> Outage<'_> {
        assert!(self._write.is_some(), "stop_phi_guard needs Ctx::exclusive");
        SERVER.get().expect("server").lock().expect("lock").stop();
        Outage {
            _ctx: self,
            ended: false,
        }
    }

    /// SIGKILL the shared phi-guard (no graceful shutdown, no Lease release) until the returned
    /// [`Outage`] ends (only with [`Ctx::exclusive`]).
    pub fn kill_phi_guard(&self) -> Outage<'_> {
        assert!(self._write.is_some(), "kill_phi_guard needs Ctx::exclusive");
        let mut server = SERVER.get().expect("server").lock().expect("lock");
        if let Some(mut child) = server.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Outage {
            _ctx: self,
            ended: false,
        }
    }

    /// Restart the shared phi-guard so that it reaches the API server through `kubeconfig`
    /// (only with [`Ctx::exclusive`]) until the returned [`Outage`] ends; then it runs as before.
    pub fn run_phi_guard_with(&self, kubeconfig: &Path) -> Outage<'_> {
        assert!(
            self._write.is_some(),
            "run_phi_guard_with needs Ctx::exclusive"
        );
        let mut server = SERVER.get().expect("server").lock().expect("lock");
        server.stop();
        server.kubeconfig = Some(kubeconfig.to_path_buf());
        server.start().unwrap_or_else(|e| panic!("{e}"));
        drop(server);
        wait_webhook_effective().unwrap_or_else(|e| panic!("{e}"));
        Outage {
            _ctx: self,
            ended: false,
        }
    }

    /// Restart the shared phi-guard with `args` added to its flags (only with [`Ctx::exclusive`])
    /// until the returned [`Outage`] ends; then it runs as before.
    pub fn run_phi_guard_with_args(&self, args: &[&str]) -> Outage<'_> {
        assert!(
            self._write.is_some(),
            "run_phi_guard_with_args needs Ctx::exclusive"
        );
        let mut server = SERVER.get().expect("server").lock().expect("lock");
        server.stop();
        server.extra_args = args.iter().map(|a| a.to_string()).collect();
        server.start().unwrap_or_else(|e| panic!("{e}"));
        drop(server);
        wait_webhook_effective().unwrap_or_else(|e| panic!("{e}"));
        Outage {
            _ctx: self,
            ended: false,
        }
    }

    /// Install phi-guard again (hack/local-install.sh) and wait until the webhook answers (only
    /// with [`Ctx::exclusive`]).
    pub fn reinstall(&self) {
        self.reinstall_with(&[]);
    }

    /// [`Ctx::reinstall`] with environment for hack/local-install.sh and Helm (e.g.
    /// `HELM_DRIVER`).
    pub fn reinstall_with(&self, env: &[(&str, &str)]) {
        assert!(self._write.is_some(), "reinstall needs Ctx::exclusive");
        run_install_with(env);
        wait_webhook_effective().unwrap_or_else(|e| panic!("{e}"));
    }

    /// The pid of the running phi-guard (to show it was not restarted).
    pub fn phi_guard_pid(&self) -> Option<u32> {
        let server = SERVER.get().expect("server").lock().expect("lock");
        server.child.as_ref().map(Child::id)
    }

    /// Is phi-guard's admin port answering /healthz?
    pub fn phi_guard_alive(&self) -> bool {
        let port = SERVER
            .get()
            .expect("server")
            .lock()
            .expect("lock")
            .admin_port;
        http_get_status(port, "/healthz") == Some(200)
    }

    /// The shared phi-guard's admin port (/readyz, /metrics).
    pub fn phi_guard_admin_port(&self) -> u16 {
        SERVER
            .get()
            .expect("server")
            .lock()
            .expect("lock")
            .admin_port
    }

    /// phi-guard's log so far (last lines), for assertion messages.
    pub fn phi_guard_log(&self) -> String {
        log_tail(&Server::log_path(), 30)
    }
}

/// phi-guard is down while this lives.
pub struct Outage<'a> {
    _ctx: &'a Ctx,
    ended: bool,
}

impl Outage<'_> {
    /// Start phi-guard again and wait until the API server reaches it.
    pub fn end(mut self) {
        self.ended = true;
        restart().unwrap_or_else(|e| panic!("restarting phi-guard: {e}"));
    }
}

impl Drop for Outage<'_> {
    fn drop(&mut self) {
        if !self.ended {
            // The test failed midway: bring phi-guard back for the tests after it. No panic
            // here (we may be unwinding already).
            if let Err(e) = restart() {
                eprintln!("restarting phi-guard after a failed test: {e}");
            }
        }
    }
}

fn restart() -> Result<(), String> {
    {
        let mut server = SERVER
            .get()
            .ok_or("no server")?
            .lock()
            .map_err(|_| "server lock poisoned".to_string())?;
        server.stop();
        server.kubeconfig = None;
        server.extra_args.clear();
        server.start()?;
    }
    wait_webhook_effective()
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if std::env::var("E2E_KEEP_NAMESPACES").is_ok_and(|v| v == "1") {
            return;
        }
        let _ = kubectl(&["delete", "namespace", &self.ns, "--wait=false"], None);
        let items = std::mem::take(&mut *self.cleanup.lock().unwrap_or_else(|e| e.into_inner()));
        for (kind, name) in items {
            let _ = kubectl(
                &["delete", &kind, &name, "--ignore-not-found", "--wait=false"],
                None,
            );
        }
    }
}

/// Cache-dependent admission: objects created just before (a claim, a NetworkPolicy) reach
/// phi-guard's watch caches within moments, so retry a denial for up to `timeout`.
pub async fn accepts_eventually(yaml: &str, timeout: Duration) -> String {
    let run = eventually("admission", timeout, || {
        let run = kubectl(&["apply", "-f", "-"], Some(yaml));
        if run.ok {
            Ok(run)
        } else {
            Err(run.stderr)
        }
    })
    .await;
    run.stderr
}

/// Retry until phi-guard denies (the caches caught up with a change that makes `yaml` violate);
/// `extra` e.g. `--dry-run=server`. Returns the denial.
pub async fn rejects_eventually(extra: &[&str], yaml: &str, timeout: Duration) -> String {
    let mut args = vec!["apply"];
    args.extend(extra);
    args.extend(["-f", "-"]);
    let stderr = eventually("denial", timeout, || {
        let run = kubectl(&args, Some(yaml));
        if !run.ok && run.stderr.contains("denied the request") {
            Ok(run.stderr)
        } else {
            Err(format!("ok={} {}{}", run.ok, run.stdout, run.stderr))
        }
    })
    .await;
    assert_denied_by_phi_guard(&stderr);
    stderr
}

/// Seconds to wait for watch caches to catch up with a change made through the API.
pub const CACHE: Duration = Duration::from_secs(15);

/// A second phi-guard process (no webhook traffic reaches it): a standby audit replica.
pub struct SecondReplica {
    child: Child,
    admin_port: u16,
}

impl SecondReplica {
    /// Start it as `identity` and wait until it is ready.
    pub fn start(identity: &str) -> SecondReplica {
        let env = Env::get();
        let admin_port = free_port();
        let log = std::fs::File::create(env.state_dir.join(format!("{identity}.log")))
            .expect("second replica log");
        let child = Command::new(&env.phi_guard_bin)
            .arg("serve")
            .arg(format!("--listen=127.0.0.1:{}", free_port()))
            .arg(format!("--admin-listen=127.0.0.1:{admin_port}"))
            .arg("--tls-cert-file")
            .arg(&env.webhook_cert)
            .arg("--tls-key-file")
            .arg(&env.webhook_key)
            .arg("--audit")
            .arg(format!("--pod-name={identity}"))
            .arg("--namespace=phi-guard")
            .env("KUBECONFIG", &env.kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the second replica");
        let r = SecondReplica { child, admin_port };
        crate::support::wait_for(
            "second replica ready",
            Duration::from_secs(60),
            Duration::from_millis(200),
            || {
                let status = http_get_status(admin_port, "/readyz");
                crate::support::check(status == Some(200), || format!("/readyz: {status:?}"))
            },
        );
        r
    }

    /// A metric's value (summed over its series), if exported.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin_port)).ok()?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let values = crate::support::metric_series(&text, name, &[]);
        (!values.is_empty()).then(|| values.iter().sum())
    }
}

impl Drop for SecondReplica {
    fn drop(&mut self) {
        // SIGTERM first: a replica that leads releases the audit Lease on shutdown; killed, it
        // would hold it for 15 s and the next tests' audit would wait that long for it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let exited = try_wait_for(
            "the second replica exits on SIGTERM",
            Duration::from_secs(20),
            Duration::from_millis(100),
            || exited(&mut self.child),
        );
        if exited.is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
