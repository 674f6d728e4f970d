//! Google's own Secret Manager clients against entrepot's `/v1`: the Python
//! library (`google-cloud-secret-manager`, REST transport) and the Node.js
//! library (`@google-cloud/secret-manager`, `fallback: true`) run Google's
//! samples unchanged but for where they point and which token they carry;
//! Google's documented `curl ... :setIamPolicy` runs verbatim but for host and
//! token; and the REST shapes those clients rely on (replication, labels,
//! annotations, etags, update masks, filters, rotation, numbered enums,
//! `google.rpc.Status` errors) are checked by plain HTTP.
//!
//! The clients are installed by `.ci/run`: the Python one into the test
//! virtual environment, the Node one with `npm ci` in `tests/google/node`.
//! A missing client fails its test with the command that installs it.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::{json, Value};
use support::*;

/// Payloads the scripts write; no output may ever show them.
const PYTHON_PAYLOAD: &str = "s3cr3t-from-python";
const NODE_PAYLOAD: &str = "s3cr3t-from-node";

fn google_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/google")
}

/// A new service account in project `default` and a token for it.
fn service_account(server: &Entrepot, name: &str) -> (String, String) {
    let account: Value =
        serde_json::from_str(&server.cli_ok(&["service-accounts", "create", name])).unwrap();
    let member = format!("serviceAccount:{}", account["email"].as_str().unwrap());
    let token: Value =
        serde_json::from_str(&server.cli_ok(&["tokens", "create", &format!("--for={member}")]))
            .unwrap();
    (member, token["token"].as_str().unwrap().to_owned())
}

/// Run a client script; fail with its output unless it succeeds. Neither its
/// output nor the server's log may show `payload`.
fn run_client(server: &Entrepot, command: &mut Command, payload: &str) -> String {
    let out: Output = command.output().expect("cannot start the client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "the client failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        server.log_text()
    );
    for (what, text) in [
        ("stdout", &stdout),
        ("stderr", &stderr),
        ("the server log", &server.log_text()),
    ] {
        assert!(!text.contains(payload), "{what} shows the payload");
    }
    stdout
}

