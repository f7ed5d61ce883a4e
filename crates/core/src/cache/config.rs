//! The cache's settings ([`CacheConfig`], validated when the service is
//! built) and its state as reported ([`CacheStatus`]).

use crate::error::Error;
use std::time::Duration;

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
    pub(super) capacity: usize,
    pub(super) ttl: Duration,
    pub(super) ttl_with_feed: Duration,
    pub(super) negative_ttl: Duration,
    pub(super) feed_bound: Duration,
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
    pub(super) fn effective_feed_bound(&self) -> Duration {
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
