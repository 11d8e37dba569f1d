//! Compliance over time: the background audit inside `phi-guard serve` (HIPAA 164.308(a)(8)
//! periodic evaluation, 164.308(a)(1)(ii)(D) activity review).
//!
//! One replica leads (a Lease, `lease.rs`). The leader watches every object of the judged kinds
//! (`store.rs`) and re-judges, from the same caches and engine as the webhook, every object
//! that changed and every object of a namespace whose cluster state changed (its labels,
//! NetworkPolicies, PVCs, PeerAuthentications, Certificates, Services), everything when a
//! PhiPolicy, StorageClass or PV changed, and everything on a slow sweep. Results go to
//! PolicyReports (`report`), written only when they change, and to each PhiPolicy's
//! `status.audit` and Prometheus gauges.
//!
//! Admissions first: the audit runs on a thread of its own (`spawn`), with its own
//! single-threaded runtime and API client, at the lowest scheduling priority (nice 19). Its
//! watches, judging, report building and writes never occupy the threads that answer reviews,
//! and when both want a core the kernel gives the webhook's threads ~98% of it. Judging goes in
//! chunks of [`CHUNK`] objects between which the audit's own watches run.

pub(crate) use crate::cluster::lease;
pub(crate) mod store;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;

use crate::cluster::ClusterState;
use crate::engine;
use crate::policy::exception::{self, Exception};
use crate::policy::{Mode, Policy};
use crate::report::{self, ObjectResults, PolicyResult, RuleResult};
use crate::telemetry::{Metrics, Readiness};
use crate::verdict::RuleId;
use store::{Key, Store};

/// How the audit runs.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Namespace of the Lease (phi-guard's own).
    pub(crate) namespace: String,
    /// This replica's identity in the Lease (the pod name).
    pub(crate) identity: String,
    /// Write pass results too (evidence that checks ran), not only fail and warn.
    pub(crate) passes: bool,
    /// Full re-judging of everything, whatever changed.
    pub(crate) sweep: Duration,
    /// Results per PolicyReport before its shard of the namespace splits.
    pub(crate) max_results: usize,
}

/// Name of the Lease.
pub(crate) const LEASE_NAME: &str = "phi-guard-audit";
/// The audit looks for work this often.
const TICK: Duration = Duration::from_secs(1);
/// How often it looks until its first full pass (readiness, the lease, its own watches' lists).
const START_TICK: Duration = Duration::from_millis(100);
/// Objects judged between two yields to the audit's own watches.
const CHUNK: usize = 100;
/// The audit thread's nice value: the lowest priority, so admissions come first.
#[cfg(target_os = "linux")]
const NICE: i32 = 19;

/// Start the audit on a thread of its own (see the module's documentation); the receiver
/// resolves when it has stopped (after `stop` turns true).
pub(crate) fn spawn(
    state: Arc<ClusterState>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    cfg: Config,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    let (done, stopped) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("phi-guard-audit".into())
        .spawn(move || {
            lower_priority();
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "audit: could not start its runtime; no audit");
                    return;
                }
            };
            runtime.block_on(async move {
                // Its own client: the connections, TLS and body decoding of the audit's lists and
                // writes stay on this thread.
                let client = match kube::Client::try_default().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "audit: no API client; no audit");
                        return;
                    }
                };
                let stop = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                run(client, state, metrics, readiness, cfg, stop).await;
            });
            let _ = done.send(());
        })?;
    Ok(stopped)
}

/// Lower the calling thread's scheduling priority (Linux: a nice value set on a thread id
/// applies to that thread alone).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::warn!(error = %e, "audit: could not lower its thread's priority");
    }
}

