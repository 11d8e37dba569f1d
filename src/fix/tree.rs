//! The shape of a YAML document with byte ranges, for editing its text in place: keys, items,
//! where each node starts and ends, its column and whether it is written in flow style. Built
//! with the event parser `check -o sarif` locates findings with (`granit-parser`), from the same
//! document count (null documents are not counted, as serde-saphyr skips them). Scalar values
//! are not kept except keys.

use granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

/// A node: a byte range of the text and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Byte offset where the node starts.
    pub start: usize,
    /// Byte offset just past its last character (its last descendant's end for collections).
    pub end: usize,
    /// Written in flow style (`{...}`, `[...]`).
    pub flow: bool,
    pub children: Children,
}

#[derive(Debug, Clone)]
pub(crate) enum Children {
    /// A scalar (or an alias); `null` says it is a plain null (`key:` with nothing, `~`).
    Leaf {
        null: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry: its key (text, start, column) and its value.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_start: usize,
    pub key_col: usize,
    pub value: Node,
}

impl Node {
    /// The entry `key` of a mapping (the last one, as a YAML reader keeps).
    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.children {
            Children::Map(entries) => entries.iter().rev().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The value of `key` in a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// Item `i` of a sequence.
    pub(crate) fn item(&self, i: usize) -> Option<&Node> {
        match &self.children {
            Children::Seq(items) => items.get(i),
            _ => None,
        }
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        match &self.children {
            Children::Map(entries) => entries,
            _ => &[],
        }
    }

    pub(crate) fn items(&self) -> &[Node] {
        match &self.children {
            Children::Seq(items) => items,
            _ => &[],
        }
    }

    pub(crate) fn is_map(&self) -> bool {
        matches!(self.children, Children::Map(_))
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.children, Children::Leaf { null: true })
    }
}

/// The root nodes of the YAML documents of `text`, by their index from 1 as `check` counts
/// them. A text the parser cannot read gives the documents read before the error.
pub(crate) fn documents(text: &str) -> Vec<(usize, Node)> {
    let offsets = Offsets::new(text);
    let mut events = Parser::new_from_str(text)
        .map_while(Result::ok)
        // Only the events that make the shape (comments and anchors are presentation).
        .filter(|(e, _)| {
            matches!(
                e,
                Event::Scalar(..)
                    | Event::Alias(..)
                    | Event::SequenceStart(..)
                    | Event::SequenceEnd
                    | Event::MappingStart(..)
                    | Event::MappingEnd
                    | Event::DocumentStart(..)
                    | Event::DocumentEnd
                    | Event::StreamEnd
            )
        });
    let mut docs = Vec::new();
    let mut index = 0;
    while let Some((event, _)) = events.next() {
        if !matches!(event, Event::DocumentStart(..)) {
            continue;
        }
        let Some(first) = events.next() else { break };
        if matches!(first.0, Event::DocumentEnd | Event::StreamEnd) || is_null(&first.0) {
            continue;
        }
        index += 1;
        match build(first, &mut events, &offsets) {
            Some(node) => docs.push((index, node)),
            None => break,
        }
    }
    docs
}

fn is_null(e: &Event<'_>) -> bool {
    matches!(e, Event::Scalar(v, ScalarStyle::Plain, _, None)
        if matches!(v.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
}

/// Byte offsets of spans (the parser gives them for string input; character indices are
/// converted otherwise).
struct Offsets<'a> {
    text: &'a str,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        Offsets { text }
    }

    fn start(&self, span: &Span) -> usize {
        span.start
            .byte_offset()
            .unwrap_or_else(|| self.chars_to_bytes(span.start.index()))
    }

    fn end(&self, span: &Span) -> usize {
        span.end
            .byte_offset()
            .unwrap_or_else(|| self.chars_to_bytes(span.end.index()))
    }

    fn chars_to_bytes(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(b, _)| b)
    }
}

