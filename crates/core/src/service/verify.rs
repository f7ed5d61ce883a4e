//! Verify: parse, look up (cache or store), compare, check. Never writes.

use super::Keyward;
use super::resolve::can_do;
use crate::bearer::{BearerError, bearer_token};
use crate::cache::{Lookup, Slot, UnknownId, VerifyCache};
use crate::format::ParsedToken;
use crate::key::{KeyId, VerifyRecord};
use crate::lifecycle::KeyState;
use crate::outcome::{Rejection, VerifiedKey};
use crate::permission::{PermissionSet, Requirement};
use crate::secret::TokenDigest;
use crate::snapshot::KeySnapshot;
use chrono::DateTime;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

impl Keyward {
    // ---------------------------------------------------------------- verify

    /// Verifies a token and checks `requirement`.
    ///
    /// Cheapest checks first: parse and checksum (no storage), lookup by key
    /// id, constant-time digest compare, revoked/disabled/expired, then
    /// permissions. Records the use in memory only; the store is never
    /// written here.
    ///
    /// When the answer is in memory (a malformed token, or a cache hit) the
    /// returned future is ready at once and small, and
    /// [`Verification::ready`] hands it over without an executor; only a
    /// store read is boxed.
    pub fn verify<'a>(&'a self, token: &'a str, requirement: &'a Requirement) -> Verification<'a> {
        let (parsed, now, hash) = match self.verify_from_memory(token, requirement) {
            FromMemory::Answer(answer) => return Verification::ready_with(answer),
            FromMemory::Load(parsed, now, hash) => (parsed, now, hash),
        };
        let key_id = KeyId::from_parsed(parsed.key_id());
        // Read the generation before the store, so a change that lands
        // while we read keeps the (possibly stale) result out of the cache.
        let generation = self.inner.cache.as_ref().map(VerifyCache::generation);
        let read = match self.inner.store.verify_key_now(&key_id) {
            Some(Ok(record)) => record,
            Some(Err(e)) => return Verification::ready_with(Err(Rejection::Unavailable(e))),
            None => {
                return Verification(VerificationState::Store(Box::pin(async move {
                    let record = self
                        .inner
                        .store
                        .verify_key(&key_id)
                        .await
                        .map_err(Rejection::Unavailable)?;
                    let loaded = match record {
                        Some(record) => Some(self.snapshot(record, &parsed, now).await?),
                        None => None,
                    };
                    self.conclude(
                        loaded,
                        key_id,
                        &parsed,
                        now,
                        (hash, generation),
                        requirement,
                    )
                })));
            }
        };
        let loaded = match read {
            None => None,
            Some(record) => match self.snapshot_now(record, &parsed, now) {
                Ok(snapshot) => Some(snapshot),
                // Roles to read, or an owner to ask: the rest is awaited.
                Err(pending) => {
                    return Verification(VerificationState::Store(Box::pin(async move {
                        let snapshot = self.resolved(pending, now).await?;
                        self.conclude(
                            Some(snapshot),
                            key_id,
                            &parsed,
                            now,
                            (hash, generation),
                            requirement,
                        )
                    })));
                }
            },
        };
        Verification::ready_with(self.conclude(
            loaded,
            key_id,
            &parsed,
            now,
            (hash, generation),
            requirement,
        ))
    }

    /// Parse, then the cache: the whole answer, or what the store read needs.
    pub(super) fn verify_from_memory<'a>(
        &'a self,
        token: &'a str,
        requirement: &Requirement,
    ) -> FromMemory<'a> {
        let parsed = match self.inner.format.parse(token) {
            Ok(parsed) => parsed,
            Err(e) => return FromMemory::Answer(Err(e.into())),
        };
        let now = self.inner.clock.now_micros();
        let Some(cache) = &self.inner.cache else {
            return FromMemory::Load(parsed, now, None);
        };
        let hash = cache.hash(parsed.key_id());
        match cache.lookup(parsed.key_id(), hash, now) {
            // A key loaded while not live, or for a token that did not
            // match, has no permissions resolved: answered from memory
            // unless this token matches a live key (then load it anew).
            Lookup::Hit(snapshot)
                if snapshot.resolved
                    || !snapshot.is_live(now)
                    || !self.identifies(&snapshot, &parsed) =>
            {
                FromMemory::Answer(self.check(snapshot, &parsed, now, requirement))
            }
            Lookup::Unknown => FromMemory::Answer(Err(Rejection::NotFound)),
            Lookup::Hit(_) | Lookup::Miss => FromMemory::Load(parsed, now, Some(hash)),
        }
    }

    /// After the store read (`loaded`: `None` if the store has no such
    /// key): the cache fill when there is a cache (its hash, and the
    /// generation read before the store), then the checks.
    fn conclude(
        &self,
        loaded: Option<Loaded>,
        key_id: KeyId,
        parsed: &ParsedToken<'_>,
        now: i64,
        (hash, generation): (Option<u64>, Option<u64>),
        requirement: &Requirement,
    ) -> Result<VerifiedKey, Rejection> {
        let fill = match (&self.inner.cache, hash, generation) {
            (Some(cache), Some(hash), Some(generation)) => Some((cache, hash, generation)),
            _ => None,
        };
        match loaded {
            Some(Loaded {
                snapshot,
                presented,
            }) => {
                if let Some((cache, hash, generation)) = fill {
                    cache.fill(hash, Slot::Known(Arc::clone(&snapshot)), generation);
                }
                // Whether the token is the key's own was settled when it was
                // loaded: its secret is hashed once per verify.
                if !presented {
                    return Err(Rejection::NotFound);
                }
                self.checked(snapshot, parsed, now, requirement)
            }
            None => {
                if let Some((cache, hash, generation)) = fill {
                    let unknown = Slot::Unknown(Box::new(UnknownId {
                        key_id,
                        loaded_at: now,
                    }));
                    cache.fill(hash, unknown, generation);
                }
                Err(Rejection::NotFound)
            }
        }
    }

    /// The snapshot of a key read for `parsed`, its permissions resolved if
    /// it is live and the token is its own.
    async fn snapshot(
        &self,
        record: VerifyRecord,
        parsed: &ParsedToken<'_>,
        now: i64,
    ) -> Result<Loaded, Rejection> {
        match self.snapshot_now(record, parsed, now) {
            Ok(snapshot) => Ok(snapshot),
            Err(pending) => self.resolved(pending, now).await,
        }
    }

    /// [`Keyward::snapshot`] without awaiting anything, or the record handed
    /// back when resolving its permissions needs the store (roles) or the
    /// host (an inheriting key).
    ///
    /// The presented token is checked before anything else is read: a
    /// wrong secret never costs a roles read or a call to the host's
    /// directory, so its cost cannot tell a live key from a dead one.
    fn snapshot_now(
        &self,
        record: VerifyRecord,
        parsed: &ParsedToken<'_>,
        now: i64,
    ) -> Result<Loaded, Box<Pending>> {
        let live = record.state == KeyState::Active
            && record
                .expires_at
                .is_none_or(|at| at.timestamp_micros() > now);
        let kind_index = self.inner.format.kind_index(&record.attributes.kind);
        let presented = kind_index == Some(parsed.kind_index())
            && self.presented_matches(&record.digest, parsed);
        let resolved = live && presented;
        if resolved && (record.inherits_owner || !record.attributes.roles.is_empty()) {
            // Boxed: the record is large, and this path awaits anyway.
            return Err(Box::new(Pending { record, kind_index }));
        }
        let permissions = if resolved {
            // Neither roles nor an owner: what it carries is its scopes.
            can_do(
                self.inner.format.kind(&record.attributes.kind),
                record.scopes.clone(),
                false,
                None,
            )
        } else {
            PermissionSet::new()
        };
        Ok(Loaded {
            snapshot: self.assemble(record, kind_index, permissions, resolved, now),
            presented,
        })
    }

    /// Resolves a live key's permissions through its roles or its owner.
    async fn resolved(&self, pending: Box<Pending>, now: i64) -> Result<Loaded, Rejection> {
        let Pending { record, kind_index } = *pending;
        let permissions = self
            .effective_permissions(
                &record.attributes.owner,
                &record.attributes.kind,
                &record.scopes,
                &record.attributes.roles,
                record.inherits_owner,
            )
            .await
            .map_err(Rejection::Unavailable)?;
        Ok(Loaded {
            snapshot: self.assemble(record, kind_index, permissions, true, now),
            presented: true,
        })
    }

    fn assemble(
        &self,
        record: VerifyRecord,
        kind_index: Option<usize>,
        permissions: PermissionSet,
        resolved: bool,
        now: i64,
    ) -> Arc<KeySnapshot> {
        Arc::new(KeySnapshot::new(
            record,
            kind_index,
            permissions,
            resolved,
            now,
        ))
    }

    /// Whether the presented token is the snapshot's key: same kind, and its
    /// secret hashes to the digest (constant time).
    pub(super) fn identifies(&self, snapshot: &KeySnapshot, parsed: &ParsedToken<'_>) -> bool {
        let same_kind = snapshot.is_kind(parsed.kind_index());
        self.presented_matches(&snapshot.digest, parsed) & same_kind
    }

    /// Whether the presented secret hashes to `digest` (constant time).
    pub(super) fn presented_matches(&self, digest: &TokenDigest, parsed: &ParsedToken<'_>) -> bool {
        let presented = self
            .inner
            .hasher
            .digest_with(digest.algorithm(), parsed.secret());
        presented.is_some_and(|d| d.matches(digest))
    }

    /// The checks after lookup: digest, state, expiry, permissions; then
    /// the use is recorded in memory.
    pub(super) fn check(
        &self,
        snapshot: Arc<KeySnapshot>,
        parsed: &ParsedToken<'_>,
        now: i64,
        requirement: &Requirement,
    ) -> Result<VerifiedKey, Rejection> {
        if !self.identifies(&snapshot, parsed) {
            return Err(Rejection::NotFound);
        }
        self.checked(snapshot, parsed, now, requirement)
    }

    /// [`Keyward::check`] for a snapshot known to be the token's key.
    fn checked(
        &self,
        snapshot: Arc<KeySnapshot>,
        parsed: &ParsedToken<'_>,
        now: i64,
        requirement: &Requirement,
    ) -> Result<VerifiedKey, Rejection> {
        match snapshot.state {
            KeyState::Revoked => return Err(Rejection::Revoked),
            KeyState::Disabled => return Err(Rejection::Disabled),
            KeyState::Active if snapshot.expires_at <= now => {
                return Err(Rejection::Expired);
            }
            KeyState::Active => {}
        }
        // The snapshot's kind is the token's (`identifies` compared their
        // positions): the format's prefix is read, not the snapshot's string.
        if !requirement.accepts_kind(parsed.kind().prefix()) {
            return Err(Rejection::KindNotAccepted);
        }
        if let Some(missing) = requirement.missing_from(&snapshot.permissions) {
            return Err(Rejection::InsufficientPermissions { missing });
        }
        if self.inner.cache.is_some() {
            self.inner.usage.record_cached(&snapshot, now);
        } else if let Some(at) = DateTime::from_timestamp_micros(now) {
            self.inner.usage.record(&snapshot.key_id, at);
        }
        Ok(VerifiedKey::new(snapshot))
    }

    /// Verifies the token in an `Authorization: Bearer <token>` header value.
    pub async fn verify_bearer(
        &self,
        authorization: Option<&str>,
        requirement: &Requirement,
    ) -> Result<VerifiedKey, Rejection> {
        let token =
            bearer_token(authorization).map_err(|e: BearerError| Rejection::BadHeader(e))?;
        self.verify(token, requirement).await
    }
}

