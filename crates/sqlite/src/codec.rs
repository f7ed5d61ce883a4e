//! Rows ↔ records.

use crate::sqlite_error;
use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, Owner, PermissionSet, RoleName, audit::AuditAction, audit::AuditEvent,
    audit::AuditOutcome, store::KeyAttributes, store::KeyRecord, store::KeyState, store::Metadata,
    store::VerifyRecord, token::HashAlgorithm, token::TokenDigest,
};
use rusqlite::Row;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The columns a verify reads, in the order [`verify_from_row`] reads them.
macro_rules! verify_columns {
    () => {
        "id, kind, owner, name, digest, digest_algorithm, scopes, roles, inherits_owner, \
         metadata, state, expires_at"
    };
}

/// The columns a verify reads ([`verify_from_row`]).
pub(crate) const VERIFY_COLUMNS: &str = verify_columns!();

/// Every key column, in the order [`key_from_row`] reads them: the verify
/// columns first, then what management reads.
pub(crate) const KEY_COLUMNS: &str = concat!(
    verify_columns!(),
    ", preview, created_at, last_used_at, revoked_at, created_by, rotated_from, rotated_to"
);

/// The audit columns, in the order [`audit_from_row`] reads them.
pub(crate) const AUDIT_COLUMNS: &str =
    "at, actor, action, key_id, key_name, owner, role, detail, refused_reason";

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(micros: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt("timestamp out of range"))
}

fn opt_time(micros: Option<i64>) -> Result<Option<DateTime<Utc>>, Error> {
    micros.map(time).transpose()
}

fn corrupt(what: &str) -> Error {
    Error::backend("sqlite", format!("unreadable stored row: {what}"))
}

/// Permissions as one space-separated string (permissions hold no spaces).
pub(crate) fn join_permissions(set: &PermissionSet) -> String {
    set.to_string()
}

pub(crate) fn split_permissions(text: &str) -> Result<PermissionSet, Error> {
    text.parse::<PermissionSet>()
        .map_err(|_| corrupt("permission"))
}

pub(crate) fn join_roles(roles: &BTreeSet<RoleName>) -> String {
    roles
        .iter()
        .map(RoleName::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn split_roles(text: &str) -> Result<BTreeSet<RoleName>, Error> {
    text.split_whitespace()
        .map(|r| RoleName::new(r).map_err(|_| corrupt("role")))
        .collect()
}

pub(crate) fn metadata_json(metadata: &Metadata) -> Result<String, Error> {
    serde_json::to_string(metadata).map_err(|e| Error::backend("sqlite", e))
}

/// A key as verification reads it, from a row of [`VERIFY_COLUMNS`] (or
/// of [`KEY_COLUMNS`], which start with them). Text that only needs
/// checking is borrowed from the row, not copied.
pub(crate) fn verify_from_row(row: &Row<'_>) -> Result<VerifyRecord, Error> {
    let get_text = |i: usize| row.get::<_, String>(i).map_err(sqlite_error);
    let get_str = |i: usize| -> Result<&str, Error> {
        row.get_ref(i)
            .map_err(sqlite_error)?
            .as_str()
            .map_err(|_| corrupt("a text column"))
    };
    let digest: [u8; 32] = row
        .get_ref(4)
        .map_err(sqlite_error)?
        .as_blob()
        .map_err(|_| corrupt("digest"))?
        .try_into()
        .map_err(|_| corrupt("digest length"))?;
    let algorithm = HashAlgorithm::from_tag(get_str(5)?).map_err(|_| corrupt("hash tag"))?;
    let metadata = match get_str(9)? {
        "{}" => Metadata::new(),
        text => serde_json::from_str(text).map_err(|e| Error::backend("sqlite", e))?,
    };
    let attributes = KeyAttributes {
        kind: get_text(1)?,
        owner: Owner::new(get_str(2)?).map_err(|_| corrupt("owner"))?,
        name: get_text(3)?,
        metadata,
        roles: split_roles(get_str(7)?)?,
    };
    Ok(VerifyRecord {
        id: KeyId::parse(get_str(0)?).map_err(|_| corrupt("key id"))?,
        digest: TokenDigest::from_stored(algorithm, digest),
        scopes: split_permissions(get_str(6)?)?,
        inherits_owner: row.get::<_, bool>(8).map_err(sqlite_error)?,
        state: KeyState::from_stored(get_str(10)?).map_err(|_| corrupt("state"))?,
        expires_at: opt_time(row.get(11).map_err(sqlite_error)?)?,
        attributes: Arc::new(attributes),
    })
}

/// A whole key, from a row of [`KEY_COLUMNS`].
pub(crate) fn key_from_row(row: &Row<'_>) -> Result<KeyRecord, Error> {
    let get_text = |i: usize| row.get::<_, String>(i).map_err(sqlite_error);
    let get_opt_text = |i: usize| row.get::<_, Option<String>>(i).map_err(sqlite_error);
    let get_opt_int = |i: usize| row.get::<_, Option<i64>>(i).map_err(sqlite_error);
    let key_id = |text: String| KeyId::parse(&text).map_err(|_| corrupt("key id"));
    let VerifyRecord {
        id,
        digest,
        scopes,
        inherits_owner,
        state,
        expires_at,
        attributes,
    } = verify_from_row(row)?;
    // Built just above and shared with nothing yet: taken, not copied.
    let KeyAttributes {
        kind,
        owner,
        name,
        metadata,
        roles,
    } = Arc::unwrap_or_clone(attributes);
    Ok(KeyRecord {
        id,
        kind,
        owner,
        name,
        digest,
        preview: get_text(12)?,
        scopes,
        roles,
        inherits_owner,
        metadata,
        state,
        created_at: time(row.get(13).map_err(sqlite_error)?)?,
        expires_at,
        last_used_at: opt_time(get_opt_int(14)?)?,
        revoked_at: opt_time(get_opt_int(15)?)?,
        created_by: get_text(16)?,
        rotated_from: get_opt_text(17)?.map(key_id).transpose()?,
        rotated_to: get_opt_text(18)?.map(key_id).transpose()?,
    })
}

pub(crate) fn audit_from_row(row: &Row<'_>) -> Result<AuditEvent, Error> {
    let get_opt_text = |i: usize| row.get::<_, Option<String>>(i).map_err(sqlite_error);
    let action: String = row.get(2).map_err(sqlite_error)?;
    let action = AuditAction::from_stored(&action).ok_or_else(|| corrupt("audit action"))?;
    let actor: String = row.get(1).map_err(sqlite_error)?;
    let mut event = AuditEvent::new(time(row.get(0).map_err(sqlite_error)?)?, actor, action);
    event.key_id = get_opt_text(3)?
        .map(|t| KeyId::parse(&t).map_err(|_| corrupt("key id")))
        .transpose()?;
    event.key_name = get_opt_text(4)?;
    event.owner = get_opt_text(5)?
        .map(|t| Owner::new(&t).map_err(|_| corrupt("owner")))
        .transpose()?;
    event.role = get_opt_text(6)?
        .map(|t| RoleName::new(&t).map_err(|_| corrupt("role")))
        .transpose()?;
    event.detail = get_opt_text(7)?;
    if let Some(reason) = get_opt_text(8)? {
        event.outcome = AuditOutcome::Refused(reason);
    }
    Ok(event)
}
