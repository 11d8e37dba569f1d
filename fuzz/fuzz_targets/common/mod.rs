//! Shared by the fuzz targets: the webhook driven in-process (the real router, `POST /validate`),
//! the invariants every review answer must hold, and an order-preserving JSON tree for the
//! structure-aware targets. Harness code: a failed unwrap here is a harness bug, reported as a
//! crash like any other.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use phi_guard::fuzz_api;
use phi_guard::webhook::admission::{self, LenientReview};
use serde_json::Value;
use tower::ServiceExt;

/// The repository root: the fuzz crate's parent, or the main crate itself when
/// `tests/fuzz_replay.rs` compiles these targets.
pub fn repo() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("fuzz").join("Cargo.toml").is_file() {
        here.to_path_buf()
    } else {
        here.join("..")
    }
}

struct Webhook {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

fn webhook() -> &'static Webhook {
    static W: OnceLock<Webhook> = OnceLock::new();
    W.get_or_init(|| {
        let r = repo();
        let paths = vec![
            r.join("tests/fixtures/cluster"),
            r.join("examples/cluster"),
            r.join("examples/policies/hipaa-baseline.yaml"),
            r.join("tests/fixtures/policies/warn.yaml"),
            r.join("tests/fixtures/policies/audit.yaml"),
        ];
        let app = fuzz_api::app_state(&paths).expect("cluster state from the fixtures");
        Webhook {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            router: phi_guard::webhook::router::webhook_router(
                app,
                std::time::Duration::from_secs(10),
            ),
        }
    })
}

/// `POST /validate` with `body`, through the webhook's router: status and body.
pub fn post(body: &[u8]) -> (StatusCode, Vec<u8>) {
    let w = webhook();
    let req = Request::post("/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    w.rt.block_on(async {
        let resp = w.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    })
}

/// The uid the API server would match the answer against, when the body shows one: a JSON
/// object with the right envelope and a string `request.uid` (possibly empty).
fn readable_uid(body: &[u8]) -> Option<String> {
    let l: LenientReview = serde_json::from_slice(body).ok()?;
    let s = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_owned);
    if s(&l.api_version).as_deref() != Some("admission.k8s.io/v1")
        || s(&l.kind).as_deref() != Some("AdmissionReview")
    {
        return None;
    }
    l.request?.uid?.as_str().map(str::to_owned)
}

