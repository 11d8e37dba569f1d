//! Where a field is in its file: the line and column of a finding's path (`spec.template.spec.
//! volumes[2]`, `metadata.annotations["x"]`) in the document a [`Document::source`] names, for
//! SARIF. The file is parsed again with positions (`granit-parser`, the event parser under
//! serde-saphyr), keeping only the shape of the documents asked for: keys, indices and
//! positions, never scalar values. A path that cannot be followed to its node gives its nearest
//! located ancestor, then the document's first line, then line 1: positions never fail a run.

use std::collections::{BTreeMap, BTreeSet};

use granit_parser::{Event, Parser, ScalarStyle, Span};

/// A place in a file: line and column, both from 1 (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    const START: Position = Position { line: 1, column: 1 };

    fn of(span: &Span) -> Position {
        Position {
            line: span.start.line().max(1),
            column: span.start.col() + 1,
        }
    }
}

/// A document source split up: `file#3.2` is document 3 of `file`, item 2 of its `items`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceRef<'a> {
    pub file: &'a str,
    /// The document's index in its file, from 1.
    pub document: usize,
    /// Item indices (from 1) through nested `kind: List` documents.
    pub items: Vec<usize>,
}

impl<'a> SourceRef<'a> {
    /// Parse `path#index[.item]...`; `None` when the source names no document.
    pub(crate) fn parse(source: &'a str) -> Option<Self> {
        let (file, rest) = source.rsplit_once('#')?;
        let mut parts = rest.split('.').map(|p| p.parse::<usize>().ok());
        let document = parts.next()??;
        let items = parts.collect::<Option<Vec<_>>>()?;
        Some(SourceRef {
            file,
            document,
            items,
        })
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// `a.b[2]["x.y/z"].c` as steps; stops at the first piece it cannot read (the located ancestor
/// is then as far as it got).
pub(crate) fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("[\"") {
            let mut key = String::new();
            let mut chars = r.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, c)) => key.push(c),
                        None => break,
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => key.push(c),
                }
            }
            match end.and_then(|e| r[e..].strip_prefix(']')) {
                Some(r) => {
                    out.push(Step::Key(key));
                    rest = r;
                }
                None => break,
            }
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some((n, r)) = r.split_once(']') else {
                break;
            };
            let Ok(n) = n.trim().parse() else { break };
            out.push(Step::Index(n));
            rest = r;
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let (key, r) = rest.split_at(end);
            out.push(Step::Key(key.to_string()));
            rest = r;
        }
    }
    out
}

/// The shape of a parsed node: where it starts and what it holds.
#[derive(Debug)]
struct Node {
    at: Position,
    children: Children,
}

#[derive(Debug)]
enum Children {
    Leaf,
    Seq(Vec<Node>),
    /// Keys with the position of the key itself (the field's line) and the value.
    Map(Vec<(String, Position, Node)>),
}

/// The located documents of one file.
#[derive(Debug, Default)]
pub(crate) struct FileLocator {
    docs: BTreeMap<usize, Node>,
}

impl FileLocator {
    /// Parse `text` (YAML, or JSON as `check` reads it), keeping the documents in `wanted`
    /// (indices from 1, counted as `check` counts them).
    pub(crate) fn new(text: &str, wanted: &BTreeSet<usize>) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut docs = BTreeMap::new();
        if text.trim_start().starts_with(['{', '[']) {
            if let Some(ranges) = json_documents(text) {
                for (i, (start, end)) in ranges.into_iter().enumerate() {
                    if !wanted.contains(&(i + 1)) {
                        continue;
                    }
                    let (Some(before), Some(doc)) = (text.get(..start), text.get(start..end))
                    else {
                        continue;
                    };
                    let line = before.matches('\n').count();
                    let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1);
                    let shift = |p: Position| Position {
                        line: p.line + line,
                        column: if p.line == 1 {
                            p.column + column
                        } else {
                            p.column
                        },
                    };
                    if let Some(mut node) = yaml_documents(doc, &BTreeSet::from([1])).remove(&1) {
                        node.shift(&shift);
                        docs.insert(i + 1, node);
                    }
                }
                return FileLocator { docs };
            }
        }
        FileLocator {
            docs: yaml_documents(text, wanted),
        }
    }

    /// Where `path` is in the document `source` names (see [`SourceRef`]).
    pub(crate) fn locate(&self, source: &SourceRef<'_>, path: &str) -> Position {
        let Some(mut node) = self.docs.get(&source.document) else {
            return Position::START;
        };
        let mut at = node.at;
        let mut route: Vec<Step> = Vec::new();
        for item in &source.items {
            route.push(Step::Key("items".into()));
            route.push(Step::Index(item.saturating_sub(1)));
        }
        route.extend(steps(path));
        for step in &route {
            let next = match (step, &node.children) {
                (Step::Key(k), Children::Map(entries)) => entries
                    .iter()
                    .rev()
                    .find(|(key, _, _)| key == k)
                    .map(|(_, key_at, n)| (*key_at, n)),
                (Step::Index(i), Children::Seq(items)) => items.get(*i).map(|n| (n.at, n)),
                _ => None,
            };
            let Some((next_at, next)) = next else { break };
            at = next_at;
            node = next;
        }
        at
    }
}

