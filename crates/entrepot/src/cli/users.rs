//! `entrepot users create | list | delete`.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::login::read_secret;
use super::output::{self, Column, FormatArg, QuietArg};
use super::{print_json, AdminClient, ClientError, PageArgs};

/// User verbs.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a local user.
    Create {
        /// E-mail address.
        email: String,
        /// File holding the password (`-`: standard input); without it the user
        /// signs in with tokens only.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List users.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Delete a user; their tokens stop working.
    Delete {
        /// E-mail address.
        email: String,
        #[command(flatten)]
        quiet: QuietArg,
    },
}

/// Run a user verb.
pub async fn run(client: &AdminClient, command: UsersCommand) -> Result<(), ClientError> {
    match command {
        UsersCommand::Create {
            email,
            password_file,
        } => {
            let password =
                password_file
                    .map(|f| read_secret(&f))
                    .transpose()
                    .map_err(|message| ClientError::Api {
                        status: StatusCode::BAD_REQUEST,
                        message,
                    })?;
            let user = client
                .call(
                    Method::POST,
                    "users",
                    Some(&json!({ "email": email, "password": password })),
                )
                .await?;
            eprintln!("Created user [{email}].");
            print_json(&user);
        }
        UsersCommand::List { page, format } => {
            let list = client.list("users", "users", &page, None).await?;
            output::print_list(
                format.format,
                &list,
                &[
                    Column::field("USER", "/email"),
                    Column::new("PASSWORD", |u| {
                        if u["hasPassword"].as_bool().unwrap_or(false) {
                            "yes".into()
                        } else {
                            "no".into()
                        }
                    }),
                    Column::field("CREATED", "/createTime"),
                ],
            );
        }
        UsersCommand::Delete { email, quiet } => {
            output::confirm(
                quiet,
                &format!("The user [{email}] will be deleted; their tokens stop working."),
            )?;
            client
                .call(Method::DELETE, &format!("users/{email}"), None)
                .await?;
            eprintln!("Deleted user [{email}].");
        }
    }
    Ok(())
}
