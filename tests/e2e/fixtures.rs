//! Manifests the tests apply: namespaces, StorageClasses, claims, NetworkPolicies and a PHI app in
//! a non-compliant and a compliant shape. JSON (kubectl takes it as well as YAML).

use serde_json::{json, Value};

/// The default PHI label of the hipaa-baseline.
pub const PHI_KEY: &str = "phiguard.io/data-classification";
pub const PHI_VALUE: &str = "phi";
pub const PHI: (&str, &str) = (PHI_KEY, PHI_VALUE);

pub const APP_IMAGE: &str = "registry.example-health.com/records/api@sha256:99a6d3ef64658dbfe9d50401cbb711450ebffcecac9c3fd780720e7db645e30f";
pub const FLUENT_BIT: &str = "cr.fluentbit.io/fluent/fluent-bit:3.2.2@sha256:6b50cf23cac8bc5104461a26c745bdd732e1c2a16caba311051d0b56b1971a25";

fn to_text(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("serialize manifest")
}

fn label_map(labels: &[(&str, &str)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

pub fn namespace(name: &str, labels: &[(&str, &str)]) -> String {
    to_text(&json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": label_map(labels)},
    }))
}

/// An EBS class that encrypts with a customer-managed KMS key.
pub fn encrypted_storage_class(name: &str) -> String {
    to_text(&json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "labels": {"e2e.phiguard.io/fixture": "true"}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {
            "type": "gp3",
            "encrypted": "true",
            "kmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        },
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
}

/// An EBS class without encryption.
pub fn plain_storage_class(name: &str) -> String {
    to_text(&json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "labels": {"e2e.phiguard.io/fixture": "true"}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3"},
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
}

/// A claim of `class` (labeled PHI when `phi`).
pub fn pvc(ns: &str, name: &str, class: &str, phi: bool) -> String {
    let labels = if phi { label_map(&[PHI]) } else { json!({}) };
    to_text(&json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "storageClassName": class,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }))
}

/// Default deny for every pod of the namespace, both directions.
pub fn default_deny(ns: &str, name: &str) -> String {
    to_text(&json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }))
}

/// Ingress and egress isolation of the pods labeled `app=<app>`, allowing only HTTPS from pods of
/// the same app.
pub fn isolate_app(ns: &str, name: &str, app: &str) -> String {
    to_text(&json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "podSelector": {"matchLabels": {"app": app}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": app}}}],
                         "ports": [{"port": 8443}]}],
        },
    }))
}

/// A PHI application: what it carries decides which safeguards it proves.
#[derive(Debug, Clone)]
pub struct App {
    pub ns: String,
    pub name: String,
    /// The PHI label on the object and its pod template.
    pub phi_label: bool,
    /// A PersistentVolumeClaim mounted at /data.
    pub claim: Option<String>,
    /// A hostPath volume (never provably encrypted).
    pub host_path: bool,
    /// An approved, digest-pinned Fluent Bit sidecar sharing an in-memory log volume.
    pub audit_sidecar: bool,
    /// Application TLS: a cert-manager CSI certificate mounted into the app, HTTPS port.
    pub app_tls: bool,
    pub replicas: i32,
    /// Extra labels on the object and its pod template.
    pub labels: Vec<(String, String)>,
}

impl App {
    /// PHI-labeled, nothing else: no encryption proof, no mesh or TLS, no audit sidecar.
    pub fn bare(ns: &str, name: &str) -> App {
        App {
            ns: ns.into(),
            name: name.into(),
            phi_label: true,
            claim: None,
            host_path: false,
            audit_sidecar: false,
            app_tls: false,
            replicas: 1,
            labels: Vec::new(),
        }
    }

    /// PHI with every safeguard except the ones the caller turns off. `claim` must be on an
    /// encrypting class, and the namespace needs an isolating NetworkPolicy.
    pub fn compliant(ns: &str, name: &str, claim: Option<&str>) -> App {
        App {
            claim: claim.map(str::to_string),
            audit_sidecar: true,
            app_tls: true,
            ..App::bare(ns, name)
        }
    }

