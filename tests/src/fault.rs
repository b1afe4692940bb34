//! Fault drills: the bridge and the keeper as real processes, killed with SIGKILL and
//! restarted mid-run while the simulated meters keep posting, and the check that the chain
//! still holds exactly what the meters sent, every signed batch applied once. Used by
//! `tests/tests/fault.rs` (embedded chain, keeper in-process) and by the `fault-drill` binary
//! (any cluster over RPC, the keeper binary; `scripts/validator-fault` also restarts the
//! validator under it).
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, bail, ensure, Context, Result};
use bridge::store::Store;
use governance::CouncilConfig;
use keeper::bridge_api::BridgeClient;
use migrations::{Plan, PlannedMeter};
use oracle::ReadingLimits;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sdk::accounts::zero_copy;
use sdk::chain::Chain;
use sdk::ix::{energy_token as token_ix, oracle as oracle_ix};
use sdk::CampusConfig;
use simulator::client::{client_config, MeterClient, Suites};
use simulator::meter::SimulatedMeter;
use simulator::profile::BuildingModel;
use simulator::runner::Campus as SimCampus;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::MarketParams;

use crate::campus_day;
use certs::{ensure_pki, Layout};
use sdk::rpc::RpcChain;

const SOL: u64 = 1_000_000_000;

/// A binary of this workspace, built next to the running executable (a test executable
/// lives one directory further down, in `deps/`).
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        let bin = d.join(name);
        if bin.is_file() {
            return Ok(bin);
        }
        if d.file_name().is_some_and(|n| n == "deps") {
            dir = d.parent().map(Path::to_path_buf);
        } else {
            break;
        }
    }
    bail!(
        "the {name} binary is not next to {} (cargo build --workspace --bins builds it; cargo test --workspace does)",
        exe.display()
    )
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// SIGKILL, and the child reaped.
pub fn kill_9(child: &mut Child) -> Result<()> {
    child.kill().context("SIGKILL")?;
    child.wait()?;
    Ok(())
}

/// Writes `keypair` in the Solana CLI's JSON format (mode 0600, never over an existing file).
pub fn write_keypair_file(path: &Path, keypair: &Keypair) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let json =
        serde_json::to_string(&keypair.to_bytes().to_vec()).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(json.as_bytes())?;
    f.sync_all()
}

/// The bridge binary run on a data directory that survives its restarts.
pub struct BridgeProcess {
    pub binary: PathBuf,
    /// Holds `data/` (the store, the attestor key, the keeper token).
    pub dir: PathBuf,
    pub pki_dir: PathBuf,
    pub genesis: String,
    pub port: u16,
    pub keeper_port: u16,
    /// Where it serves /metrics (0: any free port).
    pub metrics_port: u16,
    pub post_rate_s: u32,
    pub attest_interval_s: u32,
    pub min_interval_s: u32,
}

