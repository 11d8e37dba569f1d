//! Log lines gathered and written to stderr once per interval, not once per line.
//!
//! In a pod, stderr is a pipe the container runtime's shim reads. Every `write` to it wakes the
//! shim, and the kernel charges that wake-up to the writer: with one JSON line per review, the
//! write cost 4-8 µs per review, about half of what judging a Pod costs (BENCHMARKS.md, "Log
//! lines"). `serve` gathers lines in memory and a thread of its own writes them in one
//! `write` per interval (`--log-flush-interval`, 100 ms by default: `kubectl logs -f` shows
//! them as promptly to the eye). Nothing is dropped and order is kept:
//!
//! - a line at WARN or ERROR is written at once, with every line before it;
//! - when more than [`MAX_PENDING`] bytes wait, the thread that logs writes them itself (the
//!   memory held is bounded by that constant, not by traffic);
//! - `serve` writes what waits before it exits, and so does a panic, before its message.
//!
//! What a crash that kills the process outright (SIGKILL, the OOM killer) loses is at most
//! one interval of lines; the API server's own audit log and the PolicyReports keep the record
//! of decisions.

use std::io::{self, Write};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes of lines that may wait for the interval; beyond it, the line's own thread writes.
pub const MAX_PENDING: usize = 256 * 1024;

/// The process's batched stderr, once `serve` has set it up: [`flush`] writes what waits.
static STDERR: OnceLock<Arc<Shared>> = OnceLock::new();

struct Shared {
    /// Lines not yet written.
    pending: Mutex<Vec<u8>>,
    /// The output and a spare buffer. Taken before `pending` by whoever writes, and held
    /// through the write: batches leave in the order they were taken.
    out: Mutex<(Box<dyn Write + Send>, Vec<u8>)>,
    max_pending: usize,
}

impl Shared {
    fn append(&self, line: &[u8], urgent: bool) {
        let full = {
            let mut pending = self.pending.lock();
            pending.extend_from_slice(line);
            pending.len() >= self.max_pending
        };
        if urgent || full {
            self.write_out();
        }
    }

    /// Write every waiting line (a write error is dropped, as tracing's own writer does: the
    /// log has nowhere else to go).
    fn write_out(&self) {
        let mut out = self.out.lock();
        let (writer, spare) = &mut *out;
        {
            let mut pending = self.pending.lock();
            if pending.is_empty() {
                return;
            }
            std::mem::swap(&mut *pending, spare);
        }
        let _ = writer.write_all(spare).and_then(|()| writer.flush());
        spare.clear();
        // A burst may have grown the buffer far beyond its usual size; do not keep that.
        if spare.capacity() > 2 * self.max_pending {
            spare.shrink_to(self.max_pending);
        }
    }
}

impl Shared {
    /// As [`Shared::write_out`], from a panic hook: a panic on a thread that holds a lock here
    /// (a write that panicked) must not wait for itself, so each lock is tried for 100 ms only.
    fn write_out_unless_held(&self) {
        let wait = Duration::from_millis(100);
        let Some(mut out) = self.out.try_lock_for(wait) else {
            return;
        };
        let (writer, spare) = &mut *out;
        if let Some(mut pending) = self.pending.try_lock_for(wait) {
            std::mem::swap(&mut *pending, spare);
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
    /// Lines gathered for `out`, written every `interval` (and when `max_pending` bytes wait,
    /// or a WARN or ERROR line comes). The writing thread lives as long as the process.
    pub fn new(out: Box<dyn Write + Send>, interval: Duration, max_pending: usize) -> Batched {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::with_capacity(max_pending.min(64 * 1024))),
            out: Mutex::new((out, Vec::new())),
            max_pending,
        });
        let weak = Arc::downgrade(&shared);
        let _ = std::thread::Builder::new()
            .name("phi-guard-log".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                match weak.upgrade() {
                    Some(shared) => shared.write_out(),
                    None => return,
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
        let b = Batched::new(Box::new(io::stderr()), interval, MAX_PENDING);
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

    /// Write what waits now.
    pub fn flush(&self) {
        self.shared.write_out();
    }
}

/// Write the lines batched stderr holds (at exit); nothing when logging is not batched.
pub fn flush() {
    if let Some(shared) = STDERR.get() {
        shared.write_out();
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

    /// An output that records each `write_all` as one batch.
    #[derive(Clone, Default)]
    struct Batches(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Batches {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
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

    #[test]
    fn lines_wait_for_the_interval_and_leave_in_one_write() {
        let out = Batches::default();
        let b = Batched::new(
            Box::new(out.clone()),
            Duration::from_millis(200),
            MAX_PENDING,
        );
        for i in 0..50 {
            info(&b, &format!("line {i}\n"));
        }
        assert!(out.0.lock().is_empty(), "written before the interval");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while out.0.lock().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let batches = out.0.lock().clone();
        assert_eq!(batches.len(), 1, "one write for the interval's lines");
        let want: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert_eq!(lines(&out), want);
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_before_it() {
        let out = Batches::default();
        let b = Batched::new(
            Box::new(out.clone()),
            Duration::from_secs(3600),
            MAX_PENDING,
        );
        let subscriber = tracing_subscriber::fmt()
            .with_writer(b.clone())
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first");
            assert_eq!(lines(&out), "", "an info line waits");
            tracing::warn!("second");
            assert_eq!(lines(&out), " INFO first\n WARN second\n");
            tracing::info!("third");
            assert_eq!(out.0.lock().len(), 1, "one write for both lines");
        });
        b.flush();
        assert_eq!(lines(&out), " INFO first\n WARN second\n INFO third\n");
    }

    #[test]
    fn memory_held_is_bounded_by_the_cap_not_by_traffic() {
        let out = Batches::default();
        let b = Batched::new(Box::new(out.clone()), Duration::from_secs(3600), 1000);
        let line = [b'x'; 99];
        for _ in 0..10_000 {
            let mut l = line.to_vec();
            l.push(b'\n');
            info(&b, std::str::from_utf8(&l).unwrap_or_default());
            assert!(b.shared.pending.lock().len() < 1000);
        }
        let batches = out.0.lock().clone();
        assert_eq!(batches.len(), 1000, "a write each time 1000 bytes wait");
        assert!(batches.iter().all(|w| w.len() == 1000));
    }

    #[test]
    fn lines_from_many_threads_stay_whole_and_in_each_threads_order() {
        let out = Batches::default();
        let b = Batched::new(Box::new(out.clone()), Duration::from_millis(1), 4096);
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
