//! `console-bench`: the console's answer times under a steady request rate.
//!
//! On a schedule: request `i` is due at `start + i / rate`, spread over `--connections`
//! keep-alive connections (each sends one request at a time), and its time is counted from
//! when it was due (a slow answer
//! delays the ones behind it, and they count that too; so does the client's timer, which
//! wakes up to a millisecond late). The time from sending to the whole answer is printed
//! beside it (`service`). The routes alternate as the page
//! and API clients use them (snapshot, campus, buildings, one building, intervals, orders,
//! meters, batches).
//!
//! Without `--url` it starts a console in this process, publishes a campus of
//! `--buildings` buildings (generated: a day of intervals, open orders, fills) and publishes
//! it again every `--republish-ms`, as the poller does; with `--url` it measures a running
//! console (for example the campus day's).
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use console::model::*;
use http_body_util::{BodyExt, Empty};

#[derive(Parser)]
#[command(
    version,
    about = "Measures the console's answer times at a steady request rate (on a schedule)."
)]
struct Args {
    /// A running console (host:port); without it, one is started here.
    #[arg(long)]
    url: Option<SocketAddr>,
    /// Requests per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Buildings of the generated campus.
    #[arg(long, default_value_t = 25)]
    buildings: usize,
    /// The building `/api/v1/buildings/{code}` asks for (B0 in the generated campus).
    #[arg(long, default_value = "B0")]
    building: String,
    /// How often the generated campus is published again (the poller's refresh).
    #[arg(long, default_value_t = 2_000)]
    republish_ms: u64,
}

fn routes(building: &str) -> Vec<String> {
    [
        "/api/v1/snapshot",
        "/api/v1/campus",
        "/api/v1/buildings",
        &format!("/api/v1/buildings/{building}"),
        "/api/v1/intervals",
        "/api/v1/orders",
        "/api/v1/meters",
        "/api/v1/batches",
    ]
    .map(String::from)
    .to_vec()
}

/// A campus of `n` buildings with a day of intervals, an order per building and the
/// fills of a day.
fn campus(n: usize, version: u64) -> Snapshot {
    let buildings: Vec<Building> = (0..n)
        .map(|i| Building {
            code: format!("B{i}"),
            lfdi: format!("{:040X}", i),
            kind: "Academic".into(),
            owner: "11111111111111111111111111111111".into(),
            status: "Active".into(),
            import_wh: 1_000_000 + i as u64,
            export_wh: 2_000_000 + i as u64,
            verified_import_wh: 900_000,
            verified_export_wh: 1_900_000,
            grid_minted_wh: 1_900_000,
            grid_wh: 1_000_000,
            quote: 5_000_000,
            open_orders: 1,
            ..Building::default()
        })
        .collect();
    let intervals = (0..96u64)
        .map(|k| Interval {
            interval: 1_000 + k,
            starts_at: 1_700_000_000 + 900 * k as i64,
            state: "closed".into(),
            price: 100_000 + k * 1_000,
            volume_wh: 50_000 + k * 100,
            buy_orders: 12,
            sell_orders: 13,
            buy_offered_wh: 60_000,
            sell_offered_wh: 70_000,
        })
        .collect();
    let orders = (0..n)
        .map(|i| OrderRow {
            building: format!("B{i}"),
            order: cli::OrderView {
                interval: 1_097,
                starts_at: 1_700_087_300,
                side: if i % 2 == 0 { "buy" } else { "sell" }.into(),
                quantity_wh: 2_000,
                limit_price: 110_000,
                escrow: 220,
                address: "11111111111111111111111111111111".into(),
                state: "open".into(),
            },
        })
        .collect();
    let fills = (0..console::collect::KEPT_FILLS)
        .map(|i| Fill {
            interval: 1_000 + (i as u64 % 96),
            building: format!("B{}", i % n.max(1)),
            side: "buy".into(),
            filled_wh: 1_500,
            quote: 165,
            refund: 0,
            slot: i as u64,
        })
        .collect();
    let meters = buildings
        .iter()
        .map(|b| MeterHealth {
            code: b.code.clone(),
            lfdi: b.lfdi.clone(),
            status: "Active".into(),
            last_reading: 1_700_086_000,
            age_s: Some(30),
            readings: 1_440,
            health: "ok".into(),
        })
        .collect();
    Snapshot {
        version,
        campus: Campus {
            name: "bench".into(),
            meters: n as u64,
            meters_active: n as u64,
            history_complete: true,
            ..Campus::default()
        },
        buildings,
        intervals,
        orders,
        fills,
        meters,
        batches: Batches {
            highest_sequence: 96,
            recent: (0..console::collect::KEPT_BATCHES as u64)
                .map(|s| BatchRow {
                    sequence: s,
                    applied: 25,
                    skipped: 0,
                    slot: s,
                })
                .collect(),
            bridge: None,
        },
        proposals: Vec::new(),
    }
}

