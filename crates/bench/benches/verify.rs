//! keyward's benchmarks, paired and interleaved: every figure is timed in
//! batches alternating with its reference's in one sampling loop (the floor
//! for the in-memory verifies, one thread for two, the raw lookup for
//! SQLite, the bare SELECT for Postgres), and its ratio is the median of
//! the per-pair ratios. Issue and list are timed on their own.
//!
//! ```sh
//! cargo bench -p keyward-bench                        # full: a few minutes
//! KEYWARD_BENCH_SHORT=1 cargo bench -p keyward-bench  # short: under a minute
//! cargo bench -p keyward-bench -- 'floor|threads'     # a regex on the ids
//! cargo bench -p keyward-bench -- --save quiet        # also target/keyward-bench/quiet.json
//! cargo run -p keyward-bench --release --bin report   # the table
//! ```
//!
//! See `docs/performance.md` and `keyward_bench::paired` for the method.
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

use keyward_bench::fixture::{
    self, Floor, KEYS_PER_OWNER, Tokens, Walk, garbage, issue_keys, issue_keys_inline, key_id,
    requirement, service,
};
use keyward_bench::leaks::{LeakSetup, REPORT_TOKENS};
use keyward_bench::paired::{Comparison, Plan, time};
use keyward_bench::ready;
use keyward_bench::report::ratio_text;
use keyward_bench::results::{self, Figure, Recorder, Run};
use keyward_core::{Keyward, ListRequest, Rejection, store::KeyStore};
use keyward_memory::MemoryStore;
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use keyward_postgres::sqlx::{self, AssertSqlSafe, PgPool, Row};
use keyward_sqlite::SqliteStore;
use keyward_sqlite::rusqlite::{self, OpenFlags};
use regex::Regex;
use std::cell::OnceCell;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// The peer comparisons (docs/performance.md, "Peers"); beside this file, not
// in benches/ itself, where cargo would take it for a bench of its own.
#[path = "verify/peer_figures.rs"]
mod peer_figures;

/// The walk every comparison starts from.
const SEED: u64 = 0x006b_6579_7761_7264;

/// The columns the SQL adapters read for a verify (as their `verify_key`
/// does): the references run the same `SELECT` as the verify they pair with.
const SQLITE_KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, scopes, \
    roles, inherits_owner, metadata, state, expires_at";
const PG_KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, \
    array_to_string(scopes, ' ') AS scopes, array_to_string(roles, ' ') AS roles, \
    inherits_owner, metadata::text AS metadata, state, expires_at";
const KEY_COLUMN_COUNT: usize = 12;

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_owned)
}

/// Prints a progress line to stderr.
fn say(line: &str) {
    eprintln!("keyward-bench: {line}");
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs `op` `ops` times and returns how long that took; panics unless
/// every call returned `true` (every verify succeeded, every lookup found
/// its key).
#[inline]
fn batch(ops: u64, what: &str, mut op: impl FnMut() -> bool) -> Duration {
    let mut ok = 0_u64;
    let elapsed = time(|| {
        for _ in 0..ops {
            ok += u64::from(op());
        }
    });
    assert_eq!(ok, ops, "{what}: every operation succeeds");
    elapsed
}

/// The run: mode, filter, and where its results go.
struct Bench {
    short: bool,
    filter: Option<Regex>,
    recorder: Recorder,
}

impl Bench {
    /// Whether the filter selects any of `ids` (a comparison runs when it
    /// selects its figure or its reference).
    fn wants(&self, ids: &[&str]) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| ids.iter().any(|id| f.is_match(id)))
    }

    /// Runs `build`, records how long it took under `what`.
    fn timed<T>(&mut self, what: &str, build: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let built = build();
        let seconds = start.elapsed().as_secs_f64();
        say(&format!("{what}: set up in {seconds:.1} s"));
        self.recorder.setup(what, seconds);
        built
    }
}

/// The comparisons of a run, each sampled a round at a time.
type Comparisons<'a> = Vec<Comparison<'a>>;

/// A comparison of `figure` against `reference` on the run's walk.
fn paired<'a>(
    id: &str,
    keys: Option<usize>,
    reference_id: &str,
    plan: Plan,
    reference: impl FnMut(&mut Walk, u64) -> Duration + 'a,
    figure: impl FnMut(&mut Walk, u64) -> Duration + 'a,
) -> Comparison<'a> {
    Comparison::paired(id, keys, reference_id, plan, SEED, reference, figure)
}

