//! The conformance suite and the product scenarios against SQLite: a new
//! database file per test (under Cargo's target tmp dir), and an in-memory
//! database.

mod conformance_file {
    keyward_core::conformance_tests!(async {
        keyward_tests::backends::sqlite_file(env!("CARGO_TARGET_TMPDIR"))
    });
}

/// The suite against the store as a service with a verification cache
/// holds it (every mutation drops the affected cache entries).
mod conformance_behind_verify_cache {
    keyward_core::conformance_tests!(async {
        keyward_core::testkit::behind_verify_cache(keyward_tests::backends::sqlite_file(env!(
            "CARGO_TARGET_TMPDIR"
        )))
    });
}

mod conformance_in_memory {
    keyward_core::conformance_tests!(async {
        keyward_sqlite::SqliteStore::open_in_memory().unwrap()
    });
}

mod scenarios {
    keyward_tests::scenario_tests!(async {
        keyward_tests::backends::sqlite_file_dyn(env!("CARGO_TARGET_TMPDIR"))
    });
}

/// The same scenarios with every service verifying through a cache.
mod cached_scenarios {
    keyward_tests::scenario_tests!(cached async {
        keyward_tests::backends::sqlite_file_dyn(env!("CARGO_TARGET_TMPDIR"))
    });
}

