//! Generated default deny: with `spec.networkSegmentation.generateDefaultDeny` a PhiPolicy
//! asks phi-guard to create a NetworkPolicy `phi-guard-default-deny` in every namespace it makes
//! PHI by the namespace's labels (or name): every pod isolated for ingress and egress, egress
//! allowed only to port 53 (UDP and TCP) so names still resolve.
//!
//! NetworkPolicies add up: a default deny only isolates pods, it never narrows what another
//! policy allows. So it adds nothing where the namespace's own policies already isolate every pod
//! both ways, and there it would even add something unwanted (DNS egress); phi-guard creates
//! none there. It never writes over an object of that name and never changes or deletes one it
//! created: removing isolation is a person's decision, and the Namespace owns the policy, so it
//! goes with the namespace. What each policy's namespaces have goes to `status.defaultDeny`.
//!
//! One writer: the replica holding the Lease `phi-guard-default-deny`, contended only while
//! some policy asks for generation. It reads the webhook's watch caches (namespaces, their
//! NetworkPolicies, the policy set) every [`POLL`]; the API server is called only to create a
//! missing policy (after one GET of its Namespace, for the owner reference) and to write status
//! that changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::Client;
use serde_json::json;

use super::lease::{self, Elector};
use super::ClusterState;
use crate::policy::{DefaultDenyStatus, NotIsolated, PolicySet};
use crate::telemetry::{Metrics, Readiness};
use crate::view::network_policy::{GENERATED_LABEL, GENERATED_VALUE};
use crate::view::NetworkPolicyInfo;

/// The generated NetworkPolicy's name.
pub(crate) const POLICY_NAME: &str = "phi-guard-default-deny";
/// The Lease of the one writer, and its field manager.
pub(crate) const LEASE_NAME: &str = "phi-guard-default-deny";
const MANAGER: &str = "phi-guard-default-deny";
/// How often the caches are compared with what should exist.
const POLL: Duration = Duration::from_secs(2);
/// After a refused create, the next attempt in that namespace.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// A policy just created shows in the watch cache within moments; until then it is pending.
const PENDING_FOR: Duration = Duration::from_secs(15);
/// Namespaces listed in `status.defaultDeny.notIsolated`.
const LISTED: usize = 100;

/// What a PHI namespace has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// phi-guard's generated policy isolates every pod both ways.
    Generated,
    /// The namespace's own policies isolate every pod both ways: nothing to generate.
    IsolatedByUser,
    /// Neither: generate.
    Missing,
    /// An object named [`POLICY_NAME`] exists that does not isolate every pod both ways: it is
    /// left alone.
    NameTaken,
}

/// What should be: the policies asking for generation with their PHI namespaces, and what each
/// of those namespaces has.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    pub(crate) policies: BTreeMap<String, Vec<String>>,
    pub(crate) namespaces: BTreeMap<String, Found>,
}

/// Compare the caches with what the policies ask for.
pub(crate) fn plan(state: &ClusterState, set: &PolicySet) -> Plan {
    let mut out = Plan::default();
    let wanting: Vec<_> = set
        .policies
        .iter()
        .filter(|p| {
            p.network_segmentation
                .as_ref()
                .is_some_and(|c| c.generate_default_deny)
        })
        .collect();
    if wanting.is_empty() {
        return out;
    }
    for p in &wanting {
        out.policies.insert(p.name.clone(), Vec::new());
    }
    let mut namespaces = state.namespaces.values();
    namespaces.sort_by(|a, b| a.name.cmp(&b.name));
    for ns in namespaces {
        let mut phi = false;
        for p in &wanting {
            if p.scope.covers(&ns.name, Some(&ns.labels), &[]) {
                phi = true;
                if let Some(list) = out.policies.get_mut(&p.name) {
                    list.push(ns.name.clone());
                }
            }
        }
        if phi {
            let found = found(&state.network_policies.list(&ns.name));
            out.namespaces.insert(ns.name.clone(), found);
        }
    }
    out
}

