//! Runs the `keyward` binary as a user does, against a deployment of its
//! own (a configuration file in a new directory), and the scenarios every
//! backend must pass.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the support"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a failure is a failed test"
)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The operator name the tests run as.
pub const USER: &str = "tester";

/// What one run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    /// Checks the exit code, and that no failure looks like a crash.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code of {self:#?}");
        for crash in [
            "panicked",
            "RUST_BACKTRACE",
            "stack backtrace",
            "Error {",
            "Backend {",
        ] {
            assert!(
                !self.stderr.contains(crash),
                "a crash or a Debug dump: {self:#?}"
            );
        }
        self
    }

    /// Checks the run failed with exit `code` and one clear line on stderr
    /// containing `text`.
    pub fn fails(self, code: i32, text: &str) -> Self {
        let run = self.expect(code);
        assert!(run.stderr.starts_with("keyward: "), "{run:#?}");
        assert_eq!(run.stderr.lines().count(), 1, "one line: {run:#?}");
        assert!(run.stderr.contains(text), "{text:?} in {run:#?}");
        run
    }
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}_{nanos}_{n}", std::process::id())
}

/// The kinds every test deployment declares, after its `[store]`.
pub const KINDS: &str = r#"
[kinds.mt]
live_limit = 3
catalog = ["reports.read", "reports.write", "billing.*"]

[kinds.mt.expiry]
choices = ["1 month", "3 months", "6 months"]
default = "3 months"

[kinds.tak]
catalog = ["*"]
"#;

/// A configuration file in a directory of its own, and the environment
/// the binary runs with.
#[derive(Debug)]
pub struct Deployment {
    pub dir: PathBuf,
    pub config: PathBuf,
    env: Vec<(String, String)>,
}

impl Deployment {
    /// A new directory holding `keyward.toml` with `text`.
    pub fn with_config(text: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("keyward.toml");
        std::fs::write(&config, text).unwrap();
        Self {
            dir,
            config,
            env: Vec::new(),
        }
    }

    /// A SQLite deployment, migrated.
    pub fn sqlite() -> Self {
        let deployment =
            Self::with_config(&format!("[store]\nurl = \"sqlite://keys.db\"\n{KINDS}"));
        deployment.run(&["migrate"]).expect(0);
        deployment
    }

    /// Sets a variable for every run.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs `keyward --config <file> ARGS` from the deployment's directory.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    /// [`Deployment::run`] with `stdin`.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(&self.dir)
            .env_remove("KEYWARD_CONFIG")
            .env_remove("NO_COLOR")
            .env("USER", USER)
            .env("RUST_BACKTRACE", "1");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        run(command, stdin)
    }
}

