//! The `KeyStore` conformance suite (`keyward_core::testkit::cases`) run
//! against the in-memory adapter: once with a fresh store per case, and once
//! with every case sharing one store while they run concurrently, as they
//! would on one persistent database.

keyward_core::conformance_tests!(async { keyward_memory::MemoryStore::new() });

/// Every case against one store shared by all of them (through the
/// `Arc<T>` forwarding impl): proves the cases never collide.
mod shared_store {
    use keyward_memory::MemoryStore;
    use std::sync::{Arc, LazyLock};

    static STORE: LazyLock<Arc<MemoryStore>> = LazyLock::new(|| Arc::new(MemoryStore::new()));

    keyward_core::conformance_tests!(async { Arc::clone(&STORE) });
}

/// The suite against the store as a service with a verification cache
/// holds it (every mutation drops the affected cache entries).
mod behind_verify_cache {
    use keyward_core::testkit::behind_verify_cache;
    use keyward_memory::MemoryStore;

    keyward_core::conformance_tests!(async { behind_verify_cache(MemoryStore::new()) });
}
