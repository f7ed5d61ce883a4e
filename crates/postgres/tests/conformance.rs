//! Temporary: the conformance suite against Postgres, one schema per test.

use keyward_postgres::PgStore;
use keyward_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;

async fn fresh() -> Option<PgStore> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!(
        "kwtest_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    keyward_postgres::sqlx::query(keyward_postgres::sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .unwrap();
    let store = PgStore::new(pool);
    store.migrate().await.unwrap();
    Some(store)
}

keyward_core::conformance_tests!(async { fresh().await.unwrap() });
