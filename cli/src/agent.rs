//! A building's trading agent: from a forecast of its net export in the next interval
//! (persistence: what it exported net over the last one, from the oracle's registers), it
//! offers the surplus at its ask or bids for the deficit at its bid, within what the owner
//! holds and the limits of its configuration; a building can opt out and trade by hand
//! (`gridtokenx order`). The campus demo runs one per building; `gridtokenx agent` runs one
//! against a cluster.
//!
//! Configuration (TOML): a `[default]` agent and `[buildings.CODE]` overrides, e.g.
//!
//! ```toml
//! [default]
//! ask = 90000        # lowest selling price, quote base units per kWh (on the ladder)
//! bid = 120000       # highest buying price
//! [buildings.LIB]
//! opt_out = true     # LIB's manager trades by hand
//! ```
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use trading::Side;

/// One building's agent.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The building trades by hand: the agent places nothing.
    #[serde(default)]
    pub opt_out: bool,
    /// Lowest price it sells at, quote base units per kWh (0: it never sells).
    #[serde(default)]
    pub ask: u64,
    /// Highest price it buys at (0: it never buys).
    #[serde(default)]
    pub bid: u64,
    /// Smaller orders are not placed, Wh.
    #[serde(default = "default_min_order_wh")]
    pub min_order_wh: u64,
    /// At most this much per order, Wh (0: no cap beyond what the owner holds).
    #[serde(default)]
    pub max_order_wh: u64,
}

fn default_min_order_wh() -> u64 {
    100
}

/// What an agent does for the next interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub side: Side,
    pub quantity_wh: u64,
    pub limit_price: u64,
}

impl AgentConfig {
    /// The order for a forecast net export of `net_wh` (negative: net import), holding
    /// `grid_wh` of GRID and `quote` base units: a sell of the surplus up to the GRID held,
    /// a buy of the deficit up to what the quote covers at the bid; nothing when opted out,
    /// or under `min_order_wh`.
    pub fn decide(&self, net_wh: i64, grid_wh: u64, quote: u64) -> Option<Decision> {
        if self.opt_out {
            return None;
        }
        let cap = |q: u64| {
            if self.max_order_wh > 0 {
                q.min(self.max_order_wh)
            } else {
                q
            }
        };
        let min = self.min_order_wh.max(1);
        // An ask of 0: it never sells; a bid of 0: it never buys.
        let (side, quantity_wh, limit_price) = if net_wh >= min as i64 && self.ask > 0 {
            (Side::Sell, cap((net_wh as u64).min(grid_wh)), self.ask)
        } else if net_wh <= -(min as i64) && self.bid > 0 {
            let affordable = quote.saturating_mul(1_000) / self.bid;
            (
                Side::Buy,
                cap(net_wh.unsigned_abs().min(affordable)),
                self.bid,
            )
        } else {
            return None;
        };
        (quantity_wh >= min).then_some(Decision {
            side,
            quantity_wh,
            limit_price,
        })
    }
}

/// The persistence forecast: the next interval's net export is the last one's, from the
/// registers at its start (`before`) and end (`after`), each `(import_wh, export_wh)`.
pub fn persistence_forecast(before: (u64, u64), after: (u64, u64)) -> i64 {
    let exported = after.1.saturating_sub(before.1) as i64;
    let imported = after.0.saturating_sub(before.0) as i64;
    exported - imported
}

/// The persistence forecast for one market interval of `interval_s`, from registers
/// `elapsed_s` apart (the meter's readings need not be an interval apart: the net is scaled
/// to the interval, rounded toward zero).
pub fn forecast_per_interval(
    before: (u64, u64),
    after: (u64, u64),
    elapsed_s: i64,
    interval_s: u32,
) -> i64 {
    let net = i128::from(persistence_forecast(before, after));
    if elapsed_s <= 0 {
        return 0;
    }
    let scaled = net * i128::from(interval_s) / i128::from(elapsed_s);
    scaled.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The agents of a campus: a default and per-building overrides.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Agents {
    #[serde(default)]
    pub default: Option<AgentConfig>,
    #[serde(default)]
    pub buildings: BTreeMap<String, AgentConfig>,
}

impl Agents {
    pub fn load(path: &Path) -> Result<Agents> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("agent configuration {}", path.display()))?;
        let agents: Agents = toml::from_str(&text)
            .with_context(|| format!("agent configuration {}", path.display()))?;
        for (code, a) in agents
            .default
            .iter()
            .map(|a| ("default", a))
            .chain(agents.buildings.iter().map(|(c, a)| (c.as_str(), a)))
        {
            if !a.opt_out && a.ask == 0 && a.bid == 0 {
                bail!("agent {code}: give an ask (to sell), a bid (to buy), or opt_out = true");
            }
        }
        Ok(agents)
    }

    /// The agent of building `code`: its own, else the default.
    pub fn for_building(&self, code: &str) -> Option<AgentConfig> {
        self.buildings.get(code).copied().or(self.default)
    }
}

/// The registers an agent last saw: `(import_wh, export_wh, reading time)`.
pub type Seen = (u64, u64, i64);

