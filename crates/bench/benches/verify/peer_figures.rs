//! keyward against the peers a user would otherwise pick, paired as every
//! other figure (docs/performance.md, "Peers"):
//!
//! - `peer_prefixed/cached/{10k,100k}` and `peer_prefixed/memory/{10k,100k}`:
//!   a cache hit, and the memory store without a cache, against
//!   prefixed-api-key's parse + `HashMap` lookup + digest check, in process.
//! - `peer_modo/sqlite/{10k,100k}`: keyward's SQLite store without a cache
//!   against modo-rs's verify on its libsql file, in the worker process.
//! - `peer_argon/cached`: a cache hit against api-keys-simplified's Argon2id
//!   verify of one key, in the worker.

use super::{
    Bench, Comparisons, MemoryFixtures, SqlFixture, batch, current_thread, paired, say,
    sql_verify_side, target_dir, verify_side,
};
use keyward_bench::fixture::{Tokens, Walk, issue_keys, service};
use keyward_bench::paired::Plan;
use keyward_bench::peers::{PrefixedTable, Worker, build_worker};
use keyward_sqlite::SqliteStore;
use keyward_sqlite::rusqlite;
use std::cell::{OnceCell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The key counts of the peer comparisons.
const PEER_KEYS: [(usize, &str); 2] = [(10_000, "10k"), (100_000, "100k")];

/// prefixed-api-key's tables (10k and 100k keys), each built on first use.
#[derive(Default)]
pub(super) struct PrefixedTables([OnceCell<PrefixedTable>; 2]);

impl PrefixedTables {
    fn get(&self, keys: usize, bench: &mut Bench) -> &PrefixedTable {
        let (cell, name) = match keys {
            10_000 => (&self.0[0], "prefixed_api_key_10k"),
            100_000 => (&self.0[1], "prefixed_api_key_100k"),
            _ => panic!("no prefixed-api-key table of {keys} keys"),
        };
        if cell.get().is_none() {
            let table = bench.timed(name, || PrefixedTable::new(keys));
            drop(cell.set(table));
        }
        cell.get().expect("built above")
    }
}

/// The peer's side: prefixed-api-key's verify of random tokens.
fn prefixed_side(table: &PrefixedTable) -> impl FnMut(&mut Walk, u64) -> Duration + '_ {
    let tokens = table.tokens();
    let n = tokens.count();
    move |walk, ops| {
        batch(ops, "prefixed-api-key", || {
            table.check(tokens.get(walk.next_below(n)))
        })
    }
}

/// A cache hit, and the memory store without a cache, against
/// prefixed-api-key at 10k and 100k keys.
pub(super) fn prefixed<'a>(
    bench: &mut Bench,
    fixtures: &'a MemoryFixtures,
    tables: &'a PrefixedTables,
    out: &mut Comparisons<'a>,
) {
    let plan = Plan::memory(bench.short);
    for (keys, label) in PEER_KEYS {
        let reference = format!("prefixed_api_key/{label}");
        let cached = format!("peer_prefixed/cached/{label}");
        let memory = format!("peer_prefixed/memory/{label}");
        if bench.wants(&[&reference, &cached]) {
            let fx = fixtures.get(keys, bench);
            let table = tables.get(keys, bench);
            out.push(paired(
                &cached,
                Some(keys),
                &reference,
                plan,
                prefixed_side(table),
                verify_side(&fx.cached, &fx.tokens, "verify_cached"),
            ));
        }
        if bench.wants(&[&reference, &memory]) {
            let fx = fixtures.get(keys, bench);
            let table = tables.get(keys, bench);
            out.push(paired(
                &memory,
                Some(keys),
                &reference,
                plan,
                prefixed_side(table),
                verify_side(&fx.uncached, &fx.tokens, "verify_memory"),
            ));
        }
    }
}

/// The ids of the worker's comparisons, figure and reference.
fn modo_ids(label: &str) -> [String; 2] {
    [
        format!("peer_modo/sqlite/{label}"),
        format!("modo/sqlite/{label}"),
    ]
}
const ARGON_IDS: [&str; 2] = ["peer_argon/cached", "api_keys_simplified/argon2id"];

/// Where a keyward database is grown before it is copied to its place: a
/// memory-backed directory where there is one. keyward's store commits
/// with `synchronous = FULL`, an fsync per issue (about 250 µs each on
/// this machine's disk); on tmpfs the same issues, through the same store,
/// cost no fsync.
fn growing_dir() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    shm.is_dir().then(|| shm.to_owned())
}

