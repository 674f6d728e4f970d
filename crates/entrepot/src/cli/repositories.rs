//! `entrepot repositories ...`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::output::{self, size_cell, Column, FormatArg, QuietArg};
use super::release_age::ReleaseAgeArgs;
use super::{print_json, AdminClient, ClientError, PageArgs};

/// Repository verbs.
#[derive(Debug, Subcommand)]
pub enum RepositoriesCommand {
    /// Create a repository.
    Create {
        /// Repository id, e.g. `images`.
        name: String,
        /// `docker` or `python`.
        #[arg(long = "repository-format")]
        format: String,
        /// `standard-repository` (default), `remote-repository` or `virtual-repository`.
        #[arg(long, default_value = "standard-repository")]
        mode: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// Upstream of a remote Docker repository: DOCKER-HUB, GHCR, QUAY, K8S, ECR-PUBLIC, GITLAB, MCR or a URL.
        #[arg(long)]
        remote_docker_repo: Option<String>,
        /// Upstream of a remote Python repository: PYPI or the URL of a simple index.
        #[arg(long, conflicts_with = "remote_docker_repo")]
        remote_python_repo: Option<String>,
        /// Allow plain http to an upstream that is not on loopback.
        #[arg(long)]
        allow_insecure_upstream: bool,
        /// Username for the upstream.
        #[arg(long)]
        remote_username: Option<String>,
        /// Secret version with the upstream password or token
        /// (projects/P/secrets/S/versions/V).
        #[arg(long)]
        remote_password_secret_version: Option<String>,
        /// How long a cached tag is trusted without asking the upstream (e.g. 300s, 5m, 1h).
        #[arg(long, value_parser = parse_duration)]
        remote_tag_ttl: Option<u64>,
        /// How long a cached Python index page is trusted without asking the
        /// upstream (e.g. 600s, 10m); defaults to the tag TTL.
        #[arg(long, value_parser = parse_duration, env = "ENTREPOT_REMOTE_PYTHON_INDEX_TTL")]
        remote_python_index_ttl: Option<u64>,
        /// Serve cached tags when the upstream fails (default true).
        #[arg(long)]
        serve_stale: Option<bool>,
        /// Serve cached content even while the registry access policy blocks the upstream.
        #[arg(long)]
        allow_cached_from_blocked: bool,
        /// Most bytes a remote repository's cache may hold (binary units:
        /// 512MiB, 50GiB); past it the least recently pulled images go.
        #[arg(long, value_parser = parse_size)]
        cache_max_size: Option<u64>,
        /// Store the repository even if the registry access policy blocks its
        /// upstream (pulls stay blocked until the host is allowed).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        timeouts: TimeoutArgs,
        #[command(flatten)]
        release_age: Box<ReleaseAgeArgs>,
        /// Storage quota of a standard repository (e.g. 10GiB; `none`: no quota).
        #[arg(long, value_parser = super::cleanup::parse_quota)]
        storage_quota: Option<super::cleanup::QuotaSetting>,
        #[command(flatten)]
        members: VirtualArgs,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Check a remote repository's upstream: reachability, credentials, rate limits.
    TestUpstream {
        /// Repository id.
        name: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// Ask a remote repository's upstream now about a cached tag (IMAGE:TAG),
    /// every cached tag of an image (IMAGE) or a Python project page, and
    /// say what changed (digest before and after).
    Refresh {
        /// Repository id.
        name: String,
        /// IMAGE:TAG, IMAGE, or a Python project.
        what: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    /// List the repositories of a project, with the bytes each holds.
    List {
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show one repository, with the bytes it holds.
    Describe {
        /// Repository id.
        name: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Change a repository.
    Update {
        /// Repository id.
        name: String,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// Username for the upstream.
        #[arg(long)]
        remote_username: Option<String>,
        /// Secret version with the upstream password or token
        /// (projects/P/secrets/S/versions/V; V may be `latest`).
        #[arg(long)]
        remote_password_secret_version: Option<String>,
        /// Remove the upstream username and password secret.
        #[arg(long)]
        clear_remote_credentials: bool,
        /// How long a cached tag is trusted without asking the upstream (e.g. 300s, 5m, 1h).
        #[arg(long, value_parser = parse_duration)]
        remote_tag_ttl: Option<u64>,
        /// How long a cached Python index page is trusted without asking the
        /// upstream (e.g. 600s, 10m); defaults to the tag TTL.
        #[arg(long, value_parser = parse_duration, env = "ENTREPOT_REMOTE_PYTHON_INDEX_TTL")]
        remote_python_index_ttl: Option<u64>,
        /// Serve cached tags when the upstream fails.
        #[arg(long)]
        serve_stale: Option<bool>,
        /// Serve cached content even while the registry access policy blocks
        /// the upstream (true or false).
        #[arg(long)]
        allow_cached_from_blocked: Option<bool>,
        /// Most bytes the remote cache may hold (binary units: 512MiB, 50GiB;
        /// 0 removes the repository's cap).
        #[arg(long, value_parser = parse_size)]
        cache_max_size: Option<u64>,
        /// Set upstream credentials even if the registry access policy blocks
        /// the upstream.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        timeouts: TimeoutArgs,
        #[command(flatten)]
        release_age: Box<ReleaseAgeArgs>,
        /// New storage quota of a standard repository (e.g. 10GiB; `none`
        /// removes it).
        #[arg(long, value_parser = super::cleanup::parse_quota)]
        storage_quota: Option<super::cleanup::QuotaSetting>,
        #[command(flatten)]
        members: VirtualArgs,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
    },
    #[command(flatten)]
    Iam(super::repository_iam::RepositoryIamCommand),
    #[command(flatten)]
    Cleanup(super::cleanup::CleanupCommand),
    /// Delete a repository and everything in it.
    Delete {
        /// Repository id.
        name: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        quiet: QuietArg,
    },
}

/// Run a repository verb.
pub async fn run(client: &AdminClient, command: RepositoriesCommand) -> Result<(), ClientError> {
    match command {
        RepositoriesCommand::Create {
            name,
            format,
            mode,
            description,
            remote_docker_repo,
            remote_python_repo,
            allow_insecure_upstream,
            remote_username,
            remote_password_secret_version,
            remote_tag_ttl,
            remote_python_index_ttl,
            serve_stale,
            allow_cached_from_blocked,
            cache_max_size,
            force,
            timeouts,
            release_age,
            storage_quota,
            members,
            project,
        } => {
            let mut body = json!({ "format": format, "mode": mode, "description": description.unwrap_or_default() });
            if force {
                body["force"] = true.into();
            }
            if let Some(upstream) = remote_docker_repo.or(remote_python_repo) {
                let mut remote = json!({ "upstream": upstream, "allowInsecureUpstream": allow_insecure_upstream });
                if let Some(u) = remote_username {
                    remote["username"] = u.into();
                }
                if let Some(v) = remote_password_secret_version {
                    remote["passwordSecretVersion"] = v.into();
                }
                if let Some(ttl) = remote_tag_ttl {
                    remote["tagTtlSecs"] = ttl.into();
                }
                if let Some(ttl) = remote_python_index_ttl {
                    remote["pythonIndexTtlSecs"] = ttl.into();
                }
                if let Some(stale) = serve_stale {
                    remote["serveStale"] = stale.into();
                }
                if allow_cached_from_blocked {
                    remote["allowCachedFromBlocked"] = true.into();
                }
                if let Some(bytes) = cache_max_size {
                    remote["cacheMaxSizeBytes"] = bytes.into();
                }
                for (field, secs) in timeouts.fields("") {
                    if let Some(secs) = secs {
                        remote[field] = secs.into();
                    }
                }
                if let Some(policy) = release_age.policy() {
                    remote["releaseAge"] = policy;
                }
                body["remoteRepositoryConfig"] = remote;
            }
            if let Some(mut config) = members.config()? {
                if let Some(policy) = release_age.policy() {
                    config["releaseAge"] = policy;
                }
                body["virtualRepositoryConfig"] = config;
            }
            let repo = client
                .call(
                    Method::POST,
                    &format!("projects/{project}/repositories?repositoryId={name}"),
                    Some(&body),
                )
                .await?;
            eprintln!("Created repository [{name}].");
            let repo = match storage_quota {
                Some(quota) => {
                    super::cleanup::set_repository_quota(client, &project, &name, quota).await?;
                    describe(client, &project, &name).await?
                }
                None => repo,
            };
            print_json(&repo);
        }
        RepositoriesCommand::List {
            project,
            page,
            format,
        } => {
            let (list, answer) = client
                .list_with_answer(
                    &format!("projects/{project}/repositories"),
                    "repositories",
                    &page,
                    None,
                )
                .await?;
            output::print_list(
                format.format,
                &list,
                &[
                    Column::new("REPOSITORY", |repo| {
                        // The server names repositories `projects/P/repositories/R`;
                        // show R, or the whole name if it has another shape.
                        let name = repo["name"].as_str().unwrap_or("");
                        name.parse::<entrepot_domain::RepositoryName>()
                            .map_or_else(|_| name.to_owned(), |n| n.repository.to_string())
                    }),
                    Column::field("FORMAT", "/format"),
                    Column::field("MODE", "/mode"),
                    Column::new("SIZE", |repo| size_cell(repo.get("sizeBytes"))),
                    Column::field("DESCRIPTION", "/description"),
                ],
            );
            if format.format == output::OutputFormat::Table {
                let total = size_cell(answer.get("storeSizeBytes"));
                if !total.is_empty() {
                    println!("\nStore total (every project, blobs counted once): {total}");
                }
            }
        }
        RepositoriesCommand::Describe {
            name,
            project,
            format,
        } => {
            let repo = client
                .call(
                    Method::GET,
                    &format!("projects/{project}/repositories/{name}"),
                    None,
                )
                .await?;
            output::print_item(format.format, &repo);
        }
        RepositoriesCommand::Update {
            name,
            description,
            remote_username,
            remote_password_secret_version,
            clear_remote_credentials,
            remote_tag_ttl,
            remote_python_index_ttl,
            serve_stale,
            allow_cached_from_blocked,
            cache_max_size,
            force,
            timeouts,
            release_age,
            storage_quota,
            members,
            project,
        } => {
            let unchanged = description.is_none()
                && remote_username.is_none()
                && remote_password_secret_version.is_none()
                && !clear_remote_credentials
                && remote_tag_ttl.is_none()
                && remote_python_index_ttl.is_none()
                && serve_stale.is_none()
                && allow_cached_from_blocked.is_none()
                && cache_max_size.is_none()
                && timeouts.fields("").iter().all(|(_, secs)| secs.is_none())
                && release_age.update().is_none()
                && storage_quota.is_none()
                && members.config()?.is_none();
            if unchanged {
                return Err(ClientError::Usage(format!(
                    "nothing to update in repository [{name}]: pass at least one setting to change, such as --description, --remote-username, --remote-password-secret-version, --clear-remote-credentials, --remote-tag-ttl, --serve-stale or --allow-cached-from-blocked (see entrepot repositories update --help)"
                )));
            }
            let mut body = json!({
                "remoteCacheMaxSizeBytes": cache_max_size,
                "allowCachedFromBlocked": allow_cached_from_blocked,
                "force": force,
                "description": description,
                "remoteUsername": remote_username,
                "remotePasswordSecretVersion": remote_password_secret_version,
                "clearRemoteCredentials": clear_remote_credentials,
                "remoteTagTtlSecs": remote_tag_ttl,
                "remotePythonIndexTtlSecs": remote_python_index_ttl,
                "serveStale": serve_stale,
            });
            for (field, secs) in timeouts.fields("remote") {
                body[field] = secs.into();
            }
            if let Some(update) = release_age.update() {
                body["releaseAge"] = update;
            }
            if let Some(mut config) = members.config()? {
                if let Some(policy) = release_age.policy() {
                    config["releaseAge"] = policy;
                }
                body["virtualRepositoryConfig"] = config;
            }
            // A quota is its own resource: an update that only sets one
            // sends no PATCH.
            let changes = body
                .as_object()
                .is_some_and(|o| o.values().any(|v| !(v.is_null() || *v == false)));
            if let Some(quota) = storage_quota {
                super::cleanup::set_repository_quota(client, &project, &name, quota).await?;
            }
            let repo = if changes || storage_quota.is_none() {
                client
                    .call(
                        Method::PATCH,
                        &format!("projects/{project}/repositories/{name}"),
                        Some(&body),
                    )
                    .await?
            } else {
                describe(client, &project, &name).await?
            };
            eprintln!("Updated repository [{name}].");
            print_json(&repo);
        }
        RepositoriesCommand::Refresh {
            name,
            what,
            json,
            project,
        } => super::repository_refresh::run(client, &project, &name, &what, json).await?,
        RepositoriesCommand::TestUpstream { name, project } => {
            let report = client
                .call(
                    Method::POST,
                    &format!("projects/{project}/repositories/{name}:testUpstream"),
                    None,
                )
                .await?;
            println!(
                "upstream:      {}",
                report["upstream"].as_str().unwrap_or("")
            );
            println!("reachable:     {}", report["reachable"]);
            println!("authenticated: {}", report["authenticated"]);
            if let Some(version) = report["secretVersion"].as_str() {
                println!("secret:        {version}");
            }
            println!(
                "message:       {}",
                report["message"].as_str().unwrap_or("")
            );
            if let Some(rl) = report.get("rateLimit").filter(|v| !v.is_null()) {
                println!(
                    "rate limit:    {} (remaining {})",
                    rl["limit"].as_str().unwrap_or("-"),
                    rl["remaining"].as_str().unwrap_or("-")
                );
            }
            if report["authenticated"] != serde_json::Value::Bool(true) {
                return Err(ClientError::Api {
                    status: reqwest::StatusCode::BAD_GATEWAY,
                    message: "the upstream check failed".into(),
                });
            }
        }
        RepositoriesCommand::Delete {
            name,
            project,
            quiet,
        } => {
            output::confirm(
                quiet,
                &format!("The repository [{name}] and everything in it will be deleted."),
            )?;
            client
                .call(
                    Method::DELETE,
                    &format!("projects/{project}/repositories/{name}"),
                    None,
                )
                .await?;
            eprintln!("Deleted repository [{name}].");
        }
        RepositoriesCommand::Iam(command) => super::repository_iam::run(client, command).await?,
        RepositoriesCommand::Cleanup(command) => super::cleanup::run(client, command).await?,
    }
    Ok(())
}

async fn describe(
    client: &AdminClient,
    project: &str,
    name: &str,
) -> Result<serde_json::Value, ClientError> {
    client
        .call(
            Method::GET,
            &format!("projects/{project}/repositories/{name}"),
            None,
        )
        .await
}

/// The members of a virtual repository.
#[derive(Debug, clap::Args)]
pub struct VirtualArgs {
    /// The members of a virtual repository: a JSON file with a list of
    /// `{"id", "repository": "projects/P/repositories/R", "priority"}`
    /// (the file `gcloud artifacts repositories create --upstream-policy-file`
    /// reads); a greater priority is asked first.
    #[arg(long)]
    upstream_policy_file: Option<std::path::PathBuf>,
    /// Python projects (comma-separated) that remote members of a virtual
    /// repository may serve although a standard member has a project of that
    /// name; with --upstream-policy-file.
    #[arg(long, value_delimiter = ',', requires = "upstream_policy_file")]
    allow_remote_shadowing: Vec<String>,
}

impl VirtualArgs {
    /// `virtualRepositoryConfig`, if a policy file was given.
    fn config(&self) -> Result<Option<serde_json::Value>, ClientError> {
        let Some(path) = &self.upstream_policy_file else {
            return Ok(None);
        };
        let bad = |detail: String| ClientError::Api {
            status: reqwest::StatusCode::BAD_REQUEST,
            message: format!("--upstream-policy-file {}: {detail}", path.display()),
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let policies: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        // gcloud's file is a list; an object with `upstreamPolicies` is taken too.
        let policies = match policies {
            serde_json::Value::Array(list) => serde_json::Value::Array(list),
            serde_json::Value::Object(mut o) => match o.remove("upstreamPolicies") {
                Some(list @ serde_json::Value::Array(_)) => list,
                _ => return Err(bad("expected a list of upstream policies".into())),
            },
            _ => return Err(bad("expected a list of upstream policies".into())),
        };
        let mut config = json!({ "upstreamPolicies": policies });
        if !self.allow_remote_shadowing.is_empty() {
            config["allowRemoteShadowing"] = json!(self.allow_remote_shadowing);
        }
        Ok(Some(config))
    }
}

/// How long a remote repository waits for its upstream, and keeps what
/// the upstream deleted.
#[derive(Debug, clap::Args)]
pub struct TimeoutArgs {
    /// How long a tag the upstream deleted is still served stale (default 24h).
    #[arg(long, value_parser = parse_duration)]
    remote_keep_deleted: Option<u64>,
    /// How long an upstream 404 for a tag or project is remembered (default 60s; 0: not at all).
    #[arg(long, value_parser = parse_duration)]
    remote_negative_cache: Option<u64>,
    /// Time to open a connection to the upstream (default 5s; 0 puts the default back).
    #[arg(long, value_parser = parse_duration)]
    remote_connect_timeout: Option<u64>,
    /// Time from a request to the upstream's answer (default 15s).
    #[arg(long, value_parser = parse_duration)]
    remote_first_byte_timeout: Option<u64>,
    /// Time all attempts of one upstream request may take together (default 30s).
    #[arg(long, value_parser = parse_duration)]
    remote_retry_budget: Option<u64>,
    /// Longest pause mid-download before the transfer is aborted (default 15s).
    #[arg(long, value_parser = parse_duration)]
    remote_idle_timeout: Option<u64>,
}

impl TimeoutArgs {
    /// The API fields, `prefix` before each (`remote` for an update).
    fn fields(&self, prefix: &str) -> [(String, Option<u64>); 6] {
        let name = |field: &str| {
            if prefix.is_empty() {
                field.to_owned()
            } else {
                let mut chars = field.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                format!("{prefix}{}{}", first.unwrap_or_default(), chars.as_str())
            }
        };
        [
            (name("keepDeletedSecs"), self.remote_keep_deleted),
            (name("negativeCacheSecs"), self.remote_negative_cache),
            (name("connectTimeoutSecs"), self.remote_connect_timeout),
            (name("firstByteTimeoutSecs"), self.remote_first_byte_timeout),
            (name("retryBudgetSecs"), self.remote_retry_budget),
            (name("idleTimeoutSecs"), self.remote_idle_timeout),
        ]
    }
}

/// Parse `300`, `300s`, `5m`, `1h` or `2d` into seconds.
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 300s, 5m or 1h"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?} has an unknown unit; use s, m, h or d")),
    };
    Ok(n * factor)
}

/// Parse `50GiB`, `512MiB` or a number of bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    s.parse::<entrepot_domain::ByteSize>()
        .map(|size| size.0)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_size};

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50GiB"), Ok(50 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("50GB").unwrap_err().contains("GiB"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300"), Ok(300));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("m").is_err());
    }
}
