//! An in-memory [`KeyStore`] for keyward.
//!
//! Everything lives in one process behind one read-write lock: every write
//! holds it alone, so every operation is atomic and the live-key limit holds
//! under any concurrency, and reads (verifies among them) run side by side. Keys vanish
//! when the process exits: use it for tests, prototypes and examples, and the
//! SQLite or Postgres adapter in production.
//!
//! ```
//! use keyward_core::{Actor, IssueRequest, Keyward, Owner, Requirement, TokenKind};
//! use keyward_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let keyward = Keyward::builder(MemoryStore::new()).kind(TokenKind::new("mt")?).build()?;
//! let owner = Owner::new("account:42")?;
//! let actor = Actor::operator("docs");
//! let issued = keyward.issue(&actor, IssueRequest::new("mt", owner, "CI")).await?;
//! let verified = keyward.verify(issued.token.expose_secret(), &Requirement::nothing()).await?;
//! assert_eq!(verified.name(), "CI");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, Owner, PermissionSet, Role, RoleName, audit::AuditEvent, audit::AuditQuery,
    store::KeyAttributes, store::KeyRecord, store::KeyState, store::KeyStore, store::ListQuery,
    store::Page, store::PruneKeys, store::UsageRecord, store::VerifyRecord, store::async_trait,
    store::check_page_size, store::check_prune_batch, store::comes_after,
    store::page_from_overfetch,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The in-memory store. Cheap to create; share it as `Arc<MemoryStore>` or
/// hand it to [`keyward_core::Keyward::builder`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    keys: Keys,
    /// Roles by `(owner, name)`: each owner has its own namespace.
    roles: BTreeMap<(Owner, RoleName), Role>,
    audit: Vec<AuditEvent>,
}

/// The keys. Each keeps, inline in the table, what a verify reads (a
/// [`VerifyRecord`]: no field of it on the heap but the shared
/// [`KeyAttributes`], built once when the key is stored); the whole record
/// is one pointer away. A verify copies those fields and shares the
/// attributes: no string is copied, one lookup touches a few cache lines.
///
/// Every change goes through [`Keys::update`], which derives the verify
/// fields from the record again, so the two never disagree. The attributes
/// are not rebuilt: no store operation changes a key's kind, owner, name,
/// metadata or roles (writes change its state, times and rotation links).
#[derive(Debug, Default)]
struct Keys(HashMap<KeyId, Stored>);

#[derive(Debug)]
struct Stored {
    verify: VerifyRecord,
    record: Box<KeyRecord>,
}

impl Keys {
    fn contains_key(&self, id: &KeyId) -> bool {
        self.0.contains_key(id)
    }

    fn get(&self, id: &KeyId) -> Option<&KeyRecord> {
        self.0.get(id).map(|stored| &*stored.record)
    }

    /// Runs `change` on the key's record (`Error::NotFound` if there is no
    /// such key), then brings its verify fields up to date.
    fn update<T>(
        &mut self,
        id: &KeyId,
        change: impl FnOnce(&mut KeyRecord) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let stored = self.0.get_mut(id).ok_or(Error::NotFound)?;
        let changed = change(&mut stored.record);
        let attributes = Arc::clone(&stored.verify.attributes);
        stored.verify = VerifyRecord::with_attributes(&stored.record, attributes);
        changed
    }

    fn values(&self) -> impl Iterator<Item = &KeyRecord> {
        self.0.values().map(|stored| &*stored.record)
    }

    fn insert(&mut self, record: KeyRecord) {
        let attributes = Arc::new(KeyAttributes::from(&record));
        let verify = VerifyRecord::with_attributes(&record, attributes);
        let record = Box::new(record);
        self.0.insert(record.id.clone(), Stored { verify, record });
    }

    fn remove(&mut self, id: &KeyId) -> Option<KeyRecord> {
        self.0.remove(id).map(|stored| *stored.record)
    }

