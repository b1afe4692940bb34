//! The history in a real PostgreSQL (a throwaway cluster of its own): a campus day's
//! readings, batches and events exported exactly once while the exporter is killed in the
//! middle of its pages and the database is stopped for an interval.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use gridtokenx_tests::campus_day::{self, DayOptions, HistoryHook};
use gridtokenx_tests::http_get as get;
use history::export::Exporter;
use history::metrics::ExportMetrics;
use history::throwaway::Throwaway;
use sdk::CampusConfig;
use tokio::sync::Mutex;

/// What the day's history hook did.
#[derive(Default)]
struct Drill {
    exporter: Option<Exporter>,
    /// Passes killed before they ended (their connection dropped mid-transaction), and
    /// passes that ended.
    killed: usize,
    finished: usize,
    /// Passes refused while the database was down.
    refused_while_down: usize,
}

async fn exporter(url: &str, drill: &mut Drill) -> Exporter {
    match drill.exporter.take() {
        Some(e) => e,
        None => Exporter::open(url, Arc::new(ExportMetrics::default()))
            .await
            .expect("the database is up"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_day_reaches_postgresql_once_through_killed_exporters_and_a_stopped_database() {
    if !history::throwaway::available_or_skip("a_campus_day_reaches_postgresql") {
        return;
    }
    let pg = Arc::new(Throwaway::start(false).expect("a throwaway PostgreSQL"));
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let drill = Arc::new(Mutex::new(Drill::default()));
    let (d, p, u) = (drill.clone(), pg.clone(), url.clone());
    let hook = HistoryHook(Arc::new(move |bridge, pass| {
        let (drill, pg, url) = (d.clone(), p.clone(), u.clone());
        Box::pin(async move {
            let mut drill = drill.lock().await;
            match pass {
                // Killed mid-page, again and again: each pass gets 0-24 ms before its
                // connection (and any transaction on it) is dropped, as a SIGKILL would.
                1 => {
                    let mut budget = 0u64;
                    loop {
                        let mut e = exporter(&url, &mut drill).await;
                        budget = (budget + 7) % 25;
                        let pass = tokio::time::timeout(
                            Duration::from_millis(budget),
                            e.readings_pass(&bridge, 5),
                        )
                        .await;
                        match pass {
                            Err(_) => drill.killed += 1,
                            Ok(result) => {
                                drill.finished += 1;
                                if !result?.more {
                                    drill.exporter = Some(e);
                                    break;
                                }
                                drill.exporter = Some(e);
                            }
                        }
                    }
                    let mut e = exporter(&url, &mut drill).await;
                    e.bridge_catch_up(&bridge).await?;
                    drill.exporter = Some(e);
                }
                // The database stops for an interval: passes fail, nothing is lost.
                2 => {
                    drill.exporter = None;
                    pg.stop()?;
                    if Exporter::open(&url, Arc::new(ExportMetrics::default()))
                        .await
                        .is_err()
                    {
                        drill.refused_while_down += 1;
                    }
                }
                3 => {
                    pg.start_server()?;
                    let mut e = exporter(&url, &mut drill).await;
                    e.bridge_catch_up(&bridge).await?;
                    drill.exporter = Some(e);
                }
                _ => {
                    let mut e = exporter(&url, &mut drill).await;
                    e.bridge_catch_up(&bridge).await?;
                    drill.exporter = Some(e);
                }
            }
            Ok(())
        })
    }));
    let options = DayOptions {
        history: Some(hook),
        ..DayOptions::midday_test(dir.path(), 5)
    };
    let store_path = options.out.join("bridge-data").join("bridge.redb");
    let config = CampusConfig::load(&options.config).unwrap();
    let (report, mut chain) = campus_day::run_embedded(options, config).await.unwrap();
    assert!(report.checks_ok, "{:?}\n{}", report.failures, report.text);
    assert!(report.traded_wh > 0, "{}", report.text);

    let mut drill = drill.lock().await;
    assert!(drill.killed >= 3, "passes killed mid-way: {}", drill.killed);
    assert!(drill.finished >= 3, "passes that ended: {}", drill.finished);
    assert_eq!(drill.refused_while_down, 1);
    let mut e = exporter(&url, &mut drill).await;
    // The programs' events, from the chain the day left; a second read adds nothing.
    // Seven transactions a read: many reads per program, each from its cursor, oldest first.
    let first = e.all_events_pass(&mut chain, 7).await.unwrap();
    assert!(first.read > 5 * 7 && first.inserted > 0, "{first:?}");
    let again = e.all_events_pass(&mut chain, 7).await.unwrap();
    assert_eq!((again.read, again.inserted), (0, 0));

    // Every reading the bridge accepted is in the database, once.
    let store = bridge::store::Store::open(&store_path).unwrap();
    let reader = store.read().unwrap();
    let accepted: BTreeSet<(String, String, i64, i64)> = reader
        .readings()
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.lfdi,
                r.mmr,
                i64::from(r.reading.timestamp),
                r.reading.wh as i64,
            )
        })
        .collect();
    let db = &e.db;
    let rows = db
        .query(
            "SELECT lfdi, mirror_mrid, reading_time, wh FROM readings",
            &[],
        )
        .await
        .unwrap();
    let exported: BTreeSet<(String, String, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                hex::encode_upper(r.get::<_, Vec<u8>>(0)),
                r.get(1),
                history::unix(r.get(2)),
                r.get(3),
            )
        })
        .collect();
    assert_eq!(rows.len(), exported.len());
    assert!(accepted.len() > 5 * 25 * 2, "{}", accepted.len());
    assert_eq!(exported, accepted);
    let (count, positions, last): (i64, i64, i64) = {
        let r = db
            .query_one(
                "SELECT count(*), count(DISTINCT bridge_seq), max(bridge_seq) FROM readings",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!((count, positions), (rows.len() as i64, count));
    let queue = reader.export_status().unwrap();
    assert_eq!(
        (
            queue.waiting,
            queue.dropped,
            queue.last,
            queue.exported_through
        ),
        (0, 0, last as u64, last as u64)
    );
    // Every signed batch, and the batches' readings applied on chain.
    let batches: i64 = db
        .query_one("SELECT count(*) FROM batches", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        batches as usize,
        reader.batches_after(0, 100_000).unwrap().len()
    );
    assert_eq!(queue.batches_exported_through, batches as u64);
    let sums = db
        .query_one(
            "SELECT \
               (SELECT coalesce(sum((detail->>'applied')::bigint), 0) FROM chain_events WHERE kind = 'batch_applied')::bigint, \
               (SELECT count(*) FROM chain_events WHERE kind = 'batch_applied'), \
               (SELECT coalesce(sum(wh), 0) FROM chain_events WHERE kind = 'grid_minted')::bigint, \
               (SELECT coalesce(sum(wh), 0) FROM chain_events WHERE kind = 'order_settled' AND side = 1)::bigint, \
               (SELECT coalesce(sum(wh), 0) FROM chain_events WHERE kind = 'order_settled' AND side = 0)::bigint, \
               (SELECT count(*) FROM chain_events WHERE kind = 'interval_cleared')",
            &[],
        )
        .await
        .unwrap();
    let (applied, applied_batches, minted, sold, bought, cleared): (i64, i64, i64, i64, i64, i64) = (
        sums.get(0),
        sums.get(1),
        sums.get(2),
        sums.get(3),
        sums.get(4),
        sums.get(5),
    );
    assert_eq!(applied as u64, report.readings_on_chain, "{}", report.text);
    assert_eq!(applied_batches, batches);
    assert_eq!(minted as u64, report.grid_minted_wh);
    assert_eq!(
        (sold as u64, bought as u64),
        (report.traded_wh, report.traded_wh)
    );
    assert_eq!(cleared as u64, report.intervals_cleared);

    // Every event the day's programs emitted is one this build maps (none kept as `other`),
    // the campus's 25 meters among them, and the hand-over of the four authorities.
    let kinds = db
        .query_one(
            "SELECT count(*) FILTER (WHERE kind = 'other'), \
                    count(*) FILTER (WHERE kind = 'meter_registered'), \
                    count(*) FILTER (WHERE kind = 'authority_changed'), \
                    count(*) FILTER (WHERE kind = 'proposal_executed') FROM chain_events",
            &[],
        )
        .await
        .unwrap();
    let kinds: (i64, i64, i64, i64) = (kinds.get(0), kinds.get(1), kinds.get(2), kinds.get(3));
    assert_eq!(kinds, (0, 25, 4, 4));

    // The console's queries: a building's intervals, an interval's trades.
    let traded = db
        .query_one(
            "SELECT interval_index FROM chain_events WHERE kind = 'interval_cleared' AND wh > 0 LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    let trades = history::query::interval_trades(db, traded as u64, None)
        .await
        .unwrap();
    let volume = trades.volume_wh.unwrap();
    let buys: i64 = trades
        .trades
        .iter()
        .filter(|t| t.side == "buy")
        .map(|t| t.filled_wh)
        .sum();
    let sells: i64 = trades
        .trades
        .iter()
        .filter(|t| t.side == "sell")
        .map(|t| t.filled_wh)
        .sum();
    assert_eq!((buys, sells), (volume, volume), "{trades:?}");
    assert!(trades.orders_placed >= trades.trades.len() as i64);
    let (lfdi, _, t0, _) = accepted.iter().next().unwrap().clone();
    let lfdi: [u8; 20] = hex::decode(&lfdi).unwrap().try_into().unwrap();
    let energy = history::query::building_energy(db, &lfdi, t0 - 3600, t0 + 86_400, 900)
        .await
        .unwrap();
    let readings_of_meter = accepted
        .iter()
        .filter(|r| r.0 == hex::encode_upper(lfdi))
        .count() as i64;
    assert_eq!(
        energy.iter().map(|i| i.readings).sum::<i64>(),
        readings_of_meter
    );
    assert!(energy.iter().all(|i| i.import_wh >= 0 && i.export_wh >= 0));
    // Each register's energy over the period is its last reading less its first (nothing
    // before the period), and an interval's is its last reading less the one before.
    let registers = |flow| -> Vec<(i64, i64)> {
        reader
            .readings()
            .unwrap()
            .into_iter()
            .filter(|r| r.lfdi == hex::encode_upper(lfdi) && r.reading.flow == flow)
            .map(|r| (i64::from(r.reading.timestamp), r.reading.wh as i64))
            .collect()
    };
    type Of = fn(&history::query::IntervalEnergy) -> i64;
    let import: Of = |i| i.import_wh;
    let export: Of = |i| i.export_wh;
    for (flow, of) in [
        (bridge::normalize::Flow::Import, import),
        (bridge::normalize::Flow::Export, export),
    ] {
        let r = registers(flow);
        let (first, last) = (r.first().unwrap().1, r.last().unwrap().1);
        assert_eq!(energy.iter().map(of).sum::<i64>(), last - first, "{flow:?}");
        for i in &energy {
            let end = r.iter().rfind(|(t, _)| *t < i.start + 900).unwrap().1;
            let before = r
                .iter()
                .rfind(|(t, _)| *t < i.start)
                .map(|x| x.1)
                .unwrap_or(first);
            assert_eq!(of(i), end - before, "{flow:?} interval {}", i.start);
        }
    }

    // The console's API answers from the history database.
    let console = console::server::start_with(
        "127.0.0.1:0".parse().unwrap(),
        Some(Arc::new(console::server::History::new(url.clone()))),
    )
    .await
    .unwrap();
    let meter = hex::encode_upper(lfdi);
    let (status, body) = get(
        console.addr,
        &format!(
            "/api/v1/history/buildings/{meter}?from={}&to={}",
            t0 - 3600,
            t0 + 86_400
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["intervals"].as_array().unwrap().len(), energy.len());
    assert_eq!(answer["intervals"][0]["readings"], energy[0].readings);
    let (status, body) = get(console.addr, &format!("/api/v1/history/intervals/{traded}")).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["volume_wh"], volume);
    assert_eq!(
        answer["trades"].as_array().unwrap().len(),
        trades.trades.len()
    );
    for (path, code) in [
        ("/api/v1/history/buildings/NOPE", 404),
        (
            &format!("/api/v1/history/buildings/{meter}?from=x") as &str,
            400,
        ),
        (
            &format!("/api/v1/history/buildings/{meter}?from=10&to=9999999") as &str,
            400,
        ),
        ("/api/v1/history/intervals/x", 400),
        ("/api/v1/history/intervals/99999999999999999999", 400),
        ("/api/v1/history/intervals/18446744073709551615", 400),
        (
            &format!("/api/v1/history/buildings/{meter}?from=20000000000000&to=20000000000001")
                as &str,
            400,
        ),
        (
            &format!("/api/v1/history/buildings/{meter}?from=-9223372036854775808&to=9") as &str,
            400,
        ),
        ("/api/v1/history/other", 404),
    ] {
        assert_eq!(get(console.addr, path).await.0, code, "{path}");
    }
    // The database down: 503, and back once it is up.
    pg.stop().unwrap();
    assert_eq!(
        get(console.addr, &format!("/api/v1/history/intervals/{traded}"))
            .await
            .0,
        503
    );
    pg.start_server().unwrap();
    assert_eq!(
        get(console.addr, &format!("/api/v1/history/intervals/{traded}"))
            .await
            .0,
        200
    );
    // Without a history database the console says so.
    let plain = console::server::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (status, body) = get(plain.addr, "/api/v1/history/intervals/1").await;
    assert_eq!(status, 404);
    assert!(body.contains("history_url"), "{body}");
}
