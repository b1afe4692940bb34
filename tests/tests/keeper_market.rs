//! The keeper's market cranks against the trading program: it clears each interval once its
//! book's own gate has closed (the gate fixed when the book was opened), whatever the
//! market's parameters say now, in order from the cursor, and fails no transaction on the
//! way; a transaction that fails for a reason other than a program's refusal (the keeper's
//! wallet empty) is retried, not given up on.
use gridtokenx_tests::embedded::EmbeddedChain;
use gridtokenx_tests::market_campus::{default_params, MarketCampus};
use gridtokenx_tests::trading_ix;
use keeper::keeper::{Keeper, Progress};
use sdk::chain::Chain;
use trading::{MarketParams, Side};

#[tokio::test]
async fn the_keeper_clears_on_each_books_own_gate_after_the_gate_lead_changes() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 1_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    m.open(k + 1).await;
    let book_gate = m.book(k + 1).await.gate;
    // The lead grows to two intervals: under today's parameters interval k + 1's gate
    // closed before k's did, but its book keeps the gate it was opened with.
    let payer = m.c.env.payer();
    let params = MarketParams {
        gate_lead_s: 1_800,
        ..default_params()
    };
    m.c.env
        .send(&[trading_ix::set_params(payer, params)], &[])
        .await
        .unwrap();
    // To k's gate (its book's: the interval's start).
    let k_gate = m.book(k).await.gate;
    let now = m.c.env.now().await;
    m.c.env.advance_clock(k_gate - now).await;
    let market = m.market().await;
    let now = m.c.env.now().await;
    assert_eq!(now, k_gate);
    assert!(market.gate(k + 1).unwrap() <= now && now < book_gate);
    let mut chain = EmbeddedChain::from_context(m.c.env.into_context());
    let mut keeper = Keeper::new(None, Vec::new());
    // The keeper's wallet runs dry: nothing is sent, nothing is given up on (not a program's
    // refusal), and the operator sees why.
    let wallet = chain.payer_key();
    let funded = chain
        .ctx
        .banks_client
        .get_account(wallet)
        .await
        .unwrap()
        .unwrap();
    let mut dry = funded.clone();
    dry.lamports = 1;
    chain.ctx.set_account(&wallet, &dry.into());
    let mut progress = Progress::default();
    keeper
        .crank_market(&mut chain, &mut progress)
        .await
        .unwrap();
    assert!(progress.cleared.is_empty());
    assert!(
        keeper.status.failures.is_empty(),
        "{:?}",
        keeper.status.failures
    );
    assert!(keeper.status.transient_errors >= 1);
    let last = keeper.status.last_transient_error.clone().unwrap();
    assert!(last.contains("clear_interval"), "{last}");
    // Funded again, the next pass does the work.
    chain.ctx.set_account(&wallet, &funded.into());
    let mut progress = Progress::default();
    keeper
        .crank_market(&mut chain, &mut progress)
        .await
        .unwrap();
    // The interval open when the market started and k: not k + 1, whose book's gate is open.
    assert_eq!(progress.cleared, vec![k - 1, k]);
    assert!(
        keeper.status.failures.is_empty(),
        "{:?}",
        keeper.status.failures
    );
    let traded = &progress.clearings[1];
    assert_eq!((traded.price, traded.volume_wh), (30_000, 1_000));
    // At the book's gate, k + 1 clears, and so do k + 2 and k + 3, which have no book: the
    // market's gate applies (1,800 s before their start: passed).
    let clock = chain.clock().await.unwrap();
    chain
        .set_time(clock.unix_timestamp + (book_gate - now))
        .await
        .unwrap();
    let mut progress = Progress::default();
    keeper
        .crank_market(&mut chain, &mut progress)
        .await
        .unwrap();
    assert_eq!(progress.cleared, vec![k + 1, k + 2, k + 3]);
    assert!(
        keeper.status.failures.is_empty(),
        "{:?}",
        keeper.status.failures
    );
}
