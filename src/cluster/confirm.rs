//! Consistent reads for decisions the watch caches cannot settle (see `view::confirm`): GET and
//! LIST without a resourceVersion, which the API server answers from etcd (or from a watch
//! cache it first brings up to date), never from a stale cache. Only on the deny path, for
//! objects in unknown namespaces, and for a Namespace labeled into PHI scope (its workloads,
//! which the caches keep only lean): the common path makes no API call.

use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Client;

use crate::view::confirm::{Fresh, Lookups};
use crate::view::{
    CertificateInfo, KumaMeshInfo, KumaMeshTlsInfo, NamespaceInfo, NetworkPolicyInfo, PeerAuthInfo,
    PlatformEncryption, PlatformSource, PvInfo, PvcInfo, RawObject, StorageClassInfo,
};

/// Default budget for one confirmation (all its reads run at once). Below the chart's webhook
/// `timeoutSeconds` (10), so the answer still reaches the API server when a read times out.
pub(crate) const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// A confirmation could not be completed; the decision stays as the cache made it, unless it
/// rested on an unknown namespace (then the request is refused: fail closed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfirmError {
    #[error("reading {what} from the API server timed out after {0:?}", what = .1)]
    Timeout(Duration, String),
    #[error("reading {what} from the API server failed: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

impl ConfirmError {
    /// The metric label.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            ConfirmError::Timeout(..) => "timeout",
            ConfirmError::Api { .. } => "error",
        }
    }
}

/// Reads what a decision lacked, with a consistent read per object or list.
#[derive(Clone)]
pub(crate) struct Confirmer {
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for Confirmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmer")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

enum Read {
    Namespace(String, Option<Arc<NamespaceInfo>>),
    StorageClasses(Vec<Arc<StorageClassInfo>>),
    Pvc(String, String, Option<Arc<PvcInfo>>),
    Pv(String, Option<Arc<PvInfo>>),
    NetworkPolicies(String, Arc<[Arc<NetworkPolicyInfo>]>),
    PeerAuthentications(String, Arc<[Arc<PeerAuthInfo>]>),
    Certificates(String, Vec<Arc<CertificateInfo>>),
    Platform(PlatformSource, Option<Arc<PlatformEncryption>>),
    KumaMesh(String, Option<Arc<KumaMeshInfo>>),
    KumaMeshTls(Vec<Arc<KumaMeshTlsInfo>>),
    Owners(
        Vec<(
            super::owner_reads::OwnerKey,
            Option<Arc<crate::view::OwnerInfo>>,
        )>,
    ),
    ControllerPod(
        super::owner_reads::OwnerKey,
        Option<Arc<crate::view::PodInfo>>,
    ),
    NamespaceObjects(String, Arc<[Arc<RawObject>]>),
}

type ReadFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Read, ConfirmError>> + Send>>;

fn api_err(what: String) -> impl FnOnce(kube::Error) -> ConfirmError {
    move |source| ConfirmError::Api { what, source }
}

/// A 404 on a custom resource's list: its CRD is not installed, so there are none.
fn crd_absent(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// A platform object that does not exist, or that phi-guard is not granted (the chart grants
/// each by name, and some only on request): unknown, as the watch cache would have it.
fn unreadable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 403)
}

/// A consistent read of one platform encryption object.
async fn read_platform(client: Client, source: PlatformSource) -> Result<Read, ConfirmError> {
    let what = source.object().to_string();
    let info = if let Some((ns, name)) = source.config_map() {
        let api: Api<ConfigMap> = Api::namespaced(client, ns);
        match api.get_opt(name).await {
            Ok(got) => got.and_then(|cm| {
                crate::view::platform::from_config_map(source, &cm.data.unwrap_or_default()).ok()
            }),
            Err(e) if unreadable(&e) => None,
            Err(source) => return Err(ConfirmError::Api { what, source }),
        }
    } else {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("crd.projectcalico.org", "v1", "FelixConfiguration"),
            "felixconfigurations",
        );
        let api: Api<DynamicObject> = Api::all_with(client, &ar);
        match api.get_opt("default").await {
            Ok(got) => got
                .and_then(|o| serde_json::to_value(o).ok())
                .and_then(|v| crate::view::platform::from_felix_configuration(&v).ok()),
            Err(e) if unreadable(&e) => None,
            Err(source) => return Err(ConfirmError::Api { what, source }),
        }
    };
    Ok(Read::Platform(source, info.map(Arc::new)))
}

