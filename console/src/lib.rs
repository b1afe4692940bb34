//! The campus console: a read-only JSON API of the campus and the live campus page, for
//! the energy office and the building managers.
//!
//! A [`collect::Collector`] reads the campus from the chain (any `sdk::chain::Chain`: a
//! cluster's JSON-RPC, polled every `refresh_s`, or the embedded chain of the campus day)
//! and the bridge's keeper interface into a [`model::Snapshot`]; the
//! [`server`] renders each snapshot once and answers every request from memory, and pushes
//! it to the page over server-sent events.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

pub mod collect;
pub mod model;
pub mod server;

pub use collect::Collector;
pub use model::Snapshot;

/// `console.toml` (every key also `GRIDTOKENX_CONSOLE_<KEY>`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where the API and the page listen. Loopback by default: the page is public data
    /// (the chain's), but put a reverse proxy with TLS in front to serve it further.
    pub listen: SocketAddr,
    /// The cluster's JSON-RPC URL.
    pub rpc_url: String,
    /// Seconds between reads of the chain.
    pub refresh_s: u64,
    /// A meter whose last reading on chain is older than this is `silent` (half: `late`).
    pub silent_after_s: i64,
    /// The campus file and PKI directory give the buildings' codes (by their device
    /// certificates' LFDIs); without them buildings are shown by their meter index.
    pub campus_config: Option<PathBuf>,
    pub pki_dir: Option<PathBuf>,
    /// The bridge's keeper interface (its attestation status and local deny list), with
    /// the keeper token file; both or neither.
    pub bridge: Option<SocketAddr>,
    pub bridge_token_file: Option<PathBuf>,
    /// With TLS on the keeper interface: the campus CA certificate (PEM) and the name the
    /// bridge's certificate carries.
    pub bridge_ca_file: Option<PathBuf>,
    pub bridge_server_name: Option<String>,
    /// The history database (PostgreSQL, filled by the `exporter`): a libpq connection
    /// string or URL. Set, `/api/v1/history/...` answers from it; unset, those routes say
    /// there is none (the console itself needs no database).
    pub history_url: Option<String>,
    /// `text` or `json` logs.
    pub log_format: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            listen: "127.0.0.1:8090".parse().expect("an address"),
            rpc_url: "http://127.0.0.1:8899".into(),
            refresh_s: 2,
            silent_after_s: 1_800,
            campus_config: None,
            pki_dir: None,
            bridge: None,
            bridge_token_file: None,
            bridge_ca_file: None,
            bridge_server_name: None,
            history_url: None,
            log_format: "text".into(),
        }
    }
}

impl ConsoleConfig {
    /// The file (if any) with the environment's overrides.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ConsoleConfig> {
        let table = sdk::settings::overlay(file, env, "GRIDTOKENX_CONSOLE_", &["config"])?;
        let config: ConsoleConfig = table.try_into().context("console settings")?;
        anyhow::ensure!(config.refresh_s >= 1, "refresh_s must be at least 1");
        anyhow::ensure!(
            config.bridge.is_some() == config.bridge_token_file.is_some(),
            "bridge and bridge_token_file go together (the keeper interface needs its token)"
        );
        anyhow::ensure!(
            config.campus_config.is_some() == config.pki_dir.is_some(),
            "campus_config and pki_dir go together (codes come from the device certificates)"
        );
        Ok(config)
    }

    /// Building codes by LFDI, from the campus file and PKI.
    pub fn names(&self) -> Result<HashMap<registry::identity::Lfdi, String>> {
        match (&self.campus_config, &self.pki_dir) {
            (Some(campus), Some(pki)) => Ok(names(&cli::Buildings::load(
                &sdk::settings::expand_home(campus),
                &sdk::settings::expand_home(pki),
            )?)),
            _ => Ok(HashMap::new()),
        }
    }

    /// The campus's time zone: the campus file's `[site] time_zone` (`campus_config`, else
    /// `migrations/campus.toml` where it exists), else the seeds' campus (`Asia/Bangkok`).
    pub fn time_zone(&self) -> Result<String> {
        let path = match &self.campus_config {
            Some(campus) => Some(sdk::settings::expand_home(campus)),
            None => Some(sdk::CampusConfig::default_path()).filter(|p| p.exists()),
        };
        match path {
            Some(path) => Ok(sdk::CampusConfig::load(&path)?.site.time_zone),
            None => Ok(sdk::Site::default().time_zone),
        }
    }

    /// The bridge's keeper interface, if configured.
    pub fn bridge_client(&self) -> Result<Option<keeper::bridge_api::BridgeClient>> {
        let (Some(addr), Some(token_file)) = (self.bridge, &self.bridge_token_file) else {
            return Ok(None);
        };
        let path = sdk::settings::expand_home(token_file);
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("bridge token file {}", path.display()))?
            .trim()
            .to_string();
        Ok(Some(match &self.bridge_ca_file {
            None => keeper::bridge_api::BridgeClient::new(addr, token),
            Some(ca) => {
                let path = sdk::settings::expand_home(ca);
                let pem = std::fs::read_to_string(&path)
                    .with_context(|| format!("bridge CA {}", path.display()))?;
                keeper::bridge_api::BridgeClient::with_tls(
                    addr,
                    token,
                    &pem,
                    self.bridge_server_name.as_deref(),
                )?
            }
        }))
    }
}

/// Building codes by LFDI.
pub fn names(buildings: &cli::Buildings) -> HashMap<registry::identity::Lfdi, String> {
    buildings
        .buildings
        .iter()
        .map(|(code, lfdi)| (*lfdi, code.clone()))
        .collect()
}

/// Reads the chain every `every` and publishes what it read, until `stop` resolves. A
/// failed read is logged (once per change of reason) and the last snapshot stays served.
pub async fn poll<C: sdk::chain::Chain>(
    chain: &mut C,
    collector: &mut Collector,
    publisher: &server::Publisher,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut last_error: Option<String> = None;
    loop {
        match collector.read(chain).await {
            Ok(snapshot) => {
                if last_error.take().is_some() {
                    tracing::info!("the chain is read again");
                }
                if let Err(e) = publisher.publish(&snapshot) {
                    tracing::error!(error = %format!("{e:#}"), "publish");
                }
                tracing::debug!(
                    version = snapshot.version,
                    read_ms = snapshot.campus.read_ms,
                    buildings = snapshot.buildings.len(),
                    "snapshot"
                );
            }
            Err(e) => {
                let reason = sdk::settings::redact_urls_in(&format!("{e:#}"));
                if last_error.as_deref() != Some(&reason) {
                    tracing::warn!(error = %reason, "read the campus (the last snapshot stays served)");
                    last_error = Some(reason);
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