impl Node {
    fn shift(&mut self, f: &impl Fn(Position) -> Position) {
        self.at = f(self.at);
        match &mut self.children {
            Children::Leaf => {}
            Children::Seq(items) => items.iter_mut().for_each(|n| n.shift(f)),
            Children::Map(entries) => {
                for (_, at, n) in entries {
                    *at = f(*at);
                    n.shift(f);
                }
            }
        }
    }
}

/// Byte ranges of the values of a JSON stream, or `None` if it is not JSON (then `check` read
/// it as YAML).
fn json_documents(text: &str) -> Option<Vec<(usize, usize)>> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    let mut ranges = Vec::new();
    let mut start = 0;
    while let Some(v) = stream.next() {
        if v.is_err() {
            // The first value unreadable: YAML flow style. A later error failed the run.
            return if ranges.is_empty() {
                None
            } else {
                Some(ranges)
            };
        }
        let end = stream.byte_offset();
        let skipped = text.get(start..end)?;
        let begin = start + (skipped.len() - skipped.trim_start().len());
        ranges.push((begin, end));
        start = end;
    }
    Some(ranges)
}

/// The documents of a YAML stream that `wanted` names. Documents whose root is a null (empty
/// documents, a trailing `---`) are not counted, as serde-saphyr does not yield them.
fn yaml_documents(text: &str, wanted: &BTreeSet<usize>) -> BTreeMap<usize, Node> {
    let mut events = Parser::new_from_str(text).map_while(Result::ok);
    let mut docs = BTreeMap::new();
    let mut index = 0;
    while let Some((event, _)) = events.next() {
        if !matches!(event, Event::DocumentStart(..)) {
            continue;
        }
        let Some(first) = next_node_event(&mut events) else {
            break;
        };
        if is_null(&first.0) {
            continue;
        }
        index += 1;
        let keep = wanted.contains(&index);
        if let Some(node) = build(first, &mut events, keep) {
            if keep {
                docs.insert(index, node);
            }
        }
        if wanted.range(index + 1..).next().is_none() {
            break;
        }
    }
    docs
}

