//! Invariant 5 of the [`KeyStore`] contract, **rotation is atomic**: the
//! successor is inserted and the predecessor linked and shortened all or
//! nothing.

use super::support::rotate_event;
use crate::key::Metadata;
use crate::lifecycle::KeyState;
use crate::permission::PermissionSet;
use crate::store::KeyStore;
use crate::testkit::fixtures::{
    Fixture, assert_stored, at, change_state, expect_already_exists, expect_conflict, insert,
    insert_all, plus_micros,
};

/// Rotation inserts the successor, links the predecessor to it and lowers (never raises) the predecessor's expiry, changing nothing else.
pub async fn rotate_key_links_and_shortens_predecessor(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");

    // Expires later than the overlap: lowered to the given time.
    let mut old = fx.record(&owner, "mt", at(0));
    old.name = "rotated 'key' ü".to_owned();
    old.expires_at = Some(at(30 * 86_400));
    old.scopes = PermissionSet::parse(["publish"]).expect("valid permission");
    old.metadata = Metadata::from([("team".to_owned(), "core".to_owned())]);
    insert(store, &old).await;
    let mut new = fx.record(&owner, "mt", at(100));
    new.name = old.name.clone();
    new.scopes = old.scopes.clone();
    new.metadata = old.metadata.clone();
    new.expires_at = Some(at(100 + 30 * 86_400));
    new.rotated_from = Some(old.id.clone());
    let overlap_end = plus_micros(at(100 + 86_400), 7);
    store
        .rotate_key(
            &old.id,
            KeyState::Active,
            overlap_end,
            &new,
            &rotate_event(&old, &new),
        )
        .await
        .expect("rotate_key of an active, unrotated key");
    old.rotated_to = Some(new.id.clone());
    old.expires_at = Some(overlap_end);
    assert_stored(store, &old).await;
    assert_stored(store, &new).await;

    // Expires sooner than the overlap: keeps its own expiry.
    let mut soon = fx.record(&owner, "mt", at(0));
    soon.expires_at = Some(at(3600));
    insert(store, &soon).await;
    let mut soon_next = fx.record(&owner, "mt", at(100));
    soon_next.rotated_from = Some(soon.id.clone());
    store
        .rotate_key(
            &soon.id,
            KeyState::Active,
            at(86_400),
            &soon_next,
            &rotate_event(&soon, &soon_next),
        )
        .await
        .expect("rotate_key of a key expiring before the overlap ends");
    soon.rotated_to = Some(soon_next.id.clone());
    assert_stored(store, &soon).await;
    assert_stored(store, &soon_next).await;

    // Never expires: now expires at the given time.
    let mut forever = fx.record(&owner, "mt", at(0));
    insert(store, &forever).await;
    let mut forever_next = fx.record(&owner, "mt", at(100));
    forever_next.rotated_from = Some(forever.id.clone());
    store
        .rotate_key(
            &forever.id,
            KeyState::Active,
            at(200),
            &forever_next,
            &rotate_event(&forever, &forever_next),
        )
        .await
        .expect("rotate_key of a key that never expires");
    forever.rotated_to = Some(forever_next.id.clone());
    forever.expires_at = Some(at(200));
    assert_stored(store, &forever).await;
    assert_stored(store, &forever_next).await;
}

