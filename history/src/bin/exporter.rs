//! The GridTokenX history exporter: the bridge's accepted readings and signed batches, and
//! the programs' events, into PostgreSQL, exactly once.
//!
//! Exit codes: 0 stopped by SIGINT/SIGTERM (or `--once` with every source caught up), 1
//! `--once` with a source that failed, 2 unusable configuration.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use history::config::ExporterConfig;
use history::export::{Exporter, Pass};
use history::metrics::ExportMetrics;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    version,
    about = "Exports the bridge's readings and signed batches and the programs' events into PostgreSQL, exactly once.",
    long_about = "Follows three kinds of source, each on its own so that one failing never stops the others: \
the bridge's export queue (every accepted reading, in the order it was stored; the bridge must run with \
export_queue = true), the bridge's signed batches, and each GridTokenX program's transactions (their events: \
readings applied or skipped, GRID minted, RECs, orders, clearings, settlements, governance). Each page goes \
into the database in one transaction with its source's cursor, so a crash of the exporter or of the database \
loses nothing and writes nothing twice; the bridge drops what is exported only after the database committed it. \
Tables are split by day (or TimescaleDB hypertables when the extension is installed); the schema is migrated \
at start.\n\n\
Settings come from --config (TOML), then GRIDTOKENX_EXPORTER_<KEY> environment variables, then defaults; see \
history/exporter.example.toml. Logs go to stderr (RUST_LOG filters them); Prometheus metrics, readiness and \
liveness are served at /metrics, /ready and /health on metrics_listen.\n\n\
Exit codes: 0 stopped by a signal (or --once caught up), 1 --once with a source that failed, 2 unusable configuration."
)]
struct Args {
    /// Settings file (TOML).
    #[arg(long, env = "GRIDTOKENX_EXPORTER_CONFIG")]
    config: Option<PathBuf>,
    /// Export until every source is caught up, then exit.
    #[arg(long)]
    once: bool,
    /// Migrate the database's schema and exit.
    #[arg(long)]
    migrate_only: bool,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text", env = "GRIDTOKENX_EXPORTER_LOG_FORMAT")]
    log_format: String,
}