/// A keyward SQLite store of `keys` keys at `path`, without a cache.
///
/// The keys are issued one by one through keyward's `issue` on a
/// `SqliteStore` (two tasks at a time, as the other SQL fixtures), in a
/// file on tmpfs where there is one; the file is checkpointed and copied
/// byte for byte to `path` (the same pages, in the same layout, as issuing
/// there would have left), and the store verifies from `path`.
fn keyward_sqlite(keys: usize, path: &Path, runtime: &tokio::runtime::Runtime) -> SqlFixture {
    let scratch = growing_dir().map(|dir| {
        tempfile::Builder::new()
            .prefix("keyward-bench-")
            .tempdir_in(dir)
            .expect("a scratch directory")
    });
    let grown = scratch
        .as_ref()
        .map_or_else(|| path.to_owned(), |dir| dir.path().join("keys.db"));
    let tokens = {
        let store = SqliteStore::open(&grown).expect("open SQLite");
        let keyward = service(Arc::new(store), None);
        issue_keys(&keyward, 0..keys, 2, runtime)
    };
    if scratch.is_some() {
        let conn = rusqlite::Connection::open(&grown).expect("the grown database");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        })
        .expect("a checkpoint");
        drop(conn);
        for suffix in ["", "-wal"] {
            let (mut from, mut to) = (
                grown.clone().into_os_string(),
                path.to_owned().into_os_string(),
            );
            from.push(suffix);
            to.push(suffix);
            if Path::new(&from).exists() {
                std::fs::copy(&from, &to).expect("copying the database");
            }
        }
    }
    let check = rusqlite::Connection::open(path).expect("the copied database");
    let rows: i64 = check
        .query_row("SELECT count(*) FROM keyward_keys", [], |row| row.get(0))
        .expect("a count");
    assert_eq!(rows, keys as i64, "every issued key is in the copy");
    drop(check);
    let store = SqliteStore::open(path).expect("open SQLite");
    SqlFixture {
        keyward: service(Arc::new(store), None),
        tokens: Tokens::new(&tokens),
    }
}

/// The worker process, the keyward SQLite stores it is compared with, and
/// the directory both sides' databases are in.
pub(super) struct PeerSetup {
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    worker: RefCell<Worker>,
    /// keyward's store and the count of modo's of the same size.
    sqlite: Vec<(usize, &'static str, SqlFixture)>,
    argon: bool,
}

impl PeerSetup {
    /// Builds and starts the worker (panicking if it does not build) and
    /// the stores the selected comparisons need; `None` if none is selected.
    pub(super) fn new(bench: &mut Bench) -> Option<Self> {
        let modo: Vec<(usize, &'static str)> = PEER_KEYS
            .into_iter()
            .filter(|(_, label)| {
                let [figure, reference] = modo_ids(label);
                bench.wants(&[&figure, &reference])
            })
            .collect();
        let argon = bench.wants(&ARGON_IDS);
        if modo.is_empty() && !argon {
            return None;
        }
        say("building keyward-peer-worker (crates/bench/peers, its own workspace)");
        let binary = bench.timed("peer_worker_build", || build_worker(&target_dir()));
        let mut worker = Worker::spawn(&binary);
        // Both sides' files in one directory of the target's disk.
        let tmp = target_dir().join("tmp");
        std::fs::create_dir_all(&tmp).expect("the tmp directory");
        let dir = tempfile::Builder::new()
            .prefix("keyward-bench-peers-")
            .tempdir_in(&tmp)
            .expect("a directory for the peer databases");
        let runtime = current_thread();
        let mut sqlite = Vec::new();
        for (keys, label) in modo {
            let fx = bench.timed(&format!("keyward_sqlite_{label}"), || {
                keyward_sqlite(
                    keys,
                    &dir.path().join(format!("keyward-{keys}.db")),
                    &runtime,
                )
            });
            bench.timed(&format!("modo_sqlite_{label}"), || {
                worker.modo_setup(keys, dir.path())
            });
            sqlite.push((keys, label, fx));
        }
        if argon {
            bench.timed("api_keys_simplified", || worker.argon_setup());
        }
        Some(Self {
            dir,
            runtime,
            worker: RefCell::new(worker),
            sqlite,
            argon,
        })
    }

    /// modo-rs against keyward's SQLite store, and api-keys-simplified
    /// against a cache hit.
    pub(super) fn comparisons<'a>(
        &'a self,
        bench: &mut Bench,
        fixtures: &'a MemoryFixtures,
        out: &mut Comparisons<'a>,
    ) {
        for (keys, label, fx) in &self.sqlite {
            let [figure, reference] = modo_ids(label);
            let (keys, worker) = (*keys, &self.worker);
            out.push(paired(
                &figure,
                Some(keys),
                &reference,
                Plan::sql(bench.short),
                move |walk, ops| {
                    let indices: Vec<usize> = (0..ops).map(|_| walk.next_below(keys)).collect();
                    worker.borrow_mut().modo_verify(keys, &indices)
                },
                sql_verify_side(fx, &self.runtime),
            ));
        }
        if self.argon {
            let fx = fixtures.get(100_000, bench);
            let worker = &self.worker;
            // Argon2id takes tens of milliseconds a verify: batches of one
            // or two, a handful of pairs.
            let plan = Plan {
                batch: Duration::from_millis(40),
                warmup: Duration::ZERO,
                pairs: if bench.short { 4 } else { 10 },
            };
            out.push(paired(
                ARGON_IDS[0],
                Some(100_000),
                ARGON_IDS[1],
                plan,
                move |_, ops| worker.borrow_mut().argon_verify(ops),
                verify_side(&fx.cached, &fx.tokens, "verify_cached"),
            ));
        }
    }

    /// Checks that no measured modo verify wrote (`last_used_at` only ever
    /// set during the setup), stops the worker, deletes the databases.
    pub(super) fn remove(self) {
        let Self {
            dir,
            runtime,
            worker,
            sqlite,
            ..
        } = self;
        let mut worker = worker.into_inner();
        for (keys, _, _) in &sqlite {
            let writes = worker.modo_writes(*keys);
            assert_eq!(
                writes, 0,
                "modo's store of {keys} keys wrote last_used_at during the measurement"
            );
        }
        drop(worker);
        drop(sqlite);
        drop(runtime);
        drop(dir);
    }
}
