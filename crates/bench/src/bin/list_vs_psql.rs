//! `keyward list` of 10,000 keys on Postgres against its bound, one `psql`
//! round trip per 100 keys, measured as whole processes, paired and
//! interleaved.
//!
//! ```sh
//! cargo build -p keyward-cli --release
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run -p keyward-bench --release --bin list_vs_psql
//! ```
//!
//! The run seeds itself: it creates a schema `kwlist_<time>_<pid>`, migrates
//! it, issues 10,000 keys of one owner through the library (`Keyward::issue`,
//! 10 at a time), writes a configuration file naming that schema, and drops
//! the schema at the end. Then, in turn:
//!
//! - **keyward** (the figure): `keyward --json list --owner account:list
//!   --all --limit 1000`, the release binary (`target/release/keyward`, or
//!   `--keyward PATH`): one process, one connection, ten pages of 1000
//!   keys, every key's details, JSON on stdout;
//! - **psql** (the reference): 100 `psql -X -A -t -c 'SELECT * FROM
//!   <schema>.keyward_keys WHERE owner = … ORDER BY created_at DESC, id DESC
//!   LIMIT 100 OFFSET n'` processes, one after the other, n = 0, 100, …,
//!   9900: a process, a connection and one query per 100 keys.
//!
//! Both read their child's whole stdout; the first run of each is checked
//! (10,000 distinct ids from keyward, 10,000 rows from the psql calls). One
//! warm-up pair, then `--pairs N` pairs (default 15), keyward first in even
//! pairs and psql first in odd ones. It prints each side's median wall time,
//! the median of the per-pair ratios keyward / psql and their 5th–95th
//! percentile.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing,
    reason = "benchmark harness: a failed setup stops the run loudly, and its output is the point"
)]

use keyward_bench::paired::{Spread, pair_ratios};
use keyward_core::{Actor, IssueRequest, Keyward, Owner, TokenKind};
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use keyward_postgres::sqlx::{self, AssertSqlSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KEYS: usize = 10_000;
const OWNER: &str = "account:list";
/// Keys per `psql` round trip in the reference.
const PER_ROUND_TRIP: usize = 100;
/// The variable the configuration file names for the store's URL.
const URL_VAR: &str = "KEYWARD_LIST_BENCH_URL";

struct Args {
    keyward: PathBuf,
    pairs: usize,
}

fn args() -> Args {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut parsed = Args {
        keyward: root.join("target/release/keyward"),
        pairs: 15,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keyward" => parsed.keyward = PathBuf::from(args.next().expect("--keyward PATH")),
            "--pairs" => {
                parsed.pairs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .expect("--pairs N (N ≥ 1)");
            }
            other => panic!("unknown argument {other:?} (--keyward PATH, --pairs N)"),
        }
    }
    parsed
}

/// `url` with `search_path` set to `schema`, for the CLI's configuration.
fn url_on_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Runs `command` to its end and returns its wall time and stdout.
fn timed(command: &mut Command) -> (Duration, Vec<u8>) {
    command.stdin(Stdio::null()).stderr(Stdio::inherit());
    let started = Instant::now();
    let output = command.output().expect("the command starts");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{command:?}: {}", output.status);
    (elapsed, output.stdout)
}

fn keyward_list(binary: &Path, config: &Path, url: &str) -> (Duration, Vec<u8>) {
    timed(
        Command::new(binary)
            .arg("--config")
            .arg(config)
            .args([
                "--json", "list", "--owner", OWNER, "--all", "--limit", "1000",
            ])
            .env(URL_VAR, url),
    )
}

/// The reference: one `psql` process per 100 keys, one after the other.
fn psql_pages(url: &str, schema: &str) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut out = Vec::new();
    for page in 0..KEYS / PER_ROUND_TRIP {
        let sql = format!(
            "SELECT * FROM {schema}.keyward_keys WHERE owner = '{OWNER}' \
             ORDER BY created_at DESC, id DESC LIMIT {PER_ROUND_TRIP} OFFSET {}",
            page * PER_ROUND_TRIP
        );
        let (_, rows) = timed(Command::new("psql").args(["-X", "-A", "-t", "-d", url, "-c", &sql]));
        out.extend(rows);
    }
    (started.elapsed(), out)
}

