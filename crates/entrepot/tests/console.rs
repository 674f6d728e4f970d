//! The web console in a real browser: Debian's Chromium driven by Playwright's
//! core library (tests/console/flows.js), against the real binary, with real
//! upstreams (docker-registry behind a token service, pypiserver), and the
//! effect checked with real clients (skopeo, pip) between the browser's steps.
//! Screenshots go to target/ui-screenshots/.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::*;

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots")
}

/// Run one flow of flows.js with `settings`; its `RESULT` JSON.
fn run_flow(flow: &str, settings: &Value) -> Value {
    let dir = console_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "the browser tests need playwright-core: npm ci --prefix crates/entrepot/tests/console"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Chromium: apt-get install chromium"
    );
    let output = Command::new("node")
        .arg(dir.join("flows.js"))
        .arg(flow)
        .env("CONSOLE_TEST", settings.to_string())
        .current_dir(&dir)
        .output()
        .expect("cannot run node (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser flow {flow} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("flow {flow} printed no result: {stdout}"));
    serde_json::from_str(line).unwrap()
}

/// What every flow is told: where the console is, the admin's token, where
/// screenshots go.
fn settings(server: &Entrepot, extra: Value) -> Value {
    let mut s = json!({
        "base": server.base,
        "token": server.admin_token,
        "screenshots": screenshots(),
    });
    s.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    s
}

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
fn docker_the_seed_workflow_in_the_console_makes_skopeo_pull_work() {
    require_tool("skopeo", "skopeo");
    let work = tempfile::tempdir().unwrap();
    let tokens = TokenService::start(work.path(), "alice:token-one\n", 300);
    let upstream = Distribution::start_with_auth(&tokens.registry_auth());
    let original = work.path().join("v1");
    let digest = image_layout(&original, "1", &[300_000]);
    upstream.push(&original, "1", "team/app:1", Some("alice:token-one"));
    let server = Entrepot::start();

    let mut s = settings(
        &server,
        json!({
            "payload": "token-one",
            "secret": "upstream-token",
            "repository": "private",
            "username": "alice",
            "upstream_host": upstream.addr,
            "token_host": tokens.addr,
        }),
    );
    // Secret, remote repository, authentication mode; the agent is copied
    // from the project page.
    let configured = run_flow("docker_configure", &s);
    let agent = configured["agent"].as_str().unwrap().to_owned();
    assert_eq!(format!("serviceAccount:{agent}"), server.service_agent());

    // Before the grant the pull fails, naming the agent, the secret and the role.
    let error = try_pull(
        &server,
        "default/private/team/app:1",
        &work.path().join("p0"),
    )
    .unwrap_err();
    for needle in [
        agent.as_str(),
        "upstream-token",
        "roles/secretmanager.secretAccessor",
    ] {
        assert!(
            error.contains(needle),
            "the failed pull does not name {needle}: {error}"
        );
    }

    // The repository page says so; the grant goes through the info panel.
    s["agent"] = json!(agent);
    run_flow("docker_grant", &s);

    let pulled = work.path().join("p1");
    try_pull(&server, "default/private/team/app:1", &pulled).unwrap();
    assert_same_content(&original, &pulled, &digest);
    assert!(tokens
        .log_text()
        .contains("TOKEN user=alice scope=repository:team/app:pull"));
    // The explicit view was audited as a read by the admin.
    let audit = server.audit("projects/default/secrets/upstream-token");
    assert!(
        audit
            .iter()
            .any(|e| e["principal"] == "user:admin" && e["allowed"] == true),
        "the console's view of the value is not audited: {audit:?}"
    );
    assert!(!server.log_text().contains("token-one"));
}

#[test]
fn python_a_pypi_token_in_the_console_makes_pip_install_work() {
    let work = tempfile::tempdir().unwrap();
    let packages = work.path().join("packages");
    let wheel = make_dist(&packages, "wheel", "tiny-lib", "1.0", &[]);
    let upstream = PyPiServer::start_with(&packages, Some(("__token__", "pypi-AgEtoken")));
    let server = Entrepot::start();
    let url = server.python_index("pypi-private");

    run_flow(
        "python",
        &settings(
            &server,
            json!({
                "payload": "pypi-AgEtoken",
                "secret": "pypi-token",
                "repository": "pypi-private",
                "upstream_host": upstream.addr,
            }),
        ),
    );
    let target = work.path().join("installed");
    let out = pip_install(&url, &target, &["tiny-lib"]);
    assert!(out.status.success(), "pip install: {}", text(&out));
    assert!(target.join("tiny_lib").exists() || std::fs::read_dir(&target).unwrap().count() > 0);

    // The repository's page lists what pip fetched through it, with the
    // download's time as the admin API has it.
    let filename = wheel.file_name().unwrap().to_str().unwrap().to_owned();
    let versions = server
        .get_json("/v1/projects/default/repositories/pypi-private/packages/tiny-lib/versions");
    let last_pull = versions["versions"][0]["lastPullTime"]
        .as_str()
        .unwrap_or_else(|| panic!("the cached version has no lastPullTime: {versions}"))
        .to_owned();
    let viewed = run_flow(
        "python_cached",
        &settings(
            &server,
            json!({
                "repository": "pypi-private",
                "project": "tiny-lib",
                "version": "1.0",
                "filename": filename,
                "sha256": sha256(&std::fs::read(&wheel).unwrap()),
                "last_pull": last_pull,
            }),
        ),
    );
    assert_eq!(
        viewed["command"],
        format!(
            "pip install --index-url http://{}/pypi/default/pypi-private/simple/ tiny-lib==1.0",
            server.addr
        )
    );
}

