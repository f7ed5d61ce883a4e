//! The Postgres half of the query-plan checks: the statements the Postgres
//! adapter prepares (copied from `crates/postgres/src/store.rs`), their
//! `EXPLAIN EXECUTE` plans (custom and generic) on a seeded, analyzed schema,
//! and the `pg_prepared_statements` of what the real store sends.

use keyward_core::store::sql::status_condition;
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::{self, AssertSqlSafe, PgConnection, Row};
use std::collections::BTreeSet;

use super::{
    AUDIT_BY_BOTH, AUDIT_BY_KEY, AUDIT_BY_OWNER, AUDIT_COLUMNS, EXPIRING, Expect,
    LIST_ANY_OWNER_INDEX, LIVE_COUNT, ListShape, PRUNE_AUDIT, PRUNE_REVOKED, ROLES_BY_NAME,
    ROLES_PAGE, SEEDED_KEYS, assert_explains_everything_sent, hot_path_workload, list_plan,
};

/// The Postgres adapter's verify columns (`crates/postgres/src/codec.rs`).
const PG_VERIFY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, \
    array_to_string(scopes, ' ') AS scopes, array_to_string(roles, ' ') AS roles, \
    inherits_owner, metadata::text AS metadata, state, expires_at";

/// The Postgres adapter's key columns: the verify columns, then the rest.
const PG_KEY_COLUMNS: &str = "id, kind, owner, name, digest, digest_algorithm, \
    array_to_string(scopes, ' ') AS scopes, array_to_string(roles, ' ') AS roles, \
    inherits_owner, metadata::text AS metadata, state, expires_at, preview, created_at, \
    last_used_at, revoked_at, created_by, rotated_from, rotated_to";

const PG_BY_ID: Expect = Expect::keys(&["keyward_keys_pkey"]);

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
            "verify_key (the verify lookup)".to_owned(),
            format!("SELECT {PG_VERIFY_COLUMNS} FROM {k} WHERE id = $1"),
            id.to_owned(),
            PG_BY_ID,
        ),
        PgStatement::new(
            "get_key (management's lookup)".to_owned(),
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
            "revoke_key (unconditional, by id, with its audit event)".to_owned(),
            format!(
                "WITH revoked AS (UPDATE {k} SET state = 'revoked', revoked_at = $1 \
                 WHERE id = $2 AND state <> 'revoked' RETURNING id) \
                 INSERT INTO keyward_audit ({AUDIT_COLUMNS}) \
                 SELECT $3::timestamptz, $4::text, $5::text, $6::text, $7::text, $8::text, \
                 $9::text, $10::text, $11::text FROM revoked"
            ),
            format!(
                "{NOW}, {id}, {NOW}, 'operator:plan', 'revoke', {id}, 'n', 'owner:big', \
                 NULL, NULL, NULL"
            ),
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
            "prune_keys, revoked before".to_owned(),
            format!(
                "DELETE FROM {k} WHERE id = ANY(ARRAY(SELECT id FROM {k} \
                 WHERE revoked_at < $1 AND state = 'revoked' ORDER BY revoked_at, id LIMIT $2)) \
                 RETURNING id"
            ),
            format!("{NOW}, 1000"),
            PRUNE_REVOKED,
        ),
        PgStatement::new(
            "prune_keys, expired before".to_owned(),
            format!(
                "DELETE FROM {k} WHERE id = ANY(ARRAY(SELECT id FROM {k} \
                 WHERE state = 'active' AND expires_at < $1 AND expires_at <= $2 \
                 AND state <> 'revoked' AND expires_at IS NOT NULL ORDER BY expires_at, id LIMIT $3)) \
                 RETURNING id"
            ),
            format!("'2026-01-03 00:00:00+00', {NOW}, 1000"),
            EXPIRING,
        ),
        PgStatement::new(
            "prune_audit".to_owned(),
            "DELETE FROM keyward_audit WHERE seq = ANY(ARRAY(SELECT seq FROM keyward_audit \
             WHERE at < $1 ORDER BY at, seq LIMIT $2))"
                .to_owned(),
            "'2026-01-03 00:00:00+00', 1000".to_owned(),
            PRUNE_AUDIT,
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
    for (owner, page) in [
        // The big owner's roles come out of the primary key in order; a
        // small owner's may be fetched and sorted (a few rows), still by
        // the primary key.
        ("owner:big", ROLES_PAGE),
        ("owner:42", ROLES_BY_NAME),
    ] {
        statements.extend([
            PgStatement::new(
                format!("get_roles (the roles a key names), {owner}"),
                "SELECT name, permissions FROM keyward_roles WHERE owner = $1 AND name = ANY($2) \
                 ORDER BY name"
                    .to_owned(),
                format!("'{owner}', '{{role00000005,role00000010}}'"),
                ROLES_BY_NAME,
            ),
            PgStatement::new(
                format!("list_roles, the first page, {owner}"),
                "SELECT name, permissions FROM keyward_roles WHERE owner = $1 ORDER BY name LIMIT $2"
                    .to_owned(),
                format!("'{owner}', 100"),
                page,
            ),
            PgStatement::new(
                format!("list_roles, a later page, {owner}"),
                "SELECT name, permissions FROM keyward_roles WHERE owner = $1 AND name > $2 \
                 ORDER BY name LIMIT $3"
                    .to_owned(),
                format!("'{owner}', 'role00010000', 100"),
                page,
            ),
        ]);
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

/// Inserts [`SEEDED_KEYS`] keys and as many audit events and roles into
/// the store's schema and analyzes the tables.
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
         INSERT INTO keyward_roles (owner, name, permissions)
         SELECT owner, 'role' || substr(id, 5), '{{projects.view}}' FROM keyward_keys;
         ANALYZE keyward_keys;
         ANALYZE keyward_audit;
         ANALYZE keyward_roles;"
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
