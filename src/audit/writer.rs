//! Writes what the audit found: PolicyReports (server-side apply, only when their results
//! change; stale ones deleted) and each PhiPolicy's `status.audit` (its own field manager, so
//! the `Ready` and `WebhookScope` conditions are untouched).

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use super::Summary;
use crate::report::{write_order, WriteOp, MANAGED_LABEL, MANAGED_VALUE};
use crate::telemetry::Metrics;

const MANAGER: &str = "phi-guard-audit";

pub(super) struct Writer {
    client: Client,
    reports: ApiResource,
    policies: Api<DynamicObject>,
    /// What is in the API server, as last written or listed: (namespace, name) -> results and
    /// summary. `None` until the first listing.
    written: Option<BTreeMap<(String, String), Value>>,
    /// The PolicyReport CRD is not installed (reported once).
    absent: bool,
    /// Status last written per policy.
    status: BTreeMap<String, Summary>,
}

/// The part of a report that says something (what a rewrite would change).
fn content(report: &Value) -> Value {
    json!({"summary": report.get("summary"), "results": report.get("results")})
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
            absent: false,
            status: BTreeMap::new(),
        }
    }

    /// The reports phi-guard wrote before (this leader or an earlier one).
    async fn load(&mut self) -> Option<&mut BTreeMap<(String, String), Value>> {
        if self.written.is_none() {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.reports);
            let lp = ListParams::default().labels(&format!("{MANAGED_LABEL}={MANAGED_VALUE}"));
            match api.list(&lp).await {
                Ok(list) => {
                    let mut m = BTreeMap::new();
                    for r in list.items {
                        let v = serde_json::to_value(&r).unwrap_or(Value::Null);
                        m.insert(
                            (r.namespace().unwrap_or_default(), r.name_any()),
                            content(&v),
                        );
                    }
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

    /// Make the namespace's reports in the API server equal `desired`.
    pub(super) async fn write_namespace(
        &mut self,
        ns: &str,
        desired: BTreeMap<String, Value>,
        metrics: &Metrics,
    ) {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &self.reports);
        let Some(written) = self.load().await else {
            return;
        };
        let existing: BTreeSet<String> = written
            .keys()
            .filter(|(n, _)| n == ns)
            .map(|(_, name)| name.clone())
            .collect();
        let mut failed = false;
        for op in write_order(&existing, &desired) {
            match op {
                WriteOp::Apply(name) => {
                    let Some(report) = desired.get(&name) else {
                        continue;
                    };
                    let key = (ns.to_string(), name.clone());
                    let want = content(report);
                    if written.get(&key) == Some(&want) {
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
                            written.insert(key, want);
                        }
                        Err(e) => {
                            failed = true;
                            tracing::warn!(namespace = ns, report = %name, error = %e, "audit: could not write a PolicyReport");
                        }
                    }
                }
                WriteOp::Delete(name) => match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        metrics.report_write("delete");
                        written.remove(&(ns.to_string(), name));
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        written.remove(&(ns.to_string(), name));
                    }
                    Err(e) => {
                        failed = true;
                        tracing::warn!(namespace = ns, report = %name, error = %e, "audit: could not delete a PolicyReport");
                    }
                },
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::mock_api::{status, step, MockApi};

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
        w.write_namespace("a", desired("a", "new", 2), &m).await;
        // Unchanged results: no request at all.
        w.write_namespace("a", desired("a", "new", 2), &m).await;
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
        w.write_namespace("a", BTreeMap::new(), &m).await;
        w.write_namespace("a", BTreeMap::new(), &m).await;
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
        w.write_namespace("a", desired("a", "r", 1), &m).await;
        w.write_namespace("a", desired("a", "r", 1), &m).await;
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
}
