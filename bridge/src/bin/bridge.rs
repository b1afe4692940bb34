//! The GridTokenX bridge: serves the campus meters over IEEE 2030.5 with mutual TLS, stores
//! every accepted reading, signs attested batches, and serves them to the keeper.
//!
//! Exit codes: 0 stopped by SIGINT/SIGTERM, 1 failed while running, 2 unusable configuration,
//! 3 storage failure (a write could not be made durable: restart on what is on disk).
//!
//! `bridge deny METER`, `bridge allow METER` and `bridge denied` manage the running bridge's
//! local deny list (exit 0 done, 1 refused or the bridge unreachable, 2 unusable
//! configuration).
use std::path::PathBuf;
use std::process::ExitCode;

use bridge::config::BridgeConfig;
use clap::Parser;

/// mimalloc instead of glibc's malloc: requests are allocated on the connection threads and
/// freed on the store's writer thread, which glibc serves slowly (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "IEEE 2030.5 server for the campus meters (mutual TLS), durable reading store and attestation signer.",
    long_about = "Serves the campus meters over IEEE 2030.5 with mutual TLS, stores every accepted reading in an \
embedded database before acknowledging it, signs batches of readings in the oracle's attestation format, and serves \
them to the keeper on a local, token-protected HTTP interface.\n\nSettings come from --config (TOML), then \
GRIDTOKENX_BRIDGE_<KEY> environment variables (e.g. GRIDTOKENX_BRIDGE_LISTEN=0.0.0.0:8443), then defaults. \
Logs go to stderr; RUST_LOG filters them. Prometheus metrics, readiness and liveness: /metrics, /ready and \
/health on metrics_listen.\n\nThe subcommands deny, allow and denied manage the running bridge's local deny \
list (kept in its store, applied over the registry's status).\n\nExit codes: 0 stopped by SIGINT/SIGTERM, 1 failed \
to start or while running, 2 unusable configuration, 3 storage failure (a write could not be made durable; a \
supervisor restarts the bridge on what is on disk); for the subcommands 0 done, 1 refused or the bridge \
unreachable, 2 unusable configuration."
)]
struct Args {
    /// Settings file (TOML); see bridge/bridge.example.toml.
    #[arg(long, env = "GRIDTOKENX_BRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Refuses a meter at once (its handshakes and requests), whatever the registry says,
    /// until `allow`: for a meter misbehaving before the council can suspend it on chain.
    Deny {
        /// The meter: its building code or its LFDI (40 hex digits).
        meter: String,
        /// Why (kept with the denial and shown by `denied`).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lifts a local denial: the registry's status applies again.
    Allow {
        /// The meter: its building code or its LFDI.
        meter: String,
    },
    /// Lists the meters denied locally.
    Denied,
}

/// Runs a subcommand against the running bridge.
fn admin(config: &BridgeConfig, command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let done = runtime.block_on(async {
        match command {
            Command::Deny { meter, reason } => {
                let d = bridge::admin::deny(config, &meter, &reason).await?;
                println!(
                    "{} (LFDI {}) denied since {}{}",
                    d.code,
                    d.lfdi,
                    d.since,
                    if d.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", d.reason)
                    }
                );
            }
            Command::Allow { meter } => {
                bridge::admin::allow(config, &meter).await?;
                println!("{meter} allowed: the registry's status applies again");
            }
            Command::Denied => {
                let list = bridge::admin::denied(config).await?;
                if list.is_empty() {
                    println!("no meter is denied");
                }
                for d in list {
                    println!("{}  {}  since {}  {}", d.code, d.lfdi, d.since, d.reason);
                }
            }
        }
        anyhow::Ok(())
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logs(format: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
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

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logs(&args.log_format);
    let config = match BridgeConfig::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "unusable configuration");
            return ExitCode::from(2);
        }
    };
    if let Some(command) = args.command {
        return admin(&config, command);
    }
    // The runtime's threads (connections, and the blocking threads they start) yield to the
    // store's writer and dedicated threads, which the store starts at the main thread's
    // priority: every post waits for the writer's next commit, and the immediate writes
    // (attestor, acknowledgements, pruning) hold the write lock the writer waits for.
    let nice = config.network_nice;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            if let Err(e) = bridge::lower_thread_priority(nice) {
                tracing::warn!(error = %e, nice, "could not lower a connection thread's priority");
            }
        })
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(config)),
        Err(e) => {
            tracing::error!(error = %e, "could not start the async runtime");
            ExitCode::from(1)
        }
    }
}

async fn run(config: BridgeConfig) -> ExitCode {
    let running = match bridge::server::start(&config).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "bridge failed to start");
            return ExitCode::from(1);
        }
    };
    // Fail-stop: once the store cannot make a write durable, every answer would be a 500;
    // exit so that the supervisor restarts the bridge on what is really on disk.
    let store = running.service.store.clone();
    let storage_failed = async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if let Some(reason) = store.failure() {
                return reason;
            }
        }
    };
    tokio::select! {
        _ = wait_for_signal() => {}
        reason = storage_failed => {
            tracing::error!(reason, "storage failure: stopping");
            return ExitCode::from(3);
        }
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    ExitCode::SUCCESS
}
