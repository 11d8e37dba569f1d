//! Accepting and serving connections on both listeners, within bounds set by configuration, not
//! by traffic:
//!
//! - at most `max_connections` open at once (the next one waits in the kernel's backlog), and
//!   at most `max_per_peer` from one address (more are closed at once): the API server calls
//!   from a few addresses, so a single pod cannot take every slot by opening connections and
//!   leaving them idle;
//! - a TLS handshake must finish within `handshake_timeout`;
//! - a connection that has not sent its first request within `first_request_timeout`, or has
//!   been idle (no request in flight) for `idle_timeout`, is closed gracefully: HTTP/1.1 and
//!   HTTP/2 alike (hyper's own header-read timeout covers only HTTP/1.1);
//! - HTTP/2 flow-control windows are small, so a connection's unread bodies hold at most
//!   `H2_CONNECTION_WINDOW` bytes while they wait for buffer room (router.rs);
//! - response bytes a connection has not written are metered (send_budget.rs): a connection
//!   that holds more than its share, holds the most when the listener is over its total, or
//!   writes nothing for a while is closed;
//! - at shutdown every connection is asked to close after its in-flight requests, and whatever
//!   is still open after `shutdown_grace` is dropped: neither port can hold the process up.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::send_budget::SendBudget;

/// HTTP/2 connection-level flow-control window: how much request body one connection may have
/// sent that phi-guard has not read yet. 256 KiB keeps a 3 MiB review flowing (the window is
/// refilled as the body is read) while bounding what stalled streams can make phi-guard hold.
pub(crate) const H2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// HTTP/2 per-stream window (hyper's default is 1 MiB per stream).
const H2_STREAM_WINDOW: u32 = 128 * 1024;

/// How long a connection being closed with nothing in flight may take to close by itself.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The same after an HTTP/2 GOAWAY. The peer stops opening streams once it reads the GOAWAY,
/// and answers its PING before phi-guard names the last stream it takes; a peer slowed down (a
/// loaded node) may meanwhile send a review it wrote before reading it, which phi-guard still
/// takes. Dropping the connection a second after it went quiet lost such a review (1 in 30
/// SIGTERM runs on a loaded machine: the client saw the TCP close before its answer).
const GOAWAY_WAIT: Duration = Duration::from_secs(10);

/// How often a listener whose slots are all taken says so in the log.
const SATURATION_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The bounds of one listener.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Open connections at most; more wait to be accepted.
    pub max_connections: usize,
    /// Open connections from one peer address at most; more are closed once accepted.
    pub max_per_peer: usize,
    /// Cap on a TLS handshake (TLS listener only).
    pub handshake_timeout: Duration,
    /// A connection that sends no request this long after it is accepted is closed.
    pub first_request_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/1.1: cap on receiving one request's headers.
    pub header_read_timeout: Duration,
    /// HTTP/2 streams per connection.
    pub max_streams: u32,
    /// How long shutdown waits for in-flight requests before dropping connections.
    pub shutdown_grace: Duration,
}

/// What a listener reports about its connections (labelled by listener in /metrics).
#[derive(Debug, Clone)]
pub(crate) struct ConnectionMetrics {
    /// Open connections.
    pub open: Gauge,
    /// 1 while every connection slot is taken: new connections wait in the listen backlog.
    pub saturated: Gauge,
    /// Times the accept loop found every slot taken.
    pub saturations: Counter,
    /// Connections closed at once because their peer address had its share open.
    pub refused_per_peer: Counter,
    /// The listener's response bytes not yet written (it reports its own metrics).
    pub send: Arc<SendBudget>,
}

/// Open connections per peer address. Entries live only while a connection from the address
/// is open, so the map is bounded by `max_connections`, not by the addresses ever seen.
#[derive(Debug, Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

