//! Versioned, embedded migrations.

use keyward_core::store::sql::TablePrefix;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use std::borrow::Cow;

/// The first migration's version. Versions are 16 digits, above the 14-digit
/// timestamps `sqlx migrate add` makes, so they never collide with a host's.
const FIRST_VERSION: i64 = 2026_1123_0000_0001;

/// The change-feed triggers (see [`PgStore`](crate::PgStore)'s
/// [`ChangeFeed`](keyward_core::feed::ChangeFeed) implementation).
const CHANGE_FEED_VERSION: i64 = 2026_1123_0000_0002;

/// Roles move into their owner's namespace: the primary key becomes
/// `(owner, name)`. Roles that existed before get the owner `''`, which no
/// [`Owner`](keyward_core::Owner) can equal (owners are 1..=256 bytes), so
/// they grant nothing until recreated under an owner: fail closed. The
/// change-feed trigger on the table keeps announcing `r:<name>`.
const OWNED_ROLES_VERSION: i64 = 2026_1202_0000_0001;

/// The change-feed triggers notify a channel of the deployment's own,
/// `<prefix>changes_<16 hex digits of md5(schema)>`, instead of the
/// `<prefix>changes` every schema with the same prefix shared (see
/// [`change_channel_per_schema_sql`]).
const CHANNEL_PER_SCHEMA_VERSION: i64 = 2026_1203_0000_0001;

/// Indexes for pruning: revoked keys by `revoked_at` (partial on
/// `revoked_at IS NOT NULL`, which the prune's `revoked_at < ?` implies and
/// a list's `state = 'revoked'` does not, so the planner never trades an
/// owner's list for a scan of every revoked key), and audit events by
/// `at`. Expired keys are found through `<prefix>keys_expiring`. Listing
/// across owners gets no index of its own: one on `(created_at, id)` drew
/// the planner away from `<prefix>keys_owner_created` for an owner's own
/// list, the hot one; an operator's list sorts the keys it reads instead.
const PRUNE_INDEXES_VERSION: i64 = 2026_1203_0000_0002;

/// keyward's migrations for `prefix`, to merge into the host's own
/// migrations (`Migrator::with_migrations(host.iter().cloned().chain(migrations(&prefix)).collect())`),
/// so they are applied and recorded with the host's. Once merged, every later
/// migration run on that database must include them too.
pub fn migrations(prefix: &TablePrefix) -> Vec<Migration> {
    let keys = prefix.table("keys");
    let roles = prefix.table("roles");
    let audit = prefix.table("audit");
    let sql = format!(
        r#"CREATE TABLE {keys} (
            id TEXT COLLATE "C" PRIMARY KEY,
            kind TEXT NOT NULL,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            name_folded TEXT NOT NULL,
            digest BYTEA NOT NULL CHECK (length(digest) = 32),
            digest_algorithm TEXT NOT NULL,
            preview TEXT NOT NULL,
            scopes TEXT[] NOT NULL,
            roles TEXT[] NOT NULL,
            inherits_owner BOOLEAN NOT NULL,
            metadata JSONB NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'revoked')),
            created_at TIMESTAMPTZ NOT NULL,
            expires_at TIMESTAMPTZ,
            last_used_at TIMESTAMPTZ,
            revoked_at TIMESTAMPTZ,
            created_by TEXT NOT NULL,
            rotated_from TEXT,
            rotated_to TEXT
        );
        CREATE INDEX {keys}_owner_created ON {keys} (owner, created_at DESC, id DESC);
        CREATE INDEX {keys}_owner_kind_live ON {keys} (owner, kind, expires_at) WHERE state <> 'revoked';
        CREATE INDEX {keys}_expiring ON {keys} (expires_at) WHERE state <> 'revoked' AND expires_at IS NOT NULL;
        CREATE TABLE {roles} (
            name TEXT COLLATE "C" PRIMARY KEY,
            permissions TEXT[] NOT NULL
        );
        CREATE TABLE {audit} (
            seq BIGSERIAL PRIMARY KEY,
            at TIMESTAMPTZ NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            key_id TEXT,
            key_name TEXT,
            owner TEXT,
            role TEXT,
            detail TEXT,
            refused_reason TEXT
        );
        CREATE INDEX {audit}_owner ON {audit} (owner, seq DESC);
        CREATE INDEX {audit}_key ON {audit} (key_id, seq DESC);"#
    );
    vec![
        Migration::new(
            FIRST_VERSION,
            Cow::Borrowed("keyward: keys, roles and audit events"),
            MigrationType::Simple,
            AssertSqlSafe(sql).into_sql_str(),
            false,
        ),
        Migration::new(
            CHANGE_FEED_VERSION,
            Cow::Borrowed("keyward: change feed triggers"),
            MigrationType::Simple,
            AssertSqlSafe(change_feed_sql(prefix)).into_sql_str(),
            false,
        ),
        Migration::new(
            OWNED_ROLES_VERSION,
            Cow::Borrowed("keyward: roles namespaced by owner (existing roles get owner '')"),
            MigrationType::Simple,
            AssertSqlSafe(owned_roles_sql(prefix)).into_sql_str(),
            false,
        ),
        Migration::new(
            CHANNEL_PER_SCHEMA_VERSION,
            Cow::Borrowed("keyward: change feed channel per schema"),
            MigrationType::Simple,
            AssertSqlSafe(change_channel_per_schema_sql(prefix)).into_sql_str(),
            false,
        ),
        Migration::new(
            PRUNE_INDEXES_VERSION,
            Cow::Borrowed(
                "keyward: indexes for pruning (revoked keys, expired keys, old audit events)",
            ),
            MigrationType::Simple,
            AssertSqlSafe(prune_indexes_sql(prefix)).into_sql_str(),
            false,
        ),
    ]
}

