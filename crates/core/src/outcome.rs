//! What verify answers: a verified key, or why not and the public answer.

use crate::bearer::BearerError;
use crate::error::Error;
use crate::format::ParseError;
use crate::key::{KeyId, Metadata, Owner};
use crate::permission::{PermissionSet, Requirement};
use crate::snapshot::KeySnapshot;
use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::Arc;

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
            .field("kind", &s.attributes.kind)
            .field("owner", &s.attributes.owner)
            .field("name", &s.attributes.name)
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
        &self.snapshot.attributes.kind
    }
    /// Whose key it is.
    pub fn owner(&self) -> &Owner {
        &self.snapshot.attributes.owner
    }
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.snapshot.attributes.name
    }
    /// The effective permissions at verification time (roles and, for
    /// inheriting keys, the owner's current permissions resolved).
    pub fn permissions(&self) -> &PermissionSet {
        &self.snapshot.permissions
    }
    /// The host data stored with the key.
    pub fn metadata(&self) -> &Metadata {
        &self.snapshot.attributes.metadata
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
    /// ([`Requirement::with_kinds`]): an API key on a management route.
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
    /// A stable name of the refusal for logs and metrics (`"revoked"`,
    /// `"insufficient_permissions"` …). Unlike the public answer it tells
    /// the variants apart: keep it in your logs, out of responses.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadHeader(_) => "bad_header",
            Self::Malformed(_) => "malformed",
            Self::NotFound => "not_found",
            Self::Revoked => "revoked",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::KindNotAccepted => "kind_not_accepted",
            Self::InsufficientPermissions { .. } => "insufficient_permissions",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_refusal_has_its_own_reason_for_logs() {
        let reasons = [
            Rejection::BadHeader(BearerError::Missing),
            Rejection::Malformed(ParseError::BadChecksum),
            Rejection::NotFound,
            Rejection::Revoked,
            Rejection::Disabled,
            Rejection::Expired,
            Rejection::KindNotAccepted,
            Rejection::InsufficientPermissions {
                missing: Requirement::nothing(),
            },
            Rejection::Unavailable(Error::NotFound),
        ]
        .map(|r| r.reason());
        let distinct: std::collections::BTreeSet<_> = reasons.iter().collect();
        assert_eq!(distinct.len(), reasons.len());
    }

    #[test]
    fn identity_failures_share_one_answer() {
        let answers = [
            Rejection::Malformed(ParseError::TooLong),
            Rejection::Malformed(ParseError::BadChecksum),
            Rejection::NotFound,
            Rejection::Revoked,
            Rejection::Disabled,
            Rejection::Expired,
        ]
        .map(|r| r.public_answer());
        assert!(answers.iter().all(|a| *a == answers[1] && a.status == 401));
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
