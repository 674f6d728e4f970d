//! The public id of a personal access token: what lists and revokes it,
//! never the token itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id of a personal access token: 1 to 64 lowercase ASCII letters,
/// digits or `-` (new tokens get 16 hex digits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TokenId(String);

/// A string that is not a token id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a token id: use 1 to 64 lowercase letters, digits or '-'")]
pub struct InvalidTokenId(pub String);

impl TokenId {
    /// The id of a new token: its random bytes in lowercase hex.
    pub fn from_random_bytes(bytes: [u8; 8]) -> TokenId {
        TokenId(hex::encode(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TokenId {
    type Err = InvalidTokenId;

    fn from_str(s: &str) -> Result<Self, InvalidTokenId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if ok {
            Ok(TokenId(s.to_owned()))
        } else {
            Err(InvalidTokenId(s.to_owned()))
        }
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TokenId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hex_ids_and_refuses_the_rest() {
        assert_eq!("0123abcd".parse::<TokenId>().unwrap().as_str(), "0123abcd");
        for bad in ["", "ABC", "a b", "a/b", &"a".repeat(65)] {
            assert!(bad.parse::<TokenId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let id: TokenId = "beef".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"beef\"");
        assert_eq!(serde_json::from_str::<TokenId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TokenId>("\"../x\"").is_err());
    }
}
