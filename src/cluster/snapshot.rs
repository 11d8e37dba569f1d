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
    documents_from(client).await
}

/// [`documents`] through a given client (the tests' scripted API server).
async fn documents_from(
    client: Client,
) -> anyhow::Result<(Vec<Document>, BTreeMap<String, i64>, String)> {
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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::fixtures::mock_api::{status, step, MockApi, Step};

    fn list_path(spec: &KindSpec) -> String {
        version_path(spec, spec.version)
    }

    fn version_path(spec: &KindSpec, version: &str) -> String {
        if spec.group.is_empty() {
            format!("/api/{version}/{}", spec.plural)
        } else {
            format!("/apis/{}/{version}/{}", spec.group, spec.plural)
        }
    }

    fn list(items: Vec<Value>) -> Value {
        json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items})
    }

    /// A script answering every request of a snapshot: `answer` decides per kind.
    fn script(answer: impl Fn(&KindSpec) -> (u16, Value)) -> Vec<Step> {
        let mut steps = Vec::new();
        for spec in snapshot_kinds() {
            if spec.store == Some(Store::PlatformConfigMaps) {
                for (ns, name) in PlatformSource::ALL.iter().filter_map(|s| s.config_map()) {
                    let path = format!("/api/v1/namespaces/{ns}/configmaps/{name}");
                    // Not granted: unknown, as to the webhook, not an error.
                    steps.push(step("GET", &path, 403, status(403, "Forbidden")));
                }
            } else {
                let (code, body) = answer(spec);
                // An optional CRD not served at one version is asked for at the next.
                let versions: Vec<&str> = if code == 404 && spec.optional_crd {
                    spec.versions().collect()
                } else {
                    vec![spec.version]
                };
                for v in versions {
                    steps.push(step("GET", &version_path(spec, v), code, body.clone()));
                }
            }
        }
        steps
    }

    #[tokio::test]
    async fn every_judged_and_consulted_kind_is_read_and_controller_children_are_left_out() {
        let (client, api) = MockApi::new(script(|spec| match spec.kind {
            "Deployment" => (
                200,
                list(vec![
                    json!({"metadata": {"name": "api", "namespace": "records"}, "spec": {}}),
                    json!({"metadata": {"name": "child", "namespace": "records",
                           "ownerReferences": [{"apiVersion": "x/v1", "kind": "X", "name": "p",
                                                "uid": "u", "controller": true}]}}),
                ]),
            ),
            "PhiPolicy" => (
                200,
                list(vec![
                    json!({"metadata": {"name": "hipaa", "generation": 3}, "spec": {}}),
                ]),
            ),
            // Optional CRDs not installed: skipped.
            _ if spec.optional_crd => (404, status(404, "NotFound")),
            _ => (200, list(Vec::new())),
        }));
        let (docs, generations, _) = documents_from(client).await.expect("snapshot");
        assert_eq!(api.unused(), 0, "{:?}", api.calls());
        // Every kind the registry consults or judges was asked for: the report cannot judge
        // safeguards or CNI evidence without the objects they rest on.
        let calls = api.calls();
        for spec in snapshot_kinds().filter(|s| s.store != Some(Store::PlatformConfigMaps)) {
            let want = format!("GET {}", list_path(spec));
            assert!(calls.contains(&want), "{} not read", spec.kind);
        }
        let names: Vec<String> = docs
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d.kind,
                    d.value["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert!(names.contains(&"Deployment/api".to_string()), "{names:?}");
        assert!(
            !names.contains(&"Deployment/child".to_string()),
            "judged through its owner"
        );
        assert_eq!(generations.get("hipaa"), Some(&3));
        let d = docs
            .iter()
            .find(|d| d.kind == "Deployment")
            .expect("deployment");
        assert_eq!(d.value["apiVersion"], "apps/v1");
        assert_eq!(d.source, "cluster:deployments");
    }

    #[tokio::test]
    async fn a_missing_core_kind_is_an_error_not_an_empty_cluster() {
        let first = snapshot_kinds()
            .find(|s| !s.optional_crd && s.store != Some(Store::PlatformConfigMaps))
            .expect("a core kind");
        let (client, _api) = MockApi::new(vec![step(
            "GET",
            &list_path(first),
            404,
            status(404, "NotFound"),
        )]);
        let err = documents_from(client)
            .await
            .expect_err("404 on a built-in kind");
        assert!(format!("{err:#}").contains(first.kind), "{err:#}");
    }
}
