//! Log lines gathered and written to stderr once per interval, not once per line, by a thread
//! of their own: a review never waits on the log.
//!
//! In a pod, stderr is a pipe the container runtime's shim reads. Every `write` to it wakes the
//! shim, and the kernel charges that wake-up to the writer: with one JSON line per review, the
//! write cost 4-8 µs per review, about half of what judging a Pod costs (BENCHMARKS.md, "Log
//! lines"). And a `write` to a pipe whose reader has fallen behind (a shim on a node whose disk
//! is slow) blocks until the reader catches up: a review that logs would wait with it, and every
//! review behind it on the same worker. So the thread that logs only appends its line to memory;
//! the thread `phi-guard-log` writes what waits, once per interval (`--log-flush-interval`,
//! 100 ms by default: `kubectl logs -f` shows lines as promptly to the eye), and order is kept:
//!
//! - a line at WARN or ERROR wakes that thread at once (it is written with every line before it);
//! - so does [`MAX_PENDING`] / 2 bytes waiting;
//! - when [`MAX_PENDING`] bytes wait (the reader has fallen that far behind), a further INFO or
//!   DEBUG line is dropped, whole, and counted (`phi_guard_log_lines_dropped_total`); WARN and
//!   ERROR lines have twice the room. The memory held is bounded by that constant, never by
//!   traffic, and once the reader catches up a WARN line says how many lines were dropped;
//! - `serve` writes what waits before it exits, and so does a panic, before its message.
//!
//! What a crash that kills the process outright (SIGKILL, the OOM killer) loses is at most
//! one interval of lines; the API server's own audit log and the PolicyReports keep the record
//! of decisions.

use std::io::{self, Write};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use prometheus_client::metrics::counter::Counter;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes of INFO and DEBUG lines that may wait for the writing thread; beyond it, such lines are
/// dropped and counted (WARN and ERROR lines may wait up to twice this).
pub const MAX_PENDING: usize = 256 * 1024;

/// Lines dropped because stderr's reader had fallen [`MAX_PENDING`] bytes behind, since start
/// (exported as `phi_guard_log_lines_dropped_total`).
pub static DROPPED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The process's batched stderr, once `serve` has set it up: [`flush`] writes what waits.
static STDERR: OnceLock<Arc<Shared>> = OnceLock::new();

/// Called with the number of lines dropped since the last call, by the writing thread, with no
/// lock held (it may log: `serve`'s reporter writes a WARN line through this writer).
type Report = Box<dyn Fn(u64) + Send + Sync>;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// Lines dropped since the writing thread last took the lines.
    dropped: u64,
    /// The writing thread has been asked to write before its interval ends.
    woken: bool,
}

struct Shared {
    /// Lines not yet written.
    pending: Mutex<Pending>,
    /// Wakes the writing thread before its interval ends.
    wake: Condvar,
    /// The output and a spare buffer. Taken before `pending` by whoever writes, and held
    /// through the write: batches leave in the order they were taken.
    out: Mutex<(Box<dyn Write + Send>, Vec<u8>)>,
    max_pending: usize,
    report: Report,
}

impl Shared {
    /// Add one line (one event: tracing writes each with one `write_all`); never blocks on the
    /// output.
    fn append(&self, line: &[u8], urgent: bool) {
        let mut p = self.pending.lock();
        let room = if urgent {
            2 * self.max_pending
        } else {
            self.max_pending
        };
        if p.lines.len() + line.len() > room {
            p.dropped += 1;
            DROPPED.inc();
            return;
        }
        p.lines.extend_from_slice(line);
        if !p.woken && (urgent || p.lines.len() >= self.max_pending / 2) {
            p.woken = true;
            self.wake.notify_one();
        }
    }

    /// Write every waiting line (a write error is dropped, as tracing's own writer does: the
    /// log has nowhere else to go); returns the lines dropped since the last call.
    fn write_out(&self) -> u64 {
        let mut out = self.out.lock();
        let (writer, spare) = &mut *out;
        let dropped = {
            let mut p = self.pending.lock();
            std::mem::swap(&mut p.lines, spare);
            std::mem::take(&mut p.dropped)
        };
        if !spare.is_empty() {
            let _ = writer.write_all(spare).and_then(|()| writer.flush());
            spare.clear();
        }
        // A burst may have grown the buffer far beyond its usual size; do not keep that.
        if spare.capacity() > 2 * self.max_pending {
            spare.shrink_to(self.max_pending);
        }
        dropped
    }

