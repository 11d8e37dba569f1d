//! The security settings of a pod spec that the `least-privilege` and `integrity` rules read
//! (Pod Security Standards fields), decoded from the request body like the rest of the pod.
//! Only names and flags are kept; values are compared, never echoed in findings.

use serde::Deserialize;

use super::null_default;

/// `spec.os`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct PodOs {
    #[serde(default)]
    pub name: String,
}

/// A seccomp profile (`type`: RuntimeDefault, Localhost, Unconfined).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct SeccompProfile {
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// An AppArmor profile (`type`: RuntimeDefault, Localhost, Unconfined).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct AppArmorProfile {
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// SELinux options: Pod Security limits the type and forbids a user or role.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct SeLinuxOptions {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

/// Windows options: only `hostProcess` matters here.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WindowsOptions {
    #[serde(default)]
    pub host_process: Option<bool>,
}

/// A sysctl set by the pod (its name only is judged).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Sysctl {
    #[serde(default)]
    pub name: String,
}

/// `spec.securityContext`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    #[serde(default)]
    pub run_as_non_root: Option<bool>,
    #[serde(default)]
    pub run_as_user: Option<i64>,
    #[serde(default)]
    pub seccomp_profile: Option<SeccompProfile>,
    #[serde(default)]
    pub app_armor_profile: Option<AppArmorProfile>,
    #[serde(default, rename = "seLinuxOptions")]
    pub se_linux_options: Option<SeLinuxOptions>,
    #[serde(default)]
    pub windows_options: Option<WindowsOptions>,
    #[serde(default, deserialize_with = "null_default")]
    pub sysctls: Vec<Sysctl>,
}

/// Container capabilities.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Capabilities {
    #[serde(default, deserialize_with = "null_default")]
    pub add: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub drop: Vec<String>,
}

/// `containers[*].securityContext`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSecurityContext {
    #[serde(default)]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub allow_privilege_escalation: Option<bool>,
    #[serde(default)]
    pub run_as_non_root: Option<bool>,
    #[serde(default)]
    pub run_as_user: Option<i64>,
    #[serde(default)]
    pub read_only_root_filesystem: Option<bool>,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    pub seccomp_profile: Option<SeccompProfile>,
    #[serde(default)]
    pub app_armor_profile: Option<AppArmorProfile>,
    #[serde(default, rename = "seLinuxOptions")]
    pub se_linux_options: Option<SeLinuxOptions>,
    #[serde(default)]
    pub windows_options: Option<WindowsOptions>,
    #[serde(default)]
    pub proc_mount: Option<String>,
}
