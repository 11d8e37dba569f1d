//! Text edits of a YAML document that keep everything else as written: a patch (what to add,
//! as a small tree) is laid over the document's [`Node`]s, and only the places it touches are
//! edited: a scalar replaced, entries inserted after a mapping's last entry, items appended to
//! a sequence, an entry deleted with its lines. Indentation comes from the surrounding text.
//! Flow-style collections (`{}` / `[]`) are not rewritten: the caller is told, and edits nothing.

use super::tree::Node;

/// Replace the bytes `start..end` of a file with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// What to lay over a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Patch {
    /// A scalar, already written as YAML (see [`scalar`]).
    Scalar(String),
    /// Entries to set (recursively) or add.
    Map(Vec<(String, Patch)>),
    /// A sequence: patches of existing items (by index) and items to append.
    Seq {
        items: Vec<(usize, Patch)>,
        append: Vec<Patch>,
    },
}

impl Patch {
    /// Items to append to a sequence.
    pub(crate) fn append(items: Vec<Patch>) -> Patch {
        Patch::Seq {
            items: Vec::new(),
            append: items,
        }
    }

    /// Patches of a sequence's existing items.
    pub(crate) fn items(items: Vec<(usize, Patch)>) -> Patch {
        Patch::Seq {
            items,
            append: Vec::new(),
        }
    }

    /// `patch` under the keys of `path` (a mapping per key).
    #[cfg(test)]
    pub(crate) fn at(path: &[&str], patch: Patch) -> Patch {
        path.iter()
            .rev()
            .fold(patch, |p, k| Patch::Map(vec![(k.to_string(), p)]))
    }

    /// Lay `other` over `self`: entries merged, appended items added, a scalar replaced.
    pub(crate) fn merge(&mut self, other: Patch) {
        match (self, other) {
            (Patch::Map(a), Patch::Map(b)) => {
                for (k, v) in b {
                    match a.iter_mut().find(|(key, _)| *key == k) {
                        Some((_, existing)) => existing.merge(v),
                        None => a.push((k, v)),
                    }
                }
            }
            (
                Patch::Seq { items, append },
                Patch::Seq {
                    items: more,
                    append: added,
                },
            ) => {
                for item in added {
                    if !append.contains(&item) {
                        append.push(item);
                    }
                }
                for (i, v) in more {
                    match items.iter_mut().find(|(j, _)| *j == i) {
                        Some((_, existing)) => existing.merge(v),
                        None => items.push((i, v)),
                    }
                }
            }
            (slot, other) => *slot = other,
        }
    }
}

/// A string as a YAML scalar: plain when it reads back as the same string, else double-quoted
/// (JSON's quoting is valid YAML).
pub(crate) fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | '@' | ':'))
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.contains(": ")
        && !s.ends_with(':')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

/// The indentation habits of a document: how far a nested mapping is indented, and how far a
/// sequence's dash is from its key (0 for `key:\n- item`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    pub step: usize,
    pub dash: usize,
}

impl Style {
    /// Read from the first nested block mapping and the first block sequence under a key.
    pub(crate) fn of(text: &str, root: &Node) -> Style {
        let mut style = Style { step: 2, dash: 2 };
        let mut step = None;
        let mut dash = None;
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            for e in n.entries() {
                let v = &e.value;
                if v.flow {
                    continue;
                }
                if step.is_none() {
                    if let Some(first) = v.entries().first() {
                        step = first.key_col.checked_sub(e.key_col).filter(|s| *s > 0);
                    }
                }
                if dash.is_none() {
                    if let Some(first) = v.items().first() {
                        dash = dash_col(text, first).and_then(|d| d.checked_sub(e.key_col));
                    }
                }
                stack.push(v);
            }
            stack.extend(n.items().iter().rev());
            if step.is_some() && dash.is_some() {
                break;
            }
        }
        style.step = step.unwrap_or(style.step);
        style.dash = dash.unwrap_or(style.dash);
        style
    }
}

/// The column of the `-` before a block sequence item on its line.
fn dash_col(text: &str, item: &Node) -> Option<usize> {
    let start = line_start(text, item.start);
    let before = text.get(start..item.start)?;
    let i = before.rfind('-')?;
    before
        .get(..i)
        .filter(|p| p.chars().all(|c| c == ' ' || c == '-'))
        .map(|p| p.chars().count())
}

fn line_start(text: &str, at: usize) -> usize {
    text.get(..at)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1)
}

/// Where text inserted after the node ending at `at` goes: the start of the next line.
fn after_line(text: &str, at: usize) -> usize {
    if at > 0 && text.as_bytes().get(at - 1) == Some(&b'\n') {
        return at;
    }
    text.get(at..)
        .and_then(|t| t.find('\n'))
        .map_or(text.len(), |i| at + i + 1)
}

