//! The conformance cases: one `async fn` per invariant of the
//! [`KeyStore`](crate::store::KeyStore) contract, in one file per clause of the
//! contract (the numbered invariants in the `KeyStore` docs).
//!
//! Each case takes a store (empty or shared: every id, owner and role name a
//! case writes carries a random tag, and global queries look only at
//! the case's own data), panics with a message naming the broken invariant,
//! and returns normally when the store conforms. Run them all with
//! [`conformance_tests!`](crate::conformance_tests).
//!
//! Adding a case: write a `pub async fn` with a one-line doc comment saying
//! what it protects in the file of the clause it checks, re-export it here,
//! then add its name to that clause's group in `conformance_tests!`
//! (`testkit/macros.rs`).

mod audit;
mod expiring;
mod insert;
mod limit;
mod listing;
mod prune;
mod revocation;
mod roles;
mod rotation;
mod round_trip;
mod support;
mod transitions;
mod usage;

// Invariant 1 (and 9).
pub use insert::{get_unknown_id_is_none, insert_duplicate_id_is_already_exists};
// Invariant 2.
pub use limit::{limit_counts_live_keys_per_owner_and_kind, limit_holds_under_concurrent_inserts};
// Invariant 3.
pub use transitions::{
    revoke_and_enable_race_has_one_winner, revoked_keys_never_change_state,
    set_state_is_compare_and_set,
};
// Invariant 4, and `list_audit` (invariant 16).
pub use audit::{
    list_audit_filters_by_action_and_time, list_audit_is_newest_first_filtered_and_limited,
    mutations_append_their_audit_event_only_on_success,
};
// Invariant 5.
pub use rotation::{
    rotate_key_links_and_shortens_predecessor, rotate_key_refuses_stale_or_repeated_rotation,
    rotate_key_with_duplicate_successor_changes_nothing,
};
// Invariant 6.
pub use usage::{record_usage_applies_a_whole_batch, record_usage_is_forward_only};
// Invariant 7.
pub use listing::{
    list_keys_across_owners_pages_every_owner, list_keys_filters_by_kind_and_status,
    list_keys_filters_by_last_use, list_keys_is_newest_first_and_per_owner,
    list_keys_name_filter_folds_unicode_case,
    list_keys_name_filter_is_literal_and_case_insensitive,
    list_keys_pages_through_equal_timestamps, list_keys_pages_without_duplicates_or_skips,
    list_keys_pagination_is_stable_under_inserts,
};
// Invariant 8.
pub use round_trip::{
    audit_events_round_trip_every_field, insert_then_get_round_trips_every_field,
    verify_read_of_an_unknown_id_is_none,
};
// Invariant 11.
pub use revocation::{
    revoke_key_is_unconditional_and_idempotent, revoke_key_wins_against_flapping_state_changes,
};
// Invariants 12, 13 and 17.
pub use roles::{
    delete_role_is_compare_and_set, delete_role_removes_only_that_role,
    list_roles_is_per_owner_in_name_order, list_roles_page_size_is_1_to_1000,
    list_roles_pages_without_duplicates_or_skips, put_role_is_compare_and_set,
    roles_are_namespaced_by_owner, roles_put_replace_and_get,
};
// Invariants 14 and 15.
pub use prune::{
    prune_audit_deletes_only_old_events_in_batches, prune_keys_deletes_only_dead_keys,
    prune_keys_works_in_bounded_batches, prune_of_100k_revoked_keys_leaves_every_live_key,
};
// The `keys_expiring` clause.
pub use expiring::keys_expiring_selects_the_window_soonest_first;
