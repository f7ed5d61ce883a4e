//! Cross-process cache invalidation through the Postgres change feed.
//!
//! Each test runs two services, "processes" A and B, over one fresh schema,
//! each with its own pool and `PgStore`, a verification cache whose entries
//! live a minute (ten while the feed is fresh, with a feed bound of 1 s),
//! and its store as its change feed. The tables get a random prefix, so the
//! test's channel (`<prefix>changes`) is its own while other tests run
//! beside it on the same database.
//!
//! The pattern: B verifies a key, so its cache holds it; A (or an operator's
//! SQL) changes it; B verifies every few milliseconds until it answers the
//! new typed outcome. The time that takes, counted from before the change
//! was made, must stay within the staleness B reports
//! (`CacheStatus::worst_case_staleness`: the feed bound while the feed is
//! fresh) — far below the minute the entry would live without the feed.
//!
//! The measured times are printed (`--nocapture` shows them).

use crate::backends;
use crate::support::{Directory, need, owner, perms, role, suffix};
use keyward_core::chrono::TimeDelta;
use keyward_core::{
    Actor, IssueRequest, Keyward, Owner, Rejection, Requirement, Role, TokenKind, VerifiedKey,
    cache::CacheConfig, cache::CacheStatus, store::sql::TablePrefix,
};
use keyward_postgres::PgStore;
use keyward_postgres::sqlx::postgres::{PgListener, PgPoolOptions};
use keyward_postgres::sqlx::{self, AssertSqlSafe, PgPool};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// The most a fresh feed may lag: B's worst-case staleness while it is fresh.
const FEED_BOUND: Duration = Duration::from_secs(1);
/// Entry lifetime without a fresh feed, in the tests that do not drop it:
/// long enough that only the feed can explain a change seen within a second.
const LONG_TTL: Duration = Duration::from_secs(60);
/// Entry lifetime without a fresh feed, in the test that drops it.
const SHORT_TTL: Duration = Duration::from_secs(2);
/// Generous limits for what is not the bound under test.
const FRESH_WITHIN: Duration = Duration::from_secs(10);
const GIVE_UP: Duration = Duration::from_secs(20);
/// How often B verifies while waiting for a change to show.
const POLL: Duration = Duration::from_millis(5);

/// Where B's change feed listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedPool {
    /// On B's own pool, as `change_feed(store)` with the store B uses.
    Shared,
    /// On a pool of its own (two connections: the listener and the
    /// heartbeats), which the feed-drop test can take away.
    Separate,
    /// On a pool of its own whose connections go through a [`Relay`] the
    /// test can stall without closing anything.
    Relayed,
}

/// Two processes on one schema, and what the tests need to reach around
/// them.
struct Fleet {
    a: Keyward,
    b: Keyward,
    /// A's store, for a third process without a feed.
    a_store: PgStore,
    ttl: Duration,
    /// A pool on the schema for an operator's SQL and for killing backends.
    admin: PgPool,
    prefix: TablePrefix,
    directory: Directory,
    /// The pool B's feed runs on, and its connections' `application_name`.
    b_feed: PgPool,
    b_feed_app: String,
    /// The relay B's feed connections go through, with `FeedPool::Relayed`.
    relay: Option<Relay>,
    operator: Actor,
}

fn cache_config(ttl: Duration) -> CacheConfig {
    CacheConfig::new()
        .ttl(ttl)
        .ttl_with_feed(Duration::from_secs(600))
        .feed_bound(FEED_BOUND)
}

