//! `keyward audit`: audit events, newest first.

use super::{owner, time_ago_or_at};
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{Cell, Style};
use keyward::audit::{AuditAction, AuditOutcome, AuditQuery};
use keyward::chrono::{DateTime, Utc};
use keyward::{KeyId, Owner};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only events about this owner.
    #[arg(long, value_parser = owner)]
    owner: Option<Owner>,
    /// Only events about this key (its id, or the whole token).
    #[arg(long = "key", value_name = "ID")]
    key: Option<String>,
    /// Only events of this action: issue, rotate, revoke, disable, enable,
    /// put_role, delete_role, view, prune.
    #[arg(long, value_parser = action)]
    action: Option<AuditAction>,
    /// Only events at or after this time (`7d` ago, an RFC 3339 time or a date).
    #[arg(long, value_name = "TIME", value_parser = time_ago_or_at)]
    since: Option<DateTime<Utc>>,
    /// Only events before this time.
    #[arg(long, value_name = "TIME", value_parser = time_ago_or_at)]
    until: Option<DateTime<Utc>>,
    /// At most this many events (1..=1000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

fn action(text: &str) -> Result<AuditAction, String> {
    AuditAction::from_stored(text).ok_or_else(|| {
        "expected issue, rotate, revoke, disable, enable, put_role, delete_role, view or prune"
            .to_owned()
    })
}

pub(crate) async fn run(context: &Context, args: &Args) -> Result<(), Failure> {
    let mut query = AuditQuery::newest(args.limit);
    if let Some(owner) = &args.owner {
        query = query.owner(owner);
    }
    if let Some(key) = &args.key {
        query = query.key_id(&context.key_id(key)?);
    }
    if let Some(action) = args.action {
        query = query.action(action);
    }
    if let Some(since) = args.since {
        query = query.since(since);
    }
    if let Some(until) = args.until {
        query = query.until(until);
    }
    let events = context.keyward.audit_events(&context.actor, query).await?;
    let output = &context.output;
    if output.is_json() {
        return output.json(&events);
    }
    let rows: Vec<_> = events
        .iter()
        .map(|event| {
            let outcome = match &event.outcome {
                AuditOutcome::Succeeded => Cell::styled("succeeded", Style::Good),
                AuditOutcome::Refused(why) => Cell::styled(format!("refused: {why}"), Style::Bad),
            };
            let text = |value: Option<&str>| Cell::new(value.unwrap_or("-"));
            vec![
                Cell::new(event.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
                Cell::new(event.actor.as_str()),
                Cell::new(event.action.as_str()),
                text(event.key_id.as_ref().map(KeyId::as_str)),
                text(event.key_name.as_deref()),
                text(event.owner.as_ref().map(Owner::as_str)),
                text(event.role.as_ref().map(|r| r.as_str())),
                outcome,
                text(event.detail.as_deref()),
            ]
        })
        .collect();
    output.table(
        &[
            "AT", "ACTOR", "ACTION", "KEY", "NAME", "OWNER", "ROLE", "OUTCOME", "DETAIL",
        ],
        &rows,
    )
}
