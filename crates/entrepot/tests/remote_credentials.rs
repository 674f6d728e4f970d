//! The users' story of upstream credentials: a token stored as a secret, read by
//! the project's service agent, used against a private upstream that speaks the
//! Docker token flow (like Docker Hub) or plain Basic auth; rotated without a
//! restart.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use support::*;

/// `skopeo copy` through entrepot; the error text when it fails.
fn try_pull(server: &Entrepot, image: &str, dest: &Path) -> Result<(), String> {
    let output = server.skopeo_pull_output(image, dest, "pulled");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn a_secret_read_by_the_service_agent_authenticates_to_a_token_auth_upstream() {
    require_tool("skopeo", "skopeo");
    let work = tempfile::tempdir().unwrap();
    let tokens = TokenService::start(work.path(), "alice:token-one\n", 300);
    let upstream = Distribution::start_with_auth(&tokens.registry_auth());
    let (v1, v2) = (work.path().join("v1"), work.path().join("v2"));
    let d1 = image_layout(&v1, "1", &[300_000]);
    let d2 = image_layout(&v2, "2", &[300_000]);
    upstream.push(&v1, "1", "team/app:1", Some("alice:token-one"));
    upstream.push(&v2, "2", "team/other:2", Some("alice:token-one"));

    let server = Entrepot::start();
    // 1-2. The token, stored as a secret version.
    let token_file = work.path().join("token.txt");
    std::fs::write(&token_file, "token-one\n").unwrap();
    server.cli_ok(&[
        "secrets",
        "create",
        "upstream-token",
        &format!("--data-file={}", token_file.display()),
    ]);
    // The registry and its token service are allowed upstream hosts.
    server.cli_ok(&["access-policy", "allow", &upstream.addr, &tokens.addr]);
    // 4. The repository points at it.
    server.cli_ok(&[
        "repositories",
        "create",
        "private",
        "--repository-format=docker",
        "--mode=remote-repository",
        &format!("--remote-docker-repo=http://{}", upstream.addr),
        "--remote-username=alice",
        "--remote-password-secret-version=projects/default/secrets/upstream-token/versions/latest",
    ]);

    // Without step 3 the pull fails, naming the agent, the secret and the role.
    let agent = server.service_agent();
    let error = try_pull(
        &server,
        "default/private/team/app:1",
        &work.path().join("p0"),
    )
    .unwrap_err();
    assert!(
        error.contains(&agent),
        "the error does not name the service agent: {error}"
    );
    assert!(
        error.contains("upstream-token"),
        "the error does not name the secret: {error}"
    );
    assert!(
        error.contains("roles/secretmanager.secretAccessor"),
        "the error does not name the role: {error}"
    );

    // 3. Grant the service agent access; the next pull works.
    server.cli_ok(&[
        "secrets",
        "add-iam-policy-binding",
        "upstream-token",
        &format!("--member={agent}"),
        "--role=roles/secretmanager.secretAccessor",
    ]);
    let pulled = work.path().join("p1");
    try_pull(&server, "default/private/team/app:1", &pulled).unwrap();
    assert_same_content(&v1, &pulled, &d1);
    assert!(tokens
        .log_text()
        .contains("TOKEN user=alice scope=repository:team/app:pull"));

    // 5. Rotate: the upstream stops accepting the old token; a new secret
    // version makes the next pull work, with no restart.
    tokens.accept("alice:token-two\n");
    std::fs::write(&token_file, "token-two\n").unwrap();
    server.cli_ok(&[
        "secrets",
        "versions",
        "add",
        "upstream-token",
        &format!("--data-file={}", token_file.display()),
    ]);
    let pulled = work.path().join("p2");
    try_pull(&server, "default/private/team/other:2", &pulled).unwrap();
    assert_same_content(&v2, &pulled, &d2);

    // Every read of the secret by the agent is in the audit log, version 2 included.
    let audit = server.cli_ok(&[
        "audit",
        "list",
        "--resource=projects/default/secrets/upstream-token",
    ]);
    let agent_reads = |result: &str, version: &str| {
        audit.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(1) == Some(&result)
                && cols.get(2) == Some(&agent.as_str())
                && cols.get(4) == Some(&version)
        })
    };
    assert!(
        agent_reads("DENIED", "latest"),
        "the denied read is not audited:\n{audit}"
    );
    assert!(
        agent_reads("ALLOWED", "1"),
        "the read of version 1 is not audited:\n{audit}"
    );
    assert!(
        agent_reads("ALLOWED", "2"),
        "the read of version 2 is not audited:\n{audit}"
    );

    // The token never reaches the server's log.
    let log = server.log_text();
    assert!(
        !log.contains("token-one") && !log.contains("token-two"),
        "a token leaked into the log"
    );
}

