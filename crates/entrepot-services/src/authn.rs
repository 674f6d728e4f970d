//! Credentials entrepot issues and checks: password hashes, personal access
//! tokens and the short-lived registry tokens (HS256 JWTs) of the Docker token
//! flow.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use entrepot_domain::token_id::TokenId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Prefix of personal access tokens, so they are recognisable in leaks and never
/// confused with passwords or JWTs.
pub const ACCESS_TOKEN_PREFIX: &str = "entp_";

/// Lifetime of registry tokens, in seconds.
pub const REGISTRY_TOKEN_SECONDS: i64 = 300;

/// Issuer and audience of registry tokens.
pub const TOKEN_SERVICE: &str = "entrepot";

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wrap a secret.
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The secret itself, for the one place that must send or check it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a credential operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// Hashing a password failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// Signing a registry token failed.
    #[error("cannot sign the registry token: {0}")]
    Sign(String),
}

/// Hash a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, AuthnError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthnError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. A damaged hash matches
/// nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The largest argon2 memory a stored hash may ask a check for (64 MiB): our
/// own hashes use 19 MiB; a damaged or planted hash must not make one check
/// allocate more.
const MAX_VERIFY_BLOCKS: usize = 64 * 1024;

/// Working memory of one argon2 check, kept and reused across checks so that
/// password checks do not allocate (and the allocator does not retain) tens of
/// MiB each time.
#[derive(Default)]
pub struct HashMemory(Vec<argon2::Block>);

/// Like [`verify_password`], computing in `memory` (grown once to the
/// hash's size, then reused).
pub fn verify_password_in(hash: &str, password: &str, memory: &mut HashMemory) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_VERIFY_BLOCKS {
        return false;
    }
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    if memory.0.len() < blocks {
        memory.0.resize(blocks, argon2::Block::default());
    }
    let argon = Argon2::new(algorithm, version, params);
    let computed = argon2::password_hash::Output::init_with(expected.len(), |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory.0[..blocks])
            .map_err(|_| argon2::password_hash::Error::Password)
    });
    // `Output` compares in constant time.
    computed.is_ok_and(|c| c == expected)
}

/// Hex SHA-256 of a token: the only form in which tokens are stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh personal access token: `entp_` and 32 random bytes, base64url.
pub fn new_access_token() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString(format!(
        "{ACCESS_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// A short random id (16 hex characters) for tokens.
pub fn new_token_id() -> TokenId {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    TokenId::from_random_bytes(bytes)
}

/// 32 random bytes for a new signing key.
pub fn new_signing_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// Whether a bearer value looks like a JWT (three dot-separated parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// One entry of a registry token's `access` claim (Docker token spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `project/repository/image`, or `catalog`.
    pub name: String,
    /// Granted actions: `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

/// Claims of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryClaims {
    /// `entrepot`.
    pub iss: String,
    /// Member string of the principal, empty for anonymous.
    pub sub: String,
    /// The service the token is for.
    pub aud: String,
    /// Unix seconds.
    pub exp: i64,
    /// Unix seconds.
    pub nbf: i64,
    /// Unix seconds.
    pub iat: i64,
    /// Unique id of this token.
    pub jti: String,
    /// What was granted.
    #[serde(default)]
    pub access: Vec<AccessEntry>,
    /// The personal access token it was exchanged for, checked for revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<TokenId>,
    /// Issued for a read-only credential.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ro: bool,
    /// Creation time of the principal in `sub`: a principal deleted and
    /// re-created under the same name is another principal, and the token
    /// does not pass for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uct: Option<String>,
}

/// The registry-token action that covers an IAM permission on a repository.
fn action_for(permission: &str) -> Option<&'static str> {
    match permission {
        "artifactregistry.repositories.downloadArtifacts" => Some("pull"),
        "artifactregistry.repositories.uploadArtifacts" => Some("push"),
        "artifactregistry.repositories.deleteArtifacts" => Some("delete"),
        _ => None,
    }
}

