//! The host's extension points: the issue hook (plan gating, quotas), the
//! owner-permissions resolver (what a user holds now, for inheriting
//! tokens), and the leak hook (told of every confirmed leak).

pub use crate::clock::{Clock, SystemClock};
pub use async_trait::async_trait;

use crate::actor::Actor;
use crate::error::Error;
use crate::key::{KeyId, Metadata, Owner, RoleName};
use crate::kind::TokenKind;
use crate::leak::ConfirmedLeak;
use crate::permission::PermissionSet;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::fmt;

/// What the issue hook sees: the whole request, on issue and on rotation
/// (which hands out a new token too).
#[derive(Debug)]
#[non_exhaustive]
pub struct IssueContext<'a> {
    /// Who asks.
    pub actor: &'a Actor,
    /// The kind to issue.
    pub kind: &'a TokenKind,
    /// The owner the key is for.
    pub owner: &'a Owner,
    /// The key's name.
    pub name: &'a str,
    /// Direct grants (the ceiling, for an inheriting key).
    pub scopes: &'a PermissionSet,
    /// Roles.
    pub roles: &'a BTreeSet<RoleName>,
    /// Whether the key inherits its owner's permissions.
    pub inherits_owner: bool,
    /// Everything the key will carry: scopes ∪ the roles' permissions now.
    pub grant: &'a PermissionSet,
    /// When the key will expire (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// Host data.
    pub metadata: &'a Metadata,
    /// On rotation, the key being replaced; `None` on issue.
    pub replaces: Option<&'a KeyId>,
}

/// The hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse, with a reason the caller may show (for example "API keys are a
    /// Pro feature").
    Refuse(String),
}

/// A host check run before every issue and every rotation (a rotation hands
/// out a new token: [`IssueContext::replaces`] tells them apart): plan
/// gating, quotas, feature flags.
#[async_trait::async_trait]
pub trait IssueHook: fmt::Debug + Send + Sync + 'static {
    /// Decides whether the key may be issued.
    async fn check(&self, request: &IssueContext<'_>) -> Result<Decision, Error>;
}

/// Tells keyward what an owner (a user) holds *now*, for personal access
/// tokens that inherit their owner's permissions.
#[async_trait::async_trait]
pub trait OwnerPermissions: fmt::Debug + Send + Sync + 'static {
    /// The owner's current permissions.
    async fn permissions_of(&self, owner: &Owner) -> Result<PermissionSet, Error>;
}

/// Told of every confirmed leak report (`Keyward::report_leak`),
/// after the key is revoked: e-mail the owner, open a ticket. Runs on the
/// reporting request, so hand slow work to a task of your own; it cannot
/// undo or fail the revoke.
#[async_trait::async_trait]
pub trait LeakHook: fmt::Debug + Send + Sync + 'static {
    /// A reported token was ours (`leak.newly_revoked` tells a first report
    /// from a repeat).
    async fn leaked(&self, leak: &ConfirmedLeak);
}