impl Fleet {
    /// Starts A and B with entries living `ttl` without a fresh feed, and
    /// waits until both feeds are fresh. `None` when Postgres is not
    /// available (the notice is printed).
    async fn start(ttl: Duration, feed_pool: FeedPool) -> Option<Self> {
        let base = backends::postgres().await?;
        let options = base.pool().connect_options();
        let tag = suffix();
        let prefix = TablePrefix::new(&format!("kwf{}_", &tag[..8])).unwrap();
        let pool = |name: &str, max_connections: u32| {
            let app = format!("kwfeed_{tag}_{name}");
            let options = (*options).clone().application_name(&app);
            async move {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .unwrap();
                (pool, app)
            }
        };
        let (a_pool, _) = pool("a", 4).await;
        let a_store = PgStore::with_table_prefix(a_pool, prefix.clone());
        a_store.migrate().await.unwrap();
        let (b_pool, b_app) = pool("b", 4).await;
        let b_store = PgStore::with_table_prefix(b_pool, prefix.clone());
        let mut relay = None;
        let (b_feed, b_feed_app) = match feed_pool {
            FeedPool::Shared => (b_store.clone(), b_app),
            FeedPool::Separate => {
                let (feed_pool, feed_app) = pool("b_feed", 2).await;
                (
                    PgStore::with_table_prefix(feed_pool, prefix.clone()),
                    feed_app,
                )
            }
            FeedPool::Relayed => {
                let through = Relay::start(options.get_host(), options.get_port()).await;
                let feed_app = format!("kwfeed_{tag}_b_feed");
                let relayed = (*options)
                    .clone()
                    .host("127.0.0.1")
                    .port(through.addr.port())
                    .application_name(&feed_app);
                let feed_pool = PgPoolOptions::new()
                    .max_connections(2)
                    .test_before_acquire(false)
                    .connect_with(relayed)
                    .await
                    .unwrap();
                relay = Some(through);
                (
                    PgStore::with_table_prefix(feed_pool, prefix.clone()),
                    feed_app,
                )
            }
        };
        let directory = Directory::default();
        let service = |store: PgStore, feed: PgStore| {
            Keyward::builder(store)
                .kind(TokenKind::new("tak").unwrap())
                .kind(TokenKind::new("pat").unwrap())
                .owner_permissions(directory.clone())
                .verify_cache(cache_config(ttl))
                .change_feed(feed)
                .build()
                .unwrap()
        };
        let fleet = Self {
            a: service(a_store.clone(), a_store.clone()),
            a_store,
            ttl,
            b: service(b_store, b_feed.clone()),
            admin: base.pool().clone(),
            prefix,
            directory,
            b_feed: b_feed.pool().clone(),
            b_feed_app,
            relay,
            operator: Actor::operator("feed-test"),
        };
        until_fresh(&fleet.a, "A").await;
        until_fresh(&fleet.b, "B").await;
        Some(fleet)
    }

    /// A third process with the same cache but no change feed: it hears of
    /// nothing and serves what it cached for the whole `ttl`.
    fn without_feed(&self) -> Keyward {
        Keyward::builder(self.a_store.clone())
            .kind(TokenKind::new("tak").unwrap())
            .verify_cache(cache_config(self.ttl))
            .build()
            .unwrap()
    }

    fn b_status(&self) -> CacheStatus {
        self.b.cache_status().expect("B has a cache")
    }

    /// Issues a key through A, then has B verify it against `requirement`
    /// so B's cache holds it. Returns the key id and the token.
    async fn cached_in_b(
        &self,
        request: IssueRequest,
        requirement: &Requirement,
    ) -> (keyward_core::KeyId, String) {
        let issued = self.a.issue(&self.operator, request).await.unwrap();
        let token = issued.token.expose_secret().to_owned();
        self.settle().await;
        let entries = self.b_status().entries;
        self.b.verify(&token, requirement).await.unwrap();
        assert_eq!(
            self.b_status().entries,
            entries + 1,
            "B caches the key it verified"
        );
        (issued.key.id, token)
    }

    /// Waits out the feed bound (and a margin), so every notification of
    /// what was changed so far has reached B: the insert of a key must not
    /// drop the entry B is about to fill, or the change under test would
    /// meet an empty cache.
    /// (With the feed down there is nothing on its way to wait for.)
    async fn settle(&self) {
        if self.b_status().feed_fresh {
            sleep(FEED_BOUND + Duration::from_millis(250)).await;
        }
    }

    /// Makes `change`, then verifies `token` through B every few
    /// milliseconds until `outcome` accepts the answer.
    ///
    /// Fails if B still gave the old answer to a verify that *started*
    /// later after the change than the staleness B reported while the
    /// change was made (read before and right after it; the larger applies
    /// if the feed's state changed in between). Times count from before the
    /// change was made, so they include its own latency. Returns when the
    /// first new answer was asked for.
    async fn staleness(
        &self,
        what: &str,
        token: &str,
        requirement: &Requirement,
        change: impl Future<Output = ()>,
        outcome: impl Fn(&Result<VerifiedKey, Rejection>) -> bool,
    ) -> Duration {
        self.staleness_within(what, token, requirement, change, outcome, None)
            .await
    }

