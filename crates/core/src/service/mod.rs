//! [`Keyward`]: the service a host calls. Validates, authorizes, decides,
//! then lets the store persist atomically.

mod background;
mod builder;
mod issue;
mod leak;
mod manage;
mod prune;
mod requests;
mod resolve;
mod storage;
mod verify;

use crate::actor::Actor;
use crate::audit::{AuditEvent, AuditOutcome};
use crate::authorization::{Operation, Permit};
use crate::cache::VerifyCache;
use crate::clock::{Clock, SystemClock, to_micros};
use crate::error::Error;
use crate::feed::ChangeFeed;
use crate::format::TokenFormat;
use crate::hooks::{IssueHook, LeakHook, OwnerPermissions};
use crate::key::{KeyId, KeyRecord};
use crate::kind::TokenKind;
use crate::secret::{OsRandom, SecretSource, TokenHasher};
use crate::store::KeyStore;
use crate::usage::UsageRecorder;
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;

use background::AbortOnDrop;
pub use background::UsageFlusher;
pub use builder::KeywardBuilder;
pub use manage::MAX_REVOKE_REASON_LEN;
pub use requests::{IssueRequest, IssuedKey, KeyDetails, ListRequest, ShownOnce};
use storage::Storage;
pub use verify::Verification;

/// How many times issue and rotate draw a new key id after a collision.
const ID_ATTEMPTS: usize = 8;
/// How many times a state change or role edit re-reads after losing a
/// compare-and-set.
const CAS_ATTEMPTS: usize = 3;
/// Most roles a key may hold.
pub const MAX_ROLES_PER_KEY: usize = 32;

/// The keyward service: issue, verify and manage tokens over a [`KeyStore`].
///
/// Cheap to clone (one `Arc`). See the crate docs for a complete example.
#[derive(Debug, Clone)]
pub struct Keyward {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Storage,
    cache: Option<VerifyCache>,
    feed: Option<Arc<dyn ChangeFeed>>,
    /// Kept for its `Drop`: the listener stops with the service.
    #[allow(dead_code, reason = "held only so the listener stops with the service")]
    feed_task: Option<AbortOnDrop>,
    format: TokenFormat,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecretSource>,
    hook: Option<Arc<dyn IssueHook>>,
    leak_hook: Option<Arc<dyn LeakHook>>,
    resolver: Option<Arc<dyn OwnerPermissions>>,
    usage: UsageRecorder,
    max_overlap: TimeDelta,
}

impl Keyward {
    /// Starts configuring a service over `store`.
    pub fn builder(store: impl KeyStore) -> KeywardBuilder {
        Self::builder_arc(Arc::new(store))
    }

    /// Like [`Keyward::builder`], for a store already behind an `Arc`.
    pub fn builder_arc(store: Arc<dyn KeyStore>) -> KeywardBuilder {
        KeywardBuilder {
            store,
            kinds: Vec::new(),
            hasher: TokenHasher::default(),
            clock: Arc::new(SystemClock),
            rng: Arc::new(OsRandom),
            hook: None,
            leak_hook: None,
            resolver: None,
            max_overlap: TimeDelta::days(30),
            cache: None,
            feed: None,
        }
    }

    /// The token format (for [`TokenFormat::regex`] and [`TokenFormat::scan`]).
    pub fn format(&self) -> &TokenFormat {
        &self.inner.format
    }

    /// The store as the service holds it (behind the cache's invalidating
    /// wrapper, if any), for [`crate::dangerous::store`] only.
    pub(crate) fn raw_store(&self) -> &Arc<dyn KeyStore> {
        self.inner.store.dangerous()
    }

    fn now(&self) -> DateTime<Utc> {
        to_micros(self.inner.clock.now())
    }

    fn kind(&self, prefix: &str) -> Result<&TokenKind, Error> {
        self.inner
            .format
            .kind(prefix)
            .ok_or_else(|| Error::invalid("kind", "no such token kind is configured"))
    }

    /// Asks the one decision point whether `actor` may perform `operation`;
    /// the permit is the management calls' only way to the store.
    fn decide(&self, actor: &Actor, operation: &Operation<'_>) -> Result<Permit<'_>, Error> {
        self.inner
            .store
            .decide(actor, operation, &self.inner.format)
    }

    /// After a write failed with a backend error, the record as it is if
    /// the write committed anyway (a connection can drop after the commit,
    /// before its answer): nothing reports failure for a write that
    /// committed. Any other error, or a read-back that fails or finds the
    /// write absent, is returned as it was.
    async fn committed(
        &self,
        error: Error,
        id: &KeyId,
        took_effect: impl Fn(&KeyRecord) -> bool,
    ) -> Result<KeyRecord, Error> {
        if !matches!(error, Error::Backend { .. }) {
            return Err(error);
        }
        match self.inner.store.key(id).await {
            Ok(Some(record)) if took_effect(&record) => Ok(record),
            _ => Err(error),
        }
    }

    /// Appends a refused event (unless the store itself failed) and returns the error.
    async fn audit_refusal(&self, event: AuditEvent, error: Error) -> Error {
        if matches!(error, Error::Backend { .. }) {
            return error;
        }
        let event = event.with_outcome(AuditOutcome::Refused(error.to_string()));
        // The refusal stands even if recording it fails.
        drop(self.inner.store.record_refusal(&event).await);
        error
    }
}

fn keyed(mut event: AuditEvent, id: &KeyId) -> AuditEvent {
    event.key_id = Some(id.clone());
    event
}
