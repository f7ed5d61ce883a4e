//! keyward on a service's own Postgres pool: the host builds its pool, runs
//! *its own* migrations with keyward's merged in (one run, one history in
//! `_sqlx_migrations`), then issues an API key, verifies it from a `Bearer`
//! header, lists the account's keys, revokes the key and watches the next
//! verify fail. Copy this file as a starting point.
//!
//! Run it with `cargo run -p postgres-example` against the database in
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Running it again is fine: applied migrations are skipped, and every run
//! works on a new account.
//!
//! What it shows:
//!
//! - sqlx comes from `keyward_postgres::sqlx`, so the pool is built with the
//!   sqlx version the adapter was compiled against (no second copy, no
//!   version skew).
//! - The pool skips sqlx's ping before every acquire.
//! - keyward's tables get a prefix (`example_keyward_`), so they sit beside
//!   the host's tables without colliding.
//! - keyward's migrations are merged into the host's own [`Migrator`]
//!   instead of running `PgStore::migrate()` (which would record them in a
//!   separate `example_keyward_migrations` table). Pick one of the two ways
//!   per database and stay with it: each records what it applied in its own
//!   table, so switching would try to create the tables again.
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use keyward_core::chrono::Utc;
use keyward_core::{
    Actor, ExpiryPolicy, IssueRequest, Keyward, Lifetime, ListRequest, Owner, PermissionSet,
    Requirement, Session, TokenKind, cache::CacheConfig, store::sql::TablePrefix,
};
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::migrate::{Migration, MigrationType, Migrator};
use keyward_postgres::sqlx::postgres::PgPoolOptions;
use keyward_postgres::sqlx::{self, SqlSafeStr};
use std::borrow::Cow;

/// The host's own migration, versioned like `sqlx migrate add` does
/// (a 14-digit timestamp). keyward's versions have 16 digits, so they never
/// collide with a host's.
const ACCOUNTS_MIGRATION: &str = "CREATE TABLE IF NOT EXISTS example_accounts (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());

    // 1. The host's pool. By default sqlx pings every idle connection before
    //    handing it out (`test_before_acquire`): one extra round-trip in
    //    front of every query, including the verify lookup on every request.
    //    A broken connection still surfaces as an error on the query itself.
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .test_before_acquire(false)
        .connect(&url)
        .await?;

    // 2. The host's migrations with keyward's merged in, applied in one run
    //    and recorded together in `_sqlx_migrations`. A host using
    //    `sqlx::migrate!()` starts from `MIGRATOR.iter().cloned()` instead of
    //    the vector below.
    let prefix = TablePrefix::new("example_keyward_")?;
    let mut migrations = vec![Migration::new(
        20260101120000,
        Cow::Borrowed("create example_accounts"),
        MigrationType::Simple,
        ACCOUNTS_MIGRATION.into_sql_str(),
        false,
    )];
    migrations.extend(keyward_postgres::migrations(&prefix));
    // `with_migrations` sorts by version; `run` applies only what is missing.
    Migrator::with_migrations(migrations).run(&pool).await?;
    let history: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await?;
    println!("migrated _sqlx_migrations holds:");
    for (version, description) in &history {
        println!("         {version:<17} {description}");
    }

    // 3. keyward on the same pool, its tables prefixed. Account API keys with
    //    the `mt` prefix: 1, 3 or 6 months to live (3 by default), at most 3
    //    live per account.
    //    Verification is served from memory; the store doubles as the
    //    change feed, so every process running this code drops what any
    //    other changes (LISTEN/NOTIFY), within 2 s at worst. See
    //    docs/caching.md.
    let store = PgStore::with_table_prefix(pool.clone(), prefix);
    let keyward = Keyward::builder(store.clone())
        .verify_cache(CacheConfig::default())
        .change_feed(store)
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
        .build()?;

    // 4. The host creates an account in its own table; keys belong to it.
    //    (A new account per run, so reruns never meet an earlier run's keys.)
    let account_id: i64 =
        sqlx::query_scalar("INSERT INTO example_accounts (name) VALUES ($1) RETURNING id")
            .bind("Alice's shop")
            .fetch_one(&pool)
            .await?;
    let account = Owner::new(&format!("account:{account_id}"))?;
    println!("account  {account} created by the host");

    // 5. A logged-in user (authenticated by your own app) issues a key for
    //    their account. The token is shown once; only its SHA-256 is stored.
    let session: Actor =
        Session::new(account.clone(), PermissionSet::parse(["reports.read"])?).into();
    let request = IssueRequest::new("mt", account.clone(), "CI deploy")
        .scopes(PermissionSet::parse(["reports.read"])?);
    let issued = keyward.issue(&session, request).await?;
    println!(
        "issued   {} — copy it now, it is shown once:",
        issued.key.preview
    );
    println!("         {}", issued.token.expose_secret());

    // 6. A request handler verifies the `Authorization` header: one primary
    //    key lookup, no write (the use is recorded in memory).
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

    // 7. Write the recorded uses (a service runs `spawn_usage_flusher`
    //    instead), then list the account's keys, newest first.
    keyward.flush_usage().await?;
    let page = keyward
        .list(&session, ListRequest::new(account.clone()))
        .await?;
    println!("listed   {} key(s):", page.items.len());
    for key in &page.items {
        let expires = key
            .expires_at
            .map_or("never".to_owned(), |t| t.date_naive().to_string());
        println!(
            "         {:<12} {:<10} {:<8} expires {expires}, last used {}",
            key.preview,
            key.name,
            key.status.to_string(),
            key.last_used(Utc::now())
        );
    }

    // 8. Revoke it: the very next verify is refused.
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

    pool.close().await;
    Ok(())
}
