//! Memory per cached key, counted by the allocator (bytes, not time): a
//! typical key — a 21-character name, a 16-character owner, two scopes, no
//! metadata — costs at most 512 bytes in the verification cache, map slot,
//! snapshot and usage queue included.

use keyward_core::{
    Actor, IssueRequest, Keyward, Owner, PermissionSet, Requirement, TokenKind, cache::CacheConfig,
};
use keyward_memory::MemoryStore;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn live_bytes() -> isize {
    let stats = ALLOCATOR.stats();
    // Reallocations are already folded into both totals.
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

const KEYS: usize = 20_000;

#[tokio::test]
async fn a_typical_cached_key_costs_at_most_512_bytes() {
    let keyward = Keyward::builder(MemoryStore::new())
        .kind(TokenKind::new("tak").unwrap())
        .verify_cache(CacheConfig::new().capacity(KEYS * 2))
        .build()
        .unwrap();
    let admin = Actor::operator("memory");
    let scopes = PermissionSet::parse(["billing.read", "billing.write"]).unwrap();
    let mut tokens = Vec::with_capacity(KEYS);
    for n in 0..KEYS {
        let owner = Owner::new(&format!("account:{n:08}")).unwrap();
        let issued = keyward
            .issue(
                &admin,
                IssueRequest::new("tak", owner, &format!("Production deploy {n:04}"))
                    .scopes(scopes.clone()),
            )
            .await
            .unwrap();
        tokens.push(issued.token.expose_secret().to_owned());
    }
    keyward.flush_usage().await.unwrap();

    let before = live_bytes();
    for token in &tokens {
        keyward
            .verify(token, &Requirement::nothing())
            .await
            .unwrap();
    }
    let filled = live_bytes();
    keyward.flush_usage().await.unwrap();
    let flushed = live_bytes();
    assert_eq!(keyward.cache_status().unwrap().entries, KEYS);
    let per_key = (filled - before) / KEYS as isize;
    let per_key_flushed = (flushed - before) / KEYS as isize;
    eprintln!(
        "memory per cached key: {per_key} B before the usage flush, {per_key_flushed} B after"
    );
    assert!(per_key <= 512, "{per_key} bytes per cached key");
    assert!(per_key_flushed <= per_key);
}
