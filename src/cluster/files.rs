//! Cluster state and objects from YAML files: multi-document files, `kind: List`, directories.
//! Used by `phi-guard check`, `serve --cluster-state` and tests.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::ClusterState;
use crate::object::{Kind, Object};
use crate::policy::PhiPolicy;
use crate::view::objects::{
    CertificateInfo, NamespaceInfo, NetworkPolicyInfo, PeerAuthInfo, PodInfo, PvInfo, PvcInfo,
    ServiceInfo, StorageClassInfo,
};

/// A file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: YAML error: {message}")]
    Yaml {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{line}:{column}: JSON error: {message}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", object_ref(source_ref, kind, name))]
    Object {
        source_ref: String,
        kind: String,
        name: String,
        message: String,
    },
}

/// `source: Kind "name"`, leaving out what is unknown (never `source:  "":`).
pub fn object_ref(source: &str, kind: &str, name: &str) -> String {
    match (kind.is_empty(), name.is_empty()) {
        (true, true) => source.to_string(),
        (false, true) => format!("{source}: {kind}"),
        (true, false) => format!("{source}: {name:?}"),
        (false, false) => format!("{source}: {kind} {name:?}"),
    }
}

/// One YAML document, as JSON, with where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// `path#index` (index of the document in its file, from 1; list items get `.item`).
    pub source: String,
    pub api_version: String,
    pub kind: String,
    pub value: Value,
}

impl Document {
    pub fn name(&self) -> String {
        meta(&self.value, "name")
    }
    pub fn namespace(&self) -> String {
        meta(&self.value, "namespace")
    }
    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }
}

fn meta(v: &Value, key: &str) -> String {
    v.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A file or document that was read but holds nothing to use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedInput {
    /// `path` or `path#document`.
    pub source: String,
    pub reason: String,
}

/// How a file was reached: named on the command line (or standard input), where anything
/// that is not a Kubernetes object is an error, or found walking a directory, where files
/// that are not manifests (`Chart.yaml`, `values.yaml`, CI workflows, unrendered templates)
/// are skipped with a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Named,
    Walked,
}

