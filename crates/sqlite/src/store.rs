//! The `KeyStore` implementation.

use crate::codec::{
    AUDIT_COLUMNS, KEY_COLUMNS, VERIFY_COLUMNS, audit_from_row, join_permissions, join_roles,
    key_from_row, metadata_json, micros, split_permissions, verify_from_row,
};
use crate::{SqliteStore, sqlite_error};
use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, KeyId, Owner, PermissionSet, Role, RoleName, audit::AuditEvent, audit::AuditOutcome,
    audit::AuditQuery, store::KeyRecord, store::KeyState, store::KeyStore, store::ListQuery,
    store::Page, store::PruneKeys, store::UsageRecord, store::VerifyRecord, store::async_trait,
    store::check_page_size, store::check_prune_batch, store::fold_name, store::page_from_overfetch,
    store::sql::TablePrefix, store::sql::status_condition,
};
use rusqlite::types::Value;
use rusqlite::{
    Connection, OptionalExtension, Transaction, TransactionBehavior, params, params_from_iter,
};

/// Every statement, with the table prefix applied once at open.
#[derive(Debug)]
pub(crate) struct Statements {
    keys: String,
    get_key: String,
    verify_key: String,
    insert_key: String,
    count_live: String,
    set_state: String,
    revoke: String,
    state_of: String,
    rotate_old: String,
    mark_rotated: String,
    usage: String,
    expiring: String,
    create_role: String,
    replace_role: String,
    get_role: String,
    list_roles: String,
    list_roles_after: String,
    delete_role: String,
    insert_audit: String,
    audit: String,
    prune_revoked: String,
    prune_expired: String,
    prune_audit: String,
}