/// A source's passes until shutdown (or, with `once`, until caught up): a full page is
/// followed at once by the next, an error by a growing pause and a new connection.
async fn follow<F, Fut>(
    name: String,
    config: Arc<ExporterConfig>,
    metrics: Arc<ExportMetrics>,
    once: bool,
    mut shutdown: watch::Receiver<bool>,
    mut pass: F,
) -> bool
where
    F: FnMut(Exporter) -> Fut,
    Fut: std::future::Future<Output = (Exporter, anyhow::Result<Pass>)>,
{
    let poll = Duration::from_secs(config.poll_interval_s);
    let mut backoff = Duration::from_secs(1);
    let mut exporter: Option<Exporter> = None;
    loop {
        if *shutdown.borrow() {
            return true;
        }
        let e = match exporter.take() {
            Some(e) => Ok(e),
            None => Exporter::connect(&config.database_url, metrics.clone()).await,
        };
        let outcome = match e {
            Ok(e) => {
                let (e, result) = pass(e).await;
                if result.is_ok() {
                    exporter = Some(e);
                }
                result
            }
            Err(error) => Err(error),
        };
        let wait = match outcome {
            Ok(p) => {
                backoff = Duration::from_secs(1);
                if p.read > 0 {
                    tracing::info!(
                        source = name,
                        read = p.read,
                        inserted = p.inserted,
                        more = p.more,
                        "exported"
                    );
                }
                if p.more {
                    continue;
                }
                if once {
                    return true;
                }
                poll
            }
            Err(error) => {
                metrics.failed(&name, &error);
                tracing::warn!(source = %name, error = %format!("{error:#}"), retry_in_s = backoff.as_secs(), "export pass failed; retrying");
                if once {
                    return false;
                }
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    let config = match ExporterConfig::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if args.migrate_only {
        let result = async {
            let mut db = history::connect(&config.database_url).await?;
            history::schema::migrate(&mut db).await
        }
        .await;
        return match result {
            Ok(applied) => {
                println!(
                    "schema at version {} (applied now: {applied:?})",
                    history::schema::latest_version()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let bridge = match config.bridge_client() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let metrics = Arc::new(ExportMetrics::default());
    // The schema, once, before the sources start (retried while the database is away).
    let mut wait = Duration::from_secs(1);
    loop {
        let migrated = async {
            let mut db = history::connect(&config.database_url).await?;
            history::schema::migrate(&mut db).await
        }
        .await;
        match migrated {
            Ok(applied) => {
                if !applied.is_empty() {
                    tracing::info!(?applied, "history schema migrated");
                }
                break;
            }
            Err(e) if args.once => {
                eprintln!("error: {e:#}");
                return ExitCode::from(1);
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), retry_in_s = wait.as_secs(), "the history database is not reachable");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
    let (stop, shutdown) = watch::channel(false);
    if !args.once {
        match tokio::net::TcpListener::bind(config.metrics_listen).await {
            Ok(listener) => {
                tokio::spawn(telemetry::serve(
                    listener,
                    metrics.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                eprintln!("error: metrics_listen {}: {e}", config.metrics_listen);
                return ExitCode::from(2);
            }
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(bridge) = bridge {
        // Present from the start, so that the first gap is an increase (the alert).
        metrics.gaps.add(history::write::READINGS.to_string(), 0);
        let (c, m, s, b) = (
            config.clone(),
            metrics.clone(),
            shutdown.clone(),
            bridge.clone(),
        );
        let page = config.readings_per_page;
        tasks.spawn(follow(
            history::write::READINGS.to_string(),
            c,
            m,
            args.once,
            s,
            move |mut e| {
                let b = b.clone();
                async move {
                    let r = e.readings_pass(&b, page).await;
                    (e, r)
                }
            },
        ));
        let (c, m, s) = (config.clone(), metrics.clone(), shutdown.clone());
        let page = config.batches_per_page;
        tasks.spawn(follow(
            history::write::BATCHES.to_string(),
            c,
            m,
            args.once,
            s,
            move |mut e| {
                let b = bridge.clone();
                async move {
                    let r = e.batches_pass(&b, page).await;
                    (e, r)
                }
            },
        ));
    }
    if let Some(url) = config.rpc_url.clone() {
        // One source per program: one that fails does not hold up the others.
        for (program, name) in history::events::programs() {
            let (c, m, s) = (config.clone(), metrics.clone(), shutdown.clone());
            let limit = config.transactions_per_read;
            // Reads only: the payer signs nothing.
            let chain = Arc::new(tokio::sync::Mutex::new(sdk::rpc::RpcChain::new(
                &url,
                solana_keypair::Keypair::new(),
            )));
            let source = history::write::program_source(name);
            tasks.spawn(follow(source, c, m, args.once, s, move |mut e| {
                let chain = chain.clone();
                async move {
                    let r = e
                        .events_pass(&mut *chain.lock().await, program, name, limit)
                        .await;
                    (e, r)
                }
            }));
        }
    }
    if config.retention_days > 0 && !args.once {
        let (c, m, mut s) = (config.clone(), metrics.clone(), shutdown.clone());
        tasks.spawn(async move {
            loop {
                match Exporter::connect(&c.database_url, m.clone()).await {
                    Ok(mut e) => {
                        if let Err(error) = e.retain(c.retention_days).await {
                            tracing::warn!(error = %format!("{error:#}"), "retention failed; tried again in an hour");
                        }
                    }
                    Err(error) => tracing::warn!(error = %format!("{error:#}"), "retention: no database"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = s.changed() => return true,
                }
            }
        });
    }
    let signals = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let mut all_ok = true;
    tokio::select! {
        _ = signals => {
            tracing::info!("stopping");
            let _ = stop.send(true);
            while tasks.join_next().await.is_some() {}
            return ExitCode::SUCCESS;
        }
        _ = async {
            while let Some(done) = tasks.join_next().await {
                all_ok &= done.unwrap_or(false);
            }
        } => {}
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
