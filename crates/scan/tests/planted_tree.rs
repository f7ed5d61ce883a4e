//! A generated tree with planted tokens and look-alikes, scanned as a user
//! scans a repository: every planted token found at its exact line and
//! column, nothing else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

mod common;

use common::{Planted, Rng, Text, bad_checksum, found, mint, token};
use keyward_scan::{ScanOptions, Scanner};
use std::path::Path;

/// The tree, written under `root`, and what a default scan must find.
struct Tree {
    dir: tempfile::TempDir,
    /// Found by a default scan.
    visible: Vec<Planted>,
    /// In a `.gitignore`d file: found only with ignore files off.
    ignored: Vec<Planted>,
    /// In a hidden file: found only with hidden files on.
    hidden: Vec<Planted>,
}

fn write(root: &Path, text: &Text) {
    write_bytes(root, &text.path, text.text.as_bytes());
}

fn write_bytes(root: &Path, path: &str, bytes: &[u8]) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, bytes).unwrap();
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for unit in text.encode_utf16() {
        out.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut rng = Rng::new(7);
    let mut visible = Vec::new();

    // A Git repository, so `.gitignore` applies (as with ripgrep).
    std::fs::create_dir_all(root.join(".git")).unwrap();
    write_bytes(root, ".gitignore", b"secret.env\n");

    // Source code: a token in a string, one after non-ASCII text in a
    // comment (byte and character columns differ), one at the very end
    // of the file with no newline after it.
    let mut src = Text::new("src/config.rs");
    src.push("// configuration\nconst A: &str = \"")
        .plant(&token(&mut rng, "mt"))
        .push("\";\n\n    // clé été → ")
        .plant(&token(&mut rng, "tak"))
        .push(" (old)\nfn main() {}\nlet pat = ")
        .plant(&token(&mut rng, "mm_pat"));
    write(root, &src);
    visible.extend(src.planted);

    // Nested prefixes: `sk_live_…` and `sk_…`, side by side.
    let mut nested = Text::new("src/stripe_like.py");
    nested
        .push("LIVE = '")
        .plant(&token(&mut rng, "sk_live"))
        .push("'\nTEST = '")
        .plant(&token(&mut rng, "sk"))
        .push("'\n");
    write(root, &nested);
    visible.extend(nested.planted);

    // Minified JSON: one line of 600 KB (longer than a chunk), tokens far
    // into it, one straddling the first chunk boundary.
    let mut json = Text::new("web/bundle.min.json");
    json.push("{\"a\":\"");
    while json.text.len() < 256 * 1024 - 20 {
        json.push("xyz\",\"b\":[1,2,3],\"c\":\"");
    }
    json.plant(&token(&mut rng, "mt")).push("\",\"d\":\"");
    while json.text.len() < 600 * 1024 {
        json.push("lorem ipsum\",\"e\":\"");
    }
    json.plant(&token(&mut rng, "tak")).push("\"}");
    write(root, &json);
    visible.extend(json.planted);

    // CRLF line endings.
    let mut crlf = Text::new("win/settings.ini");
    crlf.push("[api]\r\nkey=")
        .plant(&token(&mut rng, "mt"))
        .push("\r\n\r\n; backup\r\nold = ")
        .plant(&token(&mut rng, "mt"))
        .push("\r\n");
    write(root, &crlf);
    visible.extend(crlf.planted);

    // UTF-16, both byte orders, with non-ASCII text before the tokens.
    for (path, big_endian) in [("notes/le.txt", false), ("notes/be.txt", true)] {
        let mut notes = Text::new(path);
        notes
            .push("Schlüssel für die API:\r\n  ")
            .plant(&token(&mut rng, "tak"))
            .push("\r\n日本語 ")
            .plant(&token(&mut rng, "mm_pat"))
            .push("\r\n");
        write_bytes(root, path, &utf16(&notes.text, big_endian));
        visible.extend(notes.planted);
    }

    // Look-alikes, none of them a token: a wrong checksum, the right shape
    // with another prefix, tokens glued inside longer words, a prefix in
    // upper case, a truncated token, one a character too long.
    let real = token(&mut rng, "mt");
    let lookalikes = [
        bad_checksum(&real),
        mint(&mut rng, "zz", 10, 27),
        mint(&mut rng, "xmt", 10, 27),
        format!("prod_{}", token(&mut rng, "mt")),
        format!("{}x", token(&mut rng, "tak")),
        format!("9{}", token(&mut rng, "mt")),
        token(&mut rng, "mt").replacen("mt_", "MT_", 1),
        real[..real.len() - 1].to_owned(),
        format!("{real}Q"),
        bad_checksum(&token(&mut rng, "mm_pat")),
    ];
    let mut fakes = String::from("fixtures = [\n");
    for fake in &lookalikes {
        fakes.push_str(&format!("    \"{fake}\",\n"));
    }
    fakes.push_str("]\nmt_ tak_ mm_pat_ sk_live_\n");
    write_bytes(root, "tests/fixtures.py", fakes.as_bytes());

    // A binary file (a NUL in its first block) holding a real token.
    let mut blob = vec![0x7F, b'E', b'L', b'F', 0, 0, 1];
    blob.extend_from_slice(format!(" {} ", token(&mut rng, "mt")).as_bytes());
    write_bytes(root, "bin/tool", &blob);

    // Ignored and hidden files.
    let mut ignored = Text::new("secret.env");
    ignored
        .push("API_KEY=")
        .plant(&token(&mut rng, "mt"))
        .push("\n");
    write(root, &ignored);
    let mut hidden = Text::new(".env.local");
    hidden
        .push("KEY=")
        .plant(&token(&mut rng, "tak"))
        .push("\n");
    write(root, &hidden);

    visible.sort();
    Tree {
        dir,
        visible,
        ignored: ignored.planted,
        hidden: hidden.planted,
    }
}

