//! The alert drill on a cluster: the bridge binary and the keeper binary beside 25 simulated
//! meters posting in real time, scraped by a real Prometheus with the campus's alert rules
//! (`scripts/validator-alerts` starts the validator and Prometheus). After a while one
//! meter stops posting; the drill follows Prometheus's alerts until `GridtokenxMeterSilent`
//! fires for that building, and checks that it fires for no other one, that both targets
//! are scraped (up) when the meter stops and when the alert fires, and that both are ready
//! when it stops.
//!
//! Exit codes: 0 the alert fired as expected, 1 a step or a check failed, 2 unusable
//! configuration.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use gridtokenx_tests::fault::{kill_9, simulated_campus, ClusterArgs, ClusterCampus};
use sdk::CampusConfig;
use solana_keypair::Keypair;

const POST_RATE: u32 = 15;

#[derive(Parser)]
#[command(
    about = "Alert drill: a campus on a cluster scraped by Prometheus; one meter stops and the silent-meter alert must fire for it alone.",
    long_about = "Alert drill: sets up a campus on a fresh validator (as the fault drill does), starts the \
bridge and keeper binaries with their metrics on the given ports, and has 25 simulated meters post every 15 s \
in real time. A Prometheus (started by scripts/validator-alerts with monitoring/alerts.yml) scrapes both. After \
--before-min minutes the meter --silence stops posting; the drill polls Prometheus's /api/v1/alerts and prints \
each change until GridtokenxMeterSilent fires for that building, then checks that no other building's did.\n\n\
Exit codes: 0 the alert fired as expected, 1 a step or a check failed, 2 unusable configuration."
)]
struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Where the PKI, the bridge's data, the keeper's files and logs go (replaced).
    #[arg(long, default_value = "alert-drill")]
    out: PathBuf,
    /// The bridge's and the keeper's metrics ports (Prometheus's scrape targets).
    #[arg(long, default_value_t = 9645)]
    bridge_metrics_port: u16,
    #[arg(long, default_value_t = 9646)]
    keeper_metrics_port: u16,
    /// Prometheus's address (host:port).
    #[arg(long, default_value = "127.0.0.1:9090")]
    prometheus: String,
    /// The building whose meter stops posting.
    #[arg(long, default_value = "ENG")]
    silence: String,
    /// Minutes of posting by every meter before it stops.
    #[arg(long, default_value_t = 2)]
    before_min: u64,
    /// Minutes to wait for the alert after it stops.
    #[arg(long, default_value_t = 6)]
    timeout_min: u64,
}

/// `GET path` on a plain-HTTP server: the status and the body.
async fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("an HTTP status line")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

