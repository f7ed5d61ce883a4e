//! `keyward audit`: audit events, newest first.

use super::{key_id, owner};
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{Cell, Style};
use keyward::audit::{AuditOutcome, AuditQuery};
use keyward::{KeyId, Owner};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only events about this owner.
    #[arg(long, value_parser = owner)]
    owner: Option<Owner>,
    /// Only events about this key.
    #[arg(long = "key", value_name = "ID", value_parser = key_id)]
    key: Option<KeyId>,
    /// At most this many events (1..=1000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

pub(crate) async fn run(context: &Context, args: &Args) -> Result<(), Failure> {
    let mut query = AuditQuery::newest(args.limit);
    if let Some(owner) = &args.owner {
        query = query.owner(owner);
    }
    if let Some(key) = &args.key {
        query = query.key_id(key);
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
