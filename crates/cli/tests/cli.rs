//! The `keyward` binary against SQLite, and what needs no store at all:
//! configuration errors, an unreachable database, usage errors, completions.

mod support;

use support::{Deployment, KINDS};

#[test]
fn every_command_through_a_keys_life_on_sqlite() {
    support::lifecycle(&Deployment::sqlite());
}

#[test]
fn lists_page_by_cursor_on_sqlite() {
    support::paging(&Deployment::sqlite());
}

#[test]
fn bad_input_is_a_clear_line_and_loses_nothing_on_sqlite() {
    support::bad_input(&Deployment::sqlite());
}

#[test]
fn every_owner_reasons_audit_filters_and_prune_on_sqlite() {
    support::operator_views_and_prune(&Deployment::sqlite());
}

#[tokio::test]
async fn last_used_before_lists_the_keys_unused_since() {
    let deployment = Deployment::sqlite();
    let issue = |name: &str| {
        deployment
            .run(&[
                "--json", "issue", "--kind", "tak", "--owner", "a", "--name", name,
            ])
            .expect(0)
            .json()
    };
    let (used, unused) = (issue("used"), issue("unused"));
    // A service on the same file records a use.
    let config = keyward::config::Config::from_path(&deployment.config).unwrap();
    let keyward = config.open().await.unwrap();
    let need = keyward::Requirement::nothing();
    keyward
        .verify(used["token"].as_str().unwrap(), &need)
        .await
        .unwrap();
    assert_eq!(keyward.flush_usage().await.unwrap(), 1);
    let stale = deployment
        .run(&["--json", "list", "--owner", "a", "--last-used-before", "1d"])
        .expect(0)
        .json();
    let names: Vec<&str> = stale["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["unused"]);
    assert_eq!(unused["key"]["last_used_at"], serde_json::Value::Null);
    let table = deployment.run(&["list", "--owner", "a"]).expect(0);
    assert!(table.stdout.contains("just now"), "{table:#?}");
    // verify from the CLI is a diagnosis, not a use.
    deployment
        .run(&["verify", unused["token"].as_str().unwrap()])
        .expect(0);
    let still = deployment
        .run(&["--json", "show", unused["key"]["id"].as_str().unwrap()])
        .expect(0)
        .json();
    assert_eq!(still["last_used_at"], serde_json::Value::Null);
}

#[test]
fn migrate_answers_in_text_and_json_and_is_idempotent() {
    let deployment =
        Deployment::with_config(&format!("[store]\nurl = \"sqlite://data.db\"\n{KINDS}"));
    // Before migrate: no database, and nothing created by asking.
    deployment
        .run(&["list", "--owner", "a"])
        .fails(2, "`keyward migrate` creates it");
    assert!(!deployment.dir.join("data.db").exists());
    let text = deployment.run(&["migrate"]).expect(0);
    let expected = format!(
        "migrated: sqlite {}\n",
        deployment
            .dir
            .canonicalize()
            .unwrap()
            .join("data.db")
            .display()
    );
    assert_eq!(
        text.stdout, expected,
        "a relative path is taken from the file's directory"
    );
    let json = deployment.run(&["--json", "migrate"]).expect(0).json();
    assert_eq!(
        json,
        serde_json::json!({"migrated": true, "store": "sqlite"})
    );
}

#[test]
fn a_bad_configuration_file_names_the_line_and_field_and_exits_2() {
    let cases = [
        (
            "[kinds.mt]\nlive_limit = \"three\"\n",
            "keyward.toml:2:14: kinds.mt.live_limit: invalid type",
        ),
        (
            "[kinds.mt]\nlive_limt = 3\n",
            "keyward.toml:2:1: kinds.mt.live_limt: unknown field `live_limt`",
        ),
        ("[kinds.MT]\n", "kinds.MT: invalid prefix `MT`"),
        (
            "[kinds.mt.expiry]\nchoices = [\"1 month\"]\ndefault = \"1 year\"\n",
            "keyward.toml:3:11: kinds.mt.expiry.default: `1 year` is not one of the choices (allowed: 1 month)",
        ),
        (
            "[kinds.mt.expiry]\nchoices = [\"fortnight\"]\n",
            "kinds.mt.expiry.choices[0]: invalid lifetime",
        ),
        (
            "[hashing]\npepper_env = \"KEYWARD_TEST_PEPPER_UNSET\"\n[kinds.mt]\n",
            "keyward.toml:2:14: hashing.pepper_env: the variable KEYWARD_TEST_PEPPER_UNSET is not set",
        ),
        ("[kinds.mt]\n", "store: missing: add a [store] table"),
        ("[store\n", "keyward.toml:1:"),
        (
            "[store]\nurl = \"sqlite::memory:\"\n[kinds.mt]\n[[kinds.mt.manages]]\nkind = \"mt\"\ncreate = \"a\"\nview = \"b\"\nrevoke = \"c\"\nenable = \"d\"\n",
            "keyward.toml: ",
        ),
    ];
    for (text, expected) in cases {
        let deployment = Deployment::with_config(text);
        let run = deployment.run(&["list", "--owner", "a"]).fails(2, expected);
        assert!(run.stdout.is_empty());
        // Every command reads the file the same way.
        deployment.run(&["migrate"]).fails(2, expected);
    }
    let deployment = Deployment::with_config("");
    std::fs::remove_file(&deployment.config).unwrap();
    deployment
        .run(&["migrate"])
        .fails(2, "cannot read the file: No such file or directory (os error 2) (give --config PATH or set KEYWARD_CONFIG)");
}

#[test]
fn the_config_comes_from_the_flag_the_variable_or_the_directory() {
    let deployment = Deployment::sqlite();
    let binary = env!("CARGO_BIN_EXE_keyward");
    // KEYWARD_CONFIG, from another directory.
    let mut command = std::process::Command::new(binary);
    command
        .args(["--json", "list", "--owner", "a"])
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env("KEYWARD_CONFIG", &deployment.config);
    let run = support::run(command, "").expect(0);
    assert_eq!(run.json()["items"], serde_json::json!([]));
    // ./keyward.toml by default, its relative SQLite path from its directory.
    let mut command = std::process::Command::new(binary);
    command
        .args(["--json", "list", "--owner", "a"])
        .current_dir(&deployment.dir)
        .env_remove("KEYWARD_CONFIG");
    support::run(command, "").expect(0);
    let mut command = std::process::Command::new(binary);
    command
        .arg("migrate")
        .current_dir(&deployment.dir)
        .env_remove("KEYWARD_CONFIG");
    let migrated = support::run(command, "").expect(0);
    let db = deployment.dir.canonicalize().unwrap().join("keys.db");
    assert_eq!(
        migrated.stdout,
        format!("migrated: sqlite {}\n", db.display())
    );
}

#[test]
fn a_pepper_from_the_environment_hashes_the_keys() {
    let text = format!(
        "[store]\nurl = \"sqlite://keys.db\"\n[hashing]\npepper_env = \"KW_CLI_PEPPER\"\n{KINDS}"
    );
    let pepper = "a-pepper-that-is-at-least-thirty-two-bytes";
    let deployment = Deployment::with_config(&text).env("KW_CLI_PEPPER", pepper);
    deployment.run(&["migrate"]).expect(0);
    let token = deployment
        .run(&[
            "issue", "--kind", "tak", "--owner", "a", "--name", "peppered",
        ])
        .expect(0)
        .stdout;
    deployment.run(&["verify", token.trim()]).expect(0);
    let other = deployment.env(
        "KW_CLI_PEPPER",
        "another-pepper-of-thirty-two-bytes-or-more",
    );
    let run = other.run(&["--json", "verify", token.trim()]).expect(1);
    assert_eq!(
        run.json()["reason"],
        "not_found",
        "another pepper: another digest"
    );
    let short = other.env("KW_CLI_PEPPER", "short");
    let run = short
        .run(&["list", "--owner", "a"])
        .fails(2, "at least 32 bytes");
    assert!(
        !run.stderr.contains("\"short\""),
        "the value is never echoed"
    );
}

#[test]
fn an_unreachable_database_is_a_clear_line_and_exit_2() {
    let deployment = Deployment::with_config(&format!(
        "[store]\nurl = \"postgres://keyward@127.0.0.1:9/keys\"\nconnect_timeout_secs = 2\n{KINDS}"
    ));
    for args in [
        &["list", "--owner", "a"][..],
        &["migrate"],
        &["verify", "mt_x"],
        &["revoke", "AAAAAAAAAA"],
    ] {
        let run = deployment.run(args).fails(2, "postgres backend error");
        assert!(run.stdout.is_empty(), "{args:?}");
    }
    let deployment =
        Deployment::with_config(&format!("[store]\nurl_env = \"KW_CLI_URL\"\n{KINDS}"))
            .env("KW_CLI_URL", "postgres://keyward:hunter2@127.0.0.1:9/keys");
    let run = deployment
        .run(&["list", "--owner", "a"])
        .fails(2, "postgres backend error");
    assert!(!run.stderr.contains("hunter2"), "{run:#?}");
}

#[test]
fn completions_come_from_the_command_definition() {
    let deployment = Deployment::with_config("not even toml");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = deployment.run(&["completions", shell]).expect(0);
        for command in ["issue", "revoke", "rotate", "expiring", "verify"] {
            assert!(run.stdout.contains(command), "{shell} completes {command}");
        }
    }
    deployment.run(&["completions", "tcsh"]).expect(2);
}