/// Runs a prepared command with `stdin`.
pub fn run(mut command: Command, stdin: &str) -> Run {
    use std::io::Write;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Every output a scenario saw, to check where a token appears.
#[derive(Debug, Default)]
pub struct Transcript {
    runs: Vec<(Vec<String>, Run)>,
}

impl Transcript {
    pub fn run(&mut self, deployment: &Deployment, args: &[&str], code: i32) -> &Run {
        self.run_with_stdin(deployment, args, "", code)
    }

    pub fn run_with_stdin(
        &mut self,
        deployment: &Deployment,
        args: &[&str],
        stdin: &str,
        code: i32,
    ) -> &Run {
        let run = deployment.run_with_stdin(args, stdin).expect(code);
        self.runs
            .push((args.iter().map(|a| (*a).to_owned()).collect(), run));
        &self.runs.last().unwrap().1
    }

    /// `token` appears only where it was issued: on stdout of `issue` or
    /// `rotate`, as its single line (or in its JSON answer), and in the
    /// arguments of a `verify` (where it was given).
    pub fn assert_token_only_where_issued(&self, token: &str) {
        let mut shown = 0;
        for (args, run) in &self.runs {
            assert!(!run.stderr.contains(token), "{token} on stderr of {args:?}");
            let command = args.first().map(String::as_str);
            let json = args.iter().any(|a| a == "--json");
            let issuing = matches!(command, Some("issue" | "rotate"))
                || (json && matches!(args.get(1).map(String::as_str), Some("issue" | "rotate")));
            if run.stdout.contains(token) {
                assert!(issuing, "{token} on stdout of {args:?}");
                if !json {
                    assert_eq!(run.stdout, format!("{token}\n"), "the single token line");
                }
                shown += 1;
            }
        }
        assert_eq!(shown, 1, "shown exactly once");
    }
}

/// The whole life of a key through the CLI, with every command's output,
/// JSON shape and exit code.
pub fn lifecycle(deployment: &Deployment) {
    let mut t = Transcript::default();
    let owner = format!("account:{}", unique());

    // issue: the token alone on stdout, the warning on stderr.
    let issued = t.run(
        deployment,
        &[
            "issue",
            "--kind",
            "mt",
            "--owner",
            &owner,
            "--name",
            "CI deploy",
            "--scope",
            "reports.read",
            "--meta",
            "team=ops",
        ],
        0,
    );
    let token = issued.stdout.trim().to_owned();
    assert!(token.starts_with("mt_"), "{issued:#?}");
    assert!(issued.stderr.contains("shown once"), "{issued:#?}");
    assert!(issued.stderr.contains("expires"), "{issued:#?}");

    // The JSON answer of issue: {"token", "key"}.
    let json_issue = t
        .run(
            deployment,
            &[
                "--json", "issue", "--kind", "tak", "--owner", &owner, "--name", "second",
            ],
            0,
        )
        .json();
    let second_token = json_issue["token"].as_str().unwrap().to_owned();
    assert!(second_token.starts_with("tak_"));
    assert_eq!(json_issue["key"]["name"], "second");
    assert_eq!(json_issue["key"]["expires_at"], Value::Null);

    // list: a table, newest first.
    let list = t.run(deployment, &["list", "--owner", &owner], 0);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "header and two keys: {list:#?}");
    assert!(lines[0].starts_with("ID "), "{list:#?}");
    for column in [
        "KIND",
        "NAME",
        "STATUS",
        "PREVIEW",
        "CREATED",
        "LAST USED",
        "EXPIRES",
    ] {
        assert!(lines[0].contains(column), "{column}");
    }
    assert!(
        lines[1].contains("second") && lines[2].contains("CI deploy"),
        "{list:#?}"
    );
    assert!(
        !list.stdout.contains('\x1b'),
        "no colour when not a terminal"
    );
    let status_at = lines[0].find("STATUS").unwrap();
    assert_eq!(
        lines[1].get(status_at..status_at + 6),
        Some("active"),
        "aligned"
    );
    assert_eq!(
        lines[2].get(status_at..status_at + 6),
        Some("active"),
        "aligned"
    );

    // list --json: the Page shape.
    let page = t
        .run(
            deployment,
            &["--json", "list", "--owner", &owner, "--kind", "mt"],
            0,
        )
        .json();
    assert_eq!(page["next"], Value::Null);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let mut fields: Vec<&str> = items[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "created_by",
            "expires_at",
            "id",
            "inherits_owner",
            "kind",
            "last_used_at",
            "metadata",
            "name",
            "owner",
            "permissions",
            "preview",
            "revoked_at",
            "roles",
            "rotated_from",
            "rotated_to",
            "scopes",
            "status"
        ]
    );
    assert_eq!(items[0]["created_by"], format!("operator:cli:{USER}"));
    assert_eq!(items[0]["metadata"]["team"], "ops");
    assert!(token.contains(&id), "the id is the token's public part");

    // filters: status and name.
    let none = t
        .run(
            deployment,
            &["--json", "list", "--owner", &owner, "--status", "revoked"],
            0,
        )
        .json();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let named = t
        .run(
            deployment,
            &["--json", "list", "--owner", &owner, "--name", "ci DEP"],
            0,
        )
        .json();
    assert_eq!(named["items"].as_array().unwrap().len(), 1);

    // show.
    let show = t.run(deployment, &["show", &id], 0);
    assert!(
        show.stdout.contains("CI deploy") && show.stdout.contains("reports.read"),
        "{show:#?}"
    );
    assert!(show.stdout.contains(&format!("operator:cli:{USER}")));
    let details = t.run(deployment, &["--json", "show", &id], 0).json();
    assert_eq!(details["status"], "active");
    assert_eq!(details["scopes"], serde_json::json!(["reports.read"]));

    // verify: valid, missing a permission, from stdin.
    let valid = t.run(
        deployment,
        &["verify", &token, "--require", "reports.read"],
        0,
    );
    assert!(valid.stdout.contains("valid"), "{valid:#?}");
    let valid = t.run(deployment, &["--json", "verify", &token], 0).json();
    assert_eq!(valid["valid"], true);
    assert_eq!(valid["key_id"], id.as_str());
    assert_eq!(valid["owner"], owner.as_str());
    let missing = t
        .run(
            deployment,
            &["--json", "verify", &token, "--require", "billing.read"],
            1,
        )
        .json();
    assert_eq!(missing["valid"], false);
    assert_eq!(missing["reason"], "insufficient_permissions");
    assert_eq!(missing["missing"], serde_json::json!(["billing.read"]));
    let piped = t
        .run_with_stdin(
            deployment,
            &["--json", "verify", "-"],
            &format!("{token}\n"),
            0,
        )
        .json();
    assert_eq!(piped["valid"], true);

    // disable, verify refused, enable, verify valid.
    let disabled = t.run(deployment, &["--json", "disable", &id], 0).json();
    assert_eq!(disabled["status"], "disabled");
    let refused = t.run(deployment, &["verify", &token], 1);
    assert!(refused.stdout.contains("disabled"), "{refused:#?}");
    assert!(
        refused.stderr.is_empty(),
        "the refusal is the answer: {refused:#?}"
    );
    let enabled = t.run(deployment, &["enable", &id], 0);
    assert!(enabled.stdout.contains("active"), "{enabled:#?}");
    t.run(deployment, &["verify", &token], 0);

    // rotate with an overlap: both work.
    let rotated = t
        .run(deployment, &["--json", "rotate", &id, "--overlap", "1h"], 0)
        .json();
    let successor = rotated["token"].as_str().unwrap().to_owned();
    assert_eq!(rotated["key"]["rotated_from"], id.as_str());
    assert!(
        rotated["key"]["expires_at"].is_string(),
        "lives as long as the original"
    );
    t.run(deployment, &["verify", &token], 0);
    t.run(deployment, &["verify", &successor], 0);
    let old = t.run(deployment, &["--json", "show", &id], 0).json();
    assert_eq!(old["rotated_to"], rotated["key"]["id"]);

    // revoke: final.
    let revoked = t.run(deployment, &["--json", "revoke", &id], 0).json();
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    let refused = t.run(deployment, &["--json", "verify", &token], 1).json();
    assert_eq!(refused["reason"], "revoked");
    t.run(deployment, &["enable", &id], 1);
    t.run(deployment, &["verify", &successor], 0);

    // audit: newest first, as the operator.
    let events = t
        .run(deployment, &["--json", "audit", "--owner", &owner], 0)
        .json();
    let events = events.as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.get(..6),
        Some(&["enable", "revoke", "rotate", "enable", "disable", "issue"][..]),
        "newest first: {actions:?}"
    );
    assert_eq!(
        events[0]["outcome"]["refused"],
        "cannot enable a key that is revoked"
    );
    assert!(
        events
            .iter()
            .all(|e| e["actor"] == format!("operator:cli:{USER}"))
    );
    let by_key = t
        .run(
            deployment,
            &["--json", "audit", "--key", &id, "--limit", "2"],
            0,
        )
        .json();
    assert_eq!(by_key.as_array().unwrap().len(), 2);
    let table = t.run(deployment, &["audit", "--owner", &owner, "--limit", "3"], 0);
    assert_eq!(table.stdout.lines().count(), 4, "{table:#?}");
    assert!(
        table
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .contains("refused: cannot enable")
    );

    // expiring: the successor expires within 100 days (3 months).
    let soon = t
        .run(deployment, &["--json", "expiring", "--within", "100d"], 0)
        .json();
    let successor_id = rotated["key"]["id"].as_str().unwrap();
    assert!(
        soon.as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == successor_id)
    );
    let not_soon = t
        .run(deployment, &["--json", "expiring", "--within", "1d"], 0)
        .json();
    assert!(
        !not_soon
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == successor_id)
    );
    let table = t.run(deployment, &["expiring", "--within", "100d"], 0);
    assert!(table.stdout.starts_with("EXPIRES"), "{table:#?}");

    // roles: put, list, delete; a key with the role carries it.
    let role = t
        .run(
            deployment,
            &[
                "--json",
                "roles",
                "put",
                "--owner",
                &owner,
                "reader",
                "--permission",
                "reports.read",
            ],
            0,
        )
        .json();
    assert_eq!(
        role,
        serde_json::json!({"owner": owner, "name": "reader", "permissions": ["reports.read"]})
    );
    let listed = t.run(
        deployment,
        &["roles", "list", "--owner", &owner, "reader", "absent"],
        0,
    );
    assert!(listed.stdout.contains("reader") && listed.stdout.contains("reports.read"));
    assert!(
        listed.stderr.contains("no such role: absent"),
        "{listed:#?}"
    );
    let with_role = t.run(
        deployment,
        &[
            "issue", "--kind", "mt", "--owner", &owner, "--name", "by role", "--role", "reader",
        ],
        0,
    );
    let role_token = with_role.stdout.trim().to_owned();
    t.run(
        deployment,
        &["verify", &role_token, "--require", "reports.read"],
        0,
    );
    let deleted = t
        .run(
            deployment,
            &["--json", "roles", "delete", "--owner", &owner, "reader"],
            0,
        )
        .json();
    assert_eq!(deleted["deleted"], true);
    t.run(
        deployment,
        &["verify", &role_token, "--require", "reports.read"],
        1,
    );
    t.run(
        deployment,
        &["roles", "delete", "--owner", &owner, "reader"],
        1,
    );

    for secret in [&token, &second_token, &successor, &role_token] {
        t.assert_token_only_where_issued(secret);
    }
}

