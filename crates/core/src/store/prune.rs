//! What an operator asks to prune ([`PruneRequest`]) and what a prune
//! deleted ([`PruneReport`]); `Keyward::prune` carries it out, a batch at a
//! time, through [`KeyStore::prune_keys`](super::KeyStore::prune_keys) and
//! [`KeyStore::prune_audit`](super::KeyStore::prune_audit).

use super::MAX_PRUNE_BATCH;
use crate::error::Error;
use chrono::{DateTime, SecondsFormat, Utc};

/// How many rows one batch deletes unless the request says otherwise.
pub const DEFAULT_PRUNE_BATCH: usize = 1000;

/// What `Keyward::prune` deletes. At least one cutoff must be set, and
/// none may lie in the future.
///
/// ```
/// use keyward_core::store::PruneRequest;
/// use keyward_core::chrono::{TimeDelta, Utc};
/// let now = Utc::now();
/// let request = PruneRequest::new()
///     .revoked_before(now - TimeDelta::days(90))
///     .expired_before(now - TimeDelta::days(30))
///     .audit_before(now - TimeDelta::days(365));
/// # let _ = request;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRequest {
    pub(crate) revoked_before: Option<DateTime<Utc>>,
    pub(crate) expired_before: Option<DateTime<Utc>>,
    pub(crate) audit_before: Option<DateTime<Utc>>,
    pub(crate) batch_size: usize,
}

impl Default for PruneRequest {
    fn default() -> Self {
        Self::new()
    }
}

impl PruneRequest {
    /// Nothing selected yet, batches of [`DEFAULT_PRUNE_BATCH`].
    pub fn new() -> Self {
        Self {
            revoked_before: None,
            expired_before: None,
            audit_before: None,
            batch_size: DEFAULT_PRUNE_BATCH,
        }
    }

    /// Delete keys revoked before `at`.
    pub fn revoked_before(mut self, at: DateTime<Utc>) -> Self {
        self.revoked_before = Some(at);
        self
    }

    /// Delete active keys that expired before `at`. Disabled keys are kept,
    /// expired or not.
    pub fn expired_before(mut self, at: DateTime<Utc>) -> Self {
        self.expired_before = Some(at);
        self
    }

    /// Delete audit events older than `at`.
    pub fn audit_before(mut self, at: DateTime<Utc>) -> Self {
        self.audit_before = Some(at);
        self
    }

    /// Rows one batch deletes, 1..=[`MAX_PRUNE_BATCH`] (default
    /// [`DEFAULT_PRUNE_BATCH`]): each batch is one short transaction.
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows;
        self
    }

    pub(crate) fn check(&self, now: DateTime<Utc>) -> Result<(), Error> {
        if self.batch_size == 0 || self.batch_size > MAX_PRUNE_BATCH {
            return Err(Error::invalid("batch size", "must be 1..=10000"));
        }
        let cutoffs = [self.revoked_before, self.expired_before, self.audit_before];
        if cutoffs.iter().all(Option::is_none) {
            return Err(Error::invalid(
                "prune",
                "name at least one of revoked before, expired before, audit before",
            ));
        }
        if cutoffs.iter().flatten().any(|at| *at > now) {
            return Err(Error::invalid(
                "prune",
                "a cutoff must not lie in the future",
            ));
        }
        Ok(())
    }

    /// The cutoffs, for the audit event's detail.
    pub(crate) fn describe(&self) -> String {
        let show = |at: Option<DateTime<Utc>>| {
            at.map_or_else(
                || "-".to_owned(),
                |at| at.to_rfc3339_opts(SecondsFormat::Micros, true),
            )
        };
        format!(
            "revoked_before={} expired_before={} audit_before={}",
            show(self.revoked_before),
            show(self.expired_before),
            show(self.audit_before)
        )
    }
}

/// What `Keyward::prune` deleted. Serialized as `{"revoked_keys": n,
/// "expired_keys": n, "audit_events": n}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// Keys deleted because they were revoked before the cutoff.
    pub revoked_keys: u64,
    /// Active keys deleted because they expired before the cutoff.
    pub expired_keys: u64,
    /// Audit events deleted because they were older than the cutoff.
    pub audit_events: u64,
}

impl PruneReport {
    /// The counts as the audit event's detail records them.
    pub(crate) fn describe(&self) -> String {
        format!(
            "revoked_keys={} expired_keys={} audit_events={}",
            self.revoked_keys, self.expired_keys, self.audit_events
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_prunes_in_batches_of_1000_unless_told() {
        assert_eq!(DEFAULT_PRUNE_BATCH, 1000);
        assert_eq!(PruneRequest::new().batch_size, DEFAULT_PRUNE_BATCH);
        assert_eq!(PruneRequest::default(), PruneRequest::new());
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let request = PruneRequest::new().revoked_before(now);
        assert!(
            request.check(now).is_ok(),
            "a cutoff of now is in the past enough"
        );
        assert!(
            request
                .clone()
                .batch_size(MAX_PRUNE_BATCH)
                .check(now)
                .is_ok()
        );
        assert!(request.batch_size(MAX_PRUNE_BATCH + 1).check(now).is_err());
    }
}