/// A consistent read of one Kuma Mesh (an absent CRD or Mesh: unknown).
async fn read_kuma_mesh(client: Client, name: String) -> Result<Read, ConfirmError> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kuma.io", "v1alpha1", "Mesh"),
        "meshes",
    );
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let info = match api.get_opt(&name).await {
        Ok(got) => got
            .and_then(|o| serde_json::to_value(o).ok())
            .and_then(|v| KumaMeshInfo::from_value(&v).ok()),
        Err(e) if unreadable(&e) => None,
        Err(source) => {
            return Err(ConfirmError::Api {
                what: format!("Kuma Mesh {name}"),
                source,
            })
        }
    };
    Ok(Read::KumaMesh(name, info.map(Arc::new)))
}

impl Confirmer {
    pub(crate) fn new(client: Client, timeout: Duration) -> Self {
        Confirmer { client, timeout }
    }

    /// Read everything `lookups` names, all at once, within the budget.
    pub(crate) async fn read(&self, lookups: &Lookups) -> Result<Fresh, ConfirmError> {
        let mut reads: Vec<ReadFuture> = Vec::new();
        for ns in &lookups.namespaces {
            let api: Api<Namespace> = Api::all(self.client.clone());
            let ns = ns.clone();
            reads.push(Box::pin(async move {
                let got = api
                    .get_opt(&ns)
                    .await
                    .map_err(api_err(format!("Namespace {ns}")))?;
                let info = got.as_ref().map(|n| Arc::new(NamespaceInfo::from(n)));
                Ok(Read::Namespace(ns, info))
            }));
        }
        if lookups.storage_classes {
            let api: Api<StorageClass> = Api::all(self.client.clone());
            reads.push(Box::pin(async move {
                let list = api
                    .list(&ListParams::default())
                    .await
                    .map_err(api_err("StorageClasses".into()))?;
                Ok(Read::StorageClasses(
                    list.items
                        .iter()
                        .map(|c| Arc::new(StorageClassInfo::from(c)))
                        .collect(),
                ))
            }));
        }
        for (ns, name) in &lookups.pvcs {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
            let (ns, name) = (ns.clone(), name.clone());
            reads.push(Box::pin(async move {
                let got = api
                    .get_opt(&name)
                    .await
                    .map_err(api_err(format!("PersistentVolumeClaim {ns}/{name}")))?;
                let info = got.as_ref().map(|c| Arc::new(PvcInfo::from(c)));
                Ok(Read::Pvc(ns, name, info))
            }));
        }
        for name in &lookups.pvs {
            let api: Api<PersistentVolume> = Api::all(self.client.clone());
            let name = name.clone();
            reads.push(Box::pin(async move {
                let got = api
                    .get_opt(&name)
                    .await
                    .map_err(api_err(format!("PersistentVolume {name}")))?;
                let info = got.as_ref().map(|v| Arc::new(PvInfo::from(v)));
                Ok(Read::Pv(name, info))
            }));
        }
        for ns in &lookups.network_policies {
            let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), ns);
            let ns = ns.clone();
            reads.push(Box::pin(async move {
                let list = api
                    .list(&ListParams::default())
                    .await
                    .map_err(api_err(format!("NetworkPolicies in {ns}")))?;
                let mut items: Vec<Arc<NetworkPolicyInfo>> = list
                    .items
                    .iter()
                    .map(|p| Arc::new(NetworkPolicyInfo::from(p)))
                    .collect();
                items.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(Read::NetworkPolicies(ns, items.into()))
            }));
        }
        for ns in &lookups.peer_authentications {
            let ar = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("security.istio.io", "v1", "PeerAuthentication"),
                "peerauthentications",
            );
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
            let ns = ns.clone();
            reads.push(Box::pin(async move {
                let items = custom_list(&api, &format!("PeerAuthentications in {ns}"), |v| {
                    PeerAuthInfo::from_value(v).ok()
                })
                .await?;
                Ok(Read::PeerAuthentications(ns, items.into()))
            }));
        }
        for ns in &lookups.certificates {
            let ar = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
                "certificates",
            );
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
            let ns = ns.clone();
            reads.push(Box::pin(async move {
                let items = custom_list(&api, &format!("Certificates in {ns}"), |v| {
                    CertificateInfo::from_value(v).ok()
                })
                .await?;
                Ok(Read::Certificates(ns, items))
            }));
        }
        for source in &lookups.platform {
            reads.push(Box::pin(read_platform(self.client.clone(), *source)));
        }
        for name in &lookups.kuma_meshes {
            reads.push(Box::pin(read_kuma_mesh(self.client.clone(), name.clone())));
        }
        for key in &lookups.controller_pods {
            let (client, key) = (self.client.clone(), key.clone());
            reads.push(Box::pin(async move {
                let pod = super::owner_reads::read_template_pod(&client, &key)
                    .await
                    .map_err(|(what, source)| ConfirmError::Api { what, source })?;
                Ok(Read::ControllerPod(key, pod.map(Arc::new)))
            }));
        }
        for key in &lookups.owners {
            let (client, key) = (self.client.clone(), key.clone());
            reads.push(Box::pin(async move {
                super::owner_reads::read_chain(client, key)
                    .await
                    .map(Read::Owners)
                    .map_err(|(what, source)| ConfirmError::Api { what, source })
            }));
        }
        if lookups.kuma_mesh_tls {
            let ar = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("kuma.io", "v1alpha1", "MeshTLS"),
                "meshtlses",
            );
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
            reads.push(Box::pin(async move {
                let items = custom_list(&api, "Kuma MeshTLS policies", |v| {
                    KumaMeshTlsInfo::from_value(v).ok()
                })
                .await?;
                Ok(Read::KumaMeshTls(items))
            }));
        }
        for ns in &lookups.namespace_objects {
            let (client, ns) = (self.client.clone(), ns.clone());
            reads.push(Box::pin(async move {
                let items = super::namespace_objects::read(&client, &ns)
                    .await
                    .map_err(api_err(format!("the workloads in namespace {ns}")))?;
                Ok(Read::NamespaceObjects(ns, items.into()))
            }));
        }

        let what = describe(lookups);
        let all = tokio::time::timeout(self.timeout, try_join_all(reads))
            .await
            .map_err(|_| ConfirmError::Timeout(self.timeout, what))??;
        let mut fresh = Fresh::default();
        for r in all {
            match r {
                Read::Namespace(n, i) => {
                    fresh.namespaces.insert(n, i);
                }
                Read::StorageClasses(v) => fresh.storage_classes = Some(v),
                Read::Pvc(ns, n, i) => {
                    fresh.pvcs.insert((ns, n), i);
                }
                Read::Pv(n, i) => {
                    fresh.pvs.insert(n, i);
                }
                Read::NetworkPolicies(ns, v) => {
                    fresh.network_policies.insert(ns, v);
                }
                Read::PeerAuthentications(ns, v) => {
                    fresh.peer_authentications.insert(ns, v);
                }
                Read::Certificates(ns, v) => {
                    fresh.certificates.insert(ns, v);
                }
                Read::Platform(source, v) => {
                    fresh.platform.insert(source, v);
                }
                Read::KumaMesh(name, v) => {
                    fresh.kuma_meshes.insert(name, v);
                }
                Read::KumaMeshTls(v) => fresh.kuma_mesh_tls = Some(v),
                Read::Owners(chain) => fresh.owners.extend(chain),
                Read::ControllerPod(key, pod) => {
                    fresh.controller_pods.insert(key, pod);
                }
                Read::NamespaceObjects(ns, v) => {
                    fresh.namespace_objects.insert(ns, v);
                }
            }
        }
        Ok(fresh)
    }
}

