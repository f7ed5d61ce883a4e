//! The management router: create, list, read, revoke, disable, enable and
//! rotate keys over JSON, as the signed-in user (from the host's sessions)
//! or, failing that, as the presented token — which keyward then refuses
//! and audits unless its kind may manage keys.

use crate::error::json_response;
use crate::refusal::refusal;
use crate::{ApiError, Auth};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keyward_core::chrono::TimeDelta;
use keyward_core::store::Metadata;
use keyward_core::token::bearer_from_headers;
use keyward_core::{
    Actor, Error, IssueRequest, KeyDetails, KeyId, Lifetime, ListRequest, Owner, PermissionSet,
    Rejection, Requirement, Session, Status, store::Cursor,
};
use serde::Deserialize;
use std::future::Future;

/// The longest rotation overlap the router accepts: 30 days.
pub const MAX_OVERLAP_SECONDS: u64 = 30 * 86_400;

/// How the host finds the signed-in user of a request (a cookie, a session
/// header): its own session system, in its own terms.
///
/// `Ok(None)` means "nobody is signed in": the router then tries the
/// request's Bearer token as the actor. An `Err` (the session store is
/// down) is answered with the error's status, never as "signed out".
pub trait Sessions: Clone + Send + Sync + 'static {
    /// The session of this request, if one is signed in.
    fn session(&self, parts: &Parts)
    -> impl Future<Output = Result<Option<Session>, Error>> + Send;
}

/// No sessions: every management call acts as the presented token.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokensOnly;

impl Sessions for TokensOnly {
    async fn session(&self, _: &Parts) -> Result<Option<Session>, Error> {
        Ok(None)
    }
}

/// The router's state: keyward and the host's sessions.
#[derive(Debug, Clone)]
pub struct Management<S> {
    auth: Auth,
    sessions: S,
}

impl Auth {
    /// The management router, to `nest` where the host wants it:
    ///
    /// | method and path | body | answer |
    /// | --- | --- | --- |
    /// | `POST /keys` | `{"kind", "name", "scopes"?, "expires"?, "metadata"?, "owner"?}` | 201, `{"token", "key"}` (the token, once) |
    /// | `GET /keys?owner&name&kind&status&limit&cursor` | — | 200, `{"items": [key…], "next": cursor or null}` |
    /// | `GET /keys/{id}` | — | 200, key |
    /// | `POST /keys/{id}/revoke`, `/disable`, `/enable` | — | 200, key |
    /// | `POST /keys/{id}/rotate` | `{"overlap_seconds"?}` | 201, `{"token", "key"}` |
    ///
    /// A key is [`KeyDetails`] as serialized; `owner` defaults to the
    /// actor's own (the session's subject, or the token's owner);
    /// `expires` is lifetime text (`"6 months"`). Every refusal is
    /// keyward's: audited, with its status and stable code
    /// ([`ApiError`]); a body that is not the JSON above is 422
    /// `invalid_body`.
    pub fn management<S: Sessions>(&self, sessions: S) -> axum::Router {
        axum::Router::new()
            .route("/keys", post(create::<S>).get(list::<S>))
            .route("/keys/{id}", get(KeyCall::Get.handler::<S>()))
            .route("/keys/{id}/revoke", post(KeyCall::Revoke.handler::<S>()))
            .route("/keys/{id}/disable", post(KeyCall::Disable.handler::<S>()))
            .route("/keys/{id}/enable", post(KeyCall::Enable.handler::<S>()))
            .route("/keys/{id}/rotate", post(rotate::<S>))
            .with_state(Management {
                auth: self.clone(),
                sessions,
            })
    }
}

/// The actor of a management call: the signed-in session, else the
/// request's Bearer token (verified with no requirement: what it may do is
/// keyward's decision, made and audited per call).
#[derive(Debug, Clone)]
pub struct ManagementActor(pub Actor);

impl<S: Sessions> FromRequestParts<Management<S>> for ManagementActor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Management<S>,
    ) -> Result<Self, Response> {
        if let Some(session) = state
            .sessions
            .session(parts)
            .await
            .map_err(|e| ApiError(e).into_response())?
        {
            return Ok(Self(Actor::Session(session)));
        }
        let values = parts.headers.get_all(AUTHORIZATION);
        let token = bearer_from_headers(values.iter().map(|v| v.as_bytes()))
            .map_err(|e| refusal(&Rejection::BadHeader(e), &state.auth))?;
        let key = state
            .auth
            .keyward
            .verify(token, &Requirement::nothing())
            .await
            .map_err(|r| refusal(&r, &state.auth))?;
        Ok(Self(Actor::Token(key)))
    }
}

/// The log line of a management call: what, which key, who, and how it
/// ended (the error's stable code). Never a token.
fn logged<T>(action: &str, key_id: Option<&str>, actor: &Actor, result: &Result<T, Error>) {
    let outcome = result.as_ref().map_or_else(Error::code, |_| "ok");
    tracing::info!(
        target: "keyward",
        action,
        key_id,
        actor = %actor.label(),
        outcome,
        "management call"
    );
}

/// The owner an actor acts for when the request names none.
fn own(actor: &Actor) -> Result<Owner, Error> {
    match actor {
        Actor::Session(session) => Ok(session.subject().clone()),
        Actor::Token(key) => Ok(key.owner().clone()),
        _ => Err(Error::invalid("owner", "name the owner")),
    }
}

