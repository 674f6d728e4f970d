//! The admin API (`/v1`) and raw requests, as the bootstrap admin unless a
//! helper says otherwise: projects, repositories, users, tokens, IAM policies,
//! secrets, the audit log and `/metrics`.

use base64::Engine as _;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::Method;
use serde_json::{json, Value};

use super::server::Entrepot;

impl Entrepot {
    /// A request to `path` (which starts with `/`) as the admin.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.bare_request(method, path)
            .bearer_auth(&self.admin_token)
    }

    /// A request to `path` without credentials.
    pub fn bare_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// GET `path` as the admin.
    pub fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().unwrap()
    }

    /// GET a path of the admin API that must succeed; its JSON answer.
    pub fn get_json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().unwrap()
    }

    /// An admin API call with `token` (none: anonymous); status and JSON body
    /// (`Null` if empty or not JSON).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.bare_request(method.parse().unwrap(), path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An admin API call as the admin that must succeed; its JSON body.
    pub fn admin_api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.api(method, path, Some(&self.admin_token), body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {value}"
        );
        value
    }

    /// A `/v2` request with optional Basic credentials.
    pub fn v2(&self, method: &str, path: &str, basic: Option<(&str, &str)>) -> Response {
        let mut request = self.bare_request(method.parse().unwrap(), path);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        request.send().unwrap()
    }

    /// Create a project; asserts success.
    pub fn create_project(&self, id: &str) {
        let response = self
            .request(Method::POST, &format!("/v1/projects?projectId={id}"))
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "create project {id}: {}",
            response.text().unwrap()
        );
    }

    /// Create a Docker repository in project `default`.
    pub fn create_repository(&self, id: &str) {
        self.create_repository_in("default", id);
    }

    /// Create a Docker repository in a project.
    pub fn create_repository_in(&self, project: &str, id: &str) {
        self.create_repository_from(project, id, json!({ "format": "docker" }));
    }

    /// Create a repository from a JSON body; asserts success.
    pub fn create_repository_from(&self, project: &str, id: &str, body: Value) {
        let response = self
            .request(
                Method::POST,
                &format!("/v1/projects/{project}/repositories?repositoryId={id}"),
            )
            .json(&body)
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "create repository {project}/{id}: {}",
            response.text().unwrap()
        );
    }

    /// Allow `upstream`'s host and create a remote Docker repository whose
    /// upstream is `upstream` (`http://HOST:PORT`); `extra` is merged into its
    /// `remoteRepositoryConfig`.
    pub fn create_remote_docker_in(&self, project: &str, id: &str, upstream: &str, extra: Value) {
        // Loopback upstreams are outside the default registry access policy.
        self.allow_upstream(upstream.trim_start_matches("http://"));
        let mut config = json!({ "upstream": upstream });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        self.create_repository_from(
            project,
            id,
            json!({ "format": "docker", "mode": "remote-repository", "remoteRepositoryConfig": config }),
        );
    }

    /// [`Self::create_remote_docker_in`] project `default`.
    pub fn create_remote_docker(&self, id: &str, upstream: &str, extra: Value) {
        self.create_remote_docker_in("default", id, upstream, extra);
    }

    /// Add `host` (e.g. `127.0.0.1:5000`) to the registry access policy, so that
    /// remote repositories may use it as their upstream.
    pub fn allow_upstream(&self, host: &str) {
        let response = self
            .request(Method::PATCH, "/v1/organization/accessPolicy")
            .json(&json!({ "addAllowedHosts": [host] }))
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "allow upstream {host}: {}",
            response.text().unwrap()
        );
    }

    /// The service agent of project `default` (`serviceAccount:...`).
    pub fn service_agent(&self) -> String {
        let project: Value = self.get("/v1/projects/default").json().unwrap();
        project["serviceAgent"].as_str().unwrap().to_owned()
    }

    /// Create a user, with a password or none.
    pub fn create_user(&self, email: &str, password: Option<&str>) {
        let mut body = json!({ "email": email });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        self.admin_api("POST", "/v1/users", Some(body));
    }

    /// An access token for `member` (`user:...`, `serviceAccount:...`): the
    /// token and its id.
    pub fn token_for(&self, member: &str) -> (String, String) {
        let t = self.admin_api("POST", "/v1/tokens", Some(json!({ "principal": member })));
        (
            t["token"].as_str().unwrap().to_owned(),
            t["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Create a user and a token for them; the token.
    pub fn user_with_token(&self, email: &str, read_only: bool) -> String {
        self.create_user(email, None);
        let token = self.admin_api(
            "POST",
            "/v1/tokens",
            Some(json!({ "principal": format!("user:{email}"), "readOnly": read_only })),
        );
        token["token"].as_str().unwrap().to_owned()
    }

    /// Grant `role` to `member` on a resource (`projects/p[/repositories/r]`).
    pub fn grant(&self, resource: &str, member: &str, role: &str) {
        let mut policy = self.admin_api("GET", &format!("/v1/{resource}:getIamPolicy"), None);
        if policy["bindings"].is_null() {
            policy["bindings"] = json!([]);
        }
        policy["bindings"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "role": role, "members": [member] }));
        self.admin_api(
            "POST",
            &format!("/v1/{resource}:setIamPolicy"),
            Some(json!({ "policy": policy })),
        );
    }

    /// Every member of every binding of a resource's IAM policy.
    pub fn policy_members(&self, resource: &str) -> Vec<String> {
        let policy = self.admin_api("GET", &format!("/v1/{resource}:getIamPolicy"), None);
        policy["bindings"]
            .as_array()
            .map(|b| {
                b.iter()
                    .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default())
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Create a secret in project `default` holding `payload`.
    pub fn create_secret(&self, id: &str, payload: &str) {
        self.admin_api(
            "POST",
            &format!("/v1/projects/default/secrets?secretId={id}"),
            Some(json!({ "payload": {
                "data": base64::engine::general_purpose::STANDARD.encode(payload)
            } })),
        );
    }

    /// A registry token from `/v2/token` for `scope`, with Basic credentials.
    pub fn registry_token(&self, user: &str, password: &str, scope: &str) -> String {
        let resp = self
            .bare_request(
                Method::GET,
                &format!("/v2/token?service=entrepot&scope={scope}"),
            )
            .basic_auth(user, Some(password))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "token for {user}: {:?}", resp.text());
        resp.json::<Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The audit log entries of project `default` about `resource`.
    pub fn audit(&self, resource: &str) -> Vec<Value> {
        let log = self.admin_api(
            "GET",
            &format!("/v1/projects/default/auditLog?resource={resource}&pageSize=1000"),
            None,
        );
        log["auditLogEntries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The value of the `/metrics` line that starts with `sample` (a name,
    /// labels included if any) and a space.
    pub fn metric(&self, sample: &str) -> u64 {
        let text = self
            .bare_request(Method::GET, "/metrics")
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(sample)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
    }
}

/// Assert an admin API error body `{"error":{"code","message","status"}}`
/// with HTTP status `code` and status name `status`; returns the message.
pub fn assert_api_error(response: Response, code: u16, status: &str) -> String {
    let got = response.status().as_u16();
    let body: Value = response.json().unwrap();
    assert_eq!(got, code, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!message.is_empty(), "{body}");
    message
}
