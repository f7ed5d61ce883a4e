//! `keyward scan` run as a user runs it: a planted tree, stdin, the three
//! output forms, exit codes, and `--revoke` against a SQLite store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failed setup should stop it loudly"
)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const KINDS: &str = "[kinds.mt]\n\n[kinds.mm_pat]\nkey_id_len = 4\nsecret_len = 22\n";

/// A token with a valid checksum (`body` base62, of the kind's length).
fn mint(prefix: &str, body: &str) -> String {
    let signed = format!("{prefix}_{body}");
    let mut crc = crc32fast::hash(signed.as_bytes());
    let mut checksum = [b'0'; 6];
    for slot in checksum.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    format!("{signed}{}", String::from_utf8(checksum.to_vec()).unwrap())
}

fn body(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(BASE62[(x % 62) as usize])
        })
        .collect()
}

fn keyward(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command
        .current_dir(dir)
        .args(["--config", "keyward.toml"])
        .args(args)
        .env_remove("KEYWARD_CONFIG")
        .env("USER", "alice")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

struct Tree {
    dir: tempfile::TempDir,
    mt: String,
    pat: String,
}

/// A small repository: a token in source, one in UTF-16, one in a
/// `.gitignore`d file, one in a binary, and look-alikes.
fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("keyward.toml"), KINDS).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".gitignore"), "local.env\n").unwrap();
    let mt = mint("mt", &body(1, 37));
    let pat = mint("mm_pat", &body(2, 26));
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        format!("fn main() {{\r\n    let key = \"{mt}\";\r\n}}\r\n"),
    )
    .unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in format!("clé: {pat}\n").encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    std::fs::write(root.join("notes.txt"), utf16).unwrap();
    std::fs::write(
        root.join("local.env"),
        format!("KEY={}\n", mint("mt", &body(3, 37))),
    )
    .unwrap();
    std::fs::write(
        root.join("tool.bin"),
        format!("\0\0{}", mint("mt", &body(4, 37))),
    )
    .unwrap();
    let wrong = {
        let mut t = mint("mt", &body(5, 37)).into_bytes();
        let last = t.last_mut().unwrap();
        *last = if *last == b'a' { b'b' } else { b'a' };
        String::from_utf8(t).unwrap()
    };
    std::fs::write(
        root.join("fixtures.txt"),
        format!(
            "{wrong}\n{}\nx{}\n",
            mint("zz", &body(6, 37)),
            mint("mt", &body(7, 37))
        ),
    )
    .unwrap();
    Tree { dir, mt, pat }
}

fn key_id(token: &str, prefix: &str, len: usize) -> String {
    token[prefix.len() + 1..prefix.len() + 1 + len].to_owned()
}

#[test]
fn text_output_lists_each_token_masked_and_exits_1() {
    let tree = tree();
    let out = keyward(tree.dir.path(), &["scan"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        format!(
            "notes.txt:1:7: mm_pat mm_pat_{}…\nsrc/main.rs:2:16: mt mt_{}…\n",
            key_id(&tree.pat, "mm_pat", 4),
            key_id(&tree.mt, "mt", 10)
        )
    );
    assert!(!stdout.contains(&tree.mt) && !stdout.contains(&tree.pat));
    // No progress bar without a terminal: the summary line only.
    let bytes: u64 = [
        "keyward.toml",
        "src/main.rs",
        "notes.txt",
        "fixtures.txt",
        "tool.bin",
    ]
    .iter()
    .map(|p| std::fs::metadata(tree.dir.path().join(p)).unwrap().len())
    .sum();
    assert_eq!(
        text(&out.stderr),
        format!("2 tokens found in 4 files ({bytes} B searched, 1 binary file skipped)\n")
    );
}

#[test]
fn a_clean_tree_exits_0_and_an_ignored_file_is_found_with_no_ignore() {
    let tree = tree();
    let out = keyward(
        tree.dir.path(),
        &["scan", "fixtures.txt", "keyward.toml"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");

    let out = keyward(tree.dir.path(), &["scan", "--no-ignore", "--json"], None);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["local.env", "notes.txt", "src/main.rs"]);
}

#[test]
fn stdin_is_read_for_a_dash_and_show_token_shows_the_token() {
    let tree = tree();
    let input = format!("log line\nAuthorization: Bearer {}\n", tree.mt);
    let out = keyward(tree.dir.path(), &["scan", "-"], Some(input.as_bytes()));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!("-:2:23: mt mt_{}…\n", key_id(&tree.mt, "mt", 10))
    );
    let out = keyward(
        tree.dir.path(),
        &["scan", "--show-token", "-"],
        Some(input.as_bytes()),
    );
    assert_eq!(text(&out.stdout), format!("-:2:23: mt {}\n", tree.mt));
}

#[test]
fn json_and_sarif_parse_back() {
    let tree = tree();
    let out = keyward(tree.dir.path(), &["--json", "scan"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "", "JSON mode keeps stderr for problems");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &report["findings"][1];
    assert_eq!(first["path"], "src/main.rs");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(2), Some(16))
    );
    assert_eq!(first["kind"], "mt");
    assert_eq!(first["key_id"], key_id(&tree.mt, "mt", 10));
    assert_eq!(report["binary_files_skipped"], 1);

    let out = keyward(tree.dir.path(), &["scan", "--sarif"], None);
    assert_eq!(out.status.code(), Some(1));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"][0]["tool"]["driver"]["name"], "keyward");
    let result = &log["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "keyward/token/mm_pat");
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "notes.txt");
    assert_eq!(location["region"]["startLine"], 1);
    assert_eq!(location["region"]["startColumn"], 6, "é is one character");
    assert!(!text(&out.stdout).contains(&tree.pat));
}

