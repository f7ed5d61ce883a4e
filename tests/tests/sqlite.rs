//! The conformance suite and the product scenarios against SQLite: a new
//! database file per test (under Cargo's target tmp dir), and an in-memory
//! database.

mod conformance_file {
    keyward_core::conformance_tests!(async {
        keyward_tests::backends::sqlite_file(env!("CARGO_TARGET_TMPDIR"))
    });
}

/// The suite against the store as a service with a verification cache
/// holds it (every mutation drops the affected cache entries).
mod conformance_behind_verify_cache {
    keyward_core::conformance_tests!(async {
        keyward_core::testkit::behind_verify_cache(keyward_tests::backends::sqlite_file(env!(
            "CARGO_TARGET_TMPDIR"
        )))
    });
}

mod conformance_in_memory {
    keyward_core::conformance_tests!(async {
        keyward_sqlite::SqliteStore::open_in_memory().unwrap()
    });
}

mod scenarios {
    keyward_tests::scenario_tests!(async {
        keyward_tests::backends::sqlite_file_dyn(env!("CARGO_TARGET_TMPDIR"))
    });
}

/// The same scenarios with every service verifying through a cache.
mod cached_scenarios {
    keyward_tests::scenario_tests!(cached async {
        keyward_tests::backends::sqlite_file_dyn(env!("CARGO_TARGET_TMPDIR"))
    });
}

/// The hot lookups (by key id, an owner's keys newest first, keys expiring
/// before a time, the live-key count) search their indexes instead of
/// scanning or sorting the keys table.
mod query_plans {
    use keyward_tests::plans::{
        assert_sqlite_plans, assert_sqlite_statements_are_the_ones_sent, sqlite_migrated,
        sqlite_seed,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checked_statements_are_the_ones_the_adapter_sends() {
        assert_sqlite_statements_are_the_ones_sent().await;
    }

    #[test]
    fn hot_lookups_search_their_indexes_on_a_new_database() {
        assert_sqlite_plans(&sqlite_migrated(), "empty database");
    }

    #[test]
    fn hot_lookups_search_their_indexes_on_an_analyzed_database() {
        let conn = sqlite_migrated();
        sqlite_seed(&conn);
        assert_sqlite_plans(&conn, "20 000 keys, analyzed");
    }
}

/// A write that fails midway (the database locked beyond the busy timeout,
/// or the audit insert failing after the key row) returns a backend error
/// and leaves nothing half-written.
mod resilience {
    use keyward_tests::resilience::{
        sqlite_failed_audit_write_rolls_back_the_mutation,
        sqlite_locked_database_fails_the_write_and_writes_nothing,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_database_fails_the_write_and_writes_nothing() {
        sqlite_locked_database_fails_the_write_and_writes_nothing(env!("CARGO_TARGET_TMPDIR"))
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_audit_write_rolls_back_the_mutation() {
        sqlite_failed_audit_write_rolls_back_the_mutation(env!("CARGO_TARGET_TMPDIR")).await;
    }
}
