//! The store wrapper that keeps a verification cache honest: every mutation
//! made through it drops the entries it affects before it returns.

use crate::audit::AuditEvent;
use crate::cache::VerifyCache;
use crate::error::Error;
use crate::feed::Change;
use crate::key::{KeyId, KeyRecord, Owner, Role, RoleName, VerifyRecord};
use crate::lifecycle::KeyState;
use crate::permission::PermissionSet;
use crate::store::{KeyStore, PruneKeys, StoreWrapper, Wrapped};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// After each mutation — whatever its outcome, since a failed commit may
/// still have committed — drops the cache entries it may have changed.
/// Reads, audit and usage (last use is not part of what verify caches) are
/// forwarded untouched.
#[derive(Debug)]
pub(crate) struct Invalidating {
    cache: VerifyCache,
}

impl Invalidating {
    /// `inner`, invalidating `cache`.
    pub(crate) fn wrap(inner: Arc<dyn KeyStore>, cache: VerifyCache) -> Wrapped<Self> {
        Wrapped::new(inner, Self { cache })
    }

    fn changed<T>(&self, changes: &[Change], result: Result<T, Error>) -> Result<T, Error> {
        for change in changes {
            self.cache.invalidate(change);
        }
        result
    }
}

#[async_trait::async_trait]
impl StoreWrapper for Invalidating {
    // Reads are this wrapper's business only as far as it must not slow
    // them: the verify read is forwarded, answered at once where the store can.
    fn verify_key_now(
        &self,
        inner: &dyn KeyStore,
        id: &KeyId,
    ) -> Option<Result<Option<VerifyRecord>, Error>> {
        inner.verify_key_now(id)
    }

    async fn insert_key(
        &self,
        inner: &dyn KeyStore,
        key: &KeyRecord,
        limit: Option<u32>,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = inner.insert_key(key, limit, now, event).await;
        self.changed(&[Change::Key(key.id.clone())], result)
    }

    async fn set_state(
        &self,
        inner: &dyn KeyStore,
        id: &KeyId,
        from: KeyState,
        to: KeyState,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = inner.set_state(id, from, to, at, event).await;
        self.changed(&[Change::Key(id.clone())], result)
    }

    async fn revoke_key(
        &self,
        inner: &dyn KeyStore,
        id: &KeyId,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let result = inner.revoke_key(id, at, event).await;
        self.changed(&[Change::Key(id.clone())], result)
    }

    async fn rotate_key(
        &self,
        inner: &dyn KeyStore,
        predecessor: &KeyId,
        expected: KeyState,
        predecessor_expires_at: DateTime<Utc>,
        successor: &KeyRecord,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = inner
            .rotate_key(
                predecessor,
                expected,
                predecessor_expires_at,
                successor,
                event,
            )
            .await;
        let changes = [
            Change::Key(predecessor.clone()),
            Change::Key(successor.id.clone()),
        ];
        self.changed(&changes, result)
    }

    async fn prune_keys(
        &self,
        inner: &dyn KeyStore,
        selection: PruneKeys,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyId>, Error> {
        match inner.prune_keys(selection, now, limit).await {
            Ok(pruned) => {
                let changes: Vec<Change> = pruned.iter().cloned().map(Change::Key).collect();
                self.changed(&changes, Ok(pruned))
            }
            // The batch may have committed, and which keys it deleted is
            // unknown: drop everything.
            Err(e) => self.changed(&[Change::All], Err(e)),
        }
    }

    async fn put_role(
        &self,
        inner: &dyn KeyStore,
        role: &Role,
        replaces: Option<&PermissionSet>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = inner.put_role(role, replaces, event).await;
        self.changed(&[Change::Role(role.name.clone())], result)
    }

    async fn delete_role(
        &self,
        inner: &dyn KeyStore,
        owner: &Owner,
        name: &RoleName,
        expected: &PermissionSet,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = inner.delete_role(owner, name, expected, event).await;
        self.changed(&[Change::Role(name.clone())], result)
    }
}