/// Whether a registry token's `access` entries cover `permission` on the
/// repository `project/repository` (`None`: on the organisation, where only
/// `registry:catalog:*` covers listing repositories). Everything else (the
/// admin API's permissions, secrets, projects) is never covered.
pub fn access_covers(
    access: &[AccessEntry],
    permission: &str,
    repository: Option<(&str, &str)>,
) -> bool {
    match repository {
        Some((project, repository)) => {
            let Some(action) = action_for(permission) else {
                return false;
            };
            access.iter().any(|e| {
                e.kind == "repository"
                    && e.name.parse::<entrepot_domain::ImagePath>().is_ok_and(|p| {
                        p.project.as_str() == project && p.repository.as_str() == repository
                    })
                    && e.actions.iter().any(|a| a == action || a == "*")
            })
        }
        None => {
            permission == "artifactregistry.repositories.list"
                && access.iter().any(|e| {
                    e.kind == "registry"
                        && e.name == "catalog"
                        && e.actions.iter().any(|a| a == "*")
                })
        }
    }
}

/// Signs and checks registry tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner(<redacted>)")
    }
}

impl TokenSigner {
    /// A signer over `key` (at least 32 bytes is advisable).
    pub fn new(key: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
        }
    }

    /// Sign `claims` with HS256.
    pub fn sign(&self, claims: &RegistryClaims) -> Result<String, AuthnError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthnError::Sign(e.to_string()))
    }

    /// Check signature, issuer, audience and lifetime; the claims if all hold.
    pub fn verify(&self, token: &str) -> Option<RegistryClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[TOKEN_SERVICE]);
        validation.set_audience(&[TOKEN_SERVICE]);
        validation.leeway = 5;
        jsonwebtoken::decode::<RegistryClaims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("garbage", "correct horse"));
        let mut memory = HashMemory::default();
        assert!(verify_password_in(&hash, "correct horse", &mut memory));
        assert!(!verify_password_in(&hash, "wrong", &mut memory));
        assert!(verify_password_in(&hash, "correct horse", &mut memory));
        assert!(!verify_password_in("garbage", "correct horse", &mut memory));
    }

    #[test]
    fn access_tokens_are_random_and_stored_as_hashes() {
        let a = new_access_token();
        let b = new_access_token();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(ACCESS_TOKEN_PREFIX));
        assert_eq!(token_hash(a.expose()).len(), 64);
        assert_eq!(format!("{a:?}"), "<redacted>");
        assert!(!looks_like_jwt(a.expose()));
    }

    #[test]
    fn access_entries_cover_only_their_repository_and_actions() {
        let access = vec![AccessEntry {
            kind: "repository".into(),
            name: "default/images/app".into(),
            actions: vec!["pull".into()],
        }];
        let pull = "artifactregistry.repositories.downloadArtifacts";
        let push = "artifactregistry.repositories.uploadArtifacts";
        assert!(access_covers(&access, pull, Some(("default", "images"))));
        assert!(!access_covers(&access, push, Some(("default", "images"))));
        assert!(!access_covers(&access, pull, Some(("default", "other"))));
        assert!(!access_covers(
            &access,
            "artifactregistry.repositories.list",
            None
        ));
        assert!(!access_covers(
            &access,
            "artifactregistry.repositories.get",
            Some(("default", "images"))
        ));
    }

    #[test]
    fn registry_tokens_round_trip_and_forgeries_fail() {
        let signer = TokenSigner::new(&new_signing_key());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = RegistryClaims {
            iss: TOKEN_SERVICE.into(),
            sub: "user:alice".into(),
            aud: TOKEN_SERVICE.into(),
            exp: now + REGISTRY_TOKEN_SECONDS,
            nbf: now,
            iat: now,
            jti: new_token_id().to_string(),
            access: vec![AccessEntry {
                kind: "repository".into(),
                name: "default/images/app".into(),
                actions: vec!["pull".into()],
            }],
            tid: Some("t1".parse().unwrap()),
            ro: true,
            uct: None,
        };
        let jwt = signer.sign(&claims).unwrap();
        assert!(looks_like_jwt(&jwt));
        assert_eq!(signer.verify(&jwt), Some(claims.clone()));
        let other = TokenSigner::new(&new_signing_key());
        assert_eq!(other.verify(&jwt), None);
        let expired = RegistryClaims {
            exp: now - 600,
            ..claims
        };
        assert_eq!(signer.verify(&signer.sign(&expired).unwrap()), None);
    }
}
