//! Builders shared by the unit tests of every module: cluster state, policies and objects, so a
//! test says what is special about its case and nothing else. Test-only (`#[cfg(test)]`).

use serde_json::{json, Value};

use crate::cluster::ClusterState;
use crate::object::{Kind, Object};
use crate::policy::{hipaa_baseline, PhiPolicySpec, Policy};
use crate::rules::RuleContext;
use crate::selector::Labels;
use crate::view::{
    ClusterView, NamespaceInfo, NetworkPolicyInfo, PeerAuthInfo, PodInfo, PvInfo, PvcInfo,
    StorageClassInfo,
};

/// The default PHI label.
pub(crate) const PHI: (&str, &str) = ("phiguard.io/data-classification", "phi");

/// Labels from a JSON object (`json!({"app": "api"})`).
pub(crate) fn labels(v: Value) -> Labels {
    serde_json::from_value(v).expect("labels")
}

/// Labels from pairs.
pub(crate) fn label_pairs(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The built-in hipaa-baseline as a validated policy.
pub(crate) fn baseline() -> Policy {
    Policy::try_from(&hipaa_baseline()).expect("baseline is valid")
}

/// A policy named `test`: the baseline spec with `f` applied.
pub(crate) fn policy_with(f: impl FnOnce(&mut PhiPolicySpec)) -> Policy {
    let mut spec = PhiPolicySpec::default();
    f(&mut spec);
    Policy::from_spec("test", &spec).expect("valid policy")
}

/// An object of `kind` in `namespace`, decoded as the webhook and `check` decode it.
pub(crate) fn object(kind: Kind, namespace: Option<&str>, v: Value) -> Object {
    Object::from_value(kind, &v, namespace).expect("object decodes")
}

/// A Deployment `api` with its own labels and its pod template's labels and spec.
pub(crate) fn deployment(ns: &str, own: Value, template: Value, spec: Value) -> Object {
    object(
        Kind::Deployment,
        Some(ns),
        json!({
            "metadata": {"name": "api", "labels": own},
            "spec": {"template": {"metadata": {"labels": template}, "spec": spec}},
        }),
    )
}

/// One app container, `app:1`.
pub(crate) fn app_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "app:1"}]})
}

/// Run one rule (`check`, bound to its config by the caller) with a context over `state`: the
/// object's namespace is read from the state, as the engine does.
pub(crate) fn judge<T>(
    w: &Object,
    state: &ClusterState,
    policy: &Policy,
    rule: impl FnOnce(&Object, &RuleContext) -> T,
) -> T {
    let ctx = RuleContext::new(state, policy, state.namespace(&w.namespace));
    rule(w, &ctx)
}

/// Add a Namespace with labels and annotations.
pub(crate) fn add_namespace(state: &ClusterState, name: &str, l: Value, annotations: Value) {
    state.namespaces.insert(
        name.to_string(),
        NamespaceInfo {
            name: name.to_string(),
            labels: labels(l),
            annotations: labels(annotations),
        },
    );
}

/// Add a StorageClass (created 2024-01-01; `default` marks it the default class).
pub(crate) fn add_storage_class(
    state: &ClusterState,
    name: &str,
    provisioner: &str,
    params: Value,
    default: bool,
) {
    let mut meta = json!({ "name": name, "creationTimestamp": "2024-01-01T00:00:00Z" });
    if default {
        meta["annotations"] = json!({ "storageclass.kubernetes.io/is-default-class": "true" });
    }
    let sc: k8s_openapi::api::storage::v1::StorageClass = serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": meta, "provisioner": provisioner, "parameters": params,
    }))
    .expect("storage class");
    state
        .storage_classes
        .insert(name.into(), StorageClassInfo::from(&sc));
}

/// Add a PersistentVolumeClaim.
pub(crate) fn add_pvc(state: &ClusterState, ns: &str, name: &str, spec: Value, annotations: Value) {
    let pvc: k8s_openapi::api::core::v1::PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": name, "namespace": ns, "annotations": annotations },
        "spec": spec,
    }))
    .expect("pvc");
    state
        .pvcs
        .insert(ns.into(), name.into(), PvcInfo::from(&pvc));
}

/// Add a PersistentVolume.
pub(crate) fn add_pv(state: &ClusterState, name: &str, spec: Value) {
    let pv: k8s_openapi::api::core::v1::PersistentVolume = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": { "name": name }, "spec": spec,
    }))
    .expect("pv");
    state.pvs.insert(name.into(), PvInfo::from(&pv));
}

