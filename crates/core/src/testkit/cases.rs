//! The conformance cases: one `async fn` per invariant of the
//! [`KeyStore`] contract.
//!
//! Each case takes a store (empty or shared: every id, owner and role name a
//! case writes carries a random tag, and global queries look only at
//! the case's own data), panics with a message naming the broken invariant,
//! and returns normally when the store conforms. Run them all with
//! [`conformance_tests!`](crate::conformance_tests).
//!
//! Adding a case: write a `pub async fn` here with a one-line doc comment
//! saying what it protects, then add its name to the list in
//! `conformance_tests!` (`testkit/macros.rs`).

use super::fixtures::{
    ACTOR, Fixture, assert_same_key, assert_stored, at, change_state, expect_already_exists,
    expect_conflict, expect_limit_reached, expect_not_found, expect_role_changed, get, ids, insert,
    insert_all, issue_event, key_event, list_all, newest_first, plus_micros, random_u32,
    state_event,
};
use crate::audit::{AuditAction, AuditEvent, AuditQuery};
use crate::error::Error;
use crate::key::{KeyId, KeyRecord, Metadata, Owner, Role, UsageRecord};
use crate::lifecycle::{KeyState, Status};
use crate::permission::PermissionSet;
use crate::secret::{HashAlgorithm, TokenDigest, TokenHasher};
use crate::store::{Cursor, KeyStore, ListQuery, MAX_PAGE_SIZE};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::{join, join_all};

// ------------------------------------------------------------- insert & get

/// Every field of a key, including awkward strings, big values, binary digests and microsecond timestamps, reads back exactly as inserted.
pub async fn insert_then_get_round_trips_every_field(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user:o'brien \"q\" 100%_ünï 🔑");

    let mut full = fx.record(&owner, "mm_pat", plus_micros(at(0), 123_456));
    full.name = "Robert'); DROP TABLE keys;-- \"100%\" a_b ünïcødé 🔑 back\\slash".to_owned();
    full.preview = "mm_pat_bUiB…".to_owned();
    full.scopes = PermissionSet::parse(["billing.read", "billing.*", "publish", "files"])
        .expect("valid permissions");
    full.roles = [fx.role("admin"), fx.role("reader")].into_iter().collect();
    full.inherits_owner = true;
    full.metadata = Metadata::from([
        ("team".to_owned(), "it's 100% \"quoted\"".to_owned()),
        ("ünï 🔑".to_owned(), "cødé ✓".to_owned()),
        ("like".to_owned(), "%_\\[x]*?".to_owned()),
        ("sql".to_owned(), "'; DROP TABLE keys; --".to_owned()),
        ("empty".to_owned(), String::new()),
        ("json".to_owned(), r#"{"a": [1, "b"]}"#.to_owned()),
    ]);
    full.expires_at = Some(plus_micros(at(90 * 86_400), 654_321));
    full.last_used_at = Some(plus_micros(at(10), 1));
    full.created_by = "session:user:o'brien".to_owned();

    // A 10 kB name, the most metadata entries allowed and a 16 KiB value, a
    // disabled key that never expires and an HMAC digest.
    let mut big = fx.record(&owner, "tak", plus_micros(at(-86_400), 999_999));
    big.name = "ünï %_ 'x' ".repeat(800);
    assert!(big.name.len() > 10_000, "fixture: a 10 kB name");
    big.state = KeyState::Disabled;
    big.digest = TokenHasher::hmac_sha256(&[7u8; 32])
        .expect("valid pepper")
        .digest("secret");
    big.metadata = (0..crate::limits::MAX_METADATA_ENTRIES)
        .map(|i| (format!("k{i:02}"), format!("v{i}")))
        .collect();
    big.metadata.insert(
        "k00".to_owned(),
        "é".repeat(crate::limits::MAX_METADATA_VALUE_LEN / 2),
    );

    // Digest bytes that trip text storage: NUL, 0xff, high bit everywhere.
    let mut binary = fx.record(&owner, "mt", at(1));
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = [0x00, 0xff, 0x80, 0x7f, 0x5c, 0x27][i % 6];
    }
    binary.digest = TokenDigest::from_stored(HashAlgorithm::Sha256, bytes);

    for key in [&full, &big, &binary] {
        store
            .insert_key(key, Some(10), key.created_at, &issue_event(key))
            .await
            .unwrap_or_else(|e| panic!("insert_key({}) failed: {e:?}", key.id));
    }
    for key in [&full, &big, &binary] {
        assert_stored(store, key).await;
    }
    // The digest comparison above must be able to fail.
    let stored = get(store, &binary.id).await;
    assert!(
        !stored.digest.matches(&full.digest),
        "distinct digests differ"
    );
    assert_eq!(stored.digest.as_bytes(), &bytes, "digest bytes");
}

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

// -------------------------------------------------------------------- limits

/// The live-key limit counts active and disabled keys of one owner and kind, never revoked or expired ones.
pub async fn limit_counts_live_keys_per_owner_and_kind(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("account");
    let now = at(0);
    let try_insert = |key: KeyRecord, now: DateTime<Utc>| async move {
        let result = store
            .insert_key(&key, Some(3), now, &issue_event(&key))
            .await;
        (key, result)
    };

    let mut live = Vec::new();
    for i in 0..3 {
        let mut key = fx.record(&owner, "mt", at(i - 10));
        if i == 2 {
            key.expires_at = Some(at(100));
        }
        let (key, result) = try_insert(key, now).await;
        result.unwrap_or_else(|e| panic!("insert {} of 3 under limit 3 failed: {e:?}", i + 1));
        live.push(key);
    }
    let (fourth, result) = try_insert(fx.record(&owner, "mt", now), now).await;
    expect_limit_reached(result, 3, "the 4th live key under limit 3");
    assert!(
        store.get_key(&fourth.id).await.expect("get_key").is_none(),
        "a refused insert must not store the key"
    );

    // Per owner and per kind.
    let (_, result) = try_insert(fx.record(&owner, "tak", now), now).await;
    result.expect("the limit is per kind: another kind of the same owner is not limited");
    let (_, result) = try_insert(fx.record(&fx.owner("other"), "mt", now), now).await;
    result.expect("the limit is per owner: another owner is not limited");
    let (_, result) = try_insert(fx.record(&owner, "mt", now), now).await;
    expect_limit_reached(
        result,
        3,
        "other owners' and kinds' keys must not free a slot",
    );

    // No limit, and a limit of zero.
    let extra = fx.record(&owner, "mt", now);
    store
        .insert_key(&extra, None, now, &issue_event(&extra))
        .await
        .expect("limit None inserts regardless of live keys");
    change_state(store, &extra, KeyState::Active, KeyState::Revoked, now).await;
    let zero = fx.record(&fx.owner("zero"), "mt", now);
    expect_limit_reached(
        store
            .insert_key(&zero, Some(0), now, &issue_event(&zero))
            .await,
        0,
        "limit 0",
    );

    // Disabled keys are live: they can be enabled again.
    change_state(store, &live[0], KeyState::Active, KeyState::Disabled, at(1)).await;
    let (_, result) = try_insert(fx.record(&owner, "mt", at(1)), at(1)).await;
    expect_limit_reached(result, 3, "a disabled key still counts against the limit");

    // Revoked keys are not.
    change_state(store, &live[1], KeyState::Active, KeyState::Revoked, at(2)).await;
    let (_, result) = try_insert(fx.record(&owner, "mt", at(2)), at(2)).await;
    result.expect("revoking a key frees its slot");
    let (_, result) = try_insert(fx.record(&owner, "mt", at(3)), at(3)).await;
    expect_limit_reached(result, 3, "the freed slot is taken again");

    // Expired keys are not: live means `expires_at` after `now`.
    let just_before = plus_micros(at(100), -1);
    let (_, result) = try_insert(fx.record(&owner, "mt", just_before), just_before).await;
    expect_limit_reached(result, 3, "a key expiring 1 µs after `now` is still live");
    let (_, result) = try_insert(fx.record(&owner, "mt", at(100)), at(100)).await;
    result.expect("a key whose expires_at equals `now` is expired and frees its slot");
    let (_, result) = try_insert(fx.record(&owner, "mt", at(101)), at(101)).await;
    expect_limit_reached(result, 3, "the slot freed by expiry is taken again");
}

