//! Measures the history on PostgreSQL: sustained ingest through the exporter's own write
//! path (binary COPY pages, each one transaction with its cursor), the database's size per
//! row and per campus-year, and the console's typical queries on a year of campus data.
//! Starts a throwaway cluster with fsync on (as a production server runs) unless
//! --database-url names one (whose history tables it fills: use an empty database).
//! Prints its figures; exit 1 if a step fails.
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use history::schema::{self, Partitions};
use keeper_protocol::ExportedReading;

#[derive(Parser)]
#[command(
    version,
    about = "Measures the PostgreSQL history: ingest rate (10,000 meters at 1 Hz), size per campus-year, the console's queries on a year of data."
)]
struct Args {
    /// An empty database to use instead of a throwaway cluster.
    #[arg(long)]
    database_url: Option<String>,
    /// Meters posting (both registers) every second during the ingest run.
    #[arg(long, default_value_t = 10_000)]
    meters: u32,
    /// Seconds of their readings ingested.
    #[arg(long, default_value_t = 100)]
    seconds: u32,
    /// Rows per page (one transaction).
    #[arg(long, default_value_t = 10_000)]
    page: usize,
    /// Buildings, and minutes between their readings, in the year the queries run on.
    #[arg(long, default_value_t = 25)]
    buildings: u32,
    #[arg(long, default_value_t = 5)]
    year_cadence_min: u32,
    /// Skip the year (ingest and size only).
    #[arg(long)]
    no_year: bool,
    /// Only start a throwaway cluster (fsync on), print its connection string, and keep it
    /// until SIGINT or SIGTERM: for measurements of the exporter against a loaded bridge
    /// (scripts/history-e2e).
    #[arg(long)]
    serve: bool,
}

/// Meter `meter`'s LFDI in these measurements: its number, 0xA5, zeros (the year's SQL
/// writes the same).
fn lfdi_bytes(meter: u32) -> [u8; 20] {
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&meter.to_be_bytes());
    bytes[4] = 0xA5;
    bytes
}

