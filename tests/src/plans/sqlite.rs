//! The SQLite half of the query-plan checks: the statements the SQLite
//! adapter sends (copied from `crates/sqlite/src/store.rs`), their
//! `EXPLAIN QUERY PLAN` on a migrated (and on a seeded, analyzed) database,
//! and the trace of what the real store sends.

use keyward_core::{store::sql::TablePrefix, store::sql::status_condition};
use keyward_sqlite::rusqlite::Connection;
use keyward_sqlite::rusqlite::trace::{TraceEvent, TraceEventCodes};
use keyward_sqlite::{SqliteOptions, SqliteStore};
use std::collections::BTreeSet;
use std::sync::Mutex;

use super::{
    AUDIT_BY_BOTH, AUDIT_BY_KEY, AUDIT_BY_OWNER, AUDIT_COLUMNS, EXPIRING, Expect, LIVE_COUNT,
    ListShape, PRUNE_AUDIT, PRUNE_REVOKED, ROLES_BY_NAME, ROLES_PAGE, SEEDED_KEYS,
    assert_explains_everything_sent, hot_path_workload, list_plan,
};

/// The SQLite adapter's verify columns (`crates/sqlite/src/codec.rs`).
const SQLITE_VERIFY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, scopes, \
    roles, inherits_owner, metadata, state, expires_at";

/// The SQLite adapter's key columns: the verify columns, then the rest.
const SQLITE_KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, scopes, \
    roles, inherits_owner, metadata, state, expires_at, preview, created_at, last_used_at, \
    revoked_at, created_by, rotated_from, rotated_to";

/// The keys table is stored in id order (WITHOUT ROWID): a lookup by id
/// searches the table's own b-tree, its primary key.
const SQLITE_BY_ID: Expect = Expect::keys(&["PRIMARY KEY"]);

/// The SQLite adapter's list query for `shape`.
fn sqlite_list(shape: &ListShape) -> String {
    let mut sql = format!("SELECT {SQLITE_KEY_COLUMNS} FROM keyward_keys WHERE owner = ?1");
    let mut n = 2;
    if shape.kind {
        n += 1;
        sql.push_str(&format!(" AND kind = ?{n}"));
    }
    if shape.name {
        n += 1;
        sql.push_str(&format!(" AND instr(name_folded, ?{n}) > 0"));
    }
    if shape.cursor {
        n += 2;
        sql.push_str(&format!(" AND (created_at, id) < (?{}, ?{n})", n - 1));
    }
    match status_condition(shape.statuses, "?2") {
        Some(condition) => sql.push_str(&format!(" AND {condition}")),
        None => sql.push_str(" AND ?2 IS NOT NULL"),
    }
    n += 1;
    sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ?{n}"));
    sql
}

