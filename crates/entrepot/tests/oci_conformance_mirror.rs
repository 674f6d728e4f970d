//! The cases of the OCI distribution-spec conformance suite, mirrored one
//! Rust test per case so that CI checks them without downloading the suite:
//! `conformance/0[1-4]_*_test.go` of v1.1.1 (the ginkgo suite: pull, push,
//! content discovery, content management) and the redesigned suite of
//! `main` (`conformance/run.go`: blob APIs, range requests, data sets,
//! manifest errors). Each case names and cites the case it mirrors, runs on
//! an image of its own, against a hosted repository and, for reads, through
//! a remote repository in front of a real upstream (`fixture.rs`). All the
//! cases of this binary share one set of servers.
//!
//! `tests/oci_conformance.rs` checks edges the suite touches in more depth
//! (malformed references, sha512, `?tag=`, foreign layers); docs/oci-conformance.md
//! says what entrepot answers where the spec leaves room.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

#[path = "oci_conformance_mirror/fixture.rs"]
mod fixture;
#[path = "oci_conformance_mirror/redesign_blobs.rs"]
mod redesign_blobs;
#[path = "oci_conformance_mirror/redesign_data.rs"]
mod redesign_data;
#[path = "oci_conformance_mirror/redesign_data_sets.rs"]
mod redesign_data_sets;
#[path = "oci_conformance_mirror/redesign_misc.rs"]
mod redesign_misc;
#[path = "oci_conformance_mirror/v1_data.rs"]
mod v1_data;
#[path = "oci_conformance_mirror/v1_discovery.rs"]
mod v1_discovery;
#[path = "oci_conformance_mirror/v1_management.rs"]
mod v1_management;
#[path = "oci_conformance_mirror/v1_pull.rs"]
mod v1_pull;
#[path = "oci_conformance_mirror/v1_push.rs"]
mod v1_push;