    /// The verify read: copied from the table, the attributes shared.
    fn verify(&self, id: &KeyId) -> Option<VerifyRecord> {
        self.0.get(id).map(|stored| stored.verify.clone())
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, to change it.
    fn lock(&self) -> RwLockWriteGuard<'_, State> {
        // A panic elsewhere while holding the lock cannot leave a half-written
        // key: every mutation below is checked before it writes.
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, to read it (reads run side by side).
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_key(
        &self,
        key: &KeyRecord,
        limit: Option<u32>,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        if state.keys.contains_key(&key.id) {
            return Err(Error::AlreadyExists);
        }
        if let Some(limit) = limit {
            let live = state
                .keys
                .values()
                .filter(|k| k.owner == key.owner && k.kind == key.kind && k.is_live(now))
                .count();
            if live >= limit as usize {
                return Err(Error::LimitReached { limit });
            }
        }
        state.keys.insert(key.clone());
        state.audit.push(event.clone());
        Ok(())
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        Ok(self.read().keys.get(id).cloned())
    }

    async fn verify_key(&self, id: &KeyId) -> Result<Option<VerifyRecord>, Error> {
        Ok(self.read().keys.verify(id))
    }

    fn verify_key_now(&self, id: &KeyId) -> Option<Result<Option<VerifyRecord>, Error>> {
        Some(Ok(self.read().keys.verify(id)))
    }

    async fn set_state(
        &self,
        id: &KeyId,
        from: KeyState,
        to: KeyState,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        state.keys.update(id, |key| {
            if key.state != from || from == KeyState::Revoked {
                return Err(Error::Conflict {
                    expected: from,
                    actual: key.state,
                });
            }
            key.state = to;
            if to == KeyState::Revoked {
                key.revoked_at = Some(at);
            }
            Ok(())
        })?;
        state.audit.push(event.clone());
        Ok(())
    }

    async fn revoke_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let mut state = self.lock();
        let revoked = state.keys.update(id, |key| {
            if key.state == KeyState::Revoked {
                return Ok(false);
            }
            key.state = KeyState::Revoked;
            key.revoked_at = Some(at);
            Ok(true)
        })?;
        if revoked {
            state.audit.push(event.clone());
        }
        Ok(revoked)
    }

    async fn rotate_key(
        &self,
        predecessor: &KeyId,
        expected: KeyState,
        predecessor_expires_at: DateTime<Utc>,
        successor: &KeyRecord,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        if state.keys.contains_key(&successor.id) {
            return Err(Error::AlreadyExists);
        }
        state.keys.update(predecessor, |old| {
            if old.state != expected || old.rotated_to.is_some() {
                return Err(Error::Conflict {
                    expected,
                    actual: old.state,
                });
            }
            old.rotated_to = Some(successor.id.clone());
            old.expires_at = Some(match old.expires_at {
                Some(at) => at.min(predecessor_expires_at),
                None => predecessor_expires_at,
            });
            Ok(())
        })?;
        state.keys.insert(successor.clone());
        state.audit.push(event.clone());
        Ok(())
    }

