//! The secret manager's user story in one run, as a team would live it: store a
//! token, add a version, let a service account read it, disable the newest
//! version, see an outsider refused and audited, and a stale policy refused.
//! Then every predefined role against a secret's payload.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::*;

/// A new service account in project `default` and a token for it.
fn service_account(server: &Entrepot, name: &str) -> (String, String) {
    let account: Value =
        serde_json::from_str(&server.cli_ok(&["service-accounts", "create", name])).unwrap();
    let email = account["email"].as_str().unwrap().to_owned();
    let member = format!("serviceAccount:{email}");
    let token: Value =
        serde_json::from_str(&server.cli_ok(&["tokens", "create", &format!("--for={member}")]))
            .unwrap();
    (member, token["token"].as_str().unwrap().to_owned())
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    format!("--data-file={}", path.display())
}

#[test]
fn a_service_account_reads_the_latest_enabled_version_and_outsiders_are_refused() {
    let server = Entrepot::start();
    let files = tempfile::tempdir().unwrap();
    server.cli_ok(&[
        "secrets",
        "create",
        "api-token",
        &write(files.path(), "v1", "first-token"),
    ]);
    server.cli_ok(&[
        "secrets",
        "versions",
        "add",
        "api-token",
        &write(files.path(), "v2", "second-token"),
    ]);

    let (reader, reader_token) = service_account(&server, "deployer");
    let (outsider, outsider_token) = service_account(&server, "outsider");
    server.cli_ok(&[
        "secrets",
        "add-iam-policy-binding",
        "api-token",
        &format!("--member={reader}"),
        "--role=roles/secretmanager.secretAccessor",
    ]);

    let read_latest = |token: &str| {
        server.cli_as(
            Some(token),
            &[
                "secrets",
                "versions",
                "access",
                "latest",
                "--secret=api-token",
            ],
        )
    };
    assert_eq!(success_stdout(read_latest(&reader_token)), "second-token");
    server.cli_ok(&["secrets", "versions", "disable", "2", "--secret=api-token"]);
    assert_eq!(success_stdout(read_latest(&reader_token)), "first-token");

    let refused = read_latest(&outsider_token);
    assert!(
        !refused.status.success(),
        "a principal without the role read the secret"
    );
    assert!(String::from_utf8_lossy(&refused.stdout).is_empty());
    let audit = server.cli_ok(&[
        "audit",
        "list",
        "--resource=projects/default/secrets/api-token",
    ]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("DENIED") && l.contains(&outsider)),
        "the denial is not in the audit log:\n{audit}"
    );
    assert!(audit
        .lines()
        .any(|l| l.contains("ALLOWED") && l.contains(&reader)));

    // set-iam-policy with a stale etag is refused and changes nothing.
    let stale = server.cli_ok(&["secrets", "get-iam-policy", "api-token", "--format=json"]);
    let stale_file = files.path().join("stale.json");
    std::fs::write(&stale_file, &stale).unwrap();
    server.cli_ok(&[
        "secrets",
        "add-iam-policy-binding",
        "api-token",
        &format!("--member={outsider}"),
        "--role=roles/secretmanager.viewer",
    ]);
    let refused = server.cli(&[
        "secrets",
        "set-iam-policy",
        "api-token",
        stale_file.to_str().unwrap(),
    ]);
    assert!(!refused.status.success(), "a stale etag was accepted");
    let current: Value = serde_json::from_str(&server.cli_ok(&[
        "secrets",
        "get-iam-policy",
        "api-token",
        "--format=json",
    ]))
    .unwrap();
    assert!(current.to_string().contains("roles/secretmanager.viewer"));
}

#[test]
fn only_accessor_admin_and_owner_roles_read_a_payload() {
    let server = Entrepot::start();
    let files = tempfile::tempdir().unwrap();
    server.cli_ok(&[
        "secrets",
        "create",
        "db-password",
        &write(files.path(), "v1", "hunter2"),
    ]);
    let roles = [
        ("roles/artifactregistry.reader", false),
        ("roles/artifactregistry.writer", false),
        ("roles/artifactregistry.repoAdmin", false),
        ("roles/artifactregistry.admin", false),
        ("roles/secretmanager.viewer", false),
        ("roles/secretmanager.secretAccessor", true),
        ("roles/secretmanager.admin", true),
        ("roles/owner", true),
    ];
    for (i, (role, allowed)) in roles.into_iter().enumerate() {
        let (member, token) = service_account(&server, &format!("role-check-{i}"));
        server.cli_ok(&[
            "secrets",
            "add-iam-policy-binding",
            "db-password",
            &format!("--member={member}"),
            &format!("--role={role}"),
        ]);
        let read = server.cli_as(
            Some(&token),
            &["secrets", "versions", "access", "1", "--secret=db-password"],
        );
        assert_eq!(
            read.status.success(),
            allowed,
            "{role} reading the payload: {}",
            String::from_utf8_lossy(&read.stderr)
        );
        if allowed {
            assert_eq!(String::from_utf8_lossy(&read.stdout), "hunter2");
        }
    }
}
