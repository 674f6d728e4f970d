//! The secret manager through the real binary: the server and the gcloud-like CLI.

#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine as _;
use support::{
    contains, entrepot_admin, every_server_on_postgres, files_under, postgres_database, write_file,
    Entrepot, TestDatabase, BIN,
};

struct Setup {
    _tmp: tempfile::TempDir,
    /// The PostgreSQL database of every server of the test, kept across
    /// restarts, under `ENTREPOT_TEST_BACKEND=postgres`.
    database: Option<std::sync::Arc<TestDatabase>>,
    data: std::path::PathBuf,
    files: std::path::PathBuf,
    log: std::path::PathBuf,
}

/// A data directory, a separate directory for the user's own files (so that
/// greps of the data directory do not find them), and a server log file.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let log = tmp.path().join("server.log");
    Setup {
        data,
        files,
        log,
        _tmp: tmp,
        database: every_server_on_postgres().then(postgres_database).flatten(),
    }
}

/// A server on the setup's data directory at debug log level, its log in the setup's file.
fn start(s: &Setup) -> Entrepot {
    let builder = Entrepot::builder()
        .data_dir(&s.data)
        .log_file(&s.log)
        .log_level("debug");
    match &s.database {
        Some(database) => builder.postgres(database.clone()).start(),
        None => builder.start(),
    }
}

/// `entrepot admin rotate-master-key` on the setup's data directory (and
/// its PostgreSQL database, if the servers use one).
fn rotate_master_key(s: &Setup) -> std::process::Output {
    let mut command = std::process::Command::new(BIN);
    command
        .args(["admin", "rotate-master-key", "--data-dir"])
        .arg(&s.data)
        .env_remove("ENTREPOT_MASTER_KEY_FILE")
        .env_remove("ENTREPOT_DATA_DIR")
        .env_remove("ENTREPOT_DATABASE_URL");
    if let Some(database) = &s.database {
        command.env("ENTREPOT_DATABASE_URL", database.url());
    }
    command.output().unwrap()
}

/// The files the metadata database keeps in the data directory: SQLite's
/// (while it runs, its write-ahead log too), none on PostgreSQL.
fn database_files(s: &Setup, running: bool) -> &'static [&'static str] {
    match (&s.database, running) {
        (Some(_), _) => &[],
        (None, true) => &["metadata.db", "metadata.db-wal"],
        (None, false) => &["metadata.db"],
    }
}

