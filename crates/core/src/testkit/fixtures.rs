//! Small builders and assertions shared by the conformance cases.
//!
//! Every name a case writes (key ids, owners, role names) carries a random
//! per-invocation tag, so cases never collide even when an adapter runs them
//! all against one persistent database. Every timestamp is a whole number of
//! microseconds, the precision SQL adapters store.

use super::records::key_record;
use crate::audit::{AuditAction, AuditEvent};
use crate::error::Error;
use crate::key::{KeyId, KeyRecord, Owner, RoleName, VerifyRecord};
use crate::lifecycle::KeyState;
use crate::secret::{OsRandom, SecretSource};
use crate::store::{KeyStore, ListQuery};
use chrono::{DateTime, TimeDelta, Utc};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, Ordering};

pub(super) use super::records::{ACTOR, issue_event, key_event, random_base62};

/// A random `u32` from the OS CSPRNG.
pub(super) fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    OsRandom.fill(&mut bytes).expect("OS randomness");
    u32::from_le_bytes(bytes)
}

/// 2026-01-01T00:00:00Z, the time every case counts from.
pub(super) fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).expect("valid base time")
}

/// `secs` seconds after [`base_time`] (negative: before).
pub(super) fn at(secs: i64) -> DateTime<Utc> {
    base_time() + TimeDelta::seconds(secs)
}

/// `micros` microseconds after `time`.
pub(super) fn plus_micros(time: DateTime<Utc>, micros: i64) -> DateTime<Utc> {
    time + TimeDelta::microseconds(micros)
}

/// Names unique to one case invocation.
#[derive(Debug)]
pub(super) struct Fixture {
    tag: String,
    next: AtomicU32,
}

impl Fixture {
    /// A fixture with a fresh random tag.
    pub(super) fn new() -> Self {
        Self {
            tag: random_base62(10),
            next: AtomicU32::new(0),
        }
    }

    /// A fresh key id: `k`, a counter, then the tag.
    pub(super) fn id(&self) -> KeyId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        KeyId::parse(&format!("k{n:04}{}", self.tag)).expect("valid key id")
    }

    /// The key id `<prefix><tag><suffix>`, for cases that need ids in a
    /// known byte order.
    pub(super) fn id_with(&self, prefix: &str, suffix: &str) -> KeyId {
        KeyId::parse(&format!("{prefix}{}{suffix}", self.tag)).expect("valid key id")
    }

    /// An owner `<label>:<tag>`.
    pub(super) fn owner(&self, label: &str) -> Owner {
        Owner::new(&format!("{label}:{}", self.tag)).expect("valid owner")
    }

    /// A role name `<tag>.<label>`.
    pub(super) fn role(&self, label: &str) -> RoleName {
        RoleName::new(&format!("{}.{label}", self.tag)).expect("valid role name")
    }

    /// A plain active key of `owner` and `kind` issued at `created_at`, with
    /// no expiry, grants or metadata, and a fresh id.
    pub(super) fn record(&self, owner: &Owner, kind: &str, created_at: DateTime<Utc>) -> KeyRecord {
        self.record_with_id(self.id(), owner, kind, created_at)
    }

    /// Like [`Fixture::record`] with a chosen id.
    pub(super) fn record_with_id(
        &self,
        id: KeyId,
        owner: &Owner,
        kind: &str,
        created_at: DateTime<Utc>,
    ) -> KeyRecord {
        key_record(id, kind, owner, created_at)
    }
}

/// The event for moving `key` into state `to`.
pub(super) fn state_event(key: &KeyRecord, to: KeyState, at: DateTime<Utc>) -> AuditEvent {
    let action = match to {
        KeyState::Active => AuditAction::Enable,
        KeyState::Disabled => AuditAction::Disable,
        KeyState::Revoked => AuditAction::Revoke,
    };
    key_event(key, action, at)
}

/// Inserts `key` without a limit, failing the case if the store refuses.
pub(super) async fn insert(store: &dyn KeyStore, key: &KeyRecord) {
    if let Err(e) = store
        .insert_key(key, None, key.created_at, &issue_event(key))
        .await
    {
        panic!("insert_key({}) failed: {e:?}", key.id);
    }
}

/// Inserts every key in order.
pub(super) async fn insert_all(store: &dyn KeyStore, keys: &[KeyRecord]) {
    for key in keys {
        insert(store, key).await;
    }
}