    /// [`Fleet::staleness`], held to `promised` (the bound B reported
    /// before the change) if given.
    async fn staleness_within(
        &self,
        what: &str,
        token: &str,
        requirement: &Requirement,
        change: impl Future<Output = ()>,
        outcome: impl Fn(&Result<VerifiedKey, Rejection>) -> bool,
        promised: Option<Duration>,
    ) -> Duration {
        let before = self.b_status();
        let started = Instant::now();
        change.await;
        let after = self.b_status();
        let mut last_stale = None;
        let seen = loop {
            let asked = started.elapsed();
            let answer = self.b.verify(token, requirement).await;
            if outcome(&answer) {
                break asked;
            }
            last_stale = Some(asked);
            assert!(
                asked < GIVE_UP,
                "{what}: B still answers {answer:?} after {GIVE_UP:?}"
            );
            sleep(POLL).await;
        };
        let bound =
            promised.unwrap_or_else(|| before.worst_case_staleness.max(after.worst_case_staleness));
        eprintln!(
            "{what}: B's first new answer was asked for {seen:?} after the change began, \
             its last stale one {last_stale:?} (feed fresh {} → {} → {}, bound {bound:?})",
            before.feed_fresh,
            after.feed_fresh,
            self.b_status().feed_fresh
        );
        if let Some(last_stale) = last_stale {
            assert!(
                last_stale <= bound,
                "{what}: B still served the old answer {last_stale:?} after the change, \
                 beyond its worst-case staleness {bound:?}"
            );
        }
        seen
    }

    /// Kills the backend of B's listener (found by its pool's
    /// `application_name`, which no other test's connections carry).
    /// Returns how many backends were terminated: 1, or 0 while the
    /// listener is between connections.
    async fn kill_b_listener(&self) -> usize {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND query ILIKE 'LISTEN%' \
             AND datname = current_database()",
        )
        .bind(&self.b_feed_app)
        .fetch_all(&self.admin)
        .await
        .unwrap();
        assert!(killed.len() <= 1, "B has one listener: {killed:?}");
        killed.into_iter().filter(|killed| *killed).count()
    }
}

/// Waits until `keyward`'s feed has proven itself fresh.
async fn until_fresh(keyward: &Keyward, who: &str) {
    let started = Instant::now();
    while !keyward.cache_status().unwrap().feed_fresh {
        assert!(
            started.elapsed() < FRESH_WITHIN,
            "{who}'s change feed did not become fresh within {FRESH_WITHIN:?}"
        );
        sleep(POLL).await;
    }
}

fn revoked(answer: &Result<VerifiedKey, Rejection>) -> bool {
    matches!(answer, Err(Rejection::Revoked))
}

fn disabled(answer: &Result<VerifiedKey, Rejection>) -> bool {
    matches!(answer, Err(Rejection::Disabled))
}

fn expired(answer: &Result<VerifiedKey, Rejection>) -> bool {
    matches!(answer, Err(Rejection::Expired))
}

fn lacks(permission: &str) -> impl Fn(&Result<VerifiedKey, Rejection>) -> bool {
    let missing = need(permission);
    move |answer| matches!(answer, Err(Rejection::InsufficientPermissions { missing: m }) if *m == missing)
}

/// An account's API key with `data.read` and `data.write`.
fn data_key(account: &Owner) -> IssueRequest {
    IssueRequest::new("tak", account.clone(), "ingest").scopes(perms(&["data.read", "data.write"]))
}

/// A key revoked in A is refused in B within the feed bound.
pub async fn a_revoke_reaches_another_process() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let read = need("data.read");
    let (id, token) = fleet.cached_in_b(data_key(&owner("account")), &read).await;
    let control = fleet.without_feed();
    control.verify(&token, &read).await.unwrap();
    let change = async {
        fleet.a.revoke(&fleet.operator, &id).await.unwrap();
    };
    fleet
        .staleness("revoke", &token, &read, change, revoked)
        .await;
    // The control: a process without the feed still answers from its cache
    // (its entry lives a minute), so only the feed explains what B saw.
    let status = control.cache_status().unwrap();
    assert!(!status.feed_attached);
    assert_eq!(status.worst_case_staleness, LONG_TTL);
    control.verify(&token, &read).await.unwrap();
}

/// A key disabled in A is refused in B within the feed bound.
pub async fn a_disable_reaches_another_process() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let read = need("data.read");
    let (id, token) = fleet.cached_in_b(data_key(&owner("account")), &read).await;
    let change = async {
        fleet.a.disable(&fleet.operator, &id).await.unwrap();
    };
    fleet
        .staleness("disable", &token, &read, change, disabled)
        .await;
}

