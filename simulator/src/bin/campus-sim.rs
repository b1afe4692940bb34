//! The campus meter simulator: the campus's buildings as real IEEE 2030.5 clients over mutual
//! TLS, each with its own device certificate, posting cumulative import and export readings
//! from seeded physical models (solar by time of day, season and weather; consumption by
//! building kind; batteries).
//!
//! Exit codes: 0 done, 1 the bridge refused or stayed unreachable, 2 unusable configuration.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sdk::CampusConfig;
use simulator::client::{client_config, MeterClient, Suites};
use simulator::meter::{Acknowledged, SimulatedMeter};
use simulator::profile::{BuildingModel, Registers};
use simulator::runner::{Campus, SimOptions};

#[derive(Parser)]
#[command(
    version,
    about = "Runs the campus meters as IEEE 2030.5 clients against the bridge, posting simulated readings.",
    long_about = "Runs the campus meters as IEEE 2030.5 clients over mutual TLS against the bridge: discovery (dcap, edev, \
mup), a MirrorUsagePoint per meter, then cumulative import and export readings every post rate, from seeded physical \
models. Simulated time runs in the past up to now (the bridge refuses readings from the future), --speed times faster \
than real time. The same seed gives the same readings. With --state, a stopped simulation continues where it left off."
)]
struct Args {
    /// The bridge's meter address.
    #[arg(long, env = "GRIDTOKENX_SIM_BRIDGE", default_value = "127.0.0.1:8443")]
    bridge: std::net::SocketAddr,
    #[arg(long, env = "GRIDTOKENX_CAMPUS_CONFIG", default_value_os_t = CampusConfig::default_path())]
    config: PathBuf,
    /// Campus PKI (ca.pem, meters/<CODE>.pem and .key).
    #[arg(long, env = "GRIDTOKENX_PKI_DIR", default_value_os_t = certs::Layout::default_dir())]
    pki: PathBuf,
    /// Random seed of weather, events and noise.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Simulated hours.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Seconds between posts (IEEE 2030.5 postRate).
    #[arg(long, default_value_t = 300)]
    post_rate: u32,
    /// Simulated seconds per real second (0: as fast as the bridge answers).
    #[arg(long, default_value_t = 3600.0)]
    speed: f64,
    /// Only these buildings (comma-separated codes); default all.
    #[arg(long, value_delimiter = ',')]
    meters: Vec<String>,
    /// Save and resume the meters' registers here.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Give up on an unreachable bridge after this many seconds.
    #[arg(long, default_value_t = 120)]
    max_retry_s: u64,
    /// TLS handshakes in flight at once across the meters (below the bridge's
    /// max_handshakes_per_ip, 256 by default: the simulated meters share one address).
    #[arg(long, default_value_t = simulator::client::DEFAULT_MAX_HANDSHAKES)]
    max_handshakes: usize,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct SavedState {
    /// Simulated time reached.
    t: i64,
    meters: std::collections::BTreeMap<String, SavedMeter>,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Copy)]
struct SavedMeter {
    import_wh: u64,
    export_wh: u64,
    generated_wh: u64,
    consumed_wh: u64,
    soc_wh: f64,
    acknowledged: Acknowledged,
}

