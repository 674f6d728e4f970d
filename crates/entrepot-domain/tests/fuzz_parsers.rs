//! Property-based fuzzing of the parsers that read network input: names,
//! references, digests, byte ranges, upload chunk ranges and manifests.
//!
//! Each property runs `PROPTEST_CASES` cases (256 by default, what CI runs); a
//! long local run is `PROPTEST_CASES=100000000 timeout 600 cargo test --release
//! -p entrepot-domain --test fuzz_parsers NAME` (see `docs/security.md`).
//! Inputs mix arbitrary Unicode with strings drawn from the grammar's own
//! alphabet, so most cases land near the accept/refuse boundary. Where the spec
//! gives a regular expression, the parser is checked against it (a
//! differential oracle), not only for not panicking.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::LazyLock;

use entrepot_domain::manifest::{Manifest, ManifestKind, MAX_MANIFEST_BYTES};
use entrepot_domain::{
    parse_chunk_range, parse_range, Digest, ImageName, ImagePath, ProjectId, Reference,
    RepositoryId, SecretId, SecretName, SecretVersionName, Tag, VersionId,
};
use proptest::prelude::*;
use regex::Regex;
use serde_json::{json, Value};

/// The OCI distribution-spec name grammar, one path of components.
static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$").unwrap()
});
/// The OCI tag grammar.
static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").unwrap());
/// Project and repository ids.
static ID_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$").unwrap());

/// Secret ids: 1-255 letters, digits, '_' and '-'.
static SECRET_ID_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_-]{1,255}$").unwrap());

/// Secret version names near the grammar: odd ids, versions, separators.
fn near_secret_version() -> impl Strategy<Value = String> {
    (
        prop_oneof!["[a-z][a-z0-9-]{0,8}", "[A-Za-z0-9_-]{0,3}"],
        prop_oneof![
            "[A-Za-z0-9_-]{0,12}",
            "[A-Za-z0-9_.+/ -]{0,6}",
            "a{254,257}"
        ],
        prop_oneof![Just("latest".to_owned()), "[0-9]{1,21}", "[+0-9a-z ]{0,4}",],
    )
        .prop_map(|(p, s, v)| format!("projects/{p}/secrets/{s}/versions/{v}"))
}

/// Strings near the grammars: their alphabets and the separators that matter.
fn near_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._/-]{0,80}",
        "([a-z0-9]{1,4}[._-]{0,3}){0,12}(/[a-z0-9]{1,4}){0,4}",
        "[a-zA-Z0-9._:/%@-]{0,80}",
        any::<String>(),
    ]
}

fn near_tag() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._-]{0,140}",
        "[a-zA-Z0-9._:/ -]{0,20}",
        any::<String>()
    ]
}

