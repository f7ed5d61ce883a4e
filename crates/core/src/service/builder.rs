//! Configuring a [`Keyward`]: kinds, hasher, clock, hooks, cache and feed.

use super::{AbortOnDrop, Inner, Keyward, Storage};
use crate::authorization::{self};
use crate::cache::{CacheConfig, VerifyCache};
use crate::clock::Clock;
use crate::error::Error;
use crate::feed::ChangeFeed;
use crate::format::TokenFormat;
use crate::hooks::{IssueHook, LeakHook, OwnerPermissions};
use crate::invalidating::Invalidating;
use crate::kind::TokenKind;
use crate::secret::{SecretSource, TokenHasher};
use crate::store::KeyStore;
use crate::usage::UsageRecorder;
use chrono::TimeDelta;
use std::sync::Arc;

/// Builds a [`Keyward`].
#[derive(Debug)]
pub struct KeywardBuilder {
    pub(super) store: Arc<dyn KeyStore>,
    pub(super) kinds: Vec<TokenKind>,
    pub(super) hasher: TokenHasher,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) rng: Arc<dyn SecretSource>,
    pub(super) hook: Option<Arc<dyn IssueHook>>,
    pub(super) leak_hook: Option<Arc<dyn LeakHook>>,
    pub(super) resolver: Option<Arc<dyn OwnerPermissions>>,
    pub(super) max_overlap: TimeDelta,
    pub(super) cache: Option<CacheConfig>,
    pub(super) feed: Option<Arc<dyn ChangeFeed>>,
}

impl KeywardBuilder {
    /// Adds a token kind.
    pub fn kind(mut self, kind: TokenKind) -> Self {
        self.kinds.push(kind);
        self
    }
    /// Hashes with this hasher (default: SHA-256).
    pub fn hasher(mut self, hasher: TokenHasher) -> Self {
        self.hasher = hasher;
        self
    }
    /// Uses this clock (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
    /// Draws secrets from this source (default: the OS CSPRNG).
    pub fn secret_source(mut self, rng: impl SecretSource) -> Self {
        self.rng = Arc::new(rng);
        self
    }
    /// Asks this hook before every issue.
    pub fn issue_hook(mut self, hook: impl IssueHook) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }
    /// Tells this hook of every confirmed leak report
    /// ([`Keyward::report_leak`]): to e-mail the owner, open a ticket.
    pub fn leak_hook(mut self, hook: impl LeakHook) -> Self {
        self.leak_hook = Some(Arc::new(hook));
        self
    }
    /// Resolves owners' current permissions for inheriting tokens.
    pub fn owner_permissions(mut self, resolver: impl OwnerPermissions) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }
    /// The longest rotation overlap allowed (default 30 days).
    pub fn max_rotation_overlap(mut self, max: TimeDelta) -> Self {
        self.max_overlap = max;
        self
    }
    /// Serves verification from an in-memory cache (see [`CacheConfig`]).
    ///
    /// Every change made through this service drops the affected entries
    /// before the call returns. Changes made by other processes are seen
    /// within [`CacheConfig::ttl`], or within [`CacheConfig::feed_bound`]
    /// with a [`KeywardBuilder::change_feed`].
    pub fn verify_cache(mut self, config: CacheConfig) -> Self {
        self.cache = Some(config);
        self
    }

    /// Shares changes with other processes through `feed` (the Postgres
    /// store is one): their caches drop what this one changes, and this
    /// cache drops what they change. With a cache, [`KeywardBuilder::build`]
    /// must run inside a Tokio runtime, where the feed's listener runs.
    pub fn change_feed(mut self, feed: impl ChangeFeed) -> Self {
        self.feed = Some(Arc::new(feed));
        self
    }

    /// Checks the configuration and builds the service.
    pub fn build(self) -> Result<Keyward, Error> {
        if self.kinds.is_empty() {
            return Err(Error::invalid("kinds", "configure at least one token kind"));
        }
        let format = TokenFormat::new(self.kinds)?;
        authorization::check_kinds(&format)?;
        if self.max_overlap < TimeDelta::zero() {
            return Err(Error::invalid(
                "max_rotation_overlap",
                "must not be negative",
            ));
        }
        let cache_capacity = self.cache.as_ref().map_or(0, CacheConfig::keys);
        let cache = self
            .cache
            .map(|config| VerifyCache::new(config, Arc::clone(&self.clock)))
            .transpose()?;
        let store = match &cache {
            Some(cache) => Arc::new(Invalidating::wrap(self.store, cache.clone())),
            None => self.store,
        };
        let feed_task = match (&cache, &self.feed) {
            (Some(cache), Some(feed)) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(Error::invalid(
                        "change_feed",
                        "build the service inside a Tokio runtime: the feed listens on a task",
                    ));
                }
                Some(AbortOnDrop(feed.subscribe(cache.sink())?))
            }
            _ => None,
        };
        Ok(Keyward {
            inner: Arc::new(Inner {
                store: Storage::new(store),
                cache,
                feed: self.feed,
                feed_task,
                format,
                hasher: self.hasher,
                clock: self.clock,
                rng: self.rng,
                hook: self.hook,
                leak_hook: self.leak_hook,
                resolver: self.resolver,
                usage: UsageRecorder::for_cache(cache_capacity),
                max_overlap: self.max_overlap,
            }),
        })
    }
}