/// Cursor paging: pages of `--limit`, the next cursor printed, and `--all`.
pub fn paging(deployment: &Deployment) {
    let owner = format!("account:{}", unique());
    for n in 0..5 {
        deployment
            .run(&[
                "issue",
                "--kind",
                "tak",
                "--owner",
                &owner,
                "--name",
                &format!("key {n}"),
            ])
            .expect(0);
    }
    let first = deployment
        .run(&["list", "--owner", &owner, "--limit", "2"])
        .expect(0);
    let last_line = first.stdout.lines().last().unwrap();
    let cursor = last_line.strip_prefix("next page: --cursor ").unwrap();
    assert_eq!(
        first.stdout.lines().count(),
        4,
        "header, 2 keys, cursor: {first:#?}"
    );
    assert!(first.stdout.contains("key 4") && first.stdout.contains("key 3"));

    let second = deployment
        .run(&[
            "--json", "list", "--owner", &owner, "--limit", "2", "--cursor", cursor,
        ])
        .expect(0)
        .json();
    let names: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["key 2", "key 1"]);
    let cursor = second["next"].as_str().unwrap();
    let third = deployment
        .run(&[
            "--json", "list", "--owner", &owner, "--limit", "2", "--cursor", cursor,
        ])
        .expect(0)
        .json();
    assert_eq!(third["items"].as_array().unwrap().len(), 1);
    assert_eq!(third["next"], Value::Null);

    let all = deployment
        .run(&["--json", "list", "--owner", &owner, "--limit", "2", "--all"])
        .expect(0)
        .json();
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["key 4", "key 3", "key 2", "key 1", "key 0"]);
    assert_eq!(all["next"], Value::Null);

    deployment
        .run(&["list", "--owner", &owner, "--limit", "0"])
        .fails(2, "limit");
    deployment
        .run(&["list", "--owner", &owner, "--limit", "1001"])
        .fails(2, "limit");
    deployment
        .run(&["list", "--owner", &owner, "--cursor", "garbage"])
        .expect(2);
}

