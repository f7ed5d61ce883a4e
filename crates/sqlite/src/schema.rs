//! Versioned, embedded migrations.

use crate::sqlite_error;
use keyward_core::{Error, store::sql::TablePrefix};
use rusqlite::{Connection, TransactionBehavior, params};

/// The first migration's version: 16 digits, above the 14-digit timestamps
/// most migration tools use, so it never collides with a host's own numbering
/// when merged into the host's migration run.
const FIRST_VERSION: i64 = 2026_1123_0000_0001;

/// Roles move into their owner's namespace: the primary key becomes
/// `(owner, name)`. Roles that existed before get the owner `''`, which no
/// [`Owner`](keyward_core::Owner) can equal (owners are 1..=256 bytes), so
/// they grant nothing until recreated under an owner: fail closed.
const OWNED_ROLES_VERSION: i64 = 2026_1202_0000_0001;

/// Indexes for pruning: revoked keys by `revoked_at` (partial on
/// `revoked_at IS NOT NULL`, which the prune's `revoked_at < ?` implies and
/// a list's `state = 'revoked'` does not, so the planner never trades an
/// owner's list for a scan of every revoked key), and audit events by
/// `at`. Expired keys are found through `<prefix>keys_expiring`. Listing
/// across owners gets no index of its own: one on `(created_at, id)` drew
/// the planner away from `<prefix>keys_owner_created` for an owner's own
/// list, the hot one; an operator's list sorts the keys it reads instead.
const PRUNE_INDEXES_VERSION: i64 = 2026_1203_0000_0002;

const KEYS_BY_ID_VERSION: i64 = 2026_1204_0000_0001;

/// One schema migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Applied in ascending order, once.
    pub version: i64,
    /// What it does.
    pub description: &'static str,
    /// The SQL, with table names already prefixed.
    pub sql: String,
}

/// keyward's migrations for `prefix`, to merge into the host's own migration
/// run (each is plain SQL; apply them in order, once).
pub fn migrations(prefix: &TablePrefix) -> Vec<Migration> {
    let keys = prefix.table("keys");
    let roles = prefix.table("roles");
    let audit = prefix.table("audit");
    let first = Migration {
        version: FIRST_VERSION,
        description: "keys, roles and audit events",
        sql: format!(
            "CREATE TABLE {keys} (
                id TEXT PRIMARY KEY NOT NULL,
                kind TEXT NOT NULL,
                owner TEXT NOT NULL,
                name TEXT NOT NULL,
                name_folded TEXT NOT NULL,
                digest BLOB NOT NULL,
                digest_algorithm TEXT NOT NULL,
                preview TEXT NOT NULL,
                scopes TEXT NOT NULL,
                roles TEXT NOT NULL,
                inherits_owner INTEGER NOT NULL,
                metadata TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'revoked')),
                created_at INTEGER NOT NULL,
                expires_at INTEGER,
                last_used_at INTEGER,
                revoked_at INTEGER,
                created_by TEXT NOT NULL,
                rotated_from TEXT,
                rotated_to TEXT
            ) STRICT;
            CREATE INDEX {keys}_owner_created ON {keys} (owner, created_at DESC, id DESC);
            CREATE INDEX {keys}_owner_kind_live ON {keys} (owner, kind, expires_at) WHERE state <> 'revoked';
            CREATE INDEX {keys}_expiring ON {keys} (expires_at) WHERE state <> 'revoked' AND expires_at IS NOT NULL;
            CREATE TABLE {roles} (
                name TEXT PRIMARY KEY NOT NULL,
                permissions TEXT NOT NULL
            ) STRICT;
            CREATE TABLE {audit} (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                at INTEGER NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                key_id TEXT,
                key_name TEXT,
                owner TEXT,
                role TEXT,
                detail TEXT,
                refused_reason TEXT
            ) STRICT;
            CREATE INDEX {audit}_owner ON {audit} (owner, seq DESC);
            CREATE INDEX {audit}_key ON {audit} (key_id, seq DESC);"
        ),
    };
    let owned_roles = Migration {
        version: OWNED_ROLES_VERSION,
        description: "roles are namespaced by owner: primary key (owner, name); existing roles get owner ''",
        sql: format!(
            "CREATE TABLE {roles}_by_owner (
                owner TEXT NOT NULL,
                name TEXT NOT NULL,
                permissions TEXT NOT NULL,
                PRIMARY KEY (owner, name)
            ) STRICT;
            INSERT INTO {roles}_by_owner (owner, name, permissions)
                SELECT '', name, permissions FROM {roles};
            DROP TABLE {roles};
            ALTER TABLE {roles}_by_owner RENAME TO {roles};"
        ),
    };
    let prune_indexes = Migration {
        version: PRUNE_INDEXES_VERSION,
        description: "indexes for pruning (revoked keys, expired keys, old audit events)",
        sql: prune_indexes_sql(&keys, &audit),
    };
    let keys_by_id = Migration {
        version: KEYS_BY_ID_VERSION,
        description: "keys are stored in id order (WITHOUT ROWID): a verify reads one b-tree, not an index and then the table",
        sql: keys_by_id_sql(&keys),
    };
    vec![first, owned_roles, prune_indexes, keys_by_id]
}