fn lfdi(meter: u32) -> String {
    hex::encode_upper(lfdi_bytes(meter))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn relation_bytes(db: &history::Client, table: &str) -> Result<i64> {
    let parts = schema::partitions_of(db, table).await?;
    let mut total = 0i64;
    for p in parts {
        let row = db
            .query_one("SELECT pg_total_relation_size($1::text::regclass)", &[&p])
            .await?;
        total += row.get::<_, i64>(0);
    }
    Ok(total)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<()> {
    if args.serve {
        let cluster = history::throwaway::Throwaway::start(true)?;
        let mut db = history::connect(&cluster.url()).await?;
        schema::migrate(&mut db).await?;
        println!("{}", cluster.url());
        use std::io::Write;
        std::io::stdout().flush()?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return Ok(());
    }
    let cluster = match &args.database_url {
        Some(_) => None,
        None => Some(history::throwaway::Throwaway::start(true)?),
    };
    let url = match (&args.database_url, &cluster) {
        (Some(u), _) => u.clone(),
        (None, Some(c)) => c.url(),
        _ => unreachable!(),
    };
    let mut db = history::connect(&url).await?;
    schema::migrate(&mut db).await?;
    let version: String = db.query_one("SHOW server_version", &[]).await?.get(0);
    let fsync: String = db.query_one("SHOW fsync", &[]).await?.get(0);
    println!(
        "PostgreSQL {version} (fsync {fsync}), layout {:?}",
        schema::layout(&db).await?
    );

    // Ingest: `meters` meters, both registers, every second, in queue order.
    let total = u64::from(args.meters) * 2 * u64::from(args.seconds);
    println!(
        "ingest: {} meters x 2 registers at 1 Hz for {} s = {total} readings, pages of {}",
        args.meters, args.seconds, args.page
    );
    let t0: u32 = 1_780_000_000;
    let mut parts = Partitions::default();
    let mut seq = 0u64;
    let mut from = None;
    let mut page = Vec::with_capacity(args.page);
    let mut latencies = Vec::new();
    let began = Instant::now();
    let mut last_report = Instant::now();
    'all: for s in 0..args.seconds {
        for m in 0..args.meters {
            for export in [false, true] {
                seq += 1;
                let t = t0 + s;
                page.push(ExportedReading {
                    seq,
                    lfdi: lfdi(m),
                    mmr: if export { "0B".into() } else { "0A".into() },
                    export,
                    timestamp: t,
                    start: t - 1,
                    wh: u64::from(s) * 10 + u64::from(m),
                    quality: 0,
                    received_at: i64::from(t) + 1,
                });
                if page.len() == args.page || seq == total {
                    let at = Instant::now();
                    history::write::readings(&mut db, &mut parts, from, &page, None).await?;
                    latencies.push(at.elapsed().as_secs_f64() * 1e3);
                    from = Some(seq);
                    page.clear();
                    if last_report.elapsed().as_secs() >= 10 {
                        eprintln!(
                            "  {seq}/{total} rows, {:.0} rows/s so far",
                            seq as f64 / began.elapsed().as_secs_f64()
                        );
                        last_report = Instant::now();
                    }
                    if seq == total {
                        break 'all;
                    }
                }
            }
        }
    }
    let secs = began.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "ingest: {total} rows in {secs:.1} s = {:.0} rows/s; per page of {}: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        total as f64 / secs,
        args.page,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    db.batch_execute("VACUUM ANALYZE readings").await?;
    let bytes = relation_bytes(&db, "readings").await?;
    let per_row = bytes as f64 / total as f64;
    println!(
        "size: readings {:.1} MiB for {total} rows = {per_row:.0} bytes/row (heap, primary key, interval index)",
        bytes as f64 / (1 << 20) as f64
    );
    let year_rows = |meters: f64, per_day: f64| meters * 2.0 * per_day * 365.0;
    for (what, rows) in [
        (
            "25 buildings posting every minute",
            year_rows(25.0, 1_440.0),
        ),
        (
            "25 buildings posting every 5 minutes",
            year_rows(25.0, 288.0),
        ),
        (
            "10,000 meters posting every second",
            year_rows(10_000.0, 86_400.0),
        ),
    ] {
        println!(
            "size per campus-year, {what}: {:.0} M rows, {:.1} GiB",
            rows / 1e6,
            rows * per_row / (1u64 << 30) as f64
        );
    }
    if args.no_year {
        return Ok(());
    }

    // A year of the campus, for the console's queries.
    db.batch_execute("TRUNCATE readings, chain_events").await?;
    let year_start: i64 = 1_767_225_600; // 2026-01-01 00:00 UTC
    let days = 365i64;
    parts
        .ensure(&db, "readings", (0..days).map(|d| year_start / 86_400 + d))
        .await?;
    parts
        .ensure(
            &db,
            "chain_events",
            (0..days).map(|d| year_start / 86_400 + d),
        )
        .await?;
    let began = Instant::now();
    let cadence = i64::from(args.year_cadence_min) * 60;
    // Readings: every building's two registers, cumulative, every `cadence` seconds.
    db.execute(
        "INSERT INTO readings (reading_time, lfdi, mirror_mrid, register, wh, interval_start, quality, received_at, bridge_seq) \
         SELECT to_timestamp($1::bigint + k * $2::bigint), \
                decode(lpad(to_hex(b), 8, '0') || 'a5' || repeat('00', 15), 'hex'), \
                CASE WHEN r = 0 THEN '0A' ELSE '0B' END, r, \
                k * (40 + b % 7) * (r + 1), \
                to_timestamp($1::bigint + k * $2::bigint - $2::bigint), 0, \
                to_timestamp($1::bigint + k * $2::bigint + 1), \
                (k * $3::bigint + b) * 2 + r \
         FROM generate_series(1, $4::bigint) k, generate_series(0, $3::bigint - 1) b, generate_series(0, 1) r",
        &[&year_start, &cadence, &i64::from(args.buildings), &(days * 86_400 / cadence - 1)],
    )
    .await?;
    // Events: each 15-minute interval opened, 2 orders per building, cleared, settled.
    db.execute(
        "INSERT INTO chain_events (block_time, slot, signature, event_index, program, kind, lfdi, interval_index, side, wh, quote, price, detail) \
         SELECT to_timestamp($1::bigint + i * 900 + 60 * e.n), i * 10 + e.n, \
                decode(lpad(to_hex(i), 16, '0') || lpad(to_hex(e.n), 4, '0') || lpad(to_hex(b), 4, '0') || repeat('00', 52), 'hex'), \
                0, 'trading', e.kind, \
                CASE WHEN e.kind = 'interval_cleared' THEN NULL ELSE decode(lpad(to_hex(b), 8, '0') || 'a5' || repeat('00', 15), 'hex') END, \
                i, CASE WHEN e.kind = 'interval_cleared' THEN NULL ELSE (b % 2)::smallint END, \
                100 + b, 400 + b, 4000, '{}'::jsonb \
         FROM generate_series(0, $2::bigint - 1) i, generate_series(0, $3::bigint - 1) b, \
              (VALUES (0, 'order_placed'), (1, 'order_settled'), (2, 'interval_cleared')) AS e(n, kind) \
         WHERE e.kind <> 'interval_cleared' OR b = 0",
        &[&year_start, &(days * 96), &i64::from(args.buildings)],
    )
    .await?;
    db.batch_execute("VACUUM ANALYZE readings").await?;
    db.batch_execute("VACUUM ANALYZE chain_events").await?;
    let readings: i64 = db
        .query_one("SELECT count(*) FROM readings", &[])
        .await?
        .get(0);
    let events: i64 = db
        .query_one("SELECT count(*) FROM chain_events", &[])
        .await?
        .get(0);
    let size = relation_bytes(&db, "readings").await? + relation_bytes(&db, "chain_events").await?;
    println!(
        "a year: {} buildings every {} min = {readings} readings and {events} market events in {:.0} s; {:.0} MiB with indexes",
        args.buildings,
        args.year_cadence_min,
        began.elapsed().as_secs_f64(),
        size as f64 / (1 << 20) as f64
    );
    let mut month = Vec::new();
    let mut trades = Vec::new();
    for i in 0..20u32 {
        let building = i % args.buildings;
        let id = lfdi_bytes(building);
        let from = year_start + i64::from(i % 11) * 30 * 86_400;
        let at = Instant::now();
        let rows = history::query::building_energy(&db, &id, from, from + 30 * 86_400, 900).await?;
        month.push(at.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            rows.len() == 30 * 96,
            "a month has 2,880 intervals, got {}",
            rows.len()
        );
        let at = Instant::now();
        let k = u64::from(i) * 1_000 + 7;
        let t = history::query::interval_trades(&db, k, Some(year_start + k as i64 * 900)).await?;
        trades.push(at.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            t.price.is_some() && !t.trades.is_empty(),
            "interval {} has trades",
            i * 1_000 + 7
        );
    }
    month.sort_by(|a, b| a.total_cmp(b));
    trades.sort_by(|a, b| a.total_cmp(b));
    println!(
        "query: a building's month in 15-minute intervals (2,880 rows): median {:.1} ms, max {:.1} ms (20 runs)",
        percentile(&month, 0.5),
        month.last().unwrap()
    );
    println!(
        "query: an interval's clearing and trades: median {:.2} ms, max {:.2} ms (20 runs)",
        percentile(&trades, 0.5),
        trades.last().unwrap()
    );
    Ok(())
}
