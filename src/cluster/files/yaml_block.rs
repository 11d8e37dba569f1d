//! The fastest reader, for the YAML manifests are written in: block mappings and sequences,
//! one-line plain and quoted scalars, literal and folded block scalars, `{}` and `[]`, comments.
//! It reads lines, not characters through a general parser, at several times the event
//! parser's speed (20,000 objects of real charts: events 0.9 s).
//!
//! It answers only where it is sure to agree with the event reader ([`super::yaml_fast`]):
//! anything outside that subset (flow collections with content, multi-line plain or quoted
//! scalars, escapes, tabs, non-ASCII text, anchors, aliases, tags, explicit keys, quoted or
//! unusual keys, block scalar indentation indicators, a scalar the resolver leaves to
//! serde-saphyr) returns `None`, and the document is read by the event reader, which in turn
//! hands what it is unsure of to serde-saphyr. `tests` compares it with the event reader.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::yaml_fast::{plain_is_text, resolve_plain, Built, FAST_DEPTH};

/// One line of the document: its indentation and its text after it (trailing spaces kept).
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
    /// A line break follows it (every line but possibly the last).
    broken: bool,
}

impl Line<'_> {
    /// Blank or a comment: not content outside block scalars.
    fn is_filler(&self) -> bool {
        let t = self.text.trim_end_matches(' ');
        t.is_empty() || t.starts_with('#')
    }
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    at: usize,
    depth: usize,
}

/// Read one document (a [`super::yaml_fast::Chunk`]'s text); `None` where it cannot be sure.
pub(super) fn read(text: &str) -> Option<Built> {
    // Tabs (separation or indentation), carriage returns, control and non-ASCII characters
    // (printability rules, a BOM, line separators): left to the event reader.
    if !text
        .bytes()
        .all(|b| b == b'\n' || (b' '..=b'~').contains(&b))
    {
        return None;
    }
    let mut lines: Vec<Line> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, broken, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, ""),
        };
        let indent = line.len() - line.trim_start_matches(' ').len();
        lines.push(Line {
            indent,
            text: &line[indent..],
            broken,
        });
        rest = next;
    }
    // A document start marker on its own (the chunk's first line), an end marker last.
    let first = lines.iter().position(|l| !l.is_filler());
    if let Some(i) = first {
        let l = lines[i];
        if l.indent == 0 && l.text.starts_with("---") {
            if !after_marker_is_empty(&l.text[3..]) {
                return None;
            }
            lines[i].text = "";
        }
    }
    if let Some(i) = lines.iter().rposition(|l| !l.is_filler()) {
        let l = lines[i];
        if l.indent == 0 && l.text.starts_with("...") {
            if !after_marker_is_empty(&l.text[3..]) {
                return None;
            }
            lines.truncate(i);
        }
    }
    let mut r = Reader {
        lines,
        at: 0,
        depth: 0,
    };
    let Some(first) = r.next_content() else {
        return Some(Built::Null);
    };
    // A document that is a lone scalar or flow node: left to the event reader.
    let root = match r.kind(first)? {
        Kind::Entry => r.sequence(r.lines[first].indent)?,
        Kind::Key => r.mapping(r.lines[first].indent)?,
    };
    // Nothing may follow the root node.
    if r.next_content().is_some() {
        return None;
    }
    Some(Built::Value(root))
}

/// After `---` or `...`: nothing, or spaces and a comment.
fn after_marker_is_empty(rest: &str) -> bool {
    let t = rest.trim_start_matches(' ');
    t.is_empty() || (t.starts_with('#') && t.len() < rest.len())
}

enum Kind {
    /// `- ...`
    Entry,
    /// `key: ...`
    Key,
}

impl<'a> Reader<'a> {
    /// The index of the next content line (skipping blanks and comments), without taking it.
    fn next_content(&mut self) -> Option<usize> {
        while let Some(l) = self.lines.get(self.at) {
            if !l.is_filler() {
                return Some(self.at);
            }
            self.at += 1;
        }
        None
    }

    fn kind(&self, i: usize) -> Option<Kind> {
        let t = self.lines[i].text;
        if t == "-" || t.starts_with("- ") {
            Some(Kind::Entry)
        } else if split_key(t).is_some() {
            Some(Kind::Key)
        } else {
            None
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth < FAST_DEPTH).then_some(())
    }

