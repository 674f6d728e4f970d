//! IAM end to end: the real binary, skopeo, podman, the CLI and raw HTTP.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Output;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{ok, stderr, Entrepot, Podman};

/// The server as these tests drive it: every CLI call names the token it acts
/// with, and the banner of the first start is kept.
struct Server {
    entrepot: Entrepot,
    /// What the server printed on stdout after the listening line, up to the
    /// registry login hint.
    banner: Vec<String>,
}

impl Server {
    fn start() -> Server {
        let entrepot = Entrepot::builder().log_level("warn").start();
        let banner = entrepot.stdout_until(|l| l.contains("registry login:"));
        Server { entrepot, banner }
    }

    fn url(&self) -> String {
        self.base.clone()
    }

    fn data_dir(&self) -> PathBuf {
        self.entrepot.data_dir.clone()
    }

    /// The CLI with `token` (none: anonymous).
    fn cli(&self, token: Option<&str>, args: &[&str]) -> Output {
        self.cli_as(token, args)
    }

    fn cli_with_stdin(&self, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
        self.cli_with_input(token, args, stdin.map(str::as_bytes))
    }

    /// The CLI as the admin, which must succeed; its stdout.
    fn admin_cli(&self, args: &[&str]) -> String {
        self.cli_ok(args)
    }
}

impl std::ops::Deref for Server {
    type Target = Entrepot;

    fn deref(&self) -> &Entrepot {
        &self.entrepot
    }
}

const READER: &str = "roles/artifactregistry.reader";
const WRITER: &str = "roles/artifactregistry.writer";
const REPO_ADMIN: &str = "roles/artifactregistry.repoAdmin";
const ADMIN: &str = "roles/artifactregistry.admin";

