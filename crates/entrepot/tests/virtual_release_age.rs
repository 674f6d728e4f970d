//! A minimum release age set on a virtual repository applies to what its
//! remote members serve through it, on top of each member's own (the
//! stricter rule wins): pip and uv through a virtual Python repository over
//! a fixture index with upload times, skopeo through a virtual Docker
//! repository over docker-registry while the server's clock moves.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::*;

/// Create the virtual repository `id` of `format` over `members`
/// (`(repository, priority)`), with extra CLI flags; its description.
fn create_virtual(
    server: &Entrepot,
    dir: &Path,
    id: &str,
    format: &str,
    members: &[(&str, i64)],
    flags: &[&str],
) -> Value {
    let list: Vec<Value> = members
        .iter()
        .map(|(repo, priority)| {
            json!({ "id": repo, "repository": format!("projects/default/repositories/{repo}"), "priority": priority })
        })
        .collect();
    let file = dir.join(format!("{id}-members.json"));
    std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
    let policy = format!("--upstream-policy-file={}", file.display());
    let format = format!("--repository-format={format}");
    let mut args = vec![
        "repositories",
        "create",
        id,
        format.as_str(),
        "--mode=virtual-repository",
        policy.as_str(),
    ];
    args.extend(flags);
    serde_json::from_str(&server.cli_ok(&args)).unwrap()
}

#[test]
fn the_stricter_of_the_virtual_and_the_member_rules_decides_what_pip_and_uv_install() {
    let work = tempfile::tempdir().unwrap();
    let index = FixtureIndex::start(
        work.path(),
        &[
            ("acme", "1.0", Some(30)),
            ("acme", "2.0", Some(5)),
            ("acme", "3.0", Some(1)),
        ],
    );
    let server = Entrepot::start();
    // The member holds back two days; the virtual repository a week.
    create_cooled(&server, "pypi-cache", &index, &["--min-release-age=2d"]);
    server.create_python("private", None, json!({}));
    let created = create_virtual(
        &server,
        work.path(),
        "all",
        "python",
        &[("private", 10), ("pypi-cache", 5)],
        &["--min-release-age=7d"],
    );
    assert_eq!(
        created["virtualRepositoryConfig"]["releaseAge"],
        json!({ "minReleaseAgeSecs": 7 * DAY })
    );

    assert_eq!(pip_gets(&server, "all", "acme").as_deref(), Some("1.0"));
    assert_eq!(uv_gets(&server, "all", "acme").as_deref(), Some("1.0"));
    // The member alone applies its own rule only.
    assert_eq!(
        pip_gets(&server, "pypi-cache", "acme").as_deref(),
        Some("2.0")
    );
    // A download of the five-day-old file through the virtual repository
    // is refused with the reason; from the member it is served.
    let sha = &index.sha256[&wheel("acme", "2.0")];
    let through = server.get(&format!(
        "/pypi/default/all/files/{sha}/{}",
        wheel("acme", "2.0")
    ));
    assert_eq!(through.status(), 403);
    let reason = through.text().unwrap();
    assert!(
        reason.contains("minimum release age") && reason.contains("becomes available at"),
        "{reason}"
    );
    let direct = server.get(&format!(
        "/pypi/default/pypi-cache/files/{sha}/{}",
        wheel("acme", "2.0")
    ));
    assert_eq!(direct.status(), 200);

    // A shorter age on the virtual repository does not lift the member's:
    // the day-old 3.0 stays held back by the member's two days.
    server.cli_ok(&["repositories", "update", "all", "--min-release-age=1h"]);
    assert_eq!(pip_gets(&server, "all", "acme").as_deref(), Some("2.0"));
    assert_eq!(uv_gets(&server, "all", "acme").as_deref(), Some("2.0"));

    // Exemptions and a cut-off on the virtual repository, audited there.
    server.cli_ok(&[
        "repositories",
        "update",
        "all",
        "--min-release-age=7d",
        "--release-age-exempt=acme==2.0",
    ]);
    assert_eq!(pip_gets(&server, "all", "acme").as_deref(), Some("2.0"));
    let cutoff = format!(
        "--release-cutoff={}",
        entrepot_domain::clock::rfc3339(entrepot_domain::clock::now_unix() - 20 * DAY)
    );
    server.cli_ok(&[
        "repositories",
        "update",
        "all",
        "--remove-release-age-exempt=acme==2.0",
        &cutoff,
    ]);
    assert_eq!(pip_gets(&server, "all", "acme").as_deref(), Some("1.0"));
    let described: Value =
        serde_json::from_str(&server.cli_ok(&["repositories", "describe", "all", "--format=json"]))
            .unwrap();
    let age = &described["virtualRepositoryConfig"]["releaseAge"];
    assert_eq!(age["minReleaseAgeSecs"], 7 * DAY, "{described}");
    assert!(age["releaseCutoffTime"].is_string(), "{described}");
    let audit = server.audit("projects/default/repositories/all");
    assert!(
        audit.iter().any(|e| {
            e["action"] == "entrepot.repositories.updateReleaseAge"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("exemption added: acme==2.0"))
        }),
        "{audit:?}"
    );
    // A new member list keeps the age.
    let file = work.path().join("again.json");
    std::fs::write(
        &file,
        json!([{ "id": "pypi", "repository": "projects/default/repositories/pypi-cache", "priority": 1 }])
            .to_string(),
    )
    .unwrap();
    server.cli_ok(&[
        "repositories",
        "update",
        "all",
        &format!("--upstream-policy-file={}", file.display()),
    ]);
    assert_eq!(pip_gets(&server, "all", "acme").as_deref(), Some("1.0"));
}

