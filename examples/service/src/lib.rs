//! Product E of keyward's design as a service you can copy: personal
//! access tokens (`mm_pat_` and 32 characters) for a publishing API, a
//! dashboard where a signed-in user lists, creates and revokes them, and
//! the JSON management API beside it.
//!
//! - `POST /api/publish` needs `publish`; `GET /api/invoice` needs
//!   `billing.read`. Tokens cannot create or revoke tokens.
//! - `/` is the dashboard. Sign-in is a demo (a name in a cookie): plug your
//!   own session in [`DemoSessions`]'s place, in its `session` method.
//! - `/manage/…` is keyward-axum's management router (docs/http.md).

mod page;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keyward::{
    Actor, Error, ExpiryPolicy, IssueRequest, KeyId, Keyward, Lifetime, ListRequest, Owner,
    PermissionSet, Session, TokenKind, require,
};
use keyward_axum::leaks::{GitHubReceiver, KeyListFetcher};
use keyward_axum::{Auth, Sessions, Verified};

/// What a personal access token may be granted: the kind's catalog.
pub const SCOPES: [&str; 5] = ["publish", "messages", "files", "domain", "billing.read"];

/// The cookie the demo sign-in sets.
const COOKIE: &str = "demo_user";

/// Product E's token kind: `mm_pat_` + 32 characters, the catalog above,
/// expiry one month, six months, one year (the default) or never; it
/// manages nothing.
pub fn kind() -> Result<TokenKind, Error> {
    let expiry = ExpiryPolicy::from_choices(
        [
            Lifetime::Months(1),
            Lifetime::Months(6),
            Lifetime::Years(1),
            Lifetime::Never,
        ],
        Lifetime::Years(1),
    )?;
    TokenKind::new("mm_pat")?
        .with_lengths(4, 22)?
        .with_expiry(expiry)
        .with_catalog(PermissionSet::parse(SCOPES)?)
}

/// The demo's sessions: a user name in a cookie, holding the whole
/// catalog. Replace `session` with a lookup in your session store.
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoSessions;

impl DemoSessions {
    fn user(headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value.to_owned())
            .filter(|name| valid_user(name))
    }
}

impl Sessions for DemoSessions {
    async fn session(&self, parts: &Parts) -> Result<Option<Session>, Error> {
        Self::user(&parts.headers)
            .map(|user| session(&user))
            .transpose()
    }
}

fn valid_user(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn session(user: &str) -> Result<Session, Error> {
    Ok(Session::new(
        Owner::new(&format!("user:{user}"))?,
        PermissionSet::parse(SCOPES)?,
    ))
}

#[derive(Clone)]
struct App {
    auth: Auth,
}

/// The whole service: the dashboard, the API, the management router, and
/// the receiver GitHub's secret scanning sends leaked tokens to
/// (`POST /leaks/github`, with GitHub's keys from `github_keys`: in
/// production `HttpKeyList::github()`).
pub fn app(keyward: Keyward, github_keys: impl KeyListFetcher) -> Router {
    let auth = Auth::new(keyward).realm("service");
    let api = Router::new()
        .route(
            "/api/publish",
            post(publish).route_layer(auth.require(require!("publish"))),
        )
        .route(
            "/api/invoice",
            get(invoice).route_layer(auth.require(require!("billing.read"))),
        );
    let pages = Router::new()
        .route("/", get(dashboard))
        .route("/signin", post(sign_in))
        .route("/signout", post(sign_out))
        .route("/tokens", post(create))
        .route("/tokens/{id}/revoke", post(revoke))
        .with_state(App { auth: auth.clone() });
    api.merge(pages)
        .nest("/manage", auth.management(DemoSessions))
        .nest(
            "/leaks/github",
            GitHubReceiver::new(&auth, github_keys).router(),
        )
}

async fn publish(Verified(key): Verified) -> String {
    format!("published as {} with token {}\n", key.owner(), key.key_id())
}

async fn invoice(Verified(key): Verified) -> String {
    format!("invoice of {}\n", key.owner())
}

/// The signed-in actor of a page request, if any.
fn signed_in(headers: &HeaderMap) -> Option<(String, Actor)> {
    let user = DemoSessions::user(headers)?;
    let session = session(&user).ok()?;
    Some((user, Actor::Session(session)))
}

/// A page that must not be stored (it may show a token).
fn no_store(html: String) -> Response {
    ([(CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

async fn dashboard(State(app): State<App>, headers: HeaderMap) -> Response {
    match signed_in(&headers) {
        None => no_store(page::sign_in()),
        Some((user, actor)) => no_store(render(&app, &user, &actor, None, None).await),
    }
}

/// The dashboard of `user`, with a token to show once or an error.
async fn render(
    app: &App,
    user: &str,
    actor: &Actor,
    shown: Option<&str>,
    error: Option<&str>,
) -> String {
    let owner = match Owner::new(&format!("user:{user}")) {
        Ok(owner) => owner,
        Err(e) => return page::dashboard(user, &[], shown, Some(&e.to_string())),
    };
    let listed = app
        .auth
        .keyward()
        .list(actor, ListRequest::new(owner).limit(100))
        .await;
    match listed {
        Ok(page) => page::dashboard(user, &page.items, shown, error),
        Err(e) => page::dashboard(user, &[], shown, Some(&e.to_string())),
    }
}

async fn sign_in(Form(form): Form<Vec<(String, String)>>) -> Response {
    let user = form
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .filter(|u| valid_user(u));
    match user {
        Some(user) => (
            [(
                SET_COOKIE,
                format!("{COOKIE}={user}; Path=/; HttpOnly; SameSite=Lax"),
            )],
            Redirect::to("/"),
        )
            .into_response(),
        None => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(page::sign_in_with_error(
                "a name of 1–32 lowercase letters, digits, - or _",
            )),
        )
            .into_response(),
    }
}

async fn sign_out() -> Response {
    (
        [(
            SET_COOKIE,
            format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some((user, actor)) = signed_in(&headers) else {
        return Redirect::to("/").into_response();
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let scopes: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let issued = async {
        let scopes = PermissionSet::parse(&scopes)?;
        let lifetime: Lifetime = field("expires").unwrap_or("1 year").parse()?;
        let owner = Owner::new(&format!("user:{user}"))?;
        let request = IssueRequest::new("mm_pat", owner, field("name").unwrap_or_default())
            .scopes(scopes)
            .expires(lifetime);
        app.auth.keyward().issue(&actor, request).await
    }
    .await;
    match issued {
        Ok(issued) => {
            let token = issued.token.expose_secret().to_owned();
            no_store(render(&app, &user, &actor, Some(&token), None).await)
        }
        Err(e) => no_store(render(&app, &user, &actor, None, Some(&e.to_string())).await),
    }
}

async fn revoke(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some((user, actor)) = signed_in(&headers) else {
        return Redirect::to("/").into_response();
    };
    let revoked = match KeyId::parse(&id) {
        Ok(id) => app.auth.keyward().revoke(&actor, &id).await.map(drop),
        Err(e) => Err(e),
    };
    match revoked {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => no_store(render(&app, &user, &actor, None, Some(&e.to_string())).await),
    }
}