    /// A block sequence whose dashes are at column `indent`.
    fn sequence(&mut self, indent: usize) -> Option<Value> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(i) = self.next_content() {
            let l = self.lines[i];
            if l.indent < indent || !(l.text == "-" || l.text.starts_with("- ")) {
                // Less indented, or the parent mapping's next key at the dashes' column.
                if l.indent > indent {
                    return None;
                }
                break;
            }
            if l.indent > indent {
                return None;
            }
            let after = l.text[1..].trim_start_matches(' ');
            let column = indent + (l.text.len() - after.len());
            self.at = i + 1;
            let item = if after.is_empty() || after.starts_with('#') {
                self.nested(indent)?
            } else if after.starts_with("- ") || after == "-" {
                // `- - a`: compact nested sequences.
                return None;
            } else if split_key(after).is_some() {
                // `- key: value`: a mapping whose keys are at the column after the dash.
                self.at = i;
                self.lines[i] = Line {
                    indent: column,
                    text: after,
                    broken: l.broken,
                };
                self.mapping(column)?
            } else {
                self.value_in_line(after, indent, i)?
            };
            items.push(item);
        }
        self.depth -= 1;
        Some(Value::Array(items))
    }

    /// A block mapping whose keys are at column `indent`.
    fn mapping(&mut self, indent: usize) -> Option<Value> {
        self.enter()?;
        let mut map = Map::new();
        while let Some(i) = self.next_content() {
            let l = self.lines[i];
            if l.indent < indent {
                break;
            }
            if l.indent > indent {
                return None;
            }
            if l.text == "-" || l.text.starts_with("- ") {
                // A sequence entry where a key belongs: the parent's, or an error.
                break;
            }
            let (key, after) = split_key(l.text)?;
            self.at = i + 1;
            let value = if after.is_empty() || after.starts_with('#') {
                // The value is on the lines below: nested deeper, or a sequence whose dashes
                // stand at the key's own column.
                match self.next_content() {
                    Some(n)
                        if self.lines[n].indent == indent
                            && matches!(self.kind(n), Some(Kind::Entry)) =>
                    {
                        self.sequence(indent)?
                    }
                    _ => self.nested(indent)?,
                }
            } else {
                self.value_in_line(after, indent, i)?
            };
            // A repeated key: serde-saphyr refuses it with its position.
            if map.insert(key.into_owned(), value).is_some() {
                return None;
            }
        }
        self.depth -= 1;
        Some(Value::Object(map))
    }

    /// The node on the lines below a key or dash at column `parent`: a mapping or sequence
    /// indented more, or null when none is.
    fn nested(&mut self, parent: usize) -> Option<Value> {
        let Some(n) = self.next_content() else {
            return Some(Value::Null);
        };
        let l = self.lines[n];
        if l.indent <= parent {
            return Some(Value::Null);
        }
        match self.kind(n)? {
            Kind::Entry => self.sequence(l.indent),
            Kind::Key => self.mapping(l.indent),
        }
    }

    /// A value written after `key: ` or `- ` on line `i`, whose key or dash is at `parent`.
    fn value_in_line(&mut self, text: &str, parent: usize, i: usize) -> Option<Value> {
        self.at = i + 1;
        let value = match text.as_bytes()[0] {
            b'|' | b'>' => return self.block_scalar(text, parent),
            b'"' => match double_quoted(text) {
                Some(v) => Value::String(v),
                None => Value::String(self.double_quoted_lines(text, parent, i)?),
            },
            b'\'' => Value::String(single_quoted(text)?),
            b'[' | b'{' => {
                let mut f = Flow {
                    text,
                    at: 0,
                    depth: self.depth,
                };
                let v = f.node()?;
                if !is_comment_or_empty(&text[f.at..]) {
                    return None;
                }
                v
            }
            _ => resolve_plain(plain(text)?)?,
        };
        // A line below indented more would continue the scalar (or be an error).
        if let Some(n) = self.next_content() {
            if self.lines[n].indent > parent {
                return None;
            }
        }
        Some(value)
    }

    /// A double-quoted scalar that goes on past line `i` (long strings as YAML emitters fold
    /// them), its continuation lines indented past `parent`. Leaves `at` after its last line.
    fn double_quoted_lines(&mut self, text: &str, parent: usize, i: usize) -> Option<String> {
        let mut src = String::from(text);
        let mut j = i + 1;
        while let Some(l) = self.lines.get(j) {
            if !l.text.is_empty() && l.indent <= parent {
                break;
            }
            src.push('\n');
            src.push_str(l.text);
            j += 1;
        }
        let (value, len) = fold_double(&src)?;
        let close = i + src[..len].matches('\n').count();
        let rest = src[len..].split('\n').next().unwrap_or("");
        if !is_comment_or_empty(rest) {
            return None;
        }
        self.at = close + 1;
        Some(value)
    }

    /// A literal (`|`) or folded (`>`) block scalar with the header `text`, under a key or dash
    /// at column `parent`; its content starts on the next line.
    fn block_scalar(&mut self, header: &str, parent: usize) -> Option<Value> {
        let folded = header.starts_with('>');
        let (chomp, rest) = match header.as_bytes().get(1) {
            Some(b'-') => (Chomp::Strip, &header[2..]),
            Some(b'+') => (Chomp::Keep, &header[2..]),
            _ => (Chomp::Clip, &header[1..]),
        };
        // Indentation indicators and anything but a comment after the header.
        if !is_comment_or_empty(rest) || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        // The content's indentation is the first non-blank line's.
        let start = self.at;
        let first = (start..self.lines.len()).find(|&j| !self.lines[j].text.is_empty())?;
        let indent = self.lines[first].indent;
        // Empty scalars, content at the least indentation allowed: left to the event reader.
        if indent <= parent + 1 {
            return None;
        }
        let mut end = first;
        while let Some(l) = self.lines.get(end) {
            if !l.text.is_empty() && l.indent < indent {
                break;
            }
            end += 1;
        }
        // Blank lines holding spaces beyond the indentation (content, or an error before the
        // first line): left to the event reader.
        if self.lines[start..end]
            .iter()
            .any(|l| l.text.is_empty() && l.indent > indent)
        {
            return None;
        }
        // Trailing blank lines belong to the scalar only under `keep`; the last content line.
        let last = (first..end)
            .rev()
            .find(|&j| !self.lines[j].text.is_empty())?;
        let mut out = String::new();
        let content = |l: &Line<'a>| -> String {
            // Spaces beyond the indentation are content (also on blank lines).
            let mut s = " ".repeat(l.indent.saturating_sub(indent));
            s.push_str(l.text);
            s
        };
        if folded {
            // Only the simplest folding: every content line at the indentation, no spaces
            // after it (more-indented lines keep their breaks: left to the event reader).
            let mut pending_breaks = 0usize;
            let mut started = false;
            for l in &self.lines[start..=last] {
                if l.text.is_empty() {
                    pending_breaks += 1;
                    continue;
                }
                if l.indent != indent {
                    return None;
                }
                if started && pending_breaks == 0 {
                    out.push(' ');
                }
                for _ in 0..pending_breaks {
                    out.push('\n');
                }
                pending_breaks = 0;
                started = true;
                out.push_str(l.text);
            }
        } else {
            for l in &self.lines[start..=last] {
                out.push_str(&content(l));
                out.push('\n');
            }
            out.pop();
        }
        // The last content line ends with a break even at the end of the text (as the event
        // reader reads it); `keep` adds the trailing blank lines' breaks.
        match chomp {
            Chomp::Strip => {}
            Chomp::Clip => out.push('\n'),
            Chomp::Keep => {
                if self.lines[last..end].iter().any(|l| !l.broken) {
                    return None;
                }
                out.push('\n');
                for _ in last + 1..end {
                    out.push('\n');
                }
            }
        }
        self.at = end;
        Some(Value::String(out))
    }
}

