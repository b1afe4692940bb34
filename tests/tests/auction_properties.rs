//! The program's auction (`trading::state::auction`: `clear` over an interval's ladder, what
//! `clear_interval` runs, and `settle_buy` / `settle_sell`, what `settle_orders` runs for
//! each order) against the independent reference in the test crate, over random books:
//! same price, volume and every order's settlement. And the auction's promises, checked on
//! the program's own results: the volume is the most any price of the ladder matches (by
//! brute force); no buyer pays above its limit, no seller is paid below its
//! own; orders strictly better than the price fill fully; buyers never receive more GRID
//! than sellers deliver, nor sellers more quote than buyers pay; each marginal order bears
//! less than 1 Wh (and one quote unit) of rounding.
use gridtokenx_tests::auction_reference::{self, RefOrder};
use proptest::prelude::*;
use trading::state::auction;
use trading::{Price, Wh};

const MIN_PRICE: u64 = 1_000;
const TICK: u64 = 1_000;

fn price(t: u16) -> Price {
    Price(MIN_PRICE + TICK * u64::from(t))
}

fn tick_of(p: u64) -> u16 {
    ((p - MIN_PRICE) / TICK) as u16
}

fn book() -> impl Strategy<Value = (u16, Vec<RefOrder>)> {
    // Few ladder steps, so that ties and at-price rationing are common; quantities from 1 Wh
    // (rounding at its worst) to 5 kWh.
    (1u16..12).prop_flat_map(|ticks| {
        (
            Just(ticks),
            proptest::collection::vec((any::<bool>(), 0..ticks, 1u64..5_000), 0..60).prop_map(
                |v| {
                    v.into_iter()
                        .map(|(b, t, q)| (b, price(t).0, q))
                        .collect::<Vec<_>>()
                },
            ),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn program_auction_equals_the_reference(
        (ticks, orders) in book(),
        previous in 0u64..13_000,
    ) {
        let mut demand = vec![0u64; usize::from(ticks)];
        let mut supply = vec![0u64; usize::from(ticks)];
        for &(buy, p, q) in &orders {
            let step = if buy { &mut demand } else { &mut supply };
            step[usize::from(tick_of(p))] += q;
        }
        let clearing = auction::clear(&demand, &supply, price, previous);
        let reference = auction_reference::clear(&orders, previous);
        prop_assert_eq!(
            clearing.map(|c| (c.price.0, c.volume.0)),
            reference.as_ref().map(|r| (r.price, r.volume))
        );
        let (mut received, mut delivered, mut paid, mut proceeds) = (0u64, 0u64, 0u64, 0u64);
        for (i, &(buy, limit, q)) in orders.iter().enumerate() {
            let (energy, quote) = if buy {
                let f = auction::settle_buy(tick_of(limit), Wh(q), clearing.as_ref()).unwrap();
                (f.received.0, f.paid.0)
            } else {
                let f = auction::settle_sell(tick_of(limit), Wh(q), clearing.as_ref()).unwrap();
                (f.delivered.0, f.proceeds.0)
            };
            let expected = reference
                .as_ref()
                .map_or(Default::default(), |r| r.fills[i]);
            prop_assert_eq!((energy, quote), (expected.energy, expected.quote), "order {}", i);
            prop_assert!(energy <= q);
            let Some(c) = clearing else {
                prop_assert_eq!((energy, quote), (0, 0));
                continue;
            };
            let p = c.price.0;
            // The value of the energy at the price, exactly: quote x 1,000 against it.
            let exact = u128::from(energy) * u128::from(p);
            if buy {
                received += energy;
                paid += quote;
                prop_assert!(energy == 0 || limit >= p, "buyer above its limit");
                if limit > p { prop_assert_eq!(energy, q, "a better buy fills fully"); }
                // Pays at most its limit for what it receives, up to one unit of rounding
                // (a marginal buy pays for its exact share, under 1 Wh more than received).
                prop_assert!(u128::from(quote) * 1_000 <= (exact + u128::from(p)) + 999);
                prop_assert!(u128::from(quote) * 1_000 >= exact);
            } else {
                delivered += energy;
                proceeds += quote;
                prop_assert!(energy == 0 || limit <= p, "seller below its limit");
                if limit < p { prop_assert_eq!(energy, q, "a better sell fills fully"); }
                prop_assert!(u128::from(quote) * 1_000 <= exact);
                prop_assert!(u128::from(quote) * 1_000 + u128::from(p) + 999 >= exact);
            }
        }
        // Buyers receive at most what sellers delivered, sellers are paid at most what
        // buyers paid; the volume lies between.
        prop_assert!(received <= delivered);
        prop_assert!(proceeds <= paid);
        // Volume is maximal: no price of the ladder would match more (brute force over
        // every step: demand at or above it against supply at or below it).
        let most = (0..ticks)
            .map(|t| {
                let p = price(t).0;
                let d: u64 = orders.iter().filter(|o| o.0 && o.1 >= p).map(|o| o.2).sum();
                let s: u64 = orders.iter().filter(|o| !o.0 && o.1 <= p).map(|o| o.2).sum();
                d.min(s)
            })
            .max()
            .unwrap_or(0);
        prop_assert_eq!(clearing.map_or(0, |c| c.volume.0), most, "volume not maximal");
        if let Some(c) = clearing {
            prop_assert!(received <= c.volume.0 && c.volume.0 <= delivered);
            // Each marginal order rounds by less than 1 Wh: the gap is below their count.
            let marginal = orders.iter().filter(|o| o.1 == c.price.0).count() as u64;
            prop_assert!(delivered - received <= marginal);
        }
    }
}