/// The hot lookups (by key id, an owner's keys newest first, keys expiring
/// before a time, the live-key count) search their indexes instead of
/// scanning or sorting the keys table.
mod query_plans {
    use keyward_tests::plans::{
        assert_sqlite_plans, assert_sqlite_statements_are_the_ones_sent, sqlite_migrated,
        sqlite_seed,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checked_statements_are_the_ones_the_adapter_sends() {
        assert_sqlite_statements_are_the_ones_sent().await;
    }

    #[test]
    fn hot_lookups_search_their_indexes_on_a_new_database() {
        assert_sqlite_plans(&sqlite_migrated(), "empty database");
    }

    #[test]
    fn hot_lookups_search_their_indexes_on_an_analyzed_database() {
        let conn = sqlite_migrated();
        sqlite_seed(&conn);
        assert_sqlite_plans(&conn, "20 000 keys, analyzed");
    }
}

/// A write that fails midway (the database locked beyond the busy timeout,
/// or the audit insert failing after the key row) returns a backend error
/// and leaves nothing half-written.
mod resilience {
    use keyward_tests::resilience::{
        sqlite_failed_audit_write_rolls_back_the_mutation,
        sqlite_locked_database_fails_the_write_and_writes_nothing,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_database_fails_the_write_and_writes_nothing() {
        sqlite_locked_database_fails_the_write_and_writes_nothing(env!("CARGO_TARGET_TMPDIR"))
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_audit_write_rolls_back_the_mutation() {
        sqlite_failed_audit_write_rolls_back_the_mutation(env!("CARGO_TARGET_TMPDIR")).await;
    }
}

/// The connection settings docs/adapters.md promises, read back from every
/// connection the store holds (`SqliteStore::connection_settings`): the
/// writer and each reader of a file store, the one connection of an
/// in-memory store and of `from_connection`. A single connection left at
/// `synchronous = NORMAL` (WAL's usual choice, which may lose the last
/// commits on a power loss: a lost revoke) fails them.
mod connection_settings {
    use keyward_sqlite::rusqlite::Connection;
    use keyward_sqlite::{ConnectionSettings, SqliteOptions, SqliteStore};
    use std::time::Duration;

    /// `PRAGMA synchronous = FULL`.
    const FULL: i64 = 2;

    /// A new database file for this test (`name` is unique per test; a
    /// file left by an earlier run of the same process id is removed).
    fn file(name: &str) -> std::path::PathBuf {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("settings-{name}-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let mut stale = path.clone().into_os_string();
            stale.push(suffix);
            drop(std::fs::remove_file(stale));
        }
        path
    }

    /// Every connection: synchronous FULL, foreign keys on, the busy timeout.
    fn assert_durable(what: &str, settings: &[ConnectionSettings], busy: Duration) {
        for (i, s) in settings.iter().enumerate() {
            let which = if i == 0 {
                "the writer".to_owned()
            } else {
                format!("reader {i}")
            };
            assert_eq!(s.synchronous, FULL, "{what}, {which}: synchronous = FULL");
            assert!(s.foreign_keys, "{what}, {which}: foreign_keys = ON");
            assert_eq!(s.busy_timeout, busy, "{what}, {which}: busy timeout");
        }
    }

    #[test]
    fn a_file_store_runs_wal_full_foreign_keys_and_5_s_on_every_connection() {
        let store = SqliteStore::open(file("settings")).unwrap();
        let settings = store.connection_settings().unwrap();
        assert_eq!(
            settings.len(),
            1 + 4,
            "the writer and the 4 default readers"
        );
        assert_durable("a file store", &settings, Duration::from_secs(5));
        for (i, s) in settings.iter().enumerate() {
            assert_eq!(s.journal_mode, "wal", "connection {i}: journal_mode = WAL");
        }
    }

    #[test]
    fn options_reach_every_connection() {
        let options = SqliteOptions::default()
            .readers(2)
            .busy_timeout(Duration::from_millis(1234));
        let store = SqliteStore::open_with(file("options"), options).unwrap();
        let settings = store.connection_settings().unwrap();
        assert_eq!(settings.len(), 1 + 2, "the writer and 2 readers");
        assert_durable("readers(2)", &settings, Duration::from_millis(1234));
    }

    #[test]
    fn an_in_memory_store_runs_full_and_foreign_keys() {
        for (what, store) in [
            ("open_in_memory", SqliteStore::open_in_memory().unwrap()),
            (
                "connect(sqlite::memory:)",
                SqliteStore::connect("sqlite::memory:").unwrap(),
            ),
        ] {
            let settings = store.connection_settings().unwrap();
            assert_eq!(settings.len(), 1, "{what}: one connection");
            assert_durable(what, &settings, Duration::from_secs(5));
            assert_eq!(settings[0].journal_mode, "memory", "{what}");
        }
    }

    /// The host's connection, opened with WAL's usual `NORMAL` and foreign
    /// keys off: the store raises both, and leaves the journal mode alone.
    #[test]
    fn from_connection_raises_a_host_connection_to_full() {
        let path = file("host");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = DELETE; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;",
        )
        .unwrap();
        let store = SqliteStore::from_connection(conn, SqliteOptions::default()).unwrap();
        let settings = store.connection_settings().unwrap();
        assert_eq!(settings.len(), 1, "one connection");
        assert_durable("from_connection", &settings, Duration::from_secs(5));
        assert_eq!(
            settings[0].journal_mode, "delete",
            "the host's journal mode"
        );
    }
}

/// Upgrading a database from before roles had owners: the migration keeps
/// the old roles under owner '' (which no `Owner` can equal), so they grant
/// nothing, and new roles are namespaced by owner.
mod owned_roles_migration {
    use keyward_core::{
        AuditAction, AuditEvent, KeyStore, Owner, PermissionSet, Role, RoleName, TablePrefix,
    };
    use keyward_sqlite::rusqlite::{Connection, params};
    use keyward_sqlite::{SqliteOptions, SqliteStore, migrations};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn existing_roles_get_owner_empty_and_grant_nothing() {
        let prefix = TablePrefix::default();
        let all = migrations(&prefix);
        assert_eq!(
            all.iter().map(|m| m.version).collect::<Vec<_>>(),
            [2026_1123_0000_0001, 2026_1202_0000_0001],
            "the shipped migrations, in order"
        );
        let mut conn = Connection::open_in_memory().unwrap();
        // The database as the first release left it, with a role.
        conn.execute_batch(&all[0].sql).unwrap();
        conn.execute(
            "INSERT INTO keyward_roles (name, permissions) VALUES (?1, ?2)",
            params!["admin", "*"],
        )
        .unwrap();
        // The host's migration run applies the new version.
        let tx = conn.transaction().unwrap();
        tx.execute_batch(&all[1].sql).unwrap();
        tx.commit().unwrap();
        let kept: Vec<(String, String, String)> = conn
            .prepare("SELECT owner, name, permissions FROM keyward_roles")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kept,
            [(String::new(), "admin".to_owned(), "*".to_owned())],
            "the old role is kept under owner ''"
        );
        let store =
            SqliteStore::from_connection(conn, SqliteOptions::default().migrate(false)).unwrap();
        let admin = RoleName::new("admin").unwrap();
        let owner = Owner::new("account:1").unwrap();
        assert!(
            store
                .get_roles(&owner, std::slice::from_ref(&admin))
                .await
                .unwrap()
                .is_empty(),
            "no owner receives the old role"
        );
        // The name is free in every owner's namespace.
        let role = Role::new(
            owner.clone(),
            admin.clone(),
            PermissionSet::parse(["a.b"]).unwrap(),
        );
        let event = AuditEvent::new(
            keyward_core::chrono::Utc::now(),
            "test",
            AuditAction::PutRole,
        );
        store.put_role(&role, None, &event).await.unwrap();
        assert_eq!(
            store
                .get_roles(&owner, std::slice::from_ref(&admin))
                .await
                .unwrap(),
            [role]
        );
    }

    /// keyward's own `migrate` applies only the new version to a database
    /// that has the first one, and records it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrate_upgrades_a_first_release_database() {
        let mut bytes = [0u8; 6];
        keyward_core::SecretSource::fill(&keyward_core::OsRandom, &mut bytes).unwrap();
        let tag: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let path =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("upgrade-{tag}.db"));
        let prefix = TablePrefix::default();
        {
            // A first-release database: migrated by keyward's `migrate`
            // when only the first version existed.
            let mut conn = Connection::open(&path).unwrap();
            keyward_sqlite::migrate(&mut conn, &prefix).unwrap();
            conn.execute_batch(
                "DROP TABLE keyward_roles;
                 CREATE TABLE keyward_roles (name TEXT PRIMARY KEY NOT NULL, permissions TEXT NOT NULL) STRICT;
                 DELETE FROM keyward_migrations WHERE version = 2026120200000001;
                 INSERT INTO keyward_roles (name, permissions) VALUES ('ops', 'deploy');",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM keyward_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, [2026_1123_0000_0001, 2026_1202_0000_0001]);
        let owner: String = conn
            .query_row(
                "SELECT owner FROM keyward_roles WHERE name = 'ops'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(owner, "", "the old role's owner");
    }
}
