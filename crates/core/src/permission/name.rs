//! One permission or wildcard grant, as a plain value: below the error type
//! (which names it), so it imports nothing from the crate. Parsing, which
//! can fail, is in the parent module.

use std::fmt;

/// A permission or a wildcard grant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission(pub(super) String);

impl Permission {
    /// The permission as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this grant covers `other`: equal, or a wildcard over it.
    pub fn covers(&self, other: &Permission) -> bool {
        covers(self.0.as_bytes(), other.0.as_bytes())
    }

    /// A permission from text already checked (a piece of a packed set).
    pub(super) fn trusted(text: &str) -> Self {
        Self(text.to_owned())
    }
}

/// Whether `grant` covers `wanted`: equal, or a wildcard over it.
pub(super) fn covers(grant: &[u8], wanted: &[u8]) -> bool {
    match grant.strip_suffix(b"*") {
        None => grant == wanted,
        Some(prefix) => wanted.starts_with(prefix),
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
