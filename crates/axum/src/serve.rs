//! Serving with keyward's background work tied to the server's life.

use axum::Router;
use keyward_core::Keyward;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often [`serve`] writes recorded uses while the server runs.
pub const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `shutdown` resolves, with keyward's
/// usage flusher running beside it, and then: stops accepting, lets
/// requests in flight finish, and writes the last recorded uses before it
/// returns. Nothing to remember at shutdown: when this returns, every use
/// the server saw is in the store (or the flush error is returned).
///
/// ```no_run
/// # async fn demo(keyward: keyward_core::Keyward, app: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// // Hand `stop` to whatever ends the service (a signal handler, say).
/// # drop(stop);
/// keyward_axum::serve(listener, app, &keyward, async {
///     let _ = stopped.await;
/// })
/// .await
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    keyward: &Keyward,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = keyward.spawn_usage_flusher(USAGE_FLUSH_EVERY);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let flushed = flusher.shutdown().await;
    served?;
    flushed.map_err(std::io::Error::other)
}
