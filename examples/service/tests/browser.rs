//! The dashboard in a real browser (headless Chromium through WebDriver):
//! sign in, create a token with `publish`, read it from the show-once box,
//! call the API with it, revoke it on the page (accepting the confirmation),
//! and see the next call refused and the list say so. A screenshot of the
//! dashboard goes to the test's output directory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test: a failed setup should stop it loudly"
)]

/// The leak receiver's key list in these tests: GitHub lists no key, so
/// no report verifies (tests/leaks.rs signs reports of its own).
struct NoGitHubKeys;

impl keyward_axum::leaks::KeyListFetcher for NoGitHubKeys {
    async fn fetch(&self) -> Result<String, keyward_axum::leaks::FetchError> {
        Ok(r#"{"public_keys": []}"#.to_owned())
    }
}

use fantoccini::{Client, ClientBuilder, Locator};
use keyward::Keyward;
use keyward::stores::SqliteStore;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// chromedriver on a free port, stopped when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn driver() -> Driver {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let port = free_port();
    let child = Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {path}: {e}"));
    let driver = Driver(child, port);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a WebDriver session")
}

/// The text of `css` once the page shows what is expected: a click that
/// navigates does not wait for the next page, so every read after one
/// waits (up to 10 s), then fails naming what it saw.
async fn wait_text(client: &Client, css: &str, expected: impl Fn(&str) -> bool) -> String {
    let mut seen = String::new();
    for _ in 0..200 {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if expected(&text) {
                return text;
            }
            seen = text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} never showed what was expected (last seen: {seen:?})");
}

#[tokio::test]
#[cfg_attr(
    keyward_no_browser,
    ignore = "needs chromium and chromium-driver (set KEYWARD_REQUIRE_BROWSER=1 to require them)"
)]
async fn a_user_creates_uses_and_revokes_a_token_in_a_browser() {
    let keyward = Keyward::builder(SqliteStore::open_in_memory().unwrap())
        .kind(service::kind().unwrap())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, service::app(keyward, NoGitHubKeys))
            .await
            .unwrap();
    });
    let driver = driver().await;
    let client = browser(&driver).await;
    let http = reqwest::Client::new();
    let call = async |method: reqwest::Method, path: &str, token: &str| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };

    // Sign in.
    client.goto(&format!("{base}/")).await.unwrap();
    client
        .find(Locator::Id("user"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    client
        .find(Locator::Id("signin"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "#who", |t| t == "alice").await;

    // Create a token with `publish`, read it from the show-once box.
    client
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("from the browser")
        .await
        .unwrap();
    client
        .find(Locator::Id("scope-publish"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Id("create-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let token = wait_text(&client, "#token", |t| !t.is_empty()).await;
    assert!(token.starts_with("mm_pat_"), "{token}");
    // The page says it is the dashboard: a reload never posts the form
    // again, and never shows the token a second time.
    assert_eq!(client.current_url().await.unwrap().path(), "/");

    // The screenshot, with the new token on screen (a throwaway database).
    let png = client.screenshot().await.unwrap();
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&shot, png).unwrap();
    client.refresh().await.unwrap();
    wait_text(&client, "#who", |t| t == "alice").await;
    let shown_again = client.find(Locator::Id("token")).await;
    assert!(shown_again.is_err(), "a reload shows the token no more");

    // Use it.
    assert_eq!(
        call(reqwest::Method::POST, "/api/publish", &token).await,
        200
    );
    assert_eq!(
        call(reqwest::Method::GET, "/api/invoice", &token).await,
        403
    );

    // Revoke it on the page, accepting the confirmation.
    client
        .find(Locator::Css("button.revoke"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client.accept_alert().await.unwrap();
    wait_text(&client, "#tokens td.status", |t| t == "revoked").await;
    assert_eq!(
        call(reqwest::Method::POST, "/api/publish", &token).await,
        401
    );
    client.close().await.unwrap();
}
