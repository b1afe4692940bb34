//! The keeper and the real bridge (its binary) against the oracle when batches cannot land:
//! a bridge the oracle does not trust gets nothing submitted (the keeper's consistency check
//! names what to change); after the bridge's key is rotated, the batches its old key signed
//! are refused, given up after three attempts and reported, and once governance skips them
//! signed again with the new key above the chain's settled sequence and applied (so no
//! reading is lost and the bridge's backlog moves on); a paused oracle makes batches wait,
//! uncounted, and they land after the pause. The skip goes
//! through the council (`keeper propose-skip`'s proposal, approved and executed); the
//! other governance actions (a new attestor set, a pause) are written into the oracle's
//! configuration directly and have their own tests.
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use certs::{ensure_pki, Layout};
use gridtokenx_tests::embedded::EmbeddedChain;
use gridtokenx_tests::fault::{
    campus_plan, free_port, kill_9, simulated_campus, workspace_binary, BridgeProcess, Terms,
};
use keeper::bridge_api::BridgeClient;
use keeper::governance::propose_skip;
use keeper::Keeper;
use oracle::{OracleConfig, ReadingLimits};
use sdk::chain::Chain;
use sdk::chain::{send_and_confirm, SendPolicy};
use sdk::ix::{governance as governance_ix, oracle as oracle_ix};
use sdk::CampusConfig;
use simulator::runner::Campus as SimCampus;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;

const POST_RATE: u32 = 60;
const STEP_S: i64 = 300;
const TIMELOCK_S: u32 = 2;

async fn send(chain: &mut EmbeddedChain, ix: Instruction, signer: &Keypair) {
    send_and_confirm(chain, &[ix], &[signer], &[], SendPolicy::default())
        .await
        .unwrap();
}

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

/// A campus on the embedded chain, the bridge's binary beside it and five simulated meters
/// connected, from `start` (a few steps before now).
struct Campus {
    _dir: tempfile::TempDir,
    chain: EmbeddedChain,
    process: BridgeProcess,
    bridge: std::process::Child,
    sim: SimCampus,
    client: BridgeClient,
    keeper: Keeper,
    /// The council's members' keys.
    council: Vec<Keypair>,
    start: i64,
    step: i64,
}

