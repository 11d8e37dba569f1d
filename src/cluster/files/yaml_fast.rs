//! Reading a YAML stream without serde: each document's JSON tree is built straight from the
//! parser's events, as serde-saphyr builds it, for documents that hold only what manifests
//! hold (block and flow collections, strings, decimal integers and fractions, booleans and
//! nulls). Building the tree through serde costs three times the parse itself (20,000 objects
//! of real charts: events 0.9 s, serde-saphyr into `Value` 3.9 s).
//!
//! A document with anything else (an anchor, alias or tag, a merge key, a repeated key, a key
//! that is not a plain string, a number in another spelling, deep nesting, a syntax error) is
//! read by serde-saphyr itself, so what it accepts, refuses and how it resolves stay its own;
//! a stream with a directive (`%YAML`) is read whole by it. `tests` compares the two readers.

use std::borrow::Cow;

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// One document's text, as split from its stream.
pub(super) struct Chunk<'a> {
    pub text: &'a str,
    /// The stream's line number (from 1) of the chunk's first line.
    pub first_line: usize,
}

/// The documents of a stream, split where YAML says a document ends: before a line that starts
/// with `---`, after one that starts with `...` (either followed by a space, a tab or the end
/// of the line). YAML forbids such a line inside a document's content (a scalar included), so
/// the split is the parser's own. `None` when a line starts with `%`: a directive belongs to
/// the document after it, and the caller reads the stream whole.
pub(super) fn split(text: &str) -> Option<Vec<Chunk<'_>>> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let (mut start, mut start_line) = (0usize, 1usize);
    let (mut at, mut line) = (0usize, 1usize);
    while at < bytes.len() {
        let end = bytes[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| at + p);
        let rest = &bytes[at..end];
        let marker = |m: &[u8]| {
            rest.starts_with(m) && matches!(rest.get(3), None | Some(b' ' | b'\t' | b'\r'))
        };
        if rest.first() == Some(&b'%') {
            return None;
        }
        if marker(b"---") && at > start {
            chunks.push(Chunk {
                text: &text[start..at],
                first_line: start_line,
            });
            (start, start_line) = (at, line);
        }
        let next = (end + 1).min(bytes.len());
        if marker(b"...") {
            chunks.push(Chunk {
                text: &text[start..next],
                first_line: start_line,
            });
            (start, start_line) = (next, line + 1);
        }
        (at, line) = (end + 1, line + 1);
    }
    if start < bytes.len() {
        chunks.push(Chunk {
            text: &text[start..],
            first_line: start_line,
        });
    }
    Some(chunks)
}

/// What the fast reader made of one document.
#[derive(Debug, PartialEq)]
pub(super) enum Built {
    /// The document's tree (never `Null`).
    Value(Value),
    /// An empty or null document, which the stream reader skips.
    Null,
    /// Something only serde-saphyr reads as it should: hand it the text.
    Unusual,
}

/// How deeply collections may nest: far beyond any manifest, well within the stack.
pub(super) const MAX_DEPTH: usize = 128;

/// Nesting beyond this goes to serde-saphyr, whose own limit (`MAX_DEPTH`) then applies.
pub(super) const FAST_DEPTH: usize = MAX_DEPTH / 2;

enum Frame {
    Seq(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
}

/// Build one document's tree from `text` (a [`Chunk`]).
pub(super) fn build(text: &str) -> Built {
    let mut options = granit_parser::Options::default();
    options.emit_comments = false;
    let parser = Parser::new_from_str_with_options(text, options);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    let mut documents = 0;
    for event in parser {
        let Ok((event, _)) = event else {
            return Built::Unusual;
        };
        let done = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Built::Unusual;
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Built::Unusual;
                }
                if let Some(Frame::Map(_, key @ None)) = stack.last_mut() {
                    match map_key(text, style) {
                        Some(k) => *key = Some(k),
                        None => return Built::Unusual,
                    }
                    continue;
                }
                match scalar(text, style) {
                    Some(v) => v,
                    None => return Built::Unusual,
                }
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                let expects_key = matches!(stack.last(), Some(Frame::Map(_, None)));
                if anchor != 0 || tag.is_some() || expects_key || stack.len() >= FAST_DEPTH {
                    return Built::Unusual;
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::Seq(Vec::new()),
                    _ => Frame::Map(Map::new(), None),
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items)) => Value::Array(items),
                Some(Frame::Map(map, None)) => Value::Object(map),
                _ => return Built::Unusual,
            },
            _ => return Built::Unusual,
        };
        match stack.last_mut() {
            None if root.is_none() => root = Some(done),
            None => return Built::Unusual,
            Some(Frame::Seq(items)) => items.push(done),
            Some(Frame::Map(map, key)) => {
                let Some(key) = key.take() else {
                    return Built::Unusual;
                };
                // A repeated key: serde-saphyr refuses it with its position.
                if map.insert(key, done).is_some() {
                    return Built::Unusual;
                }
            }
        }
    }
    if !stack.is_empty() {
        return Built::Unusual;
    }
    match root {
        None | Some(Value::Null) => Built::Null,
        Some(v) => Built::Value(v),
    }
}

