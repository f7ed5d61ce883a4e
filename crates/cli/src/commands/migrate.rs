//! `keyward migrate`: create or upgrade keyward's tables.

use crate::context::Context;
use crate::failure::Failure;

#[derive(serde::Serialize)]
struct Migrated<'a> {
    migrated: bool,
    store: &'a str,
}

pub(crate) async fn run(context: &Context) -> Result<(), Failure> {
    let output = &context.output;
    if output.is_json() {
        output.json(&Migrated {
            migrated: true,
            store: context.backend,
        })
    } else {
        output.line(&format!("migrated: {}", context.store))
    }
}
