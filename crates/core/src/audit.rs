//! Audit events: who did what to which key, and how it ended.

use crate::key::{KeyId, Owner, RoleName};
use chrono::{DateTime, Utc};
use std::fmt;

/// The management action an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A key was issued.
    Issue,
    /// A key was rotated (the event names the predecessor; the successor's
    /// id is in `detail`).
    Rotate,
    /// A key was revoked.
    Revoke,
    /// A key was disabled.
    Disable,
    /// A key was enabled.
    Enable,
    /// A role was created or changed.
    PutRole,
    /// A role was deleted.
    DeleteRole,
    /// Keys or details were read.
    View,
    /// Dead keys and old audit events were pruned (the counts are in
    /// `detail`).
    Prune,
}

impl AuditAction {
    /// The stored name (`"issue"`, `"put_role"` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Rotate => "rotate",
            Self::Revoke => "revoke",
            Self::Disable => "disable",
            Self::Enable => "enable",
            Self::PutRole => "put_role",
            Self::DeleteRole => "delete_role",
            Self::View => "view",
            Self::Prune => "prune",
        }
    }

    /// Reads a stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        [
            Self::Issue,
            Self::Rotate,
            Self::Revoke,
            Self::Disable,
            Self::Enable,
            Self::PutRole,
            Self::DeleteRole,
            Self::View,
            Self::Prune,
        ]
        .into_iter()
        .find(|a| a.as_str() == value)
    }
}

/// As its stored name (`"issue"`, `"put_role"` …).
impl serde::Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the call ended. Serialized as `"succeeded"`, or `{"refused":
/// "<reason>"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It took effect.
    Succeeded,
    /// It was refused; the reason is the error's message (never secret).
    Refused(String),
}

/// One audit event. Holds no secret material: the key id is public and the
/// token never reaches here.
///
/// Serialized with every field, absent ones as `null`; `at` in RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Who asked (`session:user:alice`, `token:<key id>`, `operator:oncall`).
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// The key concerned, when there is one.
    pub key_id: Option<KeyId>,
    /// The key's name at the time.
    pub key_name: Option<String>,
    /// The key's (or request's) owner.
    pub owner: Option<Owner>,
    /// The role concerned, for role events.
    pub role: Option<RoleName>,
    /// Extra context, such as the successor's id on rotation.
    pub detail: Option<String>,
    /// How it ended.
    pub outcome: AuditOutcome,
}

impl AuditEvent {
    /// A succeeded event with no key; fill the rest with the `with_*` methods.
    pub fn new(at: DateTime<Utc>, actor: impl Into<String>, action: AuditAction) -> Self {
        Self {
            at,
            actor: actor.into(),
            action,
            key_id: None,
            key_name: None,
            owner: None,
            role: None,
            detail: None,
            outcome: AuditOutcome::Succeeded,
        }
    }

    /// Names the key.
    pub fn with_key(mut self, id: &KeyId, name: &str, owner: &Owner) -> Self {
        self.key_id = Some(id.clone());
        self.key_name = Some(name.to_owned());
        self.owner = Some(owner.clone());
        self
    }

    /// Names the owner (when there is no key yet).
    pub fn with_owner(mut self, owner: &Owner) -> Self {
        self.owner = Some(owner.clone());
        self
    }

    /// Names the role.
    pub fn with_role(mut self, role: &RoleName) -> Self {
        self.role = Some(role.clone());
        self
    }

    /// Adds context.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets how it ended (a new event has succeeded).
    pub fn with_outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }
}

/// Which audit events to read, newest first (latest appended first).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only events about this owner.
    pub owner: Option<Owner>,
    /// Only events about this key.
    pub key_id: Option<KeyId>,
    /// Only events of this action.
    pub action: Option<AuditAction>,
    /// Only events at or after this time (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// At most this many (1..=1000).
    pub limit: usize,
}

impl AuditQuery {
    /// The newest `limit` events.
    pub fn newest(limit: usize) -> Self {
        Self {
            owner: None,
            key_id: None,
            action: None,
            since: None,
            until: None,
            limit,
        }
    }

    /// Only events about `owner`.
    pub fn owner(mut self, owner: &Owner) -> Self {
        self.owner = Some(owner.clone());
        self
    }

    /// Only events about `key_id`.
    pub fn key_id(mut self, key_id: &KeyId) -> Self {
        self.key_id = Some(key_id.clone());
        self
    }

    /// Only events of `action`.
    pub fn action(mut self, action: AuditAction) -> Self {
        self.action = Some(action);
        self
    }

    /// Only events at or after `since`.
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Only events before `until`.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// Whether `event` passes the filters: the reference semantics adapters
    /// implement in their query language.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.owner
            .as_ref()
            .is_none_or(|o| event.owner.as_ref() == Some(o))
            && self
                .key_id
                .as_ref()
                .is_none_or(|k| event.key_id.as_ref() == Some(k))
            && self.action.is_none_or(|a| event.action == a)
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at < until)
    }
}
