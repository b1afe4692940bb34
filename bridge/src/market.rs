//! The campus market as IEEE 2030.5 shows it: the rules that turn the keeper's market
//! reports into published prices (cleared and indicative), that judge a flow reservation
//! request against the building's meter and the market's gate, and that render the
//! Pricing, FlowReservation and DRLC documents. Pure functions over the store's records;
//! `service::{pricing, flow, drlc}` serve them.
use keeper_protocol::market::{
    DrEvent, DrEventRequest, FlowRequest, FlowSide, FlowState, MarketInfo, MarketReport,
};
use sep2::market::{self as m, MridKind};
use sep2::{DateTimeInterval, Link, ListLink, XmlError};

use crate::directory::MeterEntry;
use crate::store::market::{FlowRecord, PricePoint};
use crate::store::Writer;

/// Days of prices and flow reservations the bridge keeps.
pub const KEEP_DAYS: i64 = 7;

/// What the bridge's tariff needs beyond the market: its identity and units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TariffSettings {
    /// IANA Private Enterprise Number in every mRID the bridge creates.
    pub pen: u32,
    /// ISO 4217 numeric code of the quote token's currency.
    pub currency: u16,
    /// Decimals of the quote token: prices are in its base units, so the tariff's
    /// pricePowerOfTenMultiplier is minus this.
    pub quote_decimals: u8,
}

impl Default for TariffSettings {
    fn default() -> Self {
        TariffSettings {
            pen: m::DOCUMENTATION_PEN,
            currency: 764,
            quote_decimals: 6,
        }
    }
}

/// The two rate components of the campus tariff.
pub const RC_IMPORT: u8 = 0;
pub const RC_EXPORT: u8 = 1;

fn side_of_rc(rc: u8) -> Option<FlowSide> {
    match rc {
        RC_IMPORT => Some(FlowSide::Buy),
        RC_EXPORT => Some(FlowSide::Sell),
        _ => None,
    }
}

/// The rate component a `/tp/0/rc/{r}` href names.
pub fn rate_component_of(href: &str) -> Option<u8> {
    let rc: u8 = href
        .trim_end_matches('/')
        .strip_prefix("/tp/0/rc/")?
        .parse()
        .ok()?;
    side_of_rc(rc).map(|_| rc)
}

// ---- prices ----

/// Applies a market report: the market's parameters, every cleared interval's price, and
/// for the intervals still taking orders the last traded price as indicative. A price
/// changes its `version`; prices older than [`KEEP_DAYS`] go. Returns how many points
/// changed.
pub fn apply_report(w: &Writer, report: &MarketReport, now: i64) -> anyhow::Result<usize> {
    let market = &report.market;
    anyhow::ensure!(
        market.interval_s > 0 && market.price_tick > 0 && market.ticks > 0,
        "market parameters out of range"
    );
    w.set_market(market)?;
    let mut changed = 0;
    let mut cleared: Vec<_> = report.cleared.clone();
    cleared.sort_by_key(|c| c.interval);
    // The last traded price: the latest cleared interval with a trade (reported or kept).
    let mut last_traded: Option<(u64, u64)> = None;
    for c in &cleared {
        let before = w.price_point(c.interval)?;
        // An interval that cleared without a trade shows the price it was published at.
        let price = if c.volume_wh > 0 {
            c.price
        } else {
            before.map_or(c.price, |b| b.price)
        };
        if c.volume_wh > 0 && last_traded.is_none_or(|(k, _)| c.interval > k) {
            last_traded = Some((c.interval, c.price));
        }
        changed += usize::from(upsert(w, c.interval, price, true, c.volume_wh, now)?);
    }
    let open = market.interval_at(now).unwrap_or(0);
    if last_traded.is_none() {
        // Kept from earlier reports: the latest cleared point with volume.
        for k in (open.saturating_sub(4 * 96)..=open).rev() {
            if let Some(p) = w.price_point(k)? {
                if p.cleared && p.volume_wh > 0 {
                    last_traded = Some((k, p.price));
                    break;
                }
            }
        }
    }
    if let Some((_, price)) = last_traded {
        for k in open..=open.saturating_add(u64::from(market.horizon)) {
            let existing = w.price_point(k)?;
            if existing.is_some_and(|p| p.cleared) {
                continue;
            }
            changed += usize::from(upsert(w, k, price, false, 0, now)?);
        }
    }
    let keep = KEEP_DAYS * 86_400 / i64::from(market.interval_s);
    w.prune_prices_before(open.saturating_sub(keep as u64))?;
    w.prune_flows_before(open.saturating_sub(keep as u64), market.horizon)?;
    Ok(changed)
}

