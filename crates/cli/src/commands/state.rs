//! `keyward revoke`, `disable` and `enable`.

use crate::context::Context;
use crate::failure::{Failure, about_key};
use crate::output::key_fields;
use keyward::KeyId;
use keyward::chrono::Utc;

/// Which change.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// With the reason for the audit event, if one is given.
    Revoke(Option<String>),
    Disable,
    Enable,
}

pub(crate) async fn run(context: &Context, change: Change, id: &KeyId) -> Result<(), Failure> {
    let (keyward, actor) = (&context.keyward, &context.actor);
    let key = match change {
        Change::Revoke(None) => keyward.revoke(actor, id).await,
        Change::Revoke(Some(reason)) => keyward.revoke_with_reason(actor, id, &reason).await,
        Change::Disable => keyward.disable(actor, id).await,
        Change::Enable => keyward.enable(actor, id).await,
    }
    .map_err(|e| about_key(id, e))?;
    if context.output.is_json() {
        context.output.json(&key)
    } else {
        key_fields(&context.output, &key, Utc::now())
    }
}
