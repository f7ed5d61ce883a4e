//! Failures in the middle of a write: the caller gets a backend error and
//! the store is left as if the call never happened (no half-written key, no
//! orphan audit event), and it keeps working afterwards.
//!
//! - Postgres: a connection dropped mid-transaction. An admin connection
//!   locks the audit table, so a mutation blocks on its audit insert after
//!   its key write; the test finds that backend (the one the lock blocks)
//!   and terminates it with `pg_terminate_backend`.
//! - SQLite: the database locked by another connection beyond the busy
//!   timeout, and the audit insert failing after the key row was written
//!   (a test trigger raises on it, as a full disk or I/O error would).

use crate::records::{key, unique_owner};
use keyward_core::chrono::{DateTime, TimeDelta, Utc};
use keyward_core::testkit::records::{issue_event, key_event};
use keyward_core::{
    Error, KeyId, audit::AuditAction, audit::AuditQuery, store::KeyRecord, store::KeyState,
    store::KeyStore, store::Metadata, store::UsageRecord,
};
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use keyward_postgres::sqlx::{self, PgPool};
use keyward_sqlite::rusqlite::{self, Connection, ErrorCode};
use keyward_sqlite::{SqliteOptions, SqliteStore};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How long the test waits for the operation to block on the audit lock.
const BLOCK_WAIT: Duration = Duration::from_secs(5);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

/// Fails unless `result` is a backend error from `backend`.
pub fn expect_backend_error(result: Result<(), Error>, backend: &str, what: &str) -> Error {
    match result {
        Err(e @ Error::Backend { backend: b, .. }) if b == backend => e,
        other => {
            panic!("{what}: expected Err(Backend {{ backend: {backend:?}, .. }}), got {other:?}")
        }
    }
}

/// Fails unless `error` keeps the driver's error of type `E` as its source.
pub fn assert_driver_error_kept<E: std::error::Error + 'static>(error: &Error) {
    let Error::Backend { source, .. } = error else {
        panic!("not a backend error: {error:?}");
    };
    assert!(
        source.downcast_ref::<E>().is_some(),
        "the source is not the driver's error: {source:?}"
    );
}

async fn audit_actions(store: &dyn KeyStore, id: &KeyId) -> Vec<AuditAction> {
    store
        .list_audit(&AuditQuery::newest(100).key_id(id))
        .await
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect()
}

async fn stored(store: &dyn KeyStore, id: &KeyId) -> KeyRecord {
    store
        .get_key(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("key {id} is missing"))
}

// -------------------------------------------------------------- Postgres --

/// A separate pool (not the store's) of up to `max_connections` on the
/// store's schema.
pub async fn pool_on_schema_of(store: &PgStore, max_connections: u32) -> PgPool {
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let url = std::env::var("DATABASE_URL").unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await
        .unwrap()
}

/// The pool beside the store's: the admin connection that takes the lock,
/// the observer that finds the blocked backend, and the fresh connections
/// that check what was committed.
async fn side_pool(store: &PgStore) -> PgPool {
    pool_on_schema_of(store, 3).await
}

/// Runs `operation` while the audit table is locked, terminates the
/// connection it blocks on, and returns what the operation returned.
pub async fn kill_connection_while_writing_audit(
    side: &PgPool,
    operation: impl Future<Output = Result<(), Error>> + Send + 'static,
) -> Result<(), Error> {
    let mut admin = side.begin().await.unwrap();
    sqlx::query("LOCK TABLE keyward_audit IN EXCLUSIVE MODE")
        .execute(&mut *admin)
        .await
        .unwrap();
    let admin_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *admin)
        .await
        .unwrap();

    let task = tokio::spawn(operation);
    let started = Instant::now();
    let blocked = loop {
        // The observer runs outside the admin transaction: activity
        // statistics are a snapshot per transaction.
        let blocked: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE $1 = ANY (pg_blocking_pids(pid)) AND wait_event_type = 'Lock' \
             AND query LIKE '%keyward_audit%'",
        )
        .bind(admin_pid)
        .fetch_optional(side)
        .await
        .unwrap();
        if let Some(pid) = blocked {
            break pid;
        }
        assert!(
            !task.is_finished(),
            "the operation finished without waiting for the audit lock: {:?}",
            task.await
        );
        assert!(
            started.elapsed() < BLOCK_WAIT,
            "no connection blocked on the audit lock within {BLOCK_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(blocked)
        .fetch_one(side)
        .await
        .unwrap();
    assert!(terminated, "pg_terminate_backend({blocked}) failed");
    let outcome = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the operation still runs 10 s after its connection was terminated")
        .expect("the operation panicked");
    admin.rollback().await.unwrap();
    outcome
}