/// One step of a building's agent on a cluster: the registers the oracle holds now against
/// those it saw last (`seen`); once a new reading has come, the persistence forecast, and
/// the order it decides for the next open interval, placed and returned. The first step
/// only looks (a forecast needs an interval behind it).
pub async fn step<C: sdk::chain::Chain>(
    chain: &mut C,
    owner: &solana_keypair::Keypair,
    code: &str,
    lfdi: &registry::identity::Lfdi,
    agent: &AgentConfig,
    seen: &mut Option<Seen>,
) -> Result<Option<crate::Placed>> {
    let s = crate::status(chain, code, lfdi).await?;
    let now = (s.import_wh, s.export_wh, s.last_reading);
    let Some(before) = seen.replace(now) else {
        return Ok(None);
    };
    if now.2 <= before.2 {
        // No new reading: keep the older registers for the next forecast.
        *seen = Some(before);
        return Ok(None);
    }
    let interval_s = crate::market(chain).await?.interval_s;
    let net = forecast_per_interval(
        (before.0, before.1),
        (now.0, now.1),
        now.2 - before.2,
        interval_s,
    );
    let Some(d) = agent.decide(net, s.grid_wh, s.quote) else {
        return Ok(None);
    };
    let request = crate::OrderRequest {
        side: d.side,
        quantity_wh: d.quantity_wh,
        limit_price: d.limit_price,
        interval: None,
    };
    crate::place(chain, owner, code, lfdi, request)
        .await
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: AgentConfig = AgentConfig {
        opt_out: false,
        ask: 90_000,
        bid: 120_000,
        min_order_wh: 100,
        max_order_wh: 0,
    };

    #[test]
    fn the_forecast_is_scaled_to_the_market_interval() {
        // 3,000 Wh out, 200 in over one interval: 2,800.
        assert_eq!(forecast_per_interval((0, 0), (200, 3_000), 900, 900), 2_800);
        // The same over two intervals: half of it per interval; over a third, three times.
        assert_eq!(
            forecast_per_interval((0, 0), (200, 3_000), 1_800, 900),
            1_400
        );
        assert_eq!(forecast_per_interval((0, 0), (200, 3_000), 300, 900), 8_400);
        // A net import, rounded toward zero; no time elapsed: no forecast.
        assert_eq!(forecast_per_interval((0, 0), (1_000, 0), 1_800, 900), -500);
        assert_eq!(forecast_per_interval((0, 0), (1, 0), 1_800, 900), 0);
        assert_eq!(forecast_per_interval((0, 0), (0, 5_000), 0, 900), 0);
        // Registers that went backwards count as nothing, never as a huge number.
        assert_eq!(forecast_per_interval((5_000, 5_000), (0, 0), 900, 900), 0);
    }

    #[test]
    fn surplus_is_offered_and_deficit_bid_for_within_holdings_and_limits() {
        // A surplus, up to the GRID held.
        assert_eq!(
            AGENT.decide(3_000, 2_000, 0),
            Some(Decision {
                side: Side::Sell,
                quantity_wh: 2_000,
                limit_price: 90_000
            })
        );
        // A deficit, up to what the quote covers at the bid (1,200 units buy 10 Wh).
        assert_eq!(
            AGENT.decide(-5_000, 0, 360_000),
            Some(Decision {
                side: Side::Buy,
                quantity_wh: 3_000,
                limit_price: 120_000
            })
        );
        // Small or unaffordable: nothing.
        assert_eq!(AGENT.decide(50, 10_000, 0), None);
        assert_eq!(AGENT.decide(-5_000, 0, 1_000), None);
        assert_eq!(AGENT.decide(3_000, 50, 0), None);
        // A cap per order; an opted-out building places nothing.
        let capped = AgentConfig {
            max_order_wh: 500,
            ..AGENT
        };
        assert_eq!(capped.decide(3_000, 3_000, 0).unwrap().quantity_wh, 500);
        let out = AgentConfig {
            opt_out: true,
            ..AGENT
        };
        assert_eq!(out.decide(3_000, 3_000, 10_000_000), None);
        // A seller only, a buyer only.
        let seller = AgentConfig { bid: 0, ..AGENT };
        assert_eq!(seller.decide(3_000, 3_000, 0).unwrap().side, Side::Sell);
        assert_eq!(seller.decide(-3_000, 0, 10_000_000), None);
        let buyer = AgentConfig { ask: 0, ..AGENT };
        assert_eq!(buyer.decide(3_000, 3_000, 0), None);
        assert_eq!(buyer.decide(-3_000, 0, 10_000_000).unwrap().side, Side::Buy);
    }

    #[test]
    fn the_forecast_is_the_last_intervals_net_export() {
        assert_eq!(persistence_forecast((100, 50), (400, 2_050)), 1_700);
        assert_eq!(persistence_forecast((100, 50), (1_100, 50)), -1_000);
    }

    #[test]
    fn the_example_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("agents.example.toml");
        let agents = Agents::load(&path).unwrap();
        assert_eq!(agents.for_building("ENG").unwrap().bid, 120_000);
        assert!(agents.for_building("HIST").unwrap().opt_out);
    }

    #[test]
    fn the_configuration_has_a_default_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.toml");
        std::fs::write(
            &path,
            "[default]\nask = 90000\nbid = 120000\n[buildings.LIB]\nopt_out = true\nask = 0\nbid = 0\n",
        )
        .unwrap();
        let agents = Agents::load(&path).unwrap();
        assert_eq!(agents.for_building("ENG").unwrap().ask, 90_000);
        assert!(agents.for_building("LIB").unwrap().opt_out);
        std::fs::write(&path, "[default]\nask = 0\nbid = 0\n").unwrap();
        assert!(format!("{:#}", Agents::load(&path).unwrap_err()).contains("give an ask"));
        std::fs::write(&path, "[default]\nask = 1\nbid = 1\ncolour = 2\n").unwrap();
        assert!(Agents::load(&path).is_err());
    }
}
