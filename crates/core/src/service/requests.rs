//! What a host asks for and gets back: issue and list requests, an issued
//! key, key details.

use crate::expiry::Lifetime;
use crate::key::{KeyId, KeyRecord, Metadata, Owner, RoleName};
use crate::lifecycle::Status;
use crate::permission::PermissionSet;
use crate::secret::PlaintextToken;
use crate::store::Cursor;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// What to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub(super) kind: String,
    pub(super) owner: Owner,
    pub(super) name: String,
    pub(super) scopes: PermissionSet,
    pub(super) roles: BTreeSet<RoleName>,
    pub(super) inherits_owner: bool,
    pub(super) expires: Option<Lifetime>,
    pub(super) metadata: Metadata,
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
    /// [`OwnerPermissions`](crate::hooks::OwnerPermissions)), capped by `ceiling` (and any roles). `None`
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
///
/// Serialized with every field (absent times as `null`, times in RFC 3339,
/// `status` as its lowercase name, grants as sorted arrays): the shape a
/// dashboard or an API answers with. Nothing in it is secret.
#[derive(Debug, Clone, serde::Serialize)]
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
    /// The one place a record becomes details. The record is destructured
    /// without `..`, so a new [`KeyRecord`] field fails to compile here
    /// until it is shown to users or explicitly left out (as the digest is).
    pub(super) fn new(record: KeyRecord, permissions: PermissionSet, now: DateTime<Utc>) -> Self {
        let status = record.status(now);
        let KeyRecord {
            id,
            kind,
            owner,
            name,
            digest: _,
            preview,
            scopes,
            roles,
            inherits_owner,
            metadata,
            state: _,
            created_at,
            expires_at,
            last_used_at,
            revoked_at,
            created_by,
            rotated_from,
            rotated_to,
        } = record;
        Self {
            id,
            kind,
            owner,
            name,
            preview,
            status,
            scopes,
            roles,
            inherits_owner,
            permissions,
            metadata,
            created_at,
            expires_at,
            last_used_at,
            revoked_at,
            created_by,
            rotated_from,
            rotated_to,
        }
    }

    /// "never" or "5 days ago".
    pub fn last_used(&self, now: DateTime<Utc>) -> String {
        crate::key::time_ago(self.last_used_at, now)
    }
}

/// A new key: the token, shown once, and its details.
///
/// Not serializable itself: the token leaves it only through
/// [`IssuedKey::show_once`], which consumes it.
#[derive(Debug)]
pub struct IssuedKey {
    /// The plaintext token. Show it to the user now; it cannot be recovered.
    pub token: PlaintextToken,
    /// The stored key.
    pub key: KeyDetails,
}

impl IssuedKey {
    /// The answer to a create call: serializes as `{"token": "<the
    /// plaintext token>", "key": {…details…}}`, the one place a token is
    /// ever serialized. Consumes the issued key, so it happens once.
    ///
    /// ```
    /// # use keyward_core::{Actor, IssueRequest, Keyward, Owner, TokenKind};
    /// # async fn demo(keyward: &Keyward, actor: &Actor) -> Result<(), keyward_core::Error> {
    /// let issued = keyward.issue(actor, IssueRequest::new("tak", Owner::new("user:a")?, "ci")).await?;
    /// let body = serde_json::to_string(&issued.show_once()).expect("JSON");
    /// # let _ = body; Ok(()) }
    /// ```
    pub fn show_once(self) -> ShownOnce {
        ShownOnce(self)
    }
}

/// An issued key on its way to the user: see [`IssuedKey::show_once`].
/// `Debug` redacts the token, as [`PlaintextToken`]'s does.
#[derive(Debug)]
pub struct ShownOnce(IssuedKey);

impl serde::Serialize for ShownOnce {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("IssuedKey", 2)?;
        out.serialize_field("token", self.0.token.expose_secret())?;
        out.serialize_field("key", &self.0.key)?;
        out.end()
    }
}

/// Which keys to list.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub(super) owner: Option<Owner>,
    pub(super) name_contains: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) statuses: Vec<Status>,
    pub(super) last_used_before: Option<DateTime<Utc>>,
    pub(super) limit: usize,
    pub(super) after: Option<Cursor>,
}

impl ListRequest {
    /// The newest 50 keys of `owner`.
    pub fn new(owner: Owner) -> Self {
        Self {
            owner: Some(owner),
            ..Self::all_owners()
        }
    }
    /// The newest 50 keys of every owner. Operators only: anyone else is
    /// refused (and the refusal audited).
    pub fn all_owners() -> Self {
        Self {
            owner: None,
            name_contains: None,
            kind: None,
            statuses: Vec::new(),
            last_used_before: None,
            limit: 50,
            after: None,
        }
    }
    /// Only keys not used since `at`: last used before it, or never used
    /// (a key never used counts as used before any time).
    pub fn last_used_before(mut self, at: DateTime<Utc>) -> Self {
        self.last_used_before = Some(at);
        self
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