impl BridgeProcess {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn spawn(&self) -> Result<Child> {
        Command::new(&self.binary)
            .env(
                "GRIDTOKENX_BRIDGE_LISTEN",
                format!("127.0.0.1:{}", self.port),
            )
            .env(
                "GRIDTOKENX_BRIDGE_METRICS_LISTEN",
                format!("127.0.0.1:{}", self.metrics_port),
            )
            .env(
                "GRIDTOKENX_BRIDGE_KEEPER_LISTEN",
                format!("127.0.0.1:{}", self.keeper_port),
            )
            .env("GRIDTOKENX_BRIDGE_DATA_DIR", self.data_dir())
            .env(
                "GRIDTOKENX_BRIDGE_CAMPUS_CONFIG",
                CampusConfig::in_repository(),
            )
            .env("GRIDTOKENX_BRIDGE_PKI_DIR", &self.pki_dir)
            .env(
                "GRIDTOKENX_BRIDGE_POST_RATE_S",
                self.post_rate_s.to_string(),
            )
            .env(
                "GRIDTOKENX_BRIDGE_ATTEST_INTERVAL_S",
                self.attest_interval_s.to_string(),
            )
            .env(
                "GRIDTOKENX_BRIDGE_MIN_INTERVAL_S",
                self.min_interval_s.to_string(),
            )
            .env("GRIDTOKENX_BRIDGE_CLUSTER_GENESIS_HASH", &self.genesis)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))
    }

    pub async fn wait_listening(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for port in [self.port, self.keeper_port] {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the bridge is not listening on {port} after 30 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    pub fn token_file(&self) -> PathBuf {
        self.data_dir().join("keeper.token")
    }

    pub fn keeper_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.keeper_port))
    }

    pub fn client(&self) -> Result<BridgeClient> {
        let token = std::fs::read_to_string(self.token_file()).context("keeper token")?;
        Ok(BridgeClient::new(self.keeper_addr(), token.trim()))
    }

    /// The bridge's attestor key, as it reports it.
    pub async fn attestor(&self) -> Result<Pubkey> {
        use base64::Engine;
        let b64 = self.client()?.status().await?.attestor;
        let key: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(b64)?
            .try_into()
            .map_err(|_| anyhow!("attestor key is not 32 bytes"))?;
        Ok(Pubkey::new_from_array(key))
    }
}

/// The oracle's, market's and council's terms of a drill's campus.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    pub limits: ReadingLimits,
    /// Auction interval, seconds.
    pub interval_s: u32,
    pub timelock_seconds: u32,
    pub market_start: i64,
}

/// What a drill's campus needs from its chain: the migration plan for `config`'s 25 meters
/// (owners and council members funded by the payer), trusting `attestor`.
pub async fn campus_plan<'a, C: Chain>(
    chain: &mut C,
    config: &'a CampusConfig,
    pki: &certs::Pki,
    attestor: Pubkey,
    terms: Terms,
) -> Result<Plan<'a>> {
    let Terms {
        limits,
        interval_s,
        timelock_seconds,
        market_start,
    } = terms;
    let quote_mint = campus_day::create_quote_mint(chain).await?;
    let mut meters = Vec::new();
    for m in &pki.meters {
        let owner = Keypair::new();
        campus_day::fund(chain, &owner.pubkey(), 1_000_000_000).await?;
        meters.push(PlannedMeter {
            code: m.code.clone(),
            lfdi: m.lfdi,
            owner,
        });
    }
    let members: Vec<Keypair> = (0..2).map(|_| Keypair::new()).collect();
    for m in &members {
        campus_day::fund(chain, &m.pubkey(), 1_000_000_000).await?;
    }
    Ok(Plan {
        campus: config,
        meters,
        attestors: vec![attestor],
        limits,
        council: CouncilConfig {
            members: members.iter().map(|m| m.pubkey()).collect(),
            guardians: vec![],
            threshold: 2,
            timelock_seconds,
            max_guardian_pause_s: config.council.max_guardian_pause_s,
            guardian_cooldown_s: config.council.guardian_cooldown_s,
        },
        quote_mint,
        // The campus file's market terms, at the drill's interval length.
        market: MarketParams {
            interval_s,
            ..config
                .market
                .params()
                .ok_or_else(|| anyhow::anyhow!("the campus file's market ladder is invalid"))?
        },
        market_start,
        council_signers: members,
    })
}

