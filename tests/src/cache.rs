//! The verification cache, whatever the store: it answers exactly as the
//! store would after every change made through the service, never keeps an
//! answer read before a change, spares the store on hits, and is bounded in
//! time and size.

use crate::counting::{Counting, StoreCall};
use crate::support::{
    Backend, Directory, checksummed, clock_at, foreign_token, need, owner, perms, role,
};
use keyward_core::chrono::TimeDelta;
use keyward_core::testkit::ManualClock;
use keyward_core::testkit::records::base62;
use keyward_core::{
    Actor, IssueRequest, Keyward, Owner, Rejection, Requirement, Role, TokenKind, VerifiedKey,
    cache::CacheConfig, hooks::Clock, store::KeyState, store::KeyStore, store::Wrapped,
};
use std::sync::Arc;
use std::time::Duration;

/// A cache whose entries would live an hour: only invalidation keeps it right.
fn long_lived() -> CacheConfig {
    let hour = Duration::from_secs(3600);
    CacheConfig::new()
        .ttl(hour)
        .ttl_with_feed(hour)
        .negative_ttl(hour)
}

fn service(
    store: Arc<dyn KeyStore>,
    clock: &ManualClock,
    directory: &Directory,
    cache: Option<CacheConfig>,
) -> Keyward {
    let builder = Keyward::builder_arc(store)
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .owner_permissions(directory.clone());
    match cache {
        Some(config) => builder.verify_cache(config),
        None => builder,
    }
    .build()
    .unwrap()
}

/// A cached and an uncached service over one store, sharing a clock and a
/// user directory, with a role `ops` granting `deploy` for both owners.
struct Pair {
    clock: ManualClock,
    directory: Directory,
    cached: Keyward,
    uncached: Keyward,
    admin: Actor,
    workspace: Owner,
    user: Owner,
    ops: keyward_core::RoleName,
}

impl Pair {
    async fn new(store: Arc<dyn KeyStore>, user_holds: &[&str]) -> Self {
        let clock = clock_at(2026, 3, 2, 9);
        let directory = Directory::default();
        let user = owner("user");
        directory.set(&user, user_holds);
        let cached = service(Arc::clone(&store), &clock, &directory, Some(long_lived()));
        let uncached = service(store, &clock, &directory, None);
        let admin = Actor::operator("cache");
        let ops = role("ops");
        let workspace = owner("workspace");
        // Roles live in their owner's namespace: both owners get an `ops`.
        for holder in [&workspace, &user] {
            let role = Role::new(holder.clone(), ops.clone(), perms(&["deploy"]));
            cached.put_role(&admin, role).await.unwrap();
        }
        Self {
            clock,
            directory,
            cached,
            uncached,
            admin,
            workspace,
            user,
            ops,
        }
    }
}

/// An outcome in a form two services' answers can be compared in.
fn outcome(result: &Result<VerifiedKey, Rejection>) -> String {
    match result {
        Ok(key) => format!("ok {} {:?}", key.key_id(), key.permissions()),
        Err(Rejection::InsufficientPermissions { missing }) => format!("missing {missing}"),
        Err(other) => format!("{other:?}"),
    }
}

/// Every token against every requirement: the cached service answers as
/// the uncached one, twice in a row (a fill, then a hit).
async fn assert_same_answers(step: &str, cached: &Keyward, uncached: &Keyward, tokens: &[String]) {
    let requirements = [
        Requirement::nothing(),
        need("read"),
        need("deploy"),
        need("admin"),
    ];
    for round in ["fill", "hit"] {
        for token in tokens {
            for requirement in &requirements {
                let from_cache = outcome(&cached.verify(token, requirement).await);
                let from_store = outcome(&uncached.verify(token, requirement).await);
                assert_eq!(
                    from_cache, from_store,
                    "after {step} ({round}), requiring {requirement:?}"
                );
            }
        }
    }
}

