//! Contracts of [`MetadataStore`]: projects, repositories, content and
//! upload sessions.

use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::virtual_repository::{UpstreamPolicy, VirtualConfig};
use entrepot_domain::{Digest, Format, Mode, Repository};

use super::walk;
use crate::conformance::{pid, rid, rname};
use crate::metadata::*;
use crate::python::{CachedIndexPage, PythonFileRecord, RemoteFileRecord};
use crate::Stores;

pub(crate) fn repository(project: &str, id: &str, description: &str) -> Repository {
    Repository {
        name: format!("projects/{project}/repositories/{id}"),
        format: Format::Docker,
        mode: Mode::StandardRepository,
        description: description.into(),
        remote_repository_config: None,
        virtual_repository_config: None,
        create_time: "2026-01-01T00:00:00Z".into(),
        update_time: "2026-01-01T00:00:00Z".into(),
    }
}

pub(crate) fn image(project: &str, repository: &str, image: &str) -> ImageRef {
    ImageRef {
        project: project.into(),
        repository: repository.into(),
        image: image.into(),
    }
}

pub(crate) fn manifest(content: &str) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::of(content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_type: None,
        subject: None,
        annotations: None,
        content: content.as_bytes().to_vec(),
    }
}

fn upload(id: &str, update_time: i64) -> UploadRecord {
    UploadRecord {
        id: id.into(),
        image: image("p", "r", "app"),
        size: 0,
        parts: 0,
        part_names: Vec::new(),
        create_time: update_time,
        update_time,
    }
}

/// A project is created once; projects get distinct numbers (the service
/// agent's identity is made of it).
pub(crate) async fn projects_are_create_only(s: &Stores) {
    let store = &*s.metadata;
    assert_eq!(store.get_project(&pid("p")).await.unwrap(), None);
    let p = store.create_project(&pid("p")).await.unwrap();
    assert_eq!(p.id.as_str(), "p");
    assert!(p.number > 0);
    assert!(matches!(
        store.create_project(&pid("p")).await,
        Err(StoreError::AlreadyExists)
    ));
    let q = store.create_project(&pid("q")).await.unwrap();
    assert_ne!(p.number, q.number);
    // The refused second creation changed nothing.
    assert_eq!(store.get_project(&pid("p")).await.unwrap(), Some(p));
}

/// Projects page by id after the cursor; a project created behind the cursor
/// is not seen, one created ahead of it is.
pub(crate) async fn project_pages_follow_id_order_while_projects_are_added(s: &Stores) {
    let store = &*s.metadata;
    for i in 0..10 {
        store
            .create_project(&pid(&format!("p{i:02}")))
            .await
            .unwrap();
    }
    let seen = walk(3, async |after: Option<String>, n| {
        if n == 1 {
            store.create_project(&pid("a-behind")).await.unwrap();
            store.create_project(&pid("z-ahead")).await.unwrap();
        }
        let page = store
            .list_projects(after.map(|a| pid(&a)).as_ref(), 3)
            .await
            .unwrap();
        page.into_iter().map(|p| p.id.to_string()).collect()
    })
    .await;
    let mut expected: Vec<String> = (0..10).map(|i| format!("p{i:02}")).collect();
    expected.push("z-ahead".into());
    assert_eq!(seen, expected);
    let all = store.list_projects(None, 100).await.unwrap();
    assert_eq!(all.len(), 12);
    assert_eq!(all[0].id.as_str(), "a-behind");
}