/// Reads files and directories, each file once: symbolic links are followed, and a file or
/// directory reached again (a link cycle, two links to one file, a path given twice) is
/// skipped with a note, so a link loop can neither hang the walk nor double the objects.
#[derive(Debug, Default)]
pub struct Reader {
    seen: HashSet<PathBuf>,
    /// The documents read, in order.
    pub docs: Vec<Document>,
    /// What was skipped, in order.
    pub skipped: Vec<SkippedInput>,
}

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Read a file, or a directory recursively (`*.yaml`, `*.yml`, `*.json` in name order).
    pub fn read_path(&mut self, path: &Path) -> Result<(), FileError> {
        let mut files = Vec::new();
        collect_files(
            path,
            Origin::Named,
            &mut self.seen,
            &mut files,
            &mut self.skipped,
        )?;
        for (file, origin) in files {
            let name = file.display().to_string();
            let bytes = std::fs::read(&file).map_err(|e| FileError::Io {
                path: name.clone(),
                source: e,
            })?;
            let Ok(text) = String::from_utf8(bytes) else {
                if origin == Origin::Walked {
                    self.skip(name, "not UTF-8 text");
                    continue;
                }
                return Err(FileError::Io {
                    path: name,
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
                });
            };
            self.read_text(&name, &text, origin)?;
        }
        Ok(())
    }

    /// Read documents from text (`name` names it in sources and errors; `<stdin>`).
    pub fn read_text(&mut self, name: &str, text: &str, origin: Origin) -> Result<(), FileError> {
        let before = (self.docs.len(), self.skipped.len());
        let mut not_objects = 0usize;
        let docs = &mut self.docs;
        let result = for_each_value(name, text, |source, value| {
            match push_value(source, value, docs) {
                Err(FileError::Object { .. }) if origin == Origin::Walked => {
                    not_objects += 1;
                    Ok(())
                }
                r => r,
            }
        });
        match result {
            Ok(()) => {
                if not_objects > 0 {
                    let what = if self.docs.len() == before.0 {
                        "not a Kubernetes manifest".to_string()
                    } else {
                        format!("{} not Kubernetes objects", plural_docs(not_objects))
                    };
                    self.skip(name.to_string(), format!("{what} (no apiVersion and kind)"));
                }
                Ok(())
            }
            // An unrendered Helm or Go template in a directory: render it first.
            Err(FileError::Yaml { .. } | FileError::Json { .. })
                if origin == Origin::Walked && text.contains("{{") =>
            {
                self.docs.truncate(before.0);
                self.skipped.truncate(before.1);
                self.skip(
                    name.to_string(),
                    "a template, not YAML (render it first, e.g. `helm template`)",
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn skip(&mut self, source: String, reason: impl Into<String>) {
        self.skipped.push(SkippedInput {
            source,
            reason: reason.into(),
        });
    }
}

fn plural_docs(n: usize) -> String {
    if n == 1 {
        "1 document is".to_string()
    } else {
        format!("{n} documents are")
    }
}

/// Read every document under these files and directories (directories recursively, files
/// ending in .yaml, .yml or .json, in name order; each file once).
pub fn read_documents(paths: &[PathBuf]) -> Result<Vec<Document>, FileError> {
    let mut reader = Reader::new();
    for p in paths {
        reader.read_path(p)?;
    }
    Ok(reader.docs)
}

fn collect_files(
    p: &Path,
    origin: Origin,
    seen: &mut HashSet<PathBuf>,
    out: &mut Vec<(PathBuf, Origin)>,
    skipped: &mut Vec<SkippedInput>,
) -> Result<(), FileError> {
    let io = |e| FileError::Io {
        path: p.display().to_string(),
        source: e,
    };
    // Follows symbolic links; a dangling link inside a directory is skipped, not fatal.
    let resolved = match std::fs::canonicalize(p) {
        Ok(r) => r,
        Err(e) if origin == Origin::Walked => {
            skipped.push(SkippedInput {
                source: p.display().to_string(),
                reason: format!("cannot be read ({e})"),
            });
            return Ok(());
        }
        Err(e) => return Err(io(e)),
    };
    if !seen.insert(resolved.clone()) {
        skipped.push(SkippedInput {
            source: p.display().to_string(),
            reason: format!(
                "already read as {} (symbolic link or repeated path)",
                resolved.display()
            ),
        });
        return Ok(());
    }
    let md = std::fs::metadata(&resolved).map_err(io)?;
    if md.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&resolved)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| p.join(e.file_name())))
            .collect();
        entries.sort();
        for e in entries {
            let is_dir = std::fs::metadata(&e).is_ok_and(|m| m.is_dir());
            let manifest_name = e
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"));
            if is_dir || manifest_name {
                collect_files(&e, Origin::Walked, seen, out, skipped)?;
            }
        }
    } else {
        out.push((p.to_path_buf(), origin));
    }
    Ok(())
}

/// Parse one file's documents.
pub fn read_file(path: &Path, out: &mut Vec<Document>) -> Result<(), FileError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FileError::Io {
        path: display.clone(),
        source: e,
    })?;
    parse_documents(&display, &text, out)
}

/// Parse documents from text (`name` is used in errors and sources).
pub fn parse_documents(name: &str, text: &str, out: &mut Vec<Document>) -> Result<(), FileError> {
    for_each_document(name, text, |d| {
        out.push(d);
        Ok(())
    })
}

/// Parse documents from text one at a time, handing each to `f` (list items separately), so
/// only one document's tree is in memory at once.
pub fn for_each_document(
    name: &str,
    text: &str,
    mut f: impl FnMut(Document) -> Result<(), FileError>,
) -> Result<(), FileError> {
    let mut batch = Vec::new();
    for_each_value(name, text, |source, value| {
        push_value(source, value, &mut batch)?;
        for d in batch.drain(..) {
            f(d)?;
        }
        Ok(())
    })
}

/// The YAML reader's settings: duplicate keys refused and merge keys expanded (the crate's
/// defaults, stated so they cannot drift), no source snippets in errors (they would quote
/// input lines, values included), and limits sized for rendered repositories of tens of
/// thousands of objects in one stream rather than for configuration files.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        merge_keys: serde_saphyr::MergeKeyPolicy::Merge,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: None,
            max_documents: 10_000_000,
            max_events: 1_000_000_000,
            max_nodes: 1_000_000_000,
            max_total_scalar_bytes: 4 << 30,
            max_depth: 128,
        },
    }
}