impl Statements {
    pub(crate) fn new(prefix: &TablePrefix) -> Self {
        let keys = prefix.table("keys");
        let roles = prefix.table("roles");
        let audit = prefix.table("audit");
        Self {
            get_key: format!("SELECT {KEY_COLUMNS} FROM {keys} WHERE id = ?1"),
            verify_key: format!("SELECT {VERIFY_COLUMNS} FROM {keys} WHERE id = ?1"),
            insert_key: format!(
                "INSERT INTO {keys} (id, kind, owner, name, name_folded, digest, digest_algorithm, \
                 preview, scopes, roles, inherits_owner, metadata, state, created_at, expires_at, \
                 last_used_at, revoked_at, created_by, rotated_from, rotated_to) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
            ),
            count_live: format!(
                "SELECT count(*) FROM {keys} WHERE owner = ?1 AND kind = ?2 AND state <> 'revoked' \
                 AND (expires_at IS NULL OR expires_at > ?3)"
            ),
            set_state: format!(
                "UPDATE {keys} SET state = ?1, revoked_at = CASE WHEN ?1 = 'revoked' THEN ?2 ELSE revoked_at END \
                 WHERE id = ?3 AND state = ?4 AND state <> 'revoked'"
            ),
            revoke: format!(
                "UPDATE {keys} SET state = 'revoked', revoked_at = ?1 \
                 WHERE id = ?2 AND state <> 'revoked'"
            ),
            state_of: format!("SELECT state FROM {keys} WHERE id = ?1"),
            rotate_old: format!("SELECT state, rotated_to FROM {keys} WHERE id = ?1"),
            mark_rotated: format!(
                "UPDATE {keys} SET rotated_to = ?1, \
                 expires_at = CASE WHEN expires_at IS NULL OR expires_at > ?2 THEN ?2 ELSE expires_at END \
                 WHERE id = ?3"
            ),
            usage: format!(
                "UPDATE {keys} SET last_used_at = u.at FROM \
                 (SELECT value ->> 0 AS id, value ->> 1 AS at FROM json_each(?1)) AS u \
                 WHERE {keys}.id = u.id \
                 AND ({keys}.last_used_at IS NULL OR {keys}.last_used_at < u.at)"
            ),
            expiring: format!(
                "SELECT {KEY_COLUMNS} FROM {keys} WHERE state <> 'revoked' \
                 AND expires_at > ?1 AND expires_at <= ?2 ORDER BY expires_at, id LIMIT ?3"
            ),
            create_role: format!(
                "INSERT INTO {roles} (owner, name, permissions) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (owner, name) DO NOTHING"
            ),
            replace_role: format!(
                "UPDATE {roles} SET permissions = ?3 WHERE owner = ?1 AND name = ?2"
            ),
            get_role: format!("SELECT permissions FROM {roles} WHERE owner = ?1 AND name = ?2"),
            // Both a range of the primary key (owner, name), read in order.
            list_roles: format!(
                "SELECT name, permissions FROM {roles} WHERE owner = ?1 ORDER BY name LIMIT ?2"
            ),
            list_roles_after: format!(
                "SELECT name, permissions FROM {roles} WHERE owner = ?1 AND name > ?2 \
                 ORDER BY name LIMIT ?3"
            ),
            delete_role: format!("DELETE FROM {roles} WHERE owner = ?1 AND name = ?2"),
            insert_audit: format!(
                "INSERT INTO {audit} ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            // Oldest first through the partial indexes of migration
            // PRUNE_VERSION; one statement, so one short transaction.
            prune_revoked: format!(
                "DELETE FROM {keys} WHERE id IN (SELECT id FROM {keys} \
                 WHERE revoked_at < ?1 AND state = 'revoked' ORDER BY revoked_at, id LIMIT ?2) \
                 RETURNING id"
            ),
            prune_expired: format!(
                "DELETE FROM {keys} WHERE id IN (SELECT id FROM {keys} \
                 WHERE state = 'active' AND expires_at < ?1 AND expires_at <= ?2 \
                 AND state <> 'revoked' AND expires_at IS NOT NULL ORDER BY expires_at, id LIMIT ?3) \
                 RETURNING id"
            ),
            prune_audit: format!(
                "DELETE FROM {audit} WHERE seq IN (SELECT seq FROM {audit} \
                 WHERE at < ?1 ORDER BY at, seq LIMIT ?2)"
            ),
            keys,
            audit,
        }
    }

    /// The list query for these filters, with its values in placeholder
    /// order. Only fixed fragments are added; absent filters leave no
    /// condition behind, so the cursor is an index seek on
    /// (owner, created_at, id).
    fn list(&self, query: &ListQuery) -> (String, Vec<Value>) {
        // ?1 is the owner or NULL (every owner), ?2 the time statuses are
        // judged at; both always bound, so the numbering never shifts.
        let owner = match &query.owner {
            Some(_) => "owner = ?1",
            None => "?1 IS NULL",
        };
        let mut sql = format!("SELECT {KEY_COLUMNS} FROM {} WHERE {owner}", self.keys);
        let mut values = vec![
            query
                .owner
                .as_ref()
                .map_or(Value::Null, |o| Value::Text(o.as_str().to_owned())),
            Value::Integer(micros(query.now)),
        ];
        if let Some(kind) = &query.kind {
            values.push(Value::Text(kind.clone()));
            sql.push_str(&format!(" AND kind = ?{}", values.len()));
        }
        if let Some(needle) = &query.name_contains {
            values.push(Value::Text(fold_name(needle)));
            sql.push_str(&format!(" AND instr(name_folded, ?{}) > 0", values.len()));
        }
        if let Some(before) = query.last_used_before {
            values.push(Value::Integer(micros(before)));
            let n = values.len();
            sql.push_str(&format!(
                " AND (last_used_at IS NULL OR last_used_at < ?{n})"
            ));
        }
        if let Some(after) = &query.after {
            values.push(Value::Integer(micros(after.created_at)));
            values.push(Value::Text(after.id.as_str().to_owned()));
            let n = values.len();
            sql.push_str(&format!(" AND (created_at, id) < (?{}, ?{n})", n - 1));
        }
        match status_condition(&query.statuses, "?2") {
            Some(condition) => sql.push_str(&format!(" AND {condition}")),
            None => sql.push_str(" AND ?2 IS NOT NULL"),
        }
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX - 1);
        values.push(Value::Integer(limit + 1));
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ?{}",
            values.len()
        ));
        (sql, values)
    }

    /// The audit query for these filters, with its values.
    fn audit(&self, query: &AuditQuery) -> (String, Vec<Value>) {
        let mut values = Vec::new();
        let mut conditions = Vec::new();
        if let Some(owner) = &query.owner {
            values.push(Value::Text(owner.as_str().to_owned()));
            conditions.push(format!("owner = ?{}", values.len()));
        }
        if let Some(key_id) = &query.key_id {
            values.push(Value::Text(key_id.as_str().to_owned()));
            conditions.push(format!("key_id = ?{}", values.len()));
        }
        if let Some(action) = query.action {
            values.push(Value::Text(action.as_str().to_owned()));
            conditions.push(format!("action = ?{}", values.len()));
        }
        if let Some(since) = query.since {
            values.push(Value::Integer(micros(since)));
            conditions.push(format!("at >= ?{}", values.len()));
        }
        if let Some(until) = query.until {
            values.push(Value::Integer(micros(until)));
            conditions.push(format!("at < ?{}", values.len()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        values.push(Value::Integer(
            i64::try_from(query.limit).unwrap_or(i64::MAX),
        ));
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM {}{filter} ORDER BY seq DESC LIMIT ?{}",
            self.audit,
            values.len()
        );
        (sql, values)
    }
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, Error> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)
}

