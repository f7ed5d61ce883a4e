//! [`Keyward`]: the service a host calls. Validates, authorizes, decides,
//! then lets the store persist atomically.

use crate::actor::Actor;
use crate::audit::{AuditAction, AuditEvent, AuditQuery};
use crate::authorization::{self, Grant, Operation, Permit};
use crate::bearer::{BearerError, bearer_token};
use crate::cache::{CacheConfig, CacheStatus, Lookup, Slot, UnknownId, VerifyCache};
use crate::clock::{Clock, SystemClock, to_micros};
use crate::error::Error;
use crate::expiry::Lifetime;
use crate::feed::{Change, ChangeFeed};
use crate::format::{ParsedToken, TokenFormat, preview};
use crate::hooks::{Decision, IssueContext, IssueHook, OwnerPermissions};
use crate::invalidating::InvalidatingStore;
use crate::key::{
    KeyId, KeyRecord, Metadata, Owner, Role, RoleName, validate_metadata, validate_name,
};
use crate::kind::TokenKind;
use crate::lifecycle::Transition;
use crate::lifecycle::{KeyState, Status};
use crate::outcome::{Rejection, VerifiedKey};
use crate::permission::{MAX_GRANTS, PermissionSet, Requirement};
use crate::secret::{OsRandom, PlaintextToken, SecretSource, TokenDigest, TokenHasher};
use crate::snapshot::KeySnapshot;
use crate::store::{Cursor, KeyStore, ListQuery, MAX_PAGE_SIZE, Page};
use crate::usage::UsageRecorder;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// How many times issue and rotate draw a new key id after a collision.
const ID_ATTEMPTS: usize = 8;
/// How many times a state change or role edit re-reads after losing a
/// compare-and-set.
const CAS_ATTEMPTS: usize = 3;
/// Most roles a key may hold.
pub const MAX_ROLES_PER_KEY: usize = 32;

/// What to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    kind: String,
    owner: Owner,
    name: String,
    scopes: PermissionSet,
    roles: BTreeSet<RoleName>,
    inherits_owner: bool,
    expires: Option<Lifetime>,
    metadata: Metadata,
}

impl IssueRequest {
    /// A key of `kind` (its prefix) for `owner`, called `name`, with no
    /// permissions and the kind's default expiry.
    pub fn new(kind: &str, owner: Owner, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            owner,
            name: name.to_owned(),
            scopes: PermissionSet::new(),
            roles: BTreeSet::new(),
            inherits_owner: false,
            expires: None,
            metadata: Metadata::new(),
        }
    }

    /// Grants these permissions directly.
    pub fn scopes(mut self, scopes: PermissionSet) -> Self {
        self.scopes = scopes;
        self
    }

    /// Grants the permissions of these roles, as they are when verified.
    pub fn roles(mut self, roles: impl IntoIterator<Item = RoleName>) -> Self {
        self.roles = roles.into_iter().collect();
        self
    }

    /// The key acts with its owner's current permissions (from
    /// [`OwnerPermissions`]), capped by `ceiling` (and any roles). `None`
    /// means no cap beyond the owner's own.
    pub fn inherit_owner(mut self, ceiling: Option<PermissionSet>) -> Self {
        self.inherits_owner = true;
        self.scopes = ceiling.unwrap_or_else(PermissionSet::all);
        self
    }

    /// Expires after `lifetime`, which the kind's policy must allow.
    pub fn expires(mut self, lifetime: Lifetime) -> Self {
        self.expires = Some(lifetime);
        self
    }

    /// Attaches host data, returned on verify.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// A key as users see it: everything but the digest.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyDetails {
    /// Public id.
    pub id: KeyId,
    /// Kind prefix.
    pub kind: String,
    /// Owner.
    pub owner: Owner,
    /// Name.
    pub name: String,
    /// Masked token (`tak_bUiB…`).
    pub preview: String,
    /// Status now.
    pub status: Status,
    /// Direct grants (the ceiling, for an inheriting key).
    pub scopes: PermissionSet,
    /// Roles.
    pub roles: BTreeSet<RoleName>,
    /// Whether it inherits its owner's permissions.
    pub inherits_owner: bool,
    /// What it can do now (roles and owner permissions resolved).
    pub permissions: PermissionSet,
    /// Host data.
    pub metadata: Metadata,
    /// Issued at.
    pub created_at: DateTime<Utc>,
    /// Expires at.
    pub expires_at: Option<DateTime<Utc>>,
    /// Newest flushed use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revoked at.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who issued it.
    pub created_by: String,
    /// The key it replaced.
    pub rotated_from: Option<KeyId>,
    /// The key that replaces it.
    pub rotated_to: Option<KeyId>,
}

impl KeyDetails {
    fn new(record: KeyRecord, permissions: PermissionSet, now: DateTime<Utc>) -> Self {
        Self {
            status: record.status(now),
            id: record.id,
            kind: record.kind,
            owner: record.owner,
            name: record.name,
            preview: record.preview,
            scopes: record.scopes,
            roles: record.roles,
            inherits_owner: record.inherits_owner,
            permissions,
            metadata: record.metadata,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
            created_by: record.created_by,
            rotated_from: record.rotated_from,
            rotated_to: record.rotated_to,
        }
    }

    /// "never" or "5 days ago".
    pub fn last_used(&self, now: DateTime<Utc>) -> String {
        crate::key::time_ago(self.last_used_at, now)
    }
}

/// A new key: the token, shown once, and its details.
#[derive(Debug)]
pub struct IssuedKey {
    /// The plaintext token. Show it to the user now; it cannot be recovered.
    pub token: PlaintextToken,
    /// The stored key.
    pub key: KeyDetails,
}

/// Which keys to list.
#[derive(Debug, Clone)]
pub struct ListRequest {
    owner: Owner,
    name_contains: Option<String>,
    kind: Option<String>,
    statuses: Vec<Status>,
    limit: usize,
    after: Option<Cursor>,
}

