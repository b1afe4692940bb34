//! The campus day on an embedded chain (or, with `--rpc`, on a cluster in real time): meter
//! to token to trade (see `gridtokenx_tests::campus_day`).
//!
//! Exit codes: 0 done and every check holds, 1 a step or a check failed, 2 unusable
//! configuration.
use std::path::PathBuf;
use std::process::ExitCode;

use certs::Layout;
use clap::Parser;
use gridtokenx_tests::campus_day::{self, DayOptions};
use sdk::CampusConfig;

#[derive(Parser)]
#[command(
    about = "Runs a GridTokenX campus day on an embedded chain: 25 metered buildings, the \
IEEE 2030.5 bridge, the keeper, GRID minted from verified export and an auction every 15 \
minutes; prints and writes a campus report and a price/volume chart.",
    long_about = "Runs a GridTokenX campus day on an embedded chain: 25 metered buildings, the \
IEEE 2030.5 bridge, the keeper, GRID minted from verified export and an auction every 15 \
minutes; prints and writes a campus report and a price/volume chart.\n\nWith --rpc URL the same \
day runs on a cluster (a local solana-test-validator with the five programs deployed, their \
upgrade authority being --wallet) in real time, with 1-minute auctions (--intervals of them).\n\n\
Exit codes: 0 done and every check holds, 1 a step or a check failed, 2 unusable configuration."
)]
struct Args {
    /// Campus configuration file (relative to the working directory).
    #[arg(long, env = "GRIDTOKENX_CAMPUS_CONFIG", default_value_os_t = CampusConfig::default_path())]
    config: PathBuf,
    /// Campus PKI directory; missing certificates are created there (see certs/README.md).
    #[arg(long, env = "GRIDTOKENX_PKI_DIR", default_value_os_t = Layout::default_dir())]
    pki: PathBuf,
    /// Simulated hours on the embedded chain (the day ends at the last whole interval
    /// before now).
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// Seconds between a meter's posts (IEEE 2030.5 postRate); default 300, 15 with --rpc.
    #[arg(long)]
    post_rate: Option<u32>,
    /// Run on the cluster at this JSON-RPC URL in real time (e.g. http://127.0.0.1:8899).
    #[arg(long, env = "ANCHOR_PROVIDER_URL")]
    rpc: Option<String>,
    /// With --rpc: the payer, which must be the programs' upgrade authority.
    #[arg(
        long,
        env = "ANCHOR_WALLET",
        default_value = "~/.config/solana/id.json"
    )]
    wallet: PathBuf,
    /// With --rpc: half-way through the day, upgrade the oracle to this build (an .so)
    /// through a council proposal while the campus runs, and check that it goes on.
    #[arg(long, requires = "rpc")]
    upgrade_oracle: Option<PathBuf>,
    /// With --rpc: auction intervals to run (one minute each, or --interval-s).
    #[arg(long, default_value_t = 5)]
    intervals: u32,
    /// With --rpc: the auction interval, seconds (a larger campus needs longer than a
    /// minute to carry an interval's readings and orders onto a cluster).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(30..=3600))]
    interval_s: u32,
    /// Simulation seed (weather, loads).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where the report, the chart and the bridge's data go (replaced on each run).
    #[arg(long, default_value = "campus-day")]
    out: PathBuf,
    /// Model the sun, weather and loads of the nearest summer solstice week (same weekday)
    /// while posting at today's times; `--season now` models today (in winter the campus
    /// exports nothing and the market has no sellers).
    #[arg(long, default_value = "summer", value_parser = ["summer", "now"])]
    season: String,
    /// Model a clear summer day (same weekday) whose time at the end of the run is this
    /// time of day (HH:MM) on the campus's clock (its `[site]` time zone), whatever the time
    /// now: `--model-end 14:00` runs the sunny hours up to 14:00 campus time, so that the
    /// campus exports, GRID is minted and the market has sellers.
    #[arg(long, value_parser = parse_time_of_day, conflicts_with = "season")]
    model_end: Option<i64>,
    /// Log level of the bridge and keeper (e.g. info); program logs need
    /// RUST_LOG=solana_runtime::message_processor=debug.
    #[arg(long, env = "GRIDTOKENX_LOG", default_value = "error")]
    log: String,
    /// The buildings' trading agents (TOML: `[default]` and `[buildings.CODE]`, see
    /// cli/agents.example.toml; a building with `opt_out = true` trades by hand). Unset:
    /// each agent asks 0.080-0.110 and bids 0.100-0.150 credits per kWh.
    #[arg(long)]
    agents: Option<PathBuf>,
    /// Serve the campus console (its JSON API and the live campus page) here while the day
    /// runs, e.g. 127.0.0.1:8090, and keep it up after the day until Ctrl-C (or exit with
    /// the day: --console-exit).
    #[arg(long)]
    console: Option<std::net::SocketAddr>,
    /// With --model-end: model a clear summer workday (Monday to Friday), whose loads follow
    /// working hours, instead of today's weekday: a run of a few minutes then has buyers as
    /// well as sellers.
    #[arg(long, requires = "model_end")]
    workday: bool,
    /// Fail (exit 1) unless the day minted GRID and its auctions traded: for runs that must
    /// cover the whole loop, meter to token to trade, whatever the hour (with --model-end).
    #[arg(long)]
    expect_trading: bool,
    /// With --console: exit when the day ends instead of serving the final campus.
    #[arg(long, requires = "console")]
    console_exit: bool,
    /// Export the day's history into PostgreSQL (a libpq connection string or URL): the
    /// bridge keeps its export queue, whose readings and batches go in after every keeper
    /// pass, and the programs' events after the day (on the embedded chain; on a cluster,
    /// run the `exporter` binary beside it for those).
    #[arg(long, env = "GRIDTOKENX_HISTORY_URL")]
    history: Option<String>,
}

