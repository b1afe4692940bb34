//! The whole product on the embedded chain: simulator -> bridge (mutual TLS, store,
//! attestor) -> keeper -> programs, for three hours of a sunny summer midday. The chain's
//! registers must equal what the meters sent, GRID minted must equal the verified export,
//! the market's vaults must hold exactly what it owes (balances, escrow, fees, dust), and every
//! migration step must be idempotent (the run checks all of it and reports `checks_ok`).
//! A third of the buildings trade through their EMSs over IEEE 2030.5 (flow reservations
//! the keeper places with the campus's order delegate), and all answer a demand-response
//! event half-way through.
use gridtokenx_tests::campus_day::{self, DayOptions};
use sdk::CampusConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_midday_goes_from_meter_to_token_to_trade() {
    let dir = tempfile::tempdir().unwrap();
    // The three hours up to 14:00 of a clear summer day, whatever the time and date. The
    // meters share 8 connections, one per request (the path of campuses larger than the
    // process's open files; the fault drill keeps one open per meter).
    let options = DayOptions {
        meter_connections: Some(8),
        ..DayOptions::midday_test(dir.path(), 12)
    };
    let config = CampusConfig::load(&options.config).unwrap();
    let report = campus_day::run(options, config).await.unwrap();
    assert!(report.checks_ok, "{:?}\n{}", report.failures, report.text);
    assert_eq!(report.keeper_failures, 0, "{}", report.text);
    // 12 intervals of 25 meters, one batch each.
    assert_eq!(report.readings_on_chain, 12 * 25);
    assert!(report.grid_minted_wh > 0, "{}", report.text);
    assert_eq!(report.grid_minted_wh, report.verified_export_wh);
    // The first reading is a baseline: what was exported before it is never verified.
    assert!(report.verified_export_wh <= report.exported_wh);
    assert!(report.traded_wh > 0, "{}", report.text);
    assert!(dir.path().join("out/campus-day.svg").exists());
    // IEEE 2030.5: the EMS buildings traded through flow reservations, each answered with
    // what its order filled (checked against settlement in `checks_ok`), and every building
    // answered the demand-response event and shed load.
    assert!(report.flow_reservations > 0, "{}", report.text);
    assert_eq!(
        report.flow_answers, report.flow_reservations,
        "{}",
        report.text
    );
    assert!(report.flow_filled_wh > 0, "{}", report.text);
    assert_eq!(report.dr_events, 1);
    assert!(report.dr_responses >= 3 * 25, "{}", report.text);
    assert!(report.shed_wh > 0, "{}", report.text);
}
