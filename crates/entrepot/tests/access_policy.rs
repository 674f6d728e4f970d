//! The registry access policy end to end: the real binary, skopeo, the CLI, and
//! upstreams on two loopback addresses (127.0.0.1 and 127.0.0.2 are distinct
//! hosts to the policy).

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const POLICY: &str = "/v1/organization/accessPolicy";

fn create_remote(server: &Entrepot, id: &str, upstream: &str, extra: Value) -> Response {
    let mut body = json!({ "format": "docker", "mode": "remote-repository",
                           "remoteRepositoryConfig": { "upstream": upstream } });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    server
        .request(
            Method::POST,
            &format!("/v1/projects/default/repositories?repositoryId={id}"),
        )
        .json(&body)
        .send()
        .unwrap()
}

type Response = reqwest::blocking::Response;

fn policy(server: &Entrepot) -> Value {
    let response = server.get(POLICY);
    assert_eq!(response.status(), 200);
    response.json().unwrap()
}

fn hosts(policy: &Value) -> Vec<String> {
    policy["allowedHosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_owned())
        .collect()
}

fn patch(server: &Entrepot, body: Value) -> Response {
    server
        .request(Method::PATCH, POLICY)
        .json(&body)
        .send()
        .unwrap()
}

/// The OCI DENIED message of a refused pull, which names the blocked host and
/// how to allow it.
fn assert_blocked(response: Response, host: &str) {
    let body = assert_oci_error(response, 403, "DENIED");
    let message = body["errors"][0]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(&format!(
            "upstream host {host} is blocked by the organization's registry access policy"
        )) && message.contains(&format!("entrepot access-policy allow {host}")),
        "{message}"
    );
}

#[test]
fn an_allowed_upstream_pulls_through_and_a_removed_one_is_blocked_at_once() {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    let digest = image_layout(&original, "1.0", &[300_000]);
    let upstream = Distribution::start();
    upstream.push(&original, "1.0", "team/app:1.0", None);
    let host = upstream.addr.clone();

    let server = Entrepot::start();
    // Loopback is not in the default policy: allowed by an owner first.
    assert!(!hosts(&policy(&server)).contains(&host));
    server.cli_ok(&["access-policy", "allow", &host]);
    assert!(hosts(&policy(&server)).contains(&host));
    let created = create_remote(&server, "up", &format!("http://{host}"), json!({}));
    assert!(created.status().is_success(), "{}", created.text().unwrap());

    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/up/team/app:1.0", &pulled, "1.0", false);
    assert_same_content(&original, &pulled, &digest);

    // Removed from the policy: the very next pull is refused, and the client is
    // told which host and how to allow it.
    server.cli_ok(&["access-policy", "disallow", &host]);
    let refused =
        server.skopeo_pull_output("default/up/team/app:1.0", &work.path().join("no"), "x");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("upstream host {host} is blocked")),
        "{stderr}"
    );
    // The block applies to the origin: content cached from it is refused too.
    assert_blocked(server.get("/v2/default/up/team/app/manifests/1.0"), &host);
    assert_blocked(
        server.get(&format!("/v2/default/up/team/app/manifests/{digest}")),
        &host,
    );
    let layer = {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(layout_blob(&original, &digest)).unwrap())
                .unwrap();
        manifest["layers"][0]["digest"].as_str().unwrap().to_owned()
    };
    assert_blocked(
        server.get(&format!("/v2/default/up/team/app/blobs/{layer}")),
        &host,
    );
    assert_blocked(server.get("/v2/default/up/team/app/tags/list"), &host);

    // Unless the repository allows serving its cache from a blocked upstream.
    server.cli_ok(&[
        "repositories",
        "update",
        "up",
        "--allow-cached-from-blocked=true",
    ]);
    let cached = work.path().join("cached");
    server.skopeo_pull("default/up/team/app:1.0", &cached, "1.0", false);
    assert_same_content(&original, &cached, &digest);
    // Only what is cached: anything else still needs the (blocked) upstream.
    assert_blocked(server.get("/v2/default/up/team/app/manifests/2.0"), &host);
    server.cli_ok(&[
        "repositories",
        "update",
        "up",
        "--allow-cached-from-blocked=false",
    ]);
    assert_blocked(server.get("/v2/default/up/team/app/manifests/1.0"), &host);

    // Allowed again: works on the next request, no restart; new content too.
    let v2 = work.path().join("v2");
    let digest2 = image_layout(&v2, "2.0", &[1000]);
    upstream.push(&v2, "2.0", "team/app:2.0", None);
    server.cli_ok(&["access-policy", "allow", &host]);
    let again = work.path().join("again");
    server.skopeo_pull("default/up/team/app:2.0", &again, "2.0", false);
    assert_same_content(&v2, &again, &digest2);
    assert!(server.metric("entrepot_access_policy_blocked_total") > 0);
}

