//! For adapter authors: the storage contract every adapter implements
//! ([`KeyStore`]), the records it holds, the queries and pages it answers,
//! and the shared SQL pieces ([`sql`]).

mod prune;
pub mod sql;
mod wrap;

pub use crate::key::{KeyAttributes, KeyRecord, Metadata, UsageRecord, VerifyRecord};
pub use crate::lifecycle::KeyState;
pub use async_trait::async_trait;
pub use prune::{DEFAULT_PRUNE_BATCH, PruneReport, PruneRequest};
pub use wrap::{StoreWrapper, Wrapped};

use crate::audit::{AuditEvent, AuditQuery};
use crate::error::Error;
use crate::key::{KeyId, Owner, Role, RoleName};
use crate::lifecycle::Status;
use crate::permission::PermissionSet;
use chrono::{DateTime, Utc};
use std::fmt::Debug;

/// Most items a list or audit page may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Most rows one [`KeyStore::prune_keys`] or [`KeyStore::prune_audit`]
/// call may delete: one batch, so a large purge never holds a long lock.
pub const MAX_PRUNE_BATCH: usize = 10_000;

/// Where keys, roles and audit events live.
///
/// A minimal contract for transactional backends, not a convenience API: the
/// service ([`crate::Keyward`]) validates input, authorizes the actor and
/// decides lifecycle transitions; the store persists atomically. There are no
/// default method bodies. Held as `Arc<dyn KeyStore>`; implemented for
/// `Arc<T>` so wrappers forward every method. To wrap a store (count,
/// log, fail on purpose), implement [`StoreWrapper`] and use [`Wrapped`]:
/// it forwards every method you do not override.
///
/// # Contract
///
/// Every adapter must keep these invariants; the conformance suite
/// (`keyward-core` feature `testkit`) checks each one.
///
/// 1. **Insert is not update.** [`insert_key`](KeyStore::insert_key) fails with
///    [`Error::AlreadyExists`] when the id exists, detected by the backend
///    (unique constraint), never by reading first.
/// 2. **The live-key limit is atomic.** With `limit = Some(n)`, the insert
///    fails with [`Error::LimitReached`] when the owner already has `n` live
///    keys (not revoked, `expires_at` null or after `now`) of that kind. Twenty
///    concurrent inserts against a limit of 3 leave exactly 3.
/// 3. **State changes are compare-and-set.** [`set_state`](KeyStore::set_state)
///    changes the state only if it is still `from`, else [`Error::Conflict`]
///    with the actual state; [`Error::NotFound`] for an unknown id. A revoked
///    key never changes state again: `from = Revoked` is always a conflict.
///    `set_state` is for disable and enable; revocation goes through
///    [`revoke_key`](KeyStore::revoke_key).
/// 4. **Mutations and their audit event are one write.** Every mutating method
///    appends its `event` only if the mutation took effect, atomically with it.
/// 5. **Rotation is atomic.** [`rotate_key`](KeyStore::rotate_key) inserts the
///    successor (no limit check: it takes the predecessor's place), sets the
///    predecessor's `rotated_to` and lowers its `expires_at` to the given time
///    (never raises it), all or nothing. It fails with [`Error::NotFound`] for
///    an unknown predecessor, and with [`Error::Conflict`] if the predecessor
///    is not in the expected state or was already rotated.
/// 6. **Usage is forward-only.** [`record_usage`](KeyStore::record_usage) sets
///    `last_used_at` only where it is null or older, ignores unknown ids, and
///    writes the whole batch in one statement or transaction. If a batch names
///    a key twice, the newest time wins.
/// 7. **Listing is stable.** [`list_keys`](KeyStore::list_keys) returns one
///    owner's keys (every owner's, when `query.owner` is `None`) newest
///    first (`created_at` desc, then id desc by byte order), filtered by a
///    case-insensitive substring of the name (matched literally: `%` and `_`
///    are not wildcards), kind, statuses at `query.now`, and
///    `last_used_before` (a key never used counts as used before any time);
///    the cursor continues strictly after the last item, so keys inserted
///    while paging never cause duplicates or skips.
/// 8. **Timestamps round-trip** at microsecond precision, and every string and
///    map (names, metadata) round-trips unchanged. The verify read
///    ([`verify_key`](KeyStore::verify_key)) returns the same key as
///    [`get_key`](KeyStore::get_key), field for field, at every point of its
///    life (the suite checks it on every read), and `None` for an unknown id.
/// 9. **Identifiers compare byte for byte.** Key ids, owners, kinds and role
///    names are case-sensitive (no `NOCASE` or locale collation); "name
///    order" and "id order" are byte order.
/// 10. **Every query is parameterised.** No input is ever spliced into SQL.
/// 11. **Revocation always wins.** [`revoke_key`](KeyStore::revoke_key) is one
///     unconditional write (`UPDATE … SET state = 'revoked', revoked_at = ?
///     WHERE id = ? AND state <> 'revoked'`), not a compare-and-set: it
///     revokes an active or a disabled key whatever a concurrent disable or
///     enable does, and never fails with [`Error::Conflict`]. It returns
///     `Ok(true)` when this call revoked the key (its event appended
///     atomically with it), `Ok(false)` when the key was already revoked
///     (nothing written, no event), and [`Error::NotFound`] for an unknown id.
///     Once revoked, a key stays revoked (invariant 3).
/// 12. **Roles are namespaced by owner.** A role is identified by
///     `(owner, name)`: two owners may each have a role of the same name,
///     and reading, replacing or deleting one never touches the other.
///     [`get_roles`](KeyStore::get_roles) and
///     [`list_roles`](KeyStore::list_roles) return only the named owner's
///     roles.
/// 13. **Role edits are compare-and-set.** [`put_role`](KeyStore::put_role)
///     with `replaces = None` creates the role and fails with
///     [`Error::RoleChanged`] if it exists; with `replaces = Some(p)` it
///     replaces the role only if its stored permissions equal `p` exactly,
///     else (absent or different) [`Error::RoleChanged`].
///     [`delete_role`](KeyStore::delete_role) deletes only if the stored
///     permissions equal `expected` ([`Error::NotFound`] if absent,
///     [`Error::RoleChanged`] if different). A lost compare-and-set writes
///     nothing and appends no event.
/// 14. **Pruning deletes only dead keys, one bounded batch at a time.**
///     [`prune_keys`](KeyStore::prune_keys) deletes at most `limit` keys
///     (1..=[`MAX_PRUNE_BATCH`]) that [`PruneKeys::selects`] at `now`, and
///     returns their ids: with [`PruneKeys::RevokedBefore`], revoked keys
///     with `revoked_at` before the cutoff; with
///     [`PruneKeys::ExpiredBefore`], *active* keys whose `expires_at` lies
///     before the cutoff and not after `now`. Never a live key (active or
///     disabled, unexpired), never a disabled key (it may be re-enabled),
///     even an expired one. Each call is one statement or transaction, so
///     repeated calls drain the selection and then return an empty list. A
///     pruned key is gone: [`get_key`](KeyStore::get_key) and
///     [`verify_key`](KeyStore::verify_key) answer `None`; a key whose
///     `rotated_from` or `rotated_to` names it keeps the id, as history
///     (the schemas have no foreign keys between keys, so nothing cascades).
///     Its audit events stay: they are pruned by age.
/// 15. **Audit retention is bounded too.** [`prune_audit`](KeyStore::prune_audit)
///     deletes at most `limit` events with `at` before the cutoff, oldest
///     first, and returns how many it deleted; newer events stay, whatever
///     the order they were appended in.
/// 16. **Audit queries filter and stay newest first.**
///     [`list_audit`](KeyStore::list_audit) returns the events that
///     [`AuditQuery::matches`] (owner, key, action, `since` inclusive,
///     `until` exclusive), latest appended first, at most `limit`.
/// 17. **An owner's roles list in name order, paged by name.**
///     [`list_roles`](KeyStore::list_roles) returns the roles of one owner
///     only, in name order (byte order), those named strictly after `after`
///     when it is given (whether or not a role of that name exists), at
///     most `limit` (1..=[`MAX_PAGE_SIZE`], else [`Error::InvalidInput`]).
///     Continuing after the last name of each page visits every role that
///     exists throughout, once, with no duplicates or skips, even while
///     other roles are created or deleted; a page shorter than `limit` is
///     the last.
/// 18. **A verify read answered at once is the verify read.** When
///     [`verify_key_now`](KeyStore::verify_key_now) answers `Some`, it is
///     what [`verify_key`](KeyStore::verify_key) returns for the same id at
///     the same moment: the same key in the same state, or `None` for an
///     id the store does not have.
#[async_trait::async_trait]
pub trait KeyStore: Debug + Send + Sync + 'static {
    /// Inserts a new key and appends `event`, enforcing `limit` atomically.
    async fn insert_key(
        &self,
        key: &KeyRecord,
        limit: Option<u32>,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error>;

    /// The key with this id.
    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error>;

    /// The key with this id as verification reads it: the same key as
    /// [`KeyStore::get_key`], only the columns a verify needs. The one read
    /// on the verify path, so worth its own narrow query.
    async fn verify_key(&self, id: &KeyId) -> Result<Option<VerifyRecord>, Error>;

    /// [`KeyStore::verify_key`] answered at once, for a store whose read
    /// never waits on anything but its own memory or a local file (the
    /// in-memory and SQLite stores): `Some` with exactly what `verify_key`
    /// would return, or `None` (the default) to have verify await
    /// `verify_key` instead.
    ///
    /// It lets a verify that misses the cache, or runs without one, answer
    /// without an executor and without boxing a future. A store that
    /// implements it must answer the same as `verify_key` at the same
    /// moment (invariant 18, checked by the conformance suite).
    fn verify_key_now(&self, id: &KeyId) -> Option<Result<Option<VerifyRecord>, Error>> {
        let _ = id;
        None
    }

    /// Compare-and-set of the state; sets `revoked_at = at` when `to` is
    /// revoked. Appends `event` on success.
    async fn set_state(
        &self,
        id: &KeyId,
        from: KeyState,
        to: KeyState,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error>;

    /// Revokes the key unconditionally (invariant 11): sets `state =
    /// revoked` and `revoked_at = at` unless it is already revoked.
    /// `Ok(true)` if this call revoked it (and appended `event` atomically
    /// with it), `Ok(false)` if it was already revoked (nothing written),
    /// [`Error::NotFound`] for an unknown id. Never fails because of a
    /// concurrent disable or enable.
    async fn revoke_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, Error>;

    /// Atomically inserts `successor` and schedules the predecessor (which
    /// must be in state `expected` and not yet rotated) to expire at
    /// `predecessor_expires_at`. Appends `event` on success.
    async fn rotate_key(
        &self,
        predecessor: &KeyId,
        expected: KeyState,
        predecessor_expires_at: DateTime<Utc>,
        successor: &KeyRecord,
        event: &AuditEvent,
    ) -> Result<(), Error>;

    /// Forward-only batch update of `last_used_at`.
    async fn record_usage(&self, batch: &[UsageRecord]) -> Result<(), Error>;

    /// One page of an owner's keys (or every owner's), newest first.
    async fn list_keys(&self, query: &ListQuery) -> Result<Page<KeyRecord>, Error>;

    /// Keys not revoked whose `expires_at` lies in `(after, before]`, soonest
    /// first, at most `limit`: the keys to warn about.
    async fn keys_expiring(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, Error>;

    /// Compare-and-set write of the role `(role.owner, role.name)`
    /// (invariant 13). `replaces = None` creates it ([`Error::RoleChanged`]
    /// if it exists); `replaces = Some(p)` replaces it only if its stored
    /// permissions equal `p` exactly ([`Error::RoleChanged`] if it is absent
    /// or different). Appends `event` only on success, atomically.
    async fn put_role(
        &self,
        role: &Role,
        replaces: Option<&PermissionSet>,
        event: &AuditEvent,
    ) -> Result<(), Error>;

    /// The roles of `owner` with these names that exist, in name order.
    async fn get_roles(&self, owner: &Owner, names: &[RoleName]) -> Result<Vec<Role>, Error>;

    /// One page of `owner`'s roles in name order: at most `limit`
    /// (1..=[`MAX_PAGE_SIZE`]) roles, those named after `after` when given
    /// (invariant 17). A page shorter than `limit` is the last.
    async fn list_roles(
        &self,
        owner: &Owner,
        after: Option<&RoleName>,
        limit: usize,
    ) -> Result<Vec<Role>, Error>;

    /// Deletes the role `(owner, name)` if its stored permissions equal
    /// `expected` ([`Error::NotFound`] if absent, [`Error::RoleChanged`] if
    /// different) and appends `event` on success. Keys that named it simply
    /// stop receiving its permissions.
    async fn delete_role(
        &self,
        owner: &Owner,
        name: &RoleName,
        expected: &PermissionSet,
        event: &AuditEvent,
    ) -> Result<(), Error>;

    /// Appends an event on its own (refused calls).
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), Error>;

    /// Events newest first (latest appended first), filtered (invariant 16).
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, Error>;

    /// Deletes at most `limit` (1..=[`MAX_PRUNE_BATCH`]) keys that
    /// `selection` selects at `now` (invariant 14), the oldest left first
    /// (by [`PruneKeys::sort_time`]), in one statement or transaction, and
    /// returns their ids, in any order. An empty list means nothing is left
    /// to prune.
    async fn prune_keys(
        &self,
        selection: PruneKeys,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyId>, Error>;

    /// Deletes at most `limit` (1..=[`MAX_PRUNE_BATCH`]) audit events with
    /// `at` before `before`, oldest first, in one statement, and returns how
    /// many it deleted (invariant 15).
    async fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, Error>;
}

/// Which dead keys one [`KeyStore::prune_keys`] call deletes.
///
/// Not `#[non_exhaustive]`: every adapter matches each selection, so a new
/// one is a breaking change adapters must implement, never one they skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneKeys {
    /// Revoked keys with `revoked_at` before this time. A revoked key goes
    /// by its revocation time, whatever its expiry.
    RevokedBefore(DateTime<Utc>),
    /// Active keys whose `expires_at` lies before this time (and not after
    /// the call's `now`). Disabled keys are never pruned, expired or not:
    /// a disabled key is kept until it is revoked.
    ExpiredBefore(DateTime<Utc>),
}

impl PruneKeys {
    /// Whether `key` is selected at `now`: the reference semantics adapters
    /// implement in their query language.
    pub fn selects(&self, key: &KeyRecord, now: DateTime<Utc>) -> bool {
        match *self {
            Self::RevokedBefore(before) => {
                key.state == KeyState::Revoked && key.revoked_at.is_some_and(|at| at < before)
            }
            Self::ExpiredBefore(before) => {
                key.state == KeyState::Active
                    && key.expires_at.is_some_and(|at| at < before && at <= now)
            }
        }
    }

    /// The time the selection sorts by, oldest pruned first
    /// (`revoked_at` or `expires_at`).
    pub fn sort_time(&self, key: &KeyRecord) -> Option<DateTime<Utc>> {
        match self {
            Self::RevokedBefore(_) => key.revoked_at,
            Self::ExpiredBefore(_) => key.expires_at,
        }
    }
}

/// For adapters: checks a prune batch size (1..=[`MAX_PRUNE_BATCH`]).
pub fn check_prune_batch(limit: usize) -> Result<(), Error> {
    if limit == 0 || limit > MAX_PRUNE_BATCH {
        return Err(Error::invalid("batch size", "must be 1..=10000"));
    }
    Ok(())
}

/// For adapters and callers: checks a page size (1..=[`MAX_PAGE_SIZE`]),
/// as [`KeyStore::list_roles`] requires.
pub fn check_page_size(limit: usize) -> Result<(), Error> {
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(Error::invalid("limit", "must be 1..=1000"));
    }
    Ok(())
}