/// Twenty concurrent inserts against a limit of 3 leave exactly 3 keys; the other 17 fail with `LimitReached` and write nothing.
pub async fn limit_holds_under_concurrent_inserts(store: &dyn KeyStore) {
    let fx = Fixture::new();
    for round in 0..5 {
        let owner = fx.owner(&format!("account{round}"));
        let now = at(100);
        let keys: Vec<KeyRecord> = (0..20).map(|i| fx.record(&owner, "mt", at(i))).collect();
        let events: Vec<AuditEvent> = keys.iter().map(issue_event).collect();
        let results = join_all(
            keys.iter()
                .zip(&events)
                .map(|(key, event)| store.insert_key(key, Some(3), now, event)),
        )
        .await;

        let mut inserted = Vec::new();
        for (key, result) in keys.iter().zip(results) {
            match result {
                Ok(()) => inserted.push(key),
                Err(crate::Error::LimitReached { limit: 3 }) => {}
                Err(e) => panic!(
                    "round {round}: concurrent insert failed with {e:?}, expected Ok or LimitReached {{ limit: 3 }}"
                ),
            }
        }
        assert_eq!(
            inserted.len(),
            3,
            "round {round}: 20 concurrent inserts under limit 3 must leave exactly 3 keys"
        );
        let listed = list_all(store, ListQuery::new(owner.clone(), now, 100)).await;
        assert_eq!(
            ids(&listed),
            newest_first(&inserted),
            "round {round}: the listed keys are exactly the inserted ones"
        );
        let audit = store
            .list_audit(&AuditQuery::newest(100).owner(&owner))
            .await
            .expect("list_audit");
        assert_eq!(
            audit.len(),
            3,
            "round {round}: only the 3 successful inserts may append an audit event"
        );
    }
}

// ------------------------------------------------------------- transitions

/// `set_state` changes the state only from the expected one (else `Conflict` with the actual state), `NotFound` for unknown ids, and stamps `revoked_at` on revocation.
pub async fn set_state_is_compare_and_set(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut key = fx.record(&owner, "mt", at(0));
    key.expires_at = Some(at(1000));
    insert(store, &key).await;

    change_state(store, &key, KeyState::Active, KeyState::Disabled, at(1)).await;
    key.state = KeyState::Disabled;
    assert_stored(store, &key).await;

    let stale = store
        .set_state(
            &key.id,
            KeyState::Active,
            KeyState::Disabled,
            at(2),
            &state_event(&key, KeyState::Disabled, at(2)),
        )
        .await;
    expect_conflict(
        stale,
        KeyState::Active,
        KeyState::Disabled,
        "set_state with a stale `from`",
    );
    let stale = store
        .set_state(
            &key.id,
            KeyState::Active,
            KeyState::Revoked,
            at(2),
            &state_event(&key, KeyState::Revoked, at(2)),
        )
        .await;
    expect_conflict(
        stale,
        KeyState::Active,
        KeyState::Disabled,
        "revoke with a stale `from`",
    );
    assert_stored(store, &key).await;

    change_state(store, &key, KeyState::Disabled, KeyState::Active, at(3)).await;
    key.state = KeyState::Active;
    assert_stored(store, &key).await;

    let unknown = fx.record(&owner, "mt", at(0));
    expect_not_found(
        store
            .set_state(
                &unknown.id,
                KeyState::Active,
                KeyState::Disabled,
                at(4),
                &state_event(&unknown, KeyState::Disabled, at(4)),
            )
            .await,
        "set_state of an unknown id",
    );
    assert!(
        store.get_key(&unknown.id).await.expect("get_key").is_none(),
        "set_state must not create a key"
    );

    let revoked_at = plus_micros(at(5), 42);
    change_state(store, &key, KeyState::Active, KeyState::Revoked, revoked_at).await;
    key.state = KeyState::Revoked;
    key.revoked_at = Some(revoked_at);
    assert_stored(store, &key).await;

    // Revoking from disabled stamps the time too.
    let mut disabled = fx.record(&owner, "mt", at(0));
    disabled.state = KeyState::Disabled;
    insert(store, &disabled).await;
    change_state(
        store,
        &disabled,
        KeyState::Disabled,
        KeyState::Revoked,
        at(6),
    )
    .await;
    disabled.state = KeyState::Revoked;
    disabled.revoked_at = Some(at(6));
    assert_stored(store, &disabled).await;
}

/// A revoked key never changes state again: every `set_state` from `Revoked` (or a stale `from`) is a `Conflict` and `revoked_at` stays put.
pub async fn revoked_keys_never_change_state(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut key = fx.record(&owner, "mt", at(0));
    insert(store, &key).await;
    change_state(store, &key, KeyState::Active, KeyState::Revoked, at(1)).await;
    key.state = KeyState::Revoked;
    key.revoked_at = Some(at(1));

    for to in [KeyState::Active, KeyState::Disabled, KeyState::Revoked] {
        let result = store
            .set_state(
                &key.id,
                KeyState::Revoked,
                to,
                at(2),
                &state_event(&key, to, at(2)),
            )
            .await;
        expect_conflict(
            result,
            KeyState::Revoked,
            KeyState::Revoked,
            &format!("set_state(Revoked -> {to})"),
        );
        assert_stored(store, &key).await;
    }
    for from in [KeyState::Active, KeyState::Disabled] {
        for to in [KeyState::Active, KeyState::Disabled, KeyState::Revoked] {
            let result = store
                .set_state(&key.id, from, to, at(3), &state_event(&key, to, at(3)))
                .await;
            expect_conflict(
                result,
                from,
                KeyState::Revoked,
                &format!("set_state({from} -> {to}) of a revoked key"),
            );
        }
    }
    assert_stored(store, &key).await;
}

/// Racing a revoke against an enable of the same disabled key: exactly one wins, and a revoke that won is final.
pub async fn revoke_and_enable_race_has_one_winner(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let (mut revokes_won, mut enables_won) = (0, 0);
    for round in 0..20 {
        let mut key = fx.record(&owner, "mt", at(round));
        key.state = KeyState::Disabled;
        insert(store, &key).await;

        let revoked_at = at(1000 + round);
        let revoke_event = state_event(&key, KeyState::Revoked, revoked_at);
        let enable_event = state_event(&key, KeyState::Active, revoked_at);
        let revoke = store.set_state(
            &key.id,
            KeyState::Disabled,
            KeyState::Revoked,
            revoked_at,
            &revoke_event,
        );
        let enable = store.set_state(
            &key.id,
            KeyState::Disabled,
            KeyState::Active,
            revoked_at,
            &enable_event,
        );
        // Alternate which call is polled first.
        let (revoked, enabled) = if round % 2 == 0 {
            join(revoke, enable).await
        } else {
            let (enabled, revoked) = join(enable, revoke).await;
            (revoked, enabled)
        };

        match (revoked.is_ok(), enabled.is_ok()) {
            (true, false) => {
                revokes_won += 1;
                expect_conflict(
                    enabled,
                    KeyState::Disabled,
                    KeyState::Revoked,
                    &format!("round {round}: the enable that lost to a revoke"),
                );
                key.state = KeyState::Revoked;
                key.revoked_at = Some(revoked_at);
                let again = store
                    .set_state(
                        &key.id,
                        KeyState::Revoked,
                        KeyState::Active,
                        at(2000),
                        &state_event(&key, KeyState::Active, at(2000)),
                    )
                    .await;
                expect_conflict(
                    again,
                    KeyState::Revoked,
                    KeyState::Revoked,
                    &format!("round {round}: enabling after the revoke won"),
                );
            }
            (false, true) => {
                enables_won += 1;
                expect_conflict(
                    revoked,
                    KeyState::Disabled,
                    KeyState::Active,
                    &format!("round {round}: the revoke that lost to an enable"),
                );
                key.state = KeyState::Active;
            }
            _ => panic!(
                "round {round}: exactly one of a racing revoke and enable must succeed, got revoke {revoked:?} and enable {enabled:?}"
            ),
        }
        assert_stored(store, &key).await;
        let events = store
            .list_audit(&AuditQuery::newest(10).key(&key.id))
            .await
            .expect("list_audit");
        assert_eq!(
            events.len(),
            2,
            "round {round}: the issue and the winning transition are audited, the losing one is not"
        );
    }
    assert_eq!(revokes_won + enables_won, 20);
}

