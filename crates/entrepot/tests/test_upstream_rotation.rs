//! `repositories test-upstream` right after a credential rotation tests the
//! new secret version with a new token, not the cached credential or token,
//! and says which version it presented.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;

#[test]
fn test_upstream_reads_the_current_secret_version_and_fetches_a_fresh_token() {
    let work = tempfile::tempdir().unwrap();
    // Tokens live 300 s: a cached one would still be accepted after the rotation.
    let tokens = TokenService::start(work.path(), "alice:token-one\n", 300);
    let upstream = Distribution::start_with_auth(&tokens.registry_auth());
    let server = Entrepot::start();
    let token_file = work.path().join("token.txt");
    std::fs::write(&token_file, "token-one\n").unwrap();
    let data = format!("--data-file={}", token_file.display());
    server.cli_ok(&["secrets", "create", "upstream-token", &data]);
    server.cli_ok(&[
        "secrets",
        "add-iam-policy-binding",
        "upstream-token",
        &format!("--member={}", server.service_agent()),
        "--role=roles/secretmanager.secretAccessor",
    ]);
    server.cli_ok(&["access-policy", "allow", &upstream.addr, &tokens.addr]);
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
    let check = || server.cli(&["repositories", "test-upstream", "private"]);
    let tokens_issued = || tokens.log_text().matches("TOKEN user=alice").count();

    let first = check();
    assert!(ok(&first), "{}", stderr(&first));
    let said = text(&first);
    assert!(said.contains("upstream-token/versions/1"), "{said}");

    // Rotation to a token the upstream does not accept: the check fails at
    // once, although the token issued for version 1 is still valid.
    std::fs::write(&token_file, "token-wrong\n").unwrap();
    server.cli_ok(&["secrets", "versions", "add", "upstream-token", &data]);
    let wrong = check();
    assert!(
        !ok(&wrong),
        "the rotated, wrong token was reported accepted"
    );
    let said = text(&wrong);
    assert!(said.contains("authenticated: false"), "{said}");
    assert!(said.contains("upstream-token/versions/2"), "{said}");

    // Rotation to the token the upstream now accepts: a fresh token for it.
    tokens.accept("alice:token-two\n");
    std::fs::write(&token_file, "token-two\n").unwrap();
    server.cli_ok(&["secrets", "versions", "add", "upstream-token", &data]);
    let before = tokens_issued();
    let second = check();
    assert!(ok(&second), "{}", text(&second));
    let said = text(&second);
    assert!(said.contains("upstream-token/versions/3"), "{said}");
    assert!(
        tokens_issued() > before,
        "no new token was asked for:\n{}",
        tokens.log_text()
    );
}
