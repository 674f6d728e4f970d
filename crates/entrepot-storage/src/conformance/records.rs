//! Contracts of the records kept beside the content: pull records (the
//! inventory's last pulls, eviction of cached Python files), and the rows
//! of a remote repository that must go with it (referrers indexes, first
//! sightings of tag digests), plus the store-wide list of virtual
//! repositories.

use entrepot_domain::virtual_repository::VirtualConfig;
use entrepot_domain::{Digest, Format, Mode};

use super::backend::{blob, image_manifest, with_repository, Backend};
use super::metadata::{image, manifest, repository};
use super::{pid, rname};
use crate::eviction::{EvictionScope, FileCandidate, PullRecord, PYTHON_FILES_IMAGE};
use crate::lifecycle::DoomedBlob;
use crate::metadata::ImageRef;
use crate::python::{PythonFileRecord, RemoteFileRecord};

/// A manifest's pull record shows in the inventory (image, tags, package,
/// repository), for hosted repositories too, and goes with the manifest
/// however it is deleted: the same digest pushed again starts unpulled.
pub(crate) async fn pull_records_show_in_the_inventory_and_go_with_their_manifest(s: &Backend) {
    with_repository(s, "p", "r", Mode::StandardRepository).await;
    with_repository(s, "p", "quiet", Mode::StandardRepository).await;
    let repo = rname("p", "r");
    let app = image("p", "r", "app");
    let (config, layer) = (blob(1), blob(2));
    for d in [&config, &layer] {
        s.link_blob(&app, d, 10).await.unwrap();
    }
    let (one, two) = (
        image_manifest(&config, &[&layer]),
        manifest("{\"schemaVersion\":2}"),
    );
    s.put_manifest(&app, &one, Some("1.0")).await.unwrap();
    s.put_manifest(&app, &two, Some("2.0")).await.unwrap();
    s.put_manifest(&image("p", "r", "tool"), &two, None)
        .await
        .unwrap();
    assert_eq!(s.repository_last_pull(&repo).await.unwrap(), None);
    let images = s.docker_images(&repo, None, 10, 5).await.unwrap();
    assert!(images.iter().all(|i| i.last_pull_ms.is_none()));

    let pull = |digest: &Digest, pulled_ms| PullRecord {
        image: app.clone(),
        digest: digest.clone(),
        pulled_ms,
    };
    s.record_pulls(&[pull(&one.digest, 7_000), pull(&two.digest, 9_000)])
        .await
        .unwrap();
    // An older time never moves a record back.
    s.record_pulls(&[pull(&one.digest, 1_000)]).await.unwrap();

    let images = s.docker_images(&repo, None, 10, 5).await.unwrap();
    let last = |image: &str, digest: &Digest| {
        images
            .iter()
            .find(|i| i.image == image && &i.digest == digest)
            .map(|i| i.last_pull_ms)
    };
    assert_eq!(last("app", &one.digest), Some(Some(7_000)));
    assert_eq!(last("app", &two.digest), Some(Some(9_000)));
    // Pull records are per image: the same digest under another is unpulled.
    assert_eq!(last("tool", &two.digest), Some(None));
    let tags = s.docker_tags(&repo, "app", None, 10).await.unwrap();
    let tag_pulls: Vec<_> = tags
        .iter()
        .map(|t| (t.tag.as_str(), t.last_pull_ms))
        .collect();
    assert_eq!(tag_pulls, [("1.0", Some(7_000)), ("2.0", Some(9_000))]);
    assert_eq!(
        s.docker_tag(&repo, "app", "1.0")
            .await
            .unwrap()
            .unwrap()
            .last_pull_ms,
        Some(7_000)
    );
    let packages = s.docker_packages(&repo, None, 10).await.unwrap();
    let package_pulls: Vec<_> = packages
        .iter()
        .map(|p| (p.image.as_str(), p.last_pull_ms))
        .collect();
    assert_eq!(package_pulls, [("app", Some(9_000)), ("tool", None)]);
    assert_eq!(s.repository_last_pull(&repo).await.unwrap(), Some(9_000));
    assert_eq!(
        s.repository_last_pull(&rname("p", "quiet")).await.unwrap(),
        None
    );

    // A deleted manifest takes its record; pushed again, it is unpulled.
    assert!(s.delete_manifest(&app, &two.digest).await.unwrap());
    assert_eq!(s.last_pull(&app, &two.digest).await.unwrap(), None);
    assert_eq!(s.repository_last_pull(&repo).await.unwrap(), Some(7_000));
    s.put_manifest(&app, &two, Some("2.0")).await.unwrap();
    assert_eq!(
        s.docker_tag(&repo, "app", "2.0")
            .await
            .unwrap()
            .unwrap()
            .last_pull_ms,
        None
    );
    // So does a deleted repository: one re-created under its name is unpulled.
    assert!(s.delete_repository(&repo).await.unwrap());
    with_repository(s, "p", "r", Mode::StandardRepository).await;
    for d in [&config, &layer] {
        s.link_blob(&app, d, 10).await.unwrap();
    }
    s.put_manifest(&app, &one, Some("1.0")).await.unwrap();
    assert_eq!(s.repository_last_pull(&repo).await.unwrap(), None);
    assert_eq!(s.last_pull(&app, &one.digest).await.unwrap(), None);
}