#[test]
fn latest_follows_enabled_versions_and_destroy_wipes() {
    let s = setup();
    let server = start(&s);
    let v1 = write_file(&s.files, "v1.txt", b"first-token\n");
    // Binary-safe: the payload comes back byte for byte.
    let v2_bytes: &[u8] = &[0, 1, 2, 0xff, 0xfe, b'\n', b'x'];
    let v2 = write_file(&s.files, "v2.bin", v2_bytes);

    server.cli_stdout(&[
        "secrets",
        "create",
        "upstream-token",
        &format!("--data-file={v1}"),
        "--labels=env=test",
    ]);
    server.cli_stdout(&[
        "secrets",
        "versions",
        "add",
        "upstream-token",
        &format!("--data-file={v2}"),
    ]);

    let latest = server.cli_stdout(&[
        "secrets",
        "versions",
        "access",
        "latest",
        "--secret=upstream-token",
    ]);
    assert_eq!(
        latest, v2_bytes,
        "latest is version 2, printed raw and alone"
    );
    let full = server.cli_stdout(&[
        "secrets",
        "versions",
        "access",
        "projects/default/secrets/upstream-token/versions/1",
    ]);
    assert_eq!(full, b"first-token\n");

    server.cli_stdout(&[
        "secrets",
        "versions",
        "disable",
        "2",
        "--secret=upstream-token",
    ]);
    let latest = server.cli_stdout(&[
        "secrets",
        "versions",
        "access",
        "latest",
        "--secret=upstream-token",
    ]);
    assert_eq!(
        latest, b"first-token\n",
        "with version 2 disabled, latest is version 1"
    );
    let err = server.cli_err(&[
        "secrets",
        "versions",
        "access",
        "2",
        "--secret=upstream-token",
    ]);
    assert!(err.contains("DISABLED"), "{err}");

    server.cli_stdout(&[
        "secrets",
        "versions",
        "destroy",
        "1",
        "--secret=upstream-token",
        "--quiet",
    ]);
    let err = server.cli_err(&[
        "secrets",
        "versions",
        "access",
        "1",
        "--secret=upstream-token",
    ]);
    assert!(err.contains("versions/1 is DESTROYED"), "{err}");
    let err = server.cli_err(&[
        "secrets",
        "versions",
        "access",
        "latest",
        "--secret=upstream-token",
    ]);
    assert!(err.contains("no ENABLED version"), "{err}");
    let err = server.cli_err(&[
        "secrets",
        "versions",
        "enable",
        "1",
        "--secret=upstream-token",
    ]);
    assert!(err.contains("DESTROYED"), "{err}");

    let described = server.cli_stdout(&[
        "secrets",
        "versions",
        "describe",
        "1",
        "--secret=upstream-token",
        "--format=json",
    ]);
    let described: serde_json::Value = serde_json::from_slice(&described).unwrap();
    assert_eq!(described["state"], "DESTROYED");
    assert!(described["destroyTime"].is_string());
    let listed =
        String::from_utf8(server.cli_stdout(&["secrets", "versions", "list", "upstream-token"]))
            .unwrap();
    assert!(
        listed.contains("DESTROYED") && listed.contains("DISABLED"),
        "{listed}"
    );

    server.cli_stdout(&[
        "secrets",
        "versions",
        "enable",
        "2",
        "--secret=upstream-token",
    ]);
    let latest = server.cli_stdout(&[
        "secrets",
        "versions",
        "access",
        "latest",
        "--secret=upstream-token",
    ]);
    assert_eq!(latest, v2_bytes);

    let secrets = String::from_utf8(server.cli_stdout(&["secrets", "list"])).unwrap();
    assert!(
        secrets.contains("upstream-token") && secrets.contains("env=test"),
        "{secrets}"
    );
    server.cli_stdout(&[
        "secrets",
        "update",
        "upstream-token",
        "--update-labels=team=infra",
        "--remove-labels=env",
    ]);
    let described = server.cli_stdout(&["secrets", "describe", "upstream-token", "--format=json"]);
    let described: serde_json::Value = serde_json::from_slice(&described).unwrap();
    assert_eq!(described["labels"], serde_json::json!({ "team": "infra" }));
    server.cli_stdout(&["secrets", "delete", "upstream-token", "--quiet"]);
    let err = server.cli_err(&["secrets", "describe", "upstream-token"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn payloads_are_limited_to_64_kib() {
    let s = setup();
    let server = start(&s);
    server.cli_stdout(&["secrets", "create", "big"]);

    let too_big = write_file(&s.files, "too-big", &vec![b'a'; 65_537]);
    let err = server.cli_err(&[
        "secrets",
        "versions",
        "add",
        "big",
        &format!("--data-file={too_big}"),
    ]);
    assert!(
        err.contains("65537 bytes") && err.contains("limit is 65536 bytes"),
        "{err}"
    );
    let err = server.cli_err(&[
        "secrets",
        "create",
        "big2",
        &format!("--data-file={too_big}"),
    ]);
    assert!(err.contains("limit is 65536 bytes"), "{err}");

    let largest: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let out = server.cli_with_input(
        Some(&server.admin_token),
        &["secrets", "versions", "add", "big", "--data-file=-"],
        Some(&largest),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.cli_stdout(&["secrets", "versions", "access", "1", "--secret=big"]),
        largest
    );

    let empty = write_file(&s.files, "empty", b"");
    let err = server.cli_err(&[
        "secrets",
        "versions",
        "add",
        "big",
        &format!("--data-file={empty}"),
    ]);
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn plaintext_never_reaches_the_log_or_the_data_directory() {
    let s = setup();
    let token = b"dckr_pat_Zq8vXw3LmN5tR7yB2kP9sHjD4fG";
    let rotated = b"dckr_pat_Rotated0123456789abcdefXYZ";
    let server = start(&s);
    let file = write_file(&s.files, "token.txt", token);
    let file2 = write_file(&s.files, "token2.txt", rotated);

    server.cli_stdout(&[
        "secrets",
        "create",
        "dockerhub-token",
        &format!("--data-file={file}"),
    ]);
    server.cli_stdout(&[
        "secrets",
        "versions",
        "add",
        "dockerhub-token",
        &format!("--data-file={file2}"),
    ]);
    assert_eq!(
        server.cli_stdout(&[
            "secrets",
            "versions",
            "access",
            "1",
            "--secret=dockerhub-token"
        ]),
        token
    );
    assert_eq!(
        server.cli_stdout(&[
            "secrets",
            "versions",
            "access",
            "latest",
            "--secret=dockerhub-token"
        ]),
        rotated
    );
    server.cli_stdout(&[
        "secrets",
        "versions",
        "disable",
        "1",
        "--secret=dockerhub-token",
    ]);
    server.cli_err(&[
        "secrets",
        "versions",
        "access",
        "1",
        "--secret=dockerhub-token",
    ]);
    server.cli_stdout(&[
        "secrets",
        "versions",
        "destroy",
        "1",
        "--secret=dockerhub-token",
        "--quiet",
    ]);
    server.cli_stdout(&["audit", "list"]);
    // Every metadata answer, too: only :access carries a payload.
    for path in [
        "/v1/projects/default/secrets",
        "/v1/projects/default/secrets/dockerhub-token",
        "/v1/projects/default/secrets/dockerhub-token/versions",
        "/v1/projects/default/secrets/dockerhub-token/versions/2",
        "/v1/projects/default/auditLog",
    ] {
        let body = server.get_json(path).to_string();
        assert!(!contains(body.as_bytes(), b"dckr_pat"), "{path}: {body}");
    }
    let b64 = |t: &[u8]| base64::engine::general_purpose::STANDARD.encode(t);
    let needles: Vec<Vec<u8>> = vec![
        token.to_vec(),
        rotated.to_vec(),
        b"dckr_pat".to_vec(),
        b64(token).into_bytes(),
        b64(rotated).into_bytes(),
    ];
    let assert_clean = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        for needle in &needles {
            assert!(
                !contains(&bytes, needle),
                "{} holds secret text",
                path.display()
            );
        }
    };

    // While the server runs, the write-ahead log holds the latest writes.
    let running = files_under(&s.data);
    for name in database_files(&s, true).iter().chain(&["master.key"]) {
        assert!(
            running.iter().any(|f| f.ends_with(name)),
            "{name}: {running:?}"
        );
    }
    running.iter().for_each(|f| assert_clean(f));

    // After a clean stop: the log of the whole run and whatever the database left.
    server.stop();
    assert!(
        std::fs::metadata(&s.log).unwrap().len() > 0,
        "the server logged nothing at debug level"
    );
    assert_clean(&s.log);
    let stopped = files_under(&s.data);
    for name in database_files(&s, false) {
        assert!(stopped.iter().any(|f| f.ends_with(name)), "{stopped:?}");
    }
    if s.database.is_some() {
        assert!(
            !stopped.iter().any(|f| f.ends_with("metadata.db")),
            "{stopped:?}"
        );
    }
    stopped.iter().for_each(|f| assert_clean(f));
}

#[test]
fn master_key_rotation_keeps_every_secret_readable() {
    let s = setup();
    let server = start(&s);
    let mut expected: Vec<(String, u32, Vec<u8>)> = Vec::new();
    for secret in ["alpha", "beta", "gamma"] {
        for version in 1..=3u32 {
            let payload = format!("{secret}-payload-{version}").into_bytes();
            let file = write_file(&s.files, &format!("{secret}-{version}"), &payload);
            if version == 1 {
                server.cli_stdout(&["secrets", "create", secret, &format!("--data-file={file}")]);
            } else {
                server.cli_stdout(&[
                    "secrets",
                    "versions",
                    "add",
                    secret,
                    &format!("--data-file={file}"),
                ]);
            }
            expected.push((secret.to_owned(), version, payload));
        }
    }
    // A disabled version is rewrapped too and readable once enabled again.
    server.cli_stdout(&["secrets", "versions", "disable", "2", "--secret=beta"]);
    server.stop();

    let key_file = s.data.join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the master key file must be private");
    }
    let before = std::fs::read_to_string(&key_file).unwrap();

    let out = rotate_master_key(&s);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rewrapped 9 data keys"), "{stderr}");

    let after = std::fs::read_to_string(&key_file).unwrap();
    let keys = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count()
    };
    assert_eq!(
        (keys(&before), keys(&after)),
        (1, 2),
        "the retired key is kept"
    );
    let old_key = before.lines().find(|l| !l.starts_with('#')).unwrap();
    assert!(after.contains(old_key));

    let server = start(&s);
    server.cli_stdout(&["secrets", "versions", "enable", "2", "--secret=beta"]);
    for (secret, version, payload) in &expected {
        let got = server.cli_stdout(&[
            "secrets",
            "versions",
            "access",
            &version.to_string(),
            &format!("--secret={secret}"),
        ]);
        assert_eq!(&got, payload, "{secret} version {version}");
    }
    // New versions are wrapped by the new key and old ones stay readable after a second rotation.
    let file = write_file(&s.files, "delta", b"delta-payload");
    server.cli_stdout(&["secrets", "create", "delta", &format!("--data-file={file}")]);
    server.stop();
    let out = rotate_master_key(&s);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = start(&s);
    assert_eq!(
        server.cli_stdout(&["secrets", "versions", "access", "1", "--secret=delta"]),
        b"delta-payload"
    );
    assert_eq!(
        server.cli_stdout(&["secrets", "versions", "access", "3", "--secret=gamma"]),
        b"gamma-payload-3"
    );
}

#[test]
fn rotation_needs_an_existing_data_directory() {
    let s = setup();
    let out = entrepot_admin(&["rotate-master-key", "--data-dir", s.data.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--data-dir"), "{stderr}");
}

#[test]
fn audit_log_lists_each_access_with_principal_version_and_outcome() {
    let s = setup();
    let server = start(&s);
    let file = write_file(&s.files, "t", b"audited-token");
    server.cli_stdout(&[
        "secrets",
        "create",
        "audited",
        &format!("--data-file={file}"),
    ]);
    server.cli_stdout(&["secrets", "create", "other", &format!("--data-file={file}")]);
    server.cli_stdout(&[
        "secrets",
        "versions",
        "access",
        "latest",
        "--secret=audited",
    ]);
    server.cli_stdout(&["secrets", "versions", "disable", "1", "--secret=audited"]);
    server.cli_err(&["secrets", "versions", "access", "1", "--secret=audited"]);
    server.cli_err(&["secrets", "versions", "access", "7", "--secret=audited"]);
    server.cli_stdout(&["secrets", "versions", "access", "1", "--secret=other"]);
    // A caller whose credentials cannot even be read is refused and audited too.
    let refused = reqwest::blocking::Client::new()
        .get(format!(
            "{}/v1/projects/default/secrets/other/versions/1:access",
            server.base
        ))
        .header("Authorization", "Basic !!not-base64!!")
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401);

    let log =
        server.get_json("/v1/projects/default/auditLog?resource=projects/default/secrets/audited");
    let entries: Vec<(String, String, String, bool)> = log["auditLogEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["principal"].as_str().unwrap().to_owned(),
                e["resource"].as_str().unwrap().to_owned(),
                e["version"].as_str().unwrap().to_owned(),
                e["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    let secret = "projects/default/secrets/audited".to_owned();
    let me = entries[0].0.clone();
    // Newest first.
    assert_eq!(
        entries,
        [
            (me.clone(), secret.clone(), "7".to_owned(), false),
            (me.clone(), secret.clone(), "1".to_owned(), false),
            (me.clone(), secret.clone(), "1".to_owned(), true),
        ]
    );
    let reasons: Vec<&str> = log["auditLogEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons[0].contains("not found") && reasons[1].contains("DISABLED"),
        "{reasons:?}"
    );

    let table =
        String::from_utf8(server.cli_stdout(&["audit", "list", "--resource=audited"])).unwrap();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[2].contains("ALLOWED") && rows[2].contains(&me),
        "{table}"
    );
    assert!(
        rows[1].contains("DENIED") && rows[1].contains("DISABLED"),
        "{table}"
    );
    let all = String::from_utf8(server.cli_stdout(&["audit", "list"])).unwrap();
    assert_eq!(all.lines().count(), 6, "{all}");
    let newest = all.lines().nth(1).unwrap();
    assert!(
        newest.contains("DENIED")
            && newest.contains("unauthenticated")
            && newest.contains("secrets/other"),
        "{all}"
    );
    assert!(!all.contains("not-base64"), "{all}");
}

#[test]
fn admin_api_speaks_json_errors_and_leaves_unknown_verbs_unrouted() {
    let s = setup();
    let server = start(&s);
    let base = "/v1/projects/default/secrets";
    let get = |path: String| server.request(reqwest::Method::GET, &path);
    let post = |path: String| server.request(reqwest::Method::POST, &path);

    let created = post(format!("{base}?secretId=api-token"))
        .json(&serde_json::json!({ "labels": { "team": "infra" } }))
        .send()
        .unwrap();
    assert_eq!(created.status(), 200);
    let added = post(format!("{base}/api-token:addVersion"))
        .json(&serde_json::json!({ "payload": { "data": "c2VjcmV0LWJ5dGVz" } }))
        .send()
        .unwrap();
    assert_eq!(added.status(), 200);
    let added: serde_json::Value = added.json().unwrap();
    assert_eq!(
        added["name"],
        "projects/default/secrets/api-token/versions/1"
    );
    assert_eq!(added["state"], "ENABLED");
    assert!(added.get("payload").is_none());

    let accessed: serde_json::Value = get(format!("{base}/api-token/versions/latest:access"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        accessed["name"],
        "projects/default/secrets/api-token/versions/1"
    );
    assert_eq!(accessed["payload"]["data"], "c2VjcmV0LWJ5dGVz");

    let error = |r: reqwest::blocking::Response| -> (u16, serde_json::Value) {
        let status = r.status().as_u16();
        (status, r.json().unwrap())
    };
    let (status, body) = error(get(format!("{base}/api-token:frobnicate")).send().unwrap());
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, _) = error(
        post(format!("{base}/api-token/versions/1:access"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 404);
    let (status, body) = error(get(format!("{base}/bad.name")).send().unwrap());
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (status, body) = error(
        post(format!("{base}/api-token:addVersion"))
            .body(r#"{"payload": {"data": 12345678}}"#)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400);
    assert!(!body.to_string().contains("12345678"), "{body}");
    let (status, _) = error(post(format!("{base}?secretId=api-token")).send().unwrap());
    assert_eq!(status, 409);
    let (status, body) = error(
        post(format!("{base}?secretId=x"))
            .json(&serde_json::json!({ "labels": { "Team": "infra" } }))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400, "{body}");
}
