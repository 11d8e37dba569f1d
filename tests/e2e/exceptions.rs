//! Exceptions that expire: a PhiException waives named findings of named objects until its
//! `expiresAt`, never silently, and stops at expiry without a restart.

use std::time::Duration;

use phi_guard::verdict::notes::excepted_until;
use phi_guard::verdict::Reason;
use serde_json::Value;

use crate::fixtures::{self, App, PHI};
use crate::harness::*;
use crate::shows;
use crate::support::{check, wait_for};

/// Now plus `secs`, in whole seconds, as people write an `expiresAt`.
pub(crate) fn rfc3339_in(secs: i64) -> String {
    let t = k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs))
        .expect("time");
    // Whole seconds, as people write them.
    format!(
        "{}",
        t.round(k8s_openapi::jiff::Unit::Second).expect("round")
    )
}

fn exception(name: &str, ns: &str, selector_value: &str, expires: &str, ticket: &str) -> String {
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
        e2e.phiguard.io/exception: {selector_value}
  rules:
    - rule: audit-sidecar
  expiresAt: "{expires}"
  ticket: "{ticket}"
  justification: "sidecar image being mirrored; compensating control: node-level log shipping"
  approvedBy: security-team
"#
    )
}

fn sidecarless(ns: &str, name: &str, key: &str) -> App {
    let mut app = App::compliant(ns, name, None).with_label("e2e.phiguard.io/exception", key);
    app.audit_sidecar = false;
    app
}

fn report_result(ns: &str, name: &str) -> Option<String> {
    let run = kubectl(&["get", "policyreports", "-n", ns, "-o", "json"], None);
    let v: Value = serde_json::from_str(&run.stdout).ok()?;
    v["items"].as_array()?.iter().find_map(|r| {
        r["results"].as_array()?.iter().find_map(|x| {
            (x["resources"][0]["name"] == name && x["rule"] == "audit-sidecar")
                .then(|| x["result"].as_str().unwrap_or_default().to_string())
        })
    })
}

#[tokio::test]
async fn an_exception_waives_with_a_warning_until_it_expires() {
    let ctx = Ctx::new("exception", &[PHI]).await;
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let key = unique("x");
    let name = unique("e2e-exc");
    ctx.cleanup("phiexception", &name);

    // Without an exception: denied for the missing audit sidecar.
    let first = sidecarless(&ctx.ns, "ledger", &key);
    let denied = rejects(&first.deployment());
    assert!(shows(&denied, Reason::NoAuditSidecar), "{denied}");

    // With one expiring in 20 s: admitted, the warning names the ticket and the expiry.
    let expires = rfc3339_in(20);
    let run = kubectl(
        &["apply", "-f", "-"],
        Some(&exception(&name, &ctx.ns, &key, &expires, "SEC-4711")),
    );
    assert!(run.ok, "a valid exception was refused: {}", run.stderr);
    let stderr = accepts_eventually(&first.deployment(), CACHE).await;
    // The note names the expiry, the ticket and the exception.
    let note = excepted_until(&expires, "SEC-4711", &name);
    let warned: Vec<&str> = warnings(&stderr)
        .into_iter()
        .filter(|w| w.contains(&note))
        .collect();
    assert!(
        !warned.is_empty(),
        "no warning names the exception ({note}):\n{stderr}"
    );
    assert!(
        warned.iter().all(|w| shows(w, Reason::NoAuditSidecar)),
        "the excepted finding is the missing sidecar: {warned:?}"
    );
    // The audit reports it as waived, not as compliant.
    let waived = || {
        let r = report_result(&ctx.ns, "ledger");
        check(r.as_deref() == Some("skip"), || format!("result {r:?}"))
    };
    wait_for(
        "the report shows the waived result",
        Duration::from_secs(10),
        Duration::from_millis(250),
        waived,
    );

    // 30 s later the exception has run out, without a restart: the same workload is denied again,
    // and the report fails it again.
    // Waits out the exception's expiry (20 s), the timeout under test.
    std::thread::sleep(Duration::from_secs(30));
    let again = sidecarless(&ctx.ns, "ledger-2", &key);
    let denied = rejects(&again.deployment());
    assert!(
        shows(&denied, Reason::NoAuditSidecar) && !denied.contains(&note),
        "after expiry the finding is enforced again:\n{denied}"
    );
    let failed = || {
        let r = report_result(&ctx.ns, "ledger");
        check(r.as_deref() == Some("fail"), || format!("result {r:?}"))
    };
    wait_for(
        "the report fails the result again after expiry",
        Duration::from_secs(10),
        Duration::from_millis(250),
        failed,
    );
}

#[tokio::test]
async fn malformed_exceptions_are_refused_naming_the_field() {
    let ctx = Ctx::new("exception-bad", &[PHI]).await;
    let key = unique("x");
    let cases = [
        // No ticket: the CRD's own schema refuses it.
        (
            exception(
                &unique("e2e-noticket"),
                &ctx.ns,
                &key,
                &rfc3339_in(3600),
                "SEC-1",
            )
            .replace("  ticket: \"SEC-1\"\n", ""),
            "spec.ticket",
        ),
        // A blank ticket passes the schema; phi-guard refuses it.
        (
            exception(&unique("e2e-blank"), &ctx.ns, &key, &rfc3339_in(3600), " "),
            "spec.ticket",
        ),
        (
            exception(
                &unique("e2e-expired"),
                &ctx.ns,
                &key,
                &rfc3339_in(-60),
                "SEC-2",
            ),
            "spec.expiresAt",
        ),
        (
            exception(
                &unique("e2e-toolong"),
                &ctx.ns,
                &key,
                &rfc3339_in(91 * 86_400),
                "SEC-3",
            ),
            "maxExceptionDays",
        ),
    ];
    for (yaml, field) in cases {
        let run = kubectl(&["apply", "-f", "-"], Some(&yaml));
        assert!(!run.ok, "an invalid exception was accepted:\n{yaml}");
        assert!(
            run.stderr.contains(field),
            "the refusal should name {field}:\n{}",
            run.stderr
        );
    }
}
