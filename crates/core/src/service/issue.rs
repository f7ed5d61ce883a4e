//! Issue and rotate: both hand out a new token, through the same checks.

use super::requests::{IssueRequest, IssuedKey, KeyDetails};
use super::{ID_ATTEMPTS, Keyward, MAX_ROLES_PER_KEY, keyed};
use crate::actor::Actor;
use crate::audit::{AuditAction, AuditEvent};
use crate::authorization::Operation;
use crate::error::Error;
use crate::format::{TokenFormat, preview};
use crate::hooks::{Decision, IssueContext};
use crate::key::{KeyId, KeyRecord, Metadata, Owner, RoleName, validate_metadata, validate_name};
use crate::kind::TokenKind;
use crate::lifecycle::{KeyState, Status};
use crate::permission::{MAX_GRANTS, PermissionSet};
use crate::secret::PlaintextToken;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeSet;

impl Keyward {
    /// The issue hook's answer for a request (issue or rotation).
    pub(super) async fn ask_hook(&self, context: IssueContext<'_>) -> Result<(), Error> {
        let Some(hook) = &self.inner.hook else {
            return Ok(());
        };
        match hook.check(&context).await? {
            Decision::Allow => Ok(()),
            Decision::Refuse(reason) => Err(Error::RefusedByPolicy { reason }),
        }
    }

    // ----------------------------------------------------------------- issue