/// A role that loses a permission in A takes it from B's cached keys that
/// hold the role, within the feed bound.
pub async fn a_role_losing_a_permission_reaches_another_process() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let writer = role("writer");
    let account = owner("account");
    let both = Role::new(
        account.clone(),
        writer.clone(),
        perms(&["data.read", "data.write"]),
    );
    fleet.a.put_role(&fleet.operator, both).await.unwrap();
    let write = need("data.write");
    let request = IssueRequest::new("tak", account.clone(), "by role").roles([writer.clone()]);
    let (_, token) = fleet.cached_in_b(request, &write).await;
    let change = async {
        let read_only = Role::new(account.clone(), writer.clone(), perms(&["data.read"]));
        fleet.a.put_role(&fleet.operator, read_only).await.unwrap();
    };
    fleet
        .staleness("role edit", &token, &write, change, lacks("data.write"))
        .await;
}

/// A role deleted in A takes its permissions from B's cached keys within
/// the feed bound.
pub async fn a_deleted_role_reaches_another_process() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let writer = role("writer");
    let account = owner("account");
    let role_def = Role::new(account.clone(), writer.clone(), perms(&["data.write"]));
    fleet.a.put_role(&fleet.operator, role_def).await.unwrap();
    let write = need("data.write");
    let request = IssueRequest::new("tak", account.clone(), "by role").roles([writer.clone()]);
    let (_, token) = fleet.cached_in_b(request, &write).await;
    let change = async {
        fleet
            .a
            .delete_role(&fleet.operator, &account, &writer)
            .await
            .unwrap();
    };
    fleet
        .staleness("role delete", &token, &write, change, lacks("data.write"))
        .await;
}

/// A key rotated in A with no overlap stops working in B (as expired)
/// within the feed bound, though B cached it as never expiring.
pub async fn a_rotation_without_overlap_expires_the_old_key_in_another_process() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let read = need("data.read");
    let (id, token) = fleet.cached_in_b(data_key(&owner("account")), &read).await;
    let successor = Mutex::new(None);
    let change = async {
        let issued = fleet
            .a
            .rotate(&fleet.operator, &id, TimeDelta::zero())
            .await
            .unwrap();
        *successor.lock().unwrap() = Some(issued.token.expose_secret().to_owned());
    };
    fleet
        .staleness("rotation", &token, &read, change, expired)
        .await;
    let successor = successor.lock().unwrap().take().unwrap();
    fleet.b.verify(&successor, &read).await.unwrap();
}

/// An operator's `UPDATE <prefix>keys SET state = 'revoked'` in plain SQL,
/// through no keyward process at all, reaches B's cache within the feed
/// bound: the trigger announces it.
pub async fn an_operators_sql_revoke_reaches_every_process() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let read = need("data.read");
    let (id, token) = fleet.cached_in_b(data_key(&owner("account")), &read).await;
    let keys = fleet.prefix.table("keys");
    let change = async {
        let updated = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {keys} SET state = 'revoked', revoked_at = now() WHERE id = $1"
        )))
        .bind(id.as_str())
        .execute(&fleet.admin)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(updated, 1);
    };
    fleet
        .staleness("operator SQL", &token, &read, change, revoked)
        .await;
}

/// A prunes a revoked key that B holds in its cache (as revoked): B
/// answers "unknown" within the feed bound, the delete trigger's
/// notification dropping the entry, as if B had never seen the key.
pub async fn a_prune_reaches_another_process() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let read = need("data.read");
    let (id, token) = fleet.cached_in_b(data_key(&owner("account")), &read).await;
    fleet.a.revoke(&fleet.operator, &id).await.unwrap();
    fleet
        .staleness("revoke before the prune", &token, &read, async {}, revoked)
        .await;
    let change = async {
        let cutoff = keyward_core::chrono::Utc::now();
        let report = fleet
            .a
            .prune(
                &fleet.operator,
                keyward_core::store::PruneRequest::new().revoked_before(cutoff),
            )
            .await
            .unwrap();
        assert_eq!(report.revoked_keys, 1);
    };
    fleet
        .staleness("prune", &token, &read, change, |answer| {
            matches!(answer, Err(Rejection::NotFound))
        })
        .await;
}

