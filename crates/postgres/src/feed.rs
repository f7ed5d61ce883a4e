//! The change feed: `LISTEN`/`NOTIFY` on a channel of the deployment's own,
//! `<prefix>changes_<schema hash>`.
//!
//! The migrations' triggers announce every committed change to keys and
//! roles; [`ChangeFeed::publish`] announces what only the host knows (an
//! owner's permissions). Each subscribed service runs one listener task on
//! one of the pool's connections, and proves the feed fresh with heartbeats:
//! it notifies the channel with `p:<nonce>`, a fresh 128-bit nonce from the
//! OS CSPRNG that it remembers with the time it read just before; when that
//! nonce comes back, every change committed before that time has been
//! delivered (Postgres delivers notifications in commit order, and no one
//! could have sent the nonce before it existed).
//!
//! Anyone who can log in may `LISTEN` and `NOTIFY` on any channel; Postgres
//! has no access control for them. So nothing that arrives is trusted to
//! *extend* what the cache may serve: a heartbeat counts only if it carries
//! a nonce this listener sent on its current connection and has not seen
//! come back yet (and its time comes from the listener's memory), and every
//! other payload can only drop entries.

use crate::{PgStore, pg_error};
use keyward_core::chrono::{DateTime, Utc};
use keyward_core::{
    Error, feed::Change, feed::ChangeFeed, feed::FeedSink, store::async_trait,
    store::sql::TablePrefix, token::OsRandom, token::SecretSource,
};
use sqlx::PgPool;
use sqlx::postgres::{PgExecutor, PgListener};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// Postgres refuses payloads of this many bytes or more.
const MAX_PAYLOAD: usize = 8000;

/// The first wait before reconnecting; it doubles after every failed
/// attempt up to [`MAX_BACKOFF`], and starts over once a connection has
/// delivered one of our heartbeats.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A heartbeat that Postgres accepted but that has not come back after this
/// many heartbeat intervals (four feed bounds) means the listening
/// connection no longer receives anything, though it reports no error (a
/// half-open TCP connection): it is dropped and a new one made.
const SILENT_INTERVALS: u32 = 16;

/// Heartbeats remembered while on their way (one is sent per interval, and
/// the connection is given up after [`SILENT_INTERVALS`]); the oldest is
/// forgotten beyond this.
const MAX_PENDING: usize = SILENT_INTERVALS as usize + 4;

/// Every heartbeat payload starts so; none is ever read as a change.
const HEARTBEAT: &str = "p:";

/// The deployment's channel: the stem bound as `$1`, the keys table (as the
/// connection's `search_path` resolves it) as `$2`. The triggers compute the
/// same name from `TG_TABLE_SCHEMA`.
const CHANNEL: &str = "SELECT $1::text || pg_catalog.left(pg_catalog.md5(n.nspname::text), 16) \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.oid = pg_catalog.to_regclass($2)";

/// Every notification: channel and payload bound as values.
const NOTIFY: &str = "SELECT pg_catalog.pg_notify($1, $2)";

/// What every channel name of tables with `prefix` starts with:
/// `<prefix>changes_`, at most 40 bytes, so with the 16 hex digits of the
/// schema's hash the name stays within Postgres's 63-byte identifiers.
pub(crate) fn channel_stem(prefix: &TablePrefix) -> String {
    prefix.table("changes_")
}

/// The channel of the deployment whose tables `executor`'s `search_path`
/// finds: `<prefix>changes_` and the first 16 hex digits of the MD5 of the
/// tables' schema name.
pub(crate) async fn channel<'e>(
    executor: impl PgExecutor<'e>,
    prefix: &TablePrefix,
) -> Result<String, Error> {
    let channel: Option<String> = sqlx::query_scalar(CHANNEL)
        .bind(channel_stem(prefix))
        .bind(prefix.table("keys"))
        .fetch_optional(executor)
        .await
        .map_err(pg_error)?;
    channel.ok_or_else(|| {
        Error::invalid(
            "change_feed",
            "keyward's keys table is not on the connection's search_path: apply the migrations first",
        )
    })
}

/// Sends `payload` on `channel`, or `*` when it is too long to send.
async fn notify(pool: &PgPool, channel: &str, payload: &str) -> Result<(), Error> {
    let payload = if payload.len() >= MAX_PAYLOAD {
        "*"
    } else {
        payload
    };
    sqlx::query(NOTIFY)
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await
        .map(drop)
        .map_err(pg_error)
}

