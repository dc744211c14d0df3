//! The core's modules form layers: no module imports one that imports it back (issue
//! 12), whether a module is taken as a file or as a top-level room with its files. An
//! import is any `crate::…` or `super::…` path in a file, down to the longest module it
//! names. A child naming its parent (or the parent its child) is one room, not a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `vault/lease.rs` is `vault::lease`, `vault/mod.rs` is `vault`, `lib.rs` is ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path a file names from `crate::` or `super::`, braces expanded one level:
/// `use crate::{a::b, c}` names `a::b` and `c`.
fn named_paths(text: &str, module: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (prefix, base) in [("crate::", String::new()), ("super::", parent(module))] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(is_ident) {
                continue;
            }
            let mut base = base.clone();
            let mut tail = rest;
            // `super::super::x`
            while let Some(t) = tail.strip_prefix("super::") {
                base = parent(&base);
                tail = t;
            }
            let join = |p: &str| {
                if base.is_empty() {
                    p.to_string()
                } else {
                    format!("{base}::{p}")
                }
            };
            if let Some(group) = tail.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let item = item.trim();
                    let path: String = item
                        .chars()
                        .take_while(|c| is_ident(*c) || *c == ':')
                        .collect();
                    if !path.is_empty() && path != "self" {
                        out.push(join(path.trim_end_matches(':')));
                    }
                }
            } else {
                let path: String = tail
                    .chars()
                    .take_while(|c| is_ident(*c) || *c == ':')
                    .collect();
                out.push(join(path.trim_end_matches(':')));
            }
        }
    }
    out
}

/// The file without its `#[cfg(test)] mod … { … }` blocks (to the first `}` at the
/// start of a line): a test may use anything; the layers are about the code itself.
fn without_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]\nmod ") {
        out.push_str(&rest[..i]);
        rest = rest[i..]
            .find("\n}\n")
            .map_or("", |end| &rest[i + end + 3..]);
    }
    out.push_str(rest);
    out
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_string())
}

/// The longest module `path` names.
fn module_named<'a>(modules: &'a BTreeSet<String>, path: &str) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| modules.get(&parts[..n].join("::")))
}

fn related(a: &str, b: &str) -> bool {
    a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let code = without_test_modules(&text);
        let deps: BTreeSet<String> = named_paths(&code, &module)
            .iter()
            .filter_map(|p| module_named(&modules, p))
            .filter(|m| **m != module && !related(m, &module))
            .cloned()
            .collect();
        graph.insert(module, deps);
    }
    graph
}

/// The same imports between top-level rooms (`vault::edit` -> `forms` is `vault` ->
/// `forms`).
fn rooms(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let room = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, deps) in graph {
        let entry = out.entry(room(a)).or_default();
        entry.extend(deps.iter().map(|d| room(d)).filter(|d| *d != room(a)));
    }
    out
}

fn mutual(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut cycles = Vec::new();
    for (a, deps) in graph {
        for b in deps {
            if a < b && graph.get(b).is_some_and(|d| d.contains(a)) {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    cycles
}

#[test]
fn no_core_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&src);
    assert!(graph.len() > 30, "read {} modules", graph.len());
    assert!(
        graph["vault"].contains("vendors"),
        "the reader sees imports: {:?}",
        graph["vault"]
    );
    assert_eq!(mutual(&graph), Vec::<String>::new(), "files");
    assert_eq!(mutual(&rooms(&graph)), Vec::<String>::new(), "rooms");
}

#[test]
fn the_reader_finds_a_cycle_where_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("vault")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod model;\npub mod vault;\n").unwrap();
    std::fs::write(
        src.join("model.rs"),
        "use crate::vault::{NewAccount, Vault};\n",
    )
    .unwrap();
    std::fs::write(src.join("vault/mod.rs"), "mod add;\npub struct Vault;\n").unwrap();
    std::fs::write(
        src.join("vault/add.rs"),
        "use super::Vault;\nuse crate::model::Account;\n",
    )
    .unwrap();
    let graph = imports(src);
    assert!(graph["model"].contains("vault"));
    assert!(graph["vault::add"].contains("model"));
    assert!(
        !graph["vault::add"].contains("vault"),
        "a child naming its parent is one room"
    );
    assert_eq!(mutual(&rooms(&graph)), ["model <-> vault"]);
}
