//! When an image or a Python file was last pulled, as the inventory shows
//! it: a manifest pulled with skopeo from a hosted repository, and one
//! pulled through a remote repository from a docker-registry upstream, carry
//! `lastPullTime` in the admin API's listings (images, packages, versions,
//! tags) and a `LAST_PULL_TIME` in the CLI's tables; so do a file pip
//! downloaded from a hosted Python repository and one uv downloaded through
//! a remote one from pypiserver (whose cache the listings show), and what a
//! virtual repository served from its members, on the member. Content
//! nobody pulled has none, and pushing or uploading is not pulling.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::*;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `lastPullTime` of a listing item, if it has one. Written as
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (checked), so the text orders as the time.
fn pulled_ms(item: &Value) -> Option<String> {
    let text = item.get("lastPullTime")?.as_str()?.to_owned();
    let shape = text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[10] == b'T'
        && text.as_bytes()[19] == b'.';
    assert!(
        shape,
        "lastPullTime {text:?} is not RFC 3339 with milliseconds"
    );
    Some(text)
}

fn at(ms: i64) -> String {
    entrepot_domain::clock::rfc3339_ms(ms)
}

fn items<'a>(answer: &'a Value, field: &str) -> &'a Vec<Value> {
    answer[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {answer}"))
}

fn by_digest<'a>(images: &'a [Value], digest: &str) -> &'a Value {
    images
        .iter()
        .find(|i| i["digest"] == digest)
        .unwrap_or_else(|| panic!("no {digest} in {images:?}"))
}

#[test]
fn hosted_pulls_are_recorded_and_listed_with_their_time() {
    require_tool("skopeo", "skopeo");
    let server = Entrepot::start();
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("src");
    let pulled = image_layout(&layout, "1.0", &[40_000]);
    server.skopeo_push(&layout, "1.0", "default/images/app:1.0", false);
    let other_layout = work.path().join("other");
    let unpulled = image_layout(&other_layout, "2.0", &[20_000]);
    server.skopeo_push(&other_layout, "2.0", "default/images/app:2.0", false);

    let base = "/v1/projects/default/repositories/images";
    // Pushing is not pulling.
    let listed = server.get_json(&format!("{base}/dockerImages"));
    for image in items(&listed, "dockerImages") {
        assert_eq!(
            pulled_ms(image),
            None,
            "a pushed image shows a pull: {image}"
        );
    }

    let before = at(now_ms() - 1_000);
    server.skopeo_pull(
        "default/images/app:1.0",
        &work.path().join("dest"),
        "1.0",
        false,
    );
    let after = at(now_ms() + 1_000);

    let listed = server.get_json(&format!("{base}/dockerImages"));
    let images = items(&listed, "dockerImages");
    let when = pulled_ms(by_digest(images, &pulled)).expect("the pulled image has no lastPullTime");
    assert!(
        before <= when && when <= after,
        "lastPullTime {when} is not between {before} and {after}"
    );
    assert_eq!(pulled_ms(by_digest(images, &unpulled)), None);

    let packages = server.get_json(&format!("{base}/packages"));
    assert_eq!(
        pulled_ms(&items(&packages, "packages")[0]),
        Some(when.clone())
    );
    let versions = server.get_json(&format!("{base}/packages/app/versions"));
    let versions = items(&versions, "versions");
    let version = versions
        .iter()
        .find(|v| v["name"].as_str().unwrap().ends_with(&pulled))
        .unwrap();
    assert_eq!(pulled_ms(version), Some(when.clone()));
    let tags = server.get_json(&format!("{base}/packages/app/tags"));
    let tags = items(&tags, "tags");
    assert_eq!(pulled_ms(&tags[0]), Some(when.clone()), "{tags:?}");
    assert_eq!(pulled_ms(&tags[1]), None, "{tags:?}");

    // The CLI's table has the column, filled for the pulled image only.
    let table = server.cli_ok(&["artifacts", "docker", "images", "list", "images"]);
    let header = table.lines().next().unwrap();
    let column = header.find("LAST_PULL_TIME").expect(header);
    let shown = listed["dockerImages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["digest"] == pulled)
        .unwrap()["lastPullTime"]
        .as_str()
        .unwrap()
        .to_owned();
    for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cell = line.get(column..).unwrap_or("").trim();
        if line.contains(&pulled) {
            assert_eq!(cell, shown, "{table}");
        } else if line.contains(&unpulled) {
            assert_eq!(cell, "", "{table}");
        }
    }

    // Deleting the manifest takes its pull record: pushed again, it is unpulled.
    server.cli_ok(&[
        "artifacts",
        "docker",
        "images",
        "delete",
        &format!("images/app@{pulled}"),
        "--delete-tags",
        "--quiet",
    ]);
    server.skopeo_push(&layout, "1.0", "default/images/app:1.0", false);
    let listed = server.get_json(&format!("{base}/dockerImages"));
    assert_eq!(
        pulled_ms(by_digest(items(&listed, "dockerImages"), &pulled)),
        None
    );
}

