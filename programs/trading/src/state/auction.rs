//! The uniform-price call auction of one interval, as pure functions: clearing over the
//! interval's price ladder (`clear`, what `clear_interval` runs) and each order's settlement
//! at the clearing (`settle_buy`, `settle_sell`, what `settle_orders` runs). The tests check
//! them against an independent reference (`tests/src/auction_reference.rs`).
//!
//! **Price.** Candidates are the ladder steps where some order stands. At a candidate `p`,
//! demand `D(p)` is the Wh of buys with limit >= p, supply `S(p)` of sells with limit <= p,
//! and the volume `min(D, S)`. Only equilibrium steps are eligible: where every strictly
//! better order can fill (buys above `p` at most `S(p)`, sells below `p` at most `D(p)`); one
//! of them always reaches the largest possible volume. Among them the clearing price is the
//! one with the largest volume, then the least leftover imbalance `|D - S|`, then the closest
//! to the previous clearing price, then the lowest. Intervals clear in order, so the previous
//! price is the preceding interval's and the outcome depends only on the orders.
//!
//! **Fills.** Orders strictly better than the price fill fully, and so does every order at
//! the price on the short side (or on both when `D(p) = S(p)`). On the long side the orders
//! at the price share what is left (`fill` of their `total` Wh) pro rata to their quantity,
//! each settled on its own: a marginal buy receives its share of GRID rounded down and pays
//! for its exact share rounded up; a marginal sell delivers its share rounded up and is paid
//! for its exact share rounded down. So each marginal order bears less than 1 Wh of
//! rounding, the result depends on no settlement order, and what the rounding leaves (GRID
//! delivered but not received, quote paid but not paid out) stays with the market as dust
//! and fees: buyers never receive more GRID than sellers delivered, nor sellers more quote
//! than buyers paid.
//!
//! No buyer pays above its limit for what it receives in full (and a marginal buyer at most
//! its limit for its exact share), no seller receives below its limit before the fee.

use anchor_lang::prelude::*;

use crate::state::quantities::{Price, QuoteUnits, Wh};

/// The long side at the clearing step, and how it is rationed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marginal {
    /// Demand equals supply at the price: every order at the price fills.
    None,
    /// Buys at the price share `fill` of their `total` Wh.
    Buy { fill: u64, total: u64 },
    /// Sells at the price share `fill` of their `total` Wh.
    Sell { fill: u64, total: u64 },
}

/// An interval's clearing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clearing {
    pub tick: u16,
    pub price: Price,
    pub volume: Wh,
    pub marginal: Marginal,
}

/// An equilibrium step of the ladder, as `clear` compares them.
#[derive(Clone, Copy)]
struct Candidate {
    volume: u128,
    imbalance: u128,
    distance: u64,
    tick: u16,
    /// Buys at or above the step, and above it; sells below it, and at or below it.
    demand_at: u128,
    demand_above: u128,
    sells_below: u128,
    supply_at: u128,
}

impl Candidate {
    /// Larger volume, then less imbalance, then closer to the previous price. Equal on all
    /// three, the lower step (met first) stays.
    fn beats(&self, other: &Candidate) -> bool {
        (self.volume, other.imbalance, other.distance)
            > (other.volume, self.imbalance, self.distance)
    }
}