impl ListRequest {
    /// The newest 50 keys of `owner`.
    pub fn new(owner: Owner) -> Self {
        Self {
            owner,
            name_contains: None,
            kind: None,
            statuses: Vec::new(),
            limit: 50,
            after: None,
        }
    }
    /// Only names containing `text` (case-insensitive, literal).
    pub fn name_contains(mut self, text: &str) -> Self {
        self.name_contains = Some(text.to_owned());
        self
    }
    /// Only this kind.
    pub fn kind(mut self, prefix: &str) -> Self {
        self.kind = Some(prefix.to_owned());
        self
    }
    /// Only these statuses.
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = Status>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }
    /// Page size (1..=1000).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    /// Continue after a cursor from a previous page.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }
}

/// Builds a [`Keyward`].
#[derive(Debug)]
pub struct KeywardBuilder {
    store: Arc<dyn KeyStore>,
    kinds: Vec<TokenKind>,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecretSource>,
    hook: Option<Arc<dyn IssueHook>>,
    resolver: Option<Arc<dyn OwnerPermissions>>,
    max_overlap: TimeDelta,
    cache: Option<CacheConfig>,
    feed: Option<Arc<dyn ChangeFeed>>,
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
            Some(cache) => Arc::new(InvalidatingStore::new(self.store, cache.clone())),
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
                store,
                cache,
                feed: self.feed,
                feed_task,
                format,
                hasher: self.hasher,
                clock: self.clock,
                rng: self.rng,
                hook: self.hook,
                resolver: self.resolver,
                usage: UsageRecorder::for_cache(cache_capacity),
                max_overlap: self.max_overlap,
            }),
        })
    }
}

/// The keyward service: issue, verify and manage tokens over a [`KeyStore`].
///
/// Cheap to clone (one `Arc`). See the crate docs for a complete example.
#[derive(Debug, Clone)]
pub struct Keyward {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn KeyStore>,
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
        &self.inner.store
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

    // ---------------------------------------------------------------- verify

