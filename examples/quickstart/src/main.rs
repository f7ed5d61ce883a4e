//! keyward quickstart: issue an API key, verify it, list keys, revoke it, and
//! watch the next verify fail. Copy this file as a starting point.
//!
//! Run it with `cargo run -p quickstart`: it builds the SQLite store and
//! nothing else. Keys are kept in `keyward-quickstart.db` in the working
//! directory, so every run lists the keys of the runs before it; set
//! `KEYWARD_DATABASE_URL` to another SQLite file or URL (`sqlite://…`,
//! `sqlite::memory:`) to keep them there instead. For Postgres, see
//! `examples/postgres` (`cargo run -p postgres-example`).
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use keyward::stores::SqliteStore;
use keyward::{
    Actor, ExpiryPolicy, IssueRequest, Keyward, Lifetime, ListRequest, Owner, PermissionSet,
    Requirement, Session, TokenKind, cache::CacheConfig,
};

/// SQLite in the working directory by default; `KEYWARD_DATABASE_URL` may
/// name another SQLite database.
fn open_store() -> Result<SqliteStore, Box<dyn std::error::Error>> {
    match std::env::var("KEYWARD_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => Err(
            "the quickstart runs on SQLite only; for Postgres run `cargo run -p postgres-example` \
             (examples/postgres) with DATABASE_URL set"
                .into(),
        ),
        Ok(url) => Ok(SqliteStore::connect(&url)?),
        Err(_) => Ok(SqliteStore::open("keyward-quickstart.db")?),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Configure one kind of token: account API keys with the `mt` prefix,
    //    1, 3 or 6 months to live (3 by default), at most 3 live per account.
    let keyward = Keyward::builder(open_store()?)
        .kind(
            TokenKind::new("mt")?
                .with_expiry(ExpiryPolicy::from_choices(
                    [
                        Lifetime::Months(1),
                        Lifetime::Months(3),
                        Lifetime::Months(6),
                    ],
                    Lifetime::Months(3),
                )?)
                .with_live_limit(3),
        )
        // 1b. Verify from memory. Changes made through this service are seen
        //     by the next verify; changes by other processes sharing the
        //     database within the TTL (5 s by default). See docs/caching.md.
        .verify_cache(CacheConfig::default())
        .build()?;

    // 2. A logged-in user (authenticated by your own app) issues a key for
    //    their account. The token is shown once; only its SHA-256 is stored.
    let alice = Owner::new("account:alice")?;
    let session: Actor =
        Session::new(alice.clone(), PermissionSet::parse(["reports.read"])?).into();
    let request = IssueRequest::new("mt", alice.clone(), "CI deploy")
        .scopes(PermissionSet::parse(["reports.read"])?);
    let issued = keyward.issue(&session, request).await?;
    println!(
        "issued   {} — copy it now, it is shown once:",
        issued.key.preview
    );
    println!("         {}", issued.token.expose_secret());
    println!(
        "         (printed as a value it stays hidden: {})",
        issued.token
    );

    // 3. Your request handler verifies the `Authorization` header.
    let header = format!("Bearer {}", issued.token.expose_secret());
    let need = Requirement::all_of(["reports.read"])?;
    let verified = keyward.verify_bearer(Some(&header), &need).await?;
    println!(
        "verified key {} ({:?}) of {}, may: {}",
        verified.key_id(),
        verified.name(),
        verified.owner(),
        verified.permissions()
    );

    // 4. List the account's keys, newest first.
    keyward.flush_usage().await?;
    let page = keyward
        .list(&session, ListRequest::new(alice.clone()).limit(10))
        .await?;
    println!(
        "listed   the newest {} key(s) of {alice}, from this run and earlier ones:",
        page.items.len()
    );
    for key in &page.items {
        let expires = key
            .expires_at
            .map_or("never".to_owned(), |t| t.date_naive().to_string());
        println!(
            "         {:<12} {:<10} {:<8} expires {expires}, last used {}",
            key.preview,
            key.name,
            key.status.to_string(),
            key.last_used(keyward::chrono::Utc::now())
        );
    }

    // 5. Revoke it: the very next verify is refused.
    keyward.revoke(&session, &issued.key.id).await?;
    println!("revoked  {}", issued.key.preview);
    match keyward.verify_bearer(Some(&header), &need).await {
        Ok(_) => return Err("a revoked key verified".into()),
        Err(rejection) => {
            let answer = rejection.public_answer();
            println!(
                "refused  ({rejection}) → HTTP {} {}",
                answer.status,
                answer.body()
            );
        }
    }
    Ok(())
}
