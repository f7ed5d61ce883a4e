//! The one state machine: `Active ⇄ Disabled`, `Active | Disabled → Revoked`,
//! and the states it moves between ([`state`], below the error type).

pub(crate) mod state;

use crate::error::Error;
pub use state::{KeyState, Status};

impl KeyState {
    /// Reads a stored state.
    pub fn from_stored(value: &str) -> Result<Self, Error> {
        match value {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            "revoked" => Ok(Self::Revoked),
            _ => Err(Error::invalid("state", "unknown stored state")),
        }
    }
}

/// A state change asked of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Stop verifying until enabled.
    Disable,
    /// Verify again after a disable.
    Enable,
    /// Stop verifying for ever.
    Revoke,
}

impl Transition {
    /// The verb, for errors and audit.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Enable => "enable",
            Self::Revoke => "revoke",
        }
    }

    /// The state this transition leads to from `status`, or why not.
    ///
    /// Expired keys may be revoked (to make it final) but not enabled or
    /// disabled: neither would change what they can do.
    pub(crate) fn target(self, status: Status) -> Result<KeyState, Error> {
        use Status as S;
        match (self, status) {
            (Self::Disable, S::Active) => Ok(KeyState::Disabled),
            (Self::Enable, S::Disabled) => Ok(KeyState::Active),
            (Self::Revoke, S::Active | S::Disabled | S::Expired) => Ok(KeyState::Revoked),
            (_, from) => Err(Error::InvalidTransition {
                from,
                action: self.as_str(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status as S;

    #[test]
    fn the_state_machine() {
        use Transition as T;
        assert_eq!(T::Disable.target(S::Active).unwrap(), KeyState::Disabled);
        assert_eq!(T::Enable.target(S::Disabled).unwrap(), KeyState::Active);
        assert_eq!(T::Revoke.target(S::Active).unwrap(), KeyState::Revoked);
        assert_eq!(T::Revoke.target(S::Disabled).unwrap(), KeyState::Revoked);
        assert_eq!(T::Revoke.target(S::Expired).unwrap(), KeyState::Revoked);
        for t in [T::Disable, T::Enable, T::Revoke] {
            assert!(t.target(S::Revoked).is_err(), "revoked is final");
        }
        assert!(T::Enable.target(S::Active).is_err());
        assert!(T::Disable.target(S::Disabled).is_err());
        assert!(T::Enable.target(S::Expired).is_err());
        assert_eq!(
            T::Enable.target(S::Revoked).unwrap_err().to_string(),
            "cannot enable a key that is revoked"
        );
    }

    #[test]
    fn states_and_statuses_serialize_as_their_text() {
        for state in [KeyState::Active, KeyState::Disabled, KeyState::Revoked] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<KeyState>(&json).unwrap(), state);
            assert_eq!(KeyState::from_stored(state.as_str()).unwrap(), state);
        }
        for status in [S::Active, S::Disabled, S::Expired, S::Revoked] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(serde_json::from_str::<S>(&json).unwrap(), status);
        }
        assert!(serde_json::from_str::<KeyState>(r#""Active""#).is_err());
        assert!(serde_json::from_str::<S>(r#""gone""#).is_err());
    }
}
