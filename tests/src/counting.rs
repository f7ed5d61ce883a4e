//! A [`KeyStore`] wrapper that counts the calls reaching the store, so tests
//! can prove what the service does *not* do (write on verify, read on garbage).

use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, Owner, PermissionSet, Role, RoleName, audit::AuditEvent, audit::AuditQuery,
    store::KeyRecord, store::KeyState, store::KeyStore, store::ListQuery, store::Page,
    store::StoreWrapper, store::UsageRecord, store::VerifyRecord, store::Wrapped,
    store::async_trait,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Semaphore;

/// One method of the [`KeyStore`] trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreCall {
    /// [`KeyStore::insert_key`]
    InsertKey,
    /// [`KeyStore::get_key`], and [`KeyStore::verify_key`] (the same read)
    GetKey,
    /// [`KeyStore::set_state`]
    SetState,
    /// [`KeyStore::revoke_key`]
    RevokeKey,
    /// [`KeyStore::rotate_key`]
    RotateKey,
    /// [`KeyStore::record_usage`]
    RecordUsage,
    /// [`KeyStore::list_keys`]
    ListKeys,
    /// [`KeyStore::keys_expiring`]
    KeysExpiring,
    /// [`KeyStore::put_role`]
    PutRole,
    /// [`KeyStore::get_roles`]
    GetRoles,
    /// [`KeyStore::delete_role`]
    DeleteRole,
    /// [`KeyStore::append_audit`]
    AppendAudit,
    /// [`KeyStore::list_audit`]
    ListAudit,
}

impl StoreCall {
    /// Whether the method changes what the store holds.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::InsertKey
                | Self::SetState
                | Self::RevokeKey
                | Self::RotateKey
                | Self::RecordUsage
                | Self::PutRole
                | Self::DeleteRole
                | Self::AppendAudit
        )
    }
}

/// Counts every call reaching the wrapped store by method. Usage batches
/// are kept too, to check what a flush wrote.
#[derive(Debug)]
pub struct Counting {
    calls: Mutex<BTreeMap<StoreCall, usize>>,
    usage_batches: Mutex<Vec<Vec<UsageRecord>>>,
    pause: Mutex<Option<Pause>>,
    failures: Mutex<BTreeMap<StoreCall, Failure>>,
}

/// How a method fails, once set with [`Counting::fail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The backend fails before doing anything.
    Before,
    /// The write commits, then the answer is lost (a connection dropped
    /// after the commit): the caller sees a backend error.
    AfterCommit,
}

/// The backend error a failing method returns.
fn dropped() -> Error {
    Error::backend("test", "the connection dropped")
}

/// The next read of `key` stops after reading, until resumed.
#[derive(Debug)]
struct Pause {
    key: KeyId,
    read: Arc<Semaphore>,
    resume: Arc<Semaphore>,
}

/// A read held by [`Counting::pause_next_read`].
#[derive(Debug)]
pub struct PausedRead {
    read: Arc<Semaphore>,
    resume: Arc<Semaphore>,
}

impl PausedRead {
    /// Waits until the read has fetched its record (and now holds it).
    pub async fn wait_until_read(&self) {
        self.read.acquire().await.expect("open").forget();
    }

    /// Lets the read return what it fetched.
    pub fn resume(&self) {
        self.resume.add_permits(1);
    }
}

impl Counting {
    /// `inner`, counted.
    pub fn wrap(inner: Arc<dyn KeyStore>) -> Arc<Wrapped<Self>> {
        Arc::new(Wrapped::new(
            inner,
            Self {
                calls: Mutex::new(BTreeMap::new()),
                usage_batches: Mutex::new(Vec::new()),
                pause: Mutex::new(None),
                failures: Mutex::new(BTreeMap::new()),
            },
        ))
    }