fn upsert(
    w: &Writer,
    interval: u64,
    price: u64,
    cleared: bool,
    volume_wh: u64,
    now: i64,
) -> anyhow::Result<bool> {
    let before = w.price_point(interval)?;
    if let Some(b) = before {
        if b.price == price && b.cleared == cleared && b.volume_wh == volume_wh {
            return Ok(false);
        }
        // A cleared price is final; an indicative one never replaces it.
        if b.cleared && !cleared {
            return Ok(false);
        }
    }
    let point = PricePoint {
        interval,
        price,
        cleared,
        volume_wh,
        version: before.map_or(0, |b| b.version.wrapping_add(1)),
        created_at: before.map_or(now, |b| b.created_at),
        changed_at: now,
    };
    w.put_price_point(&point)?;
    Ok(true)
}

/// The price a rate component shows: the clearing price to buy, net of the fee to sell.
pub fn component_price(market: &MarketInfo, rc: u8, price: u64) -> u64 {
    if rc == RC_EXPORT {
        market.net_of_fee(price)
    } else {
        price
    }
}

/// The tariff's power of ten and a price in its units: prices are quote base units, so
/// the multiplier is minus the quote's decimals, raised when the ladder's top does not fit
/// an Int32 (never on realistic ladders).
pub fn price_units(market: &MarketInfo, t: &TariffSettings) -> (i8, u32) {
    let mut shift = 0u32;
    while market.max_price() / 10u64.pow(shift) > i32::MAX as u64 && shift < 18 {
        shift += 1;
    }
    (shift as i8 - t.quote_decimals as i8, shift)
}

pub fn tariff_profile(market: Option<&MarketInfo>, t: &TariffSettings) -> m::TariffProfile {
    let multiplier = market.map_or(-(t.quote_decimals as i8), |mk| price_units(mk, t).0);
    m::TariffProfile {
        xmlns: None,
        href: "/tp/0".into(),
        mrid: m::mrid(MridKind::TariffProfile, 0, t.pen),
        description: "Campus market".into(),
        version: 0,
        currency: t.currency,
        price_power_of_ten_multiplier: multiplier,
        primacy: 1,
        rate_code: "GRID".into(),
        rate_components: ListLink {
            all: 2,
            href: "/tp/0/rc".into(),
        },
        service_category_kind: 0,
    }
}

pub fn rate_component(rc: u8, intervals: u32, active: u32, t: &TariffSettings) -> m::RateComponent {
    let href = format!("/tp/0/rc/{rc}");
    m::RateComponent {
        xmlns: None,
        mrid: m::mrid(MridKind::RateComponent, u64::from(rc), t.pen),
        description: if rc == RC_IMPORT {
            "Buy: the clearing price".into()
        } else {
            "Sell: clearing price net of fee".into()
        },
        version: 0,
        active_intervals: ListLink {
            all: active,
            href: format!("{href}/acttti"),
        },
        reading_type: Link {
            href: format!("{href}/rt"),
        },
        role_flags: "00".into(),
        intervals: ListLink {
            all: intervals,
            href: format!("{href}/tti"),
        },
        href,
    }
}

/// The rate component's ReadingType: energy per kWh, received (import) or delivered.
pub fn rate_reading_type(rc: u8) -> sep2::ReadingType {
    sep2::ReadingType {
        xmlns: sep2::with_ns(),
        href: Some(format!("/tp/0/rc/{rc}/rt")),
        accumulation_behaviour: Some(4),
        commodity: Some(1),
        data_qualifier: Some(0),
        flow_direction: Some(if rc == RC_IMPORT { 1 } else { 19 }),
        kind: Some(12),
        power_of_ten_multiplier: Some(3),
        uom: Some(72),
        ..Default::default()
    }
}

