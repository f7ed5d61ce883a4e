//! Prints the results table of the latest `cargo bench -p keyward-bench`
//! run (or of a saved one), with the memory per cached key measured here
//! (by a counting global allocator); splices it into a document; or
//! compares the ratios of two runs.
//!
//! ```sh
//! cargo run -p keyward-bench --release --bin report                 # print
//! cargo run -p keyward-bench --release --bin report -- --write docs/performance.md
//! cargo run -p keyward-bench --release --bin report -- --compare quiet busy
//! ```
//!
//! Options: `--results RUN` (default: the latest run), `--memory-keys N`
//! (default 100000), `--write FILE` (replace the text between
//! `<!-- report:start -->` and `<!-- report:end -->`), `--compare A B`
//! (each ratio of run A and run B and their relative difference; exits
//! with 1 if any differs by more than 10 %; with `--write FILE`, also as a
//! table between `<!-- compare:start -->` and `<!-- compare:end -->`). A run is a path, or a name
//! saved with `cargo bench -p keyward-bench -- --save NAME` (in
//! `$KEYWARD_BENCH_DIR`, else `target/keyward-bench/`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "benchmark report: prints its table, and stops loudly on a failed setup"
)]

use keyward_bench::fixture::{issue_keys, requirement, service};
use keyward_bench::ready;
use keyward_bench::report::{self, MemoryFigure};
use keyward_bench::results::{self, Run};
use keyward_sqlite::SqliteStore;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed. (`stats_alloc` already adds a
/// realloc's growth to `bytes_allocated` and its shrinking to
/// `bytes_deallocated`; `bytes_reallocated` is the same change again.)
fn live_bytes() -> f64 {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as f64 - stats.bytes_deallocated as f64
}

/// Allocations not yet freed.
fn live_allocations() -> f64 {
    let stats = ALLOCATOR.stats();
    stats.allocations as f64 - stats.deallocations as f64
}

/// Caches `keys` typical keys and counts what stays allocated per key: the
/// cache's map slot, the snapshot with its attributes, and the usage
/// queue's entry (then again after the usage flush empties the queue).
///
/// Over an in-memory SQLite store, whose every read builds the key's
/// attributes afresh, as the production stores do: the memory store shares
/// the attributes it keeps, so over it the cache would look cheaper than it
/// is.
fn memory_per_cached_key(keys: usize) -> MemoryFigure {
    let store: Arc<dyn keyward_core::store::KeyStore> =
        Arc::new(SqliteStore::open_in_memory().expect("an in-memory SQLite store"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a runtime");
    let uncached = service(Arc::clone(&store), None);
    let tokens = issue_keys(&uncached, 0..keys, 2, &runtime);
    let cached = service(store, Some(keys));
    let need = requirement();
    let before = live_bytes();
    let allocations_before = live_allocations();
    for token in &tokens {
        ready!(cached.verify(token, &need)).expect("a fresh key verifies");
    }
    let filled = live_bytes();
    let allocations = live_allocations() - allocations_before;
    runtime
        .block_on(cached.flush_usage())
        .expect("the usage flush");
    let flushed = live_bytes();
    assert_eq!(cached.cache_status().expect("a cache").entries, keys);
    MemoryFigure {
        keys,
        per_key: (filled - before) / keys as f64,
        per_key_flushed: (flushed - before) / keys as f64,
        allocations_per_key: allocations / keys as f64,
    }
}

fn default_results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    results::results_dir(&target)
}

const USAGE: &str = "usage: report [--results RUN] [--memory-keys N] [--write FILE]\n       \
    report --compare RUN_A RUN_B [--write FILE]";

fn load(dir: &Path, name: &str) -> Result<Run, String> {
    Run::load(&results::resolve(dir, name))
}

fn compare(dir: &Path, a: &str, b: &str, write: Option<&Path>) -> ExitCode {
    let (run_a, run_b) = match (load(dir, a), load(dir, b)) {
        (Ok(run_a), Ok(run_b)) => (run_a, run_b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let lines = report::compare(&run_a, &run_b);
    print!("{}", report::render_compare(a, b, &lines));
    if let Some(path) = write {
        let markdown = report::render_compare_markdown((a, &run_a), (b, &run_b), &lines);
        if let Err(e) = splice_into(path, "compare", &markdown) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    if lines.iter().any(report::Agreement::flagged) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Replaces the text between `path`'s `name` markers with `text`.
fn splice_into(path: &Path, name: &str, text: &str) -> Result<(), String> {
    let doc = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc =
        report::splice_marked(&doc, name, text).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, doc).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote the {name} section of {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    let dir = default_results_dir();
    let mut run_name = results::LATEST.to_owned();
    let mut memory_keys = 100_000;
    let mut write = None;
    let mut runs = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--compare", Some(a)) => {
                let Some(b) = args.next() else {
                    eprintln!("{USAGE}");
                    return ExitCode::FAILURE;
                };
                runs = Some((a, b));
            }
            ("--results", Some(value)) => run_name = value,
            ("--memory-keys", Some(value)) => match value.parse() {
                Ok(n) if n > 0 => memory_keys = n,
                _ => {
                    eprintln!("--memory-keys takes a positive number");
                    return ExitCode::FAILURE;
                }
            },
            ("--write", Some(value)) => write = Some(PathBuf::from(value)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some((a, b)) = runs {
        return compare(&dir, &a, &b, write.as_deref());
    }
    let run = match load(&dir, &run_name) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let memory = memory_per_cached_key(memory_keys);
    let table = report::render(&run, Some(memory));
    match write {
        None => print!("{table}"),
        Some(path) => {
            if let Err(e) = splice_into(&path, "report", &table) {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
