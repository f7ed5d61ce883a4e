//! Invariant 6 of the [`KeyStore`] contract, **usage is forward-only**:
//! `record_usage` only moves `last_used_at` forward, a whole batch at once.

use crate::key::{KeyRecord, UsageRecord};
use crate::store::{KeyStore, ListQuery};
use crate::testkit::fixtures::{
    Fixture, assert_same_key, assert_stored, at, get, insert, insert_all, list_all, plus_micros,
};

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
