//! Store size benchmark: what the bridge's database costs per reading and per campus-year.
//! Runs the real bridge (store, service, attestor) in process on a temporary directory and
//! replays `--days` of a campus whose meters post, every `--post-rate` seconds, a site
//! mirror as CSIP clients do: the import and export registers and (unless
//! `--registers-only`) seven power-quality readings. The attestor signs and the keeper's
//! acknowledgement is simulated at each step. Prints the file size after compaction, bytes
//! per stored reading, and the disk a year of campus operation takes with the retention
//! window (pruned) and without it.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use bridge::config::BridgeConfig;
use bridge::store::Store;
use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Store size benchmark: bytes per stored reading and disk per campus-year, with retention."
)]
struct Args {
    /// Simulated days of posting.
    #[arg(long, default_value_t = 2)]
    days: u32,
    /// Seconds between a meter's posts.
    #[arg(long, default_value_t = 300)]
    post_rate: u32,
    /// Only the two energy registers (no power-quality readings).
    #[arg(long)]
    registers_only: bool,
    /// Retention window the yearly projection assumes, days.
    #[arg(long, default_value_t = 30)]
    retention_days: u32,
    /// Campus configuration (relative to the working directory).
    #[arg(long, default_value = "migrations/campus.toml")]
    campus: PathBuf,
}

/// The seven power-quality MirrorMeterReadings (mRID suffix, uom, power of ten) of a site
/// meter, after the two energy registers.
const QUALITY: [(&str, u8, i8); 7] = [
    ("10", 38, 0),
    ("11", 63, 0),
    ("12", 33, -2),
    ("13", 29, -2),
    ("14", 65, -2),
    ("15", 61, 0),
    ("16", 5, -2),
];

/// mRIDs are globally unique: `meter` makes them the meter's own.
fn mmr(
    meter: usize,
    mrid: &str,
    start: i64,
    period: u32,
    value: i64,
    reading_type: Option<String>,
) -> String {
    format!(
        "<MirrorMeterReading><mRID>{}{mrid}</mRID><Reading><timePeriod><duration>{period}</duration><start>{start}</start></timePeriod><value>{value}</value></Reading>{}</MirrorMeterReading>",
        prefix(meter),
        reading_type.unwrap_or_default()
    )
}

/// The first 30 hex digits of meter `meter`'s mRIDs.
fn prefix(meter: usize) -> String {
    format!("5A0C{meter:04X}{}", "0".repeat(22))
}

fn reading_type(acc: u8, flow: u8, kind: u8, power: i8, uom: u8) -> String {
    format!(
        "<ReadingType><accumulationBehaviour>{acc}</accumulationBehaviour><commodity>1</commodity><flowDirection>{flow}</flowDirection><kind>{kind}</kind><phase>0</phase><powerOfTenMultiplier>{power}</powerOfTenMultiplier><uom>{uom}</uom></ReadingType>"
    )
}

