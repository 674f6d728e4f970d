//! The upstream client: the one place where entrepot opens outgoing connections.
//!
//! Every hop of every request, redirects and token realms included, passes a
//! [`HopCheck`] before any DNS lookup. The client speaks the auth schemes
//! registries use (anonymous, Basic, and the Docker token flow), caches bearer
//! tokens per (token service, scope, credential version), follows redirects one
//! hop at a time without ever forwarding credentials to another host, and retries
//! idempotent requests that failed before any byte reached the caller.

pub mod budget;
pub mod challenge;
pub mod client;
pub mod credentials;
pub mod hop;
pub mod redact;
pub mod response;
pub mod transport;

pub use budget::Budget;
pub use client::{UpstreamClient, UpstreamError, UpstreamRequest};
pub use credentials::{CredentialError, CredentialSource, NoCredentials, UpstreamCredentials};
pub use hop::{AllowAllHops, HopCheck, HopDenied};
/// The HTTP vocabulary (methods, status codes, headers) of requests and
/// answers.
pub use http;
pub use response::{BodyError, ReadError, UpstreamBody, UpstreamResponse};
pub use transport::UpstreamTransport;
