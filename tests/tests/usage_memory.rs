//! A service whose usage is never flushed still holds memory per key, not
//! per reload: every reload of a cached key makes a new snapshot, and the
//! usage queue folds them into one entry per key. Counted by the allocator
//! (bytes, not time).

use keyward_core::chrono::TimeDelta;
use keyward_core::testkit::ManualClock;
use keyward_core::{
    Actor, IssueRequest, Keyward, Owner, Requirement, TokenKind, cache::CacheConfig,
};
use keyward_memory::MemoryStore;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed (reallocations are folded into both
/// totals).
fn live_bytes() -> isize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

const RELOADS: usize = 30_000;

#[tokio::test]
async fn reloads_without_a_usage_flush_hold_memory_per_key_not_per_reload() {
    let clock = ManualClock::at_epoch();
    let keyward = Keyward::builder(MemoryStore::new())
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .verify_cache(
            CacheConfig::new()
                .capacity(1000)
                .ttl(Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("memory"),
            IssueRequest::new("tak", Owner::new("account:1").unwrap(), "reloaded"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();

    let before = live_bytes();
    for _ in 0..RELOADS {
        // Past the entry's lifetime: every verify reloads the key.
        clock.advance(TimeDelta::seconds(2));
        keyward
            .verify(token, &Requirement::nothing())
            .await
            .unwrap();
    }
    let grown = live_bytes() - before;
    assert_eq!(keyward.pending_usage(), 1);
    // One snapshot is about 450 bytes: unfolded, the queue would hold
    // RELOADS of them (about 13 MB); folded, about twice the cache's
    // capacity at most.
    assert!(grown < 3_000_000, "{grown} bytes after {RELOADS} reloads");

    assert_eq!(keyward.flush_usage().await.unwrap(), 1);
    let stored = keyward_core::dangerous::store(&keyward)
        .get_key(&issued.key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.last_used_at,
        Some(keyward_core::hooks::Clock::now(&clock))
    );
}