    /// Verifies a token and checks `requirement`.
    ///
    /// Cheapest checks first: parse and checksum (no storage), lookup by key
    /// id, constant-time digest compare, revoked/disabled/expired, then
    /// permissions. Records the use in memory only; the store is never
    /// written here.
    ///
    /// When the answer is in memory (a malformed token, or a cache hit) the
    /// returned future is ready at once and small; only a store read is
    /// boxed.
    pub fn verify<'a>(
        &'a self,
        token: &'a str,
        requirement: &'a Requirement,
    ) -> impl Future<Output = Result<VerifiedKey, Rejection>> + Send + 'a {
        match self.verify_from_memory(token, requirement) {
            FromMemory::Answer(answer) => Verification::Ready(std::future::ready(answer)),
            FromMemory::Load(parsed, now, hash) => Verification::Store(Box::pin(
                self.verify_from_store(parsed, now, hash, requirement),
            )),
        }
    }

    /// Parse, then the cache: the whole answer, or what the store read needs.
    fn verify_from_memory<'a>(
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

    /// The store read, and the cache fill if there is a cache (`hash`).
    async fn verify_from_store(
        &self,
        parsed: ParsedToken<'_>,
        now: i64,
        hash: Option<u64>,
        requirement: &Requirement,
    ) -> Result<VerifiedKey, Rejection> {
        let key_id = KeyId::from_parsed(parsed.key_id());
        let (Some(cache), Some(hash)) = (&self.inner.cache, hash) else {
            return match self.load(&key_id, &parsed, now).await? {
                Some(snapshot) => self.check(snapshot, &parsed, now, requirement),
                None => Err(Rejection::NotFound),
            };
        };
        // Read the generation before the store, so a change that lands
        // while we read keeps the (possibly stale) result out of the cache.
        let generation = cache.generation();
        match self.load(&key_id, &parsed, now).await? {
            Some(snapshot) => {
                cache.fill(hash, Slot::Known(Arc::clone(&snapshot)), generation);
                self.check(snapshot, &parsed, now, requirement)
            }
            None => {
                let unknown = Slot::Unknown(Box::new(UnknownId {
                    key_id,
                    loaded_at: now,
                }));
                cache.fill(hash, unknown, generation);
                Err(Rejection::NotFound)
            }
        }
    }

    /// Reads a key and resolves its permissions if it is live. `None` if
    /// the store has no such key.
    async fn load(
        &self,
        key_id: &KeyId,
        parsed: &ParsedToken<'_>,
        now: i64,
    ) -> Result<Option<Arc<KeySnapshot>>, Rejection> {
        let record = self
            .inner
            .store
            .get_key(key_id)
            .await
            .map_err(Rejection::Unavailable)?;
        let Some(record) = record else {
            return Ok(None);
        };
        let live = record.state == KeyState::Active
            && record
                .expires_at
                .is_none_or(|at| at.timestamp_micros() > now);
        let kind_index = self.inner.format.kind_index(&record.kind);
        // The presented token is checked before anything else is read: a
        // wrong secret never costs a roles read or a call to the host's
        // directory, so its cost cannot tell a live key from a dead one.
        let presented = kind_index == Some(parsed.kind_index())
            && self.presented_matches(&record.digest, parsed);
        let resolved = live && presented;
        let permissions = if resolved {
            self.effective_permissions(&record)
                .await
                .map_err(Rejection::Unavailable)?
        } else {
            PermissionSet::new()
        };
        Ok(Some(Arc::new(KeySnapshot::new(
            record,
            kind_index,
            permissions,
            resolved,
            now,
        ))))
    }

    /// Whether the presented token is the snapshot's key: same kind, and its
    /// secret hashes to the digest (constant time).
    fn identifies(&self, snapshot: &KeySnapshot, parsed: &ParsedToken<'_>) -> bool {
        let same_kind = snapshot.kind_index == parsed.kind_index();
        self.presented_matches(&snapshot.digest, parsed) & same_kind
    }

    /// Whether the presented secret hashes to `digest` (constant time).
    fn presented_matches(&self, digest: &TokenDigest, parsed: &ParsedToken<'_>) -> bool {
        let presented = self
            .inner
            .hasher
            .digest_with(digest.algorithm(), parsed.secret());
        presented.is_some_and(|d| d.matches(digest))
    }

    /// The checks after lookup: digest, state, expiry, permissions; then
    /// the use is recorded in memory.
    fn check(
        &self,
        snapshot: Arc<KeySnapshot>,
        parsed: &ParsedToken<'_>,
        now: i64,
        requirement: &Requirement,
    ) -> Result<VerifiedKey, Rejection> {
        if !self.identifies(&snapshot, parsed) {
            return Err(Rejection::NotFound);
        }
        match snapshot.state {
            KeyState::Revoked => return Err(Rejection::Revoked),
            KeyState::Disabled => return Err(Rejection::Disabled),
            KeyState::Active if snapshot.expires_at <= now => {
                return Err(Rejection::Expired);
            }
            KeyState::Active => {}
        }
        if !requirement.accepts_kind(&snapshot.kind) {
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

    /// The effective permissions of one key.
    async fn effective_permissions(&self, record: &KeyRecord) -> Result<PermissionSet, Error> {
        let carried = self
            .carried_by(
                &record.owner,
                &record.scopes,
                &record.roles,
                record.inherits_owner,
            )
            .await?;
        Ok(carried.can_do(self.inner.format.kind(&record.kind)))
    }

    /// What a key with these parts carries (scopes ∪ its owner's roles that
    /// exist) and, if it inherits, what its owner holds now: the inputs of
    /// a grant decision and of what the key can do.
    async fn carried_by(
        &self,
        owner: &Owner,
        scopes: &PermissionSet,
        roles: &BTreeSet<RoleName>,
        inherits_owner: bool,
    ) -> Result<Carried, Error> {
        let found = self.owner_roles(owner, roles).await?;
        Ok(Carried {
            carries: carried(scopes, roles, &found),
            owner_now: self.owner_now(owner, inherits_owner).await?,
            inherits_owner,
            roles_found: found.len(),
        })
    }

    /// The effective permissions of each record, loading every owner's
    /// roles in one store call and each inheriting owner's permissions once.
    async fn resolve_permissions(
        &self,
        records: &[KeyRecord],
    ) -> Result<Vec<PermissionSet>, Error> {
        let mut wanted: BTreeMap<&Owner, BTreeSet<RoleName>> = BTreeMap::new();
        for record in records {
            wanted
                .entry(&record.owner)
                .or_default()
                .extend(record.roles.iter().cloned());
        }
        let mut roles = BTreeMap::new();
        for (owner, names) in wanted {
            roles.insert(owner.clone(), self.owner_roles(owner, &names).await?);
        }
        let mut owners = BTreeMap::new();
        for record in records.iter().filter(|r| r.inherits_owner) {
            if !owners.contains_key(&record.owner) {
                let held = self.owner_now(&record.owner, true).await?;
                owners.insert(record.owner.clone(), held.unwrap_or_default());
            }
        }
        let none = BTreeMap::new();
        Ok(records
            .iter()
            .map(|r| {
                let carries = carried(&r.scopes, &r.roles, roles.get(&r.owner).unwrap_or(&none));
                can_do(
                    self.inner.format.kind(&r.kind),
                    carries,
                    r.inherits_owner,
                    owners.get(&r.owner),
                )
            })
            .collect())
    }

    /// `owner`'s roles among `names` that exist (no store call for none).
    async fn owner_roles(
        &self,
        owner: &Owner,
        names: &BTreeSet<RoleName>,
    ) -> Result<BTreeMap<RoleName, PermissionSet>, Error> {
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let names: Vec<RoleName> = names.iter().cloned().collect();
        Ok(self
            .inner
            .store
            .get_roles(owner, &names)
            .await?
            .into_iter()
            .map(|role| (role.name, role.permissions))
            .collect())
    }

    /// What `owner` holds now, for an inheriting key (`None` otherwise).
    async fn owner_now(
        &self,
        owner: &Owner,
        inherits: bool,
    ) -> Result<Option<PermissionSet>, Error> {
        if !inherits {
            return Ok(None);
        }
        let resolver = self.inner.resolver.as_ref().ok_or_else(|| {
            Error::invalid(
                "owner_permissions",
                "inheriting keys need an OwnerPermissions resolver",
            )
        })?;
        resolver.permissions_of(owner).await.map(Some)
    }

    /// Details of each record, permissions resolved.
    async fn details(
        &self,
        records: Vec<KeyRecord>,
        now: DateTime<Utc>,
    ) -> Result<Vec<KeyDetails>, Error> {
        let permissions = self.resolve_permissions(&records).await?;
        Ok(records
            .into_iter()
            .zip(permissions)
            .map(|(record, permissions)| KeyDetails::new(record, permissions, now))
            .collect())
    }

    /// Asks the one decision point whether `actor` may perform `operation`;
    /// the permit is the management calls' only way to the store.
    fn decide(&self, actor: &Actor, operation: &Operation<'_>) -> Result<Permit<'_>, Error> {
        authorization::decide(
            actor,
            operation,
            &self.inner.format,
            self.inner.store.as_ref(),
        )
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
        match self.inner.store.get_key(id).await {
            Ok(Some(record)) if took_effect(&record) => Ok(record),
            _ => Err(error),
        }
    }

    /// The issue hook's answer for a request (issue or rotation).
    async fn ask_hook(&self, context: IssueContext<'_>) -> Result<(), Error> {
        let Some(hook) = &self.inner.hook else {
            return Ok(());
        };
        match hook.check(&context).await? {
            Decision::Allow => Ok(()),
            Decision::Refuse(reason) => Err(Error::RefusedByPolicy { reason }),
        }
    }

    // ----------------------------------------------------------------- issue

    /// Issues a key. The token is in the result and nowhere else.
    ///
    /// Checks, in order: kind; name, metadata and sizes; then the decision
    /// point (the actor may create keys of this kind for this owner, holds
    /// everything the key will carry, within the kind's catalog); that the
    /// roles exist; the expiry policy; the issue hook; then the live-key
    /// limit (atomically, in the store). Everything that can fail runs
    /// before the write. Every refusal is audited.
    pub async fn issue(&self, actor: &Actor, request: IssueRequest) -> Result<IssuedKey, Error> {
        let now = self.now();
        let mut event =
            AuditEvent::new(now, actor.label(), AuditAction::Issue).with_owner(&request.owner);
        if self.check_name(&request.name).is_ok() {
            event.key_name = Some(request.name.clone());
        }
        match self.try_issue(actor, request, now, &event).await {
            Ok(issued) => Ok(issued),
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    async fn try_issue(
        &self,
        actor: &Actor,
        mut request: IssueRequest,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<IssuedKey, Error> {
        let kind = self.kind(&request.kind)?;
        self.check_name(&request.name)?;
        self.check_metadata(&request.metadata)?;
        check_grant_size(&request.scopes, &request.roles)?;
        if request.inherits_owner && request.scopes == PermissionSet::all() {
            // "No cap beyond the owner's own" is still within the catalog.
            if let Some(catalog) = kind.permission_catalog() {
                request.scopes = catalog.clone();
            }
        }
        let carried = self
            .carried_by(
                &request.owner,
                &request.scopes,
                &request.roles,
                request.inherits_owner,
            )
            .await?;
        let permit = self.decide(
            actor,
            &Operation::Issue {
                kind,
                owner: &request.owner,
                grant: carried.grant(),
            },
        )?;
        if carried.roles_found != request.roles.len() {
            return Err(Error::invalid("roles", "a role does not exist"));
        }
        let expires_at = kind.expiry_policy().resolve(request.expires, now)?;
        self.ask_hook(IssueContext {
            actor,
            kind,
            owner: &request.owner,
            name: &request.name,
            scopes: &request.scopes,
            roles: &request.roles,
            inherits_owner: request.inherits_owner,
            grant: &carried.carries,
            expires_at,
            metadata: &request.metadata,
            replaces: None,
        })
        .await?;
        let permissions = carried.can_do(Some(kind));
        for _ in 0..ID_ATTEMPTS {
            let (token, mut record) = self.new_record(kind, actor, now)?;
            record.owner = request.owner.clone();
            record.name = request.name.clone();
            record.scopes = request.scopes.clone();
            record.roles = request.roles.clone();
            record.inherits_owner = request.inherits_owner;
            record.metadata = request.metadata.clone();
            record.expires_at = expires_at;
            let event = keyed(event.clone(), &record.id);
            let written = permit
                .store()
                .insert_key(&record, kind.limit(), now, &event)
                .await;
            let record = match written {
                Ok(()) => record,
                Err(Error::AlreadyExists) => continue,
                Err(e) => {
                    self.committed(e, &record.id, |r| r.digest.matches(&record.digest))
                        .await?
                }
            };
            let key = KeyDetails::new(record, permissions, now);
            return Ok(IssuedKey { token, key });
        }
        Err(Error::AlreadyExists)
    }

    /// A valid name that holds no token: a user who pastes their token into
    /// the name field would otherwise see it in every list and audit log.
    fn check_name(&self, name: &str) -> Result<(), Error> {
        validate_name(name)?;
        if self.holds_token(name) {
            return Err(Error::invalid(
                "name",
                "holds a token; never put a token in a key's name",
            ));
        }
        Ok(())
    }

    /// Valid metadata with no token in any key or value.
    fn check_metadata(&self, metadata: &Metadata) -> Result<(), Error> {
        validate_metadata(metadata)?;
        if metadata
            .iter()
            .any(|(k, v)| self.holds_token(k) || self.holds_token(v))
        {
            return Err(Error::invalid(
                "metadata",
                "holds a token; never store a token in metadata",
            ));
        }
        Ok(())
    }

    /// Whether `text` hides a token of the format anywhere (glued to other
    /// words, with invisible characters inside, its prefix in capitals).
    fn holds_token(&self, text: &str) -> bool {
        self.inner.format.contains_token(text)
    }

    /// A fresh token and a record holding its digest, owned by nobody yet.
    fn new_record(
        &self,
        kind: &TokenKind,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(PlaintextToken, KeyRecord), Error> {
        let token = TokenFormat::generate(kind, self.inner.rng.as_ref())?;
        let parsed = self
            .inner
            .format
            .parse(token.expose_secret())
            .map_err(|_| Error::invalid("token", "generated token failed to parse"))?;
        let id = KeyId::from_parsed(parsed.key_id());
        let record = KeyRecord {
            preview: preview(kind, &id),
            digest: self.inner.hasher.digest(parsed.secret()),
            id,
            kind: kind.prefix().to_owned(),
            owner: Owner::new("pending")?,
            name: String::new(),
            scopes: PermissionSet::new(),
            roles: BTreeSet::new(),
            inherits_owner: false,
            metadata: Metadata::new(),
            state: KeyState::Active,
            created_at: now,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            created_by: actor.label(),
            rotated_from: None,
            rotated_to: None,
        };
        Ok((token, record))
    }

    // ---------------------------------------------------------------- rotate

    /// Issues a successor with the same owner, kind, name, scopes, roles and
    /// metadata, and schedules this key to expire `overlap` from now, so both
    /// verify during the handover.
    ///
    /// Rotation hands out a new token, so it is decided as issuing one: the
    /// actor must be allowed to create keys of this kind for the owner, hold
    /// everything the successor will carry (its scopes and its roles'
    /// permissions now; for an inheriting key, its ceiling), within the
    /// kind's catalog, and the issue hook is asked
    /// ([`IssueContext::replaces`] names this key). A token actor also needs
    /// the permission to revoke, since the predecessor is taken away.
    ///
    /// The successor lives as long as the original did (`expires_at −
    /// created_at`; never-expiring stays never), but never past the latest
    /// expiry the kind's policy allows now. Rotation does not count against
    /// the live-key limit: the successor takes the predecessor's place. Only
    /// an active key that was not already rotated can be rotated, and only
    /// once the key it replaced has stopped working (its overlap ended, or
    /// it was revoked): one handover at a time, so rotation can never grow
    /// an owner's working keys past the limit plus one per key.
    pub async fn rotate(
        &self,
        actor: &Actor,
        id: &KeyId,
        overlap: TimeDelta,
    ) -> Result<IssuedKey, Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::Rotate);
        let record = match self.inner.store.get_key(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(self.audit_refusal(keyed(event, id), Error::NotFound).await),
            Err(e) => return Err(e),
        };
        let event = event.with_key(&record.id, &record.name, &record.owner);
        match self.try_rotate(actor, &record, overlap, now, &event).await {
            Ok(issued) => Ok(issued),
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    async fn try_rotate(
        &self,
        actor: &Actor,
        old: &KeyRecord,
        overlap: TimeDelta,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<IssuedKey, Error> {
        let kind = self.kind(&old.kind)?;
        let carried = self
            .carried_by(&old.owner, &old.scopes, &old.roles, old.inherits_owner)
            .await?;
        let permit = self.decide(
            actor,
            &Operation::Rotate {
                kind,
                owner: &old.owner,
                grant: carried.grant(),
            },
        )?;
        let status = old.status(now);
        if status != Status::Active {
            return Err(Error::InvalidTransition {
                from: status,
                action: "rotate",
            });
        }
        if old.rotated_to.is_some() {
            return Err(Error::invalid(
                "key",
                "already rotated; rotate its successor",
            ));
        }
        // One handover at a time: while the key this one replaced still works
        // (or can be re-enabled), another rotation would add yet another
        // working key, and a chain of rotations would outgrow the limit.
        if let Some(previous) = &old.rotated_from
            && let Some(previous) = permit.store().get_key(previous).await?
            && previous.is_live(now)
        {
            return Err(Error::invalid(
                "key",
                "the previous rotation's overlap has not ended; revoke the replaced key first",
            ));
        }
        if overlap < TimeDelta::zero() || overlap > self.inner.max_overlap {
            return Err(Error::invalid(
                "overlap",
                "must be between zero and the configured maximum",
            ));
        }
        let handover_ends = now
            .checked_add_signed(overlap)
            .ok_or_else(|| Error::invalid("overlap", "out of the representable range"))?;
        let old_expires_at = old
            .expires_at
            .map_or(handover_ends, |at| at.min(handover_ends));
        let expires_at = successor_expiry(kind, old, now)?;
        self.ask_hook(IssueContext {
            actor,
            kind,
            owner: &old.owner,
            name: &old.name,
            scopes: &old.scopes,
            roles: &old.roles,
            inherits_owner: old.inherits_owner,
            grant: &carried.carries,
            expires_at,
            metadata: &old.metadata,
            replaces: Some(&old.id),
        })
        .await?;
        let permissions = carried.can_do(Some(kind));
        for _ in 0..ID_ATTEMPTS {
            let (token, mut new) = self.new_record(kind, actor, now)?;
            new.owner = old.owner.clone();
            new.name = old.name.clone();
            new.scopes = old.scopes.clone();
            new.roles = old.roles.clone();
            new.inherits_owner = old.inherits_owner;
            new.metadata = old.metadata.clone();
            new.expires_at = expires_at;
            new.rotated_from = Some(old.id.clone());
            let event = event.clone().with_detail(format!("successor {}", new.id));
            let written = permit
                .store()
                .rotate_key(&old.id, KeyState::Active, old_expires_at, &new, &event)
                .await;
            match written {
                Ok(()) => {}
                Err(Error::AlreadyExists) => continue,
                Err(e) => {
                    self.committed(e, &old.id, |r| r.rotated_to.as_ref() == Some(&new.id))
                        .await?;
                }
            }
            let key = KeyDetails::new(new, permissions, now);
            return Ok(IssuedKey { token, key });
        }
        Err(Error::AlreadyExists)
    }

    // ---------------------------------------------------------- transitions

    /// Revokes a key: final, effective on the next verify.
    ///
    /// One unconditional write in the store, so a revoke never loses to a
    /// racing disable or enable. The details returned carry no permissions
    /// (a revoked key can do nothing), and no role or owner lookup runs, so
    /// neither can keep a revoke from taking effect.
    pub async fn revoke(&self, actor: &Actor, id: &KeyId) -> Result<KeyDetails, Error> {
        self.transition(actor, id, Transition::Revoke).await
    }

    /// Disables a key until [`Keyward::enable`]; the same token then works
    /// again. Needs the permission to revoke. The details returned carry no
    /// permissions (a disabled key can do nothing).
    pub async fn disable(&self, actor: &Actor, id: &KeyId) -> Result<KeyDetails, Error> {
        self.transition(actor, id, Transition::Disable).await
    }

    /// Re-enables a disabled key. A revoked key can never be enabled. Giving
    /// access back is granting it again: it needs its own permission
    /// ([`crate::Manages::enable`]) and, as for issuing, that the actor holds
    /// what the key carries.
    pub async fn enable(&self, actor: &Actor, id: &KeyId) -> Result<KeyDetails, Error> {
        self.transition(actor, id, Transition::Enable).await
    }

    async fn transition(
        &self,
        actor: &Actor,
        id: &KeyId,
        transition: Transition,
    ) -> Result<KeyDetails, Error> {
        let action = match transition {
            Transition::Revoke => AuditAction::Revoke,
            Transition::Disable => AuditAction::Disable,
            Transition::Enable => AuditAction::Enable,
        };
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), action);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let record = match self.inner.store.get_key(id).await {
                Ok(Some(record)) => record,
                Ok(None) => {
                    return Err(self.audit_refusal(keyed(event, id), Error::NotFound).await);
                }
                Err(e) => return Err(e),
            };
            let event = event
                .clone()
                .with_key(&record.id, &record.name, &record.owner);
            match self
                .try_transition(actor, record, transition, now, &event)
                .await
            {
                Ok(details) => return Ok(details),
                // Lost a race: re-read and decide again from the new state.
                Err(Error::Conflict { .. }) if attempt < CAS_ATTEMPTS => continue,
                Err(e) => return Err(self.audit_refusal(event, e).await),
            }
        }
    }

    async fn try_transition(
        &self,
        actor: &Actor,
        mut record: KeyRecord,
        transition: Transition,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<KeyDetails, Error> {
        let kind = self.kind(&record.kind)?;
        let owner = &record.owner;
        // Taking access away reads nothing more; giving it back is granting
        // it again, so it is decided on what the key carries now.
        let carried = match transition {
            Transition::Enable => Some(
                self.carried_by(owner, &record.scopes, &record.roles, record.inherits_owner)
                    .await?,
            ),
            Transition::Revoke | Transition::Disable => None,
        };
        let operation = match &carried {
            Some(carried) => Operation::Enable {
                kind,
                owner,
                grant: carried.grant(),
            },
            None => Operation::Revoke { kind, owner },
        };
        let permit = self.decide(actor, &operation)?;
        let to = transition.target(record.status(now))?;
        if to == KeyState::Revoked {
            let revoked = match permit.store().revoke_key(&record.id, now, event).await {
                Ok(revoked) => revoked,
                Err(e) => {
                    record = self
                        .committed(e, &record.id, |r| r.state == KeyState::Revoked)
                        .await?;
                    true
                }
            };
            if !revoked {
                // Revoked by another call between our read and our write.
                return Err(Error::InvalidTransition {
                    from: Status::Revoked,
                    action: transition.as_str(),
                });
            }
            record.state = KeyState::Revoked;
            record.revoked_at = record.revoked_at.or(Some(now));
            return Ok(KeyDetails::new(record, PermissionSet::new(), now));
        }
        // What an enabled key can do was resolved before the write, so the
        // call cannot fail after it committed.
        let permissions = match carried {
            Some(carried) if to == KeyState::Active => carried.can_do(Some(kind)),
            _ => PermissionSet::new(),
        };
        let written = permit
            .store()
            .set_state(&record.id, record.state, to, now, event)
            .await;
        if let Err(e) = written {
            self.committed(e, &record.id, |r| r.state == to).await?;
        }
        record.state = to;
        Ok(KeyDetails::new(record, permissions, now))
    }

    // ---------------------------------------------------------------- reads

    /// One key's details.
    pub async fn get(&self, actor: &Actor, id: &KeyId) -> Result<KeyDetails, Error> {
        let now = self.now();
        let event = keyed(AuditEvent::new(now, actor.label(), AuditAction::View), id);
        let record = match self.inner.store.get_key(id).await? {
            Some(record) => record,
            None => return Err(self.audit_refusal(event, Error::NotFound).await),
        };
        let allowed = self.kind(&record.kind).and_then(|kind| {
            self.decide(
                actor,
                &Operation::View {
                    kind: Some(kind),
                    owner: &record.owner,
                },
            )
        });
        if let Err(e) = allowed {
            let event = event.with_key(&record.id, &record.name, &record.owner);
            return Err(self.audit_refusal(event, e).await);
        }
        let mut details = self.details(vec![record], now).await?;
        details.pop().ok_or(Error::NotFound)
    }

    /// One page of an owner's keys, newest first.
    ///
    /// A token actor must name the kind it lists (one it may view).
    pub async fn list(
        &self,
        actor: &Actor,
        request: ListRequest,
    ) -> Result<Page<KeyDetails>, Error> {
        let now = self.now();
        let event =
            AuditEvent::new(now, actor.label(), AuditAction::View).with_owner(&request.owner);
        let permit = match self.check_list(actor, &request) {
            Ok(permit) => permit,
            Err(e) => return Err(self.audit_refusal(event, e).await),
        };
        let mut query = ListQuery::new(request.owner, now, request.limit);
        query.name_contains = request.name_contains;
        query.kind = request.kind;
        query.statuses = request.statuses;
        query.after = request.after;
        let page = permit.store().list_keys(&query).await?;
        Ok(Page {
            items: self.details(page.items, now).await?,
            next: page.next,
        })
    }

    fn check_list(&self, actor: &Actor, request: &ListRequest) -> Result<Permit<'_>, Error> {
        check_page_size(request.limit)?;
        let filter_len = request.name_contains.as_ref().map_or(0, String::len);
        if filter_len > crate::key::MAX_NAME_LEN {
            return Err(Error::invalid("name filter", "at most 16384 bytes"));
        }
        let kind = request.kind.as_deref().map(|k| self.kind(k)).transpose()?;
        self.decide(
            actor,
            &Operation::View {
                kind,
                owner: &request.owner,
            },
        )
    }

    /// Live keys of every owner expiring within `within` from now, soonest
    /// first: for reminder e-mails. Operators only; a refusal is audited.
    /// A window past the end of representable time means "ever".
    pub async fn expiring_keys(
        &self,
        actor: &Actor,
        within: TimeDelta,
        limit: usize,
    ) -> Result<Vec<KeyDetails>, Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::View)
            .with_detail("keys expiring, every owner".to_owned());
        let decided = if within < TimeDelta::zero() {
            Err(Error::invalid("within", "must not be negative"))
        } else {
            self.decide(actor, &Operation::ViewAllOwners)
        };
        let permit = match decided {
            Ok(permit) => permit,
            Err(e) => return Err(self.audit_refusal(event, e).await),
        };
        let before = now
            .checked_add_signed(within)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let records = permit
            .store()
            .keys_expiring(now, before, limit.min(MAX_PAGE_SIZE))
            .await?;
        self.details(records, now).await
    }

    // ---------------------------------------------------------------- roles

    /// Creates or replaces `role` in its owner's namespace. Every key of
    /// that owner holding it changes with it.
    ///
    /// Editing a role is granting: the actor must manage the role's owner
    /// and hold both the permissions the role grants now (if it exists) and
    /// those it will grant. Tokens never edit roles. The store writes it
    /// only if it is still as read (compare-and-set), so a racing edit
    /// cannot slip permissions past the check.
    pub async fn put_role(&self, actor: &Actor, role: Role) -> Result<(), Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::PutRole)
            .with_role(&role.name)
            .with_owner(&role.owner);
        match self.try_put_role(actor, &role, &event).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    async fn try_put_role(
        &self,
        actor: &Actor,
        role: &Role,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        if role.permissions.len() > MAX_GRANTS {
            return Err(Error::invalid(
                "role",
                format!("grants at most {MAX_GRANTS} permissions"),
            ));
        }
        let names = BTreeSet::from([role.name.clone()]);
        for _ in 0..CAS_ATTEMPTS {
            let old = self.owner_roles(&role.owner, &names).await?;
            let old = old.get(&role.name);
            let permit = self.decide(
                actor,
                &Operation::PutRole {
                    owner: &role.owner,
                    old,
                    new: &role.permissions,
                },
            )?;
            match permit.store().put_role(role, old, event).await {
                Err(Error::RoleChanged) => continue,
                done => return done,
            }
        }
        Err(Error::RoleChanged)
    }

    /// Deletes `owner`'s role `name`; keys that held it lose its permissions.
    /// The actor must manage `owner` and hold what the role grants.
    pub async fn delete_role(
        &self,
        actor: &Actor,
        owner: &Owner,
        name: &RoleName,
    ) -> Result<(), Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::DeleteRole)
            .with_role(name)
            .with_owner(owner);
        match self.try_delete_role(actor, owner, name, &event).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    async fn try_delete_role(
        &self,
        actor: &Actor,
        owner: &Owner,
        name: &RoleName,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let names = BTreeSet::from([name.clone()]);
        for _ in 0..CAS_ATTEMPTS {
            let old = self.owner_roles(owner, &names).await?;
            let Some(old) = old.get(name) else {
                // Tell only those who may see the owner's roles that it is absent.
                self.decide(actor, &Operation::ViewRoles { owner })?;
                return Err(Error::NotFound);
            };
            let permit = self.decide(actor, &Operation::DeleteRole { owner, old })?;
            match permit.store().delete_role(owner, name, old, event).await {
                Err(Error::RoleChanged) => continue,
                done => return done,
            }
        }
        Err(Error::RoleChanged)
    }

    /// `owner`'s roles with these names, at most 1000 (operators, and users
    /// who manage `owner`; a refusal is audited).
    pub async fn roles(
        &self,
        actor: &Actor,
        owner: &Owner,
        names: &[RoleName],
    ) -> Result<Vec<Role>, Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::View).with_owner(owner);
        let decided = if names.len() > MAX_PAGE_SIZE {
            Err(Error::invalid("roles", "name at most 1000 roles"))
        } else {
            self.decide(actor, &Operation::ViewRoles { owner })
        };
        match decided {
            Ok(permit) => permit.store().get_roles(owner, names).await,
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    // ---------------------------------------------------------------- audit

    /// Audit events, newest first. Operators read everything; a user reads
    /// the events of an owner whose keys they manage (the query must name
    /// it). A refusal is itself audited.
    pub async fn audit_events(
        &self,
        actor: &Actor,
        query: AuditQuery,
    ) -> Result<Vec<crate::audit::AuditEvent>, Error> {
        let now = self.now();
        let mut event = AuditEvent::new(now, actor.label(), AuditAction::View)
            .with_detail("audit events".to_owned());
        event.owner = query.owner.clone();
        let decided = check_page_size(query.limit).and_then(|()| {
            self.decide(
                actor,
                &Operation::ReadAudit {
                    owner: query.owner.as_ref(),
                },
            )
        });
        match decided {
            Ok(permit) => permit.store().list_audit(&query).await,
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    // ---------------------------------------------------------------- cache

    /// Tells keyward that an owner's own permissions changed in the host,
    /// so keys inheriting them are resolved afresh: drops them from this
    /// service's cache and, with a change feed, every other process's.
    ///
    /// Call it whenever [`OwnerPermissions::permissions_of`] would now answer
    /// differently. Without a cache and a feed it does nothing.
    pub async fn owner_permissions_changed(&self, owner: &Owner) -> Result<(), Error> {
        let change = Change::Owner(owner.clone());
        if let Some(cache) = &self.inner.cache {
            cache.invalidate(&change);
        }
        match &self.inner.feed {
            Some(feed) => feed.publish(&change).await,
            None => Ok(()),
        }
    }

    /// The verification cache's state, if the service has one: entries,
    /// whether the change feed is fresh, and the worst-case staleness now.
    pub fn cache_status(&self) -> Option<CacheStatus> {
        self.inner.cache.as_ref().map(VerifyCache::status)
    }

    // ---------------------------------------------------------------- usage

    /// Writes the recorded uses to the store in one forward-only batch.
    /// Returns how many keys were written; on error nothing is lost.
    pub async fn flush_usage(&self) -> Result<usize, Error> {
        self.inner.usage.flush(self.inner.store.as_ref()).await
    }

    /// Keys with a use recorded but not yet flushed.
    pub fn pending_usage(&self) -> usize {
        self.inner.usage.pending()
    }

    /// Spawns a task on the current Tokio runtime that flushes usage every
    /// `every` (60 s is a good default). Call [`UsageFlusher::shutdown`] on
    /// shutdown to write the rest; dropping the handle also stops the task
    /// after one last flush.
    pub fn spawn_usage_flusher(&self, every: Duration) -> UsageFlusher {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let keyward = self.clone();
        let task = tokio::spawn(async move {
            // Until stopped (or the handle dropped), flush on every tick. A
            // failed flush keeps its batch; the next tick retries it.
            while tokio::time::timeout(every, &mut stopped).await.is_err() {
                drop(keyward.flush_usage().await);
            }
            drop(keyward.flush_usage().await);
        });
        UsageFlusher {
            stop: Some(stop),
            task,
            keyward: self.clone(),
        }
    }

    /// Appends a refused event (unless the store itself failed) and returns the error.
    async fn audit_refusal(&self, event: AuditEvent, error: Error) -> Error {
        if matches!(error, Error::Backend { .. }) {
            return error;
        }
        let event = event.refused(error.to_string());
        // The refusal stands even if recording it fails.
        drop(self.inner.store.append_audit(&event).await);
        error
    }
}

/// What [`Keyward::carried_by`] resolved for one key.
struct Carried {
    /// Scopes ∪ the permissions of its roles that exist.
    carries: PermissionSet,
    /// What its owner holds now, for an inheriting key.
    owner_now: Option<PermissionSet>,
    inherits_owner: bool,
    /// How many of its roles exist.
    roles_found: usize,
}

impl Carried {
    fn grant(&self) -> Grant<'_> {
        Grant {
            carries: &self.carries,
            owner_now: self.owner_now.as_ref(),
        }
    }

    fn can_do(self, kind: Option<&TokenKind>) -> PermissionSet {
        can_do(
            kind,
            self.carries,
            self.inherits_owner,
            self.owner_now.as_ref(),
        )
    }
}

/// scopes ∪ the permissions of the named roles that exist.
fn carried(
    scopes: &PermissionSet,
    names: &BTreeSet<RoleName>,
    roles: &BTreeMap<RoleName, PermissionSet>,
) -> PermissionSet {
    let mut grant = scopes.clone();
    for permissions in names.iter().filter_map(|name| roles.get(name)) {
        grant.extend(permissions);
    }
    grant
}

/// What a key carrying `carries` can do: for an inheriting key only what
/// its owner holds now (nothing, if that is unknown), and never beyond its
/// kind's catalog.
fn can_do(
    kind: Option<&TokenKind>,
    carries: PermissionSet,
    inherits_owner: bool,
    owner_now: Option<&PermissionSet>,
) -> PermissionSet {
    let effective = match (inherits_owner, owner_now) {
        (false, _) => carries,
        (true, Some(held)) => held.intersection(&carries),
        (true, None) => PermissionSet::new(),
    };
    match kind {
        Some(kind) => kind.bound(effective),
        None => effective,
    }
}

/// A rotation's successor lives as long as its predecessor did, but never
/// past the latest expiry the kind's policy allows now.
fn successor_expiry(
    kind: &TokenKind,
    old: &KeyRecord,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let wanted = match old.expires_at {
        None => None,
        Some(at) => Some(
            now.checked_add_signed(at - old.created_at)
                .ok_or_else(|| Error::invalid("expiry", "out of the representable range"))?,
        ),
    };
    Ok(match (wanted, kind.expiry_policy().latest_expiry(now)?) {
        (wanted, None) => wanted,
        (None, Some(latest)) => Some(latest),
        (Some(wanted), Some(latest)) => Some(wanted.min(latest)),
    })
}

/// Sizes are capped before any work is done on them.
fn check_grant_size(scopes: &PermissionSet, roles: &BTreeSet<RoleName>) -> Result<(), Error> {
    if scopes.len() > MAX_GRANTS {
        return Err(Error::invalid(
            "scopes",
            format!("at most {MAX_GRANTS} per key"),
        ));
    }
    if roles.len() > MAX_ROLES_PER_KEY {
        return Err(Error::invalid(
            "roles",
            format!("at most {MAX_ROLES_PER_KEY} per key"),
        ));
    }
    Ok(())
}

fn check_page_size(limit: usize) -> Result<(), Error> {
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(Error::invalid("limit", "must be 1..=1000"));
    }
    Ok(())
}

