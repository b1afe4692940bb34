//! The campus market's resources in the store: the prices the bridge publishes, the flow
//! reservations buildings post, their price-response settings, and the demand-response
//! events and responses. Few and small next to the readings, so kept as JSON records and
//! always written by immediate (durable) commits, never in the writer's batches (these
//! tables are not in the store's log).
use anyhow::{Context, Result};
use keeper_protocol::market::{DrEvent, DrResponseRecord, FlowRequest, FlowState, MarketInfo};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::tables::{from_json, json_at, to_json, DIRECTORY};
#[cfg(test)]
use super::tables::{meta_value, META};
use super::{Reader, Writer};

/// interval -> PricePoint
pub(super) const PRICES: TableDefinition<u64, &[u8]> = TableDefinition::new("market_prices");
/// request id -> FlowRecord
pub(super) const FLOWS: TableDefinition<u64, &[u8]> = TableDefinition::new("flow_requests");
/// "lfdi/mRID" -> request id
pub(super) const FLOW_KEYS: TableDefinition<&str, u64> = TableDefinition::new("flow_keys");
/// "lfdi/rate component" -> PriceResponseCfg
pub(super) const PRICE_CFGS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("price_response_cfgs");
/// event id -> DrEvent
pub(super) const DR_EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("dr_events");
/// "event(20 digits)/lfdi/sequence(10 digits)" -> DrResponseRecord
pub(super) const DR_RESPONSES: TableDefinition<&str, &[u8]> = TableDefinition::new("dr_responses");

const MARKET_KEY: &str = "market";
const MARKET_CLOCK_KEY: &str = "market_clock";
const FLOW_NEXT: &str = "flow_next";
const DR_NEXT: &str = "dr_next";
const DR_RESPONSE_NEXT: &str = "dr_response_next";

pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(PRICES)?;
    txn.open_table(FLOWS)?;
    txn.open_table(FLOW_KEYS)?;
    txn.open_table(PRICE_CFGS)?;
    txn.open_table(DR_EVENTS)?;
    txn.open_table(DR_RESPONSES)?;
    Ok(())
}

/// One interval's price as published: cleared, or (before clearing) indicative, the last
/// traded price.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PricePoint {
    pub interval: u64,
    /// Quote base units per kWh.
    pub price: u64,
    pub cleared: bool,
    /// Energy that traded (cleared intervals).
    pub volume_wh: u64,
    /// Bumped whenever `price` or `cleared` changes (IEEE 2030.5 `version`).
    pub version: u16,
    /// When the interval was first published, and last changed.
    pub created_at: i64,
    pub changed_at: i64,
}

/// A flow reservation request: the bridge's record and the document as the EMS posted it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FlowRecord {
    pub flow: FlowRequest,
    pub document: sep2::market::FlowReservationRequest,
}

impl FlowRecord {
    /// Whether the keeper has work on it.
    pub fn open(&self) -> bool {
        matches!(
            self.flow.state,
            FlowState::Requested
                | FlowState::Placing
                | FlowState::Placed
                | FlowState::CancelRequested
        )
    }
}

fn flow_key(lfdi: &str, mrid: &str) -> String {
    format!("{lfdi}/{mrid}")
}

fn cfg_key(lfdi: &str, rate_component: u8) -> String {
    format!("{lfdi}/{rate_component}")
}

fn dr_response_key(event: u64, lfdi: &str, sequence: u64) -> String {
    format!("{event:020}/{lfdi}/{sequence:010}")
}