/// The campus's 25 simulated meters posting to the bridge on `port`, modelling summer
/// midday from `start` (so that the campus exports and GRID is minted).
pub fn simulated_campus(
    config: &CampusConfig,
    pki: &certs::Pki,
    port: u16,
    start: i64,
    seed: u64,
) -> Result<SimCampus> {
    let ca = CertificateDer::from_pem_file(pki.layout.ca_cert()).context("CA certificate")?;
    let place = simulator::profile::Place::new(&config.site)?;
    let mut models = Vec::new();
    let mut meters = Vec::new();
    let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(
        simulator::client::DEFAULT_MAX_HANDSHAKES,
    ));
    for (i, b) in config.buildings.iter().enumerate() {
        let cert = CertificateDer::from_pem_file(pki.layout.meter_cert(&b.code))?;
        let key = PrivateKeyDer::from_pem_file(pki.layout.meter_key(&b.code))?;
        let lfdi = sdk::identity::lfdi_hex(&sdk::identity::lfdi_from_certificate(&cert));
        let client = MeterClient::new(
            client_config(ca.clone(), cert, key, Suites::Default)?,
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .with_handshake_limit(handshakes.clone());
        let mut model = BuildingModel::new(b, i, seed, &place);
        // 13:00 campus time of a clear summer day, whatever the hour.
        model.model_offset_s =
            campus_day::clear_summer_offset_ending_at(&place, start, seed, 13 * 3600);
        models.push(model);
        meters.push(SimulatedMeter::new(&b.code, &lfdi, client));
    }
    Ok(SimCampus { models, meters })
}

/// What the drill's check found.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub batches: u64,
    pub signed_readings: u64,
    pub chain_readings: u64,
    pub minted_wh: u64,
}

/// Every batch the bridge signed, from its store (the bridge must be stopped).
pub fn signed_batches(data_dir: &Path) -> Result<Vec<bridge::store::SignedBatch>> {
    let store = Store::open(&data_dir.join("bridge.redb"))?;
    let unacknowledged = store.read()?.unacknowledged(1)?;
    ensure!(
        unacknowledged.is_empty(),
        "the bridge still has unacknowledged batches (first: {})",
        unacknowledged[0].sequence
    );
    store.write_immediate(|w| {
        let mut all = Vec::new();
        while let Some(b) = w.batch(all.len() as u64 + 1)? {
            all.push(b);
        }
        anyhow::Ok(all)
    })
}

/// The chain against the meters and the bridge: every meter's registers are the ones it
/// sent last, GRID minted = verified export for each, the oracle's last sequence is the
/// bridge's last signed batch and its reading count the sum of the batches' readings (each
/// signed reading applied exactly once).
pub async fn check_totals<C: Chain>(
    chain: &mut C,
    pki: &certs::Pki,
    sim: &SimCampus,
    batches: &[bridge::store::SignedBatch],
) -> Result<Totals> {
    let mut totals = Totals {
        batches: batches.len() as u64,
        signed_readings: batches.iter().map(|b| u64::from(b.readings)).sum(),
        ..Totals::default()
    };
    let oracle: oracle::OracleConfig = chain
        .account(oracle_ix::config_address())
        .await?
        .as_ref()
        .and_then(zero_copy)
        .ok_or_else(|| anyhow!("no oracle config"))?;
    ensure!(
        oracle.last_sequence == totals.batches,
        "the oracle applied batches up to {}, the bridge signed {}",
        oracle.last_sequence,
        totals.batches
    );
    for (meter, model) in sim.meters.iter().zip(&sim.models) {
        let lfdi = pki
            .meters
            .iter()
            .find(|m| m.code == meter.code)
            .ok_or_else(|| anyhow!("{} not in the PKI", meter.code))?
            .lfdi;
        let state: oracle::MeterState = chain
            .account(oracle_ix::meter_state_address(&lfdi))
            .await?
            .as_ref()
            .and_then(zero_copy)
            .ok_or_else(|| anyhow!("{}: no meter state", meter.code))?;
        let ledger: energy_token::MeterLedger = chain
            .account(token_ix::ledger_address(&lfdi))
            .await?
            .as_ref()
            .and_then(zero_copy)
            .ok_or_else(|| anyhow!("{}: no ledger", meter.code))?;
        let sent = model.registers();
        ensure!(
            (state.import_wh, state.export_wh) == (sent.import_wh, sent.export_wh),
            "{}: the chain holds import/export {}/{} Wh, the meter sent {}/{} last",
            meter.code,
            state.import_wh,
            state.export_wh,
            sent.import_wh,
            sent.export_wh
        );
        ensure!(
            ledger.grid_minted_wh == state.verified_export_wh,
            "{}: {} Wh GRID minted for {} Wh verified export",
            meter.code,
            ledger.grid_minted_wh,
            state.verified_export_wh
        );
        totals.chain_readings += state.reading_count;
        totals.minted_wh += ledger.grid_minted_wh;
    }
    ensure!(
        totals.chain_readings == totals.signed_readings,
        "{} readings on chain, {} signed: a batch was lost or applied twice",
        totals.chain_readings,
        totals.signed_readings
    );
    ensure!(totals.minted_wh > 0, "the campus exported nothing");
    Ok(totals)
}