/// What a review answer must hold, whatever the body:
/// - never a panic (a panic in the handler is a crash here), only 200 or 400;
/// - 200 is a well-formed AdmissionReview response; a refusal carries a status;
/// - the uid is answered whenever it was readable, and only the request's own uid;
/// - one-pass and two-pass decoding agree on every object;
/// - a CREATE/UPDATE of a judged kind whose object cannot be read is never allowed.
pub fn check_review(body: &[u8]) {
    let facts = match fuzz_api::review_facts(body) {
        Ok(f) => f,
        Err(e) => panic!("decoders disagree: {e}"),
    };
    let (status, out) = post(body);
    let uid = readable_uid(body);
    assert!(
        status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
        "unexpected status {status}"
    );
    let v: Value = serde_json::from_slice(&out).expect("every answer is JSON");
    // A uid longer than any API server sends (it sends UUIDs) cannot be cut and is not echoed:
    // the answer is a 400 that says so.
    let oversized = uid
        .as_deref()
        .is_some_and(|u| u.len() > admission::MAX_UID_BYTES);
    if status == StatusCode::BAD_REQUEST {
        assert_eq!(v["kind"], "Status", "a 400 is a metav1.Status");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            uid.as_deref().is_none_or(str::is_empty) || oversized,
            "the uid was readable but the answer is a bare 400: {}",
            v["message"]
        );
        if oversized {
            assert!(
                v["message"].as_str().is_some_and(|m| m.contains("uid")),
                "a uid over {} bytes is refused naming it: {}",
                admission::MAX_UID_BYTES,
                v["message"]
            );
        }
        return;
    }
    assert!(
        !oversized,
        "a uid over {} bytes was echoed",
        admission::MAX_UID_BYTES
    );
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    let r = &v["response"];
    let allowed = r["allowed"].as_bool().expect("response.allowed is a bool");
    let answered = r["uid"].as_str().expect("response.uid is a string");
    assert_eq!(
        Some(answered),
        uid.as_deref(),
        "the answer's uid is not the request's"
    );
    if !allowed {
        let code = r["status"]["code"]
            .as_u64()
            .expect("a refusal has a status code");
        assert!((400..600).contains(&code), "refusal code {code}");
        assert!(r["status"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    if let Some(field) = facts.must_refuse {
        assert!(
            !allowed,
            "allowed although its {field} cannot be read as its kind: {}",
            String::from_utf8_lossy(&out)
        );
    }
    for w in r["warnings"].as_array().into_iter().flatten() {
        let w = w.as_str().expect("warnings are strings");
        assert!(
            w.chars().count() <= 256 && !w.contains('\n'),
            "warning {w:?}"
        );
    }
}

// ---- an order-preserving JSON tree (key order matters to the one-pass decoder) ------------

#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> serde::Deserialize<'de> for J {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::Num(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<J, E> {
                Ok(serde_json::Number::from_f64(n).map_or(J::Null, J::Num))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(J::Arr(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry::<String, J>()? {
                    v.push((k, x));
                }
                Ok(J::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl J {
    pub fn parse(bytes: &[u8]) -> J {
        serde_json::from_slice(bytes).expect("seed is JSON")
    }

    pub fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(&n.to_string()),
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            J::Arr(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out);
                }
                out.push(']');
            }
            J::Obj(v) => {
                out.push('{');
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    x.write(out);
                }
                out.push('}');
            }
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut J> {
        match self {
            J::Obj(v) => v.iter_mut().rev().find(|(k, _)| k == key).map(|(_, x)| x),
            _ => None,
        }
    }

    /// The value at `key`, created (as `{}`) when missing; `self` becomes an object if needed.
    pub fn entry(&mut self, key: &str) -> &mut J {
        if !matches!(self, J::Obj(_)) {
            *self = J::Obj(Vec::new());
        }
        let J::Obj(v) = self else { unreachable!() };
        match v.iter().rposition(|(k, _)| k == key) {
            Some(i) => &mut v[i].1,
            None => {
                v.push((key.to_owned(), J::Obj(Vec::new())));
                &mut v.last_mut().unwrap().1
            }
        }
    }
}

/// Field names Kubernetes objects and phi-guard's rules use, so mutations reach real fields.
pub const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
    "template",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "volumes",
    "volumeMounts",
    "image",
    "env",
    "value",
    "ports",
    "containerPort",
    "tls",
    "rules",
    "hosts",
    "host",
    "http",
    "paths",
    "backend",
    "service",
    "secretName",
    "storageClassName",
    "persistentVolumeClaim",
    "claimName",
    "hostPath",
    "emptyDir",
    "medium",
    "nfs",
    "csi",
    "driver",
    "volumeAttributes",
    "securityContext",
    "podSelector",
    "namespaceSelector",
    "ingress",
    "egress",
    "policyTypes",
    "from",
    "to",
    "ipBlock",
    "volumeClaimTemplates",
    "jobTemplate",
    "selector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "hostNetwork",
    "type",
    "clusterIP",
    "externalName",
    "ingressClassName",
    "resources",
    "accessModes",
    "volumeName",
    "dataSource",
    "ownerReferences",
    "deletionTimestamp",
    "finalizers",
    "replicas",
    "args",
    "command",
    "sidecar.istio.io/inject",
    "phiguard.io/data-classification",
    "phi",
    "linkerd.io/inject",
    "mountPath",
    "readOnly",
    "projected",
    "sources",
    "secret",
    "configMap",
    "ephemeral",
    "volumeClaimTemplate",
    "restartPolicy",
    "serviceAccountName",
    "generateName",
    "uid",
    "object",
    "oldObject",
    "operation",
    "subResource",
    "dryRun",
    "userInfo",
    "username",
    "request",
    "group",
    "version",
];

/// A JSON value the fuzzer builds.
#[derive(Debug, Arbitrary)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Field(u8),
    EmptyObj,
    EmptyArr,
    Arr(Vec<Val>),
    Obj(Vec<(Key, Val)>),
}

/// A key the fuzzer picks: one of the object's own, a known field name, or any string.
#[derive(Debug, Arbitrary)]
pub enum Key {
    Existing(u8),
    Known(u8),
    Any(String),
}

impl Key {
    pub fn resolve(&self, at: &J) -> String {
        match self {
            Key::Existing(i) => match at {
                J::Obj(v) if !v.is_empty() => v[*i as usize % v.len()].0.clone(),
                _ => FIELDS[*i as usize % FIELDS.len()].to_owned(),
            },
            Key::Known(i) => FIELDS[*i as usize % FIELDS.len()].to_owned(),
            Key::Any(s) => s.clone(),
        }
    }
}