/// A repository id is taken once per project; updates change the mutable
/// fields only, and report whether the repository exists.
pub(crate) async fn repositories_are_create_only_within_a_project(s: &Stores) {
    let store = &*s.metadata;
    store.create_project(&pid("p")).await.unwrap();
    store.create_project(&pid("q")).await.unwrap();
    let mut remote = repository("p", "hub", "Docker Hub");
    remote.mode = Mode::RemoteRepository;
    remote.remote_repository_config = Some(RemoteConfig {
        upstream: "DOCKER-HUB".into(),
        username: Some("alice".into()),
        password_secret_version: Some("projects/p/secrets/hub/versions/latest".into()),
        tag_ttl_secs: 300,
        python_index_ttl_secs: None,
        serve_stale: true,
        allow_insecure_upstream: false,
        allow_cached_from_blocked: false,
        keep_deleted_secs: None,
        negative_cache_secs: None,
        cache_max_size_bytes: None,
        timeouts: Default::default(),
        release_age: Default::default(),
    });
    assert_eq!(
        store.get_repository(&rname("p", "hub")).await.unwrap(),
        None
    );
    store
        .create_repository(&rname("p", "hub"), &remote)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_repository(&rname("p", "hub"), &repository("p", "hub", "again"))
            .await,
        Err(StoreError::AlreadyExists)
    ));
    store
        .create_repository(&rname("q", "hub"), &repository("q", "hub", "other"))
        .await
        .unwrap();
    assert_eq!(
        store.get_repository(&rname("p", "hub")).await.unwrap(),
        Some(remote.clone())
    );

    let mut changed = remote.clone();
    changed.description = "changed".into();
    changed.update_time = "2026-02-01T00:00:00Z".into();
    if let Some(config) = changed.remote_repository_config.as_mut() {
        config.username = None;
        config.tag_ttl_secs = 60;
    }
    // Neither the format, the mode nor the creation time can change.
    let mut attempt = changed.clone();
    attempt.format = Format::Python;
    attempt.mode = Mode::StandardRepository;
    attempt.create_time = "2030-01-01T00:00:00Z".into();
    assert!(store
        .update_repository(&rname("p", "hub"), &attempt)
        .await
        .unwrap());
    assert_eq!(
        store.get_repository(&rname("p", "hub")).await.unwrap(),
        Some(changed)
    );
    assert!(!store
        .update_repository(&rname("p", "absent"), &repository("p", "absent", ""))
        .await
        .unwrap());
    assert_eq!(
        store.get_repository(&rname("p", "absent")).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .get_repository(&rname("q", "hub"))
            .await
            .unwrap()
            .map(|r| r.description),
        Some("other".into())
    );

    // A virtual repository's members are kept, and replaced by an update.
    let mut all = repository("p", "all", "");
    all.mode = Mode::VirtualRepository;
    let policy = |id: &str, priority| UpstreamPolicy {
        id: id.into(),
        repository: format!("projects/p/repositories/{id}"),
        priority,
    };
    all.virtual_repository_config = Some(VirtualConfig {
        upstream_policies: vec![policy("hub", 2), policy("local", 1)],
        allow_remote_shadowing: vec!["acme-tools".into()],
        release_age: entrepot_domain::cooldown::ReleaseAgePolicy {
            min_release_age_secs: Some(86_400),
            ..Default::default()
        },
    });
    store
        .create_repository(&rname("p", "all"), &all)
        .await
        .unwrap();
    assert_eq!(
        store.get_repository(&rname("p", "all")).await.unwrap(),
        Some(all.clone())
    );
    all.virtual_repository_config = Some(VirtualConfig {
        upstream_policies: vec![policy("local", 5)],
        ..Default::default()
    });
    assert!(store
        .update_repository(&rname("p", "all"), &all)
        .await
        .unwrap());
    assert_eq!(
        store.get_repository(&rname("p", "all")).await.unwrap(),
        Some(all)
    );
}

