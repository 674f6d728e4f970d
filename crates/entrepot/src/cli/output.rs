//! How every CLI read command prints: `--format=table` (the default:
//! aligned columns for lists, aligned `key: value` lines for one
//! resource), `--format=json` (the API's answer, pretty-printed) or
//! `--format=yaml` (the same data as YAML). And how destructive commands
//! ask before they act (`--quiet` skips the question).

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::ClientError;

/// An output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns (lists) or aligned `key: value` lines (one resource).
    #[default]
    Table,
    /// JSON, as the admin API answers.
    Json,
    /// YAML.
    Yaml,
}

/// `--format`, flattened into every read command.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct FormatArg {
    /// Output format: table (default), json or yaml.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// `--quiet`, flattened into every destructive command.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct QuietArg {
    /// Do not ask for confirmation (needed when standard input is not a
    /// terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// One column of a table: its header and how to read a cell from an item.
pub struct Column {
    header: &'static str,
    cell: Box<dyn Fn(&Value) -> String>,
}

impl Column {
    /// A column whose cell is `cell(item)`.
    pub fn new(header: &'static str, cell: impl Fn(&Value) -> String + 'static) -> Self {
        Self {
            header,
            cell: Box::new(cell),
        }
    }

    /// A column showing the item's field at `pointer` (a JSON pointer such
    /// as `/remoteRepositoryConfig/upstream`), empty when absent.
    pub fn field(header: &'static str, pointer: &'static str) -> Self {
        Self::new(header, move |item| {
            item.pointer(pointer).map(scalar).unwrap_or_default()
        })
    }
}

/// A value as one table cell: strings bare, arrays joined with `,`, null
/// empty.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// The last segment of a resource name (`projects/p/repositories/r` → `r`).
pub fn last_segment(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_owned()
}

/// A byte count for people: `1536` → `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
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

/// A size field (an int64 decimal string, or a number) for people.
pub fn size_cell(value: Option<&Value>) -> String {
    let bytes = match value {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    bytes.map(human_bytes).unwrap_or_default()
}

/// Render a list: a table of `columns`, or the items as a JSON or YAML
/// array.
pub fn render_list(format: OutputFormat, items: &[Value], columns: &[Column]) -> String {
    match format {
        OutputFormat::Json => pretty_json(&Value::Array(items.to_vec())),
        OutputFormat::Yaml => yaml(&Value::Array(items.to_vec())),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| columns.iter().map(|c| (c.cell)(item)).collect())
                .collect();
            table(&columns.iter().map(|c| c.header).collect::<Vec<_>>(), &rows)
        }
    }
}

/// Print a list (see [`render_list`]).
pub fn print_list(format: OutputFormat, items: &[Value], columns: &[Column]) {
    print!("{}", render_list(format, items, columns));
}

/// Render one resource: aligned `key: value` lines (nested fields as
/// dotted keys), or JSON, or YAML.
pub fn render_item(format: OutputFormat, item: &Value) -> String {
    match format {
        OutputFormat::Json => pretty_json(item),
        OutputFormat::Yaml => yaml(item),
        OutputFormat::Table => {
            let mut rows = Vec::new();
            flatten("", item, &mut rows);
            let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            let mut out = String::new();
            for (key, value) in rows {
                let _ = writeln!(
                    out,
                    "{:width$}  {value}",
                    format!("{key}:"),
                    width = width + 1
                );
            }
            out
        }
    }
}

/// Print one resource (see [`render_item`]).
pub fn print_item(format: OutputFormat, item: &Value) {
    print!("{}", render_item(format, item));
}

/// Aligned columns: every column as wide as its widest cell, two spaces
/// between, the last column not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                let pad = widths[i] - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            } else {
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn pretty_json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&key(k), v, rows);
            }
        }
        Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, rows);
            }
        }
        other => rows.push((prefix.to_owned(), scalar(other))),
    }
}

