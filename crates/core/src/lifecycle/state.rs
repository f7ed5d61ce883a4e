//! The stored states and what a user sees. Plain values, below the error
//! type (which names them), so they import nothing from the crate.

use std::fmt;

/// The stored state. Expiry is not a state: it is derived from `expires_at`.
/// Serialized as its stored text (`"active"`, `"disabled"`, `"revoked"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Verifies.
    Active,
    /// Refused until enabled again; the same token then works again.
    Disabled,
    /// Refused for ever. Terminal.
    Revoked,
}

impl KeyState {
    /// `"active"`, `"disabled"` or `"revoked"`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a user sees: the state, with expiry folded in. Serialized as its
/// `Display` text (`"active"`, `"disabled"`, `"expired"`, `"revoked"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Verifies.
    Active,
    /// Disabled and not expired.
    Disabled,
    /// Past `expires_at` and not revoked.
    Expired,
    /// Revoked.
    Revoked,
}

impl Status {
    /// Live keys count against the limit: not revoked and not expired.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Active | Self::Disabled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        })
    }
}