/// A figure measured on its own.
fn single<'a>(
    id: &str,
    keys: Option<usize>,
    plan: Plan,
    side: impl FnMut(&mut Walk, u64) -> Duration + 'a,
) -> Comparison<'a> {
    Comparison::single(id, keys, plan, SEED, side)
}

/// One line about what `comparison` measured.
fn summary(comparison: &Comparison<'_>) -> String {
    let Some(figure) = Figure::of(comparison) else {
        return format!("{}: no samples", comparison.id());
    };
    match (&figure.reference, figure.reference_ns, figure.ratio) {
        (Some(reference), Some(r), Some(ratio)) => format!(
            "{}: {:.1} ns vs {reference} {:.1} ns, ratio {} (p5–p95 {}–{}); \
             {} pairs of {} + {} ops",
            figure.id,
            figure.ns.median,
            r.median,
            ratio_text(ratio.median, 3),
            ratio_text(ratio.p5, 3),
            ratio_text(ratio.p95, 3),
            figure.samples_ns.len(),
            figure.reference_batch.unwrap_or(0),
            figure.batch,
        ),
        _ => format!(
            "{}: {:.1} ns (p5–p95 {:.1}–{:.1}); {} batches of {} ops",
            figure.id,
            figure.ns.median,
            figure.ns.p5,
            figure.ns.p95,
            figure.samples_ns.len(),
            figure.batch
        ),
    }
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
}

/// The memory fixtures (1k, 10k, 100k and 1M keys), each built on first
/// use.
#[derive(Default)]
struct MemoryFixtures([OnceCell<MemoryFixture>; 4]);

impl MemoryFixtures {
    fn get(&self, keys: usize, bench: &mut Bench) -> &MemoryFixture {
        let (cell, name) = match keys {
            1_000 => (&self.0[0], "memory_1k"),
            10_000 => (&self.0[1], "memory_10k"),
            100_000 => (&self.0[2], "memory_100k"),
            1_000_000 => (&self.0[3], "memory_1M"),
            _ => panic!("no memory fixture of {keys} keys"),
        };
        if cell.get().is_none() {
            let fixture = bench.timed(name, || MemoryFixture::build(keys));
            drop(cell.set(fixture));
        }
        cell.get().expect("built above")
    }
}

/// The floor's side: a `HashMap` lookup and a SHA-256 per operation.
fn floor_side(fx: &MemoryFixture) -> impl FnMut(&mut Walk, u64) -> Duration + '_ {
    let n = fx.tokens.count();
    move |walk, ops| {
        batch(ops, "floor", || {
            fx.floor.check(fx.tokens.get(walk.next_below(n)))
        })
    }
}

/// A side verifying random keys through `keyward` without a runtime (a
/// cache hit, or the memory store).
fn verify_side<'a>(
    keyward: &'a Keyward,
    tokens: &'a Tokens,
    what: &'a str,
) -> impl FnMut(&mut Walk, u64) -> Duration + 'a {
    let need = requirement();
    let n = tokens.count();
    move |walk, ops| {
        batch(ops, what, || {
            ready!(keyward.verify(tokens.get(walk.next_below(n)), &need)).is_ok()
        })
    }
}

/// Cache hits and uncached memory-store verifies against the floor, at 1k
/// keys (everything in CPU caches: the compute alone), 100k and 1M keys.
fn keys<'a>(bench: &mut Bench, fixtures: &'a MemoryFixtures, out: &mut Comparisons<'a>) {
    let plan = Plan::memory(bench.short);
    for (keys, label) in [(1_000, "1k"), (100_000, "100k"), (1_000_000, "1M")] {
        let floor = format!("floor/{label}");
        let cached = format!("verify_cached/{label}");
        if bench.wants(&[&floor, &cached]) {
            let fx = fixtures.get(keys, bench);
            out.push(paired(
                &cached,
                Some(keys),
                &floor,
                plan,
                floor_side(fx),
                verify_side(&fx.cached, &fx.tokens, "verify_cached"),
            ));
        }
        let memory = format!("verify_memory/{label}");
        if keys > 1_000 && bench.wants(&[&floor, &memory]) {
            let fx = fixtures.get(keys, bench);
            out.push(paired(
                &memory,
                Some(keys),
                &floor,
                plan,
                floor_side(fx),
                verify_side(&fx.uncached, &fx.tokens, "verify_memory"),
            ));
        }
    }
}

