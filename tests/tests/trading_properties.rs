//! The market program over random order sets: its clearing price, volume and fills equal
//! the independent reference (`auction_reference`); no buyer pays above its limit and no
//! seller receives below its own; and GRID and quote tokens are conserved at every step
//! (vaults = seats' balances + open escrow + fees) through placements, cancellations,
//! clearing and withdrawals.
use gridtokenx_tests::auction_reference;
use gridtokenx_tests::market_campus::MarketCampus;
use gridtokenx_tests::trading_ix;
use proptest::prelude::*;
use solana_signer::Signer;
use trading::{Side, SIDE_BUY, WH_PER_KWH};

const METERS: usize = 4;

#[derive(Clone, Debug)]
struct Placed {
    meter: usize,
    buy: bool,
    price: u64,
    quantity: u64,
    /// Cancelled right after placing.
    cancel: bool,
}

fn orders() -> impl Strategy<Value = Vec<Placed>> {
    proptest::collection::vec(
        (
            0..METERS,
            any::<bool>(),
            1u64..8,
            1u64..4_000,
            proptest::bool::weighted(0.15),
        ),
        1..24,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(meter, buy, p, quantity, cancel)| Placed {
                meter,
                buy,
                price: p * 10_000,
                quantity,
                cancel,
            })
            .collect()
    })
}

async fn run(placed: Vec<Placed>) -> Result<(), TestCaseError> {
    // Every meter holds 20 kWh of GRID and 10,000 quote tokens.
    let all: Vec<usize> = (0..METERS).collect();
    let mut m = MarketCampus::new(METERS as u8, &all, 20_000).await;
    let k = m.interval().await;
    let quote_before: Vec<u64> = {
        let mut v = Vec::new();
        for i in 0..METERS {
            v.push(m.quote_balance(i).await);
        }
        v
    };
    let mut reference_orders = Vec::new();
    for (index, p) in (0u16..).zip(placed.iter()) {
        let side = if p.buy { Side::Buy } else { Side::Sell };
        m.order(p.meter, k, side, p.quantity, p.price).await;
        if p.cancel {
            let owner = m.c.owners[p.meter].insecure_clone();
            let ix = trading_ix::cancel_order(owner.pubkey(), &m.quote_mint, side, k, index);
            m.c.env.send(&[ix], &[&owner]).await.unwrap();
        } else {
            reference_orders.push((index, (p.buy, p.price, p.quantity)));
        }
        m.assert_conserved(&[k]).await;
    }
    m.next_interval().await;
    m.c.env
        .send(&[trading_ix::clear_interval(k)], &[])
        .await
        .unwrap();
    m.assert_conserved(&[k]).await;

    let book = m.book(k).await;
    let refs: Vec<_> = reference_orders.iter().map(|(_, o)| *o).collect();
    let expected = auction_reference::clear(&refs, 0);
    match &expected {
        None => prop_assert_eq!(book.volume_wh, 0),
        Some((price, volume, fills)) => {
            prop_assert_eq!((book.clearing_price, book.volume_wh), (*price, *volume));
            for ((i, o), fill) in reference_orders.iter().zip(fills) {
                let order = &book.orders[usize::from(*i)];
                prop_assert_eq!(order.filled_wh, *fill);
                if *fill > 0 {
                    if o.0 {
                        prop_assert!(*price <= o.1, "buyer pays above its limit");
                    } else {
                        prop_assert!(*price >= o.1, "seller receives below its limit");
                    }
                }
            }
        }
    }
    // What each buyer paid per kWh is at most its limit: its quote outflow after
    // withdrawing everything is at most sum(fill x limit).
    let market = m.market().await;
    for (i, before) in quote_before.iter().enumerate() {
        let seat = market.seats()[i];
        let owner = m.c.owners[i].insecure_clone();
        let ix = trading_ix::withdraw(
            owner.pubkey(),
            &m.quote_mint,
            i as u16,
            seat.base,
            seat.quote,
        );
        m.c.env.send(&[ix], &[&owner]).await.unwrap();
        m.assert_conserved(&[k]).await;
        let bought_at_limit: u128 = book
            .orders()
            .iter()
            .filter(|o| usize::from(o.seat) == i && o.side == SIDE_BUY)
            .map(|o| (u128::from(o.filled_wh) * u128::from(o.limit_price)).div_ceil(WH_PER_KWH))
            .sum();
        let after = m.quote_balance(i).await;
        if after < *before {
            prop_assert!(u128::from(before - after) <= bought_at_limit);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn the_program_clears_like_the_reference_and_conserves_tokens(placed in orders()) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(placed))?;
    }
}
