//! `entrepot artifacts ...`: what repositories hold, with gcloud's nouns.
//!
//! - `docker images list REPO [--include-tags]`
//! - `docker images delete REPO/IMAGE@DIGEST|REPO/IMAGE:TAG [--delete-tags]`
//! - `docker tags list REPO/IMAGE`
//! - `packages list --repository=REPO`
//! - `versions list --repository=REPO --package=NAME`

use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use super::output::{last_segment, scalar, size_cell, Column, FormatArg, QuietArg};
use super::{output, AdminClient, ClientError, PageArgs};

/// Artifact verbs.
#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Docker images and tags.
    #[command(subcommand)]
    Docker(DockerCommand),
    /// Packages of a repository: image names, or Python projects.
    #[command(subcommand)]
    Packages(PackagesCommand),
    /// Versions of a package: an image's manifests, or a Python project's
    /// versions with their files.
    #[command(subcommand)]
    Versions(VersionsCommand),
}

/// `artifacts docker ...`.
#[derive(Debug, Subcommand)]
pub enum DockerCommand {
    /// Docker images (manifests).
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Tags of a Docker image.
    #[command(subcommand)]
    Tags(TagsCommand),
}

/// `artifacts docker images ...`.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// List the images of a repository: name, digest, size, upload time.
    List {
        /// Repository id.
        repository: String,
        /// Show the tags of each image.
        #[arg(long)]
        include_tags: bool,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Delete an image, named by digest (REPO/IMAGE@sha256:...) or by a tag
    /// (REPO/IMAGE:TAG, which deletes the manifest the tag points at).
    Delete {
        /// REPO/IMAGE@DIGEST or REPO/IMAGE:TAG.
        image: String,
        /// Delete the image's tags too; a tagged image is refused without.
        #[arg(long)]
        delete_tags: bool,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        quiet: QuietArg,
    },
}

