//! Trading program: intervals with a gate, orders as accounts of their own on an aggregate
//! price ladder, clearing in order, settlement order by order into claimable balances,
//! withdrawals and sweeps, and every failure with its exact error code. Ends with the four
//! attacks of issue 26 (book stuffing, seat squatting, last look, cranker's choice), each
//! refused.
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::{Pubkey, Rent};
use gridtokenx_tests::auction_reference;
use gridtokenx_tests::energy_token_ix as token_ix;
use gridtokenx_tests::fixtures::{self, SOL};
use gridtokenx_tests::market_campus::{default_params, MarketCampus, QUOTE_FUNDS};
use gridtokenx_tests::registry_ix;
use gridtokenx_tests::trading_ix;
use gridtokenx_tests::{assert_error, events, replace_account};
use registry::MeterStatus;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::events::{
    IntervalCleared, IntervalClosed, OrderCancelled, OrderEvicted, OrderPlaced, OrderSettled,
    SweepSkipped, Withdrawn,
};
use trading::{Balance, IntervalBook, MarketParams, Order, Side, TradingError};

/// SPL Token's own error for a transfer above the balance (InsufficientFunds).
const SPL_INSUFFICIENT_FUNDS: u32 = 1;

fn tick(price: u64) -> usize {
    let p = default_params();
    ((price - p.min_price) / p.price_tick) as usize
}

fn rent(space: usize) -> u64 {
    Rent::default().minimum_balance(space)
}

// ---- initialize_market, set_params ----

#[tokio::test]
async fn initialize_market_stores_params_and_creates_the_vaults() {
    let mut m = MarketCampus::new(2, &[], 0).await;
    let market = m.market().await;
    assert_eq!(market.authority, m.c.env.payer());
    assert_eq!(market.base_mint, token_ix::grid_mint());
    assert_eq!(market.quote_mint, m.quote_mint);
    assert_eq!(market.params(), default_params());
    assert_eq!(market.start_time, m.start_time);
    // Intervals before the current one are never cleared: the cursor starts at it.
    let now = m.c.env.now().await;
    assert_eq!(market.next_clear, market.interval_at(now));
    assert_eq!((market.fees, market.dust_wh, market.last_price), (0, 0, 0));
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
    let p = default_params();
    let bad = [
        MarketParams {
            interval_s: 30,
            ..p
        },
        MarketParams {
            interval_s: 86_401,
            ..p
        },
        MarketParams { price_tick: 0, ..p },
        MarketParams { min_price: 0, ..p },
        MarketParams { ticks: 0, ..p },
        MarketParams { ticks: 513, ..p },
        // The top of the ladder must leave room for a kWh's worth of value.
        MarketParams {
            min_price: u64::MAX / 1_000,
            ..p
        },
        MarketParams {
            fee_bps: 1_001,
            ..p
        },
        MarketParams {
            min_quantity_wh: 0,
            ..p
        },
        MarketParams {
            gate_lead_s: 86_401,
            ..p
        },
        // The gate of the last interval in the horizon must not have closed already: the
        // lead is at most (horizon - 1) intervals (2,700 s with 4 of 900 s).
        MarketParams {
            gate_lead_s: 2_701,
            ..p
        },
        MarketParams {
            horizon: 1,
            gate_lead_s: 1,
            ..p
        },
        MarketParams { horizon: 0, ..p },
        MarketParams { horizon: 8, ..p },
    ];
    for params in bad {
        let ix = trading_ix::initialize_market(payer, quote, params, 0);
        assert_error(c.env.send(&[ix], &[]).await, TradingError::InvalidParams);
    }
    assert!(!c.env.account_exists(trading_ix::market_address()).await);
    // The longest lead the horizon allows is accepted.
    let longest = MarketParams {
        gate_lead_s: 2_700,
        ..p
    };
    let ix = trading_ix::initialize_market(payer, quote, longest, 0);
    c.env.send(&[ix], &[]).await.unwrap();
}

#[tokio::test]
async fn new_params_apply_to_books_opened_afterwards_and_the_interval_length_is_fixed() {
    let mut m = MarketCampus::new(2, &[], 0).await;
    let k = m.trading_interval().await;
    m.open(k).await;
    let payer = m.c.env.payer();
    let coarse = MarketParams {
        price_tick: 2_000,
        ticks: 256,
        fee_bps: 25,
        ..default_params()
    };
    m.c.env
        .send(&[trading_ix::set_params(payer, coarse)], &[])
        .await
        .unwrap();
    assert_eq!(m.market().await.params(), coarse);
    // Book k keeps the ladder it was opened with (2,000 is one of its steps); k + 1 trades
    // on the new one (steps 1,000, 3,000, ...).
    m.order(0, k, Side::Buy, 1_000, 2_000).await;
    m.open(k + 1).await;
    assert_eq!(m.book(k + 1).await.price_tick, 2_000);
    assert_error(
        m.try_order(1, k + 1, Side::Buy, 1_000, 2_000).await,
        TradingError::PriceOffTick,
    );
    m.order(1, k + 1, Side::Buy, 1_000, 3_000).await;
    // The fee and the gate are the book's from its opening too: k keeps 0.5 % and its gate
    // at its start, k + 1 (opened after the change) has 0.25 %.
    let (book_k, book_next) = (m.book(k).await, m.book(k + 1).await);
    assert_eq!((book_k.fee_bps, book_next.fee_bps), (50, 25));
    assert_eq!(book_k.gate, m.market().await.interval_start(k).unwrap());
    // A longer gate lead applies to books opened afterwards only: k + 2's gate closes a
    // whole interval before its start, k's stays where it was.
    let early = MarketParams {
        gate_lead_s: 900,
        ..coarse
    };
    m.c.env
        .send(&[trading_ix::set_params(payer, early)], &[])
        .await
        .unwrap();
    m.open(k + 2).await;
    let market = m.market().await;
    assert_eq!(
        m.book(k + 2).await.gate,
        market.interval_start(k + 2).unwrap() - 900
    );
    assert_eq!(m.book(k).await.gate, book_k.gate);
    m.order(0, k, Side::Buy, 2_000, 2_000).await;
    // The interval length numbers the intervals: it cannot change.
    let ix = trading_ix::set_params(
        payer,
        MarketParams {
            interval_s: 600,
            ..coarse
        },
    );
    assert_error(
        m.c.env.send(&[ix], &[]).await,
        TradingError::IntervalLengthFixed,
    );
    let ix = trading_ix::set_params(
        payer,
        MarketParams {
            fee_bps: 2_000,
            ..coarse
        },
    );
    assert_error(m.c.env.send(&[ix], &[]).await, TradingError::InvalidParams);
    let stranger = m.c.env.funded_keypair(SOL).await;
    let ix = trading_ix::set_params(stranger.pubkey(), coarse);
    assert_error(
        m.c.env.send(&[ix], &[&stranger]).await,
        TradingError::Unauthorized,
    );
}

// ---- open_interval ----

#[tokio::test]
async fn anyone_opens_a_book_within_the_horizon_before_its_gate() {
    let mut m = MarketCampus::new(1, &[], 0).await;
    let k = m.trading_interval().await;
    let stranger = m.c.env.funded_keypair(SOL).await;
    let (result, logs) =
        m.c.env
            .send_with_logs(
                &[trading_ix::open_interval(stranger.pubkey(), k)],
                &[&stranger],
            )
            .await;
    result.unwrap();
    assert_eq!(events::<trading::events::IntervalOpened>(&logs).len(), 1);
    let book = m.book(k).await;
    assert_eq!((book.interval, book.payer), (k, stranger.pubkey()));
    assert_eq!(
        (book.min_price, book.price_tick, book.ticks),
        (1_000, 1_000, 512)
    );
    assert!(!book.is_cleared());
    assert_eq!(
        m.c.env.lamports(trading_ix::book_address(k)).await,
        rent(IntervalBook::SPACE)
    );
    let payer = m.c.env.payer();
    let refused = [
        (k, TradingError::BookAlreadyOpen),
        // The open interval's gate has closed.
        (k - 1, TradingError::GateClosed),
        // The horizon is 4 intervals after the open one.
        (k + 4, TradingError::BeyondHorizon),
    ];
    for (interval, error) in refused {
        let ix = trading_ix::open_interval(payer, interval);
        assert_error(m.c.env.send(&[ix], &[]).await, error);
    }
    m.open(k + 3).await;
    // Once an interval is cleared, its book can never be opened (again).
    let ix = trading_ix::open_interval(payer, k - 2);
    assert_error(m.c.env.send(&[ix], &[]).await, TradingError::AlreadyCleared);
}

// ---- place_order ----

#[tokio::test]
async fn an_order_is_an_account_of_its_own_and_locks_its_escrow() {
    let mut m = MarketCampus::new(2, &[1], 10_000).await;
    let k = m.trading_interval().await;
    m.open(k).await;
    let owner = m.c.owner(0);
    let lamports = m.c.env.lamports(owner).await;
    let ix = m.place(0, k, Side::Buy, 1_001, 45_000);
    let signer = m.c.owners[0].insecure_clone();
    let (result, logs) = m.c.env.send_with_logs(&[ix], &[&signer]).await;
    result.unwrap();
    m.orders.push(gridtokenx_tests::market_campus::Placed {
        interval: k,
        meter: 0,
        side: Side::Buy,
        owner,
    });
    m.traders.insert(owner);
    // 1.001 kWh at 45,000 per kWh: 45,045 (rounded up), locked in the quote vault.
    let placed = events::<OrderPlaced>(&logs);
    assert_eq!(placed.len(), 1);
    assert_eq!(
        (placed[0].escrow, placed[0].replaced, placed[0].owner),
        (45_045, false, owner)
    );
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS - 45_045);
    assert_eq!(
        m.c.env.token_balance(trading_ix::quote_vault()).await,
        45_045
    );
    let order = m.order_account(k, 0, Side::Buy).await;
    assert_eq!(
        order,
        Order {
            owner,
            lfdi: m.c.lfdis[0],
            side: trading::SIDE_BUY,
            bump: order.bump,
            tick: tick(45_000) as u16,
            interval: k,
            quantity_wh: 1_001,
            escrow: 45_045,
        }
    );
    // The trader paid the order's rent (and their balance account's, at their first order).
    let order_rent = rent(Order::SPACE);
    let balance_rent = rent(Balance::SPACE);
    assert_eq!(
        m.c.env
            .lamports(trading_ix::order_address(k, &m.c.lfdis[0], Side::Buy))
            .await,
        order_rent
    );
    assert!(lamports - m.c.env.lamports(owner).await >= order_rent + balance_rent);
    let book = m.book(k).await;
    assert_eq!(book.demand[tick(45_000)], 1_001);
    assert_eq!(
        (book.open_orders, book.buy_orders, book.sell_orders),
        (1, 1, 0)
    );
    // A sell locks its GRID.
    m.order(1, k, Side::Sell, 2_500, 30_000).await;
    assert_eq!(m.grid_balance(1).await, 10_000 - 2_500);
    assert_eq!(m.c.env.token_balance(trading_ix::base_vault()).await, 2_500);
    let book = m.book(k).await;
    assert_eq!(book.supply[tick(30_000)], 2_500);
    assert_eq!(
        (book.open_orders, book.buy_orders, book.sell_orders),
        (2, 1, 1)
    );
    // A sell needs the GRID it offers (building 0 holds none): SPL Token refuses the lock.
    assert_error(
        m.try_order(0, k + 1, Side::Sell, 1_000, 30_000).await,
        SPL_INSUFFICIENT_FUNDS,
    );
    m.assert_conserved().await;
}