/// A reports that a user's own permissions changed
/// (`owner_permissions_changed`); B's cached personal access token that
/// inherits them follows within the feed bound.
pub async fn an_owners_changed_permissions_reach_another_process() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let alice = owner("user");
    fleet.directory.set(&alice, &["repo.read", "repo.write"]);
    let write = need("repo.write");
    let request = IssueRequest::new("pat", alice.clone(), "deploy").inherit_owner(None);
    let (_, token) = fleet.cached_in_b(request, &write).await;
    let change = async {
        fleet.directory.set(&alice, &["repo.read"]);
        fleet.a.owner_permissions_changed(&alice).await.unwrap();
    };
    fleet
        .staleness(
            "owner permissions",
            &token,
            &write,
            change,
            lacks("repo.write"),
        )
        .await;
}

/// Flushing usage (an update of `last_used_at` alone) notifies no one, so
/// it never empties another process's cache; a real change right after it
/// does. Postgres delivers notifications in commit order, so a marker sent
/// last proves nothing else came.
pub async fn a_usage_flush_notifies_no_one() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Shared).await else {
        return;
    };
    let read = need("data.read");
    let (id, token) = fleet.cached_in_b(data_key(&owner("account")), &read).await;
    let channel = fleet.a_store.change_channel().await.unwrap();
    let mut listener = PgListener::connect_with(&fleet.admin).await.unwrap();
    listener.listen(&channel).await.unwrap();

    fleet.a.verify(&token, &read).await.unwrap();
    assert_eq!(fleet.a.flush_usage().await.unwrap(), 1);
    fleet.a.disable(&fleet.operator, &id).await.unwrap();
    sqlx::query("SELECT pg_notify($1, 'marker')")
        .bind(&channel)
        .execute(&fleet.admin)
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.last().is_none_or(|last| last != "marker") {
        let notification = timeout(GIVE_UP, listener.recv())
            .await
            .expect("the marker arrives")
            .unwrap();
        // Heartbeats are the processes' own business.
        if !notification.payload().starts_with("p:") {
            seen.push(notification.payload().to_owned());
        }
    }
    assert_eq!(seen, [format!("k:{id}"), "marker".to_owned()]);
}

/// When B's feed connection dies and cannot come back: the feed stops
/// counting as fresh, entries live only the short `ttl`, so a change made
/// meanwhile still shows within it; once the feed reconnects it drops the
/// whole cache (what changed in between is unknown) and is fresh again,
/// and changes flow through it as before.
pub async fn a_dropped_feed_falls_back_to_ttl_then_reconnects_with_an_empty_cache() {
    let Some(fleet) = Fleet::start(SHORT_TTL, FeedPool::Separate).await else {
        return;
    };
    let read = need("data.read");
    let account = owner("account");

    // Take the feed away: hold the pool's heartbeat connection, kill the
    // listener's backend, and take its slot before the listener's first
    // reconnect (which waits 100 ms), so it cannot come back.
    let heartbeat_slot = fleet.b_feed.acquire().await.unwrap();
    let mut attempts = 0;
    let listener_slot = loop {
        attempts += 1;
        assert!(attempts <= 20, "could not take B's feed connection away");
        if fleet.kill_b_listener().await == 0 {
            sleep(Duration::from_millis(50)).await;
            continue;
        }
        // If the listener got its slot back first, kill it again.
        if let Ok(slot) = timeout(Duration::from_secs(2), fleet.b_feed.acquire()).await {
            break slot.unwrap();
        }
    };
    let started = Instant::now();
    while fleet.b_status().feed_fresh {
        assert!(
            started.elapsed() < FRESH_WITHIN,
            "B's feed still counts as fresh {FRESH_WITHIN:?} after its connection died"
        );
        sleep(POLL).await;
    }
    eprintln!(
        "feed drop: B's feed stopped counting as fresh after {:?}",
        started.elapsed()
    );
    let down = fleet.b_status();
    assert!(down.feed_attached);
    assert_eq!(down.worst_case_staleness, SHORT_TTL);

    // A change B cannot hear of: its entry still goes within the ttl.
    let (id, token) = fleet.cached_in_b(data_key(&account), &read).await;
    let change = async {
        fleet.a.revoke(&fleet.operator, &id).await.unwrap();
    };
    fleet
        .staleness(
            "revoke while the feed is down",
            &token,
            &read,
            change,
            revoked,
        )
        .await;
    assert!(!fleet.b_status().feed_fresh, "the feed is still down");
    assert!(
        fleet.b_status().entries > 0,
        "B holds the revoked key's entry"
    );

    // Give the connections back: the listener reconnects, empties the
    // cache and proves itself fresh again.
    drop((heartbeat_slot, listener_slot));
    let started = Instant::now();
    until_fresh(&fleet.b, "B, reconnecting,").await;
    eprintln!(
        "feed drop: B's feed was fresh again {:?} after the pool was back",
        started.elapsed()
    );
    assert_eq!(
        fleet.b_status().entries,
        0,
        "reconnecting dropped every entry"
    );
    assert_eq!(fleet.b_status().worst_case_staleness, FEED_BOUND);

    // And the feed carries changes again.
    let (id, token) = fleet.cached_in_b(data_key(&account), &read).await;
    let change = async {
        fleet.a.disable(&fleet.operator, &id).await.unwrap();
    };
    fleet
        .staleness(
            "disable after the feed reconnected",
            &token,
            &read,
            change,
            disabled,
        )
        .await;
}