/// Rebuilds the keys table clustered on its id: the verify read, a lookup
/// by id, then walks one b-tree instead of the id's index and then the
/// table. The same columns, constraints and indexes; every row is copied.
fn keys_by_id_sql(keys: &str) -> String {
    format!(
        "CREATE TABLE {keys}_by_id (
            id TEXT PRIMARY KEY NOT NULL,
            kind TEXT NOT NULL,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            name_folded TEXT NOT NULL,
            digest BLOB NOT NULL,
            digest_algorithm TEXT NOT NULL,
            preview TEXT NOT NULL,
            scopes TEXT NOT NULL,
            roles TEXT NOT NULL,
            inherits_owner INTEGER NOT NULL,
            metadata TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'revoked')),
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            last_used_at INTEGER,
            revoked_at INTEGER,
            created_by TEXT NOT NULL,
            rotated_from TEXT,
            rotated_to TEXT
        ) STRICT, WITHOUT ROWID;
        INSERT INTO {keys}_by_id (id, kind, owner, name, name_folded, digest, digest_algorithm,
            preview, scopes, roles, inherits_owner, metadata, state, created_at, expires_at,
            last_used_at, revoked_at, created_by, rotated_from, rotated_to)
            SELECT id, kind, owner, name, name_folded, digest, digest_algorithm,
            preview, scopes, roles, inherits_owner, metadata, state, created_at, expires_at,
            last_used_at, revoked_at, created_by, rotated_from, rotated_to FROM {keys};
        DROP TABLE {keys};
        ALTER TABLE {keys}_by_id RENAME TO {keys};
        CREATE INDEX {keys}_owner_created ON {keys} (owner, created_at DESC, id DESC);
        CREATE INDEX {keys}_owner_kind_live ON {keys} (owner, kind, expires_at) WHERE state <> 'revoked';
        CREATE INDEX {keys}_expiring ON {keys} (expires_at) WHERE state <> 'revoked' AND expires_at IS NOT NULL;
        CREATE INDEX {keys}_revoked ON {keys} (revoked_at, id) WHERE revoked_at IS NOT NULL;"
    )
}

/// The indexes of migration [`PRUNE_INDEXES_VERSION`] (the same text as
/// the Postgres adapter's).
fn prune_indexes_sql(keys: &str, audit: &str) -> String {
    format!(
        "CREATE INDEX {keys}_revoked ON {keys} (revoked_at, id) WHERE revoked_at IS NOT NULL;
        CREATE INDEX {audit}_at ON {audit} (at, seq);"
    )
}

/// Applies the migrations not yet applied, each in its own immediate
/// transaction, recording them in `<prefix>migrations`. Safe to run at every
/// start and from several processes at once.
pub fn migrate(conn: &mut Connection, prefix: &TablePrefix) -> Result<(), Error> {
    let table = prefix.table("migrations");
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            version INTEGER PRIMARY KEY NOT NULL,
            description TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT;"
    ))
    .map_err(sqlite_error)?;
    for migration in migrations(prefix) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;
        let applied: bool = tx
            .query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE version = ?1)"),
                params![migration.version],
                |row| row.get(0),
            )
            .map_err(sqlite_error)?;
        if !applied {
            tx.execute_batch(&migration.sql).map_err(sqlite_error)?;
            tx.execute(
                &format!(
                    "INSERT INTO {table} (version, description, applied_at) VALUES (?1, ?2, unixepoch())"
                ),
                params![migration.version, migration.description],
            )
            .map_err(sqlite_error)?;
        }
        tx.commit().map_err(sqlite_error)?;
    }
    Ok(())
}
