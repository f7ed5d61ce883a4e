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

/// How the verification cache behaves. Every setting has a safe default.
///
/// ```
/// use keyward_core::cache::CacheConfig;
/// use std::time::Duration;
/// let config = CacheConfig::new()
///     .capacity(1_000_000)
///     .ttl(Duration::from_secs(5))
///     .ttl_with_feed(Duration::from_secs(600));
/// assert_eq!(config.worst_case_staleness(false), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct CacheConfig {
    capacity: usize,
    ttl: Duration,
    ttl_with_feed: Duration,
    negative_ttl: Duration,
    feed_bound: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheConfig {
    /// 100 000 keys; entries live 5 s, or 10 minutes while a change feed
    /// proves itself fresh within 2 s; unknown ids are remembered for 5 s.
    pub fn new() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(5),
            ttl_with_feed: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(5),
            feed_bound: Duration::from_secs(2),
        }
    }

    /// About how many known keys the cache holds; beyond it, the oldest of
    /// a few sampled known keys makes room. Ids the store does not know are
    /// held apart, in a region of a quarter of `keys` (at least 64), where
    /// they make room only among themselves: a flood of made-up ids never
    /// pushes a known key out.
    pub fn capacity(mut self, keys: usize) -> Self {
        self.capacity = keys;
        self
    }

    /// How long an entry may be served when no change feed proves itself
    /// fresh: the worst-case staleness for changes made in *other*
    /// processes without a feed (changes made through this service are
    /// seen at once).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long an entry may be served while the change feed is fresh
    /// (changes then arrive as notifications; this only bounds memory of
    /// entries nobody changes). At least [`CacheConfig::ttl`].
    pub fn ttl_with_feed(mut self, ttl: Duration) -> Self {
        self.ttl_with_feed = ttl;
        self
    }

    /// How long an id the store does not know is remembered (capped by the
    /// entry lifetimes above). Issuing a key drops its id at once.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// The most a change feed may lag and still count as fresh: the
    /// worst-case cross-process staleness while the feed is fresh. The feed
    /// sends a heartbeat every quarter of it. A bound above
    /// [`CacheConfig::ttl`] acts as `ttl`: a feed never makes staleness
    /// worse than having none.
    pub fn feed_bound(mut self, bound: Duration) -> Self {
        self.feed_bound = bound;
        self
    }

    pub(crate) fn keys(&self) -> usize {
        self.capacity
    }

    /// The longest a change to a key or a role made in another process (or
    /// an owner's permissions reported there with
    /// [`Keyward::owner_permissions_changed`](crate::Keyward::owner_permissions_changed))
    /// can go unnoticed, counted from the moment it committed, if the
    /// change feed was fresh at that moment (`true`) or not.
    pub fn worst_case_staleness(&self, feed_fresh: bool) -> Duration {
        if feed_fresh {
            self.effective_feed_bound()
        } else {
            self.ttl
        }
    }

    /// The feed bound in force: [`CacheConfig::feed_bound`], at most `ttl`.
    fn effective_feed_bound(&self) -> Duration {
        self.feed_bound.min(self.ttl)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let day = Duration::from_secs(86_400);
        if self.capacity == 0 || self.capacity > 1 << 30 {
            return Err(Error::invalid("cache capacity", "must be 1..=2^30 keys"));
        }
        let ttls = [self.ttl, self.ttl_with_feed, self.negative_ttl];
        if ttls.iter().any(|t| t.is_zero() || *t > day) {
            return Err(Error::invalid(
                "cache ttl",
                "every lifetime must be above zero and at most a day",
            ));
        }
        if self.ttl_with_feed < self.ttl {
            return Err(Error::invalid(
                "cache ttl_with_feed",
                "must be at least ttl: a fresh feed never shortens lifetimes",
            ));
        }
        if self.feed_bound < Duration::from_millis(100) || self.feed_bound > day {
            return Err(Error::invalid(
                "cache feed_bound",
                "must be between 100 ms and a day",
            ));
        }
        Ok(())
    }
}

