//! Contracts of [`PythonStore`]: index pages, file origins, uploaded files.

use entrepot_domain::Digest;

use crate::metadata::StoreError;
use crate::python::*;
use crate::Stores;

fn repo(repository: &str) -> entrepot_domain::RepositoryName {
    super::rname("p", repository)
}

fn file(filename: &str, version: &str) -> PythonFileRecord {
    PythonFileRecord {
        filename: filename.into(),
        name: "tiny-lib".into(),
        version: version.into(),
        sha256: "ab".repeat(32),
        size: 10,
        requires_python: Some(">=3.8".into()),
        metadata_sha256: None,
        yanked: false,
        yanked_reason: None,
        upload_time: "2026-01-01T00:00:00Z".into(),
    }
}

fn origin(name: &str, n: usize) -> RemoteFileRecord {
    RemoteFileRecord {
        name: name.into(),
        sha256: format!("{n:064x}"),
        filename: format!("{name}-{n}.tar.gz"),
        url: format!("https://files.example.org/{name}-{n}.tar.gz"),
        metadata_sha256: None,
    }
}

/// An index page is kept as fetched and replaced whole, per repository and
/// name.
pub(crate) async fn index_pages_are_replaced_whole(s: &Stores) {
    let store = &*s.python;
    let (r, other) = (repo("r"), repo("other"));
    assert_eq!(store.index_page(&r, "tiny").await.unwrap(), None);
    let first = CachedIndexPage {
        content_type: "application/vnd.pypi.simple.v1+json".into(),
        content: b"{\"files\": []}".to_vec(),
        fetched_at: 100,
    };
    store.put_index_page(&r, "tiny", &first).await.unwrap();
    let list = CachedIndexPage {
        content_type: "text/html".into(),
        content: b"<a>tiny</a>".to_vec(),
        fetched_at: 101,
    };
    store.put_index_page(&r, "", &list).await.unwrap();
    assert_eq!(store.index_page(&r, "tiny").await.unwrap(), Some(first));
    let second = CachedIndexPage {
        content_type: "text/html".into(),
        content: b"<html>\0binary-safe\xff</html>".to_vec(),
        fetched_at: 200,
    };
    store.put_index_page(&r, "tiny", &second).await.unwrap();
    assert_eq!(store.index_page(&r, "tiny").await.unwrap(), Some(second));
    assert_eq!(store.index_page(&r, "").await.unwrap(), Some(list));
    assert_eq!(store.index_page(&other, "tiny").await.unwrap(), None);
}

/// An uploaded file name is taken once per repository; yanking goes by
/// version and can be undone.
pub(crate) async fn uploaded_files_are_unique_by_name_and_yank_by_version(s: &Stores) {
    let store = &*s.python;
    let repo = repo("r");
    store
        .add_file(&repo, &file("tiny_lib-1.0.tar.gz", "1.0"))
        .await
        .unwrap();
    store
        .add_file(&repo, &file("tiny_lib-1.0-py3-none-any.whl", "1.0"))
        .await
        .unwrap();
    store
        .add_file(&repo, &file("tiny_lib-2.0.tar.gz", "2.0"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_file(&repo, &file("tiny_lib-1.0.tar.gz", "1.0"))
            .await,
        Err(StoreError::AlreadyExists)
    ));
    // The same name in another repository is another file.
    store
        .add_file(&self::repo("other"), &file("tiny_lib-1.0.tar.gz", "1.0"))
        .await
        .unwrap();
    assert_eq!(
        store.file(&repo, "tiny_lib-2.0.tar.gz").await.unwrap(),
        Some(file("tiny_lib-2.0.tar.gz", "2.0"))
    );
    assert_eq!(store.file(&repo, "absent.tar.gz").await.unwrap(), None);
    assert_eq!(
        store.project_names(&repo).await.unwrap(),
        vec!["tiny-lib".to_owned()]
    );
    let n = store
        .set_yanked(&repo, "tiny-lib", "1.0", true, Some("broken"))
        .await
        .unwrap();
    assert_eq!(n, 2);
    let files = store.files_of(&repo, "tiny-lib").await.unwrap();
    let yanked: Vec<_> = files
        .iter()
        .filter(|f| f.yanked)
        .map(|f| f.filename.as_str())
        .collect();
    assert_eq!(
        yanked,
        ["tiny_lib-1.0-py3-none-any.whl", "tiny_lib-1.0.tar.gz"]
    );
    assert_eq!(files[0].yanked_reason.as_deref(), Some("broken"));
    store
        .set_yanked(&repo, "tiny-lib", "1.0", false, None)
        .await
        .unwrap();
    assert!(store
        .files_of(&repo, "tiny-lib")
        .await
        .unwrap()
        .iter()
        .all(|f| !f.yanked && f.yanked_reason.is_none()));
    assert_eq!(
        store
            .set_yanked(&repo, "tiny-lib", "9.9", true, None)
            .await
            .unwrap(),
        0
    );
}