fn insert_key(tx: &Transaction<'_>, sql: &Statements, key: &KeyRecord) -> Result<(), Error> {
    tx.prepare_cached(&sql.insert_key)
        .and_then(|mut stmt| {
            stmt.execute(params![
                key.id.as_str(),
                key.kind,
                key.owner.as_str(),
                key.name,
                fold_name(&key.name),
                key.digest.as_bytes().as_slice(),
                key.digest.algorithm().as_str(),
                key.preview,
                join_permissions(&key.scopes),
                join_roles(&key.roles),
                key.inherits_owner,
                metadata_json(&key.metadata)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                key.state.as_str(),
                micros(key.created_at),
                key.expires_at.map(micros),
                key.last_used_at.map(micros),
                key.revoked_at.map(micros),
                key.created_by,
                key.rotated_from.as_ref().map(KeyId::as_str),
                key.rotated_to.as_ref().map(KeyId::as_str),
            ])
        })
        .map(drop)
        .map_err(sqlite_error)
}

/// The stored permissions of the role `(owner, name)`, if it exists.
fn role_permissions(
    conn: &Connection,
    sql: &Statements,
    owner: &Owner,
    name: &RoleName,
) -> Result<Option<PermissionSet>, Error> {
    let stored: Option<String> = conn
        .prepare_cached(&sql.get_role)
        .and_then(|mut s| {
            s.query_row(params![owner.as_str(), name.as_str()], |r| r.get(0))
                .optional()
        })
        .map_err(sqlite_error)?;
    stored.as_deref().map(split_permissions).transpose()
}

fn insert_audit(conn: &Connection, sql: &Statements, event: &AuditEvent) -> Result<(), Error> {
    let reason = match &event.outcome {
        AuditOutcome::Refused(reason) => Some(reason.as_str()),
        _ => None,
    };
    conn.prepare_cached(&sql.insert_audit)
        .and_then(|mut stmt| {
            stmt.execute(params![
                micros(event.at),
                event.actor,
                event.action.as_str(),
                event.key_id.as_ref().map(KeyId::as_str),
                event.key_name,
                event.owner.as_ref().map(|o| o.as_str()),
                event.role.as_ref().map(RoleName::as_str),
                event.detail,
                reason,
            ])
        })
        .map(drop)
        .map_err(sqlite_error)
}

