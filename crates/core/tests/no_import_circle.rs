//! Guards the layout of `crates/core/src`: no import circle between its
//! files. Every `crate::…` and `super::…` path in code (comments aside) is
//! an arrow from the file that names it to the file that defines the
//! longest prefix of it; a circle of arrows fails the test and names its
//! files. (The renovation removed a circle of twelve files; this keeps it
//! from growing back.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    reason = "a test over this crate's own sources: a failure should stop it loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["service", "verify"]`) of each source file, by file.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            out.insert(module, path);
        }
    }
    out
}

/// The code of a file without its comments (line comments and doc
/// comments; block comments are not used in this crate).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path named after `anchor::` in `code`, braces expanded:
/// `super::{a::X, b}` gives `a::X` and `b`.
fn paths_after(code: &str, anchor: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(anchor) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + anchor.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        out.extend(parse_tree(rest));
    }
    out
}

/// Parses `a::b::{c, d::e}` at the start of `text` into its paths.
fn parse_tree(text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start();
    if let Some(inner) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut end = inner.len();
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    end = i;
                    break;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        return split_top_level(&inner[..end])
            .into_iter()
            .flat_map(parse_tree)
            .collect();
    }
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        return vec![Vec::new()];
    }
    let after = &text[ident.len()..];
    match after.strip_prefix("::") {
        Some(more) => parse_tree(more)
            .into_iter()
            .map(|mut tail| {
                tail.insert(0, ident.clone());
                tail
            })
            .collect(),
        None => vec![vec![ident]],
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The file defining the longest prefix of `path` that is a module.
fn target<'a>(
    files: &'a BTreeMap<Vec<String>, PathBuf>,
    path: &[String],
) -> Option<&'a Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get_key_value(&path[..n]).map(|(k, _)| k))
}

fn graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = modules(src);
    let mut arrows = BTreeMap::new();
    for (module, file) in &files {
        let code = code(&std::fs::read_to_string(file).expect("read a source file"));
        // A file's `super` is its parent module (a `mod.rs` stands for its
        // folder, so its `super` is the folder's parent).
        let super_of = module[..module.len().saturating_sub(1)].to_vec();
        let mut to = BTreeSet::new();
        for path in paths_after(&code, "crate::") {
            to.extend(target(&files, &path).cloned());
        }
        for path in paths_after(&code, "super::") {
            let full: Vec<String> = super_of.iter().cloned().chain(path).collect();
            to.extend(target(&files, &full).cloned());
        }
        to.remove(module);
        // The root re-exports everything: arrows into it are not layering.
        to.remove(&Vec::new());
        arrows.insert(module.clone(), to);
    }
    arrows.remove(&Vec::new());
    arrows
}

/// A circle in `arrows`, if any, as the files on it.
fn circle(arrows: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &Vec<String>,
        arrows: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        marks: &mut BTreeMap<Vec<String>, Mark>,
        path: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        match marks.get(node).copied().unwrap_or(Mark::New) {
            Mark::Done => return None,
            Mark::Open => {
                let from = path.iter().position(|n| n == node).unwrap_or(0);
                return Some(path[from..].to_vec());
            }
            Mark::New => {}
        }
        marks.insert(node.clone(), Mark::Open);
        path.push(node.clone());
        for next in arrows.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, arrows, marks, path) {
                return Some(found);
            }
        }
        path.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    arrows
        .keys()
        .find_map(|node| visit(node, arrows, &mut marks, &mut Vec::new()))
}

#[test]
fn no_import_circle_between_the_files_of_core() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let arrows = graph(&src);
    assert!(arrows.len() > 20, "read {} files", arrows.len());
    assert!(
        arrows.values().map(BTreeSet::len).sum::<usize>() > 50,
        "the reader found too few imports to be reading them"
    );
    if let Some(files) = circle(&arrows) {
        let names: Vec<String> = files.iter().map(|m| m.join("/")).collect();
        panic!("an import circle: {}", names.join(" → "));
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let m = |s: &str| vec![s.to_owned()];
    let mut arrows = BTreeMap::new();
    arrows.insert(m("a"), BTreeSet::from([m("b")]));
    arrows.insert(m("b"), BTreeSet::from([m("c")]));
    arrows.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(circle(&arrows), Some(vec![m("a"), m("b"), m("c")]));
    arrows.insert(m("c"), BTreeSet::new());
    assert_eq!(circle(&arrows), None);
}

#[test]
fn paths_in_braces_are_expanded() {
    let found = paths_after("use super::{a::X, b::{c, d}};", "super::");
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(found, vec![s(&["a", "X"]), s(&["b", "c"]), s(&["b", "d"])]);
}
