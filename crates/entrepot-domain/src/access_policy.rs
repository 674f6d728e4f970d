//! The organisation's registry access policy: the allowlist of upstream hosts
//! entrepot may contact.
//!
//! An entry is a host (`ghcr.io`), a host and port (`127.0.0.1:5000`) or a
//! sub-domain pattern (`*.azurecr.io`). Entries are validated and normalised
//! the way URL hosts are (lower case, IDNA to ASCII, canonical IP addresses), so
//! that an entry and the host of a URL compare as plain strings. Everything here
//! is pure; the service layer loads the policy and applies it to every hop.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most entries a policy may hold.
pub const MAX_ENTRIES: usize = 100;

/// Hosts allowed when no policy was ever set: Docker Hub's registry API, token
/// service and blob CDNs, and PyPI's index and file hosts.
pub const DEFAULT_ENTRIES: &[&str] = &[
    "registry-1.docker.io",
    "auth.docker.io",
    "index.docker.io",
    "production.cloudflare.docker.com",
    "docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com",
    "pypi.org",
    "files.pythonhosted.org",
];

/// Why an entry or a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessPolicyError {
    /// One or more entries are malformed; each says why.
    #[error("{}", describe_invalid(.0))]
    InvalidEntries(Vec<EntryError>),
    /// More than [`MAX_ENTRIES`] entries.
    #[error("the registry access policy may hold at most {MAX_ENTRIES} entries; this change would make it hold {0}")]
    TooManyEntries(usize),
    /// Entries to remove that the policy does not hold.
    #[error("not in the registry access policy: {}", .0.join(", "))]
    NotInPolicy(Vec<String>),
    /// An enforcement mode that does not exist.
    #[error("enforcement {0:?} is not known; use enforce or dry-run")]
    UnknownEnforcement(String),
}

fn describe_invalid(errors: &[EntryError]) -> String {
    let details: Vec<String> = errors.iter().map(ToString::to_string).collect();
    match errors.len() {
        1 => details.join(""),
        n => format!("{n} entries are invalid: {}", details.join("; ")),
    }
}

/// Why one entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not a valid allowed host: {reason}")]
pub struct EntryError {
    /// The entry as given.
    pub entry: String,
    /// What is wrong with it, and what to write instead.
    pub reason: String,
}

/// What an entry matches, before the port.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Pattern {
    /// Exactly this host (a normalised domain or an IP address; IPv6 in brackets).
    Host(String),
    /// Any sub-domain of this domain (not the domain itself).
    SubdomainsOf(String),
}

/// One allowlist entry: a host, a host and port, or `*.domain`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AllowedHost {
    pattern: Pattern,
    /// `None`: any port.
    port: Option<u16>,
}

impl AllowedHost {
    /// Whether this entry matches `host` (normalised, as a URL gives it) on `port`.
    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        match &self.pattern {
            Pattern::Host(h) => h == host,
            Pattern::SubdomainsOf(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }

    /// Whether the entry is a `*.domain` pattern.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.pattern, Pattern::SubdomainsOf(_))
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Pattern::Host(h) => f.write_str(h)?,
            Pattern::SubdomainsOf(d) => write!(f, "*.{d}")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

fn entry_error(entry: &str, reason: impl Into<String>) -> EntryError {
    EntryError {
        entry: entry.to_owned(),
        reason: reason.into(),
    }
}

/// Normalise a host the way URLs do: lower case, IDNA to ASCII, canonical IP
/// addresses (IPv6 in brackets), without a trailing dot.
pub fn normalize_host(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    match url::Host::parse(host).ok()? {
        url::Host::Domain(d) => Some(d.trim_end_matches('.').to_owned()).filter(|d| !d.is_empty()),
        ip => Some(ip.to_string()),
    }
}

/// Split `host[:port]` (IPv6 in brackets) into its parts.
fn split_port(entry: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((_, "")) => (entry, None),
            Some((ip, tail)) => match tail.strip_prefix(':') {
                Some(p) => (&entry[..ip.len() + 2], Some(p)),
                None => return Err("unexpected text after the IPv6 address".into()),
            },
            None => return Err("an IPv6 address needs its closing ']'".into()),
        }
    } else {
        match entry.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => {
                return Err("an IPv6 address must be written in brackets, e.g. [::1]:5000".into())
            }
            None => (entry, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("port {p:?} is not a number from 1 to 65535")),
        },
    };
    Ok((host, port))
}

impl FromStr for AllowedHost {
    type Err = EntryError;

