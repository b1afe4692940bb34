//! The program's auction (`trading::state::auction`, what `clear_interval` runs) against the
//! independent reference in the test crate, over random books: same price, volume and
//! fills; no buyer above its limit, no seller below; fills within quantities; both sides
//! trade the same volume; orders strictly better than the price fill fully.
use gridtokenx_tests::auction_reference::{self, RefOrder};
use proptest::prelude::*;
use trading::state::auction::{self, Bid};

fn book() -> impl Strategy<Value = Vec<RefOrder>> {
    // Few distinct prices, so that ties and at-price rationing are common.
    proptest::collection::vec((any::<bool>(), 1u64..12, 1u64..5_000), 0..60)
        .prop_map(|v| v.into_iter().map(|(b, p, q)| (b, p * 1_000, q)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn program_auction_equals_the_reference(orders in book(), previous in 0u64..13_000) {
        let bids: Vec<Bid> = orders
            .iter()
            .map(|&(buy, price, quantity)| Bid { buy, price, quantity })
            .collect();
        let program = auction::clearing_price(&bids, previous)
            .map(|o| (o.price, o.volume, auction::fills(&bids, o)));
        let reference = auction_reference::clear(&orders, previous);
        prop_assert_eq!(&program, &reference);
        if let Some((price, volume, fills)) = program {
            let (mut bought, mut sold) = (0, 0);
            for (o, f) in orders.iter().zip(&fills) {
                prop_assert!(*f <= o.2);
                if o.0 {
                    bought += f;
                    prop_assert!(*f == 0 || o.1 >= price, "buyer above its limit");
                    if o.1 > price { prop_assert_eq!(*f, o.2); }
                } else {
                    sold += f;
                    prop_assert!(*f == 0 || o.1 <= price, "seller below its limit");
                    if o.1 < price { prop_assert_eq!(*f, o.2); }
                }
            }
            prop_assert_eq!(bought, volume);
            prop_assert_eq!(sold, volume);
        }
    }
}