/// Run until `stop` resolves.
pub(crate) async fn run(
    client: Client,
    state: Arc<ClusterState>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    cfg: Config,
    stop: impl std::future::Future<Output = ()>,
) {
    let elector = lease::Elector::new(client.clone(), &cfg.namespace, LEASE_NAME, &cfg.identity);
    tokio::pin!(stop);
    loop {
        // Candidate: wait for the caches, then for the lease.
        let held = if readiness.is_ready() {
            match elector.try_hold().await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "audit lease: could not read or take it");
                    false
                }
            }
        } else {
            false
        };
        if held {
            tracing::info!(identity = %cfg.identity, "audit: leading (lease {LEASE_NAME})");
            metrics.audit_leader.set(1);
            let stopped = lead(&client, &state, &metrics, &cfg, &elector, &mut stop).await;
            metrics.audit_leader.set(0);
            if stopped {
                elector.release().await;
                return;
            }
            tracing::warn!(identity = %cfg.identity, "audit: lost the lease; standing by");
        }
        // Not ready yet: look again soon, so the first pass follows readiness closely.
        let wait = if readiness.is_ready() {
            lease::RETRY
        } else {
            START_TICK
        };
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// What the audit keeps of one result between passes: what its counts, gauges and PhiPolicy
/// status read, the time it took its value, and a digest of the whole result (message, paths,
/// reasons, severity) that tells a changed result from the same one. The message and paths, most
/// of a result's size, are not kept: a namespace's report is built by judging its objects again
/// when it is written (judging an object takes microseconds; a message is ~400 bytes, and a
/// large cluster has tens of thousands of results).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kept {
    policy: Arc<str>,
    rule: RuleId,
    outcome: PolicyResult,
    mode: Option<Mode>,
    digest: u64,
    since: i64,
}

/// One object's uid and results.
#[derive(Debug, Clone, PartialEq)]
struct Judged {
    uid: String,
    results: Vec<Kept>,
}

#[derive(Default)]
struct Audit {
    /// Results per namespace, per object.
    results: BTreeMap<String, BTreeMap<Key, Judged>>,
    /// Which policies judged each object (for the per-policy counts).
    judged_by: BTreeMap<Key, Vec<Arc<str>>>,
    /// Policy names, one allocation each.
    names: BTreeSet<Arc<str>>,
    /// Keyed at random per process: a result cannot be crafted to look unchanged.
    digests: std::collections::hash_map::RandomState,
    /// The times of the results an earlier leader wrote, by result ID (until the first full pass
    /// has taken them): an unchanged result keeps its time across restarts and failovers.
    recovered: std::collections::HashMap<u64, i64>,
}

impl Audit {
    fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.names.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.names.insert(n.clone());
        n
    }

    /// Drop the names nothing refers to but this set.
    fn prune_names(&mut self) {
        self.names.retain(|n| Arc::strong_count(n) > 1);
    }

    fn digest(&self, r: &RuleResult) -> u64 {
        std::hash::BuildHasher::hash_one(&self.digests, r)
    }
}

/// What judging one object gives: its results, the policies that judged it, whether it is in
/// PHI scope, its uid.
type Verdict = (Vec<RuleResult>, Vec<String>, bool, String);

/// Judges audited objects as the webhook would, with the policies and exceptions of a pass.
struct Judge<'a> {
    store: &'a Store,
    state: &'a ClusterState,
    policies: &'a [Arc<Policy>],
    exceptions: &'a [Arc<Exception>],
    passes: bool,
    now: i64,
}

impl Judge<'_> {
    fn judge(&self, key: &Key) -> Option<Verdict> {
        self.store.get(key).map(|o| {
            let d = engine::evaluate(&o, self.state, self.policies);
            let d = exception::apply(d, &o, self.exceptions, self.now);
            (
                report::results_of(&d, self.policies, self.passes),
                d.policies,
                d.phi,
                o.uid.clone(),
            )
        })
    }

    /// The results of an object in PHI scope, for its report.
    fn results(&self, key: &Key) -> Option<Vec<RuleResult>> {
        self.judge(key)
            .filter(|(_, _, phi, _)| *phi)
            .map(|(results, ..)| results)
    }
}

