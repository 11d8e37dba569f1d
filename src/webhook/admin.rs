//! HTTP routes of the plain admin port: `/healthz`, `/readyz` and `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::router::{not_found, AppState};

/// The admin router (plain HTTP port).
pub(super) fn admin_router(app: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(app)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
}

async fn readyz(State(app): State<AppState>) -> Response {
    let failing = app.readiness.failing();
    let why = |name: &str| {
        failing
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, for_, reason)| format!(" (failing for {}s: {reason})", for_.as_secs()))
            .unwrap_or_default()
    };
    if app.readiness.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down; still answering reviews until the listener closes\n",
        )
            .into_response()
    } else if app.readiness.is_ready() {
        // Still ready (another replica is no freer, and going unready would refuse PHI work
        // everywhere), but say it: reviews wait for a connection slot.
        let saturated = app
            .metrics
            .connections_saturated
            .get_or_create(&[("listener", "webhook".to_string())])
            .get()
            > 0;
        let saturated = if saturated {
            "; saturated: every webhook connection slot (--max-connections) is taken, new connections wait"
        } else {
            ""
        };
        if failing.is_empty() {
            return (StatusCode::OK, format!("ok{saturated}\n")).into_response();
        }
        // Still ready: the caches hold their last complete state, denials are confirmed with
        // the API server, and while the API server itself is down it calls no webhook. Going
        // unready would make every PHI request fail once it is back. Say what is stale.
        let names: Vec<String> = failing
            .iter()
            .map(|(n, _, _)| format!("{n}{}", why(n)))
            .collect();
        (
            StatusCode::OK,
            format!(
                "ok, degraded: serving the last synced state while these reconnect: {}{saturated}\n",
                names.join(", ")
            ),
        )
            .into_response()
    } else {
        let pending: Vec<String> = app
            .readiness
            .pending()
            .iter()
            .map(|n| format!("{n}{}", why(n)))
            .collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready; waiting for: {}\n", pending.join(", ")),
        )
            .into_response()
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let set = app.state.policies();
    app.metrics
        .observe_state(&app.state.sizes(), set.policies.len(), set.rejected.len());
    app.metrics.ready.set(i64::from(app.readiness.is_ready()));
    app.metrics
        .failing_components
        .set(i64::try_from(app.readiness.failing().len()).unwrap_or(i64::MAX));
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let soon = app
        .state
        .exceptions()
        .iter()
        .filter(|e| e.expires_at > now && e.expires_at <= now + 7 * 86_400)
        .count();
    app.metrics
        .exceptions_expiring
        .set(i64::try_from(soon).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}
