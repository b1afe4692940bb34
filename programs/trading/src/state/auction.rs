//! The uniform-price double auction of one interval, as pure functions (the program runs
//! them in `clear_interval`; the tests check them against an independent reference).
//!
//! **Price.** Candidates are the orders' limit prices. At a candidate `p`, demand `D(p)` is
//! the quantity of buys with limit >= p, supply `S(p)` of sells with limit <= p, and the
//! volume `min(D, S)`. Only equilibrium prices are eligible: where every strictly better
//! order can fill (buys above `p` at most `S(p)`, sells below `p` at most `D(p)`); one of
//! them always reaches the largest possible volume. Among them the clearing price is the one
//! with the largest volume, then the least leftover imbalance `|D - S|`, then the closest to
//! the previous clearing price, then the lowest.
//!
//! **Fills.** Orders strictly better than the price fill fully. Orders at the price share
//! what is left on their side pro rata to their quantity, rounded down to whole Wh; the Wh
//! the rounding leaves go one each to the at-price orders in order-index (time) order. The
//! result depends only on the book, never on who submitted the clearing or in what order
//! accounts were listed.
//!
//! Bounded: `n <= MAX_ORDERS`; sorting is O(n log n) and every loop runs over the orders.

/// What the auction needs of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bid {
    pub buy: bool,
    pub price: u64,
    pub quantity: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub price: u64,
    pub volume: u64,
}

/// Totals offered in a book (for the `IntervalClearing` event).
pub fn offered(bids: &[Bid]) -> (u64, u64) {
    bids.iter().fold((0, 0), |(b, s), o| {
        if o.buy {
            (b + o.quantity, s)
        } else {
            (b, s + o.quantity)
        }
    })
}

/// The clearing price and volume, or `None` when no buy meets a sell.
pub fn clearing_price(bids: &[Bid], previous_price: u64) -> Option<Outcome> {
    let mut buys: Vec<(u64, u64)> = bids
        .iter()
        .filter(|o| o.buy && o.quantity > 0)
        .map(|o| (o.price, o.quantity))
        .collect();
    let mut sells: Vec<(u64, u64)> = bids
        .iter()
        .filter(|o| !o.buy && o.quantity > 0)
        .map(|o| (o.price, o.quantity))
        .collect();
    buys.sort_unstable();
    sells.sort_unstable();
    let total_buy: u128 = buys.iter().map(|b| u128::from(b.1)).sum();
    let mut prices: Vec<u64> = buys.iter().chain(sells.iter()).map(|o| o.0).collect();
    prices.sort_unstable();
    prices.dedup();

    // Sweep the candidate prices upwards with running sums.
    let (mut bi, mut si) = (0usize, 0usize);
    // Buys below the candidate, sells at or below it.
    let (mut buys_below, mut sells_upto): (u128, u128) = (0, 0);
    let mut best: Option<(u128, u128, u64, u64)> = None; // volume, imbalance, distance, price
    for &p in &prices {
        while bi < buys.len() && buys[bi].0 < p {
            buys_below += u128::from(buys[bi].1);
            bi += 1;
        }
        // Every price is a candidate, so the sells counted so far are those below p.
        let sells_below = sells_upto;
        while si < sells.len() && sells[si].0 <= p {
            sells_upto += u128::from(sells[si].1);
            si += 1;
        }
        let demand = total_buy - buys_below;
        let buys_at: u128 = buys[bi..]
            .iter()
            .take_while(|b| b.0 == p)
            .map(|b| u128::from(b.1))
            .sum();
        let demand_above = demand - buys_at;
        let supply = sells_upto;
        if demand_above > supply || sells_below > demand {
            continue;
        }
        let volume = demand.min(supply);
        if volume == 0 {
            continue;
        }
        let imbalance = demand.abs_diff(supply);
        let distance = p.abs_diff(previous_price);
        let key = (volume, imbalance, distance, p);
        let better = match best {
            None => true,
            Some((v, i, d, q)) => {
                volume > v
                    || (volume == v && imbalance < i)
                    || (volume == v && imbalance == i && distance < d)
                    || (volume == v && imbalance == i && distance == d && p < q)
            }
        };
        if better {
            best = Some(key);
        }
    }
    // The volume is at most the total of one side, a sum of u64 quantities of at most
    // MAX_ORDERS orders: it fits u64 for any realistic book; refuse otherwise.
    best.and_then(|(v, _, _, p)| {
        u64::try_from(v)
            .ok()
            .map(|volume| Outcome { price: p, volume })
    })
}

