//! When an image was last pulled, as the inventory shows it: a manifest
//! pulled with skopeo from a hosted repository, and one pulled through a
//! remote repository from a docker-registry upstream, carry `lastPullTime`
//! in the admin API's listings (images, packages, versions, tags) and a
//! `LAST_PULL_TIME` in the CLI's tables; a manifest nobody pulled has none,
//! and pushing is not pulling.

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
