//! Who asks for a management call. What each actor may do is decided in
//! one place, [`crate::authorization`]'s rules.

use crate::key::Owner;
use crate::outcome::VerifiedKey;
use crate::permission::PermissionSet;
use std::collections::BTreeSet;

/// A logged-in user, as the host's own authentication established it.
#[derive(Debug, Clone)]
pub struct Session {
    subject: Owner,
    permissions: PermissionSet,
    admin_of: BTreeSet<Owner>,
}

impl Session {
    /// A user (`subject`) holding `permissions`. They manage their own tokens:
    /// keys whose owner is `subject`.
    pub fn new(subject: Owner, permissions: PermissionSet) -> Self {
        Self {
            subject,
            permissions,
            admin_of: BTreeSet::new(),
        }
    }

    /// Also lets the user manage the tokens of `owner` (an account or
    /// workspace they administer).
    pub fn with_admin_of(mut self, owner: Owner) -> Self {
        self.admin_of.insert(owner);
        self
    }

    /// The user.
    pub fn subject(&self) -> &Owner {
        &self.subject
    }

    /// What the user holds.
    pub fn permissions(&self) -> &PermissionSet {
        &self.permissions
    }

    /// Whether the user manages what belongs to `owner`.
    pub(crate) fn manages(&self, owner: &Owner) -> bool {
        &self.subject == owner || self.admin_of.contains(owner)
    }
}

/// Who asks. Every management call names one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Actor {
    /// A logged-in user.
    Session(Session),
    /// A token that just verified. Only tokens of a kind configured with
    /// [`crate::TokenKind::with_manages`] may manage tokens, and only those kinds.
    Token(VerifiedKey),
    /// The host itself or a human operator at the console: may do anything,
    /// and is audited by name.
    Operator(OperatorName),
}

impl Actor {
    /// An operator (a background job, an on-call engineer's tool). Control
    /// characters are dropped from the name, so it cannot forge audit lines;
    /// it is cut to 128 characters.
    pub fn operator(name: &str) -> Self {
        Self::Operator(OperatorName(
            name.chars().filter(|c| !c.is_control()).take(128).collect(),
        ))
    }

    /// The label written to audit events and `created_by`.
    pub fn label(&self) -> String {
        match self {
            Self::Session(s) => format!("session:{}", s.subject),
            Self::Token(v) => format!("token:{}", v.key_id()),
            Self::Operator(name) => format!("operator:{}", name.0),
        }
    }
}

/// An operator's name, as [`Actor::operator`] cleaned it: no control
/// characters, at most 128 characters. It can only be made there, so every
/// operator in an audit log has a clean name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorName(String);

impl OperatorName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Session> for Actor {
    fn from(s: Session) -> Self {
        Self::Session(s)
    }
}

impl From<VerifiedKey> for Actor {
    fn from(v: VerifiedKey) -> Self {
        Self::Token(v)
    }
}
