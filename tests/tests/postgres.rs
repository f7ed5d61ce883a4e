//! The conformance suite and the product scenarios against Postgres, each
//! test in its own schema. Needs `DATABASE_URL`: built without it, every
//! test here is reported as ignored; with it set but no usable server, each
//! prints a skip notice (and is reported as passed); with
//! `KEYWARD_REQUIRE_POSTGRES=1` they fail instead. See the `keyward_tests`
//! crate doc.
//!
//! Every test of this file but one carries
//! `#[cfg_attr(keyward_no_postgres, ignore = "…")]`;
//! `every_postgres_test_is_ignored_exactly_when_built_without_database_url`
//! checks that, so a new test cannot forget it.

mod conformance {
    keyward_core::conformance_tests!(
        #[cfg_attr(keyward_no_postgres, ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)")]
        bulk optional async {
            keyward_tests::backends::postgres().await.map(|store| (store.clone(), store))
        }
    );
}

/// The suite against the store as a service with a verification cache
/// holds it (every mutation drops the affected cache entries).
mod conformance_behind_verify_cache {
    keyward_core::conformance_tests!(
        #[cfg_attr(keyward_no_postgres, ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)")]
        bulk optional async {
            keyward_tests::backends::postgres()
                .await
                .map(|store| (keyward_core::testkit::behind_verify_cache(store.clone()), store))
        }
    );
}

mod scenarios {
    keyward_tests::scenario_tests!(
        #[cfg_attr(keyward_no_postgres, ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)")]
        optional keyward_tests::backends::postgres_dyn()
    );
}

/// The same scenarios with every service verifying through a cache.
mod cached_scenarios {
    keyward_tests::scenario_tests!(
        #[cfg_attr(keyward_no_postgres, ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)")]
        cached optional keyward_tests::backends::postgres_dyn()
    );
}

/// The hot lookups (by key id, an owner's keys newest first, keys expiring
/// before a time, the live-key count) are index scans on a populated,
/// analyzed table, as custom and as generic prepared-statement plans.
mod query_plans {
    use keyward_tests::backends::postgres;
    use keyward_tests::plans::{assert_pg_plans, assert_pg_statements_are_the_ones_sent, pg_seed};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        keyward_no_postgres,
        ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
    )]
    async fn the_checked_statements_are_the_ones_the_adapter_sends() {
        let Some(store) = postgres().await else {
            return;
        };
        assert_pg_statements_are_the_ones_sent(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        keyward_no_postgres,
        ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
    )]
    async fn hot_lookups_are_index_scans() {
        let Some(store) = postgres().await else {
            return;
        };
        pg_seed(&store).await;
        assert_pg_plans(&store).await;
    }
}

/// A connection dropped mid-operation returns a backend error and leaves no
/// half-written key, state change or rotation; the store keeps working.
mod resilience {
    use keyward_tests::backends::postgres;
    use keyward_tests::resilience::{
        pg_dropped_connection_mid_insert_leaves_no_key,
        pg_dropped_connection_mid_revoke_leaves_the_key_active,
        pg_dropped_connection_mid_rotation_leaves_the_predecessor_alone,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        keyward_no_postgres,
        ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
    )]
    async fn a_dropped_connection_mid_insert_leaves_no_key() {
        let Some(store) = postgres().await else {
            return;
        };
        pg_dropped_connection_mid_insert_leaves_no_key(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        keyward_no_postgres,
        ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
    )]
    async fn a_dropped_connection_mid_revoke_leaves_the_key_active() {
        let Some(store) = postgres().await else {
            return;
        };
        pg_dropped_connection_mid_revoke_leaves_the_key_active(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        keyward_no_postgres,
        ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
    )]
    async fn a_dropped_connection_mid_rotation_leaves_the_predecessor_alone() {
        let Some(store) = postgres().await else {
            return;
        };
        pg_dropped_connection_mid_rotation_leaves_the_predecessor_alone(store).await;
    }
}

/// Two processes on one database, each with a verification cache and the
/// store as its change feed: what one changes (or an operator changes in
/// SQL) the other's cache drops within the feed bound, and a dropped feed
/// falls back to the entry lifetime and reconnects with an empty cache.
mod change_feed {
    use keyward_tests::feed;

