//! The campus market through IEEE 2030.5, as the bridge and the keeper exchange it: the
//! market's parameters and cleared prices the keeper reports (the bridge publishes them as
//! the campus tariff), the flow reservations buildings' EMSs post (the keeper turns them
//! into orders signed by the building's order delegate, and reports how they filled), and
//! the demand-response events the energy office issues (`bridge dr`).
use serde::{Deserialize, Serialize};

/// The market's parameters (the trading program's `MarketParams` and start time).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketInfo {
    pub start_time: i64,
    pub interval_s: u32,
    pub gate_lead_s: u32,
    pub horizon: u8,
    pub min_price: u64,
    pub price_tick: u64,
    pub ticks: u16,
    pub fee_bps: u16,
    pub min_quantity_wh: u64,
}

impl MarketInfo {
    /// The interval `now` falls in (`None` before the market starts).
    pub fn interval_at(&self, now: i64) -> Option<u64> {
        let since = now.checked_sub(self.start_time)?;
        (since >= 0 && self.interval_s > 0).then(|| since as u64 / u64::from(self.interval_s))
    }

    /// When interval `k` starts.
    pub fn start_of(&self, k: u64) -> Option<i64> {
        let offset = k.checked_mul(u64::from(self.interval_s))?;
        self.start_time.checked_add(i64::try_from(offset).ok()?)
    }

    /// When interval `k`'s gate closes (its orders are final from then on).
    pub fn gate_of(&self, k: u64) -> Option<i64> {
        self.start_of(k)?.checked_sub(i64::from(self.gate_lead_s))
    }

    /// The interval that starts at `start` and lasts `duration` seconds, if one does.
    pub fn interval_spanning(&self, start: i64, duration: u32) -> Option<u64> {
        if duration != self.interval_s {
            return None;
        }
        let k = self.interval_at(start)?;
        (self.start_of(k)? == start).then_some(k)
    }

    /// The highest price of the ladder.
    pub fn max_price(&self) -> u64 {
        self.min_price
            .saturating_add(u64::from(self.ticks.saturating_sub(1)).saturating_mul(self.price_tick))
    }

    /// `price` on the ladder: down to a step for a buy (never above the buyer's limit), up
    /// for a sell (never below the seller's), within the ladder; `None` if no step keeps the
    /// limit (a buy below the ladder, a sell above it).
    pub fn ladder_price(&self, price: u64, side: FlowSide) -> Option<u64> {
        if self.price_tick == 0 {
            return None;
        }
        let max = self.max_price();
        match side {
            FlowSide::Buy => {
                if price < self.min_price {
                    return None;
                }
                let capped = price.min(max);
                Some(capped - (capped - self.min_price) % self.price_tick)
            }
            FlowSide::Sell => {
                if price > max {
                    return None;
                }
                let floored = price.max(self.min_price);
                let over = (floored - self.min_price) % self.price_tick;
                Some(if over == 0 {
                    floored
                } else {
                    floored + (self.price_tick - over)
                })
            }
        }
    }

    /// What a seller receives of `price` after the market's fee, per kWh (rounded down).
    pub fn net_of_fee(&self, price: u64) -> u64 {
        let net = u128::from(price) * u128::from(10_000u16.saturating_sub(self.fee_bps)) / 10_000;
        net as u64
    }
}

/// One cleared interval: its uniform price (quote base units per kWh) and the energy that
/// traded (0: nothing did, and the price is not one).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClearedInterval {
    pub interval: u64,
    pub price: u64,
    pub volume_wh: u64,
}

/// `PUT /v1/market`: the market now, and recently cleared intervals (the bridge keeps what
/// it has already).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MarketReport {
    pub market: MarketInfo,
    pub cleared: Vec<ClearedInterval>,
    /// The chain's clock when the keeper read it (Unix seconds; 0: unknown). The bridge
    /// judges gates and events by the chain's clock, which decides them on chain: it keeps
    /// the difference from its own.
    #[serde(default)]
    pub chain_time: i64,
}

/// Which side of the market a flow reservation takes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FlowSide {
    /// The building takes energy (energyRequested > 0).
    Buy,
    /// The building delivers energy (energyRequested < 0).
    Sell,
}

/// Where a flow reservation is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Stored; the keeper has not placed it yet.
    Requested,
    /// The keeper is placing it (its intent recorded first, so that a placement whose
    /// outcome it did not learn is found on chain, not placed twice or left uncancelled).
    Placing,
    /// An order on chain, signed by the building's delegate.
    Placed,
    /// The building cancelled it after it was placed: the keeper cancels the order.
    CancelRequested,
    /// Cancelled (before the gate), with its order if it had one.
    Cancelled,
    /// The keeper could not place it (`reason`).
    Rejected,
    /// Its interval cleared: `filled_wh` at `price`.
    Filled,
}