#[tokio::test]
async fn a_second_order_on_one_side_replaces_the_first_and_returns_its_escrow() {
    let mut m = MarketCampus::new(1, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Buy, 1_000, 40_000).await;
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS - 40_000);
    let owner = m.c.owners[0].insecure_clone();
    let lamports = m.c.env.lamports(owner.pubkey()).await;
    let ix = m.place(0, k, Side::Buy, 500, 50_000);
    let (result, logs) = m.c.env.send_with_logs(&[ix], &[&owner]).await;
    result.unwrap();
    let placed = events::<OrderPlaced>(&logs);
    assert_eq!((placed[0].escrow, placed[0].replaced), (25_000, true));
    // The old escrow came back: only the new one is locked.
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS - 25_000);
    // No second rent: only the transaction fee.
    assert!(lamports - m.c.env.lamports(owner.pubkey()).await < 10_000);
    let book = m.book(k).await;
    assert_eq!(
        (book.demand[tick(40_000)], book.demand[tick(50_000)]),
        (0, 500)
    );
    assert_eq!((book.open_orders, book.buy_orders), (1, 1));
    // A larger replacement locks the difference.
    m.order(0, k, Side::Buy, 3_000, 50_000).await;
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS - 150_000);
    m.assert_conserved().await;
}

#[tokio::test]
async fn orders_are_refused_outside_the_markets_rules() {
    let mut m = MarketCampus::new(2, &[0, 1], 20_000).await;
    let k = m.trading_interval().await;
    m.open(k).await;
    // Registered capacity: 50 kW of panels and 15 kW of battery discharge deliver at most
    // 16,250 Wh in 15 minutes; the meter draws at most 80 kW, 20,000 Wh.
    let refused = [
        (Side::Buy, 1_000, 1_500, TradingError::PriceOffTick),
        (Side::Buy, 1_000, 500, TradingError::PriceOutOfBounds),
        (Side::Buy, 1_000, 513_000, TradingError::PriceOutOfBounds),
        (Side::Buy, 0, 10_000, TradingError::InvalidQuantity),
        (Side::Sell, 16_251, 10_000, TradingError::OverCapacity),
        (Side::Buy, 20_001, 10_000, TradingError::OverCapacity),
    ];
    for (side, quantity, price, error) in refused {
        assert_error(m.try_order(0, k, side, quantity, price).await, error);
    }
    m.order(0, k, Side::Sell, 16_250, 10_000).await;
    m.cancel(0, k, Side::Sell).await.unwrap();
    m.order(0, k, Side::Buy, 20_000, 10_000).await;
    // Only the meter's owner trades for its building.
    let other = m.c.owners[1].insecure_clone();
    let ix = trading_ix::place_order(
        other.pubkey(),
        &m.quote_mint,
        &m.c.lfdis[0],
        k,
        Side::Buy,
        1_000,
        10_000,
    );
    assert_error(
        m.c.env.send(&[ix], &[&other]).await,
        TradingError::NotMeterOwner,
    );
    // A sell's escrow goes to the GRID vault, not the quote vault.
    let ix = replace_account(
        m.place(1, k, Side::Sell, 1_000, 10_000),
        trading_ix::base_vault(),
        trading_ix::quote_vault(),
    );
    assert_error(
        m.c.env.send(&[ix], &[&other]).await,
        TradingError::WrongMint,
    );
    // A suspended meter's owner cannot place orders for it.
    let payer = m.c.env.payer();
    let lfdi = m.c.lfdis[1];
    m.c.env
        .send(
            &[registry_ix::set_meter_status(
                payer,
                &lfdi,
                MeterStatus::Suspended,
            )],
            &[],
        )
        .await
        .unwrap();
    assert_error(
        m.try_order(1, k, Side::Sell, 1_000, 10_000).await,
        TradingError::MeterNotActive,
    );
    // An interval nobody opened has no book to place into.
    let ix = m.place(0, k + 1, Side::Buy, 1_000, 10_000);
    let owner = m.c.owners[0].insecure_clone();
    assert_error(
        m.c.env.send(&[ix], &[&owner]).await,
        TradingError::BookNotOpen,
    );
    // Beyond the horizon (lowered to 1 after book k + 3 was opened).
    m.open(k + 3).await;
    m.c.env
        .send(
            &[trading_ix::set_params(
                payer,
                MarketParams {
                    horizon: 1,
                    ..default_params()
                },
            )],
            &[],
        )
        .await
        .unwrap();
    assert_error(
        m.try_order(0, k + 3, Side::Buy, 1_000, 10_000).await,
        TradingError::BeyondHorizon,
    );
    // After the gate, nothing changes the interval's orders.
    m.close_gate(k).await;
    assert_error(
        m.try_order(0, k, Side::Buy, 2_000, 10_000).await,
        TradingError::GateClosed,
    );
    m.assert_conserved().await;
}

#[tokio::test]
async fn one_owner_cannot_buy_and_sell_in_one_interval() {
    let mut m = MarketCampus::new(3, &[0, 1], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Buy, 1_000, 50_000).await;
    // Not from the same building (its other side holds an order) ...
    assert_error(
        m.try_order(0, k, Side::Sell, 1_000, 40_000).await,
        TradingError::BuildingOnBothSides,
    );
    // ... nor through another building of theirs: owner 0 takes over meter 1.
    let (a, b) = (
        m.c.owners[0].insecure_clone(),
        m.c.owners[1].insecure_clone(),
    );
    let lfdi = m.c.lfdis[1];
    m.c.env
        .send(
            &[registry_ix::transfer_meter_ownership(
                &lfdi,
                b.pubkey(),
                a.pubkey(),
            )],
            &[&b, &a],
        )
        .await
        .unwrap();
    m.c.owners[1] = a.insecure_clone();
    assert_error(
        m.try_order(1, k, Side::Sell, 1_000, 40_000).await,
        TradingError::SelfTrade,
    );
    // Buying for both buildings is no self-trade.
    m.order(1, k, Side::Buy, 1_000, 45_000).await;
    // Another interval is another matter; and once the buys are cancelled, a sell goes in.
    m.order(0, k + 1, Side::Sell, 1_000, 40_000).await;
    m.cancel(0, k, Side::Buy).await.unwrap();
    assert_error(
        m.try_order(0, k, Side::Sell, 1_000, 40_000).await,
        TradingError::SelfTrade,
    );
    m.cancel(1, k, Side::Buy).await.unwrap();
    m.order(0, k, Side::Sell, 1_000, 40_000).await;
    // The first owner trades with others as before.
    m.order(2, k, Side::Buy, 1_000, 40_000).await;
    m.run_interval(k).await;
    assert_eq!(m.book(k).await.volume_wh, 1_000);
    m.assert_conserved().await;
}