/// `threads` threads verify random cached keys, `ops` verifies in all,
/// each on a walk split from `walk`, released together by a barrier; the
/// wall time from the first thread's start to the last thread's end (each
/// thread reads the clock itself, so a preempted main thread does not
/// shorten or lengthen it).
fn verify_on_threads(fx: &MemoryFixture, threads: usize, ops: u64, walk: &mut Walk) -> Duration {
    let need = requirement();
    on_threads(fx, threads, ops, walk, &|token| {
        ready!(fx.cached.verify(token, &need)).is_ok()
    })
}

/// `threads` threads run `check` on random tokens of `fx`, `ops` in all;
/// the wall time from the first timed start to the last end.
fn on_threads(
    fx: &MemoryFixture,
    threads: usize,
    ops: u64,
    walk: &mut Walk,
    check: &(dyn Fn(&str) -> bool + Sync),
) -> Duration {
    let barrier = Barrier::new(threads);
    let arrived = AtomicUsize::new(0);
    let n = fx.tokens.count();
    let walks: Vec<Walk> = (0..threads).map(|_| walk.split()).collect();
    let spans: Vec<(Instant, Instant, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = walks
            .into_iter()
            .enumerate()
            .map(|(t, mut walk)| {
                let share = ops / threads as u64 + u64::from((t as u64) < ops % threads as u64);
                let (barrier, arrived) = (&barrier, &arrived);
                s.spawn(move || {
                    // A spinning start: waking a thread parked on another
                    // (virtual) CPU takes long enough on this machine to
                    // swallow a batch, so each thread runs, and spins,
                    // until all are running; only then does timing start.
                    barrier.wait();
                    arrived.fetch_add(1, Ordering::SeqCst);
                    while arrived.load(Ordering::SeqCst) < threads {
                        std::hint::spin_loop();
                    }
                    let start = Instant::now();
                    let mut ok = 0_u64;
                    for _ in 0..share {
                        let token = fx.tokens.get(walk.next_below(n));
                        ok += u64::from(check(token));
                    }
                    (start, Instant::now(), ok)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("verifying thread"))
            .collect()
    });
    let ok: u64 = spans.iter().map(|(_, _, ok)| ok).sum();
    assert_eq!(ok, ops, "every threaded verify succeeds");
    let start = spans.iter().map(|(start, _, _)| *start).min();
    let end = spans.iter().map(|(_, end, _)| *end).max();
    match (start, end) {
        (Some(start), Some(end)) => end.duration_since(start),
        _ => Duration::ZERO,
    }
}

/// Cached verifies on two threads against one (wall time per verify: the
/// inverse of throughput), and garbage tokens against the floor at 1k keys.
fn threads_and_garbage<'a>(
    bench: &mut Bench,
    fixtures: &'a MemoryFixtures,
    out: &mut Comparisons<'a>,
) {
    if bench.wants(&["floor_threads/1", "floor_threads/2"]) {
        let fx = fixtures.get(100_000, bench);
        out.push(paired(
            "floor_threads/2",
            Some(100_000),
            "floor_threads/1",
            Plan::threads(bench.short),
            |walk, ops| on_threads(fx, 1, ops, walk, &|t| fx.floor.check(t)),
            |walk, ops| on_threads(fx, 2, ops, walk, &|t| fx.floor.check(t)),
        ));
    }
    if bench.wants(&["verify_threads/1", "verify_threads/2"]) {
        let fx = fixtures.get(100_000, bench);
        out.push(paired(
            "verify_threads/2",
            Some(100_000),
            "verify_threads/1",
            Plan::threads(bench.short),
            |walk, ops| verify_on_threads(fx, 1, ops, walk),
            |walk, ops| verify_on_threads(fx, 2, ops, walk),
        ));
    }

    if bench.wants(&["floor/1k", "verify_garbage/checksum"]) {
        let small = fixtures.get(1_000, bench);
        let fx = fixtures.get(100_000, bench);
        let need = requirement();
        let junk: Vec<String> = fx.tokens.iter().take(4096).map(garbage).collect();
        let junk = Tokens::new(&junk);
        let rejected = move |token: &str| {
            matches!(
                ready!(fx.cached.verify(token, &need)),
                Err(Rejection::Malformed(_))
            )
        };
        assert!(
            junk.iter().all(&rejected),
            "garbage is rejected by its checksum"
        );
        let n = junk.count();
        out.push(paired(
            "verify_garbage/checksum",
            Some(100_000),
            "floor/1k",
            Plan::memory(bench.short),
            floor_side(small),
            move |walk, ops| {
                batch(ops, "verify_garbage", || {
                    rejected(junk.get(walk.next_below(n)))
                })
            },
        ));
    }
}

/// Issue into a fresh memory store per batch, and list 50 keys of an owner
/// of a small memory store (its list scans every key).
fn memory_issue_and_list(bench: &mut Bench, out: &mut Comparisons<'_>) {
    let plan = Plan::absolute(bench.short);
    if bench.wants(&["issue/memory"]) {
        out.push(single("issue/memory", None, plan, |_, ops| {
            let keyward = service(Arc::new(MemoryStore::new()), None);
            let requests: Vec<_> = (0..ops as usize).map(fixture::request).collect();
            let actor = fixture::actor();
            time(|| {
                for request in requests {
                    black_box(ready!(keyward.issue(&actor, request)).expect("issue"));
                }
            })
        }));
    }
    if bench.wants(&["list_50/memory"]) {
        let keys = 20 * KEYS_PER_OWNER;
        let keyward = service(Arc::new(MemoryStore::new()), None);
        issue_keys_inline(&keyward, 0..keys);
        let actor = fixture::actor();
        out.push(single("list_50/memory", Some(keys), plan, move |_, ops| {
            batch(ops, "list_50/memory", || {
                let request = ListRequest::new(fixture::owner(0)).limit(KEYS_PER_OWNER);
                let page = ready!(keyward.list(&actor, request)).expect("list");
                page.items.len() == KEYS_PER_OWNER
            })
        }));
    }
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

/// Issues [`sql_keys`] keys through an uncached service over `store`.
fn sql_fixture(
    bench: &mut Bench,
    name: &str,
    store: Arc<dyn KeyStore>,
    tasks: usize,
    runtime: &tokio::runtime::Runtime,
) -> SqlFixture {
    let keys = sql_keys();
    bench.timed(name, || {
        let keyward = service(store, None);
        let tokens = Tokens::new(&issue_keys(&keyward, 0..keys, tasks, runtime));
        SqlFixture { keyward, tokens }
    })
}

/// A side verifying random keys through a SQL store, as one
/// `block_on` of the whole batch on a current-thread runtime.
fn sql_verify_side<'a>(
    fx: &'a SqlFixture,
    runtime: &'a tokio::runtime::Runtime,
) -> impl FnMut(&mut Walk, u64) -> Duration + 'a {
    let need = requirement();
    let n = fx.tokens.count();
    move |walk, ops| {
        time(|| {
            runtime.block_on(async {
                for _ in 0..ops {
                    let token = fx.tokens.get(walk.next_below(n));
                    fx.keyward.verify(token, &need).await.expect("verifies");
                }
            });
        })
    }
}