impl Campus {
    async fn start() -> Campus {
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
            metrics_port: 0,
            post_rate_s: POST_RATE,
            attest_interval_s: 1,
            min_interval_s: 60,
        };
        let bridge = process.spawn().unwrap();
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
            // Short, so that a test waits out a proposal's timelock in real time (the
            // chain's clock follows the bridge's).
            timelock_seconds: TIMELOCK_S,
            market_start: setup_at,
        };
        let mut plan = campus_plan(&mut chain, &config_file, &pki, attestor, terms)
            .await
            .unwrap();
        migrations::apply(&mut chain, &plan).await.unwrap();
        chain.set_time(setup_at + 700).await.unwrap();
        migrations::apply(&mut chain, &plan).await.unwrap();
        let council = std::mem::take(&mut plan.council_signers);
        let mut sim = simulated_campus(&config_file, &pki, process.port, start, 5).unwrap();
        sim.connect(start, POST_RATE).await.unwrap();
        let client = process.client().unwrap();
        let keeper = Keeper::new(Some(client.clone()), Vec::new());
        Campus {
            _dir: dir,
            chain,
            process,
            bridge,
            sim,
            client,
            keeper,
            council,
            start,
            step: 0,
        }
    }

    /// The meters post for the next step; the bridge attests.
    async fn post(&mut self) {
        let t0 = self.start + self.step * STEP_S;
        self.step += 1;
        self.sim
            .advance(t0, t0 + STEP_S, POST_RATE, None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }

    async fn tick(&mut self) {
        self.try_tick().await.unwrap();
    }

    async fn try_tick(&mut self) -> anyhow::Result<keeper::Progress> {
        self.chain.set_time(bridge::server::now()).await.unwrap();
        self.keeper.tick(&mut self.chain).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_batches_are_given_up_then_signed_again_after_a_skip_and_a_pause_only_delays() {
    let mut campus = Campus::start().await;
    // In order first: the campus's batches land.
    campus.post().await;
    campus.tick().await;
    assert!(campus.keeper.status.batches_applied >= 1);
    assert!(campus.client.batches(8).await.unwrap().is_empty());

    // The oracle stops trusting the bridge's key: the keeper checks before it submits, and
    // submits nothing, saying what to change.
    govern(&mut campus.chain, |c| c.attestors[0] = Pubkey::new_unique()).await;
    campus.post().await;
    let highest = config(&mut campus.chain).await.highest_sequence;
    let err = campus.try_tick().await.unwrap_err();
    let inconsistent = err
        .downcast_ref::<keeper::consistency::Inconsistent>()
        .expect("an inconsistency");
    assert_eq!(inconsistent.0.len(), 1, "{inconsistent}");
    assert!(
        inconsistent.0[0].contains("which the oracle does not trust")
            && inconsistent.0[0].contains("restore the bridge's attestor.key"),
        "{inconsistent}"
    );
    assert_eq!(campus.keeper.status.inconsistencies, inconsistent.0);
    // The payer's balance is known all the same (no false "fund the payer").
    assert!(campus.keeper.metrics.payer_lamports.get() > 0);
    assert_eq!(config(&mut campus.chain).await.highest_sequence, highest);
    assert!(campus.keeper.status.failures.is_empty());
    assert!(!campus.client.batches(8).await.unwrap().is_empty());

    // The bridge's key is rotated (a new attestor.key, which the council then trusts): the
    // batches its old key signed are refused three times each, then given up and reported;
    // they stay at the bridge, unacknowledged.
    kill_9(&mut campus.bridge).unwrap();
    let key_file = campus.process.data_dir().join("attestor.key");
    std::fs::remove_file(&key_file).unwrap();
    bridge::write_secret(&key_file, &"5e".repeat(32)).unwrap();
    campus.bridge = campus.process.spawn().unwrap();
    campus.process.wait_listening().await.unwrap();
    let rotated = campus.process.attestor().await.unwrap();
    govern(&mut campus.chain, |c| c.attestors[0] = rotated).await;
    for _ in 0..4 {
        campus.tick().await;
    }
    assert!(campus.keeper.status.inconsistencies.is_empty());
    let refused = campus.client.batches(8).await.unwrap();
    assert!(!refused.is_empty());
    assert_eq!(campus.keeper.status.failures.len(), refused.len());
    assert_eq!(campus.keeper.metrics.given_up.get(), refused.len() as u64);
    assert_eq!(
        campus.keeper.metrics.batch_refusals.get(),
        3 * refused.len() as u64
    );
    // The program's reason: its name where the logs carry Anchor's message (a cluster), its
    // code where they do not (the embedded chain's native programs print it to stdout).
    let code = format!("{:#x}", u32::from(oracle::OracleError::UnknownAttestor));
    assert!(
        campus
            .keeper
            .status
            .failures
            .iter()
            .all(|f| f.reason.contains("UnknownAttestor") || f.reason.contains(&code)),
        "{:?}",
        campus.keeper.status.failures
    );
    // Governance skips them: the chain settled their sequences without them, so the bridge
    // signs them again (with its new key) above what the chain has (the keeper reports it)
    // and the copies land: no reading is lost to the skip.
    let through = refused.iter().map(|b| b.sequence).max().unwrap();
    // The keeper names the command that proposes the skip; run as it would be.
    assert!(campus
        .keeper
        .status
        .failures
        .iter()
        .all(|f| f.reason.contains("keeper propose-skip --through")));
    let outsider = Keypair::new();
    let err = propose_skip(&mut campus.chain, &outsider, through)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("not a council member"),
        "{err:#}"
    );
    let err = propose_skip(&mut campus.chain, &campus.council[0], 1)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("nothing to skip"), "{err:#}");
    let proposal = propose_skip(&mut campus.chain, &campus.council[0], through)
        .await
        .unwrap();
    assert_eq!(
        (proposal.from, proposal.through),
        (refused[0].sequence, through)
    );
    for member in &campus.council {
        send(
            &mut campus.chain,
            governance_ix::approve(member.pubkey(), proposal.index),
            member,
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(u64::from(TIMELOCK_S) + 1)).await;
    campus.chain.set_time(bridge::server::now()).await.unwrap();
    let skip = oracle_ix::skip_batches(governance_ix::authority_for(oracle::ID), through);
    let executor = &campus.council[1];
    send(
        &mut campus.chain,
        governance_ix::execute(executor.pubkey(), proposal.index, &skip),
        executor,
    )
    .await;
    assert_eq!(config(&mut campus.chain).await.last_sequence, through);
    let (resigned, applied) = (
        campus.keeper.status.batches_resigned,
        campus.keeper.status.batches_applied,
    );
    campus.tick().await;
    assert_eq!(
        campus.keeper.status.batches_resigned - resigned,
        refused.len() as u64
    );
    assert_eq!(campus.keeper.status.chain_floor, through);
    let copies = campus.client.batches(8).await.unwrap();
    assert_eq!(copies.len(), refused.len());
    assert!(copies.iter().all(|c| c.sequence > through));
    for (copy, old) in copies.iter().zip(&refused) {
        assert_eq!(copy.meters, old.meters);
    }
    campus.tick().await;
    assert_eq!(
        campus.keeper.status.batches_applied - applied,
        refused.len() as u64
    );
    assert!(campus.client.batches(8).await.unwrap().is_empty());
    assert_eq!(campus.client.status().await.unwrap().chain_floor, through);

    // Paused: batches wait, uncounted, however many passes; then they land.
    let paused_until = bridge::server::now() + 3_600;
    govern(&mut campus.chain, |c| c.paused_until = paused_until).await;
    campus.post().await;
    let failures = campus.keeper.status.failures.len();
    for _ in 0..4 {
        campus.tick().await;
    }
    let waiting = campus.client.batches(8).await.unwrap();
    assert!(!waiting.is_empty());
    assert_eq!(campus.keeper.status.failures.len(), failures);
    assert!(campus
        .keeper
        .status
        .last_transient_error
        .as_deref()
        .is_some_and(|e| e.contains("paused")));
    govern(&mut campus.chain, |c| c.paused_until = 0).await;
    let applied = campus.keeper.status.batches_applied;
    campus.tick().await;
    assert_eq!(
        campus.keeper.status.batches_applied - applied,
        waiting.len() as u64
    );
    assert_eq!(campus.keeper.status.failures.len(), failures);
    kill_9(&mut campus.bridge).unwrap();
}

/// Copies the bridge's store (the database and both log files) from `from` to `to`.
fn copy_store(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["bridge.redb", "bridge.redb.wal", "bridge.redb.wal.1"] {
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }
}

/// A bridge restored from an older backup (its key kept) signs again the sequences it had
/// signed since: the keeper reports the chain's highest, the bridge signs nothing at or
/// below it, and its batches the chain settled without them are signed again; the readings
/// posted after the restore reach the chain at once, not a backup's age later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_restored_from_a_backup_signs_above_the_chain_and_nothing_stalls() {
    let mut campus = Campus::start().await;
    campus.post().await;
    campus.tick().await;
    assert!(campus.keeper.status.batches_applied >= 1);
    // A backup now (the bridge stopped, as the README says), then three more steps land.
    let backup = campus.process.dir.join("backup");
    kill_9(&mut campus.bridge).unwrap();
    copy_store(&campus.process.data_dir(), &backup);
    campus.bridge = campus.process.spawn().unwrap();
    campus.process.wait_listening().await.unwrap();
    for _ in 0..3 {
        campus.post().await;
        campus.tick().await;
    }
    assert!(campus.client.batches(8).await.unwrap().is_empty());
    let chain_before = config(&mut campus.chain).await.highest_sequence;
    // Reported at the start of each pass: the chain's highest as that pass began.
    let status = campus.client.status().await.unwrap();
    assert!(status.chain_floor >= 1 && status.chain_floor <= chain_before);

    // The disk is lost; the backup comes back (key and all), the meters post on.
    kill_9(&mut campus.bridge).unwrap();
    for name in ["bridge.redb", "bridge.redb.wal", "bridge.redb.wal.1"] {
        std::fs::remove_file(campus.process.data_dir().join(name)).ok();
    }
    copy_store(&backup, &campus.process.data_dir());
    campus.bridge = campus.process.spawn().unwrap();
    campus.process.wait_listening().await.unwrap();
    let restored = campus.client.status().await.unwrap();
    assert!(restored.chain_floor < chain_before, "the backup is older");
    campus.post().await;
    // The restored bridge signed under sequences the chain has settled.
    let stale = campus.client.batches(16).await.unwrap();
    assert!(!stale.is_empty());
    assert!(stale.iter().any(|b| b.sequence <= chain_before));

    // One pass: the floor goes to the bridge and its stale batches are signed again above
    // it; the next pass lands them. Nothing is acknowledged as applied that was not.
    let (applied, already) = (
        campus.keeper.status.batches_applied,
        campus.keeper.status.batches_already_applied,
    );
    campus.tick().await;
    campus.tick().await;
    assert!(campus.keeper.status.batches_resigned >= 1);
    assert_eq!(campus.keeper.status.batches_already_applied, already);
    assert!(campus.keeper.status.batches_applied > applied);
    assert!(campus.client.batches(16).await.unwrap().is_empty());
    let after = config(&mut campus.chain).await.highest_sequence;
    assert!(after > chain_before);
    assert!(campus.client.status().await.unwrap().chain_floor >= chain_before);
    // The newest readings are on chain: every meter's state holds the last step's time.
    let last_post = campus.start + campus.step * STEP_S;
    let mut fresh = 0;
    for m in campus
        .keeper
        .meter_accounts(&mut campus.chain)
        .await
        .unwrap()
    {
        if let Some(state) = m.state {
            assert!(state.last_timestamp <= last_post);
            if state.last_timestamp > last_post - STEP_S {
                fresh += 1;
            }
        }
    }
    assert!(fresh >= 1, "readings posted after the restore are on chain");
    kill_9(&mut campus.bridge).unwrap();
}
