//! keyward's criterion benchmarks: the floor, verify (cached, uncached on
//! each store, garbage, two threads, 100k and 1M keys), issue and list.
//!
//! `cargo bench -p keyward-bench` (full), `KEYWARD_BENCH_SHORT=1 cargo bench
//! -p keyward-bench` (short), then `cargo run -p keyward-bench --release
//! --bin report` for the table. See `docs/performance.md`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing,
    reason = "benchmark harness: a failed setup should stop the run loudly, and its output is the point"
)]

use criterion::Criterion;
use keyward_bench::fixture::{
    self, Floor, KEYS_PER_OWNER, Tokens, Walk, garbage, issue_keys, issue_keys_inline, key_id,
    requirement, service,
};
use keyward_bench::ready;
use keyward_bench::report::{self, RunLog};
use keyward_core::{Keyward, ListRequest, Rejection, store::KeyStore};
use keyward_memory::MemoryStore;
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use keyward_postgres::sqlx::{self, AssertSqlSafe, PgPool, Row};
use keyward_sqlite::SqliteStore;
use keyward_sqlite::rusqlite::{self, OpenFlags};
use std::cell::OnceCell;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The walk every key-picking benchmark starts from.
const SEED: u64 = 0x006b_6579_7761_7264;

/// The columns the SQL adapters read for a key (as their `get_key` does).
const SQLITE_KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, preview, \
    scopes, roles, inherits_owner, metadata, state, created_at, expires_at, last_used_at, \
    revoked_at, created_by, rotated_from, rotated_to";
const PG_KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, preview, \
    scopes, roles, inherits_owner, metadata::text AS metadata, state, created_at, expires_at, \
    last_used_at, revoked_at, created_by, rotated_from, rotated_to";
const KEY_COLUMN_COUNT: usize = 19;

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_owned)
}

fn run_log() -> &'static RunLog {
    static LOG: OnceLock<RunLog> = OnceLock::new();
    LOG.get_or_init(|| RunLog::start(&report::criterion_dir(&target_dir()), fixture::short_mode()))
}

fn config() -> Criterion {
    if fixture::short_mode() {
        Criterion::default()
            .warm_up_time(Duration::from_millis(250))
            .measurement_time(Duration::from_millis(900))
            .sample_size(20)
            .nresamples(5_000)
    } else {
        Criterion::default()
    }
}

/// Prints a progress line straight to stderr (criterion owns stdout).
fn say(line: &str) {
    eprintln!("keyward-bench: {line}");
}

/// Runs `build`, logs how long it took under `what`.
fn timed<T>(what: &str, build: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let built = build();
    let seconds = start.elapsed().as_secs_f64();
    say(&format!("{what}: set up in {seconds:.1} s"));
    run_log().setup(what, seconds);
    built
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

// ---------------------------------------------------------------- memory

/// A memory store of `keys` keys, a cached service over it with every key
/// already cached, an uncached service over the same store, the tokens, and
/// the floor's table of the same keys.
struct MemoryFixture {
    cached: Keyward,
    uncached: Keyward,
    tokens: Tokens,
    floor: Floor,
}

impl MemoryFixture {
    fn build(keys: usize) -> Self {
        let store: Arc<dyn KeyStore> = Arc::new(MemoryStore::new());
        let uncached = service(Arc::clone(&store), None);
        // Two threads issue half each (the memory store answers at once).
        let half = keys / 2;
        let tokens = std::thread::scope(|s| {
            let first = s.spawn(|| issue_keys_inline(&uncached, 0..half));
            let second = issue_keys_inline(&uncached, half..keys);
            let mut tokens = first.join().expect("issuing thread");
            tokens.extend(second);
            tokens
        });
        let tokens = Tokens::new(&tokens);
        let cached = service(store, Some(keys));
        let need = requirement();
        for token in tokens.iter() {
            ready!(cached.verify(token, &need)).expect("a fresh key verifies");
        }
        let entries = cached.cache_status().expect("a cache").entries;
        assert_eq!(entries, keys, "every key is cached");
        let floor = Floor::new(&tokens);
        assert!(tokens.iter().all(|t| floor.check(t)));
        Self {
            cached,
            uncached,
            tokens,
            floor,
        }
    }

    /// The fixture of `keys` keys (1k, 100k or 1M), built on first use and
    /// shared by every benchmark after.
    fn get(keys: usize) -> &'static Self {
        static FIXTURES: [OnceLock<MemoryFixture>; 3] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let (cell, name) = match keys {
            1_000 => (&FIXTURES[0], "memory_1k"),
            100_000 => (&FIXTURES[1], "memory_100k"),
            1_000_000 => (&FIXTURES[2], "memory_1M"),
            _ => panic!("no memory fixture of {keys} keys"),
        };
        cell.get_or_init(|| {
            let fixture = timed(name, || Self::build(keys));
            run_log().keys(name, keys);
            fixture
        })
    }
}