/// A SQLite store of [`sql_keys`] keys in a file of this process's own, and
/// a raw read-only rusqlite connection on the same file.
struct SqliteSetup {
    path: PathBuf,
    runtime: tokio::runtime::Runtime,
    fx: SqlFixture,
    raw: rusqlite::Connection,
}

const SQLITE_IDS: [&str; 5] = [
    "sqlite/raw_lookup",
    "sqlite/verify",
    "list_50/sqlite",
    "issue/sqlite",
    "leaks_1000/sqlite",
];

impl SqliteSetup {
    fn new(bench: &mut Bench) -> Option<Self> {
        if !bench.wants(&SQLITE_IDS) {
            return None;
        }
        // One file per process: two runs at once must not share (or delete)
        // each other's database.
        let path = target_dir()
            .join("tmp")
            .join(format!("keyward-bench-{}.db", std::process::id()));
        remove_database(&path);
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("the tmp directory");
        let runtime = current_thread();
        let store = SqliteStore::open(&path).expect("open SQLite");
        let fx = sql_fixture(bench, "sqlite", Arc::new(store), 2, &runtime);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let raw = rusqlite::Connection::open_with_flags(&path, flags).expect("a raw connection");
        // Read as the store's readers read: through the same memory map.
        let mmap = i64::try_from(keyward_sqlite::DEFAULT_MMAP_SIZE).expect("fits");
        raw.pragma_update(None, "mmap_size", mmap)
            .expect("the raw connection maps the file");
        Some(Self {
            path,
            runtime,
            fx,
            raw,
        })
    }

