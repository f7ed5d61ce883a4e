//! Invariant 1 of the [`KeyStore`] contract, **insert is not update**, and
//! reads by exact id: an existing id is `AlreadyExists` and stays untouched,
//! an unknown id reads as `None`, and ids differing only in letter case are
//! distinct keys (invariant 9).

use crate::key::KeyId;
use crate::lifecycle::KeyState;
use crate::secret::TokenHasher;
use crate::store::KeyStore;
use crate::testkit::fixtures::{
    Fixture, assert_stored, at, expect_already_exists, insert, issue_event,
};

/// Getting an id that was never inserted (or differs only in letter case) is `Ok(None)`, not an error.
pub async fn get_unknown_id_is_none(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let key = fx.record(&owner, "mt", at(0));
    insert(store, &key).await;

    let unknown = fx.id();
    assert!(
        store.get_key(&unknown).await.expect("get_key").is_none(),
        "get_key of an unknown id must be Ok(None)"
    );
    let other_case = swap_case(&key.id);
    assert!(
        store.get_key(&other_case).await.expect("get_key").is_none(),
        "key ids are case-sensitive: {other_case} must not find {}",
        key.id
    );
    assert_stored(store, &key).await;
}

/// Inserting an id that exists fails with `AlreadyExists` and leaves the original untouched; ids differing in case are distinct.
pub async fn insert_duplicate_id_is_already_exists(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let original = fx.record(&owner, "mt", at(0));
    insert(store, &original).await;

    let mut duplicate = fx.record_with_id(original.id.clone(), &fx.owner("other"), "tak", at(5));
    duplicate.name = "impostor".to_owned();
    duplicate.state = KeyState::Disabled;
    duplicate.expires_at = Some(at(10));
    duplicate.digest = TokenHasher::sha256().digest("another secret");
    let event = issue_event(&duplicate);
    expect_already_exists(
        store.insert_key(&duplicate, None, at(5), &event).await,
        "insert of an existing id",
    );
    expect_already_exists(
        store.insert_key(&duplicate, Some(100), at(5), &event).await,
        "insert of an existing id under a limit",
    );
    assert_stored(store, &original).await;

    let other_case = fx.record_with_id(swap_case(&original.id), &owner, "mt", at(6));
    if let Err(e) = store
        .insert_key(&other_case, None, at(6), &issue_event(&other_case))
        .await
    {
        panic!(
            "key ids are case-sensitive: inserting {} next to {} failed: {e:?}",
            other_case.id, original.id
        );
    }
    assert_stored(store, &other_case).await;
    assert_stored(store, &original).await;
}

/// The same id with every ASCII letter's case swapped.
fn swap_case(id: &KeyId) -> KeyId {
    let swapped: String = id
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    KeyId::parse(&swapped).expect("valid key id")
}