/// Repositories page by id within their project; one deleted ahead of the
/// cursor is not seen, one created ahead of it is, one created behind is not.
pub(crate) async fn repository_pages_stay_stable_while_repositories_come_and_go(s: &Stores) {
    let store = &*s.metadata;
    store.create_project(&pid("p")).await.unwrap();
    store.create_project(&pid("q")).await.unwrap();
    for i in 0..10 {
        let id = format!("r{i:02}");
        store
            .create_repository(&rname("p", &id), &repository("p", &id, ""))
            .await
            .unwrap();
    }
    store
        .create_repository(&rname("q", "r05x"), &repository("q", "r05x", ""))
        .await
        .unwrap();
    let seen = walk(4, async |after: Option<String>, n| {
        if n == 1 {
            for id in ["a-behind", "r05a", "zz"] {
                store
                    .create_repository(&rname("p", id), &repository("p", id, ""))
                    .await
                    .unwrap();
            }
            assert!(store.delete_repository(&rname("p", "r08")).await.unwrap());
        }
        let page = store
            .list_repositories(&pid("p"), after.map(|a| rid(&a)).as_ref(), 4)
            .await
            .unwrap();
        assert!(page
            .iter()
            .all(|r| r.name.starts_with("projects/p/repositories/")));
        page.into_iter()
            .map(|r| r.name.rsplit('/').next().unwrap_or_default().to_owned())
            .collect()
    })
    .await;
    assert_eq!(
        seen,
        ["r00", "r01", "r02", "r03", "r04", "r05", "r05a", "r06", "r07", "r09", "zz"]
    );
    assert!(store
        .list_repositories(&pid("absent"), None, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Deleting a repository takes its manifests, tags, blob links, upload
/// sessions and Python content, and nothing of another repository; the id
/// can then be created again, empty.
pub(crate) async fn deleting_a_repository_takes_its_content(s: &Stores) {
    let store = &*s.metadata;
    store.create_project(&pid("p")).await.unwrap();
    for id in ["r", "other"] {
        store
            .create_repository(&rname("p", id), &repository("p", id, ""))
            .await
            .unwrap();
    }
    let (gone, kept) = (image("p", "r", "app"), image("p", "other", "app"));
    let m = manifest("content");
    let blob = Digest::of(b"layer");
    for image in [&gone, &kept] {
        store.put_manifest(image, &m, Some("latest")).await.unwrap();
        store.link_blob(image, &blob, 5).await.unwrap();
    }
    store.create_upload(&upload("u1", 100)).await.unwrap();
    let python = rname("p", "r");
    let page = CachedIndexPage {
        content_type: "text/html".into(),
        content: b"<html></html>".to_vec(),
        fetched_at: 1,
    };
    s.python
        .put_index_page(&python, "tiny", &page)
        .await
        .unwrap();
    let origin = RemoteFileRecord {
        name: "tiny".into(),
        sha256: "ab".repeat(32),
        filename: "tiny-1.0.tar.gz".into(),
        url: "https://files.example.org/tiny-1.0.tar.gz".into(),
        metadata_sha256: None,
    };
    s.python
        .remember_remote_files(&python, std::slice::from_ref(&origin))
        .await
        .unwrap();
    s.python
        .add_file(
            &python,
            &PythonFileRecord {
                filename: "tiny-1.0.tar.gz".into(),
                name: "tiny".into(),
                version: "1.0".into(),
                sha256: "ab".repeat(32),
                size: 10,
                requires_python: None,
                metadata_sha256: None,
                yanked: false,
                yanked_reason: None,
                upload_time: "2026-01-01T00:00:00Z".into(),
            },
        )
        .await
        .unwrap();

    assert!(store.delete_repository(&rname("p", "r")).await.unwrap());
    assert!(!store.delete_repository(&rname("p", "r")).await.unwrap());
    assert_eq!(store.get_repository(&rname("p", "r")).await.unwrap(), None);
    assert!(store
        .manifest_by_tag(&gone, "latest")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .manifest_by_digest(&gone, &m.digest)
        .await
        .unwrap()
        .is_none());
    assert!(!store.image_exists(&gone).await.unwrap());
    assert_eq!(store.linked_blob_size(&gone, &blob).await.unwrap(), None);
    assert_eq!(store.get_upload("u1").await.unwrap(), None);
    assert_eq!(s.python.index_page(&python, "tiny").await.unwrap(), None);
    assert!(s
        .python
        .remote_files_of(&python, "tiny")
        .await
        .unwrap()
        .is_empty());
    assert!(s.python.files_of(&python, "tiny").await.unwrap().is_empty());
    // The other repository keeps everything.
    assert!(store
        .manifest_by_tag(&kept, "latest")
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.linked_blob_size(&kept, &blob).await.unwrap(), Some(5));
    let catalog = store.catalog(None, 10).await.unwrap();
    assert_eq!(
        catalog,
        [CatalogEntry {
            path: "p/other/app".into()
        }]
    );
    // Created again, the repository starts empty.
    store
        .create_repository(&rname("p", "r"), &repository("p", "r", "new"))
        .await
        .unwrap();
    assert!(store
        .manifest_by_tag(&gone, "latest")
        .await
        .unwrap()
        .is_none());
    assert!(store.list_tags(&gone, None, 10).await.unwrap().is_empty());
}

/// A repository's size counts each linked blob once, however many images
/// share it, plus its manifests and uploaded Python files; another
/// repository's content is not counted.
pub(crate) async fn repository_size_counts_its_own_content_once(s: &Stores) {
    let store = &*s.metadata;
    assert_eq!(
        store.repository_size_bytes(&rname("p", "r")).await.unwrap(),
        0
    );
    let (app, tool, elsewhere) = (
        image("p", "r", "app"),
        image("p", "r", "tool"),
        image("p", "r2", "app"),
    );
    let layer = Digest::of(b"layer");
    store.link_blob(&app, &layer, 1000).await.unwrap();
    store.link_blob(&tool, &layer, 1000).await.unwrap();
    store
        .link_blob(&elsewhere, &Digest::of(b"other"), 7)
        .await
        .unwrap();
    let m = manifest("{\"schemaVersion\":2}");
    store.put_manifest(&app, &m, Some("1")).await.unwrap();
    s.python
        .add_file(
            &rname("p", "r"),
            &PythonFileRecord {
                filename: "tiny-1.0.tar.gz".into(),
                name: "tiny".into(),
                version: "1.0".into(),
                sha256: "ab".repeat(32),
                size: 10,
                requires_python: None,
                metadata_sha256: None,
                yanked: false,
                yanked_reason: None,
                upload_time: "2026-01-01T00:00:00Z".into(),
            },
        )
        .await
        .unwrap();
    let expected = 1000 + m.content.len() as u64 + 10;
    assert_eq!(
        store.repository_size_bytes(&rname("p", "r")).await.unwrap(),
        expected
    );
    assert_eq!(
        store
            .repository_size_bytes(&rname("p", "r2"))
            .await
            .unwrap(),
        7
    );
    assert_eq!(
        store
            .repository_size_bytes(&rname("p", "absent"))
            .await
            .unwrap(),
        0
    );
}

/// A blob is served by an image only once linked to it; linking is
/// idempotent; unlinking removes the link but not the blob's record.
pub(crate) async fn blob_links_belong_to_one_image(s: &Stores) {
    let store = &*s.metadata;
    let (app, other_image, other_repo) = (
        image("p", "r", "app"),
        image("p", "r", "tool"),
        image("p", "r2", "app"),
    );
    let d = Digest::of(b"layer");
    assert_eq!(store.blob_size(&d).await.unwrap(), None);
    store.link_blob(&app, &d, 5).await.unwrap();
    store.link_blob(&app, &d, 5).await.unwrap();
    assert_eq!(store.linked_blob_size(&app, &d).await.unwrap(), Some(5));
    assert_eq!(
        store.linked_blob_size(&other_image, &d).await.unwrap(),
        None
    );
    assert_eq!(store.linked_blob_size(&other_repo, &d).await.unwrap(), None);
    assert_eq!(
        store.blob_size_in_repository("p", "r", &d).await.unwrap(),
        Some(5)
    );
    assert_eq!(
        store.blob_size_in_repository("p", "r2", &d).await.unwrap(),
        None
    );
    assert_eq!(store.blob_size(&d).await.unwrap(), Some(5));
    store.link_blob(&other_repo, &d, 5).await.unwrap();
    assert!(store.unlink_blob(&app, &d).await.unwrap());
    assert!(!store.unlink_blob(&app, &d).await.unwrap());
    assert_eq!(store.linked_blob_size(&app, &d).await.unwrap(), None);
    assert_eq!(
        store.blob_size_in_repository("p", "r", &d).await.unwrap(),
        None
    );
    assert_eq!(
        store.linked_blob_size(&other_repo, &d).await.unwrap(),
        Some(5)
    );
    // Removing the bytes is the garbage collector's decision, not unlink's.
    assert!(store.unlink_blob(&other_repo, &d).await.unwrap());
    assert_eq!(store.blob_size(&d).await.unwrap(), Some(5));
}

/// Which of many digests an image has, as manifests or linked blobs, with
/// their sizes: the answer covers every digest asked about, however many.
pub(crate) async fn existence_checks_answer_for_many_digests(s: &Stores) {
    let store = &*s.metadata;
    let app = image("p", "r", "app");
    let asked: Vec<Digest> = (0..450)
        .map(|i| Digest::of(format!("{i}").as_bytes()))
        .collect();
    let mut manifests = Vec::new();
    let mut blobs = Vec::new();
    for (i, d) in asked.iter().enumerate() {
        match i % 3 {
            0 => {
                let m = manifest(&format!("{i}"));
                assert_eq!(&m.digest, d);
                store.put_manifest(&app, &m, None).await.unwrap();
                manifests.push((d.clone(), m.content.len() as u64));
            }
            1 => {
                store.link_blob(&app, d, i as u64).await.unwrap();
                blobs.push((d.clone(), i as u64));
            }
            _ => {}
        }
    }
    let sorted = |mut v: Vec<(Digest, u64)>| {
        v.sort_by_key(|(d, _)| d.to_string());
        v
    };
    assert_eq!(
        sorted(store.existing_manifests(&app, &asked).await.unwrap()),
        sorted(manifests)
    );
    assert_eq!(
        sorted(store.existing_blob_links(&app, &asked).await.unwrap()),
        sorted(blobs)
    );
    assert!(store
        .existing_manifests(&app, &[])
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .existing_blob_links(&image("p", "r", "tool"), &asked)
        .await
        .unwrap()
        .is_empty());
}

/// A manifest is kept with its exact bytes and referrer fields; putting the
/// same digest again changes nothing.
pub(crate) async fn manifests_keep_their_bytes_and_are_idempotent_by_digest(s: &Stores) {
    let store = &*s.metadata;
    let app = image("p", "r", "app");
    assert!(!store.image_exists(&app).await.unwrap());
    let subject = Digest::of(b"subject");
    let m = ManifestRecord {
        artifact_type: Some("application/vnd.example+json".into()),
        subject: Some(subject.clone()),
        annotations: Some(r#"{"org.example":"x"}"#.into()),
        // Whitespace and key order are part of the bytes.
        ..manifest("{ \"schemaVersion\" : 2 ,\n \"b\":1, \"a\":2 }")
    };
    store.put_manifest(&app, &m, None).await.unwrap();
    store.put_manifest(&app, &m, None).await.unwrap();
    let stored = store
        .manifest_by_digest(&app, &m.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.digest, m.digest);
    assert_eq!(stored.content, m.content);
    assert_eq!(stored.media_type, m.media_type);
    assert_eq!(stored.artifact_type, m.artifact_type);
    assert_eq!(stored.subject, Some(subject));
    assert_eq!(stored.annotations, m.annotations);
    assert!(store.image_exists(&app).await.unwrap());
    assert!(!store.image_exists(&image("p", "r", "tool")).await.unwrap());
    assert!(store
        .manifest_by_digest(&image("p", "r", "tool"), &m.digest)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .existing_manifests(&app, std::slice::from_ref(&m.digest))
            .await
            .unwrap(),
        [(m.digest.clone(), m.content.len() as u64)]
    );
}

/// A tag points at one manifest, moves on a put, goes on a delete, and goes
/// with the manifest it names; the manifest outlives its tag.
pub(crate) async fn tags_are_put_moved_and_deleted(s: &Stores) {
    let store = &*s.metadata;
    let (app, tool) = (image("p", "r", "app"), image("p", "r", "tool"));
    let (m1, m2) = (manifest("one"), manifest("two"));
    let tagged = async |image: &ImageRef, tag: &str| {
        let found = store.manifest_by_tag(image, tag).await.unwrap();
        found.map(|m| m.digest)
    };
    store.put_manifest(&app, &m1, Some("1.0")).await.unwrap();
    store.put_manifest(&app, &m1, Some("latest")).await.unwrap();
    store
        .put_manifest(&tool, &m2, Some("latest"))
        .await
        .unwrap();
    assert_eq!(tagged(&app, "latest").await, Some(m1.digest.clone()));
    let by_tag = store
        .manifest_by_tag(&app, "latest")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tag.content, m1.content);
    // The tag moves; the manifest it left stays.
    store.put_manifest(&app, &m2, Some("latest")).await.unwrap();
    assert_eq!(tagged(&app, "latest").await, Some(m2.digest.clone()));
    assert_eq!(tagged(&app, "1.0").await, Some(m1.digest.clone()));
    // Putting a tag again where it already points changes nothing.
    store.put_manifest(&app, &m2, Some("latest")).await.unwrap();
    assert_eq!(tagged(&app, "latest").await, Some(m2.digest.clone()));
    // The tag goes; the manifest stays.
    assert!(store.delete_tag(&app, "latest").await.unwrap());
    assert!(!store.delete_tag(&app, "latest").await.unwrap());
    assert_eq!(tagged(&app, "latest").await, None);
    assert!(store
        .manifest_by_digest(&app, &m2.digest)
        .await
        .unwrap()
        .is_some());
    // Another image's tag of the same name is untouched.
    assert_eq!(tagged(&tool, "latest").await, Some(m2.digest.clone()));
    // The manifest goes, and the tags naming it with it.
    assert!(store.delete_manifest(&app, &m1.digest).await.unwrap());
    assert!(!store.delete_manifest(&app, &m1.digest).await.unwrap());
    assert_eq!(tagged(&app, "1.0").await, None);
    assert_eq!(
        store.list_tags(&app, None, 10).await.unwrap(),
        Vec::<String>::new()
    );
}

/// Every read follows the writes before it: a tag that moves or goes, a
/// manifest deleted, a repository changed, deleted and created again.
pub(crate) async fn reads_follow_every_write(s: &Stores) {
    let store = &*s.metadata;
    store.create_project(&pid("p")).await.unwrap();
    store
        .create_repository(&rname("p", "r"), &repository("p", "r", "one"))
        .await
        .unwrap();
    let image = image("p", "r", "app");
    let (m1, m2) = (manifest("one"), manifest("two"));
    let tagged = async || {
        let found = store.manifest_by_tag(&image, "t").await.unwrap();
        found.map(|m| m.digest)
    };

    store.put_manifest(&image, &m1, Some("t")).await.unwrap();
    assert_eq!(tagged().await, Some(m1.digest.clone()));
    // The tag moves.
    store.put_manifest(&image, &m2, Some("t")).await.unwrap();
    assert_eq!(tagged().await, Some(m2.digest.clone()));
    // The tag goes.
    assert!(store.delete_tag(&image, "t").await.unwrap());
    assert_eq!(tagged().await, None);
    // The manifest it names goes.
    store.put_manifest(&image, &m1, Some("t")).await.unwrap();
    assert_eq!(tagged().await, Some(m1.digest.clone()));
    assert!(store.delete_manifest(&image, &m1.digest).await.unwrap());
    assert_eq!(tagged().await, None);

    // The repository changes, then goes with its content.
    let desc = |r: Option<Repository>| r.map(|r| r.description);
    assert_eq!(
        desc(store.get_repository(&rname("p", "r")).await.unwrap()),
        Some("one".into())
    );
    store
        .update_repository(&rname("p", "r"), &repository("p", "r", "two"))
        .await
        .unwrap();
    assert_eq!(
        desc(store.get_repository(&rname("p", "r")).await.unwrap()),
        Some("two".into())
    );
    store.put_manifest(&image, &m2, Some("t")).await.unwrap();
    assert_eq!(tagged().await, Some(m2.digest.clone()));
    assert!(store.delete_repository(&rname("p", "r")).await.unwrap());
    assert_eq!(
        desc(store.get_repository(&rname("p", "r")).await.unwrap()),
        None
    );
    assert_eq!(tagged().await, None);
    store
        .create_repository(&rname("p", "r"), &repository("p", "r", "three"))
        .await
        .unwrap();
    assert_eq!(
        desc(store.get_repository(&rname("p", "r")).await.unwrap()),
        Some("three".into())
    );
    assert_eq!(tagged().await, None);
}

/// Tags of an image page in byte order after `last`.
pub(crate) async fn tag_pages_follow_lexical_order(s: &Stores) {
    let store = &*s.metadata;
    let app = image("p", "r", "app");
    let m = manifest("m");
    let tags = ["latest", "1.10", "1.9", "2", "1.0", "v1-rc", "V1"];
    for tag in tags {
        store.put_manifest(&app, &m, Some(tag)).await.unwrap();
    }
    store
        .put_manifest(&image("p", "r", "tool"), &m, Some("0-other"))
        .await
        .unwrap();
    let mut expected: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    expected.sort();
    assert_eq!(store.list_tags(&app, None, 100).await.unwrap(), expected);
    let seen = walk(2, async |last: Option<String>, _| {
        store.list_tags(&app, last.as_deref(), 2).await.unwrap()
    })
    .await;
    assert_eq!(seen, expected);
    assert_eq!(
        store.list_tags(&app, Some("1.9"), 2).await.unwrap(),
        ["2", "V1"]
    );
    assert!(store
        .list_tags(&app, Some("v1-rc"), 2)
        .await
        .unwrap()
        .is_empty());
}

/// The referrers of a subject are the image's manifests naming it, by
/// digest, with their sizes and referrer fields.
pub(crate) async fn referrers_are_the_manifests_naming_a_subject(s: &Stores) {
    let store = &*s.metadata;
    let app = image("p", "r", "app");
    let subject = manifest("subject");
    store
        .put_manifest(&app, &subject, Some("1.0"))
        .await
        .unwrap();
    let mut referrers = Vec::new();
    for i in 0..3 {
        let m = ManifestRecord {
            artifact_type: Some(format!("application/vnd.example.{i}")),
            subject: Some(subject.digest.clone()),
            annotations: Some(format!(r#"{{"n":"{i}"}}"#)),
            ..manifest(&format!("signature {i}"))
        };
        store.put_manifest(&app, &m, None).await.unwrap();
        referrers.push(m);
    }
    // Same subject digest, another image: not a referrer here.
    let elsewhere = ManifestRecord {
        subject: Some(subject.digest.clone()),
        ..manifest("elsewhere")
    };
    store
        .put_manifest(&image("p", "r", "tool"), &elsewhere, None)
        .await
        .unwrap();
    referrers.sort_by_key(|m| m.digest.to_string());
    let found = store.list_referrers(&app, &subject.digest).await.unwrap();
    assert_eq!(found.len(), 3);
    for (found, m) in found.iter().zip(&referrers) {
        assert_eq!(found.digest, m.digest);
        assert_eq!(found.media_type, m.media_type);
        assert_eq!(found.size, m.content.len() as u64);
        assert_eq!(found.artifact_type, m.artifact_type);
        assert_eq!(found.annotations, m.annotations);
    }
    assert!(store
        .list_referrers(&app, &Digest::of(b"nothing"))
        .await
        .unwrap()
        .is_empty());
}

/// The catalog lists `project/repository/image` of every image with a
/// manifest, in order, in pages; an image whose last manifest goes leaves it.
pub(crate) async fn catalog_pages_list_images_with_manifests(s: &Stores) {
    let store = &*s.metadata;
    let paths = [
        "a/r/x",
        "p/r/app",
        "p/r/app/sub",
        "p/r/tool",
        "p/r2/app",
        "q/r/app",
    ];
    for path in paths {
        let mut parts = path.splitn(3, '/');
        let (p, r, i) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        for n in 0..2 {
            let m = manifest(&format!("{path} {n}"));
            store.put_manifest(&image(p, r, i), &m, None).await.unwrap();
        }
    }
    // Blob links alone do not make an image.
    store
        .link_blob(&image("p", "r", "blobs-only"), &Digest::of(b"b"), 1)
        .await
        .unwrap();
    let seen = walk(4, async |last: Option<String>, _| {
        let page = store.catalog(last.as_deref(), 4).await.unwrap();
        page.into_iter().map(|e| e.path).collect()
    })
    .await;
    assert_eq!(seen, paths);
    let tool = image("p", "r", "tool");
    for n in 0..2 {
        let d = manifest(&format!("p/r/tool {n}")).digest;
        assert!(store.delete_manifest(&tool, &d).await.unwrap());
    }
    let left: Vec<String> = store
        .catalog(Some("p/r/app"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(left, ["p/r/app/sub", "p/r2/app", "q/r/app"]);
}

/// An upload session records its parts in order, each only if the session
/// still has the number of parts the writer saw (compare and swap).
pub(crate) async fn upload_sessions_record_parts_by_compare_and_swap(s: &Stores) {
    let store = &*s.metadata;
    assert_eq!(store.get_upload("u1").await.unwrap(), None);
    let session = upload("u1", 100);
    store.create_upload(&session).await.unwrap();
    assert_eq!(store.get_upload("u1").await.unwrap(), Some(session.clone()));
    assert!(store
        .advance_upload("u1", 0, "part-a", 10, 110)
        .await
        .unwrap());
    // A writer that saw no parts comes too late.
    assert!(!store
        .advance_upload("u1", 0, "part-x", 10, 111)
        .await
        .unwrap());
    assert!(store
        .advance_upload("u1", 1, "part-b", 25, 120)
        .await
        .unwrap());
    let got = store.get_upload("u1").await.unwrap().unwrap();
    assert_eq!(got.parts, 2);
    assert_eq!(got.part_names, ["part-a", "part-b"]);
    assert_eq!(got.size, 25);
    assert_eq!(got.update_time, 120);
    assert_eq!(got.create_time, 100);
    assert_eq!(got.image, session.image);
    // Part names are file names: never empty, never with blanks.
    for bad in ["", "a b", "a\tb"] {
        assert!(store.advance_upload("u1", 2, bad, 30, 130).await.is_err());
    }
    assert_eq!(store.get_upload("u1").await.unwrap().unwrap().parts, 2);
    assert!(!store.advance_upload("absent", 0, "p", 1, 1).await.unwrap());
    assert!(store.delete_upload("u1").await.unwrap());
    assert!(!store.delete_upload("u1").await.unwrap());
    assert!(!store
        .advance_upload("u1", 2, "part-c", 30, 130)
        .await
        .unwrap());
    assert_eq!(store.get_upload("u1").await.unwrap(), None);
}

/// Of requests racing to record the same part, exactly one wins, and the
/// session names the winner's file.
pub(crate) async fn racing_parts_let_one_writer_win(s: &Stores) {
    s.metadata.create_upload(&upload("u1", 100)).await.unwrap();
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = s.metadata.clone();
            tokio::spawn(async move {
                let name = format!("part-{i}");
                let won = store.advance_upload("u1", 0, &name, 10, 110).await.unwrap();
                (name, won)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (name, won) = racer.await.unwrap();
        if won {
            winners.push(name);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let got = s.metadata.get_upload("u1").await.unwrap().unwrap();
    assert_eq!(got.part_names, winners);
    assert_eq!(got.parts, 1);
}

/// Stale sessions are those whose last part came strictly before the bound.
pub(crate) async fn stale_uploads_are_those_untouched_since(s: &Stores) {
    let store = &*s.metadata;
    store.create_upload(&upload("old", 100)).await.unwrap();
    store.create_upload(&upload("edge", 200)).await.unwrap();
    store.create_upload(&upload("busy", 100)).await.unwrap();
    assert!(store.advance_upload("busy", 0, "p", 1, 300).await.unwrap());
    let mut stale: Vec<String> = store
        .stale_uploads(200)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    stale.sort();
    assert_eq!(stale, ["old"]);
    let mut stale: Vec<String> = store
        .stale_uploads(201)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    stale.sort();
    assert_eq!(stale, ["edge", "old"]);
}
