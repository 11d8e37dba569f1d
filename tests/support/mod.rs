//! Test support shared by every tier (tests/*.rs, tests/e2e, tests/e2e_node, benches): free
//! ports, running a program, reading a process's accounting from /proc, Prometheus text, polling
//! until a condition holds, unique names. Tier-specific helpers (which kubectl, which kubeconfig)
//! are thin wrappers over these; a new general helper goes here, not into a tier.
//!
//! Included as a module by each test crate and bench (`#[path = ...] mod support;`): each
//! compiles it separately and uses a part of it, hence the dead_code allowance.
#![allow(dead_code)]

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// ---- ports and names ----------------------------------------------------------------------------

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// A unique, DNS-safe name: `prefix-<hex>` (time, pid and a per-process counter).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{:x}{:x}",
        (nanos ^ std::process::id()) & 0xfffff,
        n
    )
}

// ---- running programs ---------------------------------------------------------------------------

/// The result of one program run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout then stderr, for messages and for callers that read both.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Run `program` with `args`, `stdin` as its input (none: /dev/null); panics only if it cannot
/// be started.
pub fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    run_cmd(Command::new(program).args(args), stdin)
}

/// [`run`] for a prepared command (environment, extra arguments).
pub fn run_cmd(cmd: &mut Command, stdin: Option<&str>) -> Run {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("write {program}'s stdin: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {program}: {e}"));
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---- /proc --------------------------------------------------------------------------------------

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`); 0 if the process is gone.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory now (VmRSS), KiB; 0 if the process is gone.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Peak resident memory (VmHWM), KiB; 0 if the process is gone.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// CPU seconds (user + system) the process has used; 0 if it is gone.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may contain spaces: fields are counted after its closing ')', where
    // field 3 (state) is index 0, so utime (14) and stime (15) are indices 11 and 12.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

// ---- Prometheus text ----------------------------------------------------------------------------

/// One sample of the Prometheus text format: its name, its labels (`k="v"` as written, in
/// order) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<String>,
    pub value: f64,
}

/// Every sample in `text` (comments and unparsable lines skipped).
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inner) => {
            let (labels, after) = split_labels(inner)?;
            (labels, after)
        }
        None => (Vec::new(), rest),
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"}rest` → the labels as written and what follows the closing brace.
fn split_labels(s: &str) -> Option<(Vec<String>, &str)> {
    let mut labels = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' | '}' if !in_quotes => {
                let label = s[start..i].trim();
                if !label.is_empty() {
                    labels.push(label.to_string());
                }
                start = i + 1;
                if c == '}' {
                    return Some((labels, &s[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// The value of the series `name` exactly: a bare name matches only the sample without labels;
/// a name with its labels (`x{a="b"}`, as the text writes them) matches only that series.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let (bare, labels) = match name.split_once('{') {
        Some((bare, rest)) => (bare, split_labels(rest)?.0),
        None => (name, Vec::new()),
    };
    samples(text)
        .into_iter()
        .find(|s| s.name == bare && s.labels == labels)
        .map(|s| s.value)
}

/// The sum of the samples named `name` whose labels include each of `labels` (`k="v"`); 0 if
/// none. With no labels: the sum over all of the metric's series.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    // An empty f64 sum is -0.0, which prints as "-0": + 0.0 makes it 0.
    metric_series(text, name, labels).iter().sum::<f64>() + 0.0
}

/// The values of the samples [`metric_sum`] adds up (empty: the metric is not exported).
pub fn metric_series(text: &str, name: &str, labels: &[&str]) -> Vec<f64> {
    samples(text)
        .into_iter()
        .filter(|s| s.name == name && labels.iter().all(|l| s.labels.iter().any(|m| m == l)))
        .map(|s| s.value)
        .collect()
}

// ---- polling ------------------------------------------------------------------------------------

/// Call `f` every `every` until it returns Ok or `timeout` has passed (it is called at least
/// once, and once more at the deadline's side); Err carries `what`, the timeout and `f`'s last
/// error.
pub fn try_wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() >= timeout => {
                return Err(format!("{what}: not true after {timeout:?}; last: {e}"))
            }
            Err(_) => std::thread::sleep(every),
        }
    }
}

/// [`try_wait_for`] that panics with its error.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    f: impl FnMut() -> Result<T, String>,
) -> T {
    try_wait_for(what, timeout, every, f).unwrap_or_else(|e| panic!("{e}"))
}

