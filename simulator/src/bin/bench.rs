//! Load benchmark of the bridge: N meters, each with its own device certificate, hold mutual
//! TLS connections to a bridge process and post readings as fast as it acknowledges them.
//! Prints connection set-up time, throughput, latency percentiles and the bridge's memory.
//!
//! Everything runs on this machine: the bridge is a child process (its memory is measured
//! alone); the load generator shares the CPU with it, so the figures are a lower bound.
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sep2::{
    self, DateTimeInterval, MirrorMeterReading, MirrorMeterReadingList, MirrorUsagePoint, Reading,
};
use simulator::client::{client_config, MeterClient, Suites};
use tokio::sync::{Barrier, Semaphore};

#[derive(Parser)]
#[command(
    version,
    about = "Load benchmark: N concurrent mTLS meters posting readings to a bridge process."
)]
struct Args {
    /// Concurrent meters (connections held open).
    #[arg(long, default_value_t = 10_000)]
    meters: usize,
    /// Seconds of posting once every meter is connected.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Offered load in readings per second across all meters (each post carries 2), spread
    /// evenly; 0 posts as fast as the bridge answers (saturation).
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// TLS handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Work directory (PKI, campus file, store); a temporary one by default.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// The bridge's log filter (RUST_LOG syntax); its logs go to this program's stderr.
    /// `bridge::store=debug` shows every store commit and checkpoint with its timings.
    #[arg(long, default_value = "error")]
    bridge_log: String,
    /// The bridge's keeper interface port (a free one by default): for a keeper or the
    /// history exporter to follow the bridge while it is loaded.
    #[arg(long)]
    keeper_port: Option<u16>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn write_campus(path: &Path, meters: usize) -> Result<()> {
    let mut text = String::from(
        "name = \"Benchmark campus\"\n[cluster]\nname = \"localnet\"\nrpc_url = \"http://127.0.0.1:8899\"\n[attestors]\nkeys = []\nquorum = 1\n[council]\nthreshold = 1\ntimelock_seconds = 0\n",
    );
    for i in 0..meters {
        text.push_str(&format!("[[buildings]]\ncode = \"M{i:05}\"\nkind = \"Academic\"\ngeneration_kw = 50\nstorage_kwh = 30\nmax_discharge_kw = 15\nmax_import_kw = 100\n"));
    }
    std::fs::write(path, text)?;
    Ok(())
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn register(mrid: String, flow: u8, wh: i64, t: i64, with_type: bool) -> MirrorMeterReading {
    MirrorMeterReading {
        mrid,
        reading: Some(Reading {
            value: Some(wh),
            time_period: Some(DateTimeInterval {
                duration: 60,
                start: t - 60,
            }),
            ..Reading::default()
        }),
        reading_type: with_type.then(|| simulator::meter::cumulative_reading_type(flow)),
        ..MirrorMeterReading::default()
    }
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let campus_path = dir.join("campus.toml");
    write_campus(&campus_path, args.meters)?;
    let campus = sdk::CampusConfig::load(&campus_path)?;
    let t = Instant::now();
    let pki = certs::ensure_pki(&certs::Layout::new(dir.join("pki")), &campus)?;
    println!(
        "PKI: {} device certificates in {:.1} s",
        pki.meters.len(),
        t.elapsed().as_secs_f64()
    );

    let (port, keeper_port) = (free_port(), args.keeper_port.unwrap_or_else(free_port));
    let mut child = Command::new(std::env::current_exe()?.with_file_name("bridge"))
        .env("GRIDTOKENX_BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("GRIDTOKENX_BRIDGE_METRICS_LISTEN", "127.0.0.1:0")
        .env(
            "GRIDTOKENX_BRIDGE_KEEPER_LISTEN",
            format!("127.0.0.1:{keeper_port}"),
        )
        .env("GRIDTOKENX_BRIDGE_DATA_DIR", dir.join("data"))
        .env("GRIDTOKENX_BRIDGE_PKI_DIR", dir.join("pki"))
        .env("GRIDTOKENX_BRIDGE_CAMPUS_CONFIG", &campus_path)
        .env(
            "GRIDTOKENX_BRIDGE_MAX_CONNECTIONS",
            (args.meters + 100).to_string(),
        )
        .env("GRIDTOKENX_BRIDGE_HANDSHAKE_TIMEOUT_S", "60")
        // Every simulated meter connects from 127.0.0.1; on a campus they have their own
        // addresses, so the per-address handshake cap is lifted here.
        .env(
            "GRIDTOKENX_BRIDGE_MAX_HANDSHAKES_PER_IP",
            (args.connect_concurrency * 2).to_string(),
        )
        .env("RUST_LOG", &args.bridge_log)
        .stdout(Stdio::null())
        .spawn()
        .context("start the bridge binary (build it first: cargo build --profile perf -p bridge -p simulator --bins)")?;
    let pid = child.id();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "bridge did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle_rss = rss_kib(pid, "VmRSS:").unwrap_or(0);

    let ca = CertificateDer::from_pem_file(pki.layout.ca_cert())?;
    let mut clients = Vec::with_capacity(args.meters);
    for m in &pki.meters {
        let cert = CertificateDer::from_pem_file(&m.cert)?;
        let key = PrivateKeyDer::from_pem_file(&m.key)?;
        clients.push((
            sdk::identity::lfdi_hex(&m.lfdi),
            MeterClient::new(client_config(ca.clone(), cert, key, Suites::Default)?, addr),
        ));
    }

    let handshakes = Arc::new(Semaphore::new(args.connect_concurrency));
    let start_posting = Arc::new(Barrier::new(args.meters + 1));
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicU64::new(0));
    let stop_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let connect_started = Instant::now();
    // Readings from 20 days ago on: within the bridge's retention window (30 days; older
    // readings are refused), and a minute apart, so that the posts stay in the past.
    let t0 = bridge::server::now() - 20 * 86_400;
    let mut tasks = Vec::new();
    let (rate, meters) = (args.rate, args.meters);
    for (lfdi, mut client) in clients {
        let (handshakes, barrier, acked, failed, connected, stop_at) = (
            handshakes.clone(),
            start_posting.clone(),
            acked.clone(),
            failed.clone(),
            connected.clone(),
            stop_at.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let permit = handshakes.acquire().await.expect("semaphore");
            // A meter whose handshake fails tries again, as a real one would.
            let mut ok = false;
            for _ in 0..5 {
                if client.connect().await.is_ok() {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            drop(permit);
            if ok {
                connected.fetch_add(1, Ordering::Relaxed);
            }
            let mrid = |s: &str| format!("{}{s}", &lfdi[..24]);
            let site = MirrorUsagePoint {
                xmlns: sep2::with_ns(),
                mrid: mrid("00000001"),
                role_flags: "03".into(),
                service_category_kind: 0,
                status: 1,
                device_lfdi: lfdi.clone(),
                mirror_meter_readings: vec![
                    register(mrid("0000000A"), 1, 0, t0, true),
                    register(mrid("0000000B"), 19, 0, t0, true),
                ],
                ..MirrorUsagePoint::default()
            };
            let location = if ok {
                client
                    .post("/mup", sep2::to_xml("MirrorUsagePoint", &site))
                    .await
                    .ok()
                    .and_then(|r| r.location)
            } else {
                None
            };
            barrier.wait().await;
            let Some(location) = location else {
                failed.fetch_add(1, Ordering::Relaxed);
                return (latencies, client);
            };
            let stop = *stop_at.get().expect("set before the barrier opens");
            // Paced: this meter posts every `period`, starting at a random phase.
            let period =
                (rate > 0).then(|| Duration::from_secs_f64(2.0 * meters as f64 / rate as f64));
            let mut next_post = Instant::now()
                + period
                    .map(|p| p.mul_f64(rand::random::<f64>()))
                    .unwrap_or_default();
            let mut k = 1i64;
            while Instant::now() < stop {
                if let Some(period) = period {
                    tokio::time::sleep_until(next_post.into()).await;
                    next_post += period;
                    if Instant::now() >= stop {
                        break;
                    }
                }
                let t = t0 + k * 60;
                let body = sep2::to_xml(
                    "MirrorMeterReadingList",
                    &MirrorMeterReadingList {
                        xmlns: sep2::with_ns(),
                        readings: vec![
                            register(mrid("0000000A"), 1, k * 10, t, false),
                            register(mrid("0000000B"), 19, k * 5, t, false),
                        ],
                    },
                );
                let sent = Instant::now();
                match client.post(&location, body).await {
                    Ok(r) if r.status == 204 => {
                        latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        acked.fetch_add(2, Ordering::Relaxed);
                        k += 1;
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            // The connection stays open until every meter has stopped (the caller drops
            // it): 10,000 connections closing at once would slow the last posts in flight.
            (latencies, client)
        }));
    }
    // Progress while connecting.
    loop {
        let n = connected.load(Ordering::Relaxed) as usize;
        if n >= args.meters
            || tasks.iter().all(|t| t.is_finished())
            || connect_started.elapsed() > Duration::from_secs(600)
        {
            break;
        }
        println!(
            "  connected {n}/{} meters ({:.1} s)",
            args.meters,
            connect_started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop_at
        .set(Instant::now() + Duration::from_secs(args.seconds) + Duration::from_millis(500))
        .ok();
    start_posting.wait().await;
    let connect_time = connect_started.elapsed();
    let held = connected.load(Ordering::Relaxed);
    let held_rss = rss_kib(pid, "VmRSS:").unwrap_or(0);
    println!(
        "all {held} meters connected and mirrored in {:.1} s; posting for {} s at {}",
        connect_time.as_secs_f64(),
        args.seconds,
        if args.rate > 0 {
            format!("{} readings/s offered", args.rate)
        } else {
            "saturation (closed loop)".into()
        }
    );
    let store_path = dir.join("data").join("bridge.redb");
    let store_before = std::fs::metadata(&store_path).map(|m| m.len()).unwrap_or(0);
    let posting = Instant::now();
    let (bridge_cpu0, bench_cpu0) = (cpu_seconds(&pid.to_string()), cpu_seconds("self"));
    let mut latencies = Vec::new();
    let mut open = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (posted, client) = task.await?;
        latencies.extend(posted);
        open.push(client);
    }
    let (bridge_cpu, bench_cpu) = (
        cpu_seconds(&pid.to_string()) - bridge_cpu0,
        cpu_seconds("self") - bench_cpu0,
    );
    drop(open);
    let window = stop_at
        .get()
        .expect("set")
        .saturating_duration_since(posting)
        .as_secs_f64();
    let elapsed = posting.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let peak = rss_kib(pid, "VmHWM:").unwrap_or(0);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();

    let readings = acked.load(Ordering::Relaxed);
    // After the bridge stopped: redb's file length (space it has allocated, not compacted).
    let store_after = std::fs::metadata(&store_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "\nbridge load benchmark ({})",
        if args.rate > 0 {
            format!("offered {} readings/s", args.rate)
        } else {
            "saturation".to_string()
        }
    );
    println!(
        "  meters connected (mutual TLS, held open): {held} of {}",
        args.meters
    );
    println!(
        "  connect + MirrorUsagePoint for all:       {:.1} s",
        connect_time.as_secs_f64()
    );
    println!("  readings acknowledged:                    {readings} in the {window:.1} s window = {:.0} readings/s", readings as f64 / window);
    println!(
        "  posts (2 readings each):                  {} ; failed {}",
        latencies.len(),
        failed.load(Ordering::Relaxed)
    );
    println!(
        "  latency per post: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!("  CPU over {elapsed:.1} s: bridge {bridge_cpu:.1} s ({:.0}% of one core), load generator {bench_cpu:.1} s ({:.0}%)", 100.0 * bridge_cpu / elapsed, 100.0 * bench_cpu / elapsed);
    println!(
        "  bridge memory: idle {:.0} MiB, {held} connections {:.0} MiB, peak {:.0} MiB",
        idle_rss as f64 / 1024.0,
        held_rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!(
        "  store file: {:.1} MiB after the mirrors, {:.1} MiB at the end ({:.0} bytes per acknowledged reading)",
        store_before as f64 / 1_048_576.0,
        store_after as f64 / 1_048_576.0,
        store_after.saturating_sub(store_before) as f64 / readings.max(1) as f64
    );
    Ok(())
}