#[test]
fn a_virtual_docker_repository_holds_back_a_moved_tag_of_its_remote_member() {
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
    // The member has no rule of its own.
    server.create_remote_docker(
        "hub",
        &format!("http://{}", upstream.addr),
        json!({ "tagTtlSecs": 0 }),
    );
    create_virtual(
        &server,
        work.path(),
        "images",
        "docker",
        &[("hub", 1)],
        &["--min-release-age=7d"],
    );

    // Through the virtual repository the first digest seen is too young;
    // straight from the member it is served.
    let out = server.skopeo_pull_output(
        "default/images/team/app:1.0",
        &work.path().join("refused"),
        "1.0",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("minimum release age"),
        "{}",
        stderr(&out)
    );
    let direct = work.path().join("direct");
    server.skopeo_pull("default/hub/team/app:1.0", &direct, "1.0", false);
    assert_eq!(layout_ref(&direct, "1.0"), old.digest);

    clock.advance(8 * DAY);
    let first = work.path().join("first");
    server.skopeo_pull("default/images/team/app:1.0", &first, "1.0", false);
    assert_eq!(layout_ref(&first, "1.0"), old.digest);

    // The tag moves upstream: the member serves the new digest, the
    // virtual repository the old one, saying which one waits.
    upstream.push(&layout.dir, "new", "team/app:1.0", None);
    let answer = server.get("/v2/default/images/team/app/manifests/1.0");
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "docker-content-digest"), old.digest);
    let held = header(&answer, "entrepot-held-back");
    assert!(
        held.starts_with(&format!("{}; available-at=", new.digest)),
        "{held}"
    );
    let second = work.path().join("second");
    server.skopeo_pull("default/images/team/app:1.0", &second, "1.0", false);
    assert_eq!(layout_ref(&second, "1.0"), old.digest);
    let member = server.get("/v2/default/hub/team/app/manifests/1.0");
    assert_eq!(header(&member, "docker-content-digest"), new.digest);
    let by_digest = server.get(&format!(
        "/v2/default/images/team/app/manifests/{}",
        new.digest
    ));
    let error = assert_oci_error(by_digest, 403, "DENIED");
    assert!(
        error.to_string().contains("becomes available at"),
        "{error}"
    );

    clock.advance(8 * DAY);
    let third = work.path().join("third");
    server.skopeo_pull("default/images/team/app:1.0", &third, "1.0", false);
    assert_eq!(layout_ref(&third, "1.0"), new.digest);
}
