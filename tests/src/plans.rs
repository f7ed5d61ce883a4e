//! Query-plan checks: the hot lookups the adapters run are index scans.
//!
//! The issue names three hot paths: the lookup by key id (every verify, and
//! every compare-and-set by id), an owner's keys newest first (the list
//! page), and the keys expiring before a time (the warning job). The
//! live-key count that guards every issue, the usage flush and the per-owner
//! and per-key audit pages are checked too.
//!
//! For each, this module holds the statement shape the adapter sends
//! (copied from `crates/{sqlite,postgres}/src/store.rs` with the default
//! `keyward_` prefix, including every variant of the list built from its
//! filters) and the index the migration made for it, and asks the database
//! how it would run it:
//!
//! - SQLite: `EXPLAIN QUERY PLAN` on a migrated database, empty and again
//!   after seeding 20 000 keys and `ANALYZE`;
//! - Postgres: `EXPLAIN EXECUTE` of the statement prepared as the adapter
//!   prepares it, in a fresh schema seeded with 20 000 keys and 20 000 audit
//!   events and analyzed, both as a custom plan (values known) and as the
//!   generic plan Postgres may switch a prepared statement to after five
//!   runs.
//!
//! A plan passes when it searches one of the intended indexes and never
//! scans the table; an owner's list must also come out of the index in order
//! (no sort) with its cursor as part of the index search, so every page
//! costs the same however deep.
//!
//! A copy of SQL can drift from the adapter, so each backend also runs a
//! workload through the real store, records the statements it sends (SQLite:
//! a trace callback; Postgres: `pg_prepared_statements`), and fails on any
//! statement reading keys or audit events that this module does not explain.

use keyward_core::chrono::{DateTime, TimeDelta};
use keyward_core::{
    Cursor, Status, audit::AuditAction, audit::AuditQuery, store::KeyState, store::KeyStore,
    store::ListQuery, store::Metadata, store::UsageRecord, store::sql::TablePrefix,
    store::sql::status_condition,
};
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::{self, AssertSqlSafe, PgConnection, Row};
use keyward_sqlite::rusqlite::Connection;
use keyward_sqlite::rusqlite::trace::{TraceEvent, TraceEventCodes};
use keyward_sqlite::{SqliteOptions, SqliteStore};
use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::records::{event, issued, key, unique_owner};

/// The SQLite adapter's key columns (`crates/sqlite/src/codec.rs`).
const SQLITE_KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, preview, \
    scopes, roles, inherits_owner, metadata, state, created_at, expires_at, last_used_at, \
    revoked_at, created_by, rotated_from, rotated_to";

/// The Postgres adapter's key columns (`crates/postgres/src/codec.rs`).
const PG_KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, preview, \
    scopes, roles, inherits_owner, metadata::text AS metadata, state, created_at, expires_at, \
    last_used_at, revoked_at, created_by, rotated_from, rotated_to";

/// Both adapters' audit columns.
const AUDIT_COLUMNS: &str =
    "at, actor, action, key_id, key_name, owner, role, detail, refused_reason";

/// Rows the seeded tables hold: 4 000 keys of one big owner (`owner:big`)
/// and 8 each for 2 000 others, half `mt` and half `tak`, a tenth revoked, a
/// third never expiring and the rest expiring over a year; one audit event
/// per key.
pub const SEEDED_KEYS: u32 = 20_000;

/// What a statement's plan must show.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// The table it reads.
    pub table: &'static str,
    /// The indexes that may serve it, by full name (one of them must).
    pub indexes: &'static [&'static str],
    /// Whether the rows must come out of the index in order, without a
    /// sort: the list of an owner with more keys than fit on a page.
    pub in_order: bool,
    /// Whether the list cursor must be part of the index search.
    pub cursor_seek: bool,
}

impl Expect {
    const fn keys(indexes: &'static [&'static str]) -> Self {
        Self {
            table: "keyward_keys",
            indexes,
            in_order: false,
            cursor_seek: false,
        }
    }
}

