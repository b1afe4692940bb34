//! Faults mid-run: the bridge (its real binary, as a child process) is killed with SIGKILL
//! and restarted on the same data, and the keeper is killed mid-pass (its pass future dropped
//! at an arbitrary await point, and its memory with it, as a process dies) and started
//! afresh, while 25 simulated meters keep posting over mutual TLS and the embedded chain
//! keeps going. At the end the chain must hold exactly what the meters sent (each meter's
//! registers), every batch the bridge signed applied exactly once (the oracle's reading
//! count is the sum of the batches' readings, its last sequence the bridge's last), and GRID
//! minted must equal verified export.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use bridge::client::{client_config, MeterClient, Suites};
use bridge::sim::meter::SimulatedMeter;
use bridge::sim::profile::BuildingModel;
use bridge::sim::runner::Campus as SimCampus;
use bridge::store::Store;
use certs::{ensure_pki, Layout};
use governance::CouncilConfig;
use gridtokenx_tests::campus_day::{self, create_quote_mint};
use keeper::bridge_api::BridgeClient;
use keeper::chain::Chain;
use keeper::embedded::EmbeddedChain;
use keeper::keeper::{zero_copy, Keeper};
use keeper::migrate::{self, Plan, PlannedMeter};
use migrations::ix::{energy_token as token_ix, oracle as oracle_ix};
use migrations::CampusConfig;
use oracle::ReadingLimits;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::MarketParams;

const POST_RATE: u32 = 60;
const STEP_S: i64 = 300;
const STEPS: i64 = 8;

/// The bridge binary, built next to this test by `cargo test --workspace`.
fn bridge_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("bridge");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p bridge --bin bridge; cargo test --workspace does)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct BridgeProcess {
    dir: std::path::PathBuf,
    genesis: String,
    port: u16,
    keeper_port: u16,
}

impl BridgeProcess {
    fn spawn(&self) -> Child {
        Command::new(bridge_binary())
            .env(
                "GRIDTOKENX_BRIDGE_LISTEN",
                format!("127.0.0.1:{}", self.port),
            )
            .env(
                "GRIDTOKENX_BRIDGE_KEEPER_LISTEN",
                format!("127.0.0.1:{}", self.keeper_port),
            )
            .env("GRIDTOKENX_BRIDGE_DATA_DIR", self.dir.join("data"))
            .env(
                "GRIDTOKENX_BRIDGE_CAMPUS_CONFIG",
                CampusConfig::in_repository(),
            )
            .env("GRIDTOKENX_BRIDGE_PKI_DIR", self.dir.join("pki"))
            .env("GRIDTOKENX_BRIDGE_POST_RATE_S", POST_RATE.to_string())
            .env("GRIDTOKENX_BRIDGE_ATTEST_INTERVAL_S", "1")
            .env("GRIDTOKENX_BRIDGE_CLUSTER_GENESIS_HASH", &self.genesis)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the bridge binary")
    }

