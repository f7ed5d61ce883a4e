//! `keyward verify`: diagnose a token. Prints the typed outcome or the
//! refusal's reason, never the secret; does not count as a use.

use crate::context::Context;
use crate::failure::{Failure, UNANSWERED};
use crate::output::{Cell, Style, joined, time};
use keyward::chrono::{DateTime, Utc};
use keyward::{KeyId, Owner, PermissionSet, Rejection, Requirement, VerifiedKey};
use std::io::Read;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The token, or `-` to read it from stdin (keeps it out of the shell
    /// history and the process list).
    token: String,
    /// A permission the token must hold (repeat: all of them).
    #[arg(long = "require", value_name = "PERMISSION")]
    require: Vec<String>,
}

/// The JSON answer: `valid` says which of the two shapes it is.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Answer<'a> {
    Valid {
        valid: bool,
        key_id: &'a KeyId,
        kind: &'a str,
        owner: &'a Owner,
        name: &'a str,
        permissions: &'a PermissionSet,
        expires_at: Option<DateTime<Utc>>,
    },
    Refused {
        valid: bool,
        reason: &'static str,
        message: String,
        missing: Option<Vec<&'a str>>,
    },
}

pub(crate) async fn run(context: &Context, args: Args) -> Result<(), Failure> {
    let token = if args.token == "-" {
        read_token()?
    } else {
        args.token
    };
    let requirement = Requirement::all_of(&args.require)?;
    let verified = context.keyward.verify(token.trim(), &requirement).await;
    match verified {
        Ok(key) => valid(context, &key),
        Err(rejection) => refused(context, &rejection),
    }
}

/// The longest stdin read for `-`: a token is at most a few hundred bytes.
const MAX_STDIN: u64 = 4096;

fn read_token() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_STDIN)
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("cannot read the token from stdin: {e}")))?;
    Ok(text)
}

fn valid(context: &Context, key: &VerifiedKey) -> Result<(), Failure> {
    let output = &context.output;
    if output.is_json() {
        return output.json(&Answer::Valid {
            valid: true,
            key_id: key.key_id(),
            kind: key.kind(),
            owner: key.owner(),
            name: key.name(),
            permissions: key.permissions(),
            expires_at: key.expires_at(),
        });
    }
    output.fields(&[
        ("outcome", Cell::styled("valid", Style::Good)),
        ("id", Cell::new(key.key_id().as_str())),
        ("kind", Cell::new(key.kind())),
        ("owner", Cell::new(key.owner().as_str())),
        ("name", Cell::new(key.name())),
        ("permissions", Cell::new(joined(key.permissions().iter()))),
        ("expires", Cell::new(time(key.expires_at(), "never"))),
    ])
}

fn refused(context: &Context, rejection: &Rejection) -> Result<(), Failure> {
    let output = &context.output;
    let missing = match rejection {
        Rejection::InsufficientPermissions { missing } => Some(missing.permissions()),
        _ => None,
    };
    // A store that did not answer says nothing about the token.
    if let Rejection::Unavailable(error) = rejection {
        return Err(Failure {
            message: format!("verification unavailable: {}", crate::failure::chain(error)),
            code: UNANSWERED,
        });
    }
    if output.is_json() {
        output.json(&Answer::Refused {
            valid: false,
            reason: rejection.reason(),
            message: rejection.to_string(),
            missing,
        })?;
    } else {
        let mut fields = vec![
            ("outcome", Cell::styled("refused", Style::Bad)),
            ("reason", Cell::new(rejection.reason())),
            ("message", Cell::new(rejection.to_string())),
        ];
        if let Some(missing) = &missing {
            fields.push(("missing", Cell::new(missing.join(" "))));
        }
        output.fields(&fields)?;
    }
    Err(Failure {
        message: String::new(),
        code: crate::failure::REFUSED,
    })
}
