//! Settings of the off-chain binaries: a TOML file, then `<PREFIX><KEY>` environment
//! variables over it (integers as integers, anything else as a string), then each binary's
//! defaults (`#[serde(default)]`).
use std::path::Path;

use anyhow::{Context, Result};

/// The file's table (empty without a file) with the environment's overrides for `prefix`;
/// `skip` names keys the binary reads itself (such as `config`, the file's own path).
pub fn overlay(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
    skip: &[&str],
) -> Result<toml::Table> {
    let mut table = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("read {}", path.display()))?
            .parse::<toml::Table>()
            .with_context(|| format!("parse {}", path.display()))?,
        None => toml::Table::new(),
    };
    for (key, value) in env {
        let Some(name) = key.strip_prefix(prefix) else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let value = match value.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => toml::Value::String(value),
        };
        table.insert(name, value);
    }
    Ok(table)
}
