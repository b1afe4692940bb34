//! The bridge's settings: a TOML file, then `GRIDTOKENX_BRIDGE_<KEY>` environment variables
//! over it (e.g. `GRIDTOKENX_BRIDGE_LISTEN=0.0.0.0:8443`), then built-in defaults.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const ENV_PREFIX: &str = "GRIDTOKENX_BRIDGE_";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    /// Where meters connect (mutual TLS, IEEE 2030.5).
    pub listen: SocketAddr,
    /// Where the keeper connects: HTTP/1.1 with a bearer token. Plain HTTP on a loopback
    /// address; any other address needs `keeper_tls`.
    pub keeper_listen: SocketAddr,
    /// Serve the keeper interface over TLS 1.3 with the bridge's server certificate (the
    /// keeper checks it against the campus CA; its `bridge_ca`). Required for a
    /// non-loopback `keeper_listen`.
    pub keeper_tls: bool,
    /// Where Prometheus scrapes `/metrics` (and `/ready`, `/health`): plain HTTP without a
    /// token, so loopback unless the network in between is the operator's own.
    pub metrics_listen: SocketAddr,
    /// Store, attestor key and keeper token live here.
    pub data_dir: PathBuf,
    pub campus_config: PathBuf,
    /// The campus PKI: `ca.pem`, `bridge.pem`/`bridge.key`, `meters/<CODE>.pem`.
    pub pki_dir: PathBuf,
    /// How often meters should post, seconds.
    pub post_rate_s: u32,
    /// How often the attestor runs a round (every meter with a new reading attested, in as
    /// many batches as it takes), seconds.
    pub attest_interval_s: u32,
    /// The oracle's limits, mirrored so that nothing attested is refused on-chain.
    pub min_interval_s: u32,
    pub max_future_skew_s: u32,
    pub max_age_s: u32,
    pub tolerance_bps: u16,
    /// Genesis hash (base58) of the cluster the oracle runs on: batches are bound to it.
    /// Nothing is attested until it is set.
    pub cluster_genesis_hash: Option<String>,
    pub max_readings_per_batch: usize,
    /// Signed batches awaiting the keeper, at most: the attestor stops signing at this many
    /// (the backlog is bounded; the meters' latest readings are attested once it drains).
    pub max_pending_batches: u64,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Connections one device certificate may hold at once; more are closed after the
    /// handshake (one meter's certificate cannot take every slot).
    pub max_connections_per_device: usize,
    /// Seconds a client gets to finish its TLS handshake.
    pub handshake_timeout_s: u64,
    /// TLS handshakes in flight from one IP address; more are closed at once (floods).
    pub max_handshakes_per_ip: usize,
    /// Seconds a connection may sit idle (or take to send a request head) before it is
    /// closed; 0 = 2 × post_rate_s + 30, so that a meter's connection lives from post to
    /// post. Set explicitly, it must exceed post_rate_s.
    pub idle_timeout_s: u64,
    /// Seconds a client gets to send a request's body.
    pub body_timeout_s: u64,
    /// Further trusted roots (PEM files), e.g. meter manufacturers' CAs whose factory
    /// certificates chain through up to two intermediates; the campus CA is always trusted.
    /// A certificate must still belong to a registered meter (its LFDI).
    pub trusted_roots: Vec<PathBuf>,
    /// The campus's IANA time zone (the Time resource's tzOffset and daylight saving); unset,
    /// the campus file's `[site] time_zone`.
    pub time_zone: Option<String>,
    /// Days readings, measurements and acknowledged batches are kept; older ones are pruned
    /// every hour (and the file compacted at the next start). At least max_age_s.
    pub retention_days: u32,
    /// Queue every accepted reading for the history exporter (PostgreSQL; the `exporter`
    /// binary): while set, retention keeps what is not exported, up to `export_max_waiting`
    /// readings (beyond it the oldest are dropped unexported, counted and alerted).
    pub export_queue: bool,
    /// The export queue's cap, in readings (about 60 bytes each on disk): 20,000,000 is 17
    /// minutes of 10,000 meters posting both registers every second, 4.6 years of the
    /// 25-building campus posting every minute.
    pub export_max_waiting: u64,
    /// Niceness added to the threads that serve connections (TLS, HTTP, XML), 0..=19, so
    /// that the store's writer thread, which every post waits for, gets the CPU first when
    /// both cores are busy (docs/benchmarks.md: p99 at 10,000 readings/s). 0 leaves them
    /// at the bridge's own priority. Linux only.
    pub network_nice: i32,
    /// The campus's IANA Private Enterprise Number, in the low 32 bits of every mRID the
    /// bridge creates (tariff, intervals, responses, demand-response events). The default,
    /// 32473, is RFC 5612's number for documentation: set the campus's own.
    pub mrid_pen: u32,
    /// ISO 4217 numeric code of the quote token's currency, shown in the tariff (764: THB).
    pub tariff_currency: u16,
    /// Decimals of the quote token (prices are in its base units per kWh).
    pub quote_decimals: u8,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            listen: "127.0.0.1:8443".parse().expect("address"),
            keeper_listen: "127.0.0.1:8444".parse().expect("address"),
            keeper_tls: false,
            metrics_listen: "127.0.0.1:9645".parse().expect("address"),
            data_dir: PathBuf::from("bridge-data"),
            // Relative to the working directory (the repository root): no build-machine paths.
            campus_config: PathBuf::from("migrations/campus.toml"),
            pki_dir: PathBuf::from("certs/generated"),
            post_rate_s: 60,
            attest_interval_s: 60,
            min_interval_s: 60,
            max_future_skew_s: 60,
            max_age_s: 86_400,
            tolerance_bps: 1_000,
            cluster_genesis_hash: None,
            max_readings_per_batch: 25,
            max_pending_batches: 4_096,
            max_connections: 20_000,
            max_connections_per_device: 4,
            handshake_timeout_s: 10,
            max_handshakes_per_ip: 256,
            idle_timeout_s: 0,
            body_timeout_s: 10,
            trusted_roots: Vec::new(),
            time_zone: None,
            retention_days: 30,
            export_queue: false,
            export_max_waiting: 20_000_000,
            network_nice: 5,
            mrid_pen: sep2::market::DOCUMENTATION_PEN,
            tariff_currency: 764,
            quote_decimals: 6,
        }
    }
}