const SQLITE_BY_ID: Expect = Expect::keys(&["sqlite_autoindex_keyward_keys_1"]);
const PG_BY_ID: Expect = Expect::keys(&["keyward_keys_pkey"]);
const EXPIRING: Expect = Expect::keys(&["keyward_keys_expiring"]);
const LIVE_COUNT: Expect = Expect::keys(&["keyward_keys_owner_kind_live"]);
const OWNER_INDEXES: &[&str] = &["keyward_keys_owner_created", "keyward_keys_owner_kind_live"];
/// By owner: the owner index, or (for an owner with many events) the
/// newest events backwards off the primary key until the page is full.
const AUDIT_BY_OWNER: Expect = Expect {
    table: "keyward_audit",
    indexes: &["keyward_audit_owner", "keyward_audit_pkey"],
    in_order: false,
    cursor_seek: false,
};
const AUDIT_BY_KEY: Expect = Expect {
    table: "keyward_audit",
    indexes: &["keyward_audit_key"],
    in_order: false,
    cursor_seek: false,
};
const AUDIT_BY_BOTH: Expect = Expect {
    table: "keyward_audit",
    indexes: &["keyward_audit_owner", "keyward_audit_key"],
    in_order: false,
    cursor_seek: false,
};

/// The plan an owner's list page must have.
///
/// By owner (and status): newest first straight out of the
/// `(owner, created_at, id)` index, no sort. With a kind or name filter the
/// planner may instead collect the matches from either owner index and sort
/// them (cheaper when the filters leave few), so only the index is required.
/// Either way a cursor is part of the index search, so a deep page costs
/// what the first one does.
fn list_plan(shape: &ListShape) -> Expect {
    let filtered = shape.kind || shape.name;
    Expect {
        table: "keyward_keys",
        indexes: if filtered {
            OWNER_INDEXES
        } else {
            &["keyward_keys_owner_created"]
        },
        in_order: !filtered,
        cursor_seek: shape.cursor,
    }
}

/// A list the planner may serve from either owner index and then sort: an
/// owner with fewer keys than the page (sorting 8 rows is cheaper than
/// walking an index), or a generic plan, made for a typical owner.
const LIST_ANY_OWNER_INDEX: Expect = Expect::keys(OWNER_INDEXES);

/// The status filters a list page can carry; each changes the list SQL.
pub const STATUS_FILTERS: &[&[Status]] = &[
    &[],
    &[Status::Active],
    &[Status::Active, Status::Disabled],
    &[Status::Expired],
    &[Status::Revoked],
    &[
        Status::Active,
        Status::Disabled,
        Status::Expired,
        Status::Revoked,
    ],
];

/// Which optional filters a list query carries.
#[derive(Debug, Clone, Copy)]
pub struct ListShape {
    /// A kind filter.
    pub kind: bool,
    /// A name filter.
    pub name: bool,
    /// A cursor (a later page).
    pub cursor: bool,
    /// The status filter.
    pub statuses: &'static [Status],
}

impl ListShape {
    /// Every combination of filters.
    pub fn all() -> Vec<Self> {
        let mut shapes = Vec::new();
        for statuses in STATUS_FILTERS {
            for bits in 0..8u8 {
                shapes.push(Self {
                    kind: bits & 1 != 0,
                    name: bits & 2 != 0,
                    cursor: bits & 4 != 0,
                    statuses,
                });
            }
        }
        shapes
    }

    fn describe(&self) -> String {
        let mut filters = Vec::new();
        if self.kind {
            filters.push("kind");
        }
        if self.name {
            filters.push("name");
        }
        if self.cursor {
            filters.push("cursor");
        }
        format!(
            "list_keys by {}, statuses {:?}",
            if filters.is_empty() {
                "owner".to_owned()
            } else {
                format!("owner, {}", filters.join(", "))
            },
            self.statuses
        )
    }
}

