//! The change feed: `LISTEN`/`NOTIFY` on `<prefix>changes`.
//!
//! The migration's triggers announce every committed change to keys and
//! roles; [`ChangeFeed::publish`] announces what only the host knows (an
//! owner's permissions). Each subscribed service runs one listener task on
//! one of the pool's connections, and proves the feed fresh with heartbeats:
//! it notifies the channel with `p:<instance>:<sent micros>` and, when its
//! own heartbeat comes back, every change committed before it has been
//! delivered (Postgres delivers notifications in commit order).

use crate::{PgStore, pg_error};
use keyward_core::chrono::DateTime;
use keyward_core::{
    Change, ChangeFeed, Error, FeedSink, OsRandom, SecretSource, TablePrefix, async_trait,
};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
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

/// Every notification: channel and payload bound as values.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// The channel the triggers and heartbeats of tables with `prefix` use.
pub(crate) fn channel(prefix: &TablePrefix) -> String {
    prefix.table("changes")
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
/// on one database, through `LISTEN`/`NOTIFY` on `<prefix>changes`.
///
/// ```no_run
/// use keyward_core::{CacheConfig, Keyward, TokenKind};
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
        notify(&self.pool, &self.change_channel(), &change.to_payload()).await
    }

    fn subscribe(&self, sink: FeedSink) -> Result<JoinHandle<()>, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid(
                "change_feed",
                "subscribe inside a Tokio runtime: the feed listens on a task",
            )
        })?;
        let mut id = [0u8; 8];
        OsRandom.fill(&mut id)?;
        let listener = Listener {
            pool: self.pool.clone(),
            channel: self.change_channel(),
            instance: id.iter().map(|b| format!("{b:02x}")).collect(),
            sink,
        };
        Ok(runtime.spawn(listener.run()))
    }
}

/// One service's listener task.
#[derive(Debug)]
struct Listener {
    pool: PgPool,
    channel: String,
    /// Tells this task's heartbeats from other processes'.
    instance: String,
    sink: FeedSink,
}

/// A heartbeat on its way: resolves to when it was sent, if Postgres
/// accepted it.
type Ping<'a> = Pin<Box<dyn Future<Output = Option<Instant>> + Send + 'a>>;

/// Resolves when the heartbeat in flight does, never when there is none.
async fn in_flight(ping: &mut Option<Ping<'_>>) -> Option<Instant> {
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
            // entries fall back to the short lifetime until a new
            // connection is listening and has dropped them all.
            self.sink.disconnected();
            if !self.sink.is_alive() || self.pool.is_closed() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: connect, listen, tell the sink, then deliver
    /// notifications and send heartbeats until something fails. Resets
    /// `backoff` once one of its heartbeats comes back.
    async fn listen(&self, backoff: &mut Duration) {
        let Ok(mut listener) = PgListener::connect_with(&self.pool).await else {
            return;
        };
        // A lost connection ends this function (and goes through
        // `connected` again on the next one); sqlx must not reconnect on
        // its own and hide the gap.
        listener.eager_reconnect(false);
        if listener.listen(&self.channel).await.is_err() {
            return;
        }
        // Listening from here on: whatever changed before is unknown.
        self.sink.connected();

        let interval = self.sink.heartbeat_interval().max(Duration::from_millis(1));
        let silence_limit = interval.saturating_mul(SILENT_INTERVALS);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut ping: Option<Ping<'_>> = None;
        // When one of our heartbeats last came back (or we started).
        let mut last_heard = Instant::now();
        // When the oldest heartbeat Postgres accepted that has not come
        // back (nor any later one) was sent.
        let mut awaiting: Option<Instant> = None;
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
                            if !self.sink.is_alive()
                                || awaiting.is_some_and(|sent| sent.elapsed() > silence_limit)
                            {
                                return;
                            }
                            if ping.is_none() {
                                ping = Some(Box::pin(self.ping()));
                            }
                        }
                        accepted = in_flight(&mut ping) => {
                            ping = None;
                            // Unless it came back before the answer did.
                            if let Some(sent) = accepted
                                && sent > last_heard
                                && awaiting.is_none()
                            {
                                awaiting = Some(sent);
                            }
                        }
                    }
                }
            };
            match received {
                Ok(Some(notification)) => {
                    if self.deliver(notification.payload()) {
                        last_heard = Instant::now();
                        awaiting = None;
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

    /// Sends a heartbeat stamped with the service's clock; when it was
    /// sent, if Postgres took it.
    async fn ping(&self) -> Option<Instant> {
        let started = Instant::now();
        let sent = self.sink.now().timestamp_micros();
        let payload = format!("p:{}:{sent}", self.instance);
        let accepted = notify(&self.pool, &self.channel, &payload).await;
        accepted.is_ok().then_some(started)
    }

    /// Hands one notification to the sink. Whether it was one of our own
    /// heartbeats.
    fn deliver(&self, payload: &str) -> bool {
        if let Some((instance, sent)) = payload
            .strip_prefix("p:")
            .and_then(|heartbeat| heartbeat.split_once(':'))
            && let Ok(sent) = sent.parse::<i64>()
        {
            if instance != self.instance {
                // Another process's heartbeat: nothing changed.
                return false;
            }
            return match DateTime::from_timestamp_micros(sent) {
                Some(sent) => {
                    self.sink.confirm(sent);
                    true
                }
                None => false,
            };
        }
        self.sink.apply(&Change::from_payload(payload));
        false
    }
}
