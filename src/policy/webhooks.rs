//! Which requests the API server sends phi-guard, derived from the PhiPolicies' scopes, so that
//! an outage touches only PHI work. The webhooks of phi-guard's ValidatingWebhookConfiguration:
//!
//! | webhook | selects | failurePolicy |
//! |---|---|---|
//! | `phi-namespaces.phiguard.io` (one per distinct namespace selector) | every judged kind in PHI namespaces (`namespaceSelector`) | the chart's (Fail) |
//! | `phi-objects.phiguard.io` | workloads, Pods, PVCs, Services, Ingresses outside them whose own or pod-template labels (new or old object) match a workload selector (`matchConditions`, CEL) | the chart's (Fail) |
//! | `namespace-labels.phiguard.io` (one per namespace selector) | UPDATEs of PHI Namespaces, also one that adds or drops the label (`objectSelector` matches old or new) | the chart's (Fail) |
//! | `network.phiguard.io` | Services, Ingresses and NetworkPolicy changes outside PHI namespaces, which can expose PHI pods there | Ignore |
//! | `exceptions.phiguard.io` | PhiException CREATE/UPDATE (expiry, ticket, the policies' maximum) | the chart's (Fail) |
//!
//! With phi-guard down, every write in PHI scope is refused (fail closed) and every other write
//! proceeds; only the last row's checks are skipped meanwhile (a NetworkPolicy loosened around a
//! PHI-labeled pod in a plain namespace during an outage is admitted). The chart renders these
//! entries for the baseline's label; `serve` rewrites them when the policies' scopes differ
//! (`cluster::webhook_scope`). Pure: JSON in, JSON out.

use std::sync::Arc;

use serde_json::{json, Value};

use super::Policy;
use crate::kinds::{self, KindSpec, Op, Scope};
use crate::selector::{Operator, Requirement, Selector};

/// The label every Namespace carries with its own name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Webhook names (the first of each kind; more namespace selectors add `-2`, `-3` ...).
pub const PHI_NAMESPACES: &str = "phi-namespaces.phiguard.io";
pub const PHI_OBJECTS: &str = "phi-objects.phiguard.io";
pub const NAMESPACE_LABELS: &str = "namespace-labels.phiguard.io";
pub const NETWORK: &str = "network.phiguard.io";
pub const EXCEPTIONS: &str = "exceptions.phiguard.io";

/// Webhook rules for the kinds of the registry `pick` selects, with the operations `ops` gives:
/// kinds of one API group with the same operations share a rule, in registry order.
fn rules_for(pick: impl Fn(&KindSpec) -> bool, ops: impl Fn(&KindSpec) -> &[Op]) -> Value {
    type Rule<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, &'a str, Vec<&'a str>);
    let mut rules: Vec<Rule<'_>> = Vec::new();
    for k in kinds::KINDS.iter().filter(|k| pick(k)) {
        let ops: Vec<&str> = ops(k).iter().map(|o| o.as_str()).collect();
        let versions: Vec<&str> = k.versions().collect();
        let scope = match k.scope {
            Scope::Namespaced => "Namespaced",
            Scope::Cluster => "Cluster",
        };
        match rules
            .iter_mut()
            .find(|(g, v, o, sc, _)| *g == k.group && *v == versions && *o == ops && *sc == scope)
        {
            Some(rule) => rule.4.push(k.plural),
            None => rules.push((k.group, versions, ops, scope, vec![k.plural])),
        }
    }
    Value::Array(
        rules
            .into_iter()
            .map(|(group, versions, ops, scope, resources)| {
                json!({"apiGroups": [group], "apiVersions": versions, "operations": ops,
                       "resources": resources, "scope": scope})
            })
            .collect(),
    )
}

/// Every kind phi-guard judges inside a PHI namespace.
fn namespaced_rules() -> Value {
    rules_for(
        |k| k.scope == Scope::Namespaced && !k.admission.is_empty(),
        |k| k.admission,
    )
}

/// Kinds that carry a PHI label themselves (or in their pod template).
fn labeled_rules() -> Value {
    rules_for(|k| k.labeled, |k| k.admission)
}

/// Kinds that can expose PHI pods from outside PHI namespaces.
fn network_rules() -> Value {
    rules_for(|k| k.exposes, |k| k.admission)
}

fn exception_rules() -> Value {
    rules_for(
        |k| k.group == "phiguard.io" && k.kind == "PhiException",
        |k| k.admission,
    )
}

/// PhiExceptions are validated when written (expiry, ticket, the policies' maximum).
fn exceptions_webhook(base: &dyn Fn(&str, Value) -> Value) -> Value {
    let mut w = base(EXCEPTIONS, exception_rules());
    w["namespaceSelector"] = json!({});
    w
}

