//! Cleanup policies through Artifact Registry's REST shape: a repository
//! created, read and patched on `projects/P/locations/L/repositories/R`
//! carries `cleanupPolicies` and `cleanupPolicyDryRun`, with Google's enum
//! numbers when asked for, and they are the policies the cleanup endpoints
//! of `projects/P/repositories/R` show and run.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

const REPO: &str = "/v1/projects/default/locations/europe-west1/repositories/images";
const INT: &str = "$alt=json;enum-encoding=int";

#[test]
fn cleanup_policies_are_set_and_read_on_the_locations_path() {
    let server = Entrepot::start();
    // Created with policies, as Google's client sends them (enums as numbers).
    let operation = server.admin_api(
        "POST",
        &format!(
            "/v1/projects/default/locations/europe-west1/repositories?repositoryId=images&{INT}"
        ),
        Some(json!({
            "format": 1,
            "cleanupPolicies": {
                "old-untagged": {"id": "old-untagged", "action": 1,
                                 "condition": {"tagState": 2, "olderThan": "86400s"}},
                "keep-3": {"id": "keep-3", "action": 2, "mostRecentVersions": {"keepCount": 3}}
            }
        })),
    );
    let created = &operation["response"];
    assert_eq!(
        created["cleanupPolicies"]["old-untagged"]["action"], 1,
        "{created}"
    );
    assert_eq!(
        created["cleanupPolicies"]["old-untagged"]["condition"]["tagState"], 2,
        "{created}"
    );
    assert!(created.get("cleanupPolicyDryRun").is_none(), "{created}");

    // GET answers them, enums by name unless numbers are asked for.
    let got = server.get_json(REPO);
    let policy = &got["cleanupPolicies"]["old-untagged"];
    assert_eq!(policy["action"], "DELETE", "{got}");
    assert_eq!(policy["condition"]["tagState"], "UNTAGGED", "{got}");
    assert_eq!(policy["condition"]["olderThan"], "86400s", "{got}");
    assert_eq!(
        got["cleanupPolicies"]["keep-3"]["mostRecentVersions"]["keepCount"],
        3
    );
    let numbers = server.get_json(&format!("{REPO}?{INT}"));
    assert_eq!(
        numbers["cleanupPolicies"]["keep-3"]["action"], 2,
        "{numbers}"
    );

    // Only the dry-run flag: the policies stay.
    let patched = server.admin_api(
        "PATCH",
        &format!("{REPO}?updateMask=cleanupPolicyDryRun"),
        Some(json!({"cleanupPolicyDryRun": true, "description": "not in the mask"})),
    );
    assert_eq!(patched["cleanupPolicyDryRun"], true, "{patched}");
    assert_eq!(
        patched["cleanupPolicies"].as_object().unwrap().len(),
        2,
        "{patched}"
    );
    assert_eq!(patched["description"], "", "{patched}");

    // The policies replaced, with the description, in one patch.
    let patched = server.admin_api(
        "PATCH",
        &format!("{REPO}?updateMask=description,cleanup_policies"),
        Some(json!({
            "description": "with policies",
            "cleanupPolicies": {"untagged": {"id": "untagged", "action": "DELETE",
                                             "condition": {"tagState": "UNTAGGED"}}}
        })),
    );
    assert_eq!(patched["description"], "with policies", "{patched}");
    assert_eq!(
        patched["cleanupPolicies"],
        json!({"untagged": {"id": "untagged", "action": "DELETE", "condition": {"tagState": "UNTAGGED"}}}),
        "{patched}"
    );
    assert_eq!(patched["cleanupPolicyDryRun"], true, "{patched}");
    // The same policies on entrepot's own endpoint, which runs them.
    let own = server.get_json("/v1/projects/default/repositories/images/cleanupPolicies");
    assert_eq!(own["cleanupPolicies"], patched["cleanupPolicies"], "{own}");
    assert_eq!(own["cleanupPolicyDryRun"], true, "{own}");
    let run = server.admin_api(
        "POST",
        "/v1/projects/default/repositories/images/cleanupPolicies:run",
        Some(json!({})),
    );
    assert_eq!(run["dryRun"], true, "{run}");

    // A bad policy is refused with its reason, and changes nothing.
    let bad = server
        .request(
            reqwest::Method::PATCH,
            &format!("{REPO}?updateMask=description,cleanupPolicies"),
        )
        .json(&json!({
            "description": "must not stick",
            "cleanupPolicies": {"x": {"id": "x", "action": "DELETE"}}
        }))
        .send()
        .unwrap();
    let message = assert_api_error(bad, 400, "INVALID_ARGUMENT");
    assert!(message.contains("neither a condition"), "{message}");
    let got = server.get_json(REPO);
    assert_eq!(got["description"], "with policies", "{got}");
    assert!(got["cleanupPolicies"].get("untagged").is_some(), "{got}");

    // An empty map under the mask removes them all; the flag goes off.
    let cleared = server.admin_api(
        "PATCH",
        &format!("{REPO}?updateMask=cleanupPolicies,cleanupPolicyDryRun"),
        Some(json!({})),
    );
    assert!(cleared.get("cleanupPolicies").is_none(), "{cleared}");
    assert!(cleared.get("cleanupPolicyDryRun").is_none(), "{cleared}");
    let own = server.get_json("/v1/projects/default/repositories/images/cleanupPolicies");
    assert_eq!(own["cleanupPolicies"], json!({}), "{own}");
}

#[test]
fn entrepots_own_create_path_points_at_the_cleanup_endpoint() {
    let server = Entrepot::start();
    let refused = server
        .request(
            reqwest::Method::POST,
            "/v1/projects/default/repositories?repositoryId=images",
        )
        .json(&json!({
            "format": "DOCKER",
            "cleanupPolicies": {"u": {"id": "u", "action": "DELETE", "condition": {"tagState": "UNTAGGED"}}}
        }))
        .send()
        .unwrap();
    let message = assert_api_error(refused, 400, "INVALID_ARGUMENT");
    assert!(message.contains("cleanupPolicies"), "{message}");
}
