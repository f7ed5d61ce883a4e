//! Finding 6, **requirements naming kinds**: a requirement that names kinds
//! refuses tokens of other kinds.

use super::workspace_kinds;
use crate::support::{Backend, clock_at, owner, perms};
use keyward_core::{Actor, IssueRequest, Rejection, Requirement};

/// An API key holding `projects.manage` does not pass a management
/// route's requirement accepting only management tokens (403); the
/// management token does.
pub async fn a_requirement_naming_kinds_refuses_other_kinds(backend: Backend) {
    let clock = clock_at(2026, 7, 1, 9);
    let keyward = workspace_kinds(&backend, &clock);
    let workspace = owner("workspace");
    let operator = Actor::operator("console");
    let api_key = keyward
        .issue(
            &operator,
            IssueRequest::new("tak", workspace.clone(), "api").scopes(perms(&["projects.manage"])),
        )
        .await
        .unwrap();
    let mgmt = keyward
        .issue(
            &operator,
            IssueRequest::new("mgmt", workspace.clone(), "mgmt")
                .scopes(perms(&["projects.manage"])),
        )
        .await
        .unwrap();
    let management_route = Requirement::all_of(["projects.manage"])
        .unwrap()
        .with_kinds(["mgmt"])
        .unwrap();
    let answer = keyward
        .verify(api_key.token.expose_secret(), &management_route)
        .await;
    match &answer {
        Err(rejection @ Rejection::KindNotAccepted) => {
            assert_eq!(rejection.public_answer().status, 403);
        }
        other => panic!("expected KindNotAccepted, got {other:?}"),
    }
    // A second presentation (a cache hit, with a cache) answers the same.
    let again = keyward
        .verify(api_key.token.expose_secret(), &management_route)
        .await;
    assert!(
        matches!(again, Err(Rejection::KindNotAccepted)),
        "{again:?}"
    );
    // The same permission without the kind restriction passes the API key.
    keyward
        .verify(
            api_key.token.expose_secret(),
            &Requirement::all_of(["projects.manage"]).unwrap(),
        )
        .await
        .expect("the API key holds the permission");
    let verified = keyward
        .verify(mgmt.token.expose_secret(), &management_route)
        .await
        .expect("the management token passes");
    assert_eq!(verified.kind(), "mgmt");
}