#[tokio::test]
async fn trading_rights_follow_the_meter_and_balances_stay_with_their_owner() {
    let mut m = MarketCampus::new(3, &[0], 10_000).await;
    let k = m.trading_interval().await;
    // A sells 1 kWh from meter 0 in intervals k and k + 1, then hands the building to B.
    m.order(0, k, Side::Sell, 1_000, 40_000).await;
    m.order(0, k + 1, Side::Sell, 1_000, 40_000).await;
    let (a, b) = (
        m.c.owners[0].insecure_clone(),
        m.c.owners[1].insecure_clone(),
    );
    // B already trades for meter 1 (so holds a balance account); meter 2 buys in k.
    m.order(1, k + 2, Side::Buy, 1_000, 10_000).await;
    m.order(2, k, Side::Buy, 1_000, 50_000).await;
    let lfdi = m.c.lfdis[0];
    m.c.env
        .send(
            &[registry_ix::transfer_meter_ownership(
                &lfdi,
                a.pubkey(),
                b.pubkey(),
            )],
            &[&a, &b],
        )
        .await
        .unwrap();
    // A no longer trades for the building.
    assert_error(
        m.try_order(0, k + 2, Side::Sell, 1_000, 40_000).await,
        TradingError::NotMeterOwner,
    );
    // B cannot replace A's order, nor stand on the other side of it ...
    let quote_mint = m.quote_mint;
    let place = |side, interval, price| {
        trading_ix::place_order(b.pubkey(), &quote_mint, &lfdi, interval, side, 1_000, price)
    };
    assert_error(
        m.c.env.send(&[place(Side::Sell, k, 45_000)], &[&b]).await,
        TradingError::OrderOfPreviousOwner,
    );
    assert_error(
        m.c.env.send(&[place(Side::Buy, k, 50_000)], &[&b]).await,
        TradingError::BuildingOnBothSides,
    );
    // ... but evicts it before the gate: the escrow and the rent are credited to A.
    let evict = |by: &Pubkey, previous: &Pubkey, interval, side| {
        trading_ix::evict_order(*by, previous, &lfdi, interval, side)
    };
    let refused = [
        // Only the meter's owner now evicts.
        (
            &a,
            evict(&a.pubkey(), &a.pubkey(), k + 1, Side::Sell),
            TradingError::NotMeterOwner,
        ),
        // No order on that side.
        (
            &b,
            evict(&b.pubkey(), &a.pubkey(), k + 1, Side::Buy),
            TradingError::UnknownOrder,
        ),
        // The credit goes to the order's owner, no one else.
        (
            &b,
            evict(&b.pubkey(), &b.pubkey(), k + 1, Side::Sell),
            TradingError::WrongBalance,
        ),
    ];
    for (signer, ix, error) in refused {
        assert_error(m.c.env.send(&[ix], &[signer]).await, error);
    }
    let balance_lamports =
        m.c.env
            .lamports(trading_ix::balance_address(&a.pubkey()))
            .await;
    let (result, logs) =
        m.c.env
            .send_with_logs(&[evict(&b.pubkey(), &a.pubkey(), k + 1, Side::Sell)], &[&b])
            .await;
    result.unwrap();
    m.orders
        .retain(|o| !(o.interval == k + 1 && o.meter == 0 && o.side == Side::Sell));
    let evicted = &events::<OrderEvicted>(&logs)[0];
    assert_eq!(
        (evicted.owner, evicted.by, evicted.credited),
        (a.pubkey(), b.pubkey(), 1_000)
    );
    assert_eq!(m.balance(&a.pubkey()).await.base, 1_000);
    assert_eq!(
        m.c.env
            .lamports(trading_ix::balance_address(&a.pubkey()))
            .await,
        balance_lamports + rent(Order::SPACE)
    );
    assert_eq!(m.book(k + 1).await.sell_orders, 0);
    m.assert_conserved().await;
    // B's own order cannot be evicted (B cancels it).
    m.c.owners[0] = b.insecure_clone();
    m.order(0, k + 1, Side::Buy, 1_000, 45_000).await;
    assert_error(
        m.c.env
            .send(&[evict(&b.pubkey(), &b.pubkey(), k + 1, Side::Buy)], &[&b])
            .await,
        TradingError::NotEvictable,
    );
    // After the gate, A's order in interval k is final: it settles to A.
    m.close_gate(k).await;
    assert_error(
        m.c.env
            .send(&[evict(&b.pubkey(), &a.pubkey(), k, Side::Sell)], &[&b])
            .await,
        TradingError::GateClosed,
    );
    m.run_interval(k).await;
    // A's sale settled to A's balance, though A owns no meter now; A withdraws it.
    let fee = auction_reference::fee(40_000, 50);
    let balance = m.balance(&a.pubkey()).await;
    assert_eq!((balance.base, balance.quote), (1_000, 40_000 - fee));
    let ix = trading_ix::withdraw(a.pubkey(), &m.quote_mint, 1_000, 40_000 - fee);
    m.c.env.send(&[ix], &[&a]).await.unwrap();
    // The buyer paid the price, 40,000, of the 50,000 it locked.
    assert_eq!(m.quote_balance(2).await, QUOTE_FUNDS - 50_000);
    let balance = m.balance(&m.c.owner(2)).await;
    assert_eq!((balance.base, balance.quote), (1_000, 10_000));
    m.assert_conserved().await;
}

// ---- cancel_order ----

#[tokio::test]
async fn the_owner_cancels_before_the_gate_and_gets_escrow_and_rent_back() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 2_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    let owner = m.c.owners[0].insecure_clone();
    // Only the order's owner.
    let other = m.c.owners[1].insecure_clone();
    let ix = trading_ix::cancel_order(other.pubkey(), &m.quote_mint, &m.c.lfdis[0], k, Side::Sell);
    assert_error(
        m.c.env.send(&[ix], &[&other]).await,
        TradingError::NotOrderOwner,
    );
    // No order on that side.
    assert_error(m.cancel(0, k, Side::Buy).await, TradingError::UnknownOrder);
    let lamports = m.c.env.lamports(owner.pubkey()).await;
    let ix = trading_ix::cancel_order(owner.pubkey(), &m.quote_mint, &m.c.lfdis[0], k, Side::Sell);
    let (result, logs) = m.c.env.send_with_logs(&[ix], &[&owner]).await;
    result.unwrap();
    m.orders.retain(|o| o.meter != 0);
    assert_eq!(events::<OrderCancelled>(&logs)[0].refunded, 2_000);
    assert_eq!(m.grid_balance(0).await, 10_000);
    assert!(m.c.env.lamports(owner.pubkey()).await + 10_000 > lamports + rent(Order::SPACE));
    assert!(
        !m.c.env
            .account_exists(trading_ix::order_address(k, &m.c.lfdis[0], Side::Sell))
            .await
    );
    let book = m.book(k).await;
    assert_eq!(book.supply[tick(30_000)], 0);
    assert_eq!((book.open_orders, book.sell_orders), (1, 0));
    // Now a buy is no self-trade.
    m.order(0, k, Side::Buy, 500, 30_000).await;
    // After the gate, cancelling is refused too.
    m.close_gate(k).await;
    assert_error(m.cancel(1, k, Side::Buy).await, TradingError::GateClosed);
    m.assert_conserved().await;
}

// ---- clear_interval ----

#[tokio::test]
async fn intervals_clear_in_order_once_their_gate_has_closed() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 1_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    // The open interval (no book) clears at once, as nothing.
    let (result, logs) =
        m.c.env
            .send_with_logs(&[trading_ix::clear_interval(k - 1)], &[])
            .await;
    result.unwrap();
    let cleared = events::<IntervalCleared>(&logs);
    assert_eq!((cleared[0].interval, cleared[0].price), (k - 1, 0));
    assert_eq!(m.market().await.next_clear, k);
    assert_error(m.clear(k).await, TradingError::GateNotClosed);
    m.close_gate(k + 1).await;
    assert_error(m.clear(k + 1).await, TradingError::ClearOutOfOrder);
    assert_error(m.clear(k - 1).await, TradingError::AlreadyCleared);
    m.clear(k).await.unwrap();
    assert_error(m.clear(k).await, TradingError::AlreadyCleared);
    let market = m.market().await;
    assert_eq!((market.next_clear, market.last_price), (k + 1, 30_000));
    m.clear(k + 1).await.unwrap();
    // A cleared interval takes no orders, and its book cannot be opened again.
    assert_error(
        m.try_order(1, k, Side::Buy, 1_000, 30_000).await,
        TradingError::GateClosed,
    );
}

#[tokio::test]
async fn clearing_finds_the_uniform_price_and_each_order_settles_on_its_own() {
    let mut m = MarketCampus::new(6, &[0, 1, 2], 10_000).await;
    let k = m.trading_interval().await;
    // Sells 3 kWh at 30,000, 3 kWh at 40,000, 2 kWh at 60,000; buys 2 kWh at 70,000,
    // 2.5 kWh at 40,000, 1.5 kWh at 40,000. At 40,000: demand 6 kWh, supply 6 kWh.
    let orders = [
        (0, Side::Sell, 3_000, 30_000),
        (1, Side::Sell, 3_000, 40_000),
        (2, Side::Sell, 2_000, 60_000),
        (3, Side::Buy, 2_000, 70_000),
        (4, Side::Buy, 2_500, 40_000),
        (5, Side::Buy, 1_500, 40_000),
    ];
    for (i, side, q, p) in orders {
        m.order(i, k, side, q, p).await;
    }
    m.close_gate(k).await;
    m.clear(k - 1).await.unwrap();
    let (result, logs) =
        m.c.env
            .send_with_logs(&[trading_ix::clear_interval(k)], &[])
            .await;
    result.unwrap();
    let cleared = &events::<IntervalCleared>(&logs)[0];
    assert_eq!(
        (
            cleared.price,
            cleared.volume_wh,
            cleared.buy_orders,
            cleared.sell_orders,
            cleared.buy_volume_offered,
            cleared.sell_volume_offered
        ),
        (40_000, 6_000, 3, 3, 6_000, 8_000)
    );
    let refs: Vec<_> = orders
        .iter()
        .map(|&(_, side, q, p)| (side == Side::Buy, p, q))
        .collect();
    let reference = auction_reference::clear(&refs, 0).unwrap();
    assert_eq!((reference.price, reference.volume), (40_000, 6_000));
    // Settlement, order by order (in reverse, to show the order does not matter).
    let pairs: Vec<_> = m
        .orders
        .iter()
        .rev()
        .map(|o| (o.address(&m.c.lfdis[o.meter]), o.owner))
        .collect();
    let (result, logs) =
        m.c.env
            .send_with_logs(&[trading_ix::settle_orders(k, &pairs)], &[])
            .await;
    result.unwrap();
    m.orders.clear();
    let settled = events::<OrderSettled>(&logs);
    assert_eq!(settled.len(), 6);
    for ((i, side, q, p), fill) in orders.iter().zip(&reference.fills) {
        let s = settled.iter().find(|s| s.lfdi == m.c.lfdis[*i]).unwrap();
        let balance = m.balance(&m.c.owner(*i)).await;
        if *side == Side::Buy {
            // Pays the clearing price, not its limit; the rest of its escrow comes back.
            let escrow = q * p / 1_000;
            assert_eq!((s.filled_wh, s.quote), (fill.energy, fill.quote));
            assert_eq!(
                (balance.base, balance.quote),
                (fill.energy, escrow - fill.quote)
            );
        } else {
            let net = fill.quote - auction_reference::fee(fill.quote, 50);
            assert_eq!((s.filled_wh, s.quote), (fill.energy, net));
            assert_eq!((balance.base, balance.quote), (q - fill.energy, net));
        }
    }
    // The 60,000 sell did not trade; the others did in full at 40,000.
    assert_eq!(
        reference.fills.iter().map(|f| f.energy).collect::<Vec<_>>(),
        vec![3_000, 3_000, 0, 2_000, 2_500, 1_500]
    );
    // The sellers' fees stay in the book until it closes.
    let fees = 2 * auction_reference::fee(120_000, 50);
    assert_eq!(m.book(k).await.fees, fees);
    assert_eq!(m.market().await.fees, 0);
    m.assert_conserved().await;
    let payer = m.c.env.payer();
    m.c.env
        .send(&[trading_ix::close_book(k, payer)], &[])
        .await
        .unwrap();
    assert_eq!(m.market().await.fees, fees);
    m.assert_conserved().await;
}