impl Val {
    pub fn build(&self, depth: usize) -> J {
        match self {
            Val::Null => J::Null,
            Val::Bool(b) => J::Bool(*b),
            Val::Int(i) => J::Num((*i).into()),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Num),
            Val::Str(s) => J::Str(s.clone()),
            Val::Field(i) => J::Str(FIELDS[*i as usize % FIELDS.len()].to_owned()),
            Val::EmptyObj => J::Obj(Vec::new()),
            Val::EmptyArr => J::Arr(Vec::new()),
            _ if depth > 6 => J::Null,
            Val::Arr(v) => J::Arr(v.iter().take(8).map(|x| x.build(depth + 1)).collect()),
            Val::Obj(v) => {
                let mut o = J::Obj(Vec::new());
                for (k, x) in v.iter().take(8) {
                    let k = k.resolve(&o);
                    let x = x.build(depth + 1);
                    if let J::Obj(items) = &mut o {
                        items.push((k, x));
                    }
                }
                o
            }
        }
    }
}

/// A step into the tree: a key of an object or an index of an array.
#[derive(Debug, Arbitrary)]
pub enum Step {
    Key(Key),
    Index(u8),
}

/// The node at `path`, creating objects along the way when `create`; None when the path
/// leads through a scalar (without `create`) or an empty array.
pub fn walk<'a>(mut at: &'a mut J, path: &[Step], create: bool) -> Option<&'a mut J> {
    for step in path.iter().take(12) {
        at = match step {
            Step::Key(k) => {
                let key = k.resolve(at);
                if create {
                    at.entry(&key)
                } else {
                    at.get_mut(&key)?
                }
            }
            Step::Index(i) => match at {
                J::Arr(v) if !v.is_empty() => {
                    let n = v.len();
                    &mut v[*i as usize % n]
                }
                _ => return None,
            },
        };
    }
    Some(at)
}

/// An edit of a JSON tree.
#[derive(Debug, Arbitrary)]
pub enum Edit {
    /// Set (or create) the value at a path.
    Set(Vec<Step>, Val),
    /// Remove the last step's key (or array element).
    Remove(Vec<Step>),
    /// Repeat a key of an object (the duplicate comes last).
    Duplicate(Vec<Step>, u8),
    /// Move a key of an object to the front or the back.
    Move(Vec<Step>, u8, bool),
    /// Copy the subtree at one path to another.
    Copy(Vec<Step>, Vec<Step>),
}

impl Edit {
    pub fn apply(&self, root: &mut J) {
        match self {
            Edit::Set(path, v) => {
                if let Some(at) = walk(root, path, true) {
                    *at = v.build(0);
                }
            }
            Edit::Remove(path) => {
                let Some((last, parent)) = path.split_last() else {
                    return;
                };
                let Some(at) = walk(root, parent, false) else {
                    return;
                };
                match (at, last) {
                    (J::Obj(v), Step::Key(k)) => {
                        let key = k.resolve(&J::Obj(v.clone()));
                        v.retain(|(x, _)| *x != key);
                    }
                    (J::Arr(v), Step::Index(i)) if !v.is_empty() => {
                        let n = v.len();
                        v.remove(*i as usize % n);
                    }
                    _ => {}
                }
            }
            Edit::Duplicate(path, i) => {
                if let Some(J::Obj(v)) = walk(root, path, false) {
                    if !v.is_empty() {
                        let e = v[*i as usize % v.len()].clone();
                        v.push(e);
                    }
                }
            }
            Edit::Move(path, i, front) => {
                if let Some(J::Obj(v)) = walk(root, path, false) {
                    if !v.is_empty() {
                        let e = v.remove(*i as usize % v.len());
                        if *front {
                            v.insert(0, e);
                        } else {
                            v.push(e);
                        }
                    }
                }
            }
            Edit::Copy(from, to) => {
                let Some(src) = walk(root, from, false).map(|x| x.clone()) else {
                    return;
                };
                if let Some(at) = walk(root, to, true) {
                    *at = src;
                }
            }
        }
    }
}

/// Files under `dir` ending in one of `exts`, recursively, in name order.
pub fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(files(&p, exts));
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
        {
            out.push(p);
        }
    }
    out
}

/// The tree as compact JSON, keys in their order (duplicates kept).
impl std::fmt::Display for J {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}