    fn from_str(entry: &str) -> Result<Self, EntryError> {
        let fail = |reason: String| entry_error(entry, reason);
        let trimmed = entry.trim();
        if trimmed.is_empty() {
            return Err(fail("the entry is empty".into()));
        }
        if trimmed.len() > 300 {
            return Err(fail("the entry is longer than 300 characters".into()));
        }
        if let Some((scheme, rest)) = trimmed.split_once("://") {
            return Err(fail(format!(
                "write the host without the scheme: {:?}, not a URL with {scheme}://",
                rest.split(['/', '?', '#']).next().unwrap_or(rest)
            )));
        }
        if trimmed.contains('@') {
            return Err(fail(
                "an entry has no user name or password; write only the host".into(),
            ));
        }
        if let Some(i) = trimmed.find(['/', '?', '#']) {
            return Err(fail(format!(
                "an entry is a host without a path; write {:?}",
                &trimmed[..i]
            )));
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(fail("an entry may not contain spaces".into()));
        }
        let (host, port) = split_port(trimmed).map_err(fail)?;
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, host),
        };
        if host.contains('*') {
            return Err(fail(
                "'*' is only allowed as the first label, as in *.example.com".into(),
            ));
        }
        let normalized = normalize_host(host)
            .ok_or_else(|| fail(format!("{host:?} is not a valid host name or IP address")))?;
        let is_domain = matches!(url::Host::parse(&normalized), Ok(url::Host::Domain(_)));
        let pattern = if wildcard {
            if !is_domain {
                return Err(fail(
                    "a '*.' pattern needs a domain name, not an IP address".into(),
                ));
            }
            if !normalized.contains('.') {
                return Err(fail(format!(
                    "*.{normalized} would allow every host under a top-level domain; name a registry's own domain, e.g. *.azurecr.io"
                )));
            }
            Pattern::SubdomainsOf(normalized)
        } else {
            Pattern::Host(normalized)
        };
        Ok(AllowedHost { pattern, port })
    }
}

impl Serialize for AllowedHost {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AllowedHost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What happens to a hop the allowlist does not cover.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// The hop is refused.
    #[default]
    #[serde(alias = "ENFORCE")]
    Enforce,
    /// The hop proceeds; a warning is logged and counted.
    #[serde(alias = "DRY_RUN", alias = "dry_run", alias = "DRY-RUN")]
    DryRun,
}

impl Enforcement {
    /// The name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforce => "enforce",
            Enforcement::DryRun => "dry-run",
        }
    }
}

impl FromStr for Enforcement {
    type Err = AccessPolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "enforce" => Ok(Enforcement::Enforce),
            "dry-run" | "dryrun" => Ok(Enforcement::DryRun),
            _ => Err(AccessPolicyError::UnknownEnforcement(s.to_owned())),
        }
    }
}

/// What the policy says about one hop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// The host is allowed (or the policy is disabled).
    Allowed,
    /// The host is not allowed and the policy is enforced.
    Blocked,
    /// The host is not allowed, but the policy only reports (dry run).
    WouldBlock,
}

/// The organisation's registry access policy.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    /// A disabled policy allows every host.
    pub enabled: bool,
    /// Refuse, or only report, hosts outside the allowlist.
    pub enforcement: Enforcement,
    /// The allowed hosts, normalised, without duplicates, in the order given.
    #[serde(rename = "allowedHosts")]
    entries: Vec<AllowedHost>,
}

impl Default for AccessPolicy {
    /// Enabled, enforced, allowing Docker Hub's and PyPI's hosts.
    fn default() -> Self {
        Self {
            enabled: true,
            enforcement: Enforcement::Enforce,
            entries: DEFAULT_ENTRIES
                .iter()
                .filter_map(|e| e.parse().ok())
                .collect(),
        }
    }
}

