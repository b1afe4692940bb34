//! The keeper and the real bridge (its binary) against the oracle when batches cannot land:
//! a bridge the oracle no longer trusts has its batches refused, given up after three
//! attempts and reported, and acknowledged once governance skips them (so the bridge's
//! backlog moves on); a paused oracle makes batches wait, uncounted, and they land after the
//! pause. The oracle's configuration is written directly to stand for the governance
//! actions (a new attestor set, a skip, a pause), which have their own tests.
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use certs::{ensure_pki, Layout};
use gridtokenx_tests::embedded::EmbeddedChain;
use gridtokenx_tests::fault::{
    campus_plan, free_port, kill_9, simulated_campus, workspace_binary, BridgeProcess, Terms,
};
use keeper::Keeper;
use oracle::{OracleConfig, ReadingLimits};
use sdk::chain::Chain;
use sdk::ix::oracle as oracle_ix;
use sdk::CampusConfig;

const POST_RATE: u32 = 60;
const STEP_S: i64 = 300;

/// Rewrites the oracle's configuration with `change` (standing for a governance action).
async fn govern(chain: &mut EmbeddedChain, change: impl FnOnce(&mut OracleConfig)) {
    let address = oracle_ix::config_address();
    let mut account = chain.account(address).await.unwrap().unwrap();
    let size = std::mem::size_of::<OracleConfig>();
    let config: &mut OracleConfig = bytemuck::from_bytes_mut(&mut account.data[8..8 + size]);
    change(config);
    chain.ctx.set_account(&address, &account.into());
}

async fn config(chain: &mut EmbeddedChain) -> OracleConfig {
    let account = chain
        .account(oracle_ix::config_address())
        .await
        .unwrap()
        .unwrap();
    *bytemuck::from_bytes(&account.data[8..8 + std::mem::size_of::<OracleConfig>()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_are_given_up_then_acknowledged_after_a_skip_and_a_pause_only_delays() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = CampusConfig::load(&CampusConfig::in_repository()).unwrap();
    let pki = ensure_pki(&Layout::new(dir.path().join("pki")), &config_file).unwrap();
    let mut chain = EmbeddedChain::start().await;
    let now = bridge::server::now();
    let start = now - now % STEP_S - 6 * STEP_S;
    let setup_at = start - 3 * 3600;
    chain.set_time(setup_at).await.unwrap();
    let genesis = Pubkey::new_from_array(chain.genesis_hash().await.unwrap()).to_string();
    let process = BridgeProcess {
        binary: workspace_binary("bridge").unwrap(),
        dir: dir.path().to_path_buf(),
        pki_dir: dir.path().join("pki"),
        genesis,
        port: free_port().unwrap(),
        keeper_port: free_port().unwrap(),
        post_rate_s: POST_RATE,
        attest_interval_s: 1,
        min_interval_s: 60,
    };
    let mut bridge = process.spawn().unwrap();
    process.wait_listening().await.unwrap();
    let attestor = process.attestor().await.unwrap();
    let terms = Terms {
        limits: ReadingLimits {
            max_future_skew_s: 60,
            min_interval_s: 60,
            max_age_s: 86_400,
            tolerance_bps: 1_000,
        },
        interval_s: 900,
        timelock_seconds: 600,
        market_start: setup_at,
    };
    let plan = campus_plan(&mut chain, &config_file, &pki, attestor, terms)
        .await
        .unwrap();
    migrations::apply(&mut chain, &plan).await.unwrap();
    chain.set_time(setup_at + 700).await.unwrap();
    migrations::apply(&mut chain, &plan).await.unwrap();
    let mut sim = simulated_campus(&config_file, &pki, process.port, start, 5).unwrap();
    sim.connect(start, POST_RATE).await.unwrap();
    let client = process.client().unwrap();
    let mut keeper = Keeper::new(Some(client.clone()), Vec::new());
    let mut step = 0;
    let post = |step: &mut i64| {
        let t0 = start + *step * STEP_S;
        *step += 1;
        (t0, t0 + STEP_S)
    };

    // In order first: the campus's batches land.
    let (a, b) = post(&mut step);
    sim.advance(a, b, POST_RATE, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    chain.set_time(bridge::server::now()).await.unwrap();
    keeper.tick(&mut chain).await.unwrap();
    assert!(keeper.status.batches_applied >= 1);
    assert!(client.batches(8).await.unwrap().is_empty());

    // The oracle stops trusting the bridge: its next batches are refused three times each,
    // then given up and reported; they stay at the bridge, unacknowledged.
    let trusted = config(&mut chain).await.attestors[0];
    govern(&mut chain, |c| c.attestors[0] = Pubkey::new_unique()).await;
    let (a, b) = post(&mut step);
    sim.advance(a, b, POST_RATE, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for _ in 0..4 {
        chain.set_time(bridge::server::now()).await.unwrap();
        keeper.tick(&mut chain).await.unwrap();
    }
    let refused = client.batches(8).await.unwrap();
    assert!(!refused.is_empty());
    assert_eq!(keeper.status.failures.len(), refused.len());
    // The program's reason: its name where the logs carry Anchor's message (a cluster), its
    // code where they do not (the embedded chain's native programs print it to stdout).
    let code = format!("{:#x}", u32::from(oracle::OracleError::UnknownAttestor));
    assert!(
        keeper
            .status
            .failures
            .iter()
            .all(|f| f.reason.contains("UnknownAttestor") || f.reason.contains(&code)),
        "{:?}",
        keeper.status.failures
    );
    // Governance skips them and trusts the bridge again: the keeper acknowledges them (the
    // bridge's backlog moves on) and the next batches land.
    let through = refused.iter().map(|b| b.sequence).max().unwrap();
    govern(&mut chain, |c| {
        c.attestors[0] = trusted;
        c.last_sequence = through;
        c.highest_sequence = through;
    })
    .await;
    chain.set_time(bridge::server::now()).await.unwrap();
    let before = keeper.status.batches_already_applied;
    keeper.tick(&mut chain).await.unwrap();
    assert_eq!(
        keeper.status.batches_already_applied - before,
        refused.len() as u64
    );
    assert!(client.batches(8).await.unwrap().is_empty());

    // Paused: batches wait, uncounted, however many passes; then they land.
    let paused_until = bridge::server::now() + 3_600;
    govern(&mut chain, |c| c.paused_until = paused_until).await;
    let (a, b) = post(&mut step);
    sim.advance(a, b, POST_RATE, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let failures = keeper.status.failures.len();
    for _ in 0..4 {
        chain.set_time(bridge::server::now()).await.unwrap();
        keeper.tick(&mut chain).await.unwrap();
    }
    let waiting = client.batches(8).await.unwrap();
    assert!(!waiting.is_empty());
    assert_eq!(keeper.status.failures.len(), failures);
    assert!(keeper
        .status
        .last_transient_error
        .as_deref()
        .is_some_and(|e| e.contains("paused")));
    govern(&mut chain, |c| c.paused_until = 0).await;
    let applied = keeper.status.batches_applied;
    chain.set_time(bridge::server::now()).await.unwrap();
    keeper.tick(&mut chain).await.unwrap();
    assert_eq!(
        keeper.status.batches_applied - applied,
        waiting.len() as u64
    );
    assert_eq!(keeper.status.failures.len(), failures);
    kill_9(&mut bridge).unwrap();
}