#[tokio::test]
async fn the_long_side_at_the_price_is_rationed_pro_rata_and_rounding_stays_with_the_market() {
    let mut m = MarketCampus::new(4, &[0, 1, 2], 10_000).await;
    let k = m.trading_interval().await;
    // Three sells of 1,000 Wh at 31,000 meet one buy of 1,000 Wh at 50,000: the price is
    // 31,000 and the sells share 1,000 Wh, a third each (333.3 Wh).
    for i in 0..3 {
        m.order(i, k, Side::Sell, 1_000, 31_000).await;
    }
    m.order(3, k, Side::Buy, 1_000, 50_000).await;
    m.run_interval(k).await;
    let book = m.book(k).await;
    assert_eq!((book.price, book.volume_wh), (31_000, 1_000));
    assert_eq!(
        (book.marginal_side, book.marginal_fill, book.marginal_total),
        (trading::MARGINAL_SELL, 1_000, 3_000)
    );
    // Each sell delivers 334 Wh (its share rounded up) and is paid for 333.3 Wh (10,333.3,
    // rounded down, less the fee); the buy receives its 1,000 Wh and pays 31,000.
    for i in 0..3 {
        let b = m.balance(&m.c.owner(i)).await;
        assert_eq!(
            (b.base, b.quote),
            (1_000 - 334, 10_333 - auction_reference::fee(10_333, 50))
        );
    }
    let b = m.balance(&m.c.owner(3)).await;
    assert_eq!((b.base, b.quote), (1_000, 50_000 - 31_000));
    // 2 Wh of GRID and 1 quote unit are the market's once the book closes.
    let payer = m.c.env.payer();
    let (result, logs) =
        m.c.env
            .send_with_logs(&[trading_ix::close_book(k, payer)], &[])
            .await;
    result.unwrap();
    let closed = &events::<IntervalClosed>(&logs)[0];
    let fee = auction_reference::fee(10_333, 50);
    assert_eq!(
        (closed.dust_wh, closed.fees, closed.quote_surplus),
        (2, 3 * fee, 1)
    );
    let market = m.market().await;
    assert_eq!(market.dust_wh, 2);
    assert_eq!(market.fees, 1 + 3 * auction_reference::fee(10_333, 50));
    m.assert_conserved().await;
}

#[tokio::test]
async fn an_interval_without_a_match_returns_every_escrow() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 1_000, 50_000).await;
    m.order(1, k, Side::Buy, 1_000, 40_000).await;
    m.run_interval(k).await;
    let book = m.book(k).await;
    assert_eq!((book.volume_wh, book.price, book.open_orders), (0, 0, 0));
    assert_eq!(m.balance(&m.c.owner(0)).await.base, 1_000);
    assert_eq!(m.balance(&m.c.owner(1)).await.quote, 40_000);
    assert_eq!(m.market().await.last_price, 0);
    m.assert_conserved().await;
}

// ---- settle_orders, close_book ----

#[tokio::test]
async fn settlement_needs_a_cleared_book_and_its_own_orders_and_balances() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 1_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    m.order(1, k + 1, Side::Buy, 1_000, 30_000).await;
    let sell = trading_ix::order_address(k, &m.c.lfdis[0], Side::Sell);
    let buy = trading_ix::order_address(k, &m.c.lfdis[1], Side::Buy);
    let later = trading_ix::order_address(k + 1, &m.c.lfdis[1], Side::Buy);
    let (a, b) = (m.c.owner(0), m.c.owner(1));
    let settle = |pairs: &[(Pubkey, Pubkey)]| trading_ix::settle_orders(k, pairs);
    assert_error(
        m.c.env.send(&[settle(&[(sell, a)])], &[]).await,
        TradingError::NotCleared,
    );
    m.close_gate(k).await;
    m.clear(k - 1).await.unwrap();
    m.clear(k).await.unwrap();
    // Not a pair per order.
    let mut odd = settle(&[(sell, a)]);
    odd.accounts.pop();
    assert_error(m.c.env.send(&[odd], &[]).await, TradingError::UnknownOrder);
    // An order of another interval.
    assert_error(
        m.c.env.send(&[settle(&[(later, b)])], &[]).await,
        TradingError::WrongBook,
    );
    // Credit to someone else's balance.
    assert_error(
        m.c.env.send(&[settle(&[(sell, b)])], &[]).await,
        TradingError::WrongBalance,
    );
    // The book account of another interval.
    let wrong_book = replace_account(
        settle(&[(sell, a)]),
        trading_ix::book_address(k),
        trading_ix::book_address(k + 1),
    );
    assert_error(
        m.c.env.send(&[wrong_book], &[]).await,
        ErrorCode::ConstraintSeeds,
    );
    // Anyone settles; the order's rent goes to its owner's balance account.
    let balance_lamports = m.c.env.lamports(trading_ix::balance_address(&a)).await;
    m.c.env.send(&[settle(&[(sell, a)])], &[]).await.unwrap();
    assert_eq!(
        m.c.env.lamports(trading_ix::balance_address(&a)).await,
        balance_lamports + rent(Order::SPACE)
    );
    // Settled twice in one batch (and again later): passed over, credited once.
    let (result, logs) =
        m.c.env
            .send_with_logs(&[settle(&[(sell, a), (buy, b), (buy, b)])], &[])
            .await;
    result.unwrap();
    assert_eq!(events::<OrderSettled>(&logs).len(), 1);
    m.orders.retain(|o| o.interval != k);
    assert_eq!(m.balance(&a).await.quote, 30_000 - 150);
    assert_eq!(m.balance(&b).await.base, 1_000);
    assert_eq!(m.book(k).await.open_orders, 0);
    m.assert_conserved().await;
    // The owner withdraws everything, the settled order's rent included.
    let owner = m.c.owners[0].insecure_clone();
    let before = m.c.env.lamports(a).await;
    let (result, logs) =
        m.c.env
            .send_with_logs(
                &[trading_ix::withdraw(a, &m.quote_mint, 0, 30_000 - 150)],
                &[&owner],
            )
            .await;
    result.unwrap();
    assert_eq!(events::<Withdrawn>(&logs)[0].lamports, rent(Order::SPACE));
    assert!(m.c.env.lamports(a).await + 10_000 > before + rent(Order::SPACE));
    assert_eq!(
        m.c.env.lamports(trading_ix::balance_address(&a)).await,
        rent(Balance::SPACE)
    );
}

#[tokio::test]
async fn a_book_closes_once_cleared_and_settled_and_its_rent_goes_back() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    let opener = m.c.env.funded_keypair(SOL).await;
    m.c.env
        .send(&[trading_ix::open_interval(opener.pubkey(), k)], &[&opener])
        .await
        .unwrap();
    m.intervals.insert(k);
    m.order(0, k, Side::Sell, 1_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    let close = trading_ix::close_book(k, opener.pubkey());
    assert_error(
        m.c.env.send(std::slice::from_ref(&close), &[]).await,
        TradingError::NotCleared,
    );
    m.close_gate(k).await;
    m.clear(k - 1).await.unwrap();
    m.clear(k).await.unwrap();
    assert_error(
        m.c.env.send(std::slice::from_ref(&close), &[]).await,
        TradingError::OrdersOutstanding,
    );
    m.settle(k).await;
    // The rent goes to whoever opened the book, no one else.
    let payer = m.c.env.payer();
    assert_error(
        m.c.env.send(&[trading_ix::close_book(k, payer)], &[]).await,
        TradingError::WrongBook,
    );
    let before = m.c.env.lamports(opener.pubkey()).await;
    m.c.env.send(&[close], &[]).await.unwrap();
    assert_eq!(
        m.c.env.lamports(opener.pubkey()).await,
        before + rent(IntervalBook::SPACE)
    );
    assert!(!m.c.env.account_exists(trading_ix::book_address(k)).await);
    m.assert_conserved().await;
}

// ---- withdraw, sweep, fees ----

#[tokio::test]
async fn owners_withdraw_at_most_their_balances() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 2_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    m.run_interval(k).await;
    let owner = m.c.owners[0].insecure_clone();
    // Seller: 1,000 Wh back, 30,000 - 150 quote.
    let b = m.balance(&owner.pubkey()).await;
    assert_eq!((b.base, b.quote), (1_000, 29_850));
    for (base, quote) in [(1_001, 0), (0, 29_851)] {
        let ix = trading_ix::withdraw(owner.pubkey(), &m.quote_mint, base, quote);
        assert_error(
            m.c.env.send(&[ix], &[&owner]).await,
            TradingError::InsufficientBalance,
        );
    }
    let ix = trading_ix::withdraw(owner.pubkey(), &m.quote_mint, 400, 850);
    m.c.env.send(&[ix], &[&owner]).await.unwrap();
    let b = m.balance(&owner.pubkey()).await;
    assert_eq!((b.base, b.quote), (600, 29_000));
    assert_eq!(m.grid_balance(0).await, 10_000 - 2_000 + 400);
    // Only the owner withdraws their balance (the balance address is the signer's).
    let other = m.c.owners[1].insecure_clone();
    let ix = replace_account(
        trading_ix::withdraw(other.pubkey(), &m.quote_mint, 1, 0),
        trading_ix::balance_address(&other.pubkey()),
        trading_ix::balance_address(&owner.pubkey()),
    );
    assert_error(
        m.c.env.send(&[ix], &[&other]).await,
        ErrorCode::ConstraintSeeds,
    );
    m.assert_conserved().await;
}

#[tokio::test]
async fn a_sweep_pays_every_balance_it_can_and_skips_the_others() {
    let mut m = MarketCampus::new(3, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 2_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    m.order(2, k, Side::Buy, 1_000, 30_000).await;
    m.run_interval(k).await;
    let owners: Vec<_> = (0..3).map(|i| m.c.owner(i)).collect();
    // Owner 2's wallet is given wrongly: skipped, its balance stays claimable.
    let mut ix = trading_ix::sweep(&m.quote_mint, &owners);
    let last = ix.accounts.len() - 1;
    ix.accounts[last].pubkey = owners[0];
    let (result, logs) = m.c.env.send_with_logs(&[ix], &[]).await;
    result.unwrap();
    assert_eq!(events::<SweepSkipped>(&logs)[0].owner, owners[2]);
    assert_eq!(events::<Withdrawn>(&logs).len(), 2);
    for owner in &owners[..2] {
        let b = m.balance(owner).await;
        assert_eq!((b.base, b.quote), (0, 0));
    }
    assert_eq!(m.grid_balance(0).await, 10_000 - 2_000);
    assert_eq!(m.grid_balance(1).await, 1_000);
    let b = m.balance(&owners[2]).await;
    assert_eq!((b.base, b.quote), (1_000, 0));
    m.c.env
        .send(&[trading_ix::sweep(&m.quote_mint, &owners[2..])], &[])
        .await
        .unwrap();
    assert_eq!(m.grid_balance(2).await, 1_000);
    m.assert_conserved().await;
}

#[tokio::test]
async fn fees_and_dust_go_to_the_authority_only() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 1_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    m.run_interval(k).await;
    let payer = m.c.env.payer();
    // Fees reach the market when the interval's book closes.
    assert_eq!(m.market().await.fees, 0);
    m.c.env
        .send(&[trading_ix::close_book(k, payer)], &[])
        .await
        .unwrap();
    let fees = m.market().await.fees;
    assert_eq!(fees, 150);
    let owner = m.c.owner(1);
    let (quote_to, grid_to) = (
        token_ix::ata(&owner, &m.quote_mint),
        token_ix::ata(&owner, &token_ix::grid_mint()),
    );
    let stranger = m.c.env.funded_keypair(SOL).await;
    let ix = trading_ix::withdraw_fees(stranger.pubkey(), quote_to, grid_to, fees, 0);
    assert_error(
        m.c.env.send(&[ix], &[&stranger]).await,
        TradingError::Unauthorized,
    );
    for (quote, base) in [(fees + 1, 0), (0, 1)] {
        let ix = trading_ix::withdraw_fees(payer, quote_to, grid_to, quote, base);
        assert_error(
            m.c.env.send(&[ix], &[]).await,
            TradingError::InsufficientFees,
        );
    }
    let before = m.quote_balance(1).await;
    let ix = trading_ix::withdraw_fees(payer, quote_to, grid_to, fees, 0);
    m.c.env.send(&[ix], &[]).await.unwrap();
    assert_eq!(m.quote_balance(1).await, before + fees);
    assert_eq!(m.market().await.fees, 0);
    m.assert_conserved().await;
}

