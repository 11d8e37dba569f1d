//! Lean views of the objects the optional safeguards read: PodDisruptionBudgets (contingency),
//! Istio and Linkerd authorization objects (entity authentication) and Velero Schedules
//! (contingency). Watch caches and files convert into these; only what the rules read is kept.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

use super::objects::ObjectError;
use crate::selector::{Labels, Selector};

/// A policy/v1 PodDisruptionBudget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PdbInfo {
    pub namespace: String,
    pub name: String,
    /// `None`: no selector or an unusable one (selects no pods in policy/v1).
    pub selector: Option<Selector>,
    /// `minAvailable: 0` (or `0%`) or `maxUnavailable: 100%`: allows every pod to be evicted.
    pub protects_nothing: bool,
}

impl From<&k8s_openapi::api::policy::v1::PodDisruptionBudget> for PdbInfo {
    fn from(p: &k8s_openapi::api::policy::v1::PodDisruptionBudget) -> Self {
        let spec = p.spec.as_ref();
        let zero = |v: &IntOrString| match v {
            IntOrString::Int(i) => *i <= 0,
            IntOrString::String(s) => s.trim() == "0%" || s.trim() == "0",
        };
        let all = |v: &IntOrString| match v {
            IntOrString::Int(_) => false,
            IntOrString::String(s) => s.trim() == "100%",
        };
        PdbInfo {
            namespace: p.metadata.namespace.clone().unwrap_or_default(),
            name: p.metadata.name.clone().unwrap_or_default(),
            selector: spec
                .and_then(|s| s.selector.as_ref())
                .and_then(|s| Selector::try_from(s).ok()),
            protects_nothing: spec.is_some_and(|s| {
                s.min_available.as_ref().is_some_and(zero)
                    || s.max_unavailable.as_ref().is_some_and(all)
            }),
        }
    }
}

/// An Istio `security.istio.io` AuthorizationPolicy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IstioAuthzInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.selector.matchLabels`; `None`: namespace-wide (mesh-wide in the root namespace).
    pub selector: Option<Labels>,
    /// `spec.targetRef(s)` set: the policy binds to a gateway or waypoint, not by selector.
    pub targets_refs: bool,
    /// `spec.action` (ALLOW when unset).
    pub action: String,
    /// Some rule is empty (`{}`): it allows every request, authenticating nobody.
    pub allows_any: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IstioAuthzSpecWire {
    #[serde(default)]
    selector: Option<MatchLabelsWire>,
    #[serde(default)]
    target_ref: Option<serde_json::Value>,
    #[serde(default)]
    target_refs: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    rules: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MatchLabelsWire {
    #[serde(default)]
    match_labels: Option<Labels>,
}

#[derive(Deserialize, Default)]
struct MetaWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(bound = "S: Deserialize<'de> + Default")]
struct Wire<S> {
    #[serde(default)]
    metadata: MetaWire,
    #[serde(default)]
    spec: Option<S>,
}

fn read<S: for<'de> Deserialize<'de> + Default>(
    kind: &'static str,
    v: &serde_json::Value,
) -> Result<(String, String, S), ObjectError> {
    let meta = |key: &str| {
        v.get("metadata")
            .and_then(|m| m.get(key))
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let w: Wire<S> = Wire::deserialize(v).map_err(|e| ObjectError {
        kind,
        namespace: meta("namespace"),
        name: meta("name"),
        message: e.to_string(),
    })?;
    Ok((
        w.metadata.namespace.unwrap_or_default(),
        w.metadata.name.unwrap_or_default(),
        w.spec.unwrap_or_default(),
    ))
}

impl IstioAuthzInfo {
    /// From an AuthorizationPolicy as JSON (watch event or file).
    pub fn from_value(v: &serde_json::Value) -> Result<Self, ObjectError> {
        let (namespace, name, spec) = read::<IstioAuthzSpecWire>("AuthorizationPolicy", v)?;
        Ok(IstioAuthzInfo {
            namespace,
            name,
            selector: spec
                .selector
                .and_then(|s| s.match_labels)
                .filter(|l| !l.is_empty()),
            targets_refs: spec.target_ref.is_some()
                || spec.target_refs.is_some_and(|t| !t.is_empty()),
            action: spec
                .action
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "ALLOW".into()),
            allows_any: spec.rules.iter().flatten().any(|r| r.is_empty()),
        })
    }

    /// Does this policy restrict who reaches the pods it selects (ALLOW, no allow-all rule)?
    pub fn authorizes(&self) -> bool {
        self.action == "ALLOW" && !self.allows_any && !self.targets_refs
    }
}

