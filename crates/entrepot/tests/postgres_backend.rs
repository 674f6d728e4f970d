//! The real binary with its metadata in PostgreSQL (`--database-url`): a
//! team pushes and pulls an image with skopeo, keeps a secret that a user
//! may read only once granted, and installs with pip what twine uploaded;
//! everything is still there after a restart, and nothing of it went into
//! a SQLite file. Skipped (with a message) when `ENTREPOT_TEST_POSTGRES_URL`
//! is unset.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

#[test]
fn a_server_on_postgresql_serves_images_secrets_iam_and_python() {
    let Some(database) = postgres_database() else {
        return;
    };
    let server = Entrepot::builder().postgres(database).start();
    let work = tempfile::tempdir().unwrap();

    // Push and pull an image, byte for byte.
    server.create_repository("images");
    let mut layout = OciLayout::create(&work.path().join("src"));
    let manifest = layout.add_image(
        &[(256 * 1024, LayerKind::Gzip), (64 * 1024, LayerKind::Tar)],
        "amd64",
    );
    layout.tag(&manifest, "1.0");
    server.skopeo_push(&layout.dir, "1.0", "default/images/app:1.0", false);
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/images/app:1.0", &pulled, "1.0", false);
    assert_eq!(layout_ref(&pulled, "1.0"), manifest.digest);
    assert_eq!(
        assert_same_content(&layout.dir, &pulled, &manifest.digest),
        4
    );

    // A secret a user reads only once an IAM change grants it.
    server.create_secret("api-token", "s3cret-payload");
    let reader = server.user_with_token("reader@example.com", false);
    let read = |server: &Entrepot| {
        server.cli_as(
            Some(&reader),
            &[
                "secrets",
                "versions",
                "access",
                "latest",
                "--secret=api-token",
            ],
        )
    };
    let refused = read(&server);
    assert!(!refused.status.success(), "read before any grant");
    server.grant(
        "projects/default/secrets/api-token",
        "user:reader@example.com",
        "roles/secretmanager.secretAccessor",
    );
    assert_eq!(success_stdout(read(&server)), "s3cret-payload");

    // twine uploads to a hosted Python repository; pip installs from it.
    let dists = work.path().join("dists");
    let lib = make_dist(&dists, "wheel", "tiny-lib", "1.0", &[]);
    let app = make_dist(&dists, "wheel", "tiny-app", "1.0", &["tiny-lib>=1.0"]);
    server.create_python("hosted", None, json!({}));
    let legacy = format!("{}/pypi/default/hosted/legacy/", server.base);
    let out = twine_upload(&legacy, "__token__", &server.admin_token, &[&lib, &app]);
    assert!(out.status.success(), "twine upload: {}", text(&out));
    let target = work.path().join("site");
    let out = pip_install(&server.python_index("hosted"), &target, &["tiny-app"]);
    assert!(out.status.success(), "pip install: {}", text(&out));
    assert!(installed(&target, "tiny_app") && installed(&target, "tiny_lib"));

    // The metadata is in PostgreSQL, not in the data directory.
    assert!(
        !server.data_dir.join("metadata.db").exists(),
        "a SQLite file was created beside a database URL"
    );

    // A restart finds everything in the database.
    let server = server.restart();
    let again = work.path().join("again");
    server.skopeo_pull("default/images/app:1.0", &again, "1.0", false);
    assert_eq!(layout_ref(&again, "1.0"), manifest.digest);
    assert_eq!(success_stdout(read(&server)), "s3cret-payload");
    let target = work.path().join("site-again");
    let out = pip_install(&server.python_index("hosted"), &target, &["tiny-app"]);
    assert!(
        out.status.success(),
        "pip install after restart: {}",
        text(&out)
    );
}

#[test]
fn print_config_shows_the_database_url_without_its_password() {
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--print-config",
            "--database-url",
            "postgres://entrepot:hunter2@db.internal:5432/registry",
        ])
        .env_remove("ENTREPOT_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("database_url = \"postgres://entrepot:***@db.internal:5432/registry\""),
        "{printed}"
    );
    assert!(!printed.contains("hunter2"), "{printed}");

    let out = std::process::Command::new(BIN)
        .args(["serve", "--print-config"])
        .env("ENTREPOT_DATABASE_URL", "mysql://u:hunter2@h/d")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("database_url"), "{said}");
    assert!(!said.contains("hunter2"), "{said}");
}
