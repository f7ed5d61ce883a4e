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

    /// A stable, machine-readable code for this error, for API bodies and
    /// metrics (the `Display` text is for people and may change):
    ///
    /// | variant | code | [`Error::http_status`] |
    /// | --- | --- | --- |
    /// | `NotFound` | `not_found` | 404 |
    /// | `AlreadyExists` | `already_exists` | 409 |
    /// | `LimitReached` | `limit_reached` | 409 |
    /// | `Conflict` | `conflict` | 409 |
    /// | `InvalidTransition` | `invalid_transition` | 409 |
    /// | `RoleChanged` | `role_changed` | 409 |
    /// | `InvalidInput` | `invalid_input` | 422 |
    /// | `ExpiryNotAllowed` | `expiry_not_allowed` | 422 |
    /// | `OutsideCatalog` | `outside_catalog` | 422 |
    /// | `NotAuthorized` | `not_authorized` | 403 |
    /// | `RefusedByPolicy` | `refused_by_policy` | 403 |
    /// | `Backend` | `unavailable` | 503 |
    ///
    /// 409: the request is well formed but the key's (or role's) current
    /// state prevents it; 422: the request itself asks for something the
    /// kind or the rules do not allow.
    ///
    /// ```
    /// use keyward_core::Error;
    /// assert_eq!(Error::NotFound.code(), "not_found");
    /// assert_eq!(Error::invalid("name", "too long").http_status(), 422);
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::LimitReached { .. } => "limit_reached",
            Self::Conflict { .. } => "conflict",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::RoleChanged => "role_changed",
            Self::InvalidInput { .. } => "invalid_input",
            Self::ExpiryNotAllowed { .. } => "expiry_not_allowed",
            Self::OutsideCatalog { .. } => "outside_catalog",
            Self::NotAuthorized { .. } => "not_authorized",
            Self::RefusedByPolicy { .. } => "refused_by_policy",
            Self::Backend { .. } => "unavailable",
        }
    }

    /// The HTTP status that answers this error (see [`Error::code`]). A
    /// store outage is 503, never a 4xx that would blame the caller.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::AlreadyExists
            | Self::LimitReached { .. }
            | Self::Conflict { .. }
            | Self::InvalidTransition { .. }
            | Self::RoleChanged => 409,
            Self::InvalidInput { .. }
            | Self::ExpiryNotAllowed { .. }
            | Self::OutsideCatalog { .. } => 422,
            Self::NotAuthorized { .. } | Self::RefusedByPolicy { .. } => 403,
            Self::Backend { .. } => 503,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// One of each variant (a new variant fails to compile in `code` and
    /// `http_status` until it has both, and must be added here).
    fn every_variant() -> Vec<Error> {
        vec![
            Error::NotFound,
            Error::AlreadyExists,
            Error::LimitReached { limit: 3 },
            Error::Conflict {
                expected: KeyState::Active,
                actual: KeyState::Revoked,
            },
            Error::InvalidTransition {
                from: Status::Revoked,
                action: "enable",
            },
            Error::invalid("name", "too long"),
            Error::ExpiryNotAllowed {
                requested: Lifetime::Never,
                allowed: Vec::new(),
            },
            Error::RoleChanged,
            Error::not_authorized("no"),
            Error::OutsideCatalog {
                kind: "mt".to_owned(),
                outside: Vec::new(),
            },
            Error::RefusedByPolicy {
                reason: "plan".to_owned(),
            },
            Error::backend("test", "down"),
        ]
    }

    #[test]
    fn every_error_has_its_own_stable_code_and_a_status() {
        let errors = every_variant();
        let codes: BTreeSet<&str> = errors.iter().map(Error::code).collect();
        assert_eq!(codes.len(), errors.len(), "codes are distinct");
        let table: Vec<(&str, u16)> = errors.iter().map(|e| (e.code(), e.http_status())).collect();
        assert_eq!(
            table,
            [
                ("not_found", 404),
                ("already_exists", 409),
                ("limit_reached", 409),
                ("conflict", 409),
                ("invalid_transition", 409),
                ("invalid_input", 422),
                ("expiry_not_allowed", 422),
                ("role_changed", 409),
                ("not_authorized", 403),
                ("outside_catalog", 422),
                ("refused_by_policy", 403),
                ("unavailable", 503),
            ]
        );
        assert!(errors.iter().all(|e| {
            e.code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        }));
    }
}
