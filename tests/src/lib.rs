//! keyward's cross-adapter tests: the product scenarios and the service-level
//! behaviour tests, written once and run against every store.
//!
//! Each scenario is a plain `async fn(Arc<dyn KeyStore>)` that configures
//! [`Keyward`](keyward_core::Keyward) as one of the five products in the
//! design (A–E) and walks that product's documented behaviour end to end,
//! asserting typed results. The behaviour tests pin properties of the service
//! itself (the verify path never writes, usage is flushed in batches, garbage
//! never reaches storage, audit events hold no secrets, revoke wins races).
//!
//! [`scenario_tests!`] expands all of them into one `#[tokio::test]` each for
//! a store factory, so an adapter's test file is one line:
//!
//! ```no_run
//! # use keyward_core::store::KeyStore;
//! # use keyward_memory::MemoryStore;
//! # use std::sync::Arc;
//! keyward_tests::scenario_tests!(async {
//!     Arc::new(MemoryStore::new()) as Arc<dyn KeyStore>
//! });
//! # fn main() {}
//! ```
//!
//! (Outside `cargo test` the generated `#[test]` functions are dropped, so
//! this doctest checks only that the invocation expands; the files under
//! `tests/tests/` compile and run it for real.)
//!
//! # Postgres
//!
//! The Postgres tests (tests/tests/postgres.rs and one property test) run
//! in a new schema of the database at `DATABASE_URL` (see [`backends`]).
//! Three cases:
//!
//! - **`DATABASE_URL` unset when the tests are built**: the build script
//!   sets `cfg(keyward_no_postgres)` and every Postgres test is
//!   `#[ignore = "set DATABASE_URL to run the Postgres tests (.ci/run does)"]`,
//!   so libtest's summary line counts them as *ignored*, not passed. Cargo
//!   rebuilds when `DATABASE_URL` changes.
//! - **`DATABASE_URL` set but no usable server**: each test prints a skip
//!   notice straight to stderr and returns, which libtest can only report
//!   as passed; the first notice of a test binary says so in a banner, and
//!   every notice carries the test's name and a running count.
//! - **`KEYWARD_REQUIRE_POSTGRES=1`** (CI and `.ci/run` set it): nothing is
//!   ignored or skipped; without a usable server every Postgres test fails.
//!
//! Every scenario creates its own owners (and role names) with a random
//! suffix, so the factory may hand out one shared database to all of them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test helpers: a failed expectation is a failed test"
)]

pub mod authorization;
pub mod backends;
pub mod behaviour;
pub mod cache;
pub mod counting;
pub mod feed;
mod interleave;
pub mod leaks;
pub mod operator;
pub mod plans;
pub mod properties;
mod records;
pub mod resilience;
pub mod scenarios;
pub mod soundness;
mod support;

pub use support::Backend;

