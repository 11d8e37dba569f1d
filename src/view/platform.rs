//! What the platform (the CNI) says about encrypting pod traffic: Cilium transparent encryption,
//! Calico WireGuard, Antrea and Flannel traffic encryption, each read from the one named object
//! that configures it. Only the settings that turn encryption on are kept (as booleans and known
//! mode names), never any other data of those objects.
//!
//! CNI encryption covers traffic between nodes only: pods on the same node talk unencrypted
//! through the node's own network stack. Policies accept it knowing that.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Which platform setting, and the object phi-guard reads it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlatformSource {
    /// ConfigMap `kube-system/cilium-config`: `enable-wireguard` / `enable-ipsec`.
    Cilium,
    /// FelixConfiguration `default` (crd.projectcalico.org/v1): `spec.wireguardEnabled`,
    /// `spec.wireguardEnabledV6`.
    Calico,
    /// ConfigMap `kube-system/antrea-config`: `antrea-agent.conf` `trafficEncryptionMode`.
    Antrea,
    /// ConfigMap `kube-flannel/kube-flannel-cfg`: `net-conf.json` `Backend.Type`.
    Flannel,
    /// ConfigMap `ingress-nginx/ingress-nginx-controller` (the controller's `--configmap` in
    /// the official chart and static manifests): the global `ssl-redirect` and
    /// `force-ssl-redirect` every Ingress falls back to. Not a CNI setting, but read the same
    /// way: one named ConfigMap, only the settings that keep HTTP off.
    IngressNginx,
}

impl PlatformSource {
    pub const ALL: [PlatformSource; 5] = [
        PlatformSource::Cilium,
        PlatformSource::Calico,
        PlatformSource::Antrea,
        PlatformSource::Flannel,
        PlatformSource::IngressNginx,
    ];

    /// The ConfigMap (namespace, name) it is read from; `None` for Calico's custom resource.
    pub fn config_map(self) -> Option<(&'static str, &'static str)> {
        match self {
            PlatformSource::Cilium => Some(("kube-system", "cilium-config")),
            PlatformSource::Antrea => Some(("kube-system", "antrea-config")),
            PlatformSource::Flannel => Some(("kube-flannel", "kube-flannel-cfg")),
            PlatformSource::IngressNginx => Some(("ingress-nginx", "ingress-nginx-controller")),
            PlatformSource::Calico => None,
        }
    }

    /// The object, for messages.
    pub fn object(self) -> &'static str {
        match self {
            PlatformSource::Cilium => "ConfigMap kube-system/cilium-config",
            PlatformSource::Calico => "FelixConfiguration default (crd.projectcalico.org/v1)",
            PlatformSource::Antrea => "ConfigMap kube-system/antrea-config",
            PlatformSource::Flannel => "ConfigMap kube-flannel/kube-flannel-cfg",
            PlatformSource::IngressNginx => "ConfigMap ingress-nginx/ingress-nginx-controller",
        }
    }

    /// The key the cluster state stores it under.
    pub fn key(self) -> &'static str {
        match self {
            PlatformSource::Cilium => "cilium",
            PlatformSource::Calico => "calico",
            PlatformSource::Antrea => "antrea",
            PlatformSource::Flannel => "flannel",
            PlatformSource::IngressNginx => "ingress-nginx",
        }
    }

    /// Which source a named ConfigMap is, if any.
    pub fn of_config_map(namespace: &str, name: &str) -> Option<PlatformSource> {
        PlatformSource::ALL
            .into_iter()
            .find(|s| s.config_map() == Some((namespace, name)))
    }
}

/// The encryption settings of one platform object, as phi-guard read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformEncryption {
    pub source: PlatformSource,
    /// The settings that turn encryption on, as `field: value` (e.g. `enable-wireguard:
    /// "true"`); empty when none does.
    pub enabled: Vec<&'static str>,
}

impl PlatformEncryption {
    pub fn encrypts(&self) -> bool {
        !self.enabled.is_empty()
    }

    /// ingress-nginx's global (`ssl-redirect`, `force-ssl-redirect`) as read from its
    /// ConfigMap; `None` for the other sources.
    pub fn nginx_redirects(&self) -> Option<(bool, bool)> {
        (self.source == PlatformSource::IngressNginx).then(|| {
            (
                self.enabled.contains(&NGINX_GLOBAL_SSL_REDIRECT),
                self.enabled.contains(&NGINX_GLOBAL_FORCE_SSL_REDIRECT),
            )
        })
    }
}