/// A key just read, as a snapshot, and whether the presented token is its
/// own (same kind, its secret hashes to the digest).
pub(super) struct Loaded {
    snapshot: Arc<KeySnapshot>,
    presented: bool,
}

/// A live key read for its own token whose permissions need the store (its
/// roles) or the host (it inherits its owner's).
pub(super) struct Pending {
    record: VerifyRecord,
    kind_index: Option<usize>,
}

/// What memory alone could tell about a token.
pub(super) enum FromMemory<'a> {
    /// The whole answer.
    Answer(Result<VerifiedKey, Rejection>),
    /// The store must be read: the parsed token, the time (micros), and the cache
    /// hash when there is a cache.
    Load(ParsedToken<'a>, i64, Option<u64>),
}

/// The future [`Keyward::verify`] returns: the answer at once when memory
/// alone gives it, or a store read (which starts only when first polled).
///
/// A host that cannot await, such as a synchronous interceptor, takes the
/// answer with [`Verification::ready`] and moves to its async path only
/// when a store read is needed (keyward-axum's layer does this, so a cache
/// hit costs no boxed future).
#[must_use = "a verification does nothing until it is awaited or its ready answer is taken"]
pub struct Verification<'a>(VerificationState<'a>);

enum VerificationState<'a> {
    Ready(std::future::Ready<Result<VerifiedKey, Rejection>>),
    Store(Pin<Box<dyn Future<Output = Result<VerifiedKey, Rejection>> + Send + 'a>>),
}

impl<'a> Verification<'a> {
    fn ready_with(answer: Result<VerifiedKey, Rejection>) -> Self {
        Self(VerificationState::Ready(std::future::ready(answer)))
    }

    /// The answer, when memory alone gave it (a malformed token, a cache
    /// hit, an id the cache knows is unknown); otherwise the verification
    /// itself, to await. Nothing has been read from the store yet, so
    /// dropping what comes back in `Err` costs nothing.
    #[allow(
        clippy::result_large_err,
        reason = "the `Err` is the verification handed back, not an error"
    )]
    pub fn ready(self) -> Result<Result<VerifiedKey, Rejection>, Self> {
        match self.0 {
            VerificationState::Ready(answer) => Ok(answer.into_inner()),
            store => Err(Self(store)),
        }
    }
}

impl std::fmt::Debug for Verification<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            VerificationState::Ready(_) => "Verification(ready)",
            VerificationState::Store(_) => "Verification(store read)",
        })
    }
}

impl Future for Verification<'_> {
    type Output = Result<VerifiedKey, Rejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            VerificationState::Ready(answer) => Pin::new(answer).poll(cx),
            VerificationState::Store(read) => read.as_mut().poll(cx),
        }
    }
}