    /// Verify without a cache against the same SELECT through the raw
    /// connection; list and issue.
    fn comparisons<'a>(&'a self, bench: &Bench, out: &mut Comparisons<'a>) {
        let fx = &self.fx;
        let n = fx.tokens.count();
        if bench.wants(&SQLITE_IDS[..2]) {
            let sql = format!("SELECT {SQLITE_KEY_COLUMNS} FROM keyward_keys WHERE id = ?1");
            let raw = &self.raw;
            let lookup = move |id: &str| -> bool {
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
            out.push(paired(
                "sqlite/verify",
                Some(n),
                "sqlite/raw_lookup",
                Plan::sql(bench.short),
                move |walk, ops| {
                    batch(ops, "sqlite/raw_lookup", || {
                        lookup(key_id(fx.tokens.get(walk.next_below(n))))
                    })
                },
                sql_verify_side(fx, &self.runtime),
            ));
        }
        list_and_issue(bench, "sqlite", fx, &self.runtime, out);
        leak_report(bench, "sqlite", fx.keyward.clone(), &self.runtime, out);
    }

    fn remove(self) {
        let path = self.path.clone();
        drop(self);
        remove_database(&path);
    }
}

/// Deletes a SQLite database file and its WAL and shared-memory files.
fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.to_owned().into_os_string();
        file.push(suffix);
        drop(std::fs::remove_file(file));
    }
}

/// List 50 keys of an owner, and issue (the store grows by what is issued,
/// numbered past the keys already there).
fn list_and_issue<'a>(
    bench: &Bench,
    store: &str,
    fx: &'a SqlFixture,
    runtime: &'a tokio::runtime::Runtime,
    out: &mut Comparisons<'a>,
) {
    let plan = Plan::absolute(bench.short);
    let keys = Some(fx.tokens.count());
    let list = format!("list_50/{store}");
    if bench.wants(&[&list]) {
        let actor = fixture::actor();
        out.push(single(&list, keys, plan, move |_, ops| {
            time(|| {
                runtime.block_on(async {
                    for _ in 0..ops {
                        let request = ListRequest::new(fixture::owner(0)).limit(KEYS_PER_OWNER);
                        let page = fx.keyward.list(&actor, request).await.expect("list");
                        assert_eq!(page.items.len(), KEYS_PER_OWNER);
                    }
                });
            })
        }));
    }
    let issue = format!("issue/{store}");
    if bench.wants(&[&issue]) {
        let actor = fixture::actor();
        let mut next = sql_keys();
        out.push(single(&issue, keys, plan, move |_, ops| {
            let requests: Vec<_> = (0..ops as usize)
                .map(|i| fixture::request(next + i))
                .collect();
            next += ops as usize;
            time(|| {
                runtime.block_on(async {
                    for request in requests {
                        black_box(fx.keyward.issue(&actor, request).await.expect("issue"));
                    }
                });
            })
        }));
    }
}

