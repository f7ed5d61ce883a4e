//! The `KeyStore` implementation.

use crate::codec::{
    AUDIT_COLUMNS, KEY_COLUMNS, VERIFY_COLUMNS, audit_from_row, key_from_row, metadata_json,
    permissions_from, permissions_vec, roles_vec, verify_from_row,
};
use crate::{PgStore, pg_error};
use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, Owner, PermissionSet, Role, RoleName, audit::AuditEvent, audit::AuditOutcome,
    audit::AuditQuery, store::KeyRecord, store::KeyState, store::KeyStore, store::ListQuery,
    store::Page, store::PruneKeys, store::UsageRecord, store::VerifyRecord, store::async_trait,
    store::check_page_size, store::check_prune_batch, store::fold_name, store::page_from_overfetch,
    store::sql::TablePrefix, store::sql::status_condition,
};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Row};
use std::sync::Arc;

/// The first key of keyward's advisory locks (`'kw'`); the second is a hash
/// of (owner, kind). The two-key form never conflicts with one-key locks.
const LOCK_CLASS: i32 = 0x6b77;

/// Every statement, with the table prefix applied once.
#[derive(Debug)]
pub(crate) struct Statements {
    keys: String,
    get_key: Arc<str>,
    verify_key: Arc<str>,
    insert_key: Arc<str>,
    lock_owner_kind: Arc<str>,
    count_live: Arc<str>,
    set_state: Arc<str>,
    revoke: Arc<str>,
    state_of: Arc<str>,
    lock_old: Arc<str>,
    mark_rotated: Arc<str>,
    usage: Arc<str>,
    expiring: Arc<str>,
    create_role: Arc<str>,
    lock_role: Arc<str>,
    replace_role: Arc<str>,
    get_roles: Arc<str>,
    list_roles: Arc<str>,
    list_roles_after: Arc<str>,
    delete_role: Arc<str>,
    insert_audit: Arc<str>,
    audit: String,
    prune_revoked: Arc<str>,
    prune_expired: Arc<str>,
    prune_audit: Arc<str>,
}

