//! PolicyReports as a consumer keyed by result ID reads them (Policy Reporter): results name
//! their object by uid, summaries count what the results hold, excepted findings are `skip` in
//! the report and excepted in status and metrics, the audit's own status writes start no full
//! pass, and a namespace that grows past the split threshold loses no result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;
use serde_json::Value;

use crate::fixtures::{self, App};
use crate::harness::*;
use crate::policy::{apply_scoped_policy, SCOPE_LABEL};

/// How fast the audit must follow a change.
const FOLLOW: Duration = Duration::from_secs(20);

fn reports(ns: &str) -> Vec<Value> {
    let run = kubectl(&["get", "policyreports", "-n", ns, "-o", "json"], None);
    assert!(run.ok, "list policyreports: {}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("policyreport list json");
    v["items"].as_array().cloned().unwrap_or_default()
}

fn results(ns: &str) -> Vec<Value> {
    reports(ns)
        .iter()
        .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The result of `rule` for Deployment `name`.
fn result_of(ns: &str, name: &str, rule: &str) -> Option<Value> {
    results(ns).into_iter().find(|x| {
        x["resources"][0]["kind"] == "Deployment"
            && x["resources"][0]["name"] == name
            && x["rule"] == rule
    })
}

fn uid_of(ns: &str, name: &str) -> String {
    let run = kubectl(
        &[
            "get",
            "deployment",
            name,
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    assert!(run.ok, "{}", run.stderr);
    run.stdout.trim().to_string()
}

/// Poll until `f` holds, for up to `FOLLOW`, or panic with what was seen last.
fn within<T>(what: &str, f: impl Fn() -> Result<T, String>) -> T {
    crate::support::wait_for(what, FOLLOW, Duration::from_millis(250), f)
}

/// The sum of phi-guard's samples `name` whose labels include each of `labels` (`k="v"`).
fn metric_sum(ctx: &Ctx, name: &str, labels: &[&str]) -> f64 {
    let (_, body) = http_get(ctx.phi_guard_admin_port(), "/metrics").expect("metrics answer");
    crate::support::metric_sum(&body, name, labels)
}

fn exception(name: &str, ns: &str, key: &str) -> String {
    let expires = crate::exceptions::rfc3339_in(24 * 3600);
    format!(
        r#"apiVersion: phiguard.io/v1alpha1
kind: PhiException
metadata:
  name: {name}
spec:
  match:
    namespaces: [{ns}]
    kinds: [Deployment]
    selector:
      matchLabels:
        e2e.phiguard.io/exception: {key}
  rules:
    - rule: audit-sidecar
  expiresAt: "{expires}"
  ticket: "SEC-1001"
  justification: "sidecar image being mirrored; compensating control: node-level log shipping"
  approvedBy: security-team
"#
    )
}

/// Isolated and encrypted in transit, but without an audit sidecar: one finding.
fn sidecarless(ns: &str, name: &str) -> App {
    let mut app = App::compliant(ns, name, None).without_phi_label();
    app.audit_sidecar = false;
    app
}

fn policy_audit(policy: &str) -> Value {
    let run = kubectl(&["get", "phipolicy", policy, "-o", "json"], None);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    v["status"]["audit"].clone()
}

#[tokio::test]
async fn reports_tell_namesakes_apart_count_what_they_hold_and_skip_what_is_excepted() {
    let key = unique("reports");
    let ctx = Ctx::new("reports", &[(SCOPE_LABEL, &key)]).await;
    // The same app in a second namespace of the same scope.
    let other = unique("e2e-reports-b");
    kubectl_ok(
        &["apply"],
        &fixtures::namespace(&other, &[(SCOPE_LABEL, &key)]),
    );
    ctx.cleanup("namespace", &other);
    let policy = unique("e2e-reports");
    apply_scoped_policy(&ctx, &policy, &key, "Warn");
    let exc = unique("e2e-reports-exc");
    kubectl_ok(&["apply"], &exception(&exc, &ctx.ns, &key));
    ctx.cleanup("phiexception", &exc);

    for ns in [ctx.ns.as_str(), other.as_str()] {
        kubectl_ok(&["apply"], &fixtures::default_deny(ns, "default-deny"));
        let app = sidecarless(ns, "records-api");
        let _ = accepts_eventually(&app.deployment(), CACHE).await;
    }
    // Waived by the exception: reported, but as skip.
    let waived = sidecarless(&ctx.ns, "ledger").with_label("e2e.phiguard.io/exception", &key);
    let _ = accepts_eventually(&waived.deployment(), CACHE).await;

    // The same app in two namespaces: two results, told apart by the objects' uids.
    let (a, b) = within("a result for records-api in both namespaces", || {
        match (
            result_of(&ctx.ns, "records-api", "audit-sidecar"),
            result_of(&other, "records-api", "audit-sidecar"),
        ) {
            (Some(a), Some(b)) => Ok((a, b)),
            seen => Err(format!("{seen:?}")),
        }
    });
    assert_eq!(a["resources"][0]["uid"], uid_of(&ctx.ns, "records-api"));
    assert_eq!(b["resources"][0]["uid"], uid_of(&other, "records-api"));
    assert_ne!(a["resources"][0]["uid"], b["resources"][0]["uid"]);
    assert_ne!(
        a["properties"]["resultID"], b["properties"]["resultID"],
        "Policy Reporter would keep only one of them"
    );
    for (r, ns) in [(&a, ctx.ns.as_str()), (&b, other.as_str())] {
        let res = &r["resources"][0];
        assert_eq!(
            (
                res["apiVersion"].as_str(),
                res["kind"].as_str(),
                res["namespace"].as_str()
            ),
            (Some("apps/v1"), Some("Deployment"), Some(ns))
        );
        assert_eq!(r["result"], "fail");
        assert_eq!(
            r["severity"], "medium",
            "the rule's severity, not the Warn mode's"
        );
    }

    // The excepted finding: skip in the report, excepted in status and metrics.
    let skip = within("the waived finding as skip", || {
        match result_of(&ctx.ns, "ledger", "audit-sidecar") {
            Some(r) if r["result"] == "skip" => Ok(r),
            seen => Err(format!("{seen:?}")),
        }
    });
    assert_eq!(skip["resources"][0]["uid"], uid_of(&ctx.ns, "ledger"));
    within("status counts the waived object as excepted", || {
        let a = policy_audit(&policy);
        let got = (
            a["judged"].as_i64(),
            a["violating"].as_i64(),
            a["excepted"].as_i64(),
            a["compliant"].as_i64(),
            a["violationsByRule"]["audit-sidecar"].as_i64(),
        );
        if got == (Some(3), Some(2), Some(1), Some(0), Some(2)) {
            Ok(())
        } else {
            Err(format!("status.audit: {a}"))
        }
    });
    let ns_label = format!("namespace=\"{}\"", ctx.ns);
    let rule_label = "rule=\"audit-sidecar\"";
    within("metrics count the waived finding as excepted", || {
        let v = metric_sum(&ctx, "phi_guard_audit_violations", &[&ns_label, rule_label]);
        let e = metric_sum(&ctx, "phi_guard_audit_excepted", &[&ns_label, rule_label]);
        if (v, e) == (1.0, 1.0) {
            Ok(())
        } else {
            Err(format!("violations {v}, excepted {e}"))
        }
    });

    // Every report's summary counts exactly what its results hold.
    for ns in [ctx.ns.as_str(), other.as_str()] {
        let all = reports(ns);
        assert!(!all.is_empty());
        for r in all {
            for what in ["pass", "fail", "warn", "error", "skip"] {
                let n = r["results"]
                    .as_array()
                    .map_or(0, |v| v.iter().filter(|x| x["result"] == what).count());
                assert_eq!(
                    r["summary"][what].as_u64(),
                    Some(n as u64),
                    "summary.{what} of {}/{}",
                    ns,
                    r["metadata"]["name"]
                );
            }
        }
    }
    let skips: u64 = reports(&ctx.ns)
        .iter()
        .filter_map(|r| r["summary"]["skip"].as_u64())
        .sum();
    assert_eq!(skips, 1);

    // The audit's own writes start no full pass: a change (a new object) is judged, its counts
    // go to the policy's status, and that status write (a PhiPolicy event) keeps the policy set
    // in force, so re-judges nothing. Other tests share this cluster and change policies and
    // namespaces meanwhile, so the global count of full passes cannot tell; the log says which
    // policies each new set came from, and the metric says why each full pass ran.
    let log_path = Env::get().state_dir.join("phi-guard.log");
    let log_from = std::fs::metadata(&log_path).map_or(0, |m| m.len());
    let by_policies = r#"trigger="policies""#;
    let full_before = metric_sum(&ctx, "phi_guard_audit_passes_total", &[by_policies]);
    let passes_before = metric_sum(&ctx, "phi_guard_audit_passes_total", &[]);
    let extra = sidecarless(&ctx.ns, "billing");
    let _ = accepts_eventually(&extra.deployment(), CACHE).await;
    within("the new object's counts in status", || {
        let a = policy_audit(&policy);
        if a["judged"].as_i64() == Some(4) {
            Ok(())
        } else {
            Err(format!("status.audit: {a}"))
        }
    });
    // The status write's watch event arrives within moments; the audit looks every second.
    // Waits for something that must not happen (a rebuild for the status write): an absence
    // has no condition to poll.
    std::thread::sleep(Duration::from_secs(4));
    let full_after = metric_sum(&ctx, "phi_guard_audit_passes_total", &[by_policies]);
    // A pass of changes judges the new object, or a full pass another test's policy change
    // started meanwhile does (the audit folds pending changes into a full pass).
    let passes_after = metric_sum(&ctx, "phi_guard_audit_passes_total", &[]);
    assert!(
        passes_after > passes_before,
        "the new object was judged by an audit pass"
    );
    let log = std::fs::read(&log_path).unwrap_or_default();
    let window = String::from_utf8_lossy(log.get(log_from as usize..).unwrap_or_default());
    let sets: Vec<Value> = window
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "PhiPolicies applied")
        .collect();
    for set in &sets {
        let changed = set["changed"].as_str().unwrap_or_default();
        assert!(
            !changed.split(',').any(|n| n == policy),
            "the policy set was rebuilt for {policy} after the audit's own status write: {set}"
        );
    }
    // Each new set starts at most one full pass; none started without one (one more: a set
    // logged just before the window whose pass began inside it).
    assert!(
        full_after - full_before <= sets.len() as f64 + 1.0,
        "{} full passes for policies, {} new policy sets (none for {policy})",
        full_after - full_before,
        sets.len()
    );
}

/// Policy Reporter's store, fed by a watch: one row per result ID (an ID another report holds
/// is ignored on insert), a report's rows dropped when it changes or goes. Counts the moments a
/// result some report holds has no row.
#[derive(Default)]
struct Consumer {
    rows: BTreeMap<String, String>,
    reports: BTreeMap<String, BTreeSet<String>>,
    missing: Vec<String>,
}

fn ids(report: &DynamicObject) -> BTreeSet<String> {
    report.data["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["properties"]["resultID"].as_str().map(str::to_string))
        .collect()
}

impl Consumer {
    fn apply(&mut self, report: &DynamicObject) {
        let name = report.name_any();
        self.rows.retain(|_, r| *r != name);
        let ids = ids(report);
        for id in &ids {
            self.rows.entry(id.clone()).or_insert_with(|| name.clone());
        }
        self.reports.insert(name, ids);
        self.check();
    }

    fn delete(&mut self, report: &DynamicObject) {
        let name = report.name_any();
        self.rows.retain(|_, r| *r != name);
        self.reports.remove(&name);
        self.check();
    }

    fn check(&mut self) {
        for id in self.reports.values().flatten() {
            if !self.rows.contains_key(id) {
                self.missing.push(id.clone());
            }
        }
    }
}

// Several threads: the consumer's watch runs while the test blocks on kubectl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_growing_past_the_split_threshold_loses_no_result() {
    // 400 results per report by default; 10 here so that a few dozen objects split the
    // namespace's report several times within seconds.
    let key = unique("split");
    let ctx = Ctx::exclusive("split", &[(SCOPE_LABEL, &key)]).await;
    let outage = ctx.run_phi_guard_with_args(&["--audit-report-max-results=10"]);
    let policy = unique("e2e-split");
    apply_scoped_policy(&ctx, &policy, &key, "Warn");
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));

    let consumer = Arc::new(Mutex::new(Consumer::default()));
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "PolicyReport"),
        "policyreports",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &ar);
    let feed = consumer.clone();
    let watch = tokio::spawn(async move {
        let stream = watcher::watcher(api, watcher::Config::default());
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let mut c = feed.lock().expect("consumer");
            match event {
                Ok(Event::Apply(r) | Event::InitApply(r)) => c.apply(&r),
                Ok(Event::Delete(r)) => c.delete(&r),
                _ => {}
            }
        }
    });

    // Grow one object at a time, watching the union of reports: a result once reported for an
    // object that still exists never leaves it.
    const OBJECTS: usize = 36;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut max_reports = 0;
    for i in 0..OBJECTS {
        let app = App::bare(&ctx.ns, &format!("app-{i:02}")).without_phi_label();
        let _ = accepts_eventually(&app.deployment(), CACHE).await;
        let current = reports(&ctx.ns);
        max_reports = max_reports.max(current.len());
        let union: BTreeSet<String> = current
            .iter()
            .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
            .filter_map(|x| x["properties"]["resultID"].as_str().map(str::to_string))
            .collect();
        // A list may fall between the two writes of a move (old report shrunk, new one not yet
        // written): what was seen must be back by the next settled state, checked below.
        seen.extend(union);
    }
    let settled = within("every object's result reported", || {
        let current = reports(&ctx.ns);
        let all: Vec<Value> = current
            .iter()
            .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
            .collect();
        let union: BTreeSet<String> = all
            .iter()
            .filter_map(|x| x["properties"]["resultID"].as_str().map(str::to_string))
            .collect();
        let objects: BTreeSet<&str> = all
            .iter()
            .filter_map(|x| x["resources"][0]["name"].as_str())
            .collect();
        if objects.len() == OBJECTS && union.len() == all.len() {
            Ok((current.clone(), union))
        } else {
            Err(format!(
                "{} objects, {} results ({} distinct) in {} reports",
                objects.len(),
                all.len(),
                union.len(),
                current.len()
            ))
        }
    });
    let (current, union) = settled;
    let lost: Vec<&String> = seen.difference(&union).collect();
    assert!(lost.is_empty(), "results that disappeared: {lost:?}");
    assert!(
        current.len() >= 4,
        "the namespace split into {} reports",
        current.len()
    );
    for r in &current {
        let n = r["results"].as_array().map_or(0, Vec::len);
        assert!(n <= 10, "{} holds {n} results", r["metadata"]["name"]);
    }
    eprintln!(
        "split: {} reports at the end (max {max_reports} seen while growing)",
        current.len()
    );

    // The consumer keyed by result ID holds every result and never missed one a report held.
    within("the consumer caught up", || {
        let c = consumer.lock().expect("consumer");
        let rows: BTreeSet<String> = c.rows.keys().cloned().collect();
        if rows == union {
            Ok(())
        } else {
            Err(format!("{} rows, {} results", rows.len(), union.len()))
        }
    });
    let missing = consumer.lock().expect("consumer").missing.clone();
    assert!(
        missing.is_empty(),
        "a consumer keyed by result ID lost results while reports split: {missing:?}"
    );
    watch.abort();
    outage.end();
}
