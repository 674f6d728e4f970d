//! The inventory as users see it: images pushed with skopeo and files
//! uploaded with twine, listed back through the CLI in every `--format`
//! (json, yaml, aligned table), deleted with and without `--delete-tags`,
//! and repository sizes that add up to the bytes pushed.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::{layout_blob, make_dist, twine_upload, Entrepot, LayerKind, OciLayout};

/// Parse YAML with an independent parser (Python's PyYAML) into JSON.
fn yaml_to_json(text: &str) -> Value {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with PyYAML is needed to parse YAML (the venv of .ci/requirements.txt)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not YAML (or PyYAML missing: apt-get install -y python3-yaml): {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Run the CLI as the admin in all three formats; the JSON and the YAML
/// must hold the same data; returns (json, table).
fn all_formats(server: &Entrepot, args: &[&str]) -> (Value, String) {
    let with = |format: &str| {
        let mut a = args.to_vec();
        a.push(format);
        server.cli_ok(&a)
    };
    let json: Value = serde_json::from_str(&with("--format=json")).unwrap();
    let yaml = yaml_to_json(&with("--format=yaml"));
    assert_eq!(yaml, json, "yaml and json of {args:?} differ");
    let table = with("--format=table");
    assert_eq!(
        table,
        server.cli_ok(args),
        "table is not the default of {args:?}"
    );
    (json, table)
}

/// The table's rows as cells, cut at the columns' header offsets; checks
/// that every cell starts where its header does (aligned columns) and that
/// the headers are `headers`.
fn table_rows(table: &str, headers: &[&str]) -> Vec<Vec<String>> {
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let offsets: Vec<usize> = headers
        .iter()
        .map(|h| {
            header
                .find(h)
                .unwrap_or_else(|| panic!("no {h} in {header:?}"))
        })
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{header}");
    let mut rows = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let mut cells = Vec::new();
        for (i, &start) in offsets.iter().enumerate() {
            let end = offsets
                .get(i + 1)
                .copied()
                .unwrap_or(line.len())
                .min(line.len());
            let cell = line.get(start.min(line.len())..end).unwrap_or("");
            if start > 0 && start < line.len() {
                assert_eq!(
                    &line[start - 1..start],
                    " ",
                    "column {} of {line:?} does not start at its header",
                    headers[i]
                );
            }
            if i + 1 < offsets.len() && !cell.trim().is_empty() {
                assert!(
                    !cell.starts_with(' '),
                    "column {} of {line:?} does not start at its header",
                    headers[i]
                );
            }
            cells.push(cell.trim().to_owned());
        }
        rows.push(cells);
    }
    rows
}

/// The size Artifact Registry shows for an image: manifest, config, layers.
fn image_size(layout: &Path, digest: &str) -> u64 {
    let bytes = std::fs::read(layout_blob(layout, digest)).unwrap();
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    let blobs: u64 = std::iter::once(&m["config"])
        .chain(m["layers"].as_array().unwrap())
        .map(|d| d["size"].as_u64().unwrap())
        .sum();
    bytes.len() as u64 + blobs
}

/// Config and layer digests with their sizes.
fn blobs_of(layout: &Path, digest: &str) -> Vec<(String, u64)> {
    let m: Value =
        serde_json::from_slice(&std::fs::read(layout_blob(layout, digest)).unwrap()).unwrap();
    std::iter::once(&m["config"])
        .chain(m["layers"].as_array().unwrap())
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_owned(),
                d["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn manifest_len(layout: &Path, digest: &str) -> u64 {
    std::fs::read(layout_blob(layout, digest)).unwrap().len() as u64
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn docker_images_and_tags_list_what_skopeo_pushed_and_delete_as_gcloud_does() {
    let server = Entrepot::builder()
        .env("ENTREPOT_GC_INTERVAL_SECS", "0")
        .start();
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let tagged = layout.add_image(
        &[(64 * 1024, LayerKind::Tar), (20 * 1024, LayerKind::Tar)],
        "amd64",
    );
    layout.tag(&tagged, "v1");
    let second = layout.add_image(&[(30 * 1024, LayerKind::Tar)], "amd64");
    layout.tag(&second, "v2");
    let orphan = layout.add_image(&[(10 * 1024, LayerKind::Tar)], "amd64");
    layout.tag(&orphan, "tmp");
    let tool = layout.add_image(&[(5 * 1024, LayerKind::Tar)], "arm64");
    layout.tag(&tool, "1.0");
    // One manifest under two tags, one under one, one left untagged once
    // its tag moved on, and a second image name with a slash.
    server.skopeo_push(&layout.dir, "v1", "default/images/app:v1", false);
    server.skopeo_push(&layout.dir, "v1", "default/images/app:latest", false);
    server.skopeo_push(&layout.dir, "v2", "default/images/app:v2", false);
    server.skopeo_push(&layout.dir, "tmp", "default/images/app:tmp", false);
    server.skopeo_push(&layout.dir, "v2", "default/images/app:tmp", false);
    server.skopeo_push(&layout.dir, "1.0", "default/images/team/tool:1.0", false);

    let expected: BTreeMap<(String, String), (Vec<&str>, u64)> = [
        ("app", &tagged.digest, vec!["latest", "v1"]),
        ("app", &second.digest, vec!["tmp", "v2"]),
        ("app", &orphan.digest, vec![]),
        ("team/tool", &tool.digest, vec!["1.0"]),
    ]
    .into_iter()
    .map(|(image, digest, tags)| {
        (
            (image.to_owned(), digest.clone()),
            (tags, image_size(&layout.dir, digest)),
        )
    })
    .collect();

    let (json, table) = all_formats(
        &server,
        &[
            "artifacts",
            "docker",
            "images",
            "list",
            "images",
            "--include-tags",
        ],
    );
    let listed: BTreeMap<(String, String), (Vec<&str>, u64)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let tags = i["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            (
                (
                    i["image"].as_str().unwrap().to_owned(),
                    i["digest"].as_str().unwrap().to_owned(),
                ),
                (tags, i["imageSizeBytes"].as_str().unwrap().parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(listed, expected, "{json:#}");
    for image in json.as_array().unwrap() {
        assert!(
            image["uploadTime"].as_str().unwrap().ends_with('Z'),
            "{image}"
        );
        let name = image["name"].as_str().unwrap();
        assert!(
            name.starts_with("projects/default/repositories/images/dockerImages/"),
            "{name}"
        );
    }
    assert!(json.to_string().contains("team%2Ftool@"), "{json}");

    let rows = table_rows(&table, &["IMAGE", "DIGEST", "TAGS", "SIZE", "UPLOAD_TIME"]);
    let shown: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    let wanted: BTreeSet<(String, String, String)> = expected
        .iter()
        .map(|((image, digest), (tags, _))| (image.clone(), digest.clone(), tags.join(",")))
        .collect();
    assert_eq!(shown, wanted, "{table}");
    assert!(rows.iter().all(|r| r[3].ends_with("KiB")), "{table}");
    // Without --include-tags, no TAGS column.
    let plain = server.cli_ok(&["artifacts", "docker", "images", "list", "images"]);
    assert!(!plain.lines().next().unwrap().contains("TAGS"), "{plain}");

    let (tags, table) = all_formats(
        &server,
        &["artifacts", "docker", "tags", "list", "images/app"],
    );
    let tag_digests: Vec<(String, String)> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap().to_owned(),
                t["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tag_digests,
        vec![
            ("latest".to_owned(), tagged.digest.clone()),
            ("tmp".to_owned(), second.digest.clone()),
            ("v1".to_owned(), tagged.digest.clone()),
            ("v2".to_owned(), second.digest.clone()),
        ]
    );
    assert_eq!(
        tags[0]["version"],
        format!(
            "projects/default/repositories/images/packages/app/versions/{}",
            tagged.digest
        )
    );
    let rows = table_rows(&table, &["TAG", "IMAGE", "DIGEST", "UPDATE_TIME"]);
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(
        rows[0][..3],
        ["latest", "images/app", tagged.digest.as_str()]
    );

    // Packages and versions of a Docker repository: image names, manifests.
    let (packages, _) = all_formats(
        &server,
        &["artifacts", "packages", "list", "--repository=images"],
    );
    let names: Vec<&str> = packages
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "team/tool"]);
    let (versions, _) = all_formats(
        &server,
        &[
            "artifacts",
            "versions",
            "list",
            "--repository=images",
            "--package=team/tool",
        ],
    );
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");
    assert_eq!(versions[0]["metadata"]["tags"], json!(["1.0"]));

    // The repository's size: every blob it links once, and its manifests.
    let mut blobs: BTreeMap<String, u64> = BTreeMap::new();
    let mut manifests = 0;
    for image in [&tagged, &second, &orphan, &tool] {
        blobs.extend(blobs_of(&layout.dir, &image.digest));
        manifests += manifest_len(&layout.dir, &image.digest);
    }
    let repo_bytes = blobs.values().sum::<u64>() + manifests;
    let (described, table) = all_formats(&server, &["repositories", "describe", "images"]);
    assert_eq!(
        described["sizeBytes"],
        repo_bytes.to_string(),
        "{described}"
    );
    // Nothing else holds bytes here: the store's total is this repository's.
    assert_eq!(
        described["storeSizeBytes"],
        repo_bytes.to_string(),
        "{described}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("sizeBytes:") && l.ends_with(&repo_bytes.to_string())),
        "{table}"
    );
    let (listed, table) = all_formats(&server, &["repositories", "list"]);
    let images = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "projects/default/repositories/images")
        .unwrap();
    assert_eq!(images["sizeBytes"], repo_bytes.to_string());
    let rows = table_rows(
        &table,
        &["REPOSITORY", "FORMAT", "MODE", "SIZE", "DESCRIPTION"],
    );
    let row = rows.iter().find(|r| r[0] == "images").unwrap();
    assert_eq!(row[1], "DOCKER");
    assert!(row[3].ends_with("KiB"), "{table}");
    assert!(table.contains("\nStore total"), "{table}");

    // Deleting: never without confirmation, never a tagged image without
    // --delete-tags, an untagged one by digest, a tagged one with its tags.
    let untagged = format!("images/app@{}", orphan.digest);
    let out = server.cli(&["artifacts", "docker", "images", "delete", &untagged]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("pass --quiet"), "{}", stderr(&out));
    server.cli_ok(&[
        "artifacts",
        "docker",
        "images",
        "delete",
        &untagged,
        "--quiet",
    ]);

    let by_digest = format!("images/app@{}", tagged.digest);
    let out = server.cli(&["artifacts", "docker", "images", "delete", &by_digest, "-q"]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("is tagged (latest, v1)") && message.contains("--delete-tags"),
        "{message}"
    );
    let out = server.cli(&[
        "artifacts",
        "docker",
        "images",
        "delete",
        "images/app:v1",
        "-q",
    ]);
    assert!(!out.status.success(), "a tag of a tagged image was deleted");
    let out = server.cli(&[
        "artifacts",
        "docker",
        "images",
        "delete",
        "images/app:v1",
        "--delete-tags",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Deleted tags [latest, v1]"),
        "{}",
        stderr(&out)
    );

    let left: Value = serde_json::from_str(&server.cli_ok(&[
        "artifacts",
        "docker",
        "images",
        "list",
        "images",
        "--format=json",
    ]))
    .unwrap();
    let digests: BTreeSet<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        BTreeSet::from([second.digest.as_str(), tool.digest.as_str()])
    );
    assert!(!server
        .pull("default/images/app:v1", Some(&server.creds()))
        .status
        .success());
    assert!(server
        .pull("default/images/app:v2", Some(&server.creds()))
        .status
        .success());
}

#[test]
fn python_packages_and_versions_list_what_twine_uploaded() {
    let work = tempfile::tempdir().unwrap();
    let dists = work.path().join("dists");
    let wheel_10 = make_dist(&dists, "wheel", "tiny-lib", "1.0", &[]);
    let sdist_10 = make_dist(&dists, "sdist", "tiny-lib", "1.0", &[]);
    let wheel_11 = make_dist(&dists, "wheel", "tiny-lib", "1.1", &[]);
    let other = make_dist(&dists, "wheel", "other-pkg", "0.1", &[]);
    let server = Entrepot::start();
    server.create_python("pyhosted", None, json!({}));
    let legacy = format!("{}/pypi/default/pyhosted/legacy/", server.base);
    let out = twine_upload(
        &legacy,
        "__token__",
        &server.admin_token,
        &[&wheel_10, &sdist_10, &wheel_11, &other],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    server.cli_ok(&[
        "python",
        "yank",
        "tiny-lib",
        "1.0",
        "--repository=pyhosted",
        "--reason=broken",
    ]);
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();

    let (packages, table) = all_formats(
        &server,
        &["artifacts", "packages", "list", "--repository=pyhosted"],
    );
    let summary: Vec<(String, u64, u64, String)> = packages
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["displayName"].as_str().unwrap().to_owned(),
                p["versionCount"].as_u64().unwrap(),
                p["fileCount"].as_u64().unwrap(),
                p["sizeBytes"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("other-pkg".to_owned(), 1, 1, size(&other).to_string()),
            (
                "tiny-lib".to_owned(),
                2,
                3,
                (size(&wheel_10) + size(&sdist_10) + size(&wheel_11)).to_string()
            ),
        ]
    );
    let rows = table_rows(
        &table,
        &[
            "PACKAGE",
            "VERSIONS",
            "FILES",
            "SIZE",
            "CREATE_TIME",
            "UPDATE_TIME",
        ],
    );
    assert_eq!(rows[1][..3], ["tiny-lib", "2", "3"], "{table}");

    let (versions, table) = all_formats(
        &server,
        &[
            "artifacts",
            "versions",
            "list",
            "--package=Tiny_Lib",
            "--repository=pyhosted",
        ],
    );
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0]["version"], "1.0");
    assert_eq!(versions[0]["metadata"]["yanked"], true);
    assert_eq!(versions[1]["metadata"]["yanked"], false);
    let files: BTreeMap<String, (String, bool)> = versions[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap().to_owned(),
                (
                    f["sizeBytes"].as_str().unwrap().to_owned(),
                    f["yanked"].as_bool().unwrap(),
                ),
            )
        })
        .collect();
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(
        files,
        BTreeMap::from([
            (name(&wheel_10), (size(&wheel_10).to_string(), true)),
            (name(&sdist_10), (size(&sdist_10).to_string(), true)),
        ])
    );
    assert_eq!(versions[0]["files"][0]["yankedReason"], "broken");
    assert_eq!(
        versions[1]["metadata"]["sizeBytes"],
        size(&wheel_11).to_string()
    );
    assert!(versions[1]["createTime"].as_str().unwrap().ends_with('Z'));
    let rows = table_rows(
        &table,
        &["VERSION", "TAGS", "FILES", "SIZE", "YANKED", "CREATE_TIME"],
    );
    assert_eq!(rows[0][0], "1.0");
    assert!(rows[0][2].contains(&name(&sdist_10)), "{table}");
    assert_eq!(rows[0][4], "yes");
    assert_eq!(rows[1][4], "no");

    // The repository's size is its files'.
    let described: Value = serde_json::from_str(&server.cli_ok(&[
        "repositories",
        "describe",
        "pyhosted",
        "--format=json",
    ]))
    .unwrap();
    let total = size(&wheel_10) + size(&sdist_10) + size(&wheel_11) + size(&other);
    assert_eq!(described["sizeBytes"], total.to_string());

    // A Docker listing of a Python repository says what to use instead.
    let out = server.cli(&["artifacts", "docker", "images", "list", "pyhosted"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is a python repository") && stderr(&out).contains("packages list"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn reading_needs_the_read_permission_and_deleting_the_delete_permission() {
    let server = Entrepot::builder()
        .env("ENTREPOT_GC_INTERVAL_SECS", "0")
        .start();
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let image = layout.add_image(&[(4096, LayerKind::Tar)], "amd64");
    layout.tag(&image, "v1");
    server.skopeo_push(&layout.dir, "v1", "default/images/app:v1", false);

    let stranger = server.user_with_token("stranger@example.com", false);
    let out = server.cli_as(
        Some(&stranger),
        &["artifacts", "docker", "images", "list", "images"],
    );
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("403")
            && message.contains(
                "user:stranger@example.com lacks artifactregistry.repositories.downloadArtifacts on projects/default/repositories/images"
            ),
        "{message}"
    );
    // The same refusal for a repository that does not exist: nothing leaks.
    let out = server.cli_as(
        Some(&stranger),
        &["artifacts", "docker", "images", "list", "absent"],
    );
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    let response = server
        .bare_request(
            reqwest::Method::GET,
            "/v1/projects/default/locations/us/repositories/images/dockerImages",
        )
        .bearer_auth(&stranger)
        .send()
        .unwrap();
    support::assert_api_error(response, 403, "PERMISSION_DENIED");

    let reader = server.user_with_token("reader@example.com", false);
    server.grant(
        "projects/default/repositories/images",
        "user:reader@example.com",
        "roles/artifactregistry.reader",
    );
    let listed = server.cli_with_input(
        Some(&reader),
        &[
            "artifacts",
            "docker",
            "images",
            "list",
            "images",
            "--format=json",
        ],
        None,
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    let out = server.cli_as(
        Some(&reader),
        &[
            "artifacts",
            "docker",
            "images",
            "delete",
            "images/app:v1",
            "--delete-tags",
            "-q",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("lacks artifactregistry.repositories.deleteArtifacts"),
        "{}",
        stderr(&out)
    );
    // A reader sees sizes but not the store's total, which would tell
    // whether another tenant already stored a blob.
    let out = server.cli_as(
        Some(&reader),
        &["repositories", "describe", "images", "--format=json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let described: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(described["sizeBytes"].is_string(), "{described}");
    assert!(described.get("storeSizeBytes").is_none(), "{described}");
}

#[test]
fn an_update_that_changes_nothing_is_refused_and_deletions_ask_first() {
    let server = Entrepot::start();
    server.create_repository("images");
    let out = server.cli(&["repositories", "update", "images"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("nothing to update in repository [images]"),
        "{}",
        stderr(&out)
    );
    // No terminal and no --quiet: refused, saying what to pass.
    let out = server.cli(&["repositories", "delete", "images"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pass --quiet (-q)"),
        "{}",
        stderr(&out)
    );
    server.cli_ok(&["repositories", "describe", "images"]);
    server.cli_ok(&["repositories", "delete", "images", "--quiet"]);
    let out = server.cli(&["repositories", "describe", "images"]);
    assert!(!out.status.success());
}