/// One connection's share of the schedule: requests `c`, `c + k`, `c + 2k`, ... of `total`.
async fn connection(
    addr: SocketAddr,
    c: usize,
    k: usize,
    total: u64,
    rate: u64,
    start: Instant,
    routes: Vec<String>,
) -> Result<(Vec<u32>, Vec<u32>, u64)> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut latencies = Vec::with_capacity((total as usize / k) + 1);
    let mut service = Vec::with_capacity((total as usize / k) + 1);
    let mut errors = 0;
    let mut i = c as u64;
    while i < total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let route = &routes[(i as usize) % routes.len()];
        let req = hyper::Request::get(route.as_str())
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())?;
        let sent = Instant::now();
        match sender.send_request(req).await {
            Ok(resp) => {
                let ok = resp.status().is_success();
                let body = resp.into_body().collect().await;
                if !ok || body.is_err() {
                    errors += 1;
                }
            }
            Err(e) => bail!("request {route}: {e}"),
        }
        latencies.push(due.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        service.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        i += k as u64;
    }
    Ok((latencies, service, errors))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1_000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.rate > 0 && args.connections > 0,
        "rate and connections must be positive"
    );
    let mut running = None;
    let addr = match args.url {
        Some(a) => a,
        None => {
            let r = console::server::start("127.0.0.1:0".parse()?).await?;
            r.publisher.publish(&campus(args.buildings, 1))?;
            let addr = r.addr;
            let publisher = r.publisher.clone();
            let n = args.buildings;
            let every = Duration::from_millis(args.republish_ms.max(1));
            tokio::spawn(async move {
                let mut v = 1;
                loop {
                    tokio::time::sleep(every).await;
                    v += 1;
                    let _ = publisher.publish(&campus(n, v));
                }
            });
            running = Some(r);
            addr
        }
    };
    let snapshot_bytes = {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let resp = sender
            .send_request(
                hyper::Request::get("/api/v1/snapshot")
                    .header("host", addr.to_string())
                    .body(Empty::<Bytes>::new())?,
            )
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "the console at {addr} answers {} (has it read the chain?)",
            resp.status()
        );
        resp.into_body().collect().await?.to_bytes().len()
    };
    let total = args.rate * args.seconds;
    println!(
        "console-bench: {} requests at {} req/s over {} connections to {} ({}; snapshot {} bytes)",
        total,
        args.rate,
        args.connections,
        addr,
        if running.is_some() {
            format!("in-process console, {} buildings", args.buildings)
        } else {
            "a running console".into()
        },
        snapshot_bytes
    );
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        tasks.push(tokio::spawn(connection(
            addr,
            c,
            args.connections,
            total,
            args.rate,
            start,
            routes(&args.building),
        )));
    }
    let progress = tokio::spawn(async move {
        for s in 1..args.seconds {
            tokio::time::sleep_until((start + Duration::from_secs(s)).into()).await;
            if s % 5 == 0 {
                eprintln!("  {s} s");
            }
        }
    });
    let mut all = Vec::with_capacity(total as usize);
    let mut served = Vec::with_capacity(total as usize);
    let mut errors = 0;
    for t in tasks {
        let (l, s, e) = t.await??;
        all.extend(l);
        served.extend(s);
        errors += e;
    }
    progress.abort();
    let wall = start.elapsed().as_secs_f64();
    all.sort_unstable();
    served.sort_unstable();
    println!(
        "answered {} in {:.1} s ({:.0} req/s), {} errors; latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        all.len(),
        wall,
        all.len() as f64 / wall,
        errors,
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        percentile(&all, 1.0)
    );
    println!(
        "service (sent to answered) ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        percentile(&served, 0.50),
        percentile(&served, 0.90),
        percentile(&served, 0.99),
        percentile(&served, 0.999),
        percentile(&served, 1.0)
    );
    drop(running);
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