fn keyed(mut event: AuditEvent, id: &KeyId) -> AuditEvent {
    event.key_id = Some(id.clone());
    event
}

/// What memory alone could tell about a token.
enum FromMemory<'a> {
    /// The whole answer.
    Answer(Result<VerifiedKey, Rejection>),
    /// The store must be read: the parsed token, the time (micros), and the cache
    /// hash when there is a cache.
    Load(ParsedToken<'a>, i64, Option<u64>),
}

/// The future [`Keyward::verify`] returns.
enum Verification<'a> {
    Ready(std::future::Ready<Result<VerifiedKey, Rejection>>),
    Store(Pin<Box<dyn Future<Output = Result<VerifiedKey, Rejection>> + Send + 'a>>),
}

impl Future for Verification<'_> {
    type Output = Result<VerifiedKey, Rejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Ready(answer) => Pin::new(answer).poll(cx),
            Self::Store(read) => read.as_mut().poll(cx),
        }
    }
}

/// Aborts the change feed's listener when the service goes away.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The background usage flusher started by [`Keyward::spawn_usage_flusher`].
#[derive(Debug)]
pub struct UsageFlusher {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    keyward: Keyward,
}

impl UsageFlusher {
    /// Stops the task and flushes what is left, reporting any error.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        (&mut self.task)
            .await
            .map_err(|e| Error::backend("usage-flusher", e))?;
        self.keyward.flush_usage().await.map(drop)
    }
}
