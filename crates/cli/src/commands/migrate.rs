//! `keyward migrate`: create or upgrade keyward's tables.

use crate::context;
use crate::failure::Failure;
use crate::output::Output;
use std::path::Path;

#[derive(serde::Serialize)]
struct Migrated<'a> {
    migrated: bool,
    store: &'a str,
}

pub(crate) async fn run(config_path: &Path, output: &Output) -> Result<(), Failure> {
    let config = context::load(config_path)?;
    let store = context::store(&config, config_path)?;
    store.open_migrated().await?;
    if output.is_json() {
        output.json(&Migrated {
            migrated: true,
            store: store.backend(),
        })
    } else {
        output.line(&format!("migrated: {}", store.describe()))
    }
}
