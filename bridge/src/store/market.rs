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
/// "lfdi/id (20 digits)" -> request id: a device's requests, without reading the others'.
pub(super) const FLOWS_BY_DEVICE: TableDefinition<&str, u64> =
    TableDefinition::new("flows_by_device");
/// request id -> (): the requests the keeper has work on.
pub(super) const FLOWS_OPEN: TableDefinition<u64, ()> = TableDefinition::new("flows_open");
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
    txn.open_table(FLOWS_BY_DEVICE)?;
    txn.open_table(FLOWS_OPEN)?;
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

fn device_key(lfdi: &str, id: u64) -> String {
    format!("{lfdi}/{id:020}")
}

/// The range of `FLOWS_BY_DEVICE` keys of `lfdi` ('0' follows '/').
fn device_range(lfdi: &str) -> (String, String) {
    (format!("{lfdi}/"), format!("{lfdi}0"))
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
        let (from, to) = device_range(lfdi);
        let ids: Vec<u64> = self
            .txn
            .open_table(FLOWS_BY_DEVICE)?
            .range(from.as_str()..to.as_str())?
            .map(|e| e.map(|(_, v)| v.value()))
            .collect::<Result<_, _>>()?;
        let open = self.txn.open_table(FLOWS_OPEN)?;
        let mut n = 0;
        for id in ids {
            if open.get(id)?.is_some() {
                let record = self.flow(id)?.context("an indexed request is missing")?;
                n += usize::from(record.flow.interval >= interval);
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
        self.insert(
            FLOWS_BY_DEVICE,
            device_key(&record.flow.lfdi, id).as_str(),
            id,
        )?;
        self.put_flow(&record)?;
        Ok(record)
    }

    /// Writes a request, keeping the index of open ones.
    pub fn put_flow(&self, record: &FlowRecord) -> Result<()> {
        if record.open() {
            self.insert(FLOWS_OPEN, record.flow.id, ())?;
        } else {
            self.remove(FLOWS_OPEN, record.flow.id)?;
        }
        self.insert(FLOWS, record.flow.id, to_json(record).as_slice())
    }

    /// Drops finished requests whose interval is before `interval`. Ids grow with the time a
    /// request came and a request is for an interval at most `horizon` after the one it came
    /// in, so the walk from the oldest stops at the first request `horizon` past `interval`:
    /// it reads what it drops, not the whole table.
    pub fn prune_flows_before(&self, interval: u64, horizon: u8) -> Result<usize> {
        let stop = interval.saturating_add(u64::from(horizon));
        let mut old = Vec::new();
        for entry in self.txn.open_table(FLOWS)?.iter()? {
            let (id, value) = entry?;
            let record: FlowRecord = from_json(value.value())?;
            if record.flow.interval > stop {
                break;
            }
            if record.flow.interval < interval && !record.open() {
                old.push((
                    id.value(),
                    record.flow.lfdi.clone(),
                    record.flow.mrid.clone(),
                ));
            }
        }
        for (id, lfdi, mrid) in &old {
            self.remove(FLOWS, *id)?;
            self.remove(FLOW_KEYS, flow_key(lfdi, mrid).as_str())?;
            self.remove(FLOWS_BY_DEVICE, device_key(lfdi, *id).as_str())?;
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
        let (from, to) = (
            format!("{event:020}/{lfdi}/"),
            format!("{event:020}/{lfdi}0"),
        );
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

impl super::Store {
    /// The campus market's clock at the bridge's `now`: the chain's, as the keeper last
    /// reported it (gates and events are decided by it on chain); the bridge's own until
    /// then.
    pub fn campus_now(&self, now: i64) -> Result<i64> {
        Ok(now.saturating_add(self.read()?.market_clock_offset()?))
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
        let (from, to) = device_range(lfdi);
        let ids: Vec<u64> = self
            .txn
            .open_table(FLOWS_BY_DEVICE)?
            .range(from.as_str()..to.as_str())?
            .map(|e| e.map(|(_, v)| v.value()))
            .collect::<Result<_, _>>()?;
        ids.into_iter()
            .map(|id| self.flow(id)?.context("an indexed request is missing"))
            .collect()
    }

    /// Requests the keeper has work on, at most `limit`: those to place or cancel first,
    /// then those placed (waiting for their interval's clearing), each oldest first, so that
    /// placed ones whose answer is late never hold up new ones.
    pub fn open_flows(&self, limit: usize) -> Result<Vec<FlowRecord>> {
        let (mut urgent, mut placed) = (Vec::new(), Vec::new());
        for entry in self.txn.open_table(FLOWS_OPEN)?.iter()? {
            let id = entry?.0.value();
            let record = self.flow(id)?.context("an open request is missing")?;
            match record.flow.state {
                FlowState::Placed => placed.push(record),
                _ => urgent.push(record),
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
        self.dr_responses_in(format!("{event:020}/"), format!("{event:020}0"))
    }

    /// `lfdi`'s responses to `event`, in the order posted.
    pub fn dr_responses_of(&self, event: u64, lfdi: &str) -> Result<Vec<DrResponseRecord>> {
        self.dr_responses_in(
            format!("{event:020}/{lfdi}/"),
            format!("{event:020}/{lfdi}0"),
        )
    }

    fn dr_responses_in(&self, from: String, to: String) -> Result<Vec<DrResponseRecord>> {
        let mut out: Vec<(u64, DrResponseRecord)> = Vec::new();
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

#[cfg(test)]
mod tests {
    use keeper_protocol::market::{FlowRequest, FlowSide, FlowState};

    use super::FlowRecord;
    use crate::store::Store;

    fn request(lfdi: &str, mrid: &str, interval: u64) -> FlowRecord {
        FlowRecord {
            flow: FlowRequest {
                id: 0,
                lfdi: lfdi.into(),
                meter_index: 0,
                mrid: mrid.into(),
                interval,
                side: FlowSide::Buy,
                energy_wh: 100,
                power_w: 1_000,
                received_at: 0,
                state: FlowState::Requested,
                changed_at: 0,
                price_limit: None,
                limit_price: None,
                quantity_wh: None,
                reason: None,
                filled_wh: None,
                price: None,
            },
            document: sep2::market::FlowReservationRequest {
                xmlns: None,
                href: None,
                mrid: mrid.into(),
                description: None,
                version: None,
                creation_time: 0,
                duration_requested: None,
                energy_requested: Default::default(),
                interval_requested: Default::default(),
                power_requested: Default::default(),
                request_status: Default::default(),
            },
        }
    }

    #[test]
    fn requests_are_indexed_by_device_and_state_and_only_finished_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bridge.redb")).unwrap();
        // Device A: intervals 10, 11, 12; device B: 11. Ids grow with the intervals.
        store
            .write_immediate(|w| -> anyhow::Result<()> {
                for (lfdi, mrid, k) in [
                    ("A", "1", 10),
                    ("B", "2", 11),
                    ("A", "3", 11),
                    ("A", "4", 12),
                ] {
                    w.add_flow(request(lfdi, mrid, k))?;
                }
                Ok(())
            })
            .unwrap();
        let r = store.read().unwrap();
        let ids = |v: Vec<FlowRecord>| v.iter().map(|f| f.flow.id).collect::<Vec<_>>();
        assert_eq!(ids(r.flows_of("A").unwrap()), [1, 3, 4]);
        assert_eq!(ids(r.flows_of("B").unwrap()), [2]);
        assert!(r.flows_of("AB").unwrap().is_empty());
        drop(r);
        // Request 1 is placed, request 3 finished: the open index follows; placed ones last.
        store
            .write_immediate(|w| -> anyhow::Result<()> {
                let mut one = w.flow(1)?.unwrap();
                one.flow.state = FlowState::Placed;
                w.put_flow(&one)?;
                let mut three = w.flow(3)?.unwrap();
                three.flow.state = FlowState::Rejected;
                w.put_flow(&three)?;
                assert_eq!(w.open_flows_of("A", 0)?, 2);
                assert_eq!(w.open_flows_of("A", 11)?, 1);
                Ok(())
            })
            .unwrap();
        assert_eq!(
            ids(store.read().unwrap().open_flows(10).unwrap()),
            [2, 4, 1]
        );
        assert_eq!(ids(store.read().unwrap().open_flows(1).unwrap()), [2]);
        // Pruning before 12: request 3 (finished) goes; 1 is still open, 2 and 4 are not old.
        let pruned = store
            .write_immediate(|w| w.prune_flows_before(12, 0))
            .unwrap();
        assert_eq!(pruned, 1);
        let r = store.read().unwrap();
        assert_eq!(ids(r.flows_of("A").unwrap()), [1, 4]);
        drop(r);
        // The same mRID can be used again once its request is gone.
        store
            .write_immediate(|w| -> anyhow::Result<()> {
                assert!(w.flow_by_mrid("A", "3")?.is_none());
                assert!(w.flow_by_mrid("A", "4")?.is_some());
                Ok(())
            })
            .unwrap();
    }
}