    macro_rules! feed_tests {
        ($($name:ident),+ $(,)?) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(keyward_no_postgres, ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)")]
                async fn $name() {
                    feed::$name().await;
                }
            )+
        };
    }

    feed_tests!(
        a_revoke_reaches_another_process,
        a_disable_reaches_another_process,
        a_role_losing_a_permission_reaches_another_process,
        a_deleted_role_reaches_another_process,
        a_rotation_without_overlap_expires_the_old_key_in_another_process,
        an_operators_sql_revoke_reaches_every_process,
        a_prune_reaches_another_process,
        an_owners_changed_permissions_reach_another_process,
        a_usage_flush_notifies_no_one,
        a_dropped_feed_falls_back_to_ttl_then_reconnects_with_an_empty_cache,
        a_stalled_listener_still_refuses_a_revoked_key_within_the_reported_bound,
        a_forged_heartbeat_does_not_make_a_stalled_feed_fresh,
        a_replayed_heartbeat_does_not_make_a_stalled_feed_fresh,
        two_schemas_with_the_same_prefix_do_not_hear_each_other,
        the_triggers_notify_the_schemas_channel_whatever_the_search_path,
    );
}

/// Upgrading a database from before roles had owners: migration
/// `2026120200000001` keeps the old roles under owner '' (which no `Owner`
/// can equal), so they grant nothing, and the name is free in every owner's
/// namespace.
mod owned_roles_migration {
    use keyward_core::{
        Owner, PermissionSet, Role, RoleName, audit::AuditAction, audit::AuditEvent,
        store::KeyStore, store::sql::TablePrefix,
    };
    use keyward_postgres::sqlx::migrate::Migrator;
    use keyward_postgres::sqlx::{self, Row};
    use keyward_postgres::{PgStore, migrations};
    use keyward_tests::backends::postgres;

    const OWNED_ROLES: i64 = 2026_1202_0000_0001;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        keyward_no_postgres,
        ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
    )]
    async fn existing_roles_get_owner_empty_and_grant_nothing() {
        let Some(fresh) = postgres().await else {
            return;
        };
        // A second installation in the test's schema, as the releases
        // before the owned-roles migration left it.
        let pool = fresh.pool().clone();
        let prefix = TablePrefix::new("legacy_").unwrap();
        let before: Vec<_> = migrations(&prefix)
            .into_iter()
            .filter(|m| m.version < OWNED_ROLES)
            .collect();
        assert_eq!(before.len(), 2, "the tables and the change feed triggers");
        let mut old = Migrator::with_migrations(before);
        old.dangerous_set_table_name(prefix.table("migrations"));
        old.run(&pool).await.unwrap();
        sqlx::query("INSERT INTO legacy_roles (name, permissions) VALUES ($1, $2)")
            .bind("admin")
            .bind(vec!["*".to_owned()])
            .execute(&pool)
            .await
            .unwrap();

        // Upgrade: keyward's own migrator applies what is missing.
        let store = PgStore::with_table_prefix(pool.clone(), prefix);
        store.migrate().await.unwrap();
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM legacy_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(applied.contains(&OWNED_ROLES), "applied: {applied:?}");
        let rows = sqlx::query("SELECT owner, name, permissions FROM legacy_roles")
            .fetch_all(&pool)
            .await
            .unwrap();
        let kept: Vec<(String, String, Vec<String>)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            kept,
            [(String::new(), "admin".to_owned(), vec!["*".to_owned()])],
            "the old role is kept under owner ''"
        );

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
        let primary_key: String = sqlx::query_scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = to_regclass('legacy_roles') AND contype = 'p'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(primary_key, "PRIMARY KEY (owner, name)");
    }
}

