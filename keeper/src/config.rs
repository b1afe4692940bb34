//! The keeper binary's settings: a TOML file, then `GRIDTOKENX_KEEPER_<KEY>` environment
//! variables over it (e.g. `GRIDTOKENX_KEEPER_RPC_URL=https://api.devnet.solana.com`), then
//! built-in defaults. Relative paths are relative to the working directory.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, ensure, Context, Result};
use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "GRIDTOKENX_KEEPER_";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeeperConfig {
    /// The cluster's JSON-RPC endpoint.
    pub rpc_url: String,
    /// The keypair (Solana CLI JSON) that pays the keeper's transactions. `~/` is the
    /// user's home directory.
    pub wallet: PathBuf,
    /// The bridge's keeper interface.
    pub bridge: SocketAddr,
    /// The bridge's keeper token (`<bridge data_dir>/keeper.token`).
    pub bridge_token_file: PathBuf,
    /// The campus CA (PEM): set it to reach a bridge serving its keeper interface over TLS
    /// (`keeper_tls`); the bridge's certificate is checked against it. Needed for a bridge
    /// on another host: the token is not sent in clear off loopback.
    pub bridge_ca: Option<PathBuf>,
    /// The name the bridge's certificate must carry (a host name or address, as issued by
    /// `campus-pki --bridge-host`); the bridge address's IP if unset.
    pub bridge_server_name: Option<String>,
    /// Seconds between passes.
    pub tick_interval_s: u64,
    /// Seconds a transaction may take to confirm (rebuilt on a new blockhash meanwhile).
    pub confirm_timeout_s: u64,
    /// Seconds between rebroadcasts of an unconfirmed transaction.
    pub rebroadcast_s: u64,
    /// Batch transactions sent and not yet confirmed, at most (1 to the oracle's window).
    pub max_in_flight: usize,
    /// What the keeper keeps between runs (its lookup table's address).
    pub state_file: PathBuf,
    /// The operator's status, rewritten after every pass (JSON).
    pub status_file: PathBuf,
    /// Where Prometheus scrapes `/metrics` (and `/ready`, `/health`): plain HTTP without a
    /// token, so loopback unless the network in between is the operator's own.
    pub metrics_listen: SocketAddr,
    /// SOL under which the payer counts as low: the keeper reports itself not ready (and
    /// exposes the threshold for the alert).
    pub payer_low_sol: f64,
    /// The campus's order delegate (Solana CLI JSON keypair): the key building owners
    /// authorise (`authorize_delegate`) to place their buildings' IEEE 2030.5 flow
    /// reservations as orders. It pays the orders' rent. Unset: flow reservations are
    /// answered as not placed.
    pub order_delegate_keypair: Option<PathBuf>,
    /// Price limits (quote base units per kWh) for flow reservations of buildings without a
    /// PriceResponseCfg: the highest to buy at, the lowest to sell at. Unset: such requests
    /// are answered as not placed.
    pub flow_buy_limit: Option<u64>,
    pub flow_sell_limit: Option<u64>,
}

impl Default for KeeperConfig {
    fn default() -> Self {
        KeeperConfig {
            rpc_url: "http://127.0.0.1:8899".into(),
            wallet: PathBuf::from("~/.config/solana/id.json"),
            bridge: "127.0.0.1:8444".parse().expect("address"),
            bridge_token_file: PathBuf::from("bridge-data/keeper.token"),
            bridge_ca: None,
            bridge_server_name: None,
            tick_interval_s: 10,
            confirm_timeout_s: 90,
            rebroadcast_s: 2,
            max_in_flight: crate::keeper::DEFAULT_MAX_IN_FLIGHT,
            state_file: PathBuf::from("keeper-data/state.json"),
            status_file: PathBuf::from("keeper-data/status.json"),
            metrics_listen: "127.0.0.1:9646".parse().expect("address"),
            payer_low_sol: 0.5,
            order_delegate_keypair: None,
            flow_buy_limit: None,
            flow_sell_limit: None,
        }
    }
}

pub use sdk::settings::expand_home;