/// Expands every product scenario and behaviour test into its own
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`.
///
/// Takes an expression that evaluates to a future of `Arc<dyn KeyStore>`
/// (usually an `async { … }` block); it is evaluated afresh for every test.
/// With `optional`, the future yields `Option<Arc<dyn KeyStore>>` and `None`
/// ends the test early (for a backend that is not reachable; libtest reports
/// it as passed, so say why in the factory). With `cached`, every
/// service verifies through a verification cache whose entries live an hour,
/// so only invalidation keeps the answers right. Attributes written first
/// (`#[cfg_attr(keyward_no_postgres, ignore = "…")]`) are put on every
/// generated test. The calling crate needs `tokio` with the `macros` and
/// `rt-multi-thread` features.
///
/// ```no_run
/// use keyward_core::store::KeyStore;
/// use keyward_memory::MemoryStore;
/// use std::sync::Arc;
///
/// keyward_tests::scenario_tests!(async { Arc::new(MemoryStore::new()) as Arc<dyn KeyStore> });
///
/// mod postgres {
///     keyward_tests::scenario_tests!(
///         #[cfg_attr(keyward_no_postgres, ignore = "set DATABASE_URL to run the Postgres tests")]
///         cached optional keyward_tests::backends::postgres_dyn()
///     );
/// }
/// # fn main() {}
/// ```
///
/// (A doctest outside `cargo test` drops the generated `#[test]` functions,
/// so it checks only that the invocations expand; tests/tests/ runs them.)
#[macro_export]
macro_rules! scenario_tests {
    // Attributes for every test come first, gathered one by one (an
    // expression may start with `#` too, so the plain forms never see them).
    (#[$attr:meta] $($rest:tt)+) => {
        $crate::scenario_tests!(@attrs [#[$attr]] $($rest)+);
    };
    (@attrs [$($attrs:tt)*] #[$attr:meta] $($rest:tt)+) => {
        $crate::scenario_tests!(@attrs [$($attrs)* #[$attr]] $($rest)+);
    };
    (@attrs $attrs:tt optional $store:expr) => {
        $crate::scenario_tests!(@cases backend $attrs (let Some(store) = $store.await else { return; }; let backend = $crate::Backend::uncached(store);));
    };
    (@attrs $attrs:tt cached optional $store:expr) => {
        $crate::scenario_tests!(@cases backend $attrs (let Some(store) = $store.await else { return; }; let backend = $crate::Backend::cached(store);));
    };
    (@attrs $attrs:tt cached $store:expr) => {
        $crate::scenario_tests!(@cases backend $attrs (let backend = $crate::Backend::cached($store.await);));
    };
    (@attrs $attrs:tt $store:expr) => {
        $crate::scenario_tests!(@cases backend $attrs (let backend = $crate::Backend::uncached($store.await);));
    };
    (optional $store:expr) => {
        $crate::scenario_tests!(@attrs [] optional $store);
    };
    (cached optional $store:expr) => {
        $crate::scenario_tests!(@attrs [] cached optional $store);
    };
    (cached $store:expr) => {
        $crate::scenario_tests!(@attrs [] cached $store);
    };
    ($store:expr) => {
        $crate::scenario_tests!(@attrs [] $store);
    };
    // `$var` travels with the setup so the binding and its use share one
    // hygiene context.
    (@cases $var:ident $attrs:tt $setup:tt) => {
        $crate::scenario_tests!(@each $var $attrs $setup;
            product_a_account_api_keys => $crate::scenarios::product_a,
            product_b_mcp_workspace_keys => $crate::scenarios::product_b,
            product_c_management_tokens => $crate::scenarios::product_c,
            product_d_personal_access_tokens => $crate::scenarios::product_d,
            product_e_scoped_personal_access_tokens => $crate::scenarios::product_e,
            revoke_wins_a_race_with_enable => $crate::behaviour::revoke_wins_a_race_with_enable,
            verify_never_writes_to_the_store => $crate::behaviour::verify_never_writes_to_the_store,
            usage_is_flushed_newest_and_forward_only => $crate::behaviour::usage_is_flushed_newest_and_forward_only,
            usage_flusher_persists_on_shutdown => $crate::behaviour::usage_flusher_persists_on_shutdown,
            garbage_tokens_never_reach_the_store => $crate::behaviour::garbage_tokens_never_reach_the_store,
            audit_events_never_hold_the_token => $crate::behaviour::audit_events_never_hold_the_token,
            cached_verify_answers_as_the_store_after_every_change => $crate::cache::cached_verify_answers_as_the_store_after_every_change,
            a_read_overtaken_by_a_revoke_is_never_cached => $crate::cache::a_read_overtaken_by_a_revoke_is_never_cached,
            cache_hits_and_unknown_ids_spare_the_store => $crate::cache::cache_hits_and_unknown_ids_spare_the_store,
            ready_answers_only_what_memory_knows => $crate::cache::ready_answers_only_what_memory_knows,
            entries_are_served_at_most_their_ttl => $crate::cache::entries_are_served_at_most_their_ttl,
            the_cache_holds_about_its_capacity => $crate::cache::the_cache_holds_about_its_capacity,
            forged_tokens_never_evict_cached_keys => $crate::cache::forged_tokens_never_evict_cached_keys,
            rotating_needs_the_keys_grant_for_an_admin_session => $crate::authorization::rotating_needs_the_keys_grant_for_an_admin_session,
            rotating_needs_the_keys_grant_for_a_management_token => $crate::authorization::rotating_needs_the_keys_grant_for_a_management_token,
            rotating_an_inheriting_pat_needs_its_ceiling => $crate::authorization::rotating_an_inheriting_pat_needs_its_ceiling,
            replacing_or_deleting_a_role_needs_its_old_permissions => $crate::authorization::replacing_or_deleting_a_role_needs_its_old_permissions,
            roles_are_namespaced_per_owner => $crate::authorization::roles_are_namespaced_per_owner,
            editing_a_role_needs_both_old_and_new_permissions => $crate::authorization::editing_a_role_needs_both_old_and_new_permissions,
            tokens_never_edit_roles => $crate::authorization::tokens_never_edit_roles,
            build_refuses_a_kind_that_manages_itself => $crate::authorization::build_refuses_a_kind_that_manages_itself,
            build_refuses_a_chain_of_managing_kinds => $crate::authorization::build_refuses_a_chain_of_managing_kinds,
            a_narrowed_session_cannot_mint_a_pat_wider_than_itself => $crate::authorization::a_narrowed_session_cannot_mint_a_pat_wider_than_itself,
            the_plan_gate_refuses_rotation_too => $crate::authorization::the_plan_gate_refuses_rotation_too,
            the_issue_hook_sees_the_whole_request => $crate::authorization::the_issue_hook_sees_the_whole_request,
            a_rotated_successor_never_outlives_the_current_expiry_policy => $crate::authorization::a_rotated_successor_never_outlives_the_current_expiry_policy,
            a_catalog_bounds_every_token_of_its_kind => $crate::authorization::a_catalog_bounds_every_token_of_its_kind,
            a_role_edited_past_the_catalog_never_widens_the_key => $crate::authorization::a_role_edited_past_the_catalog_never_widens_the_key,
            a_requirement_naming_kinds_refuses_other_kinds => $crate::authorization::a_requirement_naming_kinds_refuses_other_kinds,
            enabling_needs_the_enable_permission => $crate::authorization::enabling_needs_the_enable_permission,
            revoke_wins_against_flapping_enable_and_disable => $crate::soundness::revoke_wins_against_flapping_enable_and_disable,
            issue_and_rotate_fail_before_writing_when_permissions_cannot_be_resolved => $crate::soundness::issue_and_rotate_fail_before_writing_when_permissions_cannot_be_resolved,
            a_write_whose_answer_was_lost_after_commit_still_succeeds => $crate::soundness::a_write_whose_answer_was_lost_after_commit_still_succeeds,
            a_wrong_secret_costs_no_roles_read_or_directory_call => $crate::soundness::a_wrong_secret_costs_no_roles_read_or_directory_call,
            refused_reads_are_audited => $crate::soundness::refused_reads_are_audited,
            extreme_durations_are_typed_errors_not_panics => $crate::soundness::extreme_durations_are_typed_errors_not_panics,
            grant_sizes_are_capped => $crate::soundness::grant_sizes_are_capped,
            a_token_hidden_anywhere_in_a_name_or_metadata_is_refused => $crate::soundness::a_token_hidden_anywhere_in_a_name_or_metadata_is_refused,
            nested_prefixes_of_equal_length_both_work => $crate::soundness::nested_prefixes_of_equal_length_both_work,
            the_dangerous_store_is_the_service_store => $crate::soundness::the_dangerous_store_is_the_service_store,
            an_operator_name_cannot_forge_audit_lines => $crate::soundness::an_operator_name_cannot_forge_audit_lines,
            the_store_never_holds_the_token => $crate::behaviour::the_store_never_holds_the_token,
            a_store_outage_is_503_never_401 => $crate::behaviour::a_store_outage_is_503_never_401,
            a_failed_usage_flush_keeps_its_batch => $crate::behaviour::a_failed_usage_flush_keeps_its_batch,
            revoke_and_disable_read_no_roles_and_ask_no_directory => $crate::soundness::revoke_and_disable_read_no_roles_and_ask_no_directory,
            store_failures_are_not_audited_as_refusals => $crate::soundness::store_failures_are_not_audited_as_refusals,
            page_sizes_are_1_to_1000 => $crate::soundness::page_sizes_are_1_to_1000,
            the_rotation_overlap_is_at_most_30_days_by_default => $crate::soundness::the_rotation_overlap_is_at_most_30_days_by_default,
            a_cache_hit_repeats_the_secret_state_expiry_and_permission_checks => $crate::cache::a_cache_hit_repeats_the_secret_state_expiry_and_permission_checks,
            inserting_a_key_drops_its_unknown_id => $crate::cache::inserting_a_key_drops_its_unknown_id,
            a_peppered_service_verifies_older_sha256_keys => $crate::behaviour::a_peppered_service_verifies_older_sha256_keys,
            an_operator_prunes_only_dead_keys_and_audits_it_once => $crate::operator::an_operator_prunes_only_dead_keys_and_audits_it_once,
            only_operators_prune_and_bad_requests_are_typed_errors => $crate::operator::only_operators_prune_and_bad_requests_are_typed_errors,
            operators_list_across_owners_and_users_only_their_own => $crate::operator::operators_list_across_owners_and_users_only_their_own,
            every_role_of_an_owner_lists_in_pages_for_those_who_may_read_them => $crate::operator::every_role_of_an_owner_lists_in_pages_for_those_who_may_read_them,
            a_revoke_reason_is_recorded_and_never_holds_a_token => $crate::operator::a_revoke_reason_is_recorded_and_never_holds_a_token,
            a_reported_token_is_revoked_once_as_the_reporter => $crate::leaks::a_reported_token_is_revoked_once_as_the_reporter,
            anything_else_is_a_false_positive_that_changes_nothing => $crate::leaks::anything_else_is_a_false_positive_that_changes_nothing,
            a_report_never_puts_a_token_or_unbounded_text_in_the_log => $crate::leaks::a_report_never_puts_a_token_or_unbounded_text_in_the_log,
            racing_reports_of_one_token_revoke_it_once => $crate::leaks::racing_reports_of_one_token_revoke_it_once,
            a_prune_stopped_by_a_store_error_is_audited_with_its_counts => $crate::operator::a_prune_stopped_by_a_store_error_is_audited_with_its_counts,
        );
    };
    (@each $var:ident $attrs:tt $setup:tt; $($name:ident => $test:path),+ $(,)?) => {
        $( $crate::scenario_tests!(@one $var $attrs $setup $name $test); )+
    };
    (@one $var:ident [$($attrs:tt)*] ($($setup:tt)*) $name:ident $test:path) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attrs)*
        async fn $name() {
            $($setup)*
            $test($var).await;
        }
    };
}
