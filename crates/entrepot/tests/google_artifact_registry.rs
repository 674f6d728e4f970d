//! Google's own Artifact Registry client library (`google-cloud-artifact-registry`,
//! REST transport) drives entrepot unchanged: it creates a remote Docker
//! repository whose upstream password is a secret version the service agent
//! may read, reads, lists and patches it, manages its IAM policy; then skopeo
//! pulls through that repository from a private upstream.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use serde_json::json;
use support::*;

/// The client script, run with the test environment's Python.
fn run_client_script(script: &str, vars: &[(&str, &str)]) {
    let path = format!("{}/tests/google/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(tool("python"))
        .arg(&path)
        .envs(vars.iter().copied())
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_google_client_creates_a_remote_repository_that_skopeo_pulls_through() {
    require_tool("skopeo", "skopeo");
    let work = tempfile::tempdir().unwrap();
    let upstream = Distribution::start_with_htpasswd("bob", "upstream-password");
    let original = work.path().join("original");
    let digest = image_layout(&original, "1", &[300_000]);
    upstream.push(&original, "1", "team/app:1", Some("bob:upstream-password"));

    let server = Entrepot::start();
    server.cli_ok(&["access-policy", "allow", &upstream.addr]);
    let reader_token = server.user_with_token("reader@example.com", false);

    run_client_script(
        "artifact_registry_remote.py",
        &[
            ("ENTREPOT_ENDPOINT", &server.base),
            ("ENTREPOT_TOKEN", &server.admin_token),
            ("ENTREPOT_PROJECT", "default"),
            ("UPSTREAM_URI", &format!("http://{}", upstream.addr)),
            ("UPSTREAM_USERNAME", "bob"),
            // The script stores the password with Google's Secret Manager
            // client and grants the project's service agent access to it.
            ("UPSTREAM_PASSWORD", "upstream-password"),
            ("SECRET_ID", "upstream-token"),
            ("SERVICE_AGENT", &server.service_agent()),
            ("READER", "user:reader@example.com"),
            ("READER_TOKEN", &reader_token),
        ],
    );

    // What the client created is the repository entrepot serves.
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/private/team/app:1", &pulled, "pulled", false);
    assert_same_content(&original, &pulled, &digest);
    let repo = server.get_json("/v1/projects/default/repositories/private");
    assert_eq!(repo["description"], "renamed", "{repo}");
    // The pulled image is now held: sizeBytes counts its layer and manifest,
    // on both paths.
    let size: u64 = repo["sizeBytes"].as_str().unwrap().parse().unwrap();
    assert!(size > 300_000, "{repo}");
    let google =
        server.get_json("/v1/projects/default/locations/europe-west1/repositories/private");
    assert_eq!(google["sizeBytes"], repo["sizeBytes"], "{google}");
    assert_eq!(repo["remoteRepositoryConfig"]["username"], "bob", "{repo}");
    assert!(server
        .policy_members("projects/default/repositories/private")
        .contains(&"user:reader@example.com".to_owned()));
    assert!(!server.log_text().contains("upstream-password\""));
}

#[test]
fn the_locations_path_speaks_google_enums_and_errors() {
    let server = Entrepot::start();
    let parent = "/v1/projects/default/locations/us-central1";
    let operation = server.admin_api(
        "POST",
        &format!("{parent}/repositories?repositoryId=hub&$alt=json;enum-encoding=int"),
        Some(json!({
            "format": 1,
            "mode": 3,
            "remoteRepositoryConfig": {"dockerRepository": {"publicRepository": 1}},
            "force": true
        })),
    );
    assert_eq!(operation["done"], true, "{operation}");
    assert_eq!(
        operation["name"],
        "projects/default/locations/us-central1/operations/repositories.create.hub"
    );
    let repo = &operation["response"];
    assert_eq!(
        repo["@type"],
        "type.googleapis.com/google.devtools.artifactregistry.v1.Repository"
    );
    assert_eq!(repo["format"], 1, "{repo}");
    assert_eq!(repo["mode"], 3, "{repo}");
    assert_eq!(
        repo["remoteRepositoryConfig"]["dockerRepository"]["publicRepository"],
        1
    );
    let named = server.get_json(&format!(
        "{parent}/repositories/hub?alt=json&prettyPrint=false"
    ));
    assert_eq!(named["mode"], "REMOTE_REPOSITORY", "{named}");
    assert_eq!(
        named["remoteRepositoryConfig"]["dockerRepository"]["publicRepository"],
        "DOCKER_HUB"
    );
    assert_eq!(
        named["name"],
        "projects/default/locations/us-central1/repositories/hub"
    );
    // The old path answers the same resource under its own name.
    let old = server.get_json("/v1/projects/default/repositories/hub");
    assert_eq!(old["name"], "projects/default/repositories/hub");
    assert_eq!(old["remoteRepositoryConfig"]["upstream"], "DOCKER-HUB");

    let got = server.get_json(&format!("{parent}/operations/repositories.create.hub"));
    assert_eq!(got["response"]["name"], named["name"], "{got}");

    let missing = server.get(&format!("{parent}/repositories/none"));
    assert_api_error(missing, 404, "NOT_FOUND");
    let bad = server
        .request(
            reqwest::Method::PATCH,
            &format!("{parent}/repositories/hub?updateMask=labels"),
        )
        .json(&json!({}))
        .send()
        .unwrap();
    assert_api_error(bad, 400, "INVALID_ARGUMENT");

    let deleted = server.admin_api("DELETE", &format!("{parent}/repositories/hub"), None);
    assert_eq!(
        deleted["response"]["@type"],
        "type.googleapis.com/google.protobuf.Empty"
    );
    let got = server.get_json(&format!("{parent}/operations/repositories.delete.hub"));
    assert_eq!(got["done"], true, "{got}");
}
