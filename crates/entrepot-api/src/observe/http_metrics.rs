//! HTTP request metrics: requests by route class, method and status,
//! their latency, the requests in flight, and authentication failures.

use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::Method;
use entrepot_services::prometheus::{family, CounterFamily, HistogramFamily, LATENCY_BUCKETS};

/// The metrics of the HTTP front-ends.
pub struct HttpMetrics {
    requests: CounterFamily,
    duration: HistogramFamily,
    response_bytes: CounterFamily,
    in_flight: AtomicI64,
    auth_failures: CounterFamily,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: CounterFamily::default(),
            duration: HistogramFamily::new(LATENCY_BUCKETS),
            response_bytes: CounterFamily::default(),
            in_flight: AtomicI64::new(0),
            auth_failures: CounterFamily::default(),
        }
    }
}

/// The class of route a path belongs to: a small fixed set, so that the
/// label's cardinality does not grow with repositories or images.
pub fn route_class(path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix("/v2") else {
        return match path {
            "/healthz" | "/readyz" | "/metrics" => "ops",
            p if p == "/v1" || p.starts_with("/v1/") => "admin",
            p if p.starts_with("/pypi/") => "pypi",
            p if p == "/ui" || p.starts_with("/ui/") => "console",
            _ => "other",
        };
    };
    if rest.is_empty() || rest == "/" {
        return "oci_base";
    }
    if rest == "/token" {
        return "oci_token";
    }
    if rest == "/_catalog" {
        return "oci_catalog";
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    let at = |i: usize| n.checked_sub(i).map_or("", |j| segments[j]);
    if at(2) == "tags" && at(1) == "list" {
        "oci_tags"
    } else if at(2) == "uploads" && at(3) == "blobs" || at(1) == "uploads" && at(2) == "blobs" {
        "oci_upload"
    } else if at(2) == "blobs" {
        "oci_blob"
    } else if at(2) == "manifests" {
        "oci_manifest"
    } else if at(2) == "referrers" {
        "oci_referrers"
    } else {
        "oci_other"
    }
}

/// The `method` label: the standard methods, `OTHER` for the rest.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl HttpMetrics {
    /// A request started.
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request ended: its response (headers and body) was sent or
    /// abandoned after `seconds`.
    pub fn finished(&self, route: &str, method: &str, status: u16, seconds: f64, bytes: u64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let status = status.to_string();
        self.requests.add(&[route, method, &status], 1);
        self.duration.observe(&[route, method], seconds);
        self.response_bytes.add(&[route], bytes);
    }

    /// A request refused for its credentials, of this kind.
    pub fn auth_failure(&self, kind: &str) {
        self.auth_failures.add(&[kind], 1);
    }

    /// The exposition of these metrics.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.requests.render(
            &mut out,
            "entrepot_http_requests_total",
            "HTTP requests answered, by route class, method and status code.",
            &["route", "method", "status"],
        );
        self.duration.render(
            &mut out,
            "entrepot_http_request_duration_seconds",
            "Time from a request's arrival to the last byte of its response, by route class and method.",
            &["route", "method"],
        );
        self.response_bytes.render(
            &mut out,
            "entrepot_http_response_bytes_total",
            "Response body bytes sent, by route class.",
            &["route"],
        );
        family(
            &mut out,
            "entrepot_http_requests_in_flight",
            "gauge",
            "HTTP requests being answered now.",
        );
        out.push_str(&format!(
            "entrepot_http_requests_in_flight {}\n",
            self.in_flight.load(Ordering::Relaxed).max(0)
        ));
        self.auth_failures.render(
            &mut out,
            "entrepot_auth_failures_total",
            "Requests refused for their credentials, by kind: invalid_credentials (bad or expired credentials), throttled (too many failures or checks), credentials_required (anonymous where credentials are needed), denied (a principal lacking the permission).",
            &["kind"],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_into_few_classes() {
        for (path, class) in [
            ("/v2/", "oci_base"),
            ("/v2", "oci_base"),
            ("/v2/token", "oci_token"),
            ("/v2/_catalog", "oci_catalog"),
            ("/v2/p/r/app/manifests/1", "oci_manifest"),
            ("/v2/library/app/blobs/sha256:00", "oci_blob"),
            ("/v2/p/r/app/blobs/uploads/", "oci_upload"),
            ("/v2/p/r/app/blobs/uploads/abc", "oci_upload"),
            ("/v2/p/r/app/tags/list", "oci_tags"),
            ("/v2/p/r/app/referrers/sha256:00", "oci_referrers"),
            ("/v2/nonsense", "oci_other"),
            ("/v1/projects/p", "admin"),
            ("/pypi/p/r/simple/", "pypi"),
            ("/readyz", "ops"),
            ("/ui/", "console"),
            ("/favicon.ico", "other"),
        ] {
            assert_eq!(route_class(path), class, "{path}");
        }
    }
}
