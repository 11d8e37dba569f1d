//! kubectl's bound on YAML alias expansion. kubectl decodes each document with go-yaml v2
//! (through sigs.k8s.io/yaml), which counts every node it decodes and refuses a document once
//! more than 100 of them came through aliases, more than 1,000 were decoded in all, and the
//! aliased share is above 99% (up to 400,000 decoded nodes, then falling linearly to 10% at
//! 4,000,000). The same count is made here from the parser's events, before the document is
//! read, so phi-guard accepts every document kubectl accepts and refuses the ones it refuses.
//! It also bounds memory: what aliases add is at most 99 times the nodes written out, plus
//! 1,000, per document.

use granit_parser::{Event, Parser};
use std::collections::HashMap;

/// The share of decoded nodes that may come from aliases once `decoded` nodes were decoded.
fn allowed_ratio(decoded: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    if decoded <= LOW {
        0.99
    } else if decoded >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

fn excessive(aliased: u64, decoded: u64) -> bool {
    aliased > 100 && decoded > 1000 && aliased as f64 / decoded as f64 > allowed_ratio(decoded)
}

/// Whether `text` may define an anchor: a `&` where a node can start (at a line's start, after
/// a space, a tab or a flow indicator) followed by a character an anchor name can start with.
/// A `&` inside a plain scalar (`?a=1&b=2`), before a space (`R & D`) or doubled (a shell's
/// `a && b` in a command) is not one.
fn may_define_anchor(text: &[u8]) -> bool {
    text.iter().enumerate().any(|(i, &b)| {
        b == b'&'
            && (i == 0
                || matches!(
                    text[i - 1],
                    b' ' | b'\t' | b'\n' | b'\r' | b'[' | b'{' | b','
                ))
            && text.get(i + 1).is_some_and(|&n| {
                !matches!(
                    n,
                    b' ' | b'\t' | b'\n' | b'\r' | b'[' | b']' | b'{' | b'}' | b',' | b'&'
                )
            })
    })
}

/// Where the first document kubectl would refuse for excessive aliasing tips over: the line
/// and column (from 1) of the alias or node at which go-yaml stops. `None` when every
/// document is within the bound (or the text does not parse: the reader reports that).
pub(super) fn excessive_aliasing(text: &str) -> Option<(usize, usize)> {
    // No `*`, no alias; no anchor (`&name` where a node may start), nothing an alias could
    // name (the reader refuses an alias to no anchor): the common cases cost a scan or two of
    // the text, not a second parse of it (hosts like `*.example.com` are common, anchors rare).
    if !text.contains('*') || !may_define_anchor(text.as_bytes()) {
        return None;
    }
    // Nodes each anchor decodes to (aliases inside it expanded); open collections with their
    // anchor and the nodes decoded so far.
    let mut sizes: HashMap<usize, u64> = HashMap::new();
    let mut open: Vec<(usize, u64)> = Vec::new();
    let (mut decoded, mut aliased) = (0u64, 0u64);
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            return None;
        };
        let added = match event {
            Event::DocumentStart(..) => {
                sizes.clear();
                open.clear();
                (decoded, aliased) = (0, 0);
                continue;
            }
            Event::Scalar(_, _, anchor, _) => {
                if anchor != 0 {
                    sizes.insert(anchor, 1);
                }
                1
            }
            Event::SequenceStart(_, anchor, _) | Event::MappingStart(_, anchor, _) => {
                decoded = decoded.saturating_add(1);
                open.push((anchor, 1));
                if excessive(aliased, decoded) {
                    return Some((span.start.line().max(1), span.start.col() + 1));
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((anchor, size)) = open.pop() else {
                    continue;
                };
                if anchor != 0 {
                    sizes.insert(anchor, size);
                }
                if let Some(parent) = open.last_mut() {
                    parent.1 = parent.1.saturating_add(size);
                }
                continue;
            }
            Event::Alias(anchor) => {
                // An unknown anchor is the reader's error to report.
                let target = sizes.get(&anchor).copied().unwrap_or(0);
                aliased = aliased.saturating_add(target);
                target.saturating_add(1)
            }
            _ => continue,
        };
        decoded = decoded.saturating_add(added);
        if let Some(parent) = open.last_mut() {
            parent.1 = parent.1.saturating_add(added);
        }
        // While an alias expands, the aliased share only grows and the allowed share only
        // shrinks, so checking once its expansion is counted finds what go-yaml finds.
        if excessive(aliased, decoded) {
            return Some((span.start.line().max(1), span.start.col() + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document with `aliases` aliases of a one-node anchor among `plain` plain entries.
    fn aliases_of_one_anchor(aliases: usize, plain: usize) -> String {
        let mut text =
            String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nx: &a v\nitems:\n");
        text.extend((0..aliases).map(|_| "- *a\n".to_string()));
        text.extend((0..plain).map(|i| format!("- p{i}\n")));
        text
    }

    #[test]
    fn anchors_are_told_from_ampersands_in_values() {
        for text in [
            "x: &a v",
            "- &a v",
            "&a [1]",
            "a: [&x 1, *x]",
            "a: {k: 1,&y v}",
            "a:\n  &b\n  k: v",
        ] {
            assert!(may_define_anchor(text.as_bytes()), "{text}");
        }
        for text in [
            "url: http://h/?a=1&b=2",
            "team: R & D",
            "args: [sh, -c, 'a && b']",
            "cmd: |\n  a && b",
            "hosts: ['*.example.com']",
            "x: a&b",
        ] {
            assert!(!may_define_anchor(text.as_bytes()), "{text}");
        }
        // A stream with a wildcard host and no anchor is never parsed twice, and reads as one.
        assert_eq!(
            excessive_aliasing("hosts: ['*.example.com']\nq: a&b\n"),
            None
        );
    }

    #[test]
    fn few_aliases_or_small_documents_pass_as_in_go_yaml() {
        assert_eq!(excessive_aliasing(&aliases_of_one_anchor(120, 0)), None);
        assert_eq!(excessive_aliasing(&aliases_of_one_anchor(5_000, 0)), None);
        assert_eq!(
            excessive_aliasing("a: *b\n"),
            None,
            "unknown anchor: reader's error"
        );
    }

    #[test]
    fn a_billion_laughs_is_refused_where_go_yaml_refuses_it() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let (line, _) = excessive_aliasing(&text).expect("refused");
        assert!((3..=5).contains(&line), "refused early, at line {line}");
    }

    #[test]
    fn the_ratio_falls_from_99_to_10_percent() {
        assert!(!excessive(99_000, 100_000));
        assert!(excessive(99_100, 100_000));
        assert!(!excessive(400_000, 4_000_000));
        assert!(excessive(400_001, 4_000_000));
        assert!(!excessive(100, 1_000_000), "100 aliased nodes always pass");
        assert!(!excessive(1_000, 1_000), "1,000 decoded nodes always pass");
    }
}
