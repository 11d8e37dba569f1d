//! What the in-cluster tests work with: the environment hack/e2e.sh exports, kubectl and helm,
//! the chart installed with only its image values changed, and waiting.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

pub use crate::support::{unique, Run};

/// The repository root (for charts/).
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The release and its namespace, as the chart's README installs it.
pub const RELEASE: &str = "phi-guard";
pub const NAMESPACE: &str = "phi-guard";

/// What hack/e2e.sh (E2E_NODE=1) exports.
#[derive(Debug)]
pub struct Env {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub helm: PathBuf,
    pub node_name: String,
    pub image_repository: String,
    pub image_tag: String,
    /// The image's config digest: what the pods' status reports as imageID.
    pub image_id: String,
    pub curl_image: String,
    pub kubectl_image: String,
    /// hack/images.sh's output directory (the OCI archives).
    pub images_dir: PathBuf,
}

impl Env {
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
        let env = Env {
            kubeconfig: PathBuf::from(var("KUBECONFIG")),
            kubectl: PathBuf::from(var("KUBECTL")),
            helm: PathBuf::from(var("HELM")),
            node_name: var("NODE_NAME"),
            image_repository: var("PHI_GUARD_IMAGE_REPOSITORY"),
            image_tag: var("PHI_GUARD_IMAGE_TAG"),
            image_id: var("PHI_GUARD_IMAGE_ID"),
            curl_image: var("CURL_IMAGE"),
            kubectl_image: var("KUBECTL_IMAGE"),
            images_dir: PathBuf::from(var("IMAGES_DIR")),
        };
        if !missing.is_empty() {
            return Err(format!(
                "e2e node environment incomplete: {} not set. These tests need a control plane \
                 with a node and phi-guard's image loaded into it; run them with `make e2e-node` \
                 (hack/e2e.sh with E2E_NODE=1), which builds and starts both and exports these \
                 variables.",
                missing.join(", ")
            ));
        }
        for p in [&env.kubeconfig, &env.kubectl, &env.helm] {
            if !p.is_file() {
                return Err(format!("{} does not exist", p.display()));
            }
        }
        Ok(env)
    }
}

/// `program` with the environment's KUBECONFIG.
fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(program);
    cmd.env("KUBECONFIG", &Env::get().kubeconfig).args(args);
    crate::support::run_cmd(&mut cmd, stdin)
}

/// The real kubectl (30 s request timeout).
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Run {
    let mut all = vec!["--request-timeout=30s"];
    all.extend(args);
    run(&Env::get().kubectl, &all, stdin)
}

/// kubectl that must succeed.
pub fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> String {
    let r = kubectl(args, stdin);
    assert!(
        r.ok,
        "kubectl {} failed:\n{}{}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    r.stdout
}

/// kubectl ... -o json, parsed.
pub fn kubectl_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(&all, None)).expect("kubectl JSON")
}

/// The real helm.
pub fn helm(args: &[&str]) -> Run {
    run(&Env::get().helm, args, None)
}

/// `helm upgrade --install` of charts/phi-guard with the chart's defaults except the image
/// values (this commit's image, loaded into the node: pullPolicy Never) and `extra` `--set`s;
/// fails the test, with diagnostics, when helm does.
pub fn install(extra: &[&str]) {
    let env = Env::get();
    let chart = format!("{ROOT}/charts/phi-guard");
    let repo = format!("image.repository={}", env.image_repository);
    let tag = format!("image.tag={}", env.image_tag);
    let test_image = format!("helmTest.image={}", env.curl_image);
    let hook_image = format!("uninstall.removeWebhookFirst.image={}", env.kubectl_image);
    let mut args = vec![
        "upgrade",
        "--install",
        RELEASE,
        &chart,
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        &repo,
        "--set",
        &tag,
        "--set",
        "image.pullPolicy=Never",
        "--set",
        &test_image,
        "--set",
        &hook_image,
    ];
    for s in extra {
        args.extend(["--set", s]);
    }
    let r = helm(&args);
    assert!(
        r.ok,
        "helm install of the chart (--set {extra:?}) failed:\n{}{}\n{}",
        r.stdout,
        r.stderr,
        diagnostics()
    );
}

/// `helm uninstall --wait` of the release; fails the test, with diagnostics, when helm does.
pub fn uninstall() {
    let r = helm(&[
        "uninstall",
        RELEASE,
        "-n",
        NAMESPACE,
        "--wait",
        "--timeout",
        "120s",
    ]);
    assert!(
        r.ok,
        "helm uninstall failed:\n{}{}\n{}",
        r.stdout,
        r.stderr,
        diagnostics()
    );
}

/// Diagnostics for an assertion message: phi-guard's pods, Service and endpoints, events, and
/// the pods' last log lines.
pub fn diagnostics() -> String {
    let pods = kubectl(
        &[
            "get",
            "pods,services,endpointslices",
            "-n",
            NAMESPACE,
            "-o",
            "wide",
        ],
        None,
    );
    let events = kubectl(
        &["get", "events", "-n", NAMESPACE, "--sort-by=.lastTimestamp"],
        None,
    );
    let logs = kubectl(
        &[
            "logs",
            "-n",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/component=webhook",
            "--tail=15",
            "--prefix",
        ],
        None,
    );
    format!(
        "--- pods, services, endpoints:\n{}{}\n--- events:\n{}\n--- logs:\n{}{}",
        pods.stdout,
        pods.stderr,
        tail(&events.stdout, 25),
        logs.stdout,
        logs.stderr
    )
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Retry `f` every 500 ms until Ok or `timeout`; the last error and [`diagnostics`] go into the
/// panic.
pub fn eventually<T>(what: &str, timeout: Duration, f: impl FnMut() -> Result<T, String>) -> T {
    crate::support::try_wait_for(what, timeout, Duration::from_millis(500), f)
        .unwrap_or_else(|e| panic!("{e}\n{}", diagnostics()))
}

/// A test namespace (PHI-labeled when `phi`), deleted when dropped.
pub struct Namespace(pub String);

impl Namespace {
    pub fn new(prefix: &str, phi: bool) -> Namespace {
        let name = unique(prefix);
        let labels: Vec<(&str, &str)> = if phi {
            vec![crate::fixtures::PHI]
        } else {
            vec![]
        };
        kubectl_ok(
            &["apply", "-f", "-"],
            Some(&crate::fixtures::namespace(&name, &labels)),
        );
        Namespace(name)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

/// One test at a time: they share the release.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
