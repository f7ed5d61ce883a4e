//! Test support (feature `testkit`): a manual clock and the conformance suite
//! every [`KeyStore`](crate::store::KeyStore) implementation must pass.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test assertions: a failed expectation is a failed test"
)]

use crate::clock::Clock;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use std::sync::{Arc, Mutex, PoisonError};

/// A clock that moves only when told. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock at 2026-01-01T00:00:00Z.
    pub fn at_epoch() -> Self {
        Self::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
    }

    /// Moves time forward (or back, with a negative delta).
    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the time.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `store` as a service with a verification cache holds it
/// ([`crate::KeywardBuilder::verify_cache`] wraps the store so that every
/// mutation drops the cache entries it affects). Run the conformance suite
/// on it to check that the wrapper keeps the whole contract.
pub fn behind_verify_cache(store: impl crate::store::KeyStore) -> impl crate::store::KeyStore {
    let cache = crate::cache::VerifyCache::new(
        crate::cache::CacheConfig::default(),
        Arc::new(crate::hooks::SystemClock),
    )
    .expect("the default cache settings are valid");
    crate::invalidating::Invalidating::wrap(Arc::new(store), cache)
}

/// Test support for the bulk conformance cases (the 100 000-key purge): an
/// adapter's fast way to write many keys, for test data only. Not part of
/// the [`KeyStore`](crate::store::KeyStore) contract and never used by the
/// service.
///
/// Without one, the cases seed through `insert_key`, one transaction (and,
/// on a durable backend, one disk flush) per key. An adapter whose
/// per-commit cost makes that slow implements this (behind its own
/// `testkit` feature) and hands it to
/// [`conformance_tests!`](crate::conformance_tests) with the `bulk` form.
#[async_trait::async_trait]
pub trait BulkInsert: std::fmt::Debug + Send + Sync {
    /// Writes `keys` as [`KeyStore::insert_key`](crate::store::KeyStore::insert_key)
    /// would, without a limit check or audit events, as fast as the
    /// backend allows (one transaction, say). Fails on a duplicate id.
    async fn insert_keys(&self, keys: &[crate::key::KeyRecord]) -> Result<(), crate::Error>;
}

pub mod cases;
mod fixtures;
mod macros;
pub mod records;
