//! Watches of the platform (CNI) objects whose settings encrypt pod traffic: one named ConfigMap
//! each for Cilium, Antrea and Flannel (a `metadata.name` field selector in its namespace, which
//! RBAC `resourceNames` allows), and Calico's FelixConfiguration `default`, a custom resource
//! whose CRD may be absent (discovery is polled, as for the other optional CRDs).
//!
//! A platform object phi-guard may not read (the chart grants Flannel's only on request) or
//! whose namespace does not exist is treated like an absent CRD: readiness does not wait for
//! it, the evidence is unknown, and the read is tried again every 30 s. Only the encryption
//! settings are kept (`view::platform`), never the rest of the ConfigMap.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::watcher;

use super::{component, optional, run, to_value, Ctx, Sink, CRD_POLL_INTERVAL};
use crate::cluster::ClusterState;
use crate::view::platform::{from_config_map, from_felix_configuration};
use crate::view::{KumaMeshInfo, KumaMeshTlsInfo, PlatformEncryption, PlatformSource};

/// Watch the named platform ConfigMaps (each by a field selector on its name).
pub(super) fn config_maps(ctx: &Ctx, tasks: &mut Vec<tokio::task::JoinHandle<()>>) {
    for source in PlatformSource::ALL {
        if let Some((namespace, name)) = source.config_map() {
            tasks.push(config_map(ctx, source, namespace, name));
        }
    }
}

/// Calico's FelixConfiguration (only `default` is read).
pub(super) fn felix_configuration(ctx: &Ctx, gvk: GroupVersionKind) -> tokio::task::JoinHandle<()> {
    optional(ctx, gvk, |ctx, ar| {
        let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
        let sink = PlatformSink::new(ctx.state.clone(), PlatformSource::Calico, |o| {
            to_value(o).and_then(|v| from_felix_configuration(&v))
        });
        run(ctx, api, "FelixConfiguration", sink)
    })
}

/// Kuma Meshes.
pub(super) fn kuma_meshes(ctx: &Ctx, gvk: GroupVersionKind) -> tokio::task::JoinHandle<()> {
    optional(ctx, gvk, |ctx, ar| {
        let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
        let sink = MeshSink {
            state: ctx.state.clone(),
            buffer: Vec::new(),
        };
        run(ctx, api, "Mesh", sink)
    })
}

/// Kuma MeshTLS policies.
pub(super) fn kuma_mesh_tls(ctx: &Ctx, gvk: GroupVersionKind) -> tokio::task::JoinHandle<()> {
    optional(ctx, gvk, |ctx, ar| {
        let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
        let sink = MeshTlsSink {
            state: ctx.state.clone(),
            buffer: Vec::new(),
        };
        run(ctx, api, "MeshTLS", sink)
    })
}

/// Keeps Kuma MeshTLS policies by `namespace/name`.
struct MeshTlsSink {
    state: Arc<ClusterState>,
    buffer: Vec<(String, KumaMeshTlsInfo)>,
}

fn mesh_tls_key(o: &DynamicObject) -> String {
    format!(
        "{}/{}",
        o.metadata.namespace.as_deref().unwrap_or_default(),
        o.metadata.name.as_deref().unwrap_or_default()
    )
}

impl Sink<DynamicObject> for MeshTlsSink {
    fn init(&mut self) {
        self.buffer.clear();
    }
    fn init_apply(&mut self, obj: DynamicObject) -> Result<(), String> {
        let t = to_value(&obj).and_then(|v| KumaMeshTlsInfo::from_value(&v))?;
        self.buffer.push((mesh_tls_key(&obj), t));
        Ok(())
    }
    fn init_done(&mut self) {
        self.state
            .kuma_mesh_tls
            .replace(std::mem::take(&mut self.buffer));
        self.state.mark_dirty(None);
    }
    fn apply(&mut self, obj: DynamicObject) -> Result<(), String> {
        self.state.mark_dirty(None);
        let key = mesh_tls_key(&obj);
        match to_value(&obj).and_then(|v| KumaMeshTlsInfo::from_value(&v)) {
            Ok(t) => {
                self.state.kuma_mesh_tls.insert(key, t);
                Ok(())
            }
            Err(e) => {
                self.state.kuma_mesh_tls.remove(&key);
                Err(e)
            }
        }
    }
    fn delete(&mut self, obj: DynamicObject) {
        self.state.mark_dirty(None);
        self.state.kuma_mesh_tls.remove(&mesh_tls_key(&obj));
    }
}