/// What [`KeyStore::list_keys`] returns: one page and where the next starts.
/// Serialized as `{"items": […], "next": "<cursor>" or null}`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass to the next query to continue; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A position in a newest-first list: just after the key created at
/// `created_at` with id `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the last item seen.
    pub created_at: DateTime<Utc>,
    /// Id of the last item seen.
    pub id: KeyId,
}

impl Cursor {
    /// An opaque string form for URLs (`<micros>.<id>`).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at.timestamp_micros(), self.id)
    }

    /// Reads [`Cursor::encode`]'s output.
    pub fn decode(value: &str) -> Result<Self, Error> {
        let bad = || Error::invalid("cursor", "not a cursor returned by a list call");
        let (micros, id) = value.split_once('.').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        Ok(Self {
            created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
            id: KeyId::parse(id).map_err(|_| bad())?,
        })
    }
}

/// For adapters: the page from a query that fetched up to `limit + 1`
/// rows, newest first. The extra row, if any, only says there is a next
/// page.
pub fn page_from_overfetch(mut items: Vec<KeyRecord>, limit: usize) -> Page<KeyRecord> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(cursor_after)
    } else {
        None
    };
    Page { items, next }
}

/// For adapters: the cursor just after `key`.
pub fn cursor_after(key: &KeyRecord) -> Cursor {
    Cursor {
        created_at: key.created_at,
        id: key.id.clone(),
    }
}

