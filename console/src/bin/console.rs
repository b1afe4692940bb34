//! `console`: the campus console. Reads the campus from a cluster's JSON-RPC (and the
//! bridge's keeper interface) every `refresh_s`, serves the read-only JSON API under
//! `/api/v1/` and the live campus page at `/`.
//!
//! Exit codes: 0 stopped (Ctrl-C, SIGTERM) or `--once` read the campus; 1 `--once` could
//! not read it or the listener failed; 2 unusable configuration.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use console::{server, Collector, ConsoleConfig};
use sdk::rpc::RpcChain;

#[derive(Parser)]
#[command(
    version,
    about = "The GridTokenX campus console: a read-only JSON API and the live campus page.",
    long_about = "Reads the campus from the chain (meters, registers, balances, books, orders, proposals, and the \
market's and oracle's events) and from the bridge's keeper interface, and serves it from memory: the JSON API \
under /api/v1/ (snapshot, campus, buildings, buildings/{code}, intervals, orders, fills, meters, batches, \
proposals; events as server-sent events) and the campus page at /.\n\n\
Settings: --config FILE (see console/console.example.toml), each key overridable as GRIDTOKENX_CONSOLE_<KEY>.\n\n\
Exit codes: 0 stopped or --once done, 1 failed, 2 unusable configuration."
)]
struct Args {
    /// The settings file (TOML).
    #[arg(long, env = "GRIDTOKENX_CONSOLE_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `listen`.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Overrides `rpc_url`.
    #[arg(short, long)]
    url: Option<String>,
    /// Read the campus once, print the snapshot (JSON) and exit.
    #[arg(long)]
    once: bool,
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = match ConsoleConfig::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("console: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(url) = args.url {
        config.rpc_url = url;
    }
    init_logs(&config.log_format);
    let (names, bridge, zone) = match (config.names(), config.bridge_client(), config.time_zone()) {
        (Ok(n), Ok(b), Ok(z)) => (n, b, z),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "configuration");
            return ExitCode::from(2);
        }
    };
    // Reads only: the payer signs nothing.
    let mut chain = RpcChain::new(&config.rpc_url, solana_keypair::Keypair::new());
    let mut collector = Collector::new(names, config.silent_after_s, bridge).with_time_zone(&zone);
    if args.once {
        return match collector.read(&mut chain).await {
            Ok(snapshot) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&snapshot).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "console: {}",
                    sdk::settings::redact_urls_in(&format!("{e:#}"))
                );
                ExitCode::from(1)
            }
        };
    }
    let history = config
        .history_url
        .as_ref()
        .map(|url| std::sync::Arc::new(server::History::new(url.clone())));
    let running = match server::start_with(config.listen, history).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "listen");
            return ExitCode::from(1);
        }
    };
    if !running.addr.ip().is_loopback() {
        tracing::warn!(listen = %running.addr, "the console listens beyond this host: put TLS in front of it");
    }
    tracing::info!(
        listen = %running.addr,
        rpc = %sdk::settings::redact_url(&config.rpc_url),
        refresh_s = config.refresh_s,
        "console serving: the campus page at http://{}/",
        running.addr
    );
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    console::poll(
        &mut chain,
        &mut collector,
        &running.publisher,
        Duration::from_secs(config.refresh_s),
        stop,
    )
    .await;
    tracing::info!("console stopped");
    ExitCode::SUCCESS
}
