//! What YAML writes within one line, as the line reader ([`super::yaml_block`]) takes it:
//! plain and quoted scalars, mapping keys, flow collections (`[ReadWriteOnce]`,
//! `{app: api}`), and double-quoted scalars folded over lines. Each answers `None` where it
//! cannot be sure to agree with the event reader.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::yaml_fast::{plain_is_text, resolve_plain, FAST_DEPTH};

pub(super) fn is_comment_or_empty(rest: &str) -> bool {
    let t = rest.trim_start_matches(' ');
    t.is_empty() || (t.starts_with('#') && t.len() < rest.len())
}

/// `key: rest` with a key the fast path can take (plain, or quoted on one line): the key and
/// what follows `: ` (spaces trimmed). `None` when the line is not such a mapping entry.
pub(super) fn split_key(text: &str) -> Option<(Cow<'_, str>, &str)> {
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
pub(super) fn plain(text: &str) -> Option<&str> {
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
pub(super) fn double_quoted(text: &str) -> Option<String> {
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
pub(super) fn fold_double(src: &str) -> Option<(String, usize)> {
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
pub(super) fn single_quoted(text: &str) -> Option<String> {
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
pub(super) struct Flow<'a> {
    pub(super) text: &'a str,
    /// Where reading has got to.
    pub(super) at: usize,
    pub(super) depth: usize,
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

    pub(super) fn node(&mut self) -> Option<Value> {
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
