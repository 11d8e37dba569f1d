//! A NetworkPolicy reduced to what segmentation needs: whom it selects, which directions it
//! isolates, and which of its rules open the pods to everything.

use k8s_openapi::api::networking::v1::NetworkPolicy;

use crate::selector::{Labels, Selector};

/// A NetworkPolicy reduced to what isolation needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkPolicyInfo {
    pub namespace: String,
    pub name: String,
    pub pod_selector: Selector,
    /// Effective policyTypes contain Ingress (explicit, or the default: always).
    pub isolates_ingress: bool,
    /// Effective policyTypes contain Egress (explicit, or the default: when egress rules exist).
    pub isolates_egress: bool,
    pub ingress_rules: usize,
    pub egress_rules: usize,
    /// The podSelector could not be parsed; the policy selects nothing for phi-guard.
    pub invalid_selector: bool,
    /// Ingress rules that allow any source (see [`OpenRule`]); usually none.
    pub ingress_open: Vec<OpenRule>,
    /// Egress rules that allow any destination on ports other than DNS (53).
    pub egress_open: Vec<OpenRule>,
    /// Egress rules that allow only DNS (every port 53): a default deny may keep them.
    pub egress_dns_rules: usize,
    /// Carries the label of phi-guard's generated default deny (`phiguard.io/generated:
    /// default-deny`): provenance for status only; isolation is judged by content.
    pub generated: bool,
}

/// A NetworkPolicy rule that opens the pods to everything: no peers at all (`ingress: [{}]`,
/// `from` empty or absent), a peer with `namespaceSelector: {}` and no pod restriction (every
/// pod in every namespace), or an `ipBlock` of prefix length 0 (`0.0.0.0/0`, `::/0`; its
/// `except` list does not make it segmentation). A port restriction does not change it: those
/// ports are open to any source. Egress rules open only to DNS (port 53) are not counted.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenRule {
    /// `ingress[i]` / `egress[i]` index.
    pub index: usize,
    /// The peer that opens it (`from[j]` / `to[j]`), `None` when the rule has no peers.
    pub peer: Option<usize>,
    /// What it allows, in phi-guard's words (never values from the object beyond ports).
    pub allows: &'static str,
    /// `all ports`, or the ports as `5432/TCP, 8443-8445/TCP`.
    pub ports: String,
}

/// The label that marks phi-guard's generated default deny, and its value (provenance only:
/// isolation is judged by content).
pub(crate) const GENERATED_LABEL: &str = "phiguard.io/generated";
pub(crate) const GENERATED_VALUE: &str = "default-deny";

type Peer = k8s_openapi::api::networking::v1::NetworkPolicyPeer;
type Port = k8s_openapi::api::networking::v1::NetworkPolicyPort;

/// Does this peer allow everything? `Some(what)` when it does.
fn open_peer(peer: &Peer, ingress: bool) -> Option<&'static str> {
    let empty = |s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
        s.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        })
    };
    if empty(&peer.namespace_selector) && (peer.pod_selector.is_none() || empty(&peer.pod_selector))
    {
        return Some(
            "every pod in every namespace (`namespaceSelector: {}` without a pod restriction)",
        );
    }
    let any_address = peer.ip_block.as_ref().is_some_and(|b| {
        b.cidr
            .trim()
            .rsplit_once('/')
            .is_some_and(|(_, len)| len.trim().parse::<u8>() == Ok(0))
    });
    if any_address {
        return Some(if ingress {
            "any source address (an ipBlock with prefix length 0)"
        } else {
            "any destination address (an ipBlock with prefix length 0)"
        });
    }
    None
}

/// The ports of a rule as text (port names and numbers are not data).
fn ports_text(ports: Option<&Vec<Port>>) -> String {
    let ports: Vec<String> = ports
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let port = match &p.port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                    match p.end_port {
                        Some(end) => format!("{n}-{end}"),
                        None => n.to_string(),
                    }
                }
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => {
                    format!("{s:?}")
                }
                None => "every port".to_string(),
            };
            format!("{port}/{proto}")
        })
        .collect();
    if ports.is_empty() {
        "all ports".to_string()
    } else {
        format!("port {}", ports.join(", "))
    }
}

/// Only DNS: every listed port is 53.
fn dns_only(ports: Option<&Vec<Port>>) -> bool {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    ports.is_some_and(|ps| {
        !ps.is_empty()
            && ps
                .iter()
                .all(|p| matches!(p.port, Some(IntOrString::Int(53))) && p.end_port.is_none())
    })
}

