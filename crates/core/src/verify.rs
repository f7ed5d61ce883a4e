//! Verification outcomes, the public answer, and `Authorization` parsing.

use crate::error::Error;
use crate::format::ParseError;
use crate::key::{KeyId, KeyRecord, KeyState, Metadata, Owner, RoleName};
use crate::kind::MAX_KEY_ID_LEN;
use crate::permission::{PermissionSet, Requirement};
use crate::secret::TokenDigest;
use crate::usage::UsageSlot;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// A key as verification needs it: loaded once, then checked on every
/// verify (from the cache, or straight after the store read). Immutable but
/// for its usage slot.
///
/// `repr(C)` with what every hit reads first, so a hit touches as few cache
/// lines as it can: the id and kind are compared inline, never through a
/// pointer.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct KeySnapshot {
    pub(crate) inline_id: InlineId,
    /// The kind's position in the service's format (`usize::MAX`: not
    /// configured, so no token can match it).
    pub(crate) kind_index: usize,
    pub(crate) state: KeyState,
    /// Whether the permissions were resolved (only for a live key).
    pub(crate) resolved: bool,
    pub(crate) inherits_owner: bool,
    pub(crate) digest: TokenDigest,
    /// When it expires, in micros (`i64::MAX`: never).
    pub(crate) expires_at: i64,
    /// When it was read from the store (micros, the service's clock).
    pub(crate) loaded_at: i64,
    /// The newest use since the last usage flush.
    pub(crate) usage: UsageSlot,
    /// Effective permissions when loaded (empty unless the key was live).
    pub(crate) permissions: PermissionSet,
    pub(crate) key_id: KeyId,
    pub(crate) kind: String,
    pub(crate) owner: Owner,
    pub(crate) name: String,
    /// `None` when empty (most keys): one word instead of three.
    pub(crate) metadata: Option<Box<Metadata>>,
    /// What the permissions were resolved from, for invalidation.
    pub(crate) roles: BTreeSet<RoleName>,
}

/// A key id held inline (ids are at most 24 bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InlineId {
    len: u8,
    bytes: [u8; MAX_KEY_ID_LEN],
}

impl InlineId {
    fn new(id: &str) -> Self {
        let mut bytes = [0u8; MAX_KEY_ID_LEN];
        let len = id.len().min(MAX_KEY_ID_LEN);
        if let (Some(to), Some(from)) = (bytes.get_mut(..len), id.as_bytes().get(..len)) {
            to.copy_from_slice(from);
        }
        Self {
            len: u8::try_from(len).unwrap_or(0),
            bytes,
        }
    }

    pub(crate) fn is(&self, id: &str) -> bool {
        self.bytes.get(..usize::from(self.len)) == Some(id.as_bytes())
    }
}

impl KeySnapshot {
    pub(crate) fn new(
        record: KeyRecord,
        kind_index: Option<usize>,
        permissions: PermissionSet,
        resolved: bool,
        loaded_at: i64,
    ) -> Self {
        Self {
            inline_id: InlineId::new(record.id.as_str()),
            kind_index: kind_index.unwrap_or(usize::MAX),
            state: record.state,
            resolved,
            inherits_owner: record.inherits_owner,
            digest: record.digest,
            expires_at: record
                .expires_at
                .map_or(i64::MAX, |at| at.timestamp_micros()),
            loaded_at,
            usage: UsageSlot::default(),
            permissions,
            key_id: record.id,
            kind: record.kind,
            owner: record.owner,
            name: record.name,
            metadata: (!record.metadata.is_empty()).then(|| Box::new(record.metadata)),
            roles: record.roles,
        }
    }
}

impl KeySnapshot {
    /// Whether the key would verify at `now` (micros; permissions aside).
    pub(crate) fn is_live(&self, now: i64) -> bool {
        self.state == KeyState::Active && self.expires_at > now
    }
}

/// A token that verified: everything a handler needs, without a second query.
///
/// Only [`crate::Keyward::verify`] makes one, so an [`crate::Actor::Token`]
/// always stands for a token that really verified. Cloning is cheap (it
/// shares the cached snapshot).
///
/// Nothing outside keyward can build one (its only field is private):
///
/// ```compile_fail,E0451
/// fn forge() -> keyward_core::VerifiedKey {
///     keyward_core::VerifiedKey { snapshot: unimplemented!() }
/// }
/// ```
#[derive(Clone)]
pub struct VerifiedKey {
    snapshot: Arc<KeySnapshot>,
}

