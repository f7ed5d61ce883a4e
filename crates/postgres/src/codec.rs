//! Rows ↔ records.

use crate::pg_error;
use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, Owner, PermissionSet, RoleName, audit::AuditAction, audit::AuditEvent,
    audit::AuditOutcome, store::KeyAttributes, store::KeyRecord, store::KeyState, store::Metadata,
    store::VerifyRecord, token::HashAlgorithm, token::TokenDigest,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The columns a verify reads, in the order [`verify_from_row`] reads them.
/// Grant and role arrays come as one space-separated text each (neither
/// holds a space): one value to decode instead of one string per element.
macro_rules! verify_columns {
    () => {
        "id, kind, owner, name, digest, digest_algorithm, array_to_string(scopes, ' ') AS scopes, \
         array_to_string(roles, ' ') AS roles, inherits_owner, metadata::text AS metadata, state, \
         expires_at"
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

/// The audit columns [`audit_from_row`] reads.
pub(crate) const AUDIT_COLUMNS: &str =
    "at, actor, action, key_id, key_name, owner, role, detail, refused_reason";

fn corrupt(what: &str) -> Error {
    Error::backend("postgres", format!("unreadable stored row: {what}"))
}

pub(crate) fn permissions_vec(set: &PermissionSet) -> Vec<String> {
    set.iter().map(str::to_owned).collect()
}

pub(crate) fn permissions_from(values: Vec<String>) -> Result<PermissionSet, Error> {
    PermissionSet::parse(values).map_err(|_| corrupt("permission"))
}

pub(crate) fn roles_vec(roles: &BTreeSet<RoleName>) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_owned()).collect()
}

pub(crate) fn metadata_json(metadata: &Metadata) -> Result<String, Error> {
    serde_json::to_string(metadata).map_err(|e| Error::backend("postgres", e))
}

fn key_id(text: &str) -> Result<KeyId, Error> {
    KeyId::parse(text).map_err(|_| corrupt("key id"))
}

/// A key as verification reads it, from a row of [`VERIFY_COLUMNS`] (or of
/// [`KEY_COLUMNS`], which start with them), read by position. Text that
/// only needs checking is borrowed from the row, not copied.
pub(crate) fn verify_from_row(row: &PgRow) -> Result<VerifyRecord, Error> {
    let get_str = |i: usize| row.try_get::<&str, _>(i).map_err(pg_error);
    let digest: &[u8] = row.try_get(4).map_err(pg_error)?;
    let digest: [u8; 32] = digest.try_into().map_err(|_| corrupt("digest length"))?;
    let algorithm = HashAlgorithm::from_tag(get_str(5)?).map_err(|_| corrupt("hash tag"))?;
    let metadata = match get_str(9)? {
        "{}" => Metadata::new(),
        text => serde_json::from_str(text).map_err(|e| Error::backend("postgres", e))?,
    };
    let attributes = KeyAttributes {
        kind: row.try_get(1).map_err(pg_error)?,
        owner: Owner::new(get_str(2)?).map_err(|_| corrupt("owner"))?,
        name: row.try_get(3).map_err(pg_error)?,
        metadata,
        roles: get_str(7)?
            .split_whitespace()
            .map(|r| RoleName::new(r).map_err(|_| corrupt("role")))
            .collect::<Result<_, _>>()?,
    };
    Ok(VerifyRecord {
        id: key_id(get_str(0)?)?,
        digest: TokenDigest::from_stored(algorithm, digest),
        scopes: get_str(6)?
            .parse::<PermissionSet>()
            .map_err(|_| corrupt("permission"))?,
        inherits_owner: row.try_get(8).map_err(pg_error)?,
        state: KeyState::from_stored(get_str(10)?).map_err(|_| corrupt("state"))?,
        expires_at: row.try_get(11).map_err(pg_error)?,
        attributes: Arc::new(attributes),
    })
}

/// A whole key, from a row of [`KEY_COLUMNS`].
pub(crate) fn key_from_row(row: &PgRow) -> Result<KeyRecord, Error> {
    let opt_id = |i: usize| {
        row.try_get::<Option<&str>, _>(i)
            .map_err(pg_error)?
            .map(key_id)
            .transpose()
    };
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
        preview: row.try_get(12).map_err(pg_error)?,
        scopes,
        roles,
        inherits_owner,
        metadata,
        state,
        created_at: row.try_get(13).map_err(pg_error)?,
        expires_at,
        last_used_at: row.try_get(14).map_err(pg_error)?,
        revoked_at: row.try_get(15).map_err(pg_error)?,
        created_by: row.try_get(16).map_err(pg_error)?,
        rotated_from: opt_id(17)?,
        rotated_to: opt_id(18)?,
    })
}

pub(crate) fn audit_from_row(row: &PgRow) -> Result<AuditEvent, Error> {
    let text = |c: &str| row.try_get::<Option<String>, _>(c).map_err(pg_error);
    let action: String = row.try_get("action").map_err(pg_error)?;
    let action = AuditAction::from_stored(&action).ok_or_else(|| corrupt("audit action"))?;
    let actor: String = row.try_get("actor").map_err(pg_error)?;
    let at: DateTime<Utc> = row.try_get("at").map_err(pg_error)?;
    let mut event = AuditEvent::new(at, actor, action);
    event.key_id = text("key_id")?.as_deref().map(key_id).transpose()?;
    event.key_name = text("key_name")?;
    event.owner = text("owner")?
        .map(|t| Owner::new(&t).map_err(|_| corrupt("owner")))
        .transpose()?;
    event.role = text("role")?
        .map(|t| RoleName::new(&t).map_err(|_| corrupt("role")))
        .transpose()?;
    event.detail = text("detail")?;
    if let Some(reason) = text("refused_reason")? {
        event.outcome = AuditOutcome::Refused(reason);
    }
    Ok(event)
}
