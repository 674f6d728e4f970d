//! The admin API client the CLI verbs use.

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Why a CLI call failed; printed to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot reach the entrepot server at {server}: {source}\n  start it with `entrepot serve`, or point --server / ENTREPOT_SERVER at it")]
    Unreachable {
        /// The server URL.
        server: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("{status}: {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The server's message.
        message: String,
    },
    /// The answer was not JSON.
    #[error("the server sent an unreadable answer: {0}")]
    Decode(String),
}

/// A client of the admin API.
pub struct AdminClient {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl AdminClient {
    /// A client for `server` (e.g. `http://127.0.0.1:8080`) with an optional token.
    pub fn new(server: &str, token: Option<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            server: server.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// Send a request to `/v1/{path}` and decode the JSON answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}/v1/{}", self.server, path.trim_start_matches('/'));
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                server: self.server.clone(),
                source,
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|_| ClientError::Decode(text.chars().take(200).collect()))?
        };
        if status.is_success() {
            Ok(value)
        } else {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| text.chars().take(200).collect());
            Err(ClientError::Api { status, message })
        }
    }
}