    /// From now on `method` fails as `failure` says (`None`: works again).
    /// Implemented for the writes that hand out or take away a token
    /// (insert, set_state, revoke, rotate), the usage flush, and for the
    /// key and roles reads (a read fails only [`Failure::Before`]).
    pub fn fail(&self, method: StoreCall, failure: Option<Failure>) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match failure {
            Some(f) => failures.insert(method, f),
            None => failures.remove(&method),
        };
    }

    fn failure(&self, method: StoreCall) -> Option<Failure> {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&method)
            .copied()
    }

    /// Runs `call` as the configured failure of `method` says.
    async fn failing<T>(
        &self,
        method: StoreCall,
        call: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.count(method);
        match self.failure(method) {
            Some(Failure::Before) => Err(dropped()),
            Some(Failure::AfterCommit) => call.await.and(Err(dropped())),
            None => call.await,
        }
    }

    /// The next [`KeyStore::get_key`] of `key` fetches the record, then
    /// waits until [`PausedRead::resume`] before returning it: a read that
    /// is overtaken by whatever the test does meanwhile.
    pub fn pause_next_read(&self, key: &KeyId) -> PausedRead {
        let (read, resume) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
        *self.pause.lock().unwrap_or_else(PoisonError::into_inner) = Some(Pause {
            key: key.clone(),
            read: Arc::clone(&read),
            resume: Arc::clone(&resume),
        });
        PausedRead { read, resume }
    }

    /// How many times `method` was called since creation or the last [`reset`](Self::reset).
    pub fn calls(&self, method: StoreCall) -> usize {
        self.counts().get(&method).copied().unwrap_or(0)
    }

    /// All calls to mutating methods.
    pub fn writes(&self) -> usize {
        self.sum(StoreCall::is_write)
    }

    /// All calls to reading methods.
    pub fn reads(&self) -> usize {
        self.sum(|c| !c.is_write())
    }

    /// The batches passed to [`KeyStore::record_usage`], oldest first.
    pub fn usage_batches(&self) -> Vec<Vec<UsageRecord>> {
        self.usage_batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets every count and batch (for example after setting up keys).
    pub fn reset(&self) {
        self.counts().clear();
        self.usage_batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, BTreeMap<StoreCall, usize>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sum(&self, which: impl Fn(StoreCall) -> bool) -> usize {
        self.counts()
            .iter()
            .filter(|(call, _)| which(**call))
            .map(|(_, n)| n)
            .sum()
    }

    fn count(&self, method: StoreCall) {
        *self.counts().entry(method).or_insert(0) += 1;
    }
}

/// Every method is counted; a method added to [`KeyStore`] is forwarded
/// uncounted until it has a [`StoreCall`] and a hook here.
#[async_trait]
impl StoreWrapper for Counting {
    async fn insert_key(
        &self,
        inner: &dyn KeyStore,
        key: &KeyRecord,
        limit: Option<u32>,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        self.failing(
            StoreCall::InsertKey,
            inner.insert_key(key, limit, now, event),
        )
        .await
    }

    /// A verify's read of a key is a read of the key: counted, failed and
    /// paused as one.
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
        self.count(StoreCall::GetKey);
        if self.failure(StoreCall::GetKey).is_some() {
            return Err(dropped());
        }
        let record = inner.get_key(id).await;
        let pause = {
            let mut pause = self.pause.lock().unwrap_or_else(PoisonError::into_inner);
            match pause.as_ref() {
                Some(p) if p.key == *id => pause.take(),
                _ => None,
            }
        };
        if let Some(pause) = pause {
            pause.read.add_permits(1);
            pause.resume.acquire().await.expect("open").forget();
        }
        record
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
        self.failing(
            StoreCall::SetState,
            inner.set_state(id, from, to, at, event),
        )
        .await
    }

    async fn revoke_key(
        &self,
        inner: &dyn KeyStore,
        id: &KeyId,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        self.failing(StoreCall::RevokeKey, inner.revoke_key(id, at, event))
            .await
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
        let call = inner.rotate_key(
            predecessor,
            expected,
            predecessor_expires_at,
            successor,
            event,
        );
        self.failing(StoreCall::RotateKey, call).await
    }

    async fn record_usage(&self, inner: &dyn KeyStore, batch: &[UsageRecord]) -> Result<(), Error> {
        self.usage_batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(batch.to_vec());
        self.failing(StoreCall::RecordUsage, inner.record_usage(batch))
            .await
    }

    async fn list_keys(
        &self,
        inner: &dyn KeyStore,
        query: &ListQuery,
    ) -> Result<Page<KeyRecord>, Error> {
        self.count(StoreCall::ListKeys);
        inner.list_keys(query).await
    }

    async fn keys_expiring(
        &self,
        inner: &dyn KeyStore,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, Error> {
        self.count(StoreCall::KeysExpiring);
        inner.keys_expiring(after, before, limit).await
    }

    async fn put_role(
        &self,
        inner: &dyn KeyStore,
        role: &Role,
        replaces: Option<&PermissionSet>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        self.count(StoreCall::PutRole);
        inner.put_role(role, replaces, event).await
    }

    async fn get_roles(
        &self,
        inner: &dyn KeyStore,
        owner: &Owner,
        names: &[RoleName],
    ) -> Result<Vec<Role>, Error> {
        self.failing(StoreCall::GetRoles, inner.get_roles(owner, names))
            .await
    }

    async fn delete_role(
        &self,
        inner: &dyn KeyStore,
        owner: &Owner,
        name: &RoleName,
        expected: &PermissionSet,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        self.count(StoreCall::DeleteRole);
        inner.delete_role(owner, name, expected, event).await
    }

    async fn append_audit(&self, inner: &dyn KeyStore, event: &AuditEvent) -> Result<(), Error> {
        self.count(StoreCall::AppendAudit);
        inner.append_audit(event).await
    }

    async fn list_audit(
        &self,
        inner: &dyn KeyStore,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, Error> {
        self.count(StoreCall::ListAudit);
        inner.list_audit(query).await
    }
}