/// Hand every document of `text` to `f` as a JSON tree with its `name#index` source. JSON
/// text (a stream of objects, e.g. `kubectl get -o json` output or two objects written one
/// after the other) is read as JSON; everything else, and JSON-looking text that does not
/// parse as JSON (a YAML flow mapping), as YAML. A leading byte-order mark is ignored.
fn for_each_value(
    name: &str,
    text: &str,
    mut f: impl FnMut(String, Value) -> Result<(), FileError>,
) -> Result<(), FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with(['{', '[']) {
        let mut index = 0usize;
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<StrictValue>();
        let json_err = |e: serde_json::Error| FileError::Json {
            path: name.to_string(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        };
        match stream.next() {
            None => return Ok(()),
            Some(Err(e)) if e.is_syntax() || e.is_eof() => {
                // Not JSON after all: YAML flow style. Report the JSON error only if YAML
                // cannot read it either.
                return for_each_yaml(name, text, &mut f).map_err(|y| match y {
                    FileError::Yaml { .. } => json_err(e),
                    other => other,
                });
            }
            Some(Err(e)) => return Err(json_err(e)),
            Some(Ok(StrictValue(v))) => {
                index += 1;
                f(format!("{name}#{index}"), v)?;
            }
        }
        for v in stream {
            let StrictValue(v) = v.map_err(json_err)?;
            index += 1;
            f(format!("{name}#{index}"), v)?;
        }
        return Ok(());
    }
    for_each_yaml(name, text, &mut f)
}

fn for_each_yaml(
    name: &str,
    text: &str,
    f: &mut impl FnMut(String, Value) -> Result<(), FileError>,
) -> Result<(), FileError> {
    let mut reader = std::io::Cursor::new(text.as_bytes());
    let docs = serde_saphyr::read_with_options::<_, Value>(&mut reader, yaml_options());
    for (i, value) in docs.enumerate() {
        let value = value.map_err(|e| {
            let (line, column) = e
                .location()
                .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
            FileError::Yaml {
                path: name.to_string(),
                line,
                column,
                message: strip_position(&e.without_snippet().to_string()),
            }
        })?;
        f(format!("{name}#{}", i + 1), value)?;
    }
    Ok(())
}

/// A message without its ` at line L column C` tail (the error names the position itself).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A JSON tree that refuses a key repeated within one object: `serde_json::Value` would keep
/// the last one silently, where the API server's strict decoding refuses the object.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {key:?} in one mapping"
                )));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Load the cluster objects in these files and directories into `state`, document by document
/// (memory stays at one document's tree, not the whole set: `serve --cluster-state` with tens of
/// thousands of objects). Returns the PhiPolicies found.
pub fn load_paths(paths: &[PathBuf], state: &ClusterState) -> Result<Vec<PhiPolicy>, FileError> {
    let mut files = Vec::new();
    let (mut seen, mut skipped) = (HashSet::new(), Vec::new());
    for p in paths {
        collect_files(p, Origin::Named, &mut seen, &mut files, &mut skipped)?;
    }
    let mut policies = Vec::new();
    for (file, origin) in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| FileError::Io {
            path: name.clone(),
            source: e,
        })?;
        let mut batch = Vec::new();
        let result = for_each_value(&name, &text, |source, value| {
            match push_value(source, value, &mut batch) {
                Err(FileError::Object { source_ref, .. }) if origin == Origin::Walked => {
                    skipped.push(SkippedInput {
                        source: source_ref,
                        reason: "not a Kubernetes object (no apiVersion and kind)".into(),
                    });
                }
                r => r?,
            }
            for d in batch.drain(..) {
                policies.extend(load_state(std::slice::from_ref(&d), state)?);
            }
            Ok(())
        });
        match result {
            Err(FileError::Yaml { .. } | FileError::Json { .. })
                if origin == Origin::Walked && text.contains("{{") =>
            {
                skipped.push(SkippedInput {
                    source: name,
                    reason: "a template, not YAML".into(),
                });
            }
            r => r?,
        }
    }
    for s in &skipped {
        tracing::info!(source = %s.source, reason = %s.reason, "cluster state input skipped");
    }
    Ok(policies)
}

