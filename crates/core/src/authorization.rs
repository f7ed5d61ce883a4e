//! The one decision point: may this actor perform this operation?
//!
//! Every management operation of [`crate::Keyward`] describes itself as an
//! [`Operation`] and asks [`decide`] before it reads or writes anything it
//! would return or change. The service reaches the store for management
//! only through the [`Permit`] a positive decision returns, so an operation
//! that skipped the decision would not compile against the store.
//! docs/security.md states the same rules as a table; keep the two in step.
//!
//! Principles (DESIGN.md, "Authorization: one decision point"):
//! - handing out a token is issuing, whether by issue or by rotate: the
//!   actor may create keys of that kind for that owner, and holds
//!   everything the new token will carry; the kind's catalog bounds it;
//! - taking access away (revoke, disable) needs the revoke permission;
//!   giving it back (enable) needs its own, and, like issuing, holding
//!   what the key carries;
//! - editing a role is granting: the actor holds the role's old and new
//!   permissions, and roles live in an owner's namespace;
//! - tokens never manage their own kind (refused when the service is built).

use crate::actor::Actor;
use crate::error::Error;
use crate::format::TokenFormat;
use crate::key::Owner;
use crate::kind::{Manages, TokenKind};
use crate::permission::{Permission, PermissionSet};
use crate::store::KeyStore;

/// What a new token would carry, for the grant check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant<'a> {
    /// Direct scopes ∪ the permissions of its roles; for an inheriting
    /// token, the ceiling it inherits up to.
    pub(crate) carries: &'a PermissionSet,
    /// For an inheriting token: what its owner holds now.
    pub(crate) owner_now: Option<&'a PermissionSet>,
}

/// A management operation, as the decision point sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operation<'a> {
    /// Hand out a new token of `kind` for `owner` carrying `grant`.
    Issue {
        kind: &'a TokenKind,
        owner: &'a Owner,
        grant: Grant<'a>,
    },
    /// Replace a key of `kind` for `owner` by a successor carrying `grant`:
    /// issuing the successor and taking the predecessor away.
    Rotate {
        kind: &'a TokenKind,
        owner: &'a Owner,
        grant: Grant<'a>,
    },
    /// Revoke or disable a key: take access away.
    Revoke {
        kind: &'a TokenKind,
        owner: &'a Owner,
    },
    /// Enable a disabled key carrying `grant`: give its access back, which
    /// is granting it again.
    Enable {
        kind: &'a TokenKind,
        owner: &'a Owner,
        grant: Grant<'a>,
    },
    /// Read keys of `owner` (of `kind`, when the caller names one).
    View {
        kind: Option<&'a TokenKind>,
        owner: &'a Owner,
    },
    /// Read the roles of `owner`.
    ViewRoles { owner: &'a Owner },
    /// Create (`old: None`) or replace a role of `owner`.
    PutRole {
        owner: &'a Owner,
        old: Option<&'a PermissionSet>,
        new: &'a PermissionSet,
    },
    /// Delete a role of `owner` that grants `old`.
    DeleteRole {
        owner: &'a Owner,
        old: &'a PermissionSet,
    },
    /// Read audit events (of `owner`, when the query names one).
    ReadAudit { owner: Option<&'a Owner> },
    /// Read keys of every owner (expiring soon, or a list across owners).
    ViewAllOwners,
    /// Delete dead keys and old audit events of every owner.
    Prune,
}

/// Proof that [`decide`] allowed an operation: the service's only way to
/// the store for management calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Permit<'s> {
    store: &'s dyn KeyStore,
}

impl<'s> Permit<'s> {
    pub(crate) fn store(&self) -> &'s dyn KeyStore {
        self.store
    }
}

/// May `actor` perform `operation`? Every management call asks here.
pub(crate) fn decide<'s>(
    actor: &Actor,
    operation: &Operation<'_>,
    format: &TokenFormat,
    store: &'s dyn KeyStore,
) -> Result<Permit<'s>, Error> {
    rule(actor, operation, format)?;
    Ok(Permit { store })
}

