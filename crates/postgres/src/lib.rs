//! A Postgres [`KeyStore`](keyward_core::store::KeyStore) for keyward, on [`sqlx`].
//!
//! Build it from the service's own pool ([`PgStore::new`]) or from a URL
//! ([`PgStore::connect`]). Apply the schema with [`PgStore::migrate`], or
//! merge [`migrations`] into the host's own migration run.
//!
//! # Pools
//!
//! sqlx pools ping every connection before handing it out unless
//! `test_before_acquire(false)`: a second round-trip per query.
//! [`PgStore::connect`] turns it off; configure a pool you pass in the same way.
//!
//! # Atomicity
//!
//! - The live-key limit: the insert transaction first takes a transaction-scoped
//!   advisory lock on (owner, kind) (`pg_advisory_xact_lock`), then counts and
//!   inserts, so concurrent issues for one owner and kind serialize, across
//!   processes, while other owners proceed in parallel.
//! - State changes are a single conditional `UPDATE … WHERE state = $from`.
//! - Every mutation and its audit event commit in one transaction; a dropped
//!   connection rolls the whole transaction back.
//!
//! # The change feed
//!
//! `PgStore` is also a [`ChangeFeed`](keyward_core::feed::ChangeFeed): give a clone
//! to [`KeywardBuilder::change_feed`](keyward_core::KeywardBuilder::change_feed)
//! next to a verification cache, and every process's cache drops what any
//! other changed, within [`CacheConfig::feed_bound`](keyward_core::cache::CacheConfig::feed_bound)
//! while the feed is fresh.
//!
//! - Migrations add triggers on the keys and roles tables that `NOTIFY`
//!   the deployment's channel ([`PgStore::change_channel`]:
//!   `<prefix>changes_` and 16 hex digits of the MD5 of the tables' schema
//!   name, so two schemas with the same prefix never share one) with
//!   `k:<key id>` or `r:<role>` when a change commits, whoever made it: an
//!   operator's `UPDATE keyward_keys SET state = 'revoked' …` reaches every
//!   cache too. Updates of `last_used_at` alone (the usage flush) notify
//!   nothing.
//! - Each service runs a listener task on one of the pool's connections. It
//!   sends a heartbeat (`p:<nonce>`, 128 random bits) every quarter of the
//!   feed bound; when a nonce it is waiting for comes back, every change
//!   committed before it made that nonce has been applied, and the feed
//!   counts as fresh. The send time is the listener's own record, never
//!   read from the payload, and each nonce counts once, so no one else's
//!   `NOTIFY` (forged, or a replayed heartbeat) can make the feed look
//!   fresh; other payloads can only drop cache entries.
//! - On a lost connection the listener reports the feed down (entries
//!   loaded until then are not served again, later ones live
//!   [`CacheConfig::ttl`](keyward_core::cache::CacheConfig::ttl)), and reconnects
//!   after 100 ms, doubling up to 5 s; once listening again it drops the
//!   whole cache, since what changed in between is unknown.
//!
//! See `docs/adapters.md` (the `keyward` crate's `docs::adapters`) for the
//! staleness of each deployment shape.

mod codec;
mod feed;
mod schema;
mod store;

pub use schema::{migrations, migrator};
pub use sqlx;

use keyward_core::{Error, store::sql::TablePrefix};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// keyward's Postgres store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    prefix: TablePrefix,
    sql: std::sync::Arc<store::Statements>,
}

impl PgStore {
    /// A store on the host's pool, tables prefixed `keyward_`.
    pub fn new(pool: PgPool) -> Self {
        Self::with_table_prefix(pool, TablePrefix::default())
    }

    /// A store on the host's pool with a table prefix.
    pub fn with_table_prefix(pool: PgPool, prefix: TablePrefix) -> Self {
        Self {
            sql: std::sync::Arc::new(store::Statements::new(&prefix)),
            pool,
            prefix,
        }
    }

    /// Connects to `url` with a pool that does not ping before every query
    /// (10 connections), and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .test_before_acquire(false)
            .connect(url)
            .await
            .map_err(pg_error)?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Applies keyward's migrations with [`migrator`] (idempotent; safe from
    /// several processes at once: sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), Error> {
        migrator(&self.prefix)
            .run(&self.pool)
            .await
            .map_err(|e| Error::backend("postgres", e))
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The `LISTEN`/`NOTIFY` channel of the [change feed](crate#the-change-feed)
    /// for the tables this store's connections find on their `search_path`:
    /// `<prefix>changes_` followed by the first 16 hex digits of the MD5 of
    /// the tables' schema name (`keyward_changes_…`), at most 56 bytes. The
    /// triggers compute the same name, so each deployment (schema and
    /// prefix) has a channel of its own. Fails if the tables are not there.
    pub async fn change_channel(&self) -> Result<String, Error> {
        feed::channel(&self.pool, &self.prefix).await
    }
}

pub(crate) fn pg_error(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return Error::AlreadyExists;
    }
    Error::backend("postgres", e)
}
