//! The fault drill on a cluster: the bridge binary and the keeper binary as processes, each
//! killed with SIGKILL and restarted several times while the 25 simulated meters post in
//! real time; `scripts/validator-fault` also stops and restarts the validator under them.
//! At the end the chain must hold every meter's last registers, every batch the bridge
//! signed applied exactly once, GRID minted = verified export, and the keeper's status must
//! list no refusal.
//!
//! Exit codes: 0 every check holds, 1 a step or a check failed, 2 unusable configuration.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use gridtokenx_tests::fault::{
    check_totals, kill_9, signed_batches, simulated_campus, ClusterArgs, ClusterCampus,
};
use sdk::CampusConfig;
use solana_keypair::Keypair;

const POST_RATE: u32 = 15;

#[derive(Parser)]
#[command(
    about = "Fault drill on a cluster: kills the bridge and keeper binaries with SIGKILL mid-run and checks that the chain lost and duplicated nothing.",
    long_about = "Fault drill on a cluster: sets up a campus (migrations with a 10-second \
timelock) on a fresh validator with the five programs deployed, starts the bridge binary and \
the keeper binary, has 25 simulated meters post every 15 s in real time, and kills the \
keeper (every 4th post, at varying points of its pass) and the bridge (every 4th post, \
offset by two) with SIGKILL, restarting each on the same data. When the file <out>/running \
appears the drill is under way: a script may then stop and restart the validator. At the end \
it checks the chain against the bridge's store and the meters.\n\n\
Exit codes: 0 every check holds, 1 a step or a check failed, 2 unusable configuration."
)]
struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Minutes of posting under faults.
    #[arg(long, default_value_t = 6)]
    minutes: u32,
    /// Where the PKI, the bridge's data, the keeper's files and logs go (replaced).
    #[arg(long, default_value = "fault-drill")]
    out: PathBuf,
}