/// After each kind of change made through the service — disable, enable,
/// role edit, role deletion, an owner's permissions changing in the host,
/// rotation and the predecessor's expiry, revoke, a state change through
/// the service's store — a cached verify answers exactly as a verify
/// straight from the store.
pub async fn cached_verify_answers_as_the_store_after_every_change(backend: Backend) {
    let Pair {
        clock,
        directory,
        cached,
        uncached,
        admin,
        workspace,
        user,
        ops,
    } = Pair::new(backend.store(), &["read", "deploy"]).await;
    let issue = |request: IssueRequest| {
        let cached = cached.clone();
        let admin = admin.clone();
        async move { cached.issue(&admin, request).await.unwrap() }
    };
    let plain =
        issue(IssueRequest::new("tak", workspace.clone(), "plain").scopes(perms(&["read"]))).await;
    let roled =
        issue(IssueRequest::new("tak", workspace.clone(), "roled").roles([ops.clone()])).await;
    let inheriting =
        issue(IssueRequest::new("tak", user.clone(), "inheriting").inherit_owner(None)).await;
    let mut tokens: Vec<String> = [&plain, &roled, &inheriting]
        .iter()
        .map(|issued| issued.token.expose_secret().to_owned())
        .collect();
    tokens.push(foreign_token(TokenKind::new("tak").unwrap()).await);
    assert_same_answers("issue", &cached, &uncached, &tokens).await;

    cached.disable(&admin, &plain.key.id).await.unwrap();
    assert_same_answers("disable", &cached, &uncached, &tokens).await;
    cached.enable(&admin, &plain.key.id).await.unwrap();
    assert_same_answers("enable", &cached, &uncached, &tokens).await;

    let widened = Role::new(workspace.clone(), ops.clone(), perms(&["deploy", "admin"]));
    cached.put_role(&admin, widened).await.unwrap();
    assert_same_answers("a role gaining a permission", &cached, &uncached, &tokens).await;
    cached.delete_role(&admin, &workspace, &ops).await.unwrap();
    assert_same_answers("a role deleted", &cached, &uncached, &tokens).await;

    directory.set(&user, &["read"]);
    cached.owner_permissions_changed(&user).await.unwrap();
    assert_same_answers("an owner losing a permission", &cached, &uncached, &tokens).await;

    let successor = cached
        .rotate(&admin, &plain.key.id, TimeDelta::hours(1))
        .await
        .unwrap();
    tokens.push(successor.token.expose_secret().to_owned());
    assert_same_answers("rotate", &cached, &uncached, &tokens).await;
    clock.advance(TimeDelta::hours(2));
    assert_same_answers("the overlap ending", &cached, &uncached, &tokens).await;

    cached.revoke(&admin, &roled.key.id).await.unwrap();
    assert_same_answers("revoke", &cached, &uncached, &tokens).await;

    let event = keyward_core::audit::AuditEvent::new(
        clock.now(),
        "operator:cache".to_owned(),
        keyward_core::audit::AuditAction::Disable,
    );
    keyward_core::dangerous::store(&cached)
        .set_state(
            &successor.key.id,
            KeyState::Active,
            KeyState::Disabled,
            clock.now(),
            &event,
        )
        .await
        .unwrap();
    assert_same_answers(
        "a state change through the store",
        &cached,
        &uncached,
        &tokens,
    )
    .await;
}