/// The indexes of migration [`PRUNE_INDEXES_VERSION`].
fn prune_indexes_sql(prefix: &TablePrefix) -> String {
    let keys = prefix.table("keys");
    let audit = prefix.table("audit");
    format!(
        "CREATE INDEX {keys}_revoked ON {keys} (revoked_at, id) WHERE revoked_at IS NOT NULL;
        CREATE INDEX {audit}_at ON {audit} (at, seq);"
    )
}

/// The roles table keyed by `(owner, name)`. The first migration named the
/// primary key `<roles>_pkey` (Postgres's default), so it can be dropped by
/// name; the triggers stay attached to the table.
fn owned_roles_sql(prefix: &TablePrefix) -> String {
    let roles = prefix.table("roles");
    format!(
        r#"ALTER TABLE {roles} ADD COLUMN owner TEXT COLLATE "C" NOT NULL DEFAULT '';
        ALTER TABLE {roles} ALTER COLUMN owner DROP DEFAULT;
        ALTER TABLE {roles} DROP CONSTRAINT {roles}_pkey;
        ALTER TABLE {roles} ADD CONSTRAINT {roles}_pkey PRIMARY KEY (owner, name);"#
    )
}

/// Triggers that announce every committed change to keys and roles on the
/// channel `<prefix>changes`, in [`Change::to_payload`] form (`k:<key id>`,
/// `r:<role>`; `*` for a truncate or a payload Postgres would refuse), so
/// even an operator's direct SQL reaches every process's cache.
///
/// An update that touches nothing but `last_used_at` (the usage flush)
/// fires nothing: verification does not cache it. The trigger functions
/// call only `pg_catalog` functions, so they work whatever the `search_path`
/// of the session that changes the table.
///
/// [`Change::to_payload`]: keyward_core::feed::Change::to_payload
fn change_feed_sql(prefix: &TablePrefix) -> String {
    // Shipped: this migration's text must never change. Migration
    // `CHANNEL_PER_SCHEMA_VERSION` replaces the functions to notify the
    // deployment's own channel.
    let channel = prefix.table("changes");
    let function = |table: &str, column: &str, tag: &str| {
        format!(
            r#"CREATE FUNCTION {table}_changed() RETURNS trigger LANGUAGE plpgsql AS $body$
            BEGIN
                IF TG_OP = 'TRUNCATE' THEN
                    PERFORM pg_notify('{channel}', '*');
                    RETURN NULL;
                END IF;
                IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.{column} IS DISTINCT FROM NEW.{column}) THEN
                    PERFORM pg_notify('{channel}', CASE WHEN octet_length(OLD.{column}) < 7990
                        THEN '{tag}:' || OLD.{column} ELSE '*' END);
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    PERFORM pg_notify('{channel}', CASE WHEN octet_length(NEW.{column}) < 7990
                        THEN '{tag}:' || NEW.{column} ELSE '*' END);
                END IF;
                RETURN NULL;
            END
            $body$;"#
        )
    };
    let keys = prefix.table("keys");
    let roles = prefix.table("roles");
    let keys_changed = function(&keys, "id", "k");
    let roles_changed = function(&roles, "name", "r");
    format!(
        r#"{keys_changed}
        {roles_changed}
        CREATE TRIGGER {keys}_inserted_or_deleted AFTER INSERT OR DELETE ON {keys}
            FOR EACH ROW EXECUTE FUNCTION {keys}_changed();
        CREATE TRIGGER {keys}_updated AFTER UPDATE ON {keys}
            FOR EACH ROW
            WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
            EXECUTE FUNCTION {keys}_changed();
        CREATE TRIGGER {keys}_truncated AFTER TRUNCATE ON {keys}
            FOR EACH STATEMENT EXECUTE FUNCTION {keys}_changed();
        CREATE TRIGGER {roles}_changed AFTER INSERT OR UPDATE OR DELETE ON {roles}
            FOR EACH ROW EXECUTE FUNCTION {roles}_changed();
        CREATE TRIGGER {roles}_truncated AFTER TRUNCATE ON {roles}
            FOR EACH STATEMENT EXECUTE FUNCTION {roles}_changed();"#
    )
}

