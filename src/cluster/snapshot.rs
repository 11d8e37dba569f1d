//! A cluster's objects as documents, for `phi-guard report --from-cluster`: the judged kinds
//! (controller-owned ones left out: their controller speaks for them), the kinds rules consult,
//! PhiPolicies and PhiExceptions, listed once with consistent reads. Optional CRDs that are not
//! installed are skipped.

use std::collections::BTreeMap;

use anyhow::Context as _;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Client;

use super::files::Document;

/// (group, version, kind, plural, judged)
const KINDS: [(&str, &str, &str, &str, bool); 19] = [
    ("", "v1", "Namespace", "namespaces", false),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
    ),
    ("", "v1", "PersistentVolume", "persistentvolumes", false),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        false,
    ),
    (
        "security.istio.io",
        "v1",
        "PeerAuthentication",
        "peerauthentications",
        false,
    ),
    (
        "cert-manager.io",
        "v1",
        "Certificate",
        "certificates",
        false,
    ),
    ("phiguard.io", "v1alpha1", "PhiPolicy", "phipolicies", false),
    (
        "phiguard.io",
        "v1alpha1",
        "PhiException",
        "phiexceptions",
        false,
    ),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    ),
    ("", "v1", "Service", "services", true),
    ("", "v1", "Pod", "pods", true),
    (
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        true,
    ),
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "StatefulSet", "statefulsets", true),
    ("apps", "v1", "DaemonSet", "daemonsets", true),
    ("apps", "v1", "ReplicaSet", "replicasets", true),
    ("batch", "v1", "Job", "jobs", true),
    ("batch", "v1", "CronJob", "cronjobs", true),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", true),
];

/// Every object `report` needs, the PhiPolicies' generations, and the API server's address.
pub(crate) async fn documents() -> anyhow::Result<(Vec<Document>, BTreeMap<String, i64>, String)> {
    let client = Client::try_default()
        .await
        .context("connecting to the API server (KUBECONFIG or in-cluster config)")?;
    let context = client.default_namespace().to_string();
    let mut docs = Vec::new();
    let mut generations = BTreeMap::new();
    for (group, version, kind, plural, judged) in KINDS {
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = match api.list(&ListParams::default()).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => continue, // CRD not installed
            Err(e) => return Err(e).with_context(|| format!("listing {kind}")),
        };
        for o in list.items {
            if judged
                && o.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.controller == Some(true))
            {
                continue;
            }
            let api_version = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            if kind == "PhiPolicy" {
                if let (Some(n), Some(g)) = (&o.metadata.name, o.metadata.generation) {
                    generations.insert(n.clone(), g);
                }
            }
            let mut value = serde_json::to_value(&o).context("encoding an object")?;
            value["apiVersion"] = api_version.clone().into();
            value["kind"] = kind.into();
            docs.push(Document {
                source: format!("cluster:{plural}"),
                api_version,
                kind: kind.to_string(),
                value,
            });
        }
    }
    Ok((docs, generations, format!("default namespace {context}")))
}
