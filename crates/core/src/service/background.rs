//! Work beside requests: cache invalidation for host changes, the usage
//! flush and its background task.

use super::Keyward;
use crate::cache::{CacheStatus, VerifyCache};
use crate::error::Error;
use crate::feed::Change;
use crate::key::Owner;
use std::time::Duration;

impl Keyward {
    // ---------------------------------------------------------------- cache

    /// Tells keyward that an owner's own permissions changed in the host,
    /// so keys inheriting them are resolved afresh: drops them from this
    /// service's cache and, with a change feed, every other process's.
    ///
    /// Call it whenever [`OwnerPermissions::permissions_of`](crate::hooks::OwnerPermissions::permissions_of) would now answer
    /// differently. Without a cache and a feed it does nothing.
    pub async fn owner_permissions_changed(&self, owner: &Owner) -> Result<(), Error> {
        let change = Change::Owner(owner.clone());
        if let Some(cache) = &self.inner.cache {
            cache.invalidate(&change);
        }
        match &self.inner.feed {
            Some(feed) => feed.publish(&change).await,
            None => Ok(()),
        }
    }

    /// The verification cache's state, if the service has one: entries,
    /// whether the change feed is fresh, and the worst-case staleness now.
    pub fn cache_status(&self) -> Option<CacheStatus> {
        self.inner.cache.as_ref().map(VerifyCache::status)
    }

    // ---------------------------------------------------------------- usage

    /// Writes the recorded uses to the store in one forward-only batch.
    /// Returns how many keys were written; on error nothing is lost.
    pub async fn flush_usage(&self) -> Result<usize, Error> {
        self.inner.store.flush_usage(&self.inner.usage).await
    }

    /// Keys with a use recorded but not yet flushed.
    pub fn pending_usage(&self) -> usize {
        self.inner.usage.pending()
    }

    /// Spawns a task on the current Tokio runtime that flushes usage every
    /// `every` (60 s is a good default). On shutdown, **await
    /// [`UsageFlusher::shutdown`]**: it writes the rest and reports any
    /// error. Dropping the handle stops the task too, and the task then
    /// flushes once more, but only while the runtime still runs it: a
    /// runtime that shuts down right after (the end of `main`) drops that
    /// last flush, and with it the uses since the last tick.
    pub fn spawn_usage_flusher(&self, every: Duration) -> UsageFlusher {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let keyward = self.clone();
        let task = tokio::spawn(async move {
            // Until stopped (or the handle dropped), flush on every tick. A
            // failed flush keeps its batch; the next tick retries it.
            while tokio::time::timeout(every, &mut stopped).await.is_err() {
                drop(keyward.flush_usage().await);
            }
            drop(keyward.flush_usage().await);
        });
        UsageFlusher {
            stop: Some(stop),
            task,
            keyward: self.clone(),
        }
    }
}

/// Aborts the change feed's listener when the service goes away.
#[derive(Debug)]
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The background usage flusher started by [`Keyward::spawn_usage_flusher`].
#[derive(Debug)]
#[must_use = "await `shutdown()` on exit, or the uses since the last tick may be lost"]
pub struct UsageFlusher {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    keyward: Keyward,
}

impl UsageFlusher {
    /// Stops the task and flushes what is left, reporting any error.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        (&mut self.task)
            .await
            .map_err(|e| Error::backend("usage-flusher", e))?;
        self.keyward.flush_usage().await.map(drop)
    }
}