/// Keeps Kuma Meshes (cluster-scoped, few).
struct MeshSink {
    state: Arc<ClusterState>,
    buffer: Vec<(String, KumaMeshInfo)>,
}

fn mesh_of(o: &DynamicObject) -> Result<KumaMeshInfo, String> {
    to_value(o).and_then(|v| KumaMeshInfo::from_value(&v))
}

impl Sink<DynamicObject> for MeshSink {
    fn init(&mut self) {
        self.buffer.clear();
    }
    fn init_apply(&mut self, obj: DynamicObject) -> Result<(), String> {
        let m = mesh_of(&obj)?;
        self.buffer.push((m.name.clone(), m));
        Ok(())
    }
    fn init_done(&mut self) {
        self.state
            .kuma_meshes
            .replace(std::mem::take(&mut self.buffer));
        self.state.mark_dirty(None);
    }
    fn apply(&mut self, obj: DynamicObject) -> Result<(), String> {
        self.state.mark_dirty(None);
        match mesh_of(&obj) {
            Ok(m) => {
                self.state.kuma_meshes.insert(m.name.clone(), m);
                Ok(())
            }
            Err(e) => {
                let name = obj.metadata.name.clone().unwrap_or_default();
                self.state.kuma_meshes.remove(&name);
                Err(e)
            }
        }
    }
    fn delete(&mut self, obj: DynamicObject) {
        self.state.mark_dirty(None);
        let name = obj.metadata.name.clone().unwrap_or_default();
        self.state.kuma_meshes.remove(&name);
    }
}

/// The readiness component and log kind of a platform ConfigMap.
fn kind_of(source: PlatformSource) -> &'static str {
    match source {
        PlatformSource::Cilium => "ConfigMap/cilium-config",
        PlatformSource::Antrea => "ConfigMap/antrea-config",
        PlatformSource::Flannel => "ConfigMap/kube-flannel-cfg",
        PlatformSource::IngressNginx => "ConfigMap/ingress-nginx-controller",
        PlatformSource::Calico => "FelixConfiguration",
    }
}

/// Watch one named ConfigMap once it can be listed.
fn config_map(
    ctx: &Ctx,
    source: PlatformSource,
    namespace: &'static str,
    name: &'static str,
) -> tokio::task::JoinHandle<()> {
    let kind = kind_of(source);
    let component_name = component(kind);
    ctx.readiness.register(component_name.clone());
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
        let selector = format!("metadata.name={name}");
        let mut reported = false;
        loop {
            match api.list(&ListParams::default().fields(&selector)).await {
                Ok(_) => {
                    let sink =
                        PlatformSink::new(ctx.state.clone(), source, move |cm: &ConfigMap| {
                            from_config_map(source, cm.data.as_ref().unwrap_or(&Default::default()))
                        });
                    run(ctx.clone(), api, kind, sink).await;
                    return;
                }
                Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {
                    if !reported {
                        reported = true;
                        tracing::info!(
                            kind,
                            namespace,
                            name,
                            code = s.code,
                            "platform ConfigMap cannot be read (not granted, or no such namespace); its encryption evidence is unknown; checking again every 30 s"
                        );
                    }
                    ctx.readiness.set_ready(&component_name);
                }
                Err(e) => {
                    ctx.metrics.watch_error(kind);
                    tracing::warn!(kind, error = %e, "platform ConfigMap list failed; retrying");
                }
            }
            tokio::time::sleep(CRD_POLL_INTERVAL).await;
        }
    })
}