impl SqliteStore {
    /// The verify read: the columns a verify needs, on a read connection.
    fn read_verify(&self, id: &KeyId) -> Result<Option<VerifyRecord>, Error> {
        self.read(|conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.verify_key).map_err(sqlite_error)?;
            let mut rows = stmt.query(params![id.as_str()]).map_err(sqlite_error)?;
            match rows.next().map_err(sqlite_error)? {
                Some(row) => verify_from_row(row).map(Some),
                None => Ok(None),
            }
        })
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(
        &self,
        key: &KeyRecord,
        limit: Option<u32>,
        now: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let (key, event) = (key.clone(), event.clone());
        self.write(move |conn, sql| {
            let tx = immediate(conn)?;
            if let Some(limit) = limit {
                let live: i64 = tx
                    .prepare_cached(&sql.count_live)
                    .and_then(|mut s| {
                        s.query_row(params![key.owner.as_str(), key.kind, micros(now)], |r| {
                            r.get(0)
                        })
                    })
                    .map_err(sqlite_error)?;
                if live >= i64::from(limit) {
                    return Err(Error::LimitReached { limit });
                }
            }
            insert_key(&tx, sql, &key)?;
            insert_audit(&tx, sql, &event)?;
            tx.commit().map_err(sqlite_error)
        })
        .await
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, Error> {
        self.read(|conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.get_key).map_err(sqlite_error)?;
            let mut rows = stmt.query(params![id.as_str()]).map_err(sqlite_error)?;
            match rows.next().map_err(sqlite_error)? {
                Some(row) => key_from_row(row).map(Some),
                None => Ok(None),
            }
        })
    }

    async fn verify_key(&self, id: &KeyId) -> Result<Option<VerifyRecord>, Error> {
        self.read_verify(id)
    }

    // A read runs on the calling thread either way (see `read`): answering
    // at once spares verify an executor and a boxed future.
    fn verify_key_now(&self, id: &KeyId) -> Option<Result<Option<VerifyRecord>, Error>> {
        Some(self.read_verify(id))
    }

    async fn set_state(
        &self,
        id: &KeyId,
        from: KeyState,
        to: KeyState,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let (id, event) = (id.clone(), event.clone());
        self.write(move |conn, sql| {
            let tx = immediate(conn)?;
            let changed = tx
                .prepare_cached(&sql.set_state)
                .and_then(|mut s| {
                    s.execute(params![to.as_str(), micros(at), id.as_str(), from.as_str()])
                })
                .map_err(sqlite_error)?;
            if changed == 0 {
                let actual: Option<String> = tx
                    .query_row(&sql.state_of, params![id.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(sqlite_error)?;
                let actual = actual.ok_or(Error::NotFound)?;
                return Err(Error::Conflict {
                    expected: from,
                    actual: KeyState::from_stored(&actual)?,
                });
            }
            insert_audit(&tx, sql, &event)?;
            tx.commit().map_err(sqlite_error)
        })
        .await
    }

    async fn revoke_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        event: &AuditEvent,
    ) -> Result<bool, Error> {
        let (id, event) = (id.clone(), event.clone());
        self.write(move |conn, sql| {
            let tx = immediate(conn)?;
            let changed = tx
                .prepare_cached(&sql.revoke)
                .and_then(|mut s| s.execute(params![micros(at), id.as_str()]))
                .map_err(sqlite_error)?;
            if changed == 0 {
                // Already revoked, or unknown: the transaction holds the
                // write lock, so the row cannot have changed since.
                let exists = tx
                    .prepare_cached(&sql.state_of)
                    .and_then(|mut s| s.exists(params![id.as_str()]))
                    .map_err(sqlite_error)?;
                return if exists {
                    Ok(false)
                } else {
                    Err(Error::NotFound)
                };
            }
            insert_audit(&tx, sql, &event)?;
            tx.commit().map_err(sqlite_error)?;
            Ok(true)
        })
        .await
    }

    async fn rotate_key(
        &self,
        predecessor: &KeyId,
        expected: KeyState,
        predecessor_expires_at: DateTime<Utc>,
        successor: &KeyRecord,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let (old_id, new, event) = (predecessor.clone(), successor.clone(), event.clone());
        self.write(move |conn, sql| {
            let tx = immediate(conn)?;
            let old: Option<(String, Option<String>)> = tx
                .query_row(&sql.rotate_old, params![old_id.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(sqlite_error)?;
            let (state, rotated_to) = old.ok_or(Error::NotFound)?;
            let actual = KeyState::from_stored(&state)?;
            if actual != expected || rotated_to.is_some() {
                return Err(Error::Conflict { expected, actual });
            }
            insert_key(&tx, sql, &new)?;
            tx.prepare_cached(&sql.mark_rotated)
                .and_then(|mut s| {
                    s.execute(params![
                        new.id.as_str(),
                        micros(predecessor_expires_at),
                        old_id.as_str()
                    ])
                })
                .map_err(sqlite_error)?;
            insert_audit(&tx, sql, &event)?;
            tx.commit().map_err(sqlite_error)
        })
        .await
    }

    async fn record_usage(&self, batch: &[UsageRecord]) -> Result<(), Error> {
        // One statement per flush, each key once with its newest use, passed
        // as one JSON array of [id, micros] pairs.
        let pairs: Vec<(String, i64)> = UsageRecord::newest_per_key(batch)
            .into_iter()
            .map(|u| (u.key_id.as_str().to_owned(), micros(u.used_at)))
            .collect();
        if pairs.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(&pairs).map_err(|e| Error::backend("sqlite", e))?;
        self.write(move |conn, sql| {
            conn.prepare_cached(&sql.usage)
                .and_then(|mut stmt| stmt.execute(params![json]))
                .map(drop)
                .map_err(sqlite_error)
        })
        .await
    }

    async fn list_keys(&self, query: &ListQuery) -> Result<Page<KeyRecord>, Error> {
        let (sql_text, values) = self.inner.sql.list(query);
        let items = self.read(|conn, _| {
            let mut stmt = conn.prepare_cached(&sql_text).map_err(sqlite_error)?;
            let mut rows = stmt
                .query(params_from_iter(values.iter()))
                .map_err(sqlite_error)?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite_error)? {
                items.push(key_from_row(row)?);
            }
            Ok(items)
        })?;
        Ok(page_from_overfetch(items, query.limit))
    }

    async fn keys_expiring(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, Error> {
        let limit = i64::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?;
        self.read(|conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.expiring).map_err(sqlite_error)?;
            let mut rows = stmt
                .query(params![micros(after), micros(before), limit])
                .map_err(sqlite_error)?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite_error)? {
                items.push(key_from_row(row)?);
            }
            Ok(items)
        })
    }

    async fn put_role(
        &self,
        role: &Role,
        replaces: Option<&PermissionSet>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let (role, replaces, event) = (role.clone(), replaces.cloned(), event.clone());
        self.write(move |conn, sql| {
            let tx = immediate(conn)?;
            let values = params![
                role.owner.as_str(),
                role.name.as_str(),
                join_permissions(&role.permissions)
            ];
            match &replaces {
                None => {
                    let created = tx
                        .prepare_cached(&sql.create_role)
                        .and_then(|mut s| s.execute(values))
                        .map_err(sqlite_error)?;
                    if created == 0 {
                        return Err(Error::RoleChanged);
                    }
                }
                Some(expected) => {
                    // The immediate transaction holds the write lock, so the
                    // role cannot change between this read and the update.
                    let stored = role_permissions(&tx, sql, &role.owner, &role.name)?;
                    if stored.as_ref() != Some(expected) {
                        return Err(Error::RoleChanged);
                    }
                    tx.prepare_cached(&sql.replace_role)
                        .and_then(|mut s| s.execute(values))
                        .map_err(sqlite_error)?;
                }
            }
            insert_audit(&tx, sql, &event)?;
            tx.commit().map_err(sqlite_error)
        })
        .await
    }

    async fn get_roles(&self, owner: &Owner, names: &[RoleName]) -> Result<Vec<Role>, Error> {
        let mut names: Vec<&RoleName> = names.iter().collect();
        names.sort();
        names.dedup();
        self.read(|conn, sql| {
            let mut roles = Vec::with_capacity(names.len());
            for name in names {
                if let Some(permissions) = role_permissions(conn, sql, owner, name)? {
                    roles.push(Role::new(owner.clone(), name.clone(), permissions));
                }
            }
            Ok(roles)
        })
    }

    async fn list_roles(
        &self,
        owner: &Owner,
        after: Option<&RoleName>,
        limit: usize,
    ) -> Result<Vec<Role>, Error> {
        check_page_size(limit)?;
        let limit = i64::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?;
        self.read(|conn, sql| {
            let mut stmt = match after {
                None => conn.prepare_cached(&sql.list_roles),
                Some(_) => conn.prepare_cached(&sql.list_roles_after),
            }
            .map_err(sqlite_error)?;
            let mut rows = match after {
                None => stmt.query(params![owner.as_str(), limit]),
                Some(after) => stmt.query(params![owner.as_str(), after.as_str(), limit]),
            }
            .map_err(sqlite_error)?;
            let mut roles = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite_error)? {
                let name: String = row.get(0).map_err(sqlite_error)?;
                let permissions: String = row.get(1).map_err(sqlite_error)?;
                roles.push(Role::new(
                    owner.clone(),
                    RoleName::new(&name)?,
                    split_permissions(&permissions)?,
                ));
            }
            Ok(roles)
        })
    }

    async fn delete_role(
        &self,
        owner: &Owner,
        name: &RoleName,
        expected: &PermissionSet,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        let (owner, name, expected, event) =
            (owner.clone(), name.clone(), expected.clone(), event.clone());
        self.write(move |conn, sql| {
            let tx = immediate(conn)?;
            match role_permissions(&tx, sql, &owner, &name)? {
                None => return Err(Error::NotFound),
                Some(stored) if stored != expected => return Err(Error::RoleChanged),
                Some(_) => {}
            }
            tx.prepare_cached(&sql.delete_role)
                .and_then(|mut s| s.execute(params![owner.as_str(), name.as_str()]))
                .map_err(sqlite_error)?;
            insert_audit(&tx, sql, &event)?;
            tx.commit().map_err(sqlite_error)
        })
        .await
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), Error> {
        let event = event.clone();
        self.write(move |conn, sql| insert_audit(conn, sql, &event))
            .await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, Error> {
        let (sql_text, values) = self.inner.sql.audit(query);
        self.read(|conn, _| {
            let mut stmt = conn.prepare_cached(&sql_text).map_err(sqlite_error)?;
            let mut rows = stmt
                .query(params_from_iter(values.iter()))
                .map_err(sqlite_error)?;
            let mut events = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite_error)? {
                events.push(audit_from_row(row)?);
            }
            Ok(events)
        })
    }

    async fn prune_keys(
        &self,
        selection: PruneKeys,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<KeyId>, Error> {
        check_prune_batch(limit)?;
        let limit = i64::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?;
        self.write(move |conn, sql| {
            let tx = immediate(conn)?;
            let ids =
                {
                    let (text, values) = match selection {
                        PruneKeys::RevokedBefore(before) => (
                            &sql.prune_revoked,
                            vec![Value::Integer(micros(before)), Value::Integer(limit)],
                        ),
                        PruneKeys::ExpiredBefore(before) => (
                            &sql.prune_expired,
                            vec![
                                Value::Integer(micros(before)),
                                Value::Integer(micros(now)),
                                Value::Integer(limit),
                            ],
                        ),
                    };
                    let mut stmt = tx.prepare_cached(text).map_err(sqlite_error)?;
                    let mut rows = stmt
                        .query(params_from_iter(values.iter()))
                        .map_err(sqlite_error)?;
                    let mut ids = Vec::new();
                    while let Some(row) = rows.next().map_err(sqlite_error)? {
                        let id: String = row.get(0).map_err(sqlite_error)?;
                        ids.push(KeyId::parse(&id).map_err(|_| {
                            Error::backend("sqlite", "unreadable stored row: key id")
                        })?);
                    }
                    ids
                };
            tx.commit().map_err(sqlite_error)?;
            Ok(ids)
        })
        .await
    }

    async fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, Error> {
        check_prune_batch(limit)?;
        let limit = i64::try_from(limit).map_err(|_| Error::invalid("limit", "too large"))?;
        self.write(move |conn, sql| {
            conn.prepare_cached(&sql.prune_audit)
                .and_then(|mut s| s.execute(params![micros(before), limit]))
                .map_err(sqlite_error)
        })
        .await
    }
}

/// Test support (feature `testkit`): every key in one transaction on the
/// writer, so seeding costs one disk flush instead of one per key.
#[cfg(feature = "testkit")]
#[async_trait]
impl keyward_core::testkit::BulkInsert for SqliteStore {
    async fn insert_keys(&self, keys: &[KeyRecord]) -> Result<(), Error> {
        let keys = keys.to_vec();
        self.write(move |conn, sql| {
            let tx = immediate(conn)?;
            for key in &keys {
                insert_key(&tx, sql, key)?;
            }
            tx.commit().map_err(sqlite_error)
        })
        .await
    }
}
