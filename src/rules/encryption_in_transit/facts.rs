//! What mesh detection reads of a pod, and how a signal or a piece of evidence is judged.

use super::*;

/// What mesh detection reads of a pod, from a pod spec under review or a cached [`PodInfo`].
pub(super) struct PodFacts<'a> {
    pub(super) namespace: &'a str,
    pub(super) labels: &'a Labels,
    pub(super) annotations: &'a Labels,
    /// Containers that run for the pod's lifetime: app containers and native sidecars.
    pub(super) containers: Vec<&'a str>,
    /// Container ports of the app containers (for port-level PeerAuthentication and inbound
    /// capture); empty for cached pods.
    pub(super) ports: Vec<u32>,
    /// The pod uses the host network (never injected by a mesh).
    pub(super) host_network: bool,
}

impl<'a> PodFacts<'a> {
    pub(super) fn from_view(namespace: &'a str, p: &'a PodView) -> Self {
        PodFacts {
            namespace,
            labels: &p.labels,
            annotations: &p.annotations,
            containers: p
                .spec
                .containers
                .iter()
                .chain(
                    p.spec
                        .init_containers
                        .iter()
                        .filter(|c| c.is_native_sidecar()),
                )
                .map(|c| c.name.as_str())
                .collect(),
            ports: p
                .spec
                .containers
                .iter()
                .flat_map(|c| c.ports.iter())
                .filter_map(|port| u32::try_from(port.container_port).ok())
                .collect(),
            host_network: p.spec.host_network,
        }
    }

    pub(super) fn from_info(p: &'a PodInfo) -> Self {
        PodFacts {
            namespace: &p.namespace,
            labels: &p.labels,
            annotations: &p.annotations,
            // Cached pods keep container and init container names together; a proxy among
            // init containers is a native sidecar in practice.
            containers: p.container_names.iter().map(String::as_str).collect(),
            ports: Vec::new(),
            host_network: p.host_network,
        }
    }

    pub(super) fn has_container(&self, name: &str) -> bool {
        self.containers.contains(&name)
    }

    pub(super) fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub(super) fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(|v| v.trim())
    }
}

/// Is a mesh (or TLS) signal there, switched off, or absent? The strings say which field.
pub(super) enum Signal {
    Present(String),
    OptedOut(String),
    Absent,
}

/// One kind of evidence, judged: accepted, or what was seen and how to fix it.
pub(super) enum Evidence<'a> {
    Holds,
    Missing(Explain<'a>),
}

/// What was seen and how to fix it, written only when a finding is: most pods are judged
/// missing one kind of evidence on their way to the kind that holds (a Linkerd pod is first
/// judged without Istio), and these messages were most of the rule's time for them.
pub(super) type Explain<'a> = Box<dyn FnOnce() -> (String, String) + 'a>;

impl<'a> Evidence<'a> {
    /// Missing, with `explain` giving (what was seen, how to fix it) when a finding needs it.
    pub(super) fn missing(explain: impl FnOnce() -> (String, String) + 'a) -> Self {
        Evidence::Missing(Box::new(explain))
    }
}

pub(super) fn ns_label<'n>(ns: Option<&'n NamespaceInfo>, key: &str) -> Option<&'n str> {
    ns.and_then(|n| n.labels.get(key)).map(String::as_str)
}

pub(super) fn ns_annotation<'n>(ns: Option<&'n NamespaceInfo>, key: &str) -> Option<&'n str> {
    ns.and_then(|n| n.annotations.get(key)).map(|v| v.trim())
}
