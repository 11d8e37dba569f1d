//! TLS switched off by configuration: a PHI app that holds certificates, or sits behind a TLS
//! Service, still talks plaintext when its `env`, `command` or `args` say so (libpq
//! `sslmode=disable`, JDBC `useSSL=false`, MySQL `--skip-ssl`, Redis `--tls-port 0`, a Kafka
//! `PLAINTEXT://` listener, an `http://` URL to an in-cluster Service of PHI pods, ...; the
//! list is in `object::tls_off`). Judged by pattern on literal values only (never Secrets or
//! ConfigMaps), and never echoing a value: the finding names the container, the variable or
//! argument and what the pattern means.
//!
//! Severity: a setting that turns TLS off is a violation; one that allows a plaintext fallback
//! (`sslmode=prefer`) is a warning. In a pod whose mesh encrypts pod-to-pod traffic, a
//! database setting is a warning (connections that leave the mesh are plaintext) and an
//! `http://` call to an in-cluster Service is carried by the mesh.

use super::*;
use crate::object::tls_off::Strength;
use crate::policy::Mode;

pub(super) fn check_config(
    w: &Object,
    p: &PodView,
    ctx: &RuleContext,
    cfg: &InTransitConfig,
    meshed: bool,
    out: &mut Vec<Finding>,
) {
    let lists = [
        (&p.spec.containers, "containers"),
        (&p.spec.init_containers, "initContainers"),
    ];
    for (list, field) in lists {
        for (i, c) in list.iter().enumerate() {
            for t in c.tls_off() {
                if let Some((svc, ns)) = &t.http_service {
                    let ns = ns.as_deref().unwrap_or(&w.namespace);
                    if meshed
                        || !crate::policy::scope::service_routes_to_phi(
                            svc,
                            ns,
                            ctx.scoped_policy(),
                            ctx.cluster,
                        )
                    {
                        continue;
                    }
                }
                let mode = match (t.strength, meshed) {
                    (Strength::Off, false) => cfg.mode,
                    _ => Mode::Warn.min(cfg.mode),
                };
                let what = match &t.name {
                    Some(name) => format!("env {name}"),
                    None => format!("{}[{}]", t.field, t.index),
                };
                let target = t
                    .http_service
                    .as_ref()
                    .map(|(svc, _)| format!(" to Service {svc}, which selects PHI pods"))
                    .unwrap_or_default();
                let meshed_note = if meshed {
                    "; the mesh encrypts pod-to-pod traffic, but connections that leave it are plaintext"
                } else {
                    ""
                };
                out.push(Finding::new(
                    Reason::TlsSwitchedOff,
                    mode,
                    format!("{}.{field}[{i}].{}[{}]", p.spec_path, t.field, t.index),
                    format!(
                        "{}: container {} switches TLS off by configuration: {what} is {}{target}{meshed_note}",
                        w.display(),
                        c.name,
                        t.meaning
                    ),
                    format!(
                        "Require TLS in {what} of container {} (e.g. sslmode=verify-full, useSSL=true with \
                         sslMode=VERIFY_IDENTITY, https:// URLs, a TLS listener), with the CA of the server's \
                         certificate mounted.",
                        c.name
                    ),
                ));
            }
        }
    }
}