/// The clearing of a ladder: `demand[t]`/`supply[t]` are the Wh of buys/sells whose limit is
/// step `t`, priced `price(t)`; `None` when no buy meets a sell. One pass to total the
/// demand, one over the steps: the cost depends on the ladder, not on the orders.
pub fn clear(
    demand: &[u64],
    supply: &[u64],
    price: impl Fn(u16) -> Price,
    previous_price: u64,
) -> Option<Clearing> {
    let total_demand: u128 = demand.iter().map(|d| u128::from(*d)).sum();
    // Buys below the step, sells at or below it.
    let (mut buys_below, mut sells_upto): (u128, u128) = (0, 0);
    let mut best: Option<Candidate> = None;
    for (t, (&d, &s)) in demand.iter().zip(supply).enumerate() {
        let sells_below = sells_upto;
        sells_upto += u128::from(s);
        let demand_at = total_demand - buys_below;
        buys_below += u128::from(d);
        if d == 0 && s == 0 {
            continue;
        }
        let demand_above = demand_at - u128::from(d);
        if demand_above > sells_upto || sells_below > demand_at {
            continue;
        }
        let volume = demand_at.min(sells_upto);
        if volume == 0 {
            continue;
        }
        // The ladder has at most MAX_TICKS steps: `t` fits a u16.
        let tick = t as u16;
        let candidate = Candidate {
            volume,
            imbalance: demand_at.abs_diff(sells_upto),
            distance: price(tick).0.abs_diff(previous_price),
            tick,
            demand_at,
            demand_above,
            sells_below,
            supply_at: sells_upto,
        };
        if best.is_none_or(|b| candidate.beats(&b)) {
            best = Some(candidate);
        }
    }
    let c = best?;
    // Each sum is of u64 steps whose orders were each checked into a u64 step total; a
    // volume beyond u64 is not a book the program can hold.
    let narrow = |v: u128| u64::try_from(v).ok();
    let marginal = if c.demand_at > c.supply_at {
        Marginal::Buy {
            fill: narrow(c.volume - c.demand_above)?,
            total: demand[usize::from(c.tick)],
        }
    } else if c.supply_at > c.demand_at {
        Marginal::Sell {
            fill: narrow(c.volume - c.sells_below)?,
            total: supply[usize::from(c.tick)],
        }
    } else {
        Marginal::None
    };
    Some(Clearing {
        tick: c.tick,
        price: price(c.tick),
        volume: Wh(narrow(c.volume)?),
        marginal,
    })
}

/// What a buy receives and pays at the clearing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuyFill {
    pub received: Wh,
    pub paid: QuoteUnits,
}

/// What a sell delivers and is paid (before the fee) at the clearing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SellFill {
    pub delivered: Wh,
    pub proceeds: QuoteUnits,
}

/// A buy of `quantity` at step `tick` (see the module documentation).
pub fn settle_buy(tick: u16, quantity: Wh, clearing: Option<&Clearing>) -> Result<BuyFill> {
    let Some(c) = clearing else {
        return Ok(BuyFill::default());
    };
    if tick < c.tick {
        return Ok(BuyFill::default());
    }
    match c.marginal {
        Marginal::Buy { fill, total } if tick == c.tick => Ok(BuyFill {
            received: quantity.share(fill, total, false)?,
            paid: c.price.value_of_share(quantity, fill, total, true)?,
        }),
        _ => Ok(BuyFill {
            received: quantity,
            paid: c.price.value_up(quantity)?,
        }),
    }
}

/// A sell of `quantity` at step `tick` (see the module documentation).
pub fn settle_sell(tick: u16, quantity: Wh, clearing: Option<&Clearing>) -> Result<SellFill> {
    let Some(c) = clearing else {
        return Ok(SellFill::default());
    };
    if tick > c.tick {
        return Ok(SellFill::default());
    }
    match c.marginal {
        Marginal::Sell { fill, total } if tick == c.tick => Ok(SellFill {
            delivered: quantity.share(fill, total, true)?,
            proceeds: c.price.value_of_share(quantity, fill, total, false)?,
        }),
        _ => Ok(SellFill {
            delivered: quantity,
            proceeds: c.price.value_down(quantity)?,
        }),
    }
}

