//! The product scenarios and service-level behaviour tests against the
//! in-memory store: every test gets a fresh `MemoryStore`.

use keyward_core::store::KeyStore;
use keyward_memory::MemoryStore;
use std::sync::Arc;

keyward_tests::scenario_tests!(async { Arc::new(MemoryStore::new()) as Arc<dyn KeyStore> });

/// The same scenarios with every service verifying through a cache.
mod cached {
    use keyward_core::store::KeyStore;
    use keyward_memory::MemoryStore;
    use std::sync::Arc;

    keyward_tests::scenario_tests!(cached async {
        Arc::new(MemoryStore::new()) as Arc<dyn KeyStore>
    });
}
