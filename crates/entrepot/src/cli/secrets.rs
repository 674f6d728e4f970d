//! `entrepot secrets ...` and `entrepot audit ...`, as gcloud users know them.
//!
//! `secrets versions access` prints the raw payload on stdout and nothing else;
//! every other message goes to stderr.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use base64::Engine as _;
use clap::Subcommand;
use entrepot_domain::{Labels, ProjectId, SecretId, SecretVersionName, VersionId};
use reqwest::Method;
use serde_json::{json, Value};

use super::output::{self, Column, FormatArg, QuietArg};
use super::{print_json, AdminClient, ClientError, PageArgs};

/// Secret verbs.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// IAM policy verbs: get/set-iam-policy, add/remove-iam-policy-binding.
    #[command(flatten)]
    Iam(super::secret_iam::SecretIamCommand),
    /// Create a secret, with a first version if --data-file is given.
    Create {
        /// Secret id, e.g. `dockerhub-token`.
        secret: String,
        /// File holding the first version's payload; `-` reads stdin.
        #[arg(long)]
        data_file: Option<PathBuf>,
        /// Labels, `KEY=VALUE,...` (lower-case keys).
        #[arg(long)]
        labels: Option<String>,
        /// Annotations, `KEY=VALUE,...`.
        #[arg(long)]
        annotations: Option<String>,
        /// Delete the secret this long after now, e.g. `86400s`.
        #[arg(long, conflicts_with = "expire_time")]
        ttl: Option<String>,
        /// Delete the secret at this RFC 3339 time.
        #[arg(long)]
        expire_time: Option<String>,
        /// When the secret is next due to be rotated (RFC 3339).
        #[arg(long)]
        next_rotation_time: Option<String>,
        /// How often it is due after that, e.g. `2592000s` (at least `3600s`).
        #[arg(long, requires = "next_rotation_time")]
        rotation_period: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// List the secrets of a project.
    List {
        /// Only those matching, e.g. `labels.env=prod` (see docs/secret-manager.md).
        #[arg(long)]
        filter: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show one secret.
    Describe {
        /// Secret id.
        secret: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Change a secret's labels.
    Update {
        /// Secret id.
        secret: String,
        /// Labels to add or change, `KEY=VALUE,...`.
        #[arg(long)]
        update_labels: Option<String>,
        /// Label keys to remove, `KEY,...`.
        #[arg(long)]
        remove_labels: Option<String>,
        /// Remove every label (before --update-labels applies).
        #[arg(long)]
        clear_labels: bool,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Delete a secret and all its versions.
    Delete {
        /// Secret id.
        secret: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        quiet: QuietArg,
    },
    /// Manage the versions of a secret.
    #[command(subcommand)]
    Versions(VersionsCommand),
}

/// Secret version verbs.
#[derive(Debug, Subcommand)]
pub enum VersionsCommand {
    /// Add a version; it becomes `latest`.
    Add {
        /// Secret id.
        secret: String,
        /// File holding the payload; `-` reads stdin.
        #[arg(long)]
        data_file: PathBuf,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Print a version's payload, exactly as stored, on stdout.
    Access {
        /// Version number, `latest`, or a full version name.
        version: String,
        /// Secret id (unless VERSION is a full name).
        #[arg(long)]
        secret: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// List the versions of a secret, newest first.
    List {
        /// Secret id.
        secret: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show one version's metadata.
    Describe {
        /// Version number, `latest`, or a full version name.
        version: String,
        /// Secret id (unless VERSION is a full name).
        #[arg(long)]
        secret: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Enable a disabled version.
    Enable {
        /// Version number, `latest`, or a full version name.
        version: String,
        /// Secret id (unless VERSION is a full name).
        #[arg(long)]
        secret: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Disable a version: kept, but not accessible.
    Disable {
        /// Version number, `latest`, or a full version name.
        version: String,
        /// Secret id (unless VERSION is a full name).
        #[arg(long)]
        secret: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Destroy a version: its payload is wiped for good.
    Destroy {
        /// Version number, `latest`, or a full version name.
        version: String,
        /// Secret id (unless VERSION is a full name).
        #[arg(long)]
        secret: Option<String>,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        quiet: QuietArg,
    },
}

/// Audit log verbs.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List secret access attempts, newest first.
    List {
        /// Only this secret: an id or `projects/P/secrets/S`.
        #[arg(long)]
        resource: Option<String>,
        /// At most this many entries (read in pages of up to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        format: FormatArg,
    },
}

fn invalid(message: String) -> ClientError {
    ClientError::Api {
        status: reqwest::StatusCode::BAD_REQUEST,
        message,
    }
}

fn project_id(project: &str) -> Result<ProjectId, ClientError> {
    project
        .parse()
        .map_err(|e: entrepot_domain::NameError| invalid(e.to_string()))
}

/// `projects/{p}/secrets/{s}`, validated so that no path trick reaches the URL.
fn secret_path(project: &str, secret: &str) -> Result<String, ClientError> {
    let project = project_id(project)?;
    let secret: SecretId = secret
        .parse()
        .map_err(|e: entrepot_domain::SecretNameError| invalid(e.to_string()))?;
    Ok(format!("projects/{project}/secrets/{secret}"))
}

/// The API path of a version given as a number, `latest` or a full name.
fn version_path(project: &str, secret: Option<&str>, version: &str) -> Result<String, ClientError> {
    if version.starts_with("projects/") {
        let name: SecretVersionName = version
            .parse()
            .map_err(|e: entrepot_domain::SecretNameError| invalid(e.to_string()))?;
        return Ok(name.to_string());
    }
    let secret = secret.ok_or_else(|| {
        invalid(format!(
            "say which secret version {version} belongs to: --secret=SECRET, or give the full name projects/P/secrets/S/versions/V"
        ))
    })?;
    let version: VersionId = version
        .parse()
        .map_err(|e: entrepot_domain::SecretNameError| invalid(e.to_string()))?;
    Ok(format!(
        "{}/versions/{version}",
        secret_path(project, secret)?
    ))
}

fn read_data_file(path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    let mut data = Vec::new();
    let result = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut data).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut data).map(|_| ()))
    };
    result.map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    Ok(data)
}

fn payload_json(data: &[u8]) -> Value {
    json!({ "data": base64::engine::general_purpose::STANDARD.encode(data) })
}

/// `KEY=VALUE,...` as a JSON object (the server checks the keys).
fn parse_annotations(text: &str) -> Result<Value, ClientError> {
    let mut map = serde_json::Map::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| invalid(format!("annotation {pair:?} is not KEY=VALUE")))?;
        map.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(Value::Object(map))
}

fn last_segment(name: &Value) -> &str {
    name.as_str()
        .and_then(|n| n.rsplit('/').next())
        .unwrap_or("")
}

/// Percent-encode a query value (everything but unreserved characters and `/`).
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Run a secret verb.
pub async fn run(client: &AdminClient, command: SecretsCommand) -> Result<(), ClientError> {
    match command {
        SecretsCommand::Iam(command) => super::secret_iam::run(client, command).await?,
        SecretsCommand::Create {
            secret,
            data_file,
            labels,
            annotations,
            ttl,
            expire_time,
            next_rotation_time,
            rotation_period,
            project,
        } => {
            // Validate both ids before they become part of a URL.
            secret_path(&project, &secret)?;
            let labels = Labels::parse_list(labels.as_deref().unwrap_or(""))
                .map_err(|e| invalid(e.to_string()))?;
            let mut body = json!({ "labels": labels });
            if let Some(annotations) = &annotations {
                body["annotations"] = parse_annotations(annotations)?;
            }
            if let Some(ttl) = ttl {
                body["ttl"] = Value::String(ttl);
            }
            if let Some(at) = expire_time {
                body["expireTime"] = Value::String(at);
            }
            if let Some(next) = next_rotation_time {
                body["rotation"] = json!({ "nextRotationTime": next });
                if let Some(period) = rotation_period {
                    body["rotation"]["rotationPeriod"] = Value::String(period);
                }
            }
            if let Some(file) = &data_file {
                body["payload"] = payload_json(&read_data_file(file)?);
            }
            let project = project_id(&project)?;
            let created = client
                .call(
                    Method::POST,
                    &format!("projects/{project}/secrets?secretId={secret}"),
                    Some(&body),
                )
                .await?;
            eprintln!("Created secret [{secret}].");
            if data_file.is_some() {
                eprintln!("Created version [1] of the secret [{secret}].");
            }
            print_json(&created);
        }
        SecretsCommand::List {
            filter,
            project,
            page,
            format,
        } => {
            let project = project_id(&project)?;
            let query = filter
                .map(|f| format!("?filter={}", query_value(&f)))
                .unwrap_or_default();
            let list = client
                .list(
                    &format!("projects/{project}/secrets{query}"),
                    "secrets",
                    &page,
                    None,
                )
                .await?;
            output::print_list(
                format.format,
                &list,
                &[
                    Column::new("NAME", |s| last_segment(&s["name"]).to_owned()),
                    Column::field("CREATED", "/createTime"),
                    Column::new("LABELS", |s| {
                        s["labels"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    }),
                ],
            );
        }
        SecretsCommand::Describe {
            secret,
            project,
            format,
        } => {
            let path = secret_path(&project, &secret)?;
            output::print_item(format.format, &client.call(Method::GET, &path, None).await?);
        }
        SecretsCommand::Update {
            secret,
            update_labels,
            remove_labels,
            clear_labels,
            project,
        } => {
            let path = secret_path(&project, &secret)?;
            let current = client.call(Method::GET, &path, None).await?;
            let mut labels: serde_json::Map<String, Value> = if clear_labels {
                serde_json::Map::new()
            } else {
                current["labels"].as_object().cloned().unwrap_or_default()
            };
            for key in remove_labels
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|k| !k.is_empty())
            {
                labels.remove(key);
            }
            let updates = Labels::parse_list(update_labels.as_deref().unwrap_or(""))
                .map_err(|e| invalid(e.to_string()))?;
            for (k, v) in updates.as_map() {
                labels.insert(k.clone(), Value::String(v.clone()));
            }
            let updated = client
                .call(Method::PATCH, &path, Some(&json!({ "labels": labels })))
                .await?;
            eprintln!("Updated secret [{secret}].");
            print_json(&updated);
        }
        SecretsCommand::Delete {
            secret,
            project,
            quiet,
        } => {
            let path = secret_path(&project, &secret)?;
            output::confirm(
                quiet,
                &format!("The secret [{secret}] and all its versions will be deleted."),
            )?;
            client.call(Method::DELETE, &path, None).await?;
            eprintln!("Deleted secret [{secret}].");
        }
        SecretsCommand::Versions(command) => run_versions(client, command).await?,
    }
    Ok(())
}

async fn run_versions(client: &AdminClient, command: VersionsCommand) -> Result<(), ClientError> {
    match command {
        VersionsCommand::Add {
            secret,
            data_file,
            project,
        } => {
            let path = secret_path(&project, &secret)?;
            let body = json!({ "payload": payload_json(&read_data_file(&data_file)?) });
            let version = client
                .call(Method::POST, &format!("{path}:addVersion"), Some(&body))
                .await?;
            eprintln!(
                "Created version [{}] of the secret [{secret}].",
                last_segment(&version["name"])
            );
        }
        VersionsCommand::Access {
            version,
            secret,
            project,
        } => {
            let path = version_path(&project, secret.as_deref(), &version)?;
            let answer = client
                .call(Method::GET, &format!("{path}:access"), None)
                .await?;
            let data = answer["payload"]["data"]
                .as_str()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                .ok_or_else(|| ClientError::Decode("the answer holds no payload".into()))?;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&data)
                .and_then(|()| stdout.flush())
                .map_err(|e| {
                    ClientError::Decode(format!("cannot write the payload to stdout: {e}"))
                })?;
        }
        VersionsCommand::List {
            secret,
            project,
            page,
            format,
        } => {
            let path = secret_path(&project, &secret)?;
            let list = client
                .list(&format!("{path}/versions"), "versions", &page, None)
                .await?;
            output::print_list(
                format.format,
                &list,
                &[
                    Column::new("NAME", |v| last_segment(&v["name"]).to_owned()),
                    Column::field("STATE", "/state"),
                    Column::field("CREATED", "/createTime"),
                    Column::new("DESTROYED", |v| {
                        v["destroyTime"].as_str().unwrap_or("-").to_owned()
                    }),
                ],
            );
        }
        VersionsCommand::Describe {
            version,
            secret,
            project,
            format,
        } => {
            let path = version_path(&project, secret.as_deref(), &version)?;
            output::print_item(format.format, &client.call(Method::GET, &path, None).await?);
        }
        VersionsCommand::Enable {
            version,
            secret,
            project,
        } => {
            change_state(
                client,
                &project,
                secret.as_deref(),
                &version,
                "enable",
                "Enabled",
            )
            .await?
        }
        VersionsCommand::Disable {
            version,
            secret,
            project,
        } => {
            change_state(
                client,
                &project,
                secret.as_deref(),
                &version,
                "disable",
                "Disabled",
            )
            .await?
        }
        VersionsCommand::Destroy {
            version,
            secret,
            project,
            quiet,
        } => {
            output::confirm(
                quiet,
                &format!(
                    "The version [{version}] will be destroyed: its payload is wiped for good."
                ),
            )?;
            change_state(
                client,
                &project,
                secret.as_deref(),
                &version,
                "destroy",
                "Destroyed",
            )
            .await?
        }
    }
    Ok(())
}

async fn change_state(
    client: &AdminClient,
    project: &str,
    secret: Option<&str>,
    version: &str,
    verb: &str,
    done: &str,
) -> Result<(), ClientError> {
    let path = version_path(project, secret, version)?;
    let answer = client
        .call(Method::POST, &format!("{path}:{verb}"), Some(&json!({})))
        .await?;
    eprintln!(
        "{done} version [{}] of the secret [{}].",
        last_segment(&answer["name"]),
        answer["name"]
            .as_str()
            .and_then(|n| n.split('/').nth(3))
            .unwrap_or("")
    );
    print_json(&answer);
    Ok(())
}

/// Run an audit verb.
pub async fn run_audit(client: &AdminClient, command: AuditCommand) -> Result<(), ClientError> {
    match command {
        AuditCommand::List {
            resource,
            limit,
            project,
            page,
            format,
        } => {
            let project = project_id(&project)?;
            let mut path = format!("projects/{project}/auditLog");
            if let Some(resource) = resource {
                let resource = if resource.contains('/') {
                    resource
                } else {
                    secret_path(project.as_str(), &resource)?
                };
                path.push_str(&format!("?resource={}", query_value(&resource)));
            }
            let list = client
                .list(&path, "auditLogEntries", &page, Some(limit as usize))
                .await?;
            output::print_list(
                format.format,
                &list,
                &[
                    Column::field("TIME", "/time"),
                    Column::new("RESULT", |e| {
                        if e["allowed"].as_bool().unwrap_or(false) {
                            "ALLOWED".into()
                        } else {
                            "DENIED".into()
                        }
                    }),
                    Column::field("PRINCIPAL", "/principal"),
                    Column::field("RESOURCE", "/resource"),
                    Column::new("VERSION", |e| {
                        e["version"].as_str().unwrap_or("-").to_owned()
                    }),
                    Column::field("REASON", "/reason"),
                ],
            );
        }
    }
    Ok(())
}