/// One post's MirrorMeterReadings; with ReadingTypes on the first.
fn readings(
    meter: usize,
    first: bool,
    quality: bool,
    start: i64,
    period: u32,
    import: i64,
    export: i64,
) -> String {
    let rt = |acc, flow, kind, power, uom| first.then(|| reading_type(acc, flow, kind, power, uom));
    let mut out = mmr(meter, "20", start, period, import, rt(9, 1, 12, 0, 72));
    out += &mmr(meter, "21", start, period, export, rt(9, 19, 12, 0, 72));
    if quality {
        for (i, (mrid, uom, power)) in QUALITY.iter().enumerate() {
            out += &mmr(
                meter,
                mrid,
                start,
                period,
                1_000 + i as i64,
                rt(12, 1, 37, *power, *uom),
            );
        }
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let config = BridgeConfig {
        listen: "127.0.0.1:0".parse()?,
        keeper_listen: "127.0.0.1:0".parse()?,
        metrics_listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        pki_dir: dir.path().join("pki"),
        campus_config: args.campus.clone(),
        post_rate_s: args.post_rate,
        attest_interval_s: 86_400,
        min_interval_s: 60.min(args.post_rate),
        max_age_s: 86_400,
        // Every simulated day is kept (readings older than the window are refused).
        retention_days: args.days.max(30) + 1,
        cluster_genesis_hash: Some("11111111111111111111111111111111".into()),
        ..BridgeConfig::default()
    };
    let campus = sdk::CampusConfig::load(&config.campus_config)
        .with_context(|| format!("campus {}", config.campus_config.display()))?;
    certs::ensure_pki(&certs::Layout::new(&config.pki_dir), &campus)?;
    let running = bridge::server::start(&config).await?;
    let meters = running.service.directory.all();
    let period = i64::from(args.post_rate);
    let end = bridge::server::now();
    let end = end - end % period;
    let steps = i64::from(args.days) * 86_400 / period;
    let start = end - steps * period;
    let quality = !args.registers_only;
    let per_post = if quality { 9 } else { 2 };
    println!(
        "store size: {} meters posting {} readings every {} s for {} days ({} posts)",
        meters.len(),
        per_post,
        args.post_rate,
        args.days,
        steps as usize * meters.len()
    );
    let wall = Instant::now();
    let mut locations = vec![String::new(); meters.len()];
    for k in 0..=steps {
        let t = start + k * period;
        let service = running.service.clone();
        let meters = meters.clone();
        let previous = locations.clone();
        let runtime = tokio::runtime::Handle::current();
        // One blocking task per step; the meters' posts of a step in parallel threads, as
        // their connections would be.
        locations = tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                let handles: Vec<_> = meters
                    .iter()
                    .zip(previous)
                    .enumerate()
                    .map(|(i, (m, location))| {
                        let (service, runtime) = (&service, &runtime);
                        scope.spawn(move || {
                            let import = 1_000_000 + k * 400 + i as i64;
                            let export = 500_000 + k * 200 + i as i64;
                            let body = readings(
                                i,
                                k == 0,
                                quality,
                                t - period,
                                period as u32,
                                import,
                                export,
                            );
                            if k == 0 {
                                let xml = format!(
                                    r#"<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns"><mRID>{}01</mRID><description>Site meter</description><roleFlags>03</roleFlags><serviceCategoryKind>0</serviceCategoryKind><status>1</status><deviceLFDI>{}</deviceLFDI>{body}</MirrorUsagePoint>"#,
                                    prefix(i),
                                    m.lfdi_hex
                                );
                                let r = runtime.block_on(service.respond(m, "POST", "/mup", None, xml.as_bytes(), t));
                                assert_eq!(r.status, 201, "{}: {:?}", m.code, r.body);
                                r.location.expect("Location")
                            } else {
                                let xml = format!(
                                    r#"<MirrorMeterReadingList xmlns="urn:ieee:std:2030.5:ns">{body}</MirrorMeterReadingList>"#
                                );
                                let r = runtime.block_on(service.respond(m, "POST", &location, None, xml.as_bytes(), t));
                                assert_eq!(r.status, 204, "{}: {:?}", m.code, r.body);
                                location
                            }
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("post")).collect::<Vec<_>>()
            })
        })
        .await?;
        // The attestor signs, the keeper acknowledges.
        if let Some(batch) = running.attestor.attest_once(t + 1)? {
            running.attestor.acknowledge(batch.sequence)?;
        }
        if (k + 1) % (86_400 / period).max(1) == 0 {
            println!(
                "  day {} done ({:.0} s)",
                (k + 1) * period / 86_400,
                wall.elapsed().as_secs_f64()
            );
        }
    }
    let reader = running.service.store.read()?;
    let registers = reader.readings()?.len() as u64;
    let mut measurements = 0u64;
    for m in &meters {
        for mirror in reader.mirrors_of(&m.lfdi_hex)? {
            for mmr in &mirror.mup.mirror_meter_readings {
                measurements += reader.measurements(&m.lfdi_hex, &mmr.mrid)?.len() as u64;
            }
        }
    }
    let batches = running.service.store.batches_signed()?;
    drop(reader);
    let store_path = config.store_path();
    running.shutdown().await;
    // Reopening compacts the file.
    drop(Store::open(&store_path)?);
    let bytes = std::fs::metadata(&store_path)?.len();
    let stored = registers + measurements;
    let per_reading = bytes as f64 / stored as f64;
    let per_year = |days: f64| {
        per_reading * (meters.len() * per_post) as f64 * (86_400.0 / period as f64) * days
    };
    let mib = |b: f64| b / (1u64 << 20) as f64;
    println!(
        "stored: {registers} register readings, {measurements} measurements, {batches} batches"
    );
    println!(
        "store file after compaction: {:.1} MiB, {per_reading:.0} bytes per stored reading (batches included)",
        mib(bytes as f64)
    );
    println!(
        "campus-year ({} meters, post every {} s): {:.0} MiB without pruning; {:.0} MiB on disk with {}-day retention",
        meters.len(),
        args.post_rate,
        mib(per_year(365.0)),
        mib(per_year(f64::from(args.retention_days))),
        args.retention_days
    );
    Ok(())
}