#[test]
fn googles_python_client_runs_the_samples_against_entrepot() {
    let python = tool("python");
    let probe = Command::new(&python)
        .args(["-c", "import google.cloud.secretmanager, google_crc32c"])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "google-cloud-secret-manager is missing from {}; install it with: {} -m pip install -r .ci/requirements.txt\n{}",
        venv().display(),
        python.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    let server = Entrepot::start();
    let (member, member_token) = service_account(&server, "deployer");
    let stdout = run_client(
        &server,
        Command::new(&python)
            .arg(google_dir().join("secret_manager.py"))
            .env("ENTREPOT_ENDPOINT", &server.base)
            .env("ENTREPOT_TOKEN", &server.admin_token)
            .env("PROJECT", "default")
            .env("SECRET", "python-sample")
            .env("MEMBER", &member)
            .env("MEMBER_TOKEN", &member_token),
        PYTHON_PAYLOAD,
    );
    for step in [
        "Created secret: projects/default/secrets/python-sample",
        "Added secret version: projects/default/secrets/python-sample/versions/1",
        "Accessed latest: payload and dataCrc32c match",
        "Updated IAM policy on python-sample",
        "The member reads the version with its own token",
        "Wrong checksum refused: 400",
        "Disabled version refused: 412",
        "Missing secret: 404",
        "Deleted secret",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    // The member's read went through IAM and into the audit log, which
    // outlives the secret.
    let entries = server.audit("projects/default/secrets/python-sample");
    assert!(
        entries
            .iter()
            .any(|e| e["principal"] == member.as_str() && e["allowed"] == true),
        "{entries:?}"
    );
}

#[test]
fn googles_node_client_runs_the_samples_against_entrepot() {
    let dir = google_dir().join("node");
    let node = std::env::var_os("ENTREPOT_NODE").unwrap_or_else(|| "node".into());
    let version = Command::new(&node).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "node is not installed (or ENTREPOT_NODE is wrong); install it with: apt-get install -y nodejs npm"
    );
    assert!(
        dir.join("node_modules/@google-cloud/secret-manager")
            .is_dir(),
        "@google-cloud/secret-manager is not installed; run: npm ci --prefix {}",
        dir.display()
    );
    let server = Entrepot::start();
    let (host, port) = server.addr.split_once(':').unwrap();
    let stdout = run_client(
        &server,
        Command::new(&node)
            .arg(dir.join("secret_manager.js"))
            .current_dir(&dir)
            .env("ENTREPOT_HOST", host)
            .env("ENTREPOT_PORT", port)
            .env("ENTREPOT_TOKEN", &server.admin_token)
            .env("PROJECT", "default")
            .env("SECRET", "node-sample")
            .env("MEMBER", "user:bob@example.com"),
        NODE_PAYLOAD,
    );
    for step in [
        "Created secret projects/default/secrets/node-sample",
        "Added secret version projects/default/secrets/node-sample/versions/1",
        "Accessed latest: payload matches",
        "Updated IAM policy for projects/default/secrets/node-sample",
        "Labels updated and filtered on",
        "Disabled version refused",
        "Deleted secret",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}

#[test]
fn the_documented_curl_set_iam_policy_command_works() {
    let server = Entrepot::start();
    server.create_secret("secret-id", "curl-payload");
    let (member, member_token) = service_account(&server, "curl-reader");
    // Google's documented command, but for the host and the token.
    let out = Command::new("curl")
        .arg(format!(
            "{}/v1/projects/default/secrets/secret-id:setIamPolicy",
            server.base
        ))
        .args(["--silent", "--show-error", "--fail-with-body"])
        .args(["--request", "POST"])
        .args([
            "--header",
            &format!("authorization: Bearer {}", server.admin_token),
        ])
        .args(["--header", "content-type: application/json"])
        .args([
            "--data",
            &format!(
                "{{\"policy\": {{\"bindings\": [{{\"members\": [\"{member}\"], \"role\": \"roles/secretmanager.secretAccessor\"}}]}}}}"
            ),
        ])
        .output()
        .expect("curl is not installed; install it with: apt-get install -y curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {body}");
    let policy: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        policy["bindings"][0]["role"],
        "roles/secretmanager.secretAccessor"
    );
    assert_eq!(
        server.policy_members("projects/default/secrets/secret-id"),
        [member]
    );
    let (status, read) = server.api(
        "GET",
        "/v1/projects/default/secrets/secret-id/versions/latest:access",
        Some(&member_token),
        None,
    );
    assert_eq!(status, 200, "{read}");
    let data = base64::engine::general_purpose::STANDARD
        .decode(read["payload"]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, b"curl-payload");
}

/// The query the client libraries add to every call.
const ALT: &str = "$alt=json;enum-encoding=int";