/// The digest `sha256:<hex>` of a remote file.
fn file_digest(file: &RemoteFileRecord) -> Digest {
    format!("sha256:{}", file.sha256).parse().unwrap()
}

/// A file on the page of project `name`, its bytes made of `n`.
fn remote_file(name: &str, n: u8) -> RemoteFileRecord {
    let digest = Digest::of(&[n; 16]);
    RemoteFileRecord {
        name: name.into(),
        sha256: digest.to_string().trim_start_matches("sha256:").to_owned(),
        filename: format!("{name}-{n}.tar.gz"),
        url: format!("https://files.example.org/{name}-{n}.tar.gz"),
        metadata_sha256: None,
    }
}

/// The cached files of a remote Python repository are listed by (project,
/// file name) and offered to eviction least recently downloaded first
/// (never downloaded: since cached); a metadata file extracted from one,
/// and files of hosted repositories, are never offered; evicting one
/// unlinks it with its download record, once, and its bytes can then be
/// claimed.
pub(crate) async fn cached_python_files_are_evicted_least_recently_downloaded_first(s: &Backend) {
    with_repository(s, "p", "pypi", Mode::RemoteRepository).await;
    with_repository(s, "p", "hosted", Mode::StandardRepository).await;
    with_repository(s, "q", "mirror", Mode::RemoteRepository).await;
    let pypi = rname("p", "pypi");
    let (zeta, alpha, beta, never) = (
        remote_file("zeta", 1),
        remote_file("alpha", 2),
        remote_file("alpha", 3),
        remote_file("alpha", 4),
    );
    s.remember_remote_files(
        &pypi,
        &[zeta.clone(), alpha.clone(), beta.clone(), never.clone()],
    )
    .await
    .unwrap();
    for (f, size) in [(&zeta, 100), (&alpha, 200), (&beta, 300)] {
        s.link_remote_blob(&pypi, &file_digest(f), size)
            .await
            .unwrap();
    }
    // A metadata file extracted from `alpha`: linked, but no page lists it.
    let metadata = Digest::of(b"Metadata-Version: 2.1\nName: alpha\n");
    s.link_remote_blob(&pypi, &metadata, 40).await.unwrap();
    let elsewhere = rname("q", "mirror");
    let other = remote_file("gamma", 5);
    s.remember_remote_files(&elsewhere, std::slice::from_ref(&other))
        .await
        .unwrap();
    s.link_remote_blob(&elsewhere, &file_digest(&other), 50)
        .await
        .unwrap();
    // The same bytes linked to a hosted repository are not the cache's.
    s.remember_remote_files(&rname("p", "hosted"), std::slice::from_ref(&zeta))
        .await
        .unwrap();
    s.link_remote_blob(&rname("p", "hosted"), &file_digest(&zeta), 100)
        .await
        .unwrap();

    // Cached files: linked and listed, `never` (not linked) left out.
    let cached = s.python_cached_files(&pypi, None, 2).await.unwrap();
    let names: Vec<_> = cached
        .iter()
        .map(|f| (f.name.as_str(), f.filename.as_str(), f.size))
        .collect();
    assert_eq!(
        names,
        [
            ("alpha", "alpha-2.tar.gz", 200),
            ("alpha", "alpha-3.tar.gz", 300)
        ]
    );
    assert_eq!(cached[0].sha256, alpha.sha256);
    let rest = s
        .python_cached_files(&pypi, Some(("alpha", "alpha-3.tar.gz")), 10)
        .await
        .unwrap();
    let names: Vec<_> = rest.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(names, ["zeta-1.tar.gz"]);

    let pulled = |repo: &entrepot_domain::RepositoryName, f: &RemoteFileRecord, ms| PullRecord {
        image: ImageRef {
            project: repo.project.to_string(),
            repository: repo.repository.to_string(),
            image: PYTHON_FILES_IMAGE.into(),
        },
        digest: file_digest(f),
        pulled_ms: ms,
    };
    s.record_pulls(&[
        pulled(&pypi, &zeta, 5_000),
        pulled(&pypi, &alpha, 2_000),
        pulled(&elsewhere, &other, 1_000),
        // Not cached: no record is kept.
        pulled(&pypi, &never, 10),
    ])
    .await
    .unwrap();
    s.record_pulls(&[pulled(&pypi, &zeta, 3_000)])
        .await
        .unwrap();
    // The listing shows each file's latest download, and when it was cached.
    let listed = s.python_cached_files(&pypi, None, 10).await.unwrap();
    let downloads: Vec<_> = listed
        .iter()
        .map(|f| (f.filename.as_str(), f.last_pull_ms))
        .collect();
    assert_eq!(
        downloads,
        [
            ("alpha-2.tar.gz", Some(2_000)),
            ("alpha-3.tar.gz", None),
            ("zeta-1.tar.gz", Some(5_000))
        ]
    );
    assert!(
        listed.iter().all(|f| f
            .cache_time
            .as_deref()
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z'))),
        "{listed:?}"
    );

    let scope = EvictionScope::Repository {
        project: "p".into(),
        repository: "pypi".into(),
    };
    let candidates = s.file_eviction_candidates(&scope, 0, 10).await.unwrap();
    let order: Vec<_> = candidates
        .iter()
        .map(|c| (c.digest.clone(), c.last_pull_ms))
        .collect();
    // `beta` was never downloaded: it counts from when it was cached (now,
    // later than the recorded downloads).
    assert_eq!(order.len(), 3, "{order:?}");
    assert_eq!(order[0], (file_digest(&alpha), 2_000));
    assert_eq!(order[1], (file_digest(&zeta), 5_000));
    assert_eq!(order[2].0, file_digest(&beta));
    assert!(order[2].1 > 5_000);
    assert!(candidates
        .iter()
        .all(|c| (c.project.as_str(), c.repository.as_str()) == ("p", "pypi")));
    let page = s.file_eviction_candidates(&scope, 1, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].digest, file_digest(&zeta));
    let all = s
        .file_eviction_candidates(&EvictionScope::AllRemote, 0, 10)
        .await
        .unwrap();
    let all: Vec<_> = all
        .iter()
        .map(|c| (c.project.as_str(), c.repository.as_str(), c.digest.clone()))
        .collect();
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all[0], ("q", "mirror", file_digest(&other)));

    let victim: FileCandidate = candidates[0].clone();
    assert!(s.evict_file(&victim).await.unwrap());
    assert!(!s.evict_file(&victim).await.unwrap());
    let key = ImageRef {
        project: "p".into(),
        repository: "pypi".into(),
        image: PYTHON_FILES_IMAGE.into(),
    };
    assert_eq!(s.last_pull(&key, &victim.digest).await.unwrap(), None);
    assert_eq!(
        s.remote_blob_size(&pypi, &victim.digest).await.unwrap(),
        None
    );
    let left = s.file_eviction_candidates(&scope, 0, 10).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|c| c.digest != victim.digest));
    let cached = s.python_cached_files(&pypi, None, 10).await.unwrap();
    assert!(cached.iter().all(|f| f.sha256 != alpha.sha256));
    // A pull recorded after the eviction leaves no record behind.
    s.record_pulls(&[pulled(&pypi, &alpha, 9_000)])
        .await
        .unwrap();
    assert_eq!(s.last_pull(&key, &victim.digest).await.unwrap(), None);
    // Nothing links its bytes any more: they can be claimed; the other
    // files' bytes cannot.
    let doomed = s
        .doom_unlinked_among(&[victim.digest.clone(), file_digest(&zeta)])
        .await
        .unwrap();
    assert_eq!(
        doomed,
        vec![DoomedBlob {
            digest: victim.digest,
            size: 200
        }]
    );
}