impl fmt::Debug for VerifiedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.snapshot;
        f.debug_struct("VerifiedKey")
            .field("key_id", &s.key_id)
            .field("kind", &s.kind)
            .field("owner", &s.owner)
            .field("name", &s.name)
            .field("permissions", &s.permissions)
            .field("metadata", self.metadata())
            .field("expires_at", &self.expires_at())
            .finish()
    }
}

impl VerifiedKey {
    pub(crate) fn new(snapshot: Arc<KeySnapshot>) -> Self {
        Self { snapshot }
    }

    /// The key's public id.
    pub fn key_id(&self) -> &KeyId {
        &self.snapshot.key_id
    }
    /// The kind's prefix.
    pub fn kind(&self) -> &str {
        &self.snapshot.kind
    }
    /// Whose key it is.
    pub fn owner(&self) -> &Owner {
        &self.snapshot.owner
    }
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.snapshot.name
    }
    /// The effective permissions at verification time (roles and, for
    /// inheriting keys, the owner's current permissions resolved).
    pub fn permissions(&self) -> &PermissionSet {
        &self.snapshot.permissions
    }
    /// The host data stored with the key.
    pub fn metadata(&self) -> &Metadata {
        static EMPTY: Metadata = Metadata::new();
        self.snapshot.metadata.as_deref().unwrap_or(&EMPTY)
    }
    /// When it expires, if ever.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self.snapshot.expires_at {
            i64::MAX => None,
            at => DateTime::from_timestamp_micros(at),
        }
    }
}

/// Why a token was not accepted. Match it for logs and metrics; answer the
/// client with [`Rejection::public_answer`], which never tells the variants apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The `Authorization` header is missing or not `Bearer <token>`.
    #[error("bad authorization header: {0}")]
    BadHeader(#[from] BearerError),
    /// Not a token of this format (checked without touching storage).
    #[error("malformed token: {0}")]
    Malformed(#[from] ParseError),
    /// No such key, or the secret does not match (indistinguishable on purpose).
    #[error("unknown token")]
    NotFound,
    /// The key was revoked.
    #[error("token revoked")]
    Revoked,
    /// The key is disabled.
    #[error("token disabled")]
    Disabled,
    /// The key expired.
    #[error("token expired")]
    Expired,
    /// The token is valid, but of a kind the requirement does not accept
    /// ([`Requirement::for_kinds`]): an API key on a management route.
    #[error("token kind not accepted here")]
    KindNotAccepted,
    /// The token is valid but lacks permissions.
    #[error("insufficient permissions: missing {missing}")]
    InsufficientPermissions {
        /// The unsatisfied part of the requirement.
        missing: Requirement,
    },
    /// The store (or the owner-permission resolver) failed; nothing is known
    /// about the token.
    #[error("verification unavailable")]
    Unavailable(#[source] Error),
}

impl Rejection {
    /// The HTTP answer: 401 with one identical body for every identity
    /// failure, 403 for missing permissions, 503 when the store is down.
    ///
    /// ```
    /// use keyward_core::Rejection;
    /// assert_eq!(Rejection::Revoked.public_answer(), Rejection::NotFound.public_answer());
    /// assert_eq!(Rejection::Expired.public_answer().status, 401);
    /// ```
    pub fn public_answer(&self) -> PublicAnswer {
        match self {
            Self::InsufficientPermissions { .. } | Self::KindNotAccepted => PublicAnswer {
                status: 403,
                www_authenticate: r#"Bearer error="insufficient_scope""#,
                body: r#"{"error":"insufficient_scope","error_description":"The token lacks a permission this request needs."}"#,
            },
            Self::Unavailable(_) => PublicAnswer {
                status: 503,
                www_authenticate: "Bearer",
                body: r#"{"error":"temporarily_unavailable","error_description":"Try again later."}"#,
            },
            _ => PublicAnswer {
                status: 401,
                www_authenticate: r#"Bearer error="invalid_token""#,
                body: r#"{"error":"invalid_token","error_description":"The token is missing, malformed, unknown, expired or revoked."}"#,
            },
        }
    }
}

/// An HTTP answer for a rejected request (RFC 6750 style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicAnswer {
    /// 401, 403 or 503.
    pub status: u16,
    /// The `WWW-Authenticate` header value.
    pub www_authenticate: &'static str,
    /// A JSON body.
    pub body: &'static str,
}

/// Why an `Authorization` header value is not a usable Bearer credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No header, or an empty one.
    #[error("missing")]
    Missing,
    /// Another scheme (`Basic …`).
    #[error("not the Bearer scheme")]
    WrongScheme,
    /// `Bearer` with nothing after it.
    #[error("no token after Bearer")]
    MissingToken,
    /// More than one token, or stray whitespace inside.
    #[error("more than one value after Bearer")]
    ExtraContent,
}