impl BridgeConfig {
    /// The file (if any), with the environment's overrides.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<BridgeConfig> {
        // GRIDTOKENX_BRIDGE_CONFIG names the file itself.
        let table = sdk::settings::overlay(file, env, ENV_PREFIX, &["config"])?;
        let config: BridgeConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("bridge configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.post_rate_s > 0 && self.attest_interval_s > 0,
            "post_rate_s and attest_interval_s must be positive"
        );
        anyhow::ensure!(
            (1..=28).contains(&self.max_readings_per_batch),
            "max_readings_per_batch must be 1..=28 (one transaction)"
        );
        anyhow::ensure!(
            self.max_pending_batches > 0,
            "max_pending_batches must be positive"
        );
        anyhow::ensure!(self.max_connections > 0, "max_connections must be positive");
        anyhow::ensure!(
            self.max_connections_per_device > 0,
            "max_connections_per_device must be positive"
        );
        anyhow::ensure!(
            self.handshake_timeout_s > 0
                && self.body_timeout_s > 0
                && self.max_handshakes_per_ip > 0,
            "handshake_timeout_s, body_timeout_s and max_handshakes_per_ip must be positive"
        );
        anyhow::ensure!(
            self.idle_timeout_s == 0 || self.idle_timeout_s > u64::from(self.post_rate_s),
            "idle_timeout_s ({}) must exceed post_rate_s ({}), or be 0 for 2 × post_rate_s + 30",
            self.idle_timeout_s,
            self.post_rate_s
        );
        if let Some(zone) = &self.time_zone {
            crate::clock::CampusClock::new(zone)?;
        }
        anyhow::ensure!(
            (0..=19).contains(&self.network_nice),
            "network_nice ({}) must be 0..=19",
            self.network_nice
        );
        anyhow::ensure!(
            u64::from(self.retention_days) * 86_400 >= u64::from(self.max_age_s),
            "retention_days ({}) must cover max_age_s ({} s): readings the oracle would still take must be kept",
            self.retention_days,
            self.max_age_s
        );
        anyhow::ensure!(
            self.keeper_listen.ip().is_loopback() || self.keeper_tls,
            "keeper_listen {} is not a loopback address and keeper_tls is off: the bearer \
             token would cross the network in clear; set keeper_tls = true (and give the \
             keeper the campus CA as bridge_ca), or run the keeper on the bridge's host",
            self.keeper_listen
        );
        self.limits().validate().map_err(|_| {
            anyhow::anyhow!("min_interval_s, max_future_skew_s, max_age_s, tolerance_bps: out of the oracle's ranges")
        })?;
        self.cluster()?;
        Ok(())
    }

    /// How long a connection may sit idle or take to send a request head.
    pub fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(match self.idle_timeout_s {
            0 => 2 * u64::from(self.post_rate_s) + 30,
            s => s,
        })
    }

    /// The oracle limits this bridge applies before signing.
    pub fn limits(&self) -> oracle::ReadingLimits {
        oracle::ReadingLimits {
            max_future_skew_s: self.max_future_skew_s,
            min_interval_s: self.min_interval_s,
            max_age_s: self.max_age_s,
            tolerance_bps: self.tolerance_bps,
        }
    }

    /// The cluster's genesis hash as bytes, if configured.
    pub fn cluster(&self) -> anyhow::Result<Option<[u8; 32]>> {
        self.cluster_genesis_hash
            .as_deref()
            .map(|text| {
                text.parse::<anchor_lang::prelude::Pubkey>()
                    .map(|k| k.to_bytes())
                    .map_err(|_| {
                        anyhow::anyhow!("cluster_genesis_hash {text:?} is not a base58 hash")
                    })
            })
            .transpose()
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("bridge.redb")
    }
    pub fn attestor_key_path(&self) -> PathBuf {
        self.data_dir.join("attestor.key")
    }
    pub fn keeper_token_path(&self) -> PathBuf {
        self.data_dir.join("keeper.token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bridge.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\npost_rate_s = 30\n").unwrap();
        let env = vec![
            (
                "GRIDTOKENX_BRIDGE_POST_RATE_S".to_string(),
                "15".to_string(),
            ),
            (
                "GRIDTOKENX_BRIDGE_DATA_DIR".to_string(),
                "/var/lib/bridge".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let config = BridgeConfig::load(Some(&file), env).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.post_rate_s, 15);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/bridge"));
        assert_eq!(config.attest_interval_s, 60);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bridge.toml");
        std::fs::write(&file, "lisen = \"0.0.0.0:9000\"\n").unwrap();
        assert!(BridgeConfig::load(Some(&file), vec![]).is_err());
        let env = vec![(
            "GRIDTOKENX_BRIDGE_MAX_READINGS_PER_BATCH".to_string(),
            "40".to_string(),
        )];
        assert!(BridgeConfig::load(None, env).is_err());
        for nice in ["-1", "20"] {
            let env = vec![(
                "GRIDTOKENX_BRIDGE_NETWORK_NICE".to_string(),
                nice.to_string(),
            )];
            let err = BridgeConfig::load(None, env).unwrap_err();
            assert!(format!("{err:#}").contains("network_nice"), "{err:#}");
        }
        let env = vec![(
            "GRIDTOKENX_BRIDGE_NETWORK_NICE".to_string(),
            "0".to_string(),
        )];
        assert_eq!(BridgeConfig::load(None, env).unwrap().network_nice, 0);
    }
}
