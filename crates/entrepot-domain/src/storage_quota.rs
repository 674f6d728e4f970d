//! Storage quotas: sizes as people write them (`10GiB`, `500MB`, `1048576`)
//! and as they read them back.

/// Why a size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a size; write a number of bytes with an optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 10GiB")]
pub struct SizeError(pub String);

/// Bytes of `10GiB`, `1.5GiB`, `500MB`, `1024` (bytes). Units are case
/// insensitive; `K`, `M`, `G`, `T` alone are the binary units, as in
/// `gcloud`'s sizes.
pub fn parse_byte_size(text: &str) -> Result<u64, SizeError> {
    let bad = || SizeError(text.to_owned());
    let t = text.trim();
    let split = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(t.len(), |(i, _)| i);
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    match number.split_once('.') {
        None => number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(bad),
        Some((whole, fraction)) => {
            if fraction.is_empty() || fraction.len() > 9 || scale == 1 {
                return Err(bad());
            }
            let whole: u64 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| bad())?
            };
            let digits: u64 = fraction.parse().map_err(|_| bad())?;
            let denominator = 10_u64.pow(fraction.len() as u32);
            let part = u128::from(digits) * u128::from(scale) / u128::from(denominator);
            whole
                .checked_mul(scale)
                .and_then(|w| w.checked_add(u64::try_from(part).ok()?))
                .ok_or_else(bad)
        }
    }
}

/// `bytes` for people: `10.0 GiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_byte_size("10gib"), Ok(10 << 30));
        assert_eq!(parse_byte_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_byte_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_byte_size("1024"), Ok(1024));
        assert_eq!(parse_byte_size("2M"), Ok(2 << 20));
        for bad in [
            "",
            "GiB",
            "-1",
            "1.5",
            "10 parsecs",
            "99999999999TiB",
            "1..5G",
        ] {
            assert!(parse_byte_size(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(10 << 30), "10.0 GiB");
    }
}