/// Lead until the lease is lost (`false`) or `stop` resolves (`true`).
async fn lead(
    client: &Client,
    state: &Arc<ClusterState>,
    metrics: &Arc<Metrics>,
    cfg: &Config,
    elector: &lease::Elector,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> bool {
    let store = Arc::new(Store::new(state.clone()));
    let tasks = store::spawn(client.clone(), store.clone(), metrics.clone());
    let mut w = writer::Writer::new(client.clone());
    let mut audit = Audit::default();
    let mut renewed = Instant::now();
    let mut swept: Option<Instant> = None;
    let mut policies_seen = state.policies();
    let mut next_expiry: Option<i64> = None;
    let _ = state.take_dirty();
    let stopped = loop {
        let tick = if swept.is_some() { TICK } else { START_TICK };
        tokio::select! {
            () = &mut *stop => break true,
            () = tokio::time::sleep(tick) => {}
        }
        if renewed.elapsed() >= lease::RETRY {
            match elector.try_hold().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => break false,
                Err(e) => {
                    tracing::warn!(error = %e, "audit lease: renewal failed");
                    if renewed.elapsed() >= lease::LEASE_DURATION {
                        break false;
                    }
                }
            }
        }
        if !store.synced() {
            continue;
        }
        // What to judge again.
        let policies = state.policies();
        let exceptions = state.exceptions();
        let dirty = state.take_dirty();
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        // An exception ran out: what it waived is judged again, now.
        let expired = next_expiry.is_some_and(|t| now >= t);
        let periodic = swept.is_none_or(|t| t.elapsed() >= cfg.sweep);
        let new_set = !Arc::ptr_eq(&policies, &policies_seen);
        // Why everything is judged again (the first that applies), for the passes metric.
        let trigger = if periodic {
            Some("sweep")
        } else if new_set {
            Some("policies")
        } else if expired {
            Some("exception-expiry")
        } else if dirty.all {
            Some("cluster")
        } else {
            None
        };
        let full = trigger.is_some();
        policies_seen = policies.clone();
        let changed = store.take_changed();
        let work: Vec<Key> = if full {
            // Everything, plus what disappeared.
            let mut keys: BTreeSet<Key> = store.keys(None).into_iter().collect();
            keys.extend(changed);
            keys.extend(audit.judged_by.keys().cloned());
            keys.into_iter().collect()
        } else {
            let mut keys: BTreeSet<Key> = changed;
            if !dirty.namespaces.is_empty() {
                keys.extend(store.keys(Some(&dirty.namespaces)));
                keys.extend(
                    audit
                        .judged_by
                        .keys()
                        .filter(|k| dirty.namespaces.contains(&k.0))
                        .cloned(),
                );
            }
            keys.into_iter().collect()
        };
        if work.is_empty() {
            continue;
        }
        let scope = if full { "full" } else { "changes" };
        metrics
            .audit_passes
            .get_or_create(&[
                ("scope", scope.to_string()),
                ("trigger", trigger.unwrap_or("changes").to_string()),
            ])
            .inc();
        if swept.is_none() {
            audit.recovered = w.recovered_times().await;
        }
        let started = Instant::now();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let judge = Judge {
            store: &store,
            state,
            policies: &policies.policies,
            exceptions: &exceptions,
            passes: cfg.passes,
            now,
        };
        for chunk in work.chunks(CHUNK) {
            let at = k8s_openapi::jiff::Timestamp::now().as_second();
            for key in chunk {
                if apply(&mut audit, key.clone(), judge.judge(key), at) {
                    touched.insert(key.0.clone());
                }
            }
            // The audit's own watches share this thread.
            tokio::task::yield_now().await;
        }
        let judged = started.elapsed();
        if full {
            // Every object was judged again: a policy name no result or object refers to any
            // more (a deleted or renamed PhiPolicy) is dropped, so the names held stay the
            // policies that exist, however many come and go.
            audit.prune_names();
        }
        if periodic {
            swept = Some(Instant::now());
            // Every result has taken its recovered time, or a new one.
            audit.recovered = std::collections::HashMap::new();
        }
        next_expiry = exception::next_expiry(&exceptions, now);
        metrics
            .audit_objects
            .set(i64::try_from(store.len()).unwrap_or(i64::MAX));
        // Counts first (gauges and each PhiPolicy's status: one small write per policy), then
        // the reports, which at scale take the API server far longer to store than judging
        // took (BENCHMARKS.md, "The background audit").
        set_gauges(&audit, metrics);
        w.write_policy_status(&summaries(&audit, &policies.policies), periodic)
            .await;
        let at = k8s_openapi::jiff::Timestamp::now().as_second();
        let batch = touched.iter().map(|ns| {
            let objects = namespace_results(&audit, ns, |key| judge.results(key), at);
            let reports = report::namespace_reports(ns, &objects, cfg.max_results);
            (ns.clone(), reports)
        });
        let namespaces = touched.len();
        w.write_namespaces(batch, metrics).await;
        // A pass is done when what it found is written.
        let took = started.elapsed();
        metrics.audit_duration.observe(took.as_secs_f64());
        // Judging and writing apart: where a slow pass spends its time.
        tracing::debug!(
            objects = work.len(),
            namespaces,
            judge_ms = u64::try_from(judged.as_millis()).unwrap_or(u64::MAX),
            write_ms = u64::try_from((took - judged).as_millis()).unwrap_or(u64::MAX),
            "audit: pass done"
        );
    };
    for t in tasks {
        t.abort();
    }
    stopped
}

