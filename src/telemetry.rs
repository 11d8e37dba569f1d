//! Observability: tracing setup (JSON or text logs), the Prometheus metrics phi-guard exports,
//! and the readiness gate `/readyz` reports (TLS loaded, every watch cache synced).
//!
//! Logs never carry object content, env values or annotation values: review lines name the
//! object (kind, namespace, name) and the rule ids, nothing else.

pub mod batched;
mod json_lines;
mod text_fields;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log pipelines).
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// Install the global tracing subscriber. `RUST_LOG` overrides the default filter (`info`).
/// With a `flush_interval`, lines are written to stderr once per interval ([`batched`]; `serve`
/// calls [`batched::flush`] before it exits); without, each line as it is made.
/// Calling it twice is harmless (the second call does nothing).
pub fn init_logging(format: LogFormat, flush_interval: Option<std::time::Duration>) {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let writer = match flush_interval {
        Some(interval) => BoxMakeWriter::new(batched::Batched::stderr(interval)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    init_logging_to(format, writer);
}

fn init_logging_to(format: LogFormat, writer: tracing_subscriber::fmt::writer::BoxMakeWriter) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,hyper=warn,rustls=warn,kube_client=warn,tower=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        // tracing-subscriber's `json().flatten_event(true)` lines, written with less work
        // (json_lines.rs holds the two equal).
        LogFormat::Json => builder.event_format(json_lines::JsonLines).try_init(),
        LogFormat::Text => builder
            .fmt_fields(text_fields::QuotedFields)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// Review latency buckets, in seconds: sub-millisecond resolution (the API server's own webhook
/// histogram starts at 5 ms, which hides everything phi-guard does).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Label values of the per-review families: every value but a policy's name is a static
/// string, so counting a review allocates nothing.
type Value = std::borrow::Cow<'static, str>;
type Labels3 = [(&'static str, Value); 3];
type Labels6 = [(&'static str, Value); 6];

/// Every metric phi-guard exports, registered once.
pub struct Metrics {
    registry: Registry,
    /// Time to handle one `/validate` request (parse, judge, encode).
    pub review_duration: Histogram,
    /// Reviews by outcome (`allowed`, `denied`, `invalid`), kind and operation.
    pub reviews: Family<Labels3, Counter>,
    /// Findings by policy, rule, mode, kind and operation.
    pub findings: Family<Labels6, Counter>,
    /// Requests rejected before a review (bad body, wrong content type ...), by HTTP status.
    pub bad_requests: Family<[(&'static str, String); 1], Counter>,
    /// Objects held per kind in the watch caches.
    pub cache_objects: Family<[(&'static str, String); 1], Gauge>,
    /// PhiPolicies in force and rejected.
    pub policies: Family<[(&'static str, String); 1], Gauge>,
    /// PhiPolicies rejected as malformed (currently).
    pub rejected_policies: Gauge,
    /// Serving certificate notAfter, Unix seconds.
    pub cert_expiry: Gauge,
    /// Certificate (re)loads by result.
    pub cert_reloads: Family<[(&'static str, String); 1], Counter>,
    /// Watch stream errors by kind (the watcher retries with backoff).
    pub watch_errors: Family<[(&'static str, String); 1], Counter>,
    /// Objects the watchers could not convert and skipped, by kind.
    pub watch_skipped: Family<[(&'static str, String); 1], Counter>,
    /// Readiness (1 ready, 0 not).
    pub ready: Gauge,
    /// Confirming reads (decisions the caches could not settle) by result.
    pub confirms: Family<[(&'static str, String); 1], Counter>,
    /// Time of the confirming reads of one decision.
    pub confirm_duration: Histogram,
    /// 1 while this replica leads the background audit.
    pub audit_leader: Gauge,
    /// Objects the background audit holds.
    pub audit_objects: Gauge,
    /// Time of one audit pass.
    pub audit_duration: Histogram,
    /// Current violations (fail and warn results) by namespace, rule and mode.
    pub audit_violations: Family<[(&'static str, String); 3], Gauge>,
    /// Current findings waived by a PhiException (skip results) by namespace, rule and mode.
    pub audit_excepted: Family<[(&'static str, String); 3], Gauge>,
    /// Audit passes by scope: `full` (everything) or `changes` (what changed).
    pub audit_passes: Family<[(&'static str, String); 2], Counter>,
    /// PolicyReport writes by operation (apply, delete).
    pub report_writes: Family<[(&'static str, String); 1], Counter>,
    /// PhiExceptions that stop applying within 7 days.
    pub exceptions_expiring: Gauge,
    /// Requests answered 408 because they exceeded `--request-timeout`.
    pub request_timeouts: Counter,
    /// Components failing now (watches reconnecting to the API server).
    pub failing_components: Gauge,
    /// Open connections by listener (webhook, admin).
    pub open_connections: Family<[(&'static str, String); 1], Gauge>,
    pub connections_saturated: Family<[(&'static str, String); 1], Gauge>,
    pub connection_saturations: Family<[(&'static str, String); 1], Counter>,
    pub connections_refused: Family<[(&'static str, String); 2], Counter>,
    pub connections_closed: Family<[(&'static str, String); 2], Counter>,
    pub unsent_response_bytes: Family<[(&'static str, String); 1], Gauge>,
    /// Requests that waited for room in the request body budget.
    pub body_budget_waits: Counter,
    /// Changes to phi-guard's webhook configuration by others, undone, by what drifted.
    pub webhook_drift: Family<[(&'static str, String); 1], Counter>,
    /// Default-deny NetworkPolicies phi-guard generated, by result (`created`, `failed`).
    pub generated_policies: Family<[(&'static str, String); 1], Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("phi_guard");
        let review_duration = Histogram::new(LATENCY_BUCKETS);
        registry.register_with_unit(
            "review_duration",
            "Time to handle one admission review, from body read to response encoded",
            prometheus_client::registry::Unit::Seconds,
            review_duration.clone(),
        );
        let reviews = Family::<Labels3, Counter>::default();
        registry.register(
            "reviews",
            "Admission reviews by decision (allowed, denied, invalid), kind and operation",
            reviews.clone(),
        );
        let findings = Family::<Labels6, Counter>::default();
        registry.register(
            "findings",
            "Findings by policy, rule, reason code, mode, kind and operation",
            findings.clone(),
        );
        let bad_requests = Family::default();
        registry.register(
            "bad_requests",
            "Requests to /validate refused before review, by HTTP status code",
            bad_requests.clone(),
        );
        let cache_objects = Family::default();
        registry.register(
            "cache_objects",
            "Objects held in the cluster state caches, by kind",
            cache_objects.clone(),
        );
        let policies = Family::default();
        registry.register(
            "policies",
            "PhiPolicies by state (active, rejected)",
            policies.clone(),
        );
        let rejected_policies = Gauge::default();
        registry.register(
            "rejected_policies",
            "PhiPolicies currently rejected as malformed (see their status condition)",
            rejected_policies.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register_with_unit(
            "tls_cert_expiry_timestamp",
            "notAfter of the serving certificate, Unix time",
            prometheus_client::registry::Unit::Seconds,
            cert_expiry.clone(),
        );
        let cert_reloads = Family::default();
        registry.register(
            "tls_cert_reloads",
            "Serving certificate loads by result (success, failure)",
            cert_reloads.clone(),
        );
        let watch_errors = Family::default();
        registry.register(
            "watch_errors",
            "Watch stream errors by kind (retried with backoff)",
            watch_errors.clone(),
        );
        let watch_skipped = Family::default();
        registry.register(
            "watch_skipped_objects",
            "Watched objects skipped because they could not be read, by kind",
            watch_skipped.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when TLS is loaded and every cache has synced",
            ready.clone(),
        );
        let confirms = Family::default();
        registry.register(
            "confirms",
            "Consistent API reads made before a decision the caches could not settle (a denial, \
             an unknown namespace), by result (ok, timeout, error)",
            confirms.clone(),
        );
        let confirm_duration = Histogram::new(LATENCY_BUCKETS);
        registry.register_with_unit(
            "confirm_duration",
            "Time of the consistent API reads of one decision",
            prometheus_client::registry::Unit::Seconds,
            confirm_duration.clone(),
        );
        let audit_leader = Gauge::default();
        registry.register(
            "audit_leader",
            "1 while this replica holds the audit Lease and writes results",
            audit_leader.clone(),
        );
        let audit_objects = Gauge::default();
        registry.register(
            "audit_objects",
            "Objects of the judged kinds the background audit holds (controller-owned ones excluded)",
            audit_objects.clone(),
        );
        let audit_duration = Histogram::new(LATENCY_BUCKETS);
        registry.register_with_unit(
            "audit_pass_duration",
            "Time of one background audit pass (judging and writing)",
            prometheus_client::registry::Unit::Seconds,
            audit_duration.clone(),
        );
        let audit_violations = Family::default();
        registry.register(
            "audit_violations",
            "Current violations found by the background audit (fail and warn results), by namespace, rule and mode",
            audit_violations.clone(),
        );
        let audit_excepted = Family::default();
        registry.register(
            "audit_excepted",
            "Current findings waived by a PhiException (skip results, not violations), by namespace, rule and mode",
            audit_excepted.clone(),
        );
        let audit_passes = Family::default();
        registry.register(
            "audit_passes",
            "Background audit passes by scope (full: every object; changes: what changed) and trigger (sweep, policies, exception-expiry, cluster, changes)",
            audit_passes.clone(),
        );
        let report_writes = Family::default();
        registry.register(
            "report_writes",
            "PolicyReport writes by operation (apply, delete); zero in steady state",
            report_writes.clone(),
        );
        let exceptions_expiring = Gauge::default();
        registry.register(
            "exceptions_expiring_7d",
            "PhiExceptions in force that expire within 7 days (renew or fix before they do)",
            exceptions_expiring.clone(),
        );
        let request_timeouts = Counter::default();
        registry.register(
            "request_timeouts",
            "Requests to /validate answered 408 after --request-timeout (the API server fails them closed)",
            request_timeouts.clone(),
        );
        let failing_components = Gauge::default();
        registry.register(
            "failing_components",
            "Components failing now, e.g. watches reconnecting to the API server (/readyz names them)",
            failing_components.clone(),
        );
        let open_connections = Family::<[(&'static str, String); 1], Gauge>::default();
        registry.register(
            "open_connections",
            "Open connections by listener (webhook: at most --max-connections)",
            open_connections.clone(),
        );
        let connections_saturated = Family::<[(&'static str, String); 1], Gauge>::default();
        registry.register(
            "connections_saturated",
            "1 while every connection slot of the listener is taken (--max-connections): new connections wait in the listen backlog",
            connections_saturated.clone(),
        );
        let connection_saturations = Family::<[(&'static str, String); 1], Counter>::default();
        registry.register(
            "connection_saturations",
            "Times a listener found every connection slot taken",
            connection_saturations.clone(),
        );
        let connections_refused = Family::<[(&'static str, String); 2], Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed as soon as accepted, by reason (per_peer: the address had --max-connections-per-peer open)",
            connections_refused.clone(),
        );
        let connections_closed = Family::<[(&'static str, String); 2], Counter>::default();
        registry.register(
            "connections_closed",
            "Connections closed for their responses, by reason (unread_responses: over their share \
             of --response-buffer-mib, or holding the most when it was full; stalled_responses: \
             nothing taken for --response-stall-timeout)",
            connections_closed.clone(),
        );
        let unsent_response_bytes = Family::<[(&'static str, String); 1], Gauge>::default();
        registry.register(
            "unsent_response_bytes",
            "Response bytes made but not yet taken by their connections (bounded by --response-buffer-mib)",
            unsent_response_bytes.clone(),
        );
        let body_budget_waits = Counter::default();
        registry.register(
            "body_budget_waits",
            "Requests that waited for room in the request body budget (--body-buffer-mib)",
            body_budget_waits.clone(),
        );
        let webhook_drift = Family::default();
        registry.register(
            "webhook_configuration_drift",
            "Deletions and edits of phi-guard's ValidatingWebhookConfiguration by others (drift: \
             deleted, edited), each restored or corrected by phi-guard; alert on any increase",
            webhook_drift.clone(),
        );
        let generated_policies = Family::default();
        registry.register(
            "generated_network_policies",
            "Default-deny NetworkPolicies phi-guard created for PhiPolicies with \
             networkSegmentation.generateDefaultDeny (result: created, failed)",
            generated_policies.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because stderr's reader had fallen 256 KiB behind \
             (reviews never wait on the log; a WARN line says how many once it catches up)",
            batched::DROPPED.clone(),
        );
        Metrics {
            generated_policies,
            webhook_drift,
            failing_components,
            open_connections,
            connections_saturated,
            connection_saturations,
            connections_refused,
            connections_closed,
            unsent_response_bytes,
            body_budget_waits,
            request_timeouts,
            exceptions_expiring,
            audit_leader,
            audit_objects,
            audit_duration,
            audit_violations,
            audit_excepted,
            audit_passes,
            report_writes,
            confirms,
            confirm_duration,
            registry,
            review_duration,
            reviews,
            findings,
            bad_requests,
            cache_objects,
            policies,
            rejected_policies,
            cert_expiry,
            cert_reloads,
            watch_errors,
            watch_skipped,
            ready,
        }
    }

    /// Count one drift of the webhook configuration (`deleted`, `edited`).
    pub fn count_webhook_drift(&self, drift: &'static str) {
        self.webhook_drift
            .get_or_create(&[("drift", drift.to_string())])
            .inc();
    }

    /// Count one PolicyReport write.
    pub fn report_write(&self, op: &'static str) {
        self.report_writes
            .get_or_create(&[("operation", op.to_string())])
            .inc();
    }

    /// Count one confirmation.
    pub fn confirm(&self, result: &'static str, seconds: f64) {
        self.confirms
            .get_or_create(&[("result", result.to_string())])
            .inc();
        self.confirm_duration.observe(seconds);
    }

    /// Count one review.
    pub fn review(&self, decision: &'static str, kind: &'static str, operation: &'static str) {
        self.reviews
            .get_or_create(&[
                ("decision", Value::Borrowed(decision)),
                ("kind", Value::Borrowed(kind)),
                ("operation", Value::Borrowed(operation)),
            ])
            .inc();
    }

    /// Count one finding, by its rule and reason code (never its message).
    pub fn finding(
        &self,
        policy: &str,
        (rule, reason): (&'static str, &'static str),
        mode: &'static str,
        kind: &'static str,
        operation: &'static str,
    ) {
        self.findings
            .get_or_create(&[
                ("policy", Value::Owned(policy.to_owned())),
                ("rule", Value::Borrowed(rule)),
                ("reason", Value::Borrowed(reason)),
                ("mode", Value::Borrowed(mode)),
                ("kind", Value::Borrowed(kind)),
                ("operation", Value::Borrowed(operation)),
            ])
            .inc();
    }

    /// Count a request refused before review.
    pub fn bad_request(&self, status: u16) {
        self.bad_requests
            .get_or_create(&[("code", status.to_string())])
            .inc();
    }

    /// Count a certificate load.
    pub fn cert_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.cert_reloads
            .get_or_create(&[("result", result.to_string())])
            .inc();
    }

    /// Count a watch error.
    pub fn watch_error(&self, kind: &str) {
        self.watch_errors
            .get_or_create(&[("kind", kind.to_string())])
            .inc();
    }

    /// Count a skipped watched object.
    pub fn watch_skip(&self, kind: &str) {
        self.watch_skipped
            .get_or_create(&[("kind", kind.to_string())])
            .inc();
    }

    /// Refresh the gauges that mirror cluster state (called at scrape time, so the request path
    /// pays nothing for them).
    /// `sizes`: object counts per cached kind; `active`/`rejected`: PhiPolicies in force and
    /// refused.
    pub fn observe_state(&self, sizes: &[(&'static str, usize)], active: usize, rejected: usize) {
        for &(kind, n) in sizes {
            self.cache_objects
                .get_or_create(&[("kind", kind.to_string())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let active = i64::try_from(active).unwrap_or(i64::MAX);
        let rejected = i64::try_from(rejected).unwrap_or(i64::MAX);
        self.policies
            .get_or_create(&[("state", "active".to_string())])
            .set(active);
        self.policies
            .get_or_create(&[("state", "rejected".to_string())])
            .set(rejected);
        self.rejected_policies.set(rejected);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// What `/readyz` waits for: named components (`tls`, `watch/Pod` ...), each ready or not.
/// Ready once every registered component is; a component never becomes unready again (a
/// watcher that relists keeps serving its last complete state).
#[derive(Debug, Default)]
pub struct Readiness {
    components: Mutex<BTreeMap<String, bool>>,
    all: AtomicBool,
    draining: AtomicBool,
    /// Components failing now (a watch reconnecting): since when, and why.
    failing: Mutex<BTreeMap<String, (std::time::Instant, String)>>,
}

impl Readiness {
    pub fn new() -> Arc<Readiness> {
        Arc::new(Readiness::default())
    }

    /// Add a component that must be ready before phi-guard is.
    pub fn register(&self, name: impl Into<String>) {
        let mut c = self.components.lock();
        c.entry(name.into()).or_insert(false);
        self.all.store(false, Ordering::Release);
    }

    /// Mark a component ready (registering it if needed).
    pub fn set_ready(&self, name: &str) {
        let mut c = self.components.lock();
        c.insert(name.to_string(), true);
        let all = c.values().all(|r| *r);
        self.all.store(all, Ordering::Release);
    }

    /// Is every registered component ready? (False while nothing is registered.)
    pub fn is_ready(&self) -> bool {
        self.all.load(Ordering::Acquire)
    }

    /// Shutting down: from now on `/readyz` answers 503, so the Service stops sending new
    /// connections here, while reviews go on being judged ([`Readiness::is_ready`] is unchanged)
    /// until the listener closes.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Has [`Readiness::drain`] been called?
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A component is failing now (a watch that lost its API server and is reconnecting). It
    /// stays ready if it was: it serves its last complete state, and `/readyz` says so.
    /// `reason` must name no object values (connection errors, HTTP statuses).
    pub fn set_failing(&self, name: &str, reason: &str) {
        let mut f = self.failing.lock();
        let since = f
            .get(name)
            .map_or_else(std::time::Instant::now, |(t, _)| *t);
        f.insert(name.to_string(), (since, reason.to_string()));
    }

    /// The component works again.
    pub fn clear_failing(&self, name: &str) {
        let mut f = self.failing.lock();
        if !f.is_empty() {
            f.remove(name);
        }
    }

    /// Components failing now: (name, for how long, why).
    pub fn failing(&self) -> Vec<(String, std::time::Duration, String)> {
        self.failing
            .lock()
            .iter()
            .map(|(n, (t, r))| (n.clone(), t.elapsed(), r.clone()))
            .collect()
    }

    /// Components not ready yet, for `/readyz` and logs.
    pub fn pending(&self) -> Vec<String> {
        self.components
            .lock()
            .iter()
            .filter(|(_, r)| !**r)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Replace quoted parts of a decoder error (`invalid type: string "…"`) and bare numbers
/// (`invalid type: integer …`: some decoders print numbers unquoted) so values from the
/// object never travel into responses, API server audit logs or our logs. Positions
/// (`line 3 column 7`) and numbers inside names (`u32`, `containers[0]`, `v1`) stay.
pub fn redact(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '`' {
            out.push(c);
            out.push('…');
            let mut escaped = false;
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                i += 1;
                if escaped {
                    escaped = false;
                } else if d == '\\' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
            out.push(c);
            continue;
        }
        let boundary = i == 0 || !(chars[i - 1].is_alphanumeric() || "_[.-".contains(chars[i - 1]));
        let signed = c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if boundary && (c.is_ascii_digit() || signed) {
            let mut end = i + 1;
            while end < chars.len()
                && (chars[end].is_ascii_digit() || "._eE+-".contains(chars[end]))
            {
                end += 1;
            }
            let standalone = chars.get(end).is_none_or(|n| !n.is_alphanumeric());
            let before: String = chars[..i].iter().collect();
            let position = ["line", "column", "position"]
                .iter()
                .any(|w| before.trim_end().ends_with(w));
            if standalone && !position {
                out.push('…');
            } else {
                out.extend(&chars[i..end]);
            }
            i = end;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_waits_for_every_component() {
        let r = Readiness::new();
        assert!(!r.is_ready());
        r.register("tls");
        r.register("watch/Pod");
        r.set_ready("tls");
        assert!(!r.is_ready());
        assert_eq!(r.pending(), vec!["watch/Pod".to_string()]);
        r.set_ready("watch/Pod");
        assert!(r.is_ready());
        assert!(!r.is_draining());
        r.drain();
        assert!(r.is_draining());
        assert!(r.is_ready(), "draining must not stop reviews");
    }

    #[test]
    fn metrics_encode_histogram_and_counters() {
        let m = Metrics::new();
        m.review_duration.observe(0.0002);
        m.review("denied", "Deployment", "CREATE");
        m.finding(
            "hipaa-baseline",
            ("encryption-at-rest", "unencrypted-storage-class"),
            "Enforce",
            "Deployment",
            "CREATE",
        );
        m.observe_state(&[("Pod", 3)], 1, 0);
        let text = m.encode();
        assert!(text.contains("phi_guard_review_duration_seconds_bucket{le=\"0.00025\"} 1"));
        assert!(text.contains("phi_guard_reviews_total{decision=\"denied\""));
        assert!(text.contains(
            "phi_guard_findings_total{policy=\"hipaa-baseline\",rule=\"encryption-at-rest\",reason=\"unencrypted-storage-class\""
        ));
        assert!(text.contains("phi_guard_cache_objects{kind=\"Pod\"} 3"));
        assert!(text.contains("phi_guard_policies{state=\"active\"} 1"));
    }

    #[test]
    fn redact_hides_quoted_values() {
        assert_eq!(
            redact(r#"invalid type: string "s3cr\"et", expected u32 at line 1 column 9"#),
            r#"invalid type: string "…", expected u32 at line 1 column 9"#
        );
        assert_eq!(redact("unknown variant `PATCH`"), "unknown variant `…`");
    }

    #[test]
    fn redact_hides_bare_numbers_but_keeps_positions_and_names() {
        assert_eq!(
            redact("invalid type: integer 424242424242, expected a string at line 1 column 80"),
            "invalid type: integer …, expected a string at line 1 column 80"
        );
        assert_eq!(
            redact("invalid value: -12.5e3 for u32 in spec.containers[0] (v1)"),
            "invalid value: … for u32 in spec.containers[0] (v1)"
        );
        assert_eq!(
            redact("number out of range: 18446744073709551616"),
            "number out of range: …"
        );
    }
}
