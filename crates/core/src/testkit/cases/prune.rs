//! Invariants 14 and 15 of the [`KeyStore`] contract, **pruning deletes only
//! dead keys, one bounded batch at a time**, and **audit retention is bounded
//! too**.
//!
//! Pruning is global (it deletes every owner's dead keys), so these cases
//! keep their data in the 1990s, far before every other case's timestamps,
//! take [`PRUNE_CASES`] so that two of them never run at once in one
//! process (a shared store), and judge only the keys they wrote themselves
//! (a persistent database may hold dead keys an earlier run left behind).

use crate::audit::{AuditAction, AuditEvent, AuditQuery};
use crate::error::Error;
use crate::key::{KeyId, KeyRecord, Owner};
use crate::lifecycle::KeyState;
use crate::store::{KeyStore, ListQuery, MAX_PRUNE_BATCH, PruneKeys};
use crate::testkit::BulkInsert;
use crate::testkit::fixtures::{
    ACTOR, Fixture, assert_no_verify_read, assert_stored, insert, issue_event, key_event,
};
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use std::collections::BTreeSet;

/// Held by every prune case while it runs: pruning is global, so two prune
/// cases sharing one store must not run at once.
static PRUNE_CASES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `secs` seconds after 1990-01-01T00:00:00Z: the prune cases' own era.
fn era(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(631_152_000, 0).expect("valid time") + TimeDelta::seconds(secs)
}

/// The end of the era: later than every time these cases write, earlier
/// than every other case's.
fn era_end() -> DateTime<Utc> {
    era(300_000_000)
}

/// A key of `owner` created at `era(0)` in `state`, revoked at `revoked`,
/// expiring at `expires`.
fn dead_or_alive(
    fx: &Fixture,
    owner: &Owner,
    state: KeyState,
    revoked: Option<i64>,
    expires: Option<i64>,
) -> KeyRecord {
    let mut key = fx.record(owner, "mt", era(0));
    key.state = state;
    key.revoked_at = revoked.map(era);
    key.expires_at = expires.map(era);
    key
}

/// Calls `prune_keys` until it returns nothing (at most `max_calls`
/// times), checking each batch's bound; returns every batch.
async fn drain(
    store: &dyn KeyStore,
    selection: PruneKeys,
    now: DateTime<Utc>,
    limit: usize,
    max_calls: usize,
) -> Vec<Vec<KeyId>> {
    let mut batches = Vec::new();
    for _ in 0..max_calls {
        let batch = store
            .prune_keys(selection, now, limit)
            .await
            .unwrap_or_else(|e| panic!("prune_keys({selection:?}, limit {limit}) failed: {e:?}"));
        assert!(
            batch.len() <= limit,
            "prune_keys deleted {} keys in one call with limit {limit}",
            batch.len()
        );
        if batch.is_empty() {
            return batches;
        }
        batches.push(batch);
    }
    panic!("prune_keys({selection:?}) still deleted keys after {max_calls} calls")
}

/// The ids among `batches` that `mine` holds, in order.
fn own(batches: &[Vec<KeyId>], mine: &BTreeSet<KeyId>) -> Vec<KeyId> {
    batches
        .iter()
        .flatten()
        .filter(|id| mine.contains(*id))
        .cloned()
        .collect()
}

/// Fails unless `key` is gone from both reads.
async fn assert_pruned(store: &dyn KeyStore, key: &KeyRecord, what: &str) {
    assert!(
        store.get_key(&key.id).await.expect("get_key").is_none(),
        "{what}: get_key still finds the pruned key {}",
        key.id
    );
    assert_no_verify_read(store, &key.id, &format!("{what}: the pruned key")).await;
}

/// Removes what a case kept that a later run's prune could select (kept
/// revoked and expired keys), so runs on one database stay apart.
async fn clean_up(store: &dyn KeyStore) {
    for selection in [
        PruneKeys::RevokedBefore(era_end()),
        PruneKeys::ExpiredBefore(era_end()),
    ] {
        drain(store, selection, era_end(), MAX_PRUNE_BATCH, 10_000).await;
    }
}