fn rule(actor: &Actor, operation: &Operation<'_>, format: &TokenFormat) -> Result<(), Error> {
    use Operation as Op;
    match *operation {
        Op::Issue { kind, owner, grant } => {
            within_catalog(kind, grant.carries)?;
            manage_kind(actor, kind, owner, format, |rule| {
                [Some(&rule.create), None]
            })?;
            holds_grant(actor, owner, grant)
        }
        Op::Rotate { kind, owner, grant } => {
            within_catalog(kind, grant.carries)?;
            manage_kind(actor, kind, owner, format, |rule| {
                [Some(&rule.create), Some(&rule.revoke)]
            })?;
            holds_grant(actor, owner, grant)
        }
        Op::Revoke { kind, owner } => manage_kind(actor, kind, owner, format, |rule| {
            [Some(&rule.revoke), None]
        }),
        Op::Enable { kind, owner, grant } => {
            manage_kind(actor, kind, owner, format, |rule| {
                [Some(&rule.enable), None]
            })?;
            holds_grant(actor, owner, grant)
        }
        Op::View {
            kind: Some(kind),
            owner,
        } => manage_kind(actor, kind, owner, format, |rule| [Some(&rule.view), None]),
        Op::View { kind: None, owner } => match actor {
            Actor::Token(_) => Err(Error::not_authorized(
                "a token must name the kind of keys it lists",
            )),
            _ => manage_owner(actor, owner),
        },
        Op::ViewRoles { owner } => {
            no_tokens(actor, "tokens cannot read roles").and_then(|()| manage_owner(actor, owner))
        }
        Op::PutRole { owner, old, new } => {
            no_tokens(actor, "tokens cannot edit roles")?;
            manage_owner(actor, owner)?;
            if let Some(old) = old {
                holds(
                    actor,
                    old,
                    "cannot change a role granting permissions you do not hold",
                )?;
            }
            holds(
                actor,
                new,
                "cannot put a role granting permissions you do not hold",
            )
        }
        Op::DeleteRole { owner, old } => {
            no_tokens(actor, "tokens cannot edit roles")?;
            manage_owner(actor, owner)?;
            holds(
                actor,
                old,
                "cannot delete a role granting permissions you do not hold",
            )
        }
        Op::ReadAudit { owner } => match (actor, owner) {
            (Actor::Operator(_), _) => Ok(()),
            (Actor::Session(_), Some(owner)) => manage_owner(actor, owner),
            _ => Err(Error::not_authorized(
                "audit events are read by operators, or by users for an owner they manage",
            )),
        },
        Op::ViewAllOwners => match actor {
            Actor::Operator(_) => Ok(()),
            _ => Err(Error::not_authorized(
                "only operators read keys across owners",
            )),
        },
        Op::Prune => match actor {
            Actor::Operator(_) => Ok(()),
            _ => Err(Error::not_authorized("only operators prune")),
        },
    }
}

/// Users and operators manage an owner's keys whatever their kind; a token
/// only keys of a kind its own kind manages, of its own owner, holding the
/// permissions the rule names for the action.
fn manage_kind(
    actor: &Actor,
    kind: &TokenKind,
    owner: &Owner,
    format: &TokenFormat,
    needs: impl Fn(&Manages) -> [Option<&Permission>; 2],
) -> Result<(), Error> {
    let Actor::Token(token) = actor else {
        return manage_owner(actor, owner);
    };
    let actor_kind = format
        .kind(token.kind())
        .ok_or_else(|| Error::not_authorized("unknown token kind"))?;
    if actor_kind.manages().is_empty() {
        return Err(Error::not_authorized(
            "tokens of this kind cannot manage tokens; sign in to manage tokens",
        ));
    }
    let rule = actor_kind
        .manages()
        .iter()
        .find(|m| m.kind == kind.prefix())
        .ok_or_else(|| {
            Error::not_authorized(format!(
                "a {} token cannot manage {} tokens",
                actor_kind.prefix(),
                kind.prefix()
            ))
        })?;
    if token.owner() != owner {
        return Err(Error::not_authorized(
            "a token manages only tokens of its own owner",
        ));
    }
    for needed in needs(rule).into_iter().flatten() {
        if !token.permissions().covers(needed) {
            return Err(Error::not_authorized(format!(
                "the token lacks the permission {needed}"
            )));
        }
    }
    Ok(())
}