/// A mapping key as serde_json's tree takes it from serde-saphyr: the text of a quoted key, or
/// of a plain key that resolves to a string. Anything else (null, booleans, numbers, a merge
/// key) is left to serde-saphyr.
fn map_key(text: Cow<'_, str>, style: ScalarStyle) -> Option<String> {
    match style {
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Some(text.into_owned()),
        ScalarStyle::Plain if text.as_ref() != "<<" && plain_is_text(&text) => {
            Some(text.into_owned())
        }
        _ => None,
    }
}

/// A plain scalar as [`scalar`] resolves it.
pub(super) fn resolve_plain(t: &str) -> Option<Value> {
    scalar(Cow::Borrowed(t), ScalarStyle::Plain)
}

/// A scalar value as serde-saphyr resolves it for an untyped tree (YAML 1.1 booleans, the
/// null spellings, decimal integers and plain fractions); `None` for spellings left to it.
fn scalar(text: Cow<'_, str>, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return Some(Value::String(text.into_owned()));
    }
    let t = text.as_ref();
    if matches!(t, "" | "~" | "null" | "Null" | "NULL") {
        return Some(Value::Null);
    }
    if let Some(b) = yaml11_bool(t) {
        return Some(Value::Bool(b));
    }
    if plain_is_text(t) {
        return Some(Value::String(text.into_owned()));
    }
    let digits = t.strip_prefix('-').unwrap_or(t);
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Integers without a redundant leading zero, well inside 64 bits.
    if decimal(digits) && (digits == "0" || !digits.starts_with('0')) && digits.len() <= 18 {
        return if t.starts_with('-') {
            t.parse::<i64>().ok().map(Value::from)
        } else {
            t.parse::<u64>().ok().map(Value::from)
        };
    }
    // Fractions such as `0.5` (CPU quantities written as numbers).
    if let Some((whole, fraction)) = digits.split_once('.') {
        if decimal(whole) && decimal(fraction) && (whole == "0" || !whole.starts_with('0')) {
            return t
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number);
        }
    }
    None
}

fn yaml11_bool(t: &str) -> Option<bool> {
    let is = |w: &str| t.eq_ignore_ascii_case(w);
    if is("true") || is("yes") || is("y") || is("on") {
        Some(true)
    } else if is("false") || is("no") || is("n") || is("off") {
        Some(false)
    } else {
        None
    }
}

