//! Three `entrepot serve` nodes as one registry: one PostgreSQL database,
//! one Garage bucket, nginx in front as a round-robin balancer. A push
//! through the balancer is pulled from every node; an IAM change or a
//! secret rotation made through one node holds on the others at once;
//! twenty cold pulls over the three nodes fetch each blob from the upstream
//! once; a node killed in the middle of a download leaves the others to
//! finish it.
//!
//! Skipped (SKIPPED printed) without `ENTREPOT_TEST_POSTGRES_URL`, Garage or
//! nginx.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

/// The digests of a layout's image: its config and layers.
fn blobs_of(layout: &Path, manifest: &str) -> Vec<String> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(layout_blob(layout, manifest)).unwrap()).unwrap();
    std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// `skopeo copy` of `image` from the registry at `addr` into a new layout
/// at `dest` as `creds`; the output.
fn pull_from(addr: &str, creds: &str, image: &str, dest: &Path) -> std::process::Output {
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--retry-times=2",
        &format!("--src-creds={creds}"),
        &format!("docker://{addr}/{image}"),
        &format!("oci:{}:pulled", dest.display()),
    ])
}

/// Poll `check` every 20 ms for at most a second; whether it held.
fn within_a_second(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_push_through_the_balancer_is_pulled_from_every_node() {
    let Some(cluster) = Cluster::start(3, &[]) else {
        return;
    };
    cluster.node(0).create_repository("team");
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    let manifest = image_layout(&original, "1", &[3_000_000, 1_000_000, 200_000]);
    let pushed = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("--dest-creds={}", cluster.creds()),
        &format!("oci:{}:1", original.display()),
        &format!("docker://{}/default/team/app:1", cluster.balancer.addr),
    ]);
    assert_skopeo_ok(&pushed, "the push through the balancer");

    // The upload sessions were opened, written and committed on different
    // nodes: the balancer sent the requests of each blob round the nodes.
    let log = cluster.balancer.access_log();
    let upload_backends: std::collections::HashSet<&str> = log
        .lines()
        .filter(|l| l.contains("/blobs/uploads/"))
        .filter_map(|l| l.split("upstream=").nth(1))
        .collect();
    assert!(
        upload_backends.len() >= 2,
        "every upload request went to one node:\n{log}"
    );

    for i in 0..cluster.node_count() {
        let pulled = work.path().join(format!("from-node-{i}"));
        let output = pull_from(
            &cluster.node(i).addr,
            &cluster.creds(),
            "default/team/app:1",
            &pulled,
        );
        assert!(
            output.status.success(),
            "pull from node {i}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            cluster.logs()
        );
        assert_same_content(&original, &pulled, &manifest);
    }
}

#[test]
fn an_iam_change_on_one_node_is_enforced_by_the_others_within_a_second() {
    let Some(cluster) = Cluster::start(3, &[]) else {
        return;
    };
    let first = cluster.node(0);
    first.create_repository("team");
    first.push_small_image("default/team/app", "1.0");
    first.create_user("dev@example.com", None);
    let (token, token_id) = first.token_for("user:dev@example.com");
    let reader = ("dev@example.com", token.as_str());
    let manifest = "/v2/default/team/app/manifests/1.0";
    let status_on = |i: usize| {
        cluster
            .node(i)
            .v2("GET", manifest, Some(reader))
            .status()
            .as_u16()
    };
    let resource = "projects/default/repositories/team";
    let policy_without_dev = first.admin_api("GET", &format!("/v1/{resource}:getIamPolicy"), None);

    // Granted on node 0: nodes 1 and 2 let the reader in.
    first.grant(
        resource,
        "user:dev@example.com",
        "roles/artifactregistry.reader",
    );
    for i in 1..3 {
        assert!(
            within_a_second(|| status_on(i) == 200),
            "node {i} still refuses the reader: {}",
            status_on(i)
        );
    }

    // The grant taken back on node 0: nodes 1 and 2 refuse, though they
    // had just checked the reader's token.
    let mut policy = first.admin_api("GET", &format!("/v1/{resource}:getIamPolicy"), None);
    policy["bindings"] = policy_without_dev["bindings"].clone();
    if policy["bindings"].is_null() {
        policy["bindings"] = json!([]);
    }
    first.admin_api(
        "POST",
        &format!("/v1/{resource}:setIamPolicy"),
        Some(json!({ "policy": policy })),
    );
    for i in 1..3 {
        assert!(
            within_a_second(|| status_on(i) == 403),
            "node {i} still lets the reader in: {}",
            status_on(i)
        );
    }

    // Granted again, then the token revoked on node 0: refused everywhere.
    first.grant(
        resource,
        "user:dev@example.com",
        "roles/artifactregistry.reader",
    );
    for i in 1..3 {
        assert!(within_a_second(|| status_on(i) == 200), "node {i}");
    }
    first.cli_ok(&["tokens", "revoke", &token_id, "--quiet"]);
    for i in 1..3 {
        assert!(
            within_a_second(|| status_on(i) == 401),
            "node {i} still accepts the revoked token: {}",
            status_on(i)
        );
    }
}