/// The floor, cache hits and uncached memory-store verifies at 1k keys
/// (everything in CPU caches: the compute alone), 100k and 1M keys, each
/// size measured back to back.
fn keys(c: &mut Criterion) {
    let need = requirement();
    // Fixtures are built inside the benchmark closures, which criterion
    // calls only for benchmarks its filter selects.
    for (keys, label) in [(1_000, "1k"), (100_000, "100k"), (1_000_000, "1M")] {
        c.benchmark_group("floor").bench_function(label, |b| {
            let fx = MemoryFixture::get(keys);
            let mut walk = Walk::new(SEED);
            b.iter(|| fx.floor.check(fx.tokens.get(walk.next_below(keys))));
        });
        c.benchmark_group("verify_cached")
            .bench_function(label, |b| {
                let fx = MemoryFixture::get(keys);
                let mut walk = Walk::new(SEED);
                b.iter(|| {
                    ready!(
                        fx.cached
                            .verify(fx.tokens.get(walk.next_below(keys)), &need),
                    )
                    .is_ok()
                });
            });
        c.benchmark_group("verify_memory")
            .bench_function(label, |b| {
                let fx = MemoryFixture::get(keys);
                let mut walk = Walk::new(SEED);
                b.iter(|| {
                    ready!(
                        fx.uncached
                            .verify(fx.tokens.get(walk.next_below(keys)), &need),
                    )
                    .is_ok()
                });
            });
    }
}

/// `threads` threads verify random cached keys, `iters` verifies in all;
/// the wall time from a common start to the last thread's end.
fn verify_on_threads(fx: &MemoryFixture, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let need = requirement();
    let n = fx.tokens.count();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let share = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
                let (barrier, need) = (&barrier, &need);
                s.spawn(move || {
                    let mut walk = Walk::new(SEED ^ (t as u64 + 1));
                    barrier.wait();
                    for _ in 0..share {
                        let token = fx.tokens.get(walk.next_below(n));
                        black_box(ready!(fx.cached.verify(token, need)).is_ok());
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().expect("verifying thread");
        }
        start.elapsed()
    })
}

/// Cached verifies on one and on two threads (wall time per verify: the
/// inverse of throughput), and garbage tokens.
fn threads_and_garbage(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify_threads");
    for threads in [1, 2] {
        group.bench_function(threads.to_string(), |b| {
            let fx = MemoryFixture::get(100_000);
            b.iter_custom(|iters| verify_on_threads(fx, threads, iters));
        });
    }
    group.finish();

    c.benchmark_group("verify_garbage")
        .bench_function("checksum", |b| {
            let fx = MemoryFixture::get(100_000);
            let need = requirement();
            let junk: Vec<String> = fx.tokens.iter().take(4096).map(garbage).collect();
            let junk = Tokens::new(&junk);
            for token in junk.iter() {
                let rejected = ready!(fx.cached.verify(token, &need));
                assert!(
                    matches!(rejected, Err(Rejection::Malformed(_))),
                    "garbage is rejected by its checksum"
                );
            }
            let mut walk = Walk::new(SEED);
            b.iter(|| {
                ready!(
                    fx.cached
                        .verify(junk.get(walk.next_below(junk.count())), &need),
                )
                .is_err()
            });
        });
}

/// Issue into a fresh memory store per sample, and list 50 keys of an owner
/// of a small memory store (its list scans every key).
fn memory_issue_and_list(c: &mut Criterion) {
    c.benchmark_group("issue").bench_function("memory", |b| {
        b.iter_custom(|iters| {
            let keyward = service(Arc::new(MemoryStore::new()), None);
            let requests: Vec<_> = (0..iters as usize).map(fixture::request).collect();
            let actor = fixture::actor();
            let start = Instant::now();
            for request in requests {
                black_box(ready!(keyward.issue(&actor, request)).expect("issue"));
            }
            start.elapsed()
        });
    });

    let actor = fixture::actor();
    c.benchmark_group("list_50").bench_function("memory", |b| {
        let keys = 20 * KEYS_PER_OWNER;
        let keyward = service(Arc::new(MemoryStore::new()), None);
        issue_keys_inline(&keyward, 0..keys);
        run_log().keys("list_memory", keys);
        b.iter(|| {
            let request = ListRequest::new(fixture::owner(0)).limit(KEYS_PER_OWNER);
            let page = ready!(keyward.list(&actor, request)).expect("list");
            assert_eq!(page.items.len(), KEYS_PER_OWNER);
            page
        });
    });
}