/// Bad input of every kind: a clear line, the right exit code, nothing lost.
pub fn bad_input(deployment: &Deployment) {
    let owner = format!("account:{}", unique());
    deployment
        .run(&["show", "AAAAAAAAAA"])
        .fails(1, "no key with id AAAAAAAAAA");
    deployment
        .run(&["revoke", "AAAAAAAAAA"])
        .fails(1, "no key with id");
    deployment
        .run(&["rotate", "AAAAAAAAAA"])
        .fails(1, "no key with id");
    deployment.run(&["show", "not an id!"]).expect(2);
    let malformed = deployment
        .run(&["--json", "verify", "mt_garbage"])
        .expect(1)
        .json();
    assert_eq!(malformed["reason"], "malformed");
    let unknown = deployment
        .run(&["--json", "verify", "zz_abc"])
        .expect(1)
        .json();
    assert_eq!(unknown["reason"], "malformed");
    deployment.run(&["verify", ""]).expect(1);

    // A whole token where an id is expected names its key; a mistyped one
    // is refused without being printed back.
    let issued = deployment
        .run(&[
            "--json", "issue", "--kind", "tak", "--owner", &owner, "--name", "by token",
        ])
        .expect(0)
        .json();
    let token = issued["token"].as_str().unwrap();
    let shown = deployment.run(&["--json", "show", token]).expect(0).json();
    assert_eq!(shown["id"], issued["key"]["id"]);
    let last = token.chars().last().unwrap();
    let typo = format!(
        "{}{}",
        &token[..token.len() - 1],
        if last == 'a' { 'b' } else { 'a' }
    );
    for args in [
        &["show", typo.as_str()][..],
        &["revoke", &typo],
        &["audit", "--key", &typo],
        &["rotate", &typo],
    ] {
        let run = deployment.run(args).fails(2, "invalid");
        assert!(
            !run.stderr.contains(&typo[4..]) && !run.stdout.contains(&typo[4..]),
            "{run:#?}"
        );
    }
    deployment.run(&["verify", token]).expect(0);

    // Stored text cannot drive the operator's terminal.
    deployment
        .run(&[
            "issue",
            "--kind",
            "tak",
            "--owner",
            &owner,
            "--name",
            "meta",
            "--meta",
            "note=\u{1b}]0;owned\u{7}red",
        ])
        .expect(0);
    let listed = deployment
        .run(&["--json", "list", "--owner", &owner, "--name", "meta"])
        .expect(0)
        .json();
    let id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        listed["items"][0]["metadata"]["note"], "\u{1b}]0;owned\u{7}red",
        "kept as given"
    );
    let show = deployment.run(&["show", &id]).expect(0);
    assert!(
        !show.stdout.contains('\u{1b}') && !show.stdout.contains('\u{7}'),
        "{show:#?}"
    );
    assert!(
        show.stdout.contains("note=\\u{1b}]0;owned\\u{7}red"),
        "{show:#?}"
    );

    // What the kind does not allow.
    deployment
        .run(&[
            "issue",
            "--kind",
            "mt",
            "--owner",
            &owner,
            "--name",
            "x",
            "--expires",
            "1 year",
        ])
        .fails(2, "choose one of: 1 month, 3 months, 6 months");
    deployment
        .run(&[
            "issue",
            "--kind",
            "mt",
            "--owner",
            &owner,
            "--name",
            "x",
            "--scope",
            "admin.all",
        ])
        .fails(2, "does not offer: admin.all");
    deployment
        .run(&["issue", "--kind", "nope", "--owner", &owner, "--name", "x"])
        .fails(2, "no such token kind");
    deployment
        .run(&[
            "issue",
            "--kind",
            "mt",
            "--owner",
            &owner,
            "--name",
            "x",
            "--expires",
            "6 weeks",
        ])
        .expect(2);
    deployment
        .run(&[
            "issue",
            "--kind",
            "mt",
            "--owner",
            &owner,
            "--name",
            &"n".repeat(20_000),
        ])
        .fails(2, "invalid name");
    deployment
        .run(&["issue", "--kind", "mt", "--owner", "", "--name", "x"])
        .expect(2);

    // The live-key limit is a refusal (1).
    for n in 0..3 {
        deployment
            .run(&[
                "issue",
                "--kind",
                "mt",
                "--owner",
                &owner,
                "--name",
                &format!("k{n}"),
            ])
            .expect(0);
    }
    deployment
        .run(&[
            "issue", "--kind", "mt", "--owner", &owner, "--name", "fourth",
        ])
        .fails(1, "limit reached");

    // SQL-looking input is only data.
    let sql = "x'); DROP TABLE keyward_keys; --";
    let sql_owner = format!("{owner}'; DELETE FROM keyward_keys; --");
    deployment
        .run(&[
            "issue", "--kind", "tak", "--owner", &sql_owner, "--name", sql,
        ])
        .expect(0);
    let listed = deployment
        .run(&["--json", "list", "--owner", &sql_owner, "--name", "DROP"])
        .expect(0)
        .json();
    assert_eq!(listed["items"][0]["name"], sql);
    let limited = deployment
        .run(&["--json", "list", "--owner", &owner, "--kind", "mt"])
        .expect(0)
        .json();
    assert_eq!(
        limited["items"].as_array().unwrap().len(),
        3,
        "nothing lost"
    );

    // Usage errors, as clap reports them: exit 2.
    for args in [
        &["lis"][..],
        &["show"],
        &["issue", "--kind", "mt"],
        &["rotate", "AAAAAAAAAA", "--overlap", "forever"],
        &["expiring", "--within", "-1d"],
        &["list", "--owner", "a", "--status", "dead"],
    ] {
        let run = deployment.run(args).expect(2);
        assert!(run.stderr.contains("error:"), "{args:?}: {run:#?}");
        assert!(run.stdout.is_empty());
    }
}