/// The cache's state, for health checks and dashboards.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStatus {
    /// Entries held (known and unknown ids).
    pub entries: usize,
    /// Whether a change feed is attached.
    pub feed_attached: bool,
    /// Whether the feed has proven itself fresh within its bound.
    pub feed_fresh: bool,
    /// The longest a change committed now can go unnoticed by this cache:
    /// a change to a key or a role made by another process or by SQL, or an
    /// owner's permissions reported in another process with
    /// [`Keyward::owner_permissions_changed`](crate::Keyward::owner_permissions_changed).
    /// The bound holds even if the feed stalls or drops right after. Changes
    /// made through this service are seen at once.
    pub worst_case_staleness: Duration,
    /// The longest a change to an owner's permissions that the host makes
    /// *without* calling `owner_permissions_changed` can go unnoticed by a
    /// token that inherits them: [`CacheConfig::ttl`], whatever the feed
    /// (no feed can hear of a change that lives only in the host).
    pub unreported_owner_change_staleness: Duration,
}

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
struct Prehashed(u64);

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
            && snapshot.inline_id.is(key_id)
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
                if unknown.key_id.as_str() == key_id
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
            Change::Role(name) => self.retain(|snapshot| !snapshot.roles.contains(name)),
            Change::Owner(owner) => {
                self.retain(|snapshot| !(snapshot.inherits_owner && snapshot.owner == *owner));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::key::{KeyRecord, Owner, RoleName};

    fn invalid(config: &CacheConfig) -> bool {
        matches!(config.validate(), Err(Error::InvalidInput { .. }))
    }

    #[test]
    fn settings_out_of_range_are_refused_with_a_typed_error() {
        assert!(CacheConfig::new().validate().is_ok());
        assert!(invalid(&CacheConfig::new().capacity(0)));
        assert!(invalid(&CacheConfig::new().capacity(usize::MAX)));
        assert!(invalid(&CacheConfig::new().ttl(Duration::ZERO)));
        assert!(invalid(&CacheConfig::new().negative_ttl(Duration::ZERO)));
        assert!(invalid(
            &CacheConfig::new().ttl(Duration::from_secs(86_401))
        ));
        assert!(invalid(
            &CacheConfig::new()
                .ttl(Duration::from_secs(60))
                .ttl_with_feed(Duration::from_secs(30))
        ));
        assert!(invalid(
            &CacheConfig::new().feed_bound(Duration::from_millis(10))
        ));
    }

    /// The defaults docs/caching.md's settings table promises.
    #[test]
    fn the_defaults_are_the_documented_ones() {
        let c = CacheConfig::new();
        assert_eq!(c.capacity, 100_000);
        assert_eq!(c.ttl, Duration::from_secs(5));
        assert_eq!(c.ttl_with_feed, Duration::from_secs(600));
        assert_eq!(c.negative_ttl, Duration::from_secs(5));
        assert_eq!(c.feed_bound, Duration::from_secs(2));
        let d = CacheConfig::default();
        assert_eq!(
            (
                d.capacity,
                d.ttl,
                d.ttl_with_feed,
                d.negative_ttl,
                d.feed_bound
            ),
            (
                c.capacity,
                c.ttl,
                c.ttl_with_feed,
                c.negative_ttl,
                c.feed_bound
            )
        );
    }

    #[test]
    fn payloads_round_trip_and_anything_else_drops_everything() {
        let changes = [
            Change::Key(KeyId::parse("Abcd1234").unwrap()),
            Change::Role(RoleName::new("ops.deploy").unwrap()),
            Change::Owner(Owner::new("user:ålice: 42").unwrap()),
            Change::All,
        ];
        for change in changes {
            assert_eq!(Change::from_payload(&change.to_payload()), change);
        }
        for garbage in ["", "k:", "x:1", "k:no spaces allowed", "o:", "r:bad role"] {
            assert_eq!(Change::from_payload(garbage), Change::All, "{garbage:?}");
        }
    }

    #[test]
    fn a_fill_that_straddles_an_invalidation_is_dropped() {
        let cache = VerifyCache::new(CacheConfig::new(), Arc::new(SystemClock)).unwrap();
        let id = KeyId::parse("Abcd1234").unwrap();
        let hash = cache.hash(id.as_str());
        let unknown = || {
            Slot::Unknown(Box::new(UnknownId {
                key_id: id.clone(),
                loaded_at: 0,
            }))
        };
        let before = cache.generation();
        cache.invalidate(&Change::Key(KeyId::parse("Zzzz9999").unwrap()));
        cache.fill(hash, unknown(), before);
        assert!(matches!(cache.lookup(id.as_str(), hash, 1), Lookup::Miss));

        cache.fill(hash, unknown(), cache.generation());
        assert!(matches!(
            cache.lookup(id.as_str(), hash, 1),
            Lookup::Unknown
        ));
        cache.invalidate(&Change::Key(id.clone()));
        assert!(matches!(cache.lookup(id.as_str(), hash, 1), Lookup::Miss));
    }

    /// A clock the test sets, in micros.
    #[derive(Debug, Default)]
    struct TestClock(AtomicI64);

    impl TestClock {
        fn set(&self, micros: i64) {
            self.0.store(micros, Ordering::SeqCst);
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> DateTime<Utc> {
            DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_default()
        }
    }

    const SECOND: i64 = 1_000_000;

    fn at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).unwrap()
    }

    /// ttl 5 s, 10 minutes while the feed is fresh, feed bound 2 s; unknown
    /// ids as long as keys, so they show the same rules.
    fn feed_config() -> CacheConfig {
        CacheConfig::new()
            .ttl(Duration::from_secs(5))
            .ttl_with_feed(Duration::from_secs(600))
            .negative_ttl(Duration::from_secs(600))
            .feed_bound(Duration::from_secs(2))
    }

    fn cache_with(config: CacheConfig) -> (VerifyCache, Arc<TestClock>) {
        let clock = Arc::new(TestClock::default());
        let cache = VerifyCache::new(config, Arc::clone(&clock) as Arc<dyn Clock>).unwrap();
        (cache, clock)
    }

    /// A live key snapshot loaded at `loaded_at`.
    fn known(id: &str, inherits_owner: bool, loaded_at: i64) -> Slot {
        let record = KeyRecord {
            id: KeyId::parse(id).unwrap(),
            kind: "tak".to_owned(),
            owner: Owner::new("user:alice").unwrap(),
            name: "test".to_owned(),
            digest: crate::secret::TokenHasher::sha256().digest("secret"),
            preview: "tak_Abcd…".to_owned(),
            scopes: crate::permission::PermissionSet::new(),
            roles: std::collections::BTreeSet::new(),
            inherits_owner,
            metadata: crate::key::Metadata::new(),
            state: crate::lifecycle::KeyState::Active,
            created_at: at(0),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            created_by: "operator:test".to_owned(),
            rotated_from: None,
            rotated_to: None,
        };
        Slot::Known(Arc::new(KeySnapshot::new(
            (&record).into(),
            Some(0),
            crate::permission::PermissionSet::new(),
            true,
            loaded_at,
        )))
    }

    fn unknown(id: &str, loaded_at: i64) -> Slot {
        Slot::Unknown(Box::new(UnknownId {
            key_id: KeyId::parse(id).unwrap(),
            loaded_at,
        }))
    }

    fn served(cache: &VerifyCache, id: &str, now: i64) -> bool {
        !matches!(cache.lookup(id, cache.hash(id), now), Lookup::Miss)
    }

    fn fill(cache: &VerifyCache, id: &str, slot: Slot) {
        cache.fill(cache.hash(id), slot, cache.generation());
    }

    #[test]
    fn a_fresh_feed_lengthens_lifetimes_and_a_lost_one_shortens_them() {
        let (cache, clock) = cache_with(feed_config());
        fill(&cache, "Abcd1234", unknown("Abcd1234", 0));
        assert!(served(&cache, "Abcd1234", 4 * SECOND));
        assert!(!served(&cache, "Abcd1234", 5 * SECOND), "no feed: ttl");

        let sink = cache.sink();
        fill(&cache, "Abcd1234", unknown("Abcd1234", 10 * SECOND));
        sink.confirm(at(10 * SECOND));
        assert!(cache.feed_fresh(11 * SECOND));
        assert!(served(&cache, "Abcd1234", 11 * SECOND));
        // Heartbeats keep coming back: the entry outlives `ttl`.
        for t in (12..=100).step_by(1) {
            sink.confirm(at(t * SECOND - SECOND));
            assert!(served(&cache, "Abcd1234", t * SECOND), "at {t} s");
        }
        clock.set(100 * SECOND);
        let status = cache.status();
        assert!(status.feed_fresh);
        assert_eq!(status.worst_case_staleness, Duration::from_secs(2));
        assert_eq!(
            status.unreported_owner_change_staleness,
            Duration::from_secs(5)
        );
        sink.disconnected();
        assert!(!cache.feed_fresh(100 * SECOND));
        assert_eq!(cache.status().worst_case_staleness, Duration::from_secs(5));
        assert!(!served(&cache, "Abcd1234", 100 * SECOND));
    }

    /// The listener stalls (heartbeats stop coming back, the connection
    /// stays): a change committed while the feed was fresh must be seen
    /// within the feed bound, so an entry loaded while the feed was fresh is
    /// not served once its freshness can no longer be proven, though it is
    /// younger than `ttl`.
    #[test]
    fn an_entry_loaded_while_the_feed_was_fresh_is_not_served_once_the_feed_stalls() {
        let (cache, clock) = cache_with(feed_config());
        let sink = cache.sink();
        sink.confirm(at(100 * SECOND));
        // Loaded at 101 s on a fresh feed (reported bound: 2 s).
        fill(&cache, "Fresh001", known("Fresh001", false, 101 * SECOND));
        fill(&cache, "Gone0001", unknown("Gone0001", 101 * SECOND));
        clock.set(101 * SECOND);
        let promised = cache.status();
        assert!(promised.feed_fresh);
        assert_eq!(promised.worst_case_staleness, Duration::from_secs(2));
        // The last heartbeat came back; then nothing does. A change at
        // 101 s is never announced. Fresh until 102 s.
        assert!(served(&cache, "Fresh001", 101 * SECOND + SECOND / 2));
        assert!(served(&cache, "Gone0001", 101 * SECOND + SECOND / 2));
        // From 102 s (the watermark plus the bound), neither is served,
        // though each is only a second old and `ttl` is 5 s: the change at
        // 101 s is seen by 103 s, as promised.
        for now in [102 * SECOND, 102 * SECOND + 1, 103 * SECOND, 105 * SECOND] {
            assert!(!served(&cache, "Fresh001", now), "at {now}");
            assert!(!served(&cache, "Gone0001", now), "at {now}");
        }
        // What is loaded after the lapse lives `ttl` from its load.
        fill(&cache, "Later001", known("Later001", false, 103 * SECOND));
        assert!(served(&cache, "Later001", 107 * SECOND));
        assert!(!served(&cache, "Later001", 108 * SECOND));
        clock.set(103 * SECOND);
        let status = cache.status();
        assert!(!status.feed_fresh);
        assert_eq!(status.worst_case_staleness, Duration::from_secs(5));
    }

    /// A dropped connection: entries loaded before it are not made
    /// servable for `ttl` afresh.
    #[test]
    fn a_disconnect_ends_what_was_loaded_on_the_feeds_promise() {
        let (cache, clock) = cache_with(feed_config());
        let sink = cache.sink();
        sink.confirm(at(100 * SECOND));
        fill(&cache, "Before01", known("Before01", false, 100 * SECOND));
        clock.set(100 * SECOND + SECOND / 2);
        sink.disconnected();
        assert!(!cache.feed_fresh(100 * SECOND + SECOND / 2));
        assert!(!served(&cache, "Before01", 100 * SECOND + SECOND / 2));
        assert!(!served(&cache, "Before01", 103 * SECOND));
        // Loaded after the disconnect: the feed promised nothing; `ttl`.
        fill(&cache, "After001", known("After001", false, 101 * SECOND));
        assert!(served(&cache, "After001", 105 * SECOND));
        assert!(!served(&cache, "After001", 106 * SECOND));
        // Reconnected and fresh again: the feed's lifetimes apply.
        sink.connected();
        fill(&cache, "Again001", known("Again001", false, 110 * SECOND));
        sink.confirm(at(110 * SECOND));
        assert!(served(&cache, "Again001", 111 * SECOND));
    }

    /// Permissions an inheriting key takes from its owner live in the host,
    /// where no feed hears of a change the host does not report: such an
    /// entry lives `ttl` at most, however fresh the feed.
    #[test]
    fn an_inheriting_entry_lives_ttl_at_most_even_with_a_fresh_feed() {
        let (cache, clock) = cache_with(feed_config());
        let sink = cache.sink();
        fill(&cache, "Inherits", known("Inherits", true, 100 * SECOND));
        fill(&cache, "OwnPerms", known("OwnPerms", false, 100 * SECOND));
        for t in 100..=200 {
            sink.confirm(at(t * SECOND));
        }
        assert!(cache.feed_fresh(200 * SECOND));
        assert!(served(&cache, "Inherits", 104 * SECOND));
        assert!(!served(&cache, "Inherits", 105 * SECOND));
        assert!(!served(&cache, "Inherits", 200 * SECOND));
        assert!(served(&cache, "OwnPerms", 200 * SECOND));
        clock.set(200 * SECOND);
        let status = cache.status();
        assert_eq!(status.worst_case_staleness, Duration::from_secs(2));
        assert_eq!(
            status.unreported_owner_change_staleness,
            Duration::from_secs(5)
        );
    }

    /// A feed bound above `ttl` acts as `ttl`: a heartbeat sent before a
    /// change made while the feed was not fresh can never keep a stale
    /// entry past `ttl`.
    #[test]
    fn a_feed_bound_above_ttl_acts_as_ttl() {
        let config = feed_config()
            .ttl(Duration::from_secs(1))
            .feed_bound(Duration::from_secs(2));
        assert_eq!(config.worst_case_staleness(true), Duration::from_secs(1));
        let (cache, _clock) = cache_with(config);
        let sink = cache.sink();
        assert_eq!(sink.heartbeat_interval(), Duration::from_millis(250));
        sink.confirm(at(100 * SECOND));
        assert!(cache.feed_fresh(100 * SECOND + SECOND / 2));
        assert!(!cache.feed_fresh(101 * SECOND));
    }

    /// Unknown ids live in a region of their own: however many arrive,
    /// they never push a known key out, and they stay bounded.
    #[test]
    fn unknown_ids_never_evict_known_keys() {
        let capacity = 6400;
        let (cache, _clock) = cache_with(feed_config().capacity(capacity));
        let ids: Vec<String> = (0..300).map(|n| format!("Known{n:05}")).collect();
        for id in &ids {
            fill(&cache, id, known(id, false, SECOND));
        }
        for n in 0..20_000 {
            let id = format!("Forged{n:06}");
            fill(&cache, &id, unknown(&id, SECOND + n));
        }
        for id in &ids {
            assert!(served(&cache, id, 2 * SECOND), "{id} was evicted");
        }
        let entries = cache.status().entries;
        let unknown_bound = SHARDS * (capacity / NEGATIVE_SHARE).div_ceil(SHARDS);
        assert!(
            entries <= ids.len() + unknown_bound,
            "{entries} entries: unknown ids are bounded"
        );
        assert!(entries > ids.len(), "unknown ids are still cached");
        // The newest unknown id is answered from memory.
        assert!(served(&cache, "Forged019999", 2 * SECOND));
    }
}