/// `revoke_key` revokes an active or a disabled key unconditionally (`Ok(true)`, one event, `revoked_at` stamped), is idempotent (`Ok(false)`, nothing written, no second event), is `NotFound` for unknown ids, and a revoked key stays revoked under `set_state`.
pub async fn revoke_key_is_unconditional_and_idempotent(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let key_audit = |id: &KeyId| {
        let query = AuditQuery::newest(10).key(id);
        async move { store.list_audit(&query).await.expect("list_audit") }
    };

    let mut active = fx.record(&owner, "mt", at(0));
    active.expires_at = Some(at(1000));
    insert(store, &active).await;
    let revoked_at = plus_micros(at(1), 42);
    let event = state_event(&active, KeyState::Revoked, revoked_at);
    let revoked = store
        .revoke_key(&active.id, revoked_at, &event)
        .await
        .expect("revoke_key of an active key");
    assert!(revoked, "revoke_key of an active key returns Ok(true)");
    active.state = KeyState::Revoked;
    active.revoked_at = Some(revoked_at);
    assert_stored(store, &active).await;
    assert_eq!(
        key_audit(&active.id).await,
        [event.clone(), issue_event(&active)],
        "the revoke appended its event"
    );

    let mut disabled = fx.record(&owner, "mt", at(0));
    disabled.state = KeyState::Disabled;
    insert(store, &disabled).await;
    let event = state_event(&disabled, KeyState::Revoked, at(2));
    assert!(
        store
            .revoke_key(&disabled.id, at(2), &event)
            .await
            .expect("revoke_key of a disabled key"),
        "revoke_key of a disabled key returns Ok(true)"
    );
    disabled.state = KeyState::Revoked;
    disabled.revoked_at = Some(at(2));
    assert_stored(store, &disabled).await;

    // Again: nothing written, revoked_at kept, no second event.
    for key in [&active, &disabled] {
        let again = store
            .revoke_key(&key.id, at(3), &state_event(key, KeyState::Revoked, at(3)))
            .await
            .expect("revoke_key of a revoked key");
        assert!(!again, "revoke_key of a revoked key returns Ok(false)");
        assert_stored(store, key).await;
        assert_eq!(
            key_audit(&key.id).await.len(),
            2,
            "an Ok(false) revoke appends no event"
        );
    }

    let unknown = fx.record(&owner, "mt", at(0));
    expect_not_found(
        store
            .revoke_key(
                &unknown.id,
                at(4),
                &state_event(&unknown, KeyState::Revoked, at(4)),
            )
            .await,
        "revoke_key of an unknown id",
    );
    assert!(
        store.get_key(&unknown.id).await.expect("get_key").is_none(),
        "revoke_key must not create a key"
    );
    assert!(
        key_audit(&unknown.id).await.is_empty(),
        "a NotFound revoke appends no event"
    );

    // A revoked key stays revoked, whatever set_state is asked.
    for from in [KeyState::Active, KeyState::Disabled, KeyState::Revoked] {
        for to in [KeyState::Active, KeyState::Disabled] {
            let result = store
                .set_state(
                    &active.id,
                    from,
                    to,
                    at(5),
                    &state_event(&active, to, at(5)),
                )
                .await;
            expect_conflict(
                result,
                from,
                KeyState::Revoked,
                &format!("set_state({from} -> {to}) after revoke_key"),
            );
        }
    }
    assert_stored(store, &active).await;
}

/// `revoke_key` never loses a race: in 40 of 40 rounds it returns `Ok(true)` while three tasks flip the key between active and disabled, and the key ends revoked with one revoke event.
pub async fn revoke_key_wins_against_flapping_state_changes(store: &dyn KeyStore) {
    const ROUNDS: i64 = 40;
    const FLAPPERS: usize = 3;
    /// Each flapper stops after this many attempts even if the revoke never
    /// lands, so a broken store fails the case instead of hanging it.
    const MAX_FLIPS: usize = 200;
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut wins = 0;
    for round in 0..ROUNDS {
        let mut key = fx.record(&owner, "mt", at(round));
        insert(store, &key).await;
        let revoked_at = plus_micros(at(1000 + round), 7);
        let done = std::sync::atomic::AtomicBool::new(false);
        let flips = std::sync::atomic::AtomicUsize::new(0);
        let flapper = |n: usize| {
            let (key, done, flips) = (&key, &done, &flips);
            async move {
                // Each flapper starts from a different belief, so some of
                // their compare-and-sets lose from the start.
                let mut state = if n.is_multiple_of(2) {
                    KeyState::Active
                } else {
                    KeyState::Disabled
                };
                for _ in 0..MAX_FLIPS {
                    if done.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    let to = if state == KeyState::Active {
                        KeyState::Disabled
                    } else {
                        KeyState::Active
                    };
                    let event = state_event(key, to, at(1000 + round));
                    match store
                        .set_state(&key.id, state, to, at(1000 + round), &event)
                        .await
                    {
                        Ok(()) => {
                            flips.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            state = to;
                        }
                        Err(Error::Conflict {
                            actual: KeyState::Revoked,
                            ..
                        }) => return,
                        Err(Error::Conflict { actual, .. }) => state = actual,
                        Err(e) => panic!("round {round}: set_state failed: {e:?}"),
                    }
                    tokio::task::yield_now().await;
                }
            }
        };
        let revoke = async {
            // Let the flappers get going first.
            for _ in 0..FLAPPERS {
                tokio::task::yield_now().await;
            }
            let event = state_event(&key, KeyState::Revoked, revoked_at);
            let result = store.revoke_key(&key.id, revoked_at, &event).await;
            done.store(true, std::sync::atomic::Ordering::Release);
            result
        };
        let (revoked, _) = join(revoke, join_all((0..FLAPPERS).map(flapper))).await;
        match revoked {
            Ok(true) => wins += 1,
            other => panic!(
                "round {round}: revoke_key against flapping set_state must return Ok(true), got {other:?}"
            ),
        }
        let stored = get(store, &key.id).await;
        assert_eq!(
            stored.state,
            KeyState::Revoked,
            "round {round}: ends revoked"
        );
        assert_eq!(
            stored.revoked_at,
            Some(revoked_at),
            "round {round}: revoked_at is the revoke's time"
        );
        key.state = KeyState::Revoked;
        key.revoked_at = Some(revoked_at);
        let events = store
            .list_audit(&AuditQuery::newest(MAX_PAGE_SIZE).key(&key.id))
            .await
            .expect("list_audit");
        let revokes = events
            .iter()
            .filter(|e| e.action == AuditAction::Revoke)
            .count();
        assert_eq!(revokes, 1, "round {round}: exactly one revoke event");
        assert_eq!(
            events.len(),
            2 + flips.load(std::sync::atomic::Ordering::Relaxed),
            "round {round}: the issue, every successful flip and the revoke are audited"
        );
    }
    assert_eq!(wins, ROUNDS, "revoke_key won {wins} of {ROUNDS} rounds");
}

// ---------------------------------------------------------------- rotation

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

fn rotate_event(old: &KeyRecord, new: &KeyRecord) -> AuditEvent {
    key_event(old, AuditAction::Rotate, new.created_at).with_detail(format!("successor {}", new.id))
}

// ------------------------------------------------------------------- usage

/// `record_usage` only moves `last_used_at` forward and touches nothing else.
pub async fn record_usage_is_forward_only(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut key = fx.record(&owner, "mt", at(0));
    key.expires_at = Some(at(10_000));
    insert(store, &key).await;
    let usage = |secs: i64, micros: i64| UsageRecord {
        key_id: key.id.clone(),
        used_at: plus_micros(at(secs), micros),
    };

    let steps = [
        (usage(10, 5), usage(10, 5), "first use"),
        (
            usage(5, 0),
            usage(10, 5),
            "an older use does not overwrite a newer one",
        ),
        (usage(10, 4), usage(10, 5), "1 µs older does not overwrite"),
        (usage(10, 5), usage(10, 5), "the same time again"),
        (usage(10, 6), usage(10, 6), "1 µs newer moves forward"),
        (usage(20, 0), usage(20, 0), "a newer use moves forward"),
    ];
    for (record, expected, what) in steps {
        store
            .record_usage(std::slice::from_ref(&record))
            .await
            .expect("record_usage");
        key.last_used_at = Some(expected.used_at);
        let stored = get(store, &key.id).await;
        assert_eq!(stored.last_used_at, key.last_used_at, "{what}");
        assert_same_key(&stored, &key);
    }
    store
        .record_usage(&[])
        .await
        .expect("an empty batch is fine");
    assert_stored(store, &key).await;
}

/// One `record_usage` batch updates many keys at once, forward-only per key, and skips unknown ids without failing.
pub async fn record_usage_applies_a_whole_batch(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut keys: Vec<KeyRecord> = (0..60).map(|i| fx.record(&owner, "mt", at(i))).collect();
    insert_all(store, &keys).await;

    // Every third key was already used later than the batch says.
    let earlier: Vec<UsageRecord> = keys
        .iter()
        .step_by(3)
        .map(|k| UsageRecord {
            key_id: k.id.clone(),
            used_at: at(5000),
        })
        .collect();
    store.record_usage(&earlier).await.expect("record_usage");

    let mut batch = Vec::new();
    for (i, key) in keys.iter_mut().enumerate() {
        let used_at = plus_micros(at(1000), i64::try_from(i).expect("small index"));
        batch.push(UsageRecord {
            key_id: key.id.clone(),
            used_at,
        });
        key.last_used_at = Some(if i % 3 == 0 { at(5000) } else { used_at });
        if i % 10 == 0 {
            batch.push(UsageRecord {
                key_id: fx.id(),
                used_at,
            });
        }
    }
    store
        .record_usage(&batch)
        .await
        .expect("a batch with unknown ids succeeds");
    for key in &keys {
        assert_stored(store, key).await;
    }
    let listed = list_all(store, ListQuery::new(owner.clone(), at(0), 1000)).await;
    assert_eq!(
        listed.len(),
        keys.len(),
        "record_usage must not create keys"
    );
}

// ---------------------------------------------------------------- listing

