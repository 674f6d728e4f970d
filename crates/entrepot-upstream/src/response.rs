//! What an upstream answered, in entrepot's own terms: a status, the headers,
//! the URL that answered (after redirects), and the body as a byte stream.
//! Nothing of the HTTP client library shows through, so the services can be
//! driven by any [`UpstreamTransport`](crate::UpstreamTransport).

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use http::header::{HeaderMap, CONTENT_LENGTH};
use http::StatusCode;
use url::Url;

/// Why reading an upstream's body failed: a timeout or a broken transfer.
/// The reason never quotes a URL (its query is not for messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BodyError {
    reason: String,
}

impl BodyError {
    /// A failure described by `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// An upstream's body, chunk by chunk as it arrives.
pub type UpstreamBody = BoxStream<'static, Result<Bytes, BodyError>>;

/// Why a body could not be read whole into memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The body is longer than the reader accepts.
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// The transfer failed.
    #[error(transparent)]
    Body(#[from] BodyError),
}

/// The final answer to a request, after auth and redirects.
pub struct UpstreamResponse {
    status: StatusCode,
    headers: HeaderMap,
    url: Url,
    body: UpstreamBody,
}

impl std::fmt::Debug for UpstreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers may carry what the upstream chose to echo: not shown.
        f.debug_struct("UpstreamResponse")
            .field("status", &self.status)
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

impl UpstreamResponse {
    /// An answer from `url` with `status`, `headers` and `body`.
    pub fn new(status: StatusCode, headers: HeaderMap, url: Url, body: UpstreamBody) -> Self {
        Self {
            status,
            headers,
            url,
            body,
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The URL that answered: the request's, or the last redirect's.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The `Content-Length` the upstream announced, if it sent a valid one.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }

    /// The body, as it arrives.
    pub fn into_body(self) -> UpstreamBody {
        self.body
    }

    /// The whole body, refused past `limit` bytes (announced or received).
    pub async fn bytes(self, limit: usize) -> Result<Vec<u8>, ReadError> {
        let too_large = ReadError::TooLarge { limit };
        if self.content_length().is_some_and(|l| l > limit as u64) {
            return Err(too_large);
        }
        let mut body = self.body;
        let mut content = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if content.len() + chunk.len() > limit {
                return Err(too_large);
            }
            content.extend_from_slice(&chunk);
        }
        Ok(content)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http::HeaderValue;

    fn response(length: Option<&str>, chunks: Vec<Result<Bytes, BodyError>>) -> UpstreamResponse {
        let mut headers = HeaderMap::new();
        if let Some(l) = length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from_str(l).unwrap());
        }
        UpstreamResponse::new(
            StatusCode::OK,
            headers,
            Url::parse("https://registry.example/v2/").unwrap(),
            futures::stream::iter(chunks).boxed(),
        )
    }

    #[tokio::test]
    async fn a_body_is_read_whole_within_its_limit_only() {
        let ok = response(Some("6"), vec![Ok("abc".into()), Ok("def".into())]);
        assert_eq!(ok.content_length(), Some(6));
        assert_eq!(ok.bytes(6).await.unwrap(), b"abcdef");

        // Announced too large: refused before reading.
        let announced = response(Some("7"), vec![Ok("abc".into())]);
        assert_eq!(
            announced.bytes(6).await,
            Err(ReadError::TooLarge { limit: 6 })
        );
        // Not announced, but sent too large.
        let sent = response(None, vec![Ok("abcd".into()), Ok("efg".into())]);
        assert_eq!(sent.content_length(), None);
        assert_eq!(sent.bytes(6).await, Err(ReadError::TooLarge { limit: 6 }));

        let broken = response(None, vec![Ok("ab".into()), Err(BodyError::new("cut"))]);
        assert_eq!(
            broken.bytes(6).await,
            Err(ReadError::Body(BodyError::new("cut")))
        );
        assert_eq!(response(Some("x"), vec![]).content_length(), None);
    }
}