/// A remote repository's referrers indexes and the first sightings of its
/// tags' digests go with it: one re-created under the same name starts
/// without them; another repository's stay.
pub(crate) async fn referrers_and_first_sightings_go_with_their_repository(s: &Backend) {
    with_repository(s, "p", "hub", Mode::RemoteRepository).await;
    with_repository(s, "p", "kept", Mode::RemoteRepository).await;
    let (hub, kept) = (image("p", "hub", "app"), image("p", "kept", "app"));
    let subject = Digest::of(b"subject");
    for at in [&hub, &kept] {
        s.put_referrers_index(at, &subject, b"{\"manifests\":[]}", 100)
            .await
            .unwrap();
        s.saw_tag_digest(at, "v1", "sha256:a", 100).await.unwrap();
    }
    assert!(s.delete_repository(&rname("p", "hub")).await.unwrap());
    with_repository(s, "p", "hub", Mode::RemoteRepository).await;
    assert_eq!(s.referrers_index(&hub, &subject).await.unwrap(), None);
    assert!(s.tag_digests(&hub, "v1").await.unwrap().is_empty());
    assert!(s.digest_records(&hub, "sha256:a").await.unwrap().is_empty());
    // A new sighting starts from now, not from the old repository's.
    let seen = s.saw_tag_digest(&hub, "v1", "sha256:a", 900).await.unwrap();
    assert_eq!(seen.first_seen, 900);
    assert!(s.referrers_index(&kept, &subject).await.unwrap().is_some());
    assert_eq!(s.tag_digests(&kept, "v1").await.unwrap().len(), 1);
}