/// Every instruction that moves tokens out of a vault checks it is the market's, and the
/// lists of remaining accounts are whole.
#[tokio::test]
async fn vaults_are_the_markets_and_account_lists_are_whole() {
    let mut m = MarketCampus::new(2, &[0, 1], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 1_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    let (a, b) = (
        m.c.owners[0].insecure_clone(),
        m.c.owners[1].insecure_clone(),
    );
    // Owner 1's GRID account stands in for a vault.
    let fake = token_ix::ata(&b.pubkey(), &token_ix::grid_mint());
    let cancel = replace_account(
        trading_ix::cancel_order(a.pubkey(), &m.quote_mint, &m.c.lfdis[0], k, Side::Sell),
        trading_ix::base_vault(),
        fake,
    );
    assert_error(
        m.c.env.send(&[cancel], &[&a]).await,
        TradingError::WrongMint,
    );
    m.close_gate(k).await;
    m.clear(k - 1).await.unwrap();
    m.clear(k).await.unwrap();
    // A read-only order cannot be settled (its account is closed by settlement).
    let mut settle = trading_ix::settle_orders(
        k,
        &[(
            trading_ix::order_address(k, &m.c.lfdis[0], Side::Sell),
            a.pubkey(),
        )],
    );
    let order_meta = settle.accounts.len() - 2;
    settle.accounts[order_meta].is_writable = false;
    assert_error(
        m.c.env.send(&[settle], &[]).await,
        TradingError::UnknownOrder,
    );
    m.settle(k).await;
    let payer = m.c.env.payer();
    m.c.env
        .send(&[trading_ix::close_book(k, payer)], &[])
        .await
        .unwrap();
    for vault in [trading_ix::base_vault(), trading_ix::quote_vault()] {
        let withdraw = replace_account(
            trading_ix::withdraw(a.pubkey(), &m.quote_mint, 0, 1),
            vault,
            fake,
        );
        assert_error(
            m.c.env.send(&[withdraw], &[&a]).await,
            TradingError::WrongMint,
        );
        let sweep = replace_account(trading_ix::sweep(&m.quote_mint, &[a.pubkey()]), vault, fake);
        assert_error(m.c.env.send(&[sweep], &[]).await, TradingError::WrongMint);
        let quote_to = token_ix::ata(&a.pubkey(), &m.quote_mint);
        let grid_to = token_ix::ata(&a.pubkey(), &token_ix::grid_mint());
        let fees = replace_account(
            trading_ix::withdraw_fees(payer, quote_to, grid_to, 1, 0),
            vault,
            fake,
        );
        assert_error(m.c.env.send(&[fees], &[]).await, TradingError::WrongMint);
    }
    // A sweep names whole groups of four accounts, at least one.
    let empty = trading_ix::sweep(&m.quote_mint, &[]);
    assert_error(
        m.c.env.send(&[empty], &[]).await,
        TradingError::WrongBalance,
    );
    let mut ragged = trading_ix::sweep(&m.quote_mint, &[a.pubkey(), b.pubkey()]);
    ragged.accounts.pop();
    assert_error(
        m.c.env.send(&[ragged], &[]).await,
        TradingError::WrongBalance,
    );
    // Nothing moved: the sweep then pays both.
    m.c.env
        .send(
            &[trading_ix::sweep(&m.quote_mint, &[a.pubkey(), b.pubkey()])],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS + 30_000 - 150);
    assert_eq!(m.grid_balance(1).await, 10_000 + 1_000);
    m.assert_conserved().await;
}

// ---- pause and governance ----

#[tokio::test]
async fn a_paused_market_takes_no_orders_nor_clears_but_cancels_settles_and_pays_out() {
    let mut m = MarketCampus::new(3, &[0], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 1_000, 30_000).await;
    m.order(1, k, Side::Buy, 1_000, 30_000).await;
    m.order(2, k, Side::Buy, 1_000, 20_000).await;
    let payer = m.c.env.payer();
    let now = m.c.env.now().await;
    for past in [1, now] {
        let ix = trading_ix::pause_until(payer, past);
        assert_error(m.c.env.send(&[ix], &[]).await, TradingError::InvalidPause);
    }
    m.c.env
        .send(&[trading_ix::set_paused(payer, true)], &[])
        .await
        .unwrap();
    assert_error(
        m.try_order(2, k, Side::Buy, 1_000, 30_000).await,
        TradingError::Paused,
    );
    // Cancelling goes on.
    m.cancel(2, k, Side::Buy).await.unwrap();
    m.close_gate(k).await;
    assert_error(m.clear(k - 1).await, TradingError::Paused);
    m.c.env
        .send(&[trading_ix::set_paused(payer, false)], &[])
        .await
        .unwrap();
    m.clear(k - 1).await.unwrap();
    m.clear(k).await.unwrap();
    // Paused until a time: settlement and withdrawals go on; the pause lapses by itself.
    let now = m.c.env.now().await;
    m.c.env
        .send(&[trading_ix::pause_until(payer, now + 600)], &[])
        .await
        .unwrap();
    m.settle(k).await;
    let owner = m.c.owners[0].insecure_clone();
    let ix = trading_ix::withdraw(owner.pubkey(), &m.quote_mint, 0, 29_850);
    m.c.env.send(&[ix], &[&owner]).await.unwrap();
    m.c.env
        .send(&[trading_ix::sweep(&m.quote_mint, &[m.c.owner(1)])], &[])
        .await
        .unwrap();
    assert_error(m.clear(k + 1).await, TradingError::Paused);
    m.c.env.advance_clock(600).await;
    m.close_gate(k + 1).await;
    m.clear(k + 1).await.unwrap();
    m.assert_conserved().await;
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
    let market = m.market().await;
    assert!(market.is_paused(now));
    assert_eq!(
        market.paused_until,
        now + i64::from(fixtures::GUARDIAN_PAUSE_S)
    );
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

#[tokio::test]
async fn the_authority_is_handed_only_to_another_real_key() {
    let mut m = MarketCampus::new(1, &[], 0).await;
    let payer = m.c.env.payer();
    for to in [Pubkey::default(), payer] {
        let ix = trading_ix::propose_authority(payer, to);
        assert_error(
            m.c.env.send(&[ix], &[]).await,
            TradingError::InvalidAuthority,
        );
    }
    let stranger = m.c.env.funded_keypair(SOL).await;
    let ix = trading_ix::propose_authority(stranger.pubkey(), stranger.pubkey());
    assert_error(
        m.c.env.send(&[ix], &[&stranger]).await,
        TradingError::Unauthorized,
    );
    assert_eq!(m.market().await.pending_authority, Pubkey::default());
}

// ---- the attacks of issue 26, refused ----

/// Book stuffing: a trader places and cancels orders over and over to fill the interval.
/// Orders are accounts of their own (no shared slots), a building holds at most one order
/// per side, and a cancellation gives the book back its quantity: nothing to exhaust.
#[tokio::test]
async fn attack_book_stuffing_fills_nothing() {
    let mut m = MarketCampus::new(3, &[0, 1], 10_000).await;
    let k = m.trading_interval().await;
    for round in 0..40u64 {
        m.order(0, k, Side::Sell, 100, 1_000 + 1_000 * (round % 7))
            .await;
        m.cancel(0, k, Side::Sell).await.unwrap();
    }
    // More orders from the attacker's building only replace its one order per side.
    for round in 0..20u64 {
        m.order(0, k, Side::Sell, 100 + round, 50_000).await;
    }
    let book = m.book(k).await;
    assert_eq!((book.open_orders, book.sell_orders), (1, 1));
    assert_eq!(book.supply.iter().sum::<u64>(), 119);
    // Everyone else trades as usual.
    m.order(1, k, Side::Sell, 1_000, 30_000).await;
    m.order(2, k, Side::Buy, 1_000, 40_000).await;
    m.run_interval(k).await;
    let book = m.book(k).await;
    assert_eq!((book.price, book.volume_wh), (30_000, 1_000));
    m.assert_conserved().await;
}

/// Seat squatting: one owner cycles a meter through wallets they control. There are no
/// seats: each wallet trades for the building only while it owns the meter, and a building
/// registered later trades at once.
#[tokio::test]
async fn attack_seat_squatting_takes_nothing_from_anyone() {
    let mut m = MarketCampus::new(2, &[0], 10_000).await;
    let k = m.trading_interval().await;
    let payer = m.c.env.payer();
    let lfdi = m.c.lfdis[0];
    m.open(k).await;
    // Four more wallets, each with a quote account: the meter moves through all of them.
    let mut wallets = vec![m.c.owners[0].insecure_clone()];
    for _ in 0..4 {
        let w = m.c.env.funded_keypair(SOL).await;
        m.c.env
            .send(
                &[token_ix::create_ata(&payer, &w.pubkey(), &m.quote_mint)],
                &[],
            )
            .await
            .unwrap();
        let from = wallets.last().unwrap().insecure_clone();
        m.c.env
            .send(
                &[registry_ix::transfer_meter_ownership(
                    &lfdi,
                    from.pubkey(),
                    w.pubkey(),
                )],
                &[&from, &w],
            )
            .await
            .unwrap();
        wallets.push(w);
    }
    // Only the wallet that owns the meter now trades for the building; the ones it left,
    // and everyone else, hold no right to.
    let quote_mint = m.quote_mint;
    let buy = |w: &Keypair| {
        trading_ix::place_order(w.pubkey(), &quote_mint, &lfdi, k, Side::Buy, 1_000, 10_000)
    };
    let others: Vec<_> = wallets[..4]
        .iter()
        .map(|w| w.insecure_clone())
        .chain([m.c.owners[1].insecure_clone()])
        .collect();
    for w in &others {
        let ix = buy(w);
        assert_error(m.c.env.send(&[ix], &[w]).await, TradingError::NotMeterOwner);
    }
    let owner_now = wallets[4].insecure_clone();
    m.c.env
        .send(
            &[spl_token_interface::instruction::mint_to(
                &anchor_spl::token::ID,
                &m.quote_mint,
                &token_ix::ata(&owner_now.pubkey(), &m.quote_mint),
                &payer,
                &[],
                QUOTE_FUNDS,
            )
            .unwrap()],
            &[],
        )
        .await
        .unwrap();
    let ix = buy(&owner_now);
    m.c.env.send(&[ix], &[&owner_now]).await.unwrap();
    // A building registered after the market opened trades at once: no seat to claim.
    let owner = m.c.env.funded_keypair(SOL).await;
    let new_lfdi = registry_ix::test_lfdi(77);
    m.c.env
        .send(
            &[
                registry_ix::register_meter(payer, owner.pubkey(), new_lfdi),
                token_ix::create_ata(&payer, &owner.pubkey(), &m.quote_mint),
                spl_token_interface::instruction::mint_to(
                    &anchor_spl::token::ID,
                    &m.quote_mint,
                    &token_ix::ata(&owner.pubkey(), &m.quote_mint),
                    &payer,
                    &[],
                    QUOTE_FUNDS,
                )
                .unwrap(),
            ],
            &[&owner],
        )
        .await
        .unwrap();
    let ix = trading_ix::place_order(
        owner.pubkey(),
        &m.quote_mint,
        &new_lfdi,
        k,
        Side::Buy,
        1_000,
        10_000,
    );
    m.c.env.send(&[ix], &[&owner]).await.unwrap();
    assert_eq!(m.book(k).await.buy_orders, 2);
}

/// Last look: once trading has ended, a seller sends `[cancel_order(own ask),
/// clear_interval]` in one transaction to raise the price (30,000 -> 90,000). The gate has
/// closed: the cancellation is refused, the transaction fails, and the interval clears on
/// the orders as they stood.
#[tokio::test]
async fn attack_last_look_cannot_change_a_closed_interval() {
    let mut m = MarketCampus::new(3, &[0, 1], 10_000).await;
    let k = m.trading_interval().await;
    m.order(0, k, Side::Sell, 1_000, 30_000).await;
    m.order(1, k, Side::Sell, 1_000, 90_000).await;
    m.order(2, k, Side::Buy, 1_000, 100_000).await;
    m.close_gate(k).await;
    m.clear(k - 1).await.unwrap();
    let attacker = m.c.owners[0].insecure_clone();
    let cancel = trading_ix::cancel_order(
        attacker.pubkey(),
        &m.quote_mint,
        &m.c.lfdis[0],
        k,
        Side::Sell,
    );
    assert_error(
        m.c.env
            .send(&[cancel, trading_ix::clear_interval(k)], &[&attacker])
            .await,
        TradingError::GateClosed,
    );
    m.clear(k).await.unwrap();
    assert_eq!(m.book(k).await.price, 30_000);
    m.settle(k).await;
    // The honest buyer paid 30 for its kWh.
    assert_eq!(m.balance(&m.c.owner(2)).await.quote, 100_000 - 30_000);
}

/// Cranker's choice: with several intervals waiting, whoever cranks cannot pick the order
/// (and so the previous price a tie is broken on): intervals clear in order.
#[tokio::test]
async fn attack_crankers_choice_is_no_choice() {
    let mut m = MarketCampus::new(4, &[0, 1], 10_000).await;
    let k = m.trading_interval().await;
    // Interval k trades at 60,000.
    m.order(0, k, Side::Sell, 1_000, 60_000).await;
    m.order(2, k, Side::Buy, 1_000, 60_000).await;
    // Interval k + 1 has a tie between 40,000 and 70,000 (equal volume and imbalance at
    // every price between): the previous price decides, here 70,000 (closer to 60,000 than
    // 40,000 is).
    m.order(1, k + 1, Side::Sell, 1_000, 40_000).await;
    m.order(3, k + 1, Side::Buy, 1_000, 70_000).await;
    m.close_gate(k + 1).await;
    m.clear(k - 1).await.unwrap();
    // A cranker who would rather clear k + 1 first (on the initial previous price, 0,
    // which would give 40,000) cannot.
    assert_error(m.clear(k + 1).await, TradingError::ClearOutOfOrder);
    let both = [
        trading_ix::clear_interval(k + 1),
        trading_ix::clear_interval(k),
    ];
    assert_error(
        m.c.env.send(&both, &[]).await,
        TradingError::ClearOutOfOrder,
    );
    m.clear(k).await.unwrap();
    m.clear(k + 1).await.unwrap();
    assert_eq!(m.book(k).await.price, 60_000);
    assert_eq!(m.book(k + 1).await.price, 70_000);
}

// ---- a whole campus interval ----

#[tokio::test]
async fn a_campus_interval_of_25_buys_and_25_sells_clears_in_one_transaction() {
    let n = 25usize;
    // Sellers are meters 0..25, buyers 25..50 (one owner per meter: no self-trade).
    let sellers: Vec<usize> = (0..n).collect();
    let mut m = MarketCampus::new(2 * n as u8, &sellers, 10_000).await;
    let k = m.trading_interval().await;
    for i in 0..n {
        let step = i as u64;
        m.order(i, k, Side::Sell, 1_000 + 100 * step, 40_000 + 2_000 * step)
            .await;
        m.order(
            n + i,
            k,
            Side::Buy,
            1_200 + 50 * step,
            100_000 - 2_000 * step,
        )
        .await;
    }
    m.close_gate(k).await;
    m.clear(k - 1).await.unwrap();
    // Clearing is one small transaction whatever the number of orders.
    let clear = m.c.env.transaction(&[trading_ix::clear_interval(k)], &[]);
    // (docs/benchmarks.md records these sizes.)
    assert_eq!(gridtokenx_tests::transaction_size(&clear), 251);
    m.clear(k).await.unwrap();
    let book = m.book(k).await;
    assert!(book.volume_wh > 0);
    // Settlement: 50 orders, 12 per legacy transaction.
    let pairs: Vec<_> = m
        .orders
        .iter()
        .take(12)
        .map(|o| (o.address(&m.c.lfdis[o.meter]), o.owner))
        .collect();
    let tx =
        m.c.env
            .transaction(&[trading_ix::settle_orders(k, &pairs)], &[]);
    let size = gridtokenx_tests::transaction_size(&tx);
    assert_eq!(size, 1_010);
    assert!(size <= gridtokenx_tests::MAX_TRANSACTION_SIZE);
    m.settle(k).await;
    assert_eq!(m.book(k).await.open_orders, 0);
    m.assert_conserved().await;
    // GRID is conserved: what the buyers got is what the sellers sold, less the dust.
    let mut sold = 0;
    let mut bought = 0;
    for i in 0..n {
        sold += 10_000 - m.grid_balance(i).await - m.balance(&m.c.owner(i)).await.base;
        bought += m.balance(&m.c.owner(n + i)).await.base;
    }
    assert!(bought <= book.volume_wh && book.volume_wh <= sold);
    assert!(sold - bought < 25, "rounding under 1 Wh per marginal order");
}

// ---- order delegates: a building's EMS trades for its owner, never withdraws ----

/// The SPL state of `owner`'s quote account: who may spend from it and how much.
async fn quote_allowance(m: &mut MarketCampus, i: usize) -> (Option<Pubkey>, u64) {
    let address = token_ix::ata(&m.c.owner(i), &m.quote_mint);
    let account: anchor_spl::token::TokenAccount = m.c.env.account(address).await;
    (account.delegate.into(), account.delegated_amount)
}

/// The rent float owners give their delegations in these tests (about six orders' rent).
const FLOAT: u64 = 10_000_000;

/// Meter `i`'s owner makes `delegate` the building's order delegate, with `FLOAT`.
async fn authorize(m: &mut MarketCampus, i: usize, delegate: Pubkey) {
    let owner = m.c.owners[i].insecure_clone();
    let ix = trading_ix::authorize_delegate(owner.pubkey(), &m.c.lfdis[i], delegate, FLOAT);
    m.c.env.send(&[ix], &[&owner]).await.unwrap();
}

/// Meter `i`'s owner approves the vault authority for `amount` of its quote (buy) or GRID
/// (sell) account.
async fn allow(m: &mut MarketCampus, i: usize, side: Side, amount: u64) {
    let owner = m.c.owners[i].insecure_clone();
    let mint = match side {
        Side::Buy => m.quote_mint,
        Side::Sell => token_ix::grid_mint(),
    };
    let ix = trading_ix::approve_order_allowance(owner.pubkey(), &mint, amount);
    m.c.env.send(&[ix], &[&owner]).await.unwrap();
}

fn delegated(
    m: &MarketCampus,
    delegate: &Keypair,
    i: usize,
    interval: u64,
    side: Side,
    quantity: u64,
    price: u64,
) -> solana_instruction::Instruction {
    trading_ix::place_delegated_order(
        delegate.pubkey(),
        m.c.owner(i),
        &m.quote_mint,
        &m.c.lfdis[i],
        interval,
        side,
        quantity,
        price,
    )
}

fn delegated_cancel(
    m: &MarketCampus,
    delegate: &Keypair,
    i: usize,
    interval: u64,
    side: Side,
) -> solana_instruction::Instruction {
    trading_ix::cancel_delegated_order(
        delegate.pubkey(),
        m.c.owner(i),
        &m.quote_mint,
        &m.c.lfdis[i],
        interval,
        side,
    )
}

#[tokio::test]
async fn a_delegate_places_and_cancels_the_buildings_orders_within_the_owners_allowance() {
    let mut m = MarketCampus::new(2, &[1], 10_000).await;
    let k = m.trading_interval().await;
    m.open(k).await;
    let d = m.c.env.funded_keypair(SOL).await;
    let owner = m.c.owner(0);
    let lfdi = m.c.lfdis[0];
    let signer = m.c.owners[0].insecure_clone();
    let owner_lamports = m.c.env.lamports(owner).await;
    let ix = trading_ix::authorize_delegate(owner, &lfdi, d.pubkey(), FLOAT);
    let (result, logs) = m.c.env.send_with_logs(&[ix], &[&signer]).await;
    result.unwrap();
    let authorized = &events::<trading::events::DelegateAuthorized>(&logs)[0];
    assert_eq!(
        (
            authorized.lfdi,
            authorized.owner,
            authorized.delegate,
            authorized.replaced,
            authorized.rent_float
        ),
        (lfdi, owner, d.pubkey(), None, FLOAT)
    );
    // The owner paid the delegation's rent and its float.
    let delegation_address = trading_ix::order_delegate_address(&lfdi);
    assert_eq!(
        m.c.env.lamports(delegation_address).await,
        rent(trading::OrderDelegate::SPACE) + FLOAT
    );
    assert!(
        owner_lamports - m.c.env.lamports(owner).await
            >= rent(trading::OrderDelegate::SPACE) + FLOAT
    );
    let delegation: trading::OrderDelegate =
        m.c.env
            .zero_copy(trading_ix::order_delegate_address(&lfdi))
            .await;
    assert_eq!(
        (delegation.owner, delegation.delegate, delegation.lfdi),
        (owner, d.pubkey(), lfdi)
    );
    assert_eq!(delegation.authorized_at, m.c.env.now().await);

    // No allowance yet: nothing can be locked.
    assert_error(
        m.c.env
            .send(&[delegated(&m, &d, 0, k, Side::Buy, 1_000, 45_000)], &[&d])
            .await,
        TradingError::AllowanceTooLow,
    );
    allow(&mut m, 0, Side::Buy, 100_000).await;
    let d_lamports = m.c.env.lamports(d.pubkey()).await;
    let (result, logs) =
        m.c.env
            .send_with_logs(&[delegated(&m, &d, 0, k, Side::Buy, 1_000, 45_000)], &[&d])
            .await;
    result.unwrap();
    m.orders.push(gridtokenx_tests::market_campus::Placed {
        interval: k,
        meter: 0,
        side: Side::Buy,
        owner,
    });
    m.traders.insert(owner);
    let placed = &events::<OrderPlaced>(&logs)[0];
    assert_eq!(
        (placed.owner, placed.by, placed.escrow, placed.replaced),
        (owner, d.pubkey(), 45_000, false)
    );
    // The order is the owner's; its escrow came out of their account, within the allowance.
    let order = m.order_account(k, 0, Side::Buy).await;
    assert_eq!(
        (order.owner, order.quantity_wh, order.escrow),
        (owner, 1_000, 45_000)
    );
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS - 45_000);
    assert_eq!(
        quote_allowance(&mut m, 0).await,
        (Some(trading_ix::vault_authority()), 55_000)
    );
    // The rent of the order and of the owner's balance account came out of the float: the
    // delegate spent nothing.
    assert_eq!(m.c.env.lamports(d.pubkey()).await, d_lamports);
    assert_eq!(
        m.c.env.lamports(delegation_address).await,
        rent(trading::OrderDelegate::SPACE) + FLOAT - rent(Order::SPACE) - rent(Balance::SPACE)
    );
    // A replacement locks only the difference, which must fit the allowance left ...
    assert_error(
        m.c.env
            .send(&[delegated(&m, &d, 0, k, Side::Buy, 3_000, 45_000)], &[&d])
            .await,
        TradingError::AllowanceTooLow,
    );
    m.c.env
        .send(&[delegated(&m, &d, 0, k, Side::Buy, 2_000, 45_000)], &[&d])
        .await
        .unwrap();
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS - 90_000);
    assert_eq!(quote_allowance(&mut m, 0).await.1, 10_000);
    // ... and a smaller one returns the rest to the owner's account.
    m.c.env
        .send(&[delegated(&m, &d, 0, k, Side::Buy, 500, 45_000)], &[&d])
        .await
        .unwrap();
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS - 22_500);
    m.assert_conserved().await;

    // The delegate cancels: the escrow goes back to the owner's account, the rent to the
    // owner's balance account (theirs to withdraw).
    let balance_lamports = m.c.env.lamports(trading_ix::balance_address(&owner)).await;
    let (result, logs) =
        m.c.env
            .send_with_logs(&[delegated_cancel(&m, &d, 0, k, Side::Buy)], &[&d])
            .await;
    result.unwrap();
    m.orders.clear();
    let cancelled = &events::<OrderCancelled>(&logs)[0];
    assert_eq!(
        (cancelled.owner, cancelled.by, cancelled.refunded),
        (owner, d.pubkey(), 22_500)
    );
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS);
    assert_eq!(
        m.c.env.lamports(trading_ix::balance_address(&owner)).await - balance_lamports,
        rent(Order::SPACE)
    );
    assert_eq!(m.book(k).await.open_orders, 0);
    assert_eq!(m.balance(&owner).await.sides_mut(k).buys, 0);
    m.assert_conserved().await;

    // A sell: GRID locked through the GRID account's allowance.
    let e = m.c.env.funded_keypair(SOL).await;
    authorize(&mut m, 1, e.pubkey()).await;
    allow(&mut m, 1, Side::Sell, 2_000).await;
    m.c.env
        .send(&[delegated(&m, &e, 1, k, Side::Sell, 2_000, 30_000)], &[&e])
        .await
        .unwrap();
    assert_eq!(m.grid_balance(1).await, 10_000 - 2_000);
    assert_eq!(m.c.env.token_balance(trading_ix::base_vault()).await, 2_000);
}

