//! Last-used tracking: recorded in memory on verify, flushed in batches.

use crate::error::Error;
use crate::key::{KeyId, UsageRecord};
use crate::store::KeyStore;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Keeps the newest use per key until the next flush. Verification only
/// touches this map; the store sees one forward-only batch per flush.
#[derive(Debug, Default)]
pub(crate) struct UsageRecorder {
    pending: Mutex<HashMap<KeyId, DateTime<Utc>>>,
}

impl UsageRecorder {
    pub(crate) fn record(&self, key_id: &KeyId, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.get_mut(key_id) {
            Some(newest) if *newest >= at => {}
            Some(newest) => *newest = at,
            None => {
                pending.insert(key_id.clone(), at);
            }
        }
    }

    /// Writes everything pending in one batch; on failure the batch is put
    /// back (merged with newer uses) so nothing is lost.
    pub(crate) async fn flush(&self, store: &dyn KeyStore) -> Result<usize, Error> {
        let batch: Vec<UsageRecord> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending
                .drain()
                .map(|(key_id, used_at)| UsageRecord { key_id, used_at })
                .collect()
        };
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

    pub(crate) fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