// ---------------------------------------------------------------- SQL stores

/// Keys issued into each SQL store before measuring.
fn sql_keys() -> usize {
    if fixture::short_mode() { 5_000 } else { 20_000 }
}

fn unique_suffix() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}_{}", now.as_secs(), std::process::id())
}

/// A service over a SQL store without a cache, and the tokens of its keys.
struct SqlFixture {
    keyward: Keyward,
    tokens: Tokens,
}

/// Issues `keys` keys through an uncached service over `store`.
fn sql_fixture(
    name: &str,
    store: Arc<dyn KeyStore>,
    tasks: usize,
    runtime: &tokio::runtime::Runtime,
) -> SqlFixture {
    let keys = sql_keys();
    let fixture = timed(name, || {
        let keyward = service(store, None);
        let tokens = Tokens::new(&issue_keys(&keyward, 0..keys, tasks, runtime));
        SqlFixture { keyward, tokens }
    });
    run_log().keys(name, keys);
    fixture
}

/// Verify through a SQLite store without a cache, next to the same SELECT
/// through a raw rusqlite connection on the same file; list and issue.
fn sqlite(c: &mut Criterion) {
    // One file per process: two runs at once must not share (or delete)
    // each other's database.
    let path = target_dir()
        .join("tmp")
        .join(format!("keyward-bench-{}.db", std::process::id()));
    let runtime = current_thread();
    let cell = OnceCell::new();
    let fixture = || {
        cell.get_or_init(|| {
            remove_database(&path);
            std::fs::create_dir_all(path.parent().expect("a directory"))
                .expect("the tmp directory");
            let store = SqliteStore::open(&path).expect("open SQLite");
            sql_fixture("sqlite", Arc::new(store), 2, &runtime)
        })
    };
    let need = requirement();

    c.benchmark_group("sqlite")
        .bench_function("raw_lookup", |b| {
            let fx = fixture();
            let n = fx.tokens.count();
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let raw =
                rusqlite::Connection::open_with_flags(&path, flags).expect("a raw connection");
            let sql = format!("SELECT {SQLITE_KEY_COLUMNS} FROM keyward_keys WHERE id = ?1");
            let lookup = |id: &str| -> bool {
                let mut statement = raw.prepare_cached(&sql).expect("prepare");
                let mut rows = statement.query([id]).expect("query");
                let Some(row) = rows.next().expect("step") else {
                    return false;
                };
                for column in 0..KEY_COLUMN_COUNT {
                    black_box(row.get_ref(column).expect("a column"));
                }
                true
            };
            assert!(fx.tokens.iter().all(|t| lookup(key_id(t))));
            let mut walk = Walk::new(SEED);
            b.iter(|| lookup(key_id(fx.tokens.get(walk.next_below(n)))));
        });
    c.benchmark_group("sqlite").bench_function("verify", |b| {
        let fx = fixture();
        let n = fx.tokens.count();
        let mut walk = Walk::new(SEED);
        b.to_async(&runtime).iter(|| {
            let token = fx.tokens.get(walk.next_below(n));
            let (keyward, need) = (&fx.keyward, &need);
            async move { keyward.verify(token, need).await.expect("verifies") }
        });
    });
    list_and_issue(c, "sqlite", || &fixture().keyward, &runtime);
    drop(cell);
    remove_database(&path);
}

/// Deletes a SQLite database file and its WAL and shared-memory files.
fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.to_owned().into_os_string();
        file.push(suffix);
        drop(std::fs::remove_file(file));
    }
}