/// `HH:MM` (campus time) as seconds after midnight.
fn parse_time_of_day(s: &str) -> Result<i64, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not a time of day: write HH:MM, e.g. 14:00"))?;
    let h: i64 = h
        .parse()
        .map_err(|_| format!("`{s}`: the hour must be 0-23"))?;
    let m: i64 = m
        .parse()
        .map_err(|_| format!("`{s}`: the minutes must be 0-59"))?;
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(format!(
            "`{s}` is not a time of day: hours 0-23, minutes 0-59"
        ));
    }
    Ok(h * 3600 + m * 60)
}

/// Counts the heap the keeper holds (the report's keeper line).
#[global_allocator]
static ALLOCATOR: gridtokenx_tests::metering::CountingAllocator =
    gridtokenx_tests::metering::CountingAllocator;

/// The day with its history exported into PostgreSQL at `url` after every keeper pass (the
/// bridge's readings and batches), and the chain's events after the day (on the embedded
/// chain; on a cluster the `exporter` binary follows them).
async fn with_history(
    url: &str,
    mut options: DayOptions,
    config: CampusConfig,
) -> anyhow::Result<campus_day::DayReport> {
    use std::sync::Arc;
    let metrics = Arc::new(history::metrics::ExportMetrics::default());
    let exporter = Arc::new(tokio::sync::Mutex::new(
        history::export::Exporter::open(url, metrics.clone()).await?,
    ));
    let e = exporter.clone();
    options.history = Some(campus_day::HistoryHook(Arc::new(move |bridge, _pass| {
        let e = e.clone();
        Box::pin(async move {
            e.lock().await.bridge_catch_up(&bridge).await?;
            Ok(())
        })
    })));
    if options.rpc.is_some() {
        return campus_day::run(options, config).await;
    }
    let (report, mut chain) = campus_day::run_embedded(options, config).await?;
    let mut e = exporter.lock().await;
    loop {
        if !e.all_events_pass(&mut chain, 10_000).await?.more {
            break;
        }
    }
    let rows = metrics.rows.snapshot();
    println!("history: rows written into PostgreSQL, by source: {rows:?}");
    Ok(report)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let config = match CampusConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e} (run from the repository root, or pass --config)");
            return ExitCode::from(2);
        }
    };
    let place = match simulator::profile::Place::new(&config.site) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The meters and the bridge share this process: each meter's connection is two open
    // files (its end and the bridge's), kept open between posts. More meters than the
    // open-file limit holds open their connection per request, a bounded number at once.
    let files = 2 * config.buildings.len() + 512;
    let fit = bridge::net::fit_open_file_limit(files);
    let connection_limit = if fit >= files {
        None
    } else {
        let limit = (fit.saturating_sub(1_024) / 2).min(4_096);
        if limit < 64 {
            eprintln!(
                "error: {} buildings need about {files} open files in this one process, and \
                 this machine allows too few to run them even a connection at a time; raise \
                 `ulimit -n`",
                config.buildings.len()
            );
            return ExitCode::from(2);
        }
        eprintln!(
            "note: {} buildings would hold {files} open files in this one process (more than \
             its limit): the simulated meters open a connection per request, {limit} at once",
            config.buildings.len()
        );
        Some(limit)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let rpc = args.rpc.map(|url| campus_day::RpcOptions {
        url,
        wallet: args.wallet,
        timelock_s: 10,
        upgrade_oracle: args.upgrade_oracle,
    });
    let (intervals, interval_s, post_rate) = match &rpc {
        Some(_) => (
            args.intervals,
            args.interval_s,
            args.post_rate.unwrap_or(15),
        ),
        None => (args.hours * 4, 900, args.post_rate.unwrap_or(300)),
    };
    let agents = match args
        .agents
        .as_deref()
        .map(cli::agent::Agents::load)
        .transpose()
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let console = match args.console {
        None => None,
        Some(listen) => match console::server::start(listen).await {
            Ok(running) => {
                println!(
                    "console: the campus page at http://{}/ (JSON under /api/v1/), live as the day runs",
                    running.addr
                );
                Some(running)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
    };
    let options = DayOptions {
        config: args.config,
        pki: args.pki,
        intervals,
        interval_s,
        post_rate,
        seed: args.seed,
        model_offset_s: if let Some(time_of_day) = args.model_end {
            let end = match &rpc {
                Some(_) => now + i64::from(intervals) * i64::from(interval_s),
                None => now - now % i64::from(interval_s),
            };
            if args.workday {
                campus_day::clear_summer_workday_offset_ending_at(
                    &place,
                    end,
                    args.seed,
                    time_of_day,
                )
            } else {
                campus_day::clear_summer_offset_ending_at(&place, end, args.seed, time_of_day)
            }
        } else if args.season == "summer" {
            // The nearest summer-solstice week, at the same campus time of day (a whole
            // number of days would move it by daylight saving's hour).
            campus_day::offset_to_local_time(
                &place,
                now,
                campus_day::summer_offset_days(place.site(), now),
                place.local(now).rem_euclid(86_400),
            )
        } else {
            0
        },
        out: args.out,
        verbose: true,
        rpc,
        agents,
        meter_connections: connection_limit,
        console: console.as_ref().map(|c| c.publisher.clone()),
        history: None,
    };
    let outcome = match args.history {
        None => campus_day::run(options, config).await,
        Some(url) => with_history(&url, options, config).await,
    };
    if let (Some(running), false) = (&console, args.console_exit) {
        println!(
            "console: the day is over; the campus page stays at http://{}/ until Ctrl-C",
            running.addr
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    match outcome {
        Ok(report)
            if args.expect_trading
                && report.checks_ok
                && (report.grid_minted_wh == 0 || report.traded_wh == 0) =>
        {
            eprintln!(
                "error: --expect-trading: the day minted {} Wh of GRID and traded {} Wh ({} auctions cleared): the loop from meter to trade was not covered",
                report.grid_minted_wh, report.traded_wh, report.intervals_cleared
            );
            ExitCode::from(1)
        }
        Ok(report) if report.checks_ok && report.keeper_failures == 0 => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("error: a check failed (see the report)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
