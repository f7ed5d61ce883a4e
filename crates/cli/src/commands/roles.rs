//! `keyward roles list|put|delete`: an owner's roles.

use super::owner;
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{Cell, joined};
use keyward::{Owner, PermissionSet, Role, RoleName};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// An owner's roles and what each grants: every role in name order,
    /// or the named ones.
    List {
        /// Whose roles.
        #[arg(long, value_parser = owner)]
        owner: Owner,
        /// Only the roles named after this one (in byte order), to resume a
        /// long listing.
        #[arg(long, value_name = "NAME", value_parser = role_name, conflicts_with = "names")]
        after: Option<RoleName>,
        /// The roles to read (at most 1000); none: every role of the owner.
        #[arg(value_parser = role_name)]
        names: Vec<RoleName>,
    },
    /// Create a role or replace what it grants: every key holding it changes.
    Put {
        /// Whose role.
        #[arg(long, value_parser = owner)]
        owner: Owner,
        /// The role.
        #[arg(value_parser = role_name)]
        name: RoleName,
        /// A permission it grants (repeat for more).
        #[arg(long = "permission", value_name = "PERMISSION", required = true)]
        permissions: Vec<String>,
    },
    /// Delete a role: keys that held it lose its permissions.
    Delete {
        /// Whose role.
        #[arg(long, value_parser = owner)]
        owner: Owner,
        /// The role.
        #[arg(value_parser = role_name)]
        name: RoleName,
    },
}

fn role_name(text: &str) -> Result<RoleName, String> {
    RoleName::new(text).map_err(|e| e.to_string())
}

/// A role in JSON: `{"owner": "…", "name": "…", "permissions": […]}`.
#[derive(serde::Serialize)]
struct RoleView<'a> {
    owner: &'a Owner,
    name: &'a RoleName,
    permissions: &'a PermissionSet,
}

impl<'a> From<&'a Role> for RoleView<'a> {
    fn from(role: &'a Role) -> Self {
        Self {
            owner: &role.owner,
            name: &role.name,
            permissions: &role.permissions,
        }
    }
}

/// Roles per query when listing every role of an owner: the largest page.
const ROLES_PAGE: usize = 1000;

/// Every role of `owner` named after `after` (all, without it), in name
/// order: one query per page of [`ROLES_PAGE`], following the last name of
/// each page until one comes back short.
async fn every_role(
    context: &Context,
    owner: &Owner,
    mut after: Option<RoleName>,
) -> Result<Vec<Role>, Failure> {
    let mut roles = Vec::new();
    loop {
        let page = context
            .keyward
            .list_roles(&context.actor, owner, after.as_ref(), ROLES_PAGE)
            .await?;
        let last = page.len() < ROLES_PAGE;
        after = page.last().map(|role| role.name.clone());
        roles.extend(page);
        if last {
            return Ok(roles);
        }
    }
}

#[derive(serde::Serialize)]
struct Deleted<'a> {
    deleted: bool,
    owner: &'a Owner,
    name: &'a RoleName,
}

pub(crate) async fn run(context: &Context, command: Command) -> Result<(), Failure> {
    let (keyward, actor, output) = (&context.keyward, &context.actor, &context.output);
    match command {
        Command::List {
            owner,
            after,
            names,
        } => {
            let roles = if names.is_empty() {
                every_role(context, &owner, after).await?
            } else {
                keyward.roles(actor, &owner, &names).await?
            };
            if output.is_json() {
                let views: Vec<RoleView<'_>> = roles.iter().map(RoleView::from).collect();
                return output.json(&views);
            }
            let rows: Vec<_> = roles
                .iter()
                .map(|role| {
                    vec![
                        Cell::new(role.name.as_str()),
                        Cell::new(joined(role.permissions.iter())),
                    ]
                })
                .collect();
            output.table(&["ROLE", "PERMISSIONS"], &rows)?;
            let missing: Vec<&str> = names
                .iter()
                .filter(|name| !roles.iter().any(|role| &role.name == *name))
                .map(RoleName::as_str)
                .collect();
            if !missing.is_empty() {
                output.note(&format!("no such role: {}", missing.join(", ")))?;
            }
            Ok(())
        }
        Command::Put {
            owner,
            name,
            permissions,
        } => {
            let role = Role::new(owner, name, PermissionSet::parse(&permissions)?);
            keyward.put_role(actor, role.clone()).await?;
            if output.is_json() {
                output.json(&RoleView::from(&role))
            } else {
                output.line(&format!(
                    "role {} of {} grants: {}",
                    role.name,
                    role.owner,
                    joined(role.permissions.iter())
                ))
            }
        }
        Command::Delete { owner, name } => {
            keyward.delete_role(actor, &owner, &name).await?;
            if output.is_json() {
                output.json(&Deleted {
                    deleted: true,
                    owner: &owner,
                    name: &name,
                })
            } else {
                output.line(&format!("deleted role {name} of {owner}"))
            }
        }
    }
}
