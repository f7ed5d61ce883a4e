//! What a key carries and can do now: scopes, roles and, for inheriting
//! keys, what the owner holds.

use super::Keyward;
use super::requests::KeyDetails;
use crate::authorization::Grant;
use crate::error::Error;
use crate::key::{KeyRecord, Owner, RoleName};
use crate::kind::TokenKind;
use crate::permission::PermissionSet;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

impl Keyward {
    /// The effective permissions of one key.
    pub(super) async fn effective_permissions(
        &self,
        owner: &Owner,
        kind: &str,
        scopes: &PermissionSet,
        roles: &BTreeSet<RoleName>,
        inherits_owner: bool,
    ) -> Result<PermissionSet, Error> {
        let carried = self
            .carried_by(owner, scopes, roles, inherits_owner)
            .await?;
        Ok(carried.can_do(self.inner.format.kind(kind)))
    }

    /// What a key with these parts carries (scopes ∪ its owner's roles that
    /// exist) and, if it inherits, what its owner holds now: the inputs of
    /// a grant decision and of what the key can do.
    pub(super) async fn carried_by(
        &self,
        owner: &Owner,
        scopes: &PermissionSet,
        roles: &BTreeSet<RoleName>,
        inherits_owner: bool,
    ) -> Result<Carried, Error> {
        let found = self.owner_roles(owner, roles).await?;
        Ok(Carried {
            carries: carried(scopes, roles, &found),
            owner_now: self.owner_now(owner, inherits_owner).await?,
            inherits_owner,
            roles_found: found.len(),
        })
    }

    /// The effective permissions of each record, loading every owner's
    /// roles in one store call and each inheriting owner's permissions once.
    pub(super) async fn resolve_permissions(
        &self,
        records: &[KeyRecord],
    ) -> Result<Vec<PermissionSet>, Error> {
        let mut wanted: BTreeMap<&Owner, BTreeSet<RoleName>> = BTreeMap::new();
        for record in records {
            wanted
                .entry(&record.owner)
                .or_default()
                .extend(record.roles.iter().cloned());
        }
        let mut roles = BTreeMap::new();
        for (owner, names) in wanted {
            roles.insert(owner.clone(), self.owner_roles(owner, &names).await?);
        }
        let mut owners = BTreeMap::new();
        for record in records.iter().filter(|r| r.inherits_owner) {
            if !owners.contains_key(&record.owner) {
                let held = self.owner_now(&record.owner, true).await?;
                owners.insert(record.owner.clone(), held.unwrap_or_default());
            }
        }
        let none = BTreeMap::new();
        Ok(records
            .iter()
            .map(|r| {
                let carries = carried(&r.scopes, &r.roles, roles.get(&r.owner).unwrap_or(&none));
                can_do(
                    self.inner.format.kind(&r.kind),
                    carries,
                    r.inherits_owner,
                    owners.get(&r.owner),
                )
            })
            .collect())
    }

    /// `owner`'s roles among `names` that exist (no store call for none).
    pub(super) async fn owner_roles(
        &self,
        owner: &Owner,
        names: &BTreeSet<RoleName>,
    ) -> Result<BTreeMap<RoleName, PermissionSet>, Error> {
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let names: Vec<RoleName> = names.iter().cloned().collect();
        Ok(self
            .inner
            .store
            .roles(owner, &names)
            .await?
            .into_iter()
            .map(|role| (role.name, role.permissions))
            .collect())
    }

    /// What `owner` holds now, for an inheriting key (`None` otherwise).
    pub(super) async fn owner_now(
        &self,
        owner: &Owner,
        inherits: bool,
    ) -> Result<Option<PermissionSet>, Error> {
        if !inherits {
            return Ok(None);
        }
        let resolver = self.inner.resolver.as_ref().ok_or_else(|| {
            Error::invalid(
                "owner_permissions",
                "inheriting keys need an OwnerPermissions resolver",
            )
        })?;
        resolver.permissions_of(owner).await.map(Some)
    }

    /// Details of each record, permissions resolved.
    pub(super) async fn details(
        &self,
        records: Vec<KeyRecord>,
        now: DateTime<Utc>,
    ) -> Result<Vec<KeyDetails>, Error> {
        let permissions = self.resolve_permissions(&records).await?;
        Ok(records
            .into_iter()
            .zip(permissions)
            .map(|(record, permissions)| KeyDetails::new(record, permissions, now))
            .collect())
    }
}

/// What [`Keyward::carried_by`] resolved for one key.
pub(super) struct Carried {
    /// Scopes ∪ the permissions of its roles that exist.
    pub(super) carries: PermissionSet,
    /// What its owner holds now, for an inheriting key.
    pub(super) owner_now: Option<PermissionSet>,
    pub(super) inherits_owner: bool,
    /// How many of its roles exist.
    pub(super) roles_found: usize,
}

impl Carried {
    pub(super) fn grant(&self) -> Grant<'_> {
        Grant {
            carries: &self.carries,
            owner_now: self.owner_now.as_ref(),
        }
    }

    pub(super) fn can_do(self, kind: Option<&TokenKind>) -> PermissionSet {
        can_do(
            kind,
            self.carries,
            self.inherits_owner,
            self.owner_now.as_ref(),
        )
    }
}

/// scopes ∪ the permissions of the named roles that exist.
pub(super) fn carried(
    scopes: &PermissionSet,
    names: &BTreeSet<RoleName>,
    roles: &BTreeMap<RoleName, PermissionSet>,
) -> PermissionSet {
    let mut grant = scopes.clone();
    for permissions in names.iter().filter_map(|name| roles.get(name)) {
        grant.extend(permissions);
    }
    grant
}

/// What a key carrying `carries` can do: for an inheriting key only what
/// its owner holds now (nothing, if that is unknown), and never beyond its
/// kind's catalog.
pub(super) fn can_do(
    kind: Option<&TokenKind>,
    carries: PermissionSet,
    inherits_owner: bool,
    owner_now: Option<&PermissionSet>,
) -> PermissionSet {
    let effective = match (inherits_owner, owner_now) {
        (false, _) => carries,
        (true, Some(held)) => held.intersection(&carries),
        (true, None) => PermissionSet::new(),
    };
    match kind {
        Some(kind) => kind.bound(effective),
        None => effective,
    }
}
