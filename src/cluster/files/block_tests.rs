//! The line reader ([`super::yaml_block`]) against the event reader ([`super::yaml_fast`]):
//! wherever it answers, the same tree; and it answers for what manifests are made of.

use std::path::Path;

use super::tests::against_the_stream_reader::files;

use super::yaml_block::read;
use super::yaml_fast::{build, split, Built};

/// Compare the readers on every document of `text`: (documents, read by the line reader).
fn compare(text: &str, what: &str) -> (usize, usize) {
    let Some(chunks) = split(text) else {
        return (0, 0);
    };
    let mut taken = 0;
    for c in &chunks {
        if let Some(fast) = read(c.text) {
            taken += 1;
            let events = build(c.text);
            // Where the event reader hands a document to serde-saphyr, the line reader must
            // have agreed with serde-saphyr's tree; compare with it then.
            let expected = match events {
                Built::Unusual => {
                    match serde_saphyr::from_str::<serde_json::Value>(c.text) {
                        Ok(serde_json::Value::Null) => Built::Null,
                        Ok(v) => Built::Value(v),
                        Err(e) => panic!("{what} line {}: the line reader read a document serde-saphyr refuses ({e})", c.first_line),
                    }
                }
                other => other,
            };
            assert_eq!(fast, expected, "{what} line {}:\n{}", c.first_line, c.text);
        }
    }
    (chunks.len(), taken)
}

#[test]
fn every_yaml_file_of_the_repository_reads_the_same_and_mostly_by_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for dir in ["tests/fixtures", "examples", "charts", "crds", "docs"] {
        files(&root.join(dir), &mut paths);
    }
    // More trees to compare over by hand (e.g. fetched third-party repositories).
    if let Some(extra) = std::env::var_os("PHI_GUARD_YAML_CORPUS") {
        files(Path::new(&extra), &mut paths);
    }
    let (mut documents, mut taken) = (0, 0);
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let (d, t) = compare(&text, &p.display().to_string());
        documents += d;
        taken += t;
    }
    println!("{taken} of {documents} documents read by lines");
    assert!(documents > 150, "read only {documents} documents");
    // The point of the reader: most manifests never reach the event parser.
    assert!(
        taken * 10 >= documents * 8,
        "{taken} of {documents} read by lines"
    );
}

/// Each case either reads as the event reader reads it or is left to it.
#[test]
fn edge_cases_agree_or_are_left_to_the_event_reader() {
    let cases = [
        // Block scalars: chomping, blank lines, more-indented lines, the end of the text.
        "a: |\n  x\n  y\nb: 1\n",
        "a: |-\n  x\n\n  y\n\n\nb: 1\n",
        "a: |+\n  x\n\n\nb: 1\n",
        "a: |+\n  x\n\n",
        "a: |\n  x\n    indented\n  z",
        "a: |\n\n  after a blank\n",
        "a: |\n  x\n      \n  y\n",
        "a: >\n  folded\n  text\n\n  para\nb: 2\n",
        "a: >-\n  one\n  two\n",
        "a: >\n  x\n    more\n  y\n",
        "a: >\n\n  lead\n",
        "a: |2\n   x\n",
        "a: | # comment\n  x\n",
        "a: |\n x\n",
        "a: |\n  x\n# less indented comment\nb: 1\n",
        "a: |\n  x\n  # hash as content\n",
        "- |\n  x\n- y\n",
        "- a: |\n    x\n  b: 1\n",
        // Scalars.
        "a: 'it''s'\nb: \"q # not comment\" # c\nc: plain # c\nd: x#y\n",
        "a: \"esc\\n\"\n",
        "a: \"open\n  more\"\n",
        "a: b: c\n",
        "a: http://x:80/p\n",
        "a: x:\n",
        "a: - b\n",
        "a: -b\nc: ?d\ne: :f\n",
        "a: ~\nb: null\nc: yes\nd: 0644\ne: 1.5\nf: 1e3\ng: .5\nh: 12:30\ni: -1\nj: 0x1F\n",
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: [1, 2]\nb: {c: d}\n",
        "a: []\nb: {} # c\nc: []x\n",
        "a: multi\n  line\n",
        "a:\n  multi\n  line\n",
        // Collections.
        "a:\n- 1\n- 2\nb:\n  - c: 1\n    d: 2\n  - e\n",
        "- - a\n",
        "-\n  a: 1\n- \n- # c\n  b: 2\n",
        "a:\nb:\n",
        "a:\n  b:\n    c:\n",
        "a: 1\na: 2\n",
        "'a': 1\n",
        "a b: 1\n",
        "8080: x\n",
        "<<: {a: 1}\n",
        "? a\n: b\n",
        "a: 1\n  b: 2\n",
        "  a: 1\n  b: 2\n",
        "a: 1\n - b\n",
        "- a\n  - b\n",
        "just a scalar\n",
        "---\na: 1\n...\n",
        "--- # c\na: 1\n",
        "--- a\n",
        "# only a comment\n",
        "",
        "a:\tb\n",
        "a: é\n",
        "a: 1\r\n",
        "a:\n  - x\n  -\n  - y\n",
        // Escapes and quoted keys.
        "a: \"x\\ny\\t\\\"q\\\" \\\\ \\/ \\x41 \\u00e9 \\U0001F600 \\N \\_ \\L \\P \\0 \\e \\ \"\n",
        "a: \"\\ud800\"\n",
        "a: \"\\q\"\n",
        "a: \"x\\\n  y\"\n",
        "a: \"x\" y\n",
        "\"helm.sh/hook\": pre-install\n'b c': 1\n\"\": 2\n\"d\":\n  e: 1\n",
        "\"k\":x\n",
        "\"k\\\"q\": 1\n",
        "- \"k\": 1\n  'j': [\"a\\n\", 'b''c']\n",
        // Double-quoted scalars over lines, as emitters fold long strings.
        "a: \"x\\\n    \\ y\\n z\"\n",
        "a: \"one\n  two\n\n  three  \n  four\"\nb: 1\n",
        "a: \"x\n y\" # c\nb: 1\n",
        "a: \"x\ny\"\n",
        "- \"a\n  b\"\n- c\n",
        "a: \"x   \n  y\"\n",
        "a: \"x\\  \n  y\"\n",
        "a: \"x\\ \n  y\"\n",
        "a: \"x\n  \n\n  y\"\n",
        "a: \"x\\\n\n  y\"\n",
        "a: \"x\n  y\" z\n",
        "a: \"x\n  y\"\n  b: 1\n",
        "k:\n  init.sh: \"#!/bin/sh\\necho \\\"Start\\\"\\nif [ -d /x ]; then\\n  echo\\\n    \\ \\\"found\\\"\\nfi\\n\"\n",
        // Flow collections on one line.
        "a: [ReadWriteOnce]\nb: {app: api, tier: 'web'}\nc: [\"x\", 1, 0.5, true, ~]\n",
        "a: {b: {c: [d, {e: f}]}}\n",
        "a: [a, , b]\n",
        "a: [a, b,]\n",
        "a: [a b, c]\n",
        "a: {b}\n",
        "a: {b: }\n",
        "a: {\"b\": 1}\n",
        "a: [http://x:80, a:b]\n",
        "a: [x # c\n  ]\n",
        "a: [1, 2] # c\n",
        "a: [1, 2]x\n",
        "a: {b: 1, b: 2}\n",
        "a: [-1, -x, .5, 0644]\n",
        "- [a, b]\n- {c: d}\n",
        "a: ['it''s', \"q\"]\n",
        "a: [\"esc\\n\"]\n",
        "a: [&x 1]\n",
        "a: [a: b]\n",
        "a: x # c\n  # indented comment\nb: 2\n",
    ];
    for text in cases {
        compare(text, text);
    }
    // Cases the reader must take (not merely leave alone).
    for text in [
        "a: |\n  x\n  y\nb: 1\n",
        "a: |+\n  x\n\n",
        "a: >\n  folded\n  text\n\n  para\nb: 2\n",
        "a:\n- 1\n- 2\nb:\n  - c: 1\n    d: 2\n  - e\n",
        "a: 'it''s'\nb: \"q # not comment\" # c\nc: plain # c\nd: x#y\n",
        "---\na: 1\n...\n",
        "a: [ReadWriteOnce]\nb: {app: api, tier: 'web'}\nc: [\"x\", 1, 0.5, true, ~]\n",
        "a: {b: {c: [d, {e: f}]}}\n",
        "\"helm.sh/hook\": pre-install\n'b c': 1\n\"\": 2\n\"d\":\n  e: 1\n",
        "a: \"x\\ny\\t\\\"q\\\" \\\\ \\/ \\x41 \\u00e9\"\n",
    ] {
        assert!(read(text).is_some(), "left to the event reader: {text:?}");
    }
}

