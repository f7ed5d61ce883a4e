//! The service's store, behind a wall: its field is private to this file, so
//! the rest of the service reaches the store only through what is below.
//! Writes and the reads returned to callers go through the [`Permit`] the
//! decision point hands out; what is left here are the reads the service
//! needs to decide (the key a call is about, the roles it carries), the
//! refusals it records, and the usage flush.

use crate::actor::Actor;
use crate::audit::AuditEvent;
use crate::authorization::{self, Operation, Permit};
use crate::error::Error;
use crate::format::TokenFormat;
use crate::key::{KeyId, KeyRecord, Owner, Role, RoleName, VerifyRecord};
use crate::store::KeyStore;
use crate::usage::UsageRecorder;
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct Storage {
    store: Arc<dyn KeyStore>,
}

impl Storage {
    pub(super) fn new(store: Arc<dyn KeyStore>) -> Self {
        Self { store }
    }

    /// Asks the one decision point whether `actor` may perform `operation`;
    /// the permit is the management calls' only way to write or to read for
    /// the caller.
    pub(super) fn decide<'a>(
        &'a self,
        actor: &Actor,
        operation: &Operation<'_>,
        format: &TokenFormat,
    ) -> Result<Permit<'a>, Error> {
        authorization::decide(actor, operation, format, self.store.as_ref())
    }

    /// The key a call is about, to decide on it, to verify it, or to read a
    /// write back; never handed to a caller without a permit.
    pub(super) async fn key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        self.store.get_key(id).await
    }

    /// The key as verification reads it (the verify path's one read).
    pub(super) async fn verify_key(&self, id: &KeyId) -> Result<Option<VerifyRecord>, Error> {
        self.store.verify_key(id).await
    }

    /// The same read answered at once, when the store can (`None`: await
    /// [`Storage::verify_key`]).
    pub(super) fn verify_key_now(&self, id: &KeyId) -> Option<Result<Option<VerifyRecord>, Error>> {
        self.store.verify_key_now(id)
    }

    /// The roles of `owner` among `names` that exist, to resolve what a key
    /// carries.
    pub(super) async fn roles(
        &self,
        owner: &Owner,
        names: &[RoleName],
    ) -> Result<Vec<Role>, Error> {
        self.store.get_roles(owner, names).await
    }

    /// Records a refusal.
    pub(super) async fn record_refusal(&self, event: &AuditEvent) -> Result<(), Error> {
        self.store.append_audit(event).await
    }

    /// Writes the recorded uses.
    pub(super) async fn flush_usage(&self, usage: &UsageRecorder) -> Result<usize, Error> {
        usage.flush(self.store.as_ref()).await
    }

    /// The raw store, for [`crate::dangerous::store`] only.
    pub(super) fn dangerous(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }
}
