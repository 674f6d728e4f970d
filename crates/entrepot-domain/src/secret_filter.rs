//! The `filter` of a secret listing, in the subset of Google's list-filter
//! syntax that Secret Manager documents for secrets:
//!
//! - `labels.KEY=VALUE`, `labels.KEY:VALUE` (the label has that value),
//!   `labels.KEY:*` (the label is set), `labels:KEY` (likewise);
//! - `name:TEXT` (the secret's name contains TEXT);
//! - a term prefixed with `-` or `NOT ` is negated;
//! - terms separated by spaces or `AND` must all hold.
//!
//! `OR` and parentheses are refused with a message that says so, never
//! silently read as something else.

use crate::secret::Secret;

/// One condition of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// The label is set to this value.
    LabelIs { key: String, value: String },
    /// The label is set.
    LabelSet { key: String },
    /// The name contains the text.
    NameHas { text: String },
}

/// A parsed filter: every term must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretFilter {
    terms: Vec<(bool, Condition)>,
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter {filter:?} is not understood: {why}; use terms such as labels.env=prod, labels.team:*, name:token, joined by spaces or AND, each optionally negated with - or NOT")]
pub struct FilterError {
    filter: String,
    why: String,
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

impl SecretFilter {
    /// Parse a filter; empty text matches every secret.
    pub fn parse(filter: &str) -> Result<Self, FilterError> {
        let error = |why: &str| FilterError {
            filter: filter.to_owned(),
            why: why.to_owned(),
        };
        if filter.contains('(') || filter.contains(')') {
            return Err(error("parentheses are not supported"));
        }
        let mut terms = Vec::new();
        let mut negate_next = false;
        for word in filter.split_whitespace() {
            match word {
                "AND" => continue,
                "OR" => return Err(error("OR is not supported")),
                "NOT" => {
                    negate_next = true;
                    continue;
                }
                _ => {}
            }
            let (negated, term) = match word.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (negate_next, word),
            };
            negate_next = false;
            let condition = if let Some(rest) = term.strip_prefix("labels.") {
                let split = rest.find(['=', ':']).ok_or_else(|| {
                    error("a labels.KEY term needs =VALUE, :VALUE or :* after the key")
                })?;
                let (key, value) = (&rest[..split], unquote(&rest[split + 1..]));
                if key.is_empty() {
                    return Err(error("a label key is empty"));
                }
                if value == "*" && rest.as_bytes()[split] == b':' {
                    Condition::LabelSet {
                        key: key.to_owned(),
                    }
                } else {
                    Condition::LabelIs {
                        key: key.to_owned(),
                        value: value.to_owned(),
                    }
                }
            } else if let Some(key) = term.strip_prefix("labels:") {
                Condition::LabelSet {
                    key: unquote(key).to_owned(),
                }
            } else if let Some(text) = term.strip_prefix("name:") {
                Condition::NameHas {
                    text: unquote(text).to_owned(),
                }
            } else {
                return Err(error(&format!("the term {term:?} is not supported")));
            };
            terms.push((negated, condition));
        }
        if negate_next {
            return Err(error("NOT is not followed by a term"));
        }
        Ok(Self { terms })
    }

    /// Whether `secret` passes every term.
    pub fn matches(&self, secret: &Secret) -> bool {
        self.terms.iter().all(|(negated, condition)| {
            let holds = match condition {
                Condition::LabelIs { key, value } => secret.labels.as_map().get(key) == Some(value),
                Condition::LabelSet { key } => secret.labels.as_map().contains_key(key),
                Condition::NameHas { text } => secret.name.contains(text.as_str()),
            };
            holds != *negated
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::secret::Labels;

    fn secret(name: &str, labels: &str) -> Secret {
        Secret {
            name: format!("projects/demo/secrets/{name}"),
            replication: Default::default(),
            labels: Labels::parse_list(labels).unwrap(),
            annotations: Default::default(),
            create_time: String::new(),
            etag: String::new(),
            expire_time: None,
            rotation: None,
            rotation_due: false,
        }
    }

    #[test]
    fn label_and_name_terms_all_hold() {
        let prod = secret("hub-token", "env=prod,team=core");
        let dev = secret("pypi-token", "env=dev");
        let cases = [
            ("", true, true),
            ("labels.env=prod", true, false),
            ("labels.env:prod", true, false),
            ("labels.env=\"dev\"", false, true),
            ("labels.team:*", true, false),
            ("labels:team", true, false),
            ("-labels.team:*", false, true),
            ("NOT labels.env=prod", false, true),
            ("labels.env=prod AND name:hub", true, false),
            ("labels.env:* name:token", true, true),
            ("name:pypi", false, true),
        ];
        for (filter, on_prod, on_dev) in cases {
            let f = SecretFilter::parse(filter).unwrap();
            assert_eq!(f.matches(&prod), on_prod, "{filter} on prod");
            assert_eq!(f.matches(&dev), on_dev, "{filter} on dev");
        }
    }

    #[test]
    fn unsupported_syntax_is_refused_by_name() {
        for (filter, says) in [
            ("labels.env=prod OR labels.env=dev", "OR"),
            ("(labels.env=prod)", "parentheses"),
            ("create_time>2020", "not supported"),
            ("labels.env", "needs"),
            ("NOT", "NOT"),
        ] {
            let e = SecretFilter::parse(filter).unwrap_err();
            assert!(e.to_string().contains(says), "{filter}: {e}");
        }
    }
}