/// The stored key, failing the case if it is missing.
///
/// Every read also checks the verify read: [`KeyStore::verify_key`] must
/// return the same key, field for field, as [`KeyStore::get_key`].
pub(super) async fn get(store: &dyn KeyStore, id: &KeyId) -> KeyRecord {
    let key = match store.get_key(id).await {
        Ok(Some(key)) => key,
        Ok(None) => panic!("get_key({id}) returned None for a key that was inserted"),
        Err(e) => panic!("get_key({id}) failed: {e:?}"),
    };
    match store.verify_key(id).await {
        Ok(Some(read)) => assert_verify_read(&read, &key),
        Ok(None) => panic!("verify_key({id}) returned None for a key get_key returns"),
        Err(e) => panic!("verify_key({id}) failed: {e:?}"),
    }
    // Invariant 18: answered at once, it is the same read.
    match store.verify_key_now(id) {
        None => {}
        Some(Ok(Some(read))) => assert_verify_read(&read, &key),
        Some(Ok(None)) => panic!("verify_key_now({id}) returned None for a key get_key returns"),
        Some(Err(e)) => panic!("verify_key_now({id}) failed: {e:?}"),
    }
    key
}

/// Fails unless `id` is gone for both verify reads (invariant 18: an
/// answer at once, if the store gives one, is `None` too).
pub(super) async fn assert_no_verify_read(store: &dyn KeyStore, id: &KeyId, what: &str) {
    assert!(
        store.verify_key(id).await.expect("verify_key").is_none(),
        "{what}: verify_key({id}) must be None"
    );
    if let Some(read) = store.verify_key_now(id) {
        assert!(
            read.expect("verify_key_now").is_none(),
            "{what}: verify_key_now({id}) must be None"
        );
    }
}

/// Fails unless the verify read `read` holds what `key` holds.
pub(super) fn assert_verify_read(read: &VerifyRecord, key: &KeyRecord) {
    let id = &key.id;
    assert_eq!(read.id, key.id, "verify_key: id");
    let attributes = &read.attributes;
    assert_text_eq(
        &attributes.kind,
        &key.kind,
        &format!("{id}: verify_key kind"),
    );
    assert_eq!(attributes.owner, key.owner, "{id}: verify_key owner");
    assert_text_eq(
        &attributes.name,
        &key.name,
        &format!("{id}: verify_key name"),
    );
    assert_eq!(
        read.digest.algorithm(),
        key.digest.algorithm(),
        "{id}: verify_key digest algorithm"
    );
    assert!(
        read.digest.matches(&key.digest),
        "{id}: verify_key digest bytes differ from get_key's"
    );
    assert_eq!(read.scopes, key.scopes, "{id}: verify_key scopes");
    assert_eq!(attributes.roles, key.roles, "{id}: verify_key roles");
    assert_eq!(
        read.inherits_owner, key.inherits_owner,
        "{id}: verify_key inherits_owner"
    );
    assert_eq!(
        attributes.metadata, key.metadata,
        "{id}: verify_key metadata"
    );
    assert_eq!(read.state, key.state, "{id}: verify_key state");
    assert_eq!(
        read.expires_at, key.expires_at,
        "{id}: verify_key expires_at"
    );
}

/// Moves `key` from `from` to `to`, failing the case if the store refuses.
pub(super) async fn change_state(
    store: &dyn KeyStore,
    key: &KeyRecord,
    from: KeyState,
    to: KeyState,
    at: DateTime<Utc>,
) {
    if let Err(e) = store
        .set_state(&key.id, from, to, at, &state_event(key, to, at))
        .await
    {
        panic!("set_state({}, {from} -> {to}) failed: {e:?}", key.id);
    }
}

/// Every page of `query`, concatenated (at most 1000 pages).
pub(super) async fn list_all(store: &dyn KeyStore, mut query: ListQuery) -> Vec<KeyRecord> {
    let mut all = Vec::new();
    for _ in 0..1000 {
        let page = store.list_keys(&query).await.expect("list_keys");
        assert!(
            page.items.len() <= query.limit,
            "list_keys returned {} items for a page size of {}",
            page.items.len(),
            query.limit
        );
        all.extend(page.items);
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => return all,
        }
    }
    panic!("list_keys kept returning a next cursor")
}

/// The ids of `keys`, in order.
pub(super) fn ids(keys: &[KeyRecord]) -> Vec<KeyId> {
    keys.iter().map(|k| k.id.clone()).collect()
}

/// The ids of `keys` in list order: `created_at` desc, then id desc by bytes.
pub(super) fn newest_first(keys: &[&KeyRecord]) -> Vec<KeyId> {
    let mut sorted: Vec<&KeyRecord> = keys.to_vec();
    sorted.sort_by(|a, b| {
        (b.created_at, b.id.as_str().as_bytes()).cmp(&(a.created_at, a.id.as_str().as_bytes()))
    });
    sorted.iter().map(|k| k.id.clone()).collect()
}