/// `artifacts docker tags ...`.
#[derive(Debug, Subcommand)]
pub enum TagsCommand {
    /// List the tags of an image.
    List {
        /// REPO/IMAGE.
        image: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// `artifacts packages ...`.
#[derive(Debug, Subcommand)]
pub enum PackagesCommand {
    /// List the packages of a repository.
    List {
        /// Repository id.
        #[arg(long)]
        repository: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// `artifacts versions ...`.
#[derive(Debug, Subcommand)]
pub enum VersionsCommand {
    /// List the versions of a package.
    List {
        /// Package: a Python project name, or an image name.
        #[arg(long)]
        package: String,
        /// Repository id.
        #[arg(long)]
        repository: String,
        /// Project id.
        #[arg(long, default_value = "default", env = "ENTREPOT_PROJECT")]
        project: String,
        #[command(flatten)]
        format: FormatArg,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// An image as the CLI names it: `REPO/IMAGE`, then `@DIGEST` or `:TAG`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageArg {
    repository: String,
    image: String,
    reference: Option<ImageRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ImageRef {
    Digest(String),
    Tag(String),
}

fn parse_image(arg: &str) -> Result<ImageArg, ClientError> {
    let invalid = |why: &str| {
        ClientError::Usage(format!(
            "{arg:?} {why}; name an image as REPO/IMAGE, REPO/IMAGE@sha256:... or REPO/IMAGE:TAG"
        ))
    };
    let (path, reference) = if let Some((path, digest)) = arg.split_once('@') {
        (path, Some(ImageRef::Digest(digest.to_owned())))
    } else {
        match arg.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (path, Some(ImageRef::Tag(tag.to_owned()))),
            _ => (arg, None),
        }
    };
    let (repository, image) = path
        .split_once('/')
        .ok_or_else(|| invalid("has no image name after the repository"))?;
    if repository.is_empty() || image.is_empty() {
        return Err(invalid("is not a repository and an image"));
    }
    if matches!(&reference, Some(ImageRef::Digest(d) | ImageRef::Tag(d)) if d.is_empty()) {
        return Err(invalid("has an empty digest or tag"));
    }
    Ok(ImageArg {
        repository: repository.to_owned(),
        image: image.to_owned(),
        reference,
    })
}

/// A package id in a path: `/` as `%2F`, as Artifact Registry names them.
fn package_path(image: &str) -> String {
    image.replace('/', "%2F")
}

fn repository_path(project: &str, repository: &str) -> String {
    format!("projects/{project}/repositories/{repository}")
}

/// Run an artifacts verb.
pub async fn run(client: &AdminClient, command: ArtifactsCommand) -> Result<(), ClientError> {
    match command {
        ArtifactsCommand::Docker(DockerCommand::Images(ImagesCommand::List {
            repository,
            include_tags,
            project,
            format,
            page,
        })) => {
            let path = format!("{}/dockerImages", repository_path(&project, &repository));
            let images = client.list(&path, "dockerImages", &page, None).await?;
            let mut columns = vec![
                Column::field("IMAGE", "/image"),
                Column::field("DIGEST", "/digest"),
            ];
            if include_tags {
                columns.push(Column::field("TAGS", "/tags"));
            }
            columns.push(Column::new("SIZE", |i| size_cell(i.get("imageSizeBytes"))));
            columns.push(Column::field("UPLOAD_TIME", "/uploadTime"));
            columns.push(Column::field("LAST_PULL_TIME", "/lastPullTime"));
            output::print_list(format.format, &images, &columns);
        }
        ArtifactsCommand::Docker(DockerCommand::Images(ImagesCommand::Delete {
            image,
            delete_tags,
            project,
            quiet,
        })) => {
            let target = parse_image(&image)?;
            let Some(reference) = &target.reference else {
                return Err(ClientError::Usage(format!(
                    "{image:?} names no digest or tag; delete REPO/IMAGE@sha256:... or REPO/IMAGE:TAG"
                )));
            };
            output::confirm(quiet, &format!("The image {image} will be deleted."))?;
            let package = format!(
                "{}/packages/{}",
                repository_path(&project, &target.repository),
                package_path(&target.image)
            );
            let digest = match reference {
                ImageRef::Digest(d) => d.clone(),
                ImageRef::Tag(t) => {
                    let tag = client
                        .call(Method::GET, &format!("{package}/tags/{t}"), None)
                        .await?;
                    tag["digest"].as_str().unwrap_or_default().to_owned()
                }
            };
            let force = if delete_tags { "?force=true" } else { "" };
            let deleted = client
                .call(
                    Method::DELETE,
                    &format!("{package}/versions/{digest}{force}"),
                    None,
                )
                .await?;
            eprintln!(
                "Deleted image [{}/{}@{digest}].",
                target.repository, target.image
            );
            let tags = deleted["deletedTags"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !tags.is_empty() {
                eprintln!(
                    "Deleted tags [{}].",
                    tags.iter().map(scalar).collect::<Vec<_>>().join(", ")
                );
            }
        }
        ArtifactsCommand::Docker(DockerCommand::Tags(TagsCommand::List {
            image,
            project,
            format,
            page,
        })) => {
            let target = parse_image(&image)?;
            if target.reference.is_some() {
                return Err(ClientError::Usage(format!(
                    "{image:?}: list the tags of REPO/IMAGE, without a tag or digest"
                )));
            }
            let path = format!(
                "{}/packages/{}/tags",
                repository_path(&project, &target.repository),
                package_path(&target.image)
            );
            let tags = client.list(&path, "tags", &page, None).await?;
            let shown = format!("{}/{}", target.repository, target.image);
            output::print_list(
                format.format,
                &tags,
                &[
                    Column::field("TAG", "/tag"),
                    Column::new("IMAGE", move |_| shown.clone()),
                    Column::field("DIGEST", "/digest"),
                    Column::field("UPDATE_TIME", "/updateTime"),
                    Column::field("LAST_PULL_TIME", "/lastPullTime"),
                ],
            );
        }
        ArtifactsCommand::Packages(PackagesCommand::List {
            repository,
            project,
            format,
            page,
        }) => {
            let path = format!("{}/packages", repository_path(&project, &repository));
            let packages = client.list(&path, "packages", &page, None).await?;
            output::print_list(
                format.format,
                &packages,
                &[
                    Column::field("PACKAGE", "/displayName"),
                    Column::field("VERSIONS", "/versionCount"),
                    Column::field("FILES", "/fileCount"),
                    Column::new("SIZE", |p| size_cell(p.get("sizeBytes"))),
                    Column::field("CREATE_TIME", "/createTime"),
                    Column::field("UPDATE_TIME", "/updateTime"),
                    Column::field("LAST_PULL_TIME", "/lastPullTime"),
                ],
            );
        }
        ArtifactsCommand::Versions(VersionsCommand::List {
            package,
            repository,
            project,
            format,
            page,
        }) => {
            let path = format!(
                "{}/packages/{}/versions",
                repository_path(&project, &repository),
                package_path(&package)
            );
            let versions = client.list(&path, "versions", &page, None).await?;
            output::print_list(
                format.format,
                &versions,
                &[
                    Column::new("VERSION", |v| {
                        last_segment(v["name"].as_str().unwrap_or_default())
                    }),
                    Column::field("TAGS", "/metadata/tags"),
                    Column::new("FILES", files_cell),
                    Column::new("SIZE", |v| {
                        let m = &v["metadata"];
                        size_cell(m.get("imageSizeBytes").or_else(|| m.get("sizeBytes")))
                    }),
                    Column::new("YANKED", |v| match v["metadata"]["yanked"].as_bool() {
                        Some(true) => "yes".into(),
                        Some(false) => "no".into(),
                        None => String::new(),
                    }),
                    Column::field("CREATE_TIME", "/createTime"),
                    Column::field("LAST_PULL_TIME", "/lastPullTime"),
                ],
            );
        }
    }
    Ok(())
}

/// A Python version's files: name and size of each, `,`-separated.
fn files_cell(version: &Value) -> String {
    version["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| {
                    let yanked = if f["yanked"].as_bool() == Some(true) {
                        " yanked"
                    } else {
                        ""
                    };
                    format!(
                        "{} ({}{yanked})",
                        f["filename"].as_str().unwrap_or_default(),
                        size_cell(f.get("sizeBytes"))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn images_are_named_by_digest_or_tag() {
        assert_eq!(
            parse_image("r/team/app@sha256:abc").unwrap(),
            ImageArg {
                repository: "r".into(),
                image: "team/app".into(),
                reference: Some(ImageRef::Digest("sha256:abc".into())),
            }
        );
        assert_eq!(
            parse_image("r/app:v1").unwrap().reference,
            Some(ImageRef::Tag("v1".into()))
        );
        assert_eq!(parse_image("r/team/app").unwrap().reference, None);
        assert!(parse_image("app").is_err());
        assert!(parse_image("r/app:").is_err());
    }
}