/// B's listener stalls: its connections stay open, but nothing moves on
/// them (no heartbeat comes back, no notification arrives; a hung network
/// path or a frozen backend look like this). A key revoked in A right after
/// B reported a fresh feed must be refused by B within the bound B reported
/// then — the feed bound — not served for the entry's `ttl`.
pub async fn a_stalled_listener_still_refuses_a_revoked_key_within_the_reported_bound() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Relayed).await else {
        return;
    };
    let read = need("data.read");
    let (id, token) = fleet.cached_in_b(data_key(&owner("account")), &read).await;
    let relay = fleet.relay.as_ref().expect("a relayed feed");

    // The promise is what B reports once its feed is stalled but still
    // counts as fresh (within the bound of its last heartbeat).
    let mut attempts = 0;
    let promised = loop {
        relay.pause();
        let status = fleet.b_status();
        if status.feed_fresh {
            break status;
        }
        attempts += 1;
        assert!(
            attempts <= 20,
            "B's feed never counted as fresh when stalled"
        );
        relay.resume();
        until_fresh(&fleet.b, "B").await;
        fleet.b.verify(&token, &read).await.unwrap();
    };
    assert_eq!(promised.worst_case_staleness, FEED_BOUND);
    let change = async {
        fleet.a.revoke(&fleet.operator, &id).await.unwrap();
    };
    fleet
        .staleness_within(
            "revoke while B's listener is stalled",
            &token,
            &read,
            change,
            revoked,
            Some(promised.worst_case_staleness),
        )
        .await;
    // Stalled, not disconnected: B's listening backend is still there.
    let listening: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&fleet.b_feed_app)
    .fetch_one(&fleet.admin)
    .await
    .unwrap();
    assert_eq!(listening, 1, "B's listener kept its connection");
    let stalled = fleet.b_status();
    assert!(!stalled.feed_fresh);
    assert_eq!(stalled.worst_case_staleness, LONG_TTL);

    // Once the path moves again, B's feed proves itself fresh again.
    relay.resume();
    until_fresh(&fleet.b, "B, after the stall,").await;
}

/// Who sent a notification: the backend pids of B's feed connections.
async fn b_feed_pids(fleet: &Fleet) -> Vec<i32> {
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
        .bind(&fleet.b_feed_app)
        .fetch_all(&fleet.admin)
        .await
        .unwrap()
}

/// Listens on the fleet's channel from an outsider's connection, and
/// returns one heartbeat B sent (its payload, as anyone listening sees it).
async fn one_of_bs_heartbeats(fleet: &Fleet) -> (PgListener, String) {
    let channel = fleet.a_store.change_channel().await.unwrap();
    let mut outsider = PgListener::connect_with(&fleet.admin).await.unwrap();
    outsider.listen(&channel).await.unwrap();
    let pids = b_feed_pids(fleet).await;
    loop {
        let notification = timeout(GIVE_UP, outsider.recv())
            .await
            .expect("B sends heartbeats")
            .unwrap();
        let from = i32::try_from(notification.process_id()).unwrap();
        if notification.payload().starts_with("p:") && pids.contains(&from) {
            return (outsider, notification.payload().to_owned());
        }
    }
}