/// Record an object's new results; `true` when its namespace's report changes.
fn apply(audit: &mut Audit, key: Key, judged: Option<Verdict>, now: i64) -> bool {
    let old = audit.results.get_mut(&key.0).and_then(|m| m.remove(&key));
    let new: Option<Judged> = match judged {
        Some((results, policies, true, uid)) => {
            let policies = policies.iter().map(|p| audit.name(p)).collect();
            audit.judged_by.insert(key.clone(), policies);
            let identity = report::identity(&key.0, key.1, &key.2, &uid);
            let results = results
                .iter()
                .map(|r| {
                    let digest = audit.digest(r);
                    // A result keeps the time it took its value: in this leader's memory, or
                    // in what an earlier leader wrote.
                    let since = match old
                        .iter()
                        .flat_map(|j| &j.results)
                        .find(|k| k.digest == digest)
                    {
                        Some(k) => k.since,
                        None => audit
                            .recovered
                            .get(&report::result_number(&identity, r))
                            .copied()
                            .unwrap_or(now),
                    };
                    Kept {
                        policy: audit.name(&r.policy),
                        rule: r.rule,
                        outcome: r.outcome,
                        mode: r.mode,
                        digest,
                        since,
                    }
                })
                .collect();
            Some(Judged { uid, results })
        }
        _ => {
            audit.judged_by.remove(&key);
            None
        }
    };
    // An object without results is in no report: judging it again changes nothing to write.
    let new = new.filter(|n| !n.results.is_empty());
    let changed = old.as_ref() != new.as_ref();
    let ns_results = audit.results.entry(key.0.clone()).or_default();
    if let Some(n) = new {
        ns_results.insert(key.clone(), n);
    }
    if ns_results.is_empty() {
        audit.results.remove(&key.0);
    }
    changed
}

/// A namespace's objects with their results for its report: each object judged again
/// (`rejudge`) for the messages and paths the audit does not keep, each result with the time it
/// took its value (`now` for one that changed since the object was last judged: the next pass
/// judges it again and the report follows). An object gone since is left out until then.
fn namespace_results(
    audit: &Audit,
    ns: &str,
    rejudge: impl Fn(&Key) -> Option<Vec<RuleResult>>,
    now: i64,
) -> Vec<ObjectResults> {
    audit
        .results
        .get(ns)
        .into_iter()
        .flatten()
        .filter_map(|(key, j)| {
            let results = rejudge(key)?
                .into_iter()
                .map(|r| {
                    let digest = audit.digest(&r);
                    let since = j
                        .results
                        .iter()
                        .find(|k| k.digest == digest)
                        .map_or(now, |k| k.since);
                    (r, since)
                })
                .collect();
            let (_, kind, name) = key;
            Some(ObjectResults {
                kind: *kind,
                api_version: report::api_version(*kind),
                name: name.clone(),
                uid: j.uid.clone(),
                results,
            })
        })
        .collect()
}

/// Per policy: objects judged, violating, excepted, and violations per rule. An object whose
/// every finding a PhiException waives is excepted, not violating (its results are `skip`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Summary {
    pub(crate) judged: i64,
    pub(crate) violating: i64,
    pub(crate) excepted: i64,
    pub(crate) by_rule: BTreeMap<String, i64>,
}

