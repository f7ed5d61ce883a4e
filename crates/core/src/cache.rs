//! The verification cache: what verify needs of each key, held in memory,
//! dropped on every change.
//!
//! Entries are immutable snapshots ([`KeySnapshot`]) keyed by key id, plus
//! negative entries for ids the store does not know. The map is split into
//! shards, each behind its own `RwLock` on its own cache line, so readers on
//! different cores almost never touch the same lock word: a hit costs one
//! SipHash of the key id, one uncontended read lock and one `Arc` clone.
//!
//! Invalidation is immediate in-process (the service wraps its store so that
//! every mutation drops the affected entries before it returns), and across
//! processes through a [`ChangeFeed`](crate::ChangeFeed), whose freshness is
//! proven by the feed's own heartbeats. Without a proven-fresh feed, entries
//! live at most [`CacheConfig::ttl`].

use crate::clock::Clock;
use crate::error::Error;
use crate::key::{KeyId, Owner, RoleName};
use crate::verify::KeySnapshot;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// How many shards the map is split into (a power of two).
const SHARDS: usize = 64;

/// How the verification cache behaves. Every setting has a safe default.
///
/// ```
/// use keyward_core::CacheConfig;
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

    /// About how many keys (known and unknown) the cache holds; beyond it,
    /// the oldest of a few sampled entries makes room.
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
    /// worst-case cross-process staleness while the feed is connected. The
    /// feed sends a heartbeat every quarter of it.
    pub fn feed_bound(mut self, bound: Duration) -> Self {
        self.feed_bound = bound;
        self
    }

    pub(crate) fn keys(&self) -> usize {
        self.capacity
    }

    /// The longest a change made in another process can go unnoticed, with
    /// a fresh change feed (`true`) or without one.
    pub fn worst_case_staleness(&self, feed_fresh: bool) -> Duration {
        if feed_fresh {
            self.feed_bound.min(self.ttl_with_feed)
        } else {
            self.ttl
        }
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

/// What changed, as the cache and change feeds see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A key was issued, changed state, rotated or edited.
    Key(KeyId),
    /// A role was created, replaced or deleted.
    Role(RoleName),
    /// The host reported that an owner's own permissions changed (for
    /// keys that inherit them).
    Owner(Owner),
    /// Anything may have changed.
    All,
}

impl Change {
    /// The text a change feed carries: `k:<key id>`, `r:<role>`, `o:<owner>`
    /// or `*`.
    pub fn to_payload(&self) -> String {
        match self {
            Self::Key(id) => format!("k:{id}"),
            Self::Role(name) => format!("r:{name}"),
            Self::Owner(owner) => format!("o:{owner}"),
            Self::All => "*".to_owned(),
        }
    }

    /// Reads [`Change::to_payload`]'s output. Anything else is
    /// [`Change::All`]: a feed that cannot tell what changed must drop
    /// everything.
    ///
    /// ```
    /// use keyward_core::{Change, KeyId};
    /// let change = Change::Key(KeyId::parse("AbCd1234")?);
    /// assert_eq!(Change::from_payload(&change.to_payload()), change);
    /// assert_eq!(Change::from_payload("k:not an id"), Change::All);
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_payload(payload: &str) -> Self {
        let parsed = match payload.split_once(':') {
            Some(("k", id)) => KeyId::parse(id).ok().map(Self::Key),
            Some(("r", name)) => RoleName::new(name).ok().map(Self::Role),
            Some(("o", owner)) => Owner::new(owner).ok().map(Self::Owner),
            _ => None,
        };
        parsed.unwrap_or(Self::All)
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
    /// The longest a change made in another process can go unnoticed right
    /// now. Changes made through this service are seen at once.
    pub worst_case_staleness: Duration,
}

/// One cache entry.
#[derive(Debug)]
pub(crate) enum Slot {
    /// The key as it was loaded.
    Known(Arc<KeySnapshot>),
    /// The store had no such key. Boxed, so a slot is two words and the
    /// map's table stays small.
    Unknown(Box<UnknownId>),
}

/// An id the store did not know at `loaded_at` (micros).
#[derive(Debug)]
pub(crate) struct UnknownId {
    pub(crate) key_id: KeyId,
    pub(crate) loaded_at: i64,
}

impl Slot {
    /// Whether this is the entry of `key_id` (not of another id whose
    /// hash collided).
    fn is(&self, key_id: &str) -> bool {
        match self {
            Self::Known(snapshot) => snapshot.inline_id.is(key_id),
            Self::Unknown(unknown) => unknown.key_id.as_str() == key_id,
        }
    }

