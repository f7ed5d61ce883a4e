//! `keyward list`: an owner's keys, newest first, one page per query.

use super::{owner, time_ago_or_at};
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{KEY_HEADERS, key_row};
use keyward::chrono::{DateTime, Utc};
use keyward::{KeyDetails, ListRequest, Owner, Status, store::Cursor, store::Page};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Whose keys (default: every owner's).
    #[arg(long, value_parser = owner)]
    owner: Option<Owner>,
    /// Only this kind.
    #[arg(long)]
    kind: Option<String>,
    /// Only keys with this status (repeat for more): active, disabled,
    /// expired, revoked.
    #[arg(long, value_parser = status)]
    status: Vec<Status>,
    /// Only names containing this text (case-insensitive).
    #[arg(long)]
    name: Option<String>,
    /// Only keys not used since then (never used counts): `90d` ago, an
    /// RFC 3339 time or a date.
    #[arg(long, value_name = "TIME", value_parser = time_ago_or_at)]
    last_used_before: Option<DateTime<Utc>>,
    /// Keys per page (1..=1000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after this cursor (printed after the previous page).
    #[arg(long, value_parser = cursor)]
    cursor: Option<Cursor>,
    /// Every page, one query per page, until the last.
    #[arg(long, conflicts_with = "cursor")]
    all: bool,
}

pub(crate) fn status(text: &str) -> Result<Status, String> {
    match text {
        "active" => Ok(Status::Active),
        "disabled" => Ok(Status::Disabled),
        "expired" => Ok(Status::Expired),
        "revoked" => Ok(Status::Revoked),
        _ => Err("expected active, disabled, expired or revoked".to_owned()),
    }
}

fn cursor(text: &str) -> Result<Cursor, String> {
    Cursor::decode(text).map_err(|e| e.to_string())
}

pub(crate) async fn run(context: &Context, args: Args) -> Result<(), Failure> {
    let mut request = args
        .owner
        .map_or_else(ListRequest::all_owners, ListRequest::new)
        .statuses(args.status)
        .limit(args.limit);
    if let Some(kind) = &args.kind {
        request = request.kind(kind);
    }
    if let Some(name) = &args.name {
        request = request.name_contains(name);
    }
    if let Some(at) = args.last_used_before {
        request = request.last_used_before(at);
    }
    if let Some(cursor) = args.cursor {
        request = request.after(cursor);
    }
    let mut page = context
        .keyward
        .list(&context.actor, request.clone())
        .await?;
    if args.all {
        let mut items = std::mem::take(&mut page.items);
        while let Some(next) = page.next.take() {
            page = context
                .keyward
                .list(&context.actor, request.clone().after(next))
                .await?;
            items.append(&mut page.items);
        }
        page.items = items;
    }
    print(context, &page)
}

fn print(context: &Context, page: &Page<KeyDetails>) -> Result<(), Failure> {
    let output = &context.output;
    if output.is_json() {
        return output.json(page);
    }
    let now = Utc::now();
    let rows: Vec<_> = page.items.iter().map(|key| key_row(key, now)).collect();
    output.table(&KEY_HEADERS, &rows)?;
    if let Some(next) = &page.next {
        output.line(&format!("next page: --cursor {}", next.encode()))?;
    }
    Ok(())
}
