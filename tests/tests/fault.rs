//! Faults mid-run: the bridge (its real binary, as a child process) is killed with SIGKILL
//! and restarted on the same data, and the keeper is killed mid-pass (its pass future dropped
//! at an arbitrary await point, and its memory with it, as a process dies) and started
//! afresh, while 25 simulated meters keep posting over mutual TLS and the embedded chain
//! keeps going. At the end the chain must hold exactly what the meters sent (each meter's
//! registers), every batch the bridge signed applied exactly once (the oracle's reading
//! count is the sum of the batches' readings, its last sequence the bridge's last), and GRID
//! minted must equal verified export.
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use certs::{ensure_pki, Layout};
use gridtokenx_tests::embedded::EmbeddedChain;
use gridtokenx_tests::fault::{
    campus_plan, check_totals, free_port, kill_9, signed_batches, simulated_campus,
    workspace_binary, BridgeProcess, Terms,
};
use keeper::bridge_api::BridgeClient;
use keeper::Keeper;
use oracle::ReadingLimits;
use sdk::chain::Chain;
use sdk::CampusConfig;

const POST_RATE: u32 = 60;
const STEP_S: i64 = 300;
const STEPS: i64 = 8;

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
        binary: workspace_binary("bridge").unwrap(),
        dir: dir.path().to_path_buf(),
        pki_dir: dir.path().join("pki"),
        genesis,
        port: free_port().unwrap(),
        keeper_port: free_port().unwrap(),
        metrics_port: 0,
        post_rate_s: POST_RATE,
        attest_interval_s: 1,
        min_interval_s: 60,
    };
    let mut bridge = process.spawn().unwrap();
    process.wait_listening().await.unwrap();
    let attestor = process.attestor().await.unwrap();

    // The campus on chain, trusting the bridge's attestor key.
    let limits = ReadingLimits {
        max_future_skew_s: 60,
        min_interval_s: 60,
        max_age_s: 86_400,
        tolerance_bps: 1_000,
    };
    let terms = Terms {
        limits,
        interval_s: 900,
        timelock_seconds: 600,
        market_start: setup_at,
    };
    let plan = campus_plan(&mut chain, &config, &pki, attestor, terms)
        .await
        .unwrap();
    migrations::apply(&mut chain, &plan).await.unwrap();
    chain.set_time(setup_at + 700).await.unwrap();
    assert!(migrations::apply(&mut chain, &plan)
        .await
        .unwrap()
        .complete());

    // The meters, posting the model's registers at their past times up to now.
    let mut sim = simulated_campus(&config, &pki, process.port, start, 11).unwrap();
    sim.connect(start, POST_RATE).await.unwrap();

    let mut keeper = Keeper::new(Some(process.client().unwrap()), Vec::new());
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
            kill_9(&mut bridge).unwrap();
            bridge_kills += 1;
            bridge = process.spawn().unwrap();
            process.wait_listening().await.unwrap();
            keeper.bridge = Some(process.client().unwrap());
        }
        if step % 3 == 2 {
            // The keeper dies mid-pass: a transaction may be confirmed without its batch
            // acknowledged, a lookup table half extended. A new keeper starts from nothing.
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            let cut = Duration::from_millis(3 + 7 * step as u64);
            let _ = tokio::time::timeout(cut, keeper.tick(&mut chain)).await;
            keeper_kills += 1;
            keeper = Keeper::new(Some(process.client().unwrap()), Vec::new());
            continue;
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        keeper.tick(&mut chain).await.unwrap();
    }
    // Let the attestor sign the last posts, then drain.
    let client = process.client().unwrap();
    drain(&mut keeper, &mut chain, &client).await;
    assert!(
        keeper.status.failures.is_empty(),
        "{:?}",
        keeper.status.failures
    );
    kill_9(&mut bridge).unwrap();
    assert_eq!((bridge_kills, keeper_kills), (3, 2));

    // What the bridge signed, from its store, against the chain.
    let batches = signed_batches(&process.data_dir()).unwrap();
    let totals = check_totals(&mut chain, &pki, &sim, &batches)
        .await
        .unwrap();
    eprintln!(
        "{} batches, {} readings, {} Wh minted across 3 bridge kills and 2 keeper kills",
        totals.batches, totals.signed_readings, totals.minted_wh
    );
}