impl Statements {
    pub(crate) fn new(prefix: &TablePrefix) -> Self {
        let keys = prefix.table("keys");
        let roles = prefix.table("roles");
        let audit = prefix.table("audit");
        let s = |text: String| Arc::<str>::from(text);
        Self {
            get_key: s(format!("SELECT {KEY_COLUMNS} FROM {keys} WHERE id = $1")),
            verify_key: s(format!("SELECT {VERIFY_COLUMNS} FROM {keys} WHERE id = $1")),
            insert_key: s(format!(
                "INSERT INTO {keys} (id, kind, owner, name, name_folded, digest, digest_algorithm, \
                 preview, scopes, roles, inherits_owner, metadata, state, created_at, expires_at, \
                 last_used_at, revoked_at, created_by, rotated_from, rotated_to) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15, $16, $17, $18, $19, $20)"
            )),
            lock_owner_kind: s("SELECT pg_advisory_xact_lock($1, hashtext($2))".to_owned()),
            count_live: s(format!(
                "SELECT count(*) FROM {keys} WHERE owner = $1 AND kind = $2 AND state <> 'revoked' \
                 AND (expires_at IS NULL OR expires_at > $3)"
            )),
            set_state: s(format!(
                "UPDATE {keys} SET state = $1, \
                 revoked_at = CASE WHEN $1 = 'revoked' THEN $2 ELSE revoked_at END \
                 WHERE id = $3 AND state = $4 AND state <> 'revoked'"
            )),
            // The revoke and its audit event in one statement (atomic on
            // its own): one round trip instead of four.
            revoke: s(format!(
                "WITH revoked AS (UPDATE {keys} SET state = 'revoked', revoked_at = $1 \
                 WHERE id = $2 AND state <> 'revoked' RETURNING id) \
                 INSERT INTO {audit} ({AUDIT_COLUMNS}) \
                 SELECT $3::timestamptz, $4::text, $5::text, $6::text, $7::text, $8::text, \
                 $9::text, $10::text, $11::text FROM revoked"
            )),
            state_of: s(format!("SELECT state FROM {keys} WHERE id = $1")),
            lock_old: s(format!(
                "SELECT state, rotated_to FROM {keys} WHERE id = $1 FOR UPDATE"
            )),
            mark_rotated: s(format!(
                "UPDATE {keys} SET rotated_to = $1, \
                 expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END \
                 WHERE id = $3"
            )),
            usage: s(format!(
                "UPDATE {keys} AS k SET last_used_at = u.at \
                 FROM UNNEST($1::text[], $2::timestamptz[]) AS u(id, at) \
                 WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)"
            )),
            expiring: s(format!(
                "SELECT {KEY_COLUMNS} FROM {keys} WHERE state <> 'revoked' \
                 AND expires_at > $1 AND expires_at <= $2 ORDER BY expires_at, id LIMIT $3"
            )),
            create_role: s(format!(
                "INSERT INTO {roles} (owner, name, permissions) VALUES ($1, $2, $3) \
                 ON CONFLICT (owner, name) DO NOTHING"
            )),
            lock_role: s(format!(
                "SELECT permissions FROM {roles} WHERE owner = $1 AND name = $2 FOR UPDATE"
            )),
            replace_role: s(format!(
                "UPDATE {roles} SET permissions = $3 WHERE owner = $1 AND name = $2"
            )),
            get_roles: s(format!(
                "SELECT name, permissions FROM {roles} WHERE owner = $1 AND name = ANY($2) \
                 ORDER BY name"
            )),
            // Both a range of the primary key (owner, name), read in order.
            list_roles: s(format!(
                "SELECT name, permissions FROM {roles} WHERE owner = $1 ORDER BY name LIMIT $2"
            )),
            list_roles_after: s(format!(
                "SELECT name, permissions FROM {roles} WHERE owner = $1 AND name > $2 \
                 ORDER BY name LIMIT $3"
            )),
            delete_role: s(format!(
                "DELETE FROM {roles} WHERE owner = $1 AND name = $2"
            )),
            insert_audit: s(format!(
                "INSERT INTO {audit} ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )),
            // Oldest first, through `keys_revoked` (migration
            // PRUNE_INDEXES_VERSION) and `keys_expiring` (whose condition
            // the expired prune repeats, so SQLite's planner sees that it
            // applies); one statement, so
            // one short transaction. The change-feed trigger announces each
            // deleted id.
            prune_revoked: s(format!(
                "DELETE FROM {keys} WHERE id = ANY(ARRAY(SELECT id FROM {keys} \
                 WHERE revoked_at < $1 AND state = 'revoked' ORDER BY revoked_at, id LIMIT $2)) \
                 RETURNING id"
            )),
            prune_expired: s(format!(
                "DELETE FROM {keys} WHERE id = ANY(ARRAY(SELECT id FROM {keys} \
                 WHERE state = 'active' AND expires_at < $1 AND expires_at <= $2 \
                 AND state <> 'revoked' AND expires_at IS NOT NULL ORDER BY expires_at, id LIMIT $3)) \
                 RETURNING id"
            )),
            prune_audit: s(format!(
                "DELETE FROM {audit} WHERE seq = ANY(ARRAY(SELECT seq FROM {audit} \
                 WHERE at < $1 ORDER BY at, seq LIMIT $2))"
            )),
            keys,
            audit,
        }
    }

    /// The list query for these filters: fixed fragments only, every value
    /// bound ($1 owner or NULL for every owner, $2 now, $3 limit, then
    /// kind, name, last used, cursor in that order when present). Absent
    /// filters leave no condition behind, so the cursor is an index seek on
    /// (owner, created_at, id), or (created_at, id) across owners.
    fn list(&self, query: &ListQuery) -> String {
        let owner = match &query.owner {
            Some(_) => "owner = $1",
            None => "$1::text IS NULL",
        };
        let mut sql = format!("SELECT {KEY_COLUMNS} FROM {} WHERE {owner}", self.keys);
        let mut next = 4;
        let mut param = || {
            next += 1;
            format!("${}", next - 1)
        };
        if query.kind.is_some() {
            sql.push_str(&format!(" AND kind = {}", param()));
        }
        if query.name_contains.is_some() {
            sql.push_str(&format!(" AND strpos(name_folded, {}) > 0", param()));
        }
        if query.last_used_before.is_some() {
            let before = param();
            sql.push_str(&format!(
                " AND (last_used_at IS NULL OR last_used_at < {before})"
            ));
        }
        if query.after.is_some() {
            let (at, id) = (param(), param());
            sql.push_str(&format!(" AND (created_at, id) < ({at}, {id})"));
        }
        if let Some(condition) = status_condition(&query.statuses, "$2") {
            sql.push_str(" AND ");
            sql.push_str(&condition);
        } else {
            sql.push_str(" AND $2::timestamptz IS NOT NULL");
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT $3");
        sql
    }

    /// The audit query for these filters ($1 limit, then owner, key id,
    /// action, since, until in that order when present).
    fn audit(&self, query: &AuditQuery) -> String {
        let mut conditions = Vec::new();
        let mut add = |condition: &str| {
            let n = conditions.len() + 2;
            conditions.push(format!("{condition} ${n}"));
        };
        if query.owner.is_some() {
            add("owner =");
        }
        if query.key_id.is_some() {
            add("key_id =");
        }
        if query.action.is_some() {
            add("action =");
        }
        if query.since.is_some() {
            add("at >=");
        }
        if query.until.is_some() {
            add("at <");
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        format!(
            "SELECT {AUDIT_COLUMNS} FROM {}{filter} ORDER BY seq DESC LIMIT $1",
            self.audit
        )
    }
}

impl PgStore {
    /// A transaction at READ COMMITTED whatever the host's default: the limit
    /// count must see inserts committed while it waited for the advisory
    /// lock, which a REPEATABLE READ snapshot taken before the lock would not.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, Postgres>, Error> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(pg_error)
    }
}

fn q(sql: &Arc<str>) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(AssertSqlSafe(Arc::clone(sql)))
}

async fn insert_key(
    conn: &mut PgConnection,
    sql: &Statements,
    key: &KeyRecord,
) -> Result<(), Error> {
    bind_key(q(&sql.insert_key), key)?
        .execute(conn)
        .await
        .map(drop)
        .map_err(pg_error)
}

/// Binds `key`'s 20 columns in `insert_key`'s order.
fn bind_key<'q>(
    query: Query<'q, Postgres, PgArguments>,
    key: &'q KeyRecord,
) -> Result<Query<'q, Postgres, PgArguments>, Error> {
    Ok(query
        .bind(key.id.as_str())
        .bind(&key.kind)
        .bind(key.owner.as_str())
        .bind(&key.name)
        .bind(fold_name(&key.name))
        .bind(key.digest.as_bytes().as_slice())
        .bind(key.digest.algorithm().as_str())
        .bind(&key.preview)
        .bind(permissions_vec(&key.scopes))
        .bind(roles_vec(&key.roles))
        .bind(key.inherits_owner)
        .bind(metadata_json(&key.metadata)?)
        .bind(key.state.as_str())
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.last_used_at)
        .bind(key.revoked_at)
        .bind(&key.created_by)
        .bind(key.rotated_from.as_ref().map(KeyId::as_str))
        .bind(key.rotated_to.as_ref().map(KeyId::as_str)))
}

