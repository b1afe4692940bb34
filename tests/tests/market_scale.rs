//! The market-scale benchmark (`cargo run --release -p gridtokenx-tests --bin market-scale`)
//! at a small size, so that it keeps working: 600 buildings span three lookup tables, every
//! order settles and the vaults hold exactly what the market owes (checked by the run).
use gridtokenx_tests::market_scale;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_buildings_trade_one_interval_and_every_order_settles() {
    let report = market_scale::run(600, 24, |_| {}).await.unwrap();
    assert_eq!((report.buys, report.sells), (300, 300));
    assert_eq!(report.place_transactions, 600);
    assert_eq!(report.clear_transactions, 2);
    // 253 balances per table: 11 + 11 + 4 settlement transactions.
    assert_eq!(report.settle_transactions, 26);
    assert!(report.volume_wh > 0 && report.price > 0);
    assert!(report.largest_settlement_bytes <= 1_232);
}