/// The SQLite adapter's audit page filtered by owner and/or key.
fn sqlite_audit(owner: bool, key: bool) -> String {
    let mut conditions = Vec::new();
    if owner {
        conditions.push(format!("owner = ?{}", conditions.len() + 1));
    }
    if key {
        conditions.push(format!("key_id = ?{}", conditions.len() + 1));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    format!(
        "SELECT {AUDIT_COLUMNS} FROM keyward_audit{filter} ORDER BY seq DESC LIMIT ?{}",
        conditions.len() + 1
    )
}

/// The SQLite adapter's statements that read keys or audit events: (what,
/// SQL, expected plan).
pub fn sqlite_statements() -> Vec<(String, String, Expect)> {
    let k = "keyward_keys";
    let cols = SQLITE_KEY_COLUMNS;
    let mut statements = vec![
        (
            "verify_key (the verify lookup)".to_owned(),
            format!("SELECT {SQLITE_VERIFY_COLUMNS} FROM {k} WHERE id = ?1"),
            SQLITE_BY_ID,
        ),
        (
            "get_key (management's lookup)".to_owned(),
            format!("SELECT {cols} FROM {k} WHERE id = ?1"),
            SQLITE_BY_ID,
        ),
        (
            "set_state (compare-and-set by id)".to_owned(),
            format!(
                "UPDATE {k} SET state = ?1, revoked_at = CASE WHEN ?1 = 'revoked' THEN ?2 ELSE revoked_at END \
                 WHERE id = ?3 AND state = ?4 AND state <> 'revoked'"
            ),
            SQLITE_BY_ID,
        ),
        (
            "set_state's conflict read, revoke_key's existence read".to_owned(),
            format!("SELECT state FROM {k} WHERE id = ?1"),
            SQLITE_BY_ID,
        ),
        (
            "revoke_key (unconditional, by id)".to_owned(),
            format!(
                "UPDATE {k} SET state = 'revoked', revoked_at = ?1 \
                 WHERE id = ?2 AND state <> 'revoked'"
            ),
            SQLITE_BY_ID,
        ),
        (
            "rotate_key's predecessor read".to_owned(),
            format!("SELECT state, rotated_to FROM {k} WHERE id = ?1"),
            SQLITE_BY_ID,
        ),
        (
            "rotate_key's predecessor update".to_owned(),
            format!(
                "UPDATE {k} SET rotated_to = ?1, \
                 expires_at = CASE WHEN expires_at IS NULL OR expires_at > ?2 THEN ?2 ELSE expires_at END \
                 WHERE id = ?3"
            ),
            SQLITE_BY_ID,
        ),
        (
            "record_usage (one update per flush)".to_owned(),
            format!(
                "UPDATE {k} SET last_used_at = u.at FROM \
                 (SELECT value ->> 0 AS id, value ->> 1 AS at FROM json_each(?1)) AS u \
                 WHERE {k}.id = u.id \
                 AND ({k}.last_used_at IS NULL OR {k}.last_used_at < u.at)"
            ),
            SQLITE_BY_ID,
        ),
        (
            "keys_expiring".to_owned(),
            format!(
                "SELECT {cols} FROM {k} WHERE state <> 'revoked' \
                 AND expires_at > ?1 AND expires_at <= ?2 ORDER BY expires_at, id LIMIT ?3"
            ),
            EXPIRING,
        ),
        (
            "insert_key's live-key count".to_owned(),
            format!(
                "SELECT count(*) FROM {k} WHERE owner = ?1 AND kind = ?2 AND state <> 'revoked' \
                 AND (expires_at IS NULL OR expires_at > ?3)"
            ),
            LIVE_COUNT,
        ),
        (
            "list_audit by owner".to_owned(),
            sqlite_audit(true, false),
            AUDIT_BY_OWNER,
        ),
        (
            "list_audit by key".to_owned(),
            sqlite_audit(false, true),
            AUDIT_BY_KEY,
        ),
        (
            "list_audit by owner and key".to_owned(),
            sqlite_audit(true, true),
            AUDIT_BY_BOTH,
        ),
        (
            "prune_keys, revoked before".to_owned(),
            format!(
                "DELETE FROM {k} WHERE id IN (SELECT id FROM {k} \
                 WHERE revoked_at < ?1 AND state = 'revoked' ORDER BY revoked_at, id LIMIT ?2) \
                 RETURNING id"
            ),
            PRUNE_REVOKED,
        ),
        (
            "prune_keys, expired before".to_owned(),
            format!(
                "DELETE FROM {k} WHERE id IN (SELECT id FROM {k} \
                 WHERE state = 'active' AND expires_at < ?1 AND expires_at <= ?2 \
                 AND state <> 'revoked' AND expires_at IS NOT NULL ORDER BY expires_at, id LIMIT ?3) \
                 RETURNING id"
            ),
            EXPIRING,
        ),
        (
            "prune_audit".to_owned(),
            "DELETE FROM keyward_audit WHERE seq IN (SELECT seq FROM keyward_audit \
             WHERE at < ?1 ORDER BY at, seq LIMIT ?2)"
                .to_owned(),
            PRUNE_AUDIT,
        ),
        (
            "get_roles (a role by owner and name)".to_owned(),
            "SELECT permissions FROM keyward_roles WHERE owner = ?1 AND name = ?2".to_owned(),
            ROLES_BY_NAME,
        ),
        (
            "list_roles, the first page".to_owned(),
            "SELECT name, permissions FROM keyward_roles WHERE owner = ?1 ORDER BY name LIMIT ?2"
                .to_owned(),
            ROLES_PAGE,
        ),
        (
            "list_roles, a later page".to_owned(),
            "SELECT name, permissions FROM keyward_roles WHERE owner = ?1 AND name > ?2 \
             ORDER BY name LIMIT ?3"
                .to_owned(),
            ROLES_PAGE,
        ),
    ];
    for shape in ListShape::all() {
        statements.push((shape.describe(), sqlite_list(&shape), list_plan(&shape)));
    }
    statements
}

/// A private in-memory database migrated by the adapter's own [`migrate`].
///
/// [`migrate`]: keyward_sqlite::migrate
pub fn sqlite_migrated() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    keyward_sqlite::migrate(&mut conn, &TablePrefix::default()).unwrap();
    conn
}

