//! Pruning: deleting dead keys (revoked, or expired, before a cutoff) and
//! old audit events, in bounded batches, as an operator.

use super::Keyward;
use crate::actor::Actor;
use crate::audit::{AuditAction, AuditEvent, AuditOutcome};
use crate::authorization::{Operation, Permit};
use crate::error::Error;
use crate::store::{PruneKeys, PruneReport, PruneRequest};
use chrono::{DateTime, Utc};

impl Keyward {
    /// Deletes dead keys and old audit events of every owner: keys revoked
    /// before `revoked_before`, active keys that expired before
    /// `expired_before`, audit events older than `audit_before`. Never a
    /// live key, never a disabled one.
    ///
    /// Operators only; a refusal is audited. Works in batches of
    /// `batch_size` rows, each its own short transaction, until nothing is
    /// left to delete, then appends one audit event
    /// ([`AuditAction::Prune`]) with the counts in its `detail`
    /// (`revoked_keys=… expired_keys=… audit_events=…` and the cutoffs). A
    /// pruned key verifies as unknown from then on: the verification cache
    /// drops every pruned key (in other processes through the change feed).
    ///
    /// If the store fails midway, what was deleted stays deleted; the event
    /// then records the counts so far as refused, and the error is returned.
    pub async fn prune(&self, actor: &Actor, request: PruneRequest) -> Result<PruneReport, Error> {
        let now = self.now();
        let event = AuditEvent::new(now, actor.label(), AuditAction::Prune);
        let decided = request
            .check(now)
            .and_then(|()| self.decide(actor, &Operation::Prune));
        let permit = match decided {
            Ok(permit) => permit,
            Err(e) => {
                let event = event.with_detail(request.describe());
                return Err(self.audit_refusal(event, e).await);
            }
        };
        let mut report = PruneReport::default();
        let run = self.prune_batches(permit, &request, now, &mut report).await;
        let detail = format!("{} {}", report.describe(), request.describe());
        let event = event.with_detail(detail);
        match run {
            Ok(()) => {
                permit.store().append_audit(&event).await?;
                Ok(report)
            }
            Err(e) => {
                let reason =
                    "interrupted by a store error; the counts are what was deleted before it";
                let event = event.with_outcome(AuditOutcome::Refused(reason.to_owned()));
                // The error stands even if recording it fails.
                drop(permit.store().append_audit(&event).await);
                Err(e)
            }
        }
    }

    async fn prune_batches(
        &self,
        permit: Permit<'_>,
        request: &PruneRequest,
        now: DateTime<Utc>,
        report: &mut PruneReport,
    ) -> Result<(), Error> {
        let batch = request.batch_size;
        let selections = [
            request.revoked_before.map(PruneKeys::RevokedBefore),
            request.expired_before.map(PruneKeys::ExpiredBefore),
        ];
        for selection in selections.into_iter().flatten() {
            loop {
                let pruned = permit.store().prune_keys(selection, now, batch).await?;
                let count = pruned.len() as u64;
                match selection {
                    PruneKeys::RevokedBefore(_) => report.revoked_keys += count,
                    PruneKeys::ExpiredBefore(_) => report.expired_keys += count,
                }
                // A short batch is the last: the selection is fixed in the
                // past, so nothing new can join it.
                if pruned.len() < batch {
                    break;
                }
            }
        }
        if let Some(before) = request.audit_before {
            loop {
                let deleted = permit.store().prune_audit(before, batch).await?;
                report.audit_events += deleted as u64;
                if deleted < batch {
                    break;
                }
            }
        }
        Ok(())
    }
}