pub fn time_tariff_interval(
    market: &MarketInfo,
    rc: u8,
    p: &PricePoint,
    now: i64,
    t: &TariffSettings,
) -> m::TimeTariffInterval {
    let start = market.start_of(p.interval).unwrap_or(i64::MAX);
    let href = format!("/tp/0/rc/{rc}/tti/{}", p.interval);
    let description = match (p.cleared, p.volume_wh) {
        (true, 0) => "Cleared without a trade".to_string(),
        (true, v) => format!("Cleared: {v} Wh traded").chars().take(32).collect(),
        (false, _) => "Indicative: last cleared price".to_string(),
    };
    m::TimeTariffInterval {
        xmlns: None,
        subscribable: 0,
        mrid: m::mrid(
            MridKind::TimeTariffInterval,
            p.interval << 1 | u64::from(rc),
            t.pen,
        ),
        description,
        version: p.version,
        creation_time: p.created_at,
        event_status: m::EventStatus::at(start, now, p.changed_at),
        interval: DateTimeInterval {
            duration: market.interval_s,
            start,
        },
        consumption_intervals: ListLink {
            all: 1,
            href: format!("{href}/cti"),
        },
        tou_tier: 0,
        href,
    }
}

pub fn consumption_tariff_interval(
    market: &MarketInfo,
    rc: u8,
    p: &PricePoint,
    t: &TariffSettings,
) -> m::ConsumptionTariffInterval {
    let (_, shift) = price_units(market, t);
    let shown = component_price(market, rc, p.price) / 10u64.pow(shift);
    m::ConsumptionTariffInterval {
        xmlns: None,
        href: format!("/tp/0/rc/{rc}/tti/{}/cti/1", p.interval),
        consumption_block: 1,
        price: i32::try_from(shown).unwrap_or(i32::MAX),
        start_value: 0,
    }
}

// ---- flow reservations ----

/// Largest number of a device's requests the keeper may have work on at once: two per
/// interval of the horizon (a buy and a sell, say, for every interval that takes orders).
pub fn max_open_requests(market: &MarketInfo) -> usize {
    2 * (usize::from(market.horizon) + 1)
}

/// A request judged: its interval, side and quantities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judged {
    pub interval: u64,
    pub side: FlowSide,
    pub energy_wh: u64,
    pub power_w: u64,
}

/// What a meter can deliver (`Sell`) or draw (`Buy`) at most, W (the registry's capacity,
/// as the trading program bounds orders).
fn meter_power_w(meter: &MeterEntry, side: FlowSide) -> u64 {
    match side {
        FlowSide::Buy => meter.capacity.max_import_w,
        FlowSide::Sell => meter.capacity.max_export_w(),
    }
}