/// An insertion at `at`, with a newline first when the file does not end in one.
fn insertion(text: &str, at: usize, lines: String) -> Edit {
    let lead = if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
        "\n"
    } else {
        ""
    };
    Edit {
        start: at,
        end: at,
        text: format!("{lead}{lines}"),
    }
}

/// Why a patch could not be laid over the text.
pub(crate) type Refusal = String;

/// The edits that lay `patch` over `node` in `text`.
pub(crate) fn lay(
    text: &str,
    node: &Node,
    patch: &Patch,
    style: Style,
    out: &mut Vec<Edit>,
) -> Result<(), Refusal> {
    if node.flow {
        return Err("written in flow style ({...} or [...]): edit it by hand".into());
    }
    match patch {
        Patch::Map(entries) => {
            if !node.is_map() {
                return Err("not a mapping".into());
            }
            let mut missing = Vec::new();
            for (k, v) in entries {
                match (node.get(k), v) {
                    (Some(child), Patch::Scalar(s)) => {
                        if !child.is_map() && child.items().is_empty() {
                            if text.get(child.start..child.end) != Some(s.as_str()) {
                                out.push(Edit {
                                    start: child.start,
                                    end: child.end,
                                    text: s.clone(),
                                });
                            }
                        } else {
                            return Err(format!("{k} is not a scalar"));
                        }
                    }
                    (Some(child), _) if child.is_null() => {
                        return Err(format!("{k} is written as null: edit it by hand"));
                    }
                    (Some(child), v) => lay(text, child, v, style, out)?,
                    (None, Patch::Seq { items, .. }) if !items.is_empty() => {
                        return Err(format!("{k} is missing"))
                    }
                    (None, v) => missing.push((k.clone(), v.clone())),
                }
            }
            if !missing.is_empty() {
                let first = node.entries().first().ok_or("an empty mapping")?;
                let mut lines = String::new();
                render_entries(&missing, first.key_col, style, &mut lines);
                out.push(insertion(text, after_line(text, node.end), lines));
            }
            Ok(())
        }
        Patch::Seq { items, append } => {
            for (i, p) in items {
                let item = node.item(*i).ok_or("a sequence item that is not there")?;
                lay(text, item, p, style, out)?;
            }
            if append.is_empty() {
                return Ok(());
            }
            let first = node.items().first().ok_or("not a sequence with items")?;
            let col = dash_col(text, first).ok_or("a sequence item not on its own line")?;
            let mut lines = String::new();
            for item in append {
                render_item(item, col, style, &mut lines);
            }
            out.push(insertion(text, after_line(text, node.end), lines));
            Ok(())
        }
        Patch::Scalar(_) => Err("a scalar cannot be laid over a collection".into()),
    }
}