/// Stops B's heartbeats (the listener keeps receiving): holds the one
/// connection of B's feed pool the listener does not, and waits until B's
/// feed no longer counts as fresh. Then B caches a key again, so that the
/// `*` sent after the forgeries shows when B has read them.
async fn stop_bs_heartbeats(fleet: &Fleet, token: &str) -> impl Drop {
    let held = fleet.b_feed.acquire().await.unwrap();
    let started = Instant::now();
    while fleet.b_status().feed_fresh {
        assert!(
            started.elapsed() < FRESH_WITHIN,
            "B's feed still counts as fresh without heartbeats"
        );
        sleep(POLL).await;
    }
    fleet.b.verify(token, &need("data.read")).await.unwrap();
    assert!(fleet.b_status().entries > 0);
    held
}

/// Sends `payloads` on the fleet's channel from an outsider's connection,
/// then `*`, and waits until B has dropped its entries: B has read them all
/// (notifications arrive in commit order).
async fn forge(fleet: &Fleet, payloads: &[String]) {
    let channel = fleet.a_store.change_channel().await.unwrap();
    for payload in payloads.iter().map(String::as_str).chain(["*"]) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&channel)
            .bind(payload)
            .execute(&fleet.admin)
            .await
            .unwrap();
    }
    let started = Instant::now();
    while fleet.b_status().entries > 0 {
        assert!(
            started.elapsed() < GIVE_UP,
            "B never read the forged notifications"
        );
        sleep(POLL).await;
    }
}

/// Anyone who can log in may `NOTIFY` on the channel, and sees B's
/// heartbeats. A forged heartbeat stamped far in the future — in the form B's
/// heartbeats had, with B's own instance, or with a made-up nonce — must not
/// make B's stalled feed count as fresh (which would let a revoked key live
/// `ttl_with_feed`).
pub async fn a_forged_heartbeat_does_not_make_a_stalled_feed_fresh() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Separate).await else {
        return;
    };
    let (_, token) = fleet
        .cached_in_b(data_key(&owner("account")), &need("data.read"))
        .await;
    let (_outsider, heard) = one_of_bs_heartbeats(&fleet).await;
    let _held = stop_bs_heartbeats(&fleet, &token).await;

    // 2100-01-01 in microseconds since the epoch.
    let far_future = 4_102_444_800_000_000i64;
    let instance = heard
        .rsplit_once(':')
        .map_or(heard.as_str(), |(head, _)| head);
    let forged = vec![
        format!("{instance}:{far_future}"),
        format!("{heard}:{far_future}"),
        format!("p:{}:{far_future}", suffix()),
        format!("p:{}{}", suffix(), suffix()),
        "p:".to_owned(),
        format!("p:{far_future}"),
    ];
    forge(&fleet, &forged).await;
    let status = fleet.b_status();
    assert!(
        !status.feed_fresh,
        "a forged heartbeat made B's feed fresh: {status:?}"
    );
    assert_eq!(status.worst_case_staleness, LONG_TTL);
}

/// A heartbeat B really sent, replayed by someone else after B saw it come
/// back, proves nothing about what was committed since: it must not make
/// B's stalled feed fresh.
pub async fn a_replayed_heartbeat_does_not_make_a_stalled_feed_fresh() {
    let Some(fleet) = Fleet::start(LONG_TTL, FeedPool::Separate).await else {
        return;
    };
    let (_, token) = fleet
        .cached_in_b(data_key(&owner("account")), &need("data.read"))
        .await;
    let (_outsider, heard) = one_of_bs_heartbeats(&fleet).await;
    let _held = stop_bs_heartbeats(&fleet, &token).await;
    forge(&fleet, &[heard.clone(), heard]).await;
    let status = fleet.b_status();
    assert!(
        !status.feed_fresh,
        "a replayed heartbeat made B's feed fresh: {status:?}"
    );
}