/// `prune_keys` deletes revoked keys revoked before the cutoff and active keys expired before it (and not after `now`), and nothing else: not a key revoked at or after the cutoff, not an active or disabled live key, not a disabled expired key, not a revoked key by its expiry; pruned keys read as `None`, their successor keeps its link, their audit events stay.
pub async fn prune_keys_deletes_only_dead_keys(store: &dyn KeyStore) {
    let _one_at_a_time = PRUNE_CASES.lock().await;
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let make = |state, revoked, expires| dead_or_alive(&fx, &owner, state, revoked, expires);
    use KeyState::{Active, Disabled, Revoked};

    let revoked_early = make(Revoked, Some(100), None);
    let revoked_at_cutoff = make(Revoked, Some(200), None);
    let revoked_late = make(Revoked, Some(300), None);
    let revoked_long_expired = make(Revoked, Some(300), Some(10));
    let active = make(Active, None, None);
    let active_unexpired = make(Active, None, Some(100_000));
    let disabled = make(Disabled, None, None);
    let expired_early = make(Active, None, Some(50));
    let expired_soon = make(Active, None, Some(150));
    let expired_late = make(Active, None, Some(250));
    let disabled_expired = make(Disabled, None, Some(50));
    // A successor that names a pruned predecessor keeps the link.
    let mut predecessor = make(Revoked, Some(100), Some(90));
    let mut successor = make(Active, None, None);
    predecessor.rotated_to = Some(successor.id.clone());
    successor.rotated_from = Some(predecessor.id.clone());
    let everything = [
        &revoked_early,
        &revoked_at_cutoff,
        &revoked_late,
        &revoked_long_expired,
        &active,
        &active_unexpired,
        &disabled,
        &expired_early,
        &expired_soon,
        &expired_late,
        &disabled_expired,
        &predecessor,
        &successor,
    ];
    for key in everything {
        insert(store, key).await;
    }
    let mine: BTreeSet<KeyId> = everything.iter().map(|k| k.id.clone()).collect();

    for bad in [0, MAX_PRUNE_BATCH + 1] {
        match store
            .prune_keys(PruneKeys::RevokedBefore(era(200)), era(1000), bad)
            .await
        {
            Err(Error::InvalidInput { .. }) => {}
            other => panic!("prune_keys with limit {bad}: expected InvalidInput, got {other:?}"),
        }
    }
    for key in everything {
        assert_stored(store, key).await;
    }

    // Revoked strictly before the cutoff, whatever the key's expiry.
    let revoked = drain(
        store,
        PruneKeys::RevokedBefore(era(200)),
        era(1000),
        100,
        10,
    )
    .await;
    let revoked: BTreeSet<KeyId> = own(&revoked, &mine).into_iter().collect();
    let expected: BTreeSet<KeyId> = [&revoked_early.id, &predecessor.id]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(
        revoked, expected,
        "RevokedBefore deletes exactly the keys revoked before the cutoff"
    );

    // Expired before the cutoff *and* by `now`: at era(120) only the key
    // that expired at era(50) is dead; the one expiring at era(150) is
    // still live then.
    let first = drain(store, PruneKeys::ExpiredBefore(era(200)), era(120), 100, 10).await;
    assert_eq!(
        own(&first, &mine),
        std::slice::from_ref(&expired_early.id),
        "ExpiredBefore deletes only active keys expired by now and before the cutoff"
    );
    let second = drain(
        store,
        PruneKeys::ExpiredBefore(era(200)),
        era(1000),
        100,
        10,
    )
    .await;
    assert_eq!(
        own(&second, &mine),
        std::slice::from_ref(&expired_soon.id),
        "ExpiredBefore keeps keys that expired at or after the cutoff, and disabled keys"
    );

    for key in [&revoked_early, &predecessor, &expired_early, &expired_soon] {
        assert_pruned(store, key, "after pruning").await;
        let events = store
            .list_audit(&AuditQuery::newest(10).key_id(&key.id))
            .await
            .expect("list_audit");
        assert_eq!(
            events,
            [issue_event(key)],
            "a pruned key's audit events stay (they are pruned by age)"
        );
    }
    for key in [
        &revoked_at_cutoff,
        &revoked_late,
        &revoked_long_expired,
        &active,
        &active_unexpired,
        &disabled,
        &expired_late,
        &disabled_expired,
        &successor,
    ] {
        assert_stored(store, key).await;
    }
    clean_up(store).await;
}