/// Add a parsed document to `out`: nothing for an empty document, each item of a `List`,
/// else the object. Not a mapping with apiVersion and kind: a [`FileError::Object`].
fn push_value(source: String, value: Value, out: &mut Vec<Document>) -> Result<(), FileError> {
    let obj = match value {
        Value::Null => return Ok(()), // empty document (e.g. a trailing `---`)
        Value::Object(obj) => obj,
        _ => {
            return Err(FileError::Object {
                source_ref: source,
                kind: String::new(),
                name: String::new(),
                message: "a Kubernetes object (a mapping with apiVersion and kind) was expected"
                    .into(),
            })
        }
    };
    let text_field = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind) = (text_field("apiVersion"), text_field("kind"));
    let mut value = Value::Object(obj);
    if kind.is_empty() || api_version.is_empty() {
        return Err(FileError::Object {
            source_ref: source,
            kind,
            name: meta(&value, "name"),
            message: "apiVersion and kind are required".into(),
        });
    }
    let is_list = kind == "List" || kind.ends_with("List") && value.get("items").is_some();
    if is_list {
        if let Some(Value::Array(items)) = value.get_mut("items").map(Value::take) {
            for (j, item) in items.into_iter().enumerate() {
                push_value(format!("{source}.{}", j + 1), item, out)?;
            }
        }
        return Ok(());
    }
    out.push(Document {
        source,
        api_version,
        kind,
        value,
    });
    Ok(())
}

fn object_err(d: &Document, message: impl Into<String>) -> FileError {
    FileError::Object {
        source_ref: d.source.clone(),
        kind: d.kind.clone(),
        name: d.name(),
        message: message.into(),
    }
}

fn typed<T: serde::de::DeserializeOwned>(d: &Document) -> Result<T, FileError> {
    decode(&d.value).map_err(|m| object_err(d, m))
}

/// Decode a JSON tree as `T`. On failure: `field.path: what was expected`, naming the field
/// but never the value found there (manifests carry PHI in annotations, env values, ...).
pub fn decode<'a, T: Deserialize<'a>>(value: &'a Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| with_path(e.path(), &without_values(&e.inner().to_string())))
}

/// Decode an object as the kind phi-guard judges it as, with the same error shape as
/// [`decode`].
pub fn decode_object(kind: Kind, value: &Value, namespace: Option<&str>) -> Result<Object, String> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    Object::deserialize_as(kind, namespace, de)
        .map_err(|e| with_path(&track.path(), &without_values(&e.to_string())))
}

fn with_path(path: &serde_path_to_error::Path, message: &str) -> String {
    let path = field_path(path);
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

/// A field path as Kubernetes writes it: `spec.containers[0].image`, and map keys that are
/// data rather than field names in brackets: `metadata.annotations["example.com/x"]`.
pub fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    const DATA_MAPS: &[&str] = &[
        "labels",
        "annotations",
        "matchLabels",
        "nodeSelector",
        "selector",
        "parameters",
        "data",
        "stringData",
        "volumeAttributes",
    ];
    let mut out = String::new();
    let mut parent: Option<&str> = None;
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                parent = None;
            }
            Segment::Map { key } => {
                let field_like =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if parent.is_some_and(|p| DATA_MAPS.contains(&p)) || !field_like {
                    out.push_str(&format!("[{key:?}]"));
                } else {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                parent = Some(key.as_str());
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
                parent = None;
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
                parent = None;
            }
        }
    }
    out
}

/// A serde message without the value it quotes: `invalid type: integer `42`, expected a
/// string` becomes `invalid type: integer, expected a string`; other quoted or numeric
/// values become `…` (see [`crate::telemetry::redact`]). Field and variant names that the
/// schema expects stay.
pub fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = match rest.find(", expected ") {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            // `integer `42``, `string "x"`, `floating point `1.5``: keep the type words.
            let what: Vec<&str> = found
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
                .collect();
            return format!("{prefix}{}{expected}", what.join(" "));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        if let Some(i) = rest.find(", expected ") {
            return format!("unknown variant{}", &rest[i..]);
        }
    }
    crate::telemetry::redact(message)
}