#[derive(Clone, Copy)]
enum Chomp {
    Strip,
    Clip,
    Keep,
}

fn is_comment_or_empty(rest: &str) -> bool {
    let t = rest.trim_start_matches(' ');
    t.is_empty() || (t.starts_with('#') && t.len() < rest.len())
}

/// `key: rest` with a key the fast path can take (plain, or quoted on one line): the key and
/// what follows `: ` (spaces trimmed). `None` when the line is not such a mapping entry.
fn split_key(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let bytes = text.as_bytes();
    if matches!(bytes.first(), Some(b'"' | b'\'')) {
        let (key, len) = if bytes[0] == b'"' {
            quoted_double(text)?
        } else {
            quoted_single(text)?
        };
        let rest = &text[len..];
        return match rest.as_bytes() {
            [b':'] => Some((Cow::Owned(key), "")),
            [b':', b' ', ..] => Some((Cow::Owned(key), rest[1..].trim_start_matches(' '))),
            _ => None,
        };
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b':' if matches!(bytes.get(i + 1), None | Some(b' ')) => {
                let key = &text[..i];
                if !key_is_plain_text(key) {
                    return None;
                }
                return Some((Cow::Borrowed(key), text[i + 1..].trim_start_matches(' ')));
            }
            // A comment before any `: `: the line is a scalar.
            b'#' if i > 0 && bytes[i - 1] == b' ' => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// A key of the characters keys are written with, which the resolver reads as text.
fn key_is_plain_text(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(['-', '?', ':', ' '])
        && !key.ends_with(' ')
        && key.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'/' | b'$' | b'+' | b'~' | b'=')
        })
        && key != "<<"
        && plain_is_text(key)
}

