//! A [`KeyStore`] wrapper that forces two concurrent state changes of one key
//! to interleave in a chosen order, whatever the store underneath: both read
//! the key before either writes, then the chosen write goes first. The loser
//! of the compare-and-set then has to cope, which is what the race test is about.

use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, Owner, Page, PermissionSet, Role, RoleName, audit::AuditEvent, audit::AuditQuery,
    store::KeyRecord, store::KeyState, store::KeyStore, store::ListQuery, store::UsageRecord,
    store::VerifyRecord, store::async_trait,
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Barrier, Semaphore};

/// How long a forced step waits for the other side before giving up (the
/// test then fails on its conflict count instead of hanging).
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct InterleavingStore {
    inner: Arc<dyn KeyStore>,
    plan: Mutex<Option<Plan>>,
}

#[derive(Debug)]
struct Plan {
    key: KeyId,
    /// The first two reads of `key` wait here for each other.
    reads: Arc<Barrier>,
    reads_left: usize,
    /// The write moving `key` to this state goes before any other.
    first: KeyState,
    first_done: Arc<Semaphore>,
    /// State changes that lost their compare-and-set.
    conflicts: usize,
}

impl InterleavingStore {
    pub(crate) fn new(inner: Arc<dyn KeyStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            plan: Mutex::new(None),
        })
    }

    /// From now on, the next two reads of `key` wait for each other, and the
    /// state change to `first` is written before any other change of `key`.
    pub(crate) fn force(&self, key: &KeyId, first: KeyState) {
        *self.plan() = Some(Plan {
            key: key.clone(),
            reads: Arc::new(Barrier::new(2)),
            reads_left: 2,
            first,
            first_done: Arc::new(Semaphore::new(0)),
            conflicts: 0,
        });
    }

    /// Stops forcing; returns how many state changes of the key lost their
    /// compare-and-set meanwhile.
    pub(crate) fn release(&self) -> usize {
        self.plan().take().map_or(0, |plan| plan.conflicts)
    }

    fn plan(&self) -> MutexGuard<'_, Option<Plan>> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl KeyStore for InterleavingStore {
    /// A verify's read of a key is a read of the key: counted, failed and
    /// paused as one.
    async fn verify_key(&self, id: &KeyId) -> Result<Option<VerifyRecord>, Error> {
        Ok(self.get_key(id).await?.as_ref().map(VerifyRecord::from))
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        let barrier = match self.plan().as_mut() {
            Some(plan) if plan.key == *id && plan.reads_left > 0 => {
                plan.reads_left -= 1;
                Some(Arc::clone(&plan.reads))
            }
            _ => None,
        };
        let result = self.inner.get_key(id).await;
        if let Some(barrier) = barrier {
            drop(tokio::time::timeout(PATIENCE, barrier.wait()).await);
        }
        result
    }

    async fn set_state(
        &self,
        id: &KeyId,
        from: KeyState,
        to: KeyState,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let step = match self.plan().as_ref() {
            Some(plan) if plan.key == *id => Some((to == plan.first, Arc::clone(&plan.first_done))),
            _ => None,
        };
        let Some((goes_first, first_done)) = step else {
            return self.inner.set_state(id, from, to, at, event).await;
        };
        if !goes_first {
            drop(tokio::time::timeout(PATIENCE, first_done.acquire()).await);
        }
        let result = self.inner.set_state(id, from, to, at, event).await;
        if goes_first {
            first_done.add_permits(1);
        }
        if matches!(result, Err(Error::Conflict { .. }))
            && let Some(plan) = self.plan().as_mut()
        {
            plan.conflicts += 1;
        }
        result
    }

    /// Revocation is a write moving the key to `Revoked`: it goes first when
    /// the plan says so, else after the first write. It never loses a
    /// compare-and-set, so it never counts as a conflict.
    async fn revoke_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let step = match self.plan().as_ref() {
            Some(plan) if plan.key == *id => Some((
                plan.first == KeyState::Revoked,
                Arc::clone(&plan.first_done),
            )),
            _ => None,
        };
        let Some((goes_first, first_done)) = step else {
            return self.inner.revoke_key(id, at, event).await;
        };
        if !goes_first {
            drop(tokio::time::timeout(PATIENCE, first_done.acquire()).await);
        }
        let result = self.inner.revoke_key(id, at, event).await;
        if goes_first {
            first_done.add_permits(1);
        }
        result
    }

    async fn insert_key(
        &self,
        key: &KeyRecord,
        limit: Option<u32>,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        self.inner.insert_key(key, limit, now, event).await
    }

    async fn rotate_key(
        &self,
        predecessor: &KeyId,
        expected: KeyState,
        predecessor_expires_at: DateTime<Utc>,
        successor: &KeyRecord,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        self.inner
            .rotate_key(
                predecessor,
                expected,
                predecessor_expires_at,
                successor,
                event,
            )
            .await
    }

    async fn record_usage(&self, batch: &[UsageRecord]) -> Result<(), Error> {
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
        self.inner.put_role(role, replaces, event).await
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
        self.inner.delete_role(owner, name, expected, event).await
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), Error> {
        self.inner.append_audit(event).await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, Error> {
        self.inner.list_audit(query).await
    }
}