/// What a namespace's NetworkPolicies amount to, for generation.
pub(crate) fn found(policies: &[Arc<NetworkPolicyInfo>]) -> Found {
    let wide = |p: &NetworkPolicyInfo| p.pod_selector.is_empty() && !p.invalid_selector;
    let ingress = policies.iter().any(|p| wide(p) && p.isolates_ingress);
    let egress = policies.iter().any(|p| wide(p) && p.isolates_egress);
    match policies.iter().find(|p| p.name == POLICY_NAME) {
        Some(p) if p.generated && wide(p) && p.isolates_ingress && p.isolates_egress => {
            Found::Generated
        }
        _ if ingress && egress => Found::IsolatedByUser,
        Some(_) => Found::NameTaken,
        None => Found::Missing,
    }
}

/// The NetworkPolicy phi-guard creates in `namespace` (owned by the Namespace with `uid`).
pub(crate) fn generated_policy(namespace: &str, uid: &str, by: &[String]) -> NetworkPolicy {
    let value = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": POLICY_NAME,
            "namespace": namespace,
            "labels": {
                GENERATED_LABEL: GENERATED_VALUE,
                "app.kubernetes.io/managed-by": "phi-guard",
            },
            "annotations": {
                "phiguard.io/generated-for": by.join(","),
                "phiguard.io/note": "Generated by phi-guard (PhiPolicy spec.networkSegmentation.generateDefaultDeny): every pod isolated for ingress and egress, egress to port 53 for DNS. Allow what each workload needs with NetworkPolicies of your own; phi-guard never edits or deletes this one.",
            },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Namespace",
                "name": namespace,
                "uid": uid,
            }],
        },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [{"ports": [
                {"protocol": "UDP", "port": 53},
                {"protocol": "TCP", "port": 53},
            ]}],
        },
    });
    // A literal of a well-known type: it cannot fail to deserialize.
    serde_json::from_value(value).unwrap_or_default()
}

/// Each policy's status from the plan and the namespaces whose creation failed or is pending.
pub(crate) fn statuses(
    plan: &Plan,
    failed: &HashMap<String, (Instant, String)>,
    pending: &HashMap<String, Instant>,
) -> BTreeMap<String, DefaultDenyStatus> {
    let mut out = BTreeMap::new();
    for (policy, namespaces) in &plan.policies {
        let mut st = DefaultDenyStatus {
            namespaces: i64::try_from(namespaces.len()).unwrap_or(i64::MAX),
            ..Default::default()
        };
        for ns in namespaces {
            let (reason, message) = match plan.namespaces.get(ns) {
                Some(Found::Generated) => {
                    st.generated += 1;
                    continue;
                }
                Some(Found::IsolatedByUser) => {
                    st.isolated_by_user += 1;
                    continue;
                }
                Some(Found::NameTaken) => (
                    "NameTaken",
                    format!("a NetworkPolicy {POLICY_NAME} that does not isolate every pod for ingress and egress exists; phi-guard leaves it alone"),
                ),
                _ => match (failed.get(ns), pending.contains_key(ns)) {
                    (Some((_, why)), _) => ("CreateFailed", why.clone()),
                    (None, true) => ("Pending", String::new()),
                    (None, false) => ("Pending", "not yet created".to_string()),
                },
            };
            if st.not_isolated.len() < LISTED {
                st.not_isolated.push(NotIsolated {
                    namespace: ns.clone(),
                    reason: reason.to_string(),
                    message,
                });
            }
        }
        out.insert(policy.clone(), st);
    }
    out
}

/// Why the API server refused, in words that carry no object content.
fn refusal(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("the API server answered {} {}", s.code, s.reason),
        _ => "the API server could not be reached".to_string(),
    }
}

