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
list (kept in its store, applied over the registry's status); dr issue, dr cancel and dr list manage the campus's \
demand-response events (IEEE 2030.5 DRLC) and show the buildings' responses.\n\nExit codes: 0 stopped by SIGINT/SIGTERM, 1 failed \
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
    /// Campus demand response: events every building's EMS is assigned over IEEE 2030.5
    /// (EndDeviceControls of the campus program, /dr/0/edc) and their responses.
    #[command(subcommand)]
    Dr(DrCommand),
}

#[derive(clap::Subcommand)]
enum DrCommand {
    /// Issues an event: exactly one of --reduce-percent, --reduce-kw, --duty-cycle.
    Issue {
        /// When it starts: Unix seconds, or +MINUTES from now (default: now).
        #[arg(long, default_value = "+0")]
        start: String,
        /// How long it lasts, minutes.
        #[arg(long)]
        minutes: u32,
        /// Reduce every building's load by this share, percent.
        #[arg(long)]
        reduce_percent: Option<u8>,
        /// Reduce every building's load by this much, kW.
        #[arg(long)]
        reduce_kw: Option<u16>,
        /// Run loads at most this share of the time, percent.
        #[arg(long)]
        duty_cycle: Option<u8>,
        /// Buildings may not opt out.
        #[arg(long)]
        mandatory: bool,
        /// Shown to the buildings (at most 32 characters).
        #[arg(long, default_value = "Campus demand response")]
        description: String,
    },
    /// Cancels an event (its EventStatus becomes Cancelled).
    Cancel {
        /// The event's id (from `dr list` or `dr issue`).
        id: u64,
    },
    /// Lists the events, newest first, with each building's latest response.
    List,
}

/// A start time: Unix seconds, or +MINUTES from now.
fn parse_start(text: &str) -> anyhow::Result<i64> {
    match text.strip_prefix('+') {
        Some(minutes) => {
            let minutes: i64 = minutes.parse().map_err(|_| {
                anyhow::anyhow!("--start +MINUTES: {text} is not a number of minutes")
            })?;
            Ok(bridge::server::now() + 60 * minutes)
        }
        None => text
            .parse()
            .map_err(|_| anyhow::anyhow!("--start: {text} is neither Unix seconds nor +MINUTES")),
    }
}

fn response_name(status: u8) -> &'static str {
    match status {
        1 => "received",
        2 => "started",
        3 => "completed",
        4 => "opted out",
        5 => "opted in",
        6 => "cancelled",
        _ => "other",
    }
}

fn describe(e: &keeper_protocol::market::DrEvent) -> String {
    let r = &e.request;
    let control = match (r.reduce_percent, r.reduce_kw, r.duty_cycle_pct) {
        (Some(p), _, _) => format!("reduce {p} %"),
        (_, Some(kw), _) => format!("reduce {kw} kW"),
        (_, _, Some(d)) => format!("duty cycle {d} %"),
        _ => "no control".into(),
    };
    format!(
        "event {} ({}): {} from {} for {} min, {}{}{}",
        e.id,
        e.mrid,
        r.description,
        r.start,
        r.duration_s / 60,
        control,
        if r.mandatory { ", mandatory" } else { "" },
        match e.cancelled_at {
            Some(t) => format!(", cancelled at {t}"),
            None => String::new(),
        }
    )
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
            Command::Dr(DrCommand::Issue {
                start,
                minutes,
                reduce_percent,
                reduce_kw,
                duty_cycle,
                mandatory,
                description,
            }) => {
                let request = keeper_protocol::market::DrEventRequest {
                    start: parse_start(&start)?,
                    duration_s: minutes
                        .checked_mul(60)
                        .ok_or_else(|| anyhow::anyhow!("--minutes too large"))?,
                    description,
                    duty_cycle_pct: duty_cycle,
                    reduce_percent,
                    reduce_kw,
                    mandatory,
                };
                let event = bridge::admin::dr_issue(config, &request).await?;
                println!("issued {}", describe(&event));
            }
            Command::Dr(DrCommand::Cancel { id }) => {
                let event = bridge::admin::dr_cancel(config, id).await?;
                println!("cancelled {}", describe(&event));
            }
            Command::Dr(DrCommand::List) => {
                let events = bridge::admin::dr_events(config).await?;
                if events.is_empty() {
                    println!("no demand-response event");
                }
                for s in events {
                    println!("{}", describe(&s.event));
                    for r in s.responses {
                        println!(
                            "  {} ({}): {} at {}",
                            r.code,
                            r.lfdi,
                            response_name(r.status),
                            r.created_at
                        );
                    }
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
