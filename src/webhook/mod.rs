//! The admission webhook server: a rustls listener (HTTP/1.1 keep-alive and HTTP/2 via ALPN,
//! certificate hot reload) serving `POST /validate`, a plain-HTTP admin listener (`/healthz`,
//! `/readyz`, `/metrics`), and graceful shutdown that finishes in-flight reviews.
//!
//! [`start`] takes already-bound listeners so tests and benchmarks can bind `127.0.0.1:0`.

mod admin;
pub mod admission;
pub(crate) mod budget;
pub(crate) mod one_line;
pub mod review;
pub mod router;
mod send_budget;
mod server;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::cluster::ClusterState;
use crate::telemetry::{Metrics, Readiness};
pub use router::{AppState, Shared};
pub use tls::{CertStore, TlsError};

/// The readiness component for the serving certificate.
pub const TLS_COMPONENT: &str = "tls";

/// Default cap on one request, body read included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a TLS handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default HTTP/1.1 header-read (and idle keep-alive) timeout: above the API server's 90 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Default interval between re-reads of the certificate files.
pub const DEFAULT_CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Default wait for in-flight requests at shutdown (the chart's grace period is 30 s).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// Default cap on open webhook connections (the API servers keep a few each; an idle TLS
/// connection costs ~50 KiB).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default cap on open webhook connections from one peer address: the API server calls from a
/// few addresses (its own, or a konnectivity agent's) with a few connections each, while one
/// pod opening connections and leaving them idle must not take every slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 64;
/// Default listen backlog of both listeners: connections waiting for a slot (the kernel caps
/// it at net.core.somaxconn). The standard library's 128 overflows under a burst of
/// connections while every slot is taken, and the API server then sees connection errors
/// instead of a short wait.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
/// Default memory for request bodies being read, across all requests (see
/// `budget::BodyBudget`).
pub const DEFAULT_BODY_BUFFER_MIB: usize = 32;
/// Default number of reviews over 64 KiB judged at once. A fixed number, not the core count:
/// each holds its decoded object while it is judged, so the memory limit can be set from the
/// configuration (RELIABILITY.md has the measured cost per slot), whatever node the pod lands on.
pub const DEFAULT_LARGE_REVIEW_SLOTS: usize = 2;
/// Default memory for response bytes connections have not taken yet, across the webhook's
/// connections (send_budget.rs); one connection may hold an eighth of it.
pub const DEFAULT_RESPONSE_BUFFER_MIB: usize = 16;
/// Default time a connection may leave response bytes untaken before it is closed.
pub const DEFAULT_RESPONSE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// What the admin port's connections may leave untaken (probes and scrapes read at once).
const ADMIN_SEND: send_budget::SendLimits = send_budget::SendLimits {
    total: 8 * 1024 * 1024,
    per_connection: 2 * 1024 * 1024,
    stall: Duration::from_secs(10),
};
/// HTTP/2 streams per webhook connection.
const MAX_STREAMS: u32 = 128;
/// The admin port serves probes and scrapes: few connections, short timeouts, and it never
/// holds shutdown up.
const ADMIN_LIMITS: server::Limits = server::Limits {
    max_connections: 64,
    max_per_peer: 64,
    handshake_timeout: Duration::ZERO,
    first_request_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(60),
    header_read_timeout: Duration::from_secs(10),
    max_streams: 8,
    shutdown_grace: Duration::from_secs(1),
};
/// Cap on one admin request.
const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default webhook listener.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
/// Default admin listener (/healthz, /readyz, /metrics).
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:8080";

/// A listener on `addr` with room for `backlog` connections waiting to be accepted.
pub fn bind(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the standard library's bind does: a restarted process can bind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The connection metrics of one listener.
fn send_metrics(metrics: &Metrics, listener: &str) -> send_budget::SendMetrics {
    let closed = |reason: &str| {
        metrics
            .connections_closed
            .get_or_create(&[
                ("listener", listener.to_string()),
                ("reason", reason.to_string()),
            ])
            .clone()
    };
    send_budget::SendMetrics {
        unsent: metrics
            .unsent_response_bytes
            .get_or_create(&[("listener", listener.to_string())])
            .clone(),
        closed_over_budget: closed("unread_responses"),
        closed_stalled: closed("stalled_responses"),
    }
}

fn connection_metrics(
    metrics: &Metrics,
    listener: &str,
    send: send_budget::SendLimits,
) -> server::ConnectionMetrics {
    let l = [("listener", listener.to_string())];
    server::ConnectionMetrics {
        open: metrics.open_connections.get_or_create(&l).clone(),
        saturated: metrics.connections_saturated.get_or_create(&l).clone(),
        saturations: metrics.connection_saturations.get_or_create(&l).clone(),
        refused_per_peer: metrics
            .connections_refused
            .get_or_create(&[
                ("listener", listener.to_string()),
                ("reason", "per_peer".to_string()),
            ])
            .clone(),
        send: send_budget::SendBudget::new(send, send_metrics(metrics, listener)),
    }
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
    /// Cap on one request, body read included (slow clients get 408).
    pub request_timeout: Duration,
    /// Cap on a TLS handshake.
    pub handshake_timeout: Duration,
    /// HTTP/1.1: cap on receiving a request's headers, which in hyper also bounds how long an
    /// idle keep-alive connection waits for its next request. Keep it above the API server's
    /// idle-connection timeout (90 s): if phi-guard closed idle connections first, a review
    /// sent just as the connection closes would fail (POST is not retried) and, with
    /// `failurePolicy: Fail`, the user's request with it.
    pub header_read_timeout: Duration,
    /// How often the certificate files are re-read.
    pub cert_reload_interval: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Open webhook connections at most (more wait in the listen backlog).
    pub max_connections: usize,
    /// Open webhook connections from one peer address at most (more are closed at once).
    pub max_connections_per_peer: usize,
    /// Memory for request bodies being read, across all requests, in MiB.
    pub body_buffer_mib: usize,
    /// Reviews over 64 KiB judged at once (each holds its decoded object while judged).
    pub large_review_slots: usize,
    /// Memory for response bytes not yet taken by their connections, in MiB (one connection
    /// may hold an eighth; more, or the most when the total is exceeded, closes it).
    pub response_buffer_mib: usize,
    /// A connection leaving response bytes untaken this long is closed.
    pub response_stall_timeout: Duration,
    /// The certificate files may not exist yet (self-managed TLS writes them after start):
    /// instead of failing, keep `tls` not ready and retry every reload interval; the TLS
    /// listener starts accepting once a pair loads.
    pub wait_for_certificate: bool,
    /// Consistent reads for decisions the watch caches cannot settle (in a cluster).
    pub(crate) confirmer: Option<crate::cluster::confirm::Confirmer>,
}

impl Options {
    /// Defaults around a certificate pair.
    pub fn new(tls_cert_file: impl Into<PathBuf>, tls_key_file: impl Into<PathBuf>) -> Options {
        Options {
            tls_cert_file: tls_cert_file.into(),
            tls_key_file: tls_key_file.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            cert_reload_interval: DEFAULT_CERT_RELOAD_INTERVAL,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            body_buffer_mib: DEFAULT_BODY_BUFFER_MIB,
            response_buffer_mib: DEFAULT_RESPONSE_BUFFER_MIB,
            large_review_slots: DEFAULT_LARGE_REVIEW_SLOTS,
            response_stall_timeout: DEFAULT_RESPONSE_STALL_TIMEOUT,
            wait_for_certificate: false,
            confirmer: None,
        }
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A running server.
#[derive(Debug)]
pub struct Handle {
    /// Address of the TLS webhook listener.
    pub addr: SocketAddr,
    /// Address of the admin listener.
    pub admin_addr: SocketAddr,
    pub app: AppState,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Handle {
    /// Stop accepting, let in-flight requests finish (up to the grace period), and return.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Start the webhook on `listener` (TLS) and the admin endpoints on `admin` (plain HTTP). The
/// certificate is loaded before returning (an unusable pair is an error, unless
/// [`Options::wait_for_certificate`]) and marks the `tls` readiness component ready; other
/// components (watch caches) are the caller's.
pub async fn start(
    listener: TcpListener,
    admin: TcpListener,
    opts: Options,
    state: Arc<ClusterState>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
) -> Result<Handle, ServeError> {
    readiness.register(TLS_COMPONENT);
    let first = load(&opts, &metrics).await;
    let first = match first {
        Ok(store) => Some(store),
        Err(e) if opts.wait_for_certificate => {
            tracing::info!(error = %e, "no usable serving certificate yet; waiting for it");
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(store) = &first {
        // Fail at start on a configuration rustls refuses, not on the first connection.
        tls::server_config(store.clone())?;
        readiness.set_ready(TLS_COMPONENT);
    }

    let app = AppState::new(Shared {
        state,
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        confirmer: opts.confirmer.clone(),
        budget: Arc::new(budget::BodyBudget::new(
            opts.body_buffer_mib.saturating_mul(1024 * 1024),
            opts.large_review_slots,
            metrics.clone(),
        )),
    });
    let addr = listener.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let (stop, stopped) = watch::channel(false);

    let mut tasks = Vec::new();
    let webhook = router::webhook_router(app.clone(), opts.request_timeout);
    let tls_opts = opts.clone();
    let tls_stopped = stopped.clone();
    tasks.push(tokio::spawn(async move {
        let store = match first {
            Some(s) => s,
            None => match wait_for_certificate(&tls_opts, &metrics, tls_stopped.clone()).await {
                Some(s) => s,
                None => return, // shut down before a certificate appeared
            },
        };
        let config = match tls::server_config(store.clone()) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!(error = %e, "TLS configuration refused; not serving");
                return;
            }
        };
        readiness.set_ready(TLS_COMPONENT);
        let poller =
            tokio::spawn(store.poll(tls_opts.cert_reload_interval, wait(tls_stopped.clone())));
        let limits = server::Limits {
            max_connections: tls_opts.max_connections,
            max_per_peer: tls_opts.max_connections_per_peer,
            handshake_timeout: tls_opts.handshake_timeout,
            // The API server sends its review right after connecting.
            first_request_timeout: tls_opts.handshake_timeout,
            idle_timeout: tls_opts.header_read_timeout,
            header_read_timeout: tls_opts.header_read_timeout,
            max_streams: MAX_STREAMS,
            shutdown_grace: tls_opts.shutdown_grace,
        };
        let total = tls_opts
            .response_buffer_mib
            .max(1)
            .saturating_mul(1024 * 1024);
        let send = send_budget::SendLimits {
            total,
            per_connection: total / 8,
            stall: tls_opts.response_stall_timeout,
        };
        let open = connection_metrics(&metrics, "webhook", send);
        server::serve(
            "webhook",
            listener,
            Some(TlsAcceptor::from(config)),
            webhook,
            limits,
            tls_stopped,
            open,
        )
        .await;
        let _ = poller.await;
    }));
    let admin_router = admin::admin_router(app.clone(), ADMIN_REQUEST_TIMEOUT);
    let admin_open = connection_metrics(&app.metrics, "admin", ADMIN_SEND);
    tasks.push(tokio::spawn(server::serve(
        "admin",
        admin,
        None,
        admin_router,
        ADMIN_LIMITS,
        stopped.clone(),
        admin_open,
    )));
    tracing::info!(%addr, %admin_addr, "phi-guard webhook listening");
    Ok(Handle {
        addr,
        admin_addr,
        app,
        stop,
        tasks,
    })
}

async fn load(opts: &Options, metrics: &Arc<Metrics>) -> Result<Arc<CertStore>, ServeError> {
    let (c, k, m) = (
        opts.tls_cert_file.clone(),
        opts.tls_key_file.clone(),
        metrics.clone(),
    );
    Ok(
        tokio::task::spawn_blocking(move || CertStore::load(c, k, m))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??,
    )
}

/// Retry loading the pair every reload interval until it loads (Some) or shutdown (None).
async fn wait_for_certificate(
    opts: &Options,
    metrics: &Arc<Metrics>,
    stopped: watch::Receiver<bool>,
) -> Option<Arc<CertStore>> {
    let stop = wait(stopped);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return None,
            _ = tokio::time::sleep(opts.cert_reload_interval) => {}
        }
        match load(opts, metrics).await {
            Ok(store) => {
                tracing::info!(cert = %opts.tls_cert_file.display(), "serving certificate loaded");
                return Some(store);
            }
            Err(e) => tracing::debug!(error = %e, "serving certificate not usable yet"),
        }
    }
}

/// Resolves once shutdown is requested (or the handle is dropped).
async fn wait(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