/// For adapters: whether `key` comes after `cursor` in newest-first order
/// (the reference for a list query's `after` condition).
pub fn comes_after(key: &KeyRecord, cursor: &Cursor) -> bool {
    (key.created_at, key.id.as_str().as_bytes())
        < (cursor.created_at, cursor.id.as_str().as_bytes())
}

/// As its opaque string ([`Cursor::encode`]): what a list answer hands a
/// client to continue with.
impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

/// From its string, checked as [`Cursor::decode`] checks it.
impl<'de> serde::Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Cursor::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// Which keys [`KeyStore::list_keys`] returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ListQuery {
    /// Whose keys; `None`: every owner's (operators only, at the service).
    pub owner: Option<Owner>,
    /// Case-insensitive literal substring of the name.
    pub name_contains: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<Status>,
    /// Only keys not used since this time: `last_used_at` before it, or
    /// never used (a key never used counts as used before any time).
    pub last_used_before: Option<DateTime<Utc>>,
    /// The time statuses are judged at.
    pub now: DateTime<Utc>,
    /// Page size, 1..=[`MAX_PAGE_SIZE`].
    pub limit: usize,
    /// Continue after this position.
    pub after: Option<Cursor>,
}

impl ListQuery {
    /// The first `limit` keys of `owner`, any status, judged at `now`.
    pub fn new(owner: Owner, now: DateTime<Utc>, limit: usize) -> Self {
        Self {
            owner: Some(owner),
            ..Self::all_owners(now, limit)
        }
    }

