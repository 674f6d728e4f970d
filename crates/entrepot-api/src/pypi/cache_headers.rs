//! The headers that say how a remote repository's cache answered: `X-Cache`
//! on every remote answer (the values of remote OCI answers), and `Age` and
//! `Warning: 110` on a stale one.

use axum::http::header::{HeaderName, AGE, WARNING};
use axum::http::{HeaderMap, HeaderValue};
use entrepot_services::python::CacheReport;
use entrepot_services::remote::CacheStatus;

/// `X-Cache`: `HIT`, `MISS`, `STALE` or `REVALIDATED`.
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// The warning of a page served from the cache because the upstream failed.
const STALE_WARNING: &str = "110 entrepot \"Response is Stale: the upstream could not be reached\"";

/// Say how the cache answered an index page or the project list; `stale`
/// also for a page merged from a stale member (no report of its own).
pub fn page(h: &mut HeaderMap, report: Option<CacheReport>, stale: bool) {
    if let Some(report) = report {
        h.insert(X_CACHE, HeaderValue::from_static(report.status.as_str()));
        if let Some(age) = report.age_secs {
            h.insert(AGE, HeaderValue::from(age));
        }
    }
    if stale || report.is_some_and(|r| r.status == CacheStatus::Stale) {
        h.insert(WARNING, HeaderValue::from_static(STALE_WARNING));
    }
}

/// Say how the cache answered a file (nothing for a hosted one).
pub fn file(h: &mut HeaderMap, status: Option<CacheStatus>) {
    if let Some(status) = status {
        h.insert(X_CACHE, HeaderValue::from_static(status.as_str()));
    }
}
