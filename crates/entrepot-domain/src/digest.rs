//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`), the identity of
//! every immutable object.
//!
//! Which algorithms entrepot accepts is decided in one place,
//! [`Algorithm`]: a digest of any other algorithm is refused as
//! [`DigestError::UnsupportedAlgorithm`], whatever it names.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

pub use crate::content_digest::Algorithm;

/// Why a string is not a digest entrepot accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string has no `algorithm:` prefix.
    #[error("digest {0:?} is not of the form algorithm:hex")]
    Malformed(String),
    /// The algorithm is well-formed but not one entrepot supports.
    #[error("digest algorithm {0:?} is not supported; use sha256 or sha512")]
    UnsupportedAlgorithm(String),
    /// The encoded part is not lower-case hex of the algorithm's length.
    #[error("digest {0:?} must have {1} lower-case hex characters after the algorithm")]
    BadHex(String, usize),
}

/// A validated content digest of a supported algorithm.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The sha256 digest of a complete byte slice: the algorithm entrepot
    /// names the content it computes a digest for (a pushed manifest).
    pub fn of(bytes: &[u8]) -> Self {
        Self::of_algorithm(Algorithm::Sha256, bytes)
    }

    /// The digest a manifest is kept and served under: computed with the
    /// algorithm it was named by (`named`: the digest it was pushed or
    /// pulled by, or the one an upstream announced for a tag), else with
    /// sha256, the canonical algorithm (a manifest pushed by tag, or an
    /// upstream that announced nothing). Hosted and remote repositories
    /// both name manifests by this rule, so a tag pulled through a cache
    /// announces the digest its upstream announced.
    pub fn naming(named: Option<Algorithm>, bytes: &[u8]) -> Self {
        Self::of_algorithm(named.unwrap_or(Algorithm::Sha256), bytes)
    }

    /// The digest of a complete byte slice under `algorithm`.
    pub fn of_algorithm(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let hex = match algorithm {
            Algorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
            Algorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
        };
        Self { algorithm, hex }
    }

    /// The hex characters, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A sha256 digest of 64 lower-case hex characters the caller has validated.
    pub(crate) fn from_verified_hex(hex: String) -> Self {
        Self {
            algorithm: Algorithm::Sha256,
            hex,
        }
    }

    /// A digest of `algorithm` in lower-case hex of its length, validated by the caller.
    pub(crate) fn from_verified_parts(algorithm: Algorithm, hex: String) -> Self {
        Self { algorithm, hex }
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, encoded) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(s.to_owned()))?;
        // The OCI grammar of an algorithm: lower-case components joined by
        // one of `+._-`.
        let Some(algorithm) = Algorithm::ALL.into_iter().find(|a| a.name() == name) else {
            let grammatical = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            return Err(if grammatical {
                DigestError::UnsupportedAlgorithm(name.to_owned())
            } else {
                DigestError::Malformed(s.to_owned())
            });
        };
        if encoded.len() != algorithm.hex_len()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::BadHex(s.to_owned(), algorithm.hex_len()));
        }
        Ok(Self {
            algorithm,
            hex: encoded.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 over streamed bytes.
#[derive(Clone, Default)]
pub struct Sha256Hasher {
    inner: Sha256,
    len: u64,
}

impl Sha256Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Number of bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of all bytes seen.
    pub fn finish(self) -> Digest {
        Digest::from_verified_hex(hex::encode(self.inner.finalize()))
    }
}

/// Incremental hash of streamed bytes under one [`Algorithm`], for content
/// that must match a digest the client named.
#[derive(Clone)]
pub struct DigestHasher {
    state: HashState,
    len: u64,
}

#[derive(Clone)]
enum HashState {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl DigestHasher {
    /// A hasher of `algorithm` that has seen no bytes.
    pub fn new(algorithm: Algorithm) -> Self {
        let state = match algorithm {
            Algorithm::Sha256 => HashState::Sha256(Sha256::new()),
            Algorithm::Sha512 => HashState::Sha512(Sha512::new()),
        };
        Self { state, len: 0 }
    }

    /// A hasher of the algorithm of `digest`, to verify content against it.
    pub fn for_digest(digest: &Digest) -> Self {
        Self::new(digest.algorithm())
    }

    /// The algorithm it hashes with.
    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            HashState::Sha256(_) => Algorithm::Sha256,
            HashState::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feed more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            HashState::Sha256(h) => h.update(bytes),
            HashState::Sha512(h) => h.update(bytes),
        }
        self.len += bytes.len() as u64;
    }

    /// Number of bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of all bytes seen.
    pub fn finish(self) -> Digest {
        match self.state {
            HashState::Sha256(h) => Digest::from_verified_hex(hex::encode(h.finalize())),
            HashState::Sha512(h) => {
                Digest::from_verified_parts(Algorithm::Sha512, hex::encode(h.finalize()))
            }
        }
    }
}

impl Default for DigestHasher {
    fn default() -> Self {
        Self::new(Algorithm::Sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sha256() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(matches!(
            "abc".parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            "sha384:abcd".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            "sha512:abcd".parse::<Digest>(),
            Err(DigestError::BadHex(_, 128))
        ));
        assert!(matches!(
            "SHA256:abcd".parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            "sha256:XYZ".parse::<Digest>(),
            Err(DigestError::BadHex(_, 64))
        ));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(matches!(
            upper.parse::<Digest>(),
            Err(DigestError::BadHex(..))
        ));
    }

    #[test]
    fn manifests_are_named_by_the_algorithm_they_were_named_by_else_sha256() {
        assert_eq!(Digest::naming(None, b"m"), Digest::of(b"m"));
        let by_sha512 = Digest::naming(Some(Algorithm::Sha512), b"m");
        assert_eq!(by_sha512, Digest::of_algorithm(Algorithm::Sha512, b"m"));
        assert_eq!(by_sha512.algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn sha512_digests_parse_print_and_stream() {
        let d = Digest::of_algorithm(Algorithm::Sha512, b"hello world");
        assert_eq!(d.algorithm(), Algorithm::Sha512);
        assert_eq!(d.hex().len(), 128);
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!(d.to_string().starts_with("sha512:"));
        let mut h = DigestHasher::for_digest(&d);
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.len(), 11);
        assert_eq!(h.finish(), d);
        assert_ne!(Digest::of(b"hello world"), d);
    }

    #[test]
    fn streaming_hash_matches_one_shot() {
        let mut h = Sha256Hasher::new();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.len(), 11);
        assert_eq!(h.finish(), Digest::of(b"hello world"));
    }
}
