//! Compliance over time: the background audit re-judges admitted objects when what they rely on
//! changes, and writes PolicyReports, PhiPolicy status and metrics; one replica writes.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixtures::{self, App};
use crate::harness::*;
use crate::policy::{apply_scoped_policy, scoped_policy, SCOPE_LABEL};
use crate::support::{check, wait_for};

/// How fast the audit must follow a change.
const FOLLOW: Duration = Duration::from_secs(10);

fn reports(ns: &str) -> Vec<Value> {
    let run = kubectl(&["get", "policyreports", "-n", ns, "-o", "json"], None);
    assert!(run.ok, "list policyreports: {}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("policyreport list json");
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The result of `rule` for Deployment `name` in the namespace's reports.
fn result(ns: &str, name: &str, rule: &str) -> Option<String> {
    reports(ns).iter().find_map(|r| {
        r["results"].as_array()?.iter().find_map(|x| {
            let res = &x["resources"][0];
            (res["kind"] == "Deployment" && res["name"] == name && x["rule"] == rule)
                .then(|| x["result"].as_str().unwrap_or_default().to_string())
        })
    })
}

/// A report as written: its name and resourceVersion, and every result's ID with its timestamp.
type Written = (String, String, Vec<(String, i64)>);

/// The namespace's reports as written.
fn written(ns: &str) -> Vec<Written> {
    reports(ns)
        .iter()
        .map(|r| {
            let results = r["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    (
                        x["properties"]["resultID"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        x["timestamp"]["seconds"].as_i64().unwrap_or_default(),
                    )
                })
                .collect();
            (
                r["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                results,
            )
        })
        .collect()
}

/// Poll until `f` holds, for up to `FOLLOW`; the elapsed time, or a panic saying what was seen.
fn within(what: &str, f: impl Fn() -> Result<(), String>) -> Duration {
    let start = Instant::now();
    wait_for(what, FOLLOW, Duration::from_millis(250), f);
    start.elapsed()
}

fn expect(ns: &str, name: &str, rule: &str, want: Option<&str>) -> Result<(), String> {
    let got = result(ns, name, rule);
    if got.as_deref() == want {
        Ok(())
    } else {
        Err(format!("{rule} result of {name}: {got:?}, want {want:?}"))
    }
}

#[tokio::test]
async fn audit_follows_admitted_objects_as_the_cluster_changes() {
    let key = unique("audit");
    let ctx = Ctx::new("audit", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-audit");
    apply_scoped_policy(&ctx, &policy, &key, "Warn");

    // Isolated, but no audit sidecar: admitted under Warn, reported as failing.
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let app = App::bare(&ctx.ns, "records-api").without_phi_label();
    let _ = accepts_eventually(&app.deployment(), CACHE).await;
    let t = within("a failing audit-sidecar result", || {
        expect(&ctx.ns, "records-api", "audit-sidecar", Some("fail"))
    });
    eprintln!("audit: failing result reported after {t:?}");
    expect(&ctx.ns, "records-api", "network-segmentation", None)
        .unwrap_or_else(|e| panic!("isolated at first: {e}"));

    // The NetworkPolicy it relied on goes (allowed under Warn): its segmentation now fails.
    let run = kubectl(
        &["delete", "networkpolicy", "default-deny", "-n", &ctx.ns],
        None,
    );
    assert!(run.ok, "delete the NetworkPolicy: {}", run.stderr);
    within("network-segmentation turning fail", || {
        expect(&ctx.ns, "records-api", "network-segmentation", Some("fail"))
    });

    // Fixed: isolation back, every safeguard proven: no failing results remain (pass results
    // are off by default) and the report of the namespace goes with them.
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let fixed = App::compliant(&ctx.ns, "records-api", None).without_phi_label();
    let _ = accepts_eventually(&fixed.deployment(), CACHE).await;
    within("results cleared after the fix", || {
        let n: usize = reports(&ctx.ns)
            .iter()
            .map(|r| r["results"].as_array().map_or(0, Vec::len))
            .sum();
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} results left"))
        }
    });

    // The policy's status counts what the audit saw.
    within("policy status counts", || {
        let run = kubectl(&["get", "phipolicy", &policy, "-o", "json"], None);
        let v: Value = serde_json::from_str(&run.stdout).map_err(|e| e.to_string())?;
        let a = &v["status"]["audit"];
        if a["judged"].as_i64() == Some(1) && a["violating"].as_i64() == Some(0) {
            Ok(())
        } else {
            Err(format!("status.audit: {a}"))
        }
    });
    let cols = kubectl(&["get", "phipolicy", &policy], None);
    assert!(
        cols.stdout.contains("JUDGED")
            && cols.stdout.contains("VIOLATING")
            && cols.stdout.contains("LAST AUDIT"),
        "kubectl get phip columns:\n{}",
        cols.stdout
    );
}

fn lease_holder() -> String {
    let run = kubectl(
        &[
            "get",
            "lease",
            "phi-guard-audit",
            "-n",
            "phi-guard",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    );
    run.stdout.trim().to_string()
}

#[tokio::test]
async fn one_replica_writes_and_another_takes_over() {
    let key = unique("lease");
    let ctx = Ctx::exclusive("lease", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-lease");
    kubectl_ok(&["apply"], &scoped_policy(&policy, &key, "Warn"));
    ctx.cleanup("phipolicy", &policy);
    // The shared phi-guard leads (it takes the Lease within its 3 s retry after starting).
    eventually("the shared phi-guard leads", CACHE, || {
        match lease_holder() {
            h if h == HOST_IDENTITY => Ok(()),
            other => Err(format!("holder {other:?}")),
        }
    })
    .await;

    let second = SecondReplica::start("e2e-second");
    // A finding to report: the leader writes it, the second replica writes nothing.
    let app = App::bare(&ctx.ns, "ledger").without_phi_label();
    let _ = accepts_eventually(&app.deployment(), CACHE).await;
    within("reported by the leader", || {
        expect(&ctx.ns, "ledger", "audit-sidecar", Some("fail"))
    });
    assert_eq!(second.metric("phi_guard_audit_leader"), Some(0.0));
    assert_eq!(
        second
            .metric("phi_guard_report_writes_total")
            .unwrap_or(0.0),
        0.0,
        "a standby replica wrote reports"
    );

    // The leader dies without a goodbye: the other replica takes the Lease within 30 s.
    let before = written(&ctx.ns);
    assert!(!before.is_empty() && before.iter().all(|(_, _, r)| !r.is_empty()));
    let outage = ctx.kill_phi_guard();
    let start = Instant::now();
    wait_for(
        "the second replica takes the Lease",
        Duration::from_secs(30),
        Duration::from_millis(500),
        || {
            let holder = lease_holder();
            check(holder == "e2e-second", || format!("holder {holder:?}"))
        },
    );
    eprintln!("audit: takeover after {:?}", start.elapsed());
    // Its first full pass finds what the old leader wrote unchanged: the results keep the time
    // they took their value, and the reports are not written again.
    wait_for(
        "the new leader's first full pass",
        FOLLOW,
        Duration::from_millis(250),
        || {
            let n = second.metric("phi_guard_audit_pass_duration_seconds_count");
            check(n.is_some_and(|n| n >= 1.0), || format!("passes {n:?}"))
        },
    );
    assert_eq!(
        written(&ctx.ns),
        before,
        "an unchanged report was written again by the new leader"
    );
    // It writes now: a policy change (no webhook involved) changes the results' mode.
    let run = kubectl(
        &[
            "patch",
            "phipolicy",
            &policy,
            "--type=merge",
            "-p",
            r#"{"spec":{"mode":"Audit"}}"#,
        ],
        None,
    );
    assert!(run.ok, "{}", run.stderr);
    within("the new leader rewrites the report", || {
        let mode = reports(&ctx.ns).iter().find_map(|r| {
            r["results"].as_array()?.iter().find_map(|x| {
                (x["resources"][0]["name"] == "ledger").then(|| {
                    x["properties"]["mode"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
            })
        });
        if mode.as_deref() == Some("Audit") {
            Ok(())
        } else {
            Err(format!("mode {mode:?}"))
        }
    });
    // The API server shows the report before the writer has read its answer and counted the
    // write: wait for the count too (read at once, it raced and failed once, 2026-12-07).
    within("the new leader counts its write", || {
        let writes = second.metric("phi_guard_report_writes_total");
        if writes.unwrap_or(0.0) > 0.0 {
            Ok(())
        } else {
            Err(format!("phi_guard_report_writes_total {writes:?}"))
        }
    });
    drop(second);
    outage.end();
}
