//! Cluster state and objects from YAML files: multi-document files, `kind: List`, directories.
//! Used by `phi-guard check`, `serve --cluster-state` and tests.

mod aliases;
#[cfg(test)]
mod block_tests;
mod decode;
mod input;
mod kinds;
mod locate;
mod safeguards;
#[cfg(test)]
mod tests;
mod yaml;
mod yaml_block;
mod yaml_fast;
mod yaml_inline;

pub(crate) use decode::*;
pub(crate) use input::{read_bounded, DEFAULT_MAX_FILE_MIB, MIB};
pub(crate) use kinds::*;
pub(crate) use locate::{steps, FileLocator, Position, SourceRef, Step};
#[cfg(test)]
pub(crate) use yaml::parse_documents;
use yaml::*;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::ClusterState;
use crate::kinds::Store;
use crate::object::{Kind, Object};
use crate::policy::PhiPolicy;
use crate::view::platform::{from_config_map, from_felix_configuration};
use crate::view::{
    CertificateInfo, KumaMeshInfo, KumaMeshTlsInfo, NamespaceInfo, NetworkPolicyInfo, PeerAuthInfo,
    PlatformSource, PvInfo, PvcInfo, ServiceInfo, StorageClassInfo,
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
    #[error("{path}: larger than the limit of {limit} (--max-file-mib)")]
    TooLarge { path: String, limit: String },
    #[error("{path}: {what}: only regular files and standard input are read")]
    NotRegular { path: String, what: &'static str },
    #[error("{}: {message}", object_ref(source_ref, kind, name))]
    Object {
        source_ref: String,
        kind: String,
        name: String,
        message: String,
    },
}

/// `source: Kind "name"`, leaving out what is unknown (never `source:  "":`).
pub(crate) fn object_ref(source: &str, kind: &str, name: &str) -> String {
    match (kind.is_empty(), name.is_empty()) {
        (true, true) => source.to_string(),
        // The API server needs a name: say it is missing rather than print a bare kind.
        (false, true) => format!("{source}: {kind} with no metadata.name"),
        (true, false) => format!("{source}: {name:?}"),
        (false, false) => format!("{source}: {kind} {name:?}"),
    }
}

/// One YAML document, as JSON, with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// `path#index` (index of the document in its file, from 1; list items get `.item`).
    pub source: String,
    pub api_version: String,
    pub kind: String,
    pub value: Value,
}

impl Document {
    pub(crate) fn name(&self) -> String {
        meta(&self.value, "name")
    }
    pub(crate) fn namespace(&self) -> String {
        meta(&self.value, "namespace")
    }
    /// The API group (`""` for the core group).
    pub(crate) fn group(&self) -> &str {
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
pub(crate) struct SkippedInput {
    /// `path` or `path#document`.
    pub source: String,
    pub reason: String,
}

/// How a file was reached: named on the command line (or standard input), where anything
/// that is not a Kubernetes object is an error, or found walking a directory, where files
/// that are not manifests (`Chart.yaml`, `values.yaml`, CI workflows, unrendered templates)
/// are skipped with a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Named,
    Walked,
}

/// Reads files and directories, each file once: symbolic links are followed, and a file or
/// directory reached again (a link cycle, two links to one file, a path given twice) is
/// skipped with a note, so a link loop can neither hang the walk nor double the objects.
#[derive(Debug)]
pub(crate) struct Reader {
    seen: HashSet<PathBuf>,
    /// Bytes one file may hold at most.
    max_bytes: u64,
    /// The documents read, in order.
    pub docs: Vec<Document>,
    /// What was skipped, in order.
    pub skipped: Vec<SkippedInput>,
}

impl Reader {
    pub(crate) fn new() -> Self {
        Self::with_max_bytes(DEFAULT_MAX_FILE_MIB * MIB)
    }

