//! Response bytes a connection has not written yet, bounded by configuration.
//!
//! A review's answer is small (webhook::admission bounds it), but a client can open many
//! streams and never read what comes back: each answer then waits in memory (in the body, in
//! HTTP/2's send buffers, in TLS's) for as long as the connection lives. Every response body is
//! charged to its connection when it is made, and the charge comes off as the connection writes
//! bytes to its socket (or when a body is dropped before the connection took it):
//!
//! - one connection holding more than its share (`per_connection`) is closed at once;
//! - when all connections together hold more than `total`, the one holding the most is closed
//!   (the API server reads its answers as they come, so it is never the one);
//! - a connection with bytes waiting that writes nothing for `stall` is closed.
//!
//! Closing drops the connection and with it every body it held, so the memory comes back.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// The bounds, from configuration.
#[derive(Debug, Clone)]
pub(crate) struct SendLimits {
    /// Response bytes not yet written, across every connection of the listener.
    pub total: usize,
    /// Response bytes not yet written by one connection.
    pub per_connection: usize,
    /// A connection with bytes waiting that writes none for this long is closed.
    pub stall: Duration,
}

/// What the budget reports.
#[derive(Debug, Clone)]
pub(crate) struct SendMetrics {
    /// Response bytes not yet written, now.
    pub unsent: Gauge,
    /// Connections closed for holding too much.
    pub closed_over_budget: Counter,
    /// Connections closed for writing nothing while bytes waited.
    pub closed_stalled: Counter,
}

/// The listener's budget.
#[derive(Debug)]
pub(crate) struct SendBudget {
    limits: SendLimits,
    metrics: SendMetrics,
    total: AtomicUsize,
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnSend>>>,
}

/// One connection's share.
#[derive(Debug)]
pub(crate) struct ConnSend {
    id: u64,
    unsent: AtomicUsize,
    /// Milliseconds after the budget's epoch when bytes were last written (or first waited).
    progressed_ms: AtomicU64,
    closing: AtomicBool,
    /// Woken when the connection must be closed.
    pub close: Notify,
    /// Woken when bytes start to wait on an idle connection: its stall deadline begins, and
    /// the connection's loop (asleep until a deadline computed before) must look again.
    pub waiting: Notify,
}

/// A connection's registration: removed from the budget when dropped.
#[derive(Debug)]
pub(crate) struct Registered {
    budget: Arc<SendBudget>,
    pub conn: Arc<ConnSend>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.budget.conns.lock().remove(&self.conn.id);
        // What the connection never wrote went with it.
        let left = self.conn.unsent.load(Ordering::SeqCst);
        self.budget.release(&self.conn, left, false);
    }
}

