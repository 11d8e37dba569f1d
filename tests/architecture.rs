// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! The shape ARCHITECTURE.md promises, checked from the source: no two top-level modules import
//! each other (no cycles at all), no two files of one folder import each other (no cycles
//! inside a folder either), the result types are a leaf, the pure core (engine, rules, policy,
//! object, view, verdict) reaches for no I/O, no source file grows past the size a reader
//! takes in (production lines), no code reads a finding's prose with `contains`, and no test
//! matches the wording pinned in `tests/golden/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module of a file under src/ (`src/rules/x.rs` -> `rules`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let module = module_of(&src, &f);
        if matches!(module.as_str(), "lib" | "main" | "fixtures") || f.ends_with("tests.rs") {
            continue;
        }
        let code = production_code(&std::fs::read_to_string(&f).unwrap());
        let entry = deps.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                entry.insert(name);
            }
        }
    }
    deps
}

#[test]
fn no_module_cycles() {
    let deps = graph();
    // Depth-first search for a cycle, reporting its path.
    fn visit(
        n: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in deps.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, deps, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in deps.keys() {
        if let Some(cycle) = visit(n, &deps, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}\n{deps:#?}", cycle.join(" -> "));
        }
    }
    // The graph is not trivially empty: the engine really uses the rules and the policy.
    assert!(deps["engine"].contains("rules") && deps["engine"].contains("policy"));
}

#[test]
fn result_types_are_a_leaf_and_the_core_is_pure() {
    let deps = graph();
    assert!(
        deps["verdict"].is_empty(),
        "verdict imports {:?}",
        deps["verdict"]
    );
    for core in [
        "engine", "rules", "policy", "object", "view", "verdict", "report",
    ] {
        for edge in ["cluster", "webhook", "cli", "certs", "telemetry"] {
            assert!(
                !deps[core].contains(edge),
                "the pure core module `{core}` imports `{edge}`"
            );
        }
    }
    // The pure core makes no network or runtime calls.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in files {
        let module = module_of(&src, &f);
        if ![
            "engine", "rules", "policy", "object", "view", "verdict", "report",
        ]
        .contains(&module.as_str())
        {
            continue;
        }
        let code = production_code(&std::fs::read_to_string(&f).unwrap());
        for io in [
            "tokio::",
            "kube::Client",
            "kube::Api",
            "reqwest",
            "std::fs",
            "std::net",
        ] {
            assert!(!code.contains(io), "{} uses {io}", f.display());
        }
    }
}

/// No file holds more production code than a reader takes in: 600 lines of [`production_code`]
/// (code outside `#[cfg(test)]` items, wherever they sit, without comments or blank lines).
/// Test-only files are not counted. A file split only to pass this would show as two files
/// importing each other, which `no_cycle_between_the_files_of_a_folder` refuses.
#[test]
fn no_source_file_is_too_long_to_read() {
    let long: Vec<String> = production_files()
        .iter()
        .map(|f| (f, f.code.lines().filter(|l| !l.trim().is_empty()).count()))
        .filter(|(_, lines)| *lines > 600)
        .map(|(f, lines)| format!("{}: {lines}", f.display))
        .collect();
    assert!(
        long.is_empty(),
        "files above 600 production lines: {long:?}"
    );
}

/// A finding is told apart by its reason code (with its path and subject), never by its
/// wording: the wording of each message is pinned once, in `tests/golden/reasons.txt`, so a
/// rewording changes that file and nothing else. No `.rs` file under `src/`, tests included,
/// reads `message` or `remediation` with `.contains(` (also split over lines). What a message
/// names goes through `fixtures::assert_names` / `names`, values that must never be echoed
/// through `fixtures::assert_no_value` / `leaks`.
#[test]
fn no_code_reads_finding_prose_with_contains() {
    let mut found = Vec::new();
    for (rel, text) in src_texts() {
        let code = code_only(&text);
        for (at, field) in prose_contains(&code) {
            let line = code[..at].matches('\n').count() + 1;
            found.push(format!("src/{rel}:{line}: {field}.contains("));
        }
    }
    assert!(
        found.is_empty(),
        "findings are told apart by reason, not wording: assert on `reason` (and `path`, \
         `subject`); check what a message names with fixtures::assert_names (or names), and \
         values that must never be echoed with fixtures::assert_no_value (or leaks); the \
         wording itself is pinned once, in tests/golden/reasons.txt. Found:\n{}",
        found.join("\n")
    );
}

