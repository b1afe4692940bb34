//! The exporter's settings: a TOML file, then `GRIDTOKENX_EXPORTER_<KEY>` environment
//! variables over it (e.g. `GRIDTOKENX_EXPORTER_DATABASE_URL=host=/run/postgresql
//! dbname=gridtokenx`), then defaults.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, ensure, Result};
use serde::Deserialize;

pub const ENV_PREFIX: &str = "GRIDTOKENX_EXPORTER_";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExporterConfig {
    /// The history database: a libpq connection string (`host=/run/postgresql
    /// dbname=gridtokenx user=gridtokenx`) or URL (`postgresql://user@host/db`). Without
    /// TLS: a database on this host or the operator's own network.
    pub database_url: String,
    /// The bridge's keeper interface (its export queue and signed batches); the bridge must
    /// run with `export_queue = true`. Unset (the default): readings and batches are not
    /// exported, only the programs' events.
    pub bridge: Option<SocketAddr>,
    /// The bridge's keeper token (`<bridge data_dir>/keeper.token`, mode 0600).
    pub bridge_token_file: PathBuf,
    /// The campus CA, for a bridge serving its keeper interface over TLS (`keeper_tls`).
    pub bridge_ca: Option<PathBuf>,
    pub bridge_server_name: Option<String>,
    /// The cluster's JSON-RPC endpoint, for the programs' events. Unset: no events.
    pub rpc_url: Option<String>,
    /// Seconds between passes of a source that is caught up.
    pub poll_interval_s: u64,
    /// Readings per page (one database transaction), 1 to 20,000.
    pub readings_per_page: usize,
    /// Batches per page, 1 to 1,000.
    pub batches_per_page: usize,
    /// Transactions read per program per pass.
    pub transactions_per_read: usize,
    /// Days of history kept; older days are dropped whole, once a day. 0: kept forever.
    pub retention_days: u32,
    /// Prometheus `/metrics`, `/ready`, `/health`.
    pub metrics_listen: SocketAddr,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            database_url: "host=/var/run/postgresql dbname=gridtokenx".into(),
            bridge: None,
            bridge_token_file: PathBuf::from("bridge-data/keeper.token"),
            bridge_ca: None,
            bridge_server_name: None,
            rpc_url: Some("http://127.0.0.1:8899".into()),
            poll_interval_s: 5,
            readings_per_page: 10_000,
            batches_per_page: 500,
            transactions_per_read: 10_000,
            retention_days: 0,
            metrics_listen: "127.0.0.1:9647".parse().expect("address"),
        }
    }
}

impl ExporterConfig {
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ExporterConfig> {
        let table = sdk::settings::overlay(file, env, ENV_PREFIX, &["config", "log_format"])?;
        let config: ExporterConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("exporter configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            !self.database_url.trim().is_empty(),
            "database_url is empty"
        );
        ensure!(
            (1..=keeper_protocol::MAX_EXPORT_PAGE).contains(&self.readings_per_page),
            "readings_per_page must be 1 to {}",
            keeper_protocol::MAX_EXPORT_PAGE
        );
        ensure!(
            (1..=1_000).contains(&self.batches_per_page),
            "batches_per_page must be 1 to 1000"
        );
        ensure!(
            self.transactions_per_read > 0,
            "transactions_per_read must be positive"
        );
        ensure!(self.poll_interval_s > 0, "poll_interval_s must be positive");
        if let Some(url) = &self.rpc_url {
            ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "rpc_url must be an http(s) URL, not {url:?}"
            );
        }
        ensure!(
            self.bridge.is_some() || self.rpc_url.is_some(),
            "neither bridge nor rpc_url is set: nothing to export"
        );
        Ok(())
    }

    /// The client of the bridge's keeper interface, as the keeper makes it (token mode
    /// checked, TLS with `bridge_ca`); `None` without a bridge.
    pub fn bridge_client(&self) -> Result<Option<keeper::bridge_api::BridgeClient>> {
        let Some(bridge) = self.bridge else {
            return Ok(None);
        };
        let as_keeper = keeper::config::KeeperConfig {
            bridge,
            bridge_token_file: self.bridge_token_file.clone(),
            bridge_ca: self.bridge_ca.clone(),
            bridge_server_name: self.bridge_server_name.clone(),
            ..Default::default()
        };
        as_keeper.bridge_client().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_the_defaults_with_the_bridge_beside_it() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("exporter.example.toml");
        let c = ExporterConfig::load(Some(&example), Vec::new()).unwrap();
        assert_eq!(
            c,
            ExporterConfig {
                bridge: Some("127.0.0.1:8444".parse().unwrap()),
                ..ExporterConfig::default()
            }
        );
    }

    #[test]
    fn environment_overrides_the_file_and_bad_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exporter.toml");
        std::fs::write(
            &file,
            "database_url = \"host=/tmp dbname=a\"\nreadings_per_page = 500\n",
        )
        .unwrap();
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let c = ExporterConfig::load(
            Some(&file),
            env(&[
                ("GRIDTOKENX_EXPORTER_READINGS_PER_PAGE", "700"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.database_url.as_str(), c.readings_per_page),
            ("host=/tmp dbname=a", 700)
        );
        for bad in [
            ("GRIDTOKENX_EXPORTER_READINGS_PER_PAGE", "0"),
            ("GRIDTOKENX_EXPORTER_READINGS_PER_PAGE", "20001"),
            ("GRIDTOKENX_EXPORTER_RPC_URL", "ftp://x"),
            ("GRIDTOKENX_EXPORTER_NO_SUCH_KEY", "1"),
        ] {
            assert!(
                ExporterConfig::load(Some(&file), env(&[bad])).is_err(),
                "{bad:?}"
            );
        }
    }
}