    /// A reader refusing any file over `max_bytes`.
    pub(crate) fn with_max_bytes(max_bytes: u64) -> Self {
        Reader {
            seen: HashSet::new(),
            max_bytes,
            docs: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Read a file, or a directory recursively (`*.yaml`, `*.yml`, `*.json` in name order).
    pub(crate) fn read_path(&mut self, path: &Path) -> Result<(), FileError> {
        let mut docs = Vec::new();
        self.read_path_each(path, &mut |d| {
            docs.push(d);
            Ok(())
        })?;
        self.docs.extend(docs);
        Ok(())
    }

    /// As [`Self::read_path`], handing each document to `f` instead of keeping it, as soon as
    /// it is read: only one document's tree is in memory at a time. (A file found walking a
    /// directory is handed over once read whole: a template that fails to parse is skipped
    /// entirely.)
    pub(crate) fn read_path_each(
        &mut self,
        path: &Path,
        f: &mut dyn FnMut(Document) -> Result<(), FileError>,
    ) -> Result<(), FileError> {
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
            let bytes = input::read_file(&file, self.max_bytes)?;
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
            self.read_text_each(&name, &text, origin, f)?;
        }
        Ok(())
    }

    /// Read documents from text (`name` names it in sources and errors; `<stdin>`), handing
    /// each to `f` as [`Self::read_path_each`] does.
    pub(crate) fn read_text_each(
        &mut self,
        name: &str,
        text: &str,
        origin: Origin,
        f: &mut dyn FnMut(Document) -> Result<(), FileError>,
    ) -> Result<(), FileError> {
        let (mut not_objects, mut read) = (0usize, 0usize);
        let (mut batch, mut held) = (Vec::new(), Vec::new());
        let result = for_each_value(name, text, |source, value| {
            let r = match push_value(source, value, &mut batch) {
                Err(FileError::Object { .. }) if origin == Origin::Walked => {
                    not_objects += 1;
                    Ok(())
                }
                r => r,
            };
            for d in batch.drain(..) {
                read += 1;
                match origin {
                    Origin::Walked => held.push(d),
                    Origin::Named => f(d)?,
                }
            }
            r
        });
        match result {
            Ok(()) => {
                for d in held {
                    f(d)?;
                }
                if not_objects > 0 {
                    let what = if read == 0 {
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
/// ending in .yaml, .yml or .json, in name order; each file once; none over `max_bytes`).
pub(crate) fn read_documents(
    paths: &[PathBuf],
    max_bytes: u64,
) -> Result<Vec<Document>, FileError> {
    let mut reader = Reader::with_max_bytes(max_bytes);
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
    // Named or met walking a directory, a FIFO would block the read and a device never end it.
    input::refuse_special(p, &md)?;
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

/// Load the cluster objects in these files and directories into `state`, document by document
/// (memory stays at one document's tree, not the whole set: `serve --cluster-state` with tens of
/// thousands of objects). No file may hold more than `max_bytes`. Returns the PhiPolicies found.
pub(crate) fn load_paths(
    paths: &[PathBuf],
    state: &ClusterState,
    max_bytes: u64,
) -> Result<Vec<PhiPolicy>, FileError> {
    let mut files = Vec::new();
    let (mut seen, mut skipped) = (HashSet::new(), Vec::new());
    for p in paths {
        collect_files(p, Origin::Named, &mut seen, &mut files, &mut skipped)?;
    }
    let mut policies = Vec::new();
    for (file, origin) in files {
        let name = file.display().to_string();
        let bytes = input::read_file(&file, max_bytes)?;
        let text = String::from_utf8(bytes).map_err(|_| FileError::Io {
            path: name.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
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

/// A Pod, or a pod controller's template as a pod, known to Service and Ingress tracing.
fn add_pod_template(d: &Document, kind: Kind, state: &ClusterState) -> Result<(), FileError> {
    let w = decode_object(kind, &d.value, Some("default")).map_err(|m| object_err(d, m))?;
    add_template_of(&w, &d.kind, state);
    Ok(())
}

/// Add the pod an object already decoded will run (its template, named `kind/name` by the kind
/// as written), as [`load_state`] does for a pod-running document: `check` decodes each input
/// once and gives the state the object it judges.
pub(crate) fn add_template_of(w: &crate::object::Object, written_kind: &str, state: &ClusterState) {
    if let Some(info) = w.template_pod(format!("{}/{}", written_kind.to_ascii_lowercase(), w.name))
    {
        state
            .pods
            .insert(info.namespace.clone(), info.name.clone(), info);
    }
}

/// Is this document a PhiPolicy?
pub(crate) fn is_phi_policy(d: &Document) -> bool {
    d.kind == "PhiPolicy" && d.api_version.starts_with("phiguard.io/")
}

/// Read a PhiPolicy document (the spec is validated later, by `Policy::try_from`).
pub(crate) fn phi_policy(d: &Document) -> Result<PhiPolicy, FileError> {
    typed(d)
}

/// Add the cluster objects among `docs` to `state` and return the PhiPolicies found. Objects
/// phi-guard does not read are ignored. Pod controllers' templates are added as pods, so a
/// Service or Ingress in the same files can be traced to PHI pods.
pub(crate) fn load_state(
    docs: &[Document],
    state: &ClusterState,
) -> Result<Vec<PhiPolicy>, FileError> {
    let mut policies = Vec::new();
    for d in docs {
        let group = d.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        safeguards::note_crd(group, d, state);
        let spec = crate::kinds::find(group, &d.kind);
        let Some(store) = spec.and_then(|k| k.store) else {
            // Pod-running kinds without a store of their own (pod controllers and the custom
            // resources that mirror them): their templates are known to Service tracing.
            if let Some(kind) = judged_kind(group, &d.kind).filter(|k| k.has_pods()) {
                add_pod_template(d, kind, state)?;
            }
            continue;
        };
        match store {
            Store::PhiPolicies => policies.push(phi_policy(d)?),
            // Read by `check`'s exception loading.
            Store::PhiExceptions => {}
            Store::Pods => add_pod_template(d, Kind::Pod, state)?,
            Store::PodDisruptionBudgets
            | Store::IstioAuthorizationPolicies
            | Store::LinkerdAuthorizationPolicies
            | Store::LinkerdServers
            | Store::VeleroSchedules => safeguards::load(store, d, state)?,
            Store::Namespaces => {
                let ns: k8s_openapi::api::core::v1::Namespace = typed(d)?;
                let mut info = NamespaceInfo::from(&ns);
                // As `kubectl apply` merges: the file sets its labels and annotations, the
                // ones another manager set (a PHI label from --cluster-state) stay.
                if let Some(known) = state.namespaces.get(&info.name) {
                    let mut labels = known.labels.clone();
                    labels.extend(info.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                    let mut annotations = known.annotations.clone();
                    annotations
                        .extend(info.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
                    info.labels = labels;
                    info.annotations = annotations;
                }
                state.namespaces.insert(info.name.clone(), info);
            }
            Store::StorageClasses => {
                let sc: k8s_openapi::api::storage::v1::StorageClass = typed(d)?;
                let info = StorageClassInfo::from(&sc);
                state.storage_classes.insert(info.name.clone(), info);
            }
            Store::PersistentVolumes => {
                let pv: k8s_openapi::api::core::v1::PersistentVolume = typed(d)?;
                let info = PvInfo::from(&pv);
                state.pvs.insert(info.name.clone(), info);
            }
            Store::PersistentVolumeClaims => {
                let pvc: k8s_openapi::api::core::v1::PersistentVolumeClaim = typed(d)?;
                let mut info = PvcInfo::from(&pvc);
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .pvcs
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            Store::NetworkPolicies => {
                let np: k8s_openapi::api::networking::v1::NetworkPolicy = typed(d)?;
                let mut info = NetworkPolicyInfo::from(&np);
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .network_policies
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            Store::PeerAuthentications => {
                let mut info = PeerAuthInfo::from_value(&d.value)
                    .map_err(|e| object_err(d, without_values(&e.message)))?;
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .peer_authentications
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            Store::Certificates => {
                let mut info = CertificateInfo::from_value(&d.value)
                    .map_err(|e| object_err(d, without_values(&e.message)))?;
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .certificates
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            Store::PlatformConfigMaps => {
                // Only the platform ConfigMaps, and of those only their encryption settings.
                if let Some(source) = PlatformSource::of_config_map(&d.namespace(), &d.name()) {
                    let cm: k8s_openapi::api::core::v1::ConfigMap = typed(d)?;
                    let info = from_config_map(source, &cm.data.unwrap_or_default())
                        .map_err(|m| object_err(d, m))?;
                    state.platform.insert(source.key().to_string(), info);
                }
            }
            Store::FelixConfiguration => {
                if d.name() == "default" {
                    let info = from_felix_configuration(&d.value).map_err(|m| object_err(d, m))?;
                    state
                        .platform
                        .insert(PlatformSource::Calico.key().to_string(), info);
                }
            }
            Store::KumaMeshTls => {
                let mut info =
                    KumaMeshTlsInfo::from_value(&d.value).map_err(|m| object_err(d, m))?;
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                let key = format!("{}/{}", info.namespace, info.name);
                state.kuma_mesh_tls.insert(key, info);
            }
            Store::KumaMeshes => {
                let info = KumaMeshInfo::from_value(&d.value).map_err(|m| object_err(d, m))?;
                state.kuma_meshes.insert(info.name.clone(), info);
            }
            Store::Services => {
                let svc: k8s_openapi::api::core::v1::Service = typed(d)?;
                let mut info = ServiceInfo::from(&svc);
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .services
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
        }
    }
    Ok(policies)
}