fn build<'a>(
    first: (Event<'a>, Span),
    events: &mut impl Iterator<Item = (Event<'a>, Span)>,
    offsets: &Offsets<'_>,
) -> Option<Node> {
    let (event, span) = first;
    let start = offsets.start(&span);
    let mut node = Node {
        start,
        end: offsets.end(&span).max(start),
        flow: false,
        children: Children::Leaf { null: false },
    };
    match event {
        Event::Scalar(..) => {
            node.children = Children::Leaf {
                null: is_null(&event),
            };
            // A block scalar's span runs to the next token: end at its last character.
            let trimmed = offsets
                .text
                .get(node.start..node.end)
                .map_or(0, |t| t.trim_end().len());
            node.end = node.start + trimmed;
        }
        Event::Alias(..) => {}
        Event::SequenceStart(style, ..) => {
            node.flow = style == StructureStyle::Flow;
            let mut items = Vec::new();
            loop {
                let (e, s) = events.next()?;
                if matches!(e, Event::SequenceEnd) {
                    node.end = close(&node, &items_end(&items), offsets.end(&s));
                    break;
                }
                items.push(build((e, s), events, offsets)?);
            }
            node.children = Children::Seq(items);
        }
        Event::MappingStart(style, ..) => {
            node.flow = style == StructureStyle::Flow;
            let mut entries: Vec<Entry> = Vec::new();
            loop {
                let (e, s) = events.next()?;
                if matches!(e, Event::MappingEnd) {
                    let last = entries.last().map(|x| x.value.end);
                    node.end = close(&node, &last, offsets.end(&s));
                    break;
                }
                let key = match &e {
                    Event::Scalar(v, ..) => v.to_string(),
                    _ => String::new(),
                };
                let key_start = offsets.start(&s);
                let key_col = s.start.col();
                // A complex key (a mapping or a sequence) is walked and never matched.
                build((e, s), events, offsets)?;
                let value = build(events.next()?, events, offsets)?;
                entries.push(Entry {
                    key,
                    key_start,
                    key_col,
                    value,
                });
            }
            node.children = Children::Map(entries);
        }
        _ => return None,
    }
    Some(node)
}

fn items_end(items: &[Node]) -> Option<usize> {
    items.last().map(|n| n.end)
}

/// Where a collection ends: for flow style its closing bracket, for block style its last
/// descendant (a block collection's end event sits at the next token).
fn close(node: &Node, last: &Option<usize>, end_event: usize) -> usize {
    if node.flow {
        end_event.max(node.start)
    } else {
        last.unwrap_or(node.end).max(node.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_keys_and_values() {
        let text =
            "# c\n---\na: 1 # one\nb:\n  c: [x, y]\n  d:\n  - e: f\n---\n~\n---\ng: {h: i}\n";
        let docs = documents(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].0, 2);
        let root = &docs[0].1;
        let b = root.get("b").unwrap();
        assert!(b.is_map());
        let c = b.get("c").unwrap();
        assert!(c.flow);
        assert_eq!(&text[c.start..c.end], "[x, y]");
        let d = b.get("d").unwrap();
        // A block sequence starts at its first item's content, after the dash.
        assert_eq!(&text[d.start..d.end], "e: f");
        let e = d.item(0).unwrap();
        assert_eq!(&text[e.start..e.end], "e: f");
        assert_eq!(b.entry("d").unwrap().key_col, 2);
        assert_eq!(
            &text[root.start..root.end],
            "a: 1 # one\nb:\n  c: [x, y]\n  d:\n  - e: f"
        );
        let g = docs[1].1.get("g").unwrap();
        assert_eq!(&text[g.start..g.end], "{h: i}");
    }

    #[test]
    fn null_values_and_unreadable_text() {
        let docs = documents("a:\nb: ~\n");
        assert!(docs[0].1.get("a").unwrap().is_null());
        assert!(docs[0].1.get("b").unwrap().is_null());
        assert!(documents("a: [\n").is_empty());
    }
}