fn scan(tree: &Tree, options: ScanOptions) -> keyward_scan::ScanReport {
    let scanner = Scanner::new(common::format(), options).unwrap();
    // Walk from inside the tree so paths are relative, as a user sees them.
    let report = scanner.scan(&[tree.dir.path()]);
    let prefix = format!("{}/", tree.dir.path().display());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    for finding in &report.findings {
        assert!(finding.path().starts_with(&prefix), "{}", finding.path());
    }
    report
}

fn relative(tree: &Tree, mut found: Vec<Planted>) -> Vec<Planted> {
    let prefix = format!("{}/", tree.dir.path().display());
    for f in &mut found {
        f.path = f.path.strip_prefix(&prefix).unwrap().to_owned();
    }
    found.sort();
    found
}

#[test]
fn every_planted_token_is_found_at_its_line_and_column_and_nothing_else() {
    let tree = tree();
    let report = scan(&tree, ScanOptions::new());
    assert_eq!(relative(&tree, found(&report)), tree.visible);
    assert_eq!(report.binary_files_skipped, 1);
    // src ×2, web, win, notes ×2, tests, and the ignore file itself is
    // hidden: seven files searched.
    assert_eq!(report.files_searched, 7);
}

#[test]
fn one_thread_finds_the_same_as_many() {
    let tree = tree();
    let one = scan(&tree, ScanOptions::new().threads(1));
    let four = scan(&tree, ScanOptions::new().threads(4));
    assert_eq!(found(&one), found(&four));
}

#[test]
fn small_chunks_find_the_same_as_large_ones() {
    let tree = tree();
    let small = scan(
        &tree,
        ScanOptions::new().chunk_size(keyward_scan::MIN_CHUNK_SIZE),
    );
    assert_eq!(relative(&tree, found(&small)), tree.visible);
}

#[test]
fn ignored_files_are_found_only_with_ignore_files_off() {
    let tree = tree();
    let report = scan(&tree, ScanOptions::new().ignore_files(false));
    let mut expected = tree.visible.clone();
    expected.extend(tree.ignored.clone());
    expected.sort();
    assert_eq!(relative(&tree, found(&report)), expected);
}

#[test]
fn hidden_files_are_found_only_with_hidden_on() {
    let tree = tree();
    let report = scan(&tree, ScanOptions::new().hidden(true));
    let mut expected = tree.visible.clone();
    expected.extend(tree.hidden.clone());
    expected.sort();
    assert_eq!(relative(&tree, found(&report)), expected);
}

#[test]
fn a_file_named_explicitly_is_searched_even_if_ignored() {
    let tree = tree();
    let scanner = Scanner::new(common::format(), ScanOptions::new()).unwrap();
    let report = scanner.scan(&[tree.dir.path().join("secret.env")]);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].key_id().as_str(), tree.ignored[0].key_id);
}

#[test]
fn a_missing_path_is_a_problem_not_a_stop() {
    let tree = tree();
    let scanner = Scanner::new(common::format(), ScanOptions::new()).unwrap();
    let missing = tree.dir.path().join("no such dir");
    let report = scanner.scan(&[missing.clone(), tree.dir.path().join("src")]);
    assert_eq!(report.findings.len(), 5, "the other path is still searched");
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].path, missing.display().to_string());
}

#[test]
fn no_finding_shows_the_secret_in_debug_or_preview() {
    let tree = tree();
    let report = scan(&tree, ScanOptions::new());
    for finding in &report.findings {
        let token = finding.expose_token();
        let secret_and_checksum = &token[token.len() - 20..];
        assert!(!format!("{finding:?}").contains(secret_and_checksum));
        assert!(!finding.preview().contains(secret_and_checksum));
        assert!(token.starts_with(&finding.preview().trim_end_matches('…').to_owned()));
    }
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_not_followed() {
    let tree = tree();
    let outside = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(99);
    std::fs::write(outside.path().join("key.txt"), token(&mut rng, "mt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), tree.dir.path().join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("key.txt"),
        tree.dir.path().join("linked-file.txt"),
    )
    .unwrap();
    let report = scan(&tree, ScanOptions::new());
    assert_eq!(relative(&tree, found(&report)), tree.visible);
}

#[test]
fn problems_past_the_cap_are_counted_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let missing: Vec<_> = (0..keyward_scan::MAX_PROBLEMS + 5)
        .map(|i| dir.path().join(format!("missing{i}")))
        .collect();
    let scanner = Scanner::new(common::format(), ScanOptions::new()).unwrap();
    let report = scanner.scan(&missing);
    assert_eq!(report.problems.len(), keyward_scan::MAX_PROBLEMS);
    assert_eq!(report.problems_dropped, 5);
    assert!(report.incomplete() && !report.found_any());
}
