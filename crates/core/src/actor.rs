//! Who asks for a management call, and what each actor may do.

use crate::error::Error;
use crate::format::TokenFormat;
use crate::key::Owner;
use crate::kind::{Manages, TokenKind};
use crate::permission::PermissionSet;
use crate::verify::VerifiedKey;
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
    pub fn admin_of(mut self, owner: Owner) -> Self {
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

    fn manages(&self, owner: &Owner) -> bool {
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
    /// [`TokenKind::manages`] may manage tokens, and only those kinds.
    Token(VerifiedKey),
    /// The host itself or a human operator at the console: may do anything,
    /// and is audited by name.
    Operator(String),
}

impl Actor {
    /// An operator (a background job, an on-call engineer's tool). Control
    /// characters are dropped from the name, so it cannot forge audit lines;
    /// it is cut to 128 characters.
    pub fn operator(name: &str) -> Self {
        Self::Operator(name.chars().filter(|c| !c.is_control()).take(128).collect())
    }

    /// The label written to audit events and `created_by`.
    pub fn label(&self) -> String {
        match self {
            Self::Session(s) => format!("session:{}", s.subject),
            Self::Token(v) => format!("token:{}", v.key_id()),
            Self::Operator(name) => {
                let clean: String = name.chars().filter(|c| !c.is_control()).take(128).collect();
                format!("operator:{clean}")
            }
        }
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

/// The management actions, for authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Issue,
    Rotate,
    ChangeState,
    View,
}

/// May `actor` do `action` on keys of `kind` owned by `owner`?
pub(crate) fn authorize(
    actor: &Actor,
    action: Action,
    kind: &TokenKind,
    owner: &Owner,
    format: &TokenFormat,
) -> Result<(), Error> {
    match actor {
        Actor::Operator(_) | Actor::Session(_) => authorize_owner(actor, owner),
        Actor::Token(v) => {
            let actor_kind = format
                .kind(v.kind())
                .ok_or_else(|| Error::not_authorized("unknown token kind"))?;
            if actor_kind.managed_kinds().is_empty() {
                return Err(Error::not_authorized(
                    "tokens of this kind cannot manage tokens; sign in to manage tokens",
                ));
            }
            let rule = actor_kind
                .managed_kinds()
                .iter()
                .find(|m| m.kind == kind.prefix())
                .ok_or_else(|| {
                    Error::not_authorized(format!(
                        "a {} token cannot manage {} tokens",
                        actor_kind.prefix(),
                        kind.prefix()
                    ))
                })?;
            if v.owner() != owner {
                return Err(Error::not_authorized(
                    "a token manages only tokens of its own owner",
                ));
            }
            for needed in required(rule, action) {
                if !v.permissions().covers(needed) {
                    return Err(Error::not_authorized(format!(
                        "the token lacks the permission {needed}"
                    )));
                }
            }
            Ok(())
        }
    }
}

/// May a user (or operator) manage `owner`'s keys, whatever their kind?
/// Tokens are always judged per kind, so they never pass here.
pub(crate) fn authorize_owner(actor: &Actor, owner: &Owner) -> Result<(), Error> {
    match actor {
        Actor::Operator(_) => Ok(()),
        Actor::Session(s) if s.manages(owner) => Ok(()),
        Actor::Session(_) => Err(Error::not_authorized(
            "a user manages only their own tokens",
        )),
        Actor::Token(_) => Err(Error::not_authorized(
            "a token is authorized per kind of key",
        )),
    }
}

fn required(rule: &Manages, action: Action) -> Vec<&crate::permission::Permission> {
    match action {
        Action::Issue => vec![&rule.create],
        Action::Rotate => vec![&rule.create, &rule.revoke],
        Action::ChangeState => vec![&rule.revoke],
        Action::View => vec![&rule.view],
    }
}

/// Nobody grants more than they hold. `granted` is what the new key would
/// hold (scopes ∪ role permissions; for an inheriting key, its ceiling).
///
/// A user issuing an inheriting key for themselves passes: the key can never
/// exceed what they hold now.
pub(crate) fn authorize_grant(
    actor: &Actor,
    owner: &Owner,
    inherits_owner: bool,
    granted: &PermissionSet,
) -> Result<(), Error> {
    let held = match actor {
        Actor::Operator(_) => return Ok(()),
        Actor::Session(s) if inherits_owner && &s.subject == owner => return Ok(()),
        Actor::Session(s) => s.permissions(),
        Actor::Token(v) => v.permissions(),
    };
    let beyond = held.uncovered(granted);
    if beyond.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = beyond.iter().map(|p| p.as_str()).collect();
        Err(Error::not_authorized(format!(
            "cannot grant permissions the actor does not hold: {}",
            names.join(", ")
        )))
    }
}

/// Roles are edited by operators, or by users who hold every permission the
/// role grants. Tokens never edit roles.
pub(crate) fn authorize_role_edit(actor: &Actor, grants: &PermissionSet) -> Result<(), Error> {
    match actor {
        Actor::Operator(_) => Ok(()),
        Actor::Session(s) => {
            if s.permissions().covers_all(grants) {
                Ok(())
            } else {
                Err(Error::not_authorized(
                    "cannot put a role granting permissions the user does not hold",
                ))
            }
        }
        Actor::Token(_) => Err(Error::not_authorized("tokens cannot edit roles")),
    }
}