fn namespace_rules() -> Value {
    rules_for(
        |k| k.group.is_empty() && k.kind == "Namespace",
        |k| k.admission,
    )
}

/// A selector as a Kubernetes `LabelSelector`.
pub fn label_selector(s: &Selector) -> Value {
    let mut out = serde_json::Map::new();
    if !s.match_labels.is_empty() {
        out.insert(
            "matchLabels".into(),
            Value::Object(
                s.match_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    let mut exprs: Vec<Value> = s.requirements.iter().map(requirement).collect();
    if !exprs.is_empty() {
        out.insert(
            "matchExpressions".into(),
            Value::Array(std::mem::take(&mut exprs)),
        );
    }
    Value::Object(out)
}

fn requirement(r: &Requirement) -> Value {
    let op = match r.operator {
        Operator::In => "In",
        Operator::NotIn => "NotIn",
        Operator::Exists => "Exists",
        Operator::DoesNotExist => "DoesNotExist",
    };
    if r.values.is_empty() {
        json!({"key": r.key, "operator": op})
    } else {
        json!({"key": r.key, "operator": op, "values": r.values})
    }
}

/// The one requirement that selects exactly the namespaces `s` does not, when there is one.
fn negation(s: &Selector) -> Option<Requirement> {
    match (s.match_labels.as_slice(), s.requirements.as_slice()) {
        ([(k, v)], []) => Some(Requirement {
            key: k.clone(),
            operator: Operator::NotIn,
            values: vec![v.clone()],
        }),
        ([], [r]) => Some(Requirement {
            key: r.key.clone(),
            operator: match r.operator {
                Operator::In => Operator::NotIn,
                Operator::NotIn => Operator::In,
                Operator::Exists => Operator::DoesNotExist,
                Operator::DoesNotExist => Operator::Exists,
            },
            values: r.values.clone(),
        }),
        _ => None,
    }
}

/// A CEL string literal.
fn cel_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The label-bearing metadata of an object, with the `has()` guards that reach it: own,
/// pod template, CronJob's pod template.
const LABEL_PATHS: [&[&str]; 3] = [
    &["metadata"],
    &["spec", "template", "metadata"],
    &["spec", "jobTemplate", "spec", "template", "metadata"],
];

/// CEL: does the label map at `root.path.labels` satisfy `s`? Every step is guarded, so a
/// missing field is a non-match, never an evaluation error (which failurePolicy Fail would
/// turn into a refusal).
fn cel_selector(root: &str, path: &[&str], s: &Selector) -> String {
    let mut guards = Vec::new();
    let mut at = root.to_string();
    for p in path.iter().chain(std::iter::once(&"labels")) {
        at = format!("{at}.{p}");
        guards.push(format!("has({at})"));
    }
    let present = guards.join(" && ");
    let labels = at;
    let mut terms = Vec::new();
    for (k, v) in &s.match_labels {
        terms.push(format!(
            "({present} && {k} in {labels} && {labels}[{k}] == {v})",
            k = cel_str(k),
            v = cel_str(v)
        ));
    }
    for r in &s.requirements {
        let k = cel_str(&r.key);
        let values = format!(
            "[{}]",
            r.values
                .iter()
                .map(|v| cel_str(v))
                .collect::<Vec<_>>()
                .join(", ")
        );
        terms.push(match r.operator {
            Operator::In => format!("({present} && {k} in {labels} && {labels}[{k}] in {values})"),
            Operator::NotIn => {
                format!("(!({present}) || !({k} in {labels}) || !({labels}[{k}] in {values}))")
            }
            Operator::Exists => format!("({present} && {k} in {labels})"),
            Operator::DoesNotExist => format!("(!({present}) || !({k} in {labels}))"),
        });
    }
    if terms.is_empty() {
        "true".into()
    } else {
        terms.join(" && ")
    }
}

/// CEL: the request's object or old object carries labels that one of `selectors` selects.
pub fn cel_labeled(selectors: &[&Selector]) -> String {
    let mut any = Vec::new();
    for (root, guard) in [
        ("object", "object != null"),
        ("oldObject", "oldObject != null"),
    ] {
        for s in selectors {
            for path in LABEL_PATHS {
                any.push(format!("({guard} && {})", cel_selector(root, path, s)));
            }
        }
    }
    any.join(" || ")
}

/// Distinct selectors, first-seen order.
fn distinct<'a>(it: impl Iterator<Item = &'a Selector>) -> Vec<&'a Selector> {
    let mut out: Vec<&Selector> = Vec::new();
    for s in it {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn numbered(base: &str, i: usize) -> String {
    if i == 0 {
        base.to_string()
    } else {
        let (head, tail) = base.split_once('.').unwrap_or((base, ""));
        format!("{head}-{}.{tail}", i + 1)
    }
}

/// The webhooks for `policies`. `template` is an existing webhook entry (clientConfig,
/// timeoutSeconds, failurePolicy ... are kept from it); `excluded` are namespaces never sent.
pub fn scope_webhooks(
    policies: &[Arc<Policy>],
    template: &Value,
    excluded: &[String],
) -> Vec<Value> {
    let exclusion = json!({"key": NAME_LABEL, "operator": "NotIn", "values": excluded});
    let base = |name: &str, rules: Value| {
        let mut w = template.clone();
        if let Some(o) = w.as_object_mut() {
            for k in ["namespaceSelector", "objectSelector", "matchConditions"] {
                o.remove(k);
            }
            o.insert("name".into(), json!(name));
            o.insert("rules".into(), rules);
        }
        w
    };
    let ns_selectors = distinct(policies.iter().map(|p| &p.scope.namespace_selector));
    let wl_selectors = distinct(policies.iter().map(|p| &p.scope.workload_selector));
    let mut out = Vec::new();

    for (i, s) in ns_selectors.iter().enumerate() {
        let mut sel = label_selector(s);
        push_expr(&mut sel, exclusion.clone());
        let mut w = base(&numbered(PHI_NAMESPACES, i), namespaced_rules());
        w["namespaceSelector"] = sel;
        out.push(w);
    }
    // Every namespace is PHI: nothing is left outside.
    if ns_selectors.iter().any(|s| s.is_empty()) {
        out.push(exceptions_webhook(&base));
        return out;
    }
    // Outside PHI namespaces: when a single requirement names them, say "not there" so no
    // request is judged twice; otherwise a request may reach phi-guard through two webhooks,
    // which is harmless (the same decision).
    let mut outside = json!({"matchExpressions": [exclusion.clone()]});
    if let [only] = ns_selectors.as_slice() {
        if let Some(neg) = negation(only) {
            push_expr(&mut outside, requirement(&neg));
        }
    }
    if !wl_selectors.is_empty() {
        let mut w = base(PHI_OBJECTS, labeled_rules());
        w["namespaceSelector"] = outside.clone();
        w["matchConditions"] = json!([{
            "name": "phi-labeled",
            "expression": cel_labeled(&wl_selectors),
        }]);
        out.push(w);
    }
    for (i, s) in ns_selectors.iter().enumerate() {
        let mut w = base(&numbered(NAMESPACE_LABELS, i), namespace_rules());
        w["objectSelector"] = label_selector(s);
        w["namespaceSelector"] = json!({});
        out.push(w);
    }
    let mut w = base(NETWORK, network_rules());
    w["namespaceSelector"] = outside;
    w["failurePolicy"] = json!("Ignore");
    out.push(w);
    out.push(exceptions_webhook(&base));
    out
}

fn push_expr(selector: &mut Value, expr: Value) {
    if let Some(o) = selector.as_object_mut() {
        let list = o
            .entry("matchExpressions")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(a) = list.as_array_mut() {
            a.push(expr);
        }
    }
}

/// The namespaces a live webhook entry excludes by name (the chart's list).
pub fn excluded_namespaces(webhook: &Value) -> Vec<String> {
    webhook
        .pointer("/namespaceSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| {
            e.get("key").and_then(Value::as_str) == Some(NAME_LABEL)
                && e.get("operator").and_then(Value::as_str) == Some("NotIn")
        })
        .flat_map(|e| {
            e.get("values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    fn template() -> Value {
        json!({
            "name": "phi-namespaces.phiguard.io",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 10,
            "clientConfig": {"url": "https://127.0.0.1:8443/validate", "caBundle": "Q0E="},
            "namespaceSelector": {"matchExpressions": [
                {"key": NAME_LABEL, "operator": "NotIn", "values": ["kube-system", "phi-guard"]}]},
            "rules": [],
        })
    }

    fn names(w: &[Value]) -> Vec<&str> {
        w.iter().filter_map(|w| w["name"].as_str()).collect()
    }

    #[test]
    fn the_baseline_gets_four_webhooks_and_keeps_the_client_config() {
        let t = template();
        let excluded = excluded_namespaces(&t);
        assert_eq!(excluded, ["kube-system", "phi-guard"]);
        let w = scope_webhooks(&[Arc::new(baseline())], &t, &excluded);
        assert_eq!(
            names(&w),
            [
                PHI_NAMESPACES,
                PHI_OBJECTS,
                NAMESPACE_LABELS,
                NETWORK,
                EXCEPTIONS
            ]
        );
        for hook in &w {
            assert_eq!(hook["clientConfig"]["caBundle"], "Q0E=");
            assert_eq!(hook["timeoutSeconds"], 10);
        }
        assert_eq!(
            w[0]["namespaceSelector"],
            json!({"matchLabels": {PHI.0: PHI.1}, "matchExpressions": [
                {"key": NAME_LABEL, "operator": "NotIn", "values": ["kube-system", "phi-guard"]}]})
        );
        assert_eq!(w[0]["failurePolicy"], "Fail");
        // Outside PHI namespaces, said with one requirement: nothing is judged twice.
        let outside = json!({"matchExpressions": [
            {"key": NAME_LABEL, "operator": "NotIn", "values": ["kube-system", "phi-guard"]},
            {"key": PHI.0, "operator": "NotIn", "values": [PHI.1]}]});
        assert_eq!(w[1]["namespaceSelector"], outside);
        assert_eq!(w[3]["namespaceSelector"], outside);
        assert_eq!(w[3]["failurePolicy"], "Ignore");
        assert_eq!(
            w[2]["objectSelector"],
            json!({"matchLabels": {PHI.0: PHI.1}})
        );
        let cel = w[1]["matchConditions"][0]["expression"]
            .as_str()
            .unwrap_or_default();
        assert!(
            cel.contains("has(object.spec.template.metadata.labels)"),
            "{cel}"
        );
        assert!(cel.contains("oldObject != null"), "{cel}");
        assert!(
            cel.contains("'phiguard.io/data-classification' in"),
            "{cel}"
        );
    }

    /// Strimzi's resources are matched at `v1` and at `v1beta2` (which most clusters serve
    /// alone); a rule naming only `v1` would match nothing there.
    #[test]
    fn kinds_served_at_older_versions_are_matched_at_each() {
        let rules = namespaced_rules();
        let kafka = rules
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["apiGroups"][0] == "kafka.strimzi.io")
            .expect("a kafka.strimzi.io rule");
        assert_eq!(kafka["apiVersions"], json!(["v1", "v1beta2"]));
        assert_eq!(kafka["resources"], json!(["kafkas", "kafkanodepools"]));
        let cnpg = rules
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["apiGroups"][0] == "postgresql.cnpg.io")
            .expect("a postgresql.cnpg.io rule");
        assert_eq!(cnpg["apiVersions"], json!(["v1"]));
    }

    #[test]
    fn several_namespace_selectors_get_one_webhook_each() {
        let a = policy_with(|s| {
            s.scope.namespace_selector.match_labels =
                Some([("team".to_string(), "records".to_string())].into());
        });
        let w = scope_webhooks(&[Arc::new(baseline()), Arc::new(a)], &template(), &[]);
        assert_eq!(
            names(&w),
            [
                PHI_NAMESPACES,
                "phi-namespaces-2.phiguard.io",
                PHI_OBJECTS,
                NAMESPACE_LABELS,
                "namespace-labels-2.phiguard.io",
                NETWORK,
                EXCEPTIONS
            ]
        );
        // Two selectors cannot be negated as one: only the exclusion remains.
        assert_eq!(
            w[2]["namespaceSelector"]["matchExpressions"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn an_empty_namespace_selector_covers_everything() {
        let all = policy_with(|s| s.scope.namespace_selector = Default::default());
        let w = scope_webhooks(&[Arc::new(all)], &template(), &["kube-system".into()]);
        assert_eq!(names(&w), [PHI_NAMESPACES, EXCEPTIONS]);
        assert_eq!(
            w[0]["namespaceSelector"],
            json!({"matchExpressions": [{"key": NAME_LABEL, "operator": "NotIn", "values": ["kube-system"]}]})
        );
    }

    #[test]
    fn cel_quotes_and_guards() {
        let s = Selector {
            match_labels: vec![("it's".into(), "a\\b".into())],
            requirements: vec![Requirement {
                key: "tier".into(),
                operator: Operator::NotIn,
                values: vec!["x".into()],
            }],
        };
        let c = cel_selector("object", &["metadata"], &s);
        assert!(c.contains(r"'it\'s'"), "{c}");
        assert!(c.contains(r"'a\\b'"), "{c}");
        assert!(
            c.starts_with("(has(object.metadata) && has(object.metadata.labels) &&"),
            "{c}"
        );
        assert!(
            c.contains("(!(has(object.metadata) && has(object.metadata.labels)) ||"),
            "{c}"
        );
        assert_eq!(
            cel_selector("object", &["metadata"], &Selector::default()),
            "true"
        );
    }
}
