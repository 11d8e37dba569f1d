//! Shared evaluation (`evaluate`) gives the decision judging every policy on its own gives, over
//! varied objects, cluster states and policy sets (pseudo-random, seeded, reproducible).

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{json, Value};

use super::evaluate;
use crate::cluster::ClusterState;
use crate::fixtures::{self, PHI};
use crate::object::{Kind, Object};
use crate::policy::{hipaa_baseline, in_scope, Mode, PhiPolicy, Policy, PolicySet};
use crate::rules::{self, RuleContext};
use crate::verdict::Decision;
use crate::view::{ClusterView, ServiceInfo};

/// The engine before policies shared work: every policy in scope runs every rule.
fn evaluate_each(w: &Object, cluster: &dyn ClusterView, policies: &[Arc<Policy>]) -> Decision {
    let ns = cluster.namespace(&w.namespace);
    let mut findings = Vec::new();
    let mut names = Vec::new();
    for policy in policies {
        if !in_scope(w, policy, cluster, ns.as_deref()) {
            continue;
        }
        names.push(policy.name.clone());
        let ctx = RuleContext::new(cluster, policy, ns.clone());
        let start = findings.len();
        rules::run_all(w, &ctx, &mut findings);
        for f in &mut findings[start..] {
            f.policy = policy.name.clone();
        }
    }
    Decision::from_findings(!names.is_empty(), names, findings)
}

/// xorshift64*: enough variety for a property test, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn flip(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        match_expressions: None,
    }
}

/// One of a few scopes and rule settings, so that a set holds equal and different ones.
fn random_policy(rng: &mut Rng, name: String) -> PhiPolicy {
    let mut p = hipaa_baseline();
    p.metadata.name = Some(name);
    let s = &mut p.spec;
    // Scopes vary independently of rule settings, and the settings come from a small pool,
    // so that policies with equal settings and different scopes are common.
    s.scope.workload_selector = match rng.below(3) {
        0 => selector(&[PHI]),
        1 => selector(&[("team", "billing")]),
        _ => selector(&[("app", "audit")]),
    };
    s.scope.namespace_selector = match rng.below(3) {
        0 => selector(&[PHI]),
        1 => selector(&[("never", "x")]),
        _ => selector(&[("tier", "records")]),
    };
    if rng.below(4) == 0 {
        s.scope.excluded_namespaces = vec!["records".into()];
    }
    match rng.below(4) {
        0 => {}
        1 => s.mode = Mode::Warn,
        2 => {
            s.audit_sidecar.enabled = false;
            s.least_privilege.enabled = true;
            s.integrity.enabled = true;
        }
        _ => {
            s.mode = Mode::Audit;
            s.contingency.enabled = true;
            s.entity_authentication.enabled = true;
            s.encryption_in_transit.require_ingress_tls = false;
        }
    }
    p
}

fn state() -> ClusterState {
    let s = ClusterState::new();
    fixtures::add_namespace(&s, "ehr", json!({ PHI.0: PHI.1 }), json!({}));
    fixtures::add_namespace(&s, "records", json!({ "tier": "records" }), json!({}));
    fixtures::add_namespace(&s, "web", json!({}), json!({}));
    for ns in ["ehr", "records", "web"] {
        s.services.insert(
            ns.into(),
            "audit-log".into(),
            ServiceInfo {
                namespace: ns.into(),
                name: "audit-log".into(),
                selector: Some(fixtures::labels(json!({ "app": "audit" }))),
                ports: Vec::new(),
                identity: None,
            },
        );
        fixtures::add_pod(&s, ns, "audit-0", &[("app", "audit")]);
        fixtures::add_pod(&s, ns, "audit-1", &[("app", "audit"), PHI]);
        fixtures::add_pod(&s, ns, "billing-0", &[("team", "billing"), PHI]);
    }
    s
}

