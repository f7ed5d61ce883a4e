//! Last-used tracking: recorded in memory on verify, flushed in batches.
//!
//! Two paths, both free of shared hot spots: a verify served from the cache
//! stamps the cached snapshot's own [`UsageSlot`] (a cache line nobody else
//! writes unless they use the same key) and queues the snapshot once per
//! flush; a verify that read the store records into one of several
//! independently locked maps.

use crate::cache::Prehashed;
use crate::error::Error;
use crate::key::{KeyId, UsageRecord};
use crate::snapshot::KeySnapshot;
use crate::store::KeyStore;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

const SHARDS: usize = 16;

/// The fewest queued snapshots per shard that are folded into the per-key
/// map (see [`UsageRecorder::for_cache`]).
const MIN_FOLD_AT: usize = 256;

/// A key id with its hash, computed once: it picks the shard and places
/// the id in the shard's map.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hashed {
    hash: u64,
    key_id: KeyId,
}

impl Hash for Hashed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

type ById = HashMap<Hashed, DateTime<Utc>, BuildHasherDefault<Prehashed>>;

#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    by_id: Mutex<ById>,
    queued: Mutex<Vec<Arc<KeySnapshot>>>,
}

/// Keeps the newest use per key until the next flush. Verification only
/// touches memory; the store sees one forward-only batch per flush.
#[derive(Debug)]
pub(crate) struct UsageRecorder {
    hasher: RandomState,
    shards: Box<[Shard; SHARDS]>,
    /// Queued snapshots per shard before they are folded into the per-key
    /// map: every reload of a key makes a new snapshot, so without a flush
    /// the queues would otherwise grow with reloads rather than with keys.
    fold_at: usize,
}

impl Default for UsageRecorder {
    fn default() -> Self {
        Self::for_cache(0)
    }
}

impl UsageRecorder {
    /// A recorder for a cache of `capacity` keys: its queues hold about
    /// twice that many snapshots before folding, so in the steady state
    /// (every queued snapshot still cached) nothing is folded, and a queued
    /// use costs one pointer.
    pub(crate) fn for_cache(capacity: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            shards: Box::new(std::array::from_fn(|_| Shard::default())),
            fold_at: (capacity.saturating_mul(2) / SHARDS).max(MIN_FOLD_AT),
        }
    }

    #[allow(
        clippy::indexing_slicing,
        reason = "the index is reduced modulo SHARDS and the array has SHARDS shards"
    )]
    fn shard(&self, seed: u64) -> &Shard {
        &self.shards[(seed % SHARDS as u64) as usize]
    }

    /// Records a use of a key read from the store.
    pub(crate) fn record(&self, key_id: &KeyId, at: DateTime<Utc>) {
        let hash = self.hasher.hash_one(key_id);
        // The high half picks the shard; the map places by the low bits,
        // which would otherwise be the same for every id of a shard.
        let mut pending = self
            .shard(hash >> 32)
            .by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = Hashed {
            hash,
            key_id: key_id.clone(),
        };
        match pending.get_mut(&key) {
            Some(newest) if *newest >= at => {}
            Some(newest) => *newest = at,
            None => {
                pending.insert(key, at);
            }
        }
    }

    /// Records a use of a cached snapshot at `at` (micros): one atomic
    /// store, and a queue push only the first time after a flush.
    pub(crate) fn record_cached(&self, snapshot: &Arc<KeySnapshot>, at: i64) {
        let slot = &snapshot.usage;
        if slot.last_used.load(Ordering::Relaxed) < at {
            slot.last_used.fetch_max(at, Ordering::SeqCst);
        }
        // The flush clears `queued` before it reads `last_used`, so either
        // it reads the use stored above, or this sees `queued` cleared and
        // queues the snapshot again.
        if !slot.queued.load(Ordering::SeqCst) && !slot.queued.swap(true, Ordering::SeqCst) {
            let seed = Arc::as_ptr(snapshot) as u64 >> 7;
            let full = {
                let mut queue = self
                    .shard(seed)
                    .queued
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                queue.push(Arc::clone(snapshot));
                (queue.len() >= self.fold_at).then(|| std::mem::take(&mut *queue))
            };
            for snapshot in full.into_iter().flatten() {
                if let Some(usage) = Self::take_queued(&snapshot) {
                    self.record(&usage.key_id, usage.used_at);
                }
            }
        }
    }

    /// Unqueues a snapshot and reads its newest use. `queued` is cleared
    /// before `last_used` is read, so a use stamped meanwhile either is
    /// read here or queues the snapshot again.
    fn take_queued(snapshot: &KeySnapshot) -> Option<UsageRecord> {
        snapshot.usage.queued.store(false, Ordering::SeqCst);
        let at = snapshot.usage.last_used.load(Ordering::SeqCst);
        DateTime::from_timestamp_micros(at).map(|used_at| UsageRecord {
            key_id: snapshot.key_id.clone(),
            used_at,
        })
    }

    fn drain(&self) -> Vec<UsageRecord> {
        let mut batch = Vec::new();
        for shard in self.shards.iter() {
            let by_id =
                std::mem::take(&mut *shard.by_id.lock().unwrap_or_else(PoisonError::into_inner));
            batch.extend(by_id.into_iter().map(|(key, used_at)| UsageRecord {
                key_id: key.key_id,
                used_at,
            }));
            let queued =
                std::mem::take(&mut *shard.queued.lock().unwrap_or_else(PoisonError::into_inner));
            batch.extend(queued.iter().filter_map(|s| Self::take_queued(s)));
        }
        UsageRecord::newest_per_key(&batch)
    }

    /// Writes everything pending in one batch; on failure the batch is put
    /// back (merged with newer uses) so nothing is lost.
    pub(crate) async fn flush(&self, store: &dyn KeyStore) -> Result<usize, Error> {
        let batch = self.drain();
        if batch.is_empty() {
            return Ok(0);
        }
        match store.record_usage(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                for r in &batch {
                    self.record(&r.key_id, r.used_at);
                }
                Err(e)
            }
        }
    }

    /// How many keys have a use not yet flushed.
    pub(crate) fn pending(&self) -> usize {
        let mut keys = HashSet::new();
        for shard in self.shards.iter() {
            let by_id = shard.by_id.lock().unwrap_or_else(PoisonError::into_inner);
            keys.extend(by_id.keys().map(|key| key.key_id.clone()));
            let queued = shard.queued.lock().unwrap_or_else(PoisonError::into_inner);
            keys.extend(queued.iter().map(|s| s.key_id.clone()));
        }
        keys.len()
    }
}
