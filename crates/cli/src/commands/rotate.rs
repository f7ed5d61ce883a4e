//! `keyward rotate`: a successor now, the old token until the overlap ends.

use super::{duration, key_id};
use crate::context::Context;
use crate::failure::{Failure, about_key};
use keyward::KeyId;
use keyward::chrono::TimeDelta;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The key to replace.
    #[arg(value_parser = key_id)]
    id: KeyId,
    /// How long the old token keeps working (`0`, `1h`, `7d` …; at most the
    /// service's maximum, 30 days by default).
    #[arg(long, value_parser = duration, default_value = "0")]
    overlap: TimeDelta,
}

pub(crate) async fn run(context: &Context, args: &Args) -> Result<(), Failure> {
    let issued = context
        .keyward
        .rotate(&context.actor, &args.id, args.overlap)
        .await
        .map_err(|e| about_key(&args.id, e))?;
    super::issue::show_token(&context.output, issued)
}
