//! Which meshes a pod is enrolled in, as encryption in transit detects them, for rules that
//! depend on mesh membership (entity authentication). `hostNetwork` pods are in no mesh.

use super::*;

/// A service mesh a pod is enrolled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mesh {
    /// Istio, sidecar or ambient.
    Istio,
    Linkerd,
}

/// The meshes the pod is enrolled in, each with the signal that shows it (field names only).
pub(crate) fn meshes(
    namespace: &str,
    pod: &PodView,
    ns: Option<&NamespaceInfo>,
) -> Vec<(Mesh, String)> {
    if pod.spec.host_network {
        return Vec::new();
    }
    let f = PodFacts::from_view(namespace, pod);
    let mut out = Vec::new();
    if let Signal::Present(why) = istio_sidecar_signal(&f, ns) {
        out.push((Mesh::Istio, why));
    } else if let Signal::Present(why) = istio_ambient_signal(&f, ns) {
        out.push((Mesh::Istio, why));
    }
    if let Signal::Present(why) = linkerd_signal(&f, ns) {
        out.push((Mesh::Linkerd, why));
    }
    out
}
