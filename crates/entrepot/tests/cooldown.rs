//! The minimum release age ("cooldown") of remote repositories, end to end:
//! a Python index on loopback serving PEP 691 JSON with PEP 700 upload
//! times and real wheels, installed with pip and uv; Debian's
//! docker-registry as a Docker upstream whose tag moves, pulled with skopeo
//! while the server's clock is moved forward; and the access policy's
//! suggestions of the hosts dry-run mode saw needed.

#![allow(clippy::unwrap_used)]

mod support;

use entrepot_domain::clock::{now_unix, rfc3339};
use serde_json::{json, Value};
use support::*;

#[test]
fn pip_and_uv_install_the_newest_release_old_enough_and_a_pinned_new_file_is_refused_until_it_is() {
    let work = tempfile::tempdir().unwrap();
    let index = FixtureIndex::start(
        work.path(),
        &[
            ("acme", "1.0", Some(30)),
            ("acme", "2.0", Some(10)),
            ("acme", "3.0", Some(1)),
        ],
    );
    let server = Entrepot::start();
    let created = create_cooled(&server, "cool", &index, &["--min-release-age=7d"]);
    assert_eq!(
        created["remoteRepositoryConfig"]["releaseAge"]["minReleaseAgeSecs"],
        7 * DAY
    );
    let described: Value = serde_json::from_str(&server.cli_ok(&[
        "repositories",
        "describe",
        "cool",
        "--format=json",
    ]))
    .unwrap();
    assert_eq!(
        described["remoteRepositoryConfig"]["releaseAge"],
        json!({ "minReleaseAgeSecs": 7 * DAY })
    );

    // The page lists the day-old file as yanked (PEP 592), saying until
    // when; its version stays listed.
    let page: Value = server
        .request(reqwest::Method::GET, "/pypi/default/cool/simple/acme/")
        .header("accept", "application/vnd.pypi.simple.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let files: Vec<(&str, &Value)> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["filename"].as_str().unwrap(), &f["yanked"]))
        .collect();
    assert_eq!(files.len(), 3, "{page}");
    assert_eq!(files[0], (wheel("acme", "1.0").as_str(), &Value::Null));
    assert_eq!(files[1], (wheel("acme", "2.0").as_str(), &Value::Null));
    assert_eq!(files[2].0, wheel("acme", "3.0"));
    let yanked = files[2].1.as_str().unwrap();
    assert!(
        yanked.starts_with("held back by the release-age rule until "),
        "{yanked}"
    );
    assert_eq!(page["versions"], json!(["1.0", "2.0", "3.0"]));
    let html = server
        .get("/pypi/default/cool/simple/acme/")
        .text()
        .unwrap();
    assert!(
        html.contains("data-yanked=\"held back by the release-age rule until"),
        "{html}"
    );

    assert_eq!(pip_gets(&server, "cool", "acme").as_deref(), Some("2.0"));
    assert_eq!(uv_gets(&server, "cool", "acme").as_deref(), Some("2.0"));

    // Pinned by version, as `pip install acme==3.0` or a lock file pins
    // it: the installers pick the yanked file, are refused its download and
    // say why and until when; nothing is installed.
    let target = tempfile::tempdir().unwrap();
    let out = pip_install(&server.python_index("cool"), target.path(), &["acme==3.0"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("403")
            && stderr(&out).contains("held back by this repository's minimum release age")
            && stderr(&out).contains("becomes available at"),
        "pip does not say why: {}",
        stderr(&out)
    );
    assert_eq!(installed_version(target.path(), "acme"), None);
    let out = uv_install(&server.python_index("cool"), target.path(), &["acme==3.0"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("403") && stderr(&out).contains("becomes available at"),
        "uv does not say why: {}",
        stderr(&out)
    );
    assert_eq!(installed_version(target.path(), "acme"), None);
    // A range that only the held-back release satisfies: uv names the
    // reason, pip the yanked version.
    let out = uv_install(&server.python_index("cool"), target.path(), &["acme>=3"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("yanked (reason: held back by the release-age rule until"),
        "{}",
        stderr(&out)
    );
    let out = pip_install(&server.python_index("cool"), target.path(), &["acme>=3"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("Ignored the following yanked versions: 3.0"),
        "{}",
        stderr(&out)
    );

    // Pinned by its file, as a lock file pins it: refused, saying until when.
    let sha = &index.sha256[&wheel("acme", "3.0")];
    let file_path = format!("/pypi/default/cool/files/{sha}/{}", wheel("acme", "3.0"));
    let direct = server.get(&file_path);
    assert_eq!(direct.status(), 403);
    let reason = direct.text().unwrap();
    assert!(
        reason.contains("held back by this repository's minimum release age")
            && reason.contains("becomes available at"),
        "{reason}"
    );
    let index_url = server.python_index("cool");
    let base = index_url.trim_end_matches("simple/");
    let pinned = format!("acme @ {base}files/{sha}/{}", wheel("acme", "3.0"));
    let out = pip_install(&index_url, target.path(), &[&pinned]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("403") && stderr(&out).contains("becomes available at"),
        "pip does not show why: {}",
        stderr(&out)
    );
    let out = uv_install(&index_url, target.path(), &[&pinned]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));

    // An emergency exemption for the one release: installable now, audited.
    server.cli_ok(&[
        "repositories",
        "update",
        "cool",
        "--release-age-exempt=acme==3.0",
    ]);
    assert_eq!(pip_gets(&server, "cool", "acme").as_deref(), Some("3.0"));
    assert_eq!(server.get(&file_path).status(), 200);
    let audit = server.audit("projects/default/repositories/cool");
    assert!(
        audit.iter().any(|e| {
            e["action"] == "entrepot.repositories.updateReleaseAge"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("exemption added: acme==3.0"))
        }),
        "{audit:?}"
    );
}

#[test]
fn a_cut_off_serves_nothing_published_after_it() {
    let work = tempfile::tempdir().unwrap();
    let index = FixtureIndex::start(
        work.path(),
        &[
            ("acme", "1.0", Some(30)),
            ("acme", "2.0", Some(10)),
            ("acme", "3.0", Some(1)),
        ],
    );
    let server = Entrepot::start();
    // Incident response: nothing published in the last two weeks.
    let cutoff = rfc3339(now_unix() - 14 * DAY);
    let flag = format!("--release-cutoff={cutoff}");
    create_cooled(&server, "frozen", &index, &[&flag]);
    assert_eq!(pip_gets(&server, "frozen", "acme").as_deref(), Some("1.0"));
    assert_eq!(uv_gets(&server, "frozen", "acme").as_deref(), Some("1.0"));
    let sha = &index.sha256[&wheel("acme", "2.0")];
    let refused = server.get(&format!(
        "/pypi/default/frozen/files/{sha}/{}",
        wheel("acme", "2.0")
    ));
    assert_eq!(refused.status(), 403);
    assert!(refused.text().unwrap().contains("release cut-off"));

    // The incident is over: the cut-off goes, and the newest is served.
    server.cli_ok(&["repositories", "update", "frozen", "--release-cutoff="]);
    assert_eq!(pip_gets(&server, "frozen", "acme").as_deref(), Some("3.0"));
}

#[test]
fn a_release_without_an_upload_time_is_held_back_unless_the_repository_fails_open() {
    let work = tempfile::tempdir().unwrap();
    let index = FixtureIndex::start(
        work.path(),
        &[("undated", "1.0", Some(30)), ("undated", "2.0", None)],
    );
    let server = Entrepot::start();
    create_cooled(&server, "closed", &index, &["--min-release-age=7d"]);
    assert_eq!(
        pip_gets(&server, "closed", "undated").as_deref(),
        Some("1.0")
    );
    let sha = &index.sha256[&wheel("undated", "2.0")];
    let refused = server.get(&format!(
        "/pypi/default/closed/files/{sha}/{}",
        wheel("undated", "2.0")
    ));
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .unwrap()
        .contains("does not say when it was published"));

    server.cli_ok(&[
        "repositories",
        "update",
        "closed",
        "--allow-unknown-release-time",
    ]);
    assert_eq!(
        pip_gets(&server, "closed", "undated").as_deref(),
        Some("2.0")
    );
    assert_eq!(
        uv_gets(&server, "closed", "undated").as_deref(),
        Some("2.0")
    );
}

#[test]
fn a_tag_moved_upstream_keeps_its_old_digest_until_the_new_one_is_old_enough() {
    let work = tempfile::tempdir().unwrap();
    let clock = TestClock::new(work.path());
    let upstream = Distribution::start();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    let old = layout.add_image(&[(2000, LayerKind::Tar)], "amd64");
    layout.tag(&old, "old");
    let new = layout.add_image(&[(3000, LayerKind::Tar)], "amd64");
    layout.tag(&new, "new");
    upstream.push(&layout.dir, "old", "team/app:1.0", None);

    let server = clock.start_server();
    server.create_remote_docker(
        "hub",
        &format!("http://{}", upstream.addr),
        json!({ "tagTtlSecs": 0, "releaseAge": { "minReleaseAgeSecs": 7 * DAY } }),
    );

    // The first digest entrepot sees for the tag is as new as can be: with
    // no older one to fall back to, the pull is refused, saying until when.
    let out = server.skopeo_pull_output(
        "default/hub/team/app:1.0",
        &work.path().join("refused"),
        "1.0",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("minimum release age")
            && stderr(&out).contains("no earlier digest of the tag is old enough"),
        "{}",
        stderr(&out)
    );

    clock.advance(8 * DAY);
    let first = work.path().join("first");
    server.skopeo_pull("default/hub/team/app:1.0", &first, "1.0", false);
    assert_eq!(layout_ref(&first, "1.0"), old.digest);

    // The tag moves upstream: entrepot keeps serving the digest it had,
    // and says which one waits, and until when.
    upstream.push(&layout.dir, "new", "team/app:1.0", None);
    let answer = server.get("/v2/default/hub/team/app/manifests/1.0");
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "docker-content-digest"), old.digest);
    let held = header(&answer, "entrepot-held-back");
    assert!(
        held.starts_with(&format!("{}; available-at=", new.digest)),
        "{held}"
    );
    let second = work.path().join("second");
    server.skopeo_pull("default/hub/team/app:1.0", &second, "1.0", false);
    assert_eq!(layout_ref(&second, "1.0"), old.digest);

    // Pulled by its digest, the new image is refused with the reason.
    let by_digest = server.get(&format!(
        "/v2/default/hub/team/app/manifests/{}",
        new.digest
    ));
    let error = assert_oci_error(by_digest, 403, "DENIED");
    assert!(
        error.to_string().contains("becomes available at"),
        "{error}"
    );

    // A week later it is old enough.
    clock.advance(8 * DAY);
    let third = work.path().join("third");
    server.skopeo_pull("default/hub/team/app:1.0", &third, "1.0", false);
    assert_eq!(layout_ref(&third, "1.0"), new.digest);
    let answer = server.get("/v2/default/hub/team/app/manifests/1.0");
    assert!(answer.headers().get("entrepot-held-back").is_none());
}