/// Checks a posted FlowReservationRequest against the market and the building's meter:
/// exactly one market interval whose gate is open and within the horizon, a whole number of
/// Wh in the market's bounds and the meter's capacity, a power the meter has and that the
/// energy fits, and a status of Requested.
pub fn judge(
    doc: &m::FlowReservationRequest,
    meter: &MeterEntry,
    market: &MarketInfo,
    now: i64,
) -> Result<Judged, XmlError> {
    m::parse_mrid(&doc.mrid).ok_or_else(|| XmlError::values("mRID is not a 128-bit mRID"))?;
    if doc.request_status.request_status != m::REQUEST_REQUESTED {
        return Err(XmlError::values(
            "a new request's RequestStatus must be 0 (requested)",
        ));
    }
    let window = &doc.interval_requested;
    let interval = market
        .interval_spanning(window.start, window.duration)
        .ok_or_else(|| {
            XmlError::values(format!(
                "intervalRequested must be one market interval ({} s from a multiple of {} s after {})",
                market.interval_s, market.interval_s, market.start_time
            ))
        })?;
    let gate = market.gate_of(interval).unwrap_or(i64::MIN);
    if gate <= now {
        return Err(XmlError::values("the interval's gate has closed"));
    }
    let open = market.interval_at(now).unwrap_or(0);
    if interval > open.saturating_add(u64::from(market.horizon)) {
        return Err(XmlError::values(format!(
            "the market takes orders at most {} intervals ahead",
            market.horizon
        )));
    }
    let energy = doc
        .energy_requested
        .wh()
        .ok_or_else(|| XmlError::values("energyRequested is not a whole number of Wh"))?;
    let side = match energy {
        e if e > 0 => FlowSide::Buy,
        e if e < 0 => FlowSide::Sell,
        _ => return Err(XmlError::values("energyRequested is zero")),
    };
    let energy_wh = energy.unsigned_abs();
    let power = doc
        .power_requested
        .watts()
        .ok_or_else(|| XmlError::values("powerRequested is not a whole number of W"))?;
    let power_w = power.unsigned_abs();
    let limit_w = meter_power_w(meter, side);
    if power_w == 0 || power_w > limit_w {
        return Err(XmlError::values(format!(
            "powerRequested {power_w} W is not within the meter's {limit_w} W"
        )));
    }
    // The energy must fit the power over the interval (Wh = W x s / 3600).
    let deliverable = u128::from(power_w) * u128::from(market.interval_s) / 3_600;
    if u128::from(energy_wh) > deliverable {
        return Err(XmlError::values(format!(
            "energyRequested {energy_wh} Wh is more than {power_w} W delivers in the interval"
        )));
    }
    if energy_wh < market.min_quantity_wh {
        return Err(XmlError::values(format!(
            "energyRequested is below the market's minimum of {} Wh",
            market.min_quantity_wh
        )));
    }
    Ok(Judged {
        interval,
        side,
        energy_wh,
        power_w,
    })
}

/// A stored request as the EMS reads it back (its status as the market has it).
pub fn request_document(record: &FlowRecord) -> m::FlowReservationRequest {
    let mut doc = record.document.clone();
    doc.xmlns = None;
    doc.href = Some(request_href(&record.flow));
    if record.flow.state == FlowState::Cancelled || record.flow.state == FlowState::CancelRequested
    {
        doc.request_status = m::RequestStatus {
            date_time: record.flow.changed_at,
            request_status: m::REQUEST_CANCELLED,
        };
    }
    doc
}

pub fn request_href(flow: &FlowRequest) -> String {
    format!("/edev/{}/frq/{}", flow.meter_index, flow.id)
}

pub fn response_href(flow: &FlowRequest) -> String {
    format!("/edev/{}/frp/{}", flow.meter_index, flow.id)
}

/// Whether the market has answered the request (a FlowReservationResponse exists).
pub fn answered(flow: &FlowRequest) -> bool {
    matches!(flow.state, FlowState::Filled | FlowState::Rejected)
}

/// The market's answer: what was filled (0 when the request could not be placed), with
/// the request's sign, as energy over the interval and the power that is.
pub fn response_document(
    record: &FlowRecord,
    market: &MarketInfo,
    now: i64,
    t: &TariffSettings,
) -> m::FlowReservationResponse {
    let flow = &record.flow;
    let filled = flow.filled_wh.unwrap_or(0);
    let sign: i64 = if flow.side == FlowSide::Buy { 1 } else { -1 };
    let start = market
        .start_of(flow.interval)
        .unwrap_or(record.document.interval_requested.start);
    let duration = market.interval_s.max(1);
    let watts = (i128::from(filled) * 3_600 / i128::from(duration)) as i64;
    let mut status = m::EventStatus::at(start, now, flow.changed_at);
    let description = match flow.state {
        FlowState::Rejected => {
            status.current_status = m::EVENT_CANCELLED;
            status.reason = flow
                .reason
                .clone()
                .map(|r| sep2::bounded(r).chars().take(192).collect());
            "Not placed".to_string()
        }
        _ => format!("Filled {filled} of {} Wh", flow.energy_wh),
    };
    m::FlowReservationResponse {
        xmlns: None,
        href: response_href(flow),
        subscribable: 0,
        mrid: m::mrid(MridKind::FlowReservationResponse, flow.id, t.pen),
        description: description.chars().take(32).collect(),
        version: 0,
        creation_time: flow.changed_at,
        event_status: status,
        interval: DateTimeInterval { duration, start },
        energy_available: m::SignedRealEnergy {
            multiplier: 0,
            value: sign * filled as i64,
        },
        power_available: m::ActivePower::of_watts(sign * watts),
        subject: record.document.mrid.clone(),
    }
}

