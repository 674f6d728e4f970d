//! `database_url`: where the metadata lives when it is not the SQLite file
//! of the data directory. The URL may carry a password, so the type shows
//! itself (in `--print-config`, in logs, in `Debug`) with the password
//! replaced.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `postgres://` (or `postgresql://`) URL of the metadata database.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Check the scheme: only PostgreSQL is served by URL; SQLite is the
    /// default without one.
    pub fn parse(url: &str) -> Result<Self, String> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Err(format!(
                "{} is not a postgres:// URL (leave it unset for the SQLite database of the data directory)",
                Self(url.to_owned()).redacted()
            ));
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL itself, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return url.clone();
        };
        let rest = &url[scheme_end..];
        // The user information ends at the last '@' before the path.
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let Some(at) = authority.rfind('@') else {
            return redact_query(url);
        };
        let userinfo = &authority[..at];
        let shown_user = match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***"),
            None => userinfo.to_owned(),
        };
        redact_query(&format!(
            "{}{shown_user}{}",
            &url[..scheme_end],
            &rest[at..]
        ))
    }
}

/// A `password=` option of the query string replaced by `***`.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let options: Vec<String> = query
        .split('&')
        .map(|option| match option.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => option.to_owned(),
        })
        .collect();
    format!("{base}?{}", options.join("&"))
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://entrepot:s3cret@db.internal:5432/entrepot",
                "postgres://entrepot:***@db.internal:5432/entrepot",
            ),
            ("postgres://entrepot@db/x", "postgres://entrepot@db/x"),
            (
                "postgresql://u:p@ss@h/d?sslmode=require",
                "postgresql://u:***@h/d?sslmode=require",
            ),
            (
                "postgres://h/d?user=u&password=s3cret",
                "postgres://h/d?user=u&password=***",
            ),
        ] {
            let parsed = DatabaseUrl::parse(url).unwrap();
            assert_eq!(parsed.redacted(), shown);
            assert!(!format!("{parsed:?}").contains("s3cret"));
            assert_eq!(parsed.expose(), url);
        }
    }

    #[test]
    fn only_postgres_urls_are_accepted() {
        let err = DatabaseUrl::parse("mysql://u:s3cret@h/d").unwrap_err();
        assert!(err.contains("not a postgres:// URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
