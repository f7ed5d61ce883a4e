//! Invariant 8 of the [`KeyStore`] contract, **timestamps round-trip**:
//! keys and audit events read back exactly as written, at microsecond
//! precision, with every string and map unchanged (quotes, wildcards and SQL
//! text included).

use crate::audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery};
use crate::key::{KeyRecord, Metadata};
use crate::lifecycle::KeyState;
use crate::permission::PermissionSet;
use crate::secret::{HashAlgorithm, TokenDigest, TokenHasher};
use crate::store::KeyStore;
use crate::testkit::fixtures::{
    ACTOR, Fixture, assert_no_verify_read, assert_stored, at, get, issue_event, plus_micros,
};

/// Every field of a key, including awkward strings, big values, binary digests and microsecond timestamps, reads back exactly as inserted.
pub async fn insert_then_get_round_trips_every_field(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user:o'brien \"q\" 100%_ünï 🔑");

    // Every field spelled out (no `..`), so a new field must be given a
    // value to round-trip here.
    let plain = fx.record(&owner, "mm_pat", plus_micros(at(0), 123_456));
    let full = KeyRecord {
        id: plain.id,
        kind: plain.kind,
        owner: plain.owner,
        name: "Robert'); DROP TABLE keys;-- \"100%\" a_b ünïcødé 🔑 back\\slash".to_owned(),
        digest: plain.digest,
        preview: "mm_pat_bUiB…".to_owned(),
        scopes: PermissionSet::parse(["billing.read", "billing.*", "publish", "files"])
            .expect("valid permissions"),
        roles: [fx.role("admin"), fx.role("reader")].into_iter().collect(),
        inherits_owner: true,
        metadata: Metadata::from([
            ("team".to_owned(), "it's 100% \"quoted\"".to_owned()),
            ("ünï 🔑".to_owned(), "cødé ✓".to_owned()),
            ("like".to_owned(), "%_\\[x]*?".to_owned()),
            ("sql".to_owned(), "'; DROP TABLE keys; --".to_owned()),
            ("empty".to_owned(), String::new()),
            ("json".to_owned(), r#"{"a": [1, "b"]}"#.to_owned()),
        ]),
        state: KeyState::Active,
        created_at: plain.created_at,
        expires_at: Some(plus_micros(at(90 * 86_400), 654_321)),
        last_used_at: Some(plus_micros(at(10), 1)),
        revoked_at: None,
        created_by: "session:user:o'brien".to_owned(),
        rotated_from: None,
        rotated_to: None,
    };

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
        .with_outcome(AuditOutcome::Refused(
            "limit reached: at most 3 live keys of this kind per owner".into(),
        ));
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
        .list_audit(&AuditQuery::newest(100).key_id(&k1))
        .await
        .expect("list_audit");
    assert_eq!(got, [refused, full], "events about k1, every field");
    let got = store
        .list_audit(&AuditQuery::newest(100).key_id(&k2))
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

/// The verify read of an unknown id is `None`, like `get_key`'s; of a known
/// key it is the same key (checked on every read by the suite's `get`).
pub async fn verify_read_of_an_unknown_id_is_none(store: &dyn KeyStore) {
    let fx = Fixture::new();
    let owner = fx.owner("user:verify-read");
    let key = fx.record(&owner, "tak", at(0));
    store
        .insert_key(&key, None, key.created_at, &issue_event(&key))
        .await
        .expect("insert_key");
    let unknown = fx.id();
    assert!(
        store.get_key(&unknown).await.expect("get_key").is_none(),
        "get_key of an unknown id"
    );
    assert_no_verify_read(store, &unknown, "an unknown id").await;
    assert_stored(store, &key).await;
}