/// Shares every committed change to keys and roles between the processes
/// on one database, through `LISTEN`/`NOTIFY` on the deployment's channel
/// ([`PgStore::change_channel`]).
///
/// ```no_run
/// use keyward_core::{cache::CacheConfig, Keyward, TokenKind};
/// use keyward_postgres::PgStore;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), keyward_core::Error> {
/// let store = PgStore::connect("postgres://app@db.internal/app").await?;
/// let keyward = Keyward::builder(store.clone())
///     .kind(TokenKind::new("mt")?)
///     .verify_cache(CacheConfig::default())
///     .change_feed(store)
///     .build()?;
/// # drop(keyward);
/// # Ok(())
/// # }
/// ```
///
/// The listener holds one of the pool's connections for as long as the
/// service lives; heartbeats and [`ChangeFeed::publish`] borrow another
/// briefly. See the [crate docs](crate#the-change-feed).
#[async_trait]
impl ChangeFeed for PgStore {
    async fn publish(&self, change: &Change) -> Result<(), Error> {
        let channel = channel(&self.pool, &self.prefix).await?;
        notify(&self.pool, &channel, &change.to_payload()).await
    }

    fn subscribe(&self, sink: FeedSink) -> Result<JoinHandle<()>, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid(
                "change_feed",
                "subscribe inside a Tokio runtime: the feed listens on a task",
            )
        })?;
        let listener = Listener {
            pool: self.pool.clone(),
            prefix: self.prefix.clone(),
            sink,
        };
        Ok(runtime.spawn(listener.run()))
    }
}

/// One service's listener task.
#[derive(Debug)]
struct Listener {
    pool: PgPool,
    prefix: TablePrefix,
    sink: FeedSink,
}

/// A heartbeat this listener sent on its current connection and has not
/// seen come back.
#[derive(Debug)]
struct Pending {
    /// `p:<nonce>`: 32 hex digits of OS randomness, made after `sent_at`
    /// was read, so no notification carrying it was committed before then.
    payload: String,
    /// The service's clock just before the nonce was made: what the sink
    /// is told when the nonce comes back (never anything in the payload).
    sent_at: DateTime<Utc>,
    /// When it was sent, for the silence limit.
    sent: Instant,
    /// Whether Postgres accepted the `NOTIFY`.
    accepted: bool,
}

/// A heartbeat on its way: resolves to its payload and whether Postgres
/// accepted it.
type Ping = Pin<Box<dyn Future<Output = (String, bool)> + Send>>;

/// Resolves when the heartbeat in flight does, never when there is none.
async fn in_flight(ping: &mut Option<Ping>) -> (String, bool) {
    match ping {
        Some(ping) => ping.await,
        None => std::future::pending().await,
    }
}

