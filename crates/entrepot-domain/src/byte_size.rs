//! Sizes in bytes as people write them: `50GiB`, `512MiB`, `1048576`.
//!
//! Units are binary (`KiB` = 1024 bytes). Decimal units (`GB`) are refused
//! with a message that names the binary one, so that nobody gets 7% less
//! cache than they asked for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A size in bytes, parsed from and shown with binary units.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default, Hash)]
pub struct ByteSize(pub u64);

/// Why a size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    /// Not a number followed by an optional unit.
    #[error("{0:?} is not a size such as 50GiB, 512MiB or 1048576 (bytes)")]
    Shape(String),
    /// A unit this parser does not know.
    #[error("{given:?} has an unknown unit {unit:?}; use B, KiB, MiB, GiB or TiB{hint}")]
    Unit {
        /// The whole text.
        given: String,
        /// The unit part.
        unit: String,
        /// A suggestion for a decimal unit.
        hint: String,
    },
    /// More than `u64::MAX` bytes.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

const UNITS: &[(&str, u32)] = &[("B", 0), ("KiB", 1), ("MiB", 2), ("GiB", 3), ("TiB", 4)];

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<Self, ByteSizeError> {
        let given = s.trim();
        let split = given
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(given.len());
        let (number, unit) = (&given[..split], given[split..].trim());
        let n: u64 = number
            .parse()
            .map_err(|_| ByteSizeError::Shape(given.to_owned()))?;
        let unit = if unit.is_empty() { "B" } else { unit };
        let Some((_, power)) = UNITS.iter().find(|(u, _)| u.eq_ignore_ascii_case(unit)) else {
            let binary = match unit.to_ascii_uppercase().as_str() {
                "K" | "KB" => Some("KiB"),
                "M" | "MB" => Some("MiB"),
                "G" | "GB" => Some("GiB"),
                "T" | "TB" => Some("TiB"),
                _ => None,
            };
            return Err(ByteSizeError::Unit {
                given: given.to_owned(),
                unit: unit.to_owned(),
                hint: binary.map_or_else(String::new, |b| format!(" (did you mean {b}?)")),
            });
        };
        1024u64
            .checked_pow(*power)
            .and_then(|factor| n.checked_mul(factor))
            .map(ByteSize)
            .ok_or_else(|| ByteSizeError::TooLarge(given.to_owned()))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that shows the size exactly: `50GiB`, `1536KiB`, `1000B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, power) in UNITS.iter().rev() {
            let factor = 1024u64.pow(*power);
            if self.0 != 0 && self.0.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    /// A number of bytes, or a string with a unit.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Bytes(u64),
            Text(String),
        }
        match Given::deserialize(d)? {
            Given::Bytes(n) => Ok(ByteSize(n)),
            Given::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units_and_plain_bytes() {
        assert_eq!("50GiB".parse(), Ok(ByteSize(50 << 30)));
        assert_eq!("512 MiB".parse(), Ok(ByteSize(512 << 20)));
        assert_eq!("3kib".parse(), Ok(ByteSize(3072)));
        assert_eq!("1048576".parse(), Ok(ByteSize(1 << 20)));
        assert_eq!("7B".parse(), Ok(ByteSize(7)));
        assert_eq!(ByteSize(50 << 30).to_string(), "50GiB");
        assert_eq!(ByteSize(1536 << 10).to_string(), "1536KiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }

    #[test]
    fn decimal_units_and_nonsense_are_refused_with_a_hint() {
        let e = "50GB".parse::<ByteSize>().unwrap_err().to_string();
        assert!(e.contains("did you mean GiB"), "{e}");
        assert!("GiB".parse::<ByteSize>().is_err());
        assert!("-1GiB".parse::<ByteSize>().is_err());
        assert!(matches!(
            "99999999999TiB".parse::<ByteSize>(),
            Err(ByteSizeError::TooLarge(_))
        ));
    }

    #[test]
    fn deserializes_from_numbers_and_strings() {
        let n: ByteSize = serde_json::from_str("1024").unwrap();
        let s: ByteSize = serde_json::from_str("\"1KiB\"").unwrap();
        assert_eq!(n, s);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"1KiB\"");
    }
}
