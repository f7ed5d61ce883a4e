//! One module per command. Each has its `Args` (what clap reads) and a
//! `run` that prints its answer; [`run`] dispatches. A new command (such
//! as `scan`) is a module here and a variant of [`crate::cli::Command`].

pub(crate) mod audit;
pub(crate) mod completions;
pub(crate) mod expiring;
pub(crate) mod issue;
pub(crate) mod list;
pub(crate) mod migrate;
pub(crate) mod prune;
pub(crate) mod roles;
pub(crate) mod rotate;
pub(crate) mod show;
pub(crate) mod state;
pub(crate) mod verify;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::failure::Failure;
use crate::output::Output;
use keyward::Owner;
use keyward::chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// A command that names one key.
#[derive(Debug, clap::Args)]
pub(crate) struct KeyArg {
    /// The key's public id (as `list` shows it), or the whole token (its id
    /// is used; the token is never printed back).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
}

/// Runs the command line's command.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let open = || Context::open(&cli.config, Output::new(cli.json));
    match cli.command {
        Command::Completions(args) => completions::run(&args),
        Command::Migrate => {
            migrate::run(&Context::open_migrated(&cli.config, Output::new(cli.json)).await?).await
        }
        Command::Issue(args) => issue::run(&open().await?, args).await,
        Command::List(args) => list::run(&open().await?, args).await,
        Command::Show(args) => {
            let context = open().await?;
            show::run(&context, &context.key_id(&args.id)?).await
        }
        Command::Revoke(args) => {
            let context = open().await?;
            let id = context.key_id(&args.key.id)?;
            state::run(&context, state::Change::Revoke(args.reason), &id).await
        }
        Command::Disable(args) => {
            let context = open().await?;
            state::run(&context, state::Change::Disable, &context.key_id(&args.id)?).await
        }
        Command::Enable(args) => {
            let context = open().await?;
            state::run(&context, state::Change::Enable, &context.key_id(&args.id)?).await
        }
        Command::Rotate(args) => rotate::run(&open().await?, &args).await,
        Command::Roles(command) => roles::run(&open().await?, command).await,
        Command::Audit(args) => audit::run(&open().await?, &args).await,
        Command::Expiring(args) => expiring::run(&open().await?, &args).await,
        Command::Verify(args) => verify::run(&open().await?, args).await,
        Command::Prune(args) => prune::run(&open().await?, &args).await,
    }
}

/// `revoke`: a key, and why.
#[derive(Debug, clap::Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    pub(crate) key: KeyArg,
    /// Why, recorded in the audit event (where the token leaked, who
    /// reported it; never the token itself).
    #[arg(long)]
    pub(crate) reason: Option<String>,
}

// ------------------------------------------------------- argument parsers

pub(crate) fn owner(text: &str) -> Result<Owner, String> {
    Owner::new(text).map_err(|e| e.to_string())
}

/// Longest duration `--overlap` and `--within` accept: 100 years.
const MAX_DURATION_DAYS: i64 = 36_600;

/// A duration: a count and a unit, `90s`, `30m`, `12h`, `7d`, `2w` (or `0`).
pub(crate) fn duration(text: &str) -> Result<TimeDelta, String> {
    let bad =
        || "expected a count and a unit: 90s, 30m, 12h, 7d or 2w (at most 100 years)".to_owned();
    let text = text.trim();
    if text == "0" {
        return Ok(TimeDelta::zero());
    }
    if text.len() > 32 {
        return Err(bad());
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (count, unit) = text.split_at(digits);
    let count: i64 = count.parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    let seconds = count.checked_mul(seconds_per_unit).ok_or_else(bad)?;
    if seconds > MAX_DURATION_DAYS * 86_400 {
        return Err(bad());
    }
    TimeDelta::try_seconds(seconds).ok_or_else(bad)
}

/// A point in time: a duration ago (`90d`, `12h`), an RFC 3339 time
/// (`2026-01-31T00:00:00Z`), or a date (`2026-01-31`, midnight UTC).
pub(crate) fn time_ago_or_at(text: &str) -> Result<DateTime<Utc>, String> {
    time_at(text, Utc::now())
}

fn time_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(ago) = duration(text) {
        return now
            .checked_sub_signed(ago)
            .ok_or_else(|| "out of range".to_owned());
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .ok_or_else(|| {
            "expected a duration ago (90d, 12h), an RFC 3339 time or a date (2026-01-31)".to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_a_duration_ago_a_timestamp_or_a_date() {
        let now: DateTime<Utc> = "2026-12-03T12:00:00Z".parse().unwrap();
        assert_eq!(
            time_at("7d", now),
            Ok("2026-11-26T12:00:00Z".parse().unwrap())
        );
        assert_eq!(
            time_at("2026-01-31T10:00:00+02:00", now),
            Ok("2026-01-31T08:00:00Z".parse().unwrap())
        );
        assert_eq!(
            time_at("2026-01-31", now),
            Ok("2026-01-31T00:00:00Z".parse().unwrap())
        );
        for bad in ["", "yesterday", "2026-13-01", "7 days"] {
            assert!(time_at(bad, now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("7d"), Ok(TimeDelta::days(7)));
        assert_eq!(duration("12h"), Ok(TimeDelta::hours(12)));
        assert_eq!(duration("30m"), Ok(TimeDelta::minutes(30)));
        assert_eq!(duration("90s"), Ok(TimeDelta::seconds(90)));
        assert_eq!(duration("2w"), Ok(TimeDelta::days(14)));
        assert_eq!(duration("0"), Ok(TimeDelta::zero()));
        assert_eq!(duration("36600d"), Ok(TimeDelta::days(36_600)));
        for bad in [
            "",
            "7",
            "d",
            "-1d",
            "7 days",
            "36601d",
            "99999999999999999999d",
            "1.5h",
            "7D",
        ] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
    }
}