#[test]
fn an_allowed_registry_whose_token_realm_is_blocked_is_blocked() {
    let work = tempfile::tempdir().unwrap();
    let tokens = TokenService::start_anonymous_on(work.path(), "127.0.0.2", 300);
    let upstream = Distribution::start_with_auth(&tokens.registry_auth());
    let original = work.path().join("original");
    let digest = image_layout(&original, "1.0", &[50_000]);
    upstream.push(&original, "1.0", "app:1.0", None);

    let server = Entrepot::start();
    server.allow_upstream(&upstream.addr);
    let created = create_remote(
        &server,
        "up",
        &format!("http://{}", upstream.addr),
        json!({}),
    );
    assert!(created.status().is_success(), "{}", created.text().unwrap());

    // The registry is allowed, its token service is not: the token request is
    // never sent.
    let issued = |t: &TokenService| t.log_text().matches("TOKEN ").count();
    let before = issued(&tokens);
    assert_blocked(server.get("/v2/default/up/app/manifests/1.0"), &tokens.addr);
    assert_eq!(
        issued(&tokens),
        before,
        "the blocked token service was asked"
    );

    server.allow_upstream(&tokens.addr);
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/up/app:1.0", &pulled, "1.0", false);
    assert_same_content(&original, &pulled, &digest);
}

