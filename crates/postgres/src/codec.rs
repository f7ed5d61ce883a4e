//! Rows ↔ records.

use crate::pg_error;
use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, Owner, PermissionSet, RoleName, audit::AuditAction, audit::AuditEvent,
    audit::AuditOutcome, store::KeyRecord, store::KeyState, store::Metadata, token::HashAlgorithm,
    token::TokenDigest,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::collections::BTreeSet;

/// The key columns [`key_from_row`] reads.
pub(crate) const KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, preview, \
    scopes, roles, inherits_owner, metadata::text AS metadata, state, created_at, expires_at, \
    last_used_at, revoked_at, created_by, rotated_from, rotated_to";

/// The audit columns [`audit_from_row`] reads.
pub(crate) const AUDIT_COLUMNS: &str =
    "at, actor, action, key_id, key_name, owner, role, detail, refused_reason";

fn corrupt(what: &str) -> Error {
    Error::backend("postgres", format!("unreadable stored row: {what}"))
}

pub(crate) fn permissions_vec(set: &PermissionSet) -> Vec<String> {
    set.iter().map(|p| p.as_str().to_owned()).collect()
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

pub(crate) fn key_from_row(row: &PgRow) -> Result<KeyRecord, Error> {
    let digest: Vec<u8> = row.try_get("digest").map_err(pg_error)?;
    let digest: [u8; 32] = digest.try_into().map_err(|_| corrupt("digest length"))?;
    let algorithm: String = row.try_get("digest_algorithm").map_err(pg_error)?;
    let algorithm = HashAlgorithm::from_tag(&algorithm).map_err(|_| corrupt("hash tag"))?;
    let metadata: String = row.try_get("metadata").map_err(pg_error)?;
    let metadata: Metadata =
        serde_json::from_str(&metadata).map_err(|e| Error::backend("postgres", e))?;
    let owner: String = row.try_get("owner").map_err(pg_error)?;
    let state: String = row.try_get("state").map_err(pg_error)?;
    let roles: Vec<String> = row.try_get("roles").map_err(pg_error)?;
    let time = |c: &str| row.try_get::<DateTime<Utc>, _>(c).map_err(pg_error);
    let opt_time = |c: &str| row.try_get::<Option<DateTime<Utc>>, _>(c).map_err(pg_error);
    let opt_id = |c: &str| {
        row.try_get::<Option<String>, _>(c)
            .map_err(pg_error)?
            .as_deref()
            .map(key_id)
            .transpose()
    };
    Ok(KeyRecord {
        id: key_id(row.try_get::<&str, _>("id").map_err(pg_error)?)?,
        kind: row.try_get("kind").map_err(pg_error)?,
        owner: Owner::new(&owner).map_err(|_| corrupt("owner"))?,
        name: row.try_get("name").map_err(pg_error)?,
        digest: TokenDigest::from_stored(algorithm, digest),
        preview: row.try_get("preview").map_err(pg_error)?,
        scopes: permissions_from(row.try_get("scopes").map_err(pg_error)?)?,
        roles: roles
            .iter()
            .map(|r| RoleName::new(r).map_err(|_| corrupt("role")))
            .collect::<Result<_, _>>()?,
        inherits_owner: row.try_get("inherits_owner").map_err(pg_error)?,
        metadata,
        state: KeyState::from_stored(&state).map_err(|_| corrupt("state"))?,
        created_at: time("created_at")?,
        expires_at: opt_time("expires_at")?,
        last_used_at: opt_time("last_used_at")?,
        revoked_at: opt_time("revoked_at")?,
        created_by: row.try_get("created_by").map_err(pg_error)?,
        rotated_from: opt_id("rotated_from")?,
        rotated_to: opt_id("rotated_to")?,
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
