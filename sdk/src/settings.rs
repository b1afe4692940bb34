//! Settings of the off-chain binaries: a TOML file, then `<PREFIX><KEY>` environment
//! variables over it (integers as integers, `true`/`false` as booleans, anything else as a
//! string), then each binary's defaults (`#[serde(default)]`).
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
        let value = match (value.parse::<i64>(), value.as_str()) {
            (Ok(n), _) => toml::Value::Integer(n),
            (_, "true") => toml::Value::Boolean(true),
            (_, "false") => toml::Value::Boolean(false),
            _ => toml::Value::String(value),
        };
        table.insert(name, value);
    }
    Ok(table)
}

/// `~/x` as `$HOME/x`, at run time (settings name the user's files without a build
/// machine's home in them).
pub fn expand_home(path: &Path) -> std::path::PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// Reads a keypair file as the Solana CLI writes it (a JSON array of the 64-byte secret and
/// public key); `~/` is the user's home.
pub fn read_keypair(path: &Path) -> Result<solana_keypair::Keypair> {
    let path = expand_home(path);
    solana_keypair::read_keypair_file(&path)
        .map_err(|e| anyhow::anyhow!("keypair {}: {e}", path.display()))
}

/// A URL as logs and status files may show it: scheme, host and port only. RPC providers
/// put API keys in the path, the query or the user info, and logs travel further than
/// settings.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let hidden =
        authority.contains('@') || authority_end < rest.len() && rest[authority_end..] != *"/";
    let mut out = match scheme {
        Some(scheme) => format!("{scheme}://{host}"),
        None => host.to_string(),
    };
    if hidden {
        out.push_str("/…");
    }
    out
}

/// `text` with every http(s) URL in it redacted (see [`redact_url`]): for error messages
/// that quote the URL they failed on.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let candidate = &rest[at..];
        if !(candidate.starts_with("http://") || candidate.starts_with("https://")) {
            out.push_str(&rest[..at + 4]);
            rest = &rest[at + 4..];
            continue;
        }
        out.push_str(&rest[..at]);
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ','))
            .unwrap_or(candidate.len());
        out.push_str(&redact_url(&candidate[..end]));
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

/// Writes `key` (Solana CLI JSON) to `path`, readable by its owner only, in a directory only
/// its owner can enter (made if missing): to a temporary file, fsync'd, then renamed, and the
/// directory fsync'd, so that a crash leaves either no key or a whole one. An existing file
/// is never replaced.
pub fn write_private_keypair(path: &Path, key: &solana_keypair::Keypair) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    anyhow::ensure!(!path.exists(), "{} exists already", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let json = serde_json::to_string(&key.to_bytes().to_vec())?;
    let temporary = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("create {}", temporary.display()))?;
    file.write_all(json.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path).with_context(|| format!("create {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_everything_but_their_host() {
        assert_eq!(redact_url("http://127.0.0.1:8899"), "http://127.0.0.1:8899");
        assert_eq!(
            redact_url("http://127.0.0.1:8899/"),
            "http://127.0.0.1:8899"
        );
        assert_eq!(
            redact_url("https://devnet.helius-rpc.com/?api-key=SECRET"),
            "https://devnet.helius-rpc.com/…"
        );
        assert_eq!(
            redact_url("https://solana-devnet.g.alchemy.com/v2/SECRET"),
            "https://solana-devnet.g.alchemy.com/…"
        );
        assert_eq!(
            redact_url("https://user:SECRET@rpc.example:443"),
            "https://rpc.example:443/…"
        );
        assert!(!redact_url("https://x.example/SECRET?k=SECRET#SECRET").contains("SECRET"));
    }

    #[test]
    fn urls_in_error_messages_are_redacted() {
        let message =
            "error sending request for url (https://devnet.helius-rpc.com/?api-key=SECRET): \
                       connection refused; see http://127.0.0.1:8899 and httpx";
        assert_eq!(
            redact_urls_in(message),
            "error sending request for url (https://devnet.helius-rpc.com/…): connection \
             refused; see http://127.0.0.1:8899 and httpx"
        );
    }

    #[test]
    fn home_is_expanded_at_run_time() {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        if let Some(home) = home {
            assert_eq!(expand_home(Path::new("~/a/b")), home.join("a/b"));
        }
        assert_eq!(expand_home(Path::new("/a/~/b")), Path::new("/a/~/b"));
    }
}