/// Parse entries, collecting every malformed one.
pub fn parse_entries<S: AsRef<str>>(entries: &[S]) -> Result<Vec<AllowedHost>, AccessPolicyError> {
    let mut parsed = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for entry in entries {
        match entry.as_ref().parse::<AllowedHost>() {
            Ok(e) => parsed.push(e),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(AccessPolicyError::InvalidEntries(errors))
    }
}

impl AccessPolicy {
    /// A policy with these entries; duplicates are dropped, more than
    /// [`MAX_ENTRIES`] is refused.
    pub fn new(
        enabled: bool,
        enforcement: Enforcement,
        entries: Vec<AllowedHost>,
    ) -> Result<Self, AccessPolicyError> {
        let mut policy = Self {
            enabled,
            enforcement,
            entries: Vec::new(),
        };
        policy.set_entries(entries)?;
        Ok(policy)
    }

    /// The allowed hosts.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.entries
    }

    /// Replace the allowlist.
    pub fn set_entries(&mut self, entries: Vec<AllowedHost>) -> Result<(), AccessPolicyError> {
        let mut unique: Vec<AllowedHost> = Vec::with_capacity(entries.len());
        for e in entries {
            if !unique.contains(&e) {
                unique.push(e);
            }
        }
        if unique.len() > MAX_ENTRIES {
            return Err(AccessPolicyError::TooManyEntries(unique.len()));
        }
        self.entries = unique;
        Ok(())
    }

    /// Add entries (those already present are kept once).
    pub fn allow(&mut self, entries: Vec<AllowedHost>) -> Result<(), AccessPolicyError> {
        let mut all = self.entries.clone();
        all.extend(entries);
        self.set_entries(all)
    }

    /// Remove entries; refused, changing nothing, if one of them is not present.
    pub fn disallow(&mut self, entries: &[AllowedHost]) -> Result<(), AccessPolicyError> {
        let missing: Vec<String> = entries
            .iter()
            .filter(|e| !self.entries.contains(e))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(AccessPolicyError::NotInPolicy(missing));
        }
        self.entries.retain(|e| !entries.contains(e));
        Ok(())
    }

    /// Whether the allowlist lets entrepot contact `host` on `port` (the port
    /// the connection will use, default ports included). A disabled policy
    /// allows everything; the enforcement mode is not considered here.
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        if !self.enabled {
            return true;
        }
        let Some(host) = normalize_host(host) else {
            return false;
        };
        self.entries.iter().any(|e| e.matches(&host, port))
    }

    /// Whether the allowlist lets entrepot contact the host of `url`.
    pub fn allows_url(&self, url: &url::Url) -> bool {
        match url.host_str() {
            Some(host) => self.allows(host, url.port_or_known_default()),
            None => false,
        }
    }

    /// What to do with a hop to `url`.
    pub fn verdict(&self, url: &url::Url) -> Verdict {
        if self.allows_url(url) {
            Verdict::Allowed
        } else {
            match self.enforcement {
                Enforcement::Enforce => Verdict::Blocked,
                Enforcement::DryRun => Verdict::WouldBlock,
            }
        }
    }
}

/// The stored and accepted form: entries as strings, validated on the way in.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyText {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default)]
    enforcement: Enforcement,
    #[serde(default, alias = "entries")]
    allowed_hosts: Vec<String>,
}

fn default_true() -> bool {
    true
}

impl<'de> Deserialize<'de> for AccessPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = PolicyText::deserialize(d)?;
        let entries = parse_entries(&text.allowed_hosts).map_err(serde::de::Error::custom)?;
        AccessPolicy::new(text.enabled, text.enforcement, entries).map_err(serde::de::Error::custom)
    }
}

