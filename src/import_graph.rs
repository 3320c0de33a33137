//! A test that the modules of this crate import each other without a circle: each module's
//! paths (`use crate::...`, `use super::...`, inline `super::x::f`, a child's `x::f`) are read
//! from its source, resolved through `pub use` re-exports to the module that defines the item,
//! and the graph of those edges must have no cycle. A circle means files that can only be
//! understood together; the layers (lua/, libevent.rs, the types) are meant to stack: a lower
//! one that must reach a higher one takes a function pointer the higher one registers.
//!
//! The reading is textual (comments and test modules left out), which is enough for the way
//! this crate writes its paths; it runs as part of `cargo test` (and so of `make test`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path (`crate::lua::stack`) and its source, with comments and its test module cut.
struct Module {
    path: String,
    code: String,
}

fn module_path(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    std::iter::once("crate".to_string())
        .chain(parts)
        .collect::<Vec<_>>()
        .join("::")
}

/// The code without `//` comments, and without a `#[cfg(test)] mod` (which comes last, and
/// whose `super` is this module, not its parent).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal (rare here) would cut a line short: harmless.
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn modules(root: &Path) -> Vec<Module> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
        .iter()
        .map(|file| Module {
            path: module_path(root, file),
            code: code_of(&std::fs::read_to_string(file).unwrap()),
        })
        .collect()
}

/// The `use` declarations of `code`, each expanded into full paths (`a::{b, c::d}` gives
/// `a::b` and `a::c::d`), with whether it is a `pub` re-export.
fn use_paths(code: &str) -> Vec<(bool, String)> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head = format!("{prefix}{}", &tree[..open]);
            let inner = &tree[open + 1..tree.rfind('}').unwrap()];
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&head, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&head, &inner[start..], out);
        } else if !tree.is_empty() {
            let tree = tree.split(" as ").next().unwrap().trim();
            out.push(
                format!("{prefix}{tree}")
                    .trim_end_matches("::self")
                    .to_string(),
            );
        }
    }
    let mut found = Vec::new();
    for (at, _) in code.match_indices("use ") {
        let before = &code[..at];
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let lead = before[line_start..].trim();
        if !(lead.is_empty() || lead.starts_with("pub")) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            continue;
        };
        let mut paths = Vec::new();
        expand("", &code[at + 4..at + end], &mut paths);
        found.extend(
            paths
                .into_iter()
                .map(|path| (lead.starts_with("pub"), path)),
        );
    }
    found
}