fn create_images_repository(server: &Server) {
    server.admin_cli(&[
        "repositories",
        "create",
        "images",
        "--repository-format=docker",
    ]);
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn first_start_prints_the_listening_line_first_and_the_admin_token_once() {
    let server = Server::start();
    let token_line = server
        .banner
        .iter()
        .any(|l| l.contains(&server.admin_token));
    assert!(
        token_line,
        "the bootstrap token is printed on first start: {:?}",
        server.banner
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["bootstrap-admin-token", "registry-token-key"] {
            let mode = std::fs::metadata(server.data_dir().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    let project = server.admin_api("GET", "/v1/projects/default", None);
    let agent = project["serviceAgent"].as_str().unwrap();
    assert_eq!(
        agent,
        format!(
            "serviceAccount:service-{}@entrepot-agent.iam.entrepot",
            project["projectNumber"].as_str().unwrap()
        )
    );
}

#[test]
fn skopeo_login_push_and_pull_with_a_token() {
    let server = Server::start();
    create_images_repository(&server);

    // Without credentials the push is refused.
    let refused = server.push("default/images/app:1.0", None);
    assert!(!ok(&refused));
    assert!(
        stderr(&refused).contains("unauthorized"),
        "{}",
        stderr(&refused)
    );

    let login = std::process::Command::new("skopeo")
        .args([
            "login",
            "--tls-verify=false",
            "-u",
            "admin",
            "--password-stdin",
            &server.addr,
        ])
        .env("REGISTRY_AUTH_FILE", server.authfile())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(server.admin_token.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(ok(&login), "skopeo login: {}", stderr(&login));

    let pushed = server.push("default/images/app:1.0", None);
    assert!(ok(&pushed), "push: {}", stderr(&pushed));
    let pulled = server.pull("default/images/app:1.0", None);
    assert!(ok(&pulled), "pull: {}", stderr(&pulled));

    // A wrong token does not log in.
    let bad = server.skopeo(&[
        "login",
        "--tls-verify=false",
        "-u",
        "admin",
        "-p",
        "entp_not-a-real-token",
        &server.addr,
    ]);
    assert!(!ok(&bad));

    // podman logs in with the same token.
    let podman_auth = server.dir.path().join("podman-auth.json");
    let out = Podman::new()
        .command()
        .args(["login", "--tls-verify=false", "--authfile"])
        .arg(&podman_auth)
        .args(["-u", "admin", "-p", &server.admin_token, &server.addr])
        .output()
        .unwrap();
    assert!(ok(&out), "podman login: {}", stderr(&out));
}

#[test]
fn anonymous_pull_is_refused_until_all_users_may_read() {
    let server = Server::start();
    create_images_repository(&server);
    let creds = format!("admin:{}", server.admin_token);
    assert!(ok(&server.push("default/images/app:1.0", Some(&creds))));

    let ping = server.v2("GET", "/v2/", None);
    assert_eq!(ping.status(), 401);
    let challenge = ping.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        format!(
            r#"Bearer realm="http://{}/v2/token",service="entrepot""#,
            server.addr
        )
    );

    let manifest = server.v2("GET", "/v2/default/images/app/manifests/1.0", None);
    assert_eq!(manifest.status(), 401);
    let challenge = manifest.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"scope="repository:default/images/app:pull""#),
        "{challenge}"
    );
    let body: Value = manifest.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    assert!(!ok(&server.pull("default/images/app:1.0", None)));

    server.admin_cli(&[
        "repositories",
        "add-iam-policy-binding",
        "images",
        "--member=allUsers",
        "--role=roles/artifactregistry.reader",
    ]);
    assert_eq!(
        server
            .v2("GET", "/v2/default/images/app/manifests/1.0", None)
            .status(),
        200
    );
    let pulled = server.pull("default/images/app:1.0", None);
    assert!(ok(&pulled), "anonymous pull: {}", stderr(&pulled));
    // Reading is all allUsers got.
    assert!(!ok(&server.push("default/images/other:1.0", None)));
    let upload = server.v2("POST", "/v2/default/images/other/blobs/uploads/", None);
    assert_eq!(upload.status(), 401);

    server.admin_cli(&[
        "repositories",
        "remove-iam-policy-binding",
        "images",
        "--member=allUsers",
        "--role=roles/artifactregistry.reader",
    ]);
    assert_eq!(
        server
            .v2("GET", "/v2/default/images/app/manifests/1.0", None)
            .status(),
        401
    );
}

/// What each role may do: pull, push, delete, create repository, set policy.
const MATRIX: &[(&str, [bool; 5])] = &[
    (READER, [true, false, false, false, false]),
    (WRITER, [true, true, false, false, false]),
    (REPO_ADMIN, [true, true, true, false, false]),
    (ADMIN, [true, true, true, true, true]),
];

#[test]
fn each_artifactregistry_role_allows_what_it_documents() {
    let server = Server::start();
    create_images_repository(&server);
    let admin_creds = format!("admin:{}", server.admin_token);
    assert!(ok(
        &server.push("default/images/app:1.0", Some(&admin_creds))
    ));
    // skopeo compresses the layer on push, so ask the registry for the digest.
    let head = server.v2(
        "HEAD",
        "/v2/default/images/app/manifests/1.0",
        Some(("admin", &server.admin_token)),
    );
    let digest = head.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();

    for (i, (role, [pull, push, delete, create, set_policy])) in MATRIX.iter().enumerate() {
        let email = format!("user{i}@example.com");
        let token = server.user_with_token(&email, false);
        server.grant("projects/default", &format!("user:{email}"), role);
        let creds = format!("{email}:{token}");
        let basic = Some((email.as_str(), token.as_str()));
        let what = |action: &str| format!("{role} {action}");

        // pull: skopeo and raw HTTP
        assert!(ok(
            &server.push("default/images/app:1.0", Some(&admin_creds))
        ));
        assert_eq!(
            ok(&server.pull("default/images/app:1.0", Some(&creds))),
            *pull,
            "{}",
            what("pull")
        );
        let get = server.v2("GET", "/v2/default/images/app/manifests/1.0", basic);
        assert_eq!(get.status() == 200, *pull, "{}", what("raw pull"));

        // push: skopeo and raw HTTP
        let pushed = server.push(&format!("default/images/pushed-{i}:1.0"), Some(&creds));
        assert_eq!(ok(&pushed), *push, "{}: {}", what("push"), stderr(&pushed));
        let upload = server.v2("POST", "/v2/default/images/raw/blobs/uploads/", basic);
        assert_eq!(upload.status() == 202, *push, "{}", what("raw push"));
        if !*push {
            assert_eq!(upload.status(), 403);
            let body: Value = upload.json().unwrap();
            assert_eq!(body["errors"][0]["code"], "DENIED");
        }

        // delete: skopeo and raw HTTP
        assert!(ok(&server.push(
            &format!("default/images/del-a-{i}:1.0"),
            Some(&admin_creds)
        )));
        assert!(ok(&server.push(
            &format!("default/images/del-b-{i}:1.0"),
            Some(&admin_creds)
        )));
        let deleted = server.skopeo(&[
            "delete",
            "--tls-verify=false",
            "--creds",
            &creds,
            &format!("docker://{}/default/images/del-a-{i}@{digest}", server.addr),
        ]);
        assert_eq!(
            ok(&deleted),
            *delete,
            "{}: {}",
            what("delete"),
            stderr(&deleted)
        );
        let raw_delete = server.v2(
            "DELETE",
            &format!("/v2/default/images/del-b-{i}/manifests/{digest}"),
            basic,
        );
        assert_eq!(
            raw_delete.status() == 202,
            *delete,
            "{}",
            what("raw delete")
        );

        // create repository: CLI and raw HTTP
        let cli = server.cli(
            Some(&token),
            &[
                "repositories",
                "create",
                &format!("cli-{i}"),
                "--repository-format=docker",
            ],
        );
        assert_eq!(ok(&cli), *create, "{}: {}", what("create"), stderr(&cli));
        let (status, _) = server.api(
            "POST",
            &format!("/v1/projects/default/repositories?repositoryId=raw-{i}"),
            Some(&token),
            Some(json!({ "format": "docker" })),
        );
        assert_eq!(status == 200, *create, "{}", what("raw create"));
        if !*create {
            assert_eq!(status, 403);
        }

        // set repository policy: CLI and raw HTTP
        let policy = server.admin_api(
            "GET",
            "/v1/projects/default/repositories/images:getIamPolicy",
            None,
        );
        let (status, body) = server.api(
            "POST",
            "/v1/projects/default/repositories/images:setIamPolicy",
            Some(&token),
            Some(json!({ "policy": policy })),
        );
        assert_eq!(
            status == 200,
            *set_policy,
            "{}: {body}",
            what("raw set policy")
        );
        if !*set_policy {
            assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        }
        let cli = server.cli(
            Some(&token),
            &[
                "repositories",
                "add-iam-policy-binding",
                "images",
                "--member=user:nobody@example.com",
                "--role=roles/artifactregistry.reader",
            ],
        );
        assert_eq!(
            ok(&cli),
            *set_policy,
            "{}: {}",
            what("cli set policy"),
            stderr(&cli)
        );
    }
}

#[test]
fn set_iam_policy_with_a_stale_etag_is_refused() {
    let server = Server::start();
    create_images_repository(&server);
    let path = "/v1/projects/default/repositories/images";
    let read = server.admin_api("GET", &format!("{path}:getIamPolicy"), None);
    let mut first = read.clone();
    first["bindings"] = json!([{ "role": READER, "members": ["user:a@example.com"] }]);
    let written = server.admin_api(
        "POST",
        &format!("{path}:setIamPolicy"),
        Some(json!({ "policy": first })),
    );
    assert_ne!(written["etag"], read["etag"]);

    let mut second = read;
    second["bindings"] = json!([{ "role": WRITER, "members": ["user:b@example.com"] }]);
    let (status, body) = server.api(
        "POST",
        &format!("{path}:setIamPolicy"),
        Some(&server.admin_token),
        Some(json!({ "policy": second.clone() })),
    );
    assert_eq!(status, 412, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("etag"),
        "{body}"
    );

    // The CLI refuses the stale file too, and the first write stands.
    let file = server.dir.path().join("stale.json");
    std::fs::write(&file, second.to_string()).unwrap();
    let out = server.cli(
        Some(&server.admin_token),
        &[
            "repositories",
            "set-iam-policy",
            "images",
            file.to_str().unwrap(),
        ],
    );
    assert!(!ok(&out));
    assert!(stderr(&out).contains("etag"), "{}", stderr(&out));
    let now = server.admin_api("GET", &format!("{path}:getIamPolicy"), None);
    assert_eq!(now, written);

    // Unknown roles get a clear error.
    let mut bad = written;
    bad["bindings"] =
        json!([{ "role": "roles/artifactregistry.superuser", "members": ["allUsers"] }]);
    let (status, body) = server.api(
        "POST",
        &format!("{path}:setIamPolicy"),
        Some(&server.admin_token),
        Some(json!({ "policy": bad })),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{body}"
    );
}

#[test]
fn tokens_are_shown_once_and_revoked_tokens_stop_working() {
    let server = Server::start();
    create_images_repository(&server);
    let admin_creds = format!("admin:{}", server.admin_token);
    assert!(ok(
        &server.push("default/images/app:1.0", Some(&admin_creds))
    ));
    server.admin_api(
        "POST",
        "/v1/users",
        Some(json!({ "email": "ci@example.com" })),
    );
    server.grant("projects/default", "user:ci@example.com", READER);

    let created = server.admin_cli(&[
        "tokens",
        "create",
        "--for=user:ci@example.com",
        "--description=ci",
        "--expires-in=30d",
    ]);
    let created: Value = serde_json::from_str(&created).unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["expireTime"].is_string());

    let listed = server.admin_cli(&["tokens", "list", "--for=user:ci@example.com"]);
    assert!(listed.contains(&id) && !listed.contains(&token), "{listed}");
    let (_, raw) = server.api(
        "GET",
        "/v1/tokens?principal=user:ci@example.com",
        Some(&server.admin_token),
        None,
    );
    assert!(!raw.to_string().contains(&token));
    assert!(raw["tokens"][0].get("token").is_none());

    let creds = format!("ci@example.com:{token}");
    assert!(ok(&server.pull("default/images/app:1.0", Some(&creds))));
    // A registry token obtained before the revocation dies with it.
    let issued: Value = server
        .v2(
            "GET",
            "/v2/token?service=entrepot&scope=repository:default/images/app:pull",
            Some(("ci@example.com", &token)),
        )
        .json()
        .unwrap();
    let jwt = issued["token"].as_str().unwrap().to_owned();
    let with_jwt = |jwt: &str| {
        reqwest::blocking::Client::new()
            .get(format!(
                "{}/v2/default/images/app/manifests/1.0",
                server.url()
            ))
            .bearer_auth(jwt)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(with_jwt(&jwt), 200);

    server.admin_cli(&["tokens", "revoke", &id, "--quiet"]);
    assert!(!ok(&server.pull("default/images/app:1.0", Some(&creds))));
    let raw = server.v2(
        "GET",
        "/v2/default/images/app/manifests/1.0",
        Some(("ci@example.com", &token)),
    );
    assert_eq!(raw.status(), 401);
    assert_eq!(with_jwt(&jwt), 401);
    let (status, _) = server.api("GET", "/v1/tokens", Some(&token), None);
    assert_eq!(status, 401);
}

#[test]
fn read_only_token_cannot_push() {
    let server = Server::start();
    create_images_repository(&server);
    let admin_creds = format!("admin:{}", server.admin_token);
    assert!(ok(
        &server.push("default/images/app:1.0", Some(&admin_creds))
    ));
    let token = server.user_with_token("dev@example.com", true);
    server.grant("projects/default", "user:dev@example.com", WRITER);
    let creds = format!("dev@example.com:{token}");

    assert!(ok(&server.pull("default/images/app:1.0", Some(&creds))));
    let pushed = server.push("default/images/mine:1.0", Some(&creds));
    assert!(!ok(&pushed));
    let raw = server.v2(
        "POST",
        "/v2/default/images/mine/blobs/uploads/",
        Some(("dev@example.com", &token)),
    );
    assert_eq!(raw.status(), 403);
    let body: Value = raw.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{body}"
    );

    // The token endpoint grants the read-only token pull, not push.
    let issued: Value = server
        .v2(
            "GET",
            "/v2/token?service=entrepot&scope=repository:default/images/app:pull,push",
            Some(("dev@example.com", &token)),
        )
        .json()
        .unwrap();
    let claims = jwt_claims(issued["token"].as_str().unwrap());
    assert_eq!(claims["access"][0]["actions"], json!(["pull"]));
    // Nor may it mint itself a stronger token.
    let (status, _) = server.api("POST", "/v1/tokens", Some(&token), Some(json!({})));
    assert_eq!(status, 403);
}

#[test]
fn token_endpoint_grants_the_requested_actions_the_caller_holds() {
    let server = Server::start();
    create_images_repository(&server);
    let token = server.user_with_token("reader@example.com", false);
    server.grant(
        "projects/default/repositories/images",
        "user:reader@example.com",
        READER,
    );
    let response = server.v2(
        "GET",
        "/v2/token?service=entrepot&scope=repository:default/images/app:pull,push&scope=repository:default/other/app:pull",
        Some(("reader@example.com", &token)),
    );
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["issued_at"].is_string());
    let claims = jwt_claims(body["token"].as_str().unwrap());
    assert_eq!(claims["sub"], "user:reader@example.com");
    assert_eq!(claims["aud"], "entrepot");
    assert_eq!(
        claims["access"],
        json!([
            { "type": "repository", "name": "default/images/app", "actions": ["pull"] },
            { "type": "repository", "name": "default/other/app", "actions": [] }
        ])
    );

    // Anonymous callers get a token too, granting nothing here.
    let anonymous: Value = server
        .v2(
            "GET",
            "/v2/token?service=entrepot&scope=repository:default/images/app:pull",
            None,
        )
        .json()
        .unwrap();
    assert_eq!(
        jwt_claims(anonymous["token"].as_str().unwrap())["access"][0]["actions"],
        json!([])
    );

    // Bad credentials are refused outright.
    let bad = server.v2(
        "GET",
        "/v2/token?service=entrepot",
        Some(("reader@example.com", "entp_wrong")),
    );
    assert_eq!(bad.status(), 401);

    // Basic with a password works on every request, as does the token endpoint.
    server.admin_api(
        "POST",
        "/v1/users",
        Some(json!({ "email": "pw@example.com", "password": "long enough password" })),
    );
    server.grant("projects/default", "user:pw@example.com", READER);
    let ping = server.v2(
        "GET",
        "/v2/",
        Some(("pw@example.com", "long enough password")),
    );
    assert_eq!(ping.status(), 200);
    let wrong = server.v2("GET", "/v2/", Some(("pw@example.com", "not the password")));
    assert_eq!(wrong.status(), 401);
}

#[test]
fn login_remembers_the_server_and_token_for_later_commands() {
    let server = Server::start();
    let out = server.cli_with_stdin(
        None,
        &["login", "--token-file", "-"],
        Some(&server.admin_token),
    );
    assert!(ok(&out), "{}", stderr(&out));
    assert!(stderr(&out).contains("user:admin"), "{}", stderr(&out));

    // No --token: the config file supplies it.
    let out = server.cli(None, &["projects", "create", "demo"]);
    assert!(ok(&out), "{}", stderr(&out));
    let project: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(project["serviceAgent"]
        .as_str()
        .unwrap()
        .ends_with("@entrepot-agent.iam.entrepot"));
    let out = server.cli(None, &["projects", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo"));

    // Users, service accounts and the secret IAM verbs through the CLI.
    server.admin_cli(&["users", "create", "eve@example.com"]);
    let eve = server.admin_cli(&["tokens", "create", "--for=eve@example.com"]);
    let eve: Value = serde_json::from_str(&eve).unwrap();
    let eve = eve["token"].as_str().unwrap();
    assert!(!ok(&server.cli(Some(eve), &["users", "list"])));
    server.admin_cli(&[
        "organization",
        "add-iam-policy-binding",
        "--member=user:eve@example.com",
        "--role=roles/owner",
    ]);
    assert!(ok(&server.cli(Some(eve), &["users", "list"])));
    assert!(server
        .admin_cli(&["users", "list"])
        .contains("eve@example.com"));
    server.admin_cli(&["service-accounts", "create", "builder", "--project=demo"]);
    assert!(server
        .admin_cli(&["service-accounts", "list", "--project=demo"])
        .contains("builder@demo.iam.entrepot"));
    let agent = project["serviceAgent"].as_str().unwrap();
    server.admin_cli(&["secrets", "create", "hub-token", "--project=demo"]);
    server.admin_cli(&[
        "secrets",
        "add-iam-policy-binding",
        "hub-token",
        "--project=demo",
        &format!("--member={agent}"),
        "--role=roles/secretmanager.secretAccessor",
    ]);
    let policy: Value = serde_json::from_str(&server.admin_cli(&[
        "secrets",
        "get-iam-policy",
        "hub-token",
        "--project=demo",
        "--format=json",
    ]))
    .unwrap();
    assert_eq!(policy["bindings"][0]["members"][0], agent);
    // The service agent has no credentials of its own.
    let (status, _) = server.api(
        "POST",
        "/v1/tokens",
        Some(&server.admin_token),
        Some(json!({ "principal": agent })),
    );
    assert_eq!(status, 400);
    server.admin_cli(&[
        "service-accounts",
        "delete",
        "builder",
        "--project=demo",
        "-q",
    ]);
    server.admin_cli(&["users", "delete", "eve@example.com", "-q"]);
    assert!(!server
        .admin_cli(&["users", "list"])
        .contains("eve@example.com"));
}

#[test]
fn a_recreated_repository_does_not_inherit_the_old_grants() {
    let server = Server::start();
    create_images_repository(&server);
    server.grant("projects/default/repositories/images", "allUsers", READER);
    server.admin_cli(&["repositories", "delete", "images", "-q"]);
    create_images_repository(&server);
    let policy = server.admin_api(
        "GET",
        "/v1/projects/default/repositories/images:getIamPolicy",
        None,
    );
    assert_eq!(policy["bindings"], json!([]));
    let (status, _) = server.api(
        "GET",
        "/v1/projects/default/repositories/nothere:getIamPolicy",
        Some(&server.admin_token),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn test_iam_permissions_answers_the_held_subset() {
    let server = Server::start();
    create_images_repository(&server);
    let token = server.user_with_token("viewer@example.com", false);
    server.grant(
        "projects/default/repositories/images",
        "user:viewer@example.com",
        READER,
    );
    let asked = json!({ "permissions": [
        "artifactregistry.repositories.downloadArtifacts",
        "artifactregistry.repositories.uploadArtifacts",
        "artifactregistry.repositories.get",
    ]});
    let (status, body) = server.api(
        "POST",
        "/v1/projects/default/repositories/images:testIamPermissions",
        Some(&token),
        Some(asked.clone()),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["permissions"],
        json!([
            "artifactregistry.repositories.downloadArtifacts",
            "artifactregistry.repositories.get"
        ])
    );
    // Project-wide, the repository grant does not apply.
    let (_, body) = server.api(
        "POST",
        "/v1/projects/default:testIamPermissions",
        Some(&token),
        Some(asked),
    );
    assert_eq!(body["permissions"], json!([]));
    let (status, _) = server.api(
        "POST",
        "/v1/projects/default:testIamPermissions",
        Some(&token),
        Some(json!({ "permissions": ["made.up.permission"] })),
    );
    assert_eq!(status, 400);
}
