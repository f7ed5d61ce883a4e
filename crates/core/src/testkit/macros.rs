//! [`conformance_tests!`](crate::conformance_tests): the suite as one test per case.

/// Expands into one `#[tokio::test]` per conformance case, each running the
/// case against a fresh store built by an async factory.
///
/// The factory is any expression evaluating to a future of `T` where
/// `T: KeyStore` (usually an `async { … }` block). It is evaluated once per
/// test, so every case gets its own store; the cases also tag everything
/// they write with a random suffix, so a factory may hand out connections to
/// one shared, persistent database instead.
///
/// Each test is `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`,
/// so **the calling crate must depend on `tokio`** with the `rt-multi-thread`
/// and `macros` features (it is usually a dev-dependency). The tests are named
/// after the cases in [`testkit::cases`](crate::testkit::cases); invoke the macro
/// once per module (wrap each adapter in its own `mod` to run several).
///
/// Pruning is global, so the prune cases keep their data in the 1990s (every
/// other case writes 2025 or later) and exclude each other within one
/// process; two test processes sharing one database must not run them at
/// the same time.
///
/// One case writes 100 000 keys. With the `bulk` form the factory yields
/// `(store, bulk)`, where `bulk` implements
/// [`BulkInsert`](crate::testkit::BulkInsert) into the same database, and
/// that case seeds through it (test support, never part of the store's
/// contract); without it the case seeds through `insert_key`, which is slow
/// on a backend that flushes to disk on every commit. `bulk optional`
/// combines it with `optional` (the factory yields `Option<(store, bulk)>`).
///
/// Attributes written before the factory (or before `optional`) are put on
/// every generated test, after `#[tokio::test]`: for example
/// `#[cfg_attr(no_server, ignore = "why")]`, so that a test run without the
/// backend reports its cases as *ignored* rather than as passed.
///
/// ```no_run
/// // tests/conformance.rs of an adapter crate, with
/// // [dev-dependencies] keyward-core = { features = ["testkit"] } and
/// // tokio = { features = ["rt-multi-thread", "macros"] }.
/// // Outside `cargo test` the generated `#[test]` functions are dropped, so
/// // this doctest checks only that the invocations expand; keyward's
/// // tests/tests/memory_conformance.rs and postgres.rs compile and run
/// // them for real.
/// keyward_core::conformance_tests!(async { keyward_memory::MemoryStore::new() });
///
/// // A backend that may be absent: return `Option<T>`; `None` ends the
/// // case early, which libtest reports as *passed*, so print why in the
/// // factory. Better still, also mark the cases ignored when the backend
/// // is known to be absent at build time (`cfg(no_server)` set by your
/// // build script), so the summary counts them as ignored.
/// mod postgres {
///     keyward_core::conformance_tests!(
///         #[cfg_attr(no_server, ignore = "set DATABASE_URL to run these")]
///         optional async {
///             let Ok(url) = std::env::var("DATABASE_URL") else {
///                 eprintln!("skipped: DATABASE_URL is not set");
///                 return None;
///             };
///             Some(my_adapter::PgStore::connect(&url).await.unwrap())
///         }
///     );
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    // Attributes for every test come first; they are gathered one by one
    // (an expression may start with `#` too, so the plain forms below must
    // never see them).
    (#[$attr:meta] $($rest:tt)+) => {
        $crate::conformance_tests!(@attrs [#[$attr]] $($rest)+);
    };
    (@attrs [$($attrs:tt)*] #[$attr:meta] $($rest:tt)+) => {
        $crate::conformance_tests!(@attrs [$($attrs)* #[$attr]] $($rest)+);
    };
    // `bulk`: the factory yields `(store, bulk)`, where `bulk` implements
    // `testkit::BulkInsert` into the same database (the bulk cases seed
    // through it).
    (@attrs [$($attrs:tt)*] bulk optional $factory:expr $(,)?) => {
        $crate::conformance_tests!(@cases store bulk [$($attrs)*] (
            let Some((store, bulk)) = $factory.await else { return; };
            let bulk = Some(&bulk as &dyn $crate::testkit::BulkInsert);
        ));
    };
    (@attrs [$($attrs:tt)*] bulk $factory:expr $(,)?) => {
        $crate::conformance_tests!(@cases store bulk [$($attrs)*] (
            let (store, bulk) = $factory.await;
            let bulk = Some(&bulk as &dyn $crate::testkit::BulkInsert);
        ));
    };
    (@attrs [$($attrs:tt)*] optional $factory:expr $(,)?) => {
        $crate::conformance_tests!(@cases store bulk [$($attrs)*] (
            let Some(store) = $factory.await else { return; };
            let bulk: Option<&dyn $crate::testkit::BulkInsert> = None;
        ));
    };
    (@attrs [$($attrs:tt)*] $factory:expr $(,)?) => {
        $crate::conformance_tests!(@cases store bulk [$($attrs)*] (
            let store = $factory.await;
            let bulk: Option<&dyn $crate::testkit::BulkInsert> = None;
        ));
    };
    (bulk optional $factory:expr $(,)?) => {
        $crate::conformance_tests!(@attrs [] bulk optional $factory);
    };
    (bulk $factory:expr $(,)?) => {
        $crate::conformance_tests!(@attrs [] bulk $factory);
    };
    (optional $factory:expr $(,)?) => {
        $crate::conformance_tests!(@attrs [] optional $factory);
    };
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!(@attrs [] $factory);
    };
    // Every case, once, grouped by the clause of the contract it checks (the
    // numbered invariants in the `KeyStore` docs; one file per clause in
    // `testkit/cases/`). Adding a case is adding its name to its clause's
    // group; a case that seeds in bulk (it takes the `BulkInsert` too) goes
    // after `bulk:`. (`$store` and `$bulk` are passed along so the bindings
    // and their uses share one hygiene context.)
    (@cases $store:ident $bulk:ident $attrs:tt ($($setup:tt)*)) => {
        $crate::conformance_tests!(@each $store $bulk $attrs ($($setup)*)
            // 1. Insert is not update (and 9, ids are case-sensitive): cases/insert.rs
            get_unknown_id_is_none
            insert_duplicate_id_is_already_exists
            // 2. The live-key limit is atomic: cases/limit.rs
            limit_counts_live_keys_per_owner_and_kind
            limit_holds_under_concurrent_inserts
            // 3. State changes are compare-and-set: cases/transitions.rs
            set_state_is_compare_and_set
            revoked_keys_never_change_state
            revoke_and_enable_race_has_one_winner
            // 4. Mutations and their audit event are one write; list_audit:
            // cases/audit.rs
            mutations_append_their_audit_event_only_on_success
            list_audit_is_newest_first_filtered_and_limited
            // 16. Audit queries filter and stay newest first: cases/audit.rs
            list_audit_filters_by_action_and_time
            // 5. Rotation is atomic: cases/rotation.rs
            rotate_key_links_and_shortens_predecessor
            rotate_key_refuses_stale_or_repeated_rotation
            rotate_key_with_duplicate_successor_changes_nothing
            // 6. Usage is forward-only: cases/usage.rs
            record_usage_is_forward_only
            record_usage_applies_a_whole_batch
            // 7. Listing is stable: cases/listing.rs
            list_keys_is_newest_first_and_per_owner
            list_keys_name_filter_is_literal_and_case_insensitive
            list_keys_name_filter_folds_unicode_case
            list_keys_filters_by_kind_and_status
            list_keys_pages_without_duplicates_or_skips
            list_keys_pagination_is_stable_under_inserts
            list_keys_pages_through_equal_timestamps
            list_keys_across_owners_pages_every_owner
            list_keys_filters_by_last_use
            // 8. Timestamps (and every string and map) round-trip: cases/round_trip.rs
            insert_then_get_round_trips_every_field
            audit_events_round_trip_every_field
            verify_read_of_an_unknown_id_is_none
            // 11. Revocation always wins: cases/revocation.rs
            revoke_key_is_unconditional_and_idempotent
            revoke_key_wins_against_flapping_state_changes
            // 12. Roles are namespaced by owner, 13. role edits are
            // compare-and-set: cases/roles.rs
            roles_put_replace_and_get
            delete_role_removes_only_that_role
            roles_are_namespaced_by_owner
            put_role_is_compare_and_set
            delete_role_is_compare_and_set
            // 17. An owner's roles list in name order, paged by name:
            // cases/roles.rs
            list_roles_is_per_owner_in_name_order
            list_roles_pages_without_duplicates_or_skips
            list_roles_page_size_is_1_to_1000
            // 14. Pruning deletes only dead keys in bounded batches, 15.
            // audit retention: cases/prune.rs
            prune_keys_deletes_only_dead_keys
            prune_keys_works_in_bounded_batches
            prune_audit_deletes_only_old_events_in_batches
            // keys_expiring (the keys to warn about): cases/expiring.rs
            keys_expiring_selects_the_window_soonest_first
            bulk:
            // 14, at scale: cases/prune.rs
            prune_of_100k_revoked_keys_leaves_every_live_key
        );
    };
    (@each $store:ident $bulk:ident [$($attrs:tt)*] ($($setup:tt)*) bulk: $($rest:ident)*) => {
        $crate::conformance_tests!(@bulk $store $bulk [$($attrs)*] ($($setup)*) $($rest)*);
    };
    (@each $store:ident $bulk:ident [$($attrs:tt)*] ($($setup:tt)*) $case:ident $($rest:tt)*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attrs)*
        async fn $case() {
            $($setup)*
            let _ = $bulk;
            $crate::testkit::cases::$case(&$store as &dyn $crate::store::KeyStore).await;
        }
        $crate::conformance_tests!(@each $store $bulk [$($attrs)*] ($($setup)*) $($rest)*);
    };
    (@bulk $store:ident $bulk:ident [$($attrs:tt)*] ($($setup:tt)*) $case:ident $($rest:ident)*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attrs)*
        async fn $case() {
            $($setup)*
            $crate::testkit::cases::$case(&$store as &dyn $crate::store::KeyStore, $bulk).await;
        }
        $crate::conformance_tests!(@bulk $store $bulk [$($attrs)*] ($($setup)*) $($rest)*);
    };
    (@bulk $store:ident $bulk:ident $attrs:tt ($($setup:tt)*)) => {};
}
