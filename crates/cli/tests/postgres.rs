//! The `keyward` binary against Postgres, each test in a schema of its own
//! (dropped at the end). Needs `DATABASE_URL`: built without it, every test
//! here is reported as ignored; with it set but no usable server, each
//! prints a skip notice and returns; with `KEYWARD_REQUIRE_POSTGRES=1` they
//! fail instead.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod support;

use keyward::stores::postgres::sqlx::{self, AssertSqlSafe, PgPool, postgres::PgPoolOptions};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{Deployment, KINDS};

const IGNORED: &str = "set DATABASE_URL to run the Postgres tests (.ci/run does)";

/// A deployment in a new schema, and the pool that made it (to drop it).
struct PgDeployment {
    deployment: Deployment,
    admin: PgPool,
    schema: String,
}

impl PgDeployment {
    async fn drop_schema(self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        sqlx::query(AssertSqlSafe(sql))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

fn required() -> bool {
    std::env::var("KEYWARD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

fn skip(why: &str) -> Option<PgDeployment> {
    assert!(
        !required(),
        "KEYWARD_REQUIRE_POSTGRES=1 but Postgres is unusable: {why}"
    );
    let notice = format!("skipped a Postgres CLI test, reported as passed: {why}\n");
    drop(std::io::Write::write_all(
        &mut std::io::stderr(),
        notice.as_bytes(),
    ));
    None
}

/// A migrated deployment whose URL (from the environment, as a password
/// would be) points at a new schema.
async fn postgres() -> Option<PgDeployment> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return skip("DATABASE_URL is not set");
    };
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
    {
        Ok(pool) => pool,
        Err(e) => return skip(&format!("cannot connect: {e}")),
    };
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("kwcli_{secs}_{}_{nanos}", std::process::id());
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let schema_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let deployment = Deployment::with_config(&format!(
        "[store]\nurl_env = \"KW_CLI_TEST_DATABASE_URL\"\ntable_prefix = \"cli_\"\n{KINDS}"
    ))
    .env("KW_CLI_TEST_DATABASE_URL", &schema_url);
    let migrated = deployment.run(&["--json", "migrate"]).expect(0).json();
    assert_eq!(migrated["store"], "postgres");
    // The tables are in the test's schema, with the configured prefix.
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'cli_keys'",
    )
    .bind(&schema)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(count, 1);
    Some(PgDeployment {
        deployment,
        admin,
        schema,
    })
}

#[tokio::test]
#[cfg_attr(
    keyward_no_postgres,
    ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
)]
async fn every_command_through_a_keys_life_on_postgres() {
    let Some(pg) = postgres().await else { return };
    support::lifecycle(&pg.deployment);
    pg.drop_schema().await;
}

#[tokio::test]
#[cfg_attr(
    keyward_no_postgres,
    ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
)]
async fn lists_page_by_cursor_on_postgres() {
    let Some(pg) = postgres().await else { return };
    support::paging(&pg.deployment);
    pg.drop_schema().await;
}

#[tokio::test]
#[cfg_attr(
    keyward_no_postgres,
    ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
)]
async fn bad_input_is_a_clear_line_and_loses_nothing_on_postgres() {
    let Some(pg) = postgres().await else { return };
    support::bad_input(&pg.deployment);
    pg.drop_schema().await;
}

#[tokio::test]
#[cfg_attr(
    keyward_no_postgres,
    ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
)]
async fn every_owner_reasons_audit_filters_and_prune_on_postgres() {
    let Some(pg) = postgres().await else { return };
    support::operator_views_and_prune(&pg.deployment);
    pg.drop_schema().await;
}

