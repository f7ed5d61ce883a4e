//! `keyward show`: one key's details.

use crate::context::Context;
use crate::failure::{Failure, about_key};
use crate::output::key_fields;
use keyward::KeyId;
use keyward::chrono::Utc;

pub(crate) async fn run(context: &Context, id: &KeyId) -> Result<(), Failure> {
    let key = context
        .keyward
        .get(&context.actor, id)
        .await
        .map_err(|e| about_key(id, e))?;
    if context.output.is_json() {
        context.output.json(&key)
    } else {
        key_fields(&context.output, &key, Utc::now())
    }
}
