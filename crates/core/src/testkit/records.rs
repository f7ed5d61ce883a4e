//! Key records and audit events built directly, the way an adapter reads
//! them from its rows: for tests that talk to a store without the service
//! (the conformance cases, an adapter's or a host's own store tests).

use crate::audit::{AuditAction, AuditEvent};
use crate::format::base62_digit;
use crate::key::{KeyId, KeyRecord, Metadata, Owner};
use crate::lifecycle::KeyState;
use crate::permission::PermissionSet;
use crate::secret::{OsRandom, SecretSource, TokenHasher};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Who these records and events say acted, in audit events and `created_by`.
pub const ACTOR: &str = "operator:testkit";

/// `len` random base62 characters (the token alphabet) from the OS CSPRNG.
pub fn random_base62(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    OsRandom.fill(&mut bytes).expect("OS randomness");
    bytes.iter().map(|b| base62_digit(u32::from(*b))).collect()
}

/// `value` as `width` base62 digits (the token alphabet), most significant
/// first; higher digits are dropped.
pub fn base62(mut value: u64, width: usize) -> String {
    let mut digits = vec!['0'; width];
    for digit in digits.iter_mut().rev() {
        *digit = base62_digit((value % 62) as u32);
        value /= 62;
    }
    digits.into_iter().collect()
}

/// A plain active key of `owner` and `kind` issued at `created_at`: named
/// `key <id>`, no expiry, grants, metadata, use or rotation, created by
/// [`ACTOR`]. Set any other field with struct update syntax.
pub fn key_record(id: KeyId, kind: &str, owner: &Owner, created_at: DateTime<Utc>) -> KeyRecord {
    KeyRecord {
        digest: TokenHasher::sha256().digest(&format!("secret-of-{id}")),
        preview: format!("{kind}_{}…", &id.as_str()[..4]),
        name: format!("key {id}"),
        id,
        kind: kind.to_owned(),
        owner: owner.clone(),
        scopes: PermissionSet::new(),
        roles: BTreeSet::new(),
        inherits_owner: false,
        metadata: Metadata::new(),
        state: KeyState::Active,
        created_at,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        created_by: ACTOR.to_owned(),
        rotated_from: None,
        rotated_to: None,
    }
}

/// The event of `action` on `key` at `at`, by [`ACTOR`].
pub fn key_event(key: &KeyRecord, action: AuditAction, at: DateTime<Utc>) -> AuditEvent {
    AuditEvent::new(at, ACTOR, action).with_key(&key.id, &key.name, &key.owner)
}

/// The event the service would write when issuing `key`.
pub fn issue_event(key: &KeyRecord) -> AuditEvent {
    key_event(key, AuditAction::Issue, key.created_at)
}
