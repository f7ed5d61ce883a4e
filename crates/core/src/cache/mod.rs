//! The verification cache's settings ([`CacheConfig`]) and state
//! ([`CacheStatus`]). How it stays honest: docs/caching.md.

// How it works:
// The verification cache: what verify needs of each key, held in memory,
// dropped on every change.
//
// Entries are immutable snapshots ([`KeySnapshot`]) keyed by key id, plus
// negative entries for ids the store does not know. The map is split into
// shards, each behind its own `RwLock` on its own cache line, so readers on
// different cores almost never touch the same lock word: a hit costs one
// SipHash of the key id, one uncontended read lock and one `Arc` clone.
//
// Each shard holds known keys and unknown ids in separate regions, each
// with its own bound and its own eviction: anyone can mint well-formed
// tokens with fresh ids (the checksum is public), so unknown ids must never
// push known keys out.
//
// Invalidation is immediate in-process (the service wraps its store so that
// every mutation drops the affected entries before it returns), and across
// processes through a [`ChangeFeed`](crate::feed::ChangeFeed), whose freshness is
// proven by the feed's own heartbeats. Without a proven-fresh feed, entries
// live at most [`CacheConfig::ttl`], and an entry loaded while the feed was
// fresh is not served once that freshness can no longer be proven (see
// `docs/caching.md`, "Worst-case staleness", for the argument).

mod config;
#[cfg(test)]
mod tests;

pub use config::{CacheConfig, CacheStatus};

use crate::clock::Clock;
use crate::error::Error;
use crate::feed::{Change, FeedSink, FeedTarget};
use crate::key::KeyId;
use crate::snapshot::KeySnapshot;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// How many shards the map is split into (a power of two).
const SHARDS: usize = 64;

/// Unknown ids get a region of their own of `capacity / NEGATIVE_SHARE`
/// (at least one a shard), on top of the `capacity` known keys.
const NEGATIVE_SHARE: usize = 4;

/// One cache entry, as a fill hands it in.
#[derive(Debug)]
pub(crate) enum Slot {
    /// The key as it was loaded.
    Known(Arc<KeySnapshot>),
    /// The store had no such key. Boxed, so the unknown region's table
    /// stays small.
    Unknown(Box<UnknownId>),
}

/// An id the store did not know at `loaded_at` (micros).
#[derive(Debug)]
pub(crate) struct UnknownId {
    pub(crate) key_id: KeyId,
    pub(crate) loaded_at: i64,
}

/// What a lookup found.
pub(crate) enum Lookup {
    Hit(Arc<KeySnapshot>),
    Unknown,
    Miss,
}

/// The map's keys are already SipHash outputs; hashing them again is waste.
#[derive(Debug, Default)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Region<T> = HashMap<u64, T, BuildHasherDefault<Prehashed>>;

/// One shard's entries: known keys and unknown ids in regions of their
/// own, each bounded and evicting only among itself.
#[derive(Debug, Default)]
struct ShardMap {
    known: Region<Arc<KeySnapshot>>,
    unknown: Region<Box<UnknownId>>,
}

impl ShardMap {
    fn len(&self) -> usize {
        self.known.len() + self.unknown.len()
    }

    fn remove(&mut self, hash: u64) {
        self.known.remove(&hash);
        self.unknown.remove(&hash);
    }

    fn clear(&mut self) {
        self.known.clear();
        self.unknown.clear();
    }
}

/// A shard on its own cache lines, so two cores reading different shards
/// never share a lock word.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(RwLock<ShardMap>);

/// The cache shared by a service, its store wrapper and its change feed.
#[derive(Debug, Clone)]
pub(crate) struct VerifyCache {
    inner: Arc<CacheInner>,
}

/// How long (micros) an entry may be served: while the feed is fresh, and
/// otherwise.
#[derive(Debug, Clone, Copy)]
struct Lifetimes {
    fresh: i64,
    unproven: i64,
}

