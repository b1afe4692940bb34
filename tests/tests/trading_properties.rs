//! The market program over random trading: two consecutive intervals of random placements,
//! replacements, cancellations and refused self-trades by four buildings of three owners
//! (owner 0 also owns building 3); both cleared in
//! order; every order settled in a random order and in batches of random sizes; the books
//! closed; every balance withdrawn. Checked at every step: the vaults hold exactly what the
//! market owes (open escrow + claimable balances + fees + dust + the open books' rounding).
//! Checked against the independent reference (`auction_reference`): each interval's price
//! and volume (the second one's tie-break on the first one's price) and every order's
//! settlement (GRID, quote, refund, fee). And at the end each owner's tokens moved by
//! exactly what their settlements say.
use gridtokenx_tests::auction_reference::{self, RefOrder};
use gridtokenx_tests::market_campus::{default_params, MarketCampus};
use gridtokenx_tests::{custom_error, events, trading_ix};
use proptest::prelude::*;
use solana_signer::Signer;
use trading::events::OrderSettled;
use trading::{Side, TradingError};

const METERS: usize = 4;
/// Building 3 belongs to building 0's owner.
const SHARED: usize = 3;

fn owner_of(meter: usize) -> usize {
    if meter == SHARED {
        0
    } else {
        meter
    }
}
/// GRID each building holds at the start, Wh.
const GRID: u64 = 20_000;

#[derive(Clone, Debug)]
enum Action {
    /// Meter places (or replaces) its order on a side: price step, quantity.
    Place {
        meter: usize,
        buy: bool,
        tick: u16,
        quantity: u64,
    },
    Cancel {
        meter: usize,
        buy: bool,
    },
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    proptest::collection::vec(
        (0..METERS, any::<bool>(), 0u16..8, 1u64..4_000, 0u8..10).prop_map(
            |(meter, buy, tick, quantity, kind)| {
                if kind == 0 {
                    Action::Cancel { meter, buy }
                } else {
                    Action::Place {
                        meter,
                        buy,
                        tick,
                        quantity,
                    }
                }
            },
        ),
        0..16,
    )
}

fn side(buy: bool) -> Side {
    if buy {
        Side::Buy
    } else {
        Side::Sell
    }
}

fn price(tick: u16) -> u64 {
    let p = default_params();
    p.min_price + u64::from(tick) * p.price_tick
}

/// The orders standing after `actions` (meter, buy) -> (price, quantity), as the market
/// must have them: a placement replaces the building's order on that side; a cancellation
/// removes it; a placement on the side opposite the building's own order is refused
/// (`BuildingOnBothSides`), and one opposite an order of another building of the same owner
/// is a self-trade, refused (`SelfTrade`).
type Standing = std::collections::BTreeMap<(usize, bool), (u64, u64)>;

async fn play(m: &mut MarketCampus, k: u64, actions: &[Action]) -> Result<Standing, TestCaseError> {
    let mut standing = Standing::new();
    if !actions.is_empty() {
        m.open(k).await;
    }
    for action in actions {
        match *action {
            Action::Place {
                meter,
                buy,
                tick,
                quantity,
            } => {
                let result = m
                    .try_order(meter, k, side(buy), quantity, price(tick))
                    .await;
                let same_owner_opposite = standing.keys().any(|&(other, b)| {
                    b != buy && other != meter && owner_of(other) == owner_of(meter)
                });
                if standing.contains_key(&(meter, !buy)) {
                    prop_assert_eq!(
                        custom_error(&result),
                        Some(TradingError::BuildingOnBothSides.into()),
                        "one building on both sides must be refused"
                    );
                } else if same_owner_opposite {
                    prop_assert_eq!(
                        custom_error(&result),
                        Some(TradingError::SelfTrade.into()),
                        "a self-trade must be refused"
                    );
                } else {
                    prop_assert!(result.is_ok(), "placement refused: {:?}", result);
                    standing.insert((meter, buy), (price(tick), quantity));
                }
            }
            Action::Cancel { meter, buy } => {
                let result = m.cancel(meter, k, side(buy)).await;
                if standing.remove(&(meter, buy)).is_some() {
                    prop_assert!(result.is_ok(), "cancel refused: {:?}", result);
                } else {
                    prop_assert_eq!(
                        custom_error(&result),
                        Some(TradingError::UnknownOrder.into())
                    );
                }
            }
        }
        m.assert_conserved().await;
    }
    Ok(standing)
}