/// Each order's fill at `outcome`, in the order of `bids` (see the module documentation).
pub fn fills(bids: &[Bid], outcome: Outcome) -> Vec<u64> {
    let mut out = vec![0u64; bids.len()];
    for buy in [true, false] {
        let better = |o: &Bid| {
            if buy {
                o.price > outcome.price
            } else {
                o.price < outcome.price
            }
        };
        let side = |o: &Bid| o.buy == buy && o.quantity > 0;
        let strict: u128 = bids
            .iter()
            .filter(|o| side(o) && better(o))
            .map(|o| u128::from(o.quantity))
            .sum();
        let at: u128 = bids
            .iter()
            .filter(|o| side(o) && o.price == outcome.price)
            .map(|o| u128::from(o.quantity))
            .sum();
        // Equilibrium prices guarantee strict <= volume <= strict + at.
        let left = u128::from(outcome.volume).saturating_sub(strict).min(at);
        let mut given: u128 = 0;
        for (fill, o) in out.iter_mut().zip(bids) {
            if !side(o) {
                continue;
            }
            if better(o) {
                *fill = o.quantity;
            } else if o.price == outcome.price {
                // left <= at, so the share is at most the order's quantity.
                let share = u128::from(o.quantity) * left / at;
                *fill = share as u64;
                given += share;
            }
        }
        // The Wh rounding left over, one each in order-index order (fewer than the number of
        // at-price orders, each of which has room for one more).
        let mut rest = left - given;
        for (fill, o) in out.iter_mut().zip(bids) {
            if rest == 0 {
                break;
            }
            if side(o) && o.price == outcome.price && *fill < o.quantity {
                *fill += 1;
                rest -= 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buy(price: u64, quantity: u64) -> Bid {
        Bid {
            buy: true,
            price,
            quantity,
        }
    }
    fn sell(price: u64, quantity: u64) -> Bid {
        Bid {
            buy: false,
            price,
            quantity,
        }
    }

    #[test]
    fn no_trade_when_no_buy_meets_a_sell() {
        assert_eq!(clearing_price(&[buy(100, 5), sell(110, 5)], 0), None);
        assert_eq!(clearing_price(&[buy(100, 5)], 0), None);
        assert_eq!(clearing_price(&[], 0), None);
    }

    #[test]
    fn the_price_maximises_volume() {
        // Demand: 10 at <= 120, 25 at <= 110, 40 at <= 100. Supply: 15 at >= 90, 30 at >= 110.
        let book = [
            buy(120, 10),
            buy(110, 15),
            buy(100, 15),
            sell(90, 15),
            sell(110, 15),
        ];
        assert_eq!(
            clearing_price(&book, 0),
            Some(Outcome {
                price: 110,
                volume: 25
            })
        );
        assert_eq!(
            fills(
                &book,
                Outcome {
                    price: 110,
                    volume: 25
                }
            ),
            vec![10, 15, 0, 15, 10]
        );
    }

    #[test]
    fn strictly_better_orders_always_fill_and_an_ineligible_price_is_skipped() {
        // At 30 the volume is also 5, but the buyer at 50 could not fill: 50 is chosen.
        let book = [buy(50, 10), sell(30, 5)];
        assert_eq!(
            clearing_price(&book, 30),
            Some(Outcome {
                price: 50,
                volume: 5
            })
        );
        assert_eq!(
            fills(
                &book,
                Outcome {
                    price: 50,
                    volume: 5
                }
            ),
            vec![5, 5]
        );
    }

    #[test]
    fn ties_go_to_least_imbalance_then_closest_to_the_previous_price_then_lowest() {
        // 10 buy at 120 and 10 sell at 100: every price in [100, 120] trades 10 with no
        // imbalance; the candidates are 100 and 120.
        let book = [buy(120, 10), sell(100, 10)];
        assert_eq!(clearing_price(&book, 118).unwrap().price, 120);
        assert_eq!(clearing_price(&book, 101).unwrap().price, 100);
        assert_eq!(clearing_price(&book, 110).unwrap().price, 100);
        // Imbalance before distance: at 100 demand 12 vs supply 10, at 120 demand 10 vs 10.
        let book = [buy(120, 10), buy(100, 2), sell(100, 10)];
        assert_eq!(clearing_price(&book, 100).unwrap().price, 120);
    }

    #[test]
    fn at_price_orders_share_pro_rata_with_the_rounding_by_index() {
        // Supply 10 at 100; three buys at 100 for 7, 7, 7: 10 * 7 / 21 = 3.33 each -> 3, 3,
        // 3, and the one Wh left goes to the first.
        let book = [buy(100, 7), buy(100, 7), buy(100, 7), sell(100, 10)];
        let o = clearing_price(&book, 0).unwrap();
        assert_eq!(
            o,
            Outcome {
                price: 100,
                volume: 10
            }
        );
        assert_eq!(fills(&book, o), vec![4, 3, 3, 10]);
    }
}
