//! The one error type of management calls and stores.

use crate::expiry::lifetime::Lifetime;
use crate::lifecycle::state::{KeyState, Status};
use crate::permission::name::Permission;

/// What went wrong in a management call or a store.
///
/// Variants are semantic, so a caller can act on them; none carries secret
/// material or echoes user input back (a pasted token in a name field stays out
/// of logs).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No key (or role) with that id exists.
    #[error("not found")]
    NotFound,
    /// A key with that id (or a role with that name) already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The owner already holds `limit` live keys of this kind.
    #[error("limit reached: at most {limit} live keys of this kind per owner")]
    LimitReached {
        /// The configured live-key limit.
        limit: u32,
    },
    /// The key changed between read and write (a compare-and-set lost a race).
    #[error("conflict: expected the key to be {expected}, found {actual}")]
    Conflict {
        /// The state the caller expected.
        expected: KeyState,
        /// The state the key is in.
        actual: KeyState,
    },
    /// The lifecycle does not allow this action from the key's status
    /// (for example enabling a revoked key).
    #[error("cannot {action} a key that is {from}")]
    InvalidTransition {
        /// The key's status.
        from: Status,
        /// The refused action, such as `"enable"`.
        action: &'static str,
    },
    /// An argument failed validation.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The argument, such as `"name"`.
        field: &'static str,
        /// Why, without echoing the value.
        reason: String,
    },
    /// The requested lifetime is not one the kind allows.
    #[error(
        "expiry {requested} is not allowed; choose one of: {}",
        list_lifetimes(allowed)
    )]
    ExpiryNotAllowed {
        /// What was asked for.
        requested: Lifetime,
        /// The kind's allowed choices.
        allowed: Vec<Lifetime>,
    },
    /// The role changed while the call ran (a role compare-and-set lost):
    /// it was created, edited or deleted since it was read.
    #[error("the role changed while the call ran; read it again")]
    RoleChanged,
    /// The actor may not do this (wrong owner, a token that cannot manage
    /// tokens, granting more than it holds …).
    #[error("not authorized: {reason}")]
    NotAuthorized {
        /// Why, for the caller (never secret).
        reason: String,
    },
    /// The key would carry permissions its kind's catalog does not offer
    /// ([`crate::TokenKind::with_catalog`]).
    #[error("the {kind} kind does not offer: {}", list_permissions(outside))]
    OutsideCatalog {
        /// The kind's prefix.
        kind: String,
        /// The requested grants the catalog does not cover.
        outside: Vec<Permission>,
    },
    /// The host's issue hook refused (for example plan gating).
    #[error("refused by policy: {reason}")]
    RefusedByPolicy {
        /// The reason the hook gave.
        reason: String,
    },
    /// The storage backend failed; the driver error is kept as the source.
    #[error("{backend} backend error")]
    Backend {
        /// Which backend, such as `"postgres"`.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotAuthorized`].
    pub fn not_authorized(reason: impl Into<String>) -> Self {
        Self::NotAuthorized {
            reason: reason.into(),
        }
    }

    /// Wraps a driver error as [`Error::Backend`].
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }
}

fn list_permissions(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(Permission::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_lifetimes(allowed: &[Lifetime]) -> String {
    allowed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