/// A plain scalar no resolver reads as anything but text: not a null or boolean spelling, and
/// not possibly a number (integers in any base, floats, `.inf`, `nan`, sexagesimal, dates),
/// which would start with a sign, a digit or a dot and use only the characters those use.
pub(super) fn plain_is_text(t: &str) -> bool {
    if t.is_empty() || matches!(t, "~" | "null" | "Null" | "NULL") || yaml11_bool(t).is_some() {
        return false;
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if ["inf", "infinity", "nan", ".inf", ".nan"]
        .iter()
        .any(|w| unsigned.eq_ignore_ascii_case(w))
    {
        return false;
    }
    let first = t.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return true;
    }
    // After a sign a number goes on with a digit or a dot (`-c`, `--port=80` are flags).
    match unsigned.as_bytes().first() {
        None => return false,
        Some(b) if !(b.is_ascii_digit() || *b == b'.') => return true,
        Some(_) => {}
    }
    if matches!(
        unsigned.as_bytes(),
        [b'0', b'x' | b'X' | b'o' | b'O' | b'b' | b'B', ..]
    ) {
        return false;
    }
    let bytes = t.as_bytes();
    // No number has two dots or a letter other than an exponent's (versions such as
    // `1.2.3-45`, digests, quantities such as `3m` are text).
    if bytes.iter().filter(|&&b| b == b'.').count() > 1
        || bytes
            .iter()
            .any(|b| b.is_ascii_alphabetic() && !matches!(b, b'e' | b'E'))
    {
        return true;
    }
    // A dash that is neither a sign nor an exponent's, with a fraction and no time of day: a
    // version such as `17.1-123`, which no number or date is.
    let inner_dash =
        (1..bytes.len()).any(|i| bytes[i] == b'-' && !matches!(bytes[i - 1], b'e' | b'E'));
    if inner_dash && bytes.contains(&b'.') && !bytes.contains(&b':') {
        return true;
    }
    let numeric_char = |b: u8| {
        b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'_' | b':' | b'e' | b'E' | b' ')
    };
    !bytes.iter().all(|&b| numeric_char(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saphyr(text: &str) -> Built {
        // The reader's settings that matter for one small document (duplicate keys refused and
        // merge keys expanded are the crate's defaults).
        let options = serde_saphyr::options! { with_snippet: false, emit_comments: false };
        match serde_saphyr::from_str_with_options::<Value>(text, options) {
            Ok(Value::Null) => Built::Null,
            Ok(v) => Built::Value(v),
            Err(_) => Built::Unusual,
        }
    }

    /// Every scalar spelling the fast reader resolves itself, resolved as serde-saphyr does;
    /// and the ones it leaves to serde-saphyr are left.
    #[test]
    fn scalars_resolve_as_serde_saphyr_resolves_them() {
        let plain = [
            "",
            "~",
            "null",
            "Null",
            "NULL",
            "true",
            "True",
            "TRUE",
            "false",
            "yes",
            "Yes",
            "no",
            "NO",
            "y",
            "n",
            "N",
            "on",
            "On",
            "off",
            "OFF",
            "0",
            "1",
            "-1",
            "42",
            "-0",
            "123456789012345678",
            "-123456789012345678",
            "0.5",
            "1.25",
            "-0.5",
            "10.0",
            "hello",
            "--port=8080",
            "-v",
            "3m",
            "100Mi",
            "1Gi",
            "500m",
            "10.0.0.0/8",
            "a b",
            "http://x:80",
            "*.example.com",
            "v1",
            "apps/v1",
            "none",
            "info",
            "nodeport",
            "nan",
            "NaN",
            ".nan",
            ".inf",
            "-.inf",
            "inf",
            "Infinity",
            "0x1F",
            "0o17",
            "0b11",
            "0644",
            "017",
            "1_000",
            "1e3",
            "1E3",
            "1.5e3",
            "1.2.3",
            "12:30",
            "1:30:00",
            "2001-12-14",
            "+1",
            "+0.5",
            ".5",
            "5.",
            "00.5",
            "0.0",
            "99999999999999999999",
            "-",
            "+",
            ".",
            "1 2",
            "0 0 * * *",
            "- a",
            "1-2",
            "0:0",
            "1-",
            "x1",
            "1x",
            "8080",
            "0.1.2.3",
            "1.2.3-456",
            "10.2-3",
            "1..2",
            "1.2.3e4",
            "..",
            "-1.2.3",
        ];
        for s in plain {
            let doc = format!("k: {s}\n");
            let fast = build(&doc);
            let slow = saphyr(&doc);
            if fast != Built::Unusual {
                assert_eq!(fast, slow, "{s:?}");
            }
        }
        // What it must read itself (else there is no speed to gain).
        for s in [
            "hello",
            "--port=8080",
            "8080",
            "0.5",
            "true",
            "",
            "100Mi",
            "-v",
            "1.2.3-45",
        ] {
            assert_ne!(build(&format!("k: {s}\n")), Built::Unusual, "{s:?}");
        }
        // What it must leave to serde-saphyr.
        for s in [
            "0644",
            "1e3",
            "0x1F",
            ".inf",
            "nan",
            "1_000",
            "12:30",
            "2001-12-14",
        ] {
            assert_eq!(build(&format!("k: {s}\n")), Built::Unusual, "{s:?}");
        }
    }

    #[test]
    fn documents_left_to_serde_saphyr() {
        for doc in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: !custom x\n",
            "base: &b {x: 1}\nm:\n  <<: *b\n",
            "a: 1\na: 2\n",
            "? [a, b]\n: c\n",
            "1: one\n",
            "true: yes\n",
            "~: x\n",
            "a: [1, 2\n",
            "a: 'unterminated\n",
        ] {
            assert_eq!(build(doc), Built::Unusual, "{doc:?}");
        }
        let deep = format!(
            "{}1{}",
            "[".repeat(FAST_DEPTH + 1),
            "]".repeat(FAST_DEPTH + 1)
        );
        assert_eq!(build(&deep), Built::Unusual);
    }

    #[test]
    fn trees_equal_serde_saphyrs() {
        for doc in [
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: web, \"x\": 'y'}\nspec:\n  containers:\n  - name: c\n    args: [\"--a\", -v, 3]\n    env:\n    - {name: A, value: \"1\"}\n    resources: {limits: {cpu: 0.5, memory: 1Gi}}\n",
            "--- |\n  text\n  more\n",
            "k: >\n  folded\n  text\n\nother: \"esc\\n\\u00e9\"\n",
            "list:\n- - 1\n  - 2\n- []\n- {}\n",
            "# only a comment\n",
            "---\n",
            "key: value # trailing comment\n# between\nnext: 2\n",
        ] {
            let (fast, slow) = (build(doc), saphyr(doc));
            assert_ne!(fast, Built::Unusual, "{doc:?}");
            assert_eq!(fast, slow, "{doc:?}");
        }
    }

    #[test]
    fn streams_split_where_documents_end() {
        let text = "a: 1\n---\nb: 2\n--- c\n...\n# after end\nd: 4\n---x: 5\n----\n";
        let chunks = split(text).unwrap();
        let texts: Vec<(&str, usize)> = chunks.iter().map(|c| (c.text, c.first_line)).collect();
        assert_eq!(
            texts,
            [
                ("a: 1\n", 1),
                ("---\nb: 2\n", 2),
                ("--- c\n...\n", 4),
                ("# after end\nd: 4\n---x: 5\n----\n", 6)
            ]
        );
        assert!(split("%YAML 1.2\n---\na: 1\n").is_none());
        let crlf = split("a: 1\r\n---\r\nb: 2\r\n").unwrap();
        assert_eq!(crlf.len(), 2);
        assert_eq!(crlf[1].first_line, 2);
    }
}
