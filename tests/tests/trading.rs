//! Trading program: the per-interval double auction, escrow, settlement into seats,
//! withdrawals and sweeps, and every failure with its exact error code.
use anchor_lang::error::ErrorCode;
use gridtokenx_tests::energy_token_ix as token_ix;
use gridtokenx_tests::fixtures::{self, SOL};
use gridtokenx_tests::market_campus::{default_params, MarketCampus, QUOTE_FUNDS};
use gridtokenx_tests::trading_ix;
use gridtokenx_tests::{assert_error, events, replace_account};
use solana_signer::Signer;
use trading::events::{IntervalCleared, OrderCancelled, OrderPlaced, SweepSkipped, Withdrawn};
use trading::{MarketParams, Side, TradingError, ORDER_CANCELLED, ORDER_SETTLED};

/// SPL Token's own error for a transfer above the balance (InsufficientFunds).
const SPL_INSUFFICIENT_FUNDS: u32 = 1;

// ---- initialize_market, seats ----

#[tokio::test]
async fn initialize_market_stores_params_and_creates_the_vaults() {
    let mut m = MarketCampus::new(2, &[], 0).await;
    let market = m.market().await;
    assert_eq!(market.authority, m.c.env.payer());
    assert_eq!(market.base_mint, token_ix::grid_mint());
    assert_eq!(market.quote_mint, m.quote_mint);
    assert_eq!(market.params(), default_params());
    assert_eq!(market.start_time, m.start_time);
    assert_eq!(market.seat_count, 2);
    assert_eq!(market.seats()[1].owner, m.c.owner(1));
    assert_eq!(m.c.env.token_balance(trading_ix::base_vault()).await, 0);
    assert_eq!(
        m.c.env.account_owner(trading_ix::quote_vault()).await,
        anchor_spl::token::ID
    );
}

#[tokio::test]
async fn initialize_market_needs_the_campus_authority_grid_and_valid_params() {
    let mut c = gridtokenx_tests::energy_campus::EnergyCampus::new(1).await;
    let payer = c.env.payer();
    // Any SPL mint serves as the quote token; use the REC mint here.
    let quote = token_ix::rec_mint();
    let squatter = c.env.funded_keypair(SOL).await;
    let ix = trading_ix::initialize_market(squatter.pubkey(), quote, default_params(), 0);
    assert_error(
        c.env.send(&[ix], &[&squatter]).await,
        TradingError::NotCampusAuthority,
    );
    // The base must be GRID.
    let ix = replace_account(
        trading_ix::initialize_market(payer, quote, default_params(), 0),
        token_ix::grid_mint(),
        token_ix::rec_mint(),
    );
    assert_error(c.env.send(&[ix], &[]).await, ErrorCode::ConstraintSeeds);
    let bad = [
        MarketParams {
            interval_s: 30,
            ..default_params()
        },
        MarketParams {
            price_tick: 0,
            ..default_params()
        },
        MarketParams {
            min_price: 1_500,
            ..default_params()
        },
        MarketParams {
            min_price: 2_000_000,
            ..default_params()
        },
        MarketParams {
            fee_bps: 1_001,
            ..default_params()
        },
        MarketParams {
            max_orders: 63,
            ..default_params()
        },
        MarketParams {
            max_orders: 129,
            ..default_params()
        },
        MarketParams {
            min_quantity_wh: 0,
            ..default_params()
        },
    ];
    for params in bad {
        let ix = trading_ix::initialize_market(payer, quote, params, 0);
        assert_error(c.env.send(&[ix], &[]).await, TradingError::InvalidParams);
    }
    assert!(!c.env.account_exists(trading_ix::market_address()).await);
}

#[tokio::test]
async fn only_meter_owners_take_seats_once() {
    let mut m = MarketCampus::new(2, &[], 0).await;
    let owner = m.c.owners[0].insecure_clone();
    let ix = trading_ix::claim_seat(owner.pubkey(), &m.c.lfdis[0]);
    assert_error(
        m.c.env.send(&[ix], &[&owner]).await,
        TradingError::SeatTaken,
    );
    let stranger = m.c.env.funded_keypair(SOL).await;
    let ix = trading_ix::claim_seat(stranger.pubkey(), &m.c.lfdis[1]);
    assert_error(
        m.c.env.send(&[ix], &[&stranger]).await,
        TradingError::NotMeterOwner,
    );
}