/// Listing across owners, revoke reasons, audit filters and prune.
pub fn operator_views_and_prune(deployment: &Deployment) {
    let tag = unique();
    let (alice, bob) = (format!("user:alice-{tag}"), format!("user:bob-{tag}"));
    let issue = |owner: &str, name: &str| {
        deployment
            .run(&[
                "--json", "issue", "--kind", "tak", "--owner", owner, "--name", name,
            ])
            .expect(0)
            .json()
    };
    let a = issue(&alice, &format!("a {tag}"));
    let b = issue(&bob, &format!("b {tag}"));
    let a_id = a["key"]["id"].as_str().unwrap();

    // Every owner's keys, when no owner is named.
    let all = deployment
        .run(&["--json", "list", "--name", &tag, "--all"])
        .expect(0)
        .json();
    let owners: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["owner"].as_str().unwrap())
        .collect();
    assert_eq!(
        owners,
        [bob.as_str(), alice.as_str()],
        "newest first, both owners"
    );
    let table = deployment.run(&["list", "--name", &tag]).expect(0);
    assert_eq!(table.stdout.lines().count(), 3, "{table:#?}");
    // Never used counts as used before any time.
    let unused = deployment
        .run(&[
            "--json",
            "list",
            "--name",
            &tag,
            "--last-used-before",
            "2000-01-01",
        ])
        .expect(0)
        .json();
    assert_eq!(unused["items"].as_array().unwrap().len(), 2);

    // revoke --reason: in the audit event; a reason quoting a token is refused.
    let token = a["token"].as_str().unwrap();
    deployment
        .run(&[
            "revoke",
            a_id,
            "--reason",
            &format!("pasted {token} in chat"),
        ])
        .fails(2, "invalid reason");
    deployment.run(&["verify", token]).expect(0);
    deployment
        .run(&["--json", "revoke", a_id, "--reason", "found in the CI logs"])
        .expect(0);
    let events = deployment
        .run(&["--json", "audit", "--key", a_id, "--action", "revoke"])
        .expect(0)
        .json();
    let events = events.as_array().unwrap();
    assert!(events.iter().all(|e| e["action"] == "revoke"));
    assert!(events.iter().any(|e| {
        e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("found in the CI logs"))
    }));
    assert!(
        !serde_json::to_string(events).unwrap().contains(token),
        "the token is never stored"
    );
    let since = deployment
        .run(&["--json", "audit", "--key", a_id, "--since", "1h"])
        .expect(0)
        .json();
    assert!(
        since.as_array().unwrap().len() >= 2,
        "issue and revoke in the last hour"
    );
    let until = deployment
        .run(&["--json", "audit", "--key", a_id, "--until", "2000-01-01"])
        .expect(0)
        .json();
    assert_eq!(until, serde_json::json!([]));
    deployment.run(&["audit", "--action", "explode"]).expect(2);

    // prune: the revoked key goes, the live one stays, one event counts it.
    deployment.run(&["prune"]).fails(2, "name at least one");
    deployment
        .run(&["prune", "--revoked-before", "2999-01-01"])
        .fails(2, "future");
    let report = deployment
        .run(&[
            "--json",
            "prune",
            "--revoked-before",
            "0",
            "--batch-size",
            "1",
        ])
        .expect(0)
        .json();
    assert!(report["revoked_keys"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["expired_keys"], 0);
    assert_eq!(report["audit_events"], 0);
    deployment.run(&["show", a_id]).fails(1, "no key with id");
    deployment.run(&["verify", token]).expect(1);
    deployment
        .run(&["verify", b["token"].as_str().unwrap()])
        .expect(0);
    let pruned = deployment
        .run(&["--json", "audit", "--action", "prune", "--limit", "1"])
        .expect(0)
        .json();
    assert_eq!(pruned[0]["actor"], format!("operator:cli:{USER}"));
    assert!(
        pruned[0]["detail"]
            .as_str()
            .unwrap()
            .contains("revoked_keys="),
        "{pruned}"
    );
    let text = deployment
        .run(&["prune", "--audit-before", "3650d"])
        .expect(0);
    assert!(
        text.stdout
            .starts_with("pruned 0 revoked keys, 0 expired keys and "),
        "{text:#?}"
    );
}