/// The virtual repositories of one format, across every project, ordered
/// by project and id, with their configuration.
pub(crate) async fn virtual_repositories_are_listed_across_projects(s: &Backend) {
    let make = |project: &str, id: &str, format: Format, mode: Mode| {
        let mut repo = repository(project, id, "");
        repo.format = format;
        repo.mode = mode;
        if mode == Mode::VirtualRepository {
            repo.virtual_repository_config = Some(VirtualConfig {
                allow_remote_shadowing: vec![format!("{project}-tools")],
                ..Default::default()
            });
        }
        repo
    };
    for project in ["b", "a"] {
        s.create_project(&pid(project)).await.unwrap();
    }
    for (project, id, format, mode) in [
        ("b", "all", Format::Docker, Mode::VirtualRepository),
        ("a", "zz", Format::Docker, Mode::VirtualRepository),
        ("a", "all", Format::Docker, Mode::VirtualRepository),
        ("a", "py", Format::Python, Mode::VirtualRepository),
        ("a", "hosted", Format::Docker, Mode::StandardRepository),
        ("b", "hub", Format::Docker, Mode::RemoteRepository),
    ] {
        s.create_repository(&rname(project, id), &make(project, id, format, mode))
            .await
            .unwrap();
    }
    let docker = s.virtual_repositories(Format::Docker).await.unwrap();
    let names: Vec<_> = docker.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "projects/a/repositories/all",
            "projects/a/repositories/zz",
            "projects/b/repositories/all"
        ]
    );
    assert_eq!(
        docker[2]
            .virtual_repository_config
            .as_ref()
            .map(|c| c.allow_remote_shadowing.clone()),
        Some(vec!["b-tools".to_owned()])
    );
    let python = s.virtual_repositories(Format::Python).await.unwrap();
    let names: Vec<_> = python.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["projects/a/repositories/py"]);
}

/// A file uploaded to a hosted Python repository, with its bytes made of `n`.
fn hosted_file(filename: &str, version: &str, n: u8) -> PythonFileRecord {
    let digest = Digest::of(&[n; 16]);
    PythonFileRecord {
        filename: filename.into(),
        name: "t".into(),
        version: version.into(),
        sha256: digest.to_string().trim_start_matches("sha256:").to_owned(),
        size: 10,
        requires_python: None,
        metadata_sha256: None,
        yanked: false,
        yanked_reason: None,
        upload_time: "2026-01-01T00:00:00Z".into(),
    }
}