    async fn record_usage(&self, batch: &[UsageRecord]) -> Result<(), Error> {
        let mut state = self.lock();
        for usage in batch {
            let stamped = state.keys.update(&usage.key_id, |key| {
                if key.last_used_at.is_none_or(|at| at < usage.used_at) {
                    key.last_used_at = Some(usage.used_at);
                }
                Ok(())
            });
            match stamped {
                // A key pruned since its use is no longer there: nothing to stamp.
                Ok(()) | Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn list_keys(&self, query: &ListQuery) -> Result<Page<KeyRecord>, Error> {
        let state = self.read();
        let mut items: Vec<&KeyRecord> = state
            .keys
            .values()
            .filter(|k| query.matches(k))
            .filter(|k| query.after.as_ref().is_none_or(|c| comes_after(k, c)))
            .collect();
        items.sort_by(|a, b| {
            (b.created_at, b.id.as_str().as_bytes()).cmp(&(a.created_at, a.id.as_str().as_bytes()))
        });
        let items = items.into_iter().take(query.limit + 1).cloned().collect();
        Ok(page_from_overfetch(items, query.limit))
    }

    async fn keys_expiring(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, Error> {
        let state = self.read();
        let mut items: Vec<&KeyRecord> = state
            .keys
            .values()
            .filter(|k| k.state != KeyState::Revoked)
            .filter(|k| k.expires_at.is_some_and(|at| at > after && at <= before))
            .collect();
        items.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
        Ok(items.into_iter().take(limit).cloned().collect())
    }

    async fn put_role(
        &self,
        role: &Role,
        replaces: Option<&PermissionSet>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let id = (role.owner.clone(), role.name.clone());
        let stored = state.roles.get(&id).map(|r| &r.permissions);
        if stored != replaces {
            return Err(Error::RoleChanged);
        }
        state.roles.insert(id, role.clone());
        state.audit.push(event.clone());
        Ok(())
    }

    async fn get_roles(&self, owner: &Owner, names: &[RoleName]) -> Result<Vec<Role>, Error> {
        let state = self.read();
        let mut roles: Vec<Role> = names
            .iter()
            .filter_map(|n| state.roles.get(&(owner.clone(), n.clone())).cloned())
            .collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        roles.dedup_by(|a, b| a.name == b.name);
        Ok(roles)
    }

    async fn list_roles(
        &self,
        owner: &Owner,
        after: Option<&RoleName>,
        limit: usize,
    ) -> Result<Vec<Role>, Error> {
        check_page_size(limit)?;
        let state = self.read();
        // The map is ordered by (owner, name), so the owner's roles come
        // out in name order.
        let roles = state
            .roles
            .iter()
            .filter(|((o, name), _)| o == owner && after.is_none_or(|after| name > after))
            .take(limit)
            .map(|(_, role)| role.clone())
            .collect();
        Ok(roles)
    }

    async fn delete_role(
        &self,
        owner: &Owner,
        name: &RoleName,
        expected: &PermissionSet,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let id = (owner.clone(), name.clone());
        let stored = state.roles.get(&id).ok_or(Error::NotFound)?;
        if &stored.permissions != expected {
            return Err(Error::RoleChanged);
        }
        state.roles.remove(&id);
        state.audit.push(event.clone());
        Ok(())
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), Error> {
        self.lock().audit.push(event.clone());
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, Error> {
        let state = self.read();
        Ok(state
            .audit
            .iter()
            .rev()
            .filter(|e| query.matches(e))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn prune_keys(
        &self,
        selection: PruneKeys,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyId>, Error> {
        check_prune_batch(limit)?;
        let mut state = self.lock();
        let mut doomed: Vec<(Option<DateTime<Utc>>, KeyId)> = state
            .keys
            .values()
            .filter(|k| selection.selects(k, now))
            .map(|k| (selection.sort_time(k), k.id.clone()))
            .collect();
        doomed.sort();
        doomed.truncate(limit);
        Ok(doomed
            .into_iter()
            .filter_map(|(_, id)| state.keys.remove(&id).map(|k| k.id))
            .collect())
    }

    async fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, Error> {
        check_prune_batch(limit)?;
        let mut state = self.lock();
        // Oldest first by time, then by append order.
        let mut order: Vec<(DateTime<Utc>, usize)> = state
            .audit
            .iter()
            .enumerate()
            .filter(|(_, e)| e.at < before)
            .map(|(i, e)| (e.at, i))
            .collect();
        order.sort();
        order.truncate(limit);
        let mut doomed = vec![false; state.audit.len()];
        for &(_, i) in &order {
            if let Some(slot) = doomed.get_mut(i) {
                *slot = true;
            }
        }
        let mut flags = doomed.into_iter();
        state.audit.retain(|_| !flags.next().unwrap_or(false));
        Ok(order.len())
    }
}