/// Rotation fails with `Conflict` and changes nothing when the predecessor was already rotated or is not in the expected state.
pub async fn rotate_key_refuses_stale_or_repeated_rotation(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut old = fx.record(&owner, "mt", at(0));
    old.expires_at = Some(at(10_000));
    insert(store, &old).await;
    let mut first = fx.record(&owner, "mt", at(10));
    first.rotated_from = Some(old.id.clone());
    store
        .rotate_key(
            &old.id,
            KeyState::Active,
            at(500),
            &first,
            &rotate_event(&old, &first),
        )
        .await
        .expect("first rotation");
    old.rotated_to = Some(first.id.clone());
    old.expires_at = Some(at(500));

    let mut second = fx.record(&owner, "mt", at(20));
    second.rotated_from = Some(old.id.clone());
    let result = store
        .rotate_key(
            &old.id,
            KeyState::Active,
            at(100),
            &second,
            &rotate_event(&old, &second),
        )
        .await;
    assert!(
        matches!(result, Err(crate::Error::Conflict { .. })),
        "rotating an already rotated key must be a Conflict, got {result:?}"
    );
    assert!(
        store.get_key(&second.id).await.expect("get_key").is_none(),
        "a refused rotation must not insert the successor"
    );
    assert_stored(store, &old).await;

    // Wrong expected state.
    let mut disabled = fx.record(&owner, "mt", at(0));
    disabled.state = KeyState::Disabled;
    disabled.expires_at = Some(at(10_000));
    insert(store, &disabled).await;
    let mut next = fx.record(&owner, "mt", at(30));
    next.rotated_from = Some(disabled.id.clone());
    let result = store
        .rotate_key(
            &disabled.id,
            KeyState::Active,
            at(100),
            &next,
            &rotate_event(&disabled, &next),
        )
        .await;
    expect_conflict(
        result,
        KeyState::Active,
        KeyState::Disabled,
        "rotating a key that is not in the expected state",
    );
    assert!(
        store.get_key(&next.id).await.expect("get_key").is_none(),
        "a refused rotation must not insert the successor"
    );
    assert_stored(store, &disabled).await;

    // Revoked between read and rotate.
    let mut revoked = fx.record(&owner, "mt", at(0));
    insert(store, &revoked).await;
    change_state(store, &revoked, KeyState::Active, KeyState::Revoked, at(40)).await;
    revoked.state = KeyState::Revoked;
    revoked.revoked_at = Some(at(40));
    let mut next = fx.record(&owner, "mt", at(50));
    next.rotated_from = Some(revoked.id.clone());
    let result = store
        .rotate_key(
            &revoked.id,
            KeyState::Active,
            at(100),
            &next,
            &rotate_event(&revoked, &next),
        )
        .await;
    expect_conflict(
        result,
        KeyState::Active,
        KeyState::Revoked,
        "rotating a key revoked meanwhile",
    );
    assert!(
        store.get_key(&next.id).await.expect("get_key").is_none(),
        "a refused rotation must not insert the successor"
    );
    assert_stored(store, &revoked).await;

    // Unknown predecessor: an error, and no successor.
    let ghost = fx.record(&owner, "mt", at(0));
    let mut next = fx.record(&owner, "mt", at(60));
    next.rotated_from = Some(ghost.id.clone());
    let result = store
        .rotate_key(
            &ghost.id,
            KeyState::Active,
            at(100),
            &next,
            &rotate_event(&ghost, &next),
        )
        .await;
    assert!(
        matches!(
            result,
            Err(crate::Error::NotFound | crate::Error::Conflict { .. })
        ),
        "rotating an unknown key must fail with NotFound (or Conflict), got {result:?}"
    );
    assert!(
        store.get_key(&next.id).await.expect("get_key").is_none(),
        "a refused rotation must not insert the successor"
    );
}

/// A rotation whose successor id already exists fails with `AlreadyExists` and changes nothing: the predecessor is not marked rotated.
pub async fn rotate_key_with_duplicate_successor_changes_nothing(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut old = fx.record(&owner, "mt", at(0));
    old.expires_at = Some(at(10_000));
    let existing = fx.record(&fx.owner("other"), "tak", at(1));
    insert_all(store, &[old.clone(), existing.clone()]).await;

    let mut clash = fx.record_with_id(existing.id.clone(), &owner, "mt", at(10));
    clash.rotated_from = Some(old.id.clone());
    expect_already_exists(
        store
            .rotate_key(
                &old.id,
                KeyState::Active,
                at(100),
                &clash,
                &rotate_event(&old, &clash),
            )
            .await,
        "rotating onto an existing successor id",
    );
    assert_stored(store, &old).await;
    assert_stored(store, &existing).await;

    // The predecessor can still be rotated afterwards (the service retries
    // with a fresh id).
    let mut retry = fx.record(&owner, "mt", at(10));
    retry.rotated_from = Some(old.id.clone());
    store
        .rotate_key(
            &old.id,
            KeyState::Active,
            at(100),
            &retry,
            &rotate_event(&old, &retry),
        )
        .await
        .expect("rotation with a fresh successor id after a clash");
    old.rotated_to = Some(retry.id.clone());
    old.expires_at = Some(at(100));
    assert_stored(store, &old).await;
    assert_stored(store, &retry).await;
}