/// `list_keys` returns only the given owner's keys, newest first, ties broken by id descending in byte order.
pub async fn list_keys_is_newest_first_and_per_owner(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut keys: Vec<KeyRecord> = [10, 30, 20, 30, 5, 25]
        .into_iter()
        .map(|secs| fx.record(&owner, "mt", at(secs)))
        .collect();
    // Ids that differ only in case sort by bytes: '0' < 'A' < 'B' < 'Z' < 'a' < 'b'.
    for suffix in ["a", "B", "0", "b", "Z", "A"] {
        keys.push(fx.record_with_id(fx.id_with("t", suffix), &owner, "mt", at(40)));
    }
    let mut foreign = vec![
        fx.record(&fx.owner("other"), "mt", at(50)),
        fx.record(&fx.owner("user2"), "mt", at(15)),
    ];
    // Owners are compared exactly, not case-insensitively or by prefix.
    let upper = crate::Owner::new(&owner.as_str().to_uppercase()).expect("valid owner");
    foreign.push(fx.record(&upper, "mt", at(45)));
    let prefix =
        crate::Owner::new(&owner.as_str()[..owner.as_str().len() - 1]).expect("valid owner");
    foreign.push(fx.record(&prefix, "mt", at(45)));
    // Insert out of order so insertion order cannot pass for list order.
    insert_all(store, &foreign[..2]).await;
    for key in keys.iter().rev() {
        insert(store, key).await;
    }
    insert_all(store, &foreign[2..]).await;

    let page = store
        .list_keys(&ListQuery::new(owner.clone(), at(100), 100))
        .await
        .expect("list_keys");
    assert!(
        page.next.is_none(),
        "a page holding every key is the last page"
    );
    let tie: Vec<String> = page
        .items
        .iter()
        .filter(|k| k.created_at == at(40))
        .map(|k| k.id.as_str()[k.id.as_str().len() - 1..].to_owned())
        .collect();
    assert_eq!(
        tie,
        ["b", "a", "Z", "B", "A", "0"],
        "equal created_at: id descending by bytes"
    );
    assert_eq!(
        ids(&page.items),
        newest_first(&keys.iter().collect::<Vec<_>>()),
        "newest first, then id descending, only this owner's keys"
    );
    for listed in &page.items {
        let key = keys
            .iter()
            .find(|k| k.id == listed.id)
            .expect("listed key was inserted");
        assert_same_key(listed, key);
    }
}

/// The name filter is a case-insensitive substring match that takes `%`, `_`, `\`, quotes and brackets literally.
pub async fn list_keys_name_filter_is_literal_and_case_insensitive(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let names = [
        "100%",
        "1000",
        "a_b",
        "axb",
        "Hello World",
        "say HELLO",
        "it's",
        "back\\slash",
        "brackets [x]",
        "star*",
        "q?",
    ];
    let keys: Vec<KeyRecord> = names
        .iter()
        .zip(0..)
        .map(|(name, i)| {
            let mut key = fx.record(&owner, "mt", at(i));
            (*name).clone_into(&mut key.name);
            key
        })
        .collect();
    insert_all(store, &keys).await;
    let mut foreign = fx.record(&fx.owner("other"), "mt", at(0));
    foreign.name = "100% a_b hello".to_owned();
    insert(store, &foreign).await;

    let cases: &[(&str, &[&str])] = &[
        ("%", &["100%"]),
        ("0%", &["100%"]),
        ("10", &["100%", "1000"]),
        ("_", &["a_b"]),
        ("a_b", &["a_b"]),
        ("A_B", &["a_b"]),
        ("hello", &["Hello World", "say HELLO"]),
        ("lo w", &["Hello World"]),
        ("'", &["it's"]),
        ("\\", &["back\\slash"]),
        ("k\\s", &["back\\slash"]),
        ("[x]", &["brackets [x]"]),
        ("[", &["brackets [x]"]),
        ("*", &["star*"]),
        ("?", &["q?"]),
        ("x", &["axb", "brackets [x]"]),
        ("", &names),
        ("zzz", &[]),
    ];
    for (needle, expected) in cases {
        let mut query = ListQuery::new(owner.clone(), at(100), 100);
        query.name_contains = Some((*needle).to_owned());
        let listed = list_all(store, query).await;
        let want: Vec<&KeyRecord> = keys
            .iter()
            .filter(|k| expected.contains(&k.name.as_str()))
            .collect();
        assert_eq!(
            listed.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            newest_first(&want)
                .iter()
                .map(|id| keys
                    .iter()
                    .find(|k| &k.id == id)
                    .expect("own key")
                    .name
                    .as_str())
                .collect::<Vec<_>>(),
            "name filter {needle:?}"
        );
    }
}

/// The name filter folds case beyond ASCII, as `str::to_lowercase` does (the reference semantics in `name_contains`).
pub async fn list_keys_name_filter_folds_unicode_case(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let names = [
        "Über Café",
        "ÜBER CAFÉ",
        "über café",
        "uber cafe",
        "Ωmega",
        "Straße",
    ];
    let keys: Vec<KeyRecord> = names
        .iter()
        .zip(0..)
        .map(|(name, i)| {
            let mut key = fx.record(&owner, "mt", at(i));
            (*name).clone_into(&mut key.name);
            key
        })
        .collect();
    insert_all(store, &keys).await;

    let cases: &[(&str, &[&str])] = &[
        ("über", &["Über Café", "ÜBER CAFÉ", "über café"]),
        ("CAFÉ", &["Über Café", "ÜBER CAFÉ", "über café"]),
        ("cafe", &["uber cafe"]),
        ("ωMEGA", &["Ωmega"]),
        ("SSE", &[]),
        ("ß", &["Straße"]),
    ];
    for (needle, expected) in cases {
        let mut query = ListQuery::new(owner.clone(), at(100), 100);
        query.name_contains = Some((*needle).to_owned());
        let listed = list_all(store, query).await;
        let mut got: Vec<&str> = listed.iter().map(|k| k.name.as_str()).collect();
        got.sort_unstable();
        let mut want = expected.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "name filter {needle:?}");
    }
}

