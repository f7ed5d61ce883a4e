//! Query-plan checks: the hot lookups the adapters run are index scans.
//!
//! The issue names three hot paths: the lookup by key id (every verify, and
//! every compare-and-set by id), an owner's keys newest first (the list
//! page), and the keys expiring before a time (the warning job). The
//! live-key count that guards every issue, the usage flush, the per-owner
//! and per-key audit pages, and the reads of an owner's roles (by name, and
//! every role page by page) are checked too.
//!
//! For each, this module holds the statement shape the adapter sends
//! (copied from `crates/{sqlite,postgres}/src/store.rs` with the default
//! `keyward_` prefix, including every variant of the list built from its
//! filters) and the index the migration made for it, and asks the database
//! how it would run it:
//!
//! - SQLite: `EXPLAIN QUERY PLAN` on a migrated database, empty and again
//!   after seeding 20 000 keys and 20 000 roles and `ANALYZE`;
//! - Postgres: `EXPLAIN EXECUTE` of the statement prepared as the adapter
//!   prepares it, in a fresh schema seeded with 20 000 keys, 20 000 audit
//!   events and 20 000 roles and analyzed, both as a custom plan (values known) and as the
//!   generic plan Postgres may switch a prepared statement to after five
//!   runs.
//!
//! A plan passes when it searches one of the intended indexes and never
//! scans the table; an owner's list must also come out of the index in order
//! (no sort) with its cursor as part of the index search, so every page
//! costs the same however deep; so must a page of an owner's roles, in name
//! order off the primary key.
//!
//! A copy of SQL can drift from the adapter, so each backend also runs a
//! workload through the real store, records the statements it sends (SQLite:
//! a trace callback; Postgres: `pg_prepared_statements`), and fails on any
//! statement reading keys, audit events or roles that this module does not
//! explain.
//!
//! The parts both backends share (what a plan must show, the list shapes,
//! the workload whose statements are recorded) are here; each backend's
//! statements and checks are in its own file (`sqlite.rs`, `postgres.rs`).

mod postgres;
mod sqlite;

pub use postgres::{
    PgStatement, assert_pg_plans, assert_pg_statements_are_the_ones_sent, pg_plan, pg_seed,
    pg_statements, pg_statements_sent,
};
pub use sqlite::{
    assert_sqlite_plans, assert_sqlite_statements_are_the_ones_sent, sqlite_migrated, sqlite_plan,
    sqlite_seed, sqlite_statements, sqlite_statements_sent,
};

use keyward_core::chrono::{DateTime, TimeDelta};
use keyward_core::{
    Status, audit::AuditAction, audit::AuditQuery, store::KeyState, store::KeyStore,
    store::ListQuery, store::Metadata, store::PruneKeys, store::UsageRecord, store::cursor_after,
};
use std::collections::BTreeSet;

use crate::records::{key, unique_owner};
use keyward_core::testkit::records::{issue_event, key_event};

/// Both adapters' audit columns.
const AUDIT_COLUMNS: &str =
    "at, actor, action, key_id, key_name, owner, role, detail, refused_reason";

/// Rows the seeded tables hold: 4 000 keys of one big owner (`owner:big`)
/// and 8 each for 2 000 others, half `mt` and half `tak`, a tenth revoked, a
/// third never expiring and the rest expiring over a year; one audit event
/// per key; and as many roles, spread over the owners the same way.
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

const EXPIRING: Expect = Expect::keys(&["keyward_keys_expiring"]);
/// The revoked-keys prune: the revoked keys by `revoked_at`.
const PRUNE_REVOKED: Expect = Expect::keys(&["keyward_keys_revoked"]);
/// Audit retention: the oldest events by `at`.
const PRUNE_AUDIT: Expect = Expect {
    table: "keyward_audit",
    indexes: &["keyward_audit_at"],
    in_order: false,
    cursor_seek: false,
};
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

/// A page of an owner's roles (or the roles a key names): the primary key
/// `(owner, name)`, read in name order without a sort.
const ROLES_PAGE: Expect = Expect {
    table: "keyward_roles",
    indexes: &["keyward_roles_pkey", "sqlite_autoindex_keyward_roles_1"],
    in_order: true,
    cursor_seek: false,
};
/// The roles a key names, by `(owner, name)`: the primary key.
const ROLES_BY_NAME: Expect = Expect {
    in_order: false,
    ..ROLES_PAGE
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

/// Whether `sql` reads keys, audit events or roles (the statements whose
/// plans matter): a SELECT, UPDATE or DELETE naming one of the tables.
fn reads_keys_or_audit(sql: &str) -> bool {
    let sql = normalize(sql);
    let verb = sql.split(' ').next().unwrap_or("").to_ascii_uppercase();
    matches!(verb.as_str(), "SELECT" | "UPDATE" | "DELETE" | "WITH")
        && (sql.contains("keyward_keys")
            || sql.contains("keyward_audit")
            || sql.contains("keyward_roles"))
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
             (update the copy in tests/src/plans/):\n  {sql}"
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
            .insert_key(&k, Some(10), now, &issue_event(&k))
            .await
            .unwrap();
        keys.push(k);
    }
    let [first, second, third] = &keys[..] else {
        unreachable!()
    };
    store.verify_key(&first.id).await.unwrap();
    store.get_key(&first.id).await.unwrap();
    let disable = key_event(first, AuditAction::Disable, now);
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
    let rotate = key_event(second, AuditAction::Rotate, now);
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
    let revoke = key_event(first, AuditAction::Revoke, now);
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
            query.after = Some(cursor_after(third));
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
        AuditQuery::newest(10).key_id(&first.id),
        AuditQuery::newest(10).owner(&owner).key_id(&first.id),
    ] {
        store.list_audit(&query).await.unwrap();
    }
    // The prunes, with cutoffs before everything: they delete nothing.
    let long_ago = DateTime::from_timestamp(0, 0).unwrap();
    for selection in [
        PruneKeys::RevokedBefore(long_ago),
        PruneKeys::ExpiredBefore(long_ago),
    ] {
        assert!(
            store
                .prune_keys(selection, now, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(store.prune_audit(long_ago, 10).await.unwrap(), 0);
    // The roles a key names, and every role of its owner page by page.
    let role = keyward_core::Role::new(
        owner.clone(),
        keyward_core::RoleName::new("reader").unwrap(),
        keyward_core::PermissionSet::new(),
    );
    store
        .put_role(
            &role,
            None,
            &keyward_core::audit::AuditEvent::new(now, "operator:plans", AuditAction::PutRole)
                .with_role(&role.name)
                .with_owner(&owner),
        )
        .await
        .unwrap();
    store
        .get_roles(&owner, std::slice::from_ref(&role.name))
        .await
        .unwrap();
    store.list_roles(&owner, None, 10).await.unwrap();
    store
        .list_roles(&owner, Some(&role.name), 10)
        .await
        .unwrap();
}
