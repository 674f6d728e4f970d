//! Authentication and authorization hardening, end to end against the real
//! binary: bounded password checks, registry tokens that die with their
//! principal and keep to their scope, secrets attached only by those who may
//! read them, grants that go with what they grant, and the smaller leaks
//! (forwarded headers, plain-text errors, audit floods, token writes, the
//! bootstrap token file).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use support::{header_of, raw_head, Entrepot, Reply, ScriptedUpstream};

/// The server as these tests drive it: requests carry no credentials unless
/// a test adds them; `admin` is the bootstrap admin's token.
struct Srv {
    entrepot: Entrepot,
    admin: String,
}

impl Srv {
    fn start(env: &[(&str, &str)]) -> Srv {
        Self::wrap(Entrepot::builder().log_level("info").envs(env).start())
    }

    fn wrap(entrepot: Entrepot) -> Srv {
        Srv {
            admin: entrepot.admin_token.clone(),
            entrepot,
        }
    }

    /// Stop, and start again on the same data directory with `env`.
    fn restart(self, env: &[(&str, &str)]) -> Srv {
        Self::wrap(self.entrepot.into_builder().clear_env().envs(env).start())
    }

    fn data(&self) -> PathBuf {
        self.data_dir.clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request without credentials.
    fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.bare_request(method.parse().unwrap(), path)
    }

    /// An admin API call as the bootstrap admin that must succeed.
    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.admin_api(method, path, body)
    }

    fn user(&self, email: &str, password: Option<&str>) {
        self.create_user(email, password);
    }

    fn docker_repository(&self, id: &str) {
        self.create_repository(id);
    }

    fn secret(&self, id: &str, payload: &str) {
        self.create_secret(id, payload);
    }
}

impl std::ops::Deref for Srv {
    type Target = Entrepot;

    fn deref(&self) -> &Entrepot {
        &self.entrepot
    }
}

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One raw HTTP/1.1 request (for headers no client would send); status line
/// and headers of the answer.
fn raw(addr: &str, request: &str) -> String {
    raw_head(addr, request)
}

fn status(resp: Response) -> u16 {
    resp.status().as_u16()
}

// ---- High 2: password checks are bounded ----

