//! Watches for the optional safeguards (issue 17): PodDisruptionBudgets (built in, always
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

/// Start the safeguards' watchers.
pub(super) fn spawn(ctx: &Ctx, tasks: &mut Vec<tokio::task::JoinHandle<()>>) {
    tasks.push(typed::<PodDisruptionBudget, _>(
        ctx,
        "PodDisruptionBudget",
        |s| &s.safeguards.pdbs,
        |o| Ok(Some(PdbInfo::from(o))),
    ));
    tasks.push(custom(
        ctx,
        "AuthorizationPolicy.security.istio.io",
        GroupVersionKind::gvk("security.istio.io", "v1", "AuthorizationPolicy"),
        |s| &s.safeguards.istio_authorization_policies,
        IstioAuthzInfo::from_value,
        |_| {},
    ));
    tasks.push(custom(
        ctx,
        "AuthorizationPolicy.policy.linkerd.io",
        GroupVersionKind::gvk("policy.linkerd.io", "v1alpha1", "AuthorizationPolicy"),
        |s| &s.safeguards.linkerd_authorization_policies,
        LinkerdAuthzInfo::from_value,
        |_| {},
    ));
    tasks.push(custom(
        ctx,
        "Server.policy.linkerd.io",
        GroupVersionKind::gvk("policy.linkerd.io", "v1beta1", "Server"),
        |s| &s.safeguards.linkerd_servers,
        LinkerdServerInfo::from_value,
        |_| {},
    ));
    tasks.push(custom(
        ctx,
        "Schedule.velero.io",
        GroupVersionKind::gvk("velero.io", "v1", "Schedule"),
        |s| &s.safeguards.velero_schedules,
        VeleroScheduleInfo::from_value,
        |s| s.safeguards.set_velero_installed(true),
    ));
}