/// One open connection counted against its peer address, until dropped.
struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        // An IPv4 peer on a dual-stack socket is one address however it is written.
        let ip = ip.to_canonical();
        let mut map = self.0.lock();
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                map.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// What one connection is doing, as its service sees it.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` when the last request finished (or the connection opened).
    last_ms: AtomicU64,
    inflight: AtomicUsize,
    requests: AtomicU64,
    /// A request came over HTTP/1.x.
    http1: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            http1: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        self.requests.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long no request has been in flight (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.inflight.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::SeqCst));
        self.opened.elapsed().saturating_sub(last)
    }

    /// When the connection should be closed if nothing happens before: `None` while a request
    /// is in flight.
    fn idle_deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.inflight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let limit = if self.requests.load(Ordering::SeqCst) == 0 {
            limits.first_request_timeout
        } else {
            limits.idle_timeout
        };
        let last = Duration::from_millis(self.last_ms.load(Ordering::SeqCst));
        Some(self.opened + last + limit)
    }
}

/// Marks a request in flight until dropped (also when the connection drops it unfinished).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_ms.store(self.0.now_ms(), Ordering::SeqCst);
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accept and serve connections on `listener` until `stopped` turns true, then close them
/// gracefully within the grace period. `tls`: the handshake to run first (none on the admin
/// port). `open` counts the open connections.
pub(crate) async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: axum::Router,
    limits: Limits,
    stopped: watch::Receiver<bool>,
    metrics: ConnectionMetrics,
) {
    let send = metrics.send.clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(limits.max_streams)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .initial_stream_window_size(H2_STREAM_WINDOW);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let peers = Arc::new(Peers::default());
    let mut last_warned: Option<Instant> = None;
    let mut conns = JoinSet::new();
    let stop = super::wait(stopped.clone());
    tokio::pin!(stop);
    loop {
        while conns.try_join_next().is_some() {}
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Every slot taken: say so (the metric, and /readyz for the webhook) and let
                // new connections wait in the backlog until one closes.
                metrics.saturated.set(1);
                metrics.saturations.inc();
                // At most one line per interval, however fast connections come and go.
                if last_warned.is_none_or(|t| t.elapsed() >= SATURATION_LOG_INTERVAL) {
                    last_warned = Some(Instant::now());
                    tracing::warn!(
                        listener = name,
                        max_connections = limits.max_connections,
                        "every connection slot is taken; new connections wait in the backlog"
                    );
                }
                let p = tokio::select! {
                    _ = &mut stop => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                metrics.saturated.set(0);
                p
            }
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(peer_slot) = peers.take(peer.ip(), limits.max_per_peer) else {
            // Closed at once (the slot goes back): a pod holding its share open cannot take
            // more. Debug only: the peer decides how often this happens; the metric counts it.
            metrics.refused_per_peer.inc();
            tracing::debug!(listener = name, %peer, "connection refused: its address has its share open");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (builder, router, limits, tls) =
            (builder.clone(), router.clone(), limits.clone(), tls.clone());
        let stopped = stopped.clone();
        let open = metrics.open.clone();
        let send = send.clone();
        conns.spawn(async move {
            let _permit = (permit, peer_slot);
            open.inc();
            let activity = Activity::new();
            match tls {
                None => drive(&builder, tcp, router, &activity, &limits, stopped, &send).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await
                    {
                        Ok(Ok(s)) => {
                            drive(&builder, s, router, &activity, &limits, stopped, &send).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            open.dec();
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            listener = name,
            open = conns.len(),
            "shutdown grace period over; closing remaining connections"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// Serve one connection until it ends, closing it gracefully when idle or at shutdown.
async fn drive<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    router: axum::Router,
    activity: &Arc<Activity>,
    limits: &Limits,
    mut stopped: watch::Receiver<bool>,
    send: &Arc<SendBudget>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let inner = TowerToHyperService::new(router);
    let act = activity.clone();
    let registered = send.register();
    let conn_send = registered.conn.clone();
    let meter = send.clone();
    let shutting = stopped.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = act.begin();
        let http1 = req.version() < hyper::Version::HTTP_2;
        if http1 {
            act.http1.store(true, Ordering::SeqCst);
        }
        let fut = hyper::service::Service::call(&inner, req);
        let (meter, conn_send, shutting) = (meter.clone(), conn_send.clone(), shutting.clone());
        async move {
            let r = fut.await;
            drop(guard);
            r.map(|mut resp| {
                // Shutting down: an HTTP/1.1 client learns from this answer that the
                // connection ends after it, so it sends its next request elsewhere instead of
                // racing the close (HTTP/2 learns the same from GOAWAY).
                if http1 && *shutting.borrow() {
                    resp.headers_mut().insert(
                        hyper::header::CONNECTION,
                        hyper::header::HeaderValue::from_static("close"),
                    );
                }
                resp.map(|body| meter.meter(&conn_send, body))
            })
        }
    });
    let io = send.count_writes(&registered.conn, io);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    // An HTTP/1.1 connection told to close at shutdown is closed by hyper after its next
    // answer (which says `Connection: close`), or by us once it has been idle a moment.
    let mut shut = false;
    loop {
        let deadline = activity.idle_deadline(limits);
        // With a request in flight, look again after a while (it ends or the request timeout
        // ends it); the connection's own future wakes this loop when it finishes.
        let mut wake = deadline.unwrap_or_else(|| Instant::now() + limits.idle_timeout);
        if let Some(stall) = send.stall_deadline(&registered.conn) {
            wake = wake.min(stall);
        }
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            // Responses it does not take: dropped with the connection, at once.
            () = registered.conn.close.notified() => return,
            // Bytes began to wait: the stall deadline starts now, and the wake computed above
            // (a request was in flight, nothing waited) may be a whole idle timeout away.
            () = registered.conn.waiting.notified(), if !closing => {}
            _ = tokio::time::sleep_until(wake.into()), if !closing => {
                if send.check_stall(&registered.conn) {
                    return;
                }
                if activity.idle_deadline(limits).is_some_and(|d| d <= Instant::now()) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    shut = true;
                }
            }
            _ = stopped.wait_for(|s| *s), if !closing => {
                closing = true;
                // HTTP/2: GOAWAY now; streams it did not take are safe for the client to send
                // again. HTTP/1.1: closing an idle connection now would drop a request already
                // on its way; its next answer says `Connection: close` instead. A connection
                // that has begun no request may not have been read far enough to tell which it
                // is, and hyper drops such a connection outright when asked to close (no
                // GOAWAY): a review its client has sent is lost. It waits as HTTP/1.1 does.
                let http2 = activity.requests.load(Ordering::SeqCst) > 0
                    && !activity.http1.load(Ordering::SeqCst);
                if http2 {
                    conn.as_mut().graceful_shutdown();
                    shut = true;
                }
            }
            // A graceful close waits for the peer (an HTTP/2 handshake it never finishes, a
            // GOAWAY it never acts on): with nothing in flight, stop waiting after a moment.
            _ = tokio::time::sleep(CLOSE_WAIT / 4), if closing => {
                if activity.inflight.load(Ordering::SeqCst) == 0 {
                    if shut {
                        // A peer that never sent a review (a handshake it never finishes)
                        // gets the short wait: it has nothing of ours to lose.
                        let client = activity.requests.load(Ordering::SeqCst) > 0
                            && !activity.http1.load(Ordering::SeqCst);
                        let wait = if client { GOAWAY_WAIT } else { CLOSE_WAIT };
                        if activity.idle_for() >= wait {
                            return;
                        }
                    } else if activity.idle_for() >= CLOSE_WAIT {
                        // Idle for a moment: no request is on its way.
                        conn.as_mut().graceful_shutdown();
                        shut = true;
                    }
                }
            }
        }
    }
}