/// The ingress-nginx ConfigMap settings kept (as `enabled` entries) when they redirect HTTP.
const NGINX_GLOBAL_SSL_REDIRECT: &str = "ssl-redirect: \"true\"";
const NGINX_GLOBAL_FORCE_SSL_REDIRECT: &str = "force-ssl-redirect: \"true\"";

/// A boolean of ingress-nginx's ConfigMap as the controller decodes it: mapstructure with
/// `WeaklyTypedInput` (internal/ingress/controller/template/configmap.go `ReadConfig`) reads a
/// string with `strconv.ParseBool`, an empty string as false, and leaves the default in place
/// for anything else (logging a warning).
fn nginx_config_bool(v: Option<&String>, default: bool) -> bool {
    match v.map(String::as_str) {
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => true,
        Some("0" | "f" | "F" | "FALSE" | "false" | "False" | "") => false,
        _ => default,
    }
}

/// Go's `strconv.ParseBool` true values (how Cilium's viper-backed config reads booleans).
fn go_true(v: Option<&String>) -> bool {
    matches!(
        v.map(|s| s.trim()),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True")
    )
}

/// From the data of a platform ConfigMap. `Err` names the key that could not be read (never
/// its value).
pub(crate) fn from_config_map(
    source: PlatformSource,
    data: &BTreeMap<String, String>,
) -> Result<PlatformEncryption, String> {
    let mut enabled = Vec::new();
    match source {
        // cilium/cilium pkg/option/config.go: `EnableWireguard = "enable-wireguard"`,
        // `EnableIPSecName = "enable-ipsec"`, read as booleans through viper (cast.ToBool ->
        // strconv.ParseBool). The ConfigMap keys are the agent's flag names.
        PlatformSource::Cilium => {
            if go_true(data.get("enable-wireguard")) {
                enabled.push("enable-wireguard: \"true\"");
            }
            if go_true(data.get("enable-ipsec")) {
                enabled.push("enable-ipsec: \"true\"");
            }
        }
        // antrea-io/antrea pkg/config/agent/config.go `TrafficEncryptionMode` and
        // pkg/agent/config/traffic_encryption_mode.go GetTrafficEncryptionModeFromStr
        // (case-insensitive: none, ipsec, wireGuard); the deprecated `enableIPSecTunnel: true`
        // still selects IPsec.
        PlatformSource::Antrea => {
            if let Some(conf) = data.get("antrea-agent.conf") {
                #[derive(Deserialize, Default)]
                #[serde(rename_all = "camelCase")]
                struct AgentConf {
                    #[serde(default)]
                    traffic_encryption_mode: Option<String>,
                    #[serde(default, rename = "enableIPSecTunnel")]
                    enable_ipsec_tunnel: Option<bool>,
                }
                let c: AgentConf = serde_saphyr::from_str::<Option<AgentConf>>(conf)
                    .map_err(|_| "data[\"antrea-agent.conf\"] is not valid YAML".to_string())?
                    .unwrap_or_default();
                match c.traffic_encryption_mode.map(|m| m.to_ascii_lowercase()) {
                    Some(m) if m == "wireguard" => {
                        enabled.push("antrea-agent.conf trafficEncryptionMode: wireGuard")
                    }
                    Some(m) if m == "ipsec" => {
                        enabled.push("antrea-agent.conf trafficEncryptionMode: ipsec")
                    }
                    _ if c.enable_ipsec_tunnel == Some(true) => {
                        enabled.push("antrea-agent.conf enableIPSecTunnel: true")
                    }
                    _ => {}
                }
            }
        }
        // flannel-io/flannel pkg/subnet/config.go ParseConfig (`Backend.Type`, JSON) and
        // pkg/backend/manager.go (`strings.ToLower` of the type): `wireguard` and `ipsec`
        // encrypt; vxlan, host-gw, udp do not.
        PlatformSource::Flannel => {
            if let Some(conf) = data.get("net-conf.json") {
                let v: Value = serde_json::from_str(conf)
                    .map_err(|_| "data[\"net-conf.json\"] is not valid JSON".to_string())?;
                let ty = v
                    .get("Backend")
                    .and_then(|b| b.get("Type"))
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase);
                match ty.as_deref() {
                    Some("wireguard") => enabled.push("net-conf.json Backend.Type: wireguard"),
                    Some("ipsec") => enabled.push("net-conf.json Backend.Type: ipsec"),
                    _ => {}
                }
            }
        }
        // kubernetes/ingress-nginx internal/ingress/controller/config/config.go: the defaults
        // (`NewDefault`) are `ssl-redirect: true`, `force-ssl-redirect: false`; an Ingress
        // without its own annotation takes these (annotations/rewrite/main.go falls back to
        // `GetDefaultBackend()`, the ConfigMap's values).
        PlatformSource::IngressNginx => {
            if nginx_config_bool(data.get("ssl-redirect"), true) {
                enabled.push(NGINX_GLOBAL_SSL_REDIRECT);
            }
            if nginx_config_bool(data.get("force-ssl-redirect"), false) {
                enabled.push(NGINX_GLOBAL_FORCE_SSL_REDIRECT);
            }
        }
        PlatformSource::Calico => {}
    }
    Ok(PlatformEncryption { source, enabled })
}