/// Reads `Bearer <token>` from an `Authorization` header value: the scheme is
/// case-insensitive, surrounding whitespace is ignored, anything else is an error.
///
/// ```
/// use keyward_core::{bearer_token, BearerError};
/// assert_eq!(bearer_token(Some("bearer  mt_abc ")), Ok("mt_abc"));
/// assert_eq!(bearer_token(Some("Basic dXNlcg==")), Err(BearerError::WrongScheme));
/// assert_eq!(bearer_token(None), Err(BearerError::Missing));
/// ```
pub fn bearer_token(header: Option<&str>) -> Result<&str, BearerError> {
    let value = header.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(BearerError::Missing);
    }
    let (scheme, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::WrongScheme);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(BearerError::MissingToken);
    }
    if token.contains(|c: char| c.is_whitespace()) {
        return Err(BearerError::ExtraContent);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer t")), Ok("t"));
        assert_eq!(bearer_token(Some("BEARER\tt")), Ok("t"));
        assert_eq!(bearer_token(Some("  ")), Err(BearerError::Missing));
        assert_eq!(bearer_token(Some("Bearer")), Err(BearerError::MissingToken));
        assert_eq!(
            bearer_token(Some("Bearer   ")),
            Err(BearerError::MissingToken)
        );
        assert_eq!(
            bearer_token(Some("Bearer a b")),
            Err(BearerError::ExtraContent)
        );
        assert_eq!(
            bearer_token(Some("Bearertoken")),
            Err(BearerError::WrongScheme)
        );
        assert_eq!(bearer_token(Some("Token t")), Err(BearerError::WrongScheme));
    }

    trait NotDefault {
        const DEFAULT: bool = false;
    }
    struct DefaultProbe<T>(std::marker::PhantomData<T>);
    impl<T> NotDefault for DefaultProbe<T> {}
    impl<T: Default> DefaultProbe<T> {
        const DEFAULT: bool = true;
    }

    /// `Actor::Token` stands for a token that verified: a `VerifiedKey`
    /// has one private field and no public constructor (the compiler
    /// enforces both), and no `Default` that would make one from nothing.
    #[test]
    fn a_verified_key_cannot_be_made_outside_verify() {
        const {
            assert!(DefaultProbe::<String>::DEFAULT, "the probe sees Default");
        };
        const {
            assert!(
                !DefaultProbe::<VerifiedKey>::DEFAULT,
                "VerifiedKey is Default"
            );
        };
    }

    #[test]
    fn identity_failures_share_one_answer() {
        let answers = [
            Rejection::BadHeader(BearerError::Missing),
            Rejection::Malformed(ParseError::BadChecksum),
            Rejection::NotFound,
            Rejection::Revoked,
            Rejection::Disabled,
            Rejection::Expired,
        ]
        .map(|r| r.public_answer());
        assert!(answers.iter().all(|a| *a == answers[0] && a.status == 401));
        let forbidden = Rejection::InsufficientPermissions {
            missing: Requirement::nothing(),
        };
        assert_eq!(forbidden.public_answer().status, 403);
        assert_eq!(
            Rejection::KindNotAccepted.public_answer(),
            forbidden.public_answer()
        );
        let down = Rejection::Unavailable(Error::NotFound).public_answer();
        assert_eq!(down.status, 503);
    }
}