#[test]
fn suggest_lists_the_hosts_dry_run_mode_saw_needed_as_a_ready_allow_command() {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    image_layout(&original, "1.0", &[1000]);
    let upstream = Distribution::start();
    upstream.push(&original, "1.0", "app:1.0", None);

    let server = Entrepot::start();
    server.cli_ok(&["access-policy", "dry-run"]);
    // Created without allowing its host: dry-run mode lets it through.
    server.create_repository_from(
        "default",
        "learning",
        json!({
            "format": "docker",
            "mode": "remote-repository",
            "remoteRepositoryConfig": { "upstream": format!("http://{}", upstream.addr) },
        }),
    );
    server.skopeo_pull(
        "default/learning/app:1.0",
        &work.path().join("pulled"),
        "1.0",
        false,
    );

    let report: Value =
        serde_json::from_str(&server.cli_ok(&["access-policy", "suggest", "--format=json"]))
            .unwrap();
    let host = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == upstream.addr.as_str())
        .unwrap_or_else(|| panic!("{report}"));
    assert!(host["wouldBlock"].as_u64().unwrap() >= 1, "{host}");
    assert_eq!(host["blocked"], 0);
    assert_eq!(
        host["repositories"],
        json!(["projects/default/repositories/learning"])
    );
    let command = format!("entrepot access-policy allow {}", upstream.addr);
    assert_eq!(report["command"], command.as_str());
    let table = server.cli_ok(&["access-policy", "suggest"]);
    assert!(table.contains(&command), "{table}");

    // Allowed, it is no longer suggested.
    server.cli_ok(&["access-policy", "allow", &upstream.addr]);
    let report: Value =
        serde_json::from_str(&server.cli_ok(&["access-policy", "suggest", "--format=json"]))
            .unwrap();
    assert_eq!(report["hosts"], json!([]), "{report}");
}