/// A one-line plain scalar: the text before a comment, trailing spaces trimmed; `None` for
/// indicators that start other nodes and text YAML reads otherwise.
fn plain(text: &str) -> Option<&str> {
    let first = text.as_bytes()[0];
    if matches!(
        first,
        b'&' | b'*' | b'!' | b'%' | b'@' | b'`' | b'#' | b',' | b'[' | b']' | b'{' | b'}'
    ) {
        return None;
    }
    if matches!(first, b'-' | b'?' | b':') && matches!(text.as_bytes().get(1), None | Some(b' ')) {
        return None;
    }
    let end = text.find(" #").unwrap_or(text.len());
    let value = text[..end].trim_end_matches(' ');
    // `: ` or a final `:` would make it a mapping where none may start.
    if value.contains(": ") || value.ends_with(':') {
        return None;
    }
    Some(value)
}

/// A one-line double-quoted scalar followed by nothing but a comment.
fn double_quoted(text: &str) -> Option<String> {
    let (value, len) = quoted_double(text)?;
    is_comment_or_empty(&text[len..]).then_some(value)
}

/// The double-quoted scalar at the start of `text` (closed on this line) and the bytes it
/// spans, quotes included. Escapes as YAML 1.2 defines them; an escaped line break (a scalar
/// going on over lines) is left to the event reader.
fn quoted_double(text: &str) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 1;
    loop {
        let run = text[i..].find(['"', '\\'])? + i;
        out.push_str(&text[i..run]);
        if bytes[run] == b'"' {
            return Some((out, run + 1));
        }
        let (c, len) = escape(text, run)?;
        out.push(c);
        i = run + 1 + len;
    }
}

/// A double-quoted scalar over several lines (`src`: its lines without their indentation,
/// joined by `\n`): line breaks fold to a space (empty lines to line breaks), an escaped break
/// joins the lines, spaces around breaks go. The value and the bytes it spans.
fn fold_double(src: &str) -> Option<(String, usize)> {
    let bytes = src.as_bytes();
    let mut out = String::new();
    // Where the spaces written literally at the end of `out` begin (escaped ones stay).
    let mut spaces_from: Option<usize> = None;
    let mut i = 1;
    loop {
        match *bytes.get(i)? {
            b'"' => return Some((out, i + 1)),
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => {
                // An escaped line break: nothing, and the next line's leading spaces go.
                i += 2;
                if bytes.get(i) == Some(&b'\n') {
                    return None;
                }
                spaces_from = None;
            }
            b'\\' => {
                let (c, len) = escape(src, i)?;
                out.push(c);
                i += 1 + len;
                spaces_from = None;
            }
            b'\n' => {
                if let Some(p) = spaces_from.take() {
                    out.truncate(p);
                }
                i += 1;
                let mut breaks = 0;
                while bytes.get(i) == Some(&b'\n') {
                    breaks += 1;
                    i += 1;
                }
                if breaks == 0 {
                    out.push(' ');
                } else {
                    out.extend(std::iter::repeat_n('\n', breaks));
                }
            }
            b' ' => {
                spaces_from.get_or_insert(out.len());
                out.push(' ');
                i += 1;
            }
            b => {
                spaces_from = None;
                out.push(char::from(b));
                i += 1;
            }
        }
    }
}

/// The escape whose backslash is at `at`: its character and the bytes after the backslash.
fn escape(text: &str, at: usize) -> Option<(char, usize)> {
    Some(match *text.as_bytes().get(at + 1)? {
        b'0' => ('\0', 1),
        b'a' => ('\u{7}', 1),
        b'b' => ('\u{8}', 1),
        b't' => ('\t', 1),
        b'n' => ('\n', 1),
        b'v' => ('\u{b}', 1),
        b'f' => ('\u{c}', 1),
        b'r' => ('\r', 1),
        b'e' => ('\u{1b}', 1),
        b' ' => (' ', 1),
        b'"' => ('"', 1),
        b'/' => ('/', 1),
        b'\\' => ('\\', 1),
        b'N' => ('\u{85}', 1),
        b'_' => ('\u{a0}', 1),
        b'L' => ('\u{2028}', 1),
        b'P' => ('\u{2029}', 1),
        b'x' => (hex(text.get(at + 2..at + 4)?)?, 3),
        b'u' => (hex(text.get(at + 2..at + 6)?)?, 5),
        b'U' => (hex(text.get(at + 2..at + 10)?)?, 9),
        _ => return None,
    })
}