impl KeeperConfig {
    /// The file (if any), with the environment's overrides.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<KeeperConfig> {
        let table = sdk::settings::overlay(file, env, ENV_PREFIX, &["config", "log_format"])?;
        let config: KeeperConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("keeper configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.rpc_url.starts_with("http://") || self.rpc_url.starts_with("https://"),
            "rpc_url must be an http(s) URL, not {:?}",
            self.rpc_url
        );
        ensure!(
            self.tick_interval_s > 0 && self.confirm_timeout_s > 0 && self.rebroadcast_s > 0,
            "tick_interval_s, confirm_timeout_s and rebroadcast_s must be positive"
        );
        ensure!(
            (1..=oracle::BATCH_WINDOW as usize).contains(&self.max_in_flight),
            "max_in_flight must be 1 to {} (the oracle's batch window)",
            oracle::BATCH_WINDOW
        );
        ensure!(
            self.bridge.ip().is_loopback() || self.bridge_ca.is_some(),
            "bridge {} is not a loopback address and bridge_ca is not set: the keeper token \
             would cross the network in clear; serve the keeper interface over TLS \
             (the bridge's keeper_tls) and set bridge_ca to the campus CA",
            self.bridge
        );
        ensure!(
            self.payer_low_sol.is_finite() && self.payer_low_sol >= 0.0,
            "payer_low_sol must be a number of SOL, 0 or more"
        );
        ensure!(
            self.bridge_server_name.is_none() || self.bridge_ca.is_some(),
            "bridge_server_name is set without bridge_ca: it only names the bridge's TLS certificate"
        );
        Ok(())
    }

    /// `payer_low_sol` in lamports.
    pub fn payer_low_lamports(&self) -> u64 {
        (self.payer_low_sol * 1e9).round() as u64
    }

    /// The client of the bridge's keeper interface these settings describe: over TLS when
    /// `bridge_ca` is set. Reads the token file and the CA.
    pub fn bridge_client(&self) -> Result<crate::bridge_api::BridgeClient> {
        // The token never leaves this host in clear, however the settings were made.
        self.validate()?;
        let path = &self.bridge_token_file;
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path)
                .with_context(|| format!("bridge token {}", path.display()))?
                .permissions()
                .mode()
        };
        // Whoever holds the token acknowledges batches and tells the bridge the chain's
        // sequence: readable by the keeper's user only, as the bridge writes it.
        anyhow::ensure!(
            mode & 0o077 == 0,
            "bridge token {} may be read by others (mode {:o}): `chmod 600 {}`, and have the \
             bridge make a new one (delete it there and restart) if anyone else could have read it",
            path.display(),
            mode & 0o777,
            path.display()
        );
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("bridge token {}", path.display()))?
            .trim()
            .to_string();
        match &self.bridge_ca {
            None => Ok(crate::bridge_api::BridgeClient::new(self.bridge, token)),
            Some(ca) => {
                let pem = std::fs::read_to_string(ca)
                    .with_context(|| format!("bridge_ca {}", ca.display()))?;
                crate::bridge_api::BridgeClient::with_tls(
                    self.bridge,
                    token,
                    &pem,
                    self.bridge_server_name.as_deref(),
                )
                .with_context(|| format!("bridge_ca {}", ca.display()))
            }
        }
    }

    pub fn policy(&self) -> sdk::chain::SendPolicy {
        sdk::chain::SendPolicy {
            rebroadcast_every: Duration::from_secs(self.rebroadcast_s),
            give_up_after: Duration::from_secs(self.confirm_timeout_s),
        }
    }
}

/// What the keeper keeps between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeeperState {
    /// Its address lookup table, before it kept several (read as table 0, the shared one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_table: Option<String>,
    /// Its address lookup tables, by position (table 0 the shared accounts, then one per
    /// group of meters; null: not created yet).
    #[serde(default)]
    pub lookup_tables: Vec<Option<String>>,
    /// Tables replaced by a rebuild, still to be deactivated and closed (their rent back to
    /// the payer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_lookup_tables: Vec<String>,
}

impl KeeperState {
    pub fn load(path: &Path) -> Result<KeeperState> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeeperState::default()),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    /// The tables' addresses by position (an older state's single table as table 0).
    pub fn lookup_tables(&self) -> Result<Vec<Option<Pubkey>>> {
        let parse = |t: &str| -> Result<Pubkey> {
            t.parse()
                .map_err(|_| anyhow!("lookup table {t:?} is not an address"))
        };
        if self.lookup_tables.is_empty() {
            return Ok(vec![self.lookup_table.as_deref().map(parse).transpose()?]
                .into_iter()
                .flatten()
                .map(Some)
                .collect());
        }
        self.lookup_tables
            .iter()
            .map(|t| t.as_deref().map(parse).transpose())
            .collect()
    }

    /// The retired tables still to close.
    pub fn retired_lookup_tables(&self) -> Result<Vec<Pubkey>> {
        self.retired_lookup_tables
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|_| anyhow!("retired lookup table {t:?} is not an address"))
            })
            .collect()
    }

    /// Records the retired tables still to close; whether anything changed.
    pub fn set_retired_lookup_tables(&mut self, retired: &[Pubkey]) -> bool {
        let strings: Vec<String> = retired.iter().map(|a| a.to_string()).collect();
        if strings == self.retired_lookup_tables {
            return false;
        }
        self.retired_lookup_tables = strings;
        true
    }

    /// Records `addresses` (by position); whether anything changed.
    pub fn set_lookup_tables(&mut self, addresses: &[Option<Pubkey>]) -> bool {
        let strings: Vec<Option<String>> =
            addresses.iter().map(|a| a.map(|a| a.to_string())).collect();
        if strings == self.lookup_tables && self.lookup_table.is_none() {
            return false;
        }
        self.lookup_tables = strings;
        self.lookup_table = None;
        true
    }
}