#[derive(Debug)]
struct CacheInner {
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    hasher: RandomState,
    shards: Box<[Shard; SHARDS]>,
    /// Known keys a shard holds at most.
    known_capacity: usize,
    /// Unknown ids a shard holds at most.
    unknown_capacity: usize,
    /// A key whose permissions are its own (scopes and roles, all in the
    /// store, all announced by the feed).
    own: Lifetimes,
    /// A key that inherits its owner's permissions, which live in the host:
    /// `ttl` whatever the feed, since no feed hears of a change the host
    /// does not report.
    inheriting: Lifetimes,
    /// An unknown id.
    unknown: Lifetimes,
    /// The feed bound in force (micros).
    feed_bound: i64,
    /// Bumped before every invalidation; a fill that straddles one is undone.
    generation: AtomicU64,
    feed_attached: AtomicBool,
    /// Until when (micros, the service's clock) the feed is proven fresh:
    /// the send time of the newest heartbeat it delivered back, plus the
    /// feed bound; lowered to the moment of a disconnect. `i64::MIN`: never
    /// fresh. See [`VerifyCache::servable`].
    fresh_until: AtomicI64,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl VerifyCache {
    pub(crate) fn new(config: CacheConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        config.validate()?;
        let known_capacity = config.capacity.div_ceil(SHARDS).max(1);
        let unknown_capacity = (config.capacity / NEGATIVE_SHARE).div_ceil(SHARDS).max(1);
        let (ttl, ttl_with_feed) = (micros(config.ttl), micros(config.ttl_with_feed));
        let negative = micros(config.negative_ttl);
        Ok(Self {
            inner: Arc::new(CacheInner {
                own: Lifetimes {
                    fresh: ttl_with_feed,
                    unproven: ttl,
                },
                inheriting: Lifetimes {
                    fresh: ttl,
                    unproven: ttl,
                },
                unknown: Lifetimes {
                    fresh: ttl_with_feed.min(negative),
                    unproven: ttl.min(negative),
                },
                feed_bound: micros(config.effective_feed_bound()),
                config,
                clock,
                hasher: RandomState::new(),
                shards: Box::new(std::array::from_fn(|_| Shard::default())),
                known_capacity,
                unknown_capacity,
                generation: AtomicU64::new(0),
                feed_attached: AtomicBool::new(false),
                fresh_until: AtomicI64::new(i64::MIN),
            }),
        })
    }

    pub(crate) fn hash(&self, key_id: &str) -> u64 {
        self.inner.hasher.hash_one(key_id)
    }

    #[allow(
        clippy::indexing_slicing,
        reason = "the index is masked to SHARDS - 1 and the array has SHARDS shards"
    )]
    fn shard(&self, hash: u64) -> &RwLock<ShardMap> {
        // The map uses the low bits for buckets and the top seven as tags;
        // the shard comes from bits that neither uses.
        let index = (hash >> 40) as usize & (SHARDS - 1);
        &self.inner.shards[index].0
    }

    /// Whether an entry loaded at `loaded_at` may be served at `now` (both
    /// micros, the service's clock).
    ///
    /// - While the feed is fresh (`now < fresh_until`), for `lifetimes.fresh`:
    ///   every change committed more than the feed bound ago has been
    ///   applied, so what is still cached has not changed since.
    /// - Otherwise for `lifetimes.unproven` (at most `ttl`), and only if it
    ///   was loaded at or after `fresh_until`, the moment the feed stopped
    ///   being provably fresh. An entry loaded while the feed was fresh was
    ///   promised to drop within the feed bound of any change; the feed can
    ///   no longer keep that promise, so the entry is not served at all.
    fn servable(&self, loaded_at: i64, now: i64, lifetimes: Lifetimes) -> bool {
        let age = now.saturating_sub(loaded_at);
        let fresh_until = self.inner.fresh_until.load(Ordering::Acquire);
        if now < fresh_until {
            age < lifetimes.fresh
        } else {
            age < lifetimes.unproven && loaded_at >= fresh_until
        }
    }

    fn feed_fresh(&self, now: i64) -> bool {
        now < self.inner.fresh_until.load(Ordering::Acquire)
    }

    /// The entry for `key_id` if it may still be served at `now` (micros).
    pub(crate) fn lookup(&self, key_id: &str, hash: u64, now: i64) -> Lookup {
        let map = self
            .shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(snapshot) = map.known.get(&hash)
            && snapshot.key_id.is(key_id)
        {
            let lifetimes = if snapshot.inherits_owner {
                self.inner.inheriting
            } else {
                self.inner.own
            };
            return if self.servable(snapshot.loaded_at, now, lifetimes) {
                Lookup::Hit(Arc::clone(snapshot))
            } else {
                Lookup::Miss
            };
        }
        match map.unknown.get(&hash) {
            Some(unknown)
                if unknown.key_id.is(key_id)
                    && self.servable(unknown.loaded_at, now, self.inner.unknown) =>
            {
                Lookup::Unknown
            }
            _ => Lookup::Miss,
        }
    }

    /// The generation to pass to [`VerifyCache::fill`]: read it *before*
    /// reading the store.
    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// Stores what was read from the store, unless an invalidation ran
    /// since `generation` was read: then the read may predate the change,
    /// and the entry is taken back out.
    ///
    /// A known key makes room among known keys, an unknown id among
    /// unknown ids: neither region can push the other's entries out.
    pub(crate) fn fill(&self, hash: u64, slot: Slot, generation: u64) {
        if self.generation() != generation {
            return;
        }
        let identity = {
            let mut map = self
                .shard(hash)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let ShardMap { known, unknown } = &mut *map;
            match slot {
                Slot::Known(snapshot) => {
                    unknown.remove(&hash);
                    make_room(known, hash, self.inner.known_capacity, |s| s.loaded_at);
                    let identity = Arc::as_ptr(&snapshot) as usize;
                    known.insert(hash, snapshot);
                    identity
                }
                Slot::Unknown(id) => {
                    known.remove(&hash);
                    make_room(unknown, hash, self.inner.unknown_capacity, |u| u.loaded_at);
                    let identity = std::ptr::from_ref::<UnknownId>(&id) as usize;
                    unknown.insert(hash, id);
                    identity
                }
            }
        };
        // An invalidation between the check above and the insert would
        // have found nothing to drop; undo the fill ourselves.
        if self.generation() != generation {
            let mut map = self
                .shard(hash)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if map
                .known
                .get(&hash)
                .is_some_and(|s| Arc::as_ptr(s) as usize == identity)
            {
                map.known.remove(&hash);
            }
            if map
                .unknown
                .get(&hash)
                .is_some_and(|u| std::ptr::from_ref::<UnknownId>(u) as usize == identity)
            {
                map.unknown.remove(&hash);
            }
        }
    }

    /// Drops every entry `change` may affect.
    pub(crate) fn invalidate(&self, change: &Change) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        match change {
            Change::Key(id) => {
                let hash = self.hash(id.as_str());
                self.shard(hash)
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(hash);
            }
            Change::Role(name) => self.retain(|snapshot| !snapshot.attributes.roles.contains(name)),
            Change::Owner(owner) => {
                self.retain(|snapshot| {
                    !(snapshot.inherits_owner && snapshot.attributes.owner == *owner)
                });
            }
            Change::All => {
                for shard in self.inner.shards.iter() {
                    shard
                        .0
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear();
                }
            }
        }
    }

    /// Keeps the known entries `keep` accepts (unknown ids are unaffected
    /// by roles and owners).
    fn retain(&self, keep: impl Fn(&KeySnapshot) -> bool) {
        for shard in self.inner.shards.iter() {
            let mut map = shard.0.write().unwrap_or_else(PoisonError::into_inner);
            map.known.retain(|_, snapshot| keep(snapshot));
        }
    }

    pub(crate) fn status(&self) -> CacheStatus {
        let now = self.now_micros();
        let entries = self
            .inner
            .shards
            .iter()
            .map(|s| s.0.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum();
        let feed_fresh = self.feed_fresh(now);
        CacheStatus {
            entries,
            feed_attached: self.inner.feed_attached.load(Ordering::Acquire),
            feed_fresh,
            worst_case_staleness: self.inner.config.worst_case_staleness(feed_fresh),
            unreported_owner_change_staleness: self.inner.config.ttl,
        }
    }

    fn now_micros(&self) -> i64 {
        self.inner.clock.now_micros()
    }
}

