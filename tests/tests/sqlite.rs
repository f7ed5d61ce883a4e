//! The conformance suite and the product scenarios against SQLite: a new
//! database file per test (under Cargo's target tmp dir), and an in-memory
//! database.

mod conformance_file {
    keyward_core::conformance_tests!(async {
        keyward_tests::backends::sqlite_file(env!("CARGO_TARGET_TMPDIR"))
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
