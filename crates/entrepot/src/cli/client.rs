//! The admin API client the CLI verbs use.

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// How list verbs read their listing. Whatever the size, every page is read:
/// the output is the whole listing.
#[derive(Debug, Clone, Default, Args)]
pub struct PageArgs {
    /// Items to ask the server for per request (the server's default: 100;
    /// at most 1000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: Option<u32>,
}

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
    /// The command line names something that cannot be right.
    #[error("{0}")]
    Usage(String),
    /// A destructive command was not confirmed.
    #[error("{0}")]
    NotConfirmed(String),
    /// The answer was not JSON.
    #[error("the server sent an unreadable answer: {0}")]
    Decode(String),
}

/// The HTTP client, with the extra CAs of `ENTREPOT_CA_CERT` when set; a
/// file that cannot be read is reported and the public roots still apply.
fn http_client() -> reqwest::Client {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = std::env::var_os("ENTREPOT_CA_CERT").filter(|p| !p.is_empty()) {
        let certs = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()));
        match certs {
            Ok(certs) => {
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
            Err(e) => eprintln!(
                "WARNING: ENTREPOT_CA_CERT {}: {e}; trusting the public roots only",
                std::path::Path::new(&path).display()
            ),
        }
    }
    builder.build().unwrap_or_default()
}

/// A client of the admin API.
pub struct AdminClient {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl AdminClient {
    /// A client for `server` (e.g. `http://127.0.0.1:8080`) with an optional token.
    /// Besides the public web PKI, it trusts the CA certificates in the PEM
    /// file `ENTREPOT_CA_CERT` names (a server with a private CA).
    pub fn new(server: &str, token: Option<String>) -> Self {
        Self {
            http: http_client(),
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

    /// The items of the paged listing at `/v1/{path}` (which may carry a
    /// query), from the array `field` of each page: follows `nextPageToken`
    /// to the last page, or until `limit` items are in hand.
    pub async fn list(
        &self,
        path: &str,
        field: &str,
        page: &PageArgs,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, ClientError> {
        Ok(self.list_with_answer(path, field, page, limit).await?.0)
    }

    /// As [`Self::list`], with the rest of the first page's answer (its
    /// fields other than the items, such as a listing's totals).
    pub async fn list_with_answer(
        &self,
        path: &str,
        field: &str,
        page: &PageArgs,
        limit: Option<usize>,
    ) -> Result<(Vec<Value>, Value), ClientError> {
        let mut first: Option<Value> = None;
        let separator = if path.contains('?') { '&' } else { '?' };
        let size = match (page.page_size, limit) {
            (Some(size), _) => Some(size),
            // No more per page than wanted in all.
            (None, Some(limit)) => Some(u32::try_from(limit).unwrap_or(u32::MAX).clamp(1, 1000)),
            (None, None) => None,
        };
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = path.to_owned();
            let mut query = Vec::new();
            if let Some(size) = size {
                query.push(format!("pageSize={size}"));
            }
            if let Some(token) = &token {
                query.push(format!("pageToken={token}"));
            }
            if !query.is_empty() {
                url.push(separator);
                url.push_str(&query.join("&"));
            }
            let mut answer = self.call(Method::GET, &url, None).await?;
            if let Value::Array(page) = answer[field].take() {
                items.extend(page);
            }
            let rest = first.get_or_insert_with(|| answer.clone());
            if limit.is_some_and(|limit| items.len() >= limit) {
                items.truncate(limit.unwrap_or(usize::MAX));
                return Ok((items, rest.clone()));
            }
            let next = match answer["nextPageToken"].as_str() {
                None | Some("") => return Ok((items, rest.clone())),
                Some(next) => next,
            };
            // Tokens are URL-safe base64; anything else would be a server bug,
            // and must not change the query.
            if !next
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                || token.as_deref() == Some(next)
            {
                return Err(ClientError::Decode(format!(
                    "the server sent an unusable nextPageToken for {path}"
                )));
            }
            token = Some(next.to_owned());
        }
    }
}
