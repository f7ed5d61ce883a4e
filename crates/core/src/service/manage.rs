//! Managing existing keys: state changes, reads, roles and audit.

use super::requests::{KeyDetails, ListRequest};
use super::{CAS_ATTEMPTS, Keyward, keyed};
use crate::actor::Actor;
use crate::audit::{AuditAction, AuditEvent, AuditQuery};
use crate::authorization::{Operation, Permit};
use crate::error::Error;
use crate::key::{KeyId, KeyRecord, Owner, Role, RoleName};
use crate::lifecycle::Transition;
use crate::lifecycle::{KeyState, Status};
use crate::permission::{MAX_GRANTS, PermissionSet};
use crate::store::{ListQuery, MAX_PAGE_SIZE, Page, check_page_size};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeSet;

impl Keyward {
    // ---------------------------------------------------------- transitions

    /// Revokes a key: final, effective on the next verify.
    ///
    /// One unconditional write in the store, so a revoke never loses to a
    /// racing disable or enable. The details returned carry no permissions
    /// (a revoked key can do nothing), and no role or owner lookup runs, so
    /// neither can keep a revoke from taking effect.
    pub async fn revoke(&self, actor: &Actor, id: &KeyId) -> Result<KeyDetails, Error> {
        self.transition(actor, id, Transition::Revoke, None).await
    }

    /// [`Keyward::revoke`], recording why in the revoke's audit event
    /// (`detail`): where a leaked token was found, who reported it.
    ///
    /// The reason is at most [`MAX_REVOKE_REASON_LEN`] bytes of text
    /// without control characters, and must not hold a token of any
    /// configured kind (a reason quoting the leaked token would store it in
    /// the audit log); otherwise the call fails with
    /// [`Error::InvalidInput`] (field `reason`) before anything is read or
    /// written, and the refusal's event leaves the reason out.
    pub async fn revoke_with_reason(
        &self,
        actor: &Actor,
        id: &KeyId,
        reason: &str,
    ) -> Result<KeyDetails, Error> {
        self.transition(actor, id, Transition::Revoke, Some(reason))
            .await
    }

    /// Disables a key until [`Keyward::enable`]; the same token then works
    /// again. Needs the permission to revoke. The details returned carry no
    /// permissions (a disabled key can do nothing).
    pub async fn disable(&self, actor: &Actor, id: &KeyId) -> Result<KeyDetails, Error> {
        self.transition(actor, id, Transition::Disable, None).await
    }

    /// Re-enables a disabled key. A revoked key can never be enabled. Giving
    /// access back is granting it again: it needs its own permission
    /// ([`crate::Manages::enable`]) and, as for issuing, that the actor holds
    /// what the key carries.
    pub async fn enable(&self, actor: &Actor, id: &KeyId) -> Result<KeyDetails, Error> {
        self.transition(actor, id, Transition::Enable, None).await
    }

    pub(super) async fn transition(
        &self,
        actor: &Actor,
        id: &KeyId,
        transition: Transition,
        reason: Option<&str>,
    ) -> Result<KeyDetails, Error> {
        self.transition_from(actor, id, None, transition, reason)
            .await
    }

