//! What an IAM permission is checked on and an IAM policy is set on: the
//! organisation, a project, a repository or a secret. Its `Display` form
//! (`projects/p/repositories/r`) is the policy's key in the store.

use std::fmt;
use std::str::FromStr;

use crate::name::{ProjectId, RepositoryId};
use crate::secret::SecretId;

/// What a permission is checked on.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Resource {
    /// The whole installation (catalog listing, organisation settings).
    Organization,
    /// `projects/{p}`.
    Project(String),
    /// `projects/{p}/repositories/{r}`.
    Repository {
        /// Project id.
        project: String,
        /// Repository id.
        repository: String,
    },
    /// `projects/{p}/secrets/{s}` (versions are checked on their secret).
    Secret {
        /// Project id.
        project: String,
        /// Secret id.
        secret: String,
    },
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Organization => f.write_str("organization"),
            Resource::Project(p) => write!(f, "projects/{p}"),
            Resource::Repository {
                project,
                repository,
            } => {
                write!(f, "projects/{project}/repositories/{repository}")
            }
            Resource::Secret { project, secret } => {
                write!(f, "projects/{project}/secrets/{secret}")
            }
        }
    }
}

/// A string that is not the name of a resource with an IAM policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceNameError {
    /// The shape is none of the resource names.
    #[error("{0} has no IAM policy; IAM policies exist on organization, projects/P, projects/P/repositories/R and projects/P/secrets/S")]
    NoPolicy(String),
    /// The shape is right but an id in it is not valid.
    #[error("{0}")]
    BadId(String),
}

impl FromStr for Resource {
    type Err = ResourceNameError;

    /// Parse `organization`, `projects/P`, `projects/P/repositories/R` or
    /// `projects/P/secrets/S`, checking each id against its rule.
    fn from_str(name: &str) -> Result<Self, ResourceNameError> {
        let bad = |e: &dyn fmt::Display| ResourceNameError::BadId(e.to_string());
        let project = |p: &str| {
            p.parse::<ProjectId>()
                .map(|p| p.to_string())
                .map_err(|e| bad(&e))
        };
        match name.split('/').collect::<Vec<_>>().as_slice() {
            ["organization"] => Ok(Resource::Organization),
            ["projects", p] => Ok(Resource::Project(project(p)?)),
            ["projects", p, "repositories", r] => Ok(Resource::Repository {
                project: project(p)?,
                repository: r.parse::<RepositoryId>().map_err(|e| bad(&e))?.to_string(),
            }),
            ["projects", p, "secrets", s] => Ok(Resource::Secret {
                project: project(p)?,
                secret: s.parse::<SecretId>().map_err(|e| bad(&e))?.to_string(),
            }),
            _ => Err(ResourceNameError::NoPolicy(name.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display() {
        for name in [
            "organization",
            "projects/p",
            "projects/p/repositories/r",
            "projects/p/secrets/s",
        ] {
            assert_eq!(name.parse::<Resource>().unwrap().to_string(), name);
        }
    }

    #[test]
    fn bad_shapes_and_ids_are_refused() {
        assert!(matches!(
            "projects/p/things/t".parse::<Resource>(),
            Err(ResourceNameError::NoPolicy(_))
        ));
        for bad in [
            "projects/P!",
            "projects/p/repositories/a b",
            "projects/p/secrets/a/b",
        ] {
            assert!(bad.parse::<Resource>().is_err(), "{bad}");
        }
    }
}