fn main() {
    let args = args();
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("set DATABASE_URL to a Postgres database this run may create a schema in");
        std::process::exit(2);
    };
    assert!(
        args.keyward.is_file(),
        "no keyward binary at {} (cargo build -p keyward-cli --release, or --keyward PATH)",
        args.keyward.display()
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let schema = format!("kwlist_{}_{}", now.as_secs(), std::process::id());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let options = PgConnectOptions::from_str(&url).expect("a Postgres URL");
    let admin = runtime
        .block_on(
            PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone()),
        )
        .expect("connect to DATABASE_URL");
    runtime
        .block_on(sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin))
        .unwrap();

    let seeded = Instant::now();
    let pool = runtime
        .block_on(
            PgPoolOptions::new()
                .max_connections(4)
                .connect_with(options.options([("search_path", schema.as_str())])),
        )
        .unwrap();
    let store = PgStore::new(pool.clone());
    runtime.block_on(store.migrate()).expect("migrate");
    let keyward = Keyward::builder(store)
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    runtime.block_on(async {
        let owner = Owner::new(OWNER).unwrap();
        let tasks: Vec<_> = (0..10)
            .map(|task| {
                let (keyward, owner) = (keyward.clone(), owner.clone());
                tokio::spawn(async move {
                    for n in (task..KEYS).step_by(10) {
                        let request =
                            IssueRequest::new("tak", owner.clone(), &format!("key {n:05}"));
                        keyward
                            .issue(&Actor::operator("seed"), request)
                            .await
                            .expect("issue");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    drop(keyward);
    runtime.block_on(pool.close());
    let dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("keyward.toml");
    std::fs::write(
        &config,
        format!("[store]\nurl_env = \"{URL_VAR}\"\n\n[kinds.tak]\n"),
    )
    .unwrap();
    let cli_url = url_on_schema(&url, &schema);
    eprintln!(
        "seeded {KEYS} keys of {OWNER} in schema {schema} in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    // Check each side once: every key, once.
    let (_, json) = keyward_list(&args.keyward, &config, &cli_url);
    let page: serde_json::Value = serde_json::from_slice(&json).expect("keyward's JSON");
    let ids: std::collections::BTreeSet<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|key| key["id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids.len(), KEYS, "keyward lists every key once");
    let (_, rows) = psql_pages(&url, &schema);
    let rows = rows
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(rows, KEYS, "the psql pages return every key");

    let (mut figure, mut reference) = (Vec::new(), Vec::new());
    for pair in 0..args.pairs {
        let run_keyward = || keyward_list(&args.keyward, &config, &cli_url).0;
        let run_psql = || psql_pages(&url, &schema).0;
        let (k, p) = if pair % 2 == 0 {
            let k = run_keyward();
            (k, run_psql())
        } else {
            let p = run_psql();
            (run_keyward(), p)
        };
        eprintln!(
            "pair {pair}: keyward {:.3} s, psql × 100 {:.3} s",
            k.as_secs_f64(),
            p.as_secs_f64()
        );
        figure.push(k.as_secs_f64());
        reference.push(p.as_secs_f64());
    }

    let ratio = Spread::of(&pair_ratios(&reference, &figure));
    let keyward_time = Spread::of(&figure);
    let psql_time = Spread::of(&reference);
    println!(
        "keyward list, {KEYS} keys in pages of 1000 (release, JSON): median {:.3} s (p5–p95 {:.3}–{:.3} s)",
        keyward_time.median, keyward_time.p5, keyward_time.p95
    );
    println!(
        "psql, one round trip per {PER_ROUND_TRIP} keys ({} processes): median {:.3} s (p5–p95 {:.3}–{:.3} s), {:.1} ms a call",
        KEYS / PER_ROUND_TRIP,
        psql_time.median,
        psql_time.p5,
        psql_time.p95,
        psql_time.median * 1000.0 / (KEYS / PER_ROUND_TRIP) as f64
    );
    println!(
        "ratio keyward / psql over {} pairs: median {:.3} (p5–p95 {:.3}–{:.3})",
        args.pairs, ratio.median, ratio.p5, ratio.p95
    );

    std::fs::remove_dir_all(&dir).ok();
    runtime
        .block_on(
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin),
        )
        .unwrap();
}
