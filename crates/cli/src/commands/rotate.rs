//! `keyward rotate`: a successor now, the old token until the overlap ends.

use super::duration;
use crate::context::Context;
use crate::failure::{Failure, about_key};
use keyward::chrono::TimeDelta;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The key to replace: its id, or the whole token.
    #[arg(value_name = "ID")]
    id: String,
    /// How long the old token keeps working (`0`, `1h`, `7d` …; at most the
    /// service's maximum, 30 days by default).
    #[arg(long, value_parser = duration, default_value = "0")]
    overlap: TimeDelta,
}

pub(crate) async fn run(context: &Context, args: &Args) -> Result<(), Failure> {
    let id = context.key_id(&args.id)?;
    let issued = context
        .keyward
        .rotate(&context.actor, &id, args.overlap)
        .await
        .map_err(|e| about_key(&id, e))?;
    super::issue::show_token(&context.output, issued)
}