/// Collapses whitespace, so copied and sent SQL compare equal.
pub fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `sql` reads keys or audit events (the statements whose plans
/// matter): a SELECT, UPDATE or DELETE naming either table.
fn reads_keys_or_audit(sql: &str) -> bool {
    let sql = normalize(sql);
    let verb = sql.split(' ').next().unwrap_or("").to_ascii_uppercase();
    matches!(verb.as_str(), "SELECT" | "UPDATE" | "DELETE" | "WITH")
        && (sql.contains("keyward_keys") || sql.contains("keyward_audit"))
}

/// Fails unless every statement the adapter sent that reads keys or audit
/// events is one of `explained` (or the unfiltered audit page, which reads
/// the newest events straight off the end of the table).
fn assert_explains_everything_sent(
    backend: &str,
    sent: &BTreeSet<String>,
    explained: &[(String, String, Expect)],
    unfiltered_audit: &str,
) {
    let explained: BTreeSet<String> = explained.iter().map(|(_, sql, _)| normalize(sql)).collect();
    let relevant: Vec<&String> = sent.iter().filter(|s| reads_keys_or_audit(s)).collect();
    assert!(
        relevant.len() >= 10,
        "{backend}: the workload sent only {} statements reading keys or audit events: {relevant:#?}",
        relevant.len()
    );
    for sql in relevant {
        let sql = normalize(sql);
        assert!(
            explained.contains(&sql) || sql == normalize(unfiltered_audit),
            "{backend}: the adapter sends a statement whose plan this test does not check \
             (update the copy in tests/src/plans.rs):\n  {sql}"
        );
    }
}

/// Runs every hot call the service makes against `store`, with every list
/// filter combination, so the statements it sends can be recorded.
pub async fn hot_path_workload(store: &dyn KeyStore) {
    let owner = unique_owner("account");
    let now = DateTime::from_timestamp(1_780_272_000, 0).unwrap();
    let mut keys = Vec::new();
    for i in 0..3 {
        let mut k = key(&owner, &format!("key {i}"), Metadata::new(), now);
        k.expires_at = Some(now + TimeDelta::days(i + 1));
        store
            .insert_key(&k, Some(10), now, &issued(&k))
            .await
            .unwrap();
        keys.push(k);
    }
    let [first, second, third] = &keys[..] else {
        unreachable!()
    };
    store.get_key(&first.id).await.unwrap();
    let disable = event(first, AuditAction::Disable, now);
    store
        .set_state(
            &first.id,
            KeyState::Active,
            KeyState::Disabled,
            now,
            &disable,
        )
        .await
        .unwrap();
    // A lost compare-and-set reads the actual state.
    let stale = store
        .set_state(
            &first.id,
            KeyState::Active,
            KeyState::Disabled,
            now,
            &disable,
        )
        .await;
    assert!(stale.is_err());
    let mut successor = key(&owner, "key 1", Metadata::new(), now);
    successor.rotated_from = Some(second.id.clone());
    let rotate = event(second, AuditAction::Rotate, now);
    store
        .rotate_key(
            &second.id,
            KeyState::Active,
            now + TimeDelta::hours(1),
            &successor,
            &rotate,
        )
        .await
        .unwrap();
    let usage: Vec<UsageRecord> = [first, third]
        .iter()
        .map(|k| UsageRecord {
            key_id: k.id.clone(),
            used_at: now,
        })
        .collect();
    store.record_usage(&usage).await.unwrap();
    // Revoke: the unconditional write, then again (already revoked: the
    // follow-up read tells "revoked" from "unknown").
    let revoke = event(first, AuditAction::Revoke, now);
    assert!(store.revoke_key(&first.id, now, &revoke).await.unwrap());
    assert!(!store.revoke_key(&first.id, now, &revoke).await.unwrap());
    for shape in ListShape::all() {
        let mut query = ListQuery::new(owner.clone(), now, 2);
        query.statuses = shape.statuses.to_vec();
        if shape.kind {
            query.kind = Some("mt".to_owned());
        }
        if shape.name {
            query.name_contains = Some("key".to_owned());
        }
        if shape.cursor {
            query.after = Some(Cursor::after(third));
        }
        store.list_keys(&query).await.unwrap();
    }
    store
        .keys_expiring(now, now + TimeDelta::days(7), 100)
        .await
        .unwrap();
    for query in [
        AuditQuery::newest(10),
        AuditQuery::newest(10).owner(&owner),
        AuditQuery::newest(10).key(&first.id),
        AuditQuery::newest(10).owner(&owner).key(&first.id),
    ] {
        store.list_audit(&query).await.unwrap();
    }
}

// ---------------------------------------------------------------- SQLite --

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
            "get_key (the verify lookup)".to_owned(),
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

/// Inserts [`SEEDED_KEYS`] keys and runs `ANALYZE`, so the planner decides
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
            && expect
                .indexes
                .iter()
                .any(|index| line.contains(&format!("INDEX {index} (")))
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

// -------------------------------------------------------------- Postgres --

/// One Postgres statement to explain.
#[derive(Debug, Clone)]
pub struct PgStatement {
    /// What it does.
    pub what: String,
    /// The adapter's SQL.
    pub sql: String,
    /// Parameter types for `PREPARE`, when Postgres cannot infer them all
    /// (a list without a status filter does not use `$2`, which the
    /// adapter binds with its type); empty to infer.
    pub types: String,
    /// `EXECUTE` arguments: SQL literals of this test's own making.
    pub args: String,
    /// The expected plan.
    pub expect: Expect,
}

impl PgStatement {
    fn new(what: impl Into<String>, sql: String, args: impl Into<String>, expect: Expect) -> Self {
        Self {
            what: what.into(),
            sql,
            types: String::new(),
            args: args.into(),
            expect,
        }
    }
}

const NOW: &str = "'2026-06-01 00:00:00+00'";

/// The Postgres adapter's list query for `shape`, for a page of `owner`'s
/// keys.
fn pg_list(what: String, shape: &ListShape, owner: &str, expect: Expect) -> PgStatement {
    let mut sql = format!("SELECT {PG_KEY_COLUMNS} FROM keyward_keys WHERE owner = $1");
    let mut types = vec!["text", "timestamptz", "int8"];
    let mut args = vec![format!("'{owner}'"), NOW.to_owned(), "21".to_owned()];
    if shape.kind {
        types.push("text");
        args.push("'mt'".to_owned());
        sql.push_str(&format!(" AND kind = ${}", args.len()));
    }
    if shape.name {
        types.push("text");
        args.push("'key'".to_owned());
        sql.push_str(&format!(" AND strpos(name_folded, ${}) > 0", args.len()));
    }
    if shape.cursor {
        // The middle of the big owner's keys.
        types.extend(["timestamptz", "text"]);
        args.push("'2026-01-10 00:00:00+00'".to_owned());
        args.push("'seed00012960'".to_owned());
        let n = args.len();
        sql.push_str(&format!(" AND (created_at, id) < (${}, ${n})", n - 1));
    }
    match status_condition(shape.statuses, "$2") {
        Some(condition) => sql.push_str(&format!(" AND {condition}")),
        None => sql.push_str(" AND $2::timestamptz IS NOT NULL"),
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT $3");
    PgStatement {
        what,
        sql,
        types: types.join(", "),
        args: args.join(", "),
        expect,
    }
}

/// The Postgres adapter's audit page filtered by `owner` and/or `key`.
fn pg_audit(owner: Option<&str>, key: Option<&str>) -> (String, String) {
    let mut conditions = Vec::new();
    let mut args = vec!["50".to_owned()];
    if let Some(owner) = owner {
        args.push(format!("'{owner}'"));
        conditions.push(format!("owner = ${}", args.len()));
    }
    if let Some(key) = key {
        args.push(format!("'{key}'"));
        conditions.push(format!("key_id = ${}", args.len()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (
        format!("SELECT {AUDIT_COLUMNS} FROM keyward_audit{filter} ORDER BY seq DESC LIMIT $1"),
        args.join(", "),
    )
}

/// The Postgres adapter's statements that read keys or audit events.
pub fn pg_statements() -> Vec<PgStatement> {
    let k = "keyward_keys";
    let cols = PG_KEY_COLUMNS;
    let id = "'seed00000042'";
    let mut statements: Vec<PgStatement> = vec![
        PgStatement::new(
            "get_key (the verify lookup)".to_owned(),
            format!("SELECT {cols} FROM {k} WHERE id = $1"),
            id.to_owned(),
            PG_BY_ID,
        ),
        PgStatement::new(
            "set_state (compare-and-set by id)".to_owned(),
            format!(
                "UPDATE {k} SET state = $1, \
                 revoked_at = CASE WHEN $1 = 'revoked' THEN $2 ELSE revoked_at END \
                 WHERE id = $3 AND state = $4 AND state <> 'revoked'"
            ),
            format!("'revoked', {NOW}, {id}, 'active'"),
            PG_BY_ID,
        ),
        PgStatement::new(
            "set_state's conflict read, revoke_key's existence read".to_owned(),
            format!("SELECT state FROM {k} WHERE id = $1"),
            id.to_owned(),
            PG_BY_ID,
        ),
        PgStatement::new(
            "revoke_key (unconditional, by id)".to_owned(),
            format!(
                "UPDATE {k} SET state = 'revoked', revoked_at = $1 \
                 WHERE id = $2 AND state <> 'revoked'"
            ),
            format!("{NOW}, {id}"),
            PG_BY_ID,
        ),
        PgStatement::new(
            "rotate_key's predecessor lock".to_owned(),
            format!("SELECT state, rotated_to FROM {k} WHERE id = $1 FOR UPDATE"),
            id.to_owned(),
            PG_BY_ID,
        ),
        PgStatement::new(
            "rotate_key's predecessor update".to_owned(),
            format!(
                "UPDATE {k} SET rotated_to = $1, \
                 expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END \
                 WHERE id = $3"
            ),
            format!("'seed99999999', {NOW}, {id}"),
            PG_BY_ID,
        ),
        PgStatement::new(
            "record_usage (one UNNEST update per flush)".to_owned(),
            format!(
                "UPDATE {k} AS k SET last_used_at = u.at \
                 FROM UNNEST($1::text[], $2::timestamptz[]) AS u(id, at) \
                 WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)"
            ),
            "'{seed00000042,seed00000043,seed00000044}', \
             '{\"2026-06-01 00:00:00+00\",\"2026-06-01 00:00:01+00\",\"2026-06-01 00:00:02+00\"}'"
                .to_owned(),
            PG_BY_ID,
        ),
        PgStatement::new(
            "keys_expiring (the next week)".to_owned(),
            format!(
                "SELECT {cols} FROM {k} WHERE state <> 'revoked' \
                 AND expires_at > $1 AND expires_at <= $2 ORDER BY expires_at, id LIMIT $3"
            ),
            format!("{NOW}, '2026-06-08 00:00:00+00', 100"),
            EXPIRING,
        ),
        PgStatement::new(
            "insert_key's live-key count".to_owned(),
            format!(
                "SELECT count(*) FROM {k} WHERE owner = $1 AND kind = $2 AND state <> 'revoked' \
                 AND (expires_at IS NULL OR expires_at > $3)"
            ),
            format!("'owner:42', 'mt', {NOW}"),
            LIVE_COUNT,
        ),
    ];
    for (what, owner, key, expect) in [
        (
            "list_audit by owner",
            Some("owner:big"),
            None,
            AUDIT_BY_OWNER,
        ),
        (
            "list_audit by owner",
            Some("owner:42"),
            None,
            AUDIT_BY_OWNER,
        ),
        (
            "list_audit by key",
            None,
            Some("seed00000042"),
            AUDIT_BY_KEY,
        ),
        (
            "list_audit by owner and key",
            Some("owner:42"),
            Some("seed00000042"),
            AUDIT_BY_BOTH,
        ),
    ] {
        let (sql, args) = pg_audit(owner, key);
        statements.push(PgStatement::new(
            format!("{what} ({args})"),
            sql,
            args,
            expect,
        ));
    }
    for shape in ListShape::all() {
        statements.push(pg_list(
            format!("{}, an owner with 4 000 keys", shape.describe()),
            &shape,
            "owner:big",
            list_plan(&shape),
        ));
        statements.push(pg_list(
            format!("{}, an owner with 8 keys", shape.describe()),
            &shape,
            "owner:42",
            LIST_ANY_OWNER_INDEX,
        ));
    }
    statements
}

/// Inserts [`SEEDED_KEYS`] keys and as many audit events into the store's
/// schema and analyzes both tables.
pub async fn pg_seed(store: &PgStore) {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO keyward_keys (id, kind, owner, name, name_folded, digest, digest_algorithm,
             preview, scopes, roles, inherits_owner, metadata, state, created_at, expires_at,
             last_used_at, revoked_at, created_by, rotated_from, rotated_to)
         SELECT 'seed' || lpad(i::text, 8, '0'), CASE i % 2 WHEN 0 THEN 'mt' ELSE 'tak' END,
             CASE WHEN i % 5 = 0 THEN 'owner:big' ELSE 'owner:' || (i % 2000) END,
             'Key ' || i, 'key ' || i,
             decode(md5(i::text) || md5(i::text || 'x'), 'hex'), 'sha256',
             'mt_seed…', '{{}}', '{{}}', false, '{{}}',
             CASE i % 10 WHEN 0 THEN 'revoked' WHEN 1 THEN 'disabled' ELSE 'active' END,
             timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute',
             CASE WHEN i % 3 = 0 THEN NULL
                  ELSE timestamptz '2026-01-01 00:00:00+00' + (i % 365) * interval '1 day' END,
             NULL, NULL, 'operator:seed', NULL, NULL
         FROM generate_series(1, {SEEDED_KEYS}) AS g(i);
         INSERT INTO keyward_audit (at, actor, action, key_id, key_name, owner)
         SELECT created_at, 'operator:seed', 'issue', id, name, owner FROM keyward_keys
         ORDER BY created_at;
         ANALYZE keyward_keys;
         ANALYZE keyward_audit;"
    )))
    .execute(store.pool())
    .await
    .unwrap();
}

/// The text of `EXPLAIN EXECUTE` for `sql` prepared as a server-side
/// statement (as sqlx prepares the adapter's), planned as `mode`
/// (`force_custom_plan` or `force_generic_plan`).
pub async fn pg_plan(conn: &mut PgConnection, statement: &PgStatement, mode: &str) -> String {
    let PgStatement {
        sql, types, args, ..
    } = statement;
    let types = if types.is_empty() {
        String::new()
    } else {
        format!("({types})")
    };
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET plan_cache_mode = {mode}; PREPARE keyward_plan{types} AS {sql}"
    )))
    .execute(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("cannot prepare {sql}: {e}"));
    let rows = sqlx::raw_sql(AssertSqlSafe(format!(
        "EXPLAIN EXECUTE keyward_plan({args})"
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("cannot explain {sql} with ({args}): {e}"));
    sqlx::raw_sql("DEALLOCATE keyward_plan; RESET plan_cache_mode")
        .execute(&mut *conn)
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String, _>(0).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fails unless every statement, custom and generic, uses its index on the
/// seeded schema of `store`, and a big owner's list is read in index order
/// with its cursor as an index condition.
///
/// Order and seek are required of the custom plan: a generic plan does not
/// know the owner, so Postgres plans it for a typical owner (8 keys here),
/// for whom a sort of a few rows is cheapest, and keeps it only while it
/// costs no more than the custom plans.
pub async fn assert_pg_plans(store: &PgStore) {
    let mut conn = store.pool().acquire().await.unwrap();
    let mut failures = Vec::new();
    for statement in pg_statements() {
        for mode in ["force_custom_plan", "force_generic_plan"] {
            let custom = mode == "force_custom_plan";
            let expect = if statement.what.starts_with("list_keys") && !custom {
                LIST_ANY_OWNER_INDEX
            } else {
                statement.expect
            };
            let plan = pg_plan(&mut conn, &statement, mode).await;
            if let Some(problem) = pg_plan_problem(&plan, &expect) {
                failures.push(format!(
                    "{} ({mode}) {problem}:\n    {}\n  SQL: {}",
                    statement.what,
                    plan.replace('\n', "\n    "),
                    statement.sql
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} plans are not as intended:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// What is wrong with a Postgres `plan` for `expect`, if anything.
fn pg_plan_problem(plan: &str, expect: &Expect) -> Option<String> {
    let table = expect.table;
    let uses_index = expect.indexes.iter().any(|index| {
        plan.contains(&format!("Index Scan using {index} on {table}"))
            || plan.contains(&format!("Index Scan Backward using {index} on {table}"))
            || plan.contains(&format!("Index Only Scan using {index} on {table}"))
            || plan.contains(&format!("Bitmap Index Scan on {index}"))
    });
    if !uses_index {
        return Some(format!("uses none of {:?}", expect.indexes));
    }
    if plan.contains(&format!("Seq Scan on {table}")) {
        return Some(format!("scans {table}"));
    }
    if expect.in_order && (plan.contains("Sort") || plan.contains("Bitmap")) {
        return Some(format!("does not read {:?} in order", expect.indexes));
    }
    let seeks = plan
        .lines()
        .any(|line| line.contains("Index Cond:") && line.contains("ROW(created_at, id) < ROW("));
    if expect.cursor_seek && !seeks {
        return Some("filters the cursor instead of seeking to it".to_owned());
    }
    None
}

/// The statements the Postgres adapter prepares for
/// [`hot_path_workload`]: the store runs on a one-connection pool, and the
/// connection's `pg_prepared_statements` lists what sqlx prepared on it.
pub async fn pg_statements_sent(store: &PgStore) -> BTreeSet<String> {
    let pool = crate::resilience::pool_on_schema_of(store, 1).await;
    let traced = PgStore::new(pool.clone());
    hot_path_workload(&traced).await;
    let sent: Vec<String> = sqlx::query_scalar("SELECT statement FROM pg_prepared_statements")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    sent.into_iter().collect()
}

/// Fails unless [`pg_statements`] covers every statement the adapter sends
/// that reads keys or audit events.
pub async fn assert_pg_statements_are_the_ones_sent(store: &PgStore) {
    let sent = pg_statements_sent(store).await;
    let explained: Vec<(String, String, Expect)> = pg_statements()
        .into_iter()
        .map(|s| (s.what, s.sql, s.expect))
        .collect();
    assert_explains_everything_sent("Postgres", &sent, &explained, &pg_audit(None, None).0);
}