    /// The first `limit` keys of every owner, any status, judged at `now`.
    pub fn all_owners(now: DateTime<Utc>, limit: usize) -> Self {
        Self {
            owner: None,
            name_contains: None,
            kind: None,
            statuses: Vec::new(),
            last_used_before: None,
            now,
            limit,
            after: None,
        }
    }

    /// Whether `key` passes the filters (not the cursor): the reference
    /// semantics adapters implement in their query language.
    pub fn matches(&self, key: &KeyRecord) -> bool {
        self.owner.as_ref().is_none_or(|owner| key.owner == *owner)
            && self.kind.as_deref().is_none_or(|k| key.kind == k)
            && (self.statuses.is_empty() || self.statuses.contains(&key.status(self.now)))
            && self
                .name_contains
                .as_deref()
                .is_none_or(|needle| name_contains(&key.name, needle))
            && self
                .last_used_before
                .is_none_or(|before| key.last_used_at.is_none_or(|used| used < before))
    }
}

/// Case-insensitive literal substring match: [`fold_name`] on both sides.
pub fn name_contains(name: &str, needle: &str) -> bool {
    fold_name(name).contains(&fold_name(needle))
}

/// The case fold the name filter uses, and SQL adapters store beside each
/// name: each character lowercased on its own. (`str::to_lowercase` is
/// context-sensitive — a final Greek sigma lowercases differently — so a
/// slice of a name could fail to match the name itself.)
pub fn fold_name(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_serializes_as_its_opaque_string() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            id: KeyId::parse("AbCd1234").unwrap(),
        };
        let json = serde_json::to_string(&cursor).unwrap();
        assert_eq!(json, r#""1800000000123456.AbCd1234""#);
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), cursor);
        for bad in [r#""x.AbCd1234""#, r#""1.a b""#, r#""""#, "12"] {
            assert!(serde_json::from_str::<Cursor>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prune_selections_take_only_dead_keys() {
        let t = |secs: i64| DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap();
        let owner = Owner::new("user:a").unwrap();
        let key = |state: KeyState, revoked: Option<i64>, expires: Option<i64>| KeyRecord {
            id: KeyId::parse("AbCd1234").unwrap(),
            kind: "mt".to_owned(),
            owner: owner.clone(),
            name: "key".to_owned(),
            digest: crate::secret::TokenHasher::sha256().digest("secret"),
            preview: "mt_AbCd…".to_owned(),
            scopes: PermissionSet::new(),
            roles: std::collections::BTreeSet::new(),
            inherits_owner: false,
            metadata: Metadata::new(),
            state,
            created_at: t(0),
            expires_at: expires.map(t),
            last_used_at: None,
            revoked_at: revoked.map(t),
            created_by: "operator:test".to_owned(),
            rotated_from: None,
            rotated_to: None,
        };
        let revoked = PruneKeys::RevokedBefore(t(100));
        assert!(revoked.selects(&key(KeyState::Revoked, Some(99), None), t(0)));
        assert!(!revoked.selects(&key(KeyState::Revoked, Some(100), None), t(0)));
        assert!(!revoked.selects(&key(KeyState::Active, None, Some(1)), t(500)));
        let expired = PruneKeys::ExpiredBefore(t(100));
        let now = t(50);
        assert!(expired.selects(&key(KeyState::Active, None, Some(50)), now));
        assert!(
            !expired.selects(&key(KeyState::Active, None, Some(51)), now),
            "a key still live at now is kept whatever the cutoff"
        );
        assert!(!expired.selects(&key(KeyState::Disabled, None, Some(10)), now));
        assert!(!expired.selects(&key(KeyState::Revoked, Some(60), Some(10)), now));
        assert!(!expired.selects(&key(KeyState::Active, None, None), now));
        assert!(!expired.selects(&key(KeyState::Active, None, Some(100)), t(200)));
        for limit in [0, MAX_PRUNE_BATCH + 1] {
            assert!(check_prune_batch(limit).is_err(), "{limit}");
        }
        assert!(check_prune_batch(1).is_ok() && check_prune_batch(MAX_PRUNE_BATCH).is_ok());
    }

    #[test]
    fn a_slice_of_a_name_always_matches_it() {
        // `to_lowercase` on the whole string folds a final sigma to `ς`, on
        // the slice to `σ`; folding per character keeps them equal.
        assert!(name_contains("ΟΔΟΣΟ", "ΟΔΟΣ"));
        assert!(name_contains("Deploy KEY", "y k"));
        assert!(!name_contains("100%", "1000"));
    }
}