/// From a Calico FelixConfiguration (projectcalico/api pkg/apis/projectcalico/v3
/// felixconfig.go: `wireguardEnabled`, `wireguardEnabledV6`, both `*bool`). Only the object
/// named `default` configures the cluster; others (`node.<name>`) are per-node overrides and
/// are not read.
pub(crate) fn from_felix_configuration(v: &Value) -> Result<PlatformEncryption, String> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct FelixSpec {
        #[serde(default)]
        wireguard_enabled: Option<bool>,
        #[serde(default, rename = "wireguardEnabledV6")]
        wireguard_enabled_v6: Option<bool>,
    }
    let spec: FelixSpec = match v.get("spec") {
        Some(s) => serde_json::from_value(s.clone())
            .map_err(|_| "spec.wireguardEnabled or spec.wireguardEnabledV6 is not a boolean")?,
        None => FelixSpec::default(),
    };
    let mut enabled = Vec::new();
    if spec.wireguard_enabled == Some(true) {
        enabled.push("spec.wireguardEnabled: true");
    }
    if spec.wireguard_enabled_v6 == Some(true) {
        enabled.push("spec.wireguardEnabledV6: true");
    }
    Ok(PlatformEncryption {
        source: PlatformSource::Calico,
        enabled,
    })
}

/// A Kuma (Kong Mesh) `Mesh` (kuma.io/v1alpha1): whether it turns mutual TLS on, and whether
/// the enabled backend is in PERMISSIVE mode (plaintext accepted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KumaMeshInfo {
    pub name: String,
    /// `spec.mtls.enabledBackend` names a backend: sidecars talk mTLS.
    pub mtls_enabled: bool,
    /// The enabled backend's `mode` is PERMISSIVE (Kuma's default is STRICT).
    pub permissive: bool,
}

impl KumaMeshInfo {
    /// From a Mesh as JSON (kumahq/kuma api/mesh/v1alpha1/mesh.proto: `mtls.enabledBackend`,
    /// `mtls.backends[].name`, `.mode` STRICT|PERMISSIVE).
    pub fn from_value(v: &Value) -> Result<Self, String> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Mtls {
            #[serde(default)]
            enabled_backend: Option<String>,
            #[serde(default)]
            backends: Option<Vec<Backend>>,
        }
        #[derive(Deserialize, Default)]
        struct Backend {
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            mode: Option<String>,
        }
        let name = v
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mtls: Mtls = match v.get("spec").and_then(|s| s.get("mtls")) {
            Some(m) => serde_json::from_value(m.clone())
                .map_err(|_| "spec.mtls is not a Kuma mTLS section".to_string())?,
            None => Mtls::default(),
        };
        let enabled = mtls.enabled_backend.filter(|b| !b.trim().is_empty());
        let permissive = enabled.as_ref().is_some_and(|e| {
            mtls.backends.iter().flatten().any(|b| {
                b.name.as_deref() == Some(e.as_str())
                    && b.mode
                        .as_deref()
                        .is_some_and(|m| m.eq_ignore_ascii_case("permissive"))
            })
        });
        Ok(KumaMeshInfo {
            name,
            mtls_enabled: enabled.is_some(),
            permissive,
        })
    }
}

/// A Kuma `MeshTLS` policy (kuma.io/v1alpha1): its Mesh (label `kuma.io/mesh`, default
/// `default`) and whether it sets `mode: Permissive` anywhere (`spec.rules[].default.mode`, or
/// the older `spec.from[].default.mode`). Its `targetRef` is not resolved: a permissive MeshTLS
/// counts against every workload of its Mesh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KumaMeshTlsInfo {
    pub namespace: String,
    pub name: String,
    pub mesh: String,
    pub permissive: bool,
}