/// Issue: the key row is written, the connection dies before the audit
/// event, and nothing remains; the store then issues the same key normally.
pub async fn pg_dropped_connection_mid_insert_leaves_no_key(store: PgStore) {
    let side = side_pool(&store).await;
    let key = key(
        &unique_owner("account"),
        "CI deploy",
        Metadata::new(),
        now(),
    );

    let operation = {
        let (store, key) = (store.clone(), key.clone());
        async move {
            store
                .insert_key(&key, Some(3), key.created_at, &issue_event(&key))
                .await
        }
    };
    let outcome = kill_connection_while_writing_audit(&side, operation).await;
    let error = expect_backend_error(outcome, "postgres", "insert_key on a terminated connection");
    assert_driver_error_kept::<sqlx::Error>(&error);

    let fresh = PgStore::new(side.clone());
    assert!(
        fresh.get_key(&key.id).await.unwrap().is_none(),
        "the key was committed although its insert failed"
    );
    assert_eq!(audit_actions(&fresh, &key.id).await, []);

    store
        .insert_key(&key, Some(3), key.created_at, &issue_event(&key))
        .await
        .expect("the store recovers after a dropped connection");
    assert_eq!(stored(&fresh, &key.id).await.name, "CI deploy");
    assert_eq!(audit_actions(&fresh, &key.id).await, [AuditAction::Issue]);
    side.close().await;
}

/// Revoke: the state is updated, the connection dies before the audit event,
/// and the key is still active with no revoke event.
pub async fn pg_dropped_connection_mid_revoke_leaves_the_key_active(store: PgStore) {
    let side = side_pool(&store).await;
    let key = key(
        &unique_owner("account"),
        "CI deploy",
        Metadata::new(),
        now(),
    );
    store
        .insert_key(&key, None, key.created_at, &issue_event(&key))
        .await
        .unwrap();

    let at = now();
    let operation = {
        let (store, key) = (store.clone(), key.clone());
        async move {
            let revoke = key_event(&key, AuditAction::Revoke, at);
            store
                .set_state(&key.id, KeyState::Active, KeyState::Revoked, at, &revoke)
                .await
        }
    };
    let outcome = kill_connection_while_writing_audit(&side, operation).await;
    let error = expect_backend_error(outcome, "postgres", "set_state on a terminated connection");
    assert_driver_error_kept::<sqlx::Error>(&error);

    let fresh = PgStore::new(side.clone());
    let after = stored(&fresh, &key.id).await;
    assert_eq!(after.state, KeyState::Active);
    assert_eq!(after.revoked_at, None);
    assert_eq!(audit_actions(&fresh, &key.id).await, [AuditAction::Issue]);

    let revoke = key_event(&key, AuditAction::Revoke, at);
    store
        .set_state(&key.id, KeyState::Active, KeyState::Revoked, at, &revoke)
        .await
        .expect("the store recovers after a dropped connection");
    assert_eq!(stored(&fresh, &key.id).await.state, KeyState::Revoked);
    side.close().await;
}

/// Rotation: the successor is inserted and the predecessor marked, the
/// connection dies before the audit event, and neither change remains.
pub async fn pg_dropped_connection_mid_rotation_leaves_the_predecessor_alone(store: PgStore) {
    let side = side_pool(&store).await;
    let owner = unique_owner("account");
    let old = key(&owner, "CI deploy", Metadata::new(), now());
    store
        .insert_key(&old, None, old.created_at, &issue_event(&old))
        .await
        .unwrap();
    let mut new = key(&owner, "CI deploy", Metadata::new(), now());
    new.rotated_from = Some(old.id.clone());
    let overlap_ends = now() + TimeDelta::days(1);

    let operation = {
        let (store, old, new) = (store.clone(), old.clone(), new.clone());
        async move {
            let rotate = key_event(&old, AuditAction::Rotate, new.created_at);
            store
                .rotate_key(&old.id, KeyState::Active, overlap_ends, &new, &rotate)
                .await
        }
    };
    let outcome = kill_connection_while_writing_audit(&side, operation).await;
    let error = expect_backend_error(outcome, "postgres", "rotate_key on a terminated connection");
    assert_driver_error_kept::<sqlx::Error>(&error);

    let fresh = PgStore::new(side.clone());
    assert!(
        fresh.get_key(&new.id).await.unwrap().is_none(),
        "the successor was committed although the rotation failed"
    );
    let predecessor = stored(&fresh, &old.id).await;
    assert_eq!(predecessor.rotated_to, None);
    assert_eq!(predecessor.expires_at, None);
    assert_eq!(audit_actions(&fresh, &old.id).await, [AuditAction::Issue]);

    let rotate = key_event(&old, AuditAction::Rotate, new.created_at);
    store
        .rotate_key(&old.id, KeyState::Active, overlap_ends, &new, &rotate)
        .await
        .expect("the store recovers after a dropped connection");
    assert_eq!(stored(&fresh, &old.id).await.rotated_to, Some(new.id));
    side.close().await;
}

// ---------------------------------------------------------------- SQLite --

/// A new database file path under `dir`.
pub fn sqlite_path(dir: &str) -> PathBuf {
    Path::new(dir).join(format!(
        "keyward-resilience-{}.db",
        keyward_core::testkit::records::random_base62(12)
    ))
}