/// The building's price limit for `side` from its PriceResponseCfg (consumeThreshold, in
/// the tariff's units), in quote base units per kWh.
pub fn price_limit(
    cfgs: &[(u8, m::PriceResponseCfg)],
    side: FlowSide,
    market: Option<&MarketInfo>,
    t: &TariffSettings,
) -> Option<u64> {
    let rc = if side == FlowSide::Buy {
        RC_IMPORT
    } else {
        RC_EXPORT
    };
    let (_, cfg) = cfgs.iter().find(|(r, _)| *r == rc)?;
    let threshold = u64::try_from(cfg.consume_threshold).ok()?;
    let shift = market.map_or(0, |mk| price_units(mk, t).1);
    let limit = threshold.checked_mul(10u64.pow(shift))?;
    // The export rate is shown net of the fee: a seller's limit is the clearing price that
    // nets it (rounded up, never below what it asked).
    match (side, market) {
        (FlowSide::Sell, Some(mk)) if mk.fee_bps > 0 => {
            let keep = u128::from(10_000u16.saturating_sub(mk.fee_bps)).max(1);
            u64::try_from((u128::from(limit) * 10_000).div_ceil(keep)).ok()
        }
        _ => Some(limit),
    }
}

// ---- demand response ----

/// Checks an event the energy office issues: one control, a duration, a sane size.
pub fn check_dr_request(r: &DrEventRequest, now: i64) -> Result<(), String> {
    let controls = usize::from(r.duty_cycle_pct.is_some())
        + usize::from(r.reduce_percent.is_some())
        + usize::from(r.reduce_kw.is_some());
    if controls != 1 {
        return Err("give exactly one of duty_cycle_pct, reduce_percent, reduce_kw".into());
    }
    if r.duty_cycle_pct.is_some_and(|d| d > 100)
        || r.reduce_percent.is_some_and(|p| p == 0 || p > 100)
    {
        return Err("percentages are 0..=100 (a reduction at least 1)".into());
    }
    if r.reduce_kw == Some(0) {
        return Err("a reduction of 0 kW asks nothing".into());
    }
    if r.duration_s == 0 || r.duration_s > 86_400 {
        return Err("duration_s is 1..=86400".into());
    }
    if r.start.saturating_add(i64::from(r.duration_s)) <= now {
        return Err("the event would be over already".into());
    }
    if r.description.chars().count() > 32 {
        return Err("description is at most 32 characters (IEEE 2030.5 String32)".into());
    }
    Ok(())
}

/// Whether an event is in effect or still to come at `now` (and not cancelled).
pub fn dr_current(e: &DrEvent, now: i64) -> bool {
    e.cancelled_at.is_none()
        && e.request
            .start
            .saturating_add(i64::from(e.request.duration_s))
            > now
}

/// Whether an event is in effect at `now` (the active list's).
pub fn dr_active(e: &DrEvent, now: i64) -> bool {
    dr_current(e, now) && e.request.start <= now
}