#[test]
fn a_reader_that_goes_away_is_not_a_failure() {
    let deployment = Deployment::sqlite();
    for n in 0..3 {
        deployment
            .run(&[
                "issue",
                "--kind",
                "tak",
                "--owner",
                "a",
                "--name",
                &format!("k{n}"),
            ])
            .expect(0);
    }
    for args in [
        &["completions", "bash"][..],
        &["list", "--owner", "a"],
        &["--json", "list", "--owner", "a"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
            .arg("--config")
            .arg(&deployment.config)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // `| head -0`
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let deployment = Deployment::with_config("");
    let help = deployment.run(&["--help"]).expect(0);
    assert!(help.stdout.contains("Usage: keyward"));
    assert!(help.stdout.contains("--config"));
    assert!(help.stdout.contains("KEYWARD_CONFIG"));
    let version = deployment.run(&["--version"]).expect(0);
    assert!(version.stdout.starts_with("keyward "));
}

#[test]
fn no_color_and_pipes_get_plain_text() {
    let deployment = Deployment::sqlite().env("NO_COLOR", "1");
    deployment
        .run(&["issue", "--kind", "tak", "--owner", "a", "--name", "n"])
        .expect(0);
    let run = deployment.run(&["list", "--owner", "a"]).expect(0);
    assert!(!run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'));
}

/// `roles list --owner O` without names prints every role of the owner in
/// name order, past the 1000 of one store page, and nobody else's; `--after`
/// resumes after a name; names and `--after` do not mix.
#[tokio::test]
async fn roles_list_without_names_prints_every_role_of_the_owner() {
    let deployment = Deployment::sqlite();
    // Seed through the library, on the same file: 1003 roles of one owner
    // (more than one page), and two of another, one of the same name.
    let config = keyward::config::Config::from_path(&deployment.config).unwrap();
    let keyward = config.open().await.unwrap();
    let operator = keyward::Actor::operator("seed");
    let role = |owner: &str, name: &str, permission: &str| {
        keyward::Role::new(
            keyward::Owner::new(owner).unwrap(),
            keyward::RoleName::new(name).unwrap(),
            keyward::PermissionSet::parse([permission]).unwrap(),
        )
    };
    // Inserted in reverse, so name order is the store's doing.
    let names: Vec<String> = (0..1003).map(|n| format!("r{n:04}")).collect();
    for (n, name) in names.iter().enumerate().rev() {
        let permission = format!("area{n}.read");
        keyward
            .put_role(&operator, role("workspace:a", name, &permission))
            .await
            .unwrap();
    }
    for name in ["r0001", "zz-other"] {
        keyward
            .put_role(&operator, role("workspace:b", name, "everything.else"))
            .await
            .unwrap();
    }
    drop(keyward);

    let all = deployment
        .run(&["--json", "roles", "list", "--owner", "workspace:a"])
        .expect(0)
        .json();
    let all = all.as_array().unwrap();
    let listed: Vec<&str> = all.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(listed, names, "every role, in name order, past one page");
    assert!(all.iter().all(|r| r["owner"] == "workspace:a"));
    assert_eq!(
        all[1],
        serde_json::json!({"owner": "workspace:a", "name": "r0001", "permissions": ["area1.read"]}),
        "the owner's own role of a name another owner has too"
    );

    let table = deployment
        .run(&["roles", "list", "--owner", "workspace:b"])
        .expect(0);
    let rows: Vec<Vec<&str>> = table
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["ROLE", "PERMISSIONS"],
            vec!["r0001", "everything.else"],
            vec!["zz-other", "everything.else"],
        ],
        "{table:#?}"
    );
    assert!(table.stderr.is_empty(), "no note without names: {table:#?}");

    let rest = deployment
        .run(&[
            "--json",
            "roles",
            "list",
            "--owner",
            "workspace:a",
            "--after",
            "r1000",
        ])
        .expect(0)
        .json();
    let rest: Vec<&str> = rest
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["r1001", "r1002"], "strictly after --after");
    let none = deployment
        .run(&["--json", "roles", "list", "--owner", "workspace:none"])
        .expect(0)
        .json();
    assert_eq!(none, serde_json::json!([]), "an owner without roles");

    for (args, says) in [
        (vec!["--after", "r0001", "r0002"], "cannot be used with"),
        (vec!["--after", "no such!"], "must be 1..=64 bytes"),
    ] {
        let mut all = vec!["roles", "list", "--owner", "workspace:a"];
        all.extend(args);
        let refused = deployment.run(&all).expect(2);
        assert!(refused.stdout.is_empty(), "{refused:#?}");
        assert!(refused.stderr.contains(says), "{says:?} in {refused:#?}");
    }
}
