//! Watches for the optional safeguards (least privilege, integrity, entity authentication,
//! contingency): PodDisruptionBudgets (built in, always
//! served) and four custom resources whose CRDs may be absent, handled like PeerAuthentication:
//! Istio and Linkerd AuthorizationPolicies, Linkerd Servers and Velero Schedules. Discovering
//! Velero's Schedule CRD is what marks Velero installed for the contingency rule. Readiness
//! components: `watch/PodDisruptionBudget`, `watch/AuthorizationPolicy.security.istio.io`,
//! `watch/AuthorizationPolicy.policy.linkerd.io`, `watch/Server.policy.linkerd.io`,
//! `watch/Schedule.velero.io`; an absent CRD turns its component ready.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::*;
use crate::view::objects::ObjectError;
use crate::view::{
    IstioAuthzInfo, LinkerdAuthzInfo, LinkerdServerInfo, PdbInfo, VeleroScheduleInfo,
};

type Convert<T> = fn(&Value) -> Result<T, ObjectError>;

/// A custom resource watched into one of the safeguard tables.
fn custom<T: Send + Sync + 'static>(
    ctx: &Ctx,
    label: &'static str,
    gvk: GroupVersionKind,
    select: Select<T>,
    convert: Convert<T>,
    on_found: fn(&ClusterState),
) -> tokio::task::JoinHandle<()> {
    optional_as(ctx, label, gvk, move |ctx, ar| {
        on_found(&ctx.state);
        let api = Api::<DynamicObject>::all_with(ctx.client.clone(), &ar);
        let sink = TableSink::new(ctx.state.clone(), select, move |o: &DynamicObject| {
            to_value(o)
                .and_then(|v| convert(&v).map_err(|e| e.message))
                .map(Some)
        });
        run(ctx, api, label, sink)
    })
}

/// Start the watch of one of the safeguards' stores.
pub(super) fn watch(
    ctx: &Ctx,
    spec: &'static KindSpec,
    store: Store,
    gvk: GroupVersionKind,
) -> tokio::task::JoinHandle<()> {
    match store {
        Store::IstioAuthorizationPolicies => custom(
            ctx,
            "AuthorizationPolicy.security.istio.io",
            gvk,
            |s| &s.safeguards.istio_authorization_policies,
            IstioAuthzInfo::from_value,
            |_| {},
        ),
        Store::LinkerdAuthorizationPolicies => custom(
            ctx,
            "AuthorizationPolicy.policy.linkerd.io",
            gvk,
            |s| &s.safeguards.linkerd_authorization_policies,
            LinkerdAuthzInfo::from_value,
            |_| {},
        ),
        Store::LinkerdServers => custom(
            ctx,
            "Server.policy.linkerd.io",
            gvk,
            |s| &s.safeguards.linkerd_servers,
            LinkerdServerInfo::from_value,
            |_| {},
        ),
        Store::VeleroSchedules => custom(
            ctx,
            "Schedule.velero.io",
            gvk,
            |s| &s.safeguards.velero_schedules,
            VeleroScheduleInfo::from_value,
            |s| s.safeguards.set_velero_installed(true),
        ),
        // PodDisruptionBudgets are built in, always served (`watch_store` sends only the
        // safeguards' stores here).
        _ => typed::<PodDisruptionBudget, _>(
            ctx,
            spec.kind,
            |s| &s.safeguards.pdbs,
            |o| Ok(Some(PdbInfo::from(o))),
        ),
    }
}
