//! `keyward roles list|put|delete`: an owner's roles.

use super::owner;
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{Cell, joined};
use keyward::{Owner, PermissionSet, Role, RoleName};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// The named roles of an owner and what each grants.
    List {
        /// Whose roles.
        #[arg(long, value_parser = owner)]
        owner: Owner,
        /// The roles to read (at most 1000).
        #[arg(required = true, value_parser = role_name)]
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

#[derive(serde::Serialize)]
struct Deleted<'a> {
    deleted: bool,
    owner: &'a Owner,
    name: &'a RoleName,
}

pub(crate) async fn run(context: &Context, command: Command) -> Result<(), Failure> {
    let (keyward, actor, output) = (&context.keyward, &context.actor, &context.output);
    match command {
        Command::List { owner, names } => {
            let roles = keyward.roles(actor, &owner, &names).await?;
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