/// The kind phi-guard judges an object as: its own, or for custom resources that run pods
/// from a standard pod template (`spec.template`), the built-in kind they mirror.
pub fn judged_kind(group: &str, kind: &str) -> Option<Kind> {
    Kind::from_group_kind(group, kind).or(match (group, kind) {
        // Argo Rollouts: a Deployment with a rollout strategy.
        ("argoproj.io", "Rollout") => Some(Kind::Deployment),
        // OpenKruise workloads.
        ("apps.kruise.io", "CloneSet") => Some(Kind::Deployment),
        ("apps.kruise.io", "StatefulSet") => Some(Kind::StatefulSet),
        ("apps.kruise.io", "DaemonSet") => Some(Kind::DaemonSet),
        _ => None,
    })
}

/// Kinds [`load_state`] reads as cluster state and `check` does not judge itself.
pub fn is_state_kind(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "Namespace" | "PersistentVolume")
            | ("storage.k8s.io", "StorageClass")
            | ("networking.k8s.io", "NetworkPolicy")
            | ("security.istio.io", "PeerAuthentication")
            | ("cert-manager.io", "Certificate")
            | ("phiguard.io", "PhiPolicy")
    )
}

/// Kinds that are cluster-scoped: `--namespace` neither applies to them nor conflicts.
pub fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        (
            "",
            "Namespace" | "PersistentVolume" | "Node" | "ComponentStatus"
        ) | ("storage.k8s.io", _)
            | (
                "rbac.authorization.k8s.io",
                "ClusterRole" | "ClusterRoleBinding"
            )
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("admissionregistration.k8s.io", _)
            | ("apiregistration.k8s.io", "APIService")
            | ("scheduling.k8s.io", "PriorityClass")
            | (
                "networking.k8s.io",
                "IngressClass" | "IPAddress" | "ServiceCIDR"
            )
            | ("node.k8s.io", "RuntimeClass")
            | ("certificates.k8s.io", "CertificateSigningRequest")
            | ("flowcontrol.apiserver.k8s.io", _)
            | ("phiguard.io", "PhiPolicy")
            | ("cert-manager.io", "ClusterIssuer")
            | (
                "snapshot.storage.k8s.io",
                "VolumeSnapshotClass" | "VolumeSnapshotContent"
            )
            | ("gateway.networking.k8s.io", "GatewayClass")
    ) && !matches!((group, kind), ("storage.k8s.io", "CSIStorageCapacity"))
}

/// Where a custom resource carries containers (a `containers` list, or a `container`, with an
/// `image`), as a field path, so an object that runs pods is never skipped silently.
pub fn pod_spec_path(value: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut String, depth: usize) -> bool {
        if depth > 12 {
            return false;
        }
        match v {
            Value::Object(m) => {
                let runs = |field: &str| match m.get(field) {
                    Some(Value::Array(cs)) => cs.iter().any(|c| c.get("image").is_some()),
                    Some(c @ Value::Object(_)) => c.get("image").is_some(),
                    _ => false,
                };
                // `containers: [...]` of a pod spec, or one `container:` (Argo Workflows,
                // Tekton steps' shape).
                for field in ["containers", "container"] {
                    if runs(field) {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(field);
                        return true;
                    }
                }
                for (k, child) in m {
                    if k == "metadata" || k == "status" {
                        continue;
                    }
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    if walk(child, path, depth + 1) {
                        return true;
                    }
                    path.truncate(len);
                }
                false
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    if walk(child, path, depth + 1) {
                        return true;
                    }
                    path.truncate(len);
                }
                false
            }
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path, 0).then_some(path)
}

/// Is this document a PhiPolicy?
pub fn is_phi_policy(d: &Document) -> bool {
    d.kind == "PhiPolicy" && d.api_version.starts_with("phiguard.io/")
}

/// Read a PhiPolicy document (the spec is validated later, by `Policy::try_from`).
pub fn phi_policy(d: &Document) -> Result<PhiPolicy, FileError> {
    typed(d)
}

