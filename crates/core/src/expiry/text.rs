//! A [`Lifetime`] as text: what a person types ("6 months", "30d",
//! "never"), and its stable serde form.

use super::Lifetime;
use crate::error::Error;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Longest text [`Lifetime::from_str`](std::str::FromStr) reads.
const MAX_LEN: usize = 64;
/// The largest count of a unit: a hundred years, in any unit.
const MAX_COUNT: u32 = 36_600;

fn bad() -> Error {
    Error::invalid(
        "lifetime",
        "expected `never`, `<n> days|months|years` (or `30d`, `6mo`, `1y`), or `until <RFC 3339 time>`",
    )
}

/// Parses what [`Lifetime`]'s `Display` writes and what people type:
/// `never`; a count and a unit (`1 day`, `30 days`, `6 months`, `1 year`,
/// or short: `30d`, `6mo`, `1y`), from 1 to 36,600; `until` and a time,
/// in RFC 3339 (`until 2027-01-31T00:00:00Z`) or as `Display` writes it
/// (`until 2027-01-31 00:00 UTC`). Case-insensitive; at most 64 bytes.
///
/// ```
/// use keyward_core::Lifetime;
/// assert_eq!("6 months".parse::<Lifetime>()?, Lifetime::Months(6));
/// assert_eq!("30d".parse::<Lifetime>()?, Lifetime::Days(30));
/// assert_eq!("never".parse::<Lifetime>()?, Lifetime::Never);
/// assert_eq!(Lifetime::Years(1).to_string().parse::<Lifetime>()?, Lifetime::Years(1));
/// assert!("0 days".parse::<Lifetime>().is_err());
/// Ok::<(), keyward_core::Error>(())
/// ```
impl std::str::FromStr for Lifetime {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_LEN {
            return Err(bad());
        }
        let text = text.trim().to_ascii_lowercase();
        if text == "never" {
            return Ok(Self::Never);
        }
        if let Some(at) = text.strip_prefix("until ") {
            return until(at.trim()).map(Self::Until);
        }
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (count, unit) = text.split_at(digits);
        let count: u32 = count.parse().map_err(|_| bad())?;
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(bad());
        }
        match unit.trim() {
            "d" | "day" | "days" => Ok(Self::Days(count)),
            "mo" | "month" | "months" => Ok(Self::Months(count)),
            "y" | "year" | "years" => Ok(Self::Years(count)),
            _ => Err(bad()),
        }
    }
}

fn until(text: &str) -> Result<DateTime<Utc>, Error> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    // As `Display` writes it, lowercased: `2027-01-31 00:00 utc`.
    let local = text.strip_suffix(" utc").ok_or_else(bad)?;
    NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M")
        .map(|at| at.and_utc())
        .map_err(|_| bad())
}

impl Lifetime {
    /// The stable text form (what serde writes): `never`, `<n> days`,
    /// `<n> months`, `<n> years` (singular for 1), or `until` and an RFC
    /// 3339 time to the microsecond. [`Lifetime::from_str`](std::str::FromStr)
    /// reads it back exactly.
    pub fn to_text(&self) -> String {
        match self {
            Self::Until(at) => format!("until {}", at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            other => other.to_string(),
        }
    }
}

/// As [`Lifetime::to_text`].
impl serde::Serialize for Lifetime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_text())
    }
}

/// From any text [`Lifetime::from_str`](std::str::FromStr) reads.
impl<'de> serde::Deserialize<'de> for Lifetime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_and_display_both_parse() {
        let cases = [
            ("never", Lifetime::Never),
            (" Never ", Lifetime::Never),
            ("1 day", Lifetime::Days(1)),
            ("30 days", Lifetime::Days(30)),
            ("30d", Lifetime::Days(30)),
            ("7 D", Lifetime::Days(7)),
            ("6 months", Lifetime::Months(6)),
            ("6mo", Lifetime::Months(6)),
            ("1 year", Lifetime::Years(1)),
            ("2y", Lifetime::Years(2)),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Lifetime>().unwrap(), expected, "{text:?}");
            assert_eq!(expected.to_string().parse::<Lifetime>().unwrap(), expected);
        }
    }

    #[test]
    fn until_reads_rfc_3339_and_display_and_round_trips_exactly() {
        let at = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let until = Lifetime::Until(at);
        assert_eq!(until.to_text().parse::<Lifetime>().unwrap(), until);
        let json = serde_json::to_string(&until).unwrap();
        assert_eq!(serde_json::from_str::<Lifetime>(&json).unwrap(), until);
        // Display is to the minute, and parses back to that minute.
        let minute = DateTime::from_timestamp(1_800_000_000 / 60 * 60, 0).unwrap();
        assert_eq!(
            Lifetime::Until(at).to_string().parse::<Lifetime>().unwrap(),
            Lifetime::Until(minute)
        );
        assert_eq!(
            "until 2027-01-31T00:00:00+02:00"
                .parse::<Lifetime>()
                .unwrap(),
            Lifetime::Until("2027-01-30T22:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn bad_text_is_a_typed_error_never_a_panic() {
        let long = "9".repeat(1000);
        let bad = [
            "",
            " ",
            "0 days",
            "-1 days",
            "36601 days",
            "99999999999999999999 days",
            "6",
            "months",
            "6 weeks",
            "6 months ago",
            "until",
            "until tomorrow",
            "until 2027-13-01T00:00:00Z",
            "6 mönths",
            &long,
        ];
        for text in bad {
            assert!(
                matches!(
                    text.parse::<Lifetime>(),
                    Err(Error::InvalidInput {
                        field: "lifetime",
                        ..
                    })
                ),
                "{text:?}"
            );
        }
        assert!(serde_json::from_str::<Lifetime>("\"6 weeks\"").is_err());
        assert!(serde_json::from_str::<Lifetime>("6").is_err());
    }

    #[test]
    fn serde_writes_the_stable_text() {
        let json =
            serde_json::to_string(&[Lifetime::Months(6), Lifetime::Days(1), Lifetime::Never])
                .unwrap();
        assert_eq!(json, r#"["6 months","1 day","never"]"#);
        let back: Vec<Lifetime> = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back,
            [Lifetime::Months(6), Lifetime::Days(1), Lifetime::Never]
        );
    }
}
