//! The history's writes and schema on a real PostgreSQL (a throwaway cluster).
use history::schema::{self, Partitions};
use history::throwaway::Throwaway;
use history::write::{self, CursorMoved};
use keeper_protocol::ExportedReading;

fn reading(seq: u64, meter: u8, t: u32) -> ExportedReading {
    ExportedReading {
        seq,
        lfdi: hex::encode_upper([meter; 20]),
        mmr: "0B".into(),
        export: seq.is_multiple_of(2),
        timestamp: t,
        start: t - 60,
        wh: u64::from(t) * 3,
        quality: 0,
        received_at: i64::from(t) + 2,
    }
}

/// Readings at positions `from..=to`, 40 meters, a minute apart per meter, over days.
fn page(from: u64, to: u64) -> Vec<ExportedReading> {
    (from..=to)
        .map(|s| reading(s, (s % 40) as u8, 1_764_000_000 + (s / 40) as u32 * 60 * 97))
        .collect()
}

async fn count(db: &history::Client, table: &str) -> i64 {
    db.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_page_lands_once_whatever_is_retried_and_whoever_else_writes() {
    if !history::throwaway::available_or_skip("a_page_lands_once") {
        return;
    }
    let pg = Throwaway::start(false).unwrap();
    let mut db = history::connect(&pg.url()).await.unwrap();
    assert_eq!(schema::migrate(&mut db).await.unwrap(), vec![1, 2]);
    assert!(schema::migrate(&mut db).await.unwrap().is_empty());
    let mut parts = Partitions::default();
    let first = page(1, 500);
    assert_eq!(
        write::readings(&mut db, &mut parts, None, &first, None)
            .await
            .unwrap(),
        500
    );
    // The same page again (its acknowledgement lost, the exporter restarted with the old
    // position): refused by the cursor, nothing written.
    let again = write::readings(&mut db, &mut parts, None, &first, None)
        .await
        .unwrap_err();
    assert!(again.downcast_ref::<CursorMoved>().is_some(), "{again:#}");
    let stale = write::readings(&mut db, &mut parts, Some(250), &page(251, 600), None)
        .await
        .unwrap_err();
    assert!(stale.downcast_ref::<CursorMoved>().is_some());
    assert_eq!(count(&db, "readings").await, 500);
    assert_eq!(
        write::cursor(&db, write::READINGS)
            .await
            .unwrap()
            .as_deref(),
        Some("500")
    );
    // A page whose rows overlap what is there (the bridge's store restored from a backup
    // queues some again under new positions): the rows are kept once.
    let mut overlap = page(501, 600);
    overlap[0] = ExportedReading {
        seq: 501,
        ..first[10].clone()
    };
    assert_eq!(
        write::readings(&mut db, &mut parts, Some(500), &overlap, None)
            .await
            .unwrap(),
        99
    );
    assert_eq!(count(&db, "readings").await, 599);
    // A page cut short after its COPY (a day's partition dropped under the writer: its rows
    // have nowhere to go and the INSERT fails): nothing of it, the cursor where it was.
    let big = page(601, 20_600);
    let days: std::collections::BTreeSet<i64> = big
        .iter()
        .map(|r| i64::from(r.timestamp) / 86_400)
        .collect();
    let mut other = history::connect(&pg.url()).await.unwrap();
    let mut other_parts = Partitions::default();
    other_parts
        .ensure(&other, "readings", days.iter().copied())
        .await
        .unwrap();
    let victim = schema::partition_name("readings", *days.last().unwrap());
    db.batch_execute(&format!("DROP TABLE {victim}"))
        .await
        .unwrap();
    let cut = write::readings(&mut other, &mut other_parts, Some(600), &big, None).await;
    assert!(format!("{:#}", cut.unwrap_err()).contains("no partition"));
    assert_eq!(count(&db, "readings").await, 599);
    assert_eq!(
        write::cursor(&db, write::READINGS)
            .await
            .unwrap()
            .as_deref(),
        Some("600")
    );
    assert_eq!(
        write::readings(&mut db, &mut parts, Some(600), &big, None)
            .await
            .unwrap(),
        20_000
    );
    // Two exporters on one page: one lands it, the other is refused.
    let mut a = history::connect(&pg.url()).await.unwrap();
    let mut b = history::connect(&pg.url()).await.unwrap();
    let next = page(20_601, 21_000);
    let (mut pa, mut pb) = (Partitions::default(), Partitions::default());
    let (ra, rb) = tokio::join!(
        write::readings(&mut a, &mut pa, Some(20_600), &next, None),
        write::readings(&mut b, &mut pb, Some(20_600), &next, None)
    );
    assert!(ra.is_ok() != rb.is_ok(), "{ra:?} {rb:?}");
    assert_eq!(count(&db, "readings").await, 20_999);
    // Readings the bridge dropped over its cap before they were taken: the cursor passes
    // them, and the gap is recorded with the page, once.
    let after_gap = page(21_101, 21_200);
    write::readings(
        &mut db,
        &mut parts,
        Some(21_000),
        &after_gap,
        Some((21_001, 21_100)),
    )
    .await
    .unwrap();
    write::readings(
        &mut db,
        &mut parts,
        Some(21_200),
        &[],
        Some((21_201, 21_300)),
    )
    .await
    .unwrap();
    assert_eq!(
        write::cursor(&db, write::READINGS)
            .await
            .unwrap()
            .as_deref(),
        Some("21300")
    );
    let gaps: Vec<(String, String)> = db
        .query(
            "SELECT from_position, through_position FROM export_gaps ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        gaps,
        vec![
            ("21001".into(), "21100".into()),
            ("21201".into(), "21300".into())
        ]
    );
    assert_eq!(count(&db, "readings").await, 21_099);
    // One partition per day the rows fall in.
    let days = schema::partitions_of(&db, "readings").await.unwrap();
    let (first_day, last_day) = (
        1_764_000_000 / 86_400,
        (1_764_000_000 + 525 * 60 * 97) / 86_400,
    );
    assert_eq!(days.len() as i64, last_day - first_day + 1, "{days:?}");
}

#[tokio::test]
async fn a_migration_runs_on_a_populated_database_and_retention_drops_whole_days() {
    if !history::throwaway::available_or_skip("a_migration_runs") {
        return;
    }
    let pg = Throwaway::start(false).unwrap();
    let mut db = history::connect(&pg.url()).await.unwrap();
    // The first schema, with a year's worth of days in it.
    assert_eq!(schema::migrate_to(&mut db, Some(1)).await.unwrap(), vec![1]);
    let mut parts = Partitions::default();
    let mut from = None;
    for chunk in 0..5u64 {
        let p: Vec<ExportedReading> = (chunk * 2_000 + 1..=(chunk + 1) * 2_000)
            .map(|s| reading(s, (s % 25) as u8, 1_750_000_000 + s as u32 * 1_800))
            .collect();
        write::readings(&mut db, &mut parts, from, &p, None)
            .await
            .unwrap();
        from = Some(p.last().unwrap().seq);
    }
    assert_eq!(count(&db, "readings").await, 10_000);
    let before = schema::partitions_of(&db, "readings").await.unwrap();
    assert!(before.len() > 200, "{}", before.len());
    let index = "SELECT count(*) FROM pg_class WHERE relname = 'readings_by_interval'";
    assert_eq!(db.query_one(index, &[]).await.unwrap().get::<_, i64>(0), 0);
    // The next version, on the populated database: applied once, every row kept, the
    // index on the parent and every day's partition; writing goes on.
    assert_eq!(schema::migrate(&mut db).await.unwrap(), vec![2]);
    assert_eq!(count(&db, "readings").await, 10_000);
    let on_partitions: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid \
             JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings_by_interval'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(on_partitions as usize, before.len());
    let more = page(10_001, 10_100);
    write::readings(&mut db, &mut parts, from, &more, None)
        .await
        .unwrap();
    assert_eq!(count(&db, "readings").await, 10_100);
    // Retention: whole days before the cutoff go; the rest stay.
    let cutoff_day = (1_750_000_000 + 5_000 * 1_800) / 86_400;
    let kept: i64 = db
        .query_one(
            "SELECT count(*) FROM readings WHERE reading_time >= $1",
            &[&history::at(cutoff_day * 86_400)],
        )
        .await
        .unwrap()
        .get(0);
    let dropped = schema::drop_days_before(&db, cutoff_day).await.unwrap();
    assert!(!dropped.is_empty());
    assert!(dropped.iter().all(|name| name.as_str()
        < schema::partition_name("readings", cutoff_day).as_str()
        || !name.starts_with("readings")));
    assert_eq!(count(&db, "readings").await, kept);
}

#[test]
fn the_exporter_binary_migrates_says_what_is_wrong_and_exits_meaningfully() {
    let exe = env!("CARGO_BIN_EXE_exporter");
    let help = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes"));
    // Unusable configuration: exit 2, and why.
    let bad = std::process::Command::new(exe)
        .arg("--once")
        .env("GRIDTOKENX_EXPORTER_READINGS_PER_PAGE", "0")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("readings_per_page"));
    if !history::throwaway::available_or_skip("the_exporter_binary") {
        return;
    }
    let pg = Throwaway::start(false).unwrap();
    let run = || {
        std::process::Command::new(exe)
            .arg("--migrate-only")
            .env("GRIDTOKENX_EXPORTER_DATABASE_URL", pg.url())
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied now: [1, 2]"));
    let second = run();
    assert!(String::from_utf8_lossy(&second.stdout).contains("applied now: []"));
    // With the bridge away, `--once` fails its sources: exit 1, and the database is kept.
    let away = std::process::Command::new(exe)
        .arg("--once")
        .env("GRIDTOKENX_EXPORTER_DATABASE_URL", pg.url())
        .env("GRIDTOKENX_EXPORTER_BRIDGE", "127.0.0.1:9")
        .env(
            "GRIDTOKENX_EXPORTER_BRIDGE_TOKEN_FILE",
            pg.path().join("no-such-token"),
        )
        .output()
        .unwrap();
    assert_eq!(
        away.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&away.stderr)
    );
    assert!(String::from_utf8_lossy(&away.stderr).contains("bridge token"));
    let token = pg.path().join("keeper.token");
    std::fs::write(&token, "A".repeat(64)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let down = std::process::Command::new(exe)
        .arg("--once")
        .env("GRIDTOKENX_EXPORTER_DATABASE_URL", pg.url())
        .env("GRIDTOKENX_EXPORTER_BRIDGE", "127.0.0.1:9")
        .env("GRIDTOKENX_EXPORTER_BRIDGE_TOKEN_FILE", &token)
        .env("GRIDTOKENX_EXPORTER_RPC_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(
        down.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(String::from_utf8_lossy(&down.stderr).contains("export pass failed"));
}