/// A signed GitHub report of 1,000 live tokens through the leak receiver
/// (`leaks_1000/{store}`): the keys are issued first, untimed; each report
/// revokes keys of its own, so every token is looked up, compared and
/// revoked. Few samples: a batch issues a thousand keys first.
fn leak_report<'a, R>(
    bench: &Bench,
    store: &str,
    keyward: Keyward,
    runtime: R,
    out: &mut Comparisons<'a>,
) where
    R: std::ops::Deref<Target = tokio::runtime::Runtime> + 'a,
{
    let id = format!("leaks_1000/{store}");
    if !bench.wants(&[&id]) {
        return;
    }
    let plan = Plan {
        batch: Duration::from_millis(1),
        warmup: Duration::ZERO,
        pairs: if bench.short { 2 } else { 7 },
    };
    let setup = LeakSetup::new(&keyward);
    let actor = fixture::actor();
    // Numbered far past every other figure's keys.
    let mut next = 50_000_000;
    out.push(single(&id, None, plan, move |_, ops| {
        let mut elapsed = Duration::ZERO;
        for _ in 0..ops {
            let tokens: Vec<String> = runtime.block_on(async {
                let mut tokens = Vec::with_capacity(REPORT_TOKENS);
                for i in 0..REPORT_TOKENS {
                    let issued = keyward
                        .issue(&actor, fixture::request(next + i))
                        .await
                        .expect("issue");
                    tokens.push(issued.token.expose_secret().to_owned());
                }
                tokens
            });
            next += REPORT_TOKENS;
            let request = setup.request(&tokens);
            let start = Instant::now();
            let confirmed = runtime.block_on(setup.send(request));
            elapsed += start.elapsed();
            assert_eq!(confirmed, REPORT_TOKENS, "every reported token was ours");
        }
        elapsed
    }));
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

/// A Postgres store of [`sql_keys`] keys in a fresh schema, and the pool
/// it uses. `None` (with a notice) without `DATABASE_URL`.
struct PgSetup {
    runtime: tokio::runtime::Runtime,
    admin: PgPool,
    pool: PgPool,
    schema: String,
    fx: SqlFixture,
}

const PG_IDS: [&str; 5] = [
    "postgres/raw_select",
    "postgres/verify",
    "list_50/postgres",
    "issue/postgres",
    "leaks_1000/postgres",
];

impl PgSetup {
    fn new(bench: &mut Bench) -> Option<Self> {
        if !bench.wants(&PG_IDS) {
            return None;
        }
        let runtime = current_thread();
        let (admin, pool, schema) = match runtime.block_on(postgres_pool()) {
            Ok(pools) => pools,
            Err(why) => {
                let note = format!("Postgres figures skipped: {why}.");
                say(&note);
                bench.recorder.note(&note);
                return None;
            }
        };
        let store = PgStore::new(pool.clone());
        runtime.block_on(store.migrate()).expect("migrate");
        let fx = sql_fixture(bench, "postgres", Arc::new(store), 8, &runtime);
        runtime
            .block_on(sqlx::query("ANALYZE keyward_keys").execute(&pool))
            .expect("analyze");
        Some(Self {
            runtime,
            admin,
            pool,
            schema,
            fx,
        })
    }

    /// Verify without a cache against the same SELECT through the same
    /// pool; list and issue.
    fn comparisons<'a>(&'a self, bench: &Bench, out: &mut Comparisons<'a>) {
        let fx = &self.fx;
        let n = fx.tokens.count();
        if bench.wants(&PG_IDS[..2]) {
            let sql: Arc<str> =
                format!("SELECT {PG_KEY_COLUMNS} FROM keyward_keys WHERE id = $1").into();
            let (runtime, pool) = (&self.runtime, &self.pool);
            out.push(paired(
                "postgres/verify",
                Some(n),
                "postgres/raw_select",
                Plan::sql(bench.short),
                move |walk, ops| {
                    time(|| {
                        runtime.block_on(async {
                            for _ in 0..ops {
                                let id = key_id(fx.tokens.get(walk.next_below(n)));
                                let row = sqlx::query(AssertSqlSafe(Arc::clone(&sql)))
                                    .bind(id)
                                    .fetch_optional(pool)
                                    .await
                                    .expect("select");
                                black_box(row.expect("the key exists"));
                            }
                        });
                    })
                },
                sql_verify_side(fx, runtime),
            ));
        }
        list_and_issue(bench, "postgres", fx, &self.runtime, out);
        leak_report(bench, "postgres", fx.keyward.clone(), &self.runtime, out);
    }

    /// Closes the pools and drops the schema.
    fn remove(self) {
        let Self {
            runtime,
            admin,
            pool,
            schema,
            fx,
        } = self;
        drop(fx);
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
}

const USAGE: &str = "usage: cargo bench -p keyward-bench -- [FILTER] [--save NAME]\n  \
    FILTER  a regular expression on figure ids (a comparison runs if it matches the figure or its reference)\n  \
    --save  also write the results to NAME (a path, or a name in target/keyward-bench/)";

/// Rounds a run is split into: each comparison takes its share of pairs in
/// every round, so all of them sample the whole run's load.
fn rounds(short: bool) -> usize {
    if short { 2 } else { 10 }
}

/// Samples every comparison, round after round, recording after each.
fn run_rounds(bench: &mut Bench, comparisons: &mut Comparisons<'_>) {
    let rounds = rounds(bench.short);
    for round in 1..=rounds {
        let start = Instant::now();
        for comparison in comparisons.iter_mut() {
            let pairs = comparison.plan().pairs.div_ceil(rounds);
            comparison.sample(pairs);
            if let Some(figure) = Figure::of(comparison) {
                bench.recorder.figure(figure);
            }
        }
        say(&format!(
            "round {round}/{rounds}: {} comparisons in {:.1} s",
            comparisons.len(),
            start.elapsed().as_secs_f64()
        ));
    }
    for comparison in comparisons.iter() {
        say(&summary(comparison));
    }
}

fn main() -> ExitCode {
    let mut filter = None;
    let mut save = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // What `cargo bench` passes to every bench target.
            "--bench" => {}
            "--save" => match args.next() {
                Some(name) => save = Some(name),
                None => {
                    eprintln!("{USAGE}");
                    return ExitCode::FAILURE;
                }
            },
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            flag if flag.starts_with('-') => {
                eprintln!("unknown option {flag}\n{USAGE}");
                return ExitCode::FAILURE;
            }
            _ if filter.is_some() => {
                eprintln!("one filter at most\n{USAGE}");
                return ExitCode::FAILURE;
            }
            pattern => filter = Some(pattern.to_owned()),
        }
    }
    let regex = match filter.as_deref().map(Regex::new).transpose() {
        Ok(regex) => regex,
        Err(e) => {
            eprintln!("the filter is not a regular expression: {e}");
            return ExitCode::FAILURE;
        }
    };
    let short = fixture::short_mode();
    let dir = results::results_dir(&target_dir());
    let mut paths = vec![dir.join(results::LATEST)];
    if let Some(name) = &save {
        paths.push(results::resolve(&dir, name));
    }
    let mut bench = Bench {
        short,
        filter: regex,
        recorder: Recorder::new(Run::start(short, filter), paths),
    };
    say(&format!(
        "{} run, paired and interleaved, {} rounds; results in {}",
        if short { "short" } else { "full" },
        rounds(short),
        bench
            .recorder
            .paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    ));

    // Everything the selected comparisons need is built first, and lives
    // until every round is done.
    let fixtures = MemoryFixtures::default();
    let sqlite = SqliteSetup::new(&mut bench);
    let postgres = PgSetup::new(&mut bench);
    let peers = peer_figures::PeerSetup::new(&mut bench);
    let prefixed = peer_figures::PrefixedTables::default();
    let http = bench
        .wants(&["http/open", "http/keyward"])
        .then(keyward_bench::http::HttpSetup::new);
    let mut comparisons = Comparisons::new();
    keys(&mut bench, &fixtures, &mut comparisons);
    threads_and_garbage(&mut bench, &fixtures, &mut comparisons);
    memory_issue_and_list(&mut bench, &mut comparisons);
    leak_report(
        &bench,
        "memory",
        fixture::service(Arc::new(MemoryStore::new()), None),
        Box::new(current_thread()),
        &mut comparisons,
    );
    if let Some(sqlite) = &sqlite {
        sqlite.comparisons(&bench, &mut comparisons);
    }
    if let Some(postgres) = &postgres {
        postgres.comparisons(&bench, &mut comparisons);
    }
    peer_figures::prefixed(&mut bench, &fixtures, &prefixed, &mut comparisons);
    if let Some(peers) = &peers {
        peers.comparisons(&mut bench, &fixtures, &mut comparisons);
    }
    if let Some(http) = &http {
        // Paired as the SQL figures are: 3 ms batches of round trips.
        comparisons.push(paired(
            "http/keyward",
            None,
            "http/open",
            Plan::sql(bench.short),
            |_, ops| http.batch(false, ops),
            |_, ops| http.batch(true, ops),
        ));
    }

    run_rounds(&mut bench, &mut comparisons);

    drop(comparisons);
    drop(http);
    if let Some(peers) = peers {
        peers.remove();
    }
    drop(prefixed);
    drop(fixtures);
    if let Some(sqlite) = sqlite {
        sqlite.remove();
    }
    if let Some(postgres) = postgres {
        postgres.remove();
    }
    bench.recorder.finish();
    say(&format!(
        "finished in {:.0} s; `cargo run -p keyward-bench --release --bin report` prints the table",
        bench.recorder.run().wall_seconds.unwrap_or(0.0)
    ));
    ExitCode::SUCCESS
}