/// YAML for a JSON value: block style, strings bare unless they would read
/// back as something else (then JSON-quoted, which YAML accepts).
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Array(items) if items.is_empty() => out.push_str("[]\n"),
        Value::Object(map) if map.is_empty() => out.push_str("{}\n"),
        Value::Array(_) | Value::Object(_) => yaml_block(value, 0, &mut out),
        other => {
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
    out
}

fn yaml_block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = yaml_string(k);
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        let _ = writeln!(out, "{pad}{key}:");
                        yaml_block(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let _ = writeln!(out, "{pad}{key}:");
                        yaml_block(v, indent, out);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}{key}: {}", yaml_scalar(v));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key on the dash's line, the others under it.
                        let mut inner = String::new();
                        yaml_block(item, indent + 2, &mut inner);
                        let first = inner.get(indent + 2..).unwrap_or("");
                        let _ = write!(out, "{pad}- {first}");
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let _ = writeln!(out, "{pad}-");
                        yaml_block(item, indent + 2, out);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}- {}", yaml_scalar(item));
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", yaml_scalar(other));
        }
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn yaml_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.trim() == s
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`~".contains(c))
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && s.chars().all(|c| !c.is_control())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
        && s.parse::<f64>().is_err()
        && !s.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+');
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// Ask before a destructive command: go on with `--quiet`; otherwise ask
/// on the terminal (`y` goes on), and refuse without one.
pub fn confirm(quiet: QuietArg, what: &str) -> Result<(), ClientError> {
    if quiet.quiet {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(ClientError::NotConfirmed(format!(
            "{} Standard input is not a terminal, so nobody can confirm: pass --quiet (-q) to go ahead without asking", what.trim_end()
        )));
    }
    eprint!("{what}\nDo you want to continue (y/N)? ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| ClientError::NotConfirmed(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(ClientError::NotConfirmed("aborted by the user".into()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_every_column_but_the_last() {
        let shown = table(
            &["NAME", "SIZE", "NOTE"],
            &[
                vec!["a".into(), "1.0 KiB".into(), "x".into()],
                vec!["longer-name".into(), "2 B".into(), "".into()],
            ],
        );
        assert_eq!(
            shown,
            "NAME         SIZE     NOTE\na            1.0 KiB  x\nlonger-name  2 B\n"
        );
    }

    #[test]
    fn yaml_quotes_what_would_read_back_otherwise() {
        let shown = yaml(&json!({
            "name": "projects/p/repositories/r",
            "digest": "sha256:abc",
            "size": "1234",
            "flag": "true",
            "empty": "",
            "tags": ["v1", "latest"],
            "nested": {"a": 1},
            "items": [{"k": "v", "note": null}],
        }));
        assert!(
            shown.contains("name: projects/p/repositories/r\n"),
            "{shown}"
        );
        assert!(shown.contains("digest: sha256:abc\n"), "{shown}");
        assert!(shown.contains("size: \"1234\"\n"), "{shown}");
        assert!(shown.contains("flag: \"true\"\n"), "{shown}");
        assert!(shown.contains("empty: \"\"\n"), "{shown}");
        assert!(shown.contains("tags:\n- v1\n- latest\n"), "{shown}");
        assert!(shown.contains("nested:\n  a: 1\n"), "{shown}");
        assert!(shown.contains("items:\n- k: v\n  note: null\n"), "{shown}");
    }

    #[test]
    fn one_resource_is_flattened_into_aligned_lines() {
        let shown = render_item(
            OutputFormat::Table,
            &json!({"name": "r", "remote": {"upstream": "u"}, "tags": ["a", "b"]}),
        );
        assert_eq!(
            shown,
            "name:             r\nremote.upstream:  u\ntags:             a,b\n"
        );
    }

    #[test]
    fn sizes_are_for_people() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(size_cell(Some(&json!("1048576"))), "1.0 MiB");
        assert_eq!(size_cell(None), "");
    }
}