/// Prometheus's API: the `data` of a successful answer.
async fn prometheus(addr: &str, path: &str) -> Result<serde_json::Value> {
    let (status, body) = http_get(addr, path).await?;
    ensure!(status == 200, "Prometheus {path}: HTTP {status}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    ensure!(v["status"] == "success", "Prometheus {path}: {body}");
    Ok(v["data"].clone())
}

/// A PromQL instant query's first value.
async fn query(addr: &str, promql: &str) -> Result<Option<f64>> {
    let encoded: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let data = prometheus(addr, &format!("/api/v1/query?query={encoded}")).await?;
    Ok(data["result"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|s| s["value"][1].as_str())
        .and_then(|v| v.parse().ok()))
}

/// Each scrape target's job and health ("up", "down", "unknown").
async fn targets(addr: &str) -> Result<Vec<(String, String)>> {
    let data = prometheus(addr, "/api/v1/targets").await?;
    Ok(data["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap_or("").to_string(),
                t["health"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}

/// Both targets scraped successfully.
fn both_up(targets: &[(String, String)]) -> bool {
    ["gridtokenx-bridge", "gridtokenx-keeper"]
        .iter()
        .all(|job| targets.iter().any(|(j, h)| j == job && h == "up"))
}

/// The alerts Prometheus holds now: (name, building or instance, state).
async fn alerts(addr: &str) -> Result<Vec<(String, String, String)>> {
    let data = prometheus(addr, "/api/v1/alerts").await?;
    let mut out: Vec<(String, String, String)> = data["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let labels = &a["labels"];
            let subject = labels["building"]
                .as_str()
                .or(labels["subject"].as_str())
                .or(labels["instance"].as_str())
                .unwrap_or("")
                .to_string();
            (
                labels["alertname"].as_str().unwrap_or("").to_string(),
                subject,
                a["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
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
    if !config.buildings.iter().any(|b| b.code == args.silence) {
        eprintln!("error: --silence {}: no such building", args.silence);
        return ExitCode::from(2);
    }
    match drill(&args, &config, payer).await {
        Ok(summary) => {
            // Printed as it went.
            let _ = std::fs::write(args.out.join("alert-drill.txt"), &summary);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn drill(args: &Args, config: &CampusConfig, payer: Keypair) -> Result<String> {
    let _ = std::fs::remove_dir_all(&args.out);
    std::fs::create_dir_all(args.out.join("keeper"))?;
    let out = std::fs::canonicalize(&args.out)?;
    let ClusterCampus {
        pki,
        bridge,
        mut bridge_child,
        mut keeper_child,
        ..
    } = ClusterCampus::start(
        &args.cluster.rpc,
        payer,
        config,
        &out,
        POST_RATE,
        (args.bridge_metrics_port, args.keeper_metrics_port),
    )
    .await?;
    let prom = args.prometheus.as_str();
    let bridge_metrics = format!("127.0.0.1:{}", args.bridge_metrics_port);
    let keeper_metrics = format!("127.0.0.1:{}", args.keeper_metrics_port);

    let now = bridge::server::now();
    let start = now - now.rem_euclid(i64::from(POST_RATE));
    let mut sim = simulated_campus(config, &pki, bridge.port, start, 13)?;
    sim.connect(start, POST_RATE).await?;
    let mut log = Vec::new();
    let mut say = |line: String| {
        println!("{line}");
        log.push(line);
    };
    say(format!(
        "[1/3] 25 meters posting every {POST_RATE} s; Prometheus at {prom} scrapes the bridge ({bridge_metrics}) and the keeper ({keeper_metrics}); {} stops after {} min",
        args.silence, args.before_min
    ));
    let wall = Instant::now();
    let silence_at = wall + Duration::from_secs(args.before_min * 60);
    let deadline = silence_at + Duration::from_secs(args.timeout_min * 60);
    let mut silenced_at: Option<Instant> = None;
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let mut fired = None;
    let mut others = Vec::new();
    let mut k = 0i64;
    while fired.is_none() {
        ensure!(
            Instant::now() < deadline,
            "GridtokenxMeterSilent did not fire for {} within {} min of its silence",
            args.silence,
            args.timeout_min
        );
        let due = wall + Duration::from_secs(((k + 1) * i64::from(POST_RATE)) as u64);
        tokio::time::sleep_until(due.into()).await;
        let t = start + k * i64::from(POST_RATE);
        k += 1;
        if silenced_at.is_none() && Instant::now() >= silence_at {
            let i = sim
                .meters
                .iter()
                .position(|m| m.code == args.silence)
                .context("the silenced meter")?;
            sim.meters.remove(i);
            sim.models.remove(i);
            silenced_at = Some(Instant::now());
            let scraped = targets(prom).await?;
            ensure!(both_up(&scraped), "a target is not scraped: {scraped:?}");
            let up: Vec<String> = scraped.iter().map(|(j, h)| format!("{j} {h}")).collect();
            say(format!(
                "[2/3] t+{:>3} s  {} stops posting; targets: {}",
                wall.elapsed().as_secs(),
                args.silence,
                up.join(", ")
            ));
            for (what, promql) in [
                ("register readings the bridge accepted (import and export)", "gridtokenx_bridge_readings_accepted_total"),
                ("meter readings the keeper put on chain", "gridtokenx_keeper_readings_submitted_total"),
                ("batches applied", "gridtokenx_keeper_batches_applied_total"),
                (
                    "p90 reading-to-chain delay (s)",
                    "histogram_quantile(0.9, rate(gridtokenx_keeper_reading_to_chain_seconds_bucket[2m]))",
                ),
                ("keeper payer balance (SOL)", "gridtokenx_keeper_payer_balance_lamports / 1e9"),
            ] {
                let value = query(prom, promql).await?;
                say(format!(
                    "           {what}: {}",
                    value.map_or("none".into(), |v| format!("{v:.1}"))
                ));
            }
            for (name, addr) in [("bridge", &bridge_metrics), ("keeper", &keeper_metrics)] {
                let (status, body) = http_get(addr, "/ready").await?;
                say(format!(
                    "           {name} /ready: {status} {}",
                    body.trim().replace('\n', " ")
                ));
                ensure!(status == 200, "the {name} is not ready: {body}");
            }
        }
        sim.advance(t, t + i64::from(POST_RATE), POST_RATE, None)
            .await
            .with_context(|| format!("meters posting at step {k}"))?;
        let now_alerts = alerts(prom).await?;
        if now_alerts != seen {
            for a in now_alerts.iter().filter(|a| !seen.contains(a)) {
                say(format!(
                    "  t+{:>3} s  alert {}{{{}}} {}",
                    wall.elapsed().as_secs(),
                    a.0,
                    a.1,
                    a.2
                ));
            }
            for a in seen
                .iter()
                .filter(|a| !now_alerts.iter().any(|n| (&n.0, &n.1) == (&a.0, &a.1)))
            {
                say(format!(
                    "  t+{:>3} s  alert {}{{{}}} resolved",
                    wall.elapsed().as_secs(),
                    a.0,
                    a.1
                ));
            }
            seen = now_alerts;
        }
        for (name, subject, state) in &seen {
            if name == "GridtokenxMeterSilent" && subject != &args.silence {
                others.push(format!("{subject} {state}"));
            }
            if name == "GridtokenxMeterSilent" && subject == &args.silence && state == "firing" {
                fired = silenced_at.map(|s| s.elapsed());
            }
        }
    }
    let scraped = targets(prom).await?;
    kill_9(&mut keeper_child)?;
    kill_9(&mut bridge_child)?;
    ensure!(
        both_up(&scraped),
        "a target is not scraped at the end: {scraped:?}"
    );
    let fired = fired.unwrap_or_default();
    if !others.is_empty() {
        bail!("GridtokenxMeterSilent also for: {}", others.join(", "));
    }
    say(format!(
        "[3/3] GridtokenxMeterSilent fired for {} {} s after its last post (silent > 2 x {POST_RATE} s, then `for: 1m`), for no other building",
        args.silence,
        fired.as_secs()
    ));
    Ok(log.join("\n"))
}