    /// [`Keyward::transition`], deciding first on `read` (the key as the
    /// caller just read it, sparing a second read) when given; a lost race
    /// reads again as ever.
    pub(super) async fn transition_from(
        &self,
        actor: &Actor,
        id: &KeyId,
        mut read: Option<KeyRecord>,
        transition: Transition,
        reason: Option<&str>,
    ) -> Result<KeyDetails, Error> {
        let action = match transition {
            Transition::Revoke => AuditAction::Revoke,
            Transition::Disable => AuditAction::Disable,
            Transition::Enable => AuditAction::Enable,
        };
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), action);
        // Checked before anything is read: a refused reason never reaches
        // the audit log, not even in the refusal.
        if let Some(reason) = reason
            && let Err(e) = self.check_reason(reason)
        {
            return Err(self.audit_refusal(keyed(event, id), e).await);
        }
        let event = match reason {
            Some(reason) => event.with_detail(format!("reason: {reason}")),
            None => event,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let stored = match read.take() {
                Some(record) => Ok(Some(record)),
                None => self.inner.store.key(id).await,
            };
            let record = match stored {
                Ok(Some(record)) => record,
                Ok(None) => {
                    return Err(self.audit_refusal(keyed(event, id), Error::NotFound).await);
                }
                Err(e) => return Err(e),
            };
            let event = event
                .clone()
                .with_key(&record.id, &record.name, &record.owner);
            match self
                .try_transition(actor, record, transition, now, &event)
                .await
            {
                Ok(details) => return Ok(details),
                // Lost a race: re-read and decide again from the new state.
                Err(Error::Conflict { .. }) if attempt < CAS_ATTEMPTS => continue,
                Err(e) => return Err(self.audit_refusal(event, e).await),
            }
        }
    }

    pub(super) async fn try_transition(
        &self,
        actor: &Actor,
        mut record: KeyRecord,
        transition: Transition,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<KeyDetails, Error> {
        let kind = self.kind(&record.kind)?;
        let owner = &record.owner;
        // Taking access away reads nothing more; giving it back is granting
        // it again, so it is decided on what the key carries now.
        let carried = match transition {
            Transition::Enable => Some(
                self.carried_by(owner, &record.scopes, &record.roles, record.inherits_owner)
                    .await?,
            ),
            Transition::Revoke | Transition::Disable => None,
        };
        let operation = match &carried {
            Some(carried) => Operation::Enable {
                kind,
                owner,
                grant: carried.grant(),
            },
            None => Operation::Revoke { kind, owner },
        };
        let permit = self.decide(actor, &operation)?;
        let to = transition.target(record.status(now))?;
        if to == KeyState::Revoked {
            let revoked = match permit.store().revoke_key(&record.id, now, event).await {
                Ok(revoked) => revoked,
                Err(e) => {
                    record = self
                        .committed(e, &record.id, |r| r.state == KeyState::Revoked)
                        .await?;
                    true
                }
            };
            if !revoked {
                // Revoked by another call between our read and our write.
                return Err(Error::InvalidTransition {
                    from: Status::Revoked,
                    action: transition.as_str(),
                });
            }
            record.state = KeyState::Revoked;
            record.revoked_at = record.revoked_at.or(Some(now));
            return Ok(KeyDetails::new(record, PermissionSet::new(), now));
        }
        // What an enabled key can do was resolved before the write, so the
        // call cannot fail after it committed.
        let permissions = match carried {
            Some(carried) if to == KeyState::Active => carried.can_do(Some(kind)),
            _ => PermissionSet::new(),
        };
        let written = permit
            .store()
            .set_state(&record.id, record.state, to, now, event)
            .await;
        if let Err(e) = written {
            self.committed(e, &record.id, |r| r.state == to).await?;
        }
        record.state = to;
        Ok(KeyDetails::new(record, permissions, now))
    }

    // ---------------------------------------------------------------- reads

    /// One key's details.
    pub async fn get(&self, actor: &Actor, id: &KeyId) -> Result<KeyDetails, Error> {
        let now = self.now();
        let event = keyed(AuditEvent::new(now, actor.label(), AuditAction::View), id);
        let record = match self.inner.store.key(id).await? {
            Some(record) => record,
            None => return Err(self.audit_refusal(event, Error::NotFound).await),
        };
        let allowed = self.kind(&record.kind).and_then(|kind| {
            self.decide(
                actor,
                &Operation::View {
                    kind: Some(kind),
                    owner: &record.owner,
                },
            )
        });
        if let Err(e) = allowed {
            let event = event.with_key(&record.id, &record.name, &record.owner);
            return Err(self.audit_refusal(event, e).await);
        }
        let mut details = self.details(vec![record], now).await?;
        details.pop().ok_or(Error::NotFound)
    }

    /// One page of an owner's keys, newest first; of every owner's with
    /// [`ListRequest::all_owners`], which only operators may ask.
    ///
    /// A token actor must name the kind it lists (one it may view).
    pub async fn list(
        &self,
        actor: &Actor,
        request: ListRequest,
    ) -> Result<Page<KeyDetails>, Error> {
        let now = self.now();
        let mut event = AuditEvent::new(now, actor.label(), AuditAction::View);
        match &request.owner {
            Some(owner) => event = event.with_owner(owner),
            None => event = event.with_detail("keys of every owner".to_owned()),
        }
        let permit = match self.check_list(actor, &request) {
            Ok(permit) => permit,
            Err(e) => return Err(self.audit_refusal(event, e).await),
        };
        let mut query = ListQuery::all_owners(now, request.limit);
        query.owner = request.owner;
        query.name_contains = request.name_contains;
        query.kind = request.kind;
        query.statuses = request.statuses;
        query.last_used_before = request.last_used_before;
        query.after = request.after;
        let page = permit.store().list_keys(&query).await?;
        Ok(Page {
            items: self.details(page.items, now).await?,
            next: page.next,
        })
    }

    pub(super) fn check_list(
        &self,
        actor: &Actor,
        request: &ListRequest,
    ) -> Result<Permit<'_>, Error> {
        check_page_size(request.limit)?;
        let filter_len = request.name_contains.as_ref().map_or(0, String::len);
        if filter_len > crate::key::MAX_NAME_LEN {
            return Err(Error::invalid("name filter", "at most 16384 bytes"));
        }
        let kind = request.kind.as_deref().map(|k| self.kind(k)).transpose()?;
        match &request.owner {
            Some(owner) => self.decide(actor, &Operation::View { kind, owner }),
            None => self.decide(actor, &Operation::ViewAllOwners),
        }
    }

    /// Live keys of every owner expiring within `within` from now, soonest
    /// first: for reminder e-mails. Operators only; a refusal is audited.
    /// A window past the end of representable time means "ever".
    pub async fn expiring_keys(
        &self,
        actor: &Actor,
        within: TimeDelta,
        limit: usize,
    ) -> Result<Vec<KeyDetails>, Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::View)
            .with_detail("keys expiring, every owner".to_owned());
        let decided = if within < TimeDelta::zero() {
            Err(Error::invalid("within", "must not be negative"))
        } else {
            self.decide(actor, &Operation::ViewAllOwners)
        };
        let permit = match decided {
            Ok(permit) => permit,
            Err(e) => return Err(self.audit_refusal(event, e).await),
        };
        let before = now
            .checked_add_signed(within)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let records = permit
            .store()
            .keys_expiring(now, before, limit.min(MAX_PAGE_SIZE))
            .await?;
        self.details(records, now).await
    }

    // ---------------------------------------------------------------- roles

    /// Creates or replaces `role` in its owner's namespace. Every key of
    /// that owner holding it changes with it.
    ///
    /// Editing a role is granting: the actor must manage the role's owner
    /// and hold both the permissions the role grants now (if it exists) and
    /// those it will grant. Tokens never edit roles. The store writes it
    /// only if it is still as read (compare-and-set), so a racing edit
    /// cannot slip permissions past the check.
    pub async fn put_role(&self, actor: &Actor, role: Role) -> Result<(), Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::PutRole)
            .with_role(&role.name)
            .with_owner(&role.owner);
        match self.try_put_role(actor, &role, &event).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    pub(super) async fn try_put_role(
        &self,
        actor: &Actor,
        role: &Role,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        if role.permissions.len() > MAX_GRANTS {
            return Err(Error::invalid(
                "role",
                format!("grants at most {MAX_GRANTS} permissions"),
            ));
        }
        let names = BTreeSet::from([role.name.clone()]);
        for _ in 0..CAS_ATTEMPTS {
            let old = self.owner_roles(&role.owner, &names).await?;
            let old = old.get(&role.name);
            let permit = self.decide(
                actor,
                &Operation::PutRole {
                    owner: &role.owner,
                    old,
                    new: &role.permissions,
                },
            )?;
            match permit.store().put_role(role, old, event).await {
                Err(Error::RoleChanged) => continue,
                done => return done,
            }
        }
        Err(Error::RoleChanged)
    }

    /// Deletes `owner`'s role `name`; keys that held it lose its permissions.
    /// The actor must manage `owner` and hold what the role grants.
    pub async fn delete_role(
        &self,
        actor: &Actor,
        owner: &Owner,
        name: &RoleName,
    ) -> Result<(), Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::DeleteRole)
            .with_role(name)
            .with_owner(owner);
        match self.try_delete_role(actor, owner, name, &event).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    pub(super) async fn try_delete_role(
        &self,
        actor: &Actor,
        owner: &Owner,
        name: &RoleName,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let names = BTreeSet::from([name.clone()]);
        for _ in 0..CAS_ATTEMPTS {
            let old = self.owner_roles(owner, &names).await?;
            let Some(old) = old.get(name) else {
                // Tell only those who may see the owner's roles that it is absent.
                self.decide(actor, &Operation::ViewRoles { owner })?;
                return Err(Error::NotFound);
            };
            let permit = self.decide(actor, &Operation::DeleteRole { owner, old })?;
            match permit.store().delete_role(owner, name, old, event).await {
                Err(Error::RoleChanged) => continue,
                done => return done,
            }
        }
        Err(Error::RoleChanged)
    }

    /// `owner`'s roles with these names, at most 1000 (operators, and users
    /// who manage `owner`; a refusal is audited).
    pub async fn roles(
        &self,
        actor: &Actor,
        owner: &Owner,
        names: &[RoleName],
    ) -> Result<Vec<Role>, Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::View).with_owner(owner);
        let decided = if names.len() > MAX_PAGE_SIZE {
            Err(Error::invalid("roles", "name at most 1000 roles"))
        } else {
            self.decide(actor, &Operation::ViewRoles { owner })
        };
        match decided {
            Ok(permit) => permit.store().get_roles(owner, names).await,
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    /// One page of `owner`'s roles in name order: at most `limit`
    /// (1..=1000) roles, those named after `after` when given. A page
    /// shorter than `limit` is the last; to read them all, call again with
    /// the last name of each page as `after`.
    ///
    /// Authorized as [`Keyward::roles`]: operators read any owner's roles,
    /// users those of an owner they manage, tokens none; a refusal (a bad
    /// `limit` included) is audited.
    pub async fn list_roles(
        &self,
        actor: &Actor,
        owner: &Owner,
        after: Option<&RoleName>,
        limit: usize,
    ) -> Result<Vec<Role>, Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::View).with_owner(owner);
        let decided = check_page_size(limit)
            .and_then(|()| self.decide(actor, &Operation::ViewRoles { owner }));
        match decided {
            Ok(permit) => permit.store().list_roles(owner, after, limit).await,
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }

    // ---------------------------------------------------------------- audit

    /// Audit events, newest first. Operators read everything; a user reads
    /// the events of an owner whose keys they manage (the query must name
    /// it). A refusal is itself audited.
    pub async fn audit_events(
        &self,
        actor: &Actor,
        query: AuditQuery,
    ) -> Result<Vec<crate::audit::AuditEvent>, Error> {
        let now = self.now();
        let mut event = AuditEvent::new(now, actor.label(), AuditAction::View)
            .with_detail("audit events".to_owned());
        event.owner = query.owner.clone();
        let decided = check_page_size(query.limit).and_then(|()| {
            self.decide(
                actor,
                &Operation::ReadAudit {
                    owner: query.owner.as_ref(),
                },
            )
        });
        match decided {
            Ok(permit) => permit.store().list_audit(&query).await,
            Err(e) => Err(self.audit_refusal(event, e).await),
        }
    }
}

/// Most bytes a revoke's reason may hold.
pub const MAX_REVOKE_REASON_LEN: usize = 1024;

impl Keyward {
    /// A reason fit for the audit log: bounded, printable, no token.
    pub(super) fn check_reason(&self, reason: &str) -> Result<(), Error> {
        // The length first, so nothing else ever reads more than the cap.
        if reason.len() > MAX_REVOKE_REASON_LEN {
            return Err(Error::invalid("reason", "at most 1024 bytes"));
        }
        if reason.trim().is_empty() {
            return Err(Error::invalid("reason", "must not be empty"));
        }
        if reason.chars().any(char::is_control) {
            return Err(Error::invalid("reason", "must not hold control characters"));
        }
        if self.holds_token(reason) {
            return Err(Error::invalid(
                "reason",
                "holds a token; say where it was found, never the token itself",
            ));
        }
        Ok(())
    }
}