#[tokio::test]
async fn a_delegate_trades_only_for_its_building_and_only_into_escrow() {
    let mut m = MarketCampus::new(3, &[1], 10_000).await;
    let k = m.trading_interval().await;
    m.open(k).await;
    let d = m.c.env.funded_keypair(SOL).await;
    let e = m.c.env.funded_keypair(SOL).await;
    authorize(&mut m, 0, d.pubkey()).await;
    authorize(&mut m, 2, e.pubkey()).await;
    allow(&mut m, 0, Side::Buy, 1_000_000).await;
    allow(&mut m, 2, Side::Buy, 1_000_000).await;
    // Not the building's delegate.
    assert_error(
        m.c.env
            .send(&[delegated(&m, &e, 0, k, Side::Buy, 1_000, 45_000)], &[&e])
            .await,
        TradingError::NotDelegate,
    );
    // A building without a delegation (its address holds no trading account).
    assert_error(
        m.c.env
            .send(&[delegated(&m, &d, 1, k, Side::Buy, 1_000, 45_000)], &[&d])
            .await,
        ErrorCode::AccountOwnedByWrongProgram,
    );
    // Another building's delegation in place of this one's.
    let ix = replace_account(
        delegated(&m, &d, 2, k, Side::Buy, 1_000, 45_000),
        trading_ix::order_delegate_address(&m.c.lfdis[2]),
        trading_ix::order_delegate_address(&m.c.lfdis[0]),
    );
    assert_error(m.c.env.send(&[ix], &[&d]).await, ErrorCode::ConstraintSeeds);
    // The order is the meter owner's: naming someone else as the owner is refused.
    let ix = trading_ix::place_delegated_order(
        d.pubkey(),
        m.c.owner(2),
        &m.quote_mint,
        &m.c.lfdis[0],
        k,
        Side::Buy,
        1_000,
        45_000,
    );
    assert_error(
        m.c.env.send(&[ix], &[&d]).await,
        TradingError::NotMeterOwner,
    );
    // The escrow comes from the owner's account and nowhere else: a token account of
    // anyone else (here the other building's, approved too) is refused.
    let ix = replace_account(
        delegated(&m, &d, 0, k, Side::Buy, 1_000, 45_000),
        token_ix::ata(&m.c.owner(0), &m.quote_mint),
        token_ix::ata(&m.c.owner(2), &m.quote_mint),
    );
    assert_error(
        m.c.env.send(&[ix], &[&d]).await,
        ErrorCode::ConstraintTokenOwner,
    );
    // The market's rules hold for a delegate as for the owner.
    assert_error(
        m.c.env
            .send(&[delegated(&m, &d, 0, k, Side::Buy, 20_001, 45_000)], &[&d])
            .await,
        TradingError::OverCapacity,
    );
    assert_error(
        m.c.env
            .send(&[delegated(&m, &d, 0, k, Side::Buy, 1_000, 45_500)], &[&d])
            .await,
        TradingError::PriceOffTick,
    );
    // A delegate has no way to the owner's balance: `withdraw` is the owner's alone.
    m.c.env
        .send(&[delegated(&m, &d, 0, k, Side::Buy, 1_000, 45_000)], &[&d])
        .await
        .unwrap();
    m.orders.push(gridtokenx_tests::market_campus::Placed {
        interval: k,
        meter: 0,
        side: Side::Buy,
        owner: m.c.owner(0),
    });
    m.traders.insert(m.c.owner(0));
    let payer = m.c.env.payer();
    let accounts = [
        token_ix::create_ata(&payer, &d.pubkey(), &m.quote_mint),
        token_ix::create_ata(&payer, &d.pubkey(), &token_ix::grid_mint()),
    ];
    m.c.env.send(&accounts, &[]).await.unwrap();
    let steal = replace_account(
        trading_ix::withdraw(d.pubkey(), &m.quote_mint, 0, 1),
        trading_ix::balance_address(&d.pubkey()),
        trading_ix::balance_address(&m.c.owner(0)),
    );
    assert_error(
        m.c.env.send(&[steal], &[&d]).await,
        ErrorCode::ConstraintSeeds,
    );
    // Another building's delegate cannot cancel it; the owner can, as any order of theirs.
    assert_error(
        m.c.env
            .send(&[delegated_cancel(&m, &e, 0, k, Side::Buy)], &[&e])
            .await,
        TradingError::NotDelegate,
    );
    // After the gate, the delegate can no longer cancel.
    m.close_gate(k).await;
    assert_error(
        m.c.env
            .send(&[delegated_cancel(&m, &d, 0, k, Side::Buy)], &[&d])
            .await,
        TradingError::GateClosed,
    );
    // The delegated order settles to its owner like any other.
    m.order(1, k + 1, Side::Sell, 1_000, 30_000).await;
    m.run_interval(k).await;
    let balance = m.balance(&m.c.owner(0)).await;
    assert_eq!((balance.base, balance.quote), (0, 45_000));
    m.assert_conserved().await;
}

