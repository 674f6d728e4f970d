//! Virtual repositories with real clients against the real binary: pip and
//! uv through a virtual Python repository over a hosted member and a remote
//! member in front of pypiserver (the dependency-confusion default, explicit
//! shadowing, an upstream outage), skopeo through a virtual Docker
//! repository (priorities decide tags, pushes are refused, an outage of a
//! remote member's upstream), and the member checks at create and update.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const JSON: &str = "application/vnd.pypi.simple.v1+json";

/// Write a gcloud-style upstream policy file: `(id, repository, priority)`.
fn policy_file(dir: &Path, name: &str, members: &[(&str, &str, i64)]) -> String {
    let list: Vec<Value> = members
        .iter()
        .map(|(id, repo, priority)| {
            json!({ "id": id, "repository": format!("projects/default/repositories/{repo}"), "priority": priority })
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    path.display().to_string()
}

/// The `__version__` of a package installed into a `--target` directory.
fn installed_version(target: &Path, module: &str) -> String {
    let init = std::fs::read_to_string(target.join(module).join("__init__.py")).unwrap();
    init.lines()
        .find_map(|l| l.strip_prefix("__version__ = \""))
        .map(|v| v.trim_end_matches('"').to_owned())
        .unwrap()
}

/// The versions of the files a project page lists (PEP 691 JSON).
fn page_versions(server: &Entrepot, repo: &str, project: &str) -> Vec<String> {
    let r = server
        .request(
            Method::GET,
            &format!("/pypi/default/{repo}/simple/{project}/"),
        )
        .header("Accept", JSON)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let page: Value = r.json().unwrap();
    let mut versions: Vec<String> = page["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    versions.sort();
    versions
}

#[test]
fn a_private_python_name_is_served_from_the_hosted_member_unless_shadowing_is_allowed() {
    let work = tempfile::tempdir().unwrap();
    let public = work.path().join("public");
    make_dist(&public, "wheel", "acme-tools", "9.0", &[]);
    make_dist(&public, "wheel", "tiny-lib", "1.0", &[]);
    let private = work.path().join("private");
    let acme = make_dist(&private, "wheel", "acme-tools", "1.0", &[]);
    let internal = make_dist(&private, "wheel", "acme-internal", "1.0", &[]);
    let mut upstream = PyPiServer::start(&public);
    let server = Entrepot::start();

    server.create_python("private", None, json!({}));
    let legacy = format!("{}/pypi/default/private/legacy/", server.base);
    let out = twine_upload(
        &legacy,
        "__token__",
        &server.admin_token,
        &[&acme, &internal],
    );
    assert!(out.status.success(), "twine upload: {}", text(&out));
    server.create_python(
        "pypi-mirror",
        Some(&upstream.index_url()),
        json!({ "tagTtlSecs": 0, "retryBudgetSecs": 2 }),
    );
    // The remote member even comes first: the rule is not about priority.
    let members = policy_file(
        work.path(),
        "members.json",
        &[("public", "pypi-mirror", 20), ("private", "private", 10)],
    );
    let out = server.cli(&[
        "repositories",
        "create",
        "all",
        "--repository-format=python",
        "--mode=virtual-repository",
        &format!("--upstream-policy-file={members}"),
    ]);
    assert!(ok(&out), "create the virtual repository: {}", text(&out));
    let described: Value =
        serde_json::from_str(&server.cli_ok(&["repositories", "describe", "all", "--format=json"]))
            .unwrap();
    assert_eq!(described["mode"], "VIRTUAL_REPOSITORY");
    assert_eq!(
        described["virtualRepositoryConfig"]["upstreamPolicies"][1]["repository"],
        "projects/default/repositories/private"
    );
    let url = server.python_index("all");

    // Dependency confusion refused by default: the hosted 1.0 wins over the
    // public 9.0, for pip and for uv.
    let pip = work.path().join("pip");
    let out = pip_install(&url, &pip, &["acme-tools"]);
    assert!(out.status.success(), "pip install: {}", text(&out));
    assert_eq!(installed_version(&pip, "acme_tools"), "1.0");
    let uv = work.path().join("uv");
    let out = uv_install(&url, &uv, &["acme-tools"]);
    assert!(out.status.success(), "uv install: {}", text(&out));
    assert_eq!(installed_version(&uv, "acme_tools"), "1.0");
    assert_eq!(page_versions(&server, "all", "acme-tools"), ["1.0"]);
    let out = pip_install(&url, &work.path().join("pinned"), &["acme-tools==9.0"]);
    assert!(!out.status.success(), "9.0 must not be visible");

    // The page keeps the member's hashes and metadata fields, with links into
    // the virtual repository.
    let r = server
        .request(Method::GET, "/pypi/default/all/simple/acme-tools/")
        .header("Accept", JSON)
        .send()
        .unwrap();
    let page: Value = r.json().unwrap();
    let file = &page["files"][0];
    let sha = sha256(&std::fs::read(&acme).unwrap());
    assert_eq!(file["hashes"]["sha256"], sha.trim_start_matches("sha256:"));
    assert!(file["url"]
        .as_str()
        .unwrap()
        .starts_with("/pypi/default/all/files/"));
    assert!(file["upload-time"].is_string(), "{page}");
    assert!(file["size"].is_u64(), "{page}");

    // A package only the upstream has installs through the virtual repository.
    let only_upstream = work.path().join("only-upstream");
    let out = pip_install(&url, &only_upstream, &["tiny-lib"]);
    assert!(out.status.success(), "pip install tiny-lib: {}", text(&out));
    assert!(installed(&only_upstream, "tiny_lib"));

    // The root lists the names of every member.
    let root = server
        .request(Method::GET, "/pypi/default/all/simple/")
        .header("Accept", JSON)
        .send()
        .unwrap()
        .text()
        .unwrap();
    for name in ["acme-tools", "acme-internal", "tiny-lib"] {
        assert!(root.contains(name), "{name} missing from the root: {root}");
    }

    // A reader of the virtual repository reads through it without any grant
    // on its members.
    let reader = server.user_with_token("reader@example.com", true);
    server.grant(
        "projects/default/repositories/all",
        "user:reader@example.com",
        "roles/artifactregistry.reader",
    );
    let reader_url = url.replace(&server.admin_token, &reader);
    let out = pip_install(&reader_url, &work.path().join("reader"), &["acme-tools"]);
    assert!(out.status.success(), "reader's pip install: {}", text(&out));
    let direct = server
        .bare_request(Method::GET, "/pypi/default/private/simple/acme-tools/")
        .basic_auth("__token__", Some(&reader))
        .send()
        .unwrap();
    assert_eq!(
        direct.status(),
        403,
        "the members stay closed to the reader"
    );

    // Shadowing allowed, explicitly: both versions are seen, pip takes 9.0,
    // and the server's audit log says so.
    let out = server.cli(&[
        "repositories",
        "update",
        "all",
        &format!("--upstream-policy-file={members}"),
        "--allow-remote-shadowing=acme-tools,acme-internal",
    ]);
    assert!(ok(&out), "allow shadowing: {}", text(&out));
    assert_eq!(page_versions(&server, "all", "acme-tools"), ["1.0", "9.0"]);
    let shadowed = work.path().join("shadowed");
    let out = pip_install(&url, &shadowed, &["acme-tools"]);
    assert!(out.status.success(), "pip install: {}", text(&out));
    assert_eq!(installed_version(&shadowed, "acme_tools"), "9.0");
    let log = server.log_text();
    assert!(
        log.contains("allowRemoteShadowing") && log.contains("acme-tools"),
        "shadowing is audited: {log}"
    );

    // The upstream goes down: what the hosted member holds still installs,
    // even for a name the remote member is asked about and never cached.
    upstream.stop();
    let outage = work.path().join("outage");
    let out = pip_install(&url, &outage, &["acme-internal"]);
    assert!(
        out.status.success(),
        "pip install with the upstream down: {}",
        text(&out)
    );
    assert!(installed(&outage, "acme_internal"));
}

/// `skopeo inspect` of an image through the server: its manifest digest.
fn digest_of(server: &Entrepot, image: &str) -> String {
    let creds = format!("--creds={}", server.creds());
    let out = server.skopeo(&[
        "inspect",
        "--tls-verify=false",
        &creds,
        &server.docker_ref(image),
    ]);
    assert_skopeo_ok(&out, &format!("inspect {image}"));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    info["Digest"].as_str().unwrap().to_owned()
}

#[test]
fn docker_priorities_decide_tags_and_pushes_are_refused_naming_the_members() {
    let work = tempfile::tempdir().unwrap();
    let server = Entrepot::start();
    server.create_repository("team-a");
    server.create_repository("team-b");
    let a = server.push_small_image("default/team-a/app", "1.0");
    let b = server.push_small_image("default/team-b/app", "1.0");
    server.push_small_image("default/team-b/app", "only-b");
    let a_first = policy_file(
        work.path(),
        "a-first.json",
        &[("a", "team-a", 20), ("b", "team-b", 10)],
    );
    let out = server.cli(&[
        "repositories",
        "create",
        "images",
        "--repository-format=docker",
        "--mode=virtual-repository",
        &format!("--upstream-policy-file={a_first}"),
    ]);
    assert!(ok(&out), "create: {}", text(&out));

    assert_eq!(digest_of(&server, "default/images/app:1.0"), a.digest);
    let pulled = work.path().join("pulled");
    server.skopeo_pull("default/images/app:1.0", &pulled, "1.0", false);
    // A tag only the lower-priority member has resolves there.
    assert_eq!(
        digest_of(&server, "default/images/app:only-b"),
        server
            .get("/v2/default/team-b/app/manifests/only-b")
            .headers()["docker-content-digest"]
            .to_str()
            .unwrap()
    );
    let tags: Value = server
        .get("/v2/default/images/app/tags/list")
        .json()
        .unwrap();
    assert_eq!(tags["tags"], json!(["1.0", "only-b"]));

    // Swapping the priorities swaps the image behind the tag.
    let b_first = policy_file(
        work.path(),
        "b-first.json",
        &[("a", "team-a", 10), ("b", "team-b", 20)],
    );
    let out = server.cli(&[
        "repositories",
        "update",
        "images",
        &format!("--upstream-policy-file={b_first}"),
    ]);
    assert!(ok(&out), "update: {}", text(&out));
    assert_eq!(digest_of(&server, "default/images/app:1.0"), b.digest);

    // Pushing to the virtual repository is refused, and says where to push.
    let out = server.push("default/images/app:2.0", Some(&server.creds()));
    assert!(!out.status.success(), "a push to a virtual repository");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("virtual repository")
            && err.contains("projects/default/repositories/team-a")
            && err.contains("projects/default/repositories/team-b"),
        "{err}"
    );
}

#[test]
fn an_upstream_outage_of_a_remote_member_does_not_break_pulls_of_hosted_content() {
    let work = tempfile::tempdir().unwrap();
    let upstream_image = work.path().join("upstream-image");
    image_layout(&upstream_image, "2.0", &[2_000]);
    let mut upstream = Distribution::start();
    upstream.push(&upstream_image, "2.0", "tools/cli:2.0", None);
    let server = Entrepot::start();
    server.create_remote_docker(
        "hub",
        &format!("http://{}", upstream.addr),
        json!({ "tagTtlSecs": 0, "retryBudgetSecs": 2 }),
    );
    server.create_repository("local");
    let local = server.push_small_image("default/local/app", "1.0");
    let members = policy_file(
        work.path(),
        "members.json",
        &[("hub", "hub", 20), ("local", "local", 10)],
    );
    let out = server.cli(&[
        "repositories",
        "create",
        "images",
        "--repository-format=docker",
        "--mode=virtual-repository",
        &format!("--upstream-policy-file={members}"),
    ]);
    assert!(ok(&out), "create: {}", text(&out));

    // Through the remote member while the upstream is up.
    server.skopeo_pull(
        "default/images/tools/cli:2.0",
        &work.path().join("from-upstream"),
        "2.0",
        false,
    );

    upstream.stop();
    let pulled = work.path().join("hosted");
    server.skopeo_pull("default/images/app:1.0", &pulled, "1.0", false);
    assert_eq!(digest_of(&server, "default/images/app:1.0"), local.digest);
    // Content neither member has: the upstream's failure, not a bare 404.
    let r = server.get("/v2/default/images/nothing/manifests/1.0");
    assert!(
        r.status().is_server_error(),
        "{} {}",
        r.status(),
        r.text().unwrap()
    );
}

#[test]
fn cycles_other_formats_and_other_projects_are_refused_as_members() {
    let work = tempfile::tempdir().unwrap();
    let server = Entrepot::start();
    server.create_python("wheels", None, json!({}));
    server.create_repository("images");
    server.create_project("other");
    server.create_python_in("other", "theirs", None, json!({}));
    let create = |id: &str, members: &[(&str, &str, i64)]| {
        let file = policy_file(work.path(), &format!("{id}.json"), members);
        server.cli(&[
            "repositories",
            "create",
            id,
            "--repository-format=python",
            "--mode=virtual-repository",
            &format!("--upstream-policy-file={file}"),
        ])
    };

    let out = create("mixed", &[("w", "wheels", 2), ("i", "images", 1)]);
    assert!(!ok(&out));
    assert!(
        text(&out).contains("is a docker repository"),
        "{}",
        text(&out)
    );

    let out = create("all", &[("w", "wheels", 1)]);
    assert!(ok(&out), "{}", text(&out));
    let out = create("nested", &[("all", "all", 1)]);
    assert!(!ok(&out));
    assert!(
        text(&out).contains("itself a virtual repository"),
        "{}",
        text(&out)
    );
    // Nor can an update make a virtual repository a member of itself or
    // of another virtual one.
    let file = policy_file(work.path(), "self.json", &[("me", "all", 1)]);
    let out = server.cli(&[
        "repositories",
        "update",
        "all",
        &format!("--upstream-policy-file={file}"),
    ]);
    assert!(!ok(&out));
    assert!(
        text(&out).contains("virtual repository itself"),
        "{}",
        text(&out)
    );

    let out = create("ghost", &[("g", "missing", 1)]);
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    let out = create("twice", &[("w", "wheels", 1), ("w", "images", 2)]);
    assert!(text(&out).contains("used twice"), "{}", text(&out));

    let file = work.path().join("foreign.json");
    std::fs::write(
        &file,
        json!([{ "id": "t", "repository": "projects/other/repositories/theirs", "priority": 1 }])
            .to_string(),
    )
    .unwrap();
    let out = server.cli(&[
        "repositories",
        "create",
        "foreign",
        "--repository-format=python",
        "--mode=virtual-repository",
        &format!("--upstream-policy-file={}", file.display()),
    ]);
    assert!(text(&out).contains("another project"), "{}", text(&out));

    // None of the refused repositories was created.
    for id in ["mixed", "nested", "ghost", "twice", "foreign"] {
        let r = server.get(&format!("/v1/projects/default/repositories/{id}"));
        assert_eq!(r.status(), 404, "{id}");
    }
    // A standard repository takes no member list.
    let out = server.cli(&[
        "repositories",
        "update",
        "wheels",
        &format!("--upstream-policy-file={}", file.display()),
    ]);
    assert!(
        text(&out).contains("not a virtual repository"),
        "{}",
        text(&out)
    );
}