#[test]
fn hosted_a_pushed_image_shows_its_tag_size_digest_and_pull_command() {
    require_tool("skopeo", "skopeo");
    let work = tempfile::tempdir().unwrap();
    let server = Entrepot::start();
    let s = settings(
        &server,
        json!({ "repository": "images", "image": "team/app", "tag": "1.0" }),
    );
    run_flow("hosted_create", &s);

    let layout = work.path().join("layout");
    let digest = image_layout(&layout, "1.0", &[200_000, 50_000]);
    server.skopeo_push(&layout, "1.0", "default/images/team/app:1.0", false);

    let mut s = s;
    s["digest"] = json!(digest);
    let viewed = run_flow("hosted_view", &s);
    let command = viewed["command"].as_str().unwrap();
    let reference = format!("{}/default/images/team/app:1.0", server.addr);
    assert_eq!(command, format!("docker pull {reference}"));
    // The copied command's reference pulls the image.
    let pulled = work.path().join("pulled");
    try_pull(&server, "default/images/team/app:1.0", &pulled).unwrap();
    assert_same_content(&layout, &pulled, &digest);
}

#[test]
fn access_policy_hosts_are_added_and_removed_and_dry_run_switches_back() {
    let server = Entrepot::start();
    run_flow("access_policy", &settings(&server, json!({})));
    let policy = server.get_json("/v1/organization/accessPolicy");
    let text = policy.to_string().to_ascii_lowercase();
    assert!(!text.contains("example.com"), "{policy}");
    assert!(
        !text.contains("dry"),
        "the policy stayed in dry run: {policy}"
    );
}

