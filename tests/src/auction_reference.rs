//! An independent reference for the market's clearing and settlement, written for the tests
//! without the program's ladder sweep: for every price some order stands at, add up demand
//! and supply over the orders by brute force, apply the documented rules, then settle each
//! order on its own.
//!
//! Rules (README "Trading", `trading::state::auction`):
//! - equilibrium prices only (every strictly better order can fill); the largest volume;
//!   then the least imbalance; then the closest to the previous clearing price; then the
//!   lowest;
//! - orders strictly better than the price fill fully, and so do orders at the price on the
//!   short side (both sides when demand equals supply); on the long side the orders at the
//!   price share what is left pro rata to their quantity;
//! - a marginal buy receives its exact share rounded down and pays for its exact share
//!   rounded up; a marginal sell delivers its exact share rounded up and is paid for its
//!   exact share rounded down; a full buy pays its energy's value rounded up, a full sell is
//!   paid it rounded down (prices are per kWh, quantities in Wh).

/// (is_buy, limit price, quantity Wh).
pub type RefOrder = (bool, u64, u64);

/// One order's settlement: the Wh it received (buy) or delivered (sell), and the quote it
/// paid (buy) or was paid before the fee (sell).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefFill {
    pub energy: u64,
    pub quote: u64,
}

/// An interval's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefClearing {
    pub price: u64,
    pub volume: u64,
    pub fills: Vec<RefFill>,
}

fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

/// The interval's price, volume and every order's settlement; `None` if nothing trades.
pub fn clear(orders: &[RefOrder], previous: u64) -> Option<RefClearing> {
    let sum = |f: &dyn Fn(&RefOrder) -> bool| -> u128 {
        orders
            .iter()
            .filter(|o| f(o))
            .map(|o| u128::from(o.2))
            .sum()
    };
    // price, volume, imbalance, distance
    let mut best: Option<(u64, u128, u128, u64)> = None;
    for &(_, p, _) in orders {
        let demand = sum(&|o| o.0 && o.1 >= p);
        let supply = sum(&|o| !o.0 && o.1 <= p);
        let demand_above = sum(&|o| o.0 && o.1 > p);
        let supply_below = sum(&|o| !o.0 && o.1 < p);
        if demand_above > supply || supply_below > demand {
            continue;
        }
        let volume = demand.min(supply);
        if volume == 0 {
            continue;
        }
        let imbalance = demand.abs_diff(supply);
        let distance = p.abs_diff(previous);
        let key = |p: u64, v: u128, i: u128, d: u64| {
            (
                v,
                std::cmp::Reverse(i),
                std::cmp::Reverse(d),
                std::cmp::Reverse(p),
            )
        };
        let replace = match best {
            None => true,
            Some((bp, bv, bi, bd)) => key(p, volume, imbalance, distance) > key(bp, bv, bi, bd),
        };
        if replace {
            best = Some((p, volume, imbalance, distance));
        }
    }
    let (price, volume, _, _) = best?;
    let demand = sum(&|o| o.0 && o.1 >= price);
    let supply = sum(&|o| !o.0 && o.1 <= price);
    // The long side's orders at the price share what the better ones left.
    let (long_buy, share, total) = if demand > supply {
        (
            Some(true),
            volume - sum(&|o| o.0 && o.1 > price),
            sum(&|o| o.0 && o.1 == price),
        )
    } else if supply > demand {
        (
            Some(false),
            volume - sum(&|o| !o.0 && o.1 < price),
            sum(&|o| !o.0 && o.1 == price),
        )
    } else {
        (None, 0, 1)
    };
    let p = u128::from(price);
    let fills = orders
        .iter()
        .map(|&(buy, limit, q)| {
            let q = u128::from(q);
            let trades = if buy { limit >= price } else { limit <= price };
            if !trades {
                return RefFill::default();
            }
            let marginal = long_buy == Some(buy) && limit == price;
            let (energy, quote) = match (buy, marginal) {
                (true, false) => (q, ceil_div(q * p, 1_000)),
                (false, false) => (q, q * p / 1_000),
                (true, true) => (q * share / total, ceil_div(q * share * p, total * 1_000)),
                (false, true) => (ceil_div(q * share, total), q * share * p / (total * 1_000)),
            };
            RefFill {
                energy: energy as u64,
                quote: quote as u64,
            }
        })
        .collect();
    Some(RefClearing {
        price,
        volume: volume as u64,
        fills,
    })
}

/// The fee on a seller's proceeds: `fee_bps` of them, rounded up.
pub fn fee(proceeds: u64, fee_bps: u16) -> u64 {
    ceil_div(u128::from(proceeds) * u128::from(fee_bps), 10_000) as u64
}
