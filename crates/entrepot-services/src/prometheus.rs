//! Small building blocks of the Prometheus text exposition format (0.0.4):
//! metric family headers, label escaping, labelled counters and histograms.
//! Every family is written with its `# HELP` and `# TYPE` lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Latency buckets in seconds, from a cached manifest to a cold large blob.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Write the `# HELP` and `# TYPE` lines of a family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped for the text format (backslash, quote, newline).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `{a="x",b="y"}` for label names and values (empty for no labels).
pub fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A counter per label set. Label values are bounded by the caller (route
/// classes, methods, statuses, outcomes), never taken from user input as is.
#[derive(Default)]
pub struct CounterFamily {
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterFamily {
    /// Add `n` to the counter of `values`.
    pub fn add(&self, values: &[&str], n: u64) {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let mut map = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(key).or_insert(0) += n;
    }

    /// The counter of `values` (0 if never added to).
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        self.values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Write the family: header and one sample per label set.
    pub fn render(&self, out: &mut String, name: &str, help: &str, names: &[&str]) {
        family(out, name, "counter", help);
        let map = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (values, n) in map.iter() {
            let pairs: Vec<(&str, &str)> = names
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            let _ = writeln!(out, "{name}{} {n}", labels(&pairs));
        }
    }
}

/// One histogram's buckets, sum and count.
struct Buckets {
    counts: Vec<AtomicU64>,
    /// The sum of observations, as f64 bits.
    sum: AtomicU64,
    count: AtomicU64,
}

impl Buckets {
    fn new(n: usize) -> Self {
        Self {
            counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, bounds: &[f64], value: f64) {
        if let Some(i) = bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }
}

/// A histogram per label set, with fixed bucket bounds.
pub struct HistogramFamily {
    bounds: &'static [f64],
    values: Mutex<BTreeMap<Vec<String>, std::sync::Arc<Buckets>>>,
}

impl HistogramFamily {
    /// A histogram family with these upper bounds (ascending; `+Inf` is
    /// implied).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Record one observation under `values`.
    pub fn observe(&self, values: &[&str], value: f64) {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let buckets = {
            let mut map = self
                .values
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(key)
                .or_insert_with(|| std::sync::Arc::new(Buckets::new(self.bounds.len())))
                .clone()
        };
        buckets.observe(self.bounds, value);
    }

    /// Write the family: header, cumulative `_bucket`s, `_sum` and `_count`
    /// per label set.
    pub fn render(&self, out: &mut String, name: &str, help: &str, names: &[&str]) {
        family(out, name, "histogram", help);
        let map = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (values, buckets) in map.iter() {
            let pairs: Vec<(&str, &str)> = names
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            let mut cumulative = 0;
            for (bound, count) in self.bounds.iter().zip(&buckets.counts) {
                cumulative += count.load(Ordering::Relaxed);
                let le = format!("{bound}");
                let mut with_le = pairs.clone();
                with_le.push(("le", &le));
                let _ = writeln!(out, "{name}_bucket{} {cumulative}", labels(&with_le));
            }
            let total = buckets.count.load(Ordering::Relaxed);
            let mut with_le = pairs.clone();
            with_le.push(("le", "+Inf"));
            let _ = writeln!(out, "{name}_bucket{} {total}", labels(&with_le));
            let sum = f64::from_bits(buckets.sum.load(Ordering::Relaxed));
            let _ = writeln!(out, "{name}_sum{} {sum}", labels(&pairs));
            let _ = writeln!(out, "{name}_count{} {total}", labels(&pairs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counted() {
        let h = HistogramFamily::new(&[0.1, 1.0]);
        h.observe(&["a"], 0.05);
        h.observe(&["a"], 0.5);
        h.observe(&["a"], 5.0);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "X.", &["k"]);
        assert!(
            out.contains("x_seconds_bucket{k=\"a\",le=\"0.1\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{k=\"a\",le=\"1\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{k=\"a\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_count{k=\"a\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum{k=\"a\"} 5.55\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\n")]), "{a=\"x\\\"y\\\\z\\n\"}");
    }
}