#[test]
fn reader_sees_no_controls_and_forged_or_tokenless_posts_are_refused() {
    let server = Entrepot::start();
    let reader = "reader@example.com";
    server.create_user(reader, Some("correct horse battery"));
    let member = format!("user:{reader}");
    server.grant("projects/default", &member, "roles/artifactregistry.reader");
    server.grant("projects/default", &member, "roles/secretmanager.viewer");
    server.create_secret("db-password", "hunter2-payload");
    // A remote repository whose agent cannot read its secret: the warning
    // shows, the Grant access button does not.
    server.create_remote_docker(
        "mirror",
        "http://127.0.0.1:9",
        json!({
            "username": "bot",
            "passwordSecretVersion": "projects/default/secrets/db-password/versions/latest",
        }),
    );

    let result = run_flow(
        "reader",
        &settings(
            &server,
            json!({
                "username": reader,
                "password": "correct horse battery",
                "payload": "hunter2-payload",
                "secret": "db-password",
                "repository": "mirror",
            }),
        ),
    );
    // Nothing was granted by the forged posts.
    let members = server.policy_members("projects/default/secrets/db-password");
    assert!(members.is_empty(), "forged grants landed: {members:?}");
    // The signed-out session's cookie opens nothing any more.
    let cookie = result["cookie"].as_str().unwrap();
    let response = server
        .bare_request(reqwest::Method::GET, "/ui/projects/default/secrets")
        .header("cookie", format!("entrepot_console={cookie}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 303, "a signed-out session still works");

    run_flow(
        "throttled",
        &settings(&server, json!({ "username": reader })),
    );
}

#[test]
fn secret_versions_are_disabled_enabled_and_destroyed_after_confirmation() {
    let server = Entrepot::start();
    let viewer = "viewer@example.com";
    server.create_user(viewer, Some("correct horse battery"));
    let s = settings(
        &server,
        json!({
            "secret": "api-key",
            "payload": "first-value-7f3a",
            "payload2": "second-value-9c1e",
            "username": viewer,
            "password": "correct horse battery",
        }),
    );
    run_flow("secret_versions", &s);
    // What the API says, from outside the browser.
    let versions = server.get_json("/v1/projects/default/secrets/api-key/versions");
    let states: Vec<(String, String)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
                v["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut states = states;
    states.sort();
    assert_eq!(
        states,
        [
            ("1".to_owned(), "DISABLED".to_owned()),
            ("2".to_owned(), "DESTROYED".to_owned())
        ],
        "{versions}"
    );
    // The destroyed value is gone: accessing it is refused.
    let access = server
        .request(
            reqwest::Method::GET,
            "/v1/projects/default/secrets/api-key/versions/2:access",
        )
        .send()
        .unwrap();
    assert!(access.status().is_client_error(), "{}", access.status());

    // A viewer sees the states and is offered nothing; posts are refused.
    server.grant(
        "projects/default",
        &format!("user:{viewer}"),
        "roles/secretmanager.viewer",
    );
    run_flow("secret_versions_viewer", &s);
    let versions = server.get_json("/v1/projects/default/secrets/api-key/versions/1");
    assert_eq!(versions["state"], "DISABLED", "a viewer's post changed it");
    let log = server.log_text();
    assert!(!log.contains("first-value-7f3a") && !log.contains("second-value-9c1e"));
}

#[test]
fn a_project_reader_sees_images_packages_and_last_pulls_of_hosted_and_remote_repositories() {
    require_tool("skopeo", "skopeo");
    let work = tempfile::tempdir().unwrap();
    let upstream = Distribution::start();
    let remote_layout = work.path().join("upstream");
    let remote_digest = image_layout(&remote_layout, "1", &[120_000]);
    upstream.push(&remote_layout, "1", "team/cached:1", None);

    let server = Entrepot::start();
    server.allow_upstream(&upstream.addr);
    server.create_repository("images");
    server.create_repository("untouched");
    server.create_remote_docker("up", &format!("http://{}", upstream.addr), json!({}));
    let layout = work.path().join("layout");
    let digest = image_layout(&layout, "1.0", &[60_000]);
    server.skopeo_push(&layout, "1.0", "default/images/app:1.0", false);
    let other = work.path().join("other");
    image_layout(&other, "2.0", &[10_000]);
    server.skopeo_push(&other, "2.0", "default/images/app:2.0", false);
    // One pull of the hosted image, one through the remote repository.
    try_pull(&server, "default/images/app:1.0", &work.path().join("p1")).unwrap();
    try_pull(&server, "default/up/team/cached:1", &work.path().join("p2")).unwrap();
    // And one download from a hosted Python repository.
    server.create_python("pyhosted", None, json!({}));
    let wheel = make_dist(&work.path().join("dists"), "wheel", "tiny-lib", "1.0", &[]);
    let legacy = format!("{}/pypi/default/pyhosted/legacy/", server.base);
    let out = twine_upload(&legacy, "__token__", &server.admin_token, &[&wheel]);
    assert!(out.status.success(), "twine upload: {}", text(&out));
    let out = pip_install(
        &server.python_index("pyhosted"),
        &work.path().join("pip"),
        &["tiny-lib"],
    );
    assert!(out.status.success(), "pip install: {}", text(&out));
    let versions =
        server.get_json("/v1/projects/default/repositories/pyhosted/packages/tiny-lib/versions");
    let python_last_pull = versions["versions"][0]["lastPullTime"]
        .as_str()
        .unwrap_or_else(|| panic!("the downloaded version has no lastPullTime: {versions}"))
        .to_owned();
    let listed = server.get_json("/v1/projects/default/repositories/images/dockerImages");
    let hosted_last_pull = listed["dockerImages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["digest"] == digest)
        .unwrap()["lastPullTime"]
        .as_str()
        .unwrap()
        .to_owned();

    // A reader of the project only: no organisation role, so no catalog.
    let reader = "project-reader@example.com";
    server.create_user(reader, Some("correct horse battery"));
    server.grant(
        "projects/default",
        &format!("user:{reader}"),
        "roles/artifactregistry.reader",
    );
    let result = run_flow(
        "project_reader",
        &settings(
            &server,
            json!({
                "username": reader,
                "password": "correct horse battery",
                "hosted": "images",
                "unpulled": "untouched",
                "image": "app",
                "tag": "1.0",
                "unpulled_tag": "2.0",
                "digest": digest,
                "hosted_last_pull": hosted_last_pull,
                "remote": "up",
                "remote_image": "team/cached",
                "remote_tag": "1",
                "remote_digest": remote_digest,
                "python_hosted": "pyhosted",
                "python_project": "tiny-lib",
                "python_version": "1.0",
                "python_last_pull": python_last_pull,
            }),
        ),
    );
    assert_eq!(
        result["command"],
        format!("docker pull {}/default/up/team/cached:1", server.addr)
    );
    // The page views were not counted as pulls.
    let again = server.get_json("/v1/projects/default/repositories/images/dockerImages");
    let pulled = again["dockerImages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["digest"] == digest)
        .unwrap()["lastPullTime"]
        .clone();
    assert_eq!(pulled, json!(hosted_last_pull));
}