/// Writes `value` as JSON to `path` atomically (a temporary file renamed over it).
pub fn write_json_atomically(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value)?;
    {
        use std::io::Write;
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keeper.toml");
        std::fs::write(
            &file,
            "rpc_url = \"https://api.devnet.solana.com\"\ntick_interval_s = 30\n",
        )
        .unwrap();
        let env = vec![
            (
                "GRIDTOKENX_KEEPER_TICK_INTERVAL_S".to_string(),
                "5".to_string(),
            ),
            (
                "GRIDTOKENX_KEEPER_BRIDGE".to_string(),
                "127.0.0.1:9444".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = KeeperConfig::load(Some(&file), env).unwrap();
        assert_eq!(c.rpc_url, "https://api.devnet.solana.com");
        assert_eq!(c.tick_interval_s, 5);
        assert_eq!(c.bridge, "127.0.0.1:9444".parse().unwrap());
        assert_eq!(c.confirm_timeout_s, 90);
        assert!(c.wallet.is_relative() || c.wallet.starts_with("~"));
    }

    #[test]
    fn bad_settings_are_refused_with_their_name() {
        let bad = [
            ("GRIDTOKENX_KEEPER_RPC_URL", "127.0.0.1:8899", "rpc_url"),
            ("GRIDTOKENX_KEEPER_TICK_INTERVAL_S", "0", "tick_interval_s"),
            ("GRIDTOKENX_KEEPER_BRIDGE", "not an address", "bridge"),
            ("GRIDTOKENX_KEEPER_COLOUR", "blue", "colour"),
        ];
        for (key, value, named) in bad {
            let err =
                KeeperConfig::load(None, vec![(key.to_string(), value.to_string())]).unwrap_err();
            assert!(format!("{err:#}").contains(named), "{key}: {err:#}");
        }
    }

    #[test]
    fn a_bridge_off_loopback_needs_tls() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), v.to_string()))
                .collect::<Vec<_>>()
        };
        let refused = KeeperConfig::load(None, env(&[("BRIDGE", "10.20.0.5:8444")])).unwrap_err();
        assert!(
            format!("{refused:#}").contains("bridge_ca is not set"),
            "{refused:#}"
        );
        let refused =
            KeeperConfig::load(None, env(&[("BRIDGE_SERVER_NAME", "bridge.campus")])).unwrap_err();
        assert!(
            format!("{refused:#}").contains("without bridge_ca"),
            "{refused:#}"
        );
        let c = KeeperConfig::load(
            None,
            env(&[
                ("BRIDGE", "10.20.0.5:8444"),
                ("BRIDGE_CA", "certs/generated/ca.pem"),
                ("BRIDGE_SERVER_NAME", "bridge.campus"),
            ]),
        )
        .unwrap();
        assert_eq!(c.bridge_ca, Some(PathBuf::from("certs/generated/ca.pem")));
        assert_eq!(c.bridge_server_name.as_deref(), Some("bridge.campus"));
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("keeper.example.toml");
        let c = KeeperConfig::load(Some(&example), Vec::new()).unwrap();
        assert_eq!(c, KeeperConfig::default());
    }

    #[test]
    fn home_is_expanded_at_run_time() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            expand_home(Path::new("~/.config/solana/id.json")),
            Path::new(&home).join(".config/solana/id.json")
        );
        assert_eq!(expand_home(Path::new("a/b")), Path::new("a/b"));
    }

    #[test]
    fn state_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        assert_eq!(KeeperState::load(&path).unwrap(), KeeperState::default());
        let (a, b) = (Pubkey::new_unique(), Pubkey::new_unique());
        let mut state = KeeperState::default();
        assert!(state.set_lookup_tables(&[Some(a), None, Some(b)]));
        assert!(!state.set_lookup_tables(&[Some(a), None, Some(b)]));
        write_json_atomically(&path, &state).unwrap();
        let loaded = KeeperState::load(&path).unwrap();
        assert_eq!(
            loaded.lookup_tables().unwrap(),
            vec![Some(a), None, Some(b)]
        );
        // A state written before the keeper kept several tables: its table is table 0.
        std::fs::write(&path, format!("{{\"lookup_table\": \"{a}\"}}")).unwrap();
        let old = KeeperState::load(&path).unwrap();
        assert_eq!(old.lookup_tables().unwrap(), vec![Some(a)]);
        std::fs::write(&path, "{\"lookup_tables\": [\"not a key\"]}").unwrap();
        assert!(KeeperState::load(&path).unwrap().lookup_tables().is_err());
        std::fs::write(&path, "{").unwrap();
        assert!(KeeperState::load(&path).is_err());
    }
}