async fn insert_audit(
    conn: &mut PgConnection,
    sql: &Statements,
    event: &AuditEvent,
) -> Result<(), Error> {
    let reason = match &event.outcome {
        AuditOutcome::Refused(reason) => Some(reason.as_str()),
        _ => None,
    };
    q(&sql.insert_audit)
        .bind(event.at)
        .bind(&event.actor)
        .bind(event.action.as_str())
        .bind(event.key_id.as_ref().map(KeyId::as_str))
        .bind(event.key_name.as_deref())
        .bind(event.owner.as_ref().map(|o| o.as_str()))
        .bind(event.role.as_ref().map(RoleName::as_str))
        .bind(event.detail.as_deref())
        .bind(reason)
        .execute(conn)
        .await
        .map(drop)
        .map_err(pg_error)
}

/// `owner`'s roles from rows of `name, permissions`.
fn roles_from(owner: &Owner, rows: &[sqlx::postgres::PgRow]) -> Result<Vec<Role>, Error> {
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name").map_err(pg_error)?;
            Ok(Role::new(
                owner.clone(),
                RoleName::new(&name)?,
                permissions_from(row.try_get("permissions").map_err(pg_error)?)?,
            ))
        })
        .collect()
}

/// The permissions of the role `(owner, name)`, locked for the rest of the
/// transaction (`FOR UPDATE`), if it exists.
async fn lock_role(
    conn: &mut PgConnection,
    sql: &Statements,
    owner: &Owner,
    name: &RoleName,
) -> Result<Option<PermissionSet>, Error> {
    let row = q(&sql.lock_role)
        .bind(owner.as_str())
        .bind(name.as_str())
        .fetch_optional(conn)
        .await
        .map_err(pg_error)?;
    row.map(|row| permissions_from(row.try_get("permissions").map_err(pg_error)?))
        .transpose()
}