    /// [`Shared::write_out`], then the report of dropped lines, written too.
    fn write_all_out(&self) {
        let dropped = self.write_out();
        if dropped > 0 {
            (self.report)(dropped);
            self.write_out();
        }
    }

    /// The writing thread's turn: wait for the interval (or a wake-up), then write.
    fn turn(&self, interval: Duration) {
        {
            let mut p = self.pending.lock();
            if !p.woken {
                self.wake.wait_for(&mut p, interval);
            }
            p.woken = false;
        }
        let dropped = self.write_out();
        if dropped > 0 {
            (self.report)(dropped);
        }
    }

    /// As [`Shared::write_out`], from a panic hook: a panic on a thread that holds a lock here
    /// (a write that panicked) must not wait for itself, so each lock is tried for 100 ms only.
    fn write_out_unless_held(&self) {
        let wait = Duration::from_millis(100);
        let Some(mut out) = self.out.try_lock_for(wait) else {
            return;
        };
        let (writer, spare) = &mut *out;
        if let Some(mut p) = self.pending.try_lock_for(wait) {
            std::mem::swap(&mut p.lines, spare);
        }
        let _ = writer.write_all(spare).and_then(|()| writer.flush());
        spare.clear();
    }
}

/// A [`MakeWriter`] whose lines wait in memory and are written once per `interval` by a
/// thread of its own (see the module's notes).
#[derive(Clone)]
pub struct Batched {
    shared: Arc<Shared>,
}

impl Batched {
    /// Lines gathered for `out`, written every `interval` (sooner when `max_pending` / 2 bytes
    /// wait or a WARN or ERROR line comes); `report` is told how many lines were dropped. The
    /// writing thread lives as long as the writer.
    pub fn new(
        out: Box<dyn Write + Send>,
        interval: Duration,
        max_pending: usize,
        report: Report,
    ) -> Batched {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                lines: Vec::with_capacity(max_pending.min(64 * 1024)),
                ..Pending::default()
            }),
            wake: Condvar::new(),
            out: Mutex::new((out, Vec::new())),
            max_pending,
            report,
        });
        let weak = Arc::downgrade(&shared);
        let _ = std::thread::Builder::new()
            .name("phi-guard-log".into())
            .spawn(move || {
                while let Some(shared) = weak.upgrade() {
                    shared.turn(interval);
                }
            });
        Batched { shared }
    }

    /// Stderr, batched, registered so that [`flush`] writes what waits.
    /// Set up once per process: a second call returns the first one's.
    pub fn stderr(interval: Duration) -> Batched {
        if let Some(shared) = STDERR.get() {
            return Batched {
                shared: shared.clone(),
            };
        }
        let report: Report = Box::new(|dropped| {
            tracing::warn!(
                dropped,
                max_pending_bytes = MAX_PENDING,
                "log lines dropped: stderr's reader fell behind (a review never waits on the log)"
            );
        });
        let b = Batched::new(Box::new(io::stderr()), interval, MAX_PENDING, report);
        let _ = STDERR.set(b.shared.clone());
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(shared) = STDERR.get() {
                shared.write_out_unless_held();
            }
            previous(info);
        }));
        b
    }

    /// Write what waits now (and the report of dropped lines), on this thread.
    pub fn flush(&self) {
        self.shared.write_all_out();
    }
}

/// Write the lines batched stderr holds (at exit); nothing when logging is not batched.
pub fn flush() {
    if let Some(shared) = STDERR.get() {
        shared.write_all_out();
    }
}