/// A campus on a cluster (a validator): the bridge binary and the keeper binary beside it,
/// the campus migrated (its authorities with governance after a 10 s timelock), for the
/// drills (`fault-drill`, `alert-drill`).
pub struct ClusterCampus {
    pub chain: RpcChain,
    pub pki: certs::Pki,
    pub bridge: BridgeProcess,
    pub bridge_child: Child,
    pub keeper: KeeperProcess,
    pub keeper_child: Child,
}

impl ClusterCampus {
    /// Sets up the campus at `rpc` (a fresh validator with the five programs) with files in
    /// `out`: the bridge (meters posting every `post_rate` s, attesting every 5 s), the
    /// migrations, then the keeper with a funded wallet of its own. `metrics` are the
    /// bridge's and the keeper's metrics ports (0: any free one).
    pub async fn start(
        rpc: &str,
        payer: Keypair,
        config: &CampusConfig,
        out: &Path,
        post_rate: u32,
        metrics: (u16, u16),
    ) -> Result<ClusterCampus> {
        let pki = ensure_pki(&Layout::new(out.join("pki")), config)?;

        let mut chain = RpcChain::new(rpc, payer);
        let payer = chain.payer_key();
        let balance = chain
            .client()
            .get_balance(&payer)
            .await
            .with_context(|| format!("getBalance at {} (is the validator running?)", rpc))?;
        if balance < 50 * SOL {
            chain.airdrop(&payer, 100 * SOL).await?;
        }
        for program in crate::embedded::PROGRAMS {
            ensure!(
                chain.account(program).await?.is_some(),
                "program {program} is not deployed at {}",
                rpc
            );
        }

        // The bridge binary, attesting every 5 s for this cluster.
        let genesis = Pubkey::new_from_array(chain.genesis_hash().await?).to_string();
        let bridge = BridgeProcess {
            binary: workspace_binary("bridge")?,
            dir: out.to_path_buf(),
            pki_dir: out.join("pki"),
            genesis,
            port: free_port()?,
            keeper_port: free_port()?,
            metrics_port: metrics.0,
            post_rate_s: post_rate,
            attest_interval_s: 5,
            min_interval_s: post_rate,
        };
        let bridge_child = bridge.spawn()?;
        bridge.wait_listening().await?;
        let attestor = bridge.attestor().await?;
        println!(
            "setup: bridge binary up (attestor {attestor}), PKI in {}",
            out.join("pki").display()
        );

        // The campus, its authorities handed over to governance after a 10 s timelock.
        let now = chain.clock().await?.unix_timestamp;
        let terms = Terms {
            limits: ReadingLimits {
                max_future_skew_s: 60,
                min_interval_s: post_rate,
                max_age_s: 2 * 86_400,
                tolerance_bps: 1_000,
            },
            interval_s: 60,
            timelock_seconds: 10,
            market_start: now - now.rem_euclid(60),
        };
        let plan = campus_plan(&mut chain, config, &pki, attestor, terms).await?;
        migrations::apply(&mut chain, &plan)
            .await
            .context("migrations (needs a fresh validator)")?;
        let after = chain.clock().await?.unix_timestamp + 12;
        chain.wait_for_time(after).await?;
        let report = migrations::apply(&mut chain, &plan).await?;
        ensure!(
            report.complete(),
            "migrations still waiting: {:?}",
            report.waiting
        );
        println!(
            "setup: campus migrated: 25 meters, oracle, mints, market, authorities with governance"
        );

        // The keeper binary, with its own wallet.
        let keeper_wallet = out.join("keeper").join("wallet.json");
        let keeper_key = Keypair::new();
        campus_day::fund(&mut chain, &keeper_key.pubkey(), 10 * SOL).await?;
        write_keypair_file(&keeper_wallet, &keeper_key)?;
        let keeper = KeeperProcess {
            binary: workspace_binary("keeper")?,
            dir: out.join("keeper"),
            rpc: rpc.to_string(),
            wallet: keeper_wallet,
            bridge: bridge.keeper_addr(),
            token_file: bridge.token_file(),
            metrics_port: metrics.1,
        };
        let keeper_child = keeper.spawn()?;
        Ok(ClusterCampus {
            chain,
            pki,
            bridge,
            bridge_child,
            keeper,
            keeper_child,
        })
    }
}