fn summaries(audit: &Audit, policies: &[Arc<crate::policy::Policy>]) -> BTreeMap<String, Summary> {
    let mut out: BTreeMap<String, Summary> = policies
        .iter()
        .map(|p| (p.name.clone(), Summary::default()))
        .collect();
    for (key, names) in &audit.judged_by {
        let results = audit.results.get(&key.0).and_then(|m| m.get(key));
        for name in names {
            let Some(s) = out.get_mut(&**name) else {
                continue;
            };
            s.judged += 1;
            let mut violating = false;
            let mut excepted = false;
            for r in results.into_iter().flat_map(|j| &j.results) {
                if r.policy != *name {
                    continue;
                }
                if r.outcome.is_violation() {
                    violating = true;
                    *s.by_rule.entry(r.rule.as_str().to_string()).or_default() += 1;
                } else if r.outcome == PolicyResult::Skip {
                    excepted = true;
                }
            }
            s.violating += i64::from(violating);
            s.excepted += i64::from(excepted && !violating);
        }
    }
    out
}

/// Current violations and excepted findings per namespace, rule and mode.
type Counts = BTreeMap<(String, &'static str, &'static str), i64>;

fn counts(audit: &Audit) -> (Counts, Counts) {
    let (mut violations, mut excepted) = (Counts::new(), Counts::new());
    for (ns, objects) in &audit.results {
        for r in objects.values().flat_map(|j| &j.results) {
            let into = match r.outcome {
                PolicyResult::Fail | PolicyResult::Warn => &mut violations,
                PolicyResult::Skip => &mut excepted,
                PolicyResult::Pass => continue,
            };
            let mode = r.mode.map_or("none", |m| m.as_str());
            *into.entry((ns.clone(), r.rule.as_str(), mode)).or_default() += 1;
        }
    }
    (violations, excepted)
}

