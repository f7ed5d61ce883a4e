//! Leak response: a token someone found in public (a code host's secret
//! scanning, an operator's scan) is checked and its key revoked.

use super::Keyward;
use super::manage::MAX_REVOKE_REASON_LEN;
use crate::actor::Actor;
use crate::error::Error;
use crate::key::KeyId;
use crate::leak::{ConfirmedLeak, LeakReport, LeakVerdict};
use crate::lifecycle::{KeyState, Status, Transition};

/// Longest reporter name kept (`github`, `gitlab`, `cli:alice`).
const MAX_REPORTER_LEN: usize = 64;
/// Longest source kept (`content`, `commit`, `gist` …).
const MAX_SOURCE_LEN: usize = 64;

impl Keyward {
    /// Answers a leak report: parse and checksum first (a report that is not
    /// a well-formed token of this format is a false positive, and the
    /// store is never touched), then the key by id, the digest compared in
    /// constant time, then the key revoked as the operator named after the
    /// reporter, the report's source and URL in the revoke's audit event
    /// (the path and checks of [`Keyward::revoke_with_reason`], deciding on
    /// the record already read). Idempotent: a token reported again is confirmed again and
    /// revoked once. The [leak hook](crate::hooks::LeakHook), if any, is
    /// told of every confirmed report.
    ///
    /// A store failure is an error (answer the reporter so that it retries);
    /// nothing else is.
    pub async fn report_leak(&self, report: &LeakReport<'_>) -> Result<LeakVerdict, Error> {
        let Ok(parsed) = self.inner.format.parse(report.token) else {
            return Ok(LeakVerdict::FalsePositive);
        };
        let id = KeyId::from_parsed(parsed.key_id());
        let Some(record) = self.inner.store.key(&id).await? else {
            return Ok(LeakVerdict::FalsePositive);
        };
        let same_kind = self.inner.format.kind_index(&record.kind) == Some(parsed.kind_index());
        if !(self.presented_matches(&record.digest, &parsed) & same_kind) {
            return Ok(LeakVerdict::FalsePositive);
        }
        let mut reporter = clean(report.reporter, MAX_REPORTER_LEN);
        if reporter.is_empty() {
            reporter = "leak-report".to_owned();
        }
        let url = report
            .url
            .map(|url| clean(url, MAX_REVOKE_REASON_LEN))
            .filter(|url| !url.is_empty() && !self.holds_token(url));
        let (key_id, kind, owner, name) = (
            record.id.clone(),
            record.kind.clone(),
            record.owner.clone(),
            record.name.clone(),
        );
        let newly_revoked = if record.state == KeyState::Revoked {
            false
        } else {
            let actor = Actor::operator(&reporter);
            let reason = self.leak_reason(&reporter, report.source, url.as_deref());
            // The revoke path every revoke takes (the reason checked, the
            // operator's permit, one unconditional write, the audit event),
            // deciding on the record just read.
            let revoked = self
                .transition_from(&actor, &id, Some(record), Transition::Revoke, Some(&reason))
                .await;
            match revoked {
                Ok(_) => true,
                // Revoked by someone else between the read and the write.
                Err(Error::InvalidTransition {
                    from: Status::Revoked,
                    ..
                }) => false,
                Err(e) => return Err(e),
            }
        };
        let leak = ConfirmedLeak {
            key_id,
            kind,
            owner,
            name,
            newly_revoked,
            reporter,
            url,
        };
        if let Some(hook) = &self.inner.leak_hook {
            hook.leaked(&leak).await;
        }
        Ok(LeakVerdict::Confirmed(leak))
    }

    /// The revoke's audit reason: who, in what, where; within the reason
    /// cap, and never a token (a source that would hold one is left out).
    fn leak_reason(&self, reporter: &str, source: &str, url: Option<&str>) -> String {
        let mut reason = format!("leak reported by {reporter}");
        let source = clean(source, MAX_SOURCE_LEN);
        if !source.is_empty() && !self.holds_token(&source) {
            reason.push_str(" in ");
            reason.push_str(&source);
        }
        if let Some(url) = url {
            let room = MAX_REVOKE_REASON_LEN.saturating_sub(reason.len() + 4);
            reason.push_str(" at ");
            reason.push_str(cut(url, room));
        }
        reason
    }
}

/// `text` without control characters (each becomes `?`) and surrounding
/// space, cut to at most `max` bytes on a character boundary.
fn clean(text: &str, max: usize) -> String {
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    cut(&cleaned, max).to_owned()
}

/// The longest prefix of `text` of at most `max` bytes.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_keeps_text_within_its_cap_on_a_character_boundary() {
        assert_eq!(clean("  gist\n", 64), "gist");
        assert_eq!(clean("a\u{7}b", 64), "a?b");
        assert_eq!(clean("ééé", 3), "é");
        assert_eq!(cut("abc", 0), "");
        assert_eq!(cut("abc", 10), "abc");
    }
}