pub fn end_device_control(e: &DrEvent, now: i64) -> m::EndDeviceControl {
    let r = &e.request;
    let mut status = m::EventStatus::at(r.start, now, e.cancelled_at.unwrap_or(e.created_at));
    if e.cancelled_at.is_some() {
        status.current_status = m::EVENT_CANCELLED;
    }
    m::EndDeviceControl {
        xmlns: None,
        href: format!("/dr/0/edc/{}", e.id),
        reply_to: "/rsps/0/rsp".into(),
        response_required: "03".into(),
        subscribable: 0,
        mrid: e.mrid.clone(),
        description: r.description.clone(),
        version: e.version,
        creation_time: e.created_at,
        event_status: status,
        interval: DateTimeInterval {
            duration: r.duration_s,
            start: r.start,
        },
        device_category: format!("{:08X}", m::CATEGORY_EMS),
        dr_program_mandatory: r.mandatory,
        duty_cycle: r.duty_cycle_pct.map(|d| m::DutyCycle { normal_value: d }),
        load_shift_forward: false,
        offset: r.reduce_percent.map(|p| m::Offset {
            load_adjustment_percentage_offset: u16::from(p) * 100,
        }),
        target_reduction: r.reduce_kw.map(|kw| m::TargetReduction {
            unit: m::UNIT_KW,
            value: kw,
        }),
    }
}

