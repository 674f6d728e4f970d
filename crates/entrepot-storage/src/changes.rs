//! Change notices: what another server sharing the database changed, so
//! that this one drops what it keeps in memory of it.
//!
//! The PostgreSQL schema sends a notice from a trigger when the transaction
//! that changed the rows commits; [`crate::PostgresMetadataStore::changes`]
//! follows them. A notice names a kind of state, not a row: the caches that
//! keep that kind drop it whole, which is cheap next to how rarely it
//! changes.

use std::str::FromStr;

use entrepot_domain::RepositoryName;

/// The channel the schema's triggers notify.
pub const CHANGES_CHANNEL: &str = "entrepot_changes";

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Users, service accounts or tokens (one revoked, deleted, created).
    Credentials,
    /// An IAM policy.
    IamPolicies,
    /// A secret or one of its versions (added, disabled, destroyed).
    Secrets,
    /// The registry access policy.
    AccessPolicy,
    /// A repository (created, updated, deleted).
    Repositories,
    /// A Python file was cached by a remote repository, or its metadata
    /// extracted: the repository's served pages change.
    PythonFiles(RepositoryName),
    /// Notices may have been missed (the connection that follows them was
    /// lost, or a notice was not understood): drop everything.
    Everything,
}

impl Change {
    /// The change a notice's payload names; [`Change::Everything`] for one
    /// this version does not know (a newer server's), which is always safe.
    pub fn from_payload(payload: &str) -> Change {
        match payload {
            "credentials" => Change::Credentials,
            "iam-policies" => Change::IamPolicies,
            "secrets" => Change::Secrets,
            "access-policy" => Change::AccessPolicy,
            "repositories" => Change::Repositories,
            other => other
                .strip_prefix("python-files ")
                .and_then(|name| {
                    let (project, repository) = name.split_once('/')?;
                    RepositoryName::from_str(&format!(
                        "projects/{project}/repositories/{repository}"
                    ))
                    .ok()
                })
                .map_or(Change::Everything, Change::PythonFiles),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_their_change_and_unknown_ones_drop_everything() {
        assert_eq!(Change::from_payload("secrets"), Change::Secrets);
        assert_eq!(Change::from_payload("credentials"), Change::Credentials);
        assert_eq!(
            Change::from_payload("python-files default/pypi"),
            Change::PythonFiles(
                "projects/default/repositories/pypi"
                    .parse()
                    .expect("a repository name")
            )
        );
        assert_eq!(
            Change::from_payload("python-files nonsense"),
            Change::Everything
        );
        assert_eq!(
            Change::from_payload("from-a-newer-server"),
            Change::Everything
        );
    }
}
