//! Long-running operations, as `google.longrunning.Operation`: repository
//! creation and deletion finish before the answer, so every operation is
//! `done`. An operation's id says what it did and to which repository
//! (`repositories.create.images`), so `GET .../operations/{id}` can answer
//! without the server keeping operations.

use entrepot_domain::RepositoryId;
use serde_json::{json, Value};

use crate::admin::ApiError;

/// `@type` of the repository resource in an operation's response.
pub(crate) const REPOSITORY_TYPE: &str =
    "type.googleapis.com/google.devtools.artifactregistry.v1.Repository";
const EMPTY_TYPE: &str = "type.googleapis.com/google.protobuf.Empty";
const METADATA_TYPE: &str =
    "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata";

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OperationId {
    /// Created the repository.
    Create(RepositoryId),
    /// Deleted the repository.
    Delete(RepositoryId),
}

impl OperationId {
    /// Parse an operation id; an id entrepot never issued is NOT_FOUND.
    pub fn parse(id: &str) -> Result<Self, ApiError> {
        let not_found = || {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("operation {id:?} does not exist"),
            )
        };
        let (verb, repository) = id
            .strip_prefix("repositories.")
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(not_found)?;
        let repository: RepositoryId = repository.parse().map_err(|_| not_found())?;
        match verb {
            "create" => Ok(Self::Create(repository)),
            "delete" => Ok(Self::Delete(repository)),
            _ => Err(not_found()),
        }
    }

    fn id(&self) -> String {
        match self {
            Self::Create(r) => format!("repositories.create.{r}"),
            Self::Delete(r) => format!("repositories.delete.{r}"),
        }
    }
}

/// A finished operation under `parent` (`projects/P/locations/L`), with
/// `response` (a repository rendered, with its `@type`) or `Empty`.
pub(crate) fn done(parent: &str, id: &OperationId, response: Option<Value>) -> Value {
    let response = match response {
        Some(mut value) => {
            value["@type"] = Value::String(REPOSITORY_TYPE.to_owned());
            value
        }
        None => json!({ "@type": EMPTY_TYPE }),
    };
    json!({
        "name": format!("{parent}/operations/{}", id.id()),
        "metadata": { "@type": METADATA_TYPE },
        "done": true,
        "response": response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_round_trip() {
        let id = OperationId::parse("repositories.create.images").unwrap();
        assert_eq!(id, OperationId::Create("images".parse().unwrap()));
        assert_eq!(id.id(), "repositories.create.images");
        assert!(OperationId::parse("repositories.move.images").is_err());
        assert!(OperationId::parse("0f3c").is_err());
        let op = done("projects/p/locations/l", &id, None);
        assert_eq!(op["done"], true);
        assert_eq!(
            op["name"],
            "projects/p/locations/l/operations/repositories.create.images"
        );
    }
}
