//! What each OCI operation requires of its caller: the one table
//! [`super::OciRepositories`] authorizes by, before it routes a call to the
//! hosted or the remote side. Front-ends map their requests onto
//! [`OciOperation`] (for their own challenges and tables), never onto a
//! permission of their own.

use entrepot_domain::ImagePath;

use crate::access::{Permission, Resource};

/// An operation of [`super::OciRepositories`], as it is authorized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OciOperation {
    /// List the images of the installation.
    Catalog,
    /// Read a manifest (GET or HEAD).
    GetManifest,
    /// Store a manifest under a tag or digest.
    PutManifest,
    /// Delete a manifest or a tag.
    DeleteManifest,
    /// Read a blob (GET or HEAD).
    GetBlob,
    /// Unlink a blob from an image.
    DeleteBlob,
    /// Push a whole blob in one request.
    PutBlob,
    /// Open an upload session (or mount a blob).
    StartUpload,
    /// Read where an upload session stands.
    UploadStatus,
    /// Append a chunk to an upload session.
    AppendChunk,
    /// Finish an upload session.
    FinishUpload,
    /// Abandon an upload session.
    CancelUpload,
    /// List an image's tags.
    ListTags,
    /// List the manifests that refer to a digest.
    Referrers,
}

impl OciOperation {
    /// Every operation, for tables and tests.
    pub const ALL: [OciOperation; 14] = [
        Self::Catalog,
        Self::GetManifest,
        Self::PutManifest,
        Self::DeleteManifest,
        Self::GetBlob,
        Self::DeleteBlob,
        Self::PutBlob,
        Self::StartUpload,
        Self::UploadStatus,
        Self::AppendChunk,
        Self::FinishUpload,
        Self::CancelUpload,
        Self::ListTags,
        Self::Referrers,
    ];

    /// The permission the caller must hold: the one place that decides it
    /// for every OCI operation.
    pub fn permission(self) -> Permission {
        use OciOperation as O;
        match self {
            O::Catalog => Permission::RepositoriesList,
            O::GetManifest | O::GetBlob | O::ListTags | O::Referrers => {
                Permission::DownloadArtifacts
            }
            O::PutManifest
            | O::PutBlob
            | O::StartUpload
            | O::UploadStatus
            | O::AppendChunk
            | O::FinishUpload
            | O::CancelUpload => Permission::UploadArtifacts,
            O::DeleteManifest | O::DeleteBlob => Permission::DeleteArtifacts,
        }
    }

    /// What the permission is checked on: the image's repository, or the
    /// organization for the catalog (which has no image). An operation on
    /// an image is always given its image; without one it is checked on the
    /// organization, which only an organization-wide grant passes.
    pub fn resource(self, image: Option<&ImagePath>) -> Resource {
        match (self, image) {
            (OciOperation::Catalog, _) | (_, None) => Resource::Organization,
            (_, Some(image)) => repository_of(image),
        }
    }

    /// The operations a registry token action (`pull`, `push`, `delete`,
    /// `*`) stands for: a token grants the action when its holder may do
    /// all of them. `None` for an action that grants nothing.
    pub fn of_token_action(action: &str) -> Option<&'static [OciOperation]> {
        use OciOperation as O;
        match action {
            "pull" => Some(&[O::GetManifest]),
            "push" => Some(&[O::PutManifest]),
            "delete" => Some(&[O::DeleteManifest]),
            "*" => Some(&[O::GetManifest, O::PutManifest, O::DeleteManifest]),
            _ => None,
        }
    }
}

/// The repository resource an image belongs to.
pub fn repository_of(path: &ImagePath) -> Resource {
    Resource::Repository {
        project: path.project.to_string(),
        repository: path.repository.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_need_download_writes_upload_deletes_delete() {
        use OciOperation as O;
        for op in OciOperation::ALL {
            let expected = match op {
                O::Catalog => Permission::RepositoriesList,
                O::GetManifest | O::GetBlob | O::ListTags | O::Referrers => {
                    Permission::DownloadArtifacts
                }
                O::DeleteManifest | O::DeleteBlob => Permission::DeleteArtifacts,
                _ => Permission::UploadArtifacts,
            };
            assert_eq!(op.permission(), expected, "{op:?}");
        }
        let image: ImagePath = "p/r/a/b".parse().unwrap();
        assert_eq!(O::Catalog.resource(Some(&image)), Resource::Organization);
        assert_eq!(O::Catalog.resource(None), Resource::Organization);
        assert_eq!(
            O::PutBlob.resource(Some(&image)),
            Resource::Repository {
                project: "p".into(),
                repository: "r".into()
            }
        );
    }

    #[test]
    fn token_actions_stand_for_the_operations_of_their_permission() {
        let permissions = |a: &str| {
            OciOperation::of_token_action(a)
                .unwrap_or_default()
                .iter()
                .map(|o| o.permission())
                .collect::<Vec<_>>()
        };
        assert_eq!(permissions("pull"), [Permission::DownloadArtifacts]);
        assert_eq!(permissions("push"), [Permission::UploadArtifacts]);
        assert_eq!(permissions("delete"), [Permission::DeleteArtifacts]);
        assert_eq!(
            permissions("*"),
            [
                Permission::DownloadArtifacts,
                Permission::UploadArtifacts,
                Permission::DeleteArtifacts
            ]
        );
        assert_eq!(OciOperation::of_token_action("push,pull"), None);
    }
}
