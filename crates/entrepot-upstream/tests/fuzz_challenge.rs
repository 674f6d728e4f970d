//! Property-based fuzzing of the `WWW-Authenticate` parser, which reads what an
//! upstream (or anything on the path to it) sends. `PROPTEST_CASES` sets the
//! number of cases (256 by default); see `docs/security.md` for long runs.

#![allow(clippy::unwrap_used, missing_docs)]

use entrepot_upstream::challenge::{parse, Challenge};
use proptest::prelude::*;

/// A quoted-string per RFC 9110: `"` and `\` escaped with a backslash.
fn quote(value: &str) -> String {
    let mut quoted = String::from("\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Parameter values as registries send them, and hostile ones: commas, quotes,
/// backslashes, `=` and non-ASCII inside the quotes.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "https://[a-z.]{1,20}(:[0-9]{1,5})?/[a-z/]{0,20}",
        "repository:[a-z/]{1,20}:(pull|push|pull,push)",
        "[^\\s][ -~]{0,40}[^\\s]",
        "[^\\s]{1,3}",
    ]
}

fn spell_scheme(scheme: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), scheme.len()).prop_map(move |upper| {
        scheme
            .chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

proptest! {
    #[test]
    fn any_header_value_is_parsed_without_panic(header in any::<String>()) {
        let _ = parse(&header);
    }

    #[test]
    fn near_miss_headers_are_parsed_without_panic(
        header in "(Bearer|Basic|bearer|Digest)? ?([a-z]{0,6}=(\"[^\"]{0,10}\"?|[a-z,\\\\]{0,6}),? ?){0,5}"
    ) {
        if let Some(Challenge::Bearer { realm, .. }) = parse(&header) {
            // A realm is only ever taken from a `realm=` parameter.
            prop_assert!(header.to_ascii_lowercase().contains("realm="), "{:?}", header);
            prop_assert!(!realm.contains('"') || header.contains("\\\""), "{:?}", header);
        }
    }

    #[test]
    fn bearer_parameters_come_back_exactly(
        scheme in spell_scheme("Bearer"),
        realm in value(),
        service in proptest::option::of(value()),
        scope in proptest::option::of(value()),
        extra in proptest::option::of(value()),
        order in Just(()).prop_perturb(|_, mut rng| rng.next_u32()),
        key_upper in any::<bool>(),
    ) {
        let key = |k: &str| if key_upper { k.to_ascii_uppercase() } else { k.to_owned() };
        let mut params = vec![format!("{}={}", key("realm"), quote(&realm))];
        if let Some(service) = &service {
            params.push(format!("{}={}", key("service"), quote(service)));
        }
        if let Some(scope) = &scope {
            params.push(format!("{}={}", key("scope"), quote(scope)));
        }
        if let Some(extra) = &extra {
            params.push(format!("error={}", quote(extra)));
        }
        let n = params.len();
        params.rotate_left(order as usize % n);
        let header = format!("{scheme} {}", params.join(","));
        prop_assert_eq!(
            parse(&header),
            Some(Challenge::Bearer { realm, service, scope }),
            "{}", header
        );
    }

    #[test]
    fn basic_is_basic_whatever_follows(scheme in spell_scheme("Basic"), rest in any::<String>()) {
        prop_assert_eq!(parse(&format!("{scheme} {rest}")), Some(Challenge::Basic));
    }
}
