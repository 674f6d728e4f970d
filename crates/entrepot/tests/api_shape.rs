//! The shape of the API, checked in-process on the real router (no socket,
//! no child process): `/v1` error bodies and paging, `/healthz` and
//! `/readyz`, the OCI base endpoint and error bodies, a PyPI simple page.
//! Tests that need a client tool, a socket or a restart start the binary
//! instead (`support::Entrepot`).

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use axum::http::Method;
use serde_json::{json, Value};
use support::TestApp;

/// Assert the admin API's error shape, `{"error": {code, message, status, details}}`
/// and nothing else, with this status; the message.
fn assert_v1_error(response: &support::TestResponse, code: u16, status: &str) -> String {
    let body = response.json();
    assert_eq!(response.status(), code, "{body}");
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{body}"
    );
    let object = body.as_object().expect("the body is an object");
    assert_eq!(object.len(), 1, "only `error`: {body}");
    let error = body["error"].as_object().expect("`error` is an object");
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "details", "message", "status"], "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "an error says why: {body}");
    message.to_owned()
}

#[tokio::test]
async fn healthz_and_readyz_answer_in_plain_text() {
    let app = TestApp::new().await;
    let health = app.get_anonymous("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text(), "ok\n");
    let ready = app.get_anonymous("/readyz").await;
    assert_eq!(ready.status(), 200, "{}", ready.text());
    assert_eq!(ready.text(), "ready\n");
}

/// `/readyz` says not ready, with the reason, when the data directory's
/// filesystem has less free space than `min_free_disk_bytes`.
#[tokio::test]
async fn readyz_reports_a_nearly_full_disk() {
    let full = TestApp::builder()
        .config(|c| c.min_free_disk_bytes = 1 << 60)
        .build()
        .await;
    let response = full.get_anonymous("/readyz").await;
    assert_eq!(response.status(), 503);
    let reason = response.text();
    assert!(reason.contains("min_free_disk_bytes"), "{reason}");
    let fine = TestApp::builder()
        .config(|c| c.min_free_disk_bytes = 1)
        .build()
        .await;
    assert_eq!(fine.get_anonymous("/readyz").await.status(), 200);
}

#[tokio::test]
async fn v1_errors_have_one_shape_for_each_status() {
    let app = TestApp::new().await;

    // 400: a bad argument, and a body that is not JSON.
    let message = assert_v1_error(
        &app.get("/v1/projects?pageSize=-1").await,
        400,
        "INVALID_ARGUMENT",
    );
    assert!(message.contains("pageSize"), "{message}");
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/v1/projects/default/repositories?repositoryId=broken")
        .header("authorization", format!("Bearer {}", app.admin_token))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    assert_v1_error(&app.send(request).await, 400, "INVALID_ARGUMENT");

    // 401: no credentials, and a token nobody issued.
    assert_v1_error(
        &app.get_anonymous("/v1/projects").await,
        401,
        "UNAUTHENTICATED",
    );
    assert_v1_error(
        &app.request(Method::GET, "/v1/projects", Some("not-a-token"), None)
            .await,
        401,
        "UNAUTHENTICATED",
    );

    // 403: a user without a role.
    let token = app.user_with_token("nobody@example.com").await;
    let message = assert_v1_error(
        &app.request(
            Method::POST,
            "/v1/projects?projectId=theirs",
            Some(&token),
            None,
        )
        .await,
        403,
        "PERMISSION_DENIED",
    );
    assert!(message.contains("permission denied"), "{message}");

    // 404: a missing resource, and a path the API does not have.
    assert_v1_error(
        &app.get("/v1/projects/nosuchproject").await,
        404,
        "NOT_FOUND",
    );
    assert_v1_error(
        &app.get("/v1/projects/default/repositories/nosuchrepo")
            .await,
        404,
        "NOT_FOUND",
    );
    assert_v1_error(&app.get("/v1/nosuchcollection").await, 404, "NOT_FOUND");

    // 409: what exists already.
    assert_v1_error(
        &app.request(
            Method::POST,
            "/v1/projects?projectId=default",
            Some(&app.admin_token),
            None,
        )
        .await,
        409,
        "ALREADY_EXISTS",
    );
    app.create_repository("images").await;
    assert_v1_error(
        &app.request(
            Method::POST,
            "/v1/projects/default/repositories?repositoryId=images",
            Some(&app.admin_token),
            Some(json!({ "format": "docker" })),
        )
        .await,
        409,
        "ALREADY_EXISTS",
    );
}

/// Assert a 400 INVALID_ARGUMENT in the admin API's error shape; its message.
async fn invalid_argument(app: &TestApp, path: &str) -> String {
    assert_v1_error(&app.get(path).await, 400, "INVALID_ARGUMENT")
}

#[tokio::test]
async fn bad_page_sizes_and_tokens_are_invalid_arguments_that_say_why() {
    let app = TestApp::new().await;
    for i in 0..3 {
        app.create_repository(&format!("r{i}")).await;
        app.admin_api(
            Method::POST,
            &format!("/v1/projects/default/secrets?secretId=s{i}"),
            Some(json!({})),
        )
        .await;
    }
    let lists = [
        "/v1/projects",
        "/v1/projects/default/repositories",
        "/v1/users",
        "/v1/projects/default/serviceAccounts",
        "/v1/tokens",
        "/v1/projects/default/secrets",
        "/v1/projects/default/secrets/s0/versions",
        "/v1/projects/default/auditLog",
    ];
    for list in lists {
        for bad in ["-1", "abc", "2.5"] {
            let message = invalid_argument(&app, &format!("{list}?pageSize={bad}")).await;
            assert!(message.contains("pageSize"), "{list}: {message}");
            assert!(
                message.contains("1000"),
                "the message gives the range: {message}"
            );
        }
        let message = invalid_argument(&app, &format!("{list}?pageToken=not-a-token")).await;
        assert!(
            message.contains("pageToken is invalid"),
            "{list}: {message}"
        );
        // 0 means the default; more than the maximum is served as the maximum.
        for size in ["0", "5000", ""] {
            let response = app.get(&format!("{list}?pageSize={size}")).await;
            assert_eq!(response.status(), 200, "{list}?pageSize={size}");
        }
    }
    // A token of one listing is refused by another.
    let first = app
        .get("/v1/projects/default/repositories?pageSize=1")
        .await
        .json();
    assert_eq!(first["repositories"].as_array().map(Vec::len), Some(1));
    let token = first["nextPageToken"]
        .as_str()
        .expect("more than one repository: a next page");
    let message = invalid_argument(
        &app,
        &format!("/v1/projects/default/secrets?pageToken={token}"),
    )
    .await;
    assert!(message.contains("pageToken is invalid"), "{message}");
    // Without credentials, a bad parameter still changes nothing and says so.
    let response = app.get_anonymous("/v1/projects?pageSize=-3").await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn page_size_is_bounded_and_the_last_page_has_no_token() {
    let app = TestApp::new().await;
    for i in 0..3 {
        app.create_repository(&format!("r{i}")).await;
    }
    // The default project's two remote repositories and the three created.
    let path = "/v1/projects/default/repositories";
    let mut ids = Vec::new();
    let mut query = "pageSize=2".to_owned();
    loop {
        let page = app.get(&format!("{path}?{query}")).await.json();
        let items = page["repositories"].as_array().expect("a list");
        assert!(items.len() <= 2, "{page}");
        ids.extend(items.iter().map(|r| r["name"].as_str().unwrap().to_owned()));
        match page["nextPageToken"].as_str() {
            Some(token) => {
                assert_eq!(items.len(), 2, "a page before the last is full: {page}");
                query = format!("pageSize=2&pageToken={token}");
            }
            None => break,
        }
    }
    assert_eq!(ids.len(), 5, "{ids:?}");
    // Larger than the maximum is served as the maximum: everything, one page.
    let all = app.get(&format!("{path}?pageSize=5000")).await.json();
    assert_eq!(all["repositories"].as_array().map(Vec::len), Some(5));
    assert!(all.get("nextPageToken").is_none(), "{all}");
    // An empty token is the first page.
    let first = app.get(&format!("{path}?pageToken=")).await.json();
    assert_eq!(first["repositories"], all["repositories"]);
}

/// Assert an OCI error: the status, the JSON body
/// `{"errors": [{code, message, detail}]}` with this code and a message, and
/// the registry's API version header; the body.
fn assert_oci_error(response: &support::TestResponse, status: u16, code: &str) -> Value {
    let body = response.json();
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(
        response.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let errors = body["errors"].as_array().expect("an `errors` list");
    assert_eq!(errors.len(), 1, "{body}");
    let mut keys: Vec<&str> = errors[0]
        .as_object()
        .expect("an error object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "detail", "message"], "{body}");
    assert_eq!(errors[0]["code"], code, "{body}");
    assert!(
        errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without a message: {body}"
    );
    body
}

#[tokio::test]
async fn the_v2_base_challenges_anonymous_clients_and_answers_the_authenticated() {
    let app = TestApp::new().await;
    let ping = app
        .get_with("/v2/", None, &[("host", "127.0.0.1:5000")])
        .await;
    assert_oci_error(&ping, 401, "UNAUTHORIZED");
    assert_eq!(
        ping.header("www-authenticate"),
        Some(r#"Bearer realm="http://127.0.0.1:5000/v2/token",service="entrepot""#)
    );
    let ping = app.get("/v2/").await;
    assert_eq!(ping.status(), 200, "{}", ping.text());
    assert_eq!(
        ping.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(ping.json(), json!({}));
}

#[tokio::test]
async fn name_unknown_for_a_missing_repository() {
    let app = TestApp::new().await;
    app.create_repository("images").await;
    for path in [
        "/v2/default/nosuchrepo/app/tags/list",
        "/v2/default/nosuchrepo/app/manifests/latest",
        "/v2/nosuchproject/images/app/manifests/latest",
        // An image without manifests in an existing repository.
        "/v2/default/images/empty/tags/list",
    ] {
        assert_oci_error(&app.get(path).await, 404, "NAME_UNKNOWN");
    }
    let response = app
        .request(
            Method::POST,
            "/v2/default/nosuchrepo/app/blobs/uploads/",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_oci_error(&response, 404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn oci_name_invalid_and_digest_invalid_share_the_error_shape() {
    let app = TestApp::new().await;
    app.create_repository("images").await;
    assert_oci_error(
        &app.get("/v2/default/Images/app/tags/list").await,
        400,
        "NAME_INVALID",
    );
    assert_oci_error(
        &app.get("/v2/default/images/app/blobs/sha256:abc").await,
        400,
        "DIGEST_INVALID",
    );
}

#[tokio::test]
async fn a_pypi_simple_page_is_negotiated_between_html_and_json() {
    let app = TestApp::new().await;
    app.create_repository_from("py", json!({ "format": "python" }))
        .await;
    let path = "/pypi/default/py/simple/";
    let html = app.get(path).await;
    assert_eq!(html.status(), 200, "{}", html.text());
    let content_type = html.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let token = app.admin_token.clone();
    let json = app
        .get_with(
            path,
            Some(&token),
            &[("accept", "application/vnd.pypi.simple.v1+json")],
        )
        .await;
    assert_eq!(json.status(), 200, "{}", json.text());
    assert_eq!(
        json.header("content-type"),
        Some("application/vnd.pypi.simple.v1+json")
    );
    let body = json.json();
    assert_eq!(body["meta"]["api-version"], "1.1", "PEP 700: {body}");
    assert!(body["projects"].is_array(), "{body}");
}