#[test]
fn a_json_secret_payload_authenticates_to_a_basic_auth_upstream() {
    let work = tempfile::tempdir().unwrap();
    let upstream = Distribution::start_with_htpasswd("bob", "basic-secret");
    let original = work.path().join("original");
    let digest = image_layout(&original, "1", &[300_000]);
    upstream.push(&original, "1", "app:1", Some("bob:basic-secret"));

    let server = Entrepot::start();
    server.agent_secret(
        work.path(),
        "basic",
        r#"{"username": "bob", "accessToken": "basic-secret"}"#,
    );
    server.cli_ok(&["access-policy", "allow", &upstream.addr]);
    server.cli_ok(&[
        "repositories",
        "create",
        "basic",
        "--repository-format=docker",
        "--mode=remote-repository",
        &format!("--remote-docker-repo=http://{}", upstream.addr),
    ]);
    // Anonymous: the upstream refuses, and the client is told what to configure.
    let error = try_pull(&server, "default/basic/app:1", &work.path().join("p0")).unwrap_err();
    assert!(
        error.contains("--remote-password-secret-version"),
        "{error}"
    );

    server.cli_ok(&[
        "repositories",
        "update",
        "basic",
        "--remote-password-secret-version=projects/default/secrets/basic/versions/1",
    ]);
    let pulled = work.path().join("p1");
    try_pull(&server, "default/basic/app:1", &pulled).unwrap();
    assert_same_content(&original, &pulled, &digest);
    let report = server.cli_ok(&["repositories", "test-upstream", "basic"]);
    assert!(report.contains("authenticated: true"), "{report}");
}

#[test]
fn credentials_the_upstream_refuses_are_a_bad_gateway_naming_the_upstream() {
    let work = tempfile::tempdir().unwrap();
    let upstream = Distribution::start_with_htpasswd("bob", "the-right-token");
    image_layout(&work.path().join("original"), "1", &[1024]);
    upstream.push(
        &work.path().join("original"),
        "1",
        "app:1",
        Some("bob:the-right-token"),
    );

    // The stored token is not the one the upstream takes.
    let server = Server::start();
    server.agent_secret(work.path(), "stale", "a-revoked-token");
    server.cli_ok(&["access-policy", "allow", &upstream.addr]);
    server.cli_ok(&[
        "repositories",
        "create",
        "private",
        "--repository-format=docker",
        "--mode=remote-repository",
        &format!("--remote-docker-repo=http://{}", upstream.addr),
        "--remote-username=bob",
        "--remote-password-secret-version=projects/default/secrets/stale/versions/1",
    ]);

    // Not "denied" (the client's own login is fine): a bad gateway, whose
    // message skopeo shows from the status line.
    let error = try_pull(&server, "default/private/app:1", &work.path().join("p")).unwrap_err();
    assert!(error.contains("502"), "{error}");
    assert!(!error.contains("denied"), "{error}");
    assert!(
        error.contains(&upstream.addr) && error.contains("refused the configured credentials"),
        "{error}"
    );
    let response = server.get("/v2/default/private/app/manifests/1");
    let body = assert_oci_error(response, 502, "UNKNOWN");
    assert!(body.to_string().contains(&upstream.addr), "{body}");
}