    fn loaded_at(&self) -> i64 {
        match self {
            Self::Known(snapshot) => snapshot.loaded_at,
            Self::Unknown(unknown) => unknown.loaded_at,
        }
    }

    /// The address of the entry's heap data, which moving the slot keeps:
    /// tells one fill from another of the same id.
    fn identity(&self) -> usize {
        match self {
            Self::Known(snapshot) => Arc::as_ptr(snapshot) as usize,
            Self::Unknown(unknown) => std::ptr::from_ref::<UnknownId>(unknown) as usize,
        }
    }
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

type ShardMap = HashMap<u64, Slot, BuildHasherDefault<Prehashed>>;

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

#[derive(Debug)]
struct CacheInner {
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    hasher: RandomState,
    shards: Box<[Shard; SHARDS]>,
    shard_capacity: usize,
    /// Bumped before every invalidation; a fill that straddles one is undone.
    generation: AtomicU64,
    feed_attached: AtomicBool,
    /// Send time (micros) of the newest heartbeat the feed delivered back.
    feed_watermark: AtomicI64,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl VerifyCache {
    pub(crate) fn new(config: CacheConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        config.validate()?;
        let shard_capacity = config.capacity.div_ceil(SHARDS).max(1);
        Ok(Self {
            inner: Arc::new(CacheInner {
                config,
                clock,
                hasher: RandomState::new(),
                shards: Box::new(std::array::from_fn(|_| Shard::default())),
                shard_capacity,
                generation: AtomicU64::new(0),
                feed_attached: AtomicBool::new(false),
                feed_watermark: AtomicI64::new(i64::MIN),
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

    /// How old (micros) an entry may be at `now`.
    fn max_age(&self, now: i64, negative: bool) -> i64 {
        let config = &self.inner.config;
        let lifetime = if self.feed_fresh(now) {
            config.ttl_with_feed
        } else {
            config.ttl
        };
        let lifetime = if negative {
            lifetime.min(config.negative_ttl)
        } else {
            lifetime
        };
        micros(lifetime)
    }

    fn feed_fresh(&self, now: i64) -> bool {
        if !self.inner.feed_attached.load(Ordering::Acquire) {
            return false;
        }
        let watermark = self.inner.feed_watermark.load(Ordering::Acquire);
        now.saturating_sub(watermark) <= micros(self.inner.config.feed_bound)
    }

    /// The entry for `key_id` if it is still young enough at `now` (micros).
    pub(crate) fn lookup(&self, key_id: &str, hash: u64, now: i64) -> Lookup {
        let map = self
            .shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = map.get(&hash) else {
            return Lookup::Miss;
        };
        if !slot.is(key_id) {
            return Lookup::Miss;
        }
        let negative = matches!(slot, Slot::Unknown(_));
        if now.saturating_sub(slot.loaded_at()) >= self.max_age(now, negative) {
            return Lookup::Miss;
        }
        match slot {
            Slot::Known(snapshot) => Lookup::Hit(Arc::clone(snapshot)),
            Slot::Unknown(_) => Lookup::Unknown,
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
    pub(crate) fn fill(&self, hash: u64, slot: Slot, generation: u64) {
        if self.generation() != generation {
            return;
        }
        let identity = slot.identity();
        {
            let mut map = self
                .shard(hash)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if map.len() >= self.inner.shard_capacity && !map.contains_key(&hash) {
                evict_one(&mut map);
            }
            map.insert(hash, slot);
        }
        // An invalidation between the check above and the insert would
        // have found nothing to drop; undo the fill ourselves.
        if self.generation() != generation {
            let mut map = self
                .shard(hash)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if map.get(&hash).is_some_and(|s| s.identity() == identity) {
                map.remove(&hash);
            }
        }
    }

    /// Drops every entry `change` may affect.
    pub(crate) fn invalidate(&self, change: &Change) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        match change {
            Change::Key(id) => {
                let hash = self.hash(id.as_str());
                let mut map = self
                    .shard(hash)
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                map.remove(&hash);
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
            map.retain(|_, slot| match slot {
                Slot::Known(snapshot) => keep(snapshot),
                Slot::Unknown(_) => true,
            });
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
        }
    }

    fn now_micros(&self) -> i64 {
        self.inner.clock.now().timestamp_micros()
    }
}

/// Makes room in a full shard: the oldest of the first few entries goes.
/// Which entries come first depends on their (random) hashes, so this is a
/// sampled eviction that prefers entries loaded long ago.
fn evict_one(map: &mut ShardMap) {
    let victim = map
        .iter()
        .take(8)
        .min_by_key(|(_, slot)| slot.loaded_at())
        .map(|(hash, _)| *hash);
    if let Some(hash) = victim {
        map.remove(&hash);
    }
}

/// What a [`ChangeFeed`] delivers into: one service's cache.
///
/// A feed calls [`FeedSink::connected`] once it listens (and after every
/// reconnect), [`FeedSink::apply`] for each change, [`FeedSink::confirm`]
/// when one of its own heartbeats comes back, and
/// [`FeedSink::disconnected`] when it loses its connection.
#[derive(Debug, Clone)]
pub struct FeedSink {
    cache: VerifyCache,
}

impl FeedSink {
    pub(crate) fn new(cache: VerifyCache) -> Self {
        cache.inner.feed_attached.store(true, Ordering::Release);
        Self { cache }
    }

    /// The feed listens (again): changes missed while it did not are
    /// unknown, so everything cached is dropped.
    pub fn connected(&self) {
        self.cache.invalidate(&Change::All);
    }

    /// Drops what `change` affects.
    pub fn apply(&self, change: &Change) {
        self.cache.invalidate(change);
    }

    /// A heartbeat sent at `sent_at` came back: every change committed
    /// before it has been applied.
    pub fn confirm(&self, sent_at: DateTime<Utc>) {
        self.cache
            .inner
            .feed_watermark
            .fetch_max(sent_at.timestamp_micros(), Ordering::AcqRel);
    }

    /// The feed lost its connection: entries fall back to
    /// [`CacheConfig::ttl`] until it reconnects.
    pub fn disconnected(&self) {
        self.cache
            .inner
            .feed_watermark
            .store(i64::MIN, Ordering::Release);
    }

    /// The service's clock, to stamp heartbeats with.
    pub fn now(&self) -> DateTime<Utc> {
        self.cache.inner.clock.now()
    }

    /// How often to send a heartbeat: a quarter of the feed bound.
    pub fn heartbeat_interval(&self) -> Duration {
        self.cache.inner.config.feed_bound / 4
    }

    /// Whether the service still exists; a feed stops when it does not.
    pub fn is_alive(&self) -> bool {
        Arc::strong_count(&self.cache.inner) > 1
    }
}

/// Carries changes between processes that share a store, so every
/// process's cache drops what another changed (optional: without one,
/// other processes' changes are seen within [`CacheConfig::ttl`]).
///
/// Changes made through the store are the store's to publish (the Postgres
/// adapter does it in the same transaction); [`ChangeFeed::publish`] is for
/// changes only the host knows of, such as an owner's permissions.
#[async_trait::async_trait]
pub trait ChangeFeed: std::fmt::Debug + Send + Sync + 'static {
    /// Tells every process about `change`.
    async fn publish(&self, change: &Change) -> Result<(), Error>;

    /// Starts delivering every process's changes into `sink` on the current
    /// Tokio runtime, reconnecting after failures, until the sink's service
    /// is gone or the returned task is aborted.
    fn subscribe(&self, sink: FeedSink) -> Result<tokio::task::JoinHandle<()>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

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

    #[test]
    fn a_fresh_feed_lengthens_lifetimes_and_a_lost_one_shortens_them() {
        let config = CacheConfig::new()
            .ttl(Duration::from_secs(5))
            .ttl_with_feed(Duration::from_secs(600))
            .negative_ttl(Duration::from_secs(600))
            .feed_bound(Duration::from_secs(2));
        let cache = VerifyCache::new(config, Arc::new(SystemClock)).unwrap();
        let id = KeyId::parse("Abcd1234").unwrap();
        let hash = cache.hash(id.as_str());
        let slot = Slot::Unknown(Box::new(UnknownId {
            key_id: id.clone(),
            loaded_at: 0,
        }));
        cache.fill(hash, slot, cache.generation());
        let ten_seconds = 10_000_000;
        assert!(matches!(
            cache.lookup(id.as_str(), hash, ten_seconds),
            Lookup::Miss
        ));

        let sink = FeedSink::new(cache.clone());
        sink.confirm(DateTime::from_timestamp_micros(ten_seconds - 1_000_000).unwrap());
        assert!(matches!(
            cache.lookup(id.as_str(), hash, ten_seconds),
            Lookup::Unknown
        ));
        // The heartbeat is now 3 s old: more than the 2 s bound.
        assert!(matches!(
            cache.lookup(id.as_str(), hash, ten_seconds + 2_000_000),
            Lookup::Miss
        ));
        sink.confirm(DateTime::from_timestamp_micros(ten_seconds + 2_000_000).unwrap());
        sink.disconnected();
        assert!(matches!(
            cache.lookup(id.as_str(), hash, ten_seconds + 2_000_000),
            Lookup::Miss
        ));
    }
}