#[test]
fn a_secret_rotated_on_one_node_is_used_by_the_others_on_their_next_upstream_request() {
    let work = tempfile::tempdir().unwrap();
    // The upstream accepts both the old and the new credentials: only its
    // token log tells which one a node used.
    let tokens = TokenService::start(work.path(), "alice:token-one\nbob:token-two\n", 300);
    let upstream = Distribution::start_with_auth(&tokens.registry_auth());
    for image in ["a", "b", "c"] {
        let layout = work.path().join(image);
        image_layout(&layout, "1", &[100_000]);
        upstream.push(
            &layout,
            "1",
            &format!("team/{image}:1"),
            Some("alice:token-one"),
        );
    }
    let Some(cluster) = Cluster::start(3, &[]) else {
        return;
    };
    let first = cluster.node(0);
    first.agent_secret(
        work.path(),
        "upstream",
        r#"{"username": "alice", "accessToken": "token-one"}"#,
    );
    first.cli_ok(&["access-policy", "allow", &upstream.addr, &tokens.addr]);
    first.cli_ok(&[
        "repositories",
        "create",
        "private",
        "--repository-format=docker",
        "--mode=remote-repository",
        &format!("--remote-docker-repo=http://{}", upstream.addr),
        "--remote-password-secret-version=projects/default/secrets/upstream/versions/latest",
    ]);
    let pull = |node: usize, image: &str| {
        let dest = work.path().join(format!("pulled-{node}-{image}"));
        let output = pull_from(
            &cluster.node(node).addr,
            &cluster.creds(),
            &format!("default/private/team/{image}:1"),
            &dest,
        );
        assert!(
            output.status.success(),
            "pull of {image} from node {node}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            cluster.logs()
        );
    };
    // Node 1 reads the secret (version 1) and keeps its credentials.
    pull(1, "a");
    assert!(
        tokens
            .log_text()
            .contains("TOKEN user=alice scope=repository:team/a:pull"),
        "{}",
        tokens.log_text()
    );

    // Rotated on node 0.
    let v2 = work.path().join("v2.txt");
    std::fs::write(&v2, r#"{"username": "bob", "accessToken": "token-two"}"#).unwrap();
    first.cli_ok(&[
        "secrets",
        "versions",
        "add",
        "upstream",
        &format!("--data-file={}", v2.display()),
    ]);
    // Node 1's next upstream request uses the new version.
    pull(1, "b");
    pull(2, "c");
    let log = tokens.log_text();
    let fetched_as = |user: &str, image: &str| {
        let line = format!("TOKEN user={user} scope=repository:team/{image}:pull");
        log.lines().any(|l| l == line)
    };
    for image in ["b", "c"] {
        assert!(
            fetched_as("bob", image),
            "team/{image} was not fetched with the rotated credentials:\n{log}"
        );
        assert!(
            !fetched_as("alice", image),
            "team/{image} was fetched with the old credentials:\n{log}"
        );
    }
}

#[test]
fn twenty_cold_pulls_over_three_nodes_fetch_each_blob_from_the_upstream_once() {
    let work = tempfile::tempdir().unwrap();
    let upstream = Distribution::start();
    let original = work.path().join("original");
    let manifest = image_layout(
        &original,
        "1",
        &[2_000_000, 1_500_000, 1_000_000, 500_000, 100_000],
    );
    upstream.push(&original, "1", "team/app:1", None);
    let Some(cluster) = Cluster::start(3, &[]) else {
        return;
    };
    cluster
        .node(0)
        .create_remote_docker("hub", &format!("http://{}", upstream.addr), json!({}));

    let pulls: Vec<_> = (0..20)
        .map(|k| {
            let addr = cluster.node(k % 3).addr.clone();
            let creds = cluster.creds();
            let dest = work.path().join(format!("pulled-{k}"));
            std::thread::spawn(move || {
                let output = pull_from(&addr, &creds, "default/hub/team/app:1", &dest);
                (k, output, dest)
            })
        })
        .collect();
    for pull in pulls {
        let (k, output, dest) = pull.join().unwrap();
        assert!(
            output.status.success(),
            "pull {k} (node {}): {}\n{}",
            k % 3,
            String::from_utf8_lossy(&output.stderr),
            cluster.logs()
        );
        assert_same_content(&original, &dest, &manifest);
    }
    for blob in blobs_of(&original, &manifest) {
        let gets = upstream.gets_of(&format!("/v2/team/app/blobs/{blob}"));
        assert_eq!(
            gets,
            1,
            "the upstream served {blob} {gets} times:\n{}",
            upstream.log_text()
        );
    }
}

/// The holder of the fill lease of `digest`, while the fill runs.
fn lease_holder(database_url: &str, digest: &str) -> Option<String> {
    let output = Command::new("psql")
        .args([
            database_url,
            "-tAc",
            &format!(
                "SELECT holder FROM leases WHERE name LIKE 'fill % {digest}' AND outcome IS NULL AND expires_at > now()"
            ),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[test]
fn killing_the_lease_holder_mid_download_leaves_the_others_to_finish() {
    let work = tempfile::tempdir().unwrap();
    let registry = Distribution::start();
    let original = work.path().join("original");
    let manifest = image_layout(&original, "1", &[6_000_000]);
    registry.push(&original, "1", "team/big:1", None);
    // 1 MiB/s after the first 512 KiB: the layer takes about five seconds.
    let Some(slow) = Nginx::throttle(&registry.addr, "1m", "512k") else {
        return;
    };
    let Some(mut cluster) = Cluster::start(3, &[]) else {
        return;
    };
    cluster
        .node(0)
        .create_remote_docker("hub", &format!("http://{}", slow.addr), json!({}));
    let blobs = blobs_of(&original, &manifest);
    let layer = blobs.last().unwrap().clone();

    // Two clients per node.
    let pulls: Vec<_> = (0..6)
        .map(|k| {
            let node = k % 3;
            let addr = cluster.node(node).addr.clone();
            let creds = cluster.creds();
            let dest = work.path().join(format!("pulled-{k}"));
            std::thread::spawn(move || {
                let output = pull_from(&addr, &creds, "default/hub/team/big:1", &dest);
                (node, output, dest)
            })
        })
        .collect();

    // The node that took the layer's lease is killed while it downloads.
    let url = cluster.database.url().to_owned();
    let mut holder = None;
    assert!(
        eventually(Duration::from_secs(60), || {
            holder = lease_holder(&url, &layer);
            holder.is_some()
        }),
        "no node took the layer's fill lease:\n{}",
        cluster.logs()
    );
    let holder = holder.unwrap();
    let victim = (0..3)
        .find(|&i| holder.starts_with(&format!("node-{}-", cluster.node(i).pid())))
        .unwrap_or_else(|| panic!("the lease holder {holder} is none of the nodes"));
    assert!(
        slow.gets_of(&format!("/v2/team/big/blobs/{layer}")) == 0,
        "the download ended before the holder could be killed:\n{}",
        slow.access_log()
    );
    cluster.kill(victim);

    for pull in pulls {
        let (node, output, dest) = pull.join().unwrap();
        if node == victim {
            continue; // Its clients lost their connection.
        }
        assert!(
            output.status.success(),
            "a pull from node {node} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            cluster.logs()
        );
        assert_same_content(&original, &dest, &manifest);
    }
    let gets = slow.gets_of(&format!("/v2/team/big/blobs/{layer}"));
    assert!(
        (1..=2).contains(&gets),
        "the upstream served the layer {gets} times:\n{}",
        slow.access_log()
    );
}
