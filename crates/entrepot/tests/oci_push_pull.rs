//! Push images to a hosted repository with skopeo, pull them back with skopeo
//! and podman, and check every byte came back; across a restart too.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use support::{assert_same_content, layout_ref, Entrepot, LayerKind, OciLayout, Podman};

const MIB: usize = 1024 * 1024;

#[test]
fn skopeo_pushes_and_pulls_a_single_image_byte_for_byte() {
    let server = Entrepot::start();
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let manifest = layout.add_image(&[(64 * 1024, LayerKind::Gzip)], "amd64");
    layout.tag(&manifest, "1.0");

    server.skopeo_push(&layout.dir, "1.0", "default/images/app:1.0", false);
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/images/app:1.0", &pulled, "1.0", false);

    assert_eq!(layout_ref(&pulled, "1.0"), manifest.digest);
    assert_eq!(
        assert_same_content(&layout.dir, &pulled, &manifest.digest),
        3
    );
}

#[test]
fn skopeo_pushes_and_pulls_a_multi_layer_image_of_50_mib() {
    let server = Entrepot::start();
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let manifest = layout.add_image(
        &[
            (24 * MIB, LayerKind::Tar),
            (20 * MIB, LayerKind::Gzip),
            (7 * MIB, LayerKind::Tar),
            (512 * 1024, LayerKind::Gzip),
        ],
        "amd64",
    );
    layout.tag(&manifest, "big");

    server.skopeo_push(&layout.dir, "big", "default/images/team/big:big", false);
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/images/team/big:big", &pulled, "big", false);

    assert_eq!(layout_ref(&pulled, "big"), manifest.digest);
    assert_eq!(
        assert_same_content(&layout.dir, &pulled, &manifest.digest),
        6
    );
}

#[test]
fn skopeo_pushes_and_pulls_a_multi_arch_index() {
    let server = Entrepot::start();
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let amd64 = layout.add_image(
        &[(32 * 1024, LayerKind::Gzip), (8 * 1024, LayerKind::Tar)],
        "amd64",
    );
    let arm64 = layout.add_image(&[(32 * 1024, LayerKind::Gzip)], "arm64");
    let index = layout.add_index(&[(&amd64, "amd64"), (&arm64, "arm64")]);
    layout.tag(&index, "multi");

    server.skopeo_push(&layout.dir, "multi", "default/images/multi:multi", true);
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/images/multi:multi", &pulled, "multi", true);

    assert_eq!(layout_ref(&pulled, "multi"), index.digest);
    // index + (manifest, config, 2 layers) + (manifest, config, 1 layer)
    assert_eq!(assert_same_content(&layout.dir, &pulled, &index.digest), 8);

    // Each platform manifest is also served by digest.
    for m in [&amd64, &arm64] {
        let response = server.get(&format!("/v2/default/images/multi/manifests/{}", m.digest));
        assert_eq!(response.status(), 200);
        assert_eq!(
            support::header(&response, "docker-content-digest"),
            m.digest
        );
    }
}

#[test]
fn content_survives_a_restart_on_the_same_data_directory() {
    let server = Entrepot::start();
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let manifest = layout.add_image(
        &[(256 * 1024, LayerKind::Gzip), (128 * 1024, LayerKind::Tar)],
        "amd64",
    );
    layout.tag(&manifest, "1.0");
    server.skopeo_push(&layout.dir, "1.0", "default/images/app:1.0", false);

    let server = server.restart();

    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/images/app:1.0", &pulled, "1.0", false);
    assert_eq!(layout_ref(&pulled, "1.0"), manifest.digest);
    assert_same_content(&layout.dir, &pulled, &manifest.digest);
    let tags: serde_json::Value = server
        .get("/v2/default/images/app/tags/list")
        .json()
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1.0"]));
}

#[test]
fn leftover_staging_objects_from_a_crash_are_removed_at_start() {
    let server = Entrepot::start();
    server.create_repository("images");
    let digest = server.push_small_image("default/images/app", "1.0").digest;
    // What a crash in the middle of a commit leaves behind.
    let staging = server.data_dir.join("blobs/staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("4f1c2a7e-crashed"), b"half a blob").unwrap();

    let server = server.restart();

    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging still holds {left:?}");
    let response = server.get(&format!("/v2/default/images/app/manifests/{digest}"));
    assert_eq!(response.status(), 200);
}

#[test]
fn podman_pulls_an_image_pushed_with_skopeo() {
    let podman = Podman::new();
    let server = Entrepot::start();
    server.create_repository("images");
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("src"));
    let manifest = layout.add_image(
        &[(64 * 1024, LayerKind::Gzip), (16 * 1024, LayerKind::Tar)],
        "amd64",
    );
    layout.tag(&manifest, "1.0");
    server.skopeo_push(&layout.dir, "1.0", "default/images/app:1.0", false);

    let image = format!("{}/default/images/app:1.0", server.addr);
    let mut pull = podman.command();
    pull.args(["pull", "--tls-verify=false", "--quiet"]);
    pull.arg(format!("--creds={}", server.creds()));
    let output = pull.arg(&image).output().unwrap();
    assert!(
        output.status.success(),
        "podman pull failed:\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log_text()
    );
    let inspect = podman
        .command()
        .args(["image", "inspect", "--format", "{{.Digest}}", &image])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        manifest.digest
    );
}
