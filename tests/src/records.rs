//! Key records and audit events built directly, the way an adapter reads
//! them from its rows, for tests that talk to a store without the service.

use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    KeyId, Owner, PermissionSet, audit::AuditAction, audit::AuditEvent, store::KeyRecord,
    store::KeyState, store::Metadata, token::OsRandom, token::SecretSource, token::TokenHasher,
};
use std::collections::BTreeSet;

/// Who these tests act as.
pub(crate) const ACTOR: &str = "operator:adapter-tests";

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` random base62 characters.
pub(crate) fn random_base62(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    OsRandom.fill(&mut bytes).unwrap();
    bytes
        .iter()
        .map(|b| char::from(BASE62[usize::from(*b) % BASE62.len()]))
        .collect()
}

/// An owner no other test uses: `<label>:<random>`.
pub(crate) fn unique_owner(label: &str) -> Owner {
    Owner::new(&format!("{label}:{}", random_base62(12))).unwrap()
}

/// An active `mt` key with a random id, no expiry and no grants.
pub(crate) fn key(
    owner: &Owner,
    name: &str,
    metadata: Metadata,
    created_at: DateTime<Utc>,
) -> KeyRecord {
    let id = KeyId::parse(&random_base62(20)).unwrap();
    KeyRecord {
        digest: TokenHasher::sha256().digest("x"),
        preview: format!("mt_{}…", &id.as_str()[..4]),
        id,
        kind: "mt".to_owned(),
        owner: owner.clone(),
        name: name.to_owned(),
        scopes: PermissionSet::new(),
        roles: BTreeSet::new(),
        inherits_owner: false,
        metadata,
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

/// The event of `action` on `key` at `at`.
pub(crate) fn event(key: &KeyRecord, action: AuditAction, at: DateTime<Utc>) -> AuditEvent {
    AuditEvent::new(at, ACTOR, action).with_key(&key.id, &key.name, &key.owner)
}

/// The event of issuing `key`.
pub(crate) fn issued(key: &KeyRecord) -> AuditEvent {
    event(key, AuditAction::Issue, key.created_at)
}