impl Writer<'_> {
    pub fn set_market(&self, market: &MarketInfo) -> Result<()> {
        self.insert(DIRECTORY, MARKET_KEY, to_json(market).as_slice())
    }

    /// The chain's clock minus the bridge's, seconds, as the keeper last reported it.
    pub fn set_market_clock(&self, offset: i64) -> Result<()> {
        self.insert(DIRECTORY, MARKET_CLOCK_KEY, to_json(&offset).as_slice())
    }

    pub fn price_point(&self, interval: u64) -> Result<Option<PricePoint>> {
        json_at(&self.txn.open_table(PRICES)?, interval)
    }

    pub fn put_price_point(&self, point: &PricePoint) -> Result<()> {
        self.insert(PRICES, point.interval, to_json(point).as_slice())
    }

    /// Drops the prices of intervals before `interval`.
    pub fn prune_prices_before(&self, interval: u64) -> Result<usize> {
        let old: Vec<u64> = self
            .txn
            .open_table(PRICES)?
            .range(..interval)?
            .map(|e| e.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for k in &old {
            self.remove(PRICES, *k)?;
        }
        Ok(old.len())
    }

    pub fn flow_by_mrid(&self, lfdi: &str, mrid: &str) -> Result<Option<FlowRecord>> {
        let id = self
            .txn
            .open_table(FLOW_KEYS)?
            .get(flow_key(lfdi, mrid).as_str())?
            .map(|v| v.value());
        match id {
            Some(id) => self.flow(id),
            None => Ok(None),
        }
    }

    pub fn flow(&self, id: u64) -> Result<Option<FlowRecord>> {
        json_at(&self.txn.open_table(FLOWS)?, id)
    }

    /// The device's requests the keeper still has work on for intervals from `interval` on
    /// (those of intervals already under way no longer take a device's slots).
    pub fn open_flows_of(&self, lfdi: &str, interval: u64) -> Result<usize> {
        let mut n = 0;
        for entry in self.txn.open_table(FLOWS)?.iter()? {
            let record: FlowRecord = from_json(entry?.1.value())?;
            if record.flow.lfdi == lfdi && record.open() && record.flow.interval >= interval {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Stores a new request (its id assigned here).
    pub fn add_flow(&self, mut record: FlowRecord) -> Result<FlowRecord> {
        let id = self.next(FLOW_NEXT)?;
        record.flow.id = id;
        self.insert(
            FLOW_KEYS,
            flow_key(&record.flow.lfdi, &record.flow.mrid).as_str(),
            id,
        )?;
        self.put_flow(&record)?;
        Ok(record)
    }

    pub fn put_flow(&self, record: &FlowRecord) -> Result<()> {
        self.insert(FLOWS, record.flow.id, to_json(record).as_slice())
    }

    /// Drops requests (and their responses) whose interval is before `interval`, but
    /// those the keeper still has work on.
    pub fn prune_flows_before(&self, interval: u64) -> Result<usize> {
        let mut old = Vec::new();
        for entry in self.txn.open_table(FLOWS)?.iter()? {
            let (id, value) = entry?;
            let record: FlowRecord = from_json(value.value())?;
            if record.flow.interval < interval && !record.open() {
                old.push((id.value(), flow_key(&record.flow.lfdi, &record.flow.mrid)));
            }
        }
        for (id, key) in &old {
            self.remove(FLOWS, *id)?;
            self.remove(FLOW_KEYS, key.as_str())?;
        }
        Ok(old.len())
    }

    pub fn put_price_cfg(
        &self,
        lfdi: &str,
        rate_component: u8,
        cfg: &sep2::market::PriceResponseCfg,
    ) -> Result<()> {
        self.insert(
            PRICE_CFGS,
            cfg_key(lfdi, rate_component).as_str(),
            to_json(cfg).as_slice(),
        )
    }

    /// Removes a device's setting; whether it had one.
    pub fn remove_price_cfg(&self, lfdi: &str, rate_component: u8) -> Result<bool> {
        let key = cfg_key(lfdi, rate_component);
        let had = self
            .txn
            .open_table(PRICE_CFGS)?
            .get(key.as_str())?
            .is_some();
        if had {
            self.remove(PRICE_CFGS, key.as_str())?;
        }
        Ok(had)
    }

    pub fn price_cfg(
        &self,
        lfdi: &str,
        rate_component: u8,
    ) -> Result<Option<sep2::market::PriceResponseCfg>> {
        json_at(
            &self.txn.open_table(PRICE_CFGS)?,
            cfg_key(lfdi, rate_component).as_str(),
        )
    }

    pub fn add_dr_event(&self, mut event: DrEvent) -> Result<DrEvent> {
        event.id = self.next(DR_NEXT)?;
        self.put_dr_event(&event)?;
        Ok(event)
    }

    pub fn put_dr_event(&self, event: &DrEvent) -> Result<()> {
        self.insert(DR_EVENTS, event.id, to_json(event).as_slice())
    }

    pub fn dr_event(&self, id: u64) -> Result<Option<DrEvent>> {
        json_at(&self.txn.open_table(DR_EVENTS)?, id)
    }

    /// How many responses `lfdi` has posted to `event`.
    pub fn dr_response_count(&self, event: u64, lfdi: &str) -> Result<usize> {
        let from = dr_response_key(event, lfdi, 0);
        let to = dr_response_key(event, lfdi, u64::from(u32::MAX) * 2);
        Ok(self
            .txn
            .open_table(DR_RESPONSES)?
            .range(from.as_str()..to.as_str())?
            .count())
    }

    pub fn add_dr_response(&self, response: &DrResponseRecord) -> Result<()> {
        let sequence = self.next(DR_RESPONSE_NEXT)?;
        self.insert(
            DR_RESPONSES,
            dr_response_key(response.event, &response.lfdi, sequence).as_str(),
            to_json(response).as_slice(),
        )
    }
}

impl Reader {
    /// The chain's clock minus the bridge's, seconds (0 until the keeper reports).
    pub fn market_clock_offset(&self) -> Result<i64> {
        Ok(self
            .directory(MARKET_CLOCK_KEY)?
            .map(|b| from_json(&b))
            .transpose()?
            .unwrap_or(0))
    }

    pub fn market(&self) -> Result<Option<MarketInfo>> {
        self.directory(MARKET_KEY)?
            .map(|b| from_json(&b))
            .transpose()
    }

    /// Published prices, by interval.
    pub fn price_points(&self) -> Result<Vec<PricePoint>> {
        self.txn
            .open_table(PRICES)?
            .iter()?
            .map(|e| from_json(e?.1.value()))
            .collect()
    }

    pub fn price_point(&self, interval: u64) -> Result<Option<PricePoint>> {
        json_at(&self.txn.open_table(PRICES)?, interval)
    }

    pub fn flow(&self, id: u64) -> Result<Option<FlowRecord>> {
        json_at(&self.txn.open_table(FLOWS)?, id)
    }

    /// Every request of `lfdi`, by id.
    pub fn flows_of(&self, lfdi: &str) -> Result<Vec<FlowRecord>> {
        let mut out = Vec::new();
        for entry in self.txn.open_table(FLOWS)?.iter()? {
            let record: FlowRecord = from_json(entry?.1.value())?;
            if record.flow.lfdi == lfdi {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Requests the keeper has work on, at most `limit`: those to place or cancel first,
    /// then those placed (waiting for their interval's clearing), each oldest first, so that
    /// placed ones whose answer is late never hold up new ones.
    pub fn open_flows(&self, limit: usize) -> Result<Vec<FlowRecord>> {
        let (mut urgent, mut placed) = (Vec::new(), Vec::new());
        for entry in self.txn.open_table(FLOWS)?.iter()? {
            let record: FlowRecord = from_json(entry?.1.value())?;
            match record.flow.state {
                FlowState::Placed => placed.push(record),
                _ if record.open() => urgent.push(record),
                _ => {}
            }
        }
        urgent.extend(placed);
        urgent.truncate(limit);
        Ok(urgent)
    }

    pub fn price_cfgs_of(&self, lfdi: &str) -> Result<Vec<(u8, sep2::market::PriceResponseCfg)>> {
        let mut out = Vec::new();
        for rc in 0..2u8 {
            if let Some(cfg) = json_at(
                &self.txn.open_table(PRICE_CFGS)?,
                cfg_key(lfdi, rc).as_str(),
            )? {
                out.push((rc, cfg));
            }
        }
        Ok(out)
    }

    /// Every event, by id.
    pub fn dr_events(&self) -> Result<Vec<DrEvent>> {
        self.txn
            .open_table(DR_EVENTS)?
            .iter()?
            .map(|e| from_json(e?.1.value()))
            .collect()
    }

    /// Every response to `event`, in the order posted.
    pub fn dr_responses(&self, event: u64) -> Result<Vec<DrResponseRecord>> {
        let mut out: Vec<(u64, DrResponseRecord)> = Vec::new();
        let from = format!("{event:020}/");
        let to = format!("{event:020}0");
        for entry in self
            .txn
            .open_table(DR_RESPONSES)?
            .range(from.as_str()..to.as_str())?
        {
            let (key, value) = entry?;
            let sequence = key
                .value()
                .rsplit('/')
                .next()
                .and_then(|s| s.parse().ok())
                .context("a response key without its sequence")?;
            out.push((sequence, from_json(value.value())?));
        }
        out.sort_by_key(|(s, _)| *s);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// The counter of `key` in `meta` (tests).
    #[cfg(test)]
    pub fn meta_counter(&self, key: &str) -> Result<u64> {
        meta_value(&self.txn.open_table(META)?, key)
    }
}
