//! Invariant 7 of the [`KeyStore`] contract, **listing is stable**:
//! `list_keys` order, its owner (or every owner), name, kind, status and
//! last-use filters, and paging without duplicates or skips.

use crate::key::{KeyId, KeyRecord};
use crate::lifecycle::{KeyState, Status};
use crate::store::{Cursor, KeyStore, ListQuery, MAX_PAGE_SIZE, cursor_after};
use crate::testkit::fixtures::{
    Fixture, assert_same_key, at, change_state, ids, insert, insert_all, list_all, newest_first,
    plus_micros,
};

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
                        &cursor_after(tail),
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

/// With no owner, `list_keys` returns every owner's keys in one newest-first order, and its cursor pages across owners without duplicates or skips; an owner, when given, still narrows it.
pub async fn list_keys_across_owners_pages_every_owner(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owners = [fx.owner("a"), fx.owner("b"), fx.owner("c")];
    let mut keys = Vec::new();
    for (i, secs) in [5_i64, 40, 10, 40, 25, 15, 30, 40, 20]
        .into_iter()
        .enumerate()
    {
        let owner = &owners[i % owners.len()];
        let kind = if i % 2 == 0 { "mt" } else { "tak" };
        keys.push(fx.record(owner, kind, at(secs)));
    }
    for key in keys.iter().rev() {
        insert(store, key).await;
    }
    // Every owner's keys: the case's own, found by the tag in their names
    // (a shared store holds other cases' keys too).
    let tag_of = |key: &KeyRecord| key.id.as_str()[5..].to_owned();
    let mut everyone = ListQuery::all_owners(at(100), 2);
    everyone.name_contains = Some(tag_of(&keys[0]));
    let listed = list_all(store, everyone.clone()).await;
    assert_eq!(
        ids(&listed),
        newest_first(&keys.iter().collect::<Vec<_>>()),
        "every owner's keys, newest first, paged 2 at a time across owners"
    );
    for listed in &listed {
        let key = keys
            .iter()
            .find(|k| k.id == listed.id)
            .expect("listed key was inserted");
        assert_same_key(listed, key);
    }
    let mut one_kind = everyone.clone();
    one_kind.kind = Some("tak".to_owned());
    let tak: Vec<&KeyRecord> = keys.iter().filter(|k| k.kind == "tak").collect();
    assert_eq!(
        ids(&list_all(store, one_kind).await),
        newest_first(&tak),
        "across owners, the kind filter still applies"
    );
    let mut one_owner = everyone;
    one_owner.owner = Some(owners[1].clone());
    let of_b: Vec<&KeyRecord> = keys.iter().filter(|k| k.owner == owners[1]).collect();
    assert_eq!(
        ids(&list_all(store, one_owner).await),
        newest_first(&of_b),
        "an owner, when given, narrows the list"
    );
}

/// `last_used_before` keeps keys last used strictly before the time and keys never used (never used counts as used before any time), per owner and across owners.
pub async fn list_keys_filters_by_last_use(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user");
    let never = fx.record(&owner, "mt", at(1));
    let early = fx.record(&owner, "mt", at(2));
    let at_cutoff = fx.record(&owner, "mt", at(3));
    let late = fx.record(&owner, "mt", at(4));
    let other_owner_early = fx.record(&fx.owner("other"), "mt", at(5));
    for key in [&never, &early, &at_cutoff, &late, &other_owner_early] {
        insert(store, key).await;
    }
    let cutoff = plus_micros(at(20), 1);
    let usage = [
        crate::key::UsageRecord {
            key_id: early.id.clone(),
            used_at: at(20),
        },
        crate::key::UsageRecord {
            key_id: at_cutoff.id.clone(),
            used_at: cutoff,
        },
        crate::key::UsageRecord {
            key_id: late.id.clone(),
            used_at: at(30),
        },
        crate::key::UsageRecord {
            key_id: other_owner_early.id.clone(),
            used_at: at(10),
        },
    ];
    store.record_usage(&usage).await.expect("record_usage");

    let mut query = ListQuery::new(owner.clone(), at(100), 100);
    query.last_used_before = Some(cutoff);
    assert_eq!(
        ids(&list_all(store, query).await),
        [early.id.clone(), never.id.clone()],
        "last used before the time (strictly), or never used"
    );
    let mut everyone = ListQuery::all_owners(at(100), 100);
    everyone.last_used_before = Some(cutoff);
    everyone.name_contains = Some(never.id.as_str()[5..].to_owned());
    assert_eq!(
        ids(&list_all(store, everyone).await),
        [
            other_owner_early.id.clone(),
            early.id.clone(),
            never.id.clone()
        ],
        "the same filter across owners"
    );
}
