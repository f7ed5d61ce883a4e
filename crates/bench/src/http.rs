//! The HTTP figure: one route behind keyward (a cache hit) against the same
//! route without authentication, on one server, over loopback, each
//! request on a kept-alive HTTP/1.1 connection from an in-process client
//! (reqwest). Both routes get the very same request, `Authorization`
//! header included, so the figure is what authenticating costs the server,
//! not the bytes a credential adds to a request (which any scheme pays).
//! The client waits for each answer before the next request, so
//! the time per request is the latency and its inverse the throughput of
//! one connection. Server and client share one current-thread runtime: on
//! this two-vCPU machine a wake-up across CPUs costs tens of microseconds,
//! which would swamp what is measured.

use keyward_axum::{Auth, Verified};
use keyward_core::{Actor, IssueRequest, Keyward, Owner, PermissionSet, TokenKind, require};
use keyward_memory::MemoryStore;
use std::time::{Duration, Instant};

/// The server and the client, on one runtime.
#[derive(Debug)]
pub struct HttpSetup {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: String,
}

impl HttpSetup {
    /// Starts the server with `/open` and `/keyward` (needing `publish`),
    /// issues one key and warms its cache entry.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (base, token) = runtime.block_on(async {
            let keyward = Keyward::builder(MemoryStore::new())
                .kind(TokenKind::new("mm_pat").expect("a kind"))
                // Entries live a day, so every request of the run is a hit.
                .verify_cache(crate::fixture::cache_config(1))
                .build()
                .expect("a service");
            let issued = keyward
                .issue(
                    &Actor::operator("bench"),
                    IssueRequest::new("mm_pat", Owner::new("user:bench").expect("owner"), "bench")
                        .scopes(PermissionSet::parse(["publish"]).expect("scopes")),
                )
                .await
                .expect("issue");
            let auth = Auth::new(keyward);
            let app = axum::Router::new()
                .route("/open", axum::routing::get(|| async { "ok" }))
                .route(
                    "/keyward",
                    axum::routing::get(|Verified(_): Verified| async { "ok" })
                        .route_layer(auth.require(require!("publish"))),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            let base = format!("http://{}", listener.local_addr().expect("an address"));
            tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
            (base, issued.token.expose_secret().to_owned())
        });
        let setup = Self {
            runtime,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("a client"),
            base,
            token,
        };
        // Every request of the figure is a cache hit from the first.
        assert_eq!(setup.get("/keyward", true), 200);
        assert_eq!(setup.get("/keyward", false), 401);
        assert_eq!(setup.get("/open", false), 200);
        setup
    }

    fn get(&self, path: &str, with_token: bool) -> u16 {
        self.runtime.block_on(async {
            let mut request = self.client.get(format!("{}{path}", self.base));
            if with_token {
                request = request.bearer_auth(&self.token);
            }
            request.send().await.expect("a response").status().as_u16()
        })
    }

    /// `ops` requests to `/open` (`keyward: false`) or to `/keyward`, one
    /// after another, each with the token; every one asserted 200.
    pub fn batch(&self, keyward: bool, ops: u64) -> Duration {
        let url = format!("{}/{}", self.base, if keyward { "keyward" } else { "open" });
        // What a client sends, built once as a client would hold it.
        let header = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token))
            .expect("a header");
        self.runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..ops {
                let request = self
                    .client
                    .get(&url)
                    .header(reqwest::header::AUTHORIZATION, header.clone());
                let response = request.send().await.expect("a response");
                assert_eq!(response.status(), 200);
                drop(response.bytes().await.expect("a body"));
            }
            start.elapsed()
        })
    }
}

impl Default for HttpSetup {
    fn default() -> Self {
        Self::new()
    }
}