#[test]
fn a_redirect_to_a_blocked_host_is_blocked_and_nothing_is_cached() {
    let layer = random_bytes(70_000);
    let layer_digest = sha256(&layer);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = sha256(config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": LAYER_TAR, "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    // The blob store ("CDN") on 127.0.0.2.
    let cdn = FixtureRegistry::start_with(
        "127.0.0.2",
        HashMap::from([(
            format!("/cdn/{layer_digest}"),
            Reply::ok("application/octet-stream", layer.clone()),
        )]),
        HashMap::new(),
    );
    // The registry on 127.0.0.1 redirects the layer download there.
    let registry = FixtureRegistry::start_with(
        "127.0.0.1",
        HashMap::from([
            (
                "/v2/app/manifests/1.0".to_owned(),
                Reply::ok(OCI_MANIFEST, manifest),
            ),
            (
                format!("/v2/app/blobs/{config_digest}"),
                Reply::ok("application/octet-stream", config.to_vec()),
            ),
        ]),
        HashMap::from([(
            format!("/v2/app/blobs/{layer_digest}"),
            format!("http://{}/cdn/{layer_digest}", cdn.addr),
        )]),
    );

    let server = Entrepot::start();
    server.allow_upstream(&registry.addr);
    let created = create_remote(
        &server,
        "up",
        &format!("http://{}", registry.addr),
        json!({}),
    );
    assert!(created.status().is_success(), "{}", created.text().unwrap());
    let manifest = server.get("/v2/default/up/app/manifests/1.0");
    assert_eq!(manifest.status(), 200);

    assert_blocked(
        server.get(&format!("/v2/default/up/app/blobs/{layer_digest}")),
        &cdn.addr,
    );
    assert_eq!(
        cdn.hits_of(&format!("GET /cdn/{layer_digest}")),
        0,
        "the blocked host was contacted"
    );
    assert!(
        !server.blob_file(&layer_digest).exists(),
        "a blocked blob was cached"
    );

    // Once the CDN is allowed, the redirect is followed and the blob verified.
    server.allow_upstream(&cdn.addr);
    let blob = server.get(&format!("/v2/default/up/app/blobs/{layer_digest}"));
    assert_eq!(blob.status(), 200);
    assert_eq!(blob.bytes().unwrap().as_ref(), layer.as_slice());
    assert_eq!(cdn.hits_of(&format!("GET /cdn/{layer_digest}")), 1);
}

#[test]
fn remote_repositories_with_a_blocked_upstream_need_force() {
    let server = Entrepot::start();
    let upstream = "http://127.0.0.2:5999";
    let stderr = server.cli_err(&[
        "repositories",
        "create",
        "blocked",
        "--repository-format=docker",
        "--mode=remote-repository",
        &format!("--remote-docker-repo={upstream}"),
    ]);
    assert!(
        stderr.contains(
            "upstream host 127.0.0.2:5999 is blocked by the organization's registry access policy"
        ) && stderr.contains("entrepot access-policy allow 127.0.0.2:5999")
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        server
            .get("/v1/projects/default/repositories/blocked")
            .status(),
        404
    );

    server.cli_ok(&[
        "repositories",
        "create",
        "blocked",
        "--repository-format=docker",
        "--mode=remote-repository",
        &format!("--remote-docker-repo={upstream}"),
        "--force",
    ]);
    assert_eq!(
        server
            .get("/v1/projects/default/repositories/blocked")
            .status(),
        200
    );
    // Stored, but still blocked at pull time (and never contacted).
    assert_blocked(
        server.get("/v2/default/blocked/app/manifests/latest"),
        "127.0.0.2:5999",
    );

    // Setting its credentials is refused with the same explanation, unless
    // forced; its cache settings stay changeable.
    let stderr = server.cli_err(&[
        "repositories",
        "update",
        "blocked",
        "--remote-username=alice",
    ]);
    assert!(
        stderr.contains("upstream host 127.0.0.2:5999 is blocked") && stderr.contains("--force"),
        "{stderr}"
    );
    server.cli_ok(&[
        "repositories",
        "update",
        "blocked",
        "--remote-username=alice",
        "--force",
    ]);
    server.cli_ok(&[
        "repositories",
        "update",
        "blocked",
        "--allow-cached-from-blocked=true",
    ]);
    let described: Value = server
        .get("/v1/projects/default/repositories/blocked")
        .json()
        .unwrap();
    assert_eq!(described["remoteRepositoryConfig"]["username"], "alice");
    assert_eq!(
        described["remoteRepositoryConfig"]["allowCachedFromBlocked"],
        true
    );

    let test = server.cli(&["repositories", "test-upstream", "blocked"]);
    assert!(!test.status.success());
    let report = String::from_utf8_lossy(&test.stdout);
    assert!(
        report.contains("reachable:     false") && report.contains("127.0.0.2:5999 is blocked"),
        "{report}"
    );

    // Wildcards through the API: sub-domains only.
    let response = patch(&server, json!({ "addAllowedHosts": ["*.AzureCR.io"] }));
    assert_eq!(response.status(), 200);
    assert!(hosts(&response.json().unwrap()).contains(&"*.azurecr.io".to_owned()));
    let ok = create_remote(&server, "acr", "https://myteam.azurecr.io", json!({}));
    assert!(ok.status().is_success(), "{}", ok.text().unwrap());
    for (id, upstream) in [
        ("bare", "https://azurecr.io"),
        ("evil", "https://evilazurecr.io"),
    ] {
        let message = assert_api_error(
            create_remote(&server, id, upstream, json!({})),
            400,
            "INVALID_ARGUMENT",
        );
        assert!(
            message.contains("is blocked by the organization's registry access policy"),
            "{message}"
        );
    }
}

#[test]
fn the_policy_holds_at_most_a_hundred_valid_entries() {
    let server = Entrepot::start();
    let hundred: Vec<String> = (0..100)
        .map(|i| format!("registry-{i}.example.com"))
        .collect();
    let etag = policy(&server)["etag"].as_str().unwrap().to_owned();
    let put = server
        .request(Method::PUT, POLICY)
        .json(&json!({ "etag": etag, "allowedHosts": hundred }))
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(hosts(&policy(&server)).len(), 100);

    let message = assert_api_error(
        patch(
            &server,
            json!({ "addAllowedHosts": ["one-more.example.com"] }),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(message.contains("at most 100 entries"), "{message}");
    let stderr = server.cli_err(&["access-policy", "allow", "one-more.example.com"]);
    assert!(stderr.contains("at most 100 entries"), "{stderr}");
    let mut hundred_and_one = hundred.clone();
    hundred_and_one.push("one-more.example.com".into());
    let message = assert_api_error(
        server
            .request(Method::PUT, POLICY)
            .json(&json!({ "allowedHosts": hundred_and_one }))
            .send()
            .unwrap(),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(message.contains("at most 100 entries"), "{message}");
    assert_eq!(
        hosts(&policy(&server)).len(),
        100,
        "a refused change changed the policy"
    );

    // Malformed entries: each one is named with what is wrong.
    let message = assert_api_error(
        patch(
            &server,
            json!({ "allowedHosts": ["https://ghcr.io", "ghcr.io/team", "bob@quay.io", "*.com", "ghcr.io:http"] }),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    for expected in [
        "\"https://ghcr.io\" is not a valid allowed host: write the host without the scheme",
        "\"ghcr.io/team\" is not a valid allowed host: an entry is a host without a path",
        "\"bob@quay.io\" is not a valid allowed host: an entry has no user name or password",
        "\"*.com\" is not a valid allowed host",
        "\"ghcr.io:http\" is not a valid allowed host: port",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    let stderr = server.cli_err(&["access-policy", "allow", "https://ghcr.io/v2/"]);
    assert!(stderr.contains("without the scheme"), "{stderr}");

    // Normalised on the way in: lower case, IDNA.
    let set = work_file(
        &json!({ "allowedHosts": ["GHCR.io", "Bücher.example", "127.0.0.1:5000", "*.azurecr.io"], "enforcement": "enforce" }),
    );
    server.cli_ok(&[
        "access-policy",
        "set",
        &format!("--file={}", set.1.display()),
    ]);
    assert_eq!(
        hosts(&policy(&server)),
        [
            "ghcr.io",
            "xn--bcher-kva.example",
            "127.0.0.1:5000",
            "*.azurecr.io"
        ]
    );

    // What describe prints can be edited and set again (its etag is current).
    let mut described: Value =
        serde_json::from_str(&server.cli_ok(&["access-policy", "describe", "--format=json"]))
            .unwrap();
    described["allowedHosts"] = json!(["quay.io"]);
    let file = work_file(&described);
    server.cli_ok(&[
        "access-policy",
        "set",
        &format!("--file={}", file.1.display()),
    ]);
    assert_eq!(hosts(&policy(&server)), ["quay.io"]);
    // Setting it again from the same (now stale) file is refused.
    let stderr = server.cli_err(&[
        "access-policy",
        "set",
        &format!("--file={}", file.1.display()),
    ]);
    assert!(stderr.contains("changed since it was read"), "{stderr}");

    // A stale etag is refused, like setIamPolicy.
    let message = assert_api_error(
        server
            .request(Method::PUT, POLICY)
            .json(&json!({ "etag": etag, "allowedHosts": ["ghcr.io"] }))
            .send()
            .unwrap(),
        412,
        "FAILED_PRECONDITION",
    );
    assert!(message.contains("changed since it was read"), "{message}");
    let message = assert_api_error(
        patch(&server, json!({ "etag": etag, "enabled": false })),
        412,
        "FAILED_PRECONDITION",
    );
    assert!(message.contains("stale"), "{message}");
    let message = assert_api_error(
        patch(&server, json!({ "removeAllowedHosts": ["ghcr.io"] })),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(
        message.contains("not in the registry access policy: ghcr.io"),
        "{message}"
    );
}

/// Log text without terminal colour codes.
fn without_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON file in a temporary directory (kept alive by the returned guard).
fn work_file(value: &Value) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    std::fs::write(&path, serde_json::to_vec(value).unwrap()).unwrap();
    (dir, path)
}

#[test]
fn dry_run_logs_and_counts_but_blocks_nothing() {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    let digest = image_layout(&original, "1.0", &[20_000]);
    let upstream = Distribution::start();
    upstream.push(&original, "1.0", "app:1.0", None);

    let server = Entrepot::start();
    let out = server.cli_ok(&["access-policy", "dry-run"]);
    assert!(out.contains("\"enforcement\": \"dry-run\""), "{out}");
    assert_eq!(
        server.metric("entrepot_access_policy_dry_run_violations_total"),
        0
    );
    // Not in the allowlist, yet nothing is blocked: creation and pulls go through.
    let created = create_remote(
        &server,
        "up",
        &format!("http://{}", upstream.addr),
        json!({}),
    );
    assert!(created.status().is_success(), "{}", created.text().unwrap());
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/up/app:1.0", &pulled, "1.0", false);
    assert_same_content(&original, &pulled, &digest);
    assert!(server.metric("entrepot_access_policy_dry_run_violations_total") > 0);
    assert_eq!(server.metric("entrepot_access_policy_blocked_total"), 0);
    let log = server.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("dry run") && l.contains(&upstream.addr)),
        "no dry-run warning naming {} in the log:\n{log}",
        upstream.addr
    );

    // Enforced: blocked.
    server.cli_ok(&["access-policy", "enforce"]);
    assert_blocked(
        server.get("/v2/default/up/app/manifests/1.0"),
        &upstream.addr,
    );
    // Disabled: nothing is checked, nothing counted.
    server.cli_ok(&["access-policy", "disable"]);
    let before = server.metric("entrepot_access_policy_blocked_total");
    assert_eq!(server.get("/v2/default/up/app/manifests/1.0").status(), 200);
    assert_eq!(
        server.metric("entrepot_access_policy_blocked_total"),
        before
    );
    let out = server.cli_ok(&["access-policy", "enable"]);
    assert!(out.contains("\"enabled\": true"), "{out}");
    assert_blocked(
        server.get("/v2/default/up/app/manifests/1.0"),
        &upstream.addr,
    );

    // Every change is in the audit log: who, before and after.
    let log = without_ansi(&server.log_text());
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("registry access policy changed"))
        .collect();
    assert!(audit.len() >= 4, "{audit:?}");
    assert!(
        audit.iter().all(|l| l.contains("audit")
            && l.contains("who=user:admin")
            && l.contains("before=")
            && l.contains("after=")),
        "{audit:?}"
    );
}

#[test]
fn only_owners_change_the_policy_and_every_authenticated_user_reads_it() {
    let server = Entrepot::start();
    let admin = |method: Method, path: &str, body: Value| {
        let response = server.request(method, path).json(&body).send().unwrap();
        assert!(response.status().is_success(), "{path}");
        response.json::<Value>().unwrap()
    };
    admin(
        Method::POST,
        "/v1/users",
        json!({ "email": "bob@example.com" }),
    );
    let bob = admin(
        Method::POST,
        "/v1/tokens",
        json!({ "principal": "user:bob@example.com", "readOnly": false }),
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Even an artifact registry admin on the whole organisation is not an owner.
    let mut iam = server
        .get("/v1/organization:getIamPolicy")
        .json::<Value>()
        .unwrap();
    iam["bindings"].as_array_mut().unwrap().push(json!({
        "role": "roles/artifactregistry.admin", "members": ["user:bob@example.com"] }));
    admin(
        Method::POST,
        "/v1/organization:setIamPolicy",
        json!({ "policy": iam }),
    );

    let http = reqwest::blocking::Client::new();
    let url = format!("{}{POLICY}", server.base);
    let anonymous = http.get(&url).send().unwrap();
    assert_api_error(anonymous, 401, "UNAUTHENTICATED");

    let read = http.get(&url).bearer_auth(&bob).send().unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().unwrap();
    assert!(hosts(&read).contains(&"registry-1.docker.io".to_owned()));
    assert_eq!(read["enabled"], true);
    assert_eq!(read["enforcement"], "enforce");

    for (method, body) in [
        (Method::PATCH, json!({ "addAllowedHosts": ["ghcr.io"] })),
        (Method::PUT, json!({ "allowedHosts": ["ghcr.io"] })),
    ] {
        let message = assert_api_error(
            http.request(method, &url)
                .bearer_auth(&bob)
                .json(&body)
                .send()
                .unwrap(),
            403,
            "PERMISSION_DENIED",
        );
        assert!(
            message.contains("entrepot.accessPolicy.update"),
            "{message}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_entrepot"))
        .args(["access-policy", "allow", "ghcr.io"])
        .env("ENTREPOT_SERVER", &server.base)
        .env("ENTREPOT_TOKEN", &bob)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let described = Command::new(env!("CARGO_BIN_EXE_entrepot"))
        .args(["access-policy", "describe"])
        .env("ENTREPOT_SERVER", &server.base)
        .env("ENTREPOT_TOKEN", &bob)
        .output()
        .unwrap();
    assert!(described.status.success());
    assert!(String::from_utf8_lossy(&described.stdout).contains("registry-1.docker.io"));
    assert!(!hosts(&policy(&server)).contains(&"ghcr.io".to_owned()));
}