#[test]
fn secrets_carry_replication_annotations_etags_and_numbered_enums() {
    let server = Entrepot::start();
    let created = server.admin_api(
        "POST",
        &format!("/v1/projects/default/secrets?secretId=configured&{ALT}"),
        Some(json!({
            "replication": {"userManaged": {"replicas": [{"location": "europe-west1"}]}},
            "labels": {"env": "prod"},
            "annotations": {"owner.team": "Platform, room 4"},
            "ttl": "86400s",
        })),
    );
    assert_eq!(
        created["replication"],
        json!({"userManaged": {"replicas": [{"location": "europe-west1"}]}})
    );
    assert_eq!(created["annotations"]["owner.team"], "Platform, room 4");
    assert!(created["expireTime"].as_str().unwrap().ends_with('Z'));
    let etag = created["etag"].as_str().unwrap().to_owned();

    // A version's state comes back as a number when asked.
    let data = base64::engine::general_purpose::STANDARD.encode("configured-payload");
    let version = server.admin_api(
        "POST",
        &format!("/v1/projects/default/secrets/configured:addVersion?{ALT}"),
        Some(json!({"payload": {"data": data, "dataCrc32c": "4099979699"}})),
    );
    assert_eq!(version["state"], 1, "{version}");
    let named = server.admin_api(
        "GET",
        "/v1/projects/default/secrets/configured/versions/1",
        None,
    );
    assert_eq!(named["state"], "ENABLED");
    let listed = server.admin_api(
        "GET",
        &format!("/v1/projects/default/secrets/configured/versions?{ALT}&prettyPrint=false"),
        None,
    );
    assert_eq!(listed["versions"][0]["state"], 1);

    // The access response carries the checksum the library verifies.
    let accessed = server.admin_api(
        "GET",
        &format!("/v1/projects/default/secrets/configured/versions/latest:access?{ALT}"),
        None,
    );
    assert_eq!(accessed["payload"]["dataCrc32c"], "4099979699");

    // A damaged payload is refused, in google.rpc.Status form.
    let refused = server
        .request(
            reqwest::Method::POST,
            "/v1/projects/default/secrets/configured:addVersion",
        )
        .json(&json!({"payload": {"data": data, "dataCrc32c": "1"}}))
        .send()
        .unwrap();
    let body: Value = refused.json().unwrap();
    assert_eq!(body["error"]["code"], 400, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["details"], json!([]));
    let versions = server.admin_api(
        "GET",
        "/v1/projects/default/secrets/configured/versions",
        None,
    );
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);

    // Patch follows the update mask; a stale etag is refused.
    let patched = server.admin_api(
        "PATCH",
        &format!("/v1/projects/default/secrets/configured?updateMask=annotations&{ALT}"),
        Some(json!({
            "labels": {"env": "ignored-by-the-mask"},
            "annotations": {"owner.team": "Core"},
            "etag": etag,
        })),
    );
    assert_eq!(patched["labels"]["env"], "prod");
    assert_eq!(patched["annotations"]["owner.team"], "Core");
    let (status, stale) = server.api(
        "PATCH",
        "/v1/projects/default/secrets/configured?updateMask=labels",
        Some(&server.admin_token),
        Some(json!({"labels": {"env": "dev"}, "etag": etag})),
    );
    assert_eq!(status, 412, "{stale}");
    assert_eq!(stale["error"]["status"], "FAILED_PRECONDITION");
    let (status, _) = server.api(
        "DELETE",
        &format!("/v1/projects/default/secrets/configured?etag={etag}"),
        Some(&server.admin_token),
        None,
    );
    assert_eq!(status, 412);
    let (status, immutable) = server.api(
        "PATCH",
        "/v1/projects/default/secrets/configured?updateMask=replication",
        Some(&server.admin_token),
        Some(json!({"replication": {"automatic": {}}})),
    );
    assert_eq!(status, 400, "{immutable}");

    // Unsupported features are refused by name, not silently dropped.
    let (status, topics) = server.api(
        "POST",
        "/v1/projects/default/secrets?secretId=with-topics",
        Some(&server.admin_token),
        Some(
            json!({"replication": {"automatic": {}}, "topics": [{"name": "projects/p/topics/t"}]}),
        ),
    );
    assert_eq!(status, 501, "{topics}");
    assert!(topics["error"]["message"]
        .as_str()
        .unwrap()
        .contains("topics"));

    let current = patched["etag"].as_str().unwrap();
    server.admin_api(
        "DELETE",
        &format!("/v1/projects/default/secrets/configured?etag={current}"),
        None,
    );
}

#[test]
fn secret_listings_filter_on_labels_and_page() {
    let server = Entrepot::start();
    for (id, env) in [("a", "prod"), ("b", "dev"), ("c", "prod"), ("d", "prod")] {
        server.admin_api(
            "POST",
            &format!("/v1/projects/default/secrets?secretId={id}"),
            Some(json!({"replication": {"automatic": {}}, "labels": {"env": env}})),
        );
    }
    let names = |page: &Value| -> Vec<String> {
        page["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s["name"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let first = server.admin_api(
        "GET",
        "/v1/projects/default/secrets?filter=labels.env%3Dprod&pageSize=2",
        None,
    );
    assert_eq!(names(&first), ["a", "c"]);
    let token = first["nextPageToken"].as_str().unwrap();
    let second = server.admin_api(
        "GET",
        &format!(
            "/v1/projects/default/secrets?filter=labels.env%3Dprod&pageSize=2&pageToken={token}"
        ),
        None,
    );
    assert_eq!(names(&second), ["d"]);
    assert!(second["nextPageToken"].is_null());
    let dev = server.admin_api(
        "GET",
        "/v1/projects/default/secrets?filter=-labels.env:prod",
        None,
    );
    assert_eq!(names(&dev), ["b"]);
    let (status, bad) = server.api(
        "GET",
        "/v1/projects/default/secrets?filter=labels.env%3Dprod%20OR%20labels.env%3Ddev",
        Some(&server.admin_token),
        None,
    );
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("OR"));
}