#[test]
fn a_remote_repository_lists_what_it_cached_with_its_last_pull() {
    require_tool("skopeo", "skopeo");
    let work = tempfile::tempdir().unwrap();
    let upstream = Distribution::start();
    let layout = work.path().join("v1");
    let digest = image_layout(&layout, "1", &[30_000]);
    upstream.push(&layout, "1", "team/app:1", None);
    let server = Entrepot::start();
    server.allow_upstream(&upstream.addr);
    server.create_remote_docker("up", &format!("http://{}", upstream.addr), json!({}));

    let base = "/v1/projects/default/repositories/up";
    let empty = server.get_json(&format!("{base}/dockerImages"));
    assert!(
        empty["dockerImages"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(true),
        "{empty}"
    );

    let before = at(now_ms() - 1_000);
    server.skopeo_pull("default/up/team/app:1", &work.path().join("p"), "1", false);
    let listed = server.get_json(&format!("{base}/dockerImages"));
    let image = by_digest(items(&listed, "dockerImages"), &digest);
    assert_eq!(image["image"], "team/app");
    assert_eq!(image["tags"], json!(["1"]));
    assert!(
        image["imageSizeBytes"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 30_000
    );
    let when = pulled_ms(image).expect("the cached image has no lastPullTime");
    assert!(when >= before, "{image}");

    let table = server.cli_ok(&["artifacts", "docker", "tags", "list", "up/team/app"]);
    assert!(
        table.lines().next().unwrap().contains("LAST_PULL_TIME"),
        "{table}"
    );
    assert!(
        table.contains(image["lastPullTime"].as_str().unwrap()),
        "{table}"
    );
}

/// A CLI listing in JSON, and the same listing in YAML (as text).
fn cli_json_and_yaml(server: &Entrepot, args: &[&str]) -> (Vec<Value>, String) {
    let with = |format: &str| {
        let mut a = args.to_vec();
        a.push(format);
        server.cli_ok(&a)
    };
    let json: Value = serde_json::from_str(&with("--format=json")).unwrap();
    (json.as_array().unwrap().clone(), with("--format=yaml"))
}

/// The `LAST_PULL_TIME` cell (the last column) of the table row whose
/// first cell is `key`.
fn last_pull_cell(table: &str, key: &str) -> String {
    let header = table.lines().next().unwrap();
    let column = header.find("LAST_PULL_TIME").expect(header);
    let line = table
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no row {key} in {table}"));
    line.get(column..).unwrap_or("").trim().to_owned()
}

fn file_named<'a>(version: &'a Value, filename: &str) -> &'a Value {
    version["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == filename)
        .unwrap_or_else(|| panic!("no {filename} in {version}"))
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

#[test]
fn python_downloads_from_hosted_and_remote_repositories_are_listed_with_their_time() {
    let work = tempfile::tempdir().unwrap();
    let dists = work.path().join("dists");
    let wheel = make_dist(&dists, "wheel", "tiny-lib", "1.0", &[]);
    let sdist = make_dist(&dists, "sdist", "tiny-lib", "1.0", &[]);
    let newer = make_dist(&dists, "wheel", "tiny-lib", "1.1", &[]);
    let public = work.path().join("public");
    let remote_wheel = make_dist(&public, "wheel", "remote-lib", "2.0", &[]);
    let upstream = PyPiServer::start(&public);
    let server = Entrepot::start();
    server.create_python("pyhosted", None, json!({}));
    server.create_python("pyremote", Some(&upstream.index_url()), json!({}));
    let legacy = format!("{}/pypi/default/pyhosted/legacy/", server.base);
    let out = twine_upload(
        &legacy,
        "__token__",
        &server.admin_token,
        &[&wheel, &sdist, &newer],
    );
    assert!(out.status.success(), "twine upload: {}", text(&out));

    // Uploading is not downloading.
    let packages = ["artifacts", "packages", "list", "--repository=pyhosted"];
    let (listed, _) = cli_json_and_yaml(&server, &packages);
    assert_eq!(pulled_ms(&listed[0]), None, "{listed:?}");

    let before = at(now_ms() - 1_000);
    let out = pip_install(
        &server.python_index("pyhosted"),
        &work.path().join("pip"),
        &["tiny-lib==1.0"],
    );
    assert!(out.status.success(), "pip install: {}", text(&out));
    let after = at(now_ms() + 1_000);

    // The wheel pip downloaded carries the time; the sdist and 1.1 do not.
    let versions = [
        "artifacts",
        "versions",
        "list",
        "--package=tiny-lib",
        "--repository=pyhosted",
    ];
    let (listed, yaml) = cli_json_and_yaml(&server, &versions);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let when = pulled_ms(file_named(&listed[0], &file_name(&wheel)))
        .expect("the downloaded wheel has no lastPullTime");
    assert!(
        before <= when && when <= after,
        "lastPullTime {when} is not between {before} and {after}"
    );
    assert_eq!(pulled_ms(file_named(&listed[0], &file_name(&sdist))), None);
    assert_eq!(pulled_ms(&listed[0]), Some(when.clone()), "{}", listed[0]);
    assert_eq!(pulled_ms(&listed[1]), None, "{}", listed[1]);
    assert!(
        yaml.contains("lastPullTime") && yaml.contains(&when),
        "{yaml}"
    );
    let table = server.cli_ok(&versions);
    assert_eq!(last_pull_cell(&table, "1.0"), when, "{table}");
    assert_eq!(last_pull_cell(&table, "1.1"), "", "{table}");
    let (listed, yaml) = cli_json_and_yaml(&server, &packages);
    assert_eq!(pulled_ms(&listed[0]), Some(when.clone()), "{listed:?}");
    assert!(yaml.contains(&when), "{yaml}");
    let table = server.cli_ok(&packages);
    assert_eq!(last_pull_cell(&table, "tiny-lib"), when, "{table}");

    // A remote repository lists what its cache holds: nothing yet, then
    // the file uv downloaded through it, with its size, digest, when it was
    // cached and when it was last downloaded.
    let remote_packages = ["artifacts", "packages", "list", "--repository=pyremote"];
    let (listed, _) = cli_json_and_yaml(&server, &remote_packages);
    assert!(listed.is_empty(), "{listed:?}");
    let before = at(now_ms() - 1_000);
    let out = uv_install(
        &server.python_index("pyremote"),
        &work.path().join("uv"),
        &["remote-lib"],
    );
    assert!(out.status.success(), "uv install: {}", text(&out));
    let after = at(now_ms() + 1_000);
    let size = std::fs::metadata(&remote_wheel).unwrap().len();
    let (listed, yaml) = cli_json_and_yaml(&server, &remote_packages);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let package = &listed[0];
    assert_eq!(package["displayName"], "remote-lib");
    assert_eq!(
        (&package["versionCount"], &package["fileCount"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(package["sizeBytes"], size.to_string());
    assert!(package["createTime"].as_str().unwrap().ends_with('Z'));
    let when = pulled_ms(package).expect("the cached package has no lastPullTime");
    assert!(before <= when && when <= after, "{package}");
    assert!(yaml.contains(&when), "{yaml}");
    let table = server.cli_ok(&remote_packages);
    assert_eq!(last_pull_cell(&table, "remote-lib"), when, "{table}");

    let remote_versions = [
        "artifacts",
        "versions",
        "list",
        "--package=Remote_Lib",
        "--repository=pyremote",
    ];
    let (listed, yaml) = cli_json_and_yaml(&server, &remote_versions);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["version"], "2.0");
    let file = file_named(&listed[0], &file_name(&remote_wheel));
    assert_eq!(
        format!("sha256:{}", file["sha256"].as_str().unwrap()),
        sha256(&std::fs::read(&remote_wheel).unwrap())
    );
    assert_eq!(file["sizeBytes"], size.to_string());
    assert!(
        file["createTime"].as_str().unwrap().ends_with('Z'),
        "{file}"
    );
    assert_eq!(pulled_ms(file), Some(when.clone()));
    assert_eq!(pulled_ms(&listed[0]), Some(when.clone()));
    // Whether the upstream yanked it is on the upstream's page, not in the cache.
    assert!(file.get("yanked").is_none(), "{file}");
    assert!(yaml.contains(&when), "{yaml}");
    let table = server.cli_ok(&remote_versions);
    assert_eq!(last_pull_cell(&table, "2.0"), when, "{table}");
    assert!(table.contains(&file_name(&remote_wheel)), "{table}");
}

#[test]
fn pulls_through_a_virtual_repository_are_recorded_for_the_member_that_served_them() {
    require_tool("skopeo", "skopeo");
    let work = tempfile::tempdir().unwrap();
    let registry = Distribution::start();
    let layout = work.path().join("lib");
    let remote_digest = image_layout(&layout, "2", &[20_000]);
    registry.push(&layout, "2", "lib:2", None);
    let public = work.path().join("public");
    make_dist(&public, "wheel", "tiny-lib", "1.0", &[]);
    let pypi = PyPiServer::start(&public);
    let private = work.path().join("private");
    let internal = make_dist(&private, "wheel", "acme-internal", "1.0", &[]);

    let server = Entrepot::start();
    server.allow_upstream(&registry.addr);
    server.create_repository("team");
    let hosted = server.push_small_image("default/team/app", "1.0");
    server.create_remote_docker("hub", &format!("http://{}", registry.addr), json!({}));
    server.create_python("private", None, json!({}));
    let legacy = format!("{}/pypi/default/private/legacy/", server.base);
    let out = twine_upload(&legacy, "__token__", &server.admin_token, &[&internal]);
    assert!(out.status.success(), "twine upload: {}", text(&out));
    server.create_python("mirror", Some(&pypi.index_url()), json!({}));
    for (id, format, members) in [
        ("images", "docker", [("team", 20), ("hub", 10)]),
        ("python", "python", [("private", 20), ("mirror", 10)]),
    ] {
        let policies: Vec<Value> = members
            .iter()
            .map(|(repo, priority)| {
                json!({
                    "id": repo,
                    "repository": format!("projects/default/repositories/{repo}"),
                    "priority": priority,
                })
            })
            .collect();
        server.create_repository_from(
            "default",
            id,
            json!({
                "format": format,
                "mode": "virtual-repository",
                "virtualRepositoryConfig": { "upstreamPolicies": policies },
            }),
        );
    }

    // Docker: the hosted member serves app, the remote member lib.
    let images = |repo: &str| {
        server.get_json(&format!(
            "/v1/projects/default/repositories/{repo}/dockerImages"
        ))
    };
    assert_eq!(
        pulled_ms(by_digest(
            items(&images("team"), "dockerImages"),
            &hosted.digest
        )),
        None
    );
    let before = at(now_ms() - 1_000);
    server.skopeo_pull(
        "default/images/app:1.0",
        &work.path().join("a"),
        "1.0",
        false,
    );
    server.skopeo_pull("default/images/lib:2", &work.path().join("b"), "2", false);
    let after = at(now_ms() + 1_000);
    for (member, digest) in [("team", &hosted.digest), ("hub", &remote_digest)] {
        let listed = images(member);
        let when = pulled_ms(by_digest(items(&listed, "dockerImages"), digest))
            .unwrap_or_else(|| panic!("{member} shows no pull of what it served: {listed}"));
        assert!(before <= when && when <= after, "{member}: {when}");
    }

    // Python: the hosted member serves acme-internal, the remote tiny-lib.
    let before = at(now_ms() - 1_000);
    let out = pip_install(
        &server.python_index("python"),
        &work.path().join("pip"),
        &["acme-internal", "tiny-lib"],
    );
    assert!(out.status.success(), "pip install: {}", text(&out));
    let after = at(now_ms() + 1_000);
    for (member, package) in [("private", "acme-internal"), ("mirror", "tiny-lib")] {
        let versions = server.get_json(&format!(
            "/v1/projects/default/repositories/{member}/packages/{package}/versions"
        ));
        let version = &items(&versions, "versions")[0];
        let when = pulled_ms(version)
            .unwrap_or_else(|| panic!("{member} shows no download of what it served: {version}"));
        assert!(before <= when && when <= after, "{member}: {when}");
    }
}