fn keys_from(rows: &[PgRow]) -> Result<Vec<KeyRecord>, Error> {
    rows.iter().map(key_from_row).collect()
}

#[async_trait]
impl KeyStore for PgStore {
    async fn insert_key(
        &self,
        key: &KeyRecord,
        limit: Option<u32>,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        if let Some(limit) = limit {
            q(&self.sql.lock_owner_kind)
                .bind(LOCK_CLASS)
                .bind(format!("{}\u{1f}{}", key.owner, key.kind))
                .execute(&mut *tx)
                .await
                .map_err(pg_error)?;
            let live: i64 = q(&self.sql.count_live)
                .bind(key.owner.as_str())
                .bind(&key.kind)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(pg_error)?;
            if live >= i64::from(limit) {
                return Err(Error::LimitReached { limit });
            }
        }
        insert_key(&mut tx, &self.sql, key).await?;
        insert_audit(&mut tx, &self.sql, event).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        let row = q(&self.sql.get_key)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_error)?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn verify_key(&self, id: &KeyId) -> Result<Option<VerifyRecord>, Error> {
        let row = q(&self.sql.verify_key)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_error)?;
        row.as_ref().map(verify_from_row).transpose()
    }

    async fn set_state(
        &self,
        id: &KeyId,
        from: KeyState,
        to: KeyState,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let changed = q(&self.sql.set_state)
            .bind(to.as_str())
            .bind(at)
            .bind(id.as_str())
            .bind(from.as_str())
            .execute(&mut *tx)
            .await
            .map_err(pg_error)?
            .rows_affected();
        if changed == 0 {
            let actual = q(&self.sql.state_of)
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(pg_error)?
                .ok_or(Error::NotFound)?;
            let actual: String = actual.try_get(0).map_err(pg_error)?;
            return Err(Error::Conflict {
                expected: from,
                actual: KeyState::from_stored(&actual)?,
            });
        }
        insert_audit(&mut tx, &self.sql, event).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn revoke_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        // One unconditional update: at READ COMMITTED a concurrent disable
        // or enable only makes it wait for that row lock, then it re-checks
        // `state <> 'revoked'` on the committed row and revokes it anyway.
        // The audit event is inserted by the same statement, for the row it
        // revoked: both or neither.
        let reason = match &event.outcome {
            AuditOutcome::Refused(reason) => Some(reason.as_str()),
            _ => None,
        };
        let changed = q(&self.sql.revoke)
            .bind(at)
            .bind(id.as_str())
            .bind(event.at)
            .bind(&event.actor)
            .bind(event.action.as_str())
            .bind(event.key_id.as_ref().map(KeyId::as_str))
            .bind(event.key_name.as_deref())
            .bind(event.owner.as_ref().map(|o| o.as_str()))
            .bind(event.role.as_ref().map(RoleName::as_str))
            .bind(event.detail.as_deref())
            .bind(reason)
            .execute(&self.pool)
            .await
            .map_err(pg_error)?
            .rows_affected();
        if changed > 0 {
            return Ok(true);
        }
        // No row changed: the key is revoked already, or unknown (never
        // inserted, or pruned since).
        let exists = q(&self.sql.state_of)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_error)?
            .is_some();
        if exists {
            Ok(false)
        } else {
            Err(Error::NotFound)
        }
    }

    async fn rotate_key(
        &self,
        predecessor: &KeyId,
        expected: KeyState,
        predecessor_expires_at: DateTime<Utc>,
        successor: &KeyRecord,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let old = q(&self.sql.lock_old)
            .bind(predecessor.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(pg_error)?
            .ok_or(Error::NotFound)?;
        let state: String = old.try_get("state").map_err(pg_error)?;
        let rotated_to: Option<String> = old.try_get("rotated_to").map_err(pg_error)?;
        let actual = KeyState::from_stored(&state)?;
        if actual != expected || rotated_to.is_some() {
            return Err(Error::Conflict { expected, actual });
        }
        insert_key(&mut tx, &self.sql, successor).await?;
        q(&self.sql.mark_rotated)
            .bind(successor.id.as_str())
            .bind(predecessor_expires_at)
            .bind(predecessor.as_str())
            .execute(&mut *tx)
            .await
            .map_err(pg_error)?;
        insert_audit(&mut tx, &self.sql, event).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn record_usage(&self, batch: &[UsageRecord]) -> Result<(), Error> {
        // One statement per flush, each key once with its newest use.
        let batch = UsageRecord::newest_per_key(batch);
        if batch.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = batch.iter().map(|u| u.key_id.as_str()).collect();
        let times: Vec<DateTime<Utc>> = batch.iter().map(|u| u.used_at).collect();
        q(&self.sql.usage)
            .bind(ids)
            .bind(times)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(pg_error)
    }

    async fn list_keys(&self, query: &ListQuery) -> Result<Page<KeyRecord>, Error> {
        // Names hold no control characters, so a filter with NUL matches
        // nothing; Postgres text cannot carry NUL, so answer without asking.
        if query
            .name_contains
            .as_deref()
            .is_some_and(|n| n.contains('\0'))
        {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let limit = i64::try_from(query.limit).map_err(|_| Error::invalid("limit", "too large"))?;
        let mut select = sqlx::query(AssertSqlSafe(self.sql.list(query)))
            .bind(query.owner.as_ref().map(|o| o.as_str()))
            .bind(query.now)
            .bind(limit + 1);
        if let Some(kind) = &query.kind {
            select = select.bind(kind.as_str());
        }
        if let Some(needle) = &query.name_contains {
            select = select.bind(fold_name(needle));
        }
        if let Some(before) = query.last_used_before {
            select = select.bind(before);
        }
        if let Some(after) = &query.after {
            select = select.bind(after.created_at).bind(after.id.as_str());
        }
        let rows = select.fetch_all(&self.pool).await.map_err(pg_error)?;
        let items = keys_from(&rows)?;
        Ok(page_from_overfetch(items, query.limit))
    }

    async fn keys_expiring(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, Error> {
        let limit = i64::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?;
        let rows = q(&self.sql.expiring)
            .bind(after)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_error)?;
        keys_from(&rows)
    }

    async fn put_role(
        &self,
        role: &Role,
        replaces: Option<&PermissionSet>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let statement = match replaces {
            None => &self.sql.create_role,
            Some(expected) => {
                // The row lock holds until commit, so no other edit can land
                // between this comparison and the update.
                let stored = lock_role(&mut tx, &self.sql, &role.owner, &role.name).await?;
                if stored.as_ref() != Some(expected) {
                    return Err(Error::RoleChanged);
                }
                &self.sql.replace_role
            }
        };
        let written = q(statement)
            .bind(role.owner.as_str())
            .bind(role.name.as_str())
            .bind(permissions_vec(&role.permissions))
            .execute(&mut *tx)
            .await
            .map_err(pg_error)?
            .rows_affected();
        if written == 0 {
            // Only a create can write nothing: the role already exists.
            return Err(Error::RoleChanged);
        }
        insert_audit(&mut tx, &self.sql, event).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn get_roles(&self, owner: &Owner, names: &[RoleName]) -> Result<Vec<Role>, Error> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = names.iter().map(RoleName::as_str).collect();
        let rows = q(&self.sql.get_roles)
            .bind(owner.as_str())
            .bind(names)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_error)?;
        roles_from(owner, &rows)
    }

    async fn list_roles(
        &self,
        owner: &Owner,
        after: Option<&RoleName>,
        limit: usize,
    ) -> Result<Vec<Role>, Error> {
        check_page_size(limit)?;
        let limit = i64::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?;
        let query = match after {
            None => q(&self.sql.list_roles).bind(owner.as_str()),
            Some(after) => q(&self.sql.list_roles_after)
                .bind(owner.as_str())
                .bind(after.as_str()),
        };
        let rows = query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_error)?;
        roles_from(owner, &rows)
    }

    async fn delete_role(
        &self,
        owner: &Owner,
        name: &RoleName,
        expected: &PermissionSet,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        match lock_role(&mut tx, &self.sql, owner, name).await? {
            None => return Err(Error::NotFound),
            Some(stored) if &stored != expected => return Err(Error::RoleChanged),
            Some(_) => {}
        }
        q(&self.sql.delete_role)
            .bind(owner.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(pg_error)?;
        insert_audit(&mut tx, &self.sql, event).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await.map_err(pg_error)?;
        insert_audit(&mut conn, &self.sql, event).await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, Error> {
        let limit = i64::try_from(query.limit).map_err(|_| Error::invalid("limit", "too large"))?;
        let mut select = sqlx::query(AssertSqlSafe(self.sql.audit(query))).bind(limit);
        if let Some(owner) = &query.owner {
            select = select.bind(owner.as_str());
        }
        if let Some(key_id) = &query.key_id {
            select = select.bind(key_id.as_str());
        }
        if let Some(action) = query.action {
            select = select.bind(action.as_str());
        }
        if let Some(since) = query.since {
            select = select.bind(since);
        }
        if let Some(until) = query.until {
            select = select.bind(until);
        }
        let rows = select.fetch_all(&self.pool).await.map_err(pg_error)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn prune_keys(
        &self,
        selection: PruneKeys,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyId>, Error> {
        check_prune_batch(limit)?;
        let limit = i64::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?;
        let delete = match selection {
            PruneKeys::RevokedBefore(before) => q(&self.sql.prune_revoked).bind(before),
            PruneKeys::ExpiredBefore(before) => q(&self.sql.prune_expired).bind(before).bind(now),
        };
        let rows = delete
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0).map_err(pg_error)?;
                KeyId::parse(&id)
                    .map_err(|_| Error::backend("postgres", "unreadable stored row: key id"))
            })
            .collect()
    }

    async fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, Error> {
        check_prune_batch(limit)?;
        let limit = i64::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?;
        let deleted = q(&self.sql.prune_audit)
            .bind(before)
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(pg_error)?
            .rows_affected();
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}

/// Test support (feature `testkit`): the keys in multi-row inserts of
/// 1000 rows, in a few concurrent transactions, one commit each, instead
/// of a statement and a commit per key.
#[cfg(feature = "testkit")]
#[async_trait]
impl keyward_core::testkit::BulkInsert for PgStore {
    async fn insert_keys(&self, keys: &[KeyRecord]) -> Result<(), Error> {
        const ROWS: usize = 1000;
        let rows = |n: usize| -> String {
            let row = |r: usize| {
                let cols: Vec<String> = (1..=20)
                    .map(|c| {
                        let cast = if c == 12 { "::jsonb" } else { "" };
                        format!("${}{cast}", r * 20 + c)
                    })
                    .collect();
                format!("({})", cols.join(", "))
            };
            let values: Vec<String> = (0..n).map(row).collect();
            format!(
                "INSERT INTO {} (id, kind, owner, name, name_folded, digest, digest_algorithm, \
                 preview, scopes, roles, inherits_owner, metadata, state, created_at, expires_at, \
                 last_used_at, revoked_at, created_by, rotated_from, rotated_to) VALUES {}",
                self.sql.keys,
                values.join(", ")
            )
        };
        let share = keys.len().div_ceil(4).max(1);
        let writes = keys.chunks(share).map(|keys| async move {
            let mut tx = self.begin().await?;
            for chunk in keys.chunks(ROWS) {
                let mut insert = sqlx::query(AssertSqlSafe(rows(chunk.len())));
                for key in chunk {
                    insert = bind_key(insert, key)?;
                }
                insert.execute(&mut *tx).await.map_err(pg_error)?;
            }
            tx.commit().await.map_err(pg_error)
        });
        futures_util::future::try_join_all(writes).await.map(drop)
    }
}