/// A Linkerd `policy.linkerd.io` AuthorizationPolicy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkerdAuthzInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.targetRef.kind` (`Server`, `HTTPRoute`, `Namespace`, ...).
    pub target_kind: String,
    pub target_name: String,
    /// `spec.requiredAuthenticationRefs` names a MeshTLSAuthentication.
    pub requires_mesh_tls: bool,
}

#[derive(Deserialize, Default)]
struct RefWire {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LinkerdAuthzSpecWire {
    #[serde(default)]
    target_ref: RefWire,
    #[serde(default)]
    required_authentication_refs: Option<Vec<RefWire>>,
}

impl LinkerdAuthzInfo {
    /// From a Linkerd AuthorizationPolicy as JSON (watch event or file).
    pub fn from_value(v: &serde_json::Value) -> Result<Self, ObjectError> {
        let (namespace, name, spec) = read::<LinkerdAuthzSpecWire>("AuthorizationPolicy", v)?;
        Ok(LinkerdAuthzInfo {
            namespace,
            name,
            target_kind: spec.target_ref.kind,
            target_name: spec.target_ref.name,
            requires_mesh_tls: spec
                .required_authentication_refs
                .iter()
                .flatten()
                .any(|r| r.kind == "MeshTLSAuthentication"),
        })
    }
}

/// A Linkerd `policy.linkerd.io` Server: which pods it describes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkerdServerInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.podSelector`; `None` when absent or unusable (selects nothing).
    pub pod_selector: Option<Selector>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ServerSpecWire {
    #[serde(default)]
    pod_selector: Option<LabelSelector>,
}

impl LinkerdServerInfo {
    /// From a Server as JSON (watch event or file).
    pub fn from_value(v: &serde_json::Value) -> Result<Self, ObjectError> {
        let (namespace, name, spec) = read::<ServerSpecWire>("Server", v)?;
        Ok(LinkerdServerInfo {
            namespace,
            name,
            pod_selector: spec
                .pod_selector
                .as_ref()
                .and_then(|s| Selector::try_from(s).ok()),
        })
    }
}

/// A Velero `velero.io/v1` Schedule: which namespaces and objects its backups take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VeleroScheduleInfo {
    pub namespace: String,
    pub name: String,
    pub paused: bool,
    /// `spec.template.includedNamespaces` (empty: all).
    pub included_namespaces: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    /// `spec.template.labelSelector`; `None`: every object.
    pub label_selector: Option<Selector>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ScheduleSpecWire {
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    template: Option<BackupTemplateWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct BackupTemplateWire {
    #[serde(default)]
    included_namespaces: Option<Vec<String>>,
    #[serde(default)]
    excluded_namespaces: Option<Vec<String>>,
    #[serde(default)]
    label_selector: Option<LabelSelector>,
}

impl VeleroScheduleInfo {
    /// From a Schedule as JSON (watch event or file).
    pub fn from_value(v: &serde_json::Value) -> Result<Self, ObjectError> {
        let (namespace, name, spec) = read::<ScheduleSpecWire>("Schedule", v)?;
        let t = spec.template.unwrap_or_default();
        let label_selector = match &t.label_selector {
            Some(s) => Some(Selector::try_from(s).map_err(|e| ObjectError {
                kind: "Schedule",
                namespace: namespace.clone(),
                name: name.clone(),
                message: format!("spec.template.labelSelector.{e}"),
            })?),
            None => None,
        };
        Ok(VeleroScheduleInfo {
            namespace,
            name,
            paused: spec.paused.unwrap_or(false),
            included_namespaces: t.included_namespaces.unwrap_or_default(),
            excluded_namespaces: t.excluded_namespaces.unwrap_or_default(),
            label_selector,
        })
    }

    /// Do this schedule's backups take objects with `labels` in `namespace`?
    pub fn covers(&self, namespace: &str, labels: &Labels) -> bool {
        let listed = |list: &[String]| list.iter().any(|n| n == namespace || n == "*");
        !self.paused
            && (self.included_namespaces.is_empty() || listed(&self.included_namespaces))
            && !listed(&self.excluded_namespaces)
            && self
                .label_selector
                .as_ref()
                .is_none_or(|s| s.matches(labels))
    }
}

/// The safeguard lookups of a [`super::ClusterView`] that wraps another (`self.$inner`),
/// answered by it: the confirming reads of `view::confirm` do not cover these kinds (a denial
/// resting on a PodDisruptionBudget or AuthorizationPolicy created a moment ago is not re-read).
macro_rules! forward_safeguard_lookups {
    ($inner:ident) => {
        fn pod_disruption_budgets(&self, namespace: &str) -> Arc<[Arc<crate::view::PdbInfo>]> {
            self.$inner.pod_disruption_budgets(namespace)
        }
        fn istio_authorization_policies(
            &self,
            namespace: &str,
        ) -> Arc<[Arc<crate::view::IstioAuthzInfo>]> {
            self.$inner.istio_authorization_policies(namespace)
        }
        fn linkerd_authorization_policies(
            &self,
            namespace: &str,
        ) -> Arc<[Arc<crate::view::LinkerdAuthzInfo>]> {
            self.$inner.linkerd_authorization_policies(namespace)
        }
        fn linkerd_servers(&self, namespace: &str) -> Arc<[Arc<crate::view::LinkerdServerInfo>]> {
            self.$inner.linkerd_servers(namespace)
        }
        fn velero_schedules(&self) -> Option<Vec<Arc<crate::view::VeleroScheduleInfo>>> {
            self.$inner.velero_schedules()
        }
    };
}
pub(crate) use forward_safeguard_lookups;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn istio_policies_authorize_only_when_they_restrict() {
        let v = |spec| json!({"metadata": {"name": "a", "namespace": "phi"}, "spec": spec});
        let p = IstioAuthzInfo::from_value(&v(json!({
            "selector": {"matchLabels": {"app": "api"}},
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/phi/sa/web"]}}]}]
        })))
        .expect("reads");
        assert!(p.authorizes());
        assert_eq!(p.selector.as_ref().map(|l| l.len()), Some(1));
        let allow_all = IstioAuthzInfo::from_value(&v(json!({"rules": [{}]}))).expect("reads");
        assert!(!allow_all.authorizes() && allow_all.selector.is_none());
        let deny = IstioAuthzInfo::from_value(&v(json!({"action": "DENY", "rules": [{"to": []}]})))
            .expect("reads");
        assert!(!deny.authorizes());
        // ALLOW with no rules denies everything: nobody unauthenticated gets in.
        assert!(IstioAuthzInfo::from_value(&v(json!({})))
            .expect("reads")
            .authorizes());
        let waypoint = IstioAuthzInfo::from_value(&v(json!({
            "targetRefs": [{"kind": "Gateway", "name": "waypoint"}],
            "rules": [{"from": [{"source": {"namespaces": ["phi"]}}]}]
        })))
        .expect("reads");
        assert!(!waypoint.authorizes());
    }

    #[test]
    fn velero_schedules_cover_by_namespace_and_labels() {
        let s = |template| {
            VeleroScheduleInfo::from_value(
                &json!({"metadata": {"name": "daily", "namespace": "velero"},
                "spec": {"schedule": "0 1 * * *", "template": template}}),
            )
            .expect("reads")
        };
        let l = Labels::from([("app", "api")]);
        assert!(s(json!({})).covers("phi", &l));
        assert!(s(json!({"includedNamespaces": ["*"]})).covers("phi", &l));
        assert!(s(json!({"includedNamespaces": ["phi"]})).covers("phi", &l));
        assert!(!s(json!({"includedNamespaces": ["other"]})).covers("phi", &l));
        assert!(
            !s(json!({"includedNamespaces": ["*"], "excludedNamespaces": ["phi"]}))
                .covers("phi", &l)
        );
        assert!(!s(json!({"labelSelector": {"matchLabels": {"app": "web"}}})).covers("phi", &l));
        let paused = VeleroScheduleInfo::from_value(&json!({"metadata": {"name": "p"},
            "spec": {"paused": true, "template": {}}}))
        .expect("reads");
        assert!(!paused.covers("phi", &l));
    }

    #[test]
    fn pdbs_that_allow_evicting_everything_protect_nothing() {
        let pdb = |spec| {
            let p: k8s_openapi::api::policy::v1::PodDisruptionBudget = serde_json::from_value(
                json!({"metadata": {"name": "api", "namespace": "phi"}, "spec": spec}),
            )
            .expect("pdb");
            PdbInfo::from(&p)
        };
        let ok = pdb(json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}));
        assert!(!ok.protects_nothing);
        assert!(ok
            .selector
            .is_some_and(|s| s.matches(&Labels::from([("app", "api")]))));
        assert!(pdb(json!({"minAvailable": 0, "selector": {}})).protects_nothing);
        assert!(pdb(json!({"maxUnavailable": "100%", "selector": {}})).protects_nothing);
        assert!(pdb(json!({"minAvailable": 1})).selector.is_none());
    }
}
