//! `cargo run -p service`: product E on a SQLite file (`keyward-service.db`),
//! or on Postgres when `DATABASE_URL` is set; `PORT` picks the port (3000).
//! Ctrl-C stops it after writing the last uses.

use keyward::Keyward;
use keyward::stores::{PgStore, SqliteStore};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn keyward::store::KeyStore> = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let store = PgStore::connect(&url).await?;
            store.migrate().await?;
            Arc::new(store)
        }
        _ => Arc::new(SqliteStore::open("keyward-service.db")?),
    };
    let keyward = Keyward::builder_arc(store)
        .kind(service::kind()?)
        .verify_cache(keyward::cache::CacheConfig::new())
        .build()?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    #[allow(clippy::print_stdout, reason = "the URL is what the user runs it for")]
    {
        println!("keyward example service on http://{address}/ (Ctrl-C to stop)");
    }
    let stop = async { tokio::signal::ctrl_c().await.unwrap_or_default() };
    // Leaked tokens GitHub finds in public code are revoked at once
    // (docs/leaks.md says how to enrol).
    let github_keys = keyward_axum::leaks::HttpKeyList::github()?;
    let app = service::app(keyward.clone(), github_keys);
    keyward_axum::serve(listener, app, &keyward, stop).await?;
    Ok(())
}
