//! The one harness of the integration tests, a module a job:
//!
//! - [`app`]: the application in-process (`TestApp::new().await`), requests
//!   sent to its router without a socket, for tests of the API's shape;
//! - [`server`]: the real `entrepot serve` on a free loopback port
//!   (`Entrepot::builder().env(..).start()`), restarts, logs, stdout, the
//!   bootstrap admin token;
//! - [`admin_api`]: `/v1` and raw requests as the admin (projects,
//!   repositories, users, tokens, IAM, secrets, audit, metrics);
//! - [`cli`]: the `entrepot` CLI against the server, `entrepot admin`;
//! - [`dockerd`]: a Docker daemon of the test's own, optionally mirroring;
//! - [`registry`]: the OCI API by plain HTTP (digests, small images, errors);
//! - [`layout`]: OCI image layouts on disk;
//! - [`skopeo`]: skopeo against the server and upstreams;
//! - [`tls_ca`]: a test CA, its certificates, an HTTPS server trusting it;
//! - [`podman`]: podman with a private image store;
//! - [`postgres`]: a database of its own on the PostgreSQL test server,
//!   for `Entrepot::builder().postgres(..)`;
//! - [`python`]: pip, uv, twine, pypiserver and Python repositories;
//! - [`raw_http`]: HTTP/1.1 byte for byte over TCP;
//! - [`release_age`]: a Python index with upload times, the test clock;
//! - [`cluster`]: several nodes on one database and bucket behind nginx,
//!   and nginx as a throttling proxy;
//! - [`garage`]: Garage, the S3 server, with a single-node layout and a bucket;
//! - [`upstream`]: upstreams on loopback (docker-registry, a token service,
//!   scripted servers);
//! - [`wait`] and [`files`]: bounded waits, files of a test.
//!
//! Every helper that talks to the server sends the bootstrap admin's token
//! unless it says otherwise. Each test file includes this tree with
//! `mod support;` and uses what it needs.

#![allow(dead_code, missing_docs, unused_imports, clippy::unwrap_used)]

pub mod admin_api;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod containerd;
pub mod dockerd;
pub mod files;
pub mod garage;
pub mod layout;
pub mod podman;
pub mod postgres;
pub mod python;
pub mod raw_http;
pub mod registry;
pub mod release_age;
pub mod server;
pub mod sick_upstream;
pub mod skopeo;
pub mod tls_ca;
pub mod upstream;
pub mod wait;

pub use admin_api::*;
pub use app::*;
pub use cli::*;
pub use cluster::*;
pub use dockerd::*;
pub use files::*;
pub use garage::*;
pub use layout::*;
pub use podman::*;
pub use postgres::*;
pub use python::*;
pub use raw_http::*;
pub use registry::*;
pub use release_age::*;
pub use server::*;
pub use skopeo::*;
pub use tls_ca::*;
pub use upstream::*;
pub use wait::*;

/// The name the test files used for [`Entrepot`] before there was one
/// harness; kept so tests written against it keep compiling.
pub type Server = Entrepot;