/// Every `a::b::c` path written in `code` (use declarations and inline paths alike).
fn inline_paths(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if is_word(bytes[i]) && (i == 0 || !(is_word(bytes[i - 1]) || bytes[i - 1] == b':')) {
            let start = i;
            let mut end = i;
            while end < bytes.len() && (is_word(bytes[end]) || bytes[end..].starts_with(b"::")) {
                end += if bytes[end] == b':' { 2 } else { 1 };
            }
            let path = code[start..end].trim_end_matches("::");
            if path.contains("::") {
                found.push(path.to_string());
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// `path` as written in module `here`, made absolute (`crate::...`); None for a path that
/// starts outside this crate (`std::`, `libc::`, a local type's `Kind::Nil`).
fn absolute(here: &str, path: &str, known: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = here.split("::").collect();
    match segments[0] {
        "crate" => return Some(path.to_string()),
        "self" => {
            segments.remove(0);
        }
        "super" => {
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
        }
        // A child module of `here`, or of the crate root from lib.rs.
        child if known.contains(&format!("{here}::{child}")) => {}
        _ => return None,
    }
    base.extend(segments);
    Some(base.join("::"))
}

/// The module that defines the item `path` names, following `pub use` re-exports.
fn defining_module(
    path: &str,
    known: &BTreeSet<String>,
    exports: &BTreeMap<String, String>,
) -> Option<String> {
    let mut path = path.to_string();
    for _ in 0..8 {
        if known.contains(&path) {
            return Some(path);
        }
        let (module, item) = path.rsplit_once("::")?;
        if let Some(source) = exports.get(&path) {
            path = source.clone();
            continue;
        }
        if known.contains(module) && !item.is_empty() {
            return Some(module.to_string());
        }
        path = module.to_string();
    }
    None
}

/// The import graph of the crate whose sources are under `root`: module -> modules it uses.
fn graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(root);
    let known: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    // `pub use a::b::Name;` in module M: `M::Name` stands for `a::b::Name`.
    let mut exports = BTreeMap::new();
    for module in &modules {
        for (public, path) in use_paths(&module.code) {
            let Some(full) = absolute(&module.path, &path, &known) else {
                continue;
            };
            let name = full.rsplit("::").next().unwrap().to_string();
            if public && name != "*" {
                exports.insert(format!("{}::{name}", module.path), full);
            }
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in &modules {
        let targets = edges.entry(module.path.clone()).or_default();
        let (re_exports, imports): (Vec<_>, Vec<_>) = use_paths(&module.code)
            .into_iter()
            .partition(|(public, _)| *public);
        let re_exports: BTreeSet<String> = re_exports.into_iter().map(|(_, path)| path).collect();
        let imports = imports.into_iter().map(|(_, path)| path);
        for path in inline_paths(&module.code).into_iter().chain(imports) {
            // A re-export only names an item; using it elsewhere is what makes an edge.
            if re_exports.contains(&path) {
                continue;
            }
            let Some(full) = absolute(&module.path, &path, &known) else {
                continue;
            };
            match defining_module(&full, &known, &exports) {
                Some(target) if target != module.path => {
                    targets.insert(target);
                }
                _ => {}
            }
        }
    }
    edges
}

/// The circles of the graph: its strongly connected components of more than one module
/// (each module in one reaches every other through imports), each sorted.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    fn reach(from: &str, edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(node) = todo.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    }
    // Small graph: the quadratic way is the clear one.
    let reached: BTreeMap<&String, BTreeSet<String>> = edges
        .keys()
        .map(|node| (node, reach(node, edges)))
        .collect();
    let mut found = BTreeSet::new();
    for (node, from_node) in &reached {
        let circle: Vec<String> = from_node
            .iter()
            .filter(|other| reached.get(other).is_some_and(|back| back.contains(*node)))
            .cloned()
            .collect();
        if circle.len() > 1 {
            found.insert(circle);
        }
    }
    found
}

#[test]
fn no_module_imports_itself_through_others() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&root);
    assert!(
        edges.len() > 20,
        "found only {} modules under {}",
        edges.len(),
        root.display()
    );
    let found: Vec<_> = circles(&edges)
        .iter()
        .map(|circle| circle.join(" <-> "))
        .collect();
    assert!(found.is_empty(), "import circles: {}", found.join("; "));
}

#[test]
fn the_check_sees_a_circle() {
    let mut edges = BTreeMap::new();
    edges.insert(
        "crate::a".to_string(),
        BTreeSet::from(["crate::b".to_string()]),
    );
    edges.insert(
        "crate::b".to_string(),
        BTreeSet::from(["crate::c".to_string()]),
    );
    edges.insert(
        "crate::c".to_string(),
        BTreeSet::from(["crate::a".to_string()]),
    );
    edges.insert(
        "crate::d".to_string(),
        BTreeSet::from(["crate::a".to_string()]),
    );
    let abc = vec![
        "crate::a".to_string(),
        "crate::b".to_string(),
        "crate::c".to_string(),
    ];
    assert_eq!(circles(&edges), BTreeSet::from([abc]));
    edges.get_mut("crate::c").unwrap().clear();
    assert!(circles(&edges).is_empty());
}
#[test]
fn paths_are_read_and_resolved() {
    let mut paths = Vec::new();
    for (_, path) in
        use_paths("use super::{raw::*, stack::{Kind, Stack as S}};\npub use callback::Called;")
    {
        paths.push(path);
    }
    assert_eq!(
        paths,
        [
            "super::raw::*",
            "super::stack::Kind",
            "super::stack::Stack",
            "callback::Called"
        ]
    );
    assert_eq!(
        inline_paths("let x = super::callback::handler(crate::os::Errno(1));"),
        ["super::callback::handler", "crate::os::Errno"]
    );
    let known = BTreeSet::from([
        "crate".to_string(),
        "crate::lua".to_string(),
        "crate::lua::raw".to_string(),
    ]);
    assert_eq!(
        absolute("crate::lua", "raw::push_bytes", &known).as_deref(),
        Some("crate::lua::raw::push_bytes")
    );
    assert_eq!(
        absolute("crate::lua::raw", "super::Failure", &known).as_deref(),
        Some("crate::lua::Failure")
    );
    assert_eq!(absolute("crate::lua", "std::ffi::c_int", &known), None);
}