    /// Issues a key. The token is in the result and nowhere else.
    ///
    /// Checks, in order: kind; name, metadata and sizes; then the decision
    /// point (the actor may create keys of this kind for this owner, holds
    /// everything the key will carry, within the kind's catalog); that the
    /// roles exist; the expiry policy; the issue hook; then the live-key
    /// limit (atomically, in the store). Everything that can fail runs
    /// before the write. Every refusal is audited.
    pub async fn issue(&self, actor: &Actor, request: IssueRequest) -> Result<IssuedKey, Error> {
        let now = self.now();
        let mut event =
            AuditEvent::new(now, actor.label(), AuditAction::Issue).with_owner(&request.owner);
        if self.check_name(&request.name).is_ok() {
            event.key_name = Some(request.name.clone());
        }
        match self.try_issue(actor, request, now, &event).await {
            Ok(issued) => Ok(issued),
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    pub(super) async fn try_issue(
        &self,
        actor: &Actor,
        mut request: IssueRequest,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<IssuedKey, Error> {
        let kind = self.kind(&request.kind)?;
        self.check_name(&request.name)?;
        self.check_metadata(&request.metadata)?;
        check_grant_size(&request.scopes, &request.roles)?;
        if request.inherits_owner && request.scopes == PermissionSet::all() {
            // "No cap beyond the owner's own" is still within the catalog.
            if let Some(catalog) = kind.catalog() {
                request.scopes = catalog.clone();
            }
        }
        let carried = self
            .carried_by(
                &request.owner,
                &request.scopes,
                &request.roles,
                request.inherits_owner,
            )
            .await?;
        let permit = self.decide(
            actor,
            &Operation::Issue {
                kind,
                owner: &request.owner,
                grant: carried.grant(),
            },
        )?;
        if carried.roles_found != request.roles.len() {
            return Err(Error::invalid("roles", "a role does not exist"));
        }
        let expires_at = kind.expiry().resolve(request.expires, now)?;
        self.ask_hook(IssueContext {
            actor,
            kind,
            owner: &request.owner,
            name: &request.name,
            scopes: &request.scopes,
            roles: &request.roles,
            inherits_owner: request.inherits_owner,
            grant: &carried.carries,
            expires_at,
            metadata: &request.metadata,
            replaces: None,
        })
        .await?;
        let permissions = carried.can_do(Some(kind));
        for _ in 0..ID_ATTEMPTS {
            let contents = Contents {
                owner: &request.owner,
                name: &request.name,
                scopes: &request.scopes,
                roles: &request.roles,
                inherits_owner: request.inherits_owner,
                metadata: &request.metadata,
                expires_at,
                rotated_from: None,
            };
            let (token, record) = self.new_record(kind, actor, now, contents)?;
            let event = keyed(event.clone(), &record.id);
            let written = permit
                .store()
                .insert_key(&record, kind.live_limit(), now, &event)
                .await;
            let record = match written {
                Ok(()) => record,
                Err(Error::AlreadyExists) => continue,
                Err(e) => {
                    self.committed(e, &record.id, |r| r.digest.matches(&record.digest))
                        .await?
                }
            };
            let key = KeyDetails::new(record, permissions, now);
            return Ok(IssuedKey { token, key });
        }
        Err(Error::AlreadyExists)
    }

    /// A valid name that holds no token: a user who pastes their token into
    /// the name field would otherwise see it in every list and audit log.
    pub(super) fn check_name(&self, name: &str) -> Result<(), Error> {
        validate_name(name)?;
        if self.holds_token(name) {
            return Err(Error::invalid(
                "name",
                "holds a token; never put a token in a key's name",
            ));
        }
        Ok(())
    }

    /// Valid metadata with no token in any key or value.
    pub(super) fn check_metadata(&self, metadata: &Metadata) -> Result<(), Error> {
        validate_metadata(metadata)?;
        if metadata
            .iter()
            .any(|(k, v)| self.holds_token(k) || self.holds_token(v))
        {
            return Err(Error::invalid(
                "metadata",
                "holds a token; never store a token in metadata",
            ));
        }
        Ok(())
    }

    /// Whether `text` hides a token of the format anywhere (glued to other
    /// words, with invisible characters inside, its prefix in capitals).
    pub(super) fn holds_token(&self, text: &str) -> bool {
        self.inner.format.contains_token(text)
    }

    /// A fresh token and the record of `contents` holding its digest, built
    /// once from the parts the generator returns.
    pub(super) fn new_record(
        &self,
        kind: &TokenKind,
        actor: &Actor,
        now: DateTime<Utc>,
        contents: Contents<'_>,
    ) -> Result<(PlaintextToken, KeyRecord), Error> {
        let new = TokenFormat::generate(kind, self.inner.rng.as_ref())?;
        let record = KeyRecord {
            preview: preview(kind, &new.key_id),
            digest: self.inner.hasher.digest(&new.secret),
            id: new.key_id.clone(),
            kind: kind.prefix().to_owned(),
            owner: contents.owner.clone(),
            name: contents.name.to_owned(),
            scopes: contents.scopes.clone(),
            roles: contents.roles.clone(),
            inherits_owner: contents.inherits_owner,
            metadata: contents.metadata.clone(),
            state: KeyState::Active,
            created_at: now,
            expires_at: contents.expires_at,
            last_used_at: None,
            revoked_at: None,
            created_by: actor.label(),
            rotated_from: contents.rotated_from.cloned(),
            rotated_to: None,
        };
        Ok((new.token, record))
    }

    // ---------------------------------------------------------------- rotate

    /// Issues a successor with the same owner, kind, name, scopes, roles and
    /// metadata, and schedules this key to expire `overlap` from now, so both
    /// verify during the handover.
    ///
    /// Rotation hands out a new token, so it is decided as issuing one: the
    /// actor must be allowed to create keys of this kind for the owner, hold
    /// everything the successor will carry (its scopes and its roles'
    /// permissions now; for an inheriting key, its ceiling), within the
    /// kind's catalog, and the issue hook is asked
    /// ([`IssueContext::replaces`] names this key). A token actor also needs
    /// the permission to revoke, since the predecessor is taken away.
    ///
    /// The successor lives as long as the original did (`expires_at −
    /// created_at`; never-expiring stays never), but never past the latest
    /// expiry the kind's policy allows now. Rotation does not count against
    /// the live-key limit: the successor takes the predecessor's place. Only
    /// an active key that was not already rotated can be rotated, and only
    /// once the key it replaced has stopped working (its overlap ended, or
    /// it was revoked): one handover at a time, so rotation can never grow
    /// an owner's working keys past the limit plus one per key.
    pub async fn rotate(
        &self,
        actor: &Actor,
        id: &KeyId,
        overlap: TimeDelta,
    ) -> Result<IssuedKey, Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::Rotate);
        let record = match self.inner.store.key(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(self.audit_refusal(keyed(event, id), Error::NotFound).await),
            Err(e) => return Err(e),
        };
        let event = event.with_key(&record.id, &record.name, &record.owner);
        match self.try_rotate(actor, &record, overlap, now, &event).await {
            Ok(issued) => Ok(issued),
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    pub(super) async fn try_rotate(
        &self,
        actor: &Actor,
        old: &KeyRecord,
        overlap: TimeDelta,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<IssuedKey, Error> {
        let kind = self.kind(&old.kind)?;
        let carried = self
            .carried_by(&old.owner, &old.scopes, &old.roles, old.inherits_owner)
            .await?;
        let permit = self.decide(
            actor,
            &Operation::Rotate {
                kind,
                owner: &old.owner,
                grant: carried.grant(),
            },
        )?;
        let status = old.status(now);
        if status != Status::Active {
            return Err(Error::InvalidTransition {
                from: status,
                action: "rotate",
            });
        }
        if old.rotated_to.is_some() {
            return Err(Error::invalid(
                "key",
                "already rotated; rotate its successor",
            ));
        }
        // One handover at a time: while the key this one replaced still works
        // (or can be re-enabled), another rotation would add yet another
        // working key, and a chain of rotations would outgrow the limit.
        if let Some(previous) = &old.rotated_from
            && let Some(previous) = permit.store().get_key(previous).await?
            && previous.is_live(now)
        {
            return Err(Error::invalid(
                "key",
                "the previous rotation's overlap has not ended; revoke the replaced key first",
            ));
        }
        if overlap < TimeDelta::zero() || overlap > self.inner.max_overlap {
            return Err(Error::invalid(
                "overlap",
                "must be between zero and the configured maximum",
            ));
        }
        let handover_ends = now
            .checked_add_signed(overlap)
            .ok_or_else(|| Error::invalid("overlap", "out of the representable range"))?;
        let old_expires_at = old
            .expires_at
            .map_or(handover_ends, |at| at.min(handover_ends));
        let expires_at = successor_expiry(kind, old, now)?;
        self.ask_hook(IssueContext {
            actor,
            kind,
            owner: &old.owner,
            name: &old.name,
            scopes: &old.scopes,
            roles: &old.roles,
            inherits_owner: old.inherits_owner,
            grant: &carried.carries,
            expires_at,
            metadata: &old.metadata,
            replaces: Some(&old.id),
        })
        .await?;
        let permissions = carried.can_do(Some(kind));
        for _ in 0..ID_ATTEMPTS {
            let contents = Contents {
                owner: &old.owner,
                name: &old.name,
                scopes: &old.scopes,
                roles: &old.roles,
                inherits_owner: old.inherits_owner,
                metadata: &old.metadata,
                expires_at,
                rotated_from: Some(&old.id),
            };
            let (token, new) = self.new_record(kind, actor, now, contents)?;
            let event = event.clone().with_detail(format!("successor {}", new.id));
            let written = permit
                .store()
                .rotate_key(&old.id, KeyState::Active, old_expires_at, &new, &event)
                .await;
            match written {
                Ok(()) => {}
                Err(Error::AlreadyExists) => continue,
                Err(e) => {
                    self.committed(e, &old.id, |r| r.rotated_to.as_ref() == Some(&new.id))
                        .await?;
                }
            }
            let key = KeyDetails::new(new, permissions, now);
            return Ok(IssuedKey { token, key });
        }
        Err(Error::AlreadyExists)
    }
}

/// A rotation's successor lives as long as its predecessor did, but never
/// past the latest expiry the kind's policy allows now.
pub(super) fn successor_expiry(
    kind: &TokenKind,
    old: &KeyRecord,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let wanted = match old.expires_at {
        None => None,
        Some(at) => Some(
            now.checked_add_signed(at - old.created_at)
                .ok_or_else(|| Error::invalid("expiry", "out of the representable range"))?,
        ),
    };
    Ok(match (wanted, kind.expiry().latest_expiry(now)?) {
        (wanted, None) => wanted,
        (None, Some(latest)) => Some(latest),
        (Some(wanted), Some(latest)) => Some(wanted.min(latest)),
    })
}

/// Sizes are capped before any work is done on them.
pub(super) fn check_grant_size(
    scopes: &PermissionSet,
    roles: &BTreeSet<RoleName>,
) -> Result<(), Error> {
    if scopes.len() > MAX_GRANTS {
        return Err(Error::invalid(
            "scopes",
            format!("at most {MAX_GRANTS} per key"),
        ));
    }
    if roles.len() > MAX_ROLES_PER_KEY {
        return Err(Error::invalid(
            "roles",
            format!("at most {MAX_ROLES_PER_KEY} per key"),
        ));
    }
    Ok(())
}

/// What a new key holds: the request's parts on issue, the predecessor's on
/// rotation.
#[derive(Clone, Copy)]
pub(super) struct Contents<'a> {
    owner: &'a Owner,
    name: &'a str,
    scopes: &'a PermissionSet,
    roles: &'a BTreeSet<RoleName>,
    inherits_owner: bool,
    metadata: &'a Metadata,
    expires_at: Option<DateTime<Utc>>,
    rotated_from: Option<&'a KeyId>,
}
