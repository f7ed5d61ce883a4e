//! The cross-process change protocol: what a change feed carries
//! ([`Change`]), what it delivers into ([`FeedSink`]) and what an adapter
//! implements ([`ChangeFeed`]). The Postgres adapter is one; the verification
//! cache is the only sink.

use crate::error::Error;
use crate::key::{KeyId, Owner, RoleName};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

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
    /// use keyward_core::{feed::Change, KeyId};
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

/// A feed calls [`FeedSink::connected`] once it listens (and after every
/// reconnect), [`FeedSink::apply`] for each change, [`FeedSink::confirm`]
/// when one of its own heartbeats comes back, and
/// [`FeedSink::disconnected`] when it loses its connection.
///
/// The cache's staleness bound rests on what the feed tells it here; see
/// [`FeedSink::confirm`] for what a feed must guarantee.
#[derive(Debug, Clone)]
pub struct FeedSink {
    target: Arc<dyn FeedTarget>,
}

/// What a feed delivers into (the verification cache), so this protocol
/// does not depend on the cache's internals.
pub(crate) trait FeedTarget: std::fmt::Debug + Send + Sync + 'static {
    fn invalidate(&self, change: &Change);
    fn confirm(&self, sent_at: DateTime<Utc>);
    fn disconnected(&self);
    fn now(&self) -> DateTime<Utc>;
    fn heartbeat_interval(&self) -> Duration;
    fn is_alive(&self) -> bool;
}

impl FeedSink {
    pub(crate) fn new(target: Arc<dyn FeedTarget>) -> Self {
        Self { target }
    }

    /// The feed listens (again): changes missed while it did not are
    /// unknown, so everything cached is dropped.
    pub fn connected(&self) {
        self.target.invalidate(&Change::All);
    }

    /// Drops what `change` affects. Changes only ever drop entries: a
    /// forged or replayed change costs store reads, never a stale answer.
    pub fn apply(&self, change: &Change) {
        self.target.invalidate(change);
    }

    /// A heartbeat came back that the feed sent at `sent_at` (read from
    /// [`FeedSink::now`] before sending it): every change committed before
    /// `sent_at` has been applied, so the feed is fresh for the feed bound
    /// after `sent_at`.
    ///
    /// The feed must make sure of it: the heartbeat is one this feed sent
    /// on its current connection (after it started listening), that nobody
    /// could have sent before `sent_at` (an unpredictable nonce), and that
    /// it has not confirmed before; and `sent_at` comes from the feed's own
    /// memory, never from what arrived.
    pub fn confirm(&self, sent_at: DateTime<Utc>) {
        self.target.confirm(sent_at);
    }

    /// The feed lost its connection: it stops counting as fresh now.
    /// Entries loaded before now are not served again (they were loaded on
    /// the feed's promise, which it can no longer keep); entries loaded from
    /// now on live [`CacheConfig::ttl`](crate::cache::CacheConfig::ttl) until
    /// the feed is fresh again.
    pub fn disconnected(&self) {
        self.target.disconnected();
    }

    /// The service's clock, to stamp heartbeats with.
    pub fn now(&self) -> DateTime<Utc> {
        self.target.now()
    }

    /// How often to send a heartbeat: a quarter of the feed bound.
    pub fn heartbeat_interval(&self) -> Duration {
        self.target.heartbeat_interval()
    }

    /// Whether the service still exists; a feed stops when it does not.
    pub fn is_alive(&self) -> bool {
        self.target.is_alive()
    }
}

/// Carries changes between processes that share a store, so every
/// process's cache drops what another changed (optional: without one,
/// other processes' changes are seen within [`CacheConfig::ttl`](crate::cache::CacheConfig::ttl)).
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
