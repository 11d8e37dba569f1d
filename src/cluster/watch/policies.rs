//! The PhiPolicy watch: every policy parsed (or why not), the policy set rebuilt on each
//! change, and each policy's status conditions written back.

use super::*;
use crate::policy::PhiPolicySpec;
use std::collections::BTreeSet;

/// One PhiPolicy as last seen: parsed (or why not), and what its status says now.
pub(super) struct PolicyEntry {
    parsed: Result<PhiPolicy, String>,
    generation: Option<i64>,
    status: Option<Value>,
}

/// Keeps every PhiPolicy, rebuilds the policy set on each change, and reports each policy's
/// acceptance in its `Ready` condition.
pub(super) struct PolicySink {
    ctx: Ctx,
    api: Api<DynamicObject>,
    policies: BTreeMap<String, PolicyEntry>,
    buffer: BTreeMap<String, PolicyEntry>,
    /// Status last written per policy (generation, ready, message): a write in flight is not
    /// repeated (nor its warning logged again) while other policies' events arrive.
    written: BTreeMap<String, (Option<i64>, bool, String)>,
    /// What the policy set in force was built from. A status write (the audit's counts, the
    /// Ready and WebhookScope conditions) changes a PhiPolicy but not its meaning: the set is
    /// kept, so nothing downstream (the audit re-judging everything on a new set) reacts to
    /// phi-guard's own writes.
    applied: Option<Vec<(String, Result<PhiPolicySpec, String>)>>,
}

impl PolicySink {
    pub(super) fn new(ctx: Ctx, ar: ApiResource) -> PolicySink {
        let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
        PolicySink {
            ctx,
            api,
            policies: BTreeMap::new(),
            buffer: BTreeMap::new(),
            written: BTreeMap::new(),
            applied: None,
        }
    }

    fn entry(obj: &DynamicObject) -> PolicyEntry {
        let parsed = to_value(obj).and_then(|v| {
            serde_json::from_value::<PhiPolicy>(v)
                .map_err(|e| format!("not a valid PhiPolicy: {e}"))
        });
        PolicyEntry {
            parsed,
            generation: obj.metadata.generation,
            status: obj.data.get("status").cloned(),
        }
    }

    /// What the policies mean: names and specs (or why not), without metadata and status.
    pub(super) fn inputs(&self) -> Vec<(String, Result<PhiPolicySpec, String>)> {
        self.policies
            .iter()
            .map(|(name, e)| {
                let spec = e.parsed.as_ref().map(|p| p.spec.clone());
                (name.clone(), spec.map_err(Clone::clone))
            })
            .collect()
    }

    /// Swap in the policy set built from the current map when what the policies say changed;
    /// update statuses that changed.
    fn rebuild(&mut self) {
        let inputs = self.inputs();
        if self.applied.as_ref() != Some(&inputs) {
            let changed = changed_names(self.applied.as_deref().unwrap_or(&[]), &inputs);
            self.swap_set(&changed);
            self.applied = Some(inputs);
        }
        self.write_conditions();
    }

    fn swap_set(&mut self, changed: &[String]) {
        let valid: Vec<PhiPolicy> = self
            .policies
            .values()
            .filter_map(|e| e.parsed.as_ref().ok().cloned())
            .collect();
        let mut set = effective_policies(&valid);
        for (name, e) in &self.policies {
            if let Err(err) = &e.parsed {
                set.rejected.push(RejectedPolicy {
                    name: name.clone(),
                    error: err.clone(),
                });
            }
        }
        let active: Vec<String> = set.policies.iter().map(|p| p.name.clone()).collect();
        // The policies whose meaning changed (added, edited, removed): what started this set,
        // and so what starts the audit's next full pass. At most 20 names are logged.
        let mut named: Vec<&str> = changed.iter().take(20).map(String::as_str).collect();
        if changed.len() > named.len() {
            named.push("…");
        }
        tracing::info!(
            active = %active.join(","),
            rejected = set.rejected.len(),
            changed = %named.join(","),
            "PhiPolicies applied"
        );
        self.ctx.state.set_policies(set);
    }