/// keyward's transactions run at READ COMMITTED whatever the host's
/// default: with every connection of the pool defaulting to REPEATABLE
/// READ (whose snapshot would be taken before the advisory lock is
/// granted, and miss a concurrent insert), twenty concurrent issues
/// against a limit of 3 still leave exactly 3 keys.
mod isolation {
    use keyward_postgres::PgStore;
    use keyward_postgres::sqlx::postgres::PgPoolOptions;
    use keyward_tests::backends::postgres;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        keyward_no_postgres,
        ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
    )]
    async fn the_live_key_limit_holds_when_the_host_defaults_to_repeatable_read() {
        let Some(fresh) = postgres().await else {
            return;
        };
        let options = (*fresh.pool().connect_options())
            .clone()
            .options([("default_transaction_isolation", "repeatable read")]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .unwrap();
        let default: String =
            keyward_postgres::sqlx::query_scalar("SHOW default_transaction_isolation")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(default, "repeatable read", "the host's default");
        let store = PgStore::new(pool);
        keyward_core::testkit::cases::limit_holds_under_concurrent_inserts(&store).await;
    }
}

/// The database holds the digest, never the token or its secret: every
/// row of every keyward table, as text, after a whole lifecycle.
mod at_rest {
    use keyward_core::chrono::TimeDelta;
    use keyward_core::{Actor, IssueRequest, Keyward, Owner, Requirement, TokenKind};
    use keyward_postgres::sqlx::{self, AssertSqlSafe};
    use keyward_tests::backends::postgres;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        keyward_no_postgres,
        ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
    )]
    async fn the_postgres_tables_never_hold_the_token() {
        let Some(store) = postgres().await else {
            return;
        };
        let pool = store.pool().clone();
        let keyward = Keyward::builder(store)
            .kind(TokenKind::new("tak").unwrap())
            .build()
            .unwrap();
        let admin = Actor::operator("at-rest");
        let owner = Owner::new("account:at-rest").unwrap();
        let first = keyward
            .issue(&admin, IssueRequest::new("tak", owner.clone(), "at rest"))
            .await
            .unwrap();
        keyward
            .verify(first.token.expose_secret(), &Requirement::nothing())
            .await
            .unwrap();
        keyward.flush_usage().await.unwrap();
        let second = keyward
            .rotate(&admin, &first.key.id, TimeDelta::hours(1))
            .await
            .unwrap();
        keyward.revoke(&admin, &first.key.id).await.unwrap();
        let mut rows = String::new();
        for table in ["keyward_keys", "keyward_roles", "keyward_audit"] {
            let text: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT row_to_json(t)::text FROM {table} t"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            rows.push_str(&text.join("\n"));
        }
        assert!(rows.contains(first.key.id.as_str()), "the rows were read");
        for issued in [&first, &second] {
            let token = issued.token.expose_secret();
            let secret = &token[4 + issued.key.id.as_str().len()..token.len() - 6];
            assert!(secret.len() >= 22, "{secret}");
            assert!(!rows.contains(token), "a table holds the token");
            assert!(!rows.contains(secret), "a table holds the secret");
        }
    }
}

/// Times keep microseconds and drop anything finer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    keyward_no_postgres,
    ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"
)]
async fn times_are_truncated_to_the_microsecond() {
    let Some(store) = keyward_tests::backends::postgres_dyn().await else {
        return;
    };
    keyward_tests::behaviour::times_are_truncated_to_the_microsecond(store).await;
}

/// Built without `DATABASE_URL` (and without `KEYWARD_REQUIRE_POSTGRES=1`),
/// every other test of this binary is ignored, so the summary line counts
/// them as ignored instead of passed; built with it, none is.
#[test]
fn every_postgres_test_is_ignored_exactly_when_built_without_database_url() {
    let this = "every_postgres_test_is_ignored_exactly_when_built_without_database_url";
    let postgres_tests: Vec<String> = keyward_tests::backends::tests_of_this_binary(false)
        .into_iter()
        .filter(|name| name != this)
        .collect();
    let ignored = keyward_tests::backends::tests_of_this_binary(true);
    assert!(postgres_tests.len() > 100, "listed {postgres_tests:?}");
    if cfg!(keyward_no_postgres) {
        assert_eq!(ignored, postgres_tests, "every Postgres test is ignored");
    } else {
        assert_eq!(ignored, Vec::<String>::new(), "no Postgres test is ignored");
    }
}
