//! The admission webhook server: a rustls listener (HTTP/1.1 keep-alive and HTTP/2 via ALPN,
//! certificate hot reload) serving `POST /validate`, a plain-HTTP admin listener (`/healthz`,
//! `/readyz`, `/metrics`), and graceful shutdown that finishes in-flight reviews.
//!
//! [`start`] takes already-bound listeners so tests and benchmarks can bind `127.0.0.1:0`.

pub mod admission;
pub mod review;
pub mod router;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::cluster::ClusterState;
use crate::telemetry::{Metrics, Readiness};
pub use router::AppState;
pub use tls::{CertStore, TlsError};

/// The readiness component for the serving certificate.
pub const TLS_COMPONENT: &str = "tls";

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
    /// Cap on one request, body read included (slow clients get 408).
    pub request_timeout: Duration,
    /// Cap on a TLS handshake and on receiving a request's headers.
    pub handshake_timeout: Duration,
    /// How often the certificate files are re-read.
    pub cert_reload_interval: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Options {
    /// Defaults around a certificate pair.
    pub fn new(tls_cert_file: impl Into<PathBuf>, tls_key_file: impl Into<PathBuf>) -> Options {
        Options {
            tls_cert_file: tls_cert_file.into(),
            tls_key_file: tls_key_file.into(),
            request_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            cert_reload_interval: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(25),
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
    pub certs: Arc<CertStore>,
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
/// certificate is loaded before returning (an unusable pair is an error) and marks the `tls`
/// readiness component ready; other components (watch caches) are the caller's.
pub async fn start(
    listener: TcpListener,
    admin: TcpListener,
    opts: Options,
    state: Arc<ClusterState>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
) -> Result<Handle, ServeError> {
    readiness.register(TLS_COMPONENT);
    let certs = {
        let (c, k, m) = (
            opts.tls_cert_file.clone(),
            opts.tls_key_file.clone(),
            metrics.clone(),
        );
        tokio::task::spawn_blocking(move || CertStore::load(c, k, m))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??
    };
    let tls_config = Arc::new(tls::server_config(certs.clone())?);
    readiness.set_ready(TLS_COMPONENT);

    let app = AppState {
        state,
        metrics,
        readiness,
    };
    let addr = listener.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let (stop, stopped) = watch::channel(false);

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(
        certs
            .clone()
            .poll(opts.cert_reload_interval, wait(stopped.clone())),
    ));
    let webhook = router::webhook_router(app.clone(), opts.request_timeout);
    tasks.push(tokio::spawn(serve_tls(
        listener,
        TlsAcceptor::from(tls_config),
        webhook,
        opts.clone(),
        stopped.clone(),
    )));
    let admin_router = router::admin_router(app.clone());
    let admin_stop = wait(stopped.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(admin, admin_router)
            .with_graceful_shutdown(admin_stop)
            .await
        {
            tracing::error!(error = %e, "admin listener failed");
        }
    }));
    tracing::info!(%addr, %admin_addr, "phi-guard webhook listening");
    Ok(Handle {
        addr,
        admin_addr,
        certs,
        app,
        stop,
        tasks,
    })
}

/// Resolves once shutdown is requested (or the handle is dropped).
async fn wait(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: axum::Router,
    opts: Options,
    stopped: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(opts.handshake_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stop = wait(stopped);
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let handshake_timeout = opts.handshake_timeout;
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(opts.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
}