    /// Each policy's `Ready` condition, written where it does not say what it should.
    fn write_conditions(&mut self) {
        // The set in force lists every rejected policy (unparsable or invalid) with its reason.
        let errors: BTreeMap<String, String> = self
            .ctx
            .state
            .policies()
            .rejected
            .iter()
            .map(|r| (r.name.clone(), r.error.clone()))
            .collect();
        for (name, e) in &self.policies {
            let desired = match errors.get(name.as_str()) {
                Some(err) => Condition::rejected(err),
                None => Condition::accepted(),
            };
            if desired.matches(e.status.as_ref(), e.generation) {
                continue;
            }
            let stamp = (e.generation, desired.ready, desired.message.clone());
            if self.written.get(name) == Some(&stamp) {
                continue;
            }
            self.written.insert(name.clone(), stamp);
            if let Some(err) = errors.get(name.as_str()) {
                // Policies are configuration, not PHI: the error is logged as is.
                self.ctx.metrics.watch_skip("PhiPolicy");
                tracing::warn!(policy = %name, error = %err, "PhiPolicy rejected; skipped");
            }
            let patch = desired.patch(e.status.as_ref(), e.generation);
            let api = self.api.clone();
            let name = name.clone();
            // A write to the API server, off the request path and off the watch loop.
            tokio::spawn(async move {
                // Server-side apply of the Ready condition only: the WebhookScope condition has
                // its own field manager (cluster::webhook_scope), and conditions are a map by type.
                if let Err(err) = api
                    .patch_status(
                        &name,
                        &PatchParams::apply("phi-guard").force(),
                        &Patch::Apply(&patch),
                    )
                    .await
                {
                    tracing::warn!(policy = %name, error = %err, "could not update PhiPolicy status");
                }
            });
        }
    }
}

/// The names whose spec (or parse error) differs between two sets of inputs, both sorted by name.
pub(super) fn changed_names(
    before: &[(String, Result<PhiPolicySpec, String>)],
    after: &[(String, Result<PhiPolicySpec, String>)],
) -> Vec<String> {
    let old: BTreeMap<&str, &Result<PhiPolicySpec, String>> =
        before.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let new: BTreeMap<&str, &Result<PhiPolicySpec, String>> =
        after.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (n, s) in &new {
        if old.get(n) != Some(s) {
            names.insert(n);
        }
    }
    names.extend(old.keys().filter(|n| !new.contains_key(*n)));
    names.into_iter().map(str::to_string).collect()
}

/// The `Ready` condition phi-guard writes.
pub(super) struct Condition {
    ready: bool,
    reason: &'static str,
    message: String,
}

impl Condition {
    pub(super) fn accepted() -> Condition {
        Condition {
            ready: true,
            reason: "Accepted",
            message: "phi-guard applies this policy".into(),
        }
    }

    pub(super) fn rejected(error: &str) -> Condition {
        // Conditions' messages are limited to 32768 bytes.
        let mut message: String = error.chars().take(1024).collect();
        if message.len() < error.len() {
            message.push('…');
        }
        Condition {
            ready: false,
            reason: "Invalid",
            message,
        }
    }

    pub(super) fn status_str(&self) -> &'static str {
        if self.ready {
            "True"
        } else {
            "False"
        }
    }

    pub(super) fn current(status: Option<&Value>) -> Option<&Value> {
        status?
            .get("conditions")?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
    }

    /// Does the object's status already say this, for this generation?
    pub(super) fn matches(&self, status: Option<&Value>, generation: Option<i64>) -> bool {
        let Some(c) = Condition::current(status) else {
            return false;
        };
        let observed = status
            .and_then(|s| s.get("observedGeneration"))
            .and_then(Value::as_i64);
        c.get("status").and_then(Value::as_str) == Some(self.status_str())
            && c.get("reason").and_then(Value::as_str) == Some(self.reason)
            && c.get("message").and_then(Value::as_str) == Some(self.message.as_str())
            && observed == generation
    }

    /// A server-side apply patch setting the condition (the transition time moves only when
    /// the status value changes).
    pub(super) fn patch(&self, status: Option<&Value>, generation: Option<i64>) -> Value {
        let previous = Condition::current(status);
        let since = previous
            .filter(|c| c.get("status").and_then(Value::as_str) == Some(self.status_str()))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(k8s_openapi::jiff::Timestamp::now().to_string()));
        let mut condition = json!({
            "type": "Ready",
            "status": self.status_str(),
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": since,
        });
        if let Some(g) = generation {
            condition["observedGeneration"] = json!(g);
        }
        let mut st = json!({ "conditions": [condition] });
        if let Some(g) = generation {
            st["observedGeneration"] = json!(g);
        }
        json!({ "apiVersion": "phiguard.io/v1alpha1", "kind": "PhiPolicy", "status": st })
    }
}

impl Sink<DynamicObject> for PolicySink {
    fn init(&mut self) {
        self.buffer.clear();
    }
    fn init_apply(&mut self, obj: DynamicObject) -> Result<(), String> {
        self.buffer.insert(obj.name_any(), PolicySink::entry(&obj));
        Ok(())
    }
    fn init_done(&mut self) {
        self.policies = std::mem::take(&mut self.buffer);
        self.rebuild();
    }
    fn apply(&mut self, obj: DynamicObject) -> Result<(), String> {
        self.policies
            .insert(obj.name_any(), PolicySink::entry(&obj));
        self.rebuild();
        Ok(())
    }
    fn delete(&mut self, obj: DynamicObject) {
        self.policies.remove(&obj.name_any());
        self.written.remove(&obj.name_any());
        self.rebuild();
    }
}