/// List a custom resource; an uninstalled CRD is an empty list. Objects that cannot be read are
/// left out, as the watch cache leaves them out.
async fn custom_list<T>(
    api: &Api<DynamicObject>,
    what: &str,
    convert: impl Fn(&serde_json::Value) -> Option<T>,
) -> Result<Vec<Arc<T>>, ConfirmError> {
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .filter_map(|v| convert(&v))
            .map(Arc::new)
            .collect()),
        Err(e) if crd_absent(&e) => Ok(Vec::new()),
        Err(e) => Err(ConfirmError::Api {
            what: what.to_string(),
            source: e,
        }),
    }
}

/// What a confirmation reads, for messages (kinds and object names only).
fn describe(l: &Lookups) -> String {
    let mut parts = Vec::new();
    if !l.namespaces.is_empty() {
        parts.push(format!(
            "Namespace {}",
            l.namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if l.storage_classes {
        parts.push("StorageClasses".to_string());
    }
    if !l.pvcs.is_empty() {
        parts.push(format!("{} PersistentVolumeClaim(s)", l.pvcs.len()));
    }
    if !l.pvs.is_empty() {
        parts.push(format!("{} PersistentVolume(s)", l.pvs.len()));
    }
    if !l.network_policies.is_empty() {
        parts.push("NetworkPolicies".to_string());
    }
    if !l.peer_authentications.is_empty() {
        parts.push("PeerAuthentications".to_string());
    }
    if !l.certificates.is_empty() {
        parts.push("Certificates".to_string());
    }
    for source in &l.platform {
        parts.push(source.object().to_string());
    }
    if !l.kuma_meshes.is_empty() {
        parts.push("Kuma Meshes".to_string());
    }
    if l.kuma_mesh_tls {
        parts.push("Kuma MeshTLS policies".to_string());
    }
    for (_, kind, name) in l.owners.iter().chain(&l.controller_pods) {
        parts.push(format!("{kind} {name}"));
    }
    for ns in &l.namespace_objects {
        parts.push(format!("the workloads in namespace {ns}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::mock_api::{status, step, MockApi};

    fn confirmer(client: Client) -> Confirmer {
        Confirmer::new(client, DEFAULT_CONFIRM_TIMEOUT)
    }

    fn namespaces(names: &[&str]) -> Lookups {
        Lookups {
            namespaces: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_namespace_is_read_consistently_and_its_absence_is_known() {
        let (client, api) = MockApi::new(vec![step(
            "GET",
            "/api/v1/namespaces/records",
            200,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "records",
                                "labels": {"phiguard.io/data-classification": "phi"}}}),
        )]);
        let fresh = confirmer(client)
            .read(&namespaces(&["records"]))
            .await
            .expect("read");
        let ns = fresh.namespaces["records"].as_ref().expect("exists");
        assert_eq!(
            ns.labels
                .get("phiguard.io/data-classification")
                .map(String::as_str),
            Some("phi")
        );
        // No resourceVersion: answered from etcd (or a cache brought up to date), not stale.
        assert!(!api.requests()[0].query.contains("resourceVersion"));

        let (client, _api) = MockApi::new(vec![step(
            "GET",
            "/api/v1/namespaces/gone",
            404,
            status(404, "NotFound"),
        )]);
        let fresh = confirmer(client)
            .read(&namespaces(&["gone"]))
            .await
            .expect("a 404 is an answer");
        assert!(fresh.namespaces["gone"].is_none(), "known not to exist");
    }

    #[tokio::test]
    async fn a_failed_read_is_an_error_so_the_decision_fails_closed() {
        let (client, _api) = MockApi::new(vec![step(
            "GET",
            "/api/v1/namespaces/records",
            500,
            status(500, "InternalError"),
        )]);
        let err = confirmer(client)
            .read(&namespaces(&["records"]))
            .await
            .expect_err("500");
        assert_eq!(err.label(), "error");
        assert!(err.to_string().contains("Namespace records"), "{err}");
    }

    #[tokio::test]
    async fn lists_are_read_whole_and_an_absent_crd_is_an_empty_list() {
        let (client, api) = MockApi::new(vec![
            step(
                "GET",
                "/apis/storage.k8s.io/v1/storageclasses",
                200,
                json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClassList",
                       "metadata": {}, "items": [
                           {"metadata": {"name": "enc"}, "provisioner": "ebs.csi.aws.com",
                            "parameters": {"encrypted": "true"}}]}),
            ),
            step(
                "GET",
                "/apis/security.istio.io/v1/namespaces/records/peerauthentications",
                404,
                status(404, "NotFound"),
            ),
        ]);
        let lookups = Lookups {
            storage_classes: true,
            peer_authentications: ["records".to_string()].into(),
            ..Default::default()
        };
        let fresh = confirmer(client).read(&lookups).await.expect("read");
        assert_eq!(api.unused(), 0, "{:?}", api.calls());
        let classes = fresh.storage_classes.expect("listed");
        assert_eq!(classes.len(), 1);
        assert_eq!(classes[0].name, "enc");
        assert!(fresh.peer_authentications["records"].is_empty());
    }
}