impl Listener {
    /// Listens until the service is gone or the pool closed, reconnecting
    /// after every loss with a growing pause.
    async fn run(self) {
        let mut backoff = FIRST_BACKOFF;
        while self.sink.is_alive() && !self.pool.is_closed() {
            self.listen(&mut backoff).await;
            // Whatever ended the connection, changes may now go unseen:
            // entries loaded so far are not served again, and new ones
            // live the short lifetime until a new connection is listening
            // (and has dropped them all) and has proven itself fresh.
            self.sink.disconnected();
            if !self.sink.is_alive() || self.pool.is_closed() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: connect, find the channel, listen, tell the
    /// sink, then deliver notifications and send heartbeats until something
    /// fails. Resets `backoff` once one of its heartbeats comes back.
    async fn listen(&self, backoff: &mut Duration) {
        let Ok(mut listener) = PgListener::connect_with(&self.pool).await else {
            return;
        };
        // A lost connection ends this function (and goes through
        // `connected` again on the next one); sqlx must not reconnect on
        // its own and hide the gap.
        listener.eager_reconnect(false);
        // Resolved on the listening connection itself, so it names the
        // schema whose triggers this connection will hear.
        let Ok(channel) = channel(&mut listener, &self.prefix).await else {
            return;
        };
        if listener.listen(&channel).await.is_err() {
            return;
        }
        // Listening from here on: whatever changed before is unknown.
        self.sink.connected();

        let interval = self.sink.heartbeat_interval().max(Duration::from_millis(1));
        let silence_limit = interval.saturating_mul(SILENT_INTERVALS);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut ping: Option<Ping> = None;
        // Only heartbeats sent after `LISTEN` on this connection count.
        let mut pending: VecDeque<Pending> = VecDeque::new();
        loop {
            // The receive future lives across heartbeats, so a notification
            // half read is never abandoned.
            let received = {
                let receive = listener.try_recv();
                tokio::pin!(receive);
                loop {
                    tokio::select! {
                        received = &mut receive => break received,
                        _ = ticker.tick() => {
                            let silent = pending
                                .iter()
                                .any(|p| p.accepted && p.sent.elapsed() > silence_limit);
                            if !self.sink.is_alive() || silent {
                                return;
                            }
                            if ping.is_none() && let Some(beat) = self.heartbeat() {
                                ping = Some(Box::pin(send(
                                    self.pool.clone(),
                                    channel.clone(),
                                    beat.payload.clone(),
                                )));
                                pending.push_back(beat);
                                if pending.len() > MAX_PENDING {
                                    pending.pop_front();
                                }
                            }
                        }
                        (payload, accepted) = in_flight(&mut ping) => {
                            ping = None;
                            // Unless it came back before the answer did.
                            if let Some(at) = pending.iter().position(|p| p.payload == payload) {
                                if accepted {
                                    if let Some(beat) = pending.get_mut(at) {
                                        beat.accepted = true;
                                    }
                                } else {
                                    pending.remove(at);
                                }
                            }
                        }
                    }
                }
            };
            match received {
                Ok(Some(notification)) => {
                    if self.deliver(notification.payload(), &mut pending) {
                        *backoff = FIRST_BACKOFF;
                    }
                    if !self.sink.is_alive() {
                        return;
                    }
                }
                // `Ok(None)`: the connection was lost (and, with eager
                // reconnection off, not replaced); notifications sent
                // meanwhile are gone.
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// A new heartbeat: the time first, then a nonce nobody could know
    /// before it. `None` if the OS random source fails (the feed then
    /// goes unproven, which is safe).
    fn heartbeat(&self) -> Option<Pending> {
        let sent_at = self.sink.now();
        let sent = Instant::now();
        let mut nonce = [0u8; 16];
        OsRandom.fill(&mut nonce).ok()?;
        let mut payload = String::with_capacity(HEARTBEAT.len() + 32);
        payload.push_str(HEARTBEAT);
        for byte in nonce {
            payload.push(hex_digit(byte >> 4));
            payload.push(hex_digit(byte & 0xf));
        }
        Some(Pending {
            payload,
            sent_at,
            sent,
            accepted: false,
        })
    }

    /// Hands one notification to the sink. Whether it was one of our own
    /// heartbeats, seen for the first time.
    fn deliver(&self, payload: &str, pending: &mut VecDeque<Pending>) -> bool {
        if payload.starts_with(HEARTBEAT) {
            // Ours, or another process's, or forged: only a nonce we are
            // waiting for counts, once. The ones sent before it were
            // committed before it; if they have not arrived, they never will.
            let Some(at) = pending.iter().position(|p| p.payload == payload) else {
                return false;
            };
            let sent_at = pending.get(at).map(|p| p.sent_at);
            pending.drain(..=at);
            if let Some(sent_at) = sent_at {
                self.sink.confirm(sent_at);
            }
            return sent_at.is_some();
        }
        // A change, or garbage (read as "anything changed"): either way it
        // can only drop entries.
        self.sink.apply(&Change::from_payload(payload));
        false
    }
}

/// Sends one heartbeat; its payload, and whether Postgres took it.
async fn send(pool: PgPool, channel: String, payload: String) -> (String, bool) {
    let accepted = notify(&pool, &channel, &payload).await.is_ok();
    (payload, accepted)
}

fn hex_digit(value: u8) -> char {
    char::from_digit(u32::from(value), 16).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listener's timings docs/adapters.md states: reconnect after
    /// 100 ms, doubling up to 5 s; a connection whose accepted heartbeat
    /// has not come back after four feed bounds (sixteen heartbeat
    /// intervals of a quarter bound each) is given up.
    #[test]
    fn the_reconnect_backoff_and_silence_limit_are_the_documented_ones() {
        assert_eq!(FIRST_BACKOFF, Duration::from_millis(100));
        assert_eq!(MAX_BACKOFF, Duration::from_secs(5));
        let mut backoff = FIRST_BACKOFF;
        let mut waits = Vec::new();
        for _ in 0..8 {
            waits.push(backoff.as_millis());
            backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
        }
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        let feed_bound = Duration::from_secs(2);
        let interval = feed_bound / 4;
        assert_eq!(interval.saturating_mul(SILENT_INTERVALS), feed_bound * 4);
        assert_eq!(MAX_PAYLOAD, 8000);
    }
}