fn pod_spec(rng: &mut Rng) -> Value {
    let mut c = json!({ "name": "app", "image": "app:1" });
    if rng.flip() {
        c["env"] = json!([{ "name": "AUDIT_URL", "value": "http://audit-log:8080/ingest" }]);
    }
    if rng.flip() {
        c["image"] =
            json!("app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    }
    let mut spec = json!({ "containers": [c] });
    if rng.flip() {
        spec["volumes"] = json!([{ "name": "data", "hostPath": { "path": "/data" } }]);
    }
    spec
}

fn random_object(rng: &mut Rng) -> Object {
    let ns = ["ehr", "records", "web"][rng.below(3)];
    let own = match rng.below(4) {
        0 => json!({ PHI.0: PHI.1 }),
        1 => json!({ "team": "billing" }),
        2 => json!({ "app": "audit" }),
        _ => json!({}),
    };
    match rng.below(4) {
        0 => {
            let template = own.clone();
            fixtures::deployment(ns, own, template, pod_spec(rng))
        }
        1 => fixtures::object(
            Kind::Pod,
            Some(ns),
            json!({ "metadata": { "name": "p", "labels": own }, "spec": pod_spec(rng) }),
        ),
        2 => fixtures::object(
            Kind::Service,
            Some(ns),
            json!({ "metadata": { "name": "s", "labels": own },
                    "spec": { "selector": { "app": "audit" }, "ports": [{ "port": 80 }] } }),
        ),
        _ => fixtures::object(
            Kind::Ingress,
            Some(ns),
            json!({ "metadata": { "name": "i", "labels": own },
                    "spec": { "rules": [{ "host": "x.example", "http": { "paths": [{ "path": "/",
                      "pathType": "Prefix", "backend": { "service": { "name": "audit-log",
                      "port": { "number": 80 } } } }] } }] } }),
        ),
    }
}

#[test]
fn shared_evaluation_decides_as_each_policy_alone() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let state = state();
    let mut shared_runs = 0;
    let mut phi = 0;
    for round in 0..300 {
        let n = 1 + rng.below(8);
        let specs: Vec<PhiPolicy> = (0..n)
            .map(|i| random_policy(&mut rng, format!("p{round}-{i}")))
            .collect();
        let set = PolicySet::build(&specs);
        assert_eq!(set.policies.len(), n, "{:?}", set.rejected);
        for _ in 0..5 {
            let w = random_object(&mut rng);
            let shared = evaluate(&w, &state, &set.policies);
            let each = evaluate_each(&w, &state, &set.policies);
            assert_eq!(shared, each, "round {round}: {w:?}");
            phi += usize::from(shared.phi);
            shared_runs += usize::from(!shared.findings.is_empty());
        }
    }
    // The generator must reach the cases that matter: PHI objects with findings.
    assert!(
        phi > 300 && shared_runs > 200,
        "phi {phi}, with findings {shared_runs}"
    );
}

/// Copies of one policy under other names run the rules once: the decision names them all.
#[test]
fn copies_of_a_policy_are_named_and_judged_once() {
    let specs: Vec<PhiPolicy> = (0..50)
        .map(|i| {
            let mut p = hipaa_baseline();
            p.metadata.name = Some(format!("copy-{i:02}"));
            p
        })
        .collect();
    let set = PolicySet::build(&specs);
    assert!(set
        .policies
        .iter()
        .all(|p| Arc::ptr_eq(&p.rules_key, &set.policies[0].rules_key)));
    let state = state();
    let w = fixtures::deployment(
        "ehr",
        json!({ PHI.0: PHI.1 }),
        json!({}),
        fixtures::app_spec(),
    );
    let d = evaluate(&w, &state, &set.policies);
    assert_eq!(d.policies.len(), 50);
    assert!(!d.allowed);
    assert!(d.findings.iter().all(|f| f.policy == "copy-00"));
    assert_eq!(d, evaluate_each(&w, &state, &set.policies));
}