fn near_digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "sha256:[0-9a-f]{60,68}",
        "sha(256|512|1):[0-9a-fA-F]{0,130}",
        "[a-z0-9+._-]{0,10}:[a-zA-Z0-9=_-]{0,100}",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn image_names_follow_the_spec_grammar(s in near_name()) {
        let parsed = s.parse::<ImageName>();
        let grammar = NAME_RE.is_match(&s) && s.len() <= 255;
        prop_assert_eq!(parsed.is_ok(), grammar, "{:?}", s);
        if let Ok(name) = parsed {
            // Path tricks never survive parsing.
            prop_assert!(!name.as_str().split('/').any(|c| c.is_empty() || c == "." || c == ".."));
            prop_assert_eq!(name.to_string(), s);
        }
    }

    #[test]
    fn tags_follow_the_spec_grammar(s in near_tag()) {
        let parsed = s.parse::<Tag>();
        prop_assert_eq!(parsed.is_ok(), TAG_RE.is_match(&s), "{:?}", s);
        if let Ok(tag) = parsed {
            prop_assert_eq!(tag.to_string(), s);
        }
    }

    #[test]
    fn ids_follow_their_rule(s in prop_oneof!["[a-z0-9-]{0,70}", any::<String>()]) {
        let grammar = ID_RE.is_match(&s);
        prop_assert_eq!(s.parse::<ProjectId>().is_ok(), grammar, "{:?}", s);
        prop_assert_eq!(s.parse::<RepositoryId>().is_ok(), grammar, "{:?}", s);
    }

    #[test]
    fn secret_ids_follow_their_rule(s in prop_oneof!["[A-Za-z0-9_.-]{0,8}", "a{250,260}", any::<String>()]) {
        let grammar = SECRET_ID_RE.is_match(&s);
        prop_assert_eq!(s.parse::<SecretId>().is_ok(), grammar, "{:?}", s);
    }

    #[test]
    fn secret_version_names_round_trip(s in near_secret_version()) {
        let parts: Vec<&str> = s.split('/').collect();
        let version_ok = parts.len() == 6 && (parts[5] == "latest"
            || (!parts[5].starts_with('0')
                && parts[5].bytes().all(|b| b.is_ascii_digit())
                && parts[5].parse::<i64>().is_ok_and(|n| n > 0)));
        let expected = parts.len() == 6
            && ID_RE.is_match(parts[1])
            && SECRET_ID_RE.is_match(parts[3])
            && version_ok;
        match s.parse::<SecretVersionName>() {
            Ok(name) => {
                prop_assert!(expected, "{:?}", s);
                prop_assert_eq!(name.to_string(), s.clone());
                prop_assert_eq!(name.secret.to_string().parse::<SecretName>().ok(), Some(name.secret.clone()));
                if let VersionId::Number(n) = name.version {
                    prop_assert!(n >= 1);
                }
            }
            Err(_) => prop_assert!(!expected, "{:?}", s),
        }
    }

    #[test]
    fn digests_round_trip_and_never_accept_bad_hex(s in near_digest()) {
        if let Ok(digest) = s.parse::<Digest>() {
            prop_assert_eq!(digest.to_string(), s.clone());
            let (algorithm, hex) = s.split_once(':').unwrap();
            prop_assert_eq!(algorithm, digest.algorithm().name());
            prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert_eq!(hex.len(), match algorithm { "sha512" => 128, _ => 64 });
        }
    }

    #[test]
    fn references_are_a_tag_or_a_digest(s in prop_oneof![near_tag(), near_digest()]) {
        match s.parse::<Reference>() {
            Ok(Reference::Tag(t)) => prop_assert_eq!(t.to_string(), s),
            Ok(Reference::Digest(d)) => prop_assert_eq!(d.to_string(), s),
            Err(_) => prop_assert!(s.parse::<Tag>().is_err() && s.parse::<Digest>().is_err()),
        }
    }

    #[test]
    fn image_paths_split_into_valid_parts(s in near_name()) {
        if let Ok(path) = s.parse::<ImagePath>() {
            prop_assert_eq!(path.to_string(), s);
            prop_assert!(NAME_RE.is_match(path.image.as_str()));
        }
    }

    #[test]
    fn ranges_resolve_inside_the_object(
        header in prop_oneof![
            "bytes=[0-9]{0,22}-[0-9]{0,22}",
            "(bytes|items)=[0-9 ,-]{0,30}",
            " ?bytes=-?[0-9]{0,5}(,[0-9]{0,3}-[0-9]{0,3})?",
            any::<String>(),
        ],
        size in prop_oneof![Just(0u64), 1u64..4096, Just(u64::MAX), any::<u64>()],
    ) {
        if let Ok(range) = parse_range(&header, size) {
            prop_assert!(range.start <= range.end, "{:?} {}", header, size);
            prop_assert!(range.end < size, "{:?} {}", header, size);
            prop_assert_eq!(range.len(), range.end - range.start + 1);
        }
    }

    #[test]
    fn chunk_ranges_are_ordered_and_agree_with_the_length(
        value in prop_oneof![
            "(bytes[ =])?[0-9]{0,21}-[0-9]{0,21}(/[0-9*]{0,4})?",
            "0-18446744073709551615",
            "[0-9 /=-]{0,30}",
            any::<String>(),
        ],
        length in prop_oneof![Just(None), (0u64..64).prop_map(Some), any::<u64>().prop_map(Some)],
    ) {
        if let Ok(range) = parse_chunk_range(&value, length) {
            prop_assert!(range.start <= range.end, "{:?}", value);
            let declared = (range.end - range.start).checked_add(1);
            prop_assert!(declared.is_some(), "{:?}", value);
            if let Some(length) = length {
                prop_assert_eq!(declared, Some(length), "{:?}", value);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_manifest_parser(
        content_type in proptest::option::of(prop_oneof![
            Just("application/vnd.oci.image.manifest.v1+json".to_owned()),
            Just("application/vnd.oci.image.index.v1+json".to_owned()),
            Just("application/vnd.docker.distribution.manifest.v2+json".to_owned()),
            any::<String>(),
        ]),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = Manifest::parse(content_type.as_deref(), &bytes);
    }

    #[test]
    fn manifests_shaped_like_the_real_thing(doc in manifest_like(), with_header in any::<bool>()) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        let header = doc.get("mediaType").and_then(Value::as_str).filter(|_| with_header);
        if let Ok(manifest) = Manifest::parse(header, &bytes) {
            prop_assert!(bytes.len() <= MAX_MANIFEST_BYTES);
            // What the registry will link is exactly what the document lists.
            match manifest.kind {
                ManifestKind::Image => {
                    let layers = doc["layers"].as_array().map_or(0, Vec::len);
                    prop_assert_eq!(manifest.blobs.len(), layers + 1);
                    prop_assert!(manifest.manifests.is_empty());
                }
                ManifestKind::Index => {
                    prop_assert_eq!(manifest.manifests.len(), doc["manifests"].as_array().unwrap().len());
                    prop_assert!(manifest.blobs.is_empty());
                }
            }
        }
    }
}

/// JSON documents with the keys of real manifests and values of every shape.
fn manifest_like() -> impl Strategy<Value = Value> {
    let media_type = prop_oneof![
        Just(json!("application/vnd.oci.image.manifest.v1+json")),
        Just(json!("application/vnd.oci.image.index.v1+json")),
        Just(json!(
            "application/vnd.docker.distribution.manifest.v2+json"
        )),
        Just(json!(
            "application/vnd.docker.distribution.manifest.list.v2+json"
        )),
        Just(json!(
            "application/vnd.docker.distribution.manifest.v1+json"
        )),
        Just(json!(7)),
        Just(Value::Null),
    ];
    let digest = prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| json!(format!("sha256:{h}"))),
        "[0-9a-f]{128}".prop_map(|h| json!(format!("sha512:{h}"))),
        near_digest().prop_map(Value::from),
        Just(json!(1)),
    ];
    let size = prop_oneof![
        any::<u64>().prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!("12")),
    ];
    let descriptor = (media_type.clone(), digest, size, any::<bool>()).prop_map(
        |(media_type, digest, size, platform)| {
            let mut d = json!({"mediaType": media_type, "digest": digest, "size": size});
            if platform {
                d["platform"] = json!({"architecture": "amd64", "os": "linux"});
            }
            d
        },
    );
    let descriptors = proptest::collection::vec(descriptor.clone(), 0..6);
    (
        prop_oneof![
            Just(json!(2)),
            Just(json!(1)),
            Just(Value::Null),
            Just(json!("2"))
        ],
        media_type,
        proptest::option::of(descriptor.clone()),
        proptest::option::of(descriptors.clone()),
        proptest::option::of(descriptors),
        proptest::option::of(descriptor),
        proptest::option::of(any::<String>()),
    )
        .prop_map(
            |(schema, media_type, config, layers, manifests, subject, artifact_type)| {
                let mut doc = json!({"schemaVersion": schema, "mediaType": media_type});
                let fields = [
                    ("config", config),
                    ("layers", layers.map(Value::from)),
                    ("manifests", manifests.map(Value::from)),
                    ("subject", subject),
                    ("artifactType", artifact_type.map(Value::from)),
                ];
                for (key, value) in fields {
                    if let Some(value) = value {
                        doc[key] = value;
                    }
                }
                doc
            },
        )
}