/// Every `.rs` file under `src/` (tests included), sorted: its path below `src/` and its text.
fn src_texts() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&f).unwrap())
        })
        .collect()
}

/// Where `message` or `remediation` (a whole identifier) is followed by `.contains(`, with any
/// whitespace, line breaks included, between the parts: (byte offset, which of the two).
fn prose_contains(code: &str) -> Vec<(usize, &'static str)> {
    let mut out = Vec::new();
    for field in ["message", "remediation"] {
        for (at, _) in code.match_indices(field) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(is_ident) {
                continue;
            }
            let rest = code[at + field.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('.') else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix("contains") else {
                continue;
            };
            if rest.trim_start().starts_with('(') {
                out.push((at, field));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn prose_contains_sees_split_lines_and_only_whole_fields() {
    let code = "f[0]\n    .message\n    .contains(x); f.remediation.contains(y);\n\
                f.message_id.contains(z); my_message.contains(w); f.message.starts_with(v);";
    let hits: Vec<&str> = prose_contains(code).into_iter().map(|(_, f)| f).collect();
    assert_eq!(hits, ["message", "remediation"]);
}

/// No test outside the golden-text tests matches phi-guard's wording: a string literal passed
/// to `contains(`, `starts_with(` or `ends_with(` (also as a `format!` template, piece by piece
/// between its placeholders) that reads as prose (a space and at least two lower-case words)
/// and occurs in a message, fix or CLI line pinned in `tests/golden/` is refused. A finding is
/// told by its `[rule/reason]` and path (`support::shown_findings`); a note phi-guard adds comes
/// from the product (`phi_guard::verdict::notes`), never from a copy of its wording.
#[test]
fn no_test_matches_pinned_wording() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wording = pinned_wording(root);
    // The golden tests themselves, and this file (its own examples).
    let exempt = ["golden.rs", "architecture.rs"];
    let tests = root.join("tests");
    let mut files = Vec::new();
    rust_files(&tests, &mut files);
    files.sort();
    let mut found = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&tests).unwrap().display().to_string();
        if exempt.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (line, piece) in prose_matched(&text) {
            if wording.iter().any(|w| w.contains(&piece)) {
                found.push(format!("tests/{rel}:{line}: {piece:?}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "tests match phi-guard's wording, which is pinned once in tests/golden/: assert on \
         [rule/reason] and path (support::shown_findings, shown_reasons, shown_rules), and take \
         a note's wording from phi_guard::verdict::notes (or the constant the product uses). \
         Found:\n{}",
        found.join("\n")
    );
}

/// The wording the golden tables pin: the text column of each `key<TAB>text` line.
fn pinned_wording(root: &Path) -> Vec<String> {
    ["tests/golden/reasons.txt", "tests/golden/cli-messages.txt"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(root.join(f))
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once('\t').map(|(_, t)| t.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The prose pieces of string literals matched with `contains(`, `starts_with(` or
/// `ends_with(` in `code`: (line, piece). A `format!` template is cut at its placeholders; a
/// piece is prose if it has a space and two words of lower-case letters.
fn prose_matched(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for call in ["contains(", "starts_with(", "ends_with("] {
        for (at, _) in code.match_indices(call) {
            if code[..at].chars().next_back().is_some_and(is_ident) {
                continue;
            }
            let mut rest = code[at + call.len()..].trim_start();
            rest = rest.strip_prefix('&').unwrap_or(rest).trim_start();
            if let Some(r) = rest.strip_prefix("format!(") {
                rest = r.trim_start();
            }
            let Some(lit) = rest.strip_prefix('"').and_then(string_body) else {
                continue;
            };
            let line = code[..at].matches('\n').count() + 1;
            for piece in template_pieces(&lit) {
                let words = piece
                    .split_whitespace()
                    .map(|w| w.trim_matches(|c: char| c.is_ascii_punctuation()))
                    .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_lowercase()))
                    .count();
                if piece.contains(' ') && words >= 2 {
                    out.push((line, piece));
                }
            }
        }
    }
    out.sort();
    out
}

/// The text of a string literal whose opening quote was just read, escapes resolved (`\"`,
/// `\\`, `\n`, `\t`; a line continuation drops the break and the indentation).
fn string_body(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '\n' => {
                    let rest = chars.as_str().trim_start();
                    chars = rest.chars();
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// A `format!` template cut at its placeholders (`{x}`, `{:?}`); `{{` and `}}` are braces.
fn template_pieces(lit: &str) -> Vec<String> {
    let lit = lit.replace("{{", "\u{1}").replace("}}", "\u{2}");
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut in_placeholder = false;
    for c in lit.chars() {
        match c {
            '{' => {
                in_placeholder = true;
                pieces.push(std::mem::take(&mut cur));
            }
            '}' if in_placeholder => in_placeholder = false,
            _ if in_placeholder => {}
            '\u{1}' => cur.push('{'),
            '\u{2}' => cur.push('}'),
            c => cur.push(c),
        }
    }
    pieces.push(cur);
    pieces.retain(|p| !p.is_empty());
    pieces
}

#[test]
fn prose_matched_sees_literals_and_format_templates_only() {
    let code = "a.contains(\"no isolating policy\"); b.starts_with(&format!(\"{x} is not proven {y}\"));\n\
                c.ends_with(\"[rule/reason]\"); d.contains(x); e.my_contains(\"x y z\");\n\
                f.contains(\"ConfigMap kube-system/cilium-config\"); g.contains(\"two \\\"quoted\\\" words\");";
    let hits: Vec<(usize, String)> = prose_matched(code);
    assert_eq!(
        hits,
        [
            (1, " is not proven ".to_string()),
            (1, "no isolating policy".to_string()),
            (3, "two \"quoted\" words".to_string()),
        ]
    );
}

/// `make help` names every target a developer can run.
#[test]
fn make_help_lists_every_target() {
    let makefile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Makefile"))
        .expect("Makefile");
    let help: String = makefile
        .split("\nhelp:\n")
        .nth(1)
        .expect("a help target")
        .lines()
        .take_while(|l| l.starts_with('\t'))
        .collect::<Vec<_>>()
        .join("\n");
    for line in makefile.lines() {
        let Some((target, _)) = line.split_once(':') else {
            continue;
        };
        let plain = !target.is_empty()
            && target.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && !line.starts_with('\t')
            && !line.contains(":=");
        if plain && target != "help" {
            assert!(
                help.contains(&format!("make {target} ")),
                "make help does not list {target}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// File-level layering: inside every folder, the files import each other without cycles.
//
// A module is named by its path from the crate root (`src/cluster/watch/policies.rs` ->
// `cluster::watch::policies`; `src/cluster/mod.rs` -> `cluster`). Inside a folder, a node is
// one of its children (a file, or a sub-folder taken whole) or the folder's own `mod.rs`. A
// reference is any path the code names: `crate::a::b::x`, `super::x`, `self::x`, or a child
// module's name (`use child::X` in the parent). A name reached through a `use` (a re-export,
// `pub` or private, explicit or glob) is followed to the file that defines it, so a parent's
// re-export cannot hide an edge between two of its children.

/// The text with comments removed and the contents of string and char literals blanked
/// (newlines kept), so that braces and paths are only the code's.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            while i < b.len() {
                if text[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if text[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(rest) {
            // r#"..."#: ends at the quote followed by as many hashes.
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + rest.find('"').unwrap() + 1;
            let end = text[body..]
                .find(&close)
                .map_or(b.len(), |e| body + e + close.len());
            out.push_str("\"\"");
            out.extend(text[body..end].chars().filter(|c| *c == '\n'));
            i = end;
        } else if b[i] == b'"' || (rest.starts_with("b\"") && !prev_is_ident(b, i)) {
            i += if b[i] == b'b' { 2 } else { 1 };
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let lit = if rest[1..].starts_with('\\') {
                rest[2..].find('\'').map(|e| e + 3)
            } else {
                let mut cs = rest[1..].char_indices();
                match (cs.next(), cs.next()) {
                    (Some(_), Some((n, '\''))) => Some(n + 2),
                    _ => None,
                }
            };
            match lit {
                Some(len) => {
                    out.push_str("' '");
                    i += len;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn prev_is_ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// `r"`, `r#"`, `br##"` ...: the number of hashes.
fn raw_string_start(rest: &str) -> Option<usize> {
    let r = rest.strip_prefix('b').unwrap_or(rest).strip_prefix('r')?;
    let hashes = r.chars().take_while(|c| *c == '#').count();
    r[hashes..].starts_with('"').then_some(hashes)
}

/// `code` (from [`code_only`]) without the items under `#[cfg(test)]` (a test module, a test
/// helper, a `mod tests;` declaration): from the attribute to the end of the item (its closing
/// brace, or its `;` when it has no body).
fn without_test_items(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        let body = item.find(['{', ';']).unwrap_or(item.len());
        let end = if item[body..].starts_with('{') {
            let mut depth = 0;
            let mut end = item.len();
            for (j, c) in item[body..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = body + j + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            end
        } else {
            (body + 1).min(item.len())
        };
        // Keep the line count of what is left honest: the removed item's newlines are dropped.
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The production code of a file: no comments, no string contents, no `#[cfg(test)]` items.
fn production_code(text: &str) -> String {
    without_test_items(&code_only(text))
}

/// The lines the 600-line check counts: non-blank lines of [`production_code`] (code a reader
/// of the production path must read; comments, blank lines and tests are not counted).
fn production_lines(text: &str) -> usize {
    production_code(text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

type ModPath = Vec<String>;

/// A production source file: its module path and its production code.
struct SourceFile {
    module: ModPath,
    code: String,
    display: String,
}

/// Every production file of the library (not `main.rs`, not the test-only modules: the files a
/// `#[cfg(test)] mod x;` declares, and `fixtures`).
fn production_files() -> Vec<SourceFile> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut files = Vec::new();
    let mut test_only: BTreeSet<ModPath> = BTreeSet::new();
    for p in &paths {
        let rel = p.strip_prefix(&src).unwrap();
        let mut module: ModPath = rel
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
            module.pop();
        }
        if module == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(p).unwrap();
        // `#[cfg(test)] mod x;` (with `pub(crate)` or not): module `x` is test-only.
        let code = code_only(&text);
        let mut rest = code.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            let item = rest[at + "#[cfg(test)]".len()..].trim_start();
            let item = item.strip_prefix("pub(crate) ").unwrap_or(item);
            if let Some(decl) = item.strip_prefix("mod ") {
                let name: String = decl.chars().take_while(|c| is_ident(*c)).collect();
                if decl[name.len()..].trim_start().starts_with(';') {
                    let mut child = module.clone();
                    child.push(name);
                    test_only.insert(child);
                }
            }
            rest = &rest[at + 1..];
        }
        files.push(SourceFile {
            module,
            code: without_test_items(&code),
            display: rel.display().to_string(),
        });
    }
    files.retain(|f| !test_only.iter().any(|t| f.module.starts_with(t)));
    assert!(files.len() > 20, "found the sources");
    files
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path the code names that starts with `crate`, `super`, `self` or one of `children`,
/// `use` groups expanded (`use crate::a::{b, c::d}` -> `crate::a::b`, `crate::a::c::d`).
/// A `use ... as alias` keeps its alias as the last segment's name in `aliases`.
fn paths_in(code: &str, children: &BTreeSet<String>) -> Vec<(Vec<String>, Option<String>)> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == ':');
        if starts && is_ident(chars[i]) {
            let word: String = chars[i..].iter().take_while(|c| is_ident(**c)).collect();
            let after = i + word.len();
            let rooted =
                matches!(word.as_str(), "crate" | "super" | "self") || children.contains(&word);
            if rooted && chars.get(after..after + 2) == Some(&[':', ':'][..]) {
                let mut j = after;
                read_tree(&chars, &mut j, vec![word.clone()], &mut out);
                i = j;
                continue;
            }
            i = after;
        } else {
            i += 1;
        }
    }
    out
}

/// Reads `::seg::seg` then an optional `{ tree, tree }` or `as alias`, at `chars[*j..]`.
fn read_tree(
    chars: &[char],
    j: &mut usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let skip_ws = |j: &mut usize| {
        while *j < chars.len() && chars[*j].is_whitespace() {
            *j += 1;
        }
    };
    loop {
        skip_ws(j);
        if chars.get(*j..*j + 2) != Some(&[':', ':'][..]) {
            break;
        }
        *j += 2;
        skip_ws(j);
        if chars.get(*j) == Some(&'{') {
            *j += 1;
            loop {
                skip_ws(j);
                match chars.get(*j) {
                    Some('}') => {
                        *j += 1;
                        return;
                    }
                    Some(',') => *j += 1,
                    Some(c) if is_ident(*c) || *c == '*' => {
                        let seg = read_segment(chars, j);
                        let mut inner = prefix.clone();
                        inner.push(seg);
                        read_tree(chars, j, inner, out);
                    }
                    _ => return,
                }
            }
        }
        if chars.get(*j).is_some_and(|c| is_ident(*c) || *c == '*') {
            prefix.push(read_segment(chars, j));
        } else {
            break;
        }
    }
    skip_ws(j);
    let alias = if chars.get(*j..*j + 3) == Some(&['a', 's', ' '][..]) {
        *j += 3;
        skip_ws(j);
        Some(read_segment(chars, j))
    } else {
        None
    };
    if prefix.len() > 1 {
        out.push((prefix, alias));
    }
}

fn read_segment(chars: &[char], j: &mut usize) -> String {
    if chars.get(*j) == Some(&'*') {
        *j += 1;
        return "*".to_string();
    }
    let seg: String = chars[*j..].iter().take_while(|c| is_ident(**c)).collect();
    *j += seg.len();
    seg
}

/// A path as named in `module` made absolute (from the crate root).
fn absolute(module: &[String], path: &[String]) -> ModPath {
    let mut base: ModPath = module.to_vec();
    let mut segs = path.iter().peekable();
    match segs.peek().map(|s| s.as_str()) {
        Some("crate") => {
            base.clear();
            segs.next();
        }
        Some("self") => {
            segs.next();
        }
        Some("super") => {
            while segs.peek().map(|s| s.as_str()) == Some("super") {
                base.pop();
                segs.next();
            }
        }
        _ => {}
    }
    base.extend(segs.cloned());
    base
}

/// What a module's files know: the modules that are files, the names each file imports (name ->
/// absolute path), its glob imports, and the names it defines.
struct Crate {
    modules: BTreeSet<ModPath>,
    imports: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
    globs: BTreeMap<ModPath, Vec<ModPath>>,
    defines: BTreeMap<ModPath, BTreeSet<String>>,
}

const ITEM_KEYWORDS: [&str; 9] = [
    "fn ",
    "struct ",
    "enum ",
    "const ",
    "static ",
    "type ",
    "trait ",
    "mod ",
    "macro_rules! ",
];

fn definitions(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for kw in ITEM_KEYWORDS {
        for (i, _) in code.match_indices(kw) {
            if i > 0 && is_ident(code[..i].chars().next_back().unwrap()) {
                continue;
            }
            let name: String = code[i + kw.len()..]
                .trim_start()
                .chars()
                .take_while(|c| is_ident(*c))
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// The `use` declarations of a file: `(path, alias)` of each leaf.
fn uses_in(code: &str, children: &BTreeSet<String>) -> Vec<(Vec<String>, Option<String>)> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("use ") {
        if i > 0 && is_ident(code[..i].chars().next_back().unwrap()) {
            continue;
        }
        let stmt = &code[i + 4..code[i..].find(';').map_or(code.len(), |e| i + e)];
        let stmt = stmt.trim_start();
        let first: String = stmt.chars().take_while(|c| is_ident(*c)).collect();
        if matches!(first.as_str(), "crate" | "super" | "self") || children.contains(&first) {
            out.extend(paths_in(stmt, children));
        }
    }
    out
}

fn children_of(module: &[String], modules: &BTreeSet<ModPath>) -> BTreeSet<String> {
    modules
        .iter()
        .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
        .map(|m| m[module.len()].clone())
        .collect()
}

impl Crate {
    fn new(files: &[SourceFile]) -> Crate {
        let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
        let mut krate = Crate {
            modules: modules.clone(),
            imports: BTreeMap::new(),
            globs: BTreeMap::new(),
            defines: BTreeMap::new(),
        };
        for f in files {
            let children = children_of(&f.module, &modules);
            let mut imports = BTreeMap::new();
            let mut globs = Vec::new();
            for (path, alias) in uses_in(&f.code, &children) {
                let abs = absolute(&f.module, &path);
                if abs.last().map(String::as_str) == Some("*") {
                    globs.push(abs[..abs.len() - 1].to_vec());
                } else {
                    let name = alias.unwrap_or_else(|| abs.last().unwrap().clone());
                    imports.insert(name, abs);
                }
            }
            krate.imports.insert(f.module.clone(), imports);
            krate.globs.insert(f.module.clone(), globs);
            krate.defines.insert(f.module.clone(), definitions(&f.code));
        }
        krate
    }

    /// The file module an absolute path lands in, following imports and re-exports.
    fn resolve(&self, path: &[String], seen: &mut BTreeSet<ModPath>) -> Option<ModPath> {
        let module = (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.modules.contains(p))?;
        let Some(name) = path.get(module.len()) else {
            return Some(module);
        };
        // A name already being looked up (globs importing each other) is not found this way.
        if !seen.insert(path[..=module.len()].to_vec()) {
            return None;
        }
        if self.defines[&module].contains(name) {
            return Some(module);
        }
        if let Some(target) = self.imports[&module].get(name) {
            if target.first().is_some_and(|s| s == "crate") || target.is_empty() {
                return Some(module);
            }
            let mut next = target.clone();
            next.extend(path[module.len() + 1..].iter().cloned());
            return self.resolve(&next, seen).or(Some(module));
        }
        for glob in &self.globs[&module] {
            let mut next = glob.clone();
            next.extend(path[module.len()..].iter().cloned());
            if let Some(found) = self.resolve(&next, seen) {
                if found != *glob || self.defines.get(glob).is_some_and(|d| d.contains(name)) {
                    return Some(found);
                }
            }
        }
        Some(module)
    }
}

/// For each folder (a module path), its nodes' edges: `mod` is the folder's own file.
type FolderGraphs = BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>>;

fn node_in(folder: &[String], module: &[String]) -> String {
    module
        .get(folder.len())
        .cloned()
        .unwrap_or_else(|| "mod".to_string())
}

fn folder_graphs(files: &[SourceFile]) -> FolderGraphs {
    let krate = Crate::new(files);
    let mut graphs = FolderGraphs::new();
    for f in files {
        let children = children_of(&f.module, &krate.modules);
        for (path, _) in paths_in(&f.code, &children) {
            let abs = absolute(&f.module, &path);
            let Some(target) = krate.resolve(&abs, &mut BTreeSet::new()) else {
                continue;
            };
            let common = f
                .module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            let folder = &f.module[..common];
            let (from, to) = (node_in(folder, &f.module), node_in(folder, &target));
            if from != to && from != "mod" && to != "mod" {
                graphs
                    .entry(folder.to_vec())
                    .or_default()
                    .entry(from)
                    .or_default()
                    .insert(to);
            }
        }
    }
    graphs
}

/// Every cycle of a graph, one per strongly connected component, as a path back to its start.
fn cycles(deps: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn reach(from: &str, deps: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for d in deps.get(&n).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    }
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut covered = BTreeSet::new();
    for n in deps.keys() {
        if covered.contains(n) || !reach(n, deps).contains(n) {
            continue;
        }
        // The component of `n`, and a shortest path n -> ... -> n inside it.
        let component: BTreeSet<String> = reach(n, deps)
            .into_iter()
            .filter(|m| reach(m, deps).contains(n))
            .collect();
        let mut parent: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([n.clone()]);
        let mut cycle = None;
        while let Some(m) = queue.pop_front() {
            for d in deps.get(&m).into_iter().flatten() {
                if d == n {
                    let mut path = Vec::new();
                    let mut at = m.clone();
                    while at != *n {
                        path.push(at.clone());
                        at = parent[&at].clone();
                    }
                    path.push(n.clone());
                    path.reverse();
                    path.push(n.clone());
                    cycle = Some(path);
                    break;
                }
                if component.contains(d) && !parent.contains_key(d) {
                    parent.insert(d.clone(), m.clone());
                    queue.push_back(d.clone());
                }
            }
            if cycle.is_some() {
                break;
            }
        }
        let mut cycle = cycle.unwrap();
        let others: Vec<String> = component
            .iter()
            .filter(|m| !cycle.contains(m))
            .map(|m| format!("(+{m})"))
            .collect();
        cycle.extend(others);
        covered.extend(component);
        found.push(cycle);
    }
    found
}

#[test]
fn no_cycle_between_the_files_of_a_folder() {
    let graphs = folder_graphs(&production_files());
    let mut found = Vec::new();
    for (folder, g) in &graphs {
        let name = if folder.is_empty() {
            "src".to_string()
        } else {
            format!("src/{}", folder.join("/"))
        };
        for c in cycles(g) {
            found.push(format!("{name}: {}", c.join(" -> ")));
        }
    }
    assert!(
        found.is_empty(),
        "files of one folder import each other (move what both use to a leaf file, or invert \
         the dependency):\n{}",
        found.join("\n")
    );
    // The graphs are not trivially empty: known edges between files are seen.
    let edge = |folder: &[&str], from: &str, to: &str| {
        let folder: ModPath = folder.iter().map(|s| s.to_string()).collect();
        graphs
            .get(&folder)
            .and_then(|g| g.get(from))
            .is_some_and(|d| d.contains(to))
    };
    assert!(edge(&["cli"], "check", "judging"), "{graphs:#?}");
    assert!(edge(&["cli"], "junit", "results"), "{graphs:#?}");
    assert!(edge(&["certs"], "lifecycle", "config"), "{graphs:#?}");
    assert!(edge(&["cluster"], "watch", "backoff"), "{graphs:#?}");
    assert!(edge(&[], "engine", "rules"), "{graphs:#?}");
}

fn file(module: &str, code: &str) -> SourceFile {
    SourceFile {
        module: module
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        code: production_code(code),
        display: module.to_string(),
    }
}

/// The analysis itself: a cycle hidden behind a parent's re-export (or glob import) is found and
/// named, a child using its parent's own items is not a cycle, and test code does not count.
#[test]
fn the_file_analysis_sees_through_re_exports() {
    let files = [
        file("", "pub mod a;"),
        file(
            "a",
            "mod x; mod y; mod z; pub use x::Shared; use z::*; pub struct Own;\n\
             #[cfg(test)]\nmod tests { use super::y::Y; }",
        ),
        file(
            "a::x",
            "pub struct Shared; fn f() -> super::y::Y { todo!() }",
        ),
        file("a::y", "use super::Shared; use super::Own; pub struct Y;"),
        file(
            "a::z",
            "pub fn zed() {} // crate::a::x::Shared\nconst S: &str = \"super::y\";",
        ),
    ];
    let graphs = folder_graphs(&files);
    let a = &graphs[&vec!["a".to_string()]];
    assert_eq!(
        cycles(a),
        vec![vec!["x".to_string(), "y".to_string(), "x".to_string()]]
    );
    assert!(
        !a.contains_key("z"),
        "comments and strings are not code: {a:?}"
    );
    assert!(
        !a.contains_key("mod"),
        "the folder's own file is its root: {a:?}"
    );
    // A glob import is followed too: `super::zed` from x is z's.
    let glob = [
        file("", "pub mod a;"),
        file("a", "mod x; mod z; use z::*;"),
        file("a::x", "fn f() { super::zed() }"),
        file("a::z", "pub fn zed() {} fn g() { super::x::f() }"),
    ];
    assert_eq!(
        cycles(&folder_graphs(&glob)[&vec!["a".to_string()]]).len(),
        1
    );
}

/// The 600-line check counts what a reader of the production path reads: code outside
/// `#[cfg(test)]` items, without comments or blank lines, wherever the test items sit.
#[test]
fn production_lines_leave_out_tests_comments_and_blanks_only() {
    let text = "// comment\n/// doc\nfn a() {}\n\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n\
                fn b() {\n    let s = \"#[cfg(test)] {\";\n}\n#[cfg(test)]\nmod more;\nfn c() {}\n";
    assert_eq!(production_lines(text), 5, "{}", production_code(text));
}

/// A message wrapped over lines keeps one space where it was wrapped: a string literal never
/// holds a run of spaces in the middle of its text, as one does when a line's `\` continuation
/// is lost and the next line's indentation becomes part of the message (the 503 answer of a
/// stale cache and a `check` note carried runs of 10 and 18 spaces, read by users as is).
#[test]
fn no_message_swallows_its_indentation() {
    let mut found = Vec::new();
    for (rel, text) in src_texts() {
        for line in swallowed_indentation(&text) {
            found.push(format!("src/{rel}:{line}"));
        }
    }
    assert!(
        found.is_empty(),
        "a string literal holds a run of spaces mid-text (a lost `\\` line continuation?):\n{}",
        found.join("\n")
    );
}

/// Lines where a non-raw string literal has 8 or more spaces after text on the same line of the
/// string (not after a line break, escaped or real, where indentation is meant).
fn swallowed_indentation(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let line_of = |i: usize| text[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            i += rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
        } else if rest.starts_with(b"/*") {
            i += rest
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(rest.len(), |e| e + 2);
        } else if let Some(hashes) = text
            .get(i..)
            .and_then(raw_string_start)
            .filter(|_| !prev_is_ident(b, i))
        {
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let open = rest.iter().position(|&c| c == b'"').unwrap_or(0) + 1;
            i += open
                + rest[open..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(rest.len() - open, |e| e + close.len());
        } else if b[i] == b'\'' {
            // A char literal (`'"'`, `'\''`, `'…'`) or a lifetime (`'a`).
            let from = i + if b.get(i + 1) == Some(&b'\\') { 3 } else { 2 };
            let close = b
                .get(from..(from + 4).min(b.len()))
                .and_then(|w| w.iter().position(|&c| c == b'\''));
            i = close.map_or(i + 1, |at| from + at + 1);
        } else if b[i] == b'"' {
            i += 1;
            let mut prev = b'\n';
            while i < b.len() && b[i] != b'"' {
                match b[i] {
                    b'\\' => {
                        prev = match b.get(i + 1) {
                            Some(b'n' | b'\n') => b'\n',
                            _ => b'x',
                        };
                        i += 2;
                    }
                    b' ' => {
                        let run = b[i..].iter().take_while(|&&c| c == b' ').count();
                        let next = b.get(i + run).copied().unwrap_or(b'"');
                        if run >= 8 && prev != b'\n' && !matches!(next, b'\n' | b'"' | b'\\') {
                            out.push(line_of(i));
                        }
                        prev = b' ';
                        i += run;
                    }
                    c => {
                        prev = c;
                        i += 1;
                    }
                }
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn swallowed_indentation_is_told_from_meant_indentation() {
    let lost = "let m = \"stale          (reconnecting)\";\n";
    assert_eq!(swallowed_indentation(lost), [1]);
    let kept = "let m = \"stale \\\n         (reconnecting)\";\nlet y = \"a:\\n          b\";\n\
                let r = r#\"x          y\"#;\nlet c = '\"'; // \"a          b\"\n\
                let d = '…'; let e = \"a          b\";\n";
    assert_eq!(swallowed_indentation(kept), [6], "only the last literal");
}