/// A NetworkPolicy's lean view.
pub(crate) fn network_policy(ns: &str, name: &str, spec: Value) -> NetworkPolicyInfo {
    let obj: k8s_openapi::api::networking::v1::NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .expect("valid NetworkPolicy");
    NetworkPolicyInfo::from(&obj)
}

/// Add a NetworkPolicy.
pub(crate) fn add_network_policy(state: &ClusterState, info: NetworkPolicyInfo) {
    state
        .network_policies
        .insert(info.namespace.clone(), info.name.clone(), info);
}

/// Add a running Pod with labels.
pub(crate) fn add_pod(state: &ClusterState, ns: &str, name: &str, l: &[(&str, &str)]) {
    state.pods.insert(
        ns.to_string(),
        name.to_string(),
        PodInfo {
            namespace: ns.to_string(),
            name: name.to_string(),
            labels: label_pairs(l),
            ..Default::default()
        },
    );
}

/// An Istio PeerAuthentication as the API server would send it.
pub(crate) fn peer_authentication(ns: &str, name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": { "name": name, "namespace": ns }, "spec": spec })
}

/// Add a PeerAuthentication.
pub(crate) fn add_peer_authentication(state: &ClusterState, v: Value) {
    let pa = PeerAuthInfo::from_value(&v).expect("peer authentication");
    state
        .peer_authentications
        .insert(pa.namespace.clone(), pa.name.clone(), pa);
}

/// Some reason of `rule`, for tests about findings in general rather than one shortfall.
pub(crate) fn a_reason(rule: crate::verdict::RuleId) -> crate::verdict::Reason {
    crate::verdict::Reason::ALL
        .iter()
        .copied()
        .find(|r| r.rule() == rule)
        .unwrap_or(crate::verdict::Reason::NoAuditSidecar)
}

/// Characters of an identifier (`api-2`, `DATABASE_URL`).
fn continues_identifier(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Does `text` (a finding's message or remediation) name `identifier` as a whole token: an
/// object, field, class, container or port name, or a field path, that the code under test
/// took from its input? Tests check what a finding names through this, never phrases of the
/// wording, which is pinned once in `tests/golden/reasons.txt`.
///
/// Whole means not part of a longer name: not preceded by an identifier character, `.` or `/`
/// (`api` is not named by `api-2`, `phi/api` or `spec.api`), not followed by an identifier
/// character or `[` (`spec.volumes` is not named by `spec.volumes[0]`), nor by a `.`, `/` or
/// `:` that an identifier character follows (`example` is not named by `example.com`). So a
/// name at the end of a sentence (`... set spec.volumeName.`), before a colon (`env
/// DATABASE_URL: ...`), quoted or bracketed is named.
pub(crate) fn names(text: &str, identifier: &str) -> bool {
    assert!(!identifier.is_empty(), "an empty identifier names nothing");
    text.match_indices(identifier).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let mut after = text[at + identifier.len()..].chars();
        let (next, next2) = (after.next(), after.next());
        let open_before = before.is_none_or(|c| !continues_identifier(c) && !"./".contains(c));
        let open_after = match next {
            None => true,
            Some(c) if continues_identifier(c) || c == '[' => false,
            Some('.' | '/' | ':') => next2.is_none_or(|c| !continues_identifier(c)),
            Some(_) => true,
        };
        open_before && open_after
    })
}

/// Assert that `text` names `identifier` (see [`names`]).
#[track_caller]
pub(crate) fn assert_names(text: &str, identifier: &str) {
    assert!(
        names(text, identifier),
        "expected the text to name `{identifier}` as a whole identifier (wording itself is \
         pinned in tests/golden/reasons.txt), in:\n{text}"
    );
}

/// Does `value` appear anywhere in `text`? For canaries: data values (a Secret's content, an
/// env value, a key ARN, an annotation's value) that a finding must never echo, PHI-safety
/// rather than wording.
pub(crate) fn leaks(text: &str, value: &str) -> bool {
    assert!(!value.is_empty(), "an empty canary is in every text");
    text.contains(value)
}

/// Assert that `text` does not echo the canary `value` (see [`leaks`]).
#[track_caller]
pub(crate) fn assert_no_value(text: &str, value: &str) {
    assert!(
        !leaks(text, value),
        "the value {value:?} must never be echoed, but it is in:\n{text}"
    );
}

