//! PEP 691 content negotiation on `Accept`.

use entrepot_services::python::PageFormat;

const CANDIDATES: [(PageFormat, &[&str]); 3] = [
    (
        PageFormat::Json,
        &[
            "application/vnd.pypi.simple.v1+json",
            "application/vnd.pypi.simple.latest+json",
        ],
    ),
    (
        PageFormat::HtmlV1,
        &[
            "application/vnd.pypi.simple.v1+html",
            "application/vnd.pypi.simple.latest+html",
        ],
    ),
    (PageFormat::TextHtml, &["text/html"]),
];

/// The form to answer in, or `None` when nothing the client accepts is
/// available (406). The highest quality wins; at equal quality a type named
/// exactly beats a wildcard. Among types named exactly, JSON comes first (it is
/// what current installers prefer); a bare wildcard (`*/*`, or no `Accept`)
/// gets `text/html`, which every PEP 503 client and browser reads.
pub fn negotiate(accept: Option<&str>) -> Option<PageFormat> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(PageFormat::TextHtml);
    };
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            if media.is_empty() {
                return None;
            }
            let mut q = 1.0f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = v.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            Some((media, q.clamp(0.0, 1.0)))
        })
        .collect();
    let mut best: Option<(PageFormat, (f32, u8, usize))> = None;
    for (position, (format, names)) in CANDIDATES.into_iter().enumerate() {
        // The most specific matching range decides the quality.
        let mut quality: Option<(u8, f32)> = None;
        for (media, q) in &ranges {
            let specificity = if names.contains(&media.as_str()) {
                3
            } else if media
                .strip_suffix("/*")
                .is_some_and(|t| names.iter().any(|n| n.split('/').next() == Some(t)))
            {
                2
            } else if media == "*/*" {
                1
            } else {
                continue;
            };
            if quality.is_none_or(|(s, _)| specificity > s) {
                quality = Some((specificity, *q));
            }
        }
        if let Some((specificity, q)) = quality.filter(|(_, q)| *q > 0.0) {
            let preference = if specificity == 3 {
                CANDIDATES.len() - position
            } else {
                position
            };
            let score = (q, specificity, preference);
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((format, score));
            }
        }
    }
    best.map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates() {
        assert_eq!(negotiate(None), Some(PageFormat::TextHtml));
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01")),
            Some(PageFormat::Json)
        );
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+json;q=0.2, text/html")),
            Some(PageFormat::TextHtml)
        );
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+html")),
            Some(PageFormat::HtmlV1)
        );
        assert_eq!(negotiate(Some("*/*")), Some(PageFormat::TextHtml));
        assert_eq!(
            negotiate(Some("*/*, application/vnd.pypi.simple.v1+json")),
            Some(PageFormat::Json)
        );
        assert_eq!(negotiate(Some("text/*")), Some(PageFormat::TextHtml));
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.latest+json")),
            Some(PageFormat::Json)
        );
        assert_eq!(negotiate(Some("application/xml")), None);
        assert_eq!(negotiate(Some("text/html;q=0")), None);
        assert_eq!(
            negotiate(Some("*/*, application/vnd.pypi.simple.v1+json;q=0")),
            Some(PageFormat::TextHtml)
        );
    }
}