fn is_null(e: &Event<'_>) -> bool {
    matches!(e, Event::Scalar(v, ScalarStyle::Plain, _, None)
        if matches!(v.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
}

/// The next event that starts a node (or ends a collection), skipping comments and anchors.
fn next_node_event<'a>(
    events: &mut impl Iterator<Item = (Event<'a>, Span)>,
) -> Option<(Event<'a>, Span)> {
    events.find(|(e, _)| {
        matches!(
            e,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::SequenceEnd
                | Event::MappingEnd
                | Event::Alias(..)
                | Event::DocumentEnd
                | Event::StreamEnd
        )
    })
}

/// Build the node `first` starts (its children from `events`); `None` when `first` ends a
/// collection or the stream. With `keep` false the node is walked, not kept.
fn build<'a>(
    first: (Event<'a>, Span),
    events: &mut impl Iterator<Item = (Event<'a>, Span)>,
    keep: bool,
) -> Option<Node> {
    let (event, span) = first;
    let at = Position::of(&span);
    let children = match event {
        Event::Scalar(..) | Event::Alias(..) => Children::Leaf,
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            while let Some(e) = next_node_event(events) {
                match build(e, events, keep) {
                    Some(n) if keep => items.push(n),
                    Some(_) => {}
                    None => break,
                }
            }
            Children::Seq(items)
        }
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            while let Some(key) = next_node_event(events) {
                let key_at = Position::of(&key.1);
                let name = match &key.0 {
                    Event::Scalar(v, ..) if keep => v.to_string(),
                    _ => String::new(),
                };
                // A complex key (a mapping or a sequence) is walked and never matched.
                if build(key, events, false).is_none() {
                    break;
                }
                let Some(value) = next_node_event(events).and_then(|v| build(v, events, keep))
                else {
                    break;
                };
                if keep {
                    entries.push((name, key_at, value));
                }
            }
            Children::Map(entries)
        }
        _ => return None,
    };
    Some(Node { at, children })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    /// Locate `path` in the document `source` (`x#N...`) of `text`.
    fn locate(text: &str, source: &str, path: &str) -> Position {
        let s = SourceRef::parse(source).unwrap();
        FileLocator::new(text, &BTreeSet::from([s.document])).locate(&s, path)
    }

    #[test]
    fn paths_split_into_keys_and_indices() {
        assert_eq!(
            steps(r#"spec.template.metadata.annotations["a.b/c \"q\""].x[3]"#),
            [
                Step::Key("spec".into()),
                Step::Key("template".into()),
                Step::Key("metadata".into()),
                Step::Key("annotations".into()),
                Step::Key(r#"a.b/c "q""#.into()),
                Step::Key("x".into()),
                Step::Index(3),
            ]
        );
        assert_eq!(steps("a[x].b"), [Step::Key("a".into())]);
        assert_eq!(steps(r#"a["unterminated"#), [Step::Key("a".into())]);
        assert!(steps("").is_empty());
    }

    #[test]
    fn sources_name_document_and_list_items() {
        let s = SourceRef::parse("dir/a#b.yaml#3.2.1").unwrap();
        assert_eq!(
            (s.file, s.document, s.items),
            ("dir/a#b.yaml", 3, vec![2, 1])
        );
        assert_eq!(SourceRef::parse("a.yaml"), None);
        assert_eq!(SourceRef::parse("a.yaml#x"), None);
    }

    const MULTI: &str = "\
# leading comment
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: first}
---
# only a comment
---
~
...
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    \"example.com/x\": \"1\"
spec:
  template:
    spec:
      containers:
        - name: app
          image: app:1
        - name: sidecar
          image: fluent/fluent-bit:3
      volumes:
      - name: data
        hostPath: {path: /data}
";

    #[test]
    fn fields_are_found_in_the_document_check_counts() {
        // Null documents (empty, a comment, `~`) are not counted, as serde-saphyr skips them.
        assert_eq!(locate(MULTI, "f#1", "metadata.name"), at(6, 12));
        assert_eq!(locate(MULTI, "f#2", "metadata.name"), at(16, 3));
        assert_eq!(
            locate(MULTI, "f#2", "spec.template.spec.containers[1].image"),
            at(26, 11)
        );
        assert_eq!(
            locate(MULTI, "f#2", "spec.template.spec.containers[1]"),
            at(25, 11)
        );
        assert_eq!(
            locate(MULTI, "f#2", "spec.template.spec.volumes[0]"),
            at(28, 9)
        );
        assert_eq!(
            locate(MULTI, "f#2", r#"metadata.annotations["example.com/x"]"#),
            at(18, 5)
        );
        // Not there: the nearest ancestor, then the document, then line 1.
        assert_eq!(locate(MULTI, "f#2", "metadata.labels"), at(15, 1));
        assert_eq!(
            locate(MULTI, "f#2", "spec.template.spec.containers[7].image"),
            at(22, 7)
        );
        assert_eq!(locate(MULTI, "f#2", ""), at(13, 1));
        assert_eq!(locate(MULTI, "f#3", "metadata"), at(1, 1));
    }

    #[test]
    fn document_indices_agree_with_the_reader() {
        let mut docs = Vec::new();
        super::super::parse_documents("f", MULTI, &mut docs).unwrap();
        let sources: Vec<_> = docs.iter().map(|d| d.source.as_str()).collect();
        assert_eq!(sources, ["f#1", "f#2"]);
        assert_eq!(docs[1].name(), "web");
    }

    #[test]
    fn list_items_and_merge_keys() {
        let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
- apiVersion: v1
  kind: Service
  metadata:
    name: b
  spec:
    ports:
    - &p {port: 80}
    - <<: *p
      name: web
";
        assert_eq!(locate(text, "f#1.2", "metadata.name"), at(10, 5));
        assert_eq!(locate(text, "f#1.1", "metadata.name"), at(6, 14));
        assert_eq!(locate(text, "f#1.2", "spec.ports[1].name"), at(15, 7));
        // A key that comes from a merge: the mapping holding the merge key.
        assert_eq!(locate(text, "f#1.2", "spec.ports[1].port"), at(14, 7));
    }

    #[test]
    fn json_streams_get_lines_too() {
        let text = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"a\"}}\n\n  {\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  \"metadata\": {\"name\": \"b\"}\n}\n";
        assert_eq!(locate(text, "f#1", "metadata.name"), at(1, 50));
        assert_eq!(locate(text, "f#2", "metadata.name"), at(6, 16));
        assert_eq!(locate(text, "f#2", "kind"), at(5, 3));
        // Two objects on one line: columns of the second count from the line's start.
        let one_line = r#"{"a": 1} {"b": {"c": 2}}"#;
        assert_eq!(locate(one_line, "f#2", "b.c"), at(1, 17));
        // A flow mapping that is not JSON is YAML.
        assert_eq!(locate("{a: 1, b: {c: 2}}\n", "f#1", "b.c"), at(1, 12));
    }

    #[test]
    fn unreadable_text_gives_line_one() {
        assert_eq!(locate("a: [\n", "f#1", "a"), at(1, 1));
        assert_eq!(locate("", "f#1", "a"), at(1, 1));
    }
}