/// Downloads of a hosted Python repository's files are recorded (only for
/// files it holds) and show in the inventory per file, per project and per
/// repository; a deleted file takes its record with it unless another file
/// of the repository has the same bytes, so the same bytes uploaded again
/// start undownloaded.
pub(crate) async fn hosted_python_downloads_show_in_the_inventory_and_go_with_their_file(
    s: &Backend,
) {
    with_repository(s, "p", "py", Mode::StandardRepository).await;
    with_repository(s, "p", "quiet", Mode::StandardRepository).await;
    let repo = rname("p", "py");
    let (tar, wheel, two, three) = (
        hosted_file("t-1.0.tar.gz", "1.0", 1),
        hosted_file("t-1.0-py3-none-any.whl", "1.0", 2),
        hosted_file("t-2.0.tar.gz", "2.0", 3),
        // The same bytes as 2.0's file, under another name.
        hosted_file("t-3.0.tar.gz", "3.0", 3),
    );
    for f in [&tar, &wheel, &two, &three] {
        s.add_file(&repo, f).await.unwrap();
    }
    let digest =
        |f: &PythonFileRecord| -> Digest { format!("sha256:{}", f.sha256).parse().unwrap() };
    let key = |repository: &str| ImageRef {
        project: "p".into(),
        repository: repository.into(),
        image: PYTHON_FILES_IMAGE.into(),
    };
    let pulled = |repository: &str, f: &PythonFileRecord, ms| PullRecord {
        image: key(repository),
        digest: digest(f),
        pulled_ms: ms,
    };
    let stranger = Digest::of(b"never uploaded");
    s.record_pulls(&[
        pulled("py", &tar, 4_000),
        pulled("py", &wheel, 6_000),
        pulled("py", &two, 7_000),
        // Not uploaded there: no record is kept.
        pulled("quiet", &tar, 8_000),
        PullRecord {
            image: key("py"),
            digest: stranger.clone(),
            pulled_ms: 9_000,
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        s.last_pull(&key("quiet"), &digest(&tar)).await.unwrap(),
        None
    );
    assert_eq!(s.last_pull(&key("py"), &stranger).await.unwrap(), None);

    let packages = s.python_packages(&repo, None, 10).await.unwrap();
    assert_eq!(packages.len(), 1);
    assert_eq!(packages[0].last_pull_ms, Some(7_000));
    let files = s.python_version_files(&repo, "t", None, 10).await.unwrap();
    let downloads: Vec<_> = files
        .iter()
        .map(|f| (f.filename.as_str(), f.last_pull_ms))
        .collect();
    assert_eq!(
        downloads,
        [
            ("t-1.0-py3-none-any.whl", Some(6_000)),
            ("t-1.0.tar.gz", Some(4_000)),
            ("t-2.0.tar.gz", Some(7_000)),
            // Kept per digest: the same bytes show the same download.
            ("t-3.0.tar.gz", Some(7_000)),
        ]
    );
    assert_eq!(s.repository_last_pull(&repo).await.unwrap(), Some(7_000));
    assert_eq!(
        s.repository_last_pull(&rname("p", "quiet")).await.unwrap(),
        None
    );

    // Deleting 1.0 takes its files' records; 2.0's bytes are still 3.0's.
    assert_eq!(s.delete_python_version(&repo, "t", "1.0").await.unwrap(), 2);
    assert_eq!(s.delete_python_version(&repo, "t", "2.0").await.unwrap(), 1);
    assert_eq!(s.last_pull(&key("py"), &digest(&tar)).await.unwrap(), None);
    assert_eq!(
        s.last_pull(&key("py"), &digest(&wheel)).await.unwrap(),
        None
    );
    assert_eq!(
        s.last_pull(&key("py"), &digest(&three)).await.unwrap(),
        Some(7_000)
    );
    s.add_file(&repo, &tar).await.unwrap();
    let files = s.python_version_files(&repo, "t", None, 10).await.unwrap();
    let downloads: Vec<_> = files
        .iter()
        .map(|f| (f.filename.as_str(), f.last_pull_ms))
        .collect();
    assert_eq!(
        downloads,
        [("t-1.0.tar.gz", None), ("t-3.0.tar.gz", Some(7_000))]
    );
}