/// The open rules of one direction: (peers, ports) per rule.
fn open_rules<'a>(
    rules: impl Iterator<Item = (Option<&'a Vec<Peer>>, Option<&'a Vec<Port>>)>,
    ingress: bool,
) -> Vec<OpenRule> {
    let mut out = Vec::new();
    for (index, (peers, ports)) in rules.enumerate() {
        if !ingress && dns_only(ports) {
            continue;
        }
        let open = match peers.filter(|p| !p.is_empty()) {
            None => Some((
                None,
                if ingress {
                    "any source (the rule names no peers)"
                } else {
                    "any destination (the rule names no peers)"
                },
            )),
            Some(peers) => peers
                .iter()
                .enumerate()
                .find_map(|(j, p)| open_peer(p, ingress).map(|w| (Some(j), w))),
        };
        if let Some((peer, allows)) = open {
            out.push(OpenRule {
                index,
                peer,
                allows,
                ports: ports_text(ports),
            });
        }
    }
    out
}

impl NetworkPolicyInfo {
    /// A namespace-wide default deny: selects all pods, isolates both directions, allows nothing
    /// but DNS (egress rules whose every port is 53, as phi-guard's generated one has: without
    /// them no pod can resolve a name).
    pub fn is_default_deny(&self) -> bool {
        self.pod_selector.is_empty()
            && !self.invalid_selector
            && self.isolates_ingress
            && self.isolates_egress
            && self.ingress_rules == 0
            && self.egress_rules == self.egress_dns_rules
    }

    /// The rules of a direction that allow everything (only when it isolates that direction:
    /// rules of a direction not in policyTypes are ignored by Kubernetes).
    pub fn open_rules(&self, ingress: bool) -> &[OpenRule] {
        match ingress {
            true if self.isolates_ingress => &self.ingress_open,
            false if self.isolates_egress => &self.egress_open,
            _ => &[],
        }
    }

    /// Does it isolate the pods for ingress without opening them to any source?
    pub fn segments_ingress(&self) -> bool {
        self.isolates_ingress && self.open_rules(true).is_empty()
    }

    /// Does it select a pod with these labels (same namespace assumed)?
    pub fn selects(&self, pod_labels: &Labels) -> bool {
        !self.invalid_selector && self.pod_selector.matches(pod_labels)
    }
}

impl From<&NetworkPolicy> for NetworkPolicyInfo {
    fn from(np: &NetworkPolicy) -> Self {
        let spec = np.spec.as_ref();
        let ingress_rules = spec.and_then(|s| s.ingress.as_ref()).map_or(0, Vec::len);
        let egress_rules = spec.and_then(|s| s.egress.as_ref()).map_or(0, Vec::len);
        let types = spec.and_then(|s| s.policy_types.as_ref());
        let (isolates_ingress, isolates_egress) = match types {
            Some(t) if !t.is_empty() => (
                t.iter().any(|x| x == "Ingress"),
                t.iter().any(|x| x == "Egress"),
            ),
            _ => (true, egress_rules > 0),
        };
        let selector = spec
            .and_then(|s| s.pod_selector.as_ref())
            .map(Selector::try_from)
            .unwrap_or(Ok(Selector::default()));
        let ingress_open = open_rules(
            spec.and_then(|s| s.ingress.as_ref())
                .into_iter()
                .flatten()
                .map(|r| (r.from.as_ref(), r.ports.as_ref())),
            true,
        );
        let egress_open = open_rules(
            spec.and_then(|s| s.egress.as_ref())
                .into_iter()
                .flatten()
                .map(|r| (r.to.as_ref(), r.ports.as_ref())),
            false,
        );
        let egress_dns_rules = spec
            .and_then(|s| s.egress.as_ref())
            .into_iter()
            .flatten()
            .filter(|r| dns_only(r.ports.as_ref()))
            .count();
        let generated = np
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(GENERATED_LABEL))
            .is_some_and(|v| v == GENERATED_VALUE);
        NetworkPolicyInfo {
            generated,
            egress_dns_rules,
            namespace: np.metadata.namespace.clone().unwrap_or_default(),
            name: np.metadata.name.clone().unwrap_or_default(),
            invalid_selector: selector.is_err(),
            ingress_open,
            egress_open,
            pod_selector: selector.unwrap_or_default(),
            isolates_ingress,
            isolates_egress,
            ingress_rules,
            egress_rules,
        }
    }
}
