//! The example service over real HTTP, as a signed-in user clicks through
//! it: sign in, create a token (shown once), call the API with it, revoke
//! it on the page, and the next call is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
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

use keyward::Keyward;
use keyward::stores::SqliteStore;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

struct Site {
    base: String,
    client: reqwest::Client,
}

async fn start() -> Site {
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
    Site {
        base,
        client: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap(),
    }
}

impl Site {
    async fn post_form(&self, path: &str, cookie: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    async fn page(&self, cookie: &str) -> String {
        self.client
            .get(format!("{}/", self.base))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str) -> u16 {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).expect("the start marker") + start.len();
    let to = text[from..].find(end).expect("the end marker") + from;
    &text[from..to]
}

#[tokio::test]
async fn a_user_creates_uses_and_revokes_a_token_on_the_dashboard() {
    let site = start().await;

    // Signed out: the sign-in form.
    let page = site
        .client
        .get(format!("{}/", site.base))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("id=\"signin\""));

    // Sign in: a cookie and back to the dashboard.
    let signed_in = site.post_form("/signin", None, "user=alice").await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()[LOCATION], "/");
    let cookie = signed_in.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let dashboard = site.page(&cookie).await;
    assert!(dashboard.contains("Signed in as <b id=\"who\">alice</b>"));
    assert!(
        dashboard.contains("<option value=\"1 year\" selected>"),
        "the default is preselected"
    );
    for scope in service::SCOPES {
        assert!(
            dashboard.contains(&format!("value=\"{scope}\"")),
            "{scope} offered"
        );
    }

    // Create: the token is shown once, on a page that is not stored.
    let created = site
        .post_form(
            "/tokens",
            Some(&cookie),
            "name=%3Cscript%3Ealert(1)%3C%2Fscript%3E&scope=publish&expires=6+months",
        )
        .await;
    assert_eq!(created.status(), 200);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let created = created.text().await.unwrap();
    let token = between(&created, "<code id=\"token\">", "</code>").to_owned();
    assert!(
        token.starts_with("mm_pat_") && token.len() == "mm_pat_".len() + 32,
        "{token}"
    );
    assert!(
        created.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is text"
    );
    assert!(
        !created.contains("<script>alert"),
        "never markup from a name"
    );

    // Use it: publish yes, invoices no.
    assert_eq!(
        site.call(reqwest::Method::POST, "/api/publish", &token)
            .await,
        200
    );
    assert_eq!(
        site.call(reqwest::Method::GET, "/api/invoice", &token)
            .await,
        403
    );

    // The dashboard lists it, masked, and never shows the token again.
    let dashboard = site.page(&cookie).await;
    assert!(!dashboard.contains(&token));
    let id = between(&dashboard, "<tr data-id=\"", "\"").to_owned();
    assert!(token["mm_pat_".len()..].starts_with(&id));
    assert!(dashboard.contains("class=\"status\">active<"));

    // Revoke it on the page: the next call is refused, the list says so.
    let revoked = site
        .post_form(&format!("/tokens/{id}/revoke"), Some(&cookie), "")
        .await;
    assert_eq!(revoked.status(), 303);
    assert_eq!(
        site.call(reqwest::Method::POST, "/api/publish", &token)
            .await,
        401
    );
    let dashboard = site.page(&cookie).await;
    assert!(dashboard.contains("class=\"status\">revoked<"));

    // Another user sees none of it, and cannot revoke it.
    let other = "demo_user=mallory";
    assert!(!site.page(other).await.contains(&id));
    let refused = site
        .post_form(&format!("/tokens/{id}/revoke"), Some(other), "")
        .await;
    assert_eq!(refused.status(), 200, "the page, with the refusal");
    assert!(refused.text().await.unwrap().contains("id=\"error\""));
}

#[tokio::test]
async fn bad_input_on_the_pages_is_refused_with_a_message() {
    let site = start().await;
    let bad_name = site.post_form("/signin", None, "user=%3Cb%3E").await;
    assert_eq!(bad_name.status(), 422);
    let cookie = "demo_user=bob";
    for body in [
        "name=x&scope=admin",
        "name=x&scope=publish&expires=6+weeks",
        "name=&scope=publish",
    ] {
        let page = site.post_form("/tokens", Some(cookie), body).await;
        let text = page.text().await.unwrap();
        assert!(text.contains("id=\"error\""), "{body}: {text}");
        assert!(!text.contains("id=\"token\""), "{body}: no token issued");
    }
}
