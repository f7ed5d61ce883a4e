//! A Postgres [`KeyStore`](keyward_core::KeyStore) for keyward, on [`sqlx`].
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

mod codec;
mod schema;
mod store;

pub use schema::{migrations, migrator};
pub use sqlx;

use keyward_core::{Error, TablePrefix};
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
        Self::with_prefix(pool, TablePrefix::default())
    }

    /// A store on the host's pool with a table prefix.
    pub fn with_prefix(pool: PgPool, prefix: TablePrefix) -> Self {
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
}

pub(crate) fn pg_error(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return Error::AlreadyExists;
    }
    Error::backend("postgres", e)
}
