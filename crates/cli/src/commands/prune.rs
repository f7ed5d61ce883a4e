//! `keyward prune`: delete dead keys and old audit events, in batches.

use super::time_ago_or_at;
use crate::context::Context;
use crate::failure::Failure;
use keyward::chrono::{DateTime, Utc};
use keyward::store::PruneRequest;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Delete keys revoked before this time (`90d` ago, an RFC 3339 time or
    /// a date).
    #[arg(long, value_name = "TIME", value_parser = time_ago_or_at)]
    revoked_before: Option<DateTime<Utc>>,
    /// Delete active keys that expired before this time (disabled keys are
    /// kept).
    #[arg(long, value_name = "TIME", value_parser = time_ago_or_at)]
    expired_before: Option<DateTime<Utc>>,
    /// Delete audit events older than this time.
    #[arg(long, value_name = "TIME", value_parser = time_ago_or_at)]
    audit_before: Option<DateTime<Utc>>,
    /// Rows per batch (1..=10000): each batch is one short transaction.
    #[arg(long, default_value_t = keyward::limits::DEFAULT_PRUNE_BATCH)]
    batch_size: usize,
}

pub(crate) async fn run(context: &Context, args: &Args) -> Result<(), Failure> {
    let mut request = PruneRequest::new().batch_size(args.batch_size);
    if let Some(at) = args.revoked_before {
        request = request.revoked_before(at);
    }
    if let Some(at) = args.expired_before {
        request = request.expired_before(at);
    }
    if let Some(at) = args.audit_before {
        request = request.audit_before(at);
    }
    let report = context.keyward.prune(&context.actor, request).await?;
    let output = &context.output;
    if output.is_json() {
        return output.json(&report);
    }
    let count = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    output.line(&format!(
        "pruned {}, {} and {}",
        count(report.revoked_keys, "revoked key", "revoked keys"),
        count(report.expired_keys, "expired key", "expired keys"),
        count(report.audit_events, "audit event", "audit events"),
    ))
}
