//! Writes what the audit found: PolicyReports (server-side apply, only when their results
//! change; stale ones deleted) and each PhiPolicy's `status.audit` (its own field manager, so
//! the `Ready` and `WebhookScope` conditions are untouched).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};

use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use super::Summary;
use crate::report::{write_order, WriteOp, MANAGED_LABEL, MANAGED_VALUE};
use crate::telemetry::Metrics;

const MANAGER: &str = "phi-guard-audit";
/// Namespaces whose reports are written at once (each namespace's writes in order).
const WRITERS: usize = 4;
/// Reports per page when listing what was written before: each page is decoded whole, and a
/// report may hold up to a mebibyte of results (a restart over 100 reports of 325 KB peaked at
/// 113 MB with pages of 20).
const LIST_PAGE: u32 = 4;

pub(super) struct Writer {
    client: Client,
    reports: ApiResource,
    policies: Api<DynamicObject>,
    /// What is in the API server, as last written or listed: (namespace, name) -> a digest of
    /// its results and summary (not the content itself: at 10,000 objects the reports are tens
    /// of megabytes of JSON, several times that as trees). `None` until the first listing.
    written: Option<BTreeMap<(String, String), u64>>,
    /// Keyed at random per process, so report contents cannot be crafted to collide.
    digests: std::collections::hash_map::RandomState,
    /// The PolicyReport CRD is not installed (reported once).
    absent: bool,
    /// Status last written per policy.
    status: BTreeMap<String, Summary>,
    /// The time each result written before took its value (`properties.resultID` ->
    /// `timestamp.seconds`), read from the reports listed when this writer first lists them,
    /// until the audit takes it ([`Writer::recovered_times`]).
    times: Option<HashMap<u64, i64>>,
}

/// A digest of the part of a report that says something (what a rewrite would change): its
/// summary and results, objects hashed with their keys in order, so a report listed from the
/// API server and the same report built here agree whatever the order of their fields.
fn content(digests: &impl BuildHasher, report: &Value) -> u64 {
    fn feed(v: &Value, h: &mut impl Hasher) {
        match v {
            Value::Null => h.write_u8(0),
            Value::Bool(b) => {
                h.write_u8(1);
                b.hash(h);
            }
            Value::Number(n) => {
                h.write_u8(2);
                n.to_string().hash(h);
            }
            Value::String(s) => {
                h.write_u8(3);
                s.hash(h);
            }
            Value::Array(a) => {
                h.write_u8(4);
                h.write_usize(a.len());
                for x in a {
                    feed(x, h);
                }
            }
            Value::Object(m) => {
                h.write_u8(5);
                h.write_usize(m.len());
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_unstable();
                for k in keys {
                    k.hash(h);
                    if let Some(x) = m.get(k) {
                        feed(x, h);
                    }
                }
            }
        }
    }
    let mut h = digests.build_hasher();
    for field in ["summary", "results"] {
        feed(report.get(field).unwrap_or(&Value::Null), &mut h);
    }
    h.finish()
}

/// A report's results' IDs and the times they took their values (results without either are
/// left out: not written by phi-guard, or edited by hand).
fn result_times(report: &Value) -> impl Iterator<Item = (u64, i64)> + '_ {
    report
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let id = r.pointer("/properties/resultID")?.as_str()?.parse().ok()?;
            let since = r.pointer("/timestamp/seconds")?.as_i64()?;
            Some((id, since))
        })
}