impl KumaMeshTlsInfo {
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let meta = v.get("metadata");
        let text = |key: &str| {
            meta.and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mesh = meta
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.get("kuma.io/mesh"))
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or("default")
            .to_string();
        let spec = v.get("spec");
        let mut permissive = false;
        for list in ["rules", "from"] {
            match spec.and_then(|s| s.get(list)) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    permissive |= items.iter().any(|i| {
                        i.get("default")
                            .and_then(|d| d.get("mode"))
                            .and_then(Value::as_str)
                            .is_some_and(|m| m.eq_ignore_ascii_case("permissive"))
                    })
                }
                Some(_) => return Err(format!("spec.{list} is not a list")),
            }
        }
        Ok(KumaMeshTlsInfo {
            namespace: text("namespace"),
            name: text("name"),
            mesh,
            permissive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cilium_wireguard_and_ipsec() {
        let on = from_config_map(
            PlatformSource::Cilium,
            &data(&[
                ("enable-wireguard", "true"),
                ("enable-ipv4", "true"),
                ("tunnel-protocol", "vxlan"),
            ]),
        )
        .unwrap();
        assert_eq!(on.enabled, ["enable-wireguard: \"true\""]);
        let ipsec = from_config_map(
            PlatformSource::Cilium,
            &data(&[("enable-ipsec", "True"), ("enable-wireguard", "false")]),
        )
        .unwrap();
        assert_eq!(ipsec.enabled, ["enable-ipsec: \"true\""]);
        let off = from_config_map(
            PlatformSource::Cilium,
            &data(&[("enable-wireguard", "yes"), ("enable-ipsec", "false")]),
        )
        .unwrap();
        assert!(!off.encrypts());
    }

    #[test]
    fn antrea_agent_conf_modes() {
        let conf = |body: &str| {
            from_config_map(
                PlatformSource::Antrea,
                &data(&[
                    ("antrea-agent.conf", body),
                    ("antrea-controller.conf", "x: 1"),
                ]),
            )
        };
        let wg = conf("featureGates:\n  Multicast: false\ntrafficEncapMode: encap\ntrafficEncryptionMode: wireGuard\nwireGuard:\n  port: 51820\n").unwrap();
        assert_eq!(
            wg.enabled,
            ["antrea-agent.conf trafficEncryptionMode: wireGuard"]
        );
        assert!(conf("trafficEncryptionMode: IPsec\n").unwrap().encrypts());
        assert!(conf("enableIPSecTunnel: true\n").unwrap().encrypts());
        assert!(!conf("trafficEncryptionMode: none\n").unwrap().encrypts());
        assert!(!conf("# all defaults\n").unwrap().encrypts());
        let err = conf("trafficEncryptionMode: [unclosed").unwrap_err();
        assert!(err.contains("antrea-agent.conf") && !err.contains("unclosed"));
    }

    #[test]
    fn flannel_backends() {
        let net = |body: &str| {
            from_config_map(
                PlatformSource::Flannel,
                &data(&[("net-conf.json", body), ("cni-conf.json", "{}")]),
            )
        };
        let wg = net(r#"{ "Network": "10.244.0.0/16", "EnableNFTables": false, "Backend": { "Type": "wireguard", "PersistentKeepaliveInterval": 0, "Mode": "separate" } }"#).unwrap();
        assert_eq!(wg.enabled, ["net-conf.json Backend.Type: wireguard"]);
        assert!(
            !net(r#"{ "Network": "10.244.0.0/16", "Backend": { "Type": "vxlan" } }"#)
                .unwrap()
                .encrypts()
        );
        assert!(net("{ not json").is_err());
    }

    #[test]
    fn calico_felix_configuration() {
        let felix = |spec: Value| {
            from_felix_configuration(&json!({
                "apiVersion": "crd.projectcalico.org/v1", "kind": "FelixConfiguration",
                "metadata": { "name": "default" }, "spec": spec
            }))
        };
        assert_eq!(
            felix(json!({ "wireguardEnabled": true, "logSeverityScreen": "Info" }))
                .unwrap()
                .enabled,
            ["spec.wireguardEnabled: true"]
        );
        assert!(felix(json!({ "wireguardEnabledV6": true }))
            .unwrap()
            .encrypts());
        assert!(!felix(json!({ "wireguardEnabled": false }))
            .unwrap()
            .encrypts());
        assert!(!felix(json!({ "bpfEnabled": true })).unwrap().encrypts());
        assert!(felix(json!({ "wireguardEnabled": "yes" })).is_err());
    }

    #[test]
    fn kuma_mesh_mtls() {
        let mesh = |spec: Value| {
            KumaMeshInfo::from_value(&json!({
                "apiVersion": "kuma.io/v1alpha1", "kind": "Mesh",
                "metadata": { "name": "default" }, "spec": spec
            }))
        };
        let strict = mesh(json!({ "mtls": { "enabledBackend": "ca-1",
            "backends": [{ "name": "ca-1", "type": "builtin" }] } }))
        .unwrap();
        assert!(strict.mtls_enabled && !strict.permissive);
        assert_eq!(strict.name, "default");
        let permissive = mesh(json!({ "mtls": { "enabledBackend": "ca-1",
            "backends": [{ "name": "ca-1", "type": "builtin", "mode": "PERMISSIVE" },
                         { "name": "ca-2", "type": "provided", "mode": "STRICT" }] } }))
        .unwrap();
        assert!(permissive.mtls_enabled && permissive.permissive);
        assert!(!mesh(json!({})).unwrap().mtls_enabled);
        assert!(
            !mesh(json!({ "mtls": { "backends": [{ "name": "ca-1" }] } }))
                .unwrap()
                .mtls_enabled
        );
        assert!(mesh(json!({ "mtls": "on" })).is_err());
    }

    #[test]
    fn kuma_mesh_tls_modes() {
        let tls = |labels: Value, spec: Value| {
            KumaMeshTlsInfo::from_value(&json!({
                "apiVersion": "kuma.io/v1alpha1", "kind": "MeshTLS",
                "metadata": { "name": "mtls", "namespace": "kuma-system", "labels": labels },
                "spec": spec
            }))
        };
        let strict = tls(
            json!({ "kuma.io/mesh": "payments" }),
            json!({ "targetRef": { "kind": "Dataplane", "labels": { "app": "redis" } },
                    "rules": [{ "default": { "mode": "Strict" } }] }),
        )
        .unwrap();
        assert_eq!(strict.mesh, "payments");
        assert!(!strict.permissive);
        let old = tls(
            json!({}),
            json!({ "targetRef": { "kind": "Mesh" },
                    "from": [{ "targetRef": { "kind": "Mesh" }, "default": { "mode": "Permissive" } }] }),
        )
        .unwrap();
        assert_eq!(old.mesh, "default");
        assert!(old.permissive);
        assert!(tls(json!({}), json!({ "rules": "Permissive" })).is_err());
    }

    #[test]
    fn ingress_nginx_global_redirects_as_the_controller_decodes_them() {
        let global = |pairs: &[(&str, &str)]| {
            from_config_map(PlatformSource::IngressNginx, &data(pairs))
                .unwrap()
                .nginx_redirects()
                .unwrap()
        };
        // Absent keys: the controller's defaults, redirect on, not forced.
        assert_eq!(global(&[("use-forwarded-headers", "true")]), (true, false));
        assert_eq!(global(&[("ssl-redirect", "false")]), (false, false));
        assert_eq!(global(&[("ssl-redirect", "0")]), (false, false));
        // mapstructure reads an empty string as false.
        assert_eq!(global(&[("ssl-redirect", "")]), (false, false));
        // Not a Go boolean: the default stays.
        assert_eq!(global(&[("ssl-redirect", "no")]), (true, false));
        assert_eq!(
            global(&[("ssl-redirect", "false"), ("force-ssl-redirect", "True")]),
            (false, true)
        );
        assert_eq!(
            PlatformSource::of_config_map("ingress-nginx", "ingress-nginx-controller"),
            Some(PlatformSource::IngressNginx)
        );
        let cilium = from_config_map(PlatformSource::Cilium, &data(&[])).unwrap();
        assert_eq!(cilium.nginx_redirects(), None);
    }

    #[test]
    fn config_map_sources_are_named_objects() {
        assert_eq!(
            PlatformSource::of_config_map("kube-system", "cilium-config"),
            Some(PlatformSource::Cilium)
        );
        assert_eq!(
            PlatformSource::of_config_map("default", "cilium-config"),
            None
        );
        assert_eq!(
            PlatformSource::of_config_map("kube-flannel", "kube-flannel-cfg"),
            Some(PlatformSource::Flannel)
        );
    }
}
