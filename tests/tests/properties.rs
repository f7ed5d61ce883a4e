//! Arbitrary names, metadata and name filters (quotes, `%`, `_`, unicode,
//! 10 kB) round-trip unchanged and never break a query, on every adapter:
//! the in-memory store, SQLite (a database file) and Postgres (a fresh
//! schema; ignored when built without `DATABASE_URL`, skipped with a notice
//! when no server answers, failing instead when `KEYWARD_REQUIRE_POSTGRES=1`).
//!
//! Each test owns a Tokio runtime and drives a proptest `TestRunner`, so a
//! failure shrinks to a small input. `KEYWARD_PROPTEST_CASES` sets the number
//! of cases per backend (default 32).

use keyward_tests::properties::names_metadata_and_filters_round_trip;
use tokio::runtime::Runtime;

#[test]
fn memory_names_metadata_and_filters_round_trip() {
    let rt = Runtime::new().unwrap();
    let store = keyward_memory::MemoryStore::new();
    names_metadata_and_filters_round_trip(&rt, &store);
}

#[test]
fn sqlite_names_metadata_and_filters_round_trip() {
    let rt = Runtime::new().unwrap();
    let store = keyward_tests::backends::sqlite_file(env!("CARGO_TARGET_TMPDIR"));
    names_metadata_and_filters_round_trip(&rt, &store);
}

#[test]
#[cfg_attr(
    keyward_no_postgres,
    ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
)]
fn postgres_names_metadata_and_filters_round_trip() {
    let rt = Runtime::new().unwrap();
    let Some(store) = rt.block_on(keyward_tests::backends::postgres()) else {
        return;
    };
    names_metadata_and_filters_round_trip(&rt, &store);
    rt.block_on(store.pool().close());
}

/// The Postgres test above is ignored exactly when the tests were built
/// without `DATABASE_URL`, and it is the only test here that may be.
#[test]
fn only_the_postgres_test_is_ignored_and_only_without_database_url() {
    let ignored = keyward_tests::backends::tests_of_this_binary(true);
    let expected: &[&str] = if cfg!(keyward_no_postgres) {
        &["postgres_names_metadata_and_filters_round_trip"]
    } else {
        &[]
    };
    assert_eq!(ignored, expected);
}

/// Random histories of changes (issue, disable, enable, revoke, rotate, role
/// edits, owner permission changes, time passing) on the memory store: after
/// every step a cached service answers every token as an uncached one.
#[test]
fn cached_and_uncached_verify_agree_on_random_histories() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = Runtime::new().unwrap();
    let cases = std::env::var("KEYWARD_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(32);
    let mut runner = TestRunner::new(Config::with_cases(cases));
    let result = runner.run(&keyward_tests::cache::histories(), |history| {
        let store = std::sync::Arc::new(keyward_memory::MemoryStore::new());
        rt.block_on(keyward_tests::cache::cached_and_uncached_agree(
            store, &history,
        ));
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
