//! What the console serves: one snapshot of the campus, as JSON. Energy in Wh, GRID in Wh
//! (1 GRID = 1 kWh = 1,000 base units), quote tokens and prices in base units (prices per
//! kWh), times in Unix seconds of the cluster's clock.
use serde::Serialize;

/// The whole campus at one moment (`GET /api/v1/snapshot`); each part has its own route.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    /// Increases with every refresh.
    pub version: u64,
    pub campus: Campus,
    pub buildings: Vec<Building>,
    /// Recent intervals first ... newest last: the open books, the cleared ones.
    pub intervals: Vec<Interval>,
    pub orders: Vec<OrderRow>,
    /// The most recent settlements, newest last.
    pub fills: Vec<Fill>,
    pub meters: Vec<MeterHealth>,
    pub batches: Batches,
    pub proposals: Vec<cli::council::ProposalView>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Campus {
    pub name: String,
    /// The campus's IANA time zone (the campus file's `[site]`): the page shows times in it.
    pub time_zone: String,
    /// The cluster's clock when the snapshot was read.
    pub slot: u64,
    pub chain_time: i64,
    /// When the console read it (its own clock).
    pub read_at: i64,
    /// How long reading it took, ms.
    pub read_ms: u64,
    pub meters: u64,
    pub meters_active: u64,
    /// Active meters whose last reading on chain is older than the console's
    /// `silent_after_s`, or that have none.
    pub meters_silent: u64,
    pub market: Market,
    pub paused: Paused,
    pub totals: Totals,
    /// Whether the console saw every market and oracle event since its first read (which
    /// takes the programs' last 1,000 transactions each). `false`: it fell more than 5,000
    /// transactions behind, or could not read the history; fills, bought/sold and
    /// intervals then have a gap.
    pub history_complete: bool,
    /// Why the transaction history could not be read at the last refresh (the accounts
    /// are current; intervals, fills and batches are not).
    pub history_error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Market {
    pub interval_s: u32,
    pub gate_lead_s: u32,
    /// The interval running now and when it started.
    pub current_interval: u64,
    pub current_starts_at: i64,
    pub min_price: u64,
    pub price_tick: u64,
    pub ticks: u16,
    pub fee_bps: u16,
    pub min_quantity_wh: u64,
    /// The quote token (prices and payments are in its base units) and its decimals.
    pub quote_mint: String,
    pub quote_decimals: u8,
    /// The last cleared price with a trade, and its interval.
    pub last_price: u64,
    pub last_price_interval: u64,
    pub fees: u64,
    pub dust_wh: u64,
}

/// Until when each program is paused (0: running).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Paused {
    pub registry_until: i64,
    pub oracle_until: i64,
    pub market_until: i64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub verified_import_wh: u64,
    pub verified_export_wh: u64,
    pub grid_minted_wh: u64,
    pub redeemed_wh: u64,
    /// GRID in existence (the mint's supply, Wh).
    pub grid_supply_wh: u64,
    pub recs_issued: u64,
    pub open_orders: u64,
    /// Traded in the cleared intervals the console keeps (a week's; since its first
    /// read): the sum of their volumes.
    pub traded_wh: u64,
}

/// A building: its meter, energy and balances.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Building {
    pub code: String,
    pub lfdi: String,
    pub kind: String,
    pub owner: String,
    pub status: String,
    pub import_wh: u64,
    pub export_wh: u64,
    pub verified_import_wh: u64,
    pub verified_export_wh: u64,
    pub grid_minted_wh: u64,
    pub redeemed_wh: u64,
    pub grid_wh: u64,
    pub quote: u64,
    pub claimable_grid_wh: u64,
    pub claimable_quote: u64,
    pub recs: u64,
    pub recs_issued: u64,
    pub open_orders: u64,
    /// Settled since the console's history begins: GRID bought and sold (Wh), quote paid
    /// and received (after fees).
    pub bought_wh: u64,
    pub sold_wh: u64,
    pub paid: u64,
    pub received: u64,
}

/// An interval of the market.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Interval {
    pub interval: u64,
    pub starts_at: i64,
    /// `open`, `gate closed`, `cleared` (settling) or `closed` (settled, book closed).
    pub state: String,
    /// Quote base units per kWh; 0 when nothing traded or not cleared yet.
    pub price: u64,
    pub volume_wh: u64,
    pub buy_orders: u32,
    pub sell_orders: u32,
    /// Offered when it cleared (or so far, while open).
    pub buy_offered_wh: u64,
    pub sell_offered_wh: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OrderRow {
    pub building: String,
    #[serde(flatten)]
    pub order: cli::OrderView,
}

/// A settled order.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Fill {
    pub interval: u64,
    pub building: String,
    pub side: String,
    pub filled_wh: u64,
    pub quote: u64,
    pub refund: u64,
    pub slot: u64,
}

/// A meter's health: registry status, its last reading on chain, the bridge's view.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MeterHealth {
    pub code: String,
    pub lfdi: String,
    pub status: String,
    pub last_reading: i64,
    /// Seconds from the last reading to the chain's clock (None: never read).
    pub age_s: Option<i64>,
    pub readings: u64,
    /// `ok`, `late` (older than half `silent_after_s`), `silent`, `no reading`,
    /// `suspended`, `retired`, or `denied` (the bridge refuses it locally).
    pub health: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Batches {
    /// The oracle's highest applied batch sequence and the recent batches it applied.
    pub highest_sequence: u64,
    pub recent: Vec<BatchRow>,
    pub bridge: Option<BridgeView>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchRow {
    pub sequence: u64,
    pub applied: u16,
    pub skipped: u16,
    pub slot: u64,
}

/// The bridge as its keeper interface reports it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BridgeView {
    pub reachable: bool,
    /// Why it could not be read.
    pub error: Option<String>,
    pub attestor: String,
    pub chain_floor: u64,
    pub attestation: Option<keeper_protocol::AttestationStatus>,
    pub denied: Vec<keeper_protocol::DeniedMeter>,
}
