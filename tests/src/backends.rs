//! Fresh stores for each backend under test.
//!
//! - SQLite: a new database file per test under the directory the caller
//!   names (integration tests pass `env!("CARGO_TARGET_TMPDIR")`).
//! - Postgres: a new schema per test in the database at `DATABASE_URL`, so
//!   runs never see each other's rows. Built without `DATABASE_URL`, the
//!   Postgres tests are ignored (`cfg(keyward_no_postgres)`, set by the
//!   build script). With `DATABASE_URL` set but no server answering,
//!   [`postgres`] prints a skip notice and the test returns, which libtest
//!   reports as passed: the first notice of each test binary says so in a
//!   banner, and every notice names its test and counts. With
//!   `KEYWARD_REQUIRE_POSTGRES=1` they fail instead (CI sets it).

use keyward_core::{store::KeyStore, token::OsRandom, token::SecretSource};
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use keyward_postgres::sqlx::{self, AssertSqlSafe, Row};
use keyward_sqlite::SqliteStore;
use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Test schemas older than this are dropped by later runs.
const STALE_AFTER_SECS: u64 = 3600;

fn random_hex() -> String {
    let mut bytes = [0u8; 6];
    OsRandom.fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A migrated SQLite store on a new file in `dir`.
pub fn sqlite_file(dir: &str) -> SqliteStore {
    let path = std::path::Path::new(dir).join(format!("keyward-{}.db", random_hex()));
    SqliteStore::open(path).unwrap()
}

/// [`sqlite_file`] as a shared trait object.
pub fn sqlite_file_dyn(dir: &str) -> Arc<dyn KeyStore> {
    Arc::new(sqlite_file(dir))
}

/// Whether CI demands the Postgres tests really run.
pub fn postgres_required() -> bool {
    std::env::var("KEYWARD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// The Postgres tests of this binary that found no usable server.
static SKIPPED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Why the first test of this binary could not connect: the later ones
/// skip at once instead of each waiting out the connect timeout.
static UNREACHABLE: OnceLock<String> = OnceLock::new();

fn skip(why: &str) -> Option<PgStore> {
    assert!(
        !postgres_required(),
        "KEYWARD_REQUIRE_POSTGRES=1 but Postgres is unusable: {why}"
    );
    // libtest names each test's thread after the test.
    let current = std::thread::current();
    let test = current.name().unwrap_or("a Postgres test").to_owned();
    // The lock is held while printing, so the banner comes first.
    let mut skipped = SKIPPED.lock().unwrap();
    let first = skipped.is_empty();
    if !skipped.insert(test.clone()) {
        return None; // a second store for the same test: already told
    }
    let mut notice = String::new();
    if first {
        notice.push_str(&format!(
            "\n*** Postgres is unusable ({why}):\n\
             *** the Postgres tests of this binary return without running, and libtest\n\
             *** reports them as passed. Start the server (.ci/run does), unset\n\
             *** DATABASE_URL to have them reported as ignored, or set\n\
             *** KEYWARD_REQUIRE_POSTGRES=1 to have them fail.\n"
        ));
    }
    notice.push_str(&format!(
        "skipped Postgres test #{} of this binary, reported as passed: {test}\n",
        skipped.len()
    ));
    // Straight to stderr, not `eprintln!`, which the test harness captures
    // for passing tests: the notice must be seen.
    drop(std::io::Write::write_all(
        &mut std::io::stderr(),
        notice.as_bytes(),
    ));
    None
}

/// The tests of the running test binary (only the ignored ones with
/// `ignored`), sorted, as its `--list` prints them.
pub fn tests_of_this_binary(ignored: bool) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut command = std::process::Command::new(exe);
    command.args(["--list", "--format", "terse"]);
    if ignored {
        command.arg("--ignored");
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut names: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// A migrated Postgres store in a new schema, or `None` (with a printed
/// notice) when no server is configured or reachable.
pub async fn postgres() -> Option<PgStore> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return skip("DATABASE_URL is not set");
    };
    let Ok(options) = PgConnectOptions::from_str(&url) else {
        return skip("DATABASE_URL is not a Postgres URL");
    };
    if let Some(why) = UNREACHABLE.get() {
        return skip(why);
    }
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await
    {
        Ok(pool) => pool,
        Err(e) => return skip(UNREACHABLE.get_or_init(|| format!("cannot connect: {e}"))),
    };
    drop_stale_schemas(&admin).await;
    let schema = format!("kwtest_{}_{}", unix_now(), random_hex());
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    let store = PgStore::new(pool);
    store.migrate().await.unwrap();
    Some(store)
}

/// [`postgres`] as a shared trait object.
pub async fn postgres_dyn() -> Option<Arc<dyn KeyStore>> {
    postgres().await.map(|s| Arc::new(s) as Arc<dyn KeyStore>)
}

/// Drops the schemas of earlier runs (named `kwtest_<unix seconds>_<hex>`).
async fn drop_stale_schemas(admin: &sqlx::PgPool) {
    let Ok(rows) = sqlx::query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kwtest\\_%'")
        .fetch_all(admin)
        .await
    else {
        return;
    };
    let now = unix_now();
    for row in rows {
        let Ok(name) = row.try_get::<String, _>(0) else {
            continue;
        };
        let created = name
            .split('_')
            .nth(1)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(now);
        let is_plain = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if is_plain && now.saturating_sub(created) > STALE_AFTER_SECS {
            // Another run may drop it at the same moment; either way it is gone.
            drop(
                sqlx::query(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .execute(admin)
                .await,
            );
        }
    }
}