/// May a user (or operator) manage what belongs to `owner`? Tokens are
/// judged per kind of key, so they never pass here.
fn manage_owner(actor: &Actor, owner: &Owner) -> Result<(), Error> {
    match actor {
        Actor::Operator(_) => Ok(()),
        Actor::Session(s) if s.manages(owner) => Ok(()),
        Actor::Session(_) => Err(Error::not_authorized(
            "a user manages only their own tokens and roles",
        )),
        Actor::Token(_) => Err(Error::not_authorized(
            "a token is authorized per kind of key",
        )),
    }
}

fn no_tokens(actor: &Actor, reason: &str) -> Result<(), Error> {
    match actor {
        Actor::Token(_) => Err(Error::not_authorized(reason)),
        _ => Ok(()),
    }
}

/// Nobody grants more than they hold. For an inheriting token its owner
/// issues, what it could do right now (the ceiling ∩ what the owner holds)
/// must be within the session, so a narrowed session cannot mint a token
/// wider than itself; anyone else must hold the whole ceiling.
fn holds_grant(actor: &Actor, owner: &Owner, grant: Grant<'_>) -> Result<(), Error> {
    let reason = "cannot grant permissions the actor does not hold";
    match (actor, grant.owner_now) {
        (Actor::Session(s), Some(owner_now)) if s.subject() == owner => {
            holds(actor, &grant.carries.intersection(owner_now), reason)
        }
        _ => holds(actor, grant.carries, reason),
    }
}

fn holds(actor: &Actor, granted: &PermissionSet, reason: &str) -> Result<(), Error> {
    let held = match actor {
        Actor::Operator(_) => return Ok(()),
        Actor::Session(s) => s.permissions(),
        Actor::Token(v) => v.permissions(),
    };
    let beyond = held.uncovered(granted);
    if beyond.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = beyond.iter().map(Permission::as_str).collect();
        Err(Error::not_authorized(format!(
            "{reason}: {}",
            names.join(", ")
        )))
    }
}

/// The kind's catalog bounds what any token of it may carry, whoever asks.
fn within_catalog(kind: &TokenKind, carries: &PermissionSet) -> Result<(), Error> {
    let outside = kind.outside_catalog(carries);
    if outside.is_empty() {
        Ok(())
    } else {
        Err(Error::OutsideCatalog {
            kind: kind.prefix().to_owned(),
            outside,
        })
    }
}

/// Which kinds may manage which, checked when the service is built: a kind
/// manages only configured kinds, never itself, and never a kind that
/// itself manages tokens (so no chain or circle can let a token reach its
/// own kind).
pub(crate) fn check_kinds(format: &TokenFormat) -> Result<(), Error> {
    for kind in format.kinds() {
        for managed in kind.manages() {
            let Some(target) = format.kind(&managed.kind) else {
                return Err(Error::invalid("kinds", "a kind manages an unknown kind"));
            };
            if target.prefix() == kind.prefix() {
                return Err(Error::invalid(
                    "kinds",
                    "a kind cannot manage itself: its tokens could mint their own kind",
                ));
            }
            if !target.manages().is_empty() {
                return Err(Error::invalid(
                    "kinds",
                    "a kind cannot manage a kind that manages tokens",
                ));
            }
        }
    }
    Ok(())
}