/// The keeper binary run against a cluster, its files in `dir`.
pub struct KeeperProcess {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub rpc: String,
    pub wallet: PathBuf,
    pub bridge: std::net::SocketAddr,
    pub token_file: PathBuf,
    /// Where it serves /metrics (0: any free port).
    pub metrics_port: u16,
}

impl KeeperProcess {
    pub fn spawn(&self) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("keeper.log"))?;
        Command::new(&self.binary)
            .env("GRIDTOKENX_KEEPER_RPC_URL", &self.rpc)
            .env(
                "GRIDTOKENX_KEEPER_METRICS_LISTEN",
                format!("127.0.0.1:{}", self.metrics_port),
            )
            .env("GRIDTOKENX_KEEPER_WALLET", &self.wallet)
            .env("GRIDTOKENX_KEEPER_BRIDGE", self.bridge.to_string())
            .env("GRIDTOKENX_KEEPER_BRIDGE_TOKEN_FILE", &self.token_file)
            .env("GRIDTOKENX_KEEPER_TICK_INTERVAL_S", "2")
            .env("GRIDTOKENX_KEEPER_STATE_FILE", self.dir.join("state.json"))
            .env("GRIDTOKENX_KEEPER_STATUS_FILE", self.status_file())
            .env("RUST_LOG", "info,solana_rpc_client=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))
    }

    pub fn status_file(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    pub fn status(&self) -> Result<keeper::Status> {
        let text = std::fs::read_to_string(self.status_file())?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// What a drill on a cluster needs from its command line (`fault-drill`, `alert-drill`).
#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// The cluster's JSON-RPC URL.
    #[arg(
        long,
        env = "ANCHOR_PROVIDER_URL",
        default_value = "http://127.0.0.1:8899"
    )]
    pub rpc: String,
    /// The payer, which must be the programs' upgrade authority.
    #[arg(
        long,
        env = "ANCHOR_WALLET",
        default_value = "~/.config/solana/id.json"
    )]
    pub wallet: PathBuf,
    /// Campus configuration file (relative to the working directory).
    #[arg(long, env = "GRIDTOKENX_CAMPUS_CONFIG", default_value_os_t = CampusConfig::default_path())]
    pub config: PathBuf,
}

impl ClusterArgs {
    /// Starts the drill's logs (errors only unless RUST_LOG says more) and reads the campus
    /// file and the payer; an error is an unusable configuration (exit code 2).
    pub fn load(&self) -> std::result::Result<(CampusConfig, Keypair), String> {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
            )
            .with_writer(std::io::stderr)
            .init();
        let config = CampusConfig::load(&self.config).map_err(|e| e.to_string())?;
        let wallet = sdk::settings::expand_home(&self.wallet);
        let payer = solana_keypair::read_keypair_file(&wallet)
            .map_err(|e| format!("wallet {}: {e}", wallet.display()))?;
        Ok((config, payer))
    }
}
