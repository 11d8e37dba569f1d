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