// ---- place_order ----

#[tokio::test]
async fn orders_lock_their_escrow() {
    let mut m = MarketCampus::new(2, &[0], 20_000).await;
    let k = m.interval().await;
    let seller_grid = m.c.grid_balance(0).await;
    let ix = m.place(0, k, Side::Sell, 5_000, 90_000);
    let owner = m.c.owners[0].insecure_clone();
    let (result, logs) = m.c.env.send_with_logs(&[ix], &[&owner]).await;
    result.unwrap();
    let placed = events::<OrderPlaced>(&logs);
    assert_eq!((placed[0].order, placed[0].escrow), (0, 5_000));
    assert_eq!(m.c.grid_balance(0).await, seller_grid - 5_000);
    // 3,333 Wh at 101,000 per kWh: 336,633 (buy escrow rounds up; see buy_escrow_rounds_up).
    m.order(1, k, Side::Buy, 3_333, 101_000).await;
    m.order(1, k + 1, Side::Buy, 1_001, 99_000).await;
    assert_eq!(m.quote_balance(1).await, QUOTE_FUNDS - 336_633 - 99_099);
    let book = m.book(k).await;
    assert_eq!(book.order_count, 2);
    assert_eq!(book.orders[1].escrow, 336_633);
    assert_eq!(m.book(k + 1).await.orders[0].escrow, 99_099);
    m.assert_conserved(&[k, k + 1]).await;
}

#[tokio::test]
async fn buy_escrow_rounds_up() {
    assert_eq!(trading::buy_escrow(1, 1_000).unwrap(), 1);
    assert_eq!(trading::buy_escrow(1, 1_500).unwrap(), 2);
    assert_eq!(trading::buy_escrow(3_333, 100_001).unwrap(), 333_304);
    assert_eq!(
        trading::buy_escrow(u64::MAX, u64::MAX).unwrap_err(),
        TradingError::Overflow.into()
    );
}

#[tokio::test]
async fn orders_are_refused_outside_the_markets_rules() {
    let mut m = MarketCampus::new(2, &[0], 20_000).await;
    let k = m.interval().await;
    let owner = m.c.owners[1].insecure_clone();
    let cases = [
        (
            m.place(1, k, Side::Buy, 100, 1_001_000),
            TradingError::PriceOutOfBounds as u32,
        ),
        (
            m.place(1, k, Side::Buy, 100, 0),
            TradingError::PriceOutOfBounds as u32,
        ),
        (
            m.place(1, k, Side::Buy, 100, 10_500),
            TradingError::PriceOffTick as u32,
        ),
        (
            m.place(1, k, Side::Buy, 0, 10_000),
            TradingError::InvalidQuantity as u32,
        ),
        (
            m.place(1, k + 2, Side::Buy, 100, 10_000),
            TradingError::IntervalNotOpen as u32,
        ),
    ];
    for (ix, code) in cases {
        assert_error(m.c.env.send(&[ix], &[&owner]).await, 6000 + code);
    }
    // Seat 0 is not this owner's.
    let ix = trading_ix::place_order(owner.pubkey(), &m.quote_mint, 0, k, Side::Buy, 100, 10_000);
    assert_error(
        m.c.env.send(&[ix], &[&owner]).await,
        TradingError::NotSeatOwner,
    );
    // A buy paid into the GRID vault, or from a GRID account.
    let ix = replace_account(
        m.place(1, k, Side::Buy, 100, 10_000),
        trading_ix::quote_vault(),
        trading_ix::base_vault(),
    );
    assert_error(
        m.c.env.send(&[ix], &[&owner]).await,
        TradingError::WrongMint,
    );
    let ix = replace_account(
        m.place(1, k, Side::Buy, 100, 10_000),
        token_ix::ata(&owner.pubkey(), &m.quote_mint),
        token_ix::ata(&owner.pubkey(), &token_ix::grid_mint()),
    );
    assert_error(
        m.c.env.send(&[ix], &[&owner]).await,
        TradingError::WrongMint,
    );
    // Someone else's token account.
    let ix = replace_account(
        m.place(1, k, Side::Buy, 100, 10_000),
        token_ix::ata(&owner.pubkey(), &m.quote_mint),
        token_ix::ata(&m.c.owner(0), &m.quote_mint),
    );
    assert_error(
        m.c.env.send(&[ix], &[&owner]).await,
        ErrorCode::ConstraintTokenOwner,
    );
    // More than the owner holds: SPL Token refuses the escrow transfer.
    let ix = m.place(1, k, Side::Sell, 100, 10_000);
    assert_error(m.c.env.send(&[ix], &[&owner]).await, SPL_INSUFFICIENT_FUNDS);
    assert!(!m.c.env.account_exists(trading_ix::book_address(k)).await);
}