    /// PHI with an unencrypted claim, no NetworkPolicy (caller's namespace), no mesh or TLS, no
    /// audit sidecar.
    pub fn violating(ns: &str, name: &str, unencrypted_claim: &str) -> App {
        App {
            claim: Some(unencrypted_claim.into()),
            ..App::bare(ns, name)
        }
    }

    pub fn without_phi_label(mut self) -> App {
        self.phi_label = false;
        self
    }

    pub fn with_label(mut self, k: &str, v: &str) -> App {
        self.labels.push((k.into(), v.into()));
        self
    }

    pub fn with_replicas(mut self, n: i32) -> App {
        self.replicas = n;
        self
    }

    pub fn with_host_path(mut self) -> App {
        self.host_path = true;
        self
    }

    fn labels_json(&self, with_app: bool) -> Value {
        let mut m = serde_json::Map::new();
        if with_app {
            m.insert("app".into(), Value::String(self.name.clone()));
        }
        if self.phi_label {
            m.insert(PHI_KEY.into(), Value::String(PHI_VALUE.into()));
        }
        for (k, v) in &self.labels {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        Value::Object(m)
    }

    fn pod_spec(&self) -> Value {
        let mut app_mounts = vec![json!({"name": "logs", "mountPath": "/var/log/app"})];
        let mut volumes =
            vec![json!({"name": "logs", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})];
        if let Some(claim) = &self.claim {
            app_mounts.push(json!({"name": "data", "mountPath": "/data"}));
            volumes.push(json!({"name": "data", "persistentVolumeClaim": {"claimName": claim}}));
        }
        if self.host_path {
            app_mounts.push(json!({"name": "scratch", "mountPath": "/scratch"}));
            volumes.push(json!({"name": "scratch", "hostPath": {"path": "/mnt/scratch", "type": "DirectoryOrCreate"}}));
        }
        let port_name = if self.app_tls { "https" } else { "http" };
        if self.app_tls {
            app_mounts.push(json!({"name": "tls", "mountPath": "/etc/tls", "readOnly": true}));
            volumes.push(json!({"name": "tls", "csi": {
                "driver": "csi.cert-manager.io",
                "readOnly": true,
                "volumeAttributes": {
                    "csi.cert-manager.io/issuer-name": "records-ca",
                    "csi.cert-manager.io/issuer-kind": "ClusterIssuer",
                    "csi.cert-manager.io/dns-names": "${POD_NAME}.${POD_NAMESPACE}.svc",
                },
            }}));
        }
        let mut containers = vec![json!({
            "name": "api",
            "image": APP_IMAGE,
            "ports": [{"name": port_name, "containerPort": 8443}],
            "volumeMounts": app_mounts,
            "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        })];
        if self.audit_sidecar {
            containers.push(json!({
                "name": "fluent-bit",
                "image": FLUENT_BIT,
                "volumeMounts": [{"name": "logs", "mountPath": "/var/log/app", "readOnly": true}],
                "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false},
                "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            }));
        }
        json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": containers,
            "volumes": volumes,
        })
    }

    fn controller(&self, api_version: &str, kind: &str) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": self.name, "namespace": self.ns, "labels": self.labels_json(true)},
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": self.name}},
                "template": {
                    "metadata": {"labels": self.labels_json(true)},
                    "spec": self.pod_spec(),
                },
            },
        })
    }

    pub fn deployment(&self) -> String {
        to_text(&self.controller("apps/v1", "Deployment"))
    }

    pub fn pod(&self) -> String {
        to_text(&json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.ns, "labels": self.labels_json(true)},
            "spec": self.pod_spec(),
        }))
    }
}

/// A bare PHI pod, with or without every safeguard (no claim: nothing to encrypt at rest).
pub fn bare_pod(ns: &str, name: &str, labels: &[(&str, &str)], compliant: bool) -> String {
    let mut app = if compliant {
        App::compliant(ns, name, None)
    } else {
        App::bare(ns, name)
    };
    for (k, v) in labels {
        app = app.with_label(k, v);
    }
    app.pod()
}