/// One event's writer: its bytes join the waiting lines.
pub struct Line<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.append(buf, self.urgent);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            shared: &self.shared,
            // tracing orders levels by verbosity: WARN and ERROR are the least verbose.
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    /// An output that records each `write_all` as one batch; while `held`, a write waits (a
    /// pipe whose reader has stopped reading).
    #[derive(Clone, Default)]
    struct Batches(Arc<Mutex<Vec<Vec<u8>>>>, Arc<Mutex<()>>);

    impl Write for Batches {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _reader = self.1.lock();
            self.0.lock().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(b: &Batches) -> String {
        String::from_utf8(b.0.lock().concat()).unwrap_or_default()
    }

    fn info(b: &Batched, line: &str) {
        let _ = b.make_writer().write_all(line.as_bytes());
    }

    /// A writer to a recording output, with a report that only counts what was dropped.
    fn batched(interval: Duration, cap: usize) -> (Batches, Arc<AtomicU64>, Batched) {
        let out = Batches::default();
        let reported = Arc::new(AtomicU64::new(0));
        let counter = reported.clone();
        let report: Report = Box::new(move |d| _ = counter.fetch_add(d, Ordering::SeqCst));
        let b = Batched::new(Box::new(out.clone()), interval, cap, report);
        (out, reported, b)
    }

    fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn lines_wait_for_the_interval_and_leave_in_one_write() {
        let (out, _, b) = batched(Duration::from_millis(200), MAX_PENDING);
        for i in 0..50 {
            info(&b, &format!("line {i}\n"));
        }
        assert!(out.0.lock().is_empty(), "written before the interval");
        until("the interval's write", || !out.0.lock().is_empty());
        let batches = out.0.lock().clone();
        assert_eq!(batches.len(), 1, "one write for the interval's lines");
        let want: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert_eq!(lines(&out), want);
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_before_it() {
        let (out, _, b) = batched(Duration::from_secs(3600), MAX_PENDING);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(b.clone())
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first");
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(lines(&out), "", "an info line waits");
            tracing::warn!("second");
            until("the warning's write", || !out.0.lock().is_empty());
            assert_eq!(lines(&out), " INFO first\n WARN second\n");
            assert_eq!(out.0.lock().len(), 1, "one write for both lines");
            tracing::info!("third");
        });
        b.flush();
        assert_eq!(lines(&out), " INFO first\n WARN second\n INFO third\n");
    }

    /// A reader that has stopped reading never holds up the thread that logs: lines beyond the
    /// cap are dropped whole and counted, the memory held stays under the cap, and once the
    /// reader reads again the report says how many went.
    #[test]
    fn a_stalled_reader_never_blocks_a_line_and_drops_are_counted() {
        let (out, reported, b) = batched(Duration::from_millis(1), 1000);
        let before = DROPPED.get();
        let stalled = out.1.lock();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let logger = b.clone();
        std::thread::spawn(move || {
            let line = format!("{}\n", "x".repeat(99));
            for _ in 0..10_000 {
                info(&logger, &line);
                assert!(logger.shared.pending.lock().lines.len() <= 1000);
            }
            let _ = done_tx.send(());
        });
        let finished = done_rx.recv_timeout(Duration::from_secs(10));
        assert!(finished.is_ok(), "a line waited on a stalled reader");
        assert!(
            DROPPED.get() - before >= 9_000,
            "lines beyond the cap dropped"
        );
        drop(stalled);
        b.flush();
        until("the drops reported", || reported.load(Ordering::SeqCst) > 0);
        let written = lines(&out);
        assert!(written.lines().all(|l| l.len() == 99), "only whole lines");
        let kept = written.lines().count() as u64;
        assert_eq!(kept + reported.load(Ordering::SeqCst), 10_000);
    }

    /// WARN and ERROR lines have room beyond the cap that INFO lines no longer have.
    #[test]
    fn a_warning_has_room_when_info_lines_are_dropped() {
        let (out, reported, b) = batched(Duration::from_secs(3600), 1000);
        let stalled = out.1.lock();
        // The first wake-up takes what waits and stalls in the write; then fill the cap.
        info(&b, &format!("{}\n", "a".repeat(599)));
        until("the writer stalled", || {
            b.shared.pending.lock().lines.is_empty()
        });
        for _ in 0..20 {
            info(&b, &format!("{}\n", "i".repeat(99)));
        }
        let mut warning = Line {
            shared: &b.shared,
            urgent: true,
        };
        let _ = warning.write_all(b"warning\n");
        drop(stalled);
        b.flush();
        let written = lines(&out);
        assert!(written.ends_with("warning\n"), "{written}");
        assert_eq!(written.lines().filter(|l| l.starts_with('i')).count(), 10);
        until("the drops reported", || {
            reported.load(Ordering::SeqCst) == 10
        });
    }

    #[test]
    fn lines_from_many_threads_stay_whole_and_in_each_threads_order() {
        let (out, reported, b) = batched(Duration::from_millis(1), MAX_PENDING);
        std::thread::scope(|s| {
            for t in 0..4 {
                let b = b.clone();
                s.spawn(move || {
                    for i in 0..2000 {
                        info(&b, &format!("{t} {i}\n"));
                    }
                });
            }
        });
        b.flush();
        assert_eq!(reported.load(Ordering::SeqCst), 0, "nothing dropped");
        let text = lines(&out);
        let mut next = [0u32; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap_or_default();
            let (t, i): (usize, u32) = (t.parse().unwrap_or(9), i.parse().unwrap_or(0));
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            next[t] += 1;
        }
        assert_eq!(next, [2000; 4]);
    }
}