/// A flow reservation request as the bridge keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FlowRequest {
    pub id: u64,
    /// The building's meter: its LFDI (upper-case hex) and registry index.
    pub lfdi: String,
    pub meter_index: u16,
    /// The request's mRID, as the EMS wrote it (upper-case hex).
    pub mrid: String,
    pub interval: u64,
    pub side: FlowSide,
    pub energy_wh: u64,
    pub power_w: u64,
    /// When the bridge stored it.
    pub received_at: i64,
    pub state: FlowState,
    /// When `state` last changed.
    pub changed_at: i64,
    /// The building's price limit for this side from its PriceResponseCfg, quote base units
    /// per kWh, when it has one (the keeper's agent configuration otherwise).
    #[serde(default)]
    pub price_limit: Option<u64>,
    /// The order's limit price and quantity once placing (at most `energy_wh`: what the
    /// owner's accounts allow).
    #[serde(default)]
    pub limit_price: Option<u64>,
    #[serde(default)]
    pub quantity_wh: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub filled_wh: Option<u64>,
    #[serde(default)]
    pub price: Option<u64>,
}

/// `GET /v1/flow/requests?limit=N`: the requests the keeper has work on: first those to
/// place or cancel (requested, placing, cancel requested), then those placed, oldest first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FlowRequestList {
    pub requests: Vec<FlowRequest>,
}

/// `POST /v1/flow/requests/{id}`: what the keeper did with a request. The answer is the
/// request as the bridge then keeps it (a request cancelled while it was being placed comes
/// back as `cancel_requested`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FlowUpdate {
    /// About to send the order: `limit_price` for `quantity_wh` (at most the request's).
    Placing {
        limit_price: u64,
        quantity_wh: u64,
    },
    Placed {
        limit_price: u64,
    },
    Rejected {
        reason: String,
    },
    Cancelled,
    Filled {
        filled_wh: u64,
        price: u64,
    },
}

/// `POST /v1/dr/events`: a campus demand-response event (an EndDeviceControl every
/// building's EMS is assigned). One of the three controls.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DrEventRequest {
    pub start: i64,
    pub duration_s: u32,
    pub description: String,
    /// Run loads at most this share of the time, percent (DutyCycle).
    #[serde(default)]
    pub duty_cycle_pct: Option<u8>,
    /// Reduce load by this share, percent (Offset.loadAdjustmentPercentageOffset).
    #[serde(default)]
    pub reduce_percent: Option<u8>,
    /// Reduce load by this much, kW (TargetReduction).
    #[serde(default)]
    pub reduce_kw: Option<u16>,
    /// Whether buildings may not opt out (drProgramMandatory).
    #[serde(default)]
    pub mandatory: bool,
}

/// A demand-response event as the bridge keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DrEvent {
    pub id: u64,
    pub mrid: String,
    pub created_at: i64,
    pub request: DrEventRequest,
    #[serde(default)]
    pub cancelled_at: Option<i64>,
    /// Bumped at each change (a cancellation).
    pub version: u16,
}

/// A building's response to an event, as it posted it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DrResponseRecord {
    pub event: u64,
    pub lfdi: String,
    /// The building's code.
    #[serde(default)]
    pub code: String,
    /// IEEE 2030.5 Response.status (1 received, 2 started, 3 completed, 4 opted out, ...).
    pub status: u8,
    pub created_at: i64,
    pub received_at: i64,
    /// What the building applied, when it said: duty cycle, percent; reduction, percent.
    #[serde(default)]
    pub duty_cycle_pct: Option<u8>,
    #[serde(default)]
    pub reduce_percent: Option<u8>,
}

/// `GET /v1/dr/events`: every event, newest first, with each building's latest response.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DrEventList {
    pub events: Vec<DrEventSummary>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DrEventSummary {
    pub event: DrEvent,
    pub responses: Vec<DrResponseRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market() -> MarketInfo {
        MarketInfo {
            start_time: 1_800_000_000,
            interval_s: 900,
            gate_lead_s: 60,
            horizon: 4,
            min_price: 1_000,
            price_tick: 1_000,
            ticks: 512,
            fee_bps: 50,
            min_quantity_wh: 1,
        }
    }

    #[test]
    fn intervals_and_gates() {
        let m = market();
        assert_eq!(m.interval_at(1_800_000_000 + 1_799), Some(1));
        assert_eq!(m.interval_at(1_799_999_999), None);
        assert_eq!(m.start_of(2), Some(1_800_001_800));
        assert_eq!(m.gate_of(2), Some(1_800_001_740));
        assert_eq!(m.interval_spanning(1_800_001_800, 900), Some(2));
        assert_eq!(m.interval_spanning(1_800_001_801, 900), None);
        assert_eq!(m.interval_spanning(1_800_001_800, 1_800), None);
        assert_eq!(m.start_of(u64::MAX), None);
    }

    #[test]
    fn limits_land_on_the_ladder_on_the_traders_side() {
        let m = market();
        assert_eq!(m.ladder_price(45_500, FlowSide::Buy), Some(45_000));
        assert_eq!(m.ladder_price(45_500, FlowSide::Sell), Some(46_000));
        assert_eq!(m.ladder_price(45_000, FlowSide::Sell), Some(45_000));
        assert_eq!(m.ladder_price(999, FlowSide::Buy), None);
        assert_eq!(m.ladder_price(999, FlowSide::Sell), Some(1_000));
        assert_eq!(m.ladder_price(10_000_000, FlowSide::Buy), Some(512_000));
        assert_eq!(m.ladder_price(512_001, FlowSide::Sell), None);
        assert_eq!(m.net_of_fee(100_000), 99_500);
    }
}
