// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! The shape ARCHITECTURE.md promises, checked from the source: no two top-level modules import
//! each other (no cycles at all), the result types are a leaf, the pure core (engine, rules,
//! policy, object, view, verdict) reaches for no I/O, and no source file grows past the size a
//! reader takes in (non-test lines).

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

/// The source without `#[cfg(test)]` modules (inline ones: from the attribute to the end of the
/// file, which is where this codebase keeps them) and without comments.
fn non_test_code(text: &str) -> String {
    // An inline test module (`#[cfg(test)]` then `mod name {`), not a `mod tests;` declaration.
    let inline_test_module = text.match_indices("#[cfg(test)]\nmod ").find(|(i, _)| {
        text[*i..]
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim_end().ends_with('{'))
    });
    let code = match inline_test_module {
        Some((i, _)) => &text[..i],
        None => text,
    };
    code.lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("//")
        })
        .collect::<Vec<_>>()
        .join("\n")
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
        let code = non_test_code(&std::fs::read_to_string(&f).unwrap());
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
        let code = non_test_code(&std::fs::read_to_string(&f).unwrap());
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

#[test]
fn no_source_file_is_too_long_to_read() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long = Vec::new();
    for f in &files {
        if f.ends_with("tests.rs") {
            continue;
        }
        let code = non_test_code(&std::fs::read_to_string(f).unwrap());
        let lines = code.lines().filter(|l| !l.trim().is_empty()).count();
        if lines > 600 {
            long.push(format!("{}: {lines}", f.display()));
        }
    }
    assert!(files.len() > 20, "found the sources");
    assert!(long.is_empty(), "files above 600 non-test lines: {long:?}");
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