pub fn demand_response_program(
    all: u32,
    active: u32,
    t: &TariffSettings,
) -> m::DemandResponseProgram {
    m::DemandResponseProgram {
        xmlns: None,
        href: "/dr/0".into(),
        mrid: m::mrid(MridKind::DemandResponseProgram, 0, t.pen),
        description: "Campus demand response".into(),
        version: 0,
        active_controls: ListLink {
            all: active,
            href: "/dr/0/actedc".into(),
        },
        controls: ListLink {
            all,
            href: "/dr/0/edc".into(),
        },
        primacy: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry::MeterCapacity;

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
            min_quantity_wh: 10,
        }
    }

    fn meter() -> MeterEntry {
        MeterEntry {
            code: "B01".into(),
            index: 3,
            lfdi: [7; 20],
            lfdi_hex: sep2::hex(&[7; 20]),
            sfdi: 1,
            capacity: MeterCapacity {
                generation_w: 50_000,
                storage_wh: 60_000,
                max_import_w: 80_000,
                max_discharge_w: 15_000,
            },
            active: true,
            active_since: 0,
        }
    }

    fn request(start: i64, wh: i64, w: i64) -> m::FlowReservationRequest {
        m::FlowReservationRequest {
            xmlns: None,
            href: None,
            mrid: "0B7E0F0A00000000000000017ED9".into(),
            description: None,
            version: None,
            creation_time: start - 1_000,
            duration_requested: None,
            energy_requested: m::SignedRealEnergy {
                multiplier: 0,
                value: wh,
            },
            interval_requested: DateTimeInterval {
                duration: 900,
                start,
            },
            power_requested: m::ActivePower::of_watts(w),
            request_status: m::RequestStatus {
                date_time: start - 1_000,
                request_status: 0,
            },
        }
    }

    #[test]
    fn a_request_is_judged_against_the_interval_the_gate_and_the_meter() {
        let mk = market();
        let now = 1_800_000_100; // in interval 0
        let k2 = mk.start_of(2).unwrap();
        assert_eq!(
            judge(&request(k2, 12_000, 48_000), &meter(), &mk, now),
            Ok(Judged {
                interval: 2,
                side: FlowSide::Buy,
                energy_wh: 12_000,
                power_w: 48_000
            })
        );
        let sell = judge(&request(k2, -2_500, -10_000), &meter(), &mk, now).unwrap();
        assert_eq!((sell.side, sell.energy_wh), (FlowSide::Sell, 2_500));
        let refused = [
            // Not one market interval.
            (request(k2 + 1, 12_000, 48_000), "one market interval"),
            // The gate of interval 1 closes at its start minus 60 s.
            (
                request(mk.start_of(0).unwrap(), 100, 1_000),
                "gate has closed",
            ),
            // Beyond the horizon (open 0 + 4).
            (
                request(mk.start_of(5).unwrap(), 100, 1_000),
                "intervals ahead",
            ),
            (request(k2, 0, 1_000), "zero"),
            // More than the meter draws, or exports (50 kW + 15 kW).
            (request(k2, 12_000, 80_010), "not within"),
            (request(k2, -2_500, -65_010), "not within"),
            // More energy than the power delivers in 900 s.
            (request(k2, 12_001, 48_000), "more than"),
            (request(k2, 9, 1_000), "minimum"),
        ];
        for (doc, why) in refused {
            let err = judge(&doc, &meter(), &mk, now).unwrap_err();
            assert_eq!(err.reason, sep2::ReasonCode::Values, "{why}");
            assert!(err.message.contains(why), "{} / {why}", err.message);
        }
        let mut fractional = request(k2, 12_000, 48_000);
        fractional.energy_requested = m::SignedRealEnergy {
            multiplier: -1,
            value: 15,
        };
        assert!(judge(&fractional, &meter(), &mk, now).is_err());
        let mut cancelled = request(k2, 12_000, 48_000);
        cancelled.request_status.request_status = 1;
        assert!(judge(&cancelled, &meter(), &mk, now).is_err());
        let mut reserved = request(k2, 12_000, 48_000);
        reserved.mrid = format!("{}{:08X}", "F".repeat(24), 32_473);
        assert!(judge(&reserved, &meter(), &mk, now).is_err());
    }

    #[test]
    fn prices_are_shown_net_of_the_fee_to_sellers_and_fit_an_int32() {
        let mk = market();
        let t = TariffSettings::default();
        assert_eq!(component_price(&mk, RC_IMPORT, 45_000), 45_000);
        assert_eq!(component_price(&mk, RC_EXPORT, 45_000), 44_775);
        assert_eq!(price_units(&mk, &t), (-6, 0));
        let huge = MarketInfo {
            min_price: 1,
            price_tick: 10_000_000_000,
            ticks: 512,
            ..mk
        };
        let (multiplier, shift) = price_units(&huge, &t);
        assert!(huge.max_price() / 10u64.pow(shift) <= i32::MAX as u64);
        assert_eq!(multiplier, shift as i8 - 6);
    }

    #[test]
    fn a_sellers_limit_is_grossed_up_by_the_fee_the_export_rate_nets() {
        let mk = market();
        let t = TariffSettings::default();
        let cfg = |threshold: i32| m::PriceResponseCfg {
            xmlns: None,
            href: None,
            consume_threshold: threshold,
            max_reduction_threshold: threshold,
            rate_component: Link {
                href: String::new(),
            },
        };
        let cfgs = vec![(RC_IMPORT, cfg(50_000)), (RC_EXPORT, cfg(44_775))];
        assert_eq!(
            price_limit(&cfgs, FlowSide::Buy, Some(&mk), &t),
            Some(50_000)
        );
        // 44,775 net of 0.5 % is 45,000 gross; the export rate then shows 44,775.
        let sell = price_limit(&cfgs, FlowSide::Sell, Some(&mk), &t).unwrap();
        assert_eq!(sell, 45_000);
        assert!(mk.net_of_fee(sell) >= 44_775);
        assert_eq!(price_limit(&cfgs[..1], FlowSide::Sell, Some(&mk), &t), None);
        assert_eq!(
            price_limit(&[(RC_IMPORT, cfg(-1))], FlowSide::Buy, Some(&mk), &t),
            None
        );
    }

    #[test]
    fn dr_requests_need_one_control_and_a_future_end() {
        let now = 1_800_000_000;
        let ok = DrEventRequest {
            start: now + 60,
            duration_s: 3_600,
            description: "Heat wave".into(),
            duty_cycle_pct: None,
            reduce_percent: Some(20),
            reduce_kw: None,
            mandatory: false,
        };
        assert_eq!(check_dr_request(&ok, now), Ok(()));
        for bad in [
            DrEventRequest {
                duty_cycle_pct: Some(50),
                ..ok.clone()
            },
            DrEventRequest {
                reduce_percent: None,
                ..ok.clone()
            },
            DrEventRequest {
                reduce_percent: Some(101),
                ..ok.clone()
            },
            DrEventRequest {
                duration_s: 0,
                ..ok.clone()
            },
            DrEventRequest {
                start: now - 7_200,
                ..ok.clone()
            },
            DrEventRequest {
                description: "x".repeat(33),
                ..ok.clone()
            },
        ] {
            assert!(check_dr_request(&bad, now).is_err(), "{bad:?}");
        }
    }
}
