//! JSON log lines exactly as tracing-subscriber's `json().flatten_event(true)` writes them
//! (`{"timestamp":…,"level":…,<the event's fields in order>,"target":…}`, serde_json's escaping
//! and number forms: log pipelines parse these lines), written straight into the line buffer.
//!
//! Why not tracing-subscriber's own: every review writes one line, and its JSON writer goes
//! through serde's map serializer, a UTF-8 check on every fragment it writes and a timestamp
//! string allocated per line: 5 µs of the 38 µs phi-guard's own work took per Pod review, 2 µs
//! written here (BENCHMARKS.md, "Where the time goes"). `json_lines_match_tracing_subscribers`
//! holds the two byte for byte.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events from the `log` crate carry their level and target as fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(level(meta.level()))?;
        writer.write_char('"')?;
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

fn level(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Writes each field as `,"name":value`, as tracing-serde's map visitor serializes it.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.out.write_char(',')?;
            string(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's forms (shortest round trip, exponents, `null` for NaN and infinities);
        // rare in phi-guard's logs, so the allocation does not matter.
        self.entry(field, |w| {
            w.write_str(&serde_json::to_string(&value).unwrap_or_else(|_| "null".into()))
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| string(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// A JSON string, escaped as serde_json escapes it.
fn string(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what is written through it as serde_json does: `"` and `\`, and the control
/// characters below U+0020 (`\b \t \n \f \r`, the others `\u00XX` in lower-case hex).
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let esc: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                0x08 => "\\b",
                0x0c => "\\f",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1f => "",
                _ => continue,
            };
            // Every escaped byte is ASCII: `start..i` ends on a char boundary.
            if let Some(run) = s.get(start..i) {
                self.0.write_str(run)?;
            }
            if esc.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.0.write_str("\\u00")?;
                self.0.write_char(char::from(HEX[usize::from(b >> 4)]))?;
                self.0.write_char(char::from(HEX[usize::from(b & 0xf)]))?;
            } else {
                self.0.write_str(esc)?;
            }
            start = i + 1;
        }
        match s.get(start..) {
            Some(rest) => self.0.write_str(rest),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    impl Buf {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes)
                .split_inclusive('\n')
                .map(without_timestamp)
                .collect()
        }
    }

    /// The line with its timestamp's value replaced (the two formatters run microseconds
    /// apart); the timestamp's form is checked on its own.
    fn without_timestamp(line: &str) -> String {
        const KEY: &str = "{\"timestamp\":\"";
        let Some(rest) = line.strip_prefix(KEY) else {
            return line.to_string();
        };
        let end = rest.find('"').unwrap_or(0);
        let ts = &rest[..end];
        // RFC 3339, UTC, microseconds: 2026-12-07T06:43:00.123456Z
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        format!("{KEY}T{}", &rest[end..])
    }

    fn events() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Thing {
            name: &'static str,
            n: u8,
        }
        let err = io::Error::other("disk \"full\"\n");
        tracing::info!(
            uid = %"705ab4f5-6393",
            kind = "Deployment",
            quoted = "say \"hi\" \\ back",
            controls = "a\nb\rc\td\u{8}e\u{c}f\u{1}g\u{1f}h\u{7f}i",
            unicode = "naïve … 日本 \u{2028} 🦀",
            display = %"with \"quotes\"\nand lines",
            debug = ?Thing { name: "x\"y", n: 7 },
            yes = true,
            no = false,
            small = 7u64,
            negative = -42i64,
            big = u64::MAX,
            code = Some(403u16),
            missing = Option::<u16>::None,
            wide = u128::MAX,
            below = i128::MIN,
            half = 1.5f64,
            huge = 1e300f64,
            tiny = 5e-324f64,
            not_a_number = f64::NAN,
            infinite = f64::INFINITY,
            zero = -0.0f64,
            error = &err as &(dyn std::error::Error + 'static),
            "review"
        );
        tracing::warn!(target: "phi_guard::review", n = 1, "message with {} args: {:?}", "format", "q\"uote");
        tracing::error!("only a message");
        tracing::debug!(message = "a field named message");
        tracing::info!(r#type = "raw", "r#-named field");
        tracing::info!(target: "odd \"target\"", "escaped target");
        tracing::info!("");
        // An event from the `log` crate, as the LogTracer hands it on.
        tracing_log::format_trace(
            &tracing_log::log::Record::builder()
                .level(tracing_log::log::Level::Warn)
                .target("some_crate::module")
                .module_path(Some("some_crate::module"))
                .file(Some("src/module.rs"))
                .line(Some(12))
                .args(format_args!("from log: {}", "x\ny"))
                .build(),
        )
        .ok();
    }

    /// Every kind of field, escaping and number form, and events from the `log` crate, come out
    /// of [`JsonLines`] byte for byte as tracing-subscriber's JSON format writes them.
    #[test]
    fn json_lines_match_tracing_subscribers() {
        let ours = Buf::default();
        let theirs = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(ours.clone())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(theirs.clone())
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        let (ours, theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 8, "{ours:#?}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b);
            assert!(
                serde_json::from_str::<serde_json::Value>(a.trim_end()).is_ok(),
                "{a}"
            );
        }
        assert_eq!(ours.len(), theirs.len());
    }
}
