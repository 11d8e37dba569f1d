//! Cluster state and objects from YAML files: multi-document files, `kind: List`, directories.
//! Used by `phi-guard check`, `serve --cluster-state` and tests.

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
    #[error("{source_ref}: {kind} {name:?}: {message}")]
    Object {
        source_ref: String,
        kind: String,
        name: String,
        message: String,
    },
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
}

fn meta(v: &Value, key: &str) -> String {
    v.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Read every YAML document under these files and directories (directories recursively, files
/// ending in .yaml, .yml or .json, in name order).
pub fn read_documents(paths: &[PathBuf]) -> Result<Vec<Document>, FileError> {
    let mut files = Vec::new();
    for p in paths {
        collect_files(p, &mut files)?;
    }
    let mut docs = Vec::new();
    for f in files {
        read_file(&f, &mut docs)?;
    }
    Ok(docs)
}

fn collect_files(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), FileError> {
    let io = |e| FileError::Io {
        path: p.display().to_string(),
        source: e,
    };
    let md = std::fs::metadata(p).map_err(io)?;
    if md.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                collect_files(&e, out)?;
            } else if e
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
            {
                out.push(e);
            }
        }
    } else {
        out.push(p.to_path_buf());
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
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|e| {
            let loc = e.location();
            FileError::Yaml {
                path: name.to_string(),
                line: loc.as_ref().map_or(0, |l| l.line()),
                column: loc.as_ref().map_or(0, |l| l.column()),
                message: e.to_string(),
            }
        })?;
        push_value(format!("{name}#{}", i + 1), value, &mut batch)?;
        for d in batch.drain(..) {
            f(d)?;
        }
    }
    Ok(())
}

/// Load the cluster objects in these files and directories into `state`, document by document
/// (memory stays at one document's tree, not the whole set: `serve --cluster-state` with tens of
/// thousands of objects). Returns the PhiPolicies found.
pub fn load_paths(paths: &[PathBuf], state: &ClusterState) -> Result<Vec<PhiPolicy>, FileError> {
    let mut files = Vec::new();
    for p in paths {
        collect_files(p, &mut files)?;
    }
    let mut policies = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| FileError::Io {
            path: name.clone(),
            source: e,
        })?;
        for_each_document(&name, &text, |d| {
            policies.extend(load_state(std::slice::from_ref(&d), state)?);
            Ok(())
        })?;
    }
    Ok(policies)
}

fn push_value(source: String, value: Value, out: &mut Vec<Document>) -> Result<(), FileError> {
    if value.is_null() {
        return Ok(()); // empty document (e.g. a trailing `---`)
    }
    let Some(obj) = value.as_object() else {
        return Err(FileError::Object {
            source_ref: source,
            kind: String::new(),
            name: String::new(),
            message: "a Kubernetes object (a mapping with apiVersion and kind) was expected".into(),
        });
    };
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind.is_empty() || api_version.is_empty() {
        return Err(FileError::Object {
            source_ref: source,
            kind,
            name: meta(&value, "name"),
            message: "apiVersion and kind are required".into(),
        });
    }
    if kind == "List" || kind.ends_with("List") && obj.contains_key("items") {
        if let Some(Value::Array(items)) = obj.get("items") {
            for (j, item) in items.iter().enumerate() {
                push_value(format!("{source}.{}", j + 1), item.clone(), out)?;
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
    T::deserialize(&d.value).map_err(|e| object_err(d, e.to_string()))
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
                let mut info =
                    PeerAuthInfo::from_value(&d.value).map_err(|e| object_err(d, e.message))?;
                if info.namespace.is_empty() {
                    info.namespace = "default".into();
                }
                state
                    .peer_authentications
                    .insert(info.namespace.clone(), info.name.clone(), info);
            }
            ("cert-manager.io", "Certificate") => {
                let mut info =
                    CertificateInfo::from_value(&d.value).map_err(|e| object_err(d, e.message))?;
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
                if let Some(kind) = Kind::from_group_kind(g, k).filter(|k| k.has_pods()) {
                    let w = Object::from_value(kind, &d.value, Some("default"))
                        .map_err(|e| object_err(d, e.message))?;
                    if let Some(p) = w.pods() {
                        let info = PodInfo {
                            namespace: w.namespace.clone(),
                            name: format!("{}/{}", kind.as_str().to_ascii_lowercase(), w.name),
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
