//! An independent reference for the market's clearing, written for the tests without the
//! program's sorting and sweeping: for every candidate price, add up demand and supply by
//! brute force, apply the documented rules, and allocate fills order by order.
//!
//! Rules (README "Trading"): equilibrium prices only (every strictly better order can
//! fill); the largest volume; then the least imbalance; then the closest to the previous
//! clearing price; then the lowest. Strictly better orders fill fully; at-price orders share
//! the rest pro rata (rounded down), and the leftover Wh go one each in order-index order.

/// (is_buy, limit price, quantity Wh), in order-index order.
pub type RefOrder = (bool, u64, u64);

/// Clearing price, volume and each order's fill; `None` if nothing trades.
pub fn clear(orders: &[RefOrder], previous: u64) -> Option<(u64, u64, Vec<u64>)> {
    let mut best: Option<(u64, u64, u64, u64)> = None; // price, volume, imbalance, distance
    for &(_, p, _) in orders {
        let sum = |f: &dyn Fn(&RefOrder) -> bool| -> u64 {
            orders.iter().filter(|o| f(o)).map(|o| o.2).sum()
        };
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
        let replace = match best {
            None => true,
            Some((bp, bv, bi, bd)) => {
                (
                    volume,
                    std::cmp::Reverse(imbalance),
                    std::cmp::Reverse(distance),
                    std::cmp::Reverse(p),
                ) > (
                    bv,
                    std::cmp::Reverse(bi),
                    std::cmp::Reverse(bd),
                    std::cmp::Reverse(bp),
                )
            }
        };
        if replace {
            best = Some((p, volume, imbalance, distance));
        }
    }
    let (price, volume, _, _) = best?;
    let mut fills = vec![0u64; orders.len()];
    for buy in [true, false] {
        let strictly_better = |o: &RefOrder| if buy { o.1 > price } else { o.1 < price };
        let mut left = volume;
        for (i, o) in orders.iter().enumerate() {
            if o.0 == buy && strictly_better(o) {
                fills[i] = o.2;
                left -= o.2;
            }
        }
        let at: Vec<usize> = (0..orders.len())
            .filter(|&i| orders[i].0 == buy && orders[i].1 == price)
            .collect();
        let at_total: u64 = at.iter().map(|&i| orders[i].2).sum();
        let left = left.min(at_total);
        let mut given = 0;
        for &i in &at {
            let share = (u128::from(orders[i].2) * u128::from(left) / u128::from(at_total)) as u64;
            fills[i] = share;
            given += share;
        }
        let mut rest = left - given;
        for &i in &at {
            if rest > 0 && fills[i] < orders[i].2 {
                fills[i] += 1;
                rest -= 1;
            }
        }
    }
    Some((price, volume, fills))
}
