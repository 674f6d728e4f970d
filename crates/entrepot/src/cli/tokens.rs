//! `entrepot tokens create | list | revoke`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::output::{self, Column, FormatArg, QuietArg};
use super::{print_json, AdminClient, ClientError, PageArgs};

/// Personal access token verbs.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; it is shown once, in this answer.
    Create {
        /// For whom: `user:EMAIL` or `serviceAccount:EMAIL` (default: yourself).
        #[arg(long = "for")]
        principal: Option<String>,
        /// What the token is for.
        #[arg(long)]
        description: Option<String>,
        /// Lifetime, e.g. 3600s, 12h, 30d (default: no expiry).
        #[arg(long)]
        expires_in: Option<String>,
        /// The token may only read (pull, get, list).
        #[arg(long)]
        read_only: bool,
    },
    /// List tokens (never the tokens themselves).
    List {
        /// Whose tokens (default: yours).
        #[arg(long = "for")]
        principal: Option<String>,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id, as shown by list.
        id: String,
        #[command(flatten)]
        quiet: QuietArg,
    },
}

/// A bare e-mail means a user, or a service account for `*.iam.entrepot`.
fn member(principal: &str) -> String {
    if principal.contains(':') {
        principal.to_owned()
    } else if principal.ends_with(".iam.entrepot") {
        format!("serviceAccount:{principal}")
    } else {
        format!("user:{principal}")
    }
}

/// Run a token verb.
pub async fn run(client: &AdminClient, command: TokensCommand) -> Result<(), ClientError> {
    match command {
        TokensCommand::Create {
            principal,
            description,
            expires_in,
            read_only,
        } => {
            let body = json!({
                "principal": principal.as_deref().map(member),
                "description": description,
                "expiresIn": expires_in,
                "readOnly": read_only,
            });
            let token = client.call(Method::POST, "tokens", Some(&body)).await?;
            eprintln!(
                "Created token [{}] for {}. Copy it now: it is not shown again.",
                token["id"].as_str().unwrap_or(""),
                token["principal"].as_str().unwrap_or("")
            );
            print_json(&token);
        }
        TokensCommand::List {
            principal,
            page,
            format,
        } => {
            let path = match principal {
                Some(p) => format!("tokens?principal={}", url_encode(&member(&p))),
                None => "tokens".to_owned(),
            };
            let list = client.list(&path, "tokens", &page, None).await?;
            output::print_list(
                format.format,
                &list,
                &[
                    Column::field("ID", "/id"),
                    Column::field("PRINCIPAL", "/principal"),
                    Column::new("READONLY", |t| {
                        t["readOnly"].as_bool().unwrap_or(false).to_string()
                    }),
                    Column::new("REVOKED", |t| {
                        t["revoked"].as_bool().unwrap_or(false).to_string()
                    }),
                    Column::new("EXPIRES", |t| {
                        t["expireTime"].as_str().unwrap_or("never").to_owned()
                    }),
                    Column::field("DESCRIPTION", "/description"),
                ],
            );
        }
        TokensCommand::Revoke { id, quiet } => {
            output::confirm(quiet, &format!("The token [{id}] will be revoked."))?;
            client
                .call(Method::DELETE, &format!("tokens/{id}"), None)
                .await?;
            eprintln!("Revoked token [{id}].");
        }
    }
    Ok(())
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
