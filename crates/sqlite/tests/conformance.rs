//! Temporary: the conformance suite against SQLite files.

fn temp_db() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "keyward-{}-{nanos}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

mod file {
    keyward_core::conformance_tests!(async {
        keyward_sqlite::SqliteStore::open(super::temp_db()).unwrap()
    });
}

mod memory {
    keyward_core::conformance_tests!(async {
        keyward_sqlite::SqliteStore::open_in_memory().unwrap()
    });
}
