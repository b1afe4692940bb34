//! GridTokenX bridge: the IEEE 2030.5 server beside the campus meters. It accepts readings
//! only from registered meters over mutual TLS, stores every accepted reading durably, and
//! signs attested batches for the keeper. The simulated meters and the benchmarks live in
//! the `simulator` crate; the 2030.5 documents, which both use, in `sep2`.
//!
//! Modules: `tls` (rustls, CCM-8, device certificate verifier), `server` (accept loop, HTTP),
//! `service` (IEEE 2030.5 resources), `xml` (documents), `normalize` (readings to Wh),
//! `store` (redb), `attestor` (signed batches), `keeper_api` (the keeper's local interface),
//! `directory` (known meters), `config` (settings), `clock` (the Time resource).
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub mod attestor;
pub mod clock;
pub mod config;
pub mod directory;
pub mod keeper_api;
pub mod normalize;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
/// The IEEE 2030.5 documents (the `sep2` crate, shared with the simulator).
pub use sep2 as xml;

/// Writes a secret (key, token) readable only by its owner; never replaces an existing file.
/// The file and then its directory are fsync'd, so that a crash cannot lose a key that was
/// already handed out (or leave a directory entry without its contents).
pub fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("create {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    sync_parent_dir(path)
}

/// Fsyncs the directory holding `path`, making its creation durable.
pub fn sync_parent_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| anyhow::anyhow!("fsync directory {}: {e}", dir.display()))
}