impl SendBudget {
    pub(crate) fn new(limits: SendLimits, metrics: SendMetrics) -> Arc<SendBudget> {
        Arc::new(SendBudget {
            limits,
            metrics,
            total: AtomicUsize::new(0),
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn register(self: &Arc<Self>) -> Registered {
        let conn = Arc::new(ConnSend {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unsent: AtomicUsize::new(0),
            progressed_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
            waiting: Notify::new(),
        });
        self.conns.lock().insert(conn.id, conn.clone());
        Registered {
            budget: self.clone(),
            conn,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Bytes `n` of a new body wait on `conn`.
    fn charge(&self, conn: &Arc<ConnSend>, n: usize) {
        if n == 0 {
            return;
        }
        if conn.unsent.fetch_add(n, Ordering::SeqCst) == 0 {
            conn.progressed_ms.store(self.now_ms(), Ordering::SeqCst);
            conn.waiting.notify_one();
        }
        let total = self.total.fetch_add(n, Ordering::SeqCst) + n;
        self.metrics
            .unsent
            .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
        if conn.unsent.load(Ordering::SeqCst) > self.limits.per_connection {
            self.close(conn, &self.metrics.closed_over_budget);
        } else if total > self.limits.total {
            // The connection holding the most goes (not necessarily this one).
            let biggest = self
                .conns
                .lock()
                .values()
                .filter(|c| !c.closing.load(Ordering::SeqCst))
                .max_by_key(|c| c.unsent.load(Ordering::SeqCst))
                .cloned();
            if let Some(c) = biggest {
                self.close(&c, &self.metrics.closed_over_budget);
            }
        }
    }

    /// Bytes `n` written by the connection (`written`), or dropped before it took them. Never
    /// more than the connection holds: its writes include headers and framing.
    fn release(&self, conn: &ConnSend, n: usize, written: bool) {
        if written {
            conn.progressed_ms.store(self.now_ms(), Ordering::SeqCst);
        }
        let mut held = conn.unsent.load(Ordering::SeqCst);
        loop {
            let r = n.min(held);
            if r == 0 {
                return;
            }
            match conn
                .unsent
                .compare_exchange(held, held - r, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    self.total.fetch_sub(r, Ordering::SeqCst);
                    self.metrics
                        .unsent
                        .dec_by(i64::try_from(r).unwrap_or(i64::MAX));
                    return;
                }
                Err(now) => held = now,
            }
        }
    }

    fn close(&self, conn: &ConnSend, counter: &Counter) {
        if !conn.closing.swap(true, Ordering::SeqCst) {
            counter.inc();
            tracing::debug!(
                unsent = conn.unsent.load(Ordering::SeqCst),
                "closing a connection that does not read its responses"
            );
        }
        conn.close.notify_one();
    }

    /// When `conn` must next be looked at for a stall (`None`: nothing waits on it).
    pub(crate) fn stall_deadline(&self, conn: &ConnSend) -> Option<Instant> {
        if conn.unsent.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let since = Duration::from_millis(conn.progressed_ms.load(Ordering::SeqCst));
        Some(self.epoch + since + self.limits.stall)
    }

    /// Close `conn` when bytes have waited on it past the stall limit; `true` when it must go.
    pub(crate) fn check_stall(&self, conn: &ConnSend) -> bool {
        if self
            .stall_deadline(conn)
            .is_some_and(|d| d <= Instant::now())
        {
            self.close(conn, &self.metrics.closed_stalled);
            return true;
        }
        conn.closing.load(Ordering::SeqCst)
    }

    /// `body`, charged to `conn` until written (or dropped untaken).
    pub(crate) fn meter<B>(self: &Arc<Self>, conn: &Arc<ConnSend>, body: B) -> Metered<B>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        let hint = body.size_hint();
        let pending = usize::try_from(hint.exact().unwrap_or(hint.lower())).unwrap_or(usize::MAX);
        self.charge(conn, pending);
        Metered {
            inner: body,
            pending,
            conn: conn.clone(),
            budget: self.clone(),
        }
    }

    /// `io`, its writes taken off `conn`'s charge.
    pub(crate) fn count_writes<I>(self: &Arc<Self>, conn: &Arc<ConnSend>, io: I) -> Counted<I> {
        Counted {
            io,
            conn: conn.clone(),
            budget: self.clone(),
        }
    }
}

/// A response body charged to its connection: the charge stays until the connection writes the
/// bytes ([`Counted`]); what the connection never took is given back when the body is dropped.
pub(crate) struct Metered<B> {
    inner: B,
    /// Bytes not yet handed to the connection.
    pending: usize,
    conn: Arc<ConnSend>,
    budget: Arc<SendBudget>,
}

impl<B> Drop for Metered<B> {
    fn drop(&mut self) {
        self.budget.release(&self.conn, self.pending, false);
        self.pending = 0;
    }
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.pending = this.pending.saturating_sub(data.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's transport, its writes counted: what it writes comes off its charge.
pub(crate) struct Counted<I> {
    io: I,
    conn: Arc<ConnSend>,
    budget: Arc<SendBudget>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.budget.release(&this.conn, n, true);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.budget.release(&this.conn, n, true);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    fn budget(total: usize, per_connection: usize) -> Arc<SendBudget> {
        SendBudget::new(
            SendLimits {
                total,
                per_connection,
                stall: Duration::from_millis(50),
            },
            SendMetrics {
                unsent: Gauge::default(),
                closed_over_budget: Counter::default(),
                closed_stalled: Counter::default(),
            },
        )
    }

    #[tokio::test]
    async fn a_body_is_charged_until_written_and_given_back_untaken() {
        use tokio::io::AsyncWriteExt;
        let b = budget(1 << 20, 1 << 20);
        let reg = b.register();
        let mut body = b.meter(&reg.conn, Full::new(Bytes::from(vec![7u8; 40_000])));
        assert_eq!(b.total.load(Ordering::SeqCst), 40_000);
        assert_eq!(body.size_hint().exact(), Some(40_000));
        // Taken by the connection: still charged until written.
        let data = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(data.len(), 40_000);
        drop(body);
        assert_eq!(b.total.load(Ordering::SeqCst), 40_000);
        let mut io = b.count_writes(&reg.conn, Vec::<u8>::new());
        io.write_all(&data[..30_000]).await.unwrap();
        assert_eq!(reg.conn.unsent.load(Ordering::SeqCst), 10_000);
        // Framing and headers written on top never take it below zero.
        io.write_all(&[0u8; 50_000]).await.unwrap();
        assert_eq!(b.total.load(Ordering::SeqCst), 0);
        assert_eq!(b.metrics.unsent.get(), 0);
        // Dropped before the connection took it: given back.
        let body = b.meter(&reg.conn, Full::new(Bytes::from(vec![1u8; 1000])));
        assert_eq!(reg.conn.unsent.load(Ordering::SeqCst), 1000);
        drop(body);
        assert_eq!(reg.conn.unsent.load(Ordering::SeqCst), 0);
        // Taken but never written when the connection goes: given back with it.
        let mut body = b.meter(&reg.conn, Full::new(Bytes::from(vec![1u8; 500])));
        let _ = body.frame().await;
        drop(body);
        assert_eq!(b.total.load(Ordering::SeqCst), 500);
        drop(reg);
        assert_eq!(b.total.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_connection_over_its_share_or_holding_most_is_closed() {
        let b = budget(10_000, 6_000);
        let (a, c) = (b.register(), b.register());
        let _x = b.meter(&a.conn, Full::new(Bytes::from(vec![0u8; 5_000])));
        assert!(!a.conn.closing.load(Ordering::SeqCst));
        let _y = b.meter(&a.conn, Full::new(Bytes::from(vec![0u8; 2_000])));
        assert!(a.conn.closing.load(Ordering::SeqCst), "over its share");
        assert_eq!(b.metrics.closed_over_budget.get(), 1);
        // Over the total: the biggest holder not already closing goes.
        let d = b.register();
        let _z = b.meter(&d.conn, Full::new(Bytes::from(vec![0u8; 2_500])));
        let _w = b.meter(&c.conn, Full::new(Bytes::from(vec![0u8; 1_000])));
        assert!(d.conn.closing.load(Ordering::SeqCst));
        assert!(!c.conn.closing.load(Ordering::SeqCst));
        // A waiting close is seen by the connection's loop.
        tokio::time::timeout(Duration::from_secs(1), d.conn.close.notified())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn bytes_that_wait_past_the_stall_limit_close_the_connection() {
        let b = budget(1 << 20, 1 << 20);
        let reg = b.register();
        assert!(b.stall_deadline(&reg.conn).is_none());
        let _x = b.meter(&reg.conn, Full::new(Bytes::from(vec![0u8; 100])));
        assert!(!b.check_stall(&reg.conn));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(b.check_stall(&reg.conn));
        assert_eq!(b.metrics.closed_stalled.get(), 1);
        // Unregistered when dropped.
        drop(reg);
        assert!(b.conns.lock().is_empty());
    }
}
