//! The GridTokenX keeper: carries the bridge's attested readings into `submit_readings`,
//! mints GRID and RECs for verified export, clears each ended auction and pays out the
//! seats, against any cluster over JSON-RPC.
//!
//! Exit codes: 0 stopped by SIGINT/SIGTERM (or `--once` with nothing given up on), 1 a pass
//! failed (`--once`) or the keeper could not go on, 2 unusable configuration (settings,
//! wallet, token, state file; with `--once`, bridge, chain and oracle that disagree), 3
//! `--once` ended with refusals given up on.
//!
//! Prometheus metrics, readiness and liveness: `/metrics`, `/ready`, `/health` on
//! `metrics_listen` (loopback by default).
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use keeper::config::{expand_home, write_json_atomically, KeeperConfig, KeeperState};
use keeper::metrics::KeeperEndpoints;
use keeper::table::CampusTables;
use keeper::{Keeper, Status};
use sdk::rpc::RpcChain;
use sdk::Chain;

#[derive(Parser)]
#[command(
    version,
    about = "Carries attested readings and market cranks from the bridge into transactions on a Solana cluster.",
    long_about = "Every pass: reads the registry's meters (and pushes them to the bridge), applies the bridge's \
attested batches in order (Ed25519 verification + submit_readings, through its own address lookup table), \
acknowledges what is confirmed, mints GRID and RECs for verified export, clears each ended auction and pays out \
the seats. The chain is its memory: a restarted keeper recomputes what is due and never applies anything twice.\n\n\
Settings come from --config (TOML), then GRIDTOKENX_KEEPER_<KEY> environment variables \
(e.g. GRIDTOKENX_KEEPER_RPC_URL=https://api.devnet.solana.com), then defaults; see keeper/keeper.example.toml. \
Logs go to stderr (RUST_LOG filters them); the status is rewritten to status_file after every pass; \
Prometheus metrics, readiness and liveness are served at /metrics, /ready and /health on metrics_listen.\n\n\
Every pass first checks the bridge, the chain and the oracle against each other (the bridge's attestor key trusted \
by the oracle, its cluster the RPC endpoint's, the campus and quorum); on a mismatch it submits nothing and says \
what to change.\n\n\
Exit codes: 0 stopped by a signal (or --once without refusals), 1 a pass failed or the keeper could not go on, \
2 unusable configuration (with --once: bridge, chain and oracle disagree), 3 --once ended with refusals given up on."
)]
struct Args {
    /// Settings file (TOML).
    #[arg(long, env = "GRIDTOKENX_KEEPER_CONFIG")]
    config: Option<PathBuf>,
    /// Run one pass and exit.
    #[arg(long)]
    once: bool,
    /// Print the status of the running (or last) keeper from its status file and exit.
    #[arg(long)]
    status: bool,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text", env = "GRIDTOKENX_KEEPER_LOG_FORMAT")]
    log_format: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Proposes to the council that the oracle skip every batch through THROUGH (one it
    /// refuses for good, named in the keeper's status); the members approve and execute it
    /// after the timelock, and the bridge then signs the skipped readings again.
    ProposeSkip {
        /// The last batch sequence to skip.
        #[arg(long)]
        through: u64,
        /// A council member's keypair file: it signs the proposal and pays for it.
        #[arg(long)]
        keypair: PathBuf,
    },
}

/// `keeper propose-skip`: exit 0 proposed, 1 refused or failed, 2 unusable configuration.
async fn propose_skip(config: &KeeperConfig, through: u64, keypair: &std::path::Path) -> ExitCode {
    let member = match solana_keypair::read_keypair_file(expand_home(keypair)) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: keypair {}: {e}", keypair.display());
            return ExitCode::from(2);
        }
    };
    let mut chain = RpcChain::new(&config.rpc_url, member.insecure_clone());
    match keeper::governance::propose_skip(&mut chain, &member, through).await {
        Ok(p) => {
            println!(
                "proposal {} skips batches {}..={}: it needs {} approvals of council members, then                  execution after the {} s timelock; the keeper then has the bridge sign their                  readings again",
                p.index, p.from, p.through, p.threshold, p.timelock_seconds
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,solana_rpc_client=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The status as an operator reads it.
fn describe(status: &Status) -> String {
    let mut out = format!(
        "meters: {} registered, {} active\n\
         readings submitted: {} in {} batches ({} found already applied, {} signed again by the bridge: the chain had settled their sequences), {} batches pending at the bridge, chain's settled sequence {}\n\
         last confirmed slot: {}\n\
         GRID minted: {:.3} kWh, RECs issued: {}\n\
         market: {} books opened, {} intervals cleared, {} orders settled, {} books closed, {} balances swept\n\
         transactions: {} (largest {} bytes), passes: {}\n",
        status.meters_registered,
        status.meters_active,
        status.readings_submitted,
        status.batches_applied,
        status.batches_already_applied,
        status.batches_resigned,
        status.batches_pending,
        status.chain_floor,
        status.last_confirmed_slot,
        status.grid_minted_wh as f64 / 1000.0,
        status.recs_issued,
        status.books_opened,
        status.intervals_cleared,
        status.orders_settled,
        status.books_closed,
        status.balances_swept,
        status.transactions,
        status.largest_transaction,
        status.passes,
    );
    if let Some(e) = &status.last_error {
        out.push_str(&format!("last pass failed: {e}\n"));
    }
    for problem in &status.inconsistencies {
        out.push_str(&format!("inconsistent (nothing submitted): {problem}\n"));
    }
    if status.failures.is_empty() {
        out.push_str("failures: none\n");
    } else {
        out.push_str(&format!("failures ({}):\n", status.failures.len()));
        for f in &status.failures {
            out.push_str(&format!("  slot {}: {}: {}\n", f.at_slot, f.what, f.reason));
        }
    }
    out
}

/// The pass's outcome for `/metrics` and `/ready`.
fn publish(s: &Setup, endpoints: &KeeperEndpoints, failed: bool) {
    let metrics = &s.keeper.metrics;
    *metrics.status.lock().unwrap_or_else(|p| p.into_inner()) = s.keeper.status.clone();
    if failed {
        metrics.pass_failures.inc();
    } else {
        metrics.last_pass_ok.set(telemetry::unix_now());
    }
    let mut reasons = Vec::new();
    if let Some(e) = &s.keeper.status.last_error {
        reasons.push(format!("the last pass failed: {e}"));
    }
    let lamports = metrics.payer_lamports.get();
    if lamports >= 0 && (lamports as u64) < endpoints.payer_low_lamports {
        reasons.push(format!(
            "the payer {} holds {lamports} lamports, under payer_low_sol ({} lamports): fund it",
            s.chain.payer_key(),
            endpoints.payer_low_lamports
        ));
    }
    *endpoints
        .not_ready
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = reasons;
}

struct Setup {
    config: KeeperConfig,
    chain: RpcChain,
    keeper: Keeper,
    state: KeeperState,
}

fn setup(config: KeeperConfig) -> Result<Setup> {
    let wallet = expand_home(&config.wallet);
    let payer = solana_keypair::read_keypair_file(&wallet)
        .map_err(|e| anyhow::anyhow!("wallet {}: {e}", wallet.display()))?;
    let bridge = config.bridge_client()?;
    let state = KeeperState::load(&config.state_file)?;
    state.lookup_tables()?;
    let chain = RpcChain::new(&config.rpc_url, payer);
    let mut keeper = Keeper::new(Some(bridge), Vec::new());
    keeper.policy = config.policy();
    keeper.max_in_flight = config.max_in_flight;
    if let Some(path) = &config.order_delegate_keypair {
        let path = expand_home(path);
        let delegate = solana_keypair::read_keypair_file(&path)
            .map_err(|e| anyhow::anyhow!("order delegate {}: {e}", path.display()))?;
        keeper.flows.delegate = Some(delegate);
    }
    keeper.flows.buy_limit = config.flow_buy_limit;
    keeper.flows.sell_limit = config.flow_sell_limit;
    Ok(Setup {
        config,
        chain,
        keeper,
        state,
    })
}

/// One pass, with the lookup table found again (or created) and remembered.
async fn pass(s: &mut Setup) -> Result<keeper::Progress> {
    if s.keeper.tables.tables.is_empty() {
        let remembered = s.state.lookup_tables()?;
        s.keeper.tables = CampusTables::load(&mut s.chain, &remembered).await;
        s.keeper.tables.retired = s.state.retired_lookup_tables()?;
    }
    let result = s.keeper.tick(&mut s.chain).await;
    let tables = s.state.set_lookup_tables(&s.keeper.tables.addresses());
    let retired = s.state.set_retired_lookup_tables(&s.keeper.tables.retired);
    if tables || retired {
        write_json_atomically(&s.config.state_file, &s.state)?;
    }
    result
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logs(&args.log_format);
    let config = match KeeperConfig::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "unusable configuration");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::ProposeSkip { through, keypair }) = &args.command {
        return propose_skip(&config, *through, keypair).await;
    }
    if args.status {
        return match std::fs::read(&config.status_file)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice::<Status>(&b)?))
        {
            Ok(status) => {
                print!("{}", describe(&status));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "error: no status at {}: {e:#}",
                    config.status_file.display()
                );
                ExitCode::from(1)
            }
        };
    }
    let mut s = match setup(config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "unusable configuration");
            return ExitCode::from(2);
        }
    };
    // `--once` (a check beside a running keeper) serves no metrics.
    let metrics_listener = if args.once {
        None
    } else {
        match tokio::net::TcpListener::bind(s.config.metrics_listen).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(error = %e, addr = %s.config.metrics_listen, "cannot listen on metrics_listen");
                return ExitCode::from(2);
            }
        }
    };
    if !s.config.metrics_listen.ip().is_loopback() {
        tracing::warn!(addr = %s.config.metrics_listen, "metrics_listen is not a loopback address: /metrics and /ready (the payer, errors) are served without a token to that network");
    }
    let endpoints = std::sync::Arc::new(KeeperEndpoints {
        metrics: s.keeper.metrics.clone(),
        not_ready: std::sync::Mutex::new(vec!["no pass has completed yet".into()]),
        payer_low_lamports: s.config.payer_low_lamports(),
    });
    // The start counts as progress until a pass completes (no alert for a keeper that
    // has just started).
    s.keeper.metrics.last_pass_ok.set(telemetry::unix_now());
    s.keeper.metrics.started_at.set(telemetry::unix_now());
    let (_stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    if let Some(listener) = metrics_listener {
        tokio::spawn(telemetry::serve(
            listener,
            endpoints.clone(),
            metrics_stopped,
        ));
    }
    tracing::info!(
        rpc = s.chain.shown_url(),
        payer = %s.chain.payer_key(),
        bridge = %s.config.bridge,
        metrics = ?metrics_addr,
        "keeper started"
    );
    let signal = wait_for_signal();
    tokio::pin!(signal);
    let mut backoff = Duration::from_secs(s.config.tick_interval_s);
    loop {
        let outcome = pass(&mut s).await;
        s.keeper.status.passes += 1;
        let failed = match &outcome {
            Ok(p) => {
                s.keeper.status.last_error = None;
                tracing::info!(
                    batches = p.batches,
                    readings = p.readings,
                    minted_wh = p.minted_wh,
                    recs = p.recs,
                    cleared = p.cleared.len(),
                    swept = p.swept,
                    pending = s.keeper.status.batches_pending,
                    last_slot = s.keeper.status.last_confirmed_slot,
                    failures = s.keeper.status.failures.len(),
                    "pass done"
                );
                backoff = Duration::from_secs(s.config.tick_interval_s);
                false
            }
            Err(e) => {
                // The bridge or the RPC endpoint is away (restarting?): nothing was lost;
                // the next pass recomputes what is due. The same failure again is logged
                // once, not at every retry.
                let error = format!("{e:#}");
                if s.keeper.status.last_error.as_deref() == Some(error.as_str()) {
                    tracing::debug!(
                        error,
                        retry_in_s = backoff.as_secs(),
                        "pass failed again; will retry"
                    );
                } else {
                    tracing::warn!(
                        error,
                        retry_in_s = backoff.as_secs(),
                        "pass failed; will retry"
                    );
                }
                s.keeper.status.last_error = Some(error);
                true
            }
        };
        if let Err(e) = write_json_atomically(&s.config.status_file, &s.keeper.status) {
            tracing::error!(error = format!("{e:#}"), "cannot write the status file");
        }
        publish(&s, &endpoints, failed);
        let inconsistent = outcome.as_ref().err().is_some_and(|e| {
            e.downcast_ref::<keeper::consistency::Inconsistent>()
                .is_some()
        });
        if args.once {
            return if inconsistent {
                ExitCode::from(2)
            } else if failed {
                ExitCode::from(1)
            } else if !s.keeper.status.failures.is_empty() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            };
        }
        let wait = if failed {
            backoff
        } else {
            Duration::from_secs(s.config.tick_interval_s)
        };
        if failed {
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
        tokio::select! {
            _ = &mut signal => {
                tracing::info!("stopping");
                return ExitCode::SUCCESS;
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