#[test]
fn a_wrong_password_flood_keeps_memory_bounded_and_refusals_say_when_to_retry() {
    let server = Srv::start(&[]);
    server.user("victim@example.com", Some("correct horse battery"));
    let baseline = peak_rss_kib(server.pid());
    // 64 connections at once, 3 wrong passwords each: bounded in count.
    let url = server.url("/v2/");
    let outcomes: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..64)
            .map(|i| {
                let url = url.clone();
                scope.spawn(move || {
                    let client = Client::builder()
                        .timeout(Duration::from_secs(120))
                        .build()
                        .unwrap();
                    (0..3)
                        .map(|j| {
                            let resp = client
                                .get(&url)
                                .basic_auth("victim@example.com", Some(format!("wrong-{i}-{j}")))
                                .send()
                                .unwrap();
                            let retry = resp
                                .headers()
                                .get("retry-after")
                                .map(|v| v.to_str().unwrap().to_owned());
                            (resp.status().as_u16(), retry)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Token holders and anonymous callers are served during the flood.
        let (token, _) = server.token_for("user:admin");
        let resp = server
            .req("GET", "/v1/projects")
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(status(server.req("GET", "/healthz").send().unwrap()), 200);
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let peak = peak_rss_kib(server.pid());
    // Each argon2 check holds about 19 MiB: 64 at once would be over 1 GiB.
    assert!(
        peak < baseline + 200 * 1024,
        "peak RSS {peak} KiB (baseline {baseline} KiB) grew with the number of password attempts"
    );
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|(s, _)| *s == 429 || *s == 503)
        .collect();
    assert!(
        !refused.is_empty(),
        "a flood of wrong passwords is throttled: {outcomes:?}"
    );
    for (s, retry) in &refused {
        let secs: u64 = retry
            .as_deref()
            .unwrap_or_else(|| panic!("{s} without Retry-After"))
            .parse()
            .unwrap();
        assert!(secs >= 1);
    }
    assert!(
        outcomes.iter().all(|(s, _)| [401, 429, 503].contains(s)),
        "{outcomes:?}"
    );
}

#[test]
fn unknown_and_password_less_users_pay_the_same_password_check() {
    let server = Srv::start(&[]);
    server.user("known@example.com", Some("correct horse battery"));
    server.user("tokens-only@example.com", None);
    let checks = || server.metric("entrepot_password_verifications_total");
    let before = checks();
    for user in [
        "known@example.com",
        "nobody@example.com",
        "tokens-only@example.com",
    ] {
        let resp = server
            .req("GET", "/v2/")
            .basic_auth(user, Some("not-the-password"))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 401, "{user}");
        let text = resp.text().unwrap();
        assert!(
            text.contains("the user name, password or token is not valid"),
            "{user}: the same answer for every kind of user: {text}"
        );
    }
    assert_eq!(
        checks() - before,
        3,
        "a known user, an unknown one and one without a password each cost one hash"
    );
    assert_eq!(
        server.metric("entrepot_password_dummy_verifications_total"),
        2
    );
}

// ---- High 3: registry tokens die with their principal ----

#[test]
fn registry_tokens_die_with_their_user_and_cannot_renew_themselves() {
    let server = Srv::start(&[]);
    server.docker_repository("images");
    server.user("leaver@example.com", Some("correct horse battery"));
    server.grant(
        "projects/default/repositories/images",
        "user:leaver@example.com",
        "roles/artifactregistry.writer",
    );
    let scope = "repository:default/images/app:pull,push";
    let jwt = server.registry_token("leaver@example.com", "correct horse battery", scope);
    let push = |jwt: &str| {
        status(
            server
                .req("POST", "/v2/default/images/app/blobs/uploads/")
                .bearer_auth(jwt)
                .send()
                .unwrap(),
        )
    };
    assert_eq!(push(&jwt), 202, "the token works while its user exists");

    // A registry token is not a credential for another one.
    for resp in [
        server
            .req("GET", &format!("/v2/token?service=entrepot&scope={scope}"))
            .basic_auth("leaver@example.com", Some(&jwt))
            .send()
            .unwrap(),
        server
            .req("GET", &format!("/v2/token?service=entrepot&scope={scope}"))
            .bearer_auth(&jwt)
            .send()
            .unwrap(),
    ] {
        assert_eq!(resp.status(), 401);
        assert!(resp.text().unwrap().contains("cannot be exchanged"));
    }

    server.admin("DELETE", "/v1/users/leaver@example.com", None);
    assert_eq!(push(&jwt), 401, "the user is gone, so is the token");

    // Re-created under the same name, it is someone else.
    server.user("leaver@example.com", Some("another horse battery"));
    server.grant(
        "projects/default/repositories/images",
        "user:leaver@example.com",
        "roles/artifactregistry.writer",
    );
    assert_eq!(
        push(&jwt),
        401,
        "a token of the old user is not the new user's"
    );
}

#[test]
fn registry_tokens_die_with_their_access_token_and_service_account() {
    let server = Srv::start(&[]);
    server.docker_repository("images");
    server.admin(
        "POST",
        "/v1/projects/default/serviceAccounts",
        Some(json!({ "accountId": "ci-pusher" })),
    );
    let sa = "serviceAccount:ci-pusher@default.iam.entrepot";
    server.grant(
        "projects/default/repositories/images",
        sa,
        "roles/artifactregistry.writer",
    );
    let scope = "repository:default/images/app:pull,push";
    let (pat, pat_id) = server.token_for(sa);
    let (pat2, _) = server.token_for(sa);
    let jwt = server.registry_token("_token", &pat, scope);
    let jwt2 = server.registry_token("_token", &pat2, scope);
    let push = |jwt: &str| {
        status(
            server
                .req("POST", "/v2/default/images/app/blobs/uploads/")
                .bearer_auth(jwt)
                .send()
                .unwrap(),
        )
    };
    assert_eq!(push(&jwt), 202);
    server.admin("DELETE", &format!("/v1/tokens/{pat_id}"), None);
    assert_eq!(
        push(&jwt),
        401,
        "revoking the access token ends its registry tokens"
    );
    assert_eq!(push(&jwt2), 202);
    server.admin(
        "DELETE",
        "/v1/projects/default/serviceAccounts/ci-pusher@default.iam.entrepot",
        None,
    );
    assert_eq!(
        push(&jwt2),
        401,
        "deleting the account ends its registry tokens"
    );
}

// ---- Scale: checked tokens are remembered, and still die at once ----

/// Uses `auth` on `GET /v2/` twice, the second answered from the credential
/// cache; then `kill` ends the credential; the very next use is refused.
fn refused_right_after_a_cached_use(
    server: &Srv,
    auth: impl Fn(RequestBuilder) -> RequestBuilder,
    kill: impl FnOnce(),
) {
    let use_it = || status(auth(server.req("GET", "/v2/")).send().unwrap());
    assert_eq!(use_it(), 200, "checked against the database");
    let hits = server.metric("entrepot_credential_cache_hits_total");
    assert_eq!(use_it(), 200, "answered from the cache");
    assert_eq!(
        server.metric("entrepot_credential_cache_hits_total"),
        hits + 1,
        "the second use was a cache hit"
    );
    kill();
    assert_eq!(use_it(), 401, "refused on the next request");
}

#[test]
fn a_revoked_access_token_is_refused_on_the_next_request_though_just_cached() {
    let server = Srv::start(&[]);
    server.user("dev@example.com", None);
    let (token, id) = server.token_for("user:dev@example.com");
    refused_right_after_a_cached_use(
        &server,
        |r| r.bearer_auth(&token),
        || {
            server.admin("DELETE", &format!("/v1/tokens/{id}"), None);
        },
    );
    // Under Basic (another cache entry) too.
    let (token, id) = server.token_for("user:dev@example.com");
    refused_right_after_a_cached_use(
        &server,
        |r| r.basic_auth("dev@example.com", Some(&token)),
        || {
            server.admin("DELETE", &format!("/v1/tokens/{id}"), None);
        },
    );
}

#[test]
fn a_deleted_service_accounts_token_is_refused_on_the_next_request_though_just_cached() {
    let server = Srv::start(&[]);
    server.admin(
        "POST",
        "/v1/projects/default/serviceAccounts",
        Some(json!({ "accountId": "ci-puller" })),
    );
    let (token, _) = server.token_for("serviceAccount:ci-puller@default.iam.entrepot");
    refused_right_after_a_cached_use(
        &server,
        |r| r.basic_auth("_token", Some(&token)),
        || {
            server.admin(
                "DELETE",
                "/v1/projects/default/serviceAccounts/ci-puller@default.iam.entrepot",
                None,
            );
        },
    );
}

#[test]
fn a_registry_token_is_refused_on_the_next_request_once_its_access_token_is_revoked() {
    let server = Srv::start(&[]);
    server.docker_repository("images");
    server.user("dev@example.com", None);
    server.grant(
        "projects/default/repositories/images",
        "user:dev@example.com",
        "roles/artifactregistry.reader",
    );
    let (pat, id) = server.token_for("user:dev@example.com");
    let jwt = server.registry_token("_token", &pat, "repository:default/images/app:pull");
    refused_right_after_a_cached_use(
        &server,
        |r| r.bearer_auth(&jwt),
        || {
            server.admin("DELETE", &format!("/v1/tokens/{id}"), None);
        },
    );
}

// ---- Medium 10: registry tokens keep to their scope ----

#[test]
fn a_registry_token_grants_only_its_scope_and_is_refused_on_v1() {
    let server = Srv::start(&[]);
    server.docker_repository("images");
    server.docker_repository("other");
    server.user("dev@example.com", Some("correct horse battery"));
    server.grant(
        "projects/default",
        "user:dev@example.com",
        "roles/artifactregistry.writer",
    );
    let pull_only = server.registry_token(
        "dev@example.com",
        "correct horse battery",
        "repository:default/images/app:pull",
    );
    let send = |method: &str, path: &str| {
        status(
            server
                .req(method, path)
                .bearer_auth(&pull_only)
                .send()
                .unwrap(),
        )
    };
    // Pull on the named repository: authorized (the image does not exist).
    assert_eq!(send("GET", "/v2/default/images/app/tags/list"), 404);
    // Push there, or anything elsewhere: not granted by this token.
    assert_eq!(send("POST", "/v2/default/images/app/blobs/uploads/"), 403);
    assert_eq!(send("POST", "/v2/default/other/app/blobs/uploads/"), 403);
    assert_eq!(send("GET", "/v2/default/other/app/tags/list"), 403);
    assert_eq!(send("GET", "/v2/_catalog"), 403);

    // The admin API refuses registry tokens, with its JSON error.
    for (method, path, body) in [
        ("POST", "/v1/tokens", Some(json!({}))),
        ("GET", "/v1/projects", None),
        ("GET", "/v1/projects/default/secrets", None),
    ] {
        let mut r = server.req(method, path).bearer_auth(&pull_only);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().unwrap();
        assert_eq!(resp.status(), 401, "{method} {path}");
        let body: Value = resp.json().unwrap();
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("registry tokens"),
            "{body}"
        );
    }
    let tokens = server.admin("GET", "/v1/tokens?principal=user:dev@example.com", None);
    assert_eq!(tokens["tokens"], json!([]), "no access token was minted");
}

// ---- High 4: attaching a secret needs the right to read it ----

/// An upstream that asks for Basic credentials and accepts any.
fn basic_auth_upstream() -> ScriptedUpstream {
    ScriptedUpstream::start("127.0.0.1", |seen| {
        let basic = seen
            .authorization
            .as_deref()
            .is_some_and(|a| a.to_ascii_lowercase().starts_with("basic"));
        if basic {
            Reply::ok("application/json", "{}")
        } else {
            Reply::status(401).header("www-authenticate", "Basic realm=\"up\"")
        }
    })
}

#[test]
fn pointing_a_repository_at_a_secret_requires_reading_it_and_is_audited() {
    let server = Srv::start(&[]);
    let basic_upstream = basic_auth_upstream();
    let upstream = &basic_upstream.addr;
    server.admin(
        "PATCH",
        "/v1/organization/accessPolicy",
        Some(json!({ "addAllowedHosts": [upstream] })),
    );
    server.secret("hub-token", "s3cret-upstream-token");
    let version = "projects/default/secrets/hub-token/versions/latest";
    server.user("repo-admin@example.com", None);
    let (mallory, _) = server.token_for("user:repo-admin@example.com");
    server.grant(
        "projects/default",
        "user:repo-admin@example.com",
        "roles/artifactregistry.admin",
    );
    let create = |id: &str, token: &str| {
        server
            .req(
                "POST",
                &format!("/v1/projects/default/repositories?repositoryId={id}"),
            )
            .bearer_auth(token)
            .json(&json!({
                "format": "docker",
                "mode": "remote-repository",
                "remoteRepositoryConfig": {
                    "upstream": format!("http://{upstream}"),
                    "username": "alice",
                    "passwordSecretVersion": version,
                },
            }))
            .send()
            .unwrap()
    };
    let resp = create("mine", &mallory);
    assert_eq!(resp.status(), 403);
    assert!(resp
        .text()
        .unwrap()
        .contains("secretmanager.versions.access"));

    // Nor by update of a repository she administers.
    server.admin(
        "POST",
        "/v1/projects/default/repositories?repositoryId=plain",
        Some(json!({
            "format": "docker",
            "mode": "remote-repository",
            "remoteRepositoryConfig": { "upstream": format!("http://{upstream}") },
        })),
    );
    let resp = server
        .req("PATCH", "/v1/projects/default/repositories/plain")
        .bearer_auth(&mallory)
        .json(&json!({ "remoteUsername": "alice", "remotePasswordSecretVersion": version }))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);

    // The refusals are in the audit log, with who and which repository.
    let entries = server.audit("projects/default/secrets/hub-token");
    let attach: Vec<_> = entries
        .iter()
        .filter(|e| e.to_string().contains("attachSecret"))
        .collect();
    assert_eq!(attach.len(), 2, "{entries:?}");
    assert!(attach
        .iter()
        .all(|e| e.to_string().contains("user:repo-admin@example.com")));
    assert!(attach.iter().any(|e| e
        .to_string()
        .contains("projects/default/repositories/plain")));

    // Someone who may read the secret attaches it; the agent's reads say for which repository.
    let created = create("hub", &server.admin);
    assert_eq!(created.status(), 200, "{:?}", created.text());
    let agent = server.admin("GET", "/v1/projects/default", None)["serviceAgent"]
        .as_str()
        .unwrap()
        .to_owned();
    server.grant(
        "projects/default/secrets/hub-token",
        &agent,
        "roles/secretmanager.secretAccessor",
    );
    let report = server.admin(
        "POST",
        "/v1/projects/default/repositories/hub:testUpstream",
        None,
    );
    assert_eq!(report["authenticated"], true, "{report}");
    let entries = server.audit("projects/default/secrets/hub-token");
    assert!(
        entries.iter().any(|e| {
            let t = e.to_string();
            t.contains("attachSecret") && t.contains("user:admin") && t.contains("repositories/hub")
        }),
        "{entries:?}"
    );
    assert!(
        entries.iter().any(|e| {
            let t = e.to_string();
            t.contains(&agent.replace("serviceAccount:", ""))
                && t.contains("for projects/default/repositories/hub")
        }),
        "{entries:?}"
    );
}

// ---- Medium 9: grants go with what they grant ----

#[test]
fn deleted_secrets_and_principals_leave_no_grants_to_inherit() {
    let server = Srv::start(&[]);
    server.secret("shared", "one");
    server.user("carol@example.com", None);
    server.grant(
        "projects/default/secrets/shared",
        "user:carol@example.com",
        "roles/secretmanager.secretAccessor",
    );
    server.admin("DELETE", "/v1/projects/default/secrets/shared", None);
    server.secret("shared", "two");
    assert_eq!(
        server.policy_members("projects/default/secrets/shared"),
        Vec::<String>::new(),
        "a new secret with the same id starts with an empty policy"
    );

    server.docker_repository("images");
    server.user("dave@example.com", None);
    server.grant(
        "projects/default",
        "user:dave@example.com",
        "roles/artifactregistry.reader",
    );
    server.grant(
        "projects/default/repositories/images",
        "user:dave@example.com",
        "roles/artifactregistry.writer",
    );
    server.admin(
        "POST",
        "/v1/projects/default/serviceAccounts",
        Some(json!({ "accountId": "old-robot" })),
    );
    let robot = "serviceAccount:old-robot@default.iam.entrepot";
    server.grant("projects/default", robot, "roles/artifactregistry.writer");

    server.admin("DELETE", "/v1/users/dave@example.com", None);
    server.admin(
        "DELETE",
        "/v1/projects/default/serviceAccounts/old-robot@default.iam.entrepot",
        None,
    );
    for resource in ["projects/default", "projects/default/repositories/images"] {
        let members = server.policy_members(resource);
        assert!(
            !members
                .iter()
                .any(|m| m.contains("dave@") || m.contains("old-robot@")),
            "{resource}: {members:?}"
        );
    }
    // Re-created, dave has nothing.
    server.user("dave@example.com", None);
    let (dave, _) = server.token_for("user:dave@example.com");
    let resp = server
        .req("GET", "/v2/default/images/app/tags/list")
        .bearer_auth(&dave)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
}

// ---- Low: bounded anonymous audit rows and a capped audit table ----

#[test]
fn anonymous_secret_reads_are_audited_at_a_bounded_rate() {
    let server = Srv::start(&[]);
    server.secret("guarded", "payload");
    for _ in 0..40 {
        let resp = server
            .req(
                "GET",
                "/v1/projects/default/secrets/guarded/versions/latest:access",
            )
            .send()
            .unwrap();
        assert_eq!(resp.status(), 401);
        let resp = server
            .req(
                "GET",
                "/v1/projects/default/secrets/guarded/versions/latest:access",
            )
            .header("authorization", "Basic !!!")
            .send()
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let rows = server.audit("projects/default/secrets/guarded");
    // One row per secret and minute (two if the minute turned meanwhile).
    assert!(
        (1..=2).contains(&rows.len()),
        "80 refused anonymous reads wrote {} rows",
        rows.len()
    );
}

#[test]
fn the_audit_table_keeps_at_most_audit_max_rows() {
    let server = Srv::start(&[("ENTREPOT_AUDIT_MAX_ROWS", "1000")]);
    server.secret("old", "x");
    server.secret("new", "y");
    let read = |secret: &str| {
        let resp = server
            .req(
                "GET",
                &format!("/v1/projects/default/secrets/{secret}/versions/latest:access"),
            )
            .bearer_auth(&server.admin)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
    };
    for _ in 0..20 {
        read("old");
    }
    for _ in 0..1000 {
        read("new");
    }
    assert_eq!(server.audit("projects/default/secrets/old").len(), 20);
    // Retention runs at start and every minute.
    let server = server.restart(&[("ENTREPOT_AUDIT_MAX_ROWS", "1000")]);
    assert_eq!(
        server.audit("projects/default/secrets/old").len(),
        0,
        "the oldest rows beyond audit_max_rows are gone"
    );
    assert_eq!(server.audit("projects/default/secrets/new").len(), 1000);
}

// ---- Low: a token's last use is written at most once a minute ----

#[test]
fn using_an_access_token_writes_its_last_use_at_most_once_a_minute() {
    let server = Srv::start(&[]);
    server.user("busy@example.com", None);
    let (token, id) = server.token_for("user:busy@example.com");
    let last_used = || {
        let t = server.admin("GET", "/v1/tokens?principal=user:busy@example.com", None);
        let t = t["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id.as_str())
            .unwrap()
            .clone();
        t["lastUsedTime"].clone()
    };
    assert_eq!(last_used(), Value::Null);
    let use_it = || {
        server
            .req("GET", "/v2/")
            .bearer_auth(&token)
            .send()
            .unwrap()
    };
    assert_eq!(status(use_it()), 200);
    // The last use is written off the request's path: wait for it to land.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut first = last_used();
    while !first.is_string() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        first = last_used();
    }
    assert!(first.is_string(), "the first use is recorded");
    for _ in 0..5 {
        assert_eq!(status(use_it()), 200);
    }
    assert_eq!(
        last_used(),
        first,
        "later uses within a minute write nothing"
    );
}

// ---- Low: forwarded headers and hostile Host values ----

#[test]
fn forwarded_headers_count_only_from_trusted_proxies_and_hosts_are_not_echoed() {
    let server = Srv::start(&[]);
    let challenge = |extra: &str| {
        let head = raw(
            &server.addr,
            &format!("GET /v2/ HTTP/1.1\r\n{extra}Connection: close\r\n\r\n"),
        );
        header_of(&head, "www-authenticate").unwrap_or_default()
    };
    let hostile = challenge("Host: evil\",error=\"x\r\n");
    assert!(!hostile.contains("evil"), "{hostile}");
    assert!(
        hostile.starts_with("Bearer realm=\"http://127.0.0.1"),
        "{hostile}"
    );
    let forwarded = challenge(&format!(
        "Host: {}\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: phish.example\r\n",
        server.addr
    ));
    assert_eq!(
        forwarded,
        format!(
            "Bearer realm=\"http://{}/v2/token\",service=\"entrepot\"",
            server.addr
        ),
        "an untrusted client does not choose the realm"
    );
    drop(server);

    let server = Srv::start(&[("ENTREPOT_TRUSTED_PROXIES", "127.0.0.1/32")]);
    let head = raw(
        &server.addr,
        &format!(
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: registry.example\r\nConnection: close\r\n\r\n",
            server.addr
        ),
    );
    assert_eq!(
        header_of(&head, "www-authenticate").unwrap(),
        "Bearer realm=\"https://registry.example/v2/token\",service=\"entrepot\"",
        "behind a trusted proxy the forwarded host and scheme count"
    );
}

// ---- Low: every /v1 error is JSON ----

#[test]
fn every_admin_api_error_has_the_json_error_shape() {
    let server = Srv::start(&[]);
    let cases: Vec<(&str, &str, Option<&str>, u16)> = vec![
        ("POST", "/v1/users", Some(""), 400),
        ("POST", "/v1/tokens", Some("{not json"), 400),
        (
            "POST",
            "/v1/projects/default/repositories?repositoryId=x",
            Some(""),
            400,
        ),
        ("GET", "/v1/no/such/thing", None, 404),
        ("DELETE", "/v1/projects", None, 405),
    ];
    for (method, path, body, expected) in cases {
        let mut r = server.req(method, path).bearer_auth(&server.admin);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = r.send().unwrap();
        assert_eq!(resp.status().as_u16(), expected, "{method} {path}");
        let text = resp.text().unwrap();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!(value["error"]["code"], expected, "{text}");
        assert!(value["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert!(value["error"]["status"].is_string(), "{text}");
    }
}

// ---- Low: the bootstrap token file goes once it has served ----

#[test]
fn the_bootstrap_token_file_is_deleted_once_the_token_is_used() {
    let server = Srv::start(&[]);
    let file = server.data().join("bootstrap-admin-token");
    assert!(file.exists());
    let resp = server
        .req("GET", "/v1/projects")
        .bearer_auth(&server.admin)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut gone = false;
    for _ in 0..100 {
        if !file.exists() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone, "the token file is deleted after the first use");
    // The token itself keeps working until revoked.
    server.admin("GET", "/v1/projects", None);
    // And a restart does not bring it back.
    let server = server.restart(&[]);
    assert!(!server.data().join("bootstrap-admin-token").exists());
}