/// Fails unless `result` is `Conflict { expected, actual }`.
pub(super) fn expect_conflict(
    result: Result<(), Error>,
    expected: KeyState,
    actual: KeyState,
    what: &str,
) {
    match result {
        Err(Error::Conflict {
            expected: e,
            actual: a,
        }) if e == expected && a == actual => {}
        other => panic!(
            "{what}: expected Err(Conflict {{ expected: {expected}, actual: {actual} }}), got {other:?}"
        ),
    }
}

/// Fails unless `result` is `NotFound`.
pub(super) fn expect_not_found<T: Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::NotFound) => {}
        other => panic!("{what}: expected Err(NotFound), got {other:?}"),
    }
}

/// Fails unless `result` is `RoleChanged`.
pub(super) fn expect_role_changed(result: Result<(), Error>, what: &str) {
    match result {
        Err(Error::RoleChanged) => {}
        other => panic!("{what}: expected Err(RoleChanged), got {other:?}"),
    }
}

/// Fails unless `result` is `AlreadyExists`.
pub(super) fn expect_already_exists(result: Result<(), Error>, what: &str) {
    match result {
        Err(Error::AlreadyExists) => {}
        other => panic!("{what}: expected Err(AlreadyExists), got {other:?}"),
    }
}

/// Fails unless `result` is `LimitReached { limit }`.
pub(super) fn expect_limit_reached(result: Result<(), Error>, limit: u32, what: &str) {
    match result {
        Err(Error::LimitReached { limit: l }) if l == limit => {}
        other => panic!("{what}: expected Err(LimitReached {{ limit: {limit} }}), got {other:?}"),
    }
}

/// Fails unless two strings are equal, without printing 10 kB values whole.
pub(super) fn assert_text_eq(actual: &str, expected: &str, what: &str) {
    if actual == expected {
        return;
    }
    if actual.len() <= 300 && expected.len() <= 300 {
        panic!("{what} did not round-trip:\n  stored:   {expected:?}\n  returned: {actual:?}");
    }
    let first_difference = actual
        .bytes()
        .zip(expected.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| actual.len().min(expected.len()));
    panic!(
        "{what} did not round-trip: stored {} bytes, returned {} bytes, first difference at byte {first_difference}",
        expected.len(),
        actual.len()
    );
}

/// Fails unless `actual` equals `expected` in every field (digests compared
/// by algorithm and bytes). `expected` is destructured without `..`, so a
/// new [`KeyRecord`] field fails to compile here until it is compared.
pub(super) fn assert_same_key(actual: &KeyRecord, expected: &KeyRecord) {
    let KeyRecord {
        id,
        kind,
        owner,
        name,
        digest,
        preview,
        scopes,
        roles,
        inherits_owner,
        metadata,
        state,
        created_at,
        expires_at,
        last_used_at,
        revoked_at,
        created_by,
        rotated_from,
        rotated_to,
    } = expected;
    assert_eq!(&actual.id, id, "id");
    assert_text_eq(&actual.kind, kind, &format!("{id}: kind"));
    assert_eq!(&actual.owner, owner, "{id}: owner");
    assert_text_eq(&actual.name, name, &format!("{id}: name"));
    assert_eq!(
        actual.digest.algorithm(),
        digest.algorithm(),
        "{id}: digest algorithm"
    );
    assert!(
        actual.digest.matches(digest),
        "{id}: digest bytes did not round-trip"
    );
    assert_text_eq(&actual.preview, preview, &format!("{id}: preview"));
    assert_eq!(&actual.scopes, scopes, "{id}: scopes");
    assert_eq!(&actual.roles, roles, "{id}: roles");
    assert_eq!(
        &actual.inherits_owner, inherits_owner,
        "{id}: inherits_owner"
    );
    assert_eq!(
        actual.metadata.keys().collect::<Vec<_>>(),
        metadata.keys().collect::<Vec<_>>(),
        "{id}: metadata keys"
    );
    for (key, value) in metadata {
        assert_text_eq(
            &actual.metadata[key],
            value,
            &format!("{id}: metadata[{key:?}]"),
        );
    }
    assert_eq!(&actual.state, state, "{id}: state");
    assert_eq!(&actual.created_at, created_at, "{id}: created_at");
    assert_eq!(&actual.expires_at, expires_at, "{id}: expires_at");
    assert_eq!(&actual.last_used_at, last_used_at, "{id}: last_used_at");
    assert_eq!(&actual.revoked_at, revoked_at, "{id}: revoked_at");
    assert_text_eq(&actual.created_by, created_by, &format!("{id}: created_by"));
    assert_eq!(&actual.rotated_from, rotated_from, "{id}: rotated_from");
    assert_eq!(&actual.rotated_to, rotated_to, "{id}: rotated_to");
}

/// Fails unless the stored key equals `expected` in every field.
pub(super) async fn assert_stored(store: &dyn KeyStore, expected: &KeyRecord) {
    assert_same_key(&get(store, &expected.id).await, expected);
}