/// Documents of the repository with a line mutated (indentation moved, a character that means
/// something to YAML inserted or removed, lines joined or split): wherever the line reader
/// answers, it answers as the event reader. Seeded, so a failure reproduces.
#[test]
fn mutated_documents_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for dir in ["tests/fixtures", "examples"] {
        files(&root.join(dir), &mut paths);
    }
    if let Some(extra) = std::env::var_os("PHI_GUARD_YAML_CORPUS") {
        files(Path::new(&extra), &mut paths);
    }
    paths.sort();
    // More rounds by hand: PHI_GUARD_MUTATIONS=500.
    let rounds: usize = std::env::var("PHI_GUARD_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % (n.max(1) as u64)).unwrap_or(0)
    };
    const BYTES: &[u8] = b" -:#'\"|>[]{},&*!?\\\n";
    let (mut tried, mut taken) = (0, 0);
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let Some(chunks) = split(&text) else { continue };
        for c in chunks {
            if c.text.len() > 20_000 || !c.text.is_ascii() {
                continue;
            }
            for _ in 0..rounds {
                let mut bytes = c.text.as_bytes().to_vec();
                for _ in 0..1 + next(3) {
                    let at = next(bytes.len());
                    match next(4) {
                        0 => bytes.insert(at, BYTES[next(BYTES.len())]),
                        1 if !bytes.is_empty() => {
                            bytes.remove(at.min(bytes.len() - 1));
                        }
                        2 => {
                            bytes.splice(at..at, *b"  ");
                        }
                        _ => {
                            let with = BYTES[next(BYTES.len())];
                            if let Some(b) = bytes.get_mut(at) {
                                *b = with;
                            }
                        }
                    }
                }
                let Ok(mutated) = String::from_utf8(bytes) else {
                    continue;
                };
                tried += 1;
                let Some(fast) = read(&mutated) else { continue };
                taken += 1;
                let expected = match build(&mutated) {
                    Built::Unusual => match serde_saphyr::from_str::<serde_json::Value>(&mutated) {
                        Ok(serde_json::Value::Null) => Built::Null,
                        Ok(v) => Built::Value(v),
                        Err(e) => panic!("read a document serde-saphyr refuses ({e}):\n{mutated}"),
                    },
                    other => other,
                };
                assert_eq!(fast, expected, "{}:\n{mutated}", p.display());
            }
        }
    }
    println!("{taken} of {tried} mutated documents read by lines");
    assert!(tried > 1_000 && taken > tried / 4, "{taken} of {tried}");
}