/// SIGTERM, then the exit status (SIGKILL after 30 s).
fn stop(child: &mut Child) -> Result<std::process::ExitStatus> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            kill_9(child)?;
            bail!("the keeper did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(t.into()).await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (config, payer) = match args.cluster.load() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match drill(&args, &config, payer).await {
        Ok(summary) => {
            println!("{summary}");
            let _ = std::fs::write(args.out.join("fault-drill.txt"), &summary);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn drill(args: &Args, config: &CampusConfig, payer: Keypair) -> Result<String> {
    let out = &args.out;
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out.join("keeper"))?;
    let out = std::fs::canonicalize(out)?;
    let ClusterCampus {
        mut chain,
        pki,
        bridge,
        mut bridge_child,
        keeper,
        mut keeper_child,
    } = ClusterCampus::start(&args.cluster.rpc, payer, config, &out, POST_RATE, (0, 0)).await?;

    // The meters, posting in real time.
    let now = bridge::server::now();
    let start = now - now.rem_euclid(i64::from(POST_RATE));
    let mut sim = simulated_campus(config, &pki, bridge.port, start, 13)?;
    sim.connect(start, POST_RATE).await?;
    std::fs::write(out.join("running"), b"")?;
    let steps = i64::from(args.minutes) * 60 / i64::from(POST_RATE);
    println!(
        "[1/2] {} minutes: 25 meters posting every {POST_RATE} s; keeper and bridge killed with SIGKILL every minute",
        args.minutes
    );
    let (mut keeper_kills, mut bridge_kills) = (0u32, 0u32);
    // Batches a keeper found confirmed on chain but not acknowledged (a kill between the
    // two), summed over the keepers before they were killed.
    let mut already_applied = 0;
    let wall = Instant::now();
    for k in 0..steps {
        let t = start + k * i64::from(POST_RATE);
        let due = wall + Duration::from_secs(((k + 1) * i64::from(POST_RATE)) as u64);
        sleep_until(due).await;
        sim.advance(t, t + i64::from(POST_RATE), POST_RATE, None)
            .await
            .with_context(|| format!("meters posting at step {k}"))?;
        let posted = Instant::now();
        match k % 4 {
            1 => {
                // Somewhere in the keeper's work on the batch the bridge signs from these
                // posts: from 0 to 2.5 s after it is signed (2 s passes, a transaction
                // confirmed in about a second), so that some kills fall between a batch
                // confirmed and its acknowledgement.
                let signed = bridge.client()?;
                let deadline = posted + Duration::from_secs(10);
                while Instant::now() < deadline
                    && signed
                        .batches(1)
                        .await
                        .map(|b| b.is_empty())
                        .unwrap_or(true)
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis((k as u64 * 370) % 2_500)).await;
                already_applied += keeper
                    .status()
                    .map(|s| s.batches_already_applied)
                    .unwrap_or(0);
                kill_9(&mut keeper_child)?;
                keeper_kills += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                keeper_child = keeper.spawn()?;
            }
            3 => {
                // The bridge, somewhere in its 5 s attestation cycle.
                let at = Duration::from_millis(1_000 + (k as u64 * 2_310) % 9_000);
                sleep_until(posted + at).await;
                kill_9(&mut bridge_child)?;
                bridge_kills += 1;
                bridge_child = bridge.spawn()?;
                bridge.wait_listening().await?;
            }
            _ => {}
        }
        if (k + 1) % 4 == 0 {
            let s = keeper.status().unwrap_or_default();
            println!(
                "  {:>4} s  {:>2}/{steps} posts  keeper killed {keeper_kills}x, bridge {bridge_kills}x  (this keeper: {} readings, {} batches pending{})",
                wall.elapsed().as_secs(),
                k + 1,
                s.readings_submitted,
                s.batches_pending,
                s.last_error.map(|e| format!(", last pass: {e}")).unwrap_or_default()
            );
        }
    }

    // Drain: the bridge signs the last posts within 5 s; the keeper applies them.
    let client = bridge.client()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut quiet = 0;
    while quiet < 2 {
        ensure!(
            Instant::now() < deadline,
            "the keeper did not drain the bridge in 5 minutes (see {})",
            keeper.dir.join("keeper.log").display()
        );
        tokio::time::sleep(Duration::from_secs(6)).await;
        quiet = match client.batches(1).await {
            Ok(b) if b.is_empty() => quiet + 1,
            _ => 0,
        };
    }
    kill_9(&mut bridge_child)?;
    let batches = signed_batches(&bridge.data_dir())?;
    // Minting follows the readings by a pass or two.
    let totals = loop {
        match check_totals(&mut chain, &pki, &sim, &batches).await {
            Ok(t) => break t,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let status = keeper.status()?;
    already_applied += status.batches_already_applied;
    let exit = stop(&mut keeper_child)?;
    ensure!(exit.success(), "the keeper exited with {exit} on SIGTERM");
    ensure!(
        status.failures.is_empty(),
        "the keeper gave up on: {:?}",
        status.failures
    );
    // The meters model 13:00 of a clear summer day whatever the hour: GRID must have been
    // minted, or the drill did not cover the path from a reading to a token.
    ensure!(
        totals.minted_wh > 0,
        "no GRID was minted in the drill: the path from a reading to a token was not exercised"
    );
    println!("[2/2] checks: every meter's registers on chain, each signed batch applied once, GRID = verified export");
    let restarts = count_restarts(&keeper.dir.join("keeper.log"));
    Ok(format!(
        "fault drill on {}: {} minutes, keeper killed {keeper_kills}x and bridge {bridge_kills}x with SIGKILL\n\
         {} batches signed, {} readings signed = {} on chain, {:.3} kWh GRID minted = verified export\n\
         keeper passes that failed and were retried (RPC or bridge away): {restarts}\n\
         batches a restarted keeper found already applied (killed between confirmation and acknowledgement): {already_applied}\n\
         the last keeper: {} readings submitted, {} transactions, no refusals",
        args.cluster.rpc,
        args.minutes,
        totals.batches,
        totals.signed_readings,
        totals.chain_readings,
        totals.minted_wh as f64 / 1000.0,
        status.readings_submitted,
        status.transactions,
    ))
}

/// Passes the keeper logged as failed (and retried) over all its runs.
fn count_restarts(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|t| t.lines().filter(|l| l.contains("pass failed")).count())
        .unwrap_or(0)
}