/// A verify that read a key from the store just before a revoke landed may
/// answer with what it read, but must not leave that answer in the cache:
/// the next verify says revoked.
pub async fn a_read_overtaken_by_a_revoke_is_never_cached(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let keyward = Keyward::builder_arc(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .verify_cache(long_lived())
        .build()
        .unwrap();
    let admin = Actor::operator("race");
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", owner("workspace"), "raced"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();

    let paused = counting.pause_next_read(&issued.key.id);
    let verify = tokio::spawn({
        let (keyward, token) = (keyward.clone(), token.clone());
        async move { keyward.verify(&token, &Requirement::nothing()).await }
    });
    paused.wait_until_read().await;
    keyward.revoke(&admin, &issued.key.id).await.unwrap();
    paused.resume();
    let overtaken = verify.await.unwrap();
    assert!(
        overtaken.is_ok(),
        "it read the key before the revoke: {overtaken:?}"
    );

    let after = keyward.verify(&token, &Requirement::nothing()).await;
    assert!(matches!(after, Err(Rejection::Revoked)), "{after:?}");
}

/// A cached service over a counting store, one issued key's token, and a
/// well-formed token nobody issued; the count starts at zero.
async fn counted_hot_key(backend: &Backend) -> (Arc<Wrapped<Counting>>, Keyward, String, String) {
    let counting = Counting::wrap(backend.store());
    let keyward = Keyward::builder_arc(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .verify_cache(long_lived())
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("hits"),
            IssueRequest::new("tak", owner("workspace"), "hot"),
        )
        .await
        .unwrap();
    let unknown = foreign_token(TokenKind::new("tak").unwrap()).await;
    counting.reset();
    (
        counting,
        keyward,
        issued.token.expose_secret().to_owned(),
        unknown,
    )
}

/// Repeated verifies of one token, and of a well-formed token nobody
/// issued, read the store once each.
pub async fn cache_hits_and_unknown_ids_spare_the_store(backend: Backend) {
    let (counting, keyward, token, unknown) = counted_hot_key(&backend).await;
    for _ in 0..50 {
        keyward
            .verify(&token, &Requirement::nothing())
            .await
            .unwrap();
        let rejected = keyward.verify(&unknown, &Requirement::nothing()).await;
        assert!(matches!(rejected, Err(Rejection::NotFound)), "{rejected:?}");
    }
    assert_eq!(counting.calls(StoreCall::GetKey), 2, "one read per key id");
    assert_eq!(counting.writes(), 0);
}

/// `Verification::ready` hands over the answer exactly when memory gave it
/// (a malformed token, a cache hit, an id cached as unknown), and hands the
/// verification back, with nothing read, when the store must be read; the
/// handed-back verification then answers as `verify` would.
pub async fn ready_answers_only_what_memory_knows(backend: Backend) {
    let (counting, keyward, token, unknown) = counted_hot_key(&backend).await;
    let token = token.as_str();
    let nothing = Requirement::nothing();

    let malformed = keyward.verify("tak_short", &nothing).ready();
    assert!(
        matches!(malformed, Ok(Err(Rejection::Malformed(_)))),
        "{malformed:?}"
    );

    // Not cached yet: handed back, and nothing was read.
    let first = keyward.verify(token, &nothing).ready();
    assert!(first.is_err(), "a miss needs the store: {first:?}");
    assert_eq!(
        counting.calls(StoreCall::GetKey),
        0,
        "a handed-back read never started"
    );
    let read = first.unwrap_err().await;
    assert!(read.is_ok(), "{read:?}");
    assert_eq!(counting.calls(StoreCall::GetKey), 1);

    let hit = keyward.verify(token, &nothing).ready();
    assert!(matches!(hit, Ok(Ok(_))), "a cache hit is ready: {hit:?}");

    assert!(keyward.verify(&unknown, &nothing).ready().is_err());
    let rejected = keyward.verify(&unknown, &nothing).await;
    assert!(matches!(rejected, Err(Rejection::NotFound)), "{rejected:?}");
    let cached_unknown = keyward.verify(&unknown, &nothing).ready();
    assert!(
        matches!(cached_unknown, Ok(Err(Rejection::NotFound))),
        "{cached_unknown:?}"
    );
    assert_eq!(counting.calls(StoreCall::GetKey), 2, "one read per key id");
}

/// Without a change feed an entry is served for `ttl` at most (judged by
/// the service's clock), an unknown id for `negative_ttl`; then the store
/// is read again. The status reports `ttl` as the worst-case staleness.
pub async fn entries_are_served_at_most_their_ttl(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let clock = clock_at(2026, 3, 2, 9);
    let config = CacheConfig::new()
        .ttl(Duration::from_secs(5))
        .negative_ttl(Duration::from_secs(3));
    let keyward = Keyward::builder_arc(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .verify_cache(config)
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("ttl"),
            IssueRequest::new("tak", owner("workspace"), "aging"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    let unknown = foreign_token(TokenKind::new("tak").unwrap()).await;
    let reads_after = |seconds: i64| {
        let (keyward, clock, counting) = (keyward.clone(), clock.clone(), Arc::clone(&counting));
        let (token, unknown) = (token.to_owned(), unknown.clone());
        async move {
            clock.advance(TimeDelta::seconds(seconds));
            counting.reset();
            keyward
                .verify(&token, &Requirement::nothing())
                .await
                .unwrap();
            keyward
                .verify(&unknown, &Requirement::nothing())
                .await
                .unwrap_err();
            counting.calls(StoreCall::GetKey)
        }
    };
    assert_eq!(reads_after(0).await, 2, "both loaded");
    assert_eq!(reads_after(1).await, 0, "both cached");
    assert_eq!(reads_after(2).await, 1, "the unknown id aged out at 3 s");
    assert_eq!(reads_after(1).await, 0, "the key is still cached at 4 s");
    assert_eq!(reads_after(1).await, 1, "the key aged out at 5 s");

    let status = keyward.cache_status().expect("a cache is configured");
    assert!(!status.feed_attached && !status.feed_fresh);
    assert_eq!(status.worst_case_staleness, Duration::from_secs(5));
}

/// However many keys are verified, the cache holds about its capacity.
pub async fn the_cache_holds_about_its_capacity(backend: Backend) {
    let keyward = backend
        .builder()
        .kind(TokenKind::new("tak").unwrap())
        .verify_cache(long_lived().capacity(64))
        .build()
        .unwrap();
    let admin = Actor::operator("capacity");
    let workspace = owner("workspace");
    for n in 0..300 {
        let issued = keyward
            .issue(
                &admin,
                IssueRequest::new("tak", workspace.clone(), &format!("key {n}")),
            )
            .await
            .unwrap();
        keyward
            .verify(issued.token.expose_secret(), &Requirement::nothing())
            .await
            .unwrap();
    }
    let entries = keyward.cache_status().unwrap().entries;
    assert!((1..=64).contains(&entries), "{entries} entries");
}

/// A well-formed `tak_` token nobody issued, minted without keyward: the
/// `n`-th of a series with distinct key ids, and a valid checksum.
fn forged_token(n: u64) -> String {
    checksummed(&format!("tak_Zz{}{}", base62(n, 8), "f".repeat(27)))
}

/// Anyone can mint well-formed tokens with fresh ids (the checksum is a
/// public CRC32). A flood of 50,000 of them must not empty the cache: with
/// room for 6,400 keys and 3,000 real keys cached, every real key is still
/// served from memory afterwards (no store read), and each forged token cost
/// exactly one read by key id (no roles read), a repeated one none.
pub async fn forged_tokens_never_evict_cached_keys(backend: Backend) {
    const REAL: usize = 3_000;
    const FORGED: u64 = 50_000;
    let counting = Counting::wrap(backend.store());
    let clock = clock_at(2026, 3, 2, 9);
    let keyward = Keyward::builder_arc(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("tak").unwrap())
        .clock(clock.clone())
        .verify_cache(long_lived().capacity(6_400))
        .build()
        .unwrap();
    let admin = Actor::operator("flood");
    let workspace = owner("workspace");
    let mut real = Vec::with_capacity(REAL);
    for n in 0..REAL {
        let issued = keyward
            .issue(
                &admin,
                IssueRequest::new("tak", workspace.clone(), &format!("real {n}")),
            )
            .await
            .unwrap();
        real.push(issued.token.expose_secret().to_owned());
    }
    let verify_real = || async {
        for token in &real {
            keyward
                .verify(token, &Requirement::nothing())
                .await
                .unwrap();
        }
    };
    verify_real().await;
    counting.reset();
    verify_real().await;
    assert_eq!(counting.reads(), 0, "every real key is cached");

    let forged: Vec<String> = (0..FORGED).map(forged_token).collect();
    assert!(keyward.format().parse(&forged[0]).is_ok(), "well formed");
    for token in &forged {
        let answer = keyward.verify(token, &Requirement::nothing()).await;
        assert!(matches!(answer, Err(Rejection::NotFound)), "{answer:?}");
    }
    assert_eq!(
        counting.calls(StoreCall::GetKey),
        FORGED as usize,
        "one read by key id per fresh forged id"
    );
    assert_eq!(counting.reads(), FORGED as usize, "and nothing else");
    assert_eq!(counting.writes(), 0);

    counting.reset();
    let again = keyward
        .verify(forged.last().unwrap(), &Requirement::nothing())
        .await;
    assert!(matches!(again, Err(Rejection::NotFound)), "{again:?}");
    assert_eq!(
        counting.reads(),
        0,
        "a repeated forged id is answered from memory"
    );

    counting.reset();
    verify_real().await;
    assert_eq!(
        counting.reads(),
        0,
        "the forged tokens pushed no real key out of the cache"
    );
}

/// One step of a random history.
#[derive(Debug, Clone)]
pub enum Step {
    /// Issue a key.
    Issue {
        /// Direct grants (the ceiling, for an inheriting key).
        scopes: Vec<&'static str>,
        /// Whether it holds the role.
        with_role: bool,
        /// Whether it inherits its owner's permissions.
        inherits: bool,
    },
    /// Disable the n-th key (modulo the number of keys).
    Disable(usize),
    /// Enable it.
    Enable(usize),
    /// Revoke it.
    Revoke(usize),
    /// Rotate it with this overlap in minutes.
    Rotate(usize, i64),
    /// Replace the role's permissions.
    PutRole(Vec<&'static str>),
    /// Delete the role.
    DeleteRole,
    /// The owner's own permissions change, and the host says so.
    OwnerChanges(Vec<&'static str>),
    /// Time passes (minutes).
    Advance(i64),
}

fn grants() -> impl proptest::strategy::Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(vec!["read", "deploy", "admin", "*"], 0..=2)
}

/// Histories of up to 24 steps.
pub fn histories() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
    use proptest::prelude::*;
    let step = prop_oneof![
        3 => (grants(), any::<bool>(), any::<bool>()).prop_map(|(scopes, with_role, inherits)| Step::Issue { scopes, with_role, inherits }),
        1 => any::<usize>().prop_map(Step::Disable),
        1 => any::<usize>().prop_map(Step::Enable),
        1 => any::<usize>().prop_map(Step::Revoke),
        1 => (any::<usize>(), 0i64..120).prop_map(|(n, overlap)| Step::Rotate(n, overlap)),
        1 => grants().prop_map(Step::PutRole),
        1 => Just(Step::DeleteRole),
        1 => grants().prop_map(Step::OwnerChanges),
        1 => (1i64..180).prop_map(Step::Advance),
    ];
    proptest::collection::vec(step, 1..24)
}

/// Plays `history` through a cached service and checks, after every step,
/// that it answers every token and requirement as an uncached service over
/// the same store does. Refused steps (enabling a revoked key, rotating a
/// disabled one …) are part of the history too.
pub async fn cached_and_uncached_agree(store: Arc<dyn KeyStore>, history: &[Step]) {
    let Pair {
        clock,
        directory,
        cached,
        uncached,
        admin,
        workspace,
        user,
        ops,
    } = Pair::new(store, &["read"]).await;
    let mut keys = Vec::new();
    let mut tokens = vec![foreign_token(TokenKind::new("tak").unwrap()).await];
    let pick = |keys: &Vec<keyward_core::KeyId>, n: usize| keys.get(n % keys.len().max(1)).cloned();
    for (at, step) in history.iter().enumerate() {
        match step {
            Step::Issue {
                scopes,
                with_role,
                inherits,
            } => {
                let mut request = if *inherits {
                    IssueRequest::new("tak", user.clone(), "pat").inherit_owner(Some(perms(scopes)))
                } else {
                    IssueRequest::new("tak", workspace.clone(), "key").scopes(perms(scopes))
                };
                if *with_role {
                    request = request.roles([ops.clone()]);
                }
                if let Ok(issued) = cached.issue(&admin, request).await {
                    keys.push(issued.key.id.clone());
                    tokens.push(issued.token.expose_secret().to_owned());
                }
            }
            Step::Disable(n) => {
                if let Some(id) = pick(&keys, *n) {
                    let _ = cached.disable(&admin, &id).await;
                }
            }
            Step::Enable(n) => {
                if let Some(id) = pick(&keys, *n) {
                    let _ = cached.enable(&admin, &id).await;
                }
            }
            Step::Revoke(n) => {
                if let Some(id) = pick(&keys, *n) {
                    let _ = cached.revoke(&admin, &id).await;
                }
            }
            Step::Rotate(n, overlap) => {
                if let Some(id) = pick(&keys, *n)
                    && let Ok(issued) = cached
                        .rotate(&admin, &id, TimeDelta::minutes(*overlap))
                        .await
                {
                    keys.push(issued.key.id.clone());
                    tokens.push(issued.token.expose_secret().to_owned());
                }
            }
            Step::PutRole(granted) => {
                for holder in [&workspace, &user] {
                    let role = Role::new(holder.clone(), ops.clone(), perms(granted));
                    cached.put_role(&admin, role).await.unwrap();
                }
            }
            Step::DeleteRole => {
                for holder in [&workspace, &user] {
                    let _ = cached.delete_role(&admin, holder, &ops).await;
                }
            }
            Step::OwnerChanges(granted) => {
                directory.set(&user, granted);
                cached.owner_permissions_changed(&user).await.unwrap();
            }
            Step::Advance(minutes) => clock.advance(TimeDelta::minutes(*minutes)),
        }
        assert_same_answers(&format!("step {at}: {step:?}"), &cached, &uncached, &tokens).await;
    }
}

/// A cache hit skips only the store read: the digest compare, the state
/// and expiry checks (against the clock now) and the permission check run
/// on the cached snapshot, with no store read.
pub async fn a_cache_hit_repeats_the_secret_state_expiry_and_permission_checks(backend: Backend) {
    let counting = Counting::wrap(backend.store());
    let clock = clock_at(2026, 3, 3, 9);
    let keyward =
        Keyward::builder_arc(Arc::clone(&counting) as Arc<dyn KeyStore>)
            .kind(TokenKind::new("tak").unwrap().with_expiry(
                keyward_core::ExpiryPolicy::never().with_max_until(TimeDelta::days(1)),
            ))
            .clock(clock.clone())
            .verify_cache(long_lived())
            .build()
            .unwrap();
    let admin = Actor::operator("hit");
    let issued = keyward
        .issue(
            &admin,
            IssueRequest::new("tak", owner("workspace"), "checked")
                .scopes(perms(&["read"]))
                .expires(keyward_core::Lifetime::Until(
                    clock.now() + TimeDelta::minutes(30),
                )),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    let read = need("read");
    keyward.verify(token, &read).await.unwrap();
    counting.reset();

    keyward.verify(token, &read).await.unwrap();
    let wrong = crate::support::with_wrong_secret(token);
    let answer = keyward.verify(&wrong, &read).await;
    assert!(matches!(answer, Err(Rejection::NotFound)), "{answer:?}");
    let answer = keyward.verify(token, &need("write")).await;
    assert!(
        matches!(answer, Err(Rejection::InsufficientPermissions { .. })),
        "{answer:?}"
    );
    assert_eq!(counting.reads(), 0, "all answered from the cached snapshot");

    keyward.disable(&admin, &issued.key.id).await.unwrap();
    let answer = keyward.verify(token, &read).await;
    assert!(matches!(answer, Err(Rejection::Disabled)), "{answer:?}");
    counting.reset();
    let answer = keyward.verify(token, &read).await;
    assert!(
        matches!(answer, Err(Rejection::Disabled)),
        "a hit: {answer:?}"
    );
    keyward.enable(&admin, &issued.key.id).await.unwrap();
    keyward.verify(token, &read).await.unwrap();

    // Past its expiry, well within the entry's hour: refused from memory.
    clock.advance(TimeDelta::minutes(31));
    counting.reset();
    let answer = keyward.verify(token, &read).await;
    assert!(matches!(answer, Err(Rejection::Expired)), "{answer:?}");
    assert_eq!(counting.reads(), 0, "the expiry is checked on the hit");
}

/// An id remembered as unknown is dropped the moment a key with that id is
/// written through the service: the key verifies at once, though the
/// negative entry would have lived an hour.
pub async fn inserting_a_key_drops_its_unknown_id(backend: Backend) {
    let keyward = Keyward::builder_arc(backend.store())
        .kind(TokenKind::new("tak").unwrap())
        .verify_cache(long_lived())
        .build()
        .unwrap();
    // A key issued elsewhere, then written into this service's store.
    let mint = Keyward::builder(keyward_memory::MemoryStore::new())
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap();
    let issued = mint
        .issue(
            &Actor::operator("mint"),
            IssueRequest::new("tak", owner("workspace"), "late"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    for _ in 0..2 {
        let answer = keyward.verify(token, &Requirement::nothing()).await;
        assert!(matches!(answer, Err(Rejection::NotFound)), "{answer:?}");
    }
    assert!(
        keyward.cache_status().unwrap().entries >= 1,
        "remembered as unknown"
    );
    let record = keyward_core::dangerous::store(&mint)
        .get_key(&issued.key.id)
        .await
        .unwrap()
        .unwrap();
    let event = keyward_core::audit::AuditEvent::new(
        record.created_at,
        "operator:late".to_owned(),
        keyward_core::audit::AuditAction::Issue,
    );
    keyward_core::dangerous::store(&keyward)
        .insert_key(&record, None, record.created_at, &event)
        .await
        .unwrap();
    let verified = keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
    assert_eq!(verified.key_id(), &issued.key.id);
}
