//! The admin API and the `entrepot repositories` verbs, through the real binary
//! against a running server.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::process::Output;

use reqwest::Method;
use serde_json::{json, Value};
use support::{assert_api_error, assert_oci_error, Server};

fn ok(output: Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "CLI failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

fn failed(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "CLI should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

#[test]
fn repositories_lifecycle_through_the_cli() {
    let server = Server::start();

    let (stdout, stderr) = ok(server.cli(&[
        "repositories",
        "create",
        "images",
        "--repository-format=docker",
        "--description",
        "team images",
    ]));
    assert!(stderr.contains("Created repository [images]"), "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(created["name"], "projects/default/repositories/images");
    assert_eq!(created["format"], "DOCKER");
    assert_eq!(created["mode"], "STANDARD_REPOSITORY");
    assert_eq!(created["description"], "team images");

    ok(server.cli(&[
        "repositories",
        "create",
        "wheels",
        "--repository-format=python",
    ]));

    let (list, _) = ok(server.cli(&["repositories", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{list}");
    let images = lines
        .iter()
        .find(|l| l.starts_with("images "))
        .expect("images is listed");
    assert!(
        images.contains("DOCKER") && images.contains("team images"),
        "{images}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wheels ") && l.contains("PYTHON")),
        "{list}"
    );

    let (describe, _) = ok(server.cli(&["repositories", "describe", "images", "--format=json"]));
    let described: Value = serde_json::from_str(&describe).unwrap();
    assert_eq!(described["name"], "projects/default/repositories/images");
    assert_eq!(described["createTime"], created["createTime"]);

    let (updated, _) = ok(server.cli(&[
        "repositories",
        "update",
        "images",
        "--description",
        "release images",
    ]));
    let updated: Value = serde_json::from_str(&updated).unwrap();
    assert_eq!(updated["description"], "release images");
    let (describe, _) = ok(server.cli(&["repositories", "describe", "images", "--format=json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&describe).unwrap()["description"],
        "release images"
    );

    // The repository serves OCI content until it is deleted, with its content.
    server.push_small_image("default/images/app", "1.0");
    assert_eq!(
        server.get("/v2/default/images/app/manifests/1.0").status(),
        200
    );
    let (_, stderr) = ok(server.cli(&["repositories", "delete", "images", "--quiet"]));
    assert!(stderr.contains("Deleted repository [images]"), "{stderr}");
    let (list, _) = ok(server.cli(&["repositories", "list"]));
    assert!(!list.lines().any(|l| l.starts_with("images ")), "{list}");
    assert_oci_error(
        server.get("/v2/default/images/app/manifests/1.0"),
        404,
        "NAME_UNKNOWN",
    );

    // Created again, it starts empty.
    ok(server.cli(&[
        "repositories",
        "create",
        "images",
        "--repository-format=docker",
    ]));
    assert_oci_error(
        server.get("/v2/default/images/app/manifests/1.0"),
        404,
        "MANIFEST_UNKNOWN",
    );
}

#[test]
fn cli_reports_errors_from_the_server_and_when_it_is_unreachable() {
    let server = Server::start();
    ok(server.cli(&[
        "repositories",
        "create",
        "images",
        "--repository-format=docker",
    ]));

    let stderr = failed(server.cli(&[
        "repositories",
        "create",
        "images",
        "--repository-format=docker",
    ]));
    assert!(
        stderr.contains("409") && stderr.contains("images"),
        "{stderr}"
    );
    let stderr = failed(server.cli(&["repositories", "describe", "nothing"]));
    assert!(stderr.contains("404"), "{stderr}");
    let stderr = failed(server.cli(&["repositories", "create", "x", "--repository-format=maven"]));
    assert!(
        stderr.contains("400") && stderr.contains("maven"),
        "{stderr}"
    );
    let stderr = failed(server.cli(&[
        "repositories",
        "create",
        "Bad_Name",
        "--repository-format=docker",
    ]));
    assert!(stderr.contains("400"), "{stderr}");

    // A server that is not there: the CLI says how to reach one.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_entrepot"))
        .args(["--server", "http://127.0.0.1:9", "repositories", "list"])
        .output()
        .unwrap();
    let stderr = failed(output);
    assert!(
        stderr.contains("cannot reach the entrepot server"),
        "{stderr}"
    );
}

#[test]
fn admin_api_errors_have_code_message_and_status() {
    let server = Server::start();
    server.create_repository("images");
    let create = |id: &str, body: Value| {
        server
            .request(
                Method::POST,
                &format!("/v1/projects/default/repositories?repositoryId={id}"),
            )
            .json(&body)
            .send()
            .unwrap()
    };

    let message = assert_api_error(
        create("images", json!({"format": "docker"})),
        409,
        "ALREADY_EXISTS",
    );
    assert!(message.contains("images"), "{message}");
    assert_api_error(
        create("Bad_Name", json!({"format": "docker"})),
        400,
        "INVALID_ARGUMENT",
    );
    assert_api_error(
        create("ok", json!({"format": "maven"})),
        400,
        "INVALID_ARGUMENT",
    );
    assert_api_error(
        create("ok", json!({"format": "docker", "mode": "sideways"})),
        400,
        "INVALID_ARGUMENT",
    );
    assert_api_error(
        create("ok", json!({"format": "docker", "colour": "blue"})),
        400,
        "INVALID_ARGUMENT",
    );
    let missing_id = server
        .request(Method::POST, "/v1/projects/default/repositories")
        .json(&json!({"format": "docker"}))
        .send()
        .unwrap();
    assert_api_error(missing_id, 400, "INVALID_ARGUMENT");
    let not_json = server
        .request(
            Method::POST,
            "/v1/projects/default/repositories?repositoryId=ok",
        )
        .header("content-type", "application/json")
        .body("{")
        .send()
        .unwrap();
    assert_api_error(not_json, 400, "INVALID_ARGUMENT");

    assert_api_error(
        server.get("/v1/projects/default/repositories/nothing"),
        404,
        "NOT_FOUND",
    );
    assert_api_error(
        server.get("/v1/projects/nothing/repositories"),
        404,
        "NOT_FOUND",
    );
    assert_api_error(server.get("/v1/projects/nothing"), 404, "NOT_FOUND");
    let delete = server
        .request(Method::DELETE, "/v1/projects/default/repositories/nothing")
        .send()
        .unwrap();
    assert_api_error(delete, 404, "NOT_FOUND");
    let update = server
        .request(Method::PATCH, "/v1/projects/default/repositories/images")
        .json(&json!({"format": "python"}))
        .send()
        .unwrap();
    assert_api_error(update, 400, "INVALID_ARGUMENT");

    // None of it changed anything.
    let list: Value = server
        .get("/v1/projects/default/repositories")
        .json()
        .unwrap();
    let names: Vec<&str> = list["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // `docker-hub` and `pypi` are the pull-through caches every installation starts with.
    assert_eq!(
        names,
        [
            "projects/default/repositories/docker-hub",
            "projects/default/repositories/images",
            "projects/default/repositories/pypi"
        ]
    );
    let project: Value = server.get("/v1/projects/default").json().unwrap();
    assert_eq!(project["name"], "projects/default");
}
