//! Names: projects, repositories, image names inside a repository, tags.
//!
//! Every name is validated once, when it enters the system; afterwards the typed
//! value is trusted. Path tricks (`..`, empty segments, upper case) never get past
//! these parsers.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A project or repository id that breaks the id rules.
    #[error("{kind} id {value:?} is invalid: use 1-63 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen")]
    BadId {
        /// "project" or "repository".
        kind: &'static str,
        /// The refused value.
        value: String,
    },
    /// An image name that breaks the OCI name grammar.
    #[error("image name {0:?} is invalid: use lower-case path components of letters and digits separated by '.', '_', '__' or '-', joined by '/'")]
    BadImage(String),
    /// A tag that breaks the OCI tag grammar.
    #[error("tag {0:?} is invalid: use up to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'")]
    BadTag(String),
    /// A reference that is neither a tag nor a digest.
    #[error(transparent)]
    BadDigest(#[from] DigestError),
}

fn valid_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(String);

        impl $name {
            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                if valid_id(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(NameError::BadId { kind: $kind, value: s.to_owned() })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A project id, such as `default`.
    ProjectId,
    "project"
);
id_type!(
    /// A repository id inside a project, such as `docker-hub`.
    RepositoryId,
    "repository"
);

/// An image name inside a repository (`library/alpine`), per the OCI name grammar.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ImageName(String);

impl ImageName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

impl FromStr for ImageName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > 255 || !s.split('/').all(valid_component) {
            return Err(NameError::BadImage(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag, per the OCI grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Tag(String);

impl Tag {
    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::BadTag(s.to_owned()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a manifest request names: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Reference {
    /// A mutable tag.
    Tag(Tag),
    /// An immutable digest.
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!("default".parse::<ProjectId>().is_ok());
        assert!("docker-hub".parse::<RepositoryId>().is_ok());
        for bad in [
            "",
            "Default",
            "1abc",
            "abc-",
            "a_b",
            "a/b",
            "..",
            &"a".repeat(64),
        ] {
            assert!(bad.parse::<RepositoryId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn image_names() {
        for good in ["alpine", "library/alpine", "a.b/c__d/e-f--g", "x1/y2"] {
            assert!(good.parse::<ImageName>().is_ok(), "{good}");
        }
        for bad in [
            "", "a/../b", "..", "a//b", "/a", "a/", "A", "a..b", "a___b", "-a", "a/.b",
        ] {
            assert!(bad.parse::<ImageName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_and_references() {
        assert!("v1.0_rc-1".parse::<Tag>().is_ok());
        assert!("_x".parse::<Tag>().is_ok());
        for bad in ["", ".x", "-x", "a/b", &"a".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        assert!(matches!(
            "sha256:nothex".parse::<Reference>(),
            Err(NameError::BadDigest(_))
        ));
    }
}

/// The path of an image as OCI clients name it: `{project}/{repository}/{image}`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ImagePath {
    /// Project id.
    pub project: ProjectId,
    /// Repository id.
    pub repository: RepositoryId,
    /// Image name within the repository.
    pub image: ImageName,
}

impl FromStr for ImagePath {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let mut parts = s.splitn(3, '/');
        let (Some(p), Some(r), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NameError::BadImage(s.to_owned()));
        };
        Ok(Self {
            project: p.parse()?,
            repository: r.parse()?,
            image: i.parse()?,
        })
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.project, self.repository, self.image)
    }
}

#[cfg(test)]
mod image_path_tests {
    use super::*;

    #[test]
    fn image_paths() {
        let p: ImagePath = "default/myrepo/library/alpine".parse().unwrap();
        assert_eq!(p.project.as_str(), "default");
        assert_eq!(p.image.as_str(), "library/alpine");
        assert_eq!(p.to_string(), "default/myrepo/library/alpine");
        for bad in [
            "default/myrepo",
            "default/myrepo/",
            "default/my_repo/x",
            "Default/r/x",
            "d/r/../x",
        ] {
            assert!(bad.parse::<ImagePath>().is_err(), "{bad}");
        }
    }
}
