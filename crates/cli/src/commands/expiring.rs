//! `keyward expiring`: live keys of every owner expiring soon.

use super::duration;
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{Cell, time};
use keyward::chrono::{TimeDelta, Utc};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The window from now (`12h`, `7d`, `2w` …).
    #[arg(long, value_parser = duration, default_value = "7d")]
    within: TimeDelta,
    /// At most this many keys (1..=1000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

pub(crate) async fn run(context: &Context, args: &Args) -> Result<(), Failure> {
    if args.limit == 0 || args.limit > 1000 {
        return Err(Failure::usage("invalid limit: must be 1..=1000"));
    }
    let keys = context
        .keyward
        .expiring_keys(&context.actor, args.within, args.limit)
        .await?;
    let output = &context.output;
    if output.is_json() {
        return output.json(&keys);
    }
    let now = Utc::now();
    let rows: Vec<_> = keys
        .iter()
        .map(|key| {
            vec![
                Cell::new(time(key.expires_at, "never")),
                Cell::new(key.id.as_str()),
                Cell::new(key.kind.as_str()),
                Cell::new(key.owner.as_str()),
                Cell::new(key.name.as_str()),
                Cell::new(key.last_used(now)),
            ]
        })
        .collect();
    output.table(
        &["EXPIRES", "ID", "KIND", "OWNER", "NAME", "LAST USED"],
        &rows,
    )
}
