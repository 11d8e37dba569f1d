//! A cluster's objects as documents, for `phi-guard report --from-cluster`: every kind of the
//! registry (`crate::kinds`), listed once with consistent reads: the judged kinds
//! (controller-owned ones left out: their controller speaks for them) and every kind rules
//! consult, so the report judges what the webhook and the audit judge. ConfigMaps are read by
//! name (the CNI settings, `view::PlatformSource`), never listed. Optional CRDs that are not
//! installed are skipped.

use std::collections::BTreeMap;

use anyhow::Context as _;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Client;

use super::files::Document;
use crate::kinds::{self, KindSpec, Store};
use crate::view::PlatformSource;

/// The kinds a snapshot lists: every judged and every consulted kind of the registry.
pub(crate) fn snapshot_kinds() -> impl Iterator<Item = &'static KindSpec> {
    kinds::KINDS
        .iter()
        .filter(|k| k.judged || k.store.is_some())
}

/// Every object `report` needs, the PhiPolicies' generations, and the API server's address.
pub(crate) async fn documents() -> anyhow::Result<(Vec<Document>, BTreeMap<String, i64>, String)> {
    let client = Client::try_default()
        .await
        .context("connecting to the API server (KUBECONFIG or in-cluster config)")?;
    let context = client.default_namespace().to_string();
    let mut docs = Vec::new();
    let mut generations = BTreeMap::new();
    for spec in snapshot_kinds() {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(spec.group, spec.version, spec.kind),
            spec.plural,
        );
        let items = if spec.store == Some(Store::PlatformConfigMaps) {
            let mut items = Vec::new();
            for (namespace, name) in PlatformSource::ALL.iter().filter_map(|s| s.config_map()) {
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
                match api.get_opt(name).await {
                    Ok(Some(o)) => items.push(o),
                    Ok(None) => {}
                    // Not granted (the chart grants each by name): unknown, as to the webhook.
                    Err(kube::Error::Api(s)) if s.code == 403 => {}
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("reading ConfigMap {namespace}/{name}"))
                    }
                }
            }
            items
        } else {
            // The first version served (a CRD may serve only an older one, `also_versions`).
            let mut listed = None;
            for version in spec.versions() {
                let ar = ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk(spec.group, version, spec.kind),
                    spec.plural,
                );
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
                match api.list(&ListParams::default()).await {
                    Ok(l) => {
                        listed = Some(l.items);
                        break;
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 && spec.optional_crd => {}
                    Err(e) => return Err(e).with_context(|| format!("listing {}", spec.kind)),
                }
            }
            match listed {
                Some(items) => items,
                None => continue,
            }
        };
        let api_version = spec.api_version();
        for o in items {
            if spec.judged
                && o.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.controller == Some(true))
            {
                continue;
            }
            if spec.store == Some(Store::PhiPolicies) {
                if let (Some(n), Some(g)) = (&o.metadata.name, o.metadata.generation) {
                    generations.insert(n.clone(), g);
                }
            }
            let mut value = serde_json::to_value(&o).context("encoding an object")?;
            value["apiVersion"] = api_version.clone().into();
            value["kind"] = spec.kind.into();
            docs.push(Document {
                source: format!("cluster:{}", spec.plural),
                api_version: api_version.clone(),
                kind: spec.kind.to_string(),
                value,
            });
        }
    }
    Ok((docs, generations, format!("default namespace {context}")))
}