#[tokio::test]
async fn a_full_interval_refuses_more_orders() {
    let mut m = MarketCampus::new(2, &[], 0).await;
    let payer = m.c.env.payer();
    let params = MarketParams {
        max_orders: 64,
        ..default_params()
    };
    m.c.env
        .send(&[trading_ix::set_params(payer, params)], &[])
        .await
        .unwrap();
    let k = m.interval().await;
    for n in 0..64u64 {
        m.order(1, k, Side::Buy, 1 + n, 1_000).await;
    }
    let owner = m.c.owners[1].insecure_clone();
    let ix = m.place(1, k, Side::Buy, 100, 1_000);
    assert_error(
        m.c.env.send(&[ix], &[&owner]).await,
        TradingError::IntervalFull,
    );
    // The next interval still takes orders.
    m.order(1, k + 1, Side::Buy, 100, 1_000).await;
}

// ---- cancel_order ----

#[tokio::test]
async fn the_owner_cancels_an_open_order_and_gets_the_escrow_back_at_once() {
    let mut m = MarketCampus::new(2, &[0], 20_000).await;
    let k = m.interval().await;
    m.order(1, k, Side::Buy, 2_000, 50_000).await;
    m.order(0, k, Side::Sell, 3_000, 60_000).await;
    let (buyer, seller) = (
        m.c.owners[1].insecure_clone(),
        m.c.owners[0].insecure_clone(),
    );
    // Not the owner's order.
    let ix = trading_ix::cancel_order(seller.pubkey(), &m.quote_mint, Side::Buy, k, 0);
    assert_error(
        m.c.env.send(&[ix], &[&seller]).await,
        TradingError::NotOrderOwner,
    );
    let ix = trading_ix::cancel_order(buyer.pubkey(), &m.quote_mint, Side::Buy, k, 7);
    assert_error(
        m.c.env.send(&[ix], &[&buyer]).await,
        TradingError::UnknownOrder,
    );
    // While paused, cancelling still works.
    let payer = m.c.env.payer();
    m.c.env
        .send(&[trading_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    let ix = trading_ix::cancel_order(buyer.pubkey(), &m.quote_mint, Side::Buy, k, 0);
    let (result, logs) =
        m.c.env
            .send_with_logs(std::slice::from_ref(&ix), &[&buyer])
            .await;
    result.unwrap();
    assert_eq!(events::<OrderCancelled>(&logs)[0].refunded, 100_000);
    assert_eq!(m.quote_balance(1).await, QUOTE_FUNDS);
    assert_eq!(m.book(k).await.orders[0].status, ORDER_CANCELLED);
    assert_error(
        m.c.env.send(&[ix], &[&buyer]).await,
        TradingError::OrderNotOpen,
    );
    m.assert_conserved(&[k]).await;
    // After clearing, an order can no longer be cancelled.
    m.c.env
        .send(&[trading_ix::set_paused(payer, false)], &[])
        .await
        .unwrap();
    m.next_interval().await;
    m.c.env
        .send(&[trading_ix::clear_interval(k)], &[])
        .await
        .unwrap();
    let ix = trading_ix::cancel_order(seller.pubkey(), &m.quote_mint, Side::Sell, k, 1);
    assert_error(
        m.c.env.send(&[ix], &[&seller]).await,
        TradingError::AlreadyCleared,
    );
}

// ---- clear_interval ----

#[tokio::test]
async fn clearing_finds_the_uniform_price_and_settles_into_seats() {
    // Sellers 0 and 1, buyers 2 and 3.
    let mut m = MarketCampus::new(4, &[0, 1], 40_000).await;
    let k = m.interval().await;
    m.order(0, k, Side::Sell, 10_000, 80_000).await;
    m.order(1, k, Side::Sell, 10_000, 100_000).await;
    m.order(2, k, Side::Buy, 12_000, 120_000).await;
    m.order(3, k, Side::Buy, 8_000, 90_000).await;
    // Before the interval ends: refused.
    assert_error(
        m.c.env.send(&[trading_ix::clear_interval(k)], &[]).await,
        TradingError::IntervalNotEnded,
    );
    m.next_interval().await;
    let (result, logs) =
        m.c.env
            .send_with_logs(&[trading_ix::clear_interval(k)], &[])
            .await;
    result.unwrap();
    // Demand at 80: 20 kWh, supply 10 -> 10; at 90: 20 vs 10 -> 10; at 100: 12 vs 20 -> 12;
    // at 120: 12 vs 20 -> 12 but 100 has less imbalance (8 vs 8, then lower). Price 100,000.
    let cleared = events::<IntervalCleared>(&logs).remove(0);
    assert_eq!((cleared.price, cleared.volume_wh), (100_000, 12_000));
    assert_eq!(
        (
            cleared.buy_orders,
            cleared.sell_orders,
            cleared.filled_orders
        ),
        (2, 2, 3)
    );
    assert_eq!(
        (cleared.buy_volume_offered, cleared.sell_volume_offered),
        (20_000, 20_000)
    );
    let book = m.book(k).await;
    let fills: Vec<u64> = book.orders().iter().map(|o| o.filled_wh).collect();
    assert_eq!(fills, vec![10_000, 2_000, 12_000, 0]);
    assert!(book.orders().iter().all(|o| o.status == ORDER_SETTLED));
    let market = m.market().await;
    let seats = market.seats();
    // Seller 0: 10 kWh at 100/kWh = 1,000,000, fee 0.5 % = 5,000.
    assert_eq!((seats[0].base, seats[0].quote), (0, 995_000));
    // Seller 1: 2 kWh sold (200,000 less 1,000 fee), 8 kWh of GRID back.
    assert_eq!((seats[1].base, seats[1].quote), (8_000, 199_000));
    // Buyer 2: 12 kWh; locked 12 x 120 = 1,440,000, paid 1,200,000: 240,000 back.
    assert_eq!((seats[2].base, seats[2].quote), (12_000, 240_000));
    // Buyer 3 bought nothing: the whole escrow back.
    assert_eq!((seats[3].base, seats[3].quote), (0, 720_000));
    assert_eq!(market.fees, 6_000);
    assert_eq!(market.last_price, 100_000);
    m.assert_conserved(&[k]).await;
    // Twice: refused.
    assert_error(
        m.c.env.send(&[trading_ix::clear_interval(k)], &[]).await,
        TradingError::AlreadyCleared,
    );
}

#[tokio::test]
async fn an_interval_without_a_match_releases_every_order() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.interval().await;
    m.order(0, k, Side::Sell, 5_000, 200_000).await;
    m.order(1, k, Side::Buy, 5_000, 100_000).await;
    m.next_interval().await;
    let (result, logs) =
        m.c.env
            .send_with_logs(&[trading_ix::clear_interval(k)], &[])
            .await;
    result.unwrap();
    let cleared = events::<IntervalCleared>(&logs).remove(0);
    assert_eq!(
        (cleared.price, cleared.volume_wh, cleared.filled_orders),
        (0, 0, 0)
    );
    let market = m.market().await;
    assert_eq!(market.seats()[0].base, 5_000);
    assert_eq!(market.seats()[1].quote, 500_000);
    m.assert_conserved(&[k]).await;
}

#[tokio::test]
async fn a_paused_market_neither_takes_orders_nor_clears_but_pays_out() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.interval().await;
    m.order(0, k, Side::Sell, 5_000, 100_000).await;
    m.order(1, k, Side::Buy, 5_000, 100_000).await;
    m.next_interval().await;
    m.c.env
        .send(&[trading_ix::clear_interval(k)], &[])
        .await
        .unwrap();
    let payer = m.c.env.payer();
    m.c.env
        .send(&[trading_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    let k2 = m.interval().await;
    let owner = m.c.owners[1].insecure_clone();
    let ix = m.place(1, k2, Side::Buy, 100, 1_000);
    assert_error(m.c.env.send(&[ix], &[&owner]).await, TradingError::Paused);
    // Withdrawing works while paused.
    let ix = trading_ix::withdraw(owner.pubkey(), &m.quote_mint, 1, 5_000, 0);
    m.c.env.send(&[ix], &[&owner]).await.unwrap();
    assert_eq!(m.c.grid_balance(1).await, 5_000);
    m.c.env
        .send(&[trading_ix::set_paused(payer, false)], &[])
        .await
        .unwrap();
    m.order(1, k2, Side::Buy, 100, 1_000).await;
    m.c.env
        .send(&[trading_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    m.next_interval().await;
    assert_error(
        m.c.env.send(&[trading_ix::clear_interval(k2)], &[]).await,
        TradingError::Paused,
    );
}

// ---- withdraw, sweep, fees, close_book ----

#[tokio::test]
async fn owners_withdraw_at_most_their_balances() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.interval().await;
    m.order(0, k, Side::Sell, 4_000, 50_000).await;
    m.order(1, k, Side::Buy, 4_000, 50_000).await;
    m.next_interval().await;
    m.c.env
        .send(&[trading_ix::clear_interval(k)], &[])
        .await
        .unwrap();
    let seller = m.c.owners[0].insecure_clone();
    // 4 kWh at 50/kWh = 200,000 less 1,000 fee.
    assert_eq!(m.market().await.seats()[0].quote, 199_000);
    let ix = trading_ix::withdraw(seller.pubkey(), &m.quote_mint, 0, 0, 199_001);
    assert_error(
        m.c.env.send(&[ix], &[&seller]).await,
        TradingError::InsufficientBalance,
    );
    let ix = trading_ix::withdraw(seller.pubkey(), &m.quote_mint, 1, 0, 1);
    assert_error(
        m.c.env.send(&[ix], &[&seller]).await,
        TradingError::NotSeatOwner,
    );
    // Paid from something that is not the market's vault: refused.
    let ix = replace_account(
        trading_ix::withdraw(seller.pubkey(), &m.quote_mint, 0, 0, 1),
        trading_ix::quote_vault(),
        token_ix::ata(&m.c.owner(1), &m.quote_mint),
    );
    assert_error(
        m.c.env.send(&[ix], &[&seller]).await,
        TradingError::WrongMint,
    );
    // The GRID vault passed as the quote vault too.
    let ix = replace_account(
        trading_ix::withdraw(seller.pubkey(), &m.quote_mint, 0, 0, 1),
        trading_ix::quote_vault(),
        trading_ix::base_vault(),
    );
    assert_error(
        m.c.env.send(&[ix], &[&seller]).await,
        ErrorCode::ConstraintDuplicateMutableAccount,
    );
    let before = m.quote_balance(0).await;
    for part in [99_000, 100_000] {
        let ix = trading_ix::withdraw(seller.pubkey(), &m.quote_mint, 0, 0, part);
        let (result, logs) = m.c.env.send_with_logs(&[ix], &[&seller]).await;
        result.unwrap();
        assert_eq!(events::<Withdrawn>(&logs)[0].quote, part);
    }
    assert_eq!(m.quote_balance(0).await, before + 199_000);
    assert_eq!(m.market().await.seats()[0].quote, 0);
    m.assert_conserved(&[k]).await;
}

#[tokio::test]
async fn a_sweep_pays_every_seat_it_can_and_skips_missing_accounts() {
    let mut m = MarketCampus::new(3, &[0], 10_000).await;
    let k = m.interval().await;
    m.order(0, k, Side::Sell, 6_000, 50_000).await;
    m.order(1, k, Side::Buy, 3_000, 50_000).await;
    m.order(2, k, Side::Buy, 3_000, 50_000).await;
    m.next_interval().await;
    m.c.env
        .send(&[trading_ix::clear_interval(k)], &[])
        .await
        .unwrap();
    // Owner 2 closed its GRID account (after sending its GRID elsewhere: it had none).
    let owner2 = m.c.owners[2].insecure_clone();
    let close = spl_token_interface::instruction::close_account(
        &anchor_spl::token::ID,
        &token_ix::ata(&owner2.pubkey(), &token_ix::grid_mint()),
        &owner2.pubkey(),
        &owner2.pubkey(),
        &[],
    )
    .unwrap();
    m.c.env.send(&[close], &[&owner2]).await.unwrap();
    let seats: Vec<(u16, _)> = (0..3).map(|i| (i as u16, m.c.owner(i))).collect();
    let (result, logs) =
        m.c.env
            .send_with_logs(&[trading_ix::sweep(&m.quote_mint, &seats)], &[])
            .await;
    result.unwrap();
    assert_eq!(events::<Withdrawn>(&logs).len(), 2);
    let skipped = events::<SweepSkipped>(&logs);
    assert_eq!((skipped.len(), skipped[0].seat), (1, 2));
    assert_eq!(m.c.grid_balance(1).await, 3_000);
    let market = m.market().await;
    assert_eq!((market.seats()[0].quote, market.seats()[1].base), (0, 0));
    // Owner 2's balance stays claimable.
    assert_eq!(market.seats()[2].base, 3_000);
    m.assert_conserved(&[k]).await;
}

#[tokio::test]
async fn fees_go_to_the_authority_only() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.interval().await;
    m.order(0, k, Side::Sell, 10_000, 100_000).await;
    m.order(1, k, Side::Buy, 10_000, 100_000).await;
    m.next_interval().await;
    m.c.env
        .send(&[trading_ix::clear_interval(k)], &[])
        .await
        .unwrap();
    assert_eq!(m.market().await.fees, 5_000);
    let payer = m.c.env.payer();
    let treasury = token_ix::ata(&m.c.owner(1), &m.quote_mint);
    let thief = m.c.owners[1].insecure_clone();
    let ix = trading_ix::withdraw_fees(thief.pubkey(), treasury, 5_000);
    assert_error(
        m.c.env.send(&[ix], &[&thief]).await,
        TradingError::Unauthorized,
    );
    let ix = trading_ix::withdraw_fees(payer, treasury, 5_001);
    assert_error(
        m.c.env.send(&[ix], &[]).await,
        TradingError::InsufficientFees,
    );
    let before = m.quote_balance(1).await;
    m.c.env
        .send(&[trading_ix::withdraw_fees(payer, treasury, 5_000)], &[])
        .await
        .unwrap();
    assert_eq!(m.quote_balance(1).await, before + 5_000);
    m.assert_conserved(&[k]).await;
}

#[tokio::test]
async fn a_cleared_book_is_closed_and_its_rent_returned() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.interval().await;
    m.order(1, k, Side::Buy, 100, 1_000).await;
    let payer = m.c.owner(1);
    assert_error(
        m.c.env.send(&[trading_ix::close_book(k, payer)], &[]).await,
        TradingError::NotCleared,
    );
    m.next_interval().await;
    m.c.env
        .send(&[trading_ix::clear_interval(k)], &[])
        .await
        .unwrap();
    let wrong = m.c.owner(0);
    assert_error(
        m.c.env.send(&[trading_ix::close_book(k, wrong)], &[]).await,
        TradingError::WrongBook,
    );
    m.c.env
        .send(&[trading_ix::close_book(k, payer)], &[])
        .await
        .unwrap();
    assert!(!m.c.env.account_exists(trading_ix::book_address(k)).await);
}

#[tokio::test]
async fn governance_owns_the_market_and_a_guardian_pauses_it() {
    let mut m = MarketCampus::new(1, &[], 0).await;
    let council = fixtures::council(&mut m.c.env).await;
    let payer = m.c.env.payer();
    let authority = gridtokenx_tests::governance_ix::authority_for(trading::ID);
    fixtures::hand_over(
        &mut m.c.env,
        &council,
        trading_ix::propose_authority(payer, authority),
        trading_ix::accept_authority(authority),
    )
    .await;
    let ix = trading_ix::set_paused(payer, true);
    assert_error(m.c.env.send(&[ix], &[]).await, TradingError::Unauthorized);
    let ix = gridtokenx_tests::governance_ix::guardian_pause(
        council.guardian.pubkey(),
        trading::ID,
        trading_ix::market_address(),
    );
    m.c.env.send(&[ix], &[&council.guardian]).await.unwrap();
    let now = m.c.env.now().await;
    assert!(m.market().await.is_paused(now));
    // Parameters change only through a proposal.
    let params = MarketParams {
        fee_bps: 25,
        ..default_params()
    };
    fixtures::run_proposal(
        &mut m.c.env,
        &council,
        &trading_ix::set_params(authority, params),
    )
    .await;
    assert_eq!(m.market().await.fee_bps, 25);
    let ix = trading_ix::accept_authority(payer);
    assert_error(
        m.c.env.send(&[ix], &[]).await,
        TradingError::NotPendingAuthority,
    );
}

// ---- a whole campus interval ----

#[tokio::test]
async fn a_campus_interval_of_25_buys_and_25_sells_clears_and_settles_in_two_transactions() {
    let n = 25usize;
    let sellers: Vec<usize> = (0..n).collect();
    let mut m = MarketCampus::new(n as u8, &sellers, 10_000).await;
    let k = m.interval().await;
    for i in 0..n {
        let step = i as u64;
        m.order(i, k, Side::Sell, 1_000 + 100 * step, 40_000 + 2_000 * step)
            .await;
        m.order(i, k, Side::Buy, 1_200 + 50 * step, 100_000 - 2_000 * step)
            .await;
    }
    m.next_interval().await;
    // Transaction 1: clearing (and settlement into the seats).
    let clear = m.c.env.transaction(&[trading_ix::clear_interval(k)], &[]);
    let size = gridtokenx_tests::transaction_size(&clear);
    assert!(size <= gridtokenx_tests::MAX_TRANSACTION_SIZE);
    assert_eq!(size, 251);
    m.c.env
        .send(&[trading_ix::clear_interval(k)], &[])
        .await
        .unwrap();
    let book = m.book(k).await;
    assert!(book.volume_wh > 0);
    // Transaction 2: one sweep pays all 25 buildings (v0 with a lookup table).
    let seats: Vec<(u16, _)> = (0..n).map(|i| (i as u16, m.c.owner(i))).collect();
    let sweep = trading_ix::sweep(&m.quote_mint, &seats);
    let table: Vec<_> = sweep
        .accounts
        .iter()
        .map(|a| a.pubkey)
        .filter(|k| *k != anchor_spl::token::ID)
        .collect();
    let alt = m.c.env.plant_lookup_table(table.clone());
    let tx = m.c.env.v0_transaction(
        &[gridtokenx_tests::compute_unit_limit(400_000), sweep],
        &[],
        alt,
        &table,
    );
    let size = gridtokenx_tests::versioned_transaction_size(&tx);
    assert!(
        size <= gridtokenx_tests::MAX_TRANSACTION_SIZE,
        "sweep is {size} bytes"
    );
    m.c.env.send_v0(tx).await.unwrap();
    let market = m.market().await;
    assert!(market.seats().iter().all(|s| s.base == 0 && s.quote == 0));
    m.assert_conserved(&[k]).await;
    // GRID is conserved: what the buyers got is what the sellers sold.
    let total: u64 = {
        let mut t = 0;
        for i in 0..n {
            t += m.c.grid_balance(i).await;
        }
        t
    };
    assert_eq!(total, 10_000 * n as u64);
}