fn set_gauges(audit: &Audit, metrics: &Metrics) {
    let (violations, excepted) = counts(audit);
    for (family, counts) in [
        (&metrics.audit_violations, violations),
        (&metrics.audit_excepted, excepted),
    ] {
        family.clear();
        for ((ns, rule, mode), n) in counts {
            family
                .get_or_create(&[
                    ("namespace", ns),
                    ("rule", rule.to_string()),
                    ("mode", mode.to_string()),
                ])
                .set(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;
    use crate::verdict::Severity;

    fn result(rule: RuleId, outcome: PolicyResult) -> RuleResult {
        RuleResult {
            policy: "p".into(),
            rule,
            outcome,
            mode: (outcome != PolicyResult::Pass).then_some(Mode::Enforce),
            severity: Severity::Medium,
            message: format!("{} {}", rule.as_str(), outcome.as_str()),
            paths: Vec::new(),
            reasons: Vec::new(),
        }
    }

    #[test]
    fn excepted_findings_are_counted_as_excepted_not_as_violations() {
        let mut audit = Audit::default();
        let mut full: BTreeMap<Key, Vec<RuleResult>> = BTreeMap::new();
        let objects = [
            (
                "waived",
                vec![result(RuleId::AuditSidecar, PolicyResult::Skip)],
            ),
            (
                "failing",
                vec![
                    result(RuleId::AuditSidecar, PolicyResult::Skip),
                    result(RuleId::EncryptionAtRest, PolicyResult::Fail),
                ],
            ),
            (
                "fine",
                vec![result(RuleId::AuditSidecar, PolicyResult::Pass)],
            ),
        ];
        for (name, results) in objects {
            let key: Key = ("ns".into(), Kind::Deployment, name.into());
            full.insert(key.clone(), results.clone());
            let judged = (results, vec!["p".to_string()], true, format!("uid-{name}"));
            assert!(apply(&mut audit, key, Some(judged), 7));
        }
        let mut policy = crate::fixtures::policy_with(|_| {});
        policy.name = "p".into();
        let s = &summaries(&audit, &[Arc::new(policy)])["p"];
        assert_eq!((s.judged, s.violating, s.excepted), (3, 1, 1));
        assert_eq!(
            s.by_rule,
            BTreeMap::from([("encryption-at-rest".to_string(), 1)])
        );
        let (violations, excepted) = counts(&audit);
        assert_eq!(violations.values().sum::<i64>(), 1);
        assert_eq!(
            excepted,
            Counts::from([(("ns".to_string(), "audit-sidecar", "Enforce"), 2)])
        );
        // The report of the namespace says the same: 1 fail, 2 skip.
        let objects = namespace_results(&audit, "ns", |k| full.get(k).cloned(), 9);
        let reports = report::namespace_reports("ns", &objects, report::MAX_RESULTS);
        let summary = &reports["phi-guard"]["summary"];
        assert_eq!(
            (summary["fail"].as_u64(), summary["skip"].as_u64()),
            (Some(1), Some(2))
        );
    }

    #[test]
    fn results_keep_their_time_until_they_change_and_reports_carry_what_is_judged_again() {
        let mut audit = Audit::default();
        let key: Key = ("ns".into(), Kind::Deployment, "app".into());
        let judged = |results: Vec<RuleResult>| Some((results, vec!["p".into()], true, "u".into()));
        let fail = result(RuleId::AuditSidecar, PolicyResult::Fail);
        let pass = result(RuleId::EncryptionAtRest, PolicyResult::Pass);
        assert!(apply(
            &mut audit,
            key.clone(),
            judged(vec![fail.clone(), pass.clone()]),
            100
        ));
        // The same results later: nothing changed, nothing to write.
        assert!(!apply(
            &mut audit,
            key.clone(),
            judged(vec![fail.clone(), pass.clone()]),
            200
        ));
        // The fail says something new (its message only): a new result, from now; the pass keeps
        // its time.
        let mut reworded = fail.clone();
        reworded.message.push_str(" (and 1 more)");
        assert!(apply(
            &mut audit,
            key.clone(),
            judged(vec![reworded.clone(), pass.clone()]),
            300
        ));
        let since: Vec<i64> = audit.results["ns"][&key]
            .results
            .iter()
            .map(|k| k.since)
            .collect();
        assert_eq!(since, [300, 100]);
        // What is kept is small; the report gets the message from judging again.
        let objects = namespace_results(
            &audit,
            "ns",
            |_| Some(vec![reworded.clone(), pass.clone()]),
            400,
        );
        assert_eq!(objects.len(), 1);
        assert_eq!(
            objects[0].results,
            [(reworded.clone(), 300), (pass.clone(), 100)]
        );
        assert_eq!(objects[0].uid, "u");
        // Judged again into something the audit has not seen yet: from the time of writing.
        let objects = namespace_results(&audit, "ns", |_| Some(vec![fail.clone()]), 400);
        assert_eq!(objects[0].results, [(fail.clone(), 400)]);
        // Gone since it was judged: left out until the next pass removes it.
        assert!(namespace_results(&audit, "ns", |_| None, 400).is_empty());
        // A compliant object (no results, passes not written): in no report, so judging it,
        // again and again, changes nothing to write.
        let fine: Key = ("ns".into(), Kind::Deployment, "fine".into());
        let none = || Some((vec![], vec!["p".into()], true, "f".into()));
        assert!(!apply(&mut audit, fine.clone(), none(), 100));
        assert!(!apply(&mut audit, fine.clone(), none(), 200));
        assert_eq!(audit.judged_by[&fine].len(), 1, "counted as judged");
        // Out of PHI scope: removed, and its namespace's report changes.
        assert!(apply(
            &mut audit,
            key.clone(),
            Some((vec![], vec![], false, "u".into())),
            500
        ));
        assert!(audit.results.is_empty());
        assert!(!audit.judged_by.contains_key(&key));
    }

    /// Policy names are held while a result or an object refers to them: policies that come
    /// and go (renamed, deleted) do not pile up names.
    #[test]
    fn names_of_policies_nothing_refers_to_are_dropped() {
        let mut audit = Audit::default();
        let judged = |policy: &str| {
            let mut r = result(RuleId::AuditSidecar, PolicyResult::Fail);
            r.policy = policy.into();
            Some((vec![r], vec![policy.to_string()], true, "u".into()))
        };
        for i in 0..50 {
            let key: Key = ("ns".into(), Kind::Deployment, "app".into());
            apply(&mut audit, key, judged(&format!("policy-{i}")), i);
            audit.prune_names();
            assert_eq!(audit.names.len(), 1, "after policy-{i}");
        }
        let kept: Vec<&str> = audit.names.iter().map(|n| &**n).collect();
        assert_eq!(kept, ["policy-49"]);
        // Nothing judged any more: nothing held.
        apply(
            &mut audit,
            ("ns".into(), Kind::Deployment, "app".into()),
            Some((vec![], vec![], false, "u".into())),
            99,
        );
        audit.prune_names();
        assert!(audit.names.is_empty());
    }
}
