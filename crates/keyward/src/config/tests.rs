use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_with_env(text, no_env)
}

/// The error for `text`, checked to be one line.
fn error(text: &str) -> ConfigError {
    let error = load(text).expect_err("the file is refused");
    assert!(!error.to_string().contains('\n'), "one line: {error}");
    error
}

const PRODUCT_A: &str = r#"
[store]
url = "sqlite::memory:"

[kinds.mt]
live_limit = 3

[kinds.mt.expiry]
choices = ["1 month", "3 months", "6 months"]
default = "3 months"
"#;

#[test]
fn a_file_declares_kinds_their_policies_and_the_store() {
    let config = load(
        r#"
[store]
url = "postgres://app@db.internal:5432/keys"
table_prefix = "kw_"
connect_timeout_secs = 2

[kinds.mm_pat]
key_id_len = 8
secret_len = 24
catalog = ["publish", "messages", "billing.read"]

[kinds.mm_pat.expiry]
choices = ["1 month", "6 months", "1 year", "never"]
default = "1 year"
max_until_days = 400

[kinds.mgmt]
catalog = ["api_keys.create", "api_keys.view", "api_keys.delete", "api_keys.enable"]

[[kinds.mgmt.manages]]
kind = "mm_pat"
create = "api_keys.create"
view = "api_keys.view"
revoke = "api_keys.delete"
enable = "api_keys.enable"
"#,
    )
    .unwrap();
    let pat = config.kind("mm_pat").unwrap();
    assert_eq!((pat.key_id_len(), pat.secret_len()), (8, 24));
    assert_eq!(pat.expiry().default_lifetime(), Lifetime::Years(1));
    assert_eq!(pat.expiry().choices().len(), 4);
    assert_eq!(pat.expiry().max_until(), Some(TimeDelta::days(400)));
    assert_eq!(pat.catalog().map(PermissionSet::len), Some(3));
    assert_eq!(pat.live_limit(), None);
    let mgmt = config.kind("mgmt").unwrap();
    assert_eq!(mgmt.manages().len(), 1);
    assert_eq!(mgmt.manages()[0].kind, "mm_pat");
    assert_eq!(mgmt.manages()[0].revoke.as_str(), "api_keys.delete");
    assert!(
        mgmt.expiry().choices() == [Lifetime::Never],
        "no expiry: never"
    );
    let store = config.store().unwrap();
    assert_eq!(store.backend(), "postgres");
    assert_eq!(store.table_prefix().as_str(), "kw_");
    assert_eq!(store.connect_timeout(), Duration::from_secs(2));
    assert_eq!(config.pepper_env(), None);
    assert_eq!(
        config.hasher().algorithm(),
        keyward_core::token::HashAlgorithm::Sha256
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_host_builds_its_service_from_the_same_file() {
    let config = load(PRODUCT_A).unwrap();
    let keyward = config.open().await.unwrap();
    let owner = keyward_core::Owner::new("account:1").unwrap();
    let actor = keyward_core::Actor::operator("test");
    for n in 0..3 {
        let request = keyward_core::IssueRequest::new("mt", owner.clone(), &format!("k{n}"));
        keyward.issue(&actor, request).await.unwrap();
    }
    let fourth = keyward_core::IssueRequest::new("mt", owner, "k4");
    assert!(matches!(
        keyward.issue(&actor, fourth).await,
        Err(Error::LimitReached { limit: 3 })
    ));
}

#[test]
fn a_wrong_type_names_the_line_the_field_and_what_is_expected() {
    let e = error("[kinds.mt]\nlive_limit = \"three\"\n");
    assert_eq!(e.line(), Some(2));
    assert_eq!(e.field_path(), Some("kinds.mt.live_limit"));
    assert!(e.message().contains("u32"), "{e}");
    assert!(e.to_string().starts_with("line 2:"), "{e}");
}

#[test]
fn an_unknown_field_is_refused_with_the_allowed_ones() {
    let e = error("[kinds.mt]\nlive_limit = 3\nlive_limt = 4\n");
    assert_eq!(e.line(), Some(3));
    assert!(e.message().contains("unknown field `live_limt`"), "{e}");
    assert!(
        e.message().contains("live_limit"),
        "names what is allowed: {e}"
    );

    let e = error("[kinds.mt]\n[stores]\nurl = \"sqlite::memory:\"\n");
    assert_eq!(e.line(), Some(2));
    assert!(e.message().contains("unknown field `stores`"), "{e}");

    let e = error("[kinds.mt]\n[store]\nurl = \"sqlite::memory:\"\npassword = \"x\"\n");
    assert_eq!(e.line(), Some(4));
    assert_eq!(e.field_path(), Some("store.password"));
}

#[test]
fn an_unknown_expiry_choice_names_the_accepted_forms() {
    let e =
        error("[kinds.mt.expiry]\nchoices = [\"1 month\", \"6 weeks\"]\ndefault = \"1 month\"\n");
    assert_eq!(e.line(), Some(2));
    assert_eq!(e.field_path(), Some("kinds.mt.expiry.choices[1]"));
    assert!(e.message().contains("<n> days|months|years"), "{e}");
}

#[test]
fn an_invalid_prefix_is_refused_where_it_is_written() {
    let e = error("[store]\nurl = \"sqlite::memory:\"\n\n[kinds.MT]\nlive_limit = 1\n");
    assert_eq!(e.line(), Some(4));
    assert_eq!(e.field_path(), Some("kinds.MT"));
    assert!(e.message().contains("invalid prefix `MT`"), "{e}");
    assert!(
        e.message().contains("lowercase words"),
        "says what is allowed: {e}"
    );
}

#[test]
fn a_default_must_be_one_of_the_choices() {
    let e =
        error("[kinds.mt.expiry]\nchoices = [\"1 month\", \"3 months\"]\ndefault = \"1 year\"\n");
    assert_eq!(e.line(), Some(3));
    assert_eq!(e.field_path(), Some("kinds.mt.expiry.default"));
    assert_eq!(
        e.message(),
        "`1 year` is not one of the choices (allowed: 1 month, 3 months)"
    );
    let e = error("[kinds.mt.expiry]\nchoices = [\"1 month\", \"3 months\"]\n");
    assert_eq!(e.field_path(), Some("kinds.mt.expiry.default"));
    assert!(e.message().contains("required"), "{e}");
    let one = load("[kinds.mt.expiry]\nchoices = [\"30 days\"]\n").unwrap();
    assert_eq!(
        one.kinds()[0].expiry().default_lifetime(),
        Lifetime::Days(30)
    );
    let e = error("[kinds.mt.expiry]\nchoices = [\"until 2030-01-01T00:00:00Z\"]\n");
    assert!(e.message().contains("max_until_days"), "{e}");
}

#[test]
fn the_pepper_comes_only_from_the_environment() {
    let text = "[hashing]\npepper_env = \"KW_TEST_PEPPER\"\n\n[kinds.mt]\n";
    let e = error(text);
    assert_eq!(e.line(), Some(2));
    assert_eq!(e.field_path(), Some("hashing.pepper_env"));
    assert!(e.message().contains("KW_TEST_PEPPER is not set"), "{e}");

    let short = Config::from_toml_with_env(text, |_| Some("short".to_owned())).unwrap_err();
    assert!(short.message().contains("at least 32 bytes"), "{short}");
    assert!(
        !short.to_string().contains("short\""),
        "the value is never echoed"
    );

    let pepper = "a-pepper-of-at-least-thirty-two-bytes";
    let config = Config::from_toml_with_env(text, |name| {
        (name == "KW_TEST_PEPPER").then(|| pepper.to_owned())
    })
    .unwrap();
    assert_eq!(
        config.hasher().algorithm(),
        keyward_core::token::HashAlgorithm::HmacSha256
    );
    assert!(!format!("{config:?}").contains(pepper), "Debug hides it");

    let e = error("[hashing]\npepper = \"the value itself\"\n[kinds.mt]\n");
    assert!(e.message().contains("unknown field `pepper`"), "{e}");
    let e = error("[hashing]\npepper_env = \"NOT A NAME\"\n[kinds.mt]\n");
    assert!(e.message().contains("environment variable"), "{e}");
}

#[test]
fn a_store_password_belongs_in_the_environment() {
    let e = error("[store]\nurl = \"postgres://app:hunter2@db/keys\"\n[kinds.mt]\n");
    assert_eq!(e.field_path(), Some("store.url"));
    assert!(e.message().contains("url_env"), "{e}");
    assert!(!e.to_string().contains("hunter2"));

    let text = "[store]\nurl_env = \"KW_TEST_URL\"\n[kinds.mt]\n";
    let secret_url = "postgres://app:hunter2@db/keys";
    let config = Config::from_toml_with_env(text, |_| Some(secret_url.to_owned())).unwrap();
    let store = config.store().unwrap();
    assert_eq!(store.backend(), "postgres");
    assert_eq!(store.describe(), "postgres (URL from KW_TEST_URL)");
    assert!(!format!("{config:?}").contains("hunter2"), "Debug hides it");
    let e = error(text);
    assert!(e.message().contains("KW_TEST_URL is not set"), "{e}");
}

#[test]
fn store_urls_say_what_is_allowed() {
    for (url, ok) in [
        ("sqlite://keys.db", true),
        ("sqlite:keys.db", true),
        ("sqlite::memory:", true),
        ("postgresql://db/keys", true),
        ("mysql://db/keys", false),
        ("keys.db", false),
        ("sqlite:", false),
    ] {
        let text = format!("[store]\nurl = \"{url}\"\n[kinds.mt]\n");
        match load(&text) {
            Ok(_) => assert!(ok, "{url} accepted"),
            Err(e) => {
                assert!(!ok, "{url} refused: {e}");
                assert_eq!(e.field_path(), Some("store.url"));
                assert!(e.message().contains("sqlite://PATH"), "{e}");
            }
        }
    }
    let e = error("[store]\ntable_prefix = \"kw_\"\n[kinds.mt]\n");
    assert!(e.message().contains("missing"), "{e}");
    let e = error(
        "[store]\nurl = \"sqlite::memory:\"\ntable_prefix = \"x; DROP TABLE t\"\n[kinds.mt]\n",
    );
    assert_eq!(e.field_path(), Some("store.table_prefix"));
    assert_eq!(e.line(), Some(3));
    let e = error("[store]\nurl = \"sqlite::memory:\"\nconnect_timeout_secs = 0\n[kinds.mt]\n");
    assert_eq!(e.field_path(), Some("store.connect_timeout_secs"));
}

#[test]
fn a_relative_sqlite_path_is_taken_from_the_files_directory() {
    let dir = std::env::temp_dir().join(format!("keyward-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keyward.toml");
    std::fs::write(
        &path,
        "[store]\nurl = \"sqlite://data/keys.db\"\n[kinds.mt]\n",
    )
    .unwrap();
    let config = Config::from_path_with_env(&path, no_env).unwrap();
    let expected = dir.canonicalize().unwrap().join("data/keys.db");
    assert_eq!(
        config.store().unwrap().sqlite_path(),
        Some(expected.as_path())
    );

    std::fs::write(&path, "[kinds.mt]\nlive_limit = -1\n").unwrap();
    let e = Config::from_path_with_env(&path, no_env).unwrap_err();
    assert_eq!(e.file(), Some(path.as_path()));
    assert!(
        e.to_string().starts_with(&format!("{}:2:", path.display())),
        "{e}"
    );
    let missing = Config::from_path_with_env(dir.join("absent.toml"), no_env).unwrap_err();
    assert!(
        missing.to_string().contains("cannot read the file"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kinds_lengths_catalogs_and_manages_are_checked_where_written() {
    let e = error("[kinds.mt]\nsecret_len = 21\n");
    assert_eq!(e.field_path(), Some("kinds.mt.secret_len"));
    assert!(e.message().contains("22..=55"), "{e}");
    let e = error("[kinds.mt]\nkey_id_len = 3\n");
    assert_eq!(e.field_path(), Some("kinds.mt.key_id_len"));
    let e = error("[kinds.mt]\ncatalog = [\"ok.read\", \"bad..perm\"]\n");
    assert_eq!(e.field_path(), Some("kinds.mt.catalog"));
    assert_eq!(e.column(), Some(23), "the entry's opening quote");
    let e = error(
        "[kinds.mgmt]\n[[kinds.mgmt.manages]]\nkind = \"mt\"\ncreate = \"a\"\nview = \"b\"\nrevoke = \"c\"\nenable = \"d\"\n",
    );
    assert_eq!(e.field_path(), Some("kinds.mgmt.manages.kind"));
    assert_eq!(e.line(), Some(3));
    assert!(e.message().contains("declared: mgmt"), "{e}");
    let e = error("[kinds.mgmt]\n[[kinds.mgmt.manages]]\nkind = \"mgmt\"\n");
    assert!(e.message().contains("missing field `create`"), "{e}");
    let e = error("[store]\nurl = \"sqlite::memory:\"\n");
    assert_eq!(e.field_path(), Some("kinds"));
}

#[test]
fn garbage_and_huge_input_are_errors_never_panics() {
    for text in [
        "",
        "=",
        "[kinds.mt",
        "\u{0}",
        "[kinds]\nmt = 3\n",
        "kinds = []",
        "[kinds.mt]\nlive_limit = 99999999999999999999\n",
        "[kinds.mt.expiry]\nchoices = \"never\"\n",
    ] {
        assert!(load(text).is_err(), "{text:?}");
    }
    let huge = format!("# {}\n[kinds.mt]\n", "x".repeat(MAX_CONFIG_LEN));
    assert!(error(&huge).message().contains("1 MiB"));
}

#[test]
fn the_example_file_in_docs_loads() {
    let text = include_str!("../../../../docs/keyward.toml");
    let pepper = "an-example-pepper-of-thirty-two-bytes-or-more";
    let config = Config::from_toml_with_env(text, |_| Some(pepper.to_owned())).unwrap();
    assert!(config.kinds().len() >= 2);
    assert!(config.store().is_some());
}

#[test]
fn the_example_in_docs_cli_md_loads() {
    let doc = include_str!("../../../../docs/cli.md");
    let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let pepper = "an-example-pepper-of-thirty-two-bytes-or-more";
    let config = Config::from_toml_with_env(&doc[start..end], |_| Some(pepper.to_owned())).unwrap();
    assert_eq!(config.kind("mt").unwrap().live_limit(), Some(3));
    assert_eq!(config.pepper_env(), Some("KEYWARD_PEPPER"));
}

#[test]
fn the_documented_bounds_hold_at_their_edges() {
    let kinds = |n: usize| {
        (0..n)
            .map(|i| format!("[kinds.k{i}]\n"))
            .collect::<String>()
    };
    assert_eq!(load(&kinds(64)).unwrap().kinds().len(), 64);
    let e = error(&kinds(65));
    assert_eq!(e.field_path(), Some("kinds"));
    assert!(e.message().contains("at most 64"), "{e}");

    let text = "[hashing]\npepper_env = \"KW_TEST_PEPPER\"\n[kinds.mt]\n";
    let empty = Config::from_toml_with_env(text, |_| Some(String::new())).unwrap_err();
    assert!(
        empty.message().contains("is not set"),
        "empty is unset: {empty}"
    );
    let edge = "p".repeat(32);
    assert!(Config::from_toml_with_env(text, |_| Some(edge.clone())).is_ok());
    let short = "p".repeat(31);
    assert!(Config::from_toml_with_env(text, |_| Some(short.clone())).is_err());

    let expiry = |days: u32| {
        load(&format!(
            "[kinds.mt.expiry]\nchoices = [\"30 days\"]\nmax_until_days = {days}\n"
        ))
    };
    assert!(expiry(1).is_ok() && expiry(36_600).is_ok());
    for days in [0, 36_601] {
        let e = expiry(days).unwrap_err();
        assert_eq!(e.field_path(), Some("kinds.mt.expiry.max_until_days"));
    }
    let timeout = |secs: u64| {
        load(&format!(
            "[store]\nurl = \"sqlite::memory:\"\nconnect_timeout_secs = {secs}\n[kinds.mt]\n"
        ))
    };
    assert!(timeout(1).is_ok() && timeout(300).is_ok());
    assert!(timeout(301).is_err());
}