/// The benchmark check of the CLI issue: listing 10,000 keys is paged (at
/// most 1000 per query, `--all` follows the cursor), so it costs about as
/// much as one round trip per 1000 keys plus the rows, far under one
/// `psql`-like round trip per 100 keys. The figures are printed, never
/// asserted (no timed assertions in tests).
#[tokio::test]
#[cfg_attr(
    keyward_no_postgres,
    ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
)]
async fn ten_thousand_keys_list_in_pages() {
    let Some(pg) = postgres().await else { return };
    let owner = "account:bulk";
    let schema = &pg.schema;
    // Seed through the library with the same configuration file.
    let url = format!(
        "{}{}options=-c%20search_path%3D{schema}",
        std::env::var("DATABASE_URL").unwrap(),
        if std::env::var("DATABASE_URL").unwrap().contains('?') {
            '&'
        } else {
            '?'
        }
    );
    let config =
        keyward::config::Config::from_path_with_env(&pg.deployment.config, |_| Some(url.clone()))
            .unwrap();
    let keyward = config.open().await.unwrap();
    let actor = keyward::Actor::operator("seed");
    let owner_id = keyward::Owner::new(owner).unwrap();
    for n in 0..10_000 {
        let request = keyward::IssueRequest::new("tak", owner_id.clone(), &format!("bulk {n}"));
        keyward.issue(&actor, request).await.unwrap();
    }

    let started = Instant::now();
    let all = pg
        .deployment
        .run(&[
            "--json", "list", "--owner", owner, "--all", "--limit", "1000",
        ])
        .expect(0)
        .json();
    let listed = started.elapsed();
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 10_000);
    let ids: std::collections::BTreeSet<&str> =
        items.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10_000, "no key twice, none skipped");

    // One page per call without --all: never more than the limit.
    let page = pg
        .deployment
        .run(&["--json", "list", "--owner", owner, "--limit", "1000"])
        .expect(0)
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1000);
    assert!(page["next"].is_string());

    // The bound: one `psql` round trip per 100 keys (psql itself when it is
    // installed, else the smallest `keyward list`: a process, a connection
    // and one query, as a psql call is).
    let psql = std::process::Command::new("psql")
        .arg("--version")
        .output()
        .is_ok();
    let mut round_trip = Duration::ZERO;
    let rounds = 5;
    for _ in 0..rounds {
        let started = Instant::now();
        if psql {
            let mut command = std::process::Command::new("psql");
            command.args([url.as_str(), "-Atc", "SELECT 1"]);
            support::run(command, "").expect(0);
        } else {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"));
            command
                .args(["--config"])
                .arg(&pg.deployment.config)
                .args(["--json", "list", "--owner", "nobody", "--limit", "1"])
                .env("KW_CLI_TEST_DATABASE_URL", &url);
            support::run(command, "").expect(0);
        }
        round_trip += started.elapsed();
    }
    let round_trip = round_trip / rounds;
    let bound = round_trip * 100;
    let report = format!(
        "keyward list of 10,000 keys on Postgres (10 pages of 1000): {listed:?}; \
         one {} round trip: {round_trip:?}; bound (100 of those): {bound:?}\n",
        if psql { "psql" } else { "keyward process" }
    );
    drop(std::io::Write::write_all(
        &mut std::io::stderr(),
        report.as_bytes(),
    ));
    drop(keyward);
    pg.drop_schema().await;
}

#[test]
fn every_postgres_test_is_ignored_exactly_when_built_without_database_url() {
    let exe = std::env::current_exe().unwrap();
    let list = |ignored: bool| {
        let mut command = std::process::Command::new(&exe);
        command.args(["--list", "--format", "terse"]);
        if ignored {
            command.arg("--ignored");
        }
        let out = String::from_utf8(command.output().unwrap().stdout).unwrap();
        out.lines().filter(|l| l.ends_with(": test")).count()
    };
    let (all, ignored) = (list(false), list(true));
    if cfg!(keyward_no_postgres) {
        assert_eq!(ignored, all - 1, "{IGNORED}: every test but this one");
    } else {
        assert_eq!(ignored, 0);
    }
}

#[tokio::test]
#[cfg_attr(
    keyward_no_postgres,
    ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
)]
async fn an_unmigrated_database_says_to_migrate() {
    let Some(pg) = postgres().await else { return };
    let url = format!(
        "{}{}options=-c%20search_path%3D{}",
        std::env::var("DATABASE_URL").unwrap(),
        if std::env::var("DATABASE_URL").unwrap().contains('?') {
            '&'
        } else {
            '?'
        },
        pg.schema
    );
    let fresh = Deployment::with_config(&format!(
        "[store]\nurl_env = \"KW_CLI_TEST_DATABASE_URL\"\ntable_prefix = \"unmigrated_\"\n{KINDS}"
    ))
    .env("KW_CLI_TEST_DATABASE_URL", &url);
    fresh
        .run(&["list", "--owner", "a"])
        .fails(2, "(has `keyward migrate` run?)");
    fresh.run(&["migrate"]).expect(0);
    fresh.run(&["list", "--owner", "a"]).expect(0);
    pg.drop_schema().await;
}