/// Add the cluster objects among `docs` to `state` and return the PhiPolicies found. Objects
/// phi-guard does not read are ignored. Pod controllers' templates are added as pods, so a
/// Service or Ingress in the same files can be traced to PHI pods.
pub fn load_state(docs: &[Document], state: &ClusterState) -> Result<Vec<PhiPolicy>, FileError> {
    let mut policies = Vec::new();
    for d in docs {
        let group = d.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        match (group, d.kind.as_str()) {
            ("phiguard.io", "PhiPolicy") => policies.push(phi_policy(d)?),
            ("", "Namespace") => {
                let ns: k8s_openapi::api::core::v1::Namespace = typed(d)?;
                let info = NamespaceInfo::from(&ns);
                state.namespaces.insert(info.name.clone(), info);
            }
            ("storage.k8s.io", "StorageClass") => {
                let sc: k8s_openapi::api::storage::v1::StorageClass = typed(d)?;
                let info = StorageClassInfo::from(&sc);
                state.storage_classes.insert(info.name.clone(), info);
            }
            ("", "PersistentVolume") => {
                let pv: k8s_openapi::api::core::v1::PersistentVolume = typed(d)?;
                let info = PvInfo::from(&pv);
                state.pvs.insert(info.name.clone(), info);
            }
            ("", "PersistentVolumeClaim") => {
                let pvc: k8s_openapi::api::core::v1::PersistentVolumeClaim = typed(d)?;
                let mut info = PvcInfo::from(&pvc);
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .pvcs
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            ("networking.k8s.io", "NetworkPolicy") => {
                let np: k8s_openapi::api::networking::v1::NetworkPolicy = typed(d)?;
                let mut info = NetworkPolicyInfo::from(&np);
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .network_policies
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            ("security.istio.io", "PeerAuthentication") => {
                let mut info = PeerAuthInfo::from_value(&d.value)
                    .map_err(|e| object_err(d, without_values(&e.message)))?;
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .peer_authentications
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            ("cert-manager.io", "Certificate") => {
                let mut info = CertificateInfo::from_value(&d.value)
                    .map_err(|e| object_err(d, without_values(&e.message)))?;
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .certificates
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            ("", "Service") => {
                let svc: k8s_openapi::api::core::v1::Service = typed(d)?;
                let mut info = ServiceInfo::from(&svc);
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .services
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            (g, k) => {
                // Pods and pod templates: known to Service/Ingress tracing.
                if let Some(kind) = judged_kind(g, k).filter(|k| k.has_pods()) {
                    let w = decode_object(kind, &d.value, Some("default"))
                        .map_err(|m| object_err(d, m))?;
                    if let Some(p) = w.pods() {
                        let info = PodInfo {
                            namespace: w.namespace.clone(),
                            name: format!("{}/{}", k.to_ascii_lowercase(), w.name),
                            labels: p.labels.clone(),
                            annotations: crate::view::objects::kept_annotations(&p.annotations),
                            container_names: p
                                .spec
                                .containers
                                .iter()
                                .chain(p.spec.init_containers.iter())
                                .map(|c| c.name.clone())
                                .collect(),
                        };
                        state
                            .pods
                            .insert(info.namespace.clone(), info.name.clone(), info);
                    }
                }
            }
        }
    }
    Ok(policies)
}

#[cfg(test)]
mod streaming_tests {
    use super::*;

    #[test]
    fn load_paths_streams_documents_lists_and_policies_into_the_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {phiguard.io/data-classification: phi}}
---
apiVersion: v1
kind: List
items:
- {apiVersion: storage.k8s.io/v1, kind: StorageClass, metadata: {name: gp3}, provisioner: ebs.csi.aws.com, parameters: {Encrypted: "true"}}
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: deny, namespace: payments}, spec: {podSelector: {}, policyTypes: [Ingress, Egress]}}
---
apiVersion: phiguard.io/v1alpha1
kind: PhiPolicy
metadata: {name: strict}
spec: {mode: Warn}
"#;
        std::fs::write(dir.path().join("state.yaml"), text).expect("write");
        std::fs::write(dir.path().join("ignored.txt"), "not yaml: [").expect("write");
        let state = ClusterState::new();
        let policies = load_paths(&[dir.path().to_path_buf()], &state).expect("load");
        assert_eq!(policies.len(), 1);
        assert_eq!(policies[0].metadata.name.as_deref(), Some("strict"));
        assert!(state.namespaces.get("payments").is_some());
        assert_eq!(
            state
                .storage_classes
                .get("gp3")
                .map(|c| c.param("encrypted").map(String::from)),
            Some(Some("true".to_string()))
        );
        assert!(state
            .network_policies
            .get("payments", "deny")
            .is_some_and(|n| n.is_default_deny()));

        std::fs::write(dir.path().join("broken.yaml"), "a: [1,\n").expect("write");
        let err = load_paths(&[dir.path().to_path_buf()], &ClusterState::new()).unwrap_err();
        assert!(err.to_string().contains("broken.yaml:"), "{err}");
    }
}

#[cfg(test)]
mod yaml_tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Document>, FileError> {
        let mut out = Vec::new();
        parse_documents("in.yaml", text, &mut out).map(|()| out)
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let err = parse("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: [1,\n").unwrap_err();
        match &err {
            FileError::Yaml { path, line, .. } => {
                assert_eq!((path.as_str(), *line), ("in.yaml", 4))
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().starts_with("in.yaml:4:"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_refused_not_merged() {
        let err =
            parse("apiVersion: v1\nkind: Service\nmetadata:\n  labels: {a: b}\n  labels: {c: d}\n")
                .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("in.yaml:5:"), "{text}");
        assert!(
            text.contains("duplicate") && text.contains("labels"),
            "{text}"
        );
        // JSON too (serde_json alone would keep the last value).
        let mut out = Vec::new();
        let err = parse_documents("in.json", r#"{"kind": "Service", "kind": "Pod"}"#, &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("duplicate key \"kind\""), "{err}");
    }

    #[test]
    fn multi_document_streams_lists_and_empty_documents() {
        let docs = parse(
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\n\
             apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: b}}\n",
        )
        .expect("parse");
        let names: Vec<String> = docs.iter().map(Document::name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(docs[0].source, "in.yaml#1");
        assert!(docs[1].source.ends_with(".1"), "{}", docs[1].source);
    }

    #[test]
    fn merge_keys_expand_and_local_keys_win() {
        let docs = parse(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels: &l {app: a, tier: web}\n\
             spec:\n  selector:\n    <<: *l\n    tier: api\n",
        )
        .expect("parse");
        assert_eq!(
            docs[0].value["spec"]["selector"],
            serde_json::json!({"app": "a", "tier": "api"})
        );
    }

    #[test]
    fn byte_order_mark_and_concatenated_json() {
        let docs =
            parse("\u{feff}apiVersion: v1\nkind: Service\nmetadata: {name: a}\n").expect("bom");
        assert_eq!(docs[0].api_version, "v1");
        let mut out = Vec::new();
        parse_documents(
            "in.json",
            "\u{feff}{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"}}\n\
             {\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"b\"}}",
            &mut out,
        )
        .expect("json stream");
        let sources: Vec<&str> = out.iter().map(|d| d.source.as_str()).collect();
        assert_eq!(sources, ["in.json#1", "in.json#2"]);
        // A YAML flow mapping starts like JSON but is still read.
        let docs = parse("{apiVersion: v1, kind: Service, metadata: {name: c}}").expect("flow");
        assert_eq!(docs[0].name(), "c");
    }

    #[test]
    fn decode_errors_name_the_field_not_the_value() {
        let v = serde_json::json!({"metadata": {"name": "x", "annotations": {"example.com/id": 424242424242_u64}}});
        let err = decode_object(Kind::Pod, &v, None).unwrap_err();
        assert_eq!(
            err,
            "metadata.annotations[\"example.com/id\"]: invalid type: integer, expected a string"
        );
        let v = serde_json::json!({"spec": {"containers": [{"name": "a", "image": 7}]}});
        let err = decode_object(Kind::Pod, &v, None).unwrap_err();
        assert!(
            err.starts_with("spec.containers[0].image: invalid type: integer"),
            "{err}"
        );
        assert!(!err.contains('7'), "{err}");
        assert_eq!(
            without_values("invalid value: string \"s3cret\", expected a port"),
            "invalid value: string, expected a port"
        );
    }

    #[test]
    fn object_refs_leave_out_what_is_unknown() {
        assert_eq!(object_ref("f#1", "", ""), "f#1");
        assert_eq!(object_ref("f#1", "Pod", ""), "f#1: Pod");
        assert_eq!(object_ref("f#1", "Pod", "a"), "f#1: Pod \"a\"");
    }
}
