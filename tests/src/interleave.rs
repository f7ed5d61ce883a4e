//! A [`KeyStore`] wrapper that forces two concurrent state changes of one key
//! to interleave in a chosen order, whatever the store underneath: both read
//! the key before either writes, then the chosen write goes first. The loser
//! of the compare-and-set then has to cope, which is what the race test is about.

use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, audit::AuditEvent, store::KeyRecord, store::KeyState, store::KeyStore,
    store::StoreWrapper, store::VerifyRecord, store::Wrapped, store::async_trait,
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Barrier, Semaphore};

/// How long a forced step waits for the other side before giving up (the
/// test then fails on its conflict count instead of hanging).
const PATIENCE: Duration = Duration::from_secs(10);

/// Holds back reads and state changes of one key as its plan says; every
/// other call is forwarded untouched.
#[derive(Debug)]
pub(crate) struct Interleaving {
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

impl Interleaving {
    /// `inner`, interleaved as [`Interleaving::force`] plans.
    pub(crate) fn wrap(inner: Arc<dyn KeyStore>) -> Arc<Wrapped<Self>> {
        Arc::new(Wrapped::new(
            inner,
            Self {
                plan: Mutex::new(None),
            },
        ))
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
impl StoreWrapper for Interleaving {
    /// A verify's read of a key is a read of the key: paused as one.
    async fn verify_key(
        &self,
        inner: &dyn KeyStore,
        id: &KeyId,
    ) -> Result<Option<VerifyRecord>, Error> {
        Ok(self
            .get_key(inner, id)
            .await?
            .as_ref()
            .map(VerifyRecord::from))
    }

    async fn get_key(&self, inner: &dyn KeyStore, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        let barrier = match self.plan().as_mut() {
            Some(plan) if plan.key == *id && plan.reads_left > 0 => {
                plan.reads_left -= 1;
                Some(Arc::clone(&plan.reads))
            }
            _ => None,
        };
        let result = inner.get_key(id).await;
        if let Some(barrier) = barrier {
            drop(tokio::time::timeout(PATIENCE, barrier.wait()).await);
        }
        result
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
        let step = match self.plan().as_ref() {
            Some(plan) if plan.key == *id => Some((to == plan.first, Arc::clone(&plan.first_done))),
            _ => None,
        };
        let Some((goes_first, first_done)) = step else {
            return inner.set_state(id, from, to, at, event).await;
        };
        if !goes_first {
            drop(tokio::time::timeout(PATIENCE, first_done.acquire()).await);
        }
        let result = inner.set_state(id, from, to, at, event).await;
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
        inner: &dyn KeyStore,
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
            return inner.revoke_key(id, at, event).await;
        };
        if !goes_first {
            drop(tokio::time::timeout(PATIENCE, first_done.acquire()).await);
        }
        let result = inner.revoke_key(id, at, event).await;
        if goes_first {
            first_done.add_permits(1);
        }
        result
    }
}