/// A metadata file entrepot extracted stays known when the page is fetched
/// again without one.
pub(crate) async fn extracted_metadata_survives_page_refreshes(s: &Stores) {
    let store = &*s.python;
    let repo = repo("r");
    let record = RemoteFileRecord {
        name: "tiny-lib".into(),
        sha256: "ab".repeat(32),
        filename: "tiny_lib-1.0-py3-none-any.whl".into(),
        url: "https://files.example.org/tiny_lib-1.0-py3-none-any.whl".into(),
        metadata_sha256: None,
    };
    store
        .remember_remote_files(&repo, std::slice::from_ref(&record))
        .await
        .unwrap();
    assert!(store
        .remote_files_with_metadata(&repo, "tiny-lib")
        .await
        .unwrap()
        .is_empty());
    store
        .set_remote_metadata(&repo, &record.sha256, &record.filename, &"cd".repeat(32))
        .await
        .unwrap();
    // The page is fetched again; the upstream still has no metadata file.
    store
        .remember_remote_files(&repo, std::slice::from_ref(&record))
        .await
        .unwrap();
    let known = store.remote_files_of(&repo, "tiny-lib").await.unwrap();
    assert_eq!(known[0].metadata_sha256, Some("cd".repeat(32)));
    let with = store
        .remote_files_with_metadata(&repo, "tiny-lib")
        .await
        .unwrap();
    assert_eq!(with.len(), 1);
    let one = store
        .remote_file(&repo, &record.sha256, &record.filename)
        .await
        .unwrap();
    assert_eq!(one.unwrap().url, record.url);
    assert!(store
        .remote_file(&repo, &record.sha256, "other.whl")
        .await
        .unwrap()
        .is_none());
}

/// A file's origin read after a change is the changed one, however often
/// it was read before.
pub(crate) async fn remembered_file_origins_are_never_served_stale(s: &Stores) {
    let store = &*s.python;
    let repo = repo("r");
    let mut record = RemoteFileRecord {
        name: "tiny-lib".into(),
        sha256: "ab".repeat(32),
        filename: "tiny_lib-1.0-py3-none-any.whl".into(),
        url: "https://files.example.org/a/tiny_lib-1.0-py3-none-any.whl".into(),
        metadata_sha256: None,
    };
    store
        .remember_remote_files(&repo, std::slice::from_ref(&record))
        .await
        .unwrap();
    let lookup = || store.remote_file(&repo, &record.sha256, &record.filename);
    // Read twice: a store with a read cache answers the second from it.
    assert_eq!(lookup().await.unwrap().unwrap().url, record.url);
    assert_eq!(lookup().await.unwrap().unwrap().url, record.url);
    store
        .set_remote_metadata(&repo, &record.sha256, &record.filename, &"cd".repeat(32))
        .await
        .unwrap();
    assert_eq!(
        lookup().await.unwrap().unwrap().metadata_sha256,
        Some("cd".repeat(32))
    );
    // The upstream moved the file.
    let moved = "https://files.example.org/b/tiny_lib-1.0-py3-none-any.whl";
    record.url = moved.into();
    store
        .remember_remote_files(&repo, std::slice::from_ref(&record))
        .await
        .unwrap();
    assert_eq!(
        store
            .remote_file(&repo, &record.sha256, &record.filename)
            .await
            .unwrap()
            .unwrap()
            .url,
        moved
    );
}

