//! Leak response through the service, on every store (and through the
//! verification cache, in the cached runs): a reported token of ours is
//! revoked once, as the reporter, with where it was found in the audit
//! log; anything else is a false positive that changes nothing.

use crate::counting::Counting;
use crate::support::{Backend, checksummed, foreign_token, owner, with_wrong_secret};
use keyward_core::leak::{ConfirmedLeak, LeakReport, LeakVerdict};
use keyward_core::{
    Actor, IssueRequest, Keyward, Rejection, Requirement, TokenKind, audit::AuditAction,
    audit::AuditOutcome, audit::AuditQuery, hooks::LeakHook, store::KeyStore, store::async_trait,
};
use std::sync::{Arc, Mutex, PoisonError};

/// Every confirmed leak the hook was told of.
#[derive(Debug, Clone, Default)]
struct Told(Arc<Mutex<Vec<ConfirmedLeak>>>);

#[async_trait]
impl LeakHook for Told {
    async fn leaked(&self, leak: &ConfirmedLeak) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(leak.clone());
    }
}

impl Told {
    fn all(&self) -> Vec<ConfirmedLeak> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn service(backend: &Backend, told: &Told) -> Keyward {
    backend
        .builder()
        .kind(TokenKind::new("mm_pat").unwrap())
        .kind(TokenKind::new("mgmt").unwrap())
        .leak_hook(told.clone())
        .build()
        .unwrap()
}

/// A reported token of ours is revoked (the next verify is refused, cache
/// or not), as `operator:github`, with the source and URL in the revoke's
/// audit event; a second report of it is confirmed again and revokes
/// nothing more; the hook hears of both.
pub async fn a_reported_token_is_revoked_once_as_the_reporter(backend: Backend) {
    let told = Told::default();
    let keyward = service(&backend, &told);
    let alice = owner("user");
    let issued = keyward
        .issue(
            &Actor::operator("signup"),
            IssueRequest::new("mm_pat", alice.clone(), "laptop"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    let nothing = Requirement::nothing();
    keyward.verify(token, &nothing).await.unwrap();

    let url = "https://github.com/octo/app/blob/abc123/config.yml#L4";
    let report = LeakReport::new(token, "github").source("content").url(url);
    let first = keyward.report_leak(&report).await.unwrap();
    let LeakVerdict::Confirmed(leak) = &first else {
        panic!("our token is confirmed: {first:?}");
    };
    assert!(leak.newly_revoked);
    assert_eq!(leak.key_id, issued.key.id);
    assert_eq!(leak.owner, alice);
    assert_eq!(leak.kind, "mm_pat");
    assert_eq!(leak.url.as_deref(), Some(url));
    let refused = keyward.verify(token, &nothing).await;
    assert!(matches!(refused, Err(Rejection::Revoked)), "{refused:?}");

    let again = keyward.report_leak(&report).await.unwrap();
    let LeakVerdict::Confirmed(repeat) = &again else {
        panic!("a repeat is confirmed too: {again:?}");
    };
    assert!(!repeat.newly_revoked, "revoked once");

    let revokes = keyward
        .audit_events(
            &Actor::operator("audit"),
            AuditQuery::newest(100)
                .key_id(&issued.key.id)
                .action(AuditAction::Revoke),
        )
        .await
        .unwrap();
    assert_eq!(revokes.len(), 1, "one revoke for two reports: {revokes:?}");
    assert_eq!(revokes[0].actor, "operator:github");
    let detail = revokes[0].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("github") && detail.contains("content"),
        "{detail}"
    );
    assert!(detail.contains(url), "{detail}");
    assert!(
        !detail.contains(token),
        "the audit log never holds the token"
    );

    let heard: Vec<bool> = told.all().iter().map(|l| l.newly_revoked).collect();
    assert_eq!(
        heard,
        [true, false],
        "the hook hears of every confirmed report"
    );
}

/// Malformed text, a wrong checksum, another service's token (unknown
/// id), a forgery borrowing a real key id, and a token of another prefix
/// are false positives: nothing revoked, nobody told; malformed ones and
/// bad checksums never reach the store.
pub async fn anything_else_is_a_false_positive_that_changes_nothing(backend: Backend) {
    let told = Told::default();
    let counting = Counting::wrap(backend.store());
    let keyward = backend
        .builder_over(Arc::clone(&counting) as Arc<dyn KeyStore>)
        .kind(TokenKind::new("mm_pat").unwrap())
        .leak_hook(told.clone())
        .build()
        .unwrap();
    let issued = keyward
        .issue(
            &Actor::operator("signup"),
            IssueRequest::new("mm_pat", owner("user"), "laptop"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret();
    let mut bad_checksum = token.to_owned();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'a' { 'b' } else { 'a' });

    counting.reset();
    for text in [
        "",
        "not a token",
        "mm_pat_",
        &bad_checksum,
        &"x".repeat(100_000),
    ] {
        let verdict = keyward
            .report_leak(&LeakReport::new(text, "github"))
            .await
            .unwrap();
        assert_eq!(verdict, LeakVerdict::FalsePositive, "{text:.40}");
    }
    assert_eq!(
        counting.reads(),
        0,
        "malformed reports never reach the store"
    );

    let unknown = foreign_token(TokenKind::new("mm_pat").unwrap()).await;
    let forged = with_wrong_secret(token);
    let other_prefix = foreign_token(TokenKind::new("ghp").unwrap()).await;
    let borrowed_id = checksummed(&format!("ghp_{}", &token["mm_pat_".len()..token.len() - 6]));
    for text in [&unknown, &forged, &other_prefix, &borrowed_id] {
        let verdict = keyward
            .report_leak(&LeakReport::new(text, "github").url("https://example.test/x"))
            .await
            .unwrap();
        assert_eq!(verdict, LeakVerdict::FalsePositive, "{text}");
    }
    assert_eq!(counting.writes(), 0, "a false positive writes nothing");
    assert!(told.all().is_empty(), "nobody is told of a false positive");
    keyward
        .verify(token, &Requirement::nothing())
        .await
        .unwrap();
}

/// Where it was found is kept within the audit cap, without control
/// characters, and left out when it would itself show a token (a URL
/// quoting the leaked token); the revoke happens all the same.
pub async fn a_report_never_puts_a_token_or_unbounded_text_in_the_log(backend: Backend) {
    let told = Told::default();
    let keyward = service(&backend, &told);
    let admin = Actor::operator("signup");
    let mut tokens = Vec::new();
    for name in ["quoted", "long"] {
        let issued = keyward
            .issue(&admin, IssueRequest::new("mm_pat", owner("user"), name))
            .await
            .unwrap();
        tokens.push((
            issued.key.id.clone(),
            issued.token.expose_secret().to_owned(),
        ));
    }
    let (quoted_id, quoted) = &tokens[0];
    let url = format!("https://gist.example/raw?q={quoted}");
    let verdict = keyward
        .report_leak(&LeakReport::new(quoted, "gitlab").source("gi\nst").url(&url))
        .await
        .unwrap();
    let LeakVerdict::Confirmed(leak) = verdict else {
        panic!("confirmed");
    };
    assert!(leak.newly_revoked && leak.url.is_none(), "{leak:?}");

    let (long_id, long) = &tokens[1];
    let url = format!("https://example.test/{}", "a".repeat(5000));
    keyward
        .report_leak(&LeakReport::new(long, "github").url(&url))
        .await
        .unwrap();

    for (id, token) in [(quoted_id, quoted), (long_id, long)] {
        let events = keyward
            .audit_events(
                &Actor::operator("audit"),
                AuditQuery::newest(10)
                    .key_id(id)
                    .action(AuditAction::Revoke),
            )
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        let detail = events[0].detail.clone().unwrap_or_default();
        assert!(!detail.contains(token.as_str()), "{detail}");
        let reason = detail.strip_prefix("reason: ").unwrap_or_default();
        assert!(reason.starts_with("leak reported by "), "{detail}");
        assert!(reason.len() <= keyward_core::limits::MAX_REVOKE_REASON_LEN);
        assert!(!detail.chars().any(char::is_control), "{detail:?}");
        let refused = keyward.verify(token, &Requirement::nothing()).await;
        assert!(matches!(refused, Err(Rejection::Revoked)), "{refused:?}");
    }
}

/// Reports of one token racing each other (GitHub and GitLab at once, or a
/// report and a scan) revoke it once: every report is confirmed, exactly
/// one says it revoked, and the log holds one succeeded revoke (a report
/// that lost the race after reading the key live leaves a refused one, as
/// any revoke losing to another does).
pub async fn racing_reports_of_one_token_revoke_it_once(backend: Backend) {
    let told = Told::default();
    let keyward = service(&backend, &told);
    let issued = keyward
        .issue(
            &Actor::operator("signup"),
            IssueRequest::new("mm_pat", owner("user"), "raced"),
        )
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    let reports = (0..8).map(|i| {
        let keyward = keyward.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let reporter = if i % 2 == 0 { "github" } else { "gitlab" };
            keyward
                .report_leak(&LeakReport::new(&token, reporter))
                .await
                .unwrap()
        })
    });
    let mut newly = 0;
    for report in reports.collect::<Vec<_>>() {
        match report.await.unwrap() {
            LeakVerdict::Confirmed(leak) => newly += usize::from(leak.newly_revoked),
            LeakVerdict::FalsePositive => panic!("our token is confirmed"),
        }
    }
    assert_eq!(newly, 1, "exactly one report revoked it");
    let revokes = keyward
        .audit_events(
            &Actor::operator("audit"),
            AuditQuery::newest(100)
                .key_id(&issued.key.id)
                .action(AuditAction::Revoke),
        )
        .await
        .unwrap();
    let succeeded = revokes
        .iter()
        .filter(|e| e.outcome == AuditOutcome::Succeeded)
        .count();
    assert_eq!(succeeded, 1, "{revokes:?}");
}