/// The market's fee on `proceeds`: `fee_bps` of it, rounded up.
pub fn fee(proceeds: QuoteUnits, fee_bps: u16) -> QuoteUnits {
    // proceeds < 2^64 and fee_bps <= 10,000: the product fits u128, the result u64.
    QuoteUnits((u128::from(proceeds.0) * u128::from(fee_bps)).div_ceil(10_000) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(t: u16) -> Price {
        Price(1_000 + 1_000 * u64::from(t))
    }

    fn ladder(orders: &[(bool, u16, u64)]) -> (Vec<u64>, Vec<u64>) {
        let (mut d, mut s) = (vec![0; 16], vec![0; 16]);
        for &(buy, t, q) in orders {
            if buy {
                d[usize::from(t)] += q;
            } else {
                s[usize::from(t)] += q;
            }
        }
        (d, s)
    }

    #[test]
    fn clears_at_the_largest_volume_and_rations_the_long_side() {
        // Buys: 100 Wh at step 5, 300 at step 3; sells: 250 at step 2.
        let (d, s) = ladder(&[(true, 5, 100), (true, 3, 300), (false, 2, 250)]);
        let c = clear(&d, &s, price, 0).unwrap();
        assert_eq!(
            c,
            Clearing {
                tick: 3,
                price: Price(4_000),
                volume: Wh(250),
                marginal: Marginal::Buy {
                    fill: 150,
                    total: 300
                },
            }
        );
        // The better buy fills fully; the marginal one half.
        assert_eq!(
            settle_buy(5, Wh(100), Some(&c)).unwrap(),
            BuyFill {
                received: Wh(100),
                paid: QuoteUnits(400)
            }
        );
        assert_eq!(
            settle_buy(3, Wh(300), Some(&c)).unwrap(),
            BuyFill {
                received: Wh(150),
                paid: QuoteUnits(600)
            }
        );
        assert_eq!(
            settle_sell(2, Wh(250), Some(&c)).unwrap(),
            SellFill {
                delivered: Wh(250),
                proceeds: QuoteUnits(1_000)
            }
        );
        // Orders outside the price do not trade.
        assert_eq!(settle_buy(2, Wh(10), Some(&c)).unwrap(), BuyFill::default());
        assert_eq!(
            settle_sell(4, Wh(10), Some(&c)).unwrap(),
            SellFill::default()
        );
    }

    #[test]
    fn marginal_orders_bear_the_rounding_and_the_market_keeps_it() {
        // Three buys of 1 Wh at the price share 2 Wh: each receives 0 (2/3 rounded down)
        // and pays for 2/3 Wh rounded up; the sells deliver 2 Wh in full.
        let (d, s) = ladder(&[(true, 0, 1), (true, 0, 1), (true, 0, 1), (false, 0, 2)]);
        let c = clear(&d, &s, price, 0).unwrap();
        assert_eq!(c.marginal, Marginal::Buy { fill: 2, total: 3 });
        let buy = settle_buy(0, Wh(1), Some(&c)).unwrap();
        assert_eq!(
            buy,
            BuyFill {
                received: Wh(0),
                paid: QuoteUnits(1)
            }
        );
        let sell = settle_sell(0, Wh(2), Some(&c)).unwrap();
        assert_eq!(
            sell,
            SellFill {
                delivered: Wh(2),
                proceeds: QuoteUnits(2)
            }
        );
        // The market keeps 2 Wh of GRID and 1 unit of quote (3 paid, 2 paid out).
        // Sells long: three sells of 1 Wh share 2 Wh; each delivers 1 (2/3 up), is paid
        // for 2/3 rounded down.
        let (d, s) = ladder(&[(false, 0, 1), (false, 0, 1), (false, 0, 1), (true, 0, 2)]);
        let c = clear(&d, &s, price, 0).unwrap();
        assert_eq!(c.marginal, Marginal::Sell { fill: 2, total: 3 });
        assert_eq!(
            settle_sell(0, Wh(1), Some(&c)).unwrap(),
            SellFill {
                delivered: Wh(1),
                proceeds: QuoteUnits(0)
            }
        );
        assert_eq!(
            settle_buy(0, Wh(2), Some(&c)).unwrap(),
            BuyFill {
                received: Wh(2),
                paid: QuoteUnits(2)
            }
        );
    }

    #[test]
    fn ties_go_to_the_least_imbalance_then_the_previous_price_then_the_lowest() {
        // A buy at 5 and a sell at 2 of equal size: any step 2..=5 clears it all, balanced.
        let (d, s) = ladder(&[(true, 5, 100), (false, 2, 100)]);
        // Steps with orders are the candidates: 2 and 5. Previous price 6,000 (step 5).
        assert_eq!(clear(&d, &s, price, 6_000).unwrap().tick, 5);
        // Previous price 2,000: step 2 (closer).
        assert_eq!(clear(&d, &s, price, 2_000).unwrap().tick, 2);
        // Equidistant (4,500): the lowest.
        assert_eq!(clear(&d, &s, price, 4_500).unwrap().tick, 2);
    }

    #[test]
    fn no_trade_when_no_buy_meets_a_sell() {
        let (d, s) = ladder(&[(true, 1, 100), (false, 2, 100)]);
        assert_eq!(clear(&d, &s, price, 0), None);
        assert_eq!(settle_buy(1, Wh(100), None).unwrap(), BuyFill::default());
        assert_eq!(clear(&[0; 4], &[0; 4], price, 0), None);
    }

    #[test]
    fn the_fee_is_rounded_up() {
        assert_eq!(fee(QuoteUnits(1_000), 50), QuoteUnits(5));
        assert_eq!(fee(QuoteUnits(1_001), 50), QuoteUnits(6));
        assert_eq!(fee(QuoteUnits(0), 1_000), QuoteUnits(0));
    }
}
