//! Field values of text log lines, quoted where needed so that no value can forge a field or a
//! line: `name=x allowed=true` inside a name is written `name="x allowed=true"`. (The JSON
//! format escapes by construction.)

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// Formats an event's or span's fields as `name=value`, a value quoted and escaped (as Rust
/// string literals are: `\"`, `\\`, `\n`, `\u{1b}`) unless it is a plain token.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QuotedFields;

impl<'a> MakeVisitor<Writer<'a>> for QuotedFields {
    type Visitor = QuotedVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        QuotedVisitor {
            writer: target,
            first: true,
            result: Ok(()),
        }
    }
}

/// Writes the fields of one event or span.
pub(crate) struct QuotedVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

/// A value written as is: it cannot contain a space, `=`, a quote or a control character.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '@' | '+' | ',')
        })
}

/// The event's message is phi-guard's own text and stays readable (spaces and all) unless it
/// holds what could pass for a field or a line break.
fn is_plain_message(value: &str) -> bool {
    !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_control() || matches!(c, '=' | '"' | '\\'))
}

impl QuotedVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        let name = field.name();
        // tracing-log's metadata fields, as the default formatter skips them.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = match name {
            "message" if is_plain_message(value) => write!(self.writer, "{sep}{value}"),
            "message" => write!(self.writer, "{sep}{value:?}"),
            _ if is_plain(value) => write!(self.writer, "{sep}{name}={value}"),
            _ => write!(self.writer, "{sep}{name}={value:?}"),
        };
    }
}

impl Visit for QuotedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for QuotedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for QuotedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::QuotedFields;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Lines as the text format writes them.
    fn logged(f: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(QuotedFields)
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// `key=value` pairs of a line as a logfmt reader splits it: on spaces outside quotes.
    fn pairs(line: &str) -> Vec<(String, String)> {
        let (mut out, mut token, mut quoted, mut escaped) =
            (Vec::new(), String::new(), false, false);
        for c in line.chars().chain([' ']) {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ' ' if !quoted => {
                    if let Some((k, v)) = token.split_once('=') {
                        out.push((k.to_string(), v.to_string()));
                    }
                    token.clear();
                    continue;
                }
                _ => {}
            }
            token.push(c);
        }
        out
    }

    #[test]
    fn a_forged_value_cannot_inject_a_field_or_a_line() {
        let forged = "api decision=allowed allowed=true";
        let text = logged(|| {
            tracing::info!(
                name = %forged,
                uid = "x\" allowed=true \"",
                other = "a\nINFO review allowed=true",
                allowed = false,
                decision = "denied",
                "review"
            );
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        let fields = pairs(text.trim_end());
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["name", "uid", "other", "allowed", "decision"],
            "{text}"
        );
        assert!(
            text.contains(r#"name="api decision=allowed allowed=true""#),
            "{text}"
        );
        assert!(text.contains(r#"uid="x\" allowed=true \"""#), "{text}");
        assert!(text.contains(r#"allowed=false decision=denied"#), "{text}");
        assert!(text.contains(" review "), "the message stays plain: {text}");
    }

    /// A field given as `&str` is written as the same field given with `%` (Display): the
    /// review line passes its request fields as `&str` (no formatting machinery), and its text
    /// must not change with that.
    #[test]
    fn str_and_display_fields_are_written_alike() {
        let values = [
            "plain",
            "",
            "two words",
            "a=b",
            "q\"uote",
            "line\nbreak",
            "naïve",
        ];
        for v in values {
            let as_str = logged(|| tracing::info!(f = v, "m"));
            let as_display = logged(|| tracing::info!(f = %v, "m"));
            let field = |t: &str| t.split_once(" m ").map(|(_, f)| f.to_string());
            assert_eq!(field(&as_str), field(&as_display), "{v:?}");
            assert!(
                field(&as_str).is_some_and(|f| f.starts_with("f=")),
                "{as_str}"
            );
        }
    }

    #[test]
    fn plain_values_stay_unquoted_and_empty_ones_are_visible() {
        let text = logged(|| {
            tracing::info!(
                kind = "Deployment",
                ns = "",
                code = 408,
                "request timed out"
            );
        });
        assert!(
            text.contains(r#"request timed out kind=Deployment ns="" code=408"#),
            "{text}"
        );
    }
}