/// A page of many files is remembered whole, in one step; a file listed
/// twice is remembered as last listed.
pub(crate) async fn large_pages_of_file_origins_are_remembered_whole(s: &Stores) {
    let store = &*s.python;
    let repo = repo("r");
    let mut files: Vec<RemoteFileRecord> = (0..1203).map(|n| origin("big", n)).collect();
    let moved = |n| RemoteFileRecord {
        url: format!("https://mirror.example.org/big-{n}.tar.gz"),
        ..origin("big", n)
    };
    // Listed twice close together, and far apart.
    files.insert(8, moved(7));
    files.push(moved(20));
    files.push(origin("small", 1));
    store.remember_remote_files(&repo, &files).await.unwrap();
    let known = store.remote_files_of(&repo, "big").await.unwrap();
    assert_eq!(known.len(), 1203);
    assert!(known.contains(&moved(7)));
    assert!(known.contains(&moved(20)));
    assert_eq!(
        store.remote_files_of(&repo, "small").await.unwrap().len(),
        1
    );
    assert!(store
        .remote_files_of(&self::repo("other"), "big")
        .await
        .unwrap()
        .is_empty());
    store.remember_remote_files(&repo, &[]).await.unwrap();
    assert_eq!(
        store.remote_files_of(&repo, "big").await.unwrap().len(),
        1203
    );
}

/// A remote repository serves a file only once its blob is linked to that
/// repository; the sizes of a page's linked files come from those links.
pub(crate) async fn remote_blobs_are_linked_to_their_repository(s: &Stores) {
    let store = &*s.python;
    let (r, other) = (repo("r"), repo("other"));
    let files: Vec<RemoteFileRecord> = (0..3).map(|n| origin("tiny", n)).collect();
    store.remember_remote_files(&r, &files).await.unwrap();
    let digest =
        |f: &RemoteFileRecord| -> Digest { format!("sha256:{}", f.sha256).parse().unwrap() };
    assert_eq!(
        store
            .remote_blob_size(&r, &digest(&files[0]))
            .await
            .unwrap(),
        None
    );
    store
        .link_remote_blob(&r, &digest(&files[0]), 100)
        .await
        .unwrap();
    store
        .link_remote_blob(&r, &digest(&files[0]), 100)
        .await
        .unwrap();
    store
        .link_remote_blob(&r, &digest(&files[2]), 300)
        .await
        .unwrap();
    assert_eq!(
        store
            .remote_blob_size(&r, &digest(&files[0]))
            .await
            .unwrap(),
        Some(100)
    );
    assert_eq!(
        store
            .remote_blob_size(&other, &digest(&files[0]))
            .await
            .unwrap(),
        None
    );
    let sizes = store.linked_file_sizes(&r, "tiny").await.unwrap();
    assert_eq!(sizes.len(), 2);
    assert_eq!(sizes.get(&files[0].sha256), Some(&100));
    assert_eq!(sizes.get(&files[2].sha256), Some(&300));
    assert!(store
        .linked_file_sizes(&r, "absent")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .linked_file_sizes(&other, "tiny")
        .await
        .unwrap()
        .is_empty());
    // The bytes are known to the blob records, wherever they were linked.
    assert_eq!(
        s.metadata.blob_size(&digest(&files[2])).await.unwrap(),
        Some(300)
    );
}