#[tokio::test]
async fn a_delegation_lapses_with_the_meter_and_either_owner_revokes_it() {
    let mut m = MarketCampus::new(2, &[], 0).await;
    let k = m.trading_interval().await;
    m.open(k).await;
    m.open(k + 1).await;
    let d = m.c.env.funded_keypair(SOL).await;
    let lfdi = m.c.lfdis[0];
    let (a, b) = (
        m.c.owners[0].insecure_clone(),
        m.c.owners[1].insecure_clone(),
    );
    // Only the meter's owner authorises, and not the default key or themselves.
    assert_error(
        m.c.env
            .send(
                &[trading_ix::authorize_delegate(
                    b.pubkey(),
                    &lfdi,
                    d.pubkey(),
                    FLOAT,
                )],
                &[&b],
            )
            .await,
        TradingError::NotMeterOwner,
    );
    for bad in [Pubkey::default(), a.pubkey()] {
        assert_error(
            m.c.env
                .send(
                    &[trading_ix::authorize_delegate(
                        a.pubkey(),
                        &lfdi,
                        bad,
                        FLOAT,
                    )],
                    &[&a],
                )
                .await,
            TradingError::InvalidDelegate,
        );
    }
    // A names D, then replaces it with D2 (and tops the float up): the event says so.
    let d2 = m.c.env.funded_keypair(SOL).await;
    authorize(&mut m, 0, d2.pubkey()).await;
    let ix = trading_ix::authorize_delegate(a.pubkey(), &lfdi, d.pubkey(), FLOAT);
    let (result, logs) = m.c.env.send_with_logs(&[ix], &[&a]).await;
    result.unwrap();
    let replaced = &events::<trading::events::DelegateAuthorized>(&logs)[0];
    assert_eq!(
        (replaced.replaced, replaced.rent_float),
        (Some(d2.pubkey()), 2 * FLOAT)
    );
    allow(&mut m, 0, Side::Buy, 1_000_000).await;
    m.c.env
        .send(&[delegated(&m, &d, 0, k, Side::Buy, 1_000, 45_000)], &[&d])
        .await
        .unwrap();
    // The building changes hands: A's delegation lapses for new orders ...
    m.c.env
        .send(
            &[registry_ix::transfer_meter_ownership(
                &lfdi,
                a.pubkey(),
                b.pubkey(),
            )],
            &[&a, &b],
        )
        .await
        .unwrap();
    let ix = trading_ix::place_delegated_order(
        d.pubkey(),
        b.pubkey(),
        &m.quote_mint,
        &lfdi,
        k + 1,
        Side::Buy,
        1_000,
        45_000,
    );
    assert_error(
        m.c.env.send(&[ix], &[&d]).await,
        TradingError::DelegationLapsed,
    );
    // ... while A's order stays A's: A's delegate may still cancel it before the gate.
    let ix = trading_ix::cancel_delegated_order(
        d.pubkey(),
        a.pubkey(),
        &m.quote_mint,
        &lfdi,
        k,
        Side::Buy,
    );
    m.c.env.send(&[ix], &[&d]).await.unwrap();
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS);
    // B cannot take over A's delegation (its float is A's) ...
    let e = m.c.env.funded_keypair(SOL).await;
    assert_error(
        m.c.env
            .send(
                &[trading_ix::authorize_delegate(
                    b.pubkey(),
                    &lfdi,
                    e.pubkey(),
                    FLOAT,
                )],
                &[&b],
            )
            .await,
        TradingError::DelegationOfPreviousOwner,
    );
    // ... but revokes it, and A gets its rent and what is left of its float back.
    let address = trading_ix::order_delegate_address(&lfdi);
    let held = m.c.env.lamports(address).await;
    let a_before = m.c.env.lamports(a.pubkey()).await;
    assert_error(
        m.c.env
            .send(
                &[trading_ix::revoke_delegate(b.pubkey(), &lfdi, b.pubkey())],
                &[&b],
            )
            .await,
        TradingError::NotDelegationOwner,
    );
    let (result, logs) =
        m.c.env
            .send_with_logs(
                &[trading_ix::revoke_delegate(b.pubkey(), &lfdi, a.pubkey())],
                &[&b],
            )
            .await;
    result.unwrap();
    let revoked = &events::<trading::events::DelegateRevoked>(&logs)[0];
    assert_eq!(
        (revoked.owner, revoked.delegate, revoked.by),
        (a.pubkey(), d.pubkey(), b.pubkey())
    );
    assert!(!m.c.env.account_exists(address).await);
    assert_eq!(m.c.env.lamports(a.pubkey()).await, a_before + held);
    // B names its own delegate and trades through it.
    let ix = trading_ix::authorize_delegate(b.pubkey(), &lfdi, e.pubkey(), FLOAT);
    m.c.env.send(&[ix], &[&b]).await.unwrap();
    let ix = trading_ix::approve_order_allowance(b.pubkey(), &m.quote_mint, 1_000_000);
    m.c.env.send(&[ix], &[&b]).await.unwrap();
    let place_for_b = |signer: &Keypair| {
        trading_ix::place_delegated_order(
            signer.pubkey(),
            b.pubkey(),
            &m.quote_mint,
            &lfdi,
            k + 1,
            Side::Buy,
            1_000,
            45_000,
        )
    };
    m.c.env.send(&[place_for_b(&e)], &[&e]).await.unwrap();
    // Revoking: not a stranger, nor the delegate; the meter's owner (or whoever gave it).
    for stranger in [&a, &e] {
        assert_error(
            m.c.env
                .send(
                    &[trading_ix::revoke_delegate(
                        stranger.pubkey(),
                        &lfdi,
                        b.pubkey(),
                    )],
                    &[stranger],
                )
                .await,
            TradingError::NotDelegationOwner,
        );
    }
    let held = m.c.env.lamports(address).await;
    let before = m.c.env.lamports(b.pubkey()).await;
    m.c.env
        .send(
            &[trading_ix::revoke_delegate(b.pubkey(), &lfdi, b.pubkey())],
            &[&b],
        )
        .await
        .unwrap();
    assert!(!m.c.env.account_exists(address).await);
    assert!(m.c.env.lamports(b.pubkey()).await + 10_000 >= before + held);
    // Revoked: the delegate can do nothing more (the order it placed stays B's).
    assert_error(
        m.c.env.send(&[place_for_b(&e)], &[&e]).await,
        ErrorCode::AccountOwnedByWrongProgram,
    );
    assert_eq!(m.order_account(k + 1, 0, Side::Buy).await.owner, b.pubkey());
}