fn hex(digits: &str) -> Option<char> {
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    char::from_u32(u32::from_str_radix(digits, 16).ok()?)
}

/// A one-line single-quoted scalar followed by nothing but a comment.
fn single_quoted(text: &str) -> Option<String> {
    let (value, len) = quoted_single(text)?;
    is_comment_or_empty(&text[len..]).then_some(value)
}

/// The single-quoted scalar at the start of `text` (`''` is a quote, closed on this line) and
/// the bytes it spans, quotes included.
fn quoted_single(text: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut i = 1;
    loop {
        let next = text[i..].find('\'')? + i;
        out.push_str(&text[i..next]);
        if text.as_bytes().get(next + 1) == Some(&b'\'') {
            out.push('\'');
            i = next + 2;
            continue;
        }
        return Some((out, next + 1));
    }
}

/// A flow collection written on one line (`[ReadWriteOnce]`, `{app: api}`), nested or not, of
/// plain and quoted scalars; empty entries, trailing commas, quoted or valueless keys and
/// comments inside are left to the event reader.
struct Flow<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

impl<'a> Flow<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn node(&mut self) -> Option<Value> {
        self.spaces();
        match self.peek()? {
            b'[' | b'{' => {
                self.depth += 1;
                if self.depth >= FAST_DEPTH {
                    return None;
                }
                let open = self.peek()?;
                self.at += 1;
                let v = if open == b'[' {
                    self.sequence()
                } else {
                    self.mapping()
                };
                self.depth -= 1;
                v
            }
            b'"' => {
                let (value, len) = quoted_double(&self.text[self.at..])?;
                self.at += len;
                Some(Value::String(value))
            }
            b'\'' => {
                let (value, len) = quoted_single(&self.text[self.at..])?;
                self.at += len;
                Some(Value::String(value))
            }
            _ => resolve_plain(self.plain()?),
        }
    }

    /// A plain scalar in flow context: up to `,`, `]`, `}` or `: `.
    fn plain(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let first = *bytes.get(start)?;
        if matches!(
            first,
            b'&' | b'*' | b'!' | b'%' | b'@' | b'`' | b'#' | b',' | b'|' | b'>'
        ) {
            return None;
        }
        let ends = |b: Option<&u8>| matches!(b, None | Some(b' ' | b',' | b']' | b'}'));
        if matches!(first, b'-' | b'?' | b':') && ends(bytes.get(start + 1)) {
            return None;
        }
        let mut i = start;
        while let Some(&b) = bytes.get(i) {
            match b {
                b',' | b']' | b'}' => break,
                b'[' | b'{' => return None,
                b':' if ends(bytes.get(i + 1)) => break,
                b'#' if i > start && bytes[i - 1] == b' ' => return None,
                _ => i += 1,
            }
        }
        self.at = i;
        let value = self.text[start..i].trim_end_matches(' ');
        (!value.is_empty()).then_some(value)
    }

    /// After an entry: `,` and the next (not the end), or the closing bracket.
    fn next_entry(&mut self, close: u8) -> Option<bool> {
        self.spaces();
        match self.peek()? {
            b',' => {
                self.at += 1;
                self.spaces();
                (self.peek()? != close).then_some(true)
            }
            b if b == close => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    fn sequence(&mut self) -> Option<Value> {
        let mut items = Vec::new();
        self.spaces();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.node()?);
            if !self.next_entry(b']')? {
                return Some(Value::Array(items));
            }
        }
    }

    fn mapping(&mut self) -> Option<Value> {
        let mut map = Map::new();
        self.spaces();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(Value::Object(map));
        }
        loop {
            self.spaces();
            let key = self.plain()?;
            if !key_is_plain_text(key) || self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            if self.peek()? != b' ' {
                return None;
            }
            let value = self.node()?;
            if map.insert(key.to_string(), value).is_some() {
                return None;
            }
            if !self.next_entry(b'}')? {
                return Some(Value::Object(map));
            }
        }
    }
}