/// Makes room in a full region for an entry at `hash`: the oldest of the
/// first few entries goes. Which entries come first depends on their
/// (random) hashes, so this is a sampled eviction that prefers entries
/// loaded long ago.
fn make_room<T>(region: &mut Region<T>, hash: u64, capacity: usize, loaded_at: impl Fn(&T) -> i64) {
    if region.len() < capacity || region.contains_key(&hash) {
        return;
    }
    let victim = region
        .iter()
        .take(8)
        .min_by_key(|(_, entry)| loaded_at(entry))
        .map(|(hash, _)| *hash);
    if let Some(victim) = victim {
        region.remove(&victim);
    }
}

/// What a [`ChangeFeed`] delivers into: one service's cache.
///
/// The verification cache as a change feed's target.
impl FeedTarget for VerifyCache {
    fn invalidate(&self, change: &Change) {
        VerifyCache::invalidate(self, change);
    }

    fn confirm(&self, sent_at: DateTime<Utc>) {
        let fresh_until = sent_at
            .timestamp_micros()
            .saturating_add(self.inner.feed_bound);
        self.inner
            .fresh_until
            .fetch_max(fresh_until, Ordering::AcqRel);
    }

    fn disconnected(&self) {
        let now = self.now_micros();
        self.inner.fresh_until.fetch_min(now, Ordering::AcqRel);
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn heartbeat_interval(&self) -> Duration {
        self.inner.config.effective_feed_bound() / 4
    }

    fn is_alive(&self) -> bool {
        // The sink holds one handle; the service holds the others.
        Arc::strong_count(&self.inner) > 1
    }
}

impl VerifyCache {
    /// The sink a change feed delivers into; marks the feed as attached.
    pub(crate) fn sink(&self) -> FeedSink {
        self.inner.feed_attached.store(true, Ordering::Release);
        FeedSink::new(Arc::new(self.clone()))
    }
}