/// `prune_keys` deletes at most `limit` keys a call, oldest first, never the same key twice, and repeated calls drain the selection and end with an empty call.
pub async fn prune_keys_works_in_bounded_batches(store: &dyn KeyStore) {
    let _one_at_a_time = PRUNE_CASES.lock().await;
    let fx = Fixture::new();
    let owner = fx.owner("user");
    // Revoked (and, for the second selection, expired) in a shuffled order.
    let mut revoked = Vec::new();
    let mut expired = Vec::new();
    for i in 0..25_i64 {
        let when = 1000 + (i * 7) % 25;
        revoked.push(dead_or_alive(
            &fx,
            &owner,
            KeyState::Revoked,
            Some(when),
            None,
        ));
        expired.push(dead_or_alive(
            &fx,
            &owner,
            KeyState::Active,
            None,
            Some(when),
        ));
    }
    let live = dead_or_alive(&fx, &owner, KeyState::Active, None, None);
    for key in revoked.iter().chain(&expired).chain([&live]) {
        insert(store, key).await;
    }
    for (selection, keys, time) in [
        (PruneKeys::RevokedBefore(era(2000)), &revoked, "revoked_at"),
        (PruneKeys::ExpiredBefore(era(2000)), &expired, "expires_at"),
    ] {
        let mine: BTreeSet<KeyId> = keys.iter().map(|k| k.id.clone()).collect();
        let batches = drain(store, selection, era(3000), 10, 100).await;
        assert!(
            batches.len() >= 3,
            "{selection:?}: 25 keys in batches of at most 10 take at least 3 calls, took {}",
            batches.len()
        );
        let deleted = own(&batches, &mine);
        let distinct: BTreeSet<KeyId> = deleted.iter().cloned().collect();
        assert_eq!(
            distinct.len(),
            deleted.len(),
            "{selection:?}: a key was deleted twice"
        );
        assert_eq!(
            distinct, mine,
            "{selection:?}: the batches drain the selection"
        );
        // Each batch holds the oldest keys left (in no particular order
        // within the batch).
        let time_of = |id: &KeyId| {
            keys.iter()
                .find(|k| &k.id == id)
                .and_then(|k| selection.sort_time(k))
        };
        let by_batch: Vec<Option<DateTime<Utc>>> = batches
            .iter()
            .flat_map(|batch| {
                let mut times: Vec<_> = batch
                    .iter()
                    .filter(|id| mine.contains(*id))
                    .map(time_of)
                    .collect();
                times.sort();
                times
            })
            .collect();
        let mut expected: Vec<Option<DateTime<Utc>>> =
            keys.iter().map(|k| selection.sort_time(k)).collect();
        expected.sort();
        assert_eq!(
            by_batch, expected,
            "{selection:?}: each batch deletes the oldest {time} left"
        );
        for key in keys {
            assert_pruned(store, key, &format!("{selection:?}")).await;
        }
    }
    assert_stored(store, &live).await;
    clean_up(store).await;
}

/// `prune_audit` deletes at most `limit` events a call, the oldest first, only events before the cutoff, whatever order they were appended in.
pub async fn prune_audit_deletes_only_old_events_in_batches(store: &dyn KeyStore) {
    let _one_at_a_time = PRUNE_CASES.lock().await;
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let event = |secs: i64| {
        AuditEvent::new(era(secs), ACTOR, AuditAction::View)
            .with_owner(&owner)
            .with_detail(format!("at {secs}"))
    };
    // Appended out of time order: retention goes by `at`, not by append order.
    let times = [5_i64, 900, 1, 1000, 3, 2000, 2, 999, 4, 1001, 0, 6];
    for secs in times {
        store
            .append_audit(&event(secs))
            .await
            .expect("append_audit");
    }
    let remaining = || async {
        let mut left: Vec<i64> = store
            .list_audit(&AuditQuery::newest(100).owner(&owner))
            .await
            .expect("list_audit")
            .iter()
            .map(|e| (e.at - era(0)).num_seconds())
            .collect();
        left.sort_unstable();
        left
    };
    for bad in [0, MAX_PRUNE_BATCH + 1] {
        match store.prune_audit(era(1000), bad).await {
            Err(Error::InvalidInput { .. }) => {}
            other => panic!("prune_audit with limit {bad}: expected InvalidInput, got {other:?}"),
        }
    }
    // Earlier runs on a persistent database may have left old events: the
    // first call deletes at most its limit, and the oldest go first, so
    // this case's own events are judged by what is left.
    let mut calls = 0;
    loop {
        calls += 1;
        let deleted = store.prune_audit(era(1000), 3).await.expect("prune_audit");
        assert!(
            deleted <= 3,
            "prune_audit deleted {deleted} events with limit 3"
        );
        if calls == 1 {
            assert_eq!(
                deleted, 3,
                "the first batch of 3 finds at least 3 old events"
            );
            let left = remaining().await;
            assert_eq!(
                left,
                [3, 4, 5, 6, 900, 999, 1000, 1001, 2000],
                "the first batch deletes the 3 oldest events"
            );
        }
        if deleted < 3 {
            break;
        }
        assert!(calls < 1000, "prune_audit never ran out of old events");
    }
    assert_eq!(
        remaining().await,
        [1000, 1001, 2000],
        "prune_audit deletes every event before the cutoff and none at or after it"
    );
    assert_eq!(
        store.prune_audit(era(1000), 3).await.expect("prune_audit"),
        0,
        "nothing old is left"
    );
    // Leave nothing a later run's retention could count.
    while store
        .prune_audit(era_end(), MAX_PRUNE_BATCH)
        .await
        .expect("prune_audit")
        > 0
    {}
}