async fn run(first: Vec<Action>, second: Vec<Action>, seed: u64) -> Result<(), TestCaseError> {
    let all: Vec<usize> = (0..METERS).collect();
    let mut m = MarketCampus::new(METERS as u8, &all, GRID).await;
    // Owner 0 takes over building 3.
    let (a, b) = (
        m.c.owners[0].insecure_clone(),
        m.c.owners[SHARED].insecure_clone(),
    );
    let ix = gridtokenx_tests::registry_ix::transfer_meter_ownership(
        &m.c.lfdis[SHARED],
        b.pubkey(),
        a.pubkey(),
    );
    m.c.env.send(&[ix], &[&b, &a]).await.unwrap();
    m.c.owners[SHARED] = a.insecure_clone();
    let k = m.trading_interval().await;
    let mut quote_before = Vec::new();
    let mut grid_before = Vec::new();
    for i in 0..METERS {
        quote_before.push(m.quote_balance(i).await);
        grid_before.push(m.grid_balance(i).await);
    }
    let books = [
        (k, play(&mut m, k, &first).await?),
        (k + 1, play(&mut m, k + 1, &second).await?),
    ];

    // Both gates close; the intervals clear in order.
    m.close_gate(k + 1).await;
    // The interval open when the market started (nobody trades in it) clears first.
    m.clear(k - 1).await.unwrap();
    let mut previous = 0;
    let mut expected = Vec::new();
    for (interval, standing) in &books {
        // (An interval nobody placed an order in has no book: clearing just moves on.)
        let has_book = m.intervals.contains(interval);
        m.clear(*interval).await.unwrap();
        m.assert_conserved().await;
        let orders: Vec<((usize, bool), RefOrder)> = standing
            .iter()
            .map(|(&(meter, buy), &(p, q))| ((meter, buy), (buy, p, q)))
            .collect();
        let refs: Vec<RefOrder> = orders.iter().map(|(_, o)| *o).collect();
        let reference = auction_reference::clear(&refs, previous);
        if !has_book {
            prop_assert!(reference.is_none());
            continue;
        }
        let book = m.book(*interval).await;
        match &reference {
            None => prop_assert_eq!(book.volume_wh, 0),
            Some(r) => {
                prop_assert_eq!((book.price, book.volume_wh), (r.price, r.volume));
                previous = r.price;
            }
        }
        for (i, (key, o)) in orders.iter().enumerate() {
            let fill = reference
                .as_ref()
                .map_or(Default::default(), |r| r.fills[i]);
            expected.push((*interval, *key, *o, fill));
        }
    }

    // Every order settled, in a random order and in batches of 1 to 5.
    let mut due = m.orders.clone();
    let mut rng = seed;
    let mut next = |n: usize| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) as usize % n
    };
    for i in (1..due.len()).rev() {
        let j = next(i + 1);
        due.swap(i, j);
    }
    let fee_bps = default_params().fee_bps;
    let mut settled = Vec::new();
    while !due.is_empty() {
        let n = (1 + next(5)).min(due.len());
        let chunk: Vec<_> = due.drain(..n).collect();
        // One transaction settles orders of one interval.
        for interval in [k, k + 1] {
            let pairs: Vec<_> = chunk
                .iter()
                .filter(|o| o.interval == interval)
                .map(|o| (o.address(&m.c.lfdis[o.meter]), o.owner))
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let (result, logs) =
                m.c.env
                    .send_with_logs(&[trading_ix::settle_orders(interval, &pairs)], &[])
                    .await;
            prop_assert!(result.is_ok(), "settle: {:?}", result);
            settled.extend(events::<OrderSettled>(&logs));
        }
        m.orders.retain(|o| !chunk.contains(o));
        m.assert_conserved().await;
    }
    prop_assert_eq!(settled.len(), expected.len());
    let (mut quote_delta, mut grid_delta) = (vec![0i128; METERS], vec![0i128; METERS]);
    for (interval, (meter, buy), (_, _, quantity), fill) in &expected {
        let lfdi = m.c.lfdis[*meter];
        let s = settled
            .iter()
            .find(|s| s.interval == *interval && s.lfdi == lfdi && (s.side == Side::Buy) == *buy)
            .expect("every order settled once");
        if *buy {
            let escrow = (u128::from(*quantity)
                * u128::from(price_of(&expected, *interval, *meter, true)))
            .div_ceil(1_000) as u64;
            prop_assert_eq!(
                (s.filled_wh, s.quote, s.refund),
                (fill.energy, fill.quote, escrow - fill.quote),
                "buy of meter {} in {}",
                meter,
                interval
            );
            quote_delta[owner_of(*meter)] -= i128::from(fill.quote);
            grid_delta[owner_of(*meter)] += i128::from(fill.energy);
        } else {
            let net = fill.quote - auction_reference::fee(fill.quote, fee_bps);
            prop_assert_eq!(
                (s.filled_wh, s.quote, s.refund),
                (fill.energy, net, quantity - fill.energy),
                "sell of meter {} in {}",
                meter,
                interval
            );
            quote_delta[owner_of(*meter)] += i128::from(net);
            grid_delta[owner_of(*meter)] -= i128::from(fill.energy);
        }
    }

    // The books close; their rounding goes to the market.
    let payer = m.c.env.payer();
    for interval in [k, k + 1] {
        if !m.intervals.contains(&interval) {
            continue;
        }
        m.c.env
            .send(&[trading_ix::close_book(interval, payer)], &[])
            .await
            .unwrap();
        m.assert_conserved().await;
    }
    // Everyone withdraws everything; each owner's tokens moved by exactly its settlements
    // (building 0's and 3's together: one owner, one pair of token accounts).
    for i in (0..METERS).filter(|&i| owner_of(i) == i) {
        let owner = m.c.owners[i].insecure_clone();
        if !m.traders.contains(&owner.pubkey()) {
            continue;
        }
        let b = m.balance(&owner.pubkey()).await;
        let ix = trading_ix::withdraw(owner.pubkey(), &m.quote_mint, b.base, b.quote);
        m.c.env.send(&[ix], &[&owner]).await.unwrap();
        m.assert_conserved().await;
    }
    for i in (0..METERS).filter(|&i| owner_of(i) == i) {
        prop_assert_eq!(
            i128::from(m.quote_balance(i).await),
            i128::from(quote_before[i]) + quote_delta[i],
            "quote of building {}",
            i
        );
        prop_assert_eq!(
            i128::from(m.grid_balance(i).await),
            i128::from(grid_before[i]) + grid_delta[i],
            "GRID of building {}",
            i
        );
    }
    // What is left in the vaults is the market's: fees and dust.
    let market = m.market().await;
    prop_assert_eq!(
        m.c.env.token_balance(trading_ix::quote_vault()).await,
        market.fees
    );
    prop_assert_eq!(
        m.c.env.token_balance(trading_ix::base_vault()).await,
        market.dust_wh
    );
    Ok(())
}

/// The limit price of meter's order on a side in an interval (from the expected list).
fn price_of(
    expected: &[(u64, (usize, bool), RefOrder, auction_reference::RefFill)],
    interval: u64,
    meter: usize,
    buy: bool,
) -> u64 {
    expected
        .iter()
        .find(|(k, key, _, _)| *k == interval && *key == (meter, buy))
        .map(|(_, _, o, _)| o.1)
        .expect("order expected")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn the_program_trades_like_the_reference_and_conserves_tokens(
        first in actions(),
        second in actions(),
        seed in any::<u64>(),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(first, second, seed))?;
    }
}
