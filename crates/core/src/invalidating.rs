//! The store wrapper that keeps a verification cache honest: every mutation
//! made through it drops the entries it affects before it returns.

use crate::audit::{AuditEvent, AuditQuery};
use crate::cache::VerifyCache;
use crate::error::Error;
use crate::feed::Change;
use crate::key::{KeyId, KeyRecord, Owner, Role, RoleName, UsageRecord, VerifyRecord};
use crate::lifecycle::KeyState;
use crate::permission::PermissionSet;
use crate::store::{KeyStore, ListQuery, Page};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Forwards every call to `inner`; after each mutation — whatever its
/// outcome, since a failed commit may still have committed — drops the
/// cache entries it may have changed.
#[derive(Debug)]
pub(crate) struct InvalidatingStore {
    inner: Arc<dyn KeyStore>,
    cache: VerifyCache,
}

impl InvalidatingStore {
    pub(crate) fn new(inner: Arc<dyn KeyStore>, cache: VerifyCache) -> Self {
        Self { inner, cache }
    }

    fn changed<T>(&self, changes: &[Change], result: Result<T, Error>) -> Result<T, Error> {
        for change in changes {
            self.cache.invalidate(change);
        }
        result
    }
}

#[async_trait::async_trait]
impl KeyStore for InvalidatingStore {
    async fn insert_key(
        &self,
        key: &KeyRecord,
        limit: Option<u32>,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = self.inner.insert_key(key, limit, now, event).await;
        self.changed(&[Change::Key(key.id.clone())], result)
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        self.inner.get_key(id).await
    }

    async fn verify_key(&self, id: &KeyId) -> Result<Option<VerifyRecord>, Error> {
        self.inner.verify_key(id).await
    }

    async fn set_state(
        &self,
        id: &KeyId,
        from: KeyState,
        to: KeyState,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = self.inner.set_state(id, from, to, at, event).await;
        self.changed(&[Change::Key(id.clone())], result)
    }

    async fn revoke_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let result = self.inner.revoke_key(id, at, event).await;
        self.changed(&[Change::Key(id.clone())], result)
    }

    async fn rotate_key(
        &self,
        predecessor: &KeyId,
        expected: KeyState,
        predecessor_expires_at: DateTime<Utc>,
        successor: &KeyRecord,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = self
            .inner
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

    async fn record_usage(&self, batch: &[UsageRecord]) -> Result<(), Error> {
        // Last use is not part of what verify caches.
        self.inner.record_usage(batch).await
    }

    async fn list_keys(&self, query: &ListQuery) -> Result<Page<KeyRecord>, Error> {
        self.inner.list_keys(query).await
    }

    async fn keys_expiring(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, Error> {
        self.inner.keys_expiring(after, before, limit).await
    }

    async fn put_role(
        &self,
        role: &Role,
        replaces: Option<&PermissionSet>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = self.inner.put_role(role, replaces, event).await;
        self.changed(&[Change::Role(role.name.clone())], result)
    }

    async fn get_roles(&self, owner: &Owner, names: &[RoleName]) -> Result<Vec<Role>, Error> {
        self.inner.get_roles(owner, names).await
    }

    async fn delete_role(
        &self,
        owner: &Owner,
        name: &RoleName,
        expected: &PermissionSet,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let result = self.inner.delete_role(owner, name, expected, event).await;
        self.changed(&[Change::Role(name.clone())], result)
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), Error> {
        self.inner.append_audit(event).await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, Error> {
        self.inner.list_audit(query).await
    }
}