#[test]
fn presets_of_the_managed_registries_suggest_the_hosts_they_need() {
    let server = Entrepot::start();
    for (id, preset) in [
        ("k8s", "K8S"),
        ("ecr", "ECR-PUBLIC"),
        ("gitlab", "GITLAB"),
        ("mcr", "MCR"),
    ] {
        let upstream = format!("--remote-docker-repo={preset}");
        // Outside the default policy: stored on request, pulls stay blocked.
        server.cli_ok(&[
            "repositories",
            "create",
            id,
            "--repository-format=docker",
            "--mode=remote-repository",
            &upstream,
            "--force",
        ]);
    }
    let report: Value =
        serde_json::from_str(&server.cli_ok(&["access-policy", "suggest", "--format=json"]))
            .unwrap();
    let presets: Vec<(String, String)> = report["presetHosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_owned(),
                h["preset"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (host, preset) in [
        ("registry.k8s.io", "K8S"),
        ("*.pkg.dev", "K8S"),
        ("public.ecr.aws", "ECR-PUBLIC"),
        ("registry.gitlab.com", "GITLAB"),
        ("gitlab.com", "GITLAB"),
        ("mcr.microsoft.com", "MCR"),
        ("*.data.mcr.microsoft.com", "MCR"),
    ] {
        assert!(
            presets.contains(&(host.to_owned(), preset.to_owned())),
            "{host} for {preset} missing: {presets:?}"
        );
    }
    let command = report["command"].as_str().unwrap();
    assert!(command.contains("'*.data.mcr.microsoft.com'"), "{command}");
    // Suggested, never allowed by default.
    let policy = server.cli_ok(&["access-policy", "describe"]);
    assert!(!policy.contains("mcr.microsoft.com"), "{policy}");
}

#[test]
fn a_repository_re_created_under_a_deleted_one_s_name_sees_its_tags_anew() {
    let work = tempfile::tempdir().unwrap();
    let clock = TestClock::new(work.path());
    let upstream = Distribution::start();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    let image = layout.add_image(&[(2000, LayerKind::Tar)], "amd64");
    layout.tag(&image, "1.0");
    upstream.push(&layout.dir, "1.0", "team/app:1.0", None);
    let server = clock.start_server();
    let week = json!({ "tagTtlSecs": 0, "releaseAge": { "minReleaseAgeSecs": 7 * DAY } });
    let hub = format!("http://{}", upstream.addr);
    server.create_remote_docker("hub", &hub, week.clone());
    // Seen now, served a week later.
    let refused = server.get("/v2/default/hub/team/app/manifests/1.0");
    assert_eq!(refused.status(), 403);
    clock.advance(8 * DAY);
    let served = server.get("/v2/default/hub/team/app/manifests/1.0");
    assert_eq!(served.status(), 200);

    // Deleted and created again: what the old repository saw is gone with
    // it, so the tag's digest is new to the new repository.
    server.cli_ok(&["repositories", "delete", "hub", "--quiet"]);
    server.create_remote_docker("hub", &hub, week);
    let again = server.get("/v2/default/hub/team/app/manifests/1.0");
    let error = assert_oci_error(again, 403, "DENIED");
    assert!(
        error
            .to_string()
            .contains("no earlier digest of the tag is old enough"),
        "{error}"
    );
}