#[test]
fn usage_errors_and_unsearchable_paths_exit_2() {
    let tree = tree();
    let both = keyward(tree.dir.path(), &["--json", "scan", "--sarif"], None);
    assert_eq!(both.status.code(), Some(2));
    assert!(text(&both.stderr).contains("--json and --sarif"));

    let missing = keyward(
        tree.dir.path(),
        &["scan", "fixtures.txt", "no-such-dir"],
        None,
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).starts_with("keyward: no-such-dir: "),
        "{}",
        text(&missing.stderr)
    );

    let bad_threads = keyward(tree.dir.path(), &["scan", "-j", "0"], None);
    assert_eq!(bad_threads.status.code(), Some(2));

    std::fs::write(
        tree.dir.path().join("keyward.toml"),
        "[kinds.mt]\nkey_id_len = 99\n",
    )
    .unwrap();
    let bad_config = keyward(tree.dir.path(), &["scan"], None);
    assert_eq!(bad_config.status.code(), Some(2));
    let stderr = text(&bad_config.stderr);
    assert!(
        stderr.starts_with("keyward: ") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// The token `keyward issue` printed.
fn issue(dir: &Path, name: &str) -> String {
    let out = keyward(
        dir,
        &[
            "issue",
            "--kind",
            "mt",
            "--owner",
            "account:1",
            "--name",
            name,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

fn status(dir: &Path, key_id: &str) -> String {
    let out = keyward(dir, &["--json", "show", key_id], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let details: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    details["status"].as_str().unwrap().to_owned()
}

#[test]
fn revoke_revokes_a_live_leaked_key_once_and_nothing_a_forgery_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keyward.toml"),
        format!("[store]\nurl = \"sqlite://keys.db\"\n\n{KINDS}"),
    )
    .unwrap();
    assert_eq!(
        keyward(dir.path(), &["migrate"], None).status.code(),
        Some(0)
    );
    let leaked = issue(dir.path(), "leaked");
    let kept = issue(dir.path(), "kept");
    let disabled = issue(dir.path(), "disabled");
    let (leaked_id, kept_id) = (key_id(&leaked, "mt", 10), key_id(&kept, "mt", 10));
    let disabled_id = key_id(&disabled, "mt", 10);
    assert_eq!(
        keyward(dir.path(), &["disable", &disabled_id], None)
            .status
            .code(),
        Some(0)
    );
    // A forgery: the kept key's id with a made-up secret and a valid
    // checksum. It must not get the kept key revoked.
    let forged = mint("mt", &format!("{kept_id}{}", body(9, 27)));
    std::fs::create_dir_all(dir.path().join("repo")).unwrap();
    std::fs::write(
        dir.path().join("repo/deploy.sh"),
        format!("export A={leaked}\nexport B={forged}\nexport C={disabled}\n"),
    )
    .unwrap();

    let out = keyward(dir.path(), &["--json", "scan", "--revoke", "repo"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let revocations = report["revocations"].as_array().unwrap();
    let outcome = |id: &str| {
        revocations
            .iter()
            .find(|r| r["key_id"] == id)
            .map(|r| {
                (
                    r["outcome"].as_str().unwrap().to_owned(),
                    r["found_at"].clone(),
                )
            })
            .unwrap()
    };
    assert_eq!(outcome(&leaked_id).0, "revoked");
    assert_eq!(
        outcome(&leaked_id).1,
        serde_json::json!(["repo/deploy.sh:1:10"])
    );
    assert_eq!(outcome(&kept_id).0, "unknown");
    assert_eq!(outcome(&disabled_id).0, "revoked", "a disabled key is live");
    assert_eq!(status(dir.path(), &disabled_id), "revoked");
    assert_eq!(status(dir.path(), &leaked_id), "revoked");
    assert_eq!(status(dir.path(), &kept_id), "active");
    // The audit event says who revoked it and where the token was found.
    let audit = keyward(dir.path(), &["--json", "audit", "--key", &leaked_id], None);
    let events: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let revoke = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "revoke")
        .unwrap();
    assert_eq!(
        revoke["detail"],
        "reason: leak reported by cli:alice in keyward scan at repo/deploy.sh:1:10"
    );
    assert!(
        revoke["actor"].as_str().unwrap().contains("cli:alice"),
        "{revoke}"
    );
    assert!(!text(&audit.stdout).contains(&leaked));

    // Once revoked, a second scan changes nothing and says so.
    let again = keyward(dir.path(), &["scan", "--revoke", "repo"], None);
    assert_eq!(again.status.code(), Some(1));
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains(&format!("already revoked mt_{leaked_id}…")),
        "{stderr}"
    );
    assert!(!stderr.contains(&leaked) && !text(&again.stdout).contains(&leaked));
}

#[test]
fn revoke_without_a_store_is_a_usage_error_before_any_scan() {
    let tree = tree();
    let out = keyward(tree.dir.path(), &["scan", "--revoke"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("store"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
}

/// The code block of docs/cli.md that holds `marker`.
fn doc_snippet(marker: &str) -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    doc.split("```")
        .find(|block| block.contains(marker))
        .map(|block| block.split_once('\n').unwrap().1.to_owned())
        .unwrap_or_else(|| panic!("docs/cli.md has no code block with {marker:?}"))
}

fn git(dir: &Path, args: &[&str], path: &std::ffi::OsStr) -> Output {
    Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Alice",
            "-c",
            "user.email=alice@example.invalid",
        ])
        .args(args)
        .env("PATH", path)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn the_documented_pre_commit_hook_refuses_a_commit_that_adds_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // `keyward` on the PATH, as the hook expects.
    let bin = Path::new(env!("CARGO_BIN_EXE_keyward")).parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin.to_owned())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    assert!(git(root, &["init", "-q"], &path).status.success());
    std::fs::write(root.join("keyward.toml"), KINDS).unwrap();
    let hook = root.join(".git/hooks/pre-commit");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, doc_snippet("# .git/hooks/pre-commit")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    std::fs::write(root.join("README"), "nothing secret\n").unwrap();
    assert!(
        git(root, &["add", "README", "keyward.toml"], &path)
            .status
            .success()
    );
    let clean = git(root, &["commit", "-q", "-m", "clean"], &path);
    assert!(clean.status.success(), "{}", text(&clean.stderr));

    let token = mint("mt", &body(21, 37));
    std::fs::write(root.join("deploy.sh"), format!("export KEY={token}\n")).unwrap();
    assert!(git(root, &["add", "deploy.sh"], &path).status.success());
    let refused = git(root, &["commit", "-q", "-m", "leak"], &path);
    assert!(!refused.status.success(), "the hook must refuse the commit");
    let said = format!("{}{}", text(&refused.stdout), text(&refused.stderr));
    assert!(
        said.contains(&format!(
            "deploy.sh:1:12: mt mt_{}…",
            key_id(&token, "mt", 10)
        )),
        "{said}"
    );
    assert!(said.contains("pre-commit: a keyward token"), "{said}");
    assert!(!said.contains(&token));
    let log = git(root, &["log", "--oneline"], &path);
    assert_eq!(
        text(&log.stdout).lines().count(),
        1,
        "only the clean commit"
    );
}

#[cfg(unix)]
#[test]
fn a_file_name_cannot_drive_the_terminal() {
    let tree = tree();
    let name = "evil\u{1b}]0;owned\u{7}\u{202e}txt.rs";
    std::fs::write(tree.dir.path().join(name), format!("k = {}\n", tree.mt)).unwrap();
    let out = keyward(tree.dir.path(), &["scan", name], None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{202e}'),
        "{stdout:?}"
    );
    assert!(
        stdout.starts_with("evil\\u{1b}]0;owned\\u{7}\\u{202e}txt.rs:1:5: mt "),
        "{stdout:?}"
    );
    // JSON carries the name as it is (escaped by JSON itself).
    let out = keyward(tree.dir.path(), &["--json", "scan", name], None);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["path"], name);
    // A path that cannot be searched is reported escaped too.
    let out = keyward(tree.dir.path(), &["scan", "gone\u{1b}[2J"], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("keyward: gone\\u{1b}[2J: "),
        "{stderr:?}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn on_a_terminal_a_long_scan_draws_a_progress_bar() {
    // util-linux's `script` runs the command on a pseudo-terminal.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let tree = tree();
    let command = format!(
        "yes 'a log line, nothing secret in it' | head -c 300000000 | {} --config keyward.toml scan -",
        env!("CARGO_BIN_EXE_keyward")
    );
    let out = Command::new("script")
        .current_dir(tree.dir.path())
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let seen = text(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("MiB/s"), "no bar drawn: {seen:?}");
    assert!(seen.contains("0 tokens found in 1 file"), "{seen:?}");
}