/// Writes `keys` through `bulk` when given, else through `insert_key`, 64
/// calls in flight.
async fn seed(store: &dyn KeyStore, bulk: Option<&dyn BulkInsert>, keys: &[KeyRecord]) {
    match bulk {
        Some(bulk) => bulk.insert_keys(keys).await.expect("bulk insert"),
        None => {
            futures_util::stream::iter(keys)
                .map(|key| async move {
                    let event = key_event(key, AuditAction::Issue, key.created_at);
                    store.insert_key(key, None, key.created_at, &event).await
                })
                .buffer_unordered(64)
                .for_each(|inserted| async move { inserted.expect("insert_key") })
                .await;
        }
    }
}

/// How many revoked keys the bulk case purges.
const PURGED: usize = 100_000;

/// A purge of 100 000 revoked keys in batches of [`MAX_PRUNE_BATCH`] deletes every one of them and leaves every live key (active, disabled, expiring later), every disabled expired key and every key revoked after the cutoff (50 of each) exactly as it was.
///
/// Seeds through `bulk` when given (an adapter's fast path for test
/// data), else through `insert_key`, 64 calls in flight.
pub async fn prune_of_100k_revoked_keys_leaves_every_live_key(
    store: &dyn KeyStore,
    bulk: Option<&dyn BulkInsert>,
) {
    let _one_at_a_time = PRUNE_CASES.lock().await;
    let fx = Fixture::new();
    let dead_owner = fx.owner("dead");
    let live_owner = fx.owner("live");
    let cutoff = era(50_000_000);

    let mut kept = Vec::new();
    for i in 0..50_i64 {
        let key =
            |state, revoked, expires| dead_or_alive(&fx, &live_owner, state, revoked, expires);
        kept.push(key(KeyState::Active, None, None));
        kept.push(key(KeyState::Disabled, None, None));
        kept.push(key(KeyState::Active, None, Some(100_000_000 + i)));
        kept.push(key(KeyState::Disabled, None, Some(i)));
        kept.push(key(KeyState::Revoked, Some(50_000_000 + i), None));
    }
    seed(store, bulk, &kept).await;
    let mut purged = BTreeSet::new();
    let chunk = 10_000;
    let mut seeded = 0;
    while seeded < PURGED {
        let keys: Vec<KeyRecord> = (seeded..(seeded + chunk).min(PURGED))
            .map(|i| {
                let secs = i64::try_from(i).expect("small");
                let mut key =
                    dead_or_alive(&fx, &dead_owner, KeyState::Revoked, Some(1000 + secs), None);
                key.created_at = era(secs % 1000);
                key
            })
            .collect();
        purged.extend(keys.iter().map(|k| k.id.clone()));
        seeded += keys.len();
        seed(store, bulk, &keys).await;
    }

    let batches = drain(
        store,
        PruneKeys::RevokedBefore(cutoff),
        era_end(),
        MAX_PRUNE_BATCH,
        PURGED / MAX_PRUNE_BATCH + 100,
    )
    .await;
    let deleted = own(&batches, &purged);
    let distinct: BTreeSet<KeyId> = deleted.iter().cloned().collect();
    assert_eq!(deleted.len(), distinct.len(), "a key was deleted twice");
    assert_eq!(
        distinct.len(),
        PURGED,
        "every revoked key before the cutoff is pruned"
    );
    let mut kept_ids: BTreeSet<KeyId> = kept.iter().map(|k| k.id.clone()).collect();
    assert!(
        batches.iter().flatten().all(|id| !kept_ids.remove(id)),
        "a kept key was pruned"
    );
    let left = store
        .list_keys(&ListQuery::new(dead_owner, era_end(), 10))
        .await
        .expect("list_keys");
    assert!(
        left.items.is_empty(),
        "purged keys still listed: {:?}",
        left.items
    );
    for key in &kept {
        assert_stored(store, key).await;
    }
    clean_up(store).await;
}