/// A write that cannot get the database lock within the busy timeout fails
/// with a backend error (SQLITE_BUSY kept as the source) and writes nothing;
/// reads go on meanwhile, and the write succeeds once the lock is released.
pub async fn sqlite_locked_database_fails_the_write_and_writes_nothing(dir: &str) {
    let path = sqlite_path(dir);
    let options = SqliteOptions::default().busy_timeout(Duration::from_millis(100));
    let store = SqliteStore::open_with(&path, options).unwrap();
    let owner = unique_owner("account");
    let existing = key(&owner, "existing", Metadata::new(), now());
    store
        .insert_key(
            &existing,
            Some(3),
            existing.created_at,
            &issue_event(&existing),
        )
        .await
        .unwrap();

    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let new = key(&owner, "new", Metadata::new(), now());
    let outcome = store
        .insert_key(&new, Some(3), new.created_at, &issue_event(&new))
        .await;
    let error = expect_backend_error(outcome, "sqlite", "insert_key on a locked database");
    let Error::Backend { source, .. } = &error else {
        unreachable!()
    };
    let code = source
        .downcast_ref::<rusqlite::Error>()
        .and_then(rusqlite::Error::sqlite_error_code);
    assert_eq!(
        code,
        Some(ErrorCode::DatabaseBusy),
        "the driver error is kept as the source: {source:?}"
    );
    assert_eq!(
        stored(&store, &existing.id).await.name,
        "existing",
        "reads never wait for the write lock"
    );
    let usage = UsageRecord {
        key_id: existing.id.clone(),
        used_at: now(),
    };
    expect_backend_error(
        store.record_usage(std::slice::from_ref(&usage)).await,
        "sqlite",
        "record_usage on a locked database",
    );
    locker.execute_batch("ROLLBACK").unwrap();

    assert!(store.get_key(&new.id).await.unwrap().is_none());
    assert_eq!(audit_actions(&store, &new.id).await, []);
    store
        .insert_key(&new, Some(3), new.created_at, &issue_event(&new))
        .await
        .expect("the write succeeds once the lock is released");
    store.record_usage(&[usage]).await.unwrap();
    assert_eq!(stored(&store, &new.id).await.name, "new");
}

/// A failure after the key row was written (the audit insert fails) rolls
/// the whole mutation back, for issue, revoke and rotation; once the
/// failure is gone the same calls succeed, so no row or open transaction
/// was left behind.
pub async fn sqlite_failed_audit_write_rolls_back_the_mutation(dir: &str) {
    let path = sqlite_path(dir);
    let store = SqliteStore::open(&path).unwrap();
    let owner = unique_owner("account");
    let old = key(&owner, "CI deploy", Metadata::new(), now());
    store
        .insert_key(&old, None, old.created_at, &issue_event(&old))
        .await
        .unwrap();

    let admin = Connection::open(&path).unwrap();
    admin
        .execute_batch(
            "CREATE TRIGGER keyward_test_audit_fails BEFORE INSERT ON keyward_audit \
             BEGIN SELECT RAISE(ABORT, 'simulated audit write failure'); END",
        )
        .unwrap();

    let new = key(&owner, "CI deploy (new)", Metadata::new(), now());
    let issue = store
        .insert_key(&new, Some(3), new.created_at, &issue_event(&new))
        .await;
    expect_backend_error(issue, "sqlite", "insert_key with a failing audit write");
    assert!(
        store.get_key(&new.id).await.unwrap().is_none(),
        "the key row stayed although its audit event failed"
    );

    let at = now();
    let revoke = key_event(&old, AuditAction::Revoke, at);
    let outcome = store
        .set_state(&old.id, KeyState::Active, KeyState::Revoked, at, &revoke)
        .await;
    expect_backend_error(outcome, "sqlite", "set_state with a failing audit write");
    assert_eq!(stored(&store, &old.id).await.state, KeyState::Active);

    let mut successor = key(&owner, "CI deploy", Metadata::new(), now());
    successor.rotated_from = Some(old.id.clone());
    let overlap_ends = now() + TimeDelta::days(1);
    let rotate = key_event(&old, AuditAction::Rotate, at);
    let outcome = store
        .rotate_key(&old.id, KeyState::Active, overlap_ends, &successor, &rotate)
        .await;
    expect_backend_error(outcome, "sqlite", "rotate_key with a failing audit write");
    assert!(store.get_key(&successor.id).await.unwrap().is_none());
    let predecessor = stored(&store, &old.id).await;
    assert_eq!(predecessor.rotated_to, None);
    assert_eq!(predecessor.expires_at, None);
    assert_eq!(audit_actions(&store, &old.id).await, [AuditAction::Issue]);

    admin
        .execute_batch("DROP TRIGGER keyward_test_audit_fails")
        .unwrap();
    store
        .insert_key(&new, Some(3), new.created_at, &issue_event(&new))
        .await
        .expect("the same key can be issued once the failure is gone");
    store
        .rotate_key(&old.id, KeyState::Active, overlap_ends, &successor, &rotate)
        .await
        .expect("the rotation succeeds once the failure is gone");
    assert_eq!(
        stored(&store, &old.id).await.rotated_to,
        Some(successor.id.clone())
    );
    assert_eq!(
        audit_actions(&store, &old.id).await,
        [AuditAction::Rotate, AuditAction::Issue]
    );
}