/// Inserts [`SEEDED_KEYS`] keys, as many audit events and roles, and runs
/// `ANALYZE`, so the planner decides
/// with the statistics of a table in use.
pub fn sqlite_seed(conn: &Connection) {
    conn.execute_batch(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SEEDED_KEYS})
         INSERT INTO keyward_keys (id, kind, owner, name, name_folded, digest, digest_algorithm,
             preview, scopes, roles, inherits_owner, metadata, state, created_at, expires_at,
             last_used_at, revoked_at, created_by, rotated_from, rotated_to)
         SELECT printf('seed%08d', i), CASE i % 2 WHEN 0 THEN 'mt' ELSE 'tak' END,
             CASE WHEN i % 5 = 0 THEN 'owner:big' ELSE 'owner:' || (i % 2000) END,
             'Key ' || i, 'key ' || i, randomblob(32), 'sha256',
             'mt_seed…', '', '', 0, '{{}}',
             CASE i % 10 WHEN 0 THEN 'revoked' WHEN 1 THEN 'disabled' ELSE 'active' END,
             1767225600000000 + i * 60000000,
             CASE WHEN i % 3 = 0 THEN NULL ELSE 1767225600000000 + (i % 365) * 86400000000 END,
             NULL, NULL, 'operator:seed', NULL, NULL
         FROM n;
         INSERT INTO keyward_audit (at, actor, action, key_id, key_name, owner)
         SELECT created_at, 'operator:seed', 'issue', id, name, owner FROM keyward_keys;
         INSERT INTO keyward_roles (owner, name, permissions)
         SELECT owner, printf('role%08d', substr(id, 5)), 'projects.view' FROM keyward_keys;
         ANALYZE;"
    ))
    .unwrap();
}

/// The `detail` lines of `EXPLAIN QUERY PLAN sql` (parameters unbound:
/// SQLite plans at prepare time, before values are bound).
pub fn sqlite_plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut rows = stmt.raw_query();
    let mut lines = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        lines.push(row.get::<_, String>(3).unwrap());
    }
    lines
}

/// Fails unless every statement's plan on `conn` searches its index,
/// listing every statement that does not.
pub fn assert_sqlite_plans(conn: &Connection, database: &str) {
    let failures: Vec<String> = sqlite_statements()
        .iter()
        .filter_map(|(what, sql, expect)| {
            let plan = sqlite_plan(conn, sql);
            sqlite_plan_problem(&plan, expect).map(|problem| {
                format!(
                    "{what} {problem}:\n    {}\n  SQL: {sql}",
                    plan.join("\n    ")
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{database}: {} statements are not served as intended:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// What is wrong with a SQLite `plan` for `expect`, if anything.
fn sqlite_plan_problem(plan: &[String], expect: &Expect) -> Option<String> {
    let table = expect.table;
    let search = plan.iter().find(|line| {
        line.starts_with(&format!("SEARCH {table} USING "))
            && expect.indexes.iter().any(|index| {
                line.contains(&format!("INDEX {index} ("))
                    || line.contains(&format!("USING {index} ("))
            })
    });
    let Some(search) = search else {
        return Some(format!("does not search {:?}", expect.indexes));
    };
    if plan
        .iter()
        .any(|line| line.starts_with(&format!("SCAN {table}")))
    {
        return Some(format!("scans {table}"));
    }
    if expect.in_order && plan.iter().any(|line| line.contains("TEMP B-TREE")) {
        return Some("sorts instead of reading the index in order".to_owned());
    }
    if expect.cursor_seek && !search.contains("(created_at,id)<") {
        return Some("filters the cursor instead of seeking to it".to_owned());
    }
    None
}

/// The SQL the traced connection ran (see [`sqlite_statements_sent`]).
static SQLITE_SENT: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_sqlite_statement(event: TraceEvent<'_>) {
    if let TraceEvent::Stmt(stmt, _) = event {
        SQLITE_SENT.lock().unwrap().push(stmt.sql().into_owned());
    }
}

/// The statements the SQLite adapter sends for [`hot_path_workload`], as
/// prepared (placeholders, not values), recorded by a trace callback on the
/// connection the store runs on.
pub async fn sqlite_statements_sent() -> BTreeSet<String> {
    let conn = Connection::open_in_memory().unwrap();
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_STMT,
        Some(record_sqlite_statement),
    );
    let store = SqliteStore::from_connection(conn, SqliteOptions::default()).unwrap();
    hot_path_workload(&store).await;
    drop(store);
    SQLITE_SENT.lock().unwrap().drain(..).collect()
}

/// Fails unless [`sqlite_statements`] covers every statement the adapter
/// sends that reads keys or audit events.
pub async fn assert_sqlite_statements_are_the_ones_sent() {
    let sent = sqlite_statements_sent().await;
    assert_explains_everything_sent(
        "SQLite",
        &sent,
        &sqlite_statements(),
        &sqlite_audit(false, false),
    );
}
