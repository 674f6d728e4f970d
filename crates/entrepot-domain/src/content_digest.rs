//! Digests of immutable content under the algorithms upstreams name it by.
//!
//! The blob store names every object by its sha256 ([`Digest`]); an upstream may
//! name content by another algorithm (a Python index that gives only a sha512).
//! [`ContentDigest`] is what a format says content must hash to, and
//! [`ContentHasher`] computes, over one pass of streamed bytes, both the sha256
//! the store needs and the digest the upstream named.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

use crate::digest::{Digest, Sha256Hasher};

/// A hash algorithm immutable content can be verified with, and the one
/// list of the algorithms entrepot accepts in digests (OCI `sha256:` and
/// `sha512:`, Python `#sha256=` and `#sha512=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256 (OCI digests, Python `#sha256=`).
    Sha256,
    /// SHA-512 (OCI `sha512:` digests, Python `#sha512=`).
    Sha512,
}

impl Algorithm {
    /// Every algorithm, strongest first: the order in which one is picked when
    /// an upstream offers several.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha512, Algorithm::Sha256];

    /// The name upstreams use (`sha256`, `sha512`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The algorithm of a name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Length of a hex digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Why a hex string is not a digest of its algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{got:?} is not a {algorithm} digest ({len} hex characters)", algorithm = .algorithm.name(), len = .algorithm.hex_len())]
pub struct ContentDigestError {
    /// The algorithm asked for.
    pub algorithm: Algorithm,
    /// What was given (cut short).
    pub got: String,
}

/// What content must hash to: an algorithm and the expected hex digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentDigest {
    algorithm: Algorithm,
    hex: String,
}

impl ContentDigest {
    /// A digest of `algorithm` given in hex (either case).
    pub fn new(algorithm: Algorithm, hex: &str) -> Result<Self, ContentDigestError> {
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ContentDigestError {
                algorithm,
                got: hex.chars().take(140).collect(),
            });
        }
        Ok(Self {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex digest.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The same digest as an OCI [`Digest`] (every algorithm here is one
    /// a `Digest` may name content by).
    pub fn to_digest(&self) -> Digest {
        Digest::from_verified_parts(self.algorithm, self.hex.clone())
    }

    /// The blob store's name for the content, when this is a sha256.
    pub fn as_sha256(&self) -> Option<Digest> {
        match self.algorithm {
            Algorithm::Sha256 => Some(Digest::from_verified_hex(self.hex.clone())),
            Algorithm::Sha512 => None,
        }
    }
}

impl From<Digest> for ContentDigest {
    fn from(d: Digest) -> Self {
        Self {
            algorithm: d.algorithm(),
            hex: d.hex().to_owned(),
        }
    }
}

impl From<&Digest> for ContentDigest {
    fn from(d: &Digest) -> Self {
        d.clone().into()
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentDigest({self})")
    }
}

/// Hashes streamed bytes once for the store's sha256 and, when different, for
/// the algorithm content is expected under.
#[derive(Clone)]
pub struct ContentHasher {
    sha256: Sha256Hasher,
    extra: Option<Sha512>,
}

/// The digests of everything a [`ContentHasher`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// The blob store's name for the bytes.
    pub sha256: Digest,
    /// Their digest under the algorithm asked for.
    pub asked: ContentDigest,
    /// How many bytes there were.
    pub len: u64,
}

impl ContentHasher {
    /// A hasher for content expected under `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        Self {
            sha256: Sha256Hasher::new(),
            extra: match algorithm {
                Algorithm::Sha256 => None,
                Algorithm::Sha512 => Some(Sha512::new()),
            },
        }
    }

    /// Feed more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        if let Some(h) = &mut self.extra {
            h.update(bytes);
        }
    }

    /// Number of bytes seen so far.
    pub fn len(&self) -> u64 {
        self.sha256.len()
    }

    /// Whether no bytes were seen.
    pub fn is_empty(&self) -> bool {
        self.sha256.is_empty()
    }

    /// The digests of all bytes seen.
    pub fn finish(self) -> Hashed {
        let len = self.sha256.len();
        let sha256 = self.sha256.finish();
        let asked = match self.extra {
            None => ContentDigest::from(&sha256),
            Some(h) => ContentDigest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        };
        Hashed { sha256, asked, len }
    }
}

/// The sha256 of a byte slice, as a [`ContentDigest`].
pub fn sha256_of(bytes: &[u8]) -> ContentDigest {
    ContentDigest {
        algorithm: Algorithm::Sha256,
        hex: hex::encode(Sha256::digest(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lengths() {
        assert_eq!(Algorithm::from_name("SHA512"), Some(Algorithm::Sha512));
        assert_eq!(Algorithm::from_name("md5"), None);
        let d = ContentDigest::new(Algorithm::Sha256, &"AB".repeat(32)).unwrap();
        assert_eq!(d.to_string(), format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(d.as_sha256().unwrap().hex(), "ab".repeat(32));
        assert!(ContentDigest::new(Algorithm::Sha512, &"ab".repeat(32)).is_err());
        assert!(ContentDigest::new(Algorithm::Sha256, &"zz".repeat(32)).is_err());
        let long = ContentDigest::new(Algorithm::Sha512, &"0f".repeat(64)).unwrap();
        assert!(long.as_sha256().is_none());
    }

    #[test]
    fn one_pass_gives_both_digests() {
        let mut h = ContentHasher::new(Algorithm::Sha512);
        h.update(b"hello ");
        h.update(b"world");
        let done = h.finish();
        assert_eq!(done.len, 11);
        assert_eq!(done.sha256, Digest::of(b"hello world"));
        assert_eq!(
            done.asked.hex(),
            hex::encode(Sha512::digest(b"hello world"))
        );
        let mut h = ContentHasher::new(Algorithm::Sha256);
        h.update(b"hello world");
        let done = h.finish();
        assert_eq!(done.asked, sha256_of(b"hello world"));
    }
}