/// List 50 keys of an owner, and issue (the store grows by what criterion
/// issues, numbered past the keys already there).
fn list_and_issue<'a>(
    c: &mut Criterion,
    store: &str,
    keyward: impl Fn() -> &'a Keyward,
    runtime: &tokio::runtime::Runtime,
) {
    let actor = fixture::actor();
    c.benchmark_group("list_50").bench_function(store, |b| {
        let keyward = keyward();
        b.to_async(runtime).iter(|| async {
            let request = ListRequest::new(fixture::owner(0)).limit(KEYS_PER_OWNER);
            let page = keyward.list(&actor, request).await.expect("list");
            assert_eq!(page.items.len(), KEYS_PER_OWNER);
            page
        });
    });
    let mut next = sql_keys();
    let mut group = c.benchmark_group("issue");
    group.sample_size(if fixture::short_mode() { 10 } else { 30 });
    group.bench_function(store, |b| {
        let keyward = keyward();
        b.to_async(runtime).iter(|| {
            next += 1;
            let request = fixture::request(next);
            let actor = &actor;
            async move { keyward.issue(actor, request).await.expect("issue") }
        });
    });
    group.finish();
}

/// A pool on a fresh schema of `DATABASE_URL`'s database, or why not.
async fn postgres_pool() -> Result<(PgPool, PgPool, String), String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
    let options = PgConnectOptions::from_str(&url).map_err(|e| format!("DATABASE_URL: {e}"))?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    // Schemas of earlier runs that stopped before dropping theirs.
    let stale: Vec<String> =
        sqlx::query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kwbench\\_%'")
            .fetch_all(&admin)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|row| row.try_get::<String, _>(0).ok())
            .collect();
    for name in stale {
        if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            drop(
                sqlx::query(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .execute(&admin)
                .await,
            );
        }
    }
    let schema = format!("kwbench_{}", unique_suffix());
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .map_err(|e| e.to_string())?;
    // As `PgStore::connect` does: no ping before every acquire.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .map_err(|e| e.to_string())?;
    Ok((admin, pool, schema))
}

/// Verify through a Postgres store without a cache, next to the same SELECT
/// through the same pool; list and issue. Skipped without `DATABASE_URL`.
fn postgres(c: &mut Criterion) {
    let runtime = current_thread();
    let (admin, pool, schema) = match runtime.block_on(postgres_pool()) {
        Ok(pools) => pools,
        Err(why) => {
            let note = format!("Postgres figures skipped: {why}.");
            say(&note);
            run_log().note(&note);
            return;
        }
    };
    let cell = OnceCell::new();
    let fixture = || {
        cell.get_or_init(|| {
            let store = PgStore::new(pool.clone());
            runtime.block_on(store.migrate()).expect("migrate");
            let fx = sql_fixture("postgres", Arc::new(store), 8, &runtime);
            runtime
                .block_on(sqlx::query("ANALYZE keyward_keys").execute(&pool))
                .expect("analyze");
            fx
        })
    };
    let need = requirement();

    let sql: Arc<str> = format!("SELECT {PG_KEY_COLUMNS} FROM keyward_keys WHERE id = $1").into();
    c.benchmark_group("postgres")
        .bench_function("raw_select", |b| {
            let fx = fixture();
            let n = fx.tokens.count();
            let mut walk = Walk::new(SEED);
            b.to_async(&runtime).iter(|| {
                let id = key_id(fx.tokens.get(walk.next_below(n)));
                let (pool, sql) = (&pool, Arc::clone(&sql));
                async move {
                    let row = sqlx::query(AssertSqlSafe(sql))
                        .bind(id)
                        .fetch_optional(pool)
                        .await
                        .expect("select");
                    row.expect("the key exists")
                }
            });
        });
    c.benchmark_group("postgres").bench_function("verify", |b| {
        let fx = fixture();
        let n = fx.tokens.count();
        let mut walk = Walk::new(SEED);
        b.to_async(&runtime).iter(|| {
            let token = fx.tokens.get(walk.next_below(n));
            let (keyward, need) = (&fx.keyward, &need);
            async move { keyward.verify(token, need).await.expect("verifies") }
        });
    });
    list_and_issue(c, "postgres", || &fixture().keyward, &runtime);

    runtime.block_on(async {
        pool.close().await;
        drop(
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await,
        );
        admin.close().await;
    });
}

criterion::criterion_group! {
    name = benches;
    config = config();
    targets = keys, threads_and_garbage, memory_issue_and_list, sqlite, postgres
}

fn main() {
    let started = Instant::now();
    run_log();
    benches();
    run_log().finish();
    Criterion::default().configure_from_args().final_summary();
    say(&format!(
        "finished in {:.0} s; `cargo run -p keyward-bench --release --bin report` prints the table",
        started.elapsed().as_secs_f64()
    ));
}