/// The edit deleting entry `key` of the block mapping `map`, with its lines (comments on the
/// lines above it stay).
pub(crate) fn delete_entry(text: &str, map: &Node, key: &str) -> Result<Edit, Refusal> {
    if map.flow {
        return Err("written in flow style ({...}): edit it by hand".into());
    }
    let e = map.entry(key).ok_or("not there")?;
    let start = line_start(text, e.key_start);
    if !text
        .get(start..e.key_start)
        .is_some_and(|p| p.chars().all(|c| c == ' ' || c == '\t'))
    {
        return Err("not on a line of its own: edit it by hand".into());
    }
    Ok(Edit {
        start,
        end: after_line(text, e.value.end),
        text: String::new(),
    })
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

fn render_entries(entries: &[(String, Patch)], indent: usize, style: Style, out: &mut String) {
    for (k, v) in entries {
        let key = scalar(k);
        match v {
            Patch::Scalar(s) => out.push_str(&format!("{}{key}: {s}\n", pad(indent))),
            Patch::Map(m) if m.is_empty() => out.push_str(&format!("{}{key}: {{}}\n", pad(indent))),
            Patch::Map(m) => {
                out.push_str(&format!("{}{key}:\n", pad(indent)));
                render_entries(m, indent + style.step, style, out);
            }
            // Indices of items that are not there: nothing to write (`lay` refuses them).
            Patch::Seq { append, .. } if append.is_empty() => {}
            Patch::Seq { append, .. } => {
                out.push_str(&format!("{}{key}:\n", pad(indent)));
                for item in append {
                    render_item(item, indent + style.dash, style, out);
                }
            }
        }
    }
}

fn render_item(item: &Patch, dash: usize, style: Style, out: &mut String) {
    match item {
        Patch::Scalar(s) => out.push_str(&format!("{}- {s}\n", pad(dash))),
        Patch::Map(m) if !m.is_empty() => {
            let mut body = String::new();
            render_entries(m, dash + 2, style, &mut body);
            out.push_str(&pad(dash));
            out.push_str("- ");
            out.push_str(body.get(dash + 2..).unwrap_or_default());
        }
        _ => out.push_str(&format!("{}- {{}}\n", pad(dash))),
    }
}

/// `text` with `edits` applied; `None` when two edits overlap. Edits at the same place apply
/// in the order given.
pub(crate) fn apply(text: &str, edits: &[Edit]) -> Option<String> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in sorted {
        if e.start < at || e.end < e.start {
            return None;
        }
        out.push_str(text.get(at..e.start)?);
        out.push_str(&e.text);
        at = e.end;
    }
    out.push_str(text.get(at..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::tree::documents;
    use super::*;

    fn patched(text: &str, patch: Patch) -> String {
        let docs = documents(text);
        let root = &docs[0].1;
        let mut edits = Vec::new();
        lay(text, root, &patch, Style::of(text, root), &mut edits).unwrap();
        apply(text, &edits).unwrap()
    }

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        assert_eq!(scalar("ebs-kms"), "ebs-kms");
        assert_eq!(
            scalar("docker.io/fluent/fluent-bit:3.2"),
            "docker.io/fluent/fluent-bit:3.2"
        );
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("1"), "\"1\"");
        assert_eq!(scalar("a b"), "\"a b\"");
        assert_eq!(scalar(""), "\"\"");
    }

    #[test]
    fn entries_and_items_go_after_the_last_one_with_its_indentation() {
        let text = "a:\n    b: 1 # keep\n    c:\n    - x\n    - y: 2\n      z: 3\n# tail\nd: e\n";
        let patch = Patch::at(
            &["a"],
            Patch::Map(vec![
                (
                    "c".into(),
                    Patch::append(vec![Patch::Map(vec![
                        ("k".into(), Patch::Scalar("v".into())),
                        ("m".into(), Patch::append(vec![Patch::Scalar("w".into())])),
                    ])]),
                ),
                (
                    "f".into(),
                    Patch::Map(vec![("g".into(), Patch::Scalar("h".into()))]),
                ),
                ("b".into(), Patch::Scalar("2".into())),
            ]),
        );
        assert_eq!(
            patched(text, patch),
            "a:\n    b: 2 # keep\n    c:\n    - x\n    - y: 2\n      z: 3\n    - k: v\n      m:\n      - w\n    f:\n        g: h\n# tail\nd: e\n"
        );
    }

    #[test]
    fn flow_and_null_collections_are_refused() {
        let text = "a: {b: 1}\nc:\n";
        let docs = documents(text);
        let root = &docs[0].1;
        let mut edits = Vec::new();
        let flow = Patch::at(&["a", "x"], Patch::Scalar("1".into()));
        assert!(lay(text, root, &flow, Style::of(text, root), &mut edits).is_err());
        let null = Patch::at(&["c", "x"], Patch::Scalar("1".into()));
        assert!(lay(text, root, &null, Style::of(text, root), &mut edits).is_err());
        assert!(edits.is_empty());
    }

    #[test]
    fn deleting_an_entry_keeps_the_rest() {
        let text = "m:\n  # about a\n  a: \"1\"\n  b: |\n    x\n    y\n  c: 3\n";
        let docs = documents(text);
        let m = docs[0].1.get("m").unwrap();
        let b = delete_entry(text, m, "b").unwrap();
        let a = delete_entry(text, m, "a").unwrap();
        assert_eq!(
            apply(text, &[b]).unwrap(),
            "m:\n  # about a\n  a: \"1\"\n  c: 3\n"
        );
        assert_eq!(
            apply(text, &[a]).unwrap(),
            "m:\n  # about a\n  b: |\n    x\n    y\n  c: 3\n"
        );
    }

    #[test]
    fn overlapping_edits_are_not_applied() {
        let e = |start, end| Edit {
            start,
            end,
            text: String::new(),
        };
        assert_eq!(apply("abcdef", &[e(1, 3), e(2, 4)]), None);
        assert_eq!(apply("abcdef", &[e(3, 4), e(1, 3)]).unwrap(), "aef");
    }

    #[test]
    fn a_file_without_a_final_newline_gets_one_before_an_insertion() {
        let text = "a:\n  b: 1";
        let out = patched(text, Patch::at(&["a", "c"], Patch::Scalar("2".into())));
        assert_eq!(out, "a:\n  b: 1\n  c: 2\n");
    }
}