#[tokio::test]
async fn a_delegates_orders_are_paid_from_the_owners_rent_float_until_it_runs_out() {
    let mut m = MarketCampus::new(1, &[], 0).await;
    let k = m.trading_interval().await;
    for i in 0..4 {
        m.open(k + i).await;
    }
    let d = m.c.env.funded_keypair(SOL).await;
    let owner = m.c.owners[0].insecure_clone();
    let lfdi = m.c.lfdis[0];
    // A float for the balance account and two orders, not three.
    let float = rent(Balance::SPACE) + 2 * rent(Order::SPACE) + rent(Order::SPACE) / 2;
    let ix = trading_ix::authorize_delegate(owner.pubkey(), &lfdi, d.pubkey(), float);
    m.c.env.send(&[ix], &[&owner]).await.unwrap();
    allow(&mut m, 0, Side::Buy, 10_000_000).await;
    for i in 0..2 {
        m.c.env
            .send(
                &[delegated(&m, &d, 0, k + i, Side::Buy, 1_000, 45_000)],
                &[&d],
            )
            .await
            .unwrap();
    }
    assert_error(
        m.c.env
            .send(
                &[delegated(&m, &d, 0, k + 2, Side::Buy, 1_000, 45_000)],
                &[&d],
            )
            .await,
        TradingError::RentFloatExhausted,
    );
    // A replacement needs no new rent.
    m.c.env
        .send(
            &[delegated(&m, &d, 0, k + 1, Side::Buy, 2_000, 45_000)],
            &[&d],
        )
        .await
        .unwrap();
    // The owner tops the float up (same delegate): orders go on.
    let ix = trading_ix::authorize_delegate(owner.pubkey(), &lfdi, d.pubkey(), rent(Order::SPACE));
    m.c.env.send(&[ix], &[&owner]).await.unwrap();
    m.c.env
        .send(
            &[delegated(&m, &d, 0, k + 2, Side::Buy, 1_000, 45_000)],
            &[&d],
        )
        .await
        .unwrap();
    // A cancelled order's rent goes to the owner's balance (theirs), not back to the float:
    // an EMS that places and cancels in a loop only moves its owner's lamports.
    let float_before =
        m.c.env
            .lamports(trading_ix::order_delegate_address(&lfdi))
            .await;
    m.c.env
        .send(&[delegated_cancel(&m, &d, 0, k + 2, Side::Buy)], &[&d])
        .await
        .unwrap();
    assert_eq!(
        m.c.env
            .lamports(trading_ix::order_delegate_address(&lfdi))
            .await,
        float_before
    );
}

#[tokio::test]
async fn a_paused_market_takes_no_delegated_orders_but_lets_them_be_cancelled() {
    let mut m = MarketCampus::new(1, &[], 0).await;
    let k = m.trading_interval().await;
    m.open(k).await;
    let d = m.c.env.funded_keypair(SOL).await;
    authorize(&mut m, 0, d.pubkey()).await;
    allow(&mut m, 0, Side::Buy, 1_000_000).await;
    m.c.env
        .send(&[delegated(&m, &d, 0, k, Side::Buy, 1_000, 45_000)], &[&d])
        .await
        .unwrap();
    let payer = m.c.env.payer();
    let until = m.c.env.now().await + 3_600;
    m.c.env
        .send(&[trading_ix::pause_until(payer, until)], &[])
        .await
        .unwrap();
    assert_error(
        m.c.env
            .send(&[delegated(&m, &d, 0, k, Side::Buy, 2_000, 45_000)], &[&d])
            .await,
        TradingError::Paused,
    );
    m.c.env
        .send(&[delegated_cancel(&m, &d, 0, k, Side::Buy)], &[&d])
        .await
        .unwrap();
    assert_eq!(m.quote_balance(0).await, QUOTE_FUNDS);
}