/// Keeps the one platform object of a source (the watch selects it by name).
struct PlatformSink<K, F> {
    state: Arc<ClusterState>,
    source: PlatformSource,
    convert: F,
    buffer: Option<PlatformEncryption>,
    _k: std::marker::PhantomData<fn(K)>,
}

impl<K, F> PlatformSink<K, F>
where
    F: Fn(&K) -> Result<PlatformEncryption, String>,
{
    fn new(state: Arc<ClusterState>, source: PlatformSource, convert: F) -> Self {
        PlatformSink {
            state,
            source,
            convert,
            buffer: None,
            _k: std::marker::PhantomData,
        }
    }

    fn set(&self, item: Option<PlatformEncryption>) {
        let key = self.source.key();
        match item {
            Some(i) => self.state.platform.insert(key.to_string(), i),
            None => self.state.platform.remove(key),
        }
        // Cluster-wide evidence: every namespace's PHI pods may be judged differently now.
        self.state.mark_dirty(None);
    }
}

impl<K, F> Sink<K> for PlatformSink<K, F>
where
    K: Send + 'static,
    F: Fn(&K) -> Result<PlatformEncryption, String> + Send + 'static,
{
    fn init(&mut self) {
        self.buffer = None;
    }
    fn init_apply(&mut self, obj: K) -> Result<(), String> {
        self.buffer = Some((self.convert)(&obj)?);
        Ok(())
    }
    fn init_done(&mut self) {
        let item = self.buffer.take();
        self.set(item);
    }
    fn apply(&mut self, obj: K) -> Result<(), String> {
        match (self.convert)(&obj) {
            Ok(i) => {
                self.set(Some(i));
                Ok(())
            }
            Err(e) => {
                // An unreadable update must not leave the old version's evidence behind.
                self.set(None);
                Err(e)
            }
        }
    }
    fn delete(&mut self, _obj: K) {
        self.set(None);
    }
    /// Only the one named object (RBAC `resourceNames` allows list and watch with this field
    /// selector): the ConfigMap's name, or Calico's cluster-wide FelixConfiguration `default`.
    fn config(&self) -> watcher::Config {
        let name = self.source.config_map().map_or("default", |(_, name)| name);
        watcher::Config::default().fields(&format!("metadata.name={name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::ClusterView;
    use serde_json::json;

    fn cm(value: &str) -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": { "name": "cilium-config", "namespace": "kube-system" },
            "data": { "enable-wireguard": value, "cluster-name": "default" }
        }))
        .unwrap()
    }

    /// The sink keeps only the encryption settings, follows updates, and forgets on delete or
    /// on an unreadable update.
    #[test]
    fn platform_sink_follows_the_object() {
        let state = Arc::new(ClusterState::new());
        let mut sink = PlatformSink::new(state.clone(), PlatformSource::Cilium, |c: &ConfigMap| {
            from_config_map(
                PlatformSource::Cilium,
                c.data.as_ref().unwrap_or(&Default::default()),
            )
        });
        assert_eq!(
            sink.config().field_selector.as_deref(),
            Some("metadata.name=cilium-config"),
            "one named ConfigMap, as RBAC resourceNames allows"
        );
        sink.init();
        sink.init_apply(cm("true")).unwrap();
        assert!(state.platform_encryption(PlatformSource::Cilium).is_none());
        sink.init_done();
        let got = state.platform_encryption(PlatformSource::Cilium).unwrap();
        assert!(got.encrypts());
        sink.apply(cm("false")).unwrap();
        assert!(!state
            .platform_encryption(PlatformSource::Cilium)
            .unwrap()
            .encrypts());
        sink.delete(cm("false"));
        assert!(state.platform_encryption(PlatformSource::Cilium).is_none());
        assert!(state.platform_encryption(PlatformSource::Calico).is_none());
    }
}
