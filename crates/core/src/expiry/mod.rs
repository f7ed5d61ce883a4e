//! Expiry: how long a key lives ([`Lifetime`]) and which lifetimes a kind
//! allows ([`ExpiryPolicy`]).

pub(crate) mod lifetime;
mod text;

use crate::error::Error;
use chrono::{DateTime, Days, Months, TimeDelta, Utc};
pub use lifetime::Lifetime;

impl Lifetime {
    /// When a key issued at `from` expires; `None` for never.
    pub fn expires_at(self, from: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, Error> {
        let at = match self {
            Self::Never => return Ok(None),
            Self::Until(at) => Some(at),
            Self::Days(n) => from.checked_add_days(Days::new(u64::from(n))),
            Self::Months(n) => from.checked_add_months(Months::new(n)),
            Self::Years(n) => n
                .checked_mul(12)
                .and_then(|m| from.checked_add_months(Months::new(m))),
        };
        at.map(Some)
            .ok_or_else(|| Error::invalid("expiry", "out of the representable range"))
    }
}

/// Which lifetimes a kind allows, and the default.
///
/// ```
/// use keyward_core::{ExpiryPolicy, Lifetime};
/// let e = ExpiryPolicy::from_choices(
///     [Lifetime::Months(1), Lifetime::Months(6), Lifetime::Years(1), Lifetime::Never],
///     Lifetime::Years(1),
/// )?;
/// assert_eq!(e.default_lifetime(), Lifetime::Years(1));
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryPolicy {
    choices: Vec<Lifetime>,
    default: Lifetime,
    max: Option<TimeDelta>,
}

impl ExpiryPolicy {
    /// Keys never expire (until revoked).
    pub fn never() -> Self {
        Self {
            choices: vec![Lifetime::Never],
            default: Lifetime::Never,
            max: None,
        }
    }

    /// Exactly these choices, with `default` (one of them) when none is asked.
    pub fn from_choices(
        choices: impl IntoIterator<Item = Lifetime>,
        default: Lifetime,
    ) -> Result<Self, Error> {
        let choices: Vec<Lifetime> = choices.into_iter().collect();
        if choices.iter().any(|c| matches!(c, Lifetime::Until(_))) {
            return Err(Error::invalid(
                "expiry",
                "a fixed date is not a choice; use with_max_until",
            ));
        }
        if !choices.contains(&default) {
            return Err(Error::invalid(
                "expiry",
                "the default must be one of the choices",
            ));
        }
        Ok(Self {
            choices,
            default,
            max: None,
        })
    }

    /// Also allows any fixed expiry date ([`Lifetime::Until`]) up to `max` from
    /// issue.
    pub fn with_max_until(mut self, max: TimeDelta) -> Self {
        self.max = Some(max);
        self
    }

    /// The default lifetime.
    pub fn default_lifetime(&self) -> Lifetime {
        self.default
    }

    /// The allowed choices.
    pub fn choices(&self) -> &[Lifetime] {
        &self.choices
    }

    /// The longest fixed expiry date allowed, counted from issue, if fixed
    /// dates are allowed ([`ExpiryPolicy::with_max_until`]).
    pub fn max_until(&self) -> Option<TimeDelta> {
        self.max
    }

    /// The latest expiry a key issued `now` may have under this policy
    /// (`None`: it may never expire): the longest choice, or the maximum of
    /// a fixed date.
    pub fn latest_expiry(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, Error> {
        let mut latest = match self.max {
            Some(max) => Some(
                now.checked_add_signed(max)
                    .ok_or_else(|| Error::invalid("expiry", "out of the representable range"))?,
            ),
            None => None,
        };
        for choice in &self.choices {
            match choice.expires_at(now)? {
                None => return Ok(None),
                Some(at) => latest = Some(latest.map_or(at, |l: DateTime<Utc>| l.max(at))),
            }
        }
        latest
            .map(Some)
            .ok_or_else(|| Error::invalid("expiry", "the policy allows no lifetime"))
    }

    /// The expiry time for a key issued `now` with `requested` (or the
    /// default), or [`Error::ExpiryNotAllowed`].
    pub fn resolve(
        &self,
        requested: Option<Lifetime>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let lifetime = requested.unwrap_or(self.default);
        let allowed = match (lifetime, self.max) {
            (Lifetime::Until(at), Some(max)) => at > now && at - now <= max,
            (Lifetime::Until(_), None) => false,
            _ => self.choices.contains(&lifetime),
        };
        if !allowed {
            return Err(Error::ExpiryNotAllowed {
                requested: lifetime,
                allowed: self.choices.clone(),
            });
        }
        lifetime.expires_at(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap()
    }

    fn product_a() -> ExpiryPolicy {
        ExpiryPolicy::from_choices(
            [
                Lifetime::Months(1),
                Lifetime::Months(3),
                Lifetime::Months(6),
            ],
            Lifetime::Months(3),
        )
        .unwrap()
    }

    #[test]
    fn default_applies_when_nothing_is_asked() {
        let at = product_a().resolve(None, now()).unwrap().unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 4, 30, 12, 0, 0).unwrap());
    }

    #[test]
    fn calendar_months_clamp_to_month_end() {
        let at = product_a()
            .resolve(Some(Lifetime::Months(1)), now())
            .unwrap()
            .unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap());
    }

    #[test]
    fn disallowed_choices_name_the_allowed_ones() {
        let err = product_a()
            .resolve(Some(Lifetime::Years(1)), now())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "expiry 1 year is not allowed; choose one of: 1 month, 3 months, 6 months"
        );
        assert!(matches!(
            product_a().resolve(Some(Lifetime::Never), now()),
            Err(Error::ExpiryNotAllowed { .. })
        ));
    }

    #[test]
    fn fixed_dates_need_a_maximum_and_respect_it() {
        let soon = now() + TimeDelta::days(10);
        assert!(
            product_a()
                .resolve(Some(Lifetime::Until(soon)), now())
                .is_err()
        );
        let p = product_a().with_max_until(TimeDelta::days(30));
        assert_eq!(
            p.resolve(Some(Lifetime::Until(soon)), now()).unwrap(),
            Some(soon)
        );
        assert!(
            p.resolve(Some(Lifetime::Until(now() + TimeDelta::days(31))), now())
                .is_err()
        );
        assert!(
            p.resolve(Some(Lifetime::Until(now())), now()).is_err(),
            "not in the past"
        );
    }

    #[test]
    fn the_latest_expiry_is_the_longest_choice_or_never() {
        assert_eq!(
            product_a().latest_expiry(now()).unwrap(),
            Some(Utc.with_ymd_and_hms(2026, 7, 31, 12, 0, 0).unwrap())
        );
        let with_until = product_a().with_max_until(TimeDelta::days(400));
        assert_eq!(
            with_until.latest_expiry(now()).unwrap(),
            Some(now() + TimeDelta::days(400))
        );
        assert_eq!(ExpiryPolicy::never().latest_expiry(now()).unwrap(), None);
        assert!(
            product_a()
                .with_max_until(TimeDelta::MAX)
                .latest_expiry(now())
                .is_err(),
            "an overflowing maximum is an error, not a panic"
        );
    }

    #[test]
    fn never_is_a_choice_like_any_other() {
        assert_eq!(ExpiryPolicy::never().resolve(None, now()).unwrap(), None);
        assert!(ExpiryPolicy::from_choices([Lifetime::Days(1)], Lifetime::Never).is_err());
        assert!(Lifetime::Years(u32::MAX).expires_at(now()).is_err());
    }
}