/// How the generator runs.
pub(crate) struct Options {
    /// Create policies (`--generate-default-deny`); when false, only warn that policies ask.
    pub(crate) generate: bool,
    /// Namespace of the Lease (phi-guard's own).
    pub(crate) namespace: String,
    /// This replica's identity in the Lease (the pod name).
    pub(crate) identity: String,
}

/// Run until `stop` resolves.
pub(crate) async fn run(
    client: Client,
    state: Arc<ClusterState>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    opts: Options,
    stop: impl std::future::Future<Output = ()>,
) {
    let identity = opts.identity;
    let elector = Elector::new(client.clone(), &opts.namespace, LEASE_NAME, &identity);
    let mut warned_for: Option<Arc<PolicySet>> = None;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let gvk = GroupVersionKind::gvk("phiguard.io", "v1alpha1", "PhiPolicy");
    let phip: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    let mut leading = false;
    let mut renewed = Instant::now();
    let mut written: BTreeMap<String, DefaultDenyStatus> = BTreeMap::new();
    let mut failed: HashMap<String, (Instant, String)> = HashMap::new();
    let mut pending: HashMap<String, Instant> = HashMap::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(POLL) => {}
        }
        if !readiness.is_ready() {
            continue;
        }
        let set = state.policies();
        let plan = plan(&state, &set);
        if !opts.generate {
            let new_set = warned_for.as_ref().is_none_or(|w| !Arc::ptr_eq(w, &set));
            if new_set && !plan.policies.is_empty() {
                let names: Vec<&str> = plan.policies.keys().map(String::as_str).collect();
                tracing::warn!(
                    policies = %names.join(","),
                    "PhiPolicies ask for generated default-deny NetworkPolicies, but generation is off (--generate-default-deny; chart value defaultDenyGeneration.enabled): none is created"
                );
            }
            warned_for = Some(set);
            continue;
        }
        let stale: Vec<String> = written
            .keys()
            .filter(|n| !plan.policies.contains_key(*n))
            .cloned()
            .collect();
        if plan.policies.is_empty() && stale.is_empty() {
            if leading {
                elector.release().await;
                leading = false;
            }
            continue;
        }
        if !leading || renewed.elapsed() >= lease::RETRY {
            match elector.try_hold().await {
                Ok(true) => {
                    if !leading {
                        tracing::info!(identity = %identity, "default deny: leading (lease {LEASE_NAME})");
                    }
                    leading = true;
                    renewed = Instant::now();
                }
                Ok(false) => leading = false,
                Err(e) => {
                    tracing::warn!(error = %e, "default deny lease: could not read or take it");
                    if renewed.elapsed() >= lease::LEASE_DURATION {
                        leading = false;
                    }
                }
            }
        }
        if !leading {
            // Another replica writes; what this one remembers would be stale when it leads.
            written.clear();
            continue;
        }
        let now = Instant::now();
        pending.retain(|_, t| now.duration_since(*t) < PENDING_FOR);
        failed.retain(|ns, (t, _)| {
            plan.namespaces.get(ns) == Some(&Found::Missing) && now.duration_since(*t) < RETRY_AFTER
        });
        for (ns, found) in &plan.namespaces {
            if *found != Found::Missing || pending.contains_key(ns) || failed.contains_key(ns) {
                continue;
            }
            let by: Vec<String> = plan
                .policies
                .iter()
                .filter(|(_, list)| list.contains(ns))
                .map(|(p, _)| p.clone())
                .collect();
            match create(&client, &namespaces, ns, &by).await {
                Ok(()) => {
                    tracing::info!(namespace = %ns, policies = %by.join(","), "default deny: created {POLICY_NAME}");
                    metrics
                        .generated_policies
                        .get_or_create(&[("result", "created".to_string())])
                        .inc();
                    pending.insert(ns.clone(), now);
                }
                Err(why) => {
                    tracing::warn!(namespace = %ns, reason = %why, "default deny: could not create {POLICY_NAME}");
                    metrics
                        .generated_policies
                        .get_or_create(&[("result", "failed".to_string())])
                        .inc();
                    failed.insert(ns.clone(), (now, why));
                }
            }
        }
        for (policy, status) in statuses(&plan, &failed, &pending) {
            if written.get(&policy) == Some(&status) {
                continue;
            }
            let patch = json!({
                "apiVersion": "phiguard.io/v1alpha1",
                "kind": "PhiPolicy",
                "status": {"defaultDeny": status},
            });
            match write_status(&phip, &policy, &patch).await {
                Ok(()) => {
                    written.insert(policy, status);
                }
                Err(e) => {
                    tracing::warn!(policy = %policy, error = %e, "default deny: could not write status")
                }
            }
        }
        for policy in stale {
            // The option was turned off (or the policy deleted): drop the field this writer
            // owns (server-side apply removes what the manager no longer applies).
            let patch =
                json!({"apiVersion": "phiguard.io/v1alpha1", "kind": "PhiPolicy", "status": {}});
            match write_status(&phip, &policy, &patch).await {
                Ok(()) => {
                    written.remove(&policy);
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    written.remove(&policy);
                }
                Err(e) => {
                    tracing::warn!(policy = %policy, error = %e, "default deny: could not clear status")
                }
            }
        }
    }
    if leading {
        elector.release().await;
    }
}