/// Replaces the change-feed trigger functions so that they notify the
/// channel of the schema their table lives in:
/// `<prefix>changes_` || the first 16 hex digits of `md5(TG_TABLE_SCHEMA)`
/// (at most 56 bytes, within Postgres's 63-byte identifiers). The listener
/// computes the same name for the tables its `search_path` finds
/// ([`PgStore::change_channel`](crate::PgStore::change_channel)), so two
/// deployments with the same prefix in different schemas of one database
/// no longer hear each other. The triggers stay as they are; the functions
/// now qualify every call with `pg_catalog`.
fn change_channel_per_schema_sql(prefix: &TablePrefix) -> String {
    let stem = crate::feed::channel_stem(prefix);
    let function = |table: &str, column: &str, tag: &str| {
        format!(
            r#"CREATE OR REPLACE FUNCTION {table}_changed() RETURNS trigger LANGUAGE plpgsql AS $body$
            DECLARE
                channel text := '{stem}' || pg_catalog.left(pg_catalog.md5(TG_TABLE_SCHEMA::text), 16);
            BEGIN
                IF TG_OP = 'TRUNCATE' THEN
                    PERFORM pg_catalog.pg_notify(channel, '*');
                    RETURN NULL;
                END IF;
                IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.{column} IS DISTINCT FROM NEW.{column}) THEN
                    PERFORM pg_catalog.pg_notify(channel, CASE WHEN pg_catalog.octet_length(OLD.{column}) < 7990
                        THEN '{tag}:' || OLD.{column} ELSE '*' END);
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    PERFORM pg_catalog.pg_notify(channel, CASE WHEN pg_catalog.octet_length(NEW.{column}) < 7990
                        THEN '{tag}:' || NEW.{column} ELSE '*' END);
                END IF;
                RETURN NULL;
            END
            $body$;"#
        )
    };
    let keys_changed = function(&prefix.table("keys"), "id", "k");
    let roles_changed = function(&prefix.table("roles"), "name", "r");
    format!("{keys_changed}\n        {roles_changed}")
}

/// A standalone [`Migrator`] for keyward's tables, recording what it applied
/// in `<prefix>migrations` (not the host's `_sqlx_migrations`), so it never
/// disturbs the host's own migration history.
pub fn migrator(prefix: &TablePrefix) -> Migrator {
    let mut migrator = Migrator::with_migrations(migrations(prefix));
    migrator.dangerous_set_table_name(prefix.table("migrations"));
    migrator
}
