//! Tests of the verification cache.

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