async fn write_status(
    api: &Api<DynamicObject>,
    policy: &str,
    patch: &serde_json::Value,
) -> Result<(), kube::Error> {
    api.patch_status(
        policy,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map(|_| ())
}

/// Create the policy in `ns`; an existing one (created a moment ago, not yet in the cache) is
/// fine.
async fn create(
    client: &Client,
    namespaces: &Api<Namespace>,
    ns: &str,
    by: &[String],
) -> Result<(), String> {
    let uid = match namespaces.get(ns).await {
        Ok(n) => n.metadata.uid.unwrap_or_default(),
        Err(e) => return Err(refusal(&e)),
    };
    if uid.is_empty() {
        return Err("the Namespace has no uid".to_string());
    }
    let np = generated_policy(ns, &uid, by);
    let params = PostParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    };
    match Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .create(&params, &np)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(refusal(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::policy::{effective_policies, PhiPolicy};

    fn policy(name: &str, generate: bool) -> PhiPolicy {
        serde_json::from_value(json!({
            "apiVersion": "phiguard.io/v1alpha1", "kind": "PhiPolicy",
            "metadata": {"name": name},
            "spec": {"mode": "Enforce", "networkSegmentation": {"generateDefaultDeny": generate}},
        }))
        .expect("policy")
    }

    fn phi_namespace(state: &ClusterState, name: &str) {
        fixtures::add_namespace(
            state,
            name,
            json!(fixtures::label_pairs(&[fixtures::PHI])),
            json!({}),
        );
    }

    #[test]
    fn only_phi_namespaces_of_policies_asking_for_it_are_planned() {
        let state = ClusterState::new();
        phi_namespace(&state, "records");
        phi_namespace(&state, "billing");
        fixtures::add_namespace(&state, "web", json!({}), json!({}));
        let set = effective_policies(&[policy("off", false)]);
        assert_eq!(plan(&state, &set), Plan::default());
        let set = effective_policies(&[policy("on", true), policy("off", false)]);
        let p = plan(&state, &set);
        assert_eq!(
            p.policies.get("on"),
            Some(&vec!["billing".to_string(), "records".to_string()])
        );
        assert!(!p.policies.contains_key("off"));
        assert_eq!(p.namespaces.len(), 2);
        assert!(p.namespaces.values().all(|f| *f == Found::Missing));
    }

    #[test]
    fn what_a_namespace_has_is_judged_by_content() {
        let np = |name: &str, spec: serde_json::Value| {
            Arc::new(fixtures::network_policy("ns", name, spec))
        };
        assert_eq!(found(&[]), Found::Missing);
        // Ingress isolation alone is not enough: egress is open.
        let ingress = np("deny-in", json!({"podSelector": {}}));
        assert_eq!(found(std::slice::from_ref(&ingress)), Found::Missing);
        // Both directions by two policies of the user's: isolated.
        let egress = np(
            "deny-out",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        );
        assert_eq!(found(&[ingress.clone(), egress]), Found::IsolatedByUser);
        // A policy selecting some pods isolates only those.
        let some = np(
            "api",
            json!({"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress", "Egress"]}),
        );
        assert_eq!(found(&[some]), Found::Missing);
        // phi-guard's own, as generated.
        let ours = Arc::new(NetworkPolicyInfo::from(&generated_policy(
            "ns",
            "uid-1",
            &["p".into()],
        )));
        assert!(ours.generated);
        assert!(
            ours.egress_open.is_empty(),
            "DNS-only egress is not an open rule"
        );
        assert_eq!(found(std::slice::from_ref(&ours)), Found::Generated);
        // The name taken by something that does not isolate: left alone.
        let taken = np(
            POLICY_NAME,
            json!({"podSelector": {"matchLabels": {"app": "x"}}}),
        );
        assert_eq!(found(std::slice::from_ref(&taken)), Found::NameTaken);
        // ... unless the user's own policies isolate anyway.
        let both = np(
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        );
        assert_eq!(found(&[taken, both]), Found::IsolatedByUser);
        // Our label on someone's allow-some policy is not our default deny.
        let mut forged = generated_policy("ns", "uid-1", &[]);
        if let Some(spec) = forged.spec.as_mut() {
            spec.pod_selector = Some(
                serde_json::from_value(json!({"matchLabels": {"app": "x"}})).expect("selector"),
            );
        }
        assert_eq!(
            found(&[Arc::new(NetworkPolicyInfo::from(&forged))]),
            Found::NameTaken
        );
    }

    #[test]
    fn the_generated_policy_is_owned_by_its_namespace_and_isolates_both_ways() {
        let np = generated_policy("records", "0000-1111", &["a".into(), "b".into()]);
        let owner = &np.metadata.owner_references.as_deref().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Namespace", "records", "0000-1111")
        );
        let spec = np.spec.as_ref().expect("spec");
        assert_eq!(
            spec.policy_types.as_deref(),
            Some(&["Ingress".to_string(), "Egress".to_string()][..])
        );
        assert!(spec.ingress.is_none());
        let egress = spec.egress.as_deref().unwrap_or_default();
        assert_eq!(egress.len(), 1);
        assert!(egress[0].to.is_none());
        let ports = egress[0].ports.as_deref().unwrap_or_default();
        assert_eq!(ports.len(), 2);
        assert_eq!(
            np.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("phiguard.io/generated-for"))
                .map(String::as_str),
            Some("a,b")
        );
    }

    #[test]
    fn status_counts_each_namespace_once_and_says_why_one_is_not_isolated() {
        let mut plan = Plan::default();
        plan.policies.insert(
            "p".into(),
            ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
        );
        plan.namespaces.insert("a".into(), Found::Generated);
        plan.namespaces.insert("b".into(), Found::IsolatedByUser);
        plan.namespaces.insert("c".into(), Found::NameTaken);
        plan.namespaces.insert("d".into(), Found::Missing);
        plan.namespaces.insert("e".into(), Found::Missing);
        let mut failed = HashMap::new();
        failed.insert(
            "d".to_string(),
            (
                Instant::now(),
                "the API server answered 403 Forbidden".to_string(),
            ),
        );
        let s = statuses(&plan, &failed, &HashMap::new());
        let st = &s["p"];
        assert_eq!(
            (st.namespaces, st.generated, st.isolated_by_user),
            (5, 1, 1)
        );
        let reasons: Vec<(&str, &str)> = st
            .not_isolated
            .iter()
            .map(|n| (n.namespace.as_str(), n.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![("c", "NameTaken"), ("d", "CreateFailed"), ("e", "Pending")]
        );
    }
}