    async fn wait_listening(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for port in [self.port, self.keeper_port] {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "bridge not listening"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn client(&self) -> BridgeClient {
        let token = std::fs::read_to_string(self.dir.join("data/keeper.token")).unwrap();
        BridgeClient::new(
            format!("127.0.0.1:{}", self.keeper_port).parse().unwrap(),
            token.trim(),
        )
    }
}

fn kill_9(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

async fn fund(chain: &mut EmbeddedChain, to: &Pubkey) {
    campus_day::fund(chain, to, 1_000_000_000)
        .await
        .expect("fund");
}

/// Runs keeper passes until the bridge has had nothing new for two passes a second apart
/// (its attestor signs every second).
async fn drain(keeper: &mut Keeper, chain: &mut EmbeddedChain, bridge: &BridgeClient) {
    let mut quiet = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        chain.set_time(bridge::server::now()).await.unwrap();
        let progress = keeper.tick(chain).await.unwrap();
        if progress.batches == 0 && bridge.batches(1).await.unwrap().is_empty() {
            quiet += 1;
            if quiet == 2 {
                return;
            }
        } else {
            quiet = 0;
        }
    }
    panic!("the keeper did not drain the bridge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_bridge_and_keeper_mid_run_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
    let pki = ensure_pki(&Layout::new(dir.path().join("pki")), &config).unwrap();

    let mut chain = EmbeddedChain::start().await;
    let now = bridge::server::now();
    let start = now - now % STEP_S - STEPS * STEP_S;
    let setup_at = start - 3 * 3600;
    chain.set_time(setup_at).await.unwrap();
    let genesis = Pubkey::new_from_array(chain.genesis_hash().await.unwrap()).to_string();
    let process = BridgeProcess {
        dir: dir.path().to_path_buf(),
        genesis,
        port: free_port(),
        keeper_port: free_port(),
    };
    let mut bridge = process.spawn();
    process.wait_listening().await;
    let attestor: [u8; 32] = {
        use base64::Engine;
        let b64 = process.client().status().await.unwrap().attestor;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
            .try_into()
            .unwrap()
    };

    // The campus on chain, trusting the bridge's attestor key.
    let quote_mint = create_quote_mint(&mut chain).await.unwrap();
    let mut planned = Vec::new();
    for m in &pki.meters {
        let owner = Keypair::new();
        fund(&mut chain, &owner.pubkey()).await;
        planned.push(PlannedMeter {
            code: m.code.clone(),
            lfdi: m.lfdi,
            owner,
        });
    }
    let members: Vec<Keypair> = (0..2).map(|_| Keypair::new()).collect();
    for m in &members {
        fund(&mut chain, &m.pubkey()).await;
    }
    let plan = Plan {
        campus: &config,
        meters: planned,
        attestors: vec![Pubkey::new_from_array(attestor)],
        limits: ReadingLimits {
            max_future_skew_s: 60,
            min_interval_s: 60,
            max_age_s: 86_400,
            tolerance_bps: 1_000,
        },
        council: CouncilConfig {
            members: members.iter().map(|m| m.pubkey()).collect(),
            guardians: vec![],
            threshold: 2,
            timelock_seconds: 600,
        },
        quote_mint,
        market: MarketParams {
            interval_s: 900,
            price_tick: 1_000,
            min_price: 1_000,
            max_price: 1_000_000,
            fee_bps: 50,
            max_orders: 128,
            min_quantity_wh: 100,
        },
        market_start: setup_at,
        council_signers: members,
    };
    migrate::apply(&mut chain, &plan).await.unwrap();
    chain.set_time(setup_at + 700).await.unwrap();
    assert!(migrate::apply(&mut chain, &plan).await.unwrap().complete());

    // The meters, posting the model's registers at their past times up to now.
    let ca = CertificateDer::from_pem_file(pki.layout.ca_cert()).unwrap();
    let mut models = Vec::new();
    let mut meters = Vec::new();
    for (i, b) in config.buildings.iter().enumerate() {
        let cert = CertificateDer::from_pem_file(pki.layout.meter_cert(&b.code)).unwrap();
        let key = PrivateKeyDer::from_pem_file(pki.layout.meter_key(&b.code)).unwrap();
        let lfdi =
            migrations::identity::lfdi_hex(&migrations::identity::lfdi_from_certificate(&cert));
        let client = MeterClient::new(
            client_config(ca.clone(), cert, key, Suites::Default).unwrap(),
            format!("127.0.0.1:{}", process.port).parse().unwrap(),
        );
        let mut model = BuildingModel::new(b, i, 11);
        // Summer midday, so that the campus exports (GRID is minted).
        model.model_offset_s = gridtokenx_tests::campus_day::summer_offset_days(now) * 86_400
            + 13 * 3600
            - start.rem_euclid(86_400);
        models.push(model);
        meters.push(SimulatedMeter::new(&b.code, &lfdi, client));
    }
    let mut sim = SimCampus { models, meters };
    sim.connect(start, POST_RATE).await.unwrap();

    let mut keeper = Keeper::new(Some(process.client()), Vec::new());
    let mut bridge_kills = 0;
    let mut keeper_kills = 0;
    for step in 0..STEPS {
        let t0 = start + step * STEP_S;
        sim.advance(t0, t0 + STEP_S, POST_RATE, None).await.unwrap();
        chain.set_time(bridge::server::now()).await.unwrap();
        if step % 3 == 1 {
            // SIGKILL at some point of the attestor's one-second cycle, then restart on the
            // same data: the meters reconnect on their next post.
            tokio::time::sleep(Duration::from_millis(150 + 400 * step as u64 % 1_000)).await;
            kill_9(&mut bridge);
            bridge_kills += 1;
            bridge = process.spawn();
            process.wait_listening().await;
            keeper.bridge = Some(process.client());
        }
        if step % 3 == 2 {
            // The keeper dies mid-pass: a transaction may be confirmed without its batch
            // acknowledged, a lookup table half extended. A new keeper starts from nothing.
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            let cut = Duration::from_millis(3 + 7 * step as u64);
            let _ = tokio::time::timeout(cut, keeper.tick(&mut chain)).await;
            keeper_kills += 1;
            keeper = Keeper::new(Some(process.client()), Vec::new());
            continue;
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        keeper.tick(&mut chain).await.unwrap();
    }
    // Let the attestor sign the last posts, then drain.
    let client = process.client();
    drain(&mut keeper, &mut chain, &client).await;
    assert!(
        keeper.status.failures.is_empty(),
        "{:?}",
        keeper.status.failures
    );
    kill_9(&mut bridge);
    assert_eq!((bridge_kills, keeper_kills), (3, 2));

    // What the bridge signed, from its store.
    let store = Store::open(&dir.path().join("data/bridge.redb")).unwrap();
    let reader = store.read().unwrap();
    // Every batch it signed (the writer's view; nothing is changed).
    let batches = store
        .write(|w| {
            let mut all = Vec::new();
            while let Some(b) = w.batch(all.len() as u64 + 1)? {
                all.push(b);
            }
            anyhow::Ok(all)
        })
        .unwrap();
    let last_sequence = batches.len() as u64;
    let signed_readings: u64 = batches.iter().map(|b| u64::from(b.readings)).sum();
    assert!(reader.unacknowledged(10).unwrap().is_empty());
    let oracle: oracle::OracleConfig = chain
        .account(oracle_ix::config_address())
        .await
        .unwrap()
        .as_ref()
        .and_then(zero_copy)
        .unwrap();
    assert_eq!(oracle.last_sequence, last_sequence, "every batch applied");

    let mut chain_readings = 0u64;
    let mut minted = 0u64;
    for (meter, model) in sim.meters.iter().zip(&sim.models) {
        let lfdi = pki
            .meters
            .iter()
            .find(|m| m.code == meter.code)
            .unwrap()
            .lfdi;
        let state: oracle::MeterState = chain
            .account(oracle_ix::meter_state_address(&lfdi))
            .await
            .unwrap()
            .as_ref()
            .and_then(zero_copy)
            .unwrap();
        let ledger: energy_token::MeterLedger = chain
            .account(token_ix::ledger_address(&lfdi))
            .await
            .unwrap()
            .as_ref()
            .and_then(zero_copy)
            .unwrap();
        let sent = model.registers();
        assert_eq!(
            (state.import_wh, state.export_wh),
            (sent.import_wh, sent.export_wh),
            "{}: the chain holds the registers the meter sent last",
            meter.code
        );
        assert_eq!(
            ledger.grid_minted_wh, state.verified_export_wh,
            "{}",
            meter.code
        );
        chain_readings += state.reading_count;
        minted += ledger.grid_minted_wh;
    }
    assert_eq!(
        chain_readings, signed_readings,
        "each signed reading applied exactly once"
    );
    assert!(minted > 0, "the campus exported");
    eprintln!(
        "{last_sequence} batches, {signed_readings} readings, {minted} Wh minted across 3 bridge kills and 2 keeper kills"
    );
}