/// The host (and port, when the URL names one) of a URL, as messages show it.
pub fn display_host(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> AllowedHost {
        s.parse().unwrap()
    }

    fn policy(entries: &[&str]) -> AccessPolicy {
        AccessPolicy::new(true, Enforcement::Enforce, parse_entries(entries).unwrap()).unwrap()
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn entries_are_normalised() {
        assert_eq!(entry("GHCR.io").to_string(), "ghcr.io");
        assert_eq!(entry("ghcr.io.").to_string(), "ghcr.io");
        assert_eq!(entry(" ghcr.io ").to_string(), "ghcr.io");
        assert_eq!(entry("127.0.0.1:5000").to_string(), "127.0.0.1:5000");
        assert_eq!(entry("*.AzureCR.io").to_string(), "*.azurecr.io");
        assert_eq!(entry("bücher.example").to_string(), "xn--bcher-kva.example");
        assert_eq!(entry("[::1]:5000").to_string(), "[::1]:5000");
        assert_eq!(entry("[0:0::1]").to_string(), "[::1]");
        assert!(entry("*.example.com").is_wildcard());
        assert!(!entry("example.com").is_wildcard());
    }

    #[test]
    fn malformed_entries_say_why() {
        let reason = |s: &str| s.parse::<AllowedHost>().unwrap_err().to_string();
        assert!(reason("https://ghcr.io/v2").contains("without the scheme: \"ghcr.io\""));
        assert!(reason("ghcr.io/org").contains("without a path"));
        assert!(reason("user:pw@ghcr.io").contains("no user name or password"));
        assert!(reason("").contains("empty"));
        assert!(reason("ghcr.io:0").contains("port"));
        assert!(reason("ghcr.io:99999").contains("port"));
        assert!(reason("ghcr.io:+80").contains("port"));
        assert!(reason("ghcr.io:http").contains("port"));
        assert!(reason("::1").contains("brackets"));
        assert!(reason("[::1").contains("closing"));
        assert!(reason("a.*.com").contains("first label"));
        assert!(reason("*ghcr.io").contains("first label"));
        assert!(reason("*").contains("first label"));
        assert!(reason("*.com").contains("top-level domain"));
        assert!(reason("*.127.0.0.1").contains("IP address"));
        assert!(reason("gh cr.io").contains("spaces"));
        assert!(reason("bad<host>").contains("not a valid host"));
        assert!(reason("999.1.1.1").contains("not a valid host"));
        assert!(reason(&"a".repeat(301)).contains("longer than 300"));
    }

    #[test]
    fn every_malformed_entry_is_reported() {
        let err = parse_entries(&["ghcr.io", "https://x.io", "a/b"]).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("2 entries are invalid"), "{text}");
        assert!(
            text.contains("\"https://x.io\"") && text.contains("\"a/b\""),
            "{text}"
        );
    }

    #[test]
    fn hosts_match_exactly_and_on_any_port_unless_one_is_given() {
        let p = policy(&["ghcr.io", "127.0.0.1:5000"]);
        assert!(p.allows("ghcr.io", Some(443)));
        assert!(p.allows("GHCR.IO", Some(8443)));
        assert!(!p.allows("evil-ghcr.io", Some(443)));
        assert!(!p.allows("pkg.ghcr.io", Some(443)));
        assert!(p.allows("127.0.0.1", Some(5000)));
        assert!(!p.allows("127.0.0.1", Some(5001)));
        assert!(!p.allows("127.0.0.2", Some(5000)));
        assert!(p.allows_url(&url("https://ghcr.io/v2/")));
        assert!(p.allows_url(&url("http://127.0.0.1:5000/v2/")));
        assert!(!p.allows_url(&url("http://127.0.0.1:5001/v2/")));
        assert!(!p.allows("not a host", None));
    }

    #[test]
    fn an_entry_with_a_default_port_matches_urls_without_one() {
        let p = policy(&["ghcr.io:443"]);
        assert!(p.allows_url(&url("https://ghcr.io/v2/")));
        assert!(!p.allows_url(&url("http://ghcr.io/v2/")));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let p = policy(&["*.azurecr.io"]);
        assert!(p.allows("myregistry.azurecr.io", Some(443)));
        assert!(p.allows("a.b.azurecr.io", Some(443)));
        assert!(!p.allows("azurecr.io", Some(443)));
        assert!(!p.allows("evilazurecr.io", Some(443)));
        assert!(!p.allows("azurecr.io.evil.com", Some(443)));
        assert!(!p.allows(".azurecr.io", Some(443)));
    }

    #[test]
    fn idna_hosts_match_in_either_form() {
        let p = policy(&["bücher.example"]);
        assert!(p.allows("xn--bcher-kva.example", None));
        assert!(p.allows("BÜCHER.example", None));
        assert!(p.allows_url(&url("https://bücher.example/v2/")));
    }

    #[test]
    fn ipv6_hosts_match() {
        let p = policy(&["[::1]:5000"]);
        assert!(p.allows_url(&url("http://[::1]:5000/v2/")));
        assert!(p.allows_url(&url("http://[0::1]:5000/v2/")));
        assert!(!p.allows_url(&url("http://[::2]:5000/v2/")));
    }

    #[test]
    fn at_most_a_hundred_entries() {
        let hundred: Vec<String> = (0..100).map(|i| format!("r{i}.example.com")).collect();
        let mut p = policy(&[]);
        p.set_entries(parse_entries(&hundred).unwrap()).unwrap();
        assert_eq!(p.entries().len(), 100);
        let err = p.allow(vec![entry("one-more.example.com")]).unwrap_err();
        assert_eq!(err, AccessPolicyError::TooManyEntries(101));
        assert!(err.to_string().contains("at most 100"), "{err}");
        assert_eq!(p.entries().len(), 100, "a refused change changes nothing");
        // Duplicates do not count twice.
        p.allow(vec![entry("r0.example.com")]).unwrap();
        assert_eq!(p.entries().len(), 100);
    }

    #[test]
    fn allow_and_disallow() {
        let mut p = policy(&["ghcr.io"]);
        p.allow(vec![entry("quay.io"), entry("GHCR.io")]).unwrap();
        assert_eq!(
            p.entries()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["ghcr.io", "quay.io"]
        );
        let err = p
            .disallow(&[entry("quay.io"), entry("gcr.io")])
            .unwrap_err();
        assert_eq!(err, AccessPolicyError::NotInPolicy(vec!["gcr.io".into()]));
        assert_eq!(p.entries().len(), 2);
        p.disallow(&[entry("QUAY.io")]).unwrap();
        assert!(!p.allows("quay.io", None));
    }

    #[test]
    fn disabled_allows_everything_and_dry_run_only_reports() {
        let mut p = policy(&["ghcr.io"]);
        assert_eq!(p.verdict(&url("https://quay.io/v2/")), Verdict::Blocked);
        assert_eq!(p.verdict(&url("https://ghcr.io/v2/")), Verdict::Allowed);
        p.enforcement = Enforcement::DryRun;
        assert_eq!(p.verdict(&url("https://quay.io/v2/")), Verdict::WouldBlock);
        p.enabled = false;
        assert_eq!(p.verdict(&url("https://quay.io/v2/")), Verdict::Allowed);
    }

    #[test]
    fn defaults_cover_docker_hub_and_pypi() {
        let p = AccessPolicy::default();
        assert_eq!(p.entries().len(), DEFAULT_ENTRIES.len());
        for host in [
            "registry-1.docker.io",
            "auth.docker.io",
            "production.cloudflare.docker.com",
            "pypi.org",
            "files.pythonhosted.org",
        ] {
            assert!(p.allows(host, Some(443)), "{host}");
        }
        assert!(!p.allows("ghcr.io", Some(443)));
    }

    #[test]
    fn json_round_trip_and_validation() {
        let p = policy(&["ghcr.io", "*.azurecr.io", "127.0.0.1:5000"]);
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"enabled":true,"enforcement":"enforce","allowedHosts":["ghcr.io","*.azurecr.io","127.0.0.1:5000"]}"#
        );
        assert_eq!(serde_json::from_str::<AccessPolicy>(&text).unwrap(), p);
        let dry: AccessPolicy =
            serde_json::from_str(r#"{"enforcement":"DRY_RUN","entries":["GHCR.io"]}"#).unwrap();
        assert_eq!(dry.enforcement, Enforcement::DryRun);
        assert!(dry.enabled);
        assert!(
            serde_json::from_str::<AccessPolicy>(r#"{"allowedHosts":["https://x"]}"#)
                .unwrap_err()
                .to_string()
                .contains("without the scheme")
        );
        assert!(serde_json::from_str::<AccessPolicy>(r#"{"allowed":["x.io"]}"#).is_err());
    }

    #[test]
    fn enforcement_names() {
        assert_eq!("dry-run".parse::<Enforcement>(), Ok(Enforcement::DryRun));
        assert_eq!("ENFORCE".parse::<Enforcement>(), Ok(Enforcement::Enforce));
        assert!("audit".parse::<Enforcement>().is_err());
    }

    /// Property: for generated labels, `*.d` matches `x.d` and never `d`,
    /// `xd` or `d.x`; an exact entry matches only itself.
    #[test]
    fn wildcard_property_over_generated_names() {
        let labels = ["a", "ab", "x1", "reg-1", "zz", "q", "azurecr", "io", "c0m"];
        for d1 in labels {
            for d2 in labels {
                let domain = format!("{d1}.{d2}");
                let wild = policy(&[&format!("*.{domain}")]);
                let exact = policy(&[&domain]);
                for x in labels {
                    assert!(wild.allows(&format!("{x}.{domain}"), None));
                    assert!(wild.allows(&format!("{x}.{x}.{domain}"), None));
                    assert!(!wild.allows(&domain, None));
                    assert!(!wild.allows(&format!("{x}{domain}"), None));
                    assert!(!wild.allows(&format!("{domain}.{x}-evil"), None));
                    assert!(!exact.allows(&format!("{x}.{domain}"), None));
                    assert!(!exact.allows(&format!("{x}{domain}"), None));
                }
                assert!(exact.allows(&domain.to_uppercase(), None));
            }
        }
    }

    /// Property: normalising a valid entry is idempotent.
    #[test]
    fn normalisation_is_idempotent() {
        for e in [
            "GHCR.io",
            "*.AZURECR.io:8443",
            "[0:0::1]:5000",
            "Bücher.Example.",
            "127.000.0.1",
            "0x7f.0.0.1",
        ] {
            let once = entry(e).to_string();
            assert_eq!(entry(&once).to_string(), once, "{e}");
        }
    }
}