/// Kind and status filters select exactly the matching keys, with statuses (including expiry) judged at `query.now`.
pub async fn list_keys_filters_by_kind_and_status(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut n = 0;
    let mut make = |kind: &str, state: KeyState, expires: Option<i64>| {
        n += 1;
        let mut key = fx.record(&owner, kind, at(n));
        key.state = if state == KeyState::Revoked {
            KeyState::Active
        } else {
            state
        };
        key.expires_at = expires.map(at);
        (key, state)
    };
    let specs = [
        make("mm", KeyState::Active, None),         // 0 active
        make("mm", KeyState::Active, Some(1000)),   // 1 active until 1000
        make("mm", KeyState::Disabled, None),       // 2 disabled
        make("mm", KeyState::Disabled, Some(1000)), // 3 disabled until 1000
        make("mm", KeyState::Active, Some(100)),    // 4 expired
        make("mm", KeyState::Active, Some(500)),    // 5 expires exactly at now
        make("mm", KeyState::Disabled, Some(100)),  // 6 expired (disabled)
        make("mm", KeyState::Revoked, None),        // 7 revoked
        make("mm", KeyState::Revoked, Some(100)),   // 8 revoked (and expired)
        make("mm_pat", KeyState::Active, None),     // 9 another kind
        make("mmxpat", KeyState::Active, None),     // 10 another kind
        make("MM", KeyState::Active, None),         // 11 another kind
    ];
    for (key, state) in &specs {
        insert(store, key).await;
        if *state == KeyState::Revoked {
            change_state(store, key, KeyState::Active, KeyState::Revoked, at(50)).await;
        }
    }
    let keys: Vec<&KeyRecord> = specs.iter().map(|(k, _)| k).collect();
    let pick = |indexes: &[usize]| -> Vec<KeyId> {
        newest_first(&indexes.iter().map(|&i| keys[i]).collect::<Vec<_>>())
    };
    let query = |kind: Option<&str>, statuses: &[Status], now: i64| {
        let mut query = ListQuery::new(owner.clone(), at(now), 100);
        query.kind = kind.map(str::to_owned);
        query.statuses = statuses.to_vec();
        query
    };

    let cases: Vec<(ListQuery, Vec<KeyId>, &str)> = vec![
        (
            query(Some("mm"), &[], 500),
            pick(&[0, 1, 2, 3, 4, 5, 6, 7, 8]),
            "kind mm, any status",
        ),
        (query(Some("mm_pat"), &[], 500), pick(&[9]), "kind mm_pat"),
        (
            query(Some("m"), &[], 500),
            pick(&[]),
            "kind is matched exactly, not as a prefix",
        ),
        (
            query(None, &[], 500),
            pick(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
            "no filter",
        ),
        (
            query(Some("mm"), &[Status::Active], 500),
            pick(&[0, 1]),
            "active at 500",
        ),
        (
            query(Some("mm"), &[Status::Disabled], 500),
            pick(&[2, 3]),
            "disabled at 500",
        ),
        (
            query(Some("mm"), &[Status::Expired], 500),
            pick(&[4, 5, 6]),
            "expired at 500 (expires_at <= now)",
        ),
        (
            query(Some("mm"), &[Status::Revoked], 500),
            pick(&[7, 8]),
            "revoked (revocation wins over expiry)",
        ),
        (
            query(None, &[Status::Active, Status::Expired], 500),
            pick(&[0, 1, 4, 5, 6, 9, 10, 11]),
            "active or expired",
        ),
        (
            query(Some("mm"), &[Status::Active], 60),
            pick(&[0, 1, 4, 5]),
            "active at 60: not yet expired",
        ),
        (
            query(Some("mm"), &[Status::Expired], 60),
            pick(&[]),
            "expired at 60: none yet",
        ),
        (
            query(Some("mm"), &[Status::Disabled], 60),
            pick(&[2, 3, 6]),
            "disabled at 60",
        ),
        (
            query(Some("mm"), &[Status::Expired, Status::Revoked], 2000),
            pick(&[1, 3, 4, 5, 6, 7, 8]),
            "expired or revoked at 2000",
        ),
    ];
    for (query, expected, what) in cases {
        assert_eq!(ids(&list_all(store, query).await), expected, "{what}");
    }

    // All filters at once.
    let mut combined = query(Some("mm"), &[Status::Active, Status::Disabled], 500);
    combined.name_contains = Some(keys[3].id.as_str().to_uppercase());
    assert_eq!(
        ids(&list_all(store, combined).await),
        pick(&[3]),
        "name, kind and status filters combined"
    );
}

/// Paging returns every key exactly once in list order, with full pages, a cursor after the last item, and no cursor on the last page.
pub async fn list_keys_pages_without_duplicates_or_skips(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let keys: Vec<KeyRecord> = (0..25).map(|i| fx.record(&owner, "mt", at(i))).collect();
    // Insert in a scrambled order.
    for i in 0..25 {
        insert(store, &keys[(i * 7) % 25]).await;
    }
    let expected = newest_first(&keys.iter().collect::<Vec<_>>());

    for (page_size, sizes) in [
        (10, vec![10, 10, 5]),
        (5, vec![5; 5]),
        (25, vec![25]),
        (24, vec![24, 1]),
        (1, vec![1; 25]),
    ] {
        let mut query = ListQuery::new(owner.clone(), at(100), page_size);
        let mut seen = Vec::new();
        for (n, &size) in sizes.iter().enumerate() {
            let page = store.list_keys(&query).await.expect("list_keys");
            assert_eq!(
                page.items.len(),
                size,
                "page size {page_size}: page {n} length"
            );
            seen.extend(ids(&page.items));
            let last = n + 1 == sizes.len();
            match (&page.next, last) {
                (None, true) => {}
                (Some(cursor), false) => {
                    let tail = page.items.last().expect("non-empty page");
                    assert_eq!(
                        cursor,
                        &Cursor::after(tail),
                        "page size {page_size}: the cursor points after the last item"
                    );
                    // Through its string form, as a web API would pass it.
                    query.after = Some(Cursor::decode(&cursor.encode()).expect("cursor"));
                }
                (next, _) => panic!(
                    "page size {page_size}: page {n} of {} returned next = {next:?}",
                    sizes.len()
                ),
            }
        }
        assert_eq!(seen, expected, "page size {page_size}: pages concatenated");
    }

    let max = store
        .list_keys(&ListQuery::new(owner.clone(), at(100), MAX_PAGE_SIZE))
        .await
        .expect("list_keys with the largest page size");
    assert_eq!(ids(&max.items), expected);
    assert!(max.next.is_none());
}

/// Keys inserted while paging never cause duplicates or skips: newer keys stay out of later pages, and the cursor is strictly after the last item.
pub async fn list_keys_pagination_is_stable_under_inserts(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let keys: Vec<KeyRecord> = (0..25).map(|i| fx.record(&owner, "mt", at(i))).collect();
    insert_all(store, &keys).await;
    let expected = newest_first(&keys.iter().collect::<Vec<_>>());

    let mut query = ListQuery::new(owner.clone(), at(100), 10);
    let first = store.list_keys(&query).await.expect("list_keys");
    assert_eq!(ids(&first.items), expected[..10]);
    let cursor = first.next.expect("more pages");
    let tail = first.items.last().expect("non-empty page").clone();

    // Newer keys, and keys sharing the cursor's created_at on either side
    // of its id ("t…" sorts after the tail's "k…" id, "a…" before it).
    let newer: Vec<KeyRecord> = (0..3)
        .map(|i| fx.record(&owner, "mt", at(200 + i)))
        .collect();
    insert_all(store, &newer).await;
    let same_time_before = fx.record_with_id(fx.id_with("t", "0"), &owner, "mt", tail.created_at);
    let same_time_after = fx.record_with_id(fx.id_with("a", "0"), &owner, "mt", tail.created_at);
    insert_all(store, &[same_time_before.clone(), same_time_after.clone()]).await;

    query.after = Some(cursor);
    let rest = list_all(store, query).await;
    let mut want: Vec<KeyId> = vec![same_time_after.id.clone()];
    want.extend_from_slice(&expected[10..]);
    assert_eq!(
        ids(&rest),
        want,
        "later pages hold exactly the keys after the cursor: no newer keys, no duplicates, no skips"
    );
}

/// Many keys with the same `created_at` page in id-descending byte order without duplicates or skips.
pub async fn list_keys_pages_through_equal_timestamps(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let mut keys: Vec<KeyRecord> = ["a", "B", "0", "b", "Z", "A", "z", "9", "m", "M", "x", "X"]
        .into_iter()
        .map(|s| fx.record_with_id(fx.id_with("t", s), &owner, "mt", at(0)))
        .collect();
    // A newer key with a small id and an older key with a large id: time
    // decides before the id does.
    keys.push(fx.record_with_id(fx.id_with("0", "0"), &owner, "mt", plus_micros(at(0), 1)));
    keys.push(fx.record_with_id(fx.id_with("z", "z"), &owner, "mt", plus_micros(at(0), -1)));
    insert_all(store, &keys).await;
    let expected = newest_first(&keys.iter().collect::<Vec<_>>());
    assert_eq!(expected.first(), Some(&keys[12].id));
    assert_eq!(expected.last(), Some(&keys[13].id));

    let mut query = ListQuery::new(owner.clone(), at(100), 5);
    let mut sizes = Vec::new();
    let mut listed = Vec::new();
    loop {
        let page = store.list_keys(&query).await.expect("list_keys");
        sizes.push(page.items.len());
        listed.extend(ids(&page.items));
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(listed, expected, "equal timestamps page by id descending");
    assert_eq!(sizes, [5, 5, 4], "page sizes");
}

// ---------------------------------------------------------------- expiring

/// `keys_expiring` returns non-revoked keys with `expires_at` in `(after, before]`, soonest first, at most `limit`.
pub async fn keys_expiring_selects_the_window_soonest_first(store: &dyn KeyStore) {
    let fx = Fixture::new();
    // keys_expiring is global: use a window far from every other case's
    // timestamps, random so that repeated runs on one database do not meet.
    let after =
        DateTime::from_timestamp(4_102_444_800 + i64::from(random_u32() % 1_000_000_000), 0)
            .expect("valid time");
    let before = after + TimeDelta::seconds(10);
    let (owner, other) = (fx.owner("user"), fx.owner("other"));
    let make = |owner: &crate::Owner, expires_at: Option<DateTime<Utc>>, state: KeyState| {
        let mut key = fx.record(owner, "mt", at(0));
        key.expires_at = expires_at;
        key.state = state;
        key
    };
    let at_after = make(&owner, Some(after), KeyState::Active);
    let half = make(
        &owner,
        Some(after + TimeDelta::milliseconds(500)),
        KeyState::Active,
    );
    let first_micro = make(&other, Some(plus_micros(after, 1)), KeyState::Active);
    let one = make(
        &other,
        Some(after + TimeDelta::seconds(1)),
        KeyState::Active,
    );
    let revoked = make(
        &owner,
        Some(after + TimeDelta::seconds(2)),
        KeyState::Active,
    );
    let disabled = make(
        &owner,
        Some(after + TimeDelta::seconds(3)),
        KeyState::Disabled,
    );
    let at_before = make(&other, Some(before), KeyState::Active);
    let past_before = make(&owner, Some(plus_micros(before, 1)), KeyState::Active);
    let never = make(&owner, None, KeyState::Active);
    let all = [
        &at_after,
        &half,
        &first_micro,
        &one,
        &revoked,
        &disabled,
        &at_before,
        &past_before,
        &never,
    ];
    for key in all {
        insert(store, key).await;
    }
    change_state(store, &revoked, KeyState::Active, KeyState::Revoked, at(1)).await;

    let soonest: Vec<KeyId> = [&first_micro, &half, &one, &disabled, &at_before]
        .iter()
        .map(|k| k.id.clone())
        .collect();
    let got = store
        .keys_expiring(after, before, 100)
        .await
        .expect("keys_expiring");
    assert_eq!(
        ids(&got),
        soonest,
        "non-revoked keys expiring in (after, before], soonest first"
    );
    for key in &got {
        let inserted = all.iter().find(|k| k.id == key.id).expect("own key");
        assert_same_key(key, inserted);
    }
    let got = store
        .keys_expiring(after, before, 2)
        .await
        .expect("keys_expiring");
    assert_eq!(ids(&got), soonest[..2], "limit 2 keeps the 2 soonest");
    let got = store
        .keys_expiring(plus_micros(after, 1), before - TimeDelta::seconds(1), 100)
        .await
        .expect("keys_expiring");
    assert_eq!(ids(&got), soonest[1..4], "bounds move with the arguments");
}

// ------------------------------------------------------------------- roles

/// `put_role` creates a role (`replaces = None`) or replaces its permissions (`replaces = Some(current)`); `get_roles` returns only the owner's existing roles, once each, in name order.
pub async fn roles_put_replace_and_get(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let viewer = Role::new(
        owner.clone(),
        fx.role("viewer"),
        perms(&["projects.view", "keys.view"]),
    );
    let admin = Role::new(owner.clone(), fx.role("admin"), perms(&["*"]));
    let empty = Role::new(owner.clone(), fx.role("empty"), PermissionSet::new());
    for role in [&viewer, &admin, &empty] {
        store
            .put_role(role, None, &role_event(AuditAction::PutRole, role, 0))
            .await
            .expect("put_role creating a role");
    }
    let unknown = fx.role("unknown");
    let got = store
        .get_roles(
            &owner,
            &[
                viewer.name.clone(),
                unknown.clone(),
                admin.name.clone(),
                empty.name.clone(),
                viewer.name.clone(),
            ],
        )
        .await
        .expect("get_roles");
    assert_eq!(
        got,
        [admin.clone(), empty.clone(), viewer.clone()],
        "existing roles, once each, in name order"
    );
    assert!(
        store
            .get_roles(&owner, &[unknown])
            .await
            .expect("get_roles")
            .is_empty(),
        "unknown names are ignored"
    );
    assert!(
        store
            .get_roles(&owner, &[])
            .await
            .expect("get_roles")
            .is_empty()
    );

    // Replacing swaps the permissions, it does not merge them.
    let viewer2 = Role::new(owner.clone(), viewer.name.clone(), perms(&["billing.read"]));
    store
        .put_role(
            &viewer2,
            Some(&viewer.permissions),
            &role_event(AuditAction::PutRole, &viewer2, 1),
        )
        .await
        .expect("put_role replacing a role");
    let got = store
        .get_roles(&owner, &[viewer.name.clone(), admin.name.clone()])
        .await
        .expect("get_roles");
    assert_eq!(
        got,
        [admin.clone(), viewer2.clone()],
        "put_role replaces the permissions"
    );
    // An empty set is a value like any other: it can be replaced and replace.
    let filled = Role::new(owner.clone(), empty.name.clone(), perms(&["a.b"]));
    store
        .put_role(
            &filled,
            Some(&PermissionSet::new()),
            &role_event(AuditAction::PutRole, &filled, 2),
        )
        .await
        .expect("put_role replacing an empty role");
    store
        .put_role(
            &empty,
            Some(&filled.permissions),
            &role_event(AuditAction::PutRole, &empty, 3),
        )
        .await
        .expect("put_role emptying a role");
    let got = store
        .get_roles(&owner, std::slice::from_ref(&empty.name))
        .await
        .expect("get_roles");
    assert_eq!(got, [empty], "a role emptied by a replace");
}

/// `delete_role` (given the role's current permissions) removes exactly that role and fails with `NotFound` when it does not exist.
pub async fn delete_role_removes_only_that_role(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let keep = Role::new(
        owner.clone(),
        fx.role("keep"),
        PermissionSet::parse(["a.b"]).expect("valid permission"),
    );
    let gone = Role::new(
        owner.clone(),
        fx.role("drop"),
        PermissionSet::parse(["c.d"]).expect("valid permission"),
    );
    for role in [&keep, &gone] {
        store
            .put_role(role, None, &role_event(AuditAction::PutRole, role, 0))
            .await
            .expect("put_role");
    }
    store
        .delete_role(
            &owner,
            &gone.name,
            &gone.permissions,
            &role_event(AuditAction::DeleteRole, &gone, 1),
        )
        .await
        .expect("delete_role of an existing role");
    let got = store
        .get_roles(&owner, &[keep.name.clone(), gone.name.clone()])
        .await
        .expect("get_roles");
    assert_eq!(got, [keep], "only the deleted role is gone");
    expect_not_found(
        store
            .delete_role(
                &owner,
                &gone.name,
                &gone.permissions,
                &role_event(AuditAction::DeleteRole, &gone, 2),
            )
            .await,
        "deleting a deleted role",
    );
    let never = Role::new(owner.clone(), fx.role("never"), PermissionSet::new());
    expect_not_found(
        store
            .delete_role(
                &owner,
                &never.name,
                &never.permissions,
                &role_event(AuditAction::DeleteRole, &never, 3),
            )
            .await,
        "deleting a role that never existed",
    );
    // A deleted role can be created again.
    store
        .put_role(&gone, None, &role_event(AuditAction::PutRole, &gone, 4))
        .await
        .expect("put_role after delete");
    let got = store
        .get_roles(&owner, std::slice::from_ref(&gone.name))
        .await
        .expect("get_roles");
    assert_eq!(got, [gone]);
}

/// Two owners may each have a role of the same name: reading, replacing and deleting one never touches the other, and owners compare byte for byte.
pub async fn roles_are_namespaced_by_owner(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let (a, b) = (fx.owner("workspace:a"), fx.owner("workspace:b"));
    let upper = Owner::new(&a.as_str().to_uppercase()).expect("valid owner");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let name = fx.role("admin");
    let of_a = Role::new(a.clone(), name.clone(), perms(&["*"]));
    let of_b = Role::new(b.clone(), name.clone(), perms(&["keys.view"]));
    store
        .put_role(&of_a, None, &role_event(AuditAction::PutRole, &of_a, 0))
        .await
        .expect("put_role for owner a");
    store
        .put_role(&of_b, None, &role_event(AuditAction::PutRole, &of_b, 1))
        .await
        .expect("put_role of the same name for owner b");
    let roles_of = |owner: &Owner| {
        let owner = owner.clone();
        let names = [name.clone()];
        async move { store.get_roles(&owner, &names).await.expect("get_roles") }
    };
    assert_eq!(
        roles_of(&a).await,
        std::slice::from_ref(&of_a),
        "owner a's role"
    );
    assert_eq!(
        roles_of(&b).await,
        std::slice::from_ref(&of_b),
        "owner b's role"
    );
    assert!(
        roles_of(&upper).await.is_empty(),
        "owners are case-sensitive: {upper} has no role of {a}"
    );
    assert!(
        roles_of(&fx.owner("workspace:c")).await.is_empty(),
        "an owner without the role gets nothing"
    );

    // Replacing b's role leaves a's alone.
    let narrowed = Role::new(b.clone(), name.clone(), perms(&["keys.list"]));
    store
        .put_role(
            &narrowed,
            Some(&of_b.permissions),
            &role_event(AuditAction::PutRole, &narrowed, 2),
        )
        .await
        .expect("put_role replacing owner b's role");
    assert_eq!(
        roles_of(&a).await,
        std::slice::from_ref(&of_a),
        "a's role after b's edit"
    );
    assert_eq!(
        roles_of(&b).await,
        std::slice::from_ref(&narrowed),
        "b's edited role"
    );

    // Owner a's permissions are not a valid `replaces` for b's role.
    expect_role_changed(
        store
            .put_role(
                &narrowed,
                Some(&of_a.permissions),
                &role_event(AuditAction::PutRole, &narrowed, 3),
            )
            .await,
        "replacing b's role with a's permissions as `replaces`",
    );

    // Deleting a's role leaves b's alone; deleting it again is NotFound,
    // although b still has a role of that name.
    store
        .delete_role(
            &a,
            &name,
            &of_a.permissions,
            &role_event(AuditAction::DeleteRole, &of_a, 4),
        )
        .await
        .expect("delete_role of owner a's role");
    assert!(roles_of(&a).await.is_empty(), "a's role is gone");
    assert_eq!(
        roles_of(&b).await,
        std::slice::from_ref(&narrowed),
        "b's role stays"
    );
    expect_not_found(
        store
            .delete_role(
                &a,
                &name,
                &narrowed.permissions,
                &role_event(AuditAction::DeleteRole, &of_a, 5),
            )
            .await,
        "deleting a's deleted role while b has one of that name",
    );
    assert_eq!(roles_of(&b).await, [narrowed], "b's role survives");
}

/// `put_role` is a compare-and-set on (owner, name): creating an existing role, or replacing with stale or absent `replaces`, is `RoleChanged`, writes nothing and appends no event.
pub async fn put_role_is_compare_and_set(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let audit = || owner_audit(store, &owner);
    let name = fx.role("deployer");
    let v1 = Role::new(owner.clone(), name.clone(), perms(&["deploy.staging"]));
    let v2 = Role::new(owner.clone(), name.clone(), perms(&["deploy.*"]));
    let v3 = Role::new(owner.clone(), name.clone(), perms(&["*"]));
    let stored = || async {
        store
            .get_roles(&owner, std::slice::from_ref(&name))
            .await
            .expect("get_roles")
    };

    // Replacing a role that does not exist.
    expect_role_changed(
        store
            .put_role(
                &v2,
                Some(&v1.permissions),
                &role_event(AuditAction::PutRole, &v2, 0),
            )
            .await,
        "replacing a role that does not exist",
    );
    assert!(
        stored().await.is_empty(),
        "a failed replace creates nothing"
    );
    assert!(audit().await.is_empty(), "a failed replace appends nothing");

    let created = role_event(AuditAction::PutRole, &v1, 1);
    store
        .put_role(&v1, None, &created)
        .await
        .expect("creating the role");
    // Creating it again, even with the same permissions.
    for (what, role) in [("a different role", &v2), ("the same role", &v1)] {
        expect_role_changed(
            store
                .put_role(role, None, &role_event(AuditAction::PutRole, role, 2))
                .await,
            &format!("creating {what} that already exists"),
        );
    }
    assert_eq!(
        stored().await,
        std::slice::from_ref(&v1),
        "a failed create changes nothing"
    );

    let replaced = role_event(AuditAction::PutRole, &v2, 3);
    store
        .put_role(&v2, Some(&v1.permissions), &replaced)
        .await
        .expect("replacing with the current permissions");
    // A stale `replaces` (v1, read before the replace), a superset and a
    // subset of the current permissions all lose.
    for (what, replaces) in [
        ("stale", v1.permissions.clone()),
        (
            "a superset of the current",
            perms(&["deploy.*", "deploy.prod"]),
        ),
        ("the empty set", PermissionSet::new()),
        ("what it would become", v3.permissions.clone()),
    ] {
        expect_role_changed(
            store
                .put_role(
                    &v3,
                    Some(&replaces),
                    &role_event(AuditAction::PutRole, &v3, 4),
                )
                .await,
            &format!("replacing with {what} `replaces`"),
        );
    }
    assert_eq!(
        stored().await,
        std::slice::from_ref(&v2),
        "a lost replace changes nothing"
    );
    assert_eq!(
        audit().await,
        [replaced, created],
        "only the successful create and replace appended events"
    );
}

/// `delete_role` is a compare-and-set: stale `expected` permissions are `RoleChanged`, delete nothing and append no event.
pub async fn delete_role_is_compare_and_set(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("workspace");
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let audit = || owner_audit(store, &owner);
    let v1 = Role::new(owner.clone(), fx.role("ops"), perms(&["deploy"]));
    let v2 = Role::new(owner.clone(), v1.name.clone(), perms(&["deploy", "admin"]));
    let created = role_event(AuditAction::PutRole, &v1, 0);
    store
        .put_role(&v1, None, &created)
        .await
        .expect("creating the role");
    let replaced = role_event(AuditAction::PutRole, &v2, 1);
    store
        .put_role(&v2, Some(&v1.permissions), &replaced)
        .await
        .expect("widening the role");

    for (what, expected) in [
        ("stale", v1.permissions.clone()),
        ("empty", PermissionSet::new()),
        (
            "a superset of the current",
            perms(&["deploy", "admin", "x"]),
        ),
    ] {
        expect_role_changed(
            store
                .delete_role(
                    &owner,
                    &v1.name,
                    &expected,
                    &role_event(AuditAction::DeleteRole, &v1, 2),
                )
                .await,
            &format!("deleting with {what} `expected` permissions"),
        );
    }
    assert_eq!(
        store
            .get_roles(&owner, std::slice::from_ref(&v1.name))
            .await
            .expect("get_roles"),
        std::slice::from_ref(&v2),
        "a lost delete deletes nothing"
    );
    assert_eq!(
        audit().await,
        [replaced.clone(), created.clone()],
        "a lost delete appends nothing"
    );

    let deleted = role_event(AuditAction::DeleteRole, &v2, 3);
    store
        .delete_role(&owner, &v2.name, &v2.permissions, &deleted)
        .await
        .expect("deleting with the current permissions");
    assert!(
        store
            .get_roles(&owner, std::slice::from_ref(&v1.name))
            .await
            .expect("get_roles")
            .is_empty(),
        "deleted"
    );
    assert_eq!(audit().await, [deleted, replaced, created]);
}

async fn owner_audit(store: &dyn KeyStore, owner: &crate::Owner) -> Vec<AuditEvent> {
    store
        .list_audit(&AuditQuery::newest(100).owner(owner))
        .await
        .expect("list_audit")
}

fn role_event(action: AuditAction, role: &Role, secs: i64) -> AuditEvent {
    AuditEvent::new(at(secs), ACTOR, action)
        .with_role(&role.name)
        .with_owner(&role.owner)
}

// ------------------------------------------------------------------- audit

/// Every successful mutation appends its event with it, and no failed mutation appends one.
pub async fn mutations_append_their_audit_event_only_on_success(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("account");
    let audit = || owner_audit(store, &owner);
    let mut expected: Vec<AuditEvent> = Vec::new();
    let mut check = |what: &str, events: Vec<AuditEvent>, appended: Option<AuditEvent>| {
        expected.extend(appended);
        let want: Vec<AuditEvent> = expected.iter().rev().cloned().collect();
        assert_eq!(events, want, "audit log after {what}");
    };

    // insert: success, duplicate, limit.
    let key = fx.record(&owner, "mt", at(1));
    let event = issue_event(&key);
    store
        .insert_key(&key, Some(1), at(1), &event)
        .await
        .expect("insert_key");
    check("a successful insert", audit().await, Some(event));

    let dup = fx.record_with_id(key.id.clone(), &owner, "mt", at(2));
    let result = store
        .insert_key(&dup, None, at(2), &issue_event(&dup))
        .await;
    expect_already_exists(result, "duplicate insert");
    check("an AlreadyExists insert", audit().await, None);

    let over = fx.record(&owner, "mt", at(3));
    let result = store
        .insert_key(&over, Some(1), at(3), &issue_event(&over))
        .await;
    expect_limit_reached(result, 1, "insert over the limit");
    check("a LimitReached insert", audit().await, None);

    // set_state: success, conflict, unknown id.
    let event = state_event(&key, KeyState::Disabled, at(4));
    store
        .set_state(&key.id, KeyState::Active, KeyState::Disabled, at(4), &event)
        .await
        .expect("set_state");
    check("a successful set_state", audit().await, Some(event));

    let result = store
        .set_state(
            &key.id,
            KeyState::Active,
            KeyState::Revoked,
            at(5),
            &state_event(&key, KeyState::Revoked, at(5)),
        )
        .await;
    expect_conflict(
        result,
        KeyState::Active,
        KeyState::Disabled,
        "stale set_state",
    );
    check("a Conflict set_state", audit().await, None);

    let ghost = fx.record(&owner, "mt", at(6));
    let result = store
        .set_state(
            &ghost.id,
            KeyState::Active,
            KeyState::Disabled,
            at(6),
            &state_event(&ghost, KeyState::Disabled, at(6)),
        )
        .await;
    expect_not_found(result, "set_state of an unknown id");
    check("a NotFound set_state", audit().await, None);

    let event = state_event(&key, KeyState::Active, at(7));
    store
        .set_state(&key.id, KeyState::Disabled, KeyState::Active, at(7), &event)
        .await
        .expect("set_state");
    check("a second successful set_state", audit().await, Some(event));

    // rotate: success, repeated, clash.
    let mut next = fx.record(&owner, "mt", at(8));
    next.rotated_from = Some(key.id.clone());
    let event = rotate_event(&key, &next);
    store
        .rotate_key(&key.id, KeyState::Active, at(100), &next, &event)
        .await
        .expect("rotate_key");
    check("a successful rotation", audit().await, Some(event));

    let mut again = fx.record(&owner, "mt", at(9));
    again.rotated_from = Some(key.id.clone());
    let result = store
        .rotate_key(
            &key.id,
            KeyState::Active,
            at(100),
            &again,
            &rotate_event(&key, &again),
        )
        .await;
    assert!(
        matches!(result, Err(crate::Error::Conflict { .. })),
        "repeated rotation: {result:?}"
    );
    check("a Conflict rotation", audit().await, None);

    let mut clash = fx.record_with_id(key.id.clone(), &owner, "mt", at(10));
    clash.rotated_from = Some(next.id.clone());
    let result = store
        .rotate_key(
            &next.id,
            KeyState::Active,
            at(100),
            &clash,
            &rotate_event(&next, &clash),
        )
        .await;
    expect_already_exists(result, "rotation onto an existing id");
    check("an AlreadyExists rotation", audit().await, None);

    // revoke_key: success, already revoked, unknown id.
    let revoked = fx.record(&owner, "mt", at(11));
    insert(store, &revoked).await;
    check(
        "inserting a key to revoke",
        audit().await,
        Some(issue_event(&revoked)),
    );
    let event = state_event(&revoked, KeyState::Revoked, at(11));
    assert!(
        store
            .revoke_key(&revoked.id, at(11), &event)
            .await
            .expect("revoke_key"),
        "revoke_key of an active key revokes it"
    );
    check("a successful revoke_key", audit().await, Some(event));
    let again = store
        .revoke_key(
            &revoked.id,
            at(12),
            &state_event(&revoked, KeyState::Revoked, at(12)),
        )
        .await
        .expect("revoke_key of a revoked key");
    assert!(!again, "revoking a revoked key reports Ok(false)");
    check("an Ok(false) revoke_key", audit().await, None);
    let result = store
        .revoke_key(
            &ghost.id,
            at(12),
            &state_event(&ghost, KeyState::Revoked, at(12)),
        )
        .await;
    expect_not_found(result, "revoke_key of an unknown id");
    check("a NotFound revoke_key", audit().await, None);

    // Roles: create, stale create, replace, stale replace, delete, stale
    // delete, missing delete.
    let perms = |p: &[&str]| PermissionSet::parse(p).expect("valid permissions");
    let role = Role::new(owner.clone(), fx.role("reader"), perms(&["keys.view"]));
    let event = role_event(AuditAction::PutRole, &role, 13);
    store.put_role(&role, None, &event).await.expect("put_role");
    check("put_role creating", audit().await, Some(event));
    let result = store
        .put_role(&role, None, &role_event(AuditAction::PutRole, &role, 14))
        .await;
    expect_role_changed(result, "creating an existing role");
    check("a RoleChanged create", audit().await, None);
    let wider = Role::new(owner.clone(), role.name.clone(), perms(&["keys.*"]));
    let event = role_event(AuditAction::PutRole, &wider, 15);
    store
        .put_role(&wider, Some(&role.permissions), &event)
        .await
        .expect("put_role replacing");
    check("put_role replacing", audit().await, Some(event));
    let result = store
        .put_role(
            &wider,
            Some(&role.permissions),
            &role_event(AuditAction::PutRole, &wider, 16),
        )
        .await;
    expect_role_changed(result, "replacing with stale permissions");
    check("a RoleChanged replace", audit().await, None);
    let result = store
        .delete_role(
            &owner,
            &role.name,
            &role.permissions,
            &role_event(AuditAction::DeleteRole, &role, 17),
        )
        .await;
    expect_role_changed(result, "deleting with stale permissions");
    check("a RoleChanged delete_role", audit().await, None);
    let event = role_event(AuditAction::DeleteRole, &wider, 18);
    store
        .delete_role(&owner, &wider.name, &wider.permissions, &event)
        .await
        .expect("delete_role");
    check("delete_role", audit().await, Some(event));
    let result = store
        .delete_role(
            &owner,
            &wider.name,
            &wider.permissions,
            &role_event(AuditAction::DeleteRole, &wider, 19),
        )
        .await;
    expect_not_found(result, "delete_role of a missing role");
    check("a NotFound delete_role", audit().await, None);

    // A refusal recorded on its own.
    let event = key_event(&key, AuditAction::Revoke, at(20)).refused("not authorized: wrong owner");
    store.append_audit(&event).await.expect("append_audit");
    check("append_audit", audit().await, Some(event));
}

/// `list_audit` is newest first (latest appended first, also for equal times), filters by owner and key, and respects its limit.
pub async fn list_audit_is_newest_first_filtered_and_limited(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let (a, b) = (fx.owner("a"), fx.owner("b"));
    let (a1, a2, b1) = (fx.id(), fx.id(), fx.id());
    let event = |secs: i64, owner: &crate::Owner, key: Option<&KeyId>, detail: &str| {
        let e = AuditEvent::new(plus_micros(at(secs), 7), ACTOR, AuditAction::View);
        match key {
            Some(id) => e.with_key(id, "name", owner),
            None => e.with_owner(owner),
        }
        .with_detail(detail)
    };
    let events = [
        event(1, &a, Some(&a1), "e0"),
        event(2, &b, Some(&b1), "e1"),
        event(3, &a, Some(&a2), "e2"),
        event(4, &a, None, "e3"),
        event(5, &a, Some(&a1), "e4").refused("nope"),
        event(5, &a, Some(&a1), "e5"),
        event(5, &a, Some(&a1), "e6"),
        event(6, &b, Some(&b1), "e7"),
    ];
    for e in &events {
        store.append_audit(e).await.expect("append_audit");
    }
    let pick = |indexes: &[usize]| -> Vec<AuditEvent> {
        indexes.iter().map(|&i| events[i].clone()).collect()
    };
    let cases = [
        (
            AuditQuery::newest(100).owner(&a),
            pick(&[6, 5, 4, 3, 2, 0]),
            "owner a",
        ),
        (
            AuditQuery::newest(2).owner(&a),
            pick(&[6, 5]),
            "owner a, limit 2",
        ),
        (AuditQuery::newest(100).owner(&b), pick(&[7, 1]), "owner b"),
        (
            AuditQuery::newest(100).key(&a1),
            pick(&[6, 5, 4, 0]),
            "key a1",
        ),
        (
            AuditQuery::newest(100).owner(&a).key(&a1),
            pick(&[6, 5, 4, 0]),
            "owner a and key a1",
        ),
        (
            AuditQuery::newest(100).owner(&b).key(&a1),
            pick(&[]),
            "owner b and key a1",
        ),
        (
            AuditQuery::newest(1).key(&b1),
            pick(&[7]),
            "key b1, limit 1",
        ),
        (
            AuditQuery::newest(100).key(&fx.id()),
            pick(&[]),
            "an unknown key",
        ),
    ];
    for (query, expected, what) in cases {
        assert_eq!(
            store.list_audit(&query).await.expect("list_audit"),
            expected,
            "{what}"
        );
    }

    // Unfiltered: our events appear newest first (other cases may share the
    // store, so look only at ours).
    let all = store
        .list_audit(&AuditQuery::newest(1000))
        .await
        .expect("list_audit");
    let ours: Vec<AuditEvent> = all.into_iter().filter(|e| events.contains(e)).collect();
    assert_eq!(
        ours,
        pick(&[7, 6, 5, 4, 3, 2, 1, 0]),
        "unfiltered, newest first"
    );
    let three = store
        .list_audit(&AuditQuery::newest(3))
        .await
        .expect("list_audit");
    assert_eq!(three.len(), 3, "an unfiltered query respects its limit");
}

/// Audit events round-trip every field, including absent ones, refusals and awkward text.
pub async fn audit_events_round_trip_every_field(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user:o'brien ü");
    let (k1, k2) = (fx.id(), fx.id());
    let full = AuditEvent::new(
        plus_micros(at(1), 123_457),
        "session:user:o'brien \"ü\"",
        AuditAction::Rotate,
    )
    .with_key(&k1, "CI 'deploy' 100% a_b 🔑", &owner)
    .with_role(&fx.role("admin"))
    .with_detail("successor k0009 — \"quoted\" \\ %_");
    let refused = AuditEvent::new(at(2), format!("token:{k1}"), AuditAction::Issue)
        .with_key(&k1, &"ü".repeat(5000), &owner)
        .refused("limit reached: at most 3 live keys of this kind per owner");
    let mut bare = AuditEvent::new(
        plus_micros(at(3), 1),
        "operator:oncall",
        AuditAction::Disable,
    );
    bare.key_id = Some(k2.clone());
    let actions = [
        AuditAction::Issue,
        AuditAction::Rotate,
        AuditAction::Revoke,
        AuditAction::Disable,
        AuditAction::Enable,
        AuditAction::PutRole,
        AuditAction::DeleteRole,
        AuditAction::View,
    ];
    let every_action: Vec<AuditEvent> = actions
        .iter()
        .zip(10..)
        .map(|(&action, secs)| AuditEvent::new(at(secs), ACTOR, action).with_owner(&owner))
        .collect();
    for e in [&full, &refused].into_iter().chain(&every_action) {
        store.append_audit(e).await.expect("append_audit");
    }
    store.append_audit(&bare).await.expect("append_audit");

    let got = store
        .list_audit(&AuditQuery::newest(100).key(&k1))
        .await
        .expect("list_audit");
    assert_eq!(got, [refused, full], "events about k1, every field");
    let got = store
        .list_audit(&AuditQuery::newest(100).key(&k2))
        .await
        .expect("list_audit");
    assert_eq!(
        got,
        [bare],
        "an event with only a key id: absent fields stay absent"
    );
    let mut got = store
        .list_audit(&AuditQuery::newest(100).owner(&owner))
        .await
        .expect("list_audit");
    got.truncate(actions.len());
    got.reverse();
    assert_eq!(got, every_action, "every action round-trips");
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