async fn run(args: Args) -> Result<ExitCode> {
    let campus = match CampusConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let layout = certs::Layout::new(&args.pki);
    let ca = CertificateDer::from_pem_file(layout.ca_cert())
        .with_context(|| format!("campus CA in {}", args.pki.display()))?;
    let saved: Option<SavedState> = match &args.state {
        Some(path) if path.exists() => Some(serde_json::from_str(&std::fs::read_to_string(path)?)?),
        _ => None,
    };
    let duration_s = (args.hours * 3600.0) as i64;
    let now = bridge::server::now();
    let start = match &saved {
        Some(s) => s.t,
        None => (now - duration_s) / i64::from(args.post_rate) * i64::from(args.post_rate),
    };
    let end = (start + duration_s).min(now);

    let place = simulator::profile::Place::new(&campus.site)?;
    let mut models = Vec::new();
    let mut meters = Vec::new();
    let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(args.max_handshakes.max(1)));
    for (i, building) in campus.buildings.iter().enumerate() {
        if !args.meters.is_empty() && !args.meters.contains(&building.code) {
            continue;
        }
        let mut model = BuildingModel::new(building, i, args.seed, &place);
        let cert = CertificateDer::from_pem_file(layout.meter_cert(&building.code))
            .with_context(|| format!("certificate of {}", building.code))?;
        let key = PrivateKeyDer::from_pem_file(layout.meter_key(&building.code))
            .with_context(|| format!("key of {}", building.code))?;
        let lfdi = sdk::identity::lfdi_hex(&sdk::identity::lfdi_from_certificate(&cert));
        let client = MeterClient::new(
            client_config(ca.clone(), cert, key, Suites::Default)?,
            args.bridge,
        )
        .with_handshake_limit(handshakes.clone());
        let mut meter = SimulatedMeter::new(&building.code, &lfdi, client);
        meter.max_retry = Duration::from_secs(args.max_retry_s);
        if let Some(s) = saved.as_ref().and_then(|s| s.meters.get(&building.code)) {
            model.restore(
                Registers {
                    import_wh: s.import_wh,
                    export_wh: s.export_wh,
                    generated_wh: s.generated_wh,
                    consumed_wh: s.consumed_wh,
                },
                s.soc_wh,
            );
            meter.acknowledged = s.acknowledged;
        }
        models.push(model);
        meters.push(meter);
    }
    println!(
        "simulating {} meters for {:.1} h (seed {}, post rate {} s, speed {}x) against {}",
        meters.len(),
        (end - start) as f64 / 3600.0,
        args.seed,
        args.post_rate,
        args.speed,
        args.bridge
    );
    let options = SimOptions {
        start,
        duration_s: end - start,
        post_rate_s: args.post_rate,
        speed: args.speed,
        progress_every_s: 3600,
    };
    let mut sim = Campus { models, meters };
    let result = sim.run(&options).await;

    let reached = start + (end - start) / i64::from(args.post_rate) * i64::from(args.post_rate);
    if let Some(path) = &args.state {
        let state = SavedState {
            t: reached,
            meters: sim
                .models
                .iter()
                .zip(&sim.meters)
                .map(|(m, meter)| {
                    let r = m.registers();
                    (
                        m.code.clone(),
                        SavedMeter {
                            import_wh: r.import_wh,
                            export_wh: r.export_wh,
                            generated_wh: r.generated_wh,
                            consumed_wh: r.consumed_wh,
                            soc_wh: m.soc_wh,
                            acknowledged: meter.acknowledged,
                        },
                    )
                })
                .collect(),
        };
        std::fs::write(path, serde_json::to_string_pretty(&state)?)?;
    }
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let kwh = |wh: u64| wh as f64 / 1000.0;
    println!(
        "\n{:<9} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "building", "gen kWh", "used kWh", "export kWh", "import kWh", "acked"
    );
    let mut total = Registers::default();
    for b in &summary {
        let r = b.registers;
        println!(
            "{:<9} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9}",
            b.code,
            kwh(r.generated_wh),
            kwh(r.consumed_wh),
            kwh(r.export_wh),
            kwh(r.import_wh),
            b.acknowledged.readings
        );
        total.generated_wh += r.generated_wh;
        total.consumed_wh += r.consumed_wh;
        total.export_wh += r.export_wh;
        total.import_wh += r.import_wh;
    }
    let acked: u64 = summary.iter().map(|b| b.acknowledged.readings).sum();
    println!(
        "{:<9} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9}",
        "total",
        kwh(total.generated_wh),
        kwh(total.consumed_wh),
        kwh(total.export_wh),
        kwh(total.import_wh),
        acked
    );
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