impl Writer {
    pub(super) fn new(client: Client) -> Self {
        let reports = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "PolicyReport"),
            "policyreports",
        );
        let pol = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("phiguard.io", "v1alpha1", "PhiPolicy"),
            "phipolicies",
        );
        Writer {
            policies: Api::all_with(client.clone(), &pol),
            client,
            reports,
            written: None,
            digests: std::collections::hash_map::RandomState::new(),
            absent: false,
            status: BTreeMap::new(),
            times: None,
        }
    }

    /// The times the results already in the API server took their values (by result ID), read
    /// when the reports are first listed: a new leader (a restart, a rollout, a failover) gives
    /// a result that has not changed its old time, so its reports render as they were written
    /// and are not written again. Empty when nothing was written before (or the reports could
    /// not be listed); only the first call returns them.
    pub(super) async fn recovered_times(&mut self) -> HashMap<u64, i64> {
        if self.written.is_none() {
            self.times = Some(HashMap::new());
            let _ = self.load().await;
        }
        self.times.take().unwrap_or_default()
    }

    /// The reports phi-guard wrote before (this leader or an earlier one).
    async fn load(&mut self) -> Option<&mut BTreeMap<(String, String), u64>> {
        if self.written.is_none() {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.reports);
            // In pages: the reports of a large cluster are tens of megabytes of JSON, and only
            // their digests are kept.
            let mut m = BTreeMap::new();
            let mut token: Option<String> = None;
            let listed = loop {
                let mut lp = ListParams::default()
                    .labels(&format!("{MANAGED_LABEL}={MANAGED_VALUE}"))
                    .limit(LIST_PAGE);
                if let Some(t) = &token {
                    lp = lp.continue_token(t);
                }
                match api.list(&lp).await {
                    Ok(list) => {
                        for r in &list.items {
                            m.insert(
                                (r.namespace().unwrap_or_default(), r.name_any()),
                                content(&self.digests, &r.data),
                            );
                            if let Some(times) = self.times.as_mut() {
                                times.extend(result_times(&r.data));
                            }
                        }
                        token = list.metadata.continue_.filter(|t| !t.is_empty());
                        if token.is_none() {
                            break Ok(());
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            match listed {
                Ok(()) => {
                    self.written = Some(m);
                    self.absent = false;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    if !self.absent {
                        tracing::warn!("audit: the PolicyReport CRD (wgpolicyk8s.io/v1alpha2) is not installed; results go to PhiPolicy status and metrics only");
                        self.absent = true;
                    }
                    return None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit: could not list PolicyReports");
                    return None;
                }
            }
        }
        self.written.as_mut()
    }

    /// Make each namespace's reports in the API server equal its desired ones, `WRITERS`
    /// namespaces at a time (one namespace's writes stay in [`write_order`]). The reports are
    /// built as they are written, so only a few namespaces' reports exist at once.
    pub(super) async fn write_namespaces(
        &mut self,
        batch: impl Iterator<Item = (String, BTreeMap<String, Value>)>,
        metrics: &Metrics,
    ) {
        let digests = self.digests.clone();
        let client = self.client.clone();
        let reports = self.reports.clone();
        let Some(written) = self.load().await else {
            return;
        };
        let snapshot: &BTreeMap<(String, String), u64> = written;
        let outcomes: Vec<Outcome> = futures::stream::iter(batch)
            .map(|(ns, desired)| {
                let existing: BTreeMap<String, u64> = snapshot
                    .range((ns.clone(), String::new())..)
                    .take_while(|((n, _), _)| n == &ns)
                    .map(|((_, name), d)| (name.clone(), *d))
                    .collect();
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &reports);
                sync_namespace(api, ns, existing, desired, &digests, metrics)
            })
            .buffer_unordered(WRITERS)
            .collect()
            .await;
        let mut failed = false;
        for o in outcomes {
            failed |= o.failed;
            for (name, digest) in o.changes {
                let key = (o.namespace.clone(), name);
                match digest {
                    Some(d) => written.insert(key, d),
                    None => written.remove(&key),
                };
            }
        }
        if failed {
            // Re-list next time: what is in the API server is not known for certain.
            self.written = None;
        }
    }

    /// Write each policy's `status.audit` when its counts changed (and after a full sweep, to
    /// move the last audit time).
    pub(super) async fn write_policy_status(
        &mut self,
        summaries: &BTreeMap<String, Summary>,
        swept: bool,
    ) {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        for (name, s) in summaries {
            if !swept && self.status.get(name) == Some(s) {
                continue;
            }
            let patch = json!({
                "apiVersion": "phiguard.io/v1alpha1",
                "kind": "PhiPolicy",
                "status": {"audit": {
                    "judged": s.judged,
                    "compliant": s.judged - s.violating - s.excepted,
                    "violating": s.violating,
                    "excepted": s.excepted,
                    "violationsByRule": s.by_rule,
                    "lastAuditTime": now,
                }},
            });
            match self
                .policies
                .patch_status(
                    name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await
            {
                Ok(_) => {
                    self.status.insert(name.clone(), s.clone());
                }
                // The built-in baseline has no object to write to.
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    self.status.insert(name.clone(), s.clone());
                }
                Err(e) => {
                    tracing::warn!(policy = %name, error = %e, "audit: could not write PhiPolicy status")
                }
            }
        }
        self.status.retain(|n, _| summaries.contains_key(n));
    }
}

/// What one namespace's writes changed: (report, its new digest or `None` when deleted).
struct Outcome {
    namespace: String,
    changes: Vec<(String, Option<u64>)>,
    failed: bool,
}

/// Make one namespace's reports equal `desired`, given the digests of those written.
async fn sync_namespace(
    api: Api<DynamicObject>,
    ns: String,
    existing: BTreeMap<String, u64>,
    desired: BTreeMap<String, Value>,
    digests: &impl BuildHasher,
    metrics: &Metrics,
) -> Outcome {
    let names: BTreeSet<String> = existing.keys().cloned().collect();
    let mut changes = Vec::new();
    let mut failed = false;
    for op in write_order(&names, &desired) {
        match op {
            WriteOp::Apply(name) => {
                let Some(report) = desired.get(&name) else {
                    continue;
                };
                let want = content(digests, report);
                if existing.get(&name) == Some(&want) {
                    continue;
                }
                match api
                    .patch(
                        &name,
                        &PatchParams::apply(MANAGER).force(),
                        &Patch::Apply(report),
                    )
                    .await
                {
                    Ok(_) => {
                        metrics.report_write("apply");
                        changes.push((name, Some(want)));
                    }
                    Err(e) => {
                        failed = true;
                        tracing::warn!(namespace = %ns, report = %name, error = %e, "audit: could not write a PolicyReport");
                    }
                }
            }
            WriteOp::Delete(name) => match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    metrics.report_write("delete");
                    changes.push((name, None));
                }
                Err(kube::Error::Api(s)) if s.code == 404 => changes.push((name, None)),
                Err(e) => {
                    failed = true;
                    tracing::warn!(namespace = %ns, report = %name, error = %e, "audit: could not delete a PolicyReport");
                }
            },
        }
    }
    Outcome {
        namespace: ns,
        changes,
        failed,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::mock_api::{status, step, MockApi};

    impl Writer {
        /// One namespace's reports, as a pass writes them.
        async fn write_one(&mut self, ns: &str, desired: BTreeMap<String, Value>, m: &Metrics) {
            self.write_namespaces(std::iter::once((ns.to_string(), desired)), m)
                .await;
        }
    }

    const REPORTS: &str = "/apis/wgpolicyk8s.io/v1alpha2/policyreports";

    fn report_path(ns: &str, name: &str) -> String {
        format!("/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports/{name}")
    }

    fn report(ns: &str, name: &str, fail: i64) -> Value {
        json!({
            "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {MANAGED_LABEL: MANAGED_VALUE}},
            "summary": {"fail": fail}, "results": []
        })
    }

    fn list(items: Vec<Value>) -> Value {
        json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReportList",
               "metadata": {"resourceVersion": "1"}, "items": items})
    }

    fn desired(ns: &str, name: &str, fail: i64) -> BTreeMap<String, Value> {
        BTreeMap::from([(name.to_string(), report(ns, name, fail))])
    }

    #[tokio::test]
    async fn reports_are_applied_once_and_stale_ones_deleted() {
        let m = Metrics::new();
        let (client, api) = MockApi::new(vec![
            step("GET", REPORTS, 200, list(vec![report("a", "old", 1)])),
            step(
                "DELETE",
                &report_path("a", "old"),
                200,
                status(200, "Deleted"),
            ),
            step(
                "PATCH",
                &report_path("a", "new"),
                200,
                report("a", "new", 2),
            ),
        ]);
        let mut w = Writer::new(client);
        w.write_one("a", desired("a", "new", 2), &m).await;
        // Unchanged results: no request at all.
        w.write_one("a", desired("a", "new", 2), &m).await;
        assert_eq!(api.unused(), 0);
        let seen = api.requests();
        assert_eq!(seen.len(), 3, "{:?}", api.calls());
        assert!(
            seen[0].query.contains("labelSelector="),
            "only phi-guard's own reports are listed: {}",
            seen[0].query
        );
        assert!(
            seen[2].query.contains("fieldManager=phi-guard-audit")
                && seen[2].query.contains("force=true"),
            "server-side apply as phi-guard-audit: {}",
            seen[2].query
        );
        assert_eq!(seen[2].body["summary"]["fail"], 2);
    }

    #[tokio::test]
    async fn a_new_writer_recovers_the_times_of_written_results_once_and_writes_nothing_unchanged()
    {
        let m = Metrics::new();
        let mut written = report("a", "phi-guard", 1);
        written["results"] = json!([
            {"result": "fail", "timestamp": {"seconds": 1700000000, "nanos": 0},
             "properties": {"resultID": "42"}},
            // Not phi-guard's shape (edited by hand): left out, not an error.
            {"result": "fail", "timestamp": {"seconds": 5}, "properties": {"resultID": "x"}},
            {"result": "fail", "properties": {"resultID": "7"}},
        ]);
        let (client, api) =
            MockApi::new(vec![step("GET", REPORTS, 200, list(vec![written.clone()]))]);
        let mut w = Writer::new(client);
        assert_eq!(
            w.recovered_times().await,
            HashMap::from([(42, 1_700_000_000)])
        );
        assert!(w.recovered_times().await.is_empty(), "given once");
        // The same report rendered again (its times recovered): listed once, not written.
        w.write_one(
            "a",
            BTreeMap::from([("phi-guard".to_string(), written)]),
            &m,
        )
        .await;
        assert_eq!(api.unused(), 0);
        assert_eq!(api.requests().len(), 1, "{:?}", api.calls());
    }

    #[tokio::test]
    async fn a_report_already_gone_is_forgotten_and_a_failed_delete_relists() {
        let m = Metrics::new();
        let (client, api) = MockApi::new(vec![
            step(
                "GET",
                REPORTS,
                200,
                list(vec![report("a", "x", 1), report("a", "y", 1)]),
            ),
            step(
                "DELETE",
                &report_path("a", "x"),
                404,
                status(404, "NotFound"),
            ),
            step(
                "DELETE",
                &report_path("a", "y"),
                500,
                status(500, "InternalError"),
            ),
            // What the API server holds is uncertain after a failure: listed again.
            step("GET", REPORTS, 200, list(vec![report("a", "y", 1)])),
            step(
                "DELETE",
                &report_path("a", "y"),
                200,
                status(200, "Deleted"),
            ),
        ]);
        let mut w = Writer::new(client);
        w.write_one("a", BTreeMap::new(), &m).await;
        w.write_one("a", BTreeMap::new(), &m).await;
        assert_eq!(api.unused(), 0, "{:?}", api.calls());
        assert_eq!(api.requests().len(), 5);
    }

    #[tokio::test]
    async fn without_the_policy_report_crd_nothing_is_written() {
        let m = Metrics::new();
        let (client, api) = MockApi::new(vec![
            step("GET", REPORTS, 404, status(404, "NotFound")),
            step("GET", REPORTS, 404, status(404, "NotFound")),
        ]);
        let mut w = Writer::new(client);
        w.write_one("a", desired("a", "r", 1), &m).await;
        w.write_one("a", desired("a", "r", 1), &m).await;
        assert_eq!(
            api.calls(),
            [format!("GET {REPORTS}"), format!("GET {REPORTS}")],
            "listed again each time (the CRD may be installed later), never written"
        );
    }

    #[tokio::test]
    async fn policy_status_is_patched_when_counts_change_and_retried_after_an_error() {
        const STATUS: &str = "/apis/phiguard.io/v1alpha1/phipolicies/p/status";
        const BASELINE: &str = "/apis/phiguard.io/v1alpha1/phipolicies/hipaa-baseline/status";
        let (client, api) = MockApi::new(vec![
            // The built-in baseline has no object: 404 is accepted, not retried.
            step("PATCH", BASELINE, 404, status(404, "NotFound")),
            step("PATCH", STATUS, 500, status(500, "InternalError")),
            step("PATCH", STATUS, 200, json!({})),
        ]);
        let mut w = Writer::new(client);
        let s = Summary {
            judged: 5,
            violating: 2,
            excepted: 1,
            by_rule: BTreeMap::from([("audit-sidecar".to_string(), 2)]),
        };
        let all = BTreeMap::from([
            ("hipaa-baseline".to_string(), s.clone()),
            ("p".to_string(), s),
        ]);
        w.write_policy_status(&all, false).await;
        w.write_policy_status(&all, false).await;
        // Written and unchanged: nothing more until a full sweep.
        w.write_policy_status(&all, false).await;
        assert_eq!(api.unused(), 0, "{:?}", api.calls());
        let seen = api.requests();
        assert_eq!(seen.len(), 3, "{:?}", api.calls());
        let audit = &seen[2].body["status"]["audit"];
        assert_eq!(audit["judged"], 5);
        assert_eq!(audit["compliant"], 2);
        assert_eq!(audit["violationsByRule"]["audit-sidecar"], 2);
        assert!(
            seen[2].query.contains("fieldManager=phi-guard-audit"),
            "{}",
            seen[2].query
        );
    }

    /// A report listed from the API server and the same report built here agree, whatever the
    /// order of their fields; any change of a result or the summary shows.
    #[test]
    fn digests_see_content_not_field_order() {
        let d = std::collections::hash_map::RandomState::new();
        let built = json!({"metadata": {"name": "r"}, "summary": {"fail": 1, "pass": 0},
                           "results": [{"policy": "p", "result": "fail", "properties": {"resultID": "a"}}]});
        let listed: Value = serde_json::from_str(
            r#"{"results":[{"properties":{"resultID":"a"},"result":"fail","policy":"p"}],
                "summary":{"pass":0,"fail":1},"metadata":{"name":"r","resourceVersion":"9"}}"#,
        )
        .unwrap();
        assert_eq!(content(&d, &built), content(&d, &listed));
        let mut changed = built.clone();
        changed["results"][0]["result"] = json!("pass");
        assert_ne!(content(&d, &built), content(&d, &changed));
        let mut recounted = built.clone();
        recounted["summary"]["fail"] = json!(2);
        assert_ne!(content(&d, &built), content(&d, &recounted));
    }
}
