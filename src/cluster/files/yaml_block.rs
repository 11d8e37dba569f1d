//! The fastest reader, for the YAML manifests are written in: block mappings and sequences,
//! literal and folded block scalars, comments, and what a line holds (`yaml_inline`: plain and
//! quoted scalars, quoted keys, one-line flow collections, double-quoted scalars folded over
//! lines). It reads lines, not characters through a general parser: the 20,000 objects of real
//! charts in BENCHMARKS.md parse in a fraction of the event parser's 0.9 s.
//!
//! It answers only where it is sure to agree with the event reader ([`super::yaml_fast`]):
//! anything outside that subset (tabs, carriage returns, non-ASCII text, anchors, aliases,
//! tags, explicit keys, multi-line plain or single-quoted scalars, flow collections over
//! lines, block scalar indentation indicators, keys of unusual characters, a scalar the
//! resolver leaves to serde-saphyr) returns `None`, and the document is read by the event
//! reader, which in turn hands what it is unsure of to serde-saphyr. `block_tests` compares it
//! with the event reader, also on mutated documents.

use serde_json::{Map, Value};

use super::yaml_fast::{resolve_plain, Built, FAST_DEPTH};
use super::yaml_inline::{
    double_quoted, fold_double, is_comment_or_empty, plain, single_quoted, split_key, Flow,
};

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