/// The async twin of [`try_wait_for`]: `f` returns a future; the waits are tokio's.
pub async fn try_wait_for_async<T, F: Future<Output = Result<T, String>>>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> F,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() >= timeout => {
                return Err(format!("{what}: not true after {timeout:?}; last: {e}"))
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// [`try_wait_for_async`] that panics with its error.
pub async fn wait_for_async<T, F: Future<Output = Result<T, String>>>(
    what: &str,
    timeout: Duration,
    every: Duration,
    f: impl FnMut() -> F,
) -> T {
    try_wait_for_async(what, timeout, every, f)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `Ok(())` if `cond`, else `Err(why)`: for polling a plain condition.
pub fn check(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

// ---- findings as phi-guard shows them ---------------------------------------------------------

/// A finding as an admission answer shows it (denial line, warning, audit annotation value):
/// `[rule/reason] path (citation): message`. Tests assert on these fields, not on the message,
/// whose wording is pinned once in `tests/golden/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub rule: String,
    pub reason: String,
    /// Empty when the finding names no field.
    pub path: String,
}

/// Every finding shown in `text`: each line (a denial has one per finding, kubectl prints one
/// warning per line) is read from its first `[rule/reason]`. "and N more" lines (`[rule]`) and
/// anything else are skipped.
pub fn shown_findings(text: &str) -> Vec<Shown> {
    let code = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(open) = rest.find('[') {
            let after = &rest[open + 1..];
            let Some(close) = after.find(']') else { break };
            let inner = &after[..close];
            if let Some((rule, reason)) = inner.split_once('/') {
                if code(rule) && code(reason) {
                    let tail = &after[close + 1..];
                    let path = match tail.find(" (45 CFR") {
                        Some(end) => tail[..end].trim(),
                        None => "",
                    };
                    out.push(Shown {
                        rule: rule.into(),
                        reason: reason.into(),
                        path: path.into(),
                    });
                    break;
                }
            }
            rest = after;
        }
    }
    out
}

/// The reason codes shown in `text`, in order.
pub fn shown_reasons(text: &str) -> Vec<String> {
    shown_findings(text).into_iter().map(|s| s.reason).collect()
}

/// The rules shown in `text` (each once, in order).
pub fn shown_rules(text: &str) -> Vec<String> {
    let mut rules: Vec<String> = Vec::new();
    for s in shown_findings(text) {
        if !rules.contains(&s.rule) {
            rules.push(s.rule);
        }
    }
    rules
}

// ---- golden tables ------------------------------------------------------------------------------

/// Compare `rendered` with the golden table at `path` line by line, or first rewrite the table
/// when `PHI_GUARD_BLESS` is set (then review its diff). `what` says what a change in the number
/// of lines means.
pub fn golden_table(path: &Path, rendered: &str, what: &str) {
    if std::env::var_os("PHI_GUARD_BLESS").is_some() {
        if let Err(e) = std::fs::write(path, rendered) {
            panic!("write the golden table {}: {e}", path.display());
        }
    }
    let golden = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the golden table {}: {e}", path.display()));
    for (want, got) in golden.lines().zip(rendered.lines()) {
        assert_eq!(got, want, "a message's wording changed (bless if intended)");
    }
    assert_eq!(
        golden.lines().count(),
        rendered.lines().count(),
        "{what} (bless if intended)"
    );
}

// The parsing and polling themselves, checked wherever the module is compiled in.
#[cfg(test)]
mod self_tests {
    use super::*;

    const TEXT: &str = "# HELP x a\n# TYPE x counter\nx 3\nx_total{a=\"1\",b=\"q,}\"} 2\n\
                        x_total{a=\"1\"} 5\nx_total{a=\"2\"} 7\ny_bucket{le=\"+Inf\"} 1\n";

    #[test]
    fn metric_parsing() {
        assert_eq!(metric(TEXT, "x"), Some(3.0));
        assert_eq!(metric(TEXT, "x_total"), None);
        assert_eq!(metric(TEXT, "x_total{a=\"1\"}"), Some(5.0));
        assert_eq!(metric(TEXT, "x_total{a=\"1\",b=\"q,}\"}"), Some(2.0));
        assert_eq!(metric_sum(TEXT, "x_total", &[]), 14.0);
        assert_eq!(metric_sum(TEXT, "x_total", &["a=\"1\""]), 7.0);
        assert_eq!(metric_sum(TEXT, "x", &["a=\"1\""]), 0.0);
        assert!(metric_series(TEXT, "nope", &[]).is_empty());
    }

    #[test]
    fn findings_are_read_from_admission_text() {
        let text = "phi-guard denied Deployment a/b: 2 HIPAA findings (policy p):\n\
                    [encryption-at-rest/unencrypted-storage-class] spec.volumes[0] (45 CFR 164.312(a)(2)(iv)): x [y/z] w\n\
                    [audit-sidecar/no-audit-sidecar] (45 CFR 164.312(b)): no sidecar\n\
                    [encryption-at-rest] and 3 more findings of this rule\n\
                    Warning: phi-guard [network-segmentation/no-isolating-policy] metadata.namespace (45 CFR 164.312(a)(1), (e)(1)): m";
        let shown = shown_findings(text);
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert_eq!(shown[0].rule, "encryption-at-rest");
        assert_eq!(shown[0].reason, "unencrypted-storage-class");
        assert_eq!(shown[0].path, "spec.volumes[0]");
        assert_eq!(shown[1].path, "");
        assert_eq!(shown[2].reason, "no-isolating-policy");
        assert_eq!(
            shown_rules(text),
            [
                "encryption-at-rest",
                "audit-sidecar",
                "network-segmentation"
            ]
        );
        assert!(shown_findings("[Deployment] spec.x\nno brackets").is_empty());
    }

    #[test]
    fn polling_returns_the_value_or_the_last_error() {
        let mut n = 0;
        let v = wait_for(
            "n",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                if n == 3 {
                    Ok(n)
                } else {
                    Err(format!("n={n}"))
                }
            },
        );
        assert_eq!(v, 3);
        let e = try_wait_for("never", Duration::ZERO, Duration::ZERO, || {
            Err::<(), _>("no".into())
        })
        .unwrap_err();
        assert!(e.contains("never") && e.contains("last: no"), "{e}");
    }
}