/// A refused create or rotate: an unknown scope is answered with the
/// kind's whole catalog beside what fell outside it, so a client (or a
/// dashboard) can offer exactly what the kind allows.
fn refused(state: &Management<impl Sessions>, error: Error) -> Response {
    let catalog = match &error {
        Error::OutsideCatalog { kind, .. } => state
            .auth
            .keyward
            .format()
            .kind(kind)
            .and_then(|k| k.catalog())
            .cloned(),
        _ => None,
    };
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = ApiError(error).body();
    if let (Some(catalog), Some(map)) = (catalog, body.as_object_mut()) {
        map.insert("catalog".to_owned(), serde_json::json!(catalog));
    }
    json_response(status, &body)
}

/// A body or query that is not what the route reads.
fn invalid_body(what: &str) -> Response {
    let body = serde_json::json!({
        "error": "invalid_body",
        "message": format!("the request {what} is not what this route reads"),
    });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    kind: String,
    name: String,
    #[serde(default)]
    scopes: PermissionSet,
    expires: Option<Lifetime>,
    #[serde(default)]
    metadata: Metadata,
    owner: Option<Owner>,
}

async fn create<S: Sessions>(
    State(state): State<Management<S>>,
    ManagementActor(actor): ManagementActor,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return invalid_body("body");
    };
    let owner = match body.owner.map_or_else(|| own(&actor), Ok) {
        Ok(owner) => owner,
        Err(e) => return ApiError(e).into_response(),
    };
    let mut request = IssueRequest::new(&body.kind, owner, &body.name).scopes(body.scopes);
    if let Some(lifetime) = body.expires {
        request = request.expires(lifetime);
    }
    for (key, value) in &body.metadata {
        request = request.metadata(key, value);
    }
    let issued = state.auth.keyward.issue(&actor, request).await;
    logged(
        "issue",
        issued.as_ref().ok().map(|i| i.key.id.as_str()),
        &actor,
        &issued,
    );
    match issued {
        Ok(issued) => (StatusCode::CREATED, Json(issued.show_once())).into_response(),
        Err(e) => refused(&state, e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    owner: Option<Owner>,
    name: Option<String>,
    kind: Option<String>,
    status: Option<Status>,
    limit: Option<usize>,
    cursor: Option<Cursor>,
}

async fn list<S: Sessions>(
    State(state): State<Management<S>>,
    ManagementActor(actor): ManagementActor,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return invalid_body("query");
    };
    let owner = match query.owner.map_or_else(|| own(&actor), Ok) {
        Ok(owner) => owner,
        Err(e) => return ApiError(e).into_response(),
    };
    let mut request = ListRequest::new(owner);
    if let Some(name) = &query.name {
        request = request.name_contains(name);
    }
    if let Some(kind) = &query.kind {
        request = request.kind(kind);
    }
    if let Some(status) = query.status {
        request = request.statuses([status]);
    }
    if let Some(limit) = query.limit {
        request = request.limit(limit);
    }
    if let Some(cursor) = query.cursor {
        request = request.after(cursor);
    }
    let page = state.auth.keyward.list(&actor, request).await;
    logged("list", None, &actor, &page);
    match page {
        Ok(page) => Json(page).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The key id of a path, or the 404 an unknown one would get.
fn key_id(Path(id): Path<String>) -> Result<KeyId, ApiError> {
    KeyId::parse(&id).map_err(|_| ApiError(Error::NotFound))
}

fn answer(result: Result<KeyDetails, Error>) -> Response {
    match result {
        Ok(details) => Json(details).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The calls on one key that answer with its details.
#[derive(Debug, Clone, Copy)]
enum KeyCall {
    Get,
    Revoke,
    Disable,
    Enable,
}

impl KeyCall {
    fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Revoke => "revoke",
            Self::Disable => "disable",
            Self::Enable => "enable",
        }
    }

    /// A handler for this call.
    fn handler<S: Sessions>(
        self,
    ) -> impl Fn(State<Management<S>>, ManagementActor, Path<String>) -> KeyCallFuture
    + Clone
    + Send
    + Sync
    + 'static {
        move |State(state), ManagementActor(actor), path| {
            Box::pin(async move {
                let id = match key_id(path) {
                    Ok(id) => id,
                    Err(unknown) => return unknown.into_response(),
                };
                let keyward = &state.auth.keyward;
                let result = match self {
                    Self::Get => keyward.get(&actor, &id).await,
                    Self::Revoke => keyward.revoke(&actor, &id).await,
                    Self::Disable => keyward.disable(&actor, &id).await,
                    Self::Enable => keyward.enable(&actor, &id).await,
                };
                logged(self.name(), Some(id.as_str()), &actor, &result);
                answer(result)
            })
        }
    }
}

type KeyCallFuture = std::pin::Pin<Box<dyn Future<Output = Response> + Send>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    #[serde(default)]
    overlap_seconds: u64,
}

async fn rotate<S: Sessions>(
    State(state): State<Management<S>>,
    ManagementActor(actor): ManagementActor,
    path: Path<String>,
    body: Result<Option<Json<Rotate>>, JsonRejection>,
) -> Response {
    let id = match key_id(path) {
        Ok(id) => id,
        Err(unknown) => return unknown.into_response(),
    };
    let Ok(body) = body else {
        return invalid_body("body");
    };
    let overlap = body.map(|Json(b)| b.overlap_seconds).unwrap_or_default();
    if overlap > MAX_OVERLAP_SECONDS {
        return ApiError(Error::invalid(
            "overlap_seconds",
            format!("at most {MAX_OVERLAP_SECONDS} (30 days)"),
        ))
        .into_response();
    }
    let overlap = TimeDelta::seconds(i64::try_from(overlap).unwrap_or(0));
    let rotated = state.auth.keyward.rotate(&actor, &id, overlap).await;
    logged("rotate", Some(id.as_str()), &actor, &rotated);
    match rotated {
        Ok(issued) => (StatusCode::CREATED, Json(issued.show_once())).into_response(),
        Err(e) => refused(&state, e),
    }
}
