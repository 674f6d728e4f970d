//! Upstream credentials of remote repositories, read from the secret manager as
//! the project's service agent.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use entrepot_upstream::{CredentialError, CredentialSource, UpstreamCredentials};
use serde::Deserialize;

use crate::keyed_cache::KeyedCache;

/// How long resolved credentials are reused before the secret is read again.
/// A 401 from the upstream bypasses this, so a rotation is picked up at once.
const REUSE_FOR: Duration = Duration::from_secs(60);

/// A secret version's payload as read by a service agent.
pub struct SecretPayload {
    /// The resolved version name (`latest` resolved to its number).
    pub version_name: String,
    /// The payload bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for SecretPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretPayload")
            .field("version_name", &self.version_name)
            .field("data", &"<redacted>")
            .finish()
    }
}

/// Reads secret versions on behalf of a project's service agent. Implemented by
/// the secret manager, which checks IAM and writes the audit log.
#[async_trait]
pub trait SecretReader: Send + Sync + 'static {
    /// Read `version` (`projects/P/secrets/S/versions/V`) as the service agent of
    /// the project of `repository` (`projects/P/repositories/R`, the repository
    /// the read is for, recorded in the audit log). The error message names the
    /// agent, the secret and the role to grant when access is denied.
    async fn read_as_service_agent(
        &self,
        repository: &str,
        version: &str,
    ) -> Result<SecretPayload, CredentialError>;
}

/// Used when no secret manager is wired in: refuses with a clear message.
pub struct NoSecretReader;

#[async_trait]
impl SecretReader for NoSecretReader {
    async fn read_as_service_agent(
        &self,
        _repository: &str,
        version: &str,
    ) -> Result<SecretPayload, CredentialError> {
        Err(CredentialError(format!(
            "cannot read {version}: this server has no secret manager configured"
        )))
    }
}

/// The payload shape some users keep: `{"username": ..., "accessToken": ...}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonCredentials {
    username: Option<String>,
    access_token: String,
}

/// The credentials of one remote repository configuration.
pub struct RepositoryCredentials {
    repository: String,
    username: Option<String>,
    secret_version: Option<String>,
    reader: std::sync::Arc<dyn SecretReader>,
    cached: Mutex<Option<(UpstreamCredentials, Instant)>>,
}

impl RepositoryCredentials {
    /// Credentials for `repository` (`projects/P/repositories/R`) configured
    /// with `username` and `secret_version`; anonymous when no secret version
    /// is set.
    pub fn new(
        repository: &str,
        username: Option<String>,
        secret_version: Option<String>,
        reader: std::sync::Arc<dyn SecretReader>,
    ) -> Self {
        Self {
            repository: repository.to_owned(),
            username,
            secret_version,
            reader,
            cached: Mutex::new(None),
        }
    }

    fn parse(&self, payload: SecretPayload) -> Result<UpstreamCredentials, CredentialError> {
        let text = String::from_utf8(payload.data).map_err(|_| {
            CredentialError(format!(
                "{} is not UTF-8 text; store the token as text",
                payload.version_name
            ))
        })?;
        let text = text.trim();
        if text.starts_with('{') {
            if let Ok(json) = serde_json::from_str::<JsonCredentials>(text) {
                let username = self.username.clone().or(json.username).ok_or_else(|| {
                    CredentialError(format!(
                        "{} has no username and the repository sets none; pass --remote-username",
                        payload.version_name
                    ))
                })?;
                return Ok(UpstreamCredentials {
                    username,
                    password: json.access_token,
                    version: payload.version_name,
                });
            }
        }
        let username = self.username.clone().ok_or_else(|| {
            CredentialError(
                "the repository has a password secret but no username; pass --remote-username"
                    .into(),
            )
        })?;
        Ok(UpstreamCredentials {
            username,
            password: text.to_owned(),
            version: payload.version_name,
        })
    }
}

#[async_trait]
impl CredentialSource for RepositoryCredentials {
    async fn credentials(
        &self,
        fresh: bool,
    ) -> Result<Option<UpstreamCredentials>, CredentialError> {
        let Some(version) = &self.secret_version else {
            return Ok(None);
        };
        if !fresh {
            let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((c, at)) = cached.as_ref() {
                if at.elapsed() < REUSE_FOR {
                    return Ok(Some(c.clone()));
                }
            }
        }
        let payload = self
            .reader
            .read_as_service_agent(&self.repository, version)
            .await?;
        let credentials = self.parse(payload)?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((credentials.clone(), Instant::now()));
        Ok(Some(credentials))
    }
}

/// A repository's username and secret version, with the source built for them.
type ConfiguredSource = (
    Option<String>,
    Option<String>,
    std::sync::Arc<RepositoryCredentials>,
);

/// The credential sources of every remote repository, one per credential
/// configuration, so each keeps its cached secret between requests and a
/// changed configuration starts afresh.
pub struct CredentialSources {
    reader: std::sync::Arc<dyn SecretReader>,
    by_repository: KeyedCache<String, ConfiguredSource>,
}

impl CredentialSources {
    /// Sources that read secrets through `reader`.
    pub fn new(reader: std::sync::Arc<dyn SecretReader>) -> Self {
        Self {
            reader,
            by_repository: KeyedCache::new(),
        }
    }

    /// Forget every source and the secrets they read: a secret changed
    /// (on another server, which cannot reach these), so the next upstream
    /// request of every repository reads its secret again.
    pub fn forget_all(&self) {
        self.by_repository.clear();
    }

    /// The source for repository `name` (`projects/P/repositories/R`) with
    /// these settings.
    pub fn for_repository(
        &self,
        name: &str,
        username: &Option<String>,
        secret_version: &Option<String>,
    ) -> std::sync::Arc<RepositoryCredentials> {
        self.by_repository
            .get_or_insert_with(
                name.to_owned(),
                |(u, v, _)| u == username && v == secret_version,
                || {
                    let source = std::sync::Arc::new(RepositoryCredentials::new(
                        name,
                        username.clone(),
                        secret_version.clone(),
                        self.reader.clone(),
                    ));
                    (username.clone(), secret_version.clone(), source)
                },
            )
            .2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Fixed(&'static str);

    #[async_trait]
    impl SecretReader for Fixed {
        async fn read_as_service_agent(
            &self,
            _p: &str,
            v: &str,
        ) -> Result<SecretPayload, CredentialError> {
            Ok(SecretPayload {
                version_name: v.replace("latest", "3"),
                data: self.0.as_bytes().to_vec(),
            })
        }
    }

    #[tokio::test]
    async fn plain_and_json_payloads() {
        let v = Some("projects/p/secrets/s/versions/latest".to_owned());
        let plain = RepositoryCredentials::new(
            "p",
            Some("alice".into()),
            v.clone(),
            Arc::new(Fixed("tok\n")),
        );
        let c = plain.credentials(false).await.unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "tok"));
        assert_eq!(c.version, "projects/p/secrets/s/versions/3");

        let json = RepositoryCredentials::new(
            "p",
            None,
            v.clone(),
            Arc::new(Fixed(r#"{"username":"bob","accessToken":"t2"}"#)),
        );
        let c = json.credentials(false).await.unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "t2"));

        let nouser = RepositoryCredentials::new("p", None, v, Arc::new(Fixed("tok")));
        assert!(nouser.credentials(false).await.is_err());

        let anon = RepositoryCredentials::new("p", None, None, Arc::new(NoSecretReader));
        assert!(anon.credentials(false).await.unwrap().is_none());
    }
}