/// Two deployments with the same table prefix in two schemas of one
/// database have channels of their own: a change in one is not heard on
/// the other's (the marker, sent last, proves nothing else came), while a
/// change in the other is.
pub async fn two_schemas_with_the_same_prefix_do_not_hear_each_other() {
    let (Some(first), Some(second)) = (backends::postgres().await, backends::postgres().await)
    else {
        return;
    };
    let service = |store: PgStore| {
        Keyward::builder(store)
            .kind(TokenKind::new("tak").unwrap())
            .build()
            .unwrap()
    };
    let first_channel = first.change_channel().await.unwrap();
    let second_channel = second.change_channel().await.unwrap();
    assert_ne!(first_channel, second_channel);
    assert!(second_channel.len() <= 63, "{second_channel}");
    assert!(
        second_channel.starts_with("keyward_changes_"),
        "{second_channel}"
    );

    let mut listener = PgListener::connect_with(second.pool()).await.unwrap();
    listener.listen(&second_channel).await.unwrap();
    let operator = Actor::operator("schemas");
    let elsewhere = service(first.clone())
        .issue(&operator, data_key(&owner("account")))
        .await
        .unwrap();
    assert_eq!(
        heard_until_marker(&mut listener, second.pool(), &second_channel).await,
        ["marker"],
        "the other schema's insert of {} was heard",
        elsewhere.key.id
    );
    let here = service(second.clone())
        .issue(&operator, data_key(&owner("account")))
        .await
        .unwrap();
    assert_eq!(
        heard_until_marker(&mut listener, second.pool(), &second_channel).await,
        [format!("k:{}", here.key.id), "marker".to_owned()]
    );
}

/// Sends `marker` on `channel`, then returns what `listener` hears up to
/// and including it (notifications arrive in commit order).
async fn heard_until_marker(
    listener: &mut PgListener,
    pool: &PgPool,
    channel: &str,
) -> Vec<String> {
    sqlx::query("SELECT pg_notify($1, 'marker')")
        .bind(channel)
        .execute(pool)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.last().is_none_or(|last| last != "marker") {
        let notification = timeout(GIVE_UP, listener.recv())
            .await
            .expect("the marker arrives")
            .unwrap();
        seen.push(notification.payload().to_owned());
    }
    seen
}

/// A TCP relay between B's feed connections and Postgres that can stop
/// moving bytes, both ways, without closing anything: a stalled path.
struct Relay {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(host: &str, port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = format!("{host}:{port}");
        let (paused, _) = watch::channel(false);
        let task = tokio::spawn({
            let paused = paused.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pipe(client_read, server_write, paused.subscribe()));
                    tokio::spawn(pipe(server_read, client_write, paused.subscribe()));
                }
            }
        });
        Self { addr, paused, task }
    }

    fn pause(&self) {
        self.paused.send_replace(true);
    }

    fn resume(&self) {
        self.paused.send_replace(false);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies bytes one way, holding them while the relay is paused.
async fn pipe(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    mut paused: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        while *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// The channel is `<prefix>changes_` and the first 16 hex digits of the MD5
/// of the tables' schema, at most 56 bytes; the triggers notify on it
/// whatever the `search_path` of the session that changes the table (they
/// call only `pg_catalog` functions), and a payload Postgres would refuse
/// (8000 bytes or more) goes out as `*`, so the change is not lost and the
/// write does not fail.
pub async fn the_triggers_notify_the_schemas_channel_whatever_the_search_path() {
    let Some(store) = backends::postgres().await else {
        return;
    };
    let pool = store.pool().clone();
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let hash: String = sqlx::query_scalar("SELECT left(md5($1), 16)")
        .bind(&schema)
        .fetch_one(&pool)
        .await
        .unwrap();
    let channel = store.change_channel().await.unwrap();
    assert_eq!(channel, format!("keyward_changes_{hash}"));
    let longest = TablePrefix::new(&"p".repeat(32)).unwrap();
    assert!(
        longest.table("changes_").len() + 16 <= 56,
        "the longest prefix gives a channel of at most 56 bytes"
    );

    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(&channel).await.unwrap();
    let issued = Keyward::builder(store.clone())
        .kind(TokenKind::new("tak").unwrap())
        .build()
        .unwrap()
        .issue(&Actor::operator("sql"), data_key(&owner("account")))
        .await
        .unwrap();
    heard_until_marker(&mut listener, &pool, &channel).await;

    // An operator's session with an empty search_path, naming the schema.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET search_path = ''")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE \"{schema}\".keyward_keys SET state = 'revoked' WHERE id = $1"
    )))
    .bind(issued.key.id.as_str())
    .execute(&mut *conn)
    .await
    .unwrap();
    let huge = "r".repeat(9000);
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".keyward_roles (owner, name, permissions) VALUES ('o', $1, '{{}}')"
    )))
    .bind(&huge)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("RESET search_path")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(
        heard_until_marker(&mut listener, &pool, &channel).await,
        [
            format!("k:{}", issued.key.id),
            "*".to_owned(),
            "marker".to_owned()
        ]
    );
}