#[test]
fn names_matches_whole_identifiers_only() {
    let text = "Pod phi/api mounts StorageClass \"gp3\" (not gp3-encrypted); set spec.volumeName. \
                env DATABASE_URL: port(s) 8080, 9443";
    for named in [
        "phi/api",
        "gp3",
        "gp3-encrypted",
        "spec.volumeName",
        "DATABASE_URL",
        "8080",
        "9443",
    ] {
        assert_names(text, named);
    }
    for not_named in [
        "api",
        "phi",
        "gp",
        "encrypted",
        "spec",
        "volumeName",
        "DATABASE",
        "808",
    ] {
        assert!(!names(text, not_named), "{not_named}");
    }
    assert!(!names("spec.volumes[0]", "spec.volumes"));
    assert!(!names("a.example.com", "example.com"));
    assert!(names("[encryption-at-rest] and", "encryption-at-rest"));
    assert!(leaks("key arn:aws:kms:x", "arn:aws"));
    assert!(!leaks("no values here", "arn:aws"));
}

/// A scripted Kubernetes API server for fast tests of code that calls it (no control plane):
/// a `kube::Client` whose requests are recorded and answered in order from a script, as
/// kube-rs's own tests do with `tower_test::mock` (here a `tower::service_fn`, so no extra
/// dependency). A request past the end of the script, or one whose method or path differs from
/// the step's, is answered 599 and recorded, so the test's assertions on `requests()` fail with
/// what was actually sent.
pub(crate) mod mock_api {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use http_body_util::BodyExt;
    use hyper::{Request, Response};
    use kube::client::Body;
    use serde_json::Value;

    /// One expected request and its answer.
    pub(crate) struct Step {
        pub(crate) method: &'static str,
        /// The request's path (query string excluded) must equal this.
        pub(crate) path: String,
        pub(crate) status: u16,
        pub(crate) body: Value,
    }

    pub(crate) fn step(method: &'static str, path: &str, status: u16, body: Value) -> Step {
        Step {
            method,
            path: path.to_string(),
            status,
            body,
        }
    }

    /// A request as the server saw it.
    #[derive(Debug, Clone)]
    pub(crate) struct Seen {
        pub(crate) method: String,
        pub(crate) path: String,
        pub(crate) query: String,
        pub(crate) body: Value,
    }

    /// An API status object, as the API server sends with an error code.
    pub(crate) fn status(code: u16, reason: &str) -> Value {
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("mock {reason}"), "reason": reason, "code": code
        })
    }

    pub(crate) struct MockApi {
        seen: Arc<Mutex<Vec<Seen>>>,
        left: Arc<Mutex<VecDeque<Step>>>,
    }

    impl MockApi {
        /// A client talking to a server that answers `script` in order.
        pub(crate) fn new(script: Vec<Step>) -> (kube::Client, MockApi) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let left = Arc::new(Mutex::new(VecDeque::from(script)));
            let (s, l) = (seen.clone(), left.clone());
            let svc = tower::service_fn(move |req: Request<Body>| {
                let (s, l) = (s.clone(), l.clone());
                async move {
                    let (parts, body) = req.into_parts();
                    let bytes = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let seen = Seen {
                        method: parts.method.to_string(),
                        path: parts.uri.path().to_string(),
                        query: parts.uri.query().unwrap_or_default().to_string(),
                        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    };
                    let next = l.lock().map(|mut q| q.pop_front()).ok().flatten();
                    let (code, answer) = match next {
                        Some(st) if st.method == seen.method && st.path == seen.path => {
                            (st.status, st.body)
                        }
                        _ => (599, status(599, "Unexpected")),
                    };
                    if let Ok(mut v) = s.lock() {
                        v.push(seen);
                    }
                    let resp = Response::builder()
                        .status(code)
                        .header("content-type", "application/json")
                        .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
                        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(resp)
                }
            });
            (kube::Client::new(svc, "default"), MockApi { seen, left })
        }

        /// Every request so far, in order.
        pub(crate) fn requests(&self) -> Vec<Seen> {
            self.seen.lock().map(|v| v.clone()).unwrap_or_default()
        }

        /// `METHOD path` of every request, for compact assertions.
        pub(crate) fn calls(&self) -> Vec<String> {
            self.requests()
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect()
        }

        /// Steps of the script not reached.
        pub(crate) fn unused(&self) -> usize {
            self.left.lock().map(|q| q.len()).unwrap_or(0)
        }
    }
}