#[test]
fn a_due_rotation_shows_in_describe_metrics_and_audit_until_a_version_is_added() {
    let server = Entrepot::start();
    // Due from the start: the next rotation time is already past.
    server.admin_api(
        "POST",
        "/v1/projects/default/secrets?secretId=rotating",
        Some(json!({
            "replication": {"automatic": {}},
            "rotation": {"nextRotationTime": "2020-01-01T00:00:00Z", "rotationPeriod": "2592000s"},
        })),
    );
    let described = server.admin_api("GET", "/v1/projects/default/secrets/rotating", None);
    assert_eq!(described["rotationDue"], true, "{described}");
    server.admin_api("GET", "/v1/projects/default/secrets/rotating", None);
    assert_eq!(server.metric("entrepot_secret_rotations_due_total"), 1);
    let due: Vec<Value> = server
        .audit("projects/default/secrets/rotating")
        .into_iter()
        .filter(|e| e["action"] == "secretmanager.secrets.rotationDue")
        .collect();
    assert_eq!(due.len(), 1, "{due:?}");

    let data = base64::engine::general_purpose::STANDARD.encode("rotated-token");
    server.admin_api(
        "POST",
        "/v1/projects/default/secrets/rotating:addVersion",
        Some(json!({"payload": {"data": data}})),
    );
    let rotated = server.admin_api("GET", "/v1/projects/default/secrets/rotating", None);
    assert!(rotated["rotationDue"].is_null(), "{rotated}");
    let next = rotated["rotation"]["nextRotationTime"].as_str().unwrap();
    assert!(next > "2026-01-01T00:00:00Z", "{next}");
    assert_eq!(rotated["rotation"]["rotationPeriod"], "2592000s");

    // A schedule that breaks the rules is refused with the rule.
    let (status, short) = server.api(
        "PATCH",
        "/v1/projects/default/secrets/rotating?updateMask=rotation",
        Some(&server.admin_token),
        Some(json!({"rotation": {"nextRotationTime": "2030-01-01T00:00:00Z", "rotationPeriod": "60s"}})),
    );
    assert_eq!(status, 400, "{short}");
    assert!(short["error"]["message"]
        .as_str()
        .unwrap()
        .contains("3600s"));
    let (status, past) = server.api(
        "POST",
        "/v1/projects/default/secrets?secretId=expired",
        Some(&server.admin_token),
        Some(json!({"replication": {"automatic": {}}, "expireTime": "2020-01-01T00:00:00Z"})),
    );
    assert_eq!(status, 400, "{past}");
}

#[test]
fn the_cli_sets_annotations_expiry_and_rotation_and_lists_by_filter() {
    let server = Entrepot::start();
    let created: Value = serde_json::from_str(&server.cli_ok(&[
        "secrets",
        "create",
        "scheduled",
        "--labels=env=prod",
        "--annotations=owner=platform,ticket=OPS-12",
        "--ttl=604800s",
        "--next-rotation-time=2040-01-01T00:00:00Z",
        "--rotation-period=2592000s",
    ]))
    .unwrap();
    assert_eq!(created["annotations"]["ticket"], "OPS-12");
    assert!(created["expireTime"].is_string(), "{created}");
    assert_eq!(
        created["rotation"],
        json!({"nextRotationTime": "2040-01-01T00:00:00Z", "rotationPeriod": "2592000s"})
    );
    server.cli_ok(&["secrets", "create", "other", "--labels=env=dev"]);
    let listed = server.cli_ok(&["secrets", "list", "--filter=labels.env=prod"]);
    assert!(listed.contains("scheduled"), "{listed}");
    assert!(!listed.contains("other"), "{listed}");
    let refused = server.cli_err(&[
        "secrets",
        "create",
        "too-often",
        "--next-rotation-time=2040-01-01T00:00:00Z",
        "--rotation-period=60s",
    ]);
    assert!(refused.contains("3600s"), "{refused}");
}
