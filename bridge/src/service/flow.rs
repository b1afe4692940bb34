//! Flow reservations (`/edev/{i}/frq`, `/edev/{i}/frp`) and the settings a building's EMS
//! trades by (`/edev/{i}/cfg`, its PriceResponseCfgs), for the caller's own device only.
//! A request is judged against the market and the meter (`market::judge`), stored durably
//! before its 201, and carried by the keeper into an order signed by the building's order
//! delegate; the market's answer appears at `/edev/{i}/frp` once the interval clears.
use keeper_protocol::market::{FlowRequest, FlowState};
use sep2::market::{self as m, FlowReservationRequest, PriceResponseCfg};
use sep2::XmlError;

use super::{list_page, Page, Refusal, Reply, Service};
use crate::directory::MeterEntry;
use crate::market;
use crate::store::market::FlowRecord;

/// A device's PriceResponseCfgs at most (one per rate component).
const CFG_ITEMS: u32 = 2;

fn utf8(body: &[u8]) -> Result<&str, XmlError> {
    std::str::from_utf8(body).map_err(|_| XmlError::format("body is not UTF-8"))
}

/// The list order of FlowReservationRequest/Response lists: interval start ascending, then
/// creationTime descending, then mRID descending (IEEE 2030.5 Table 48).
fn flow_order(a: &FlowRecord, b: &FlowRecord) -> std::cmp::Ordering {
    let mrid = |r: &FlowRecord| m::parse_mrid(&r.document.mrid).unwrap_or(0);
    a.document
        .interval_requested
        .start
        .cmp(&b.document.interval_requested.start)
        .then(b.document.creation_time.cmp(&a.document.creation_time))
        .then(mrid(b).cmp(&mrid(a)))
}

impl Service {
    /// `/edev/{i}/...` beyond the EndDevice itself: `rest` after the device's index.
    pub(super) async fn device_market(
        self: &std::sync::Arc<Self>,
        caller: &MeterEntry,
        method: &str,
        rest: &[&str],
        query: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Reply, Refusal> {
        match (rest, method) {
            (["fsa", "0"], "GET") => {
                let mut fsa = sep2::fsa(caller.index, self.settings.tariff.pen);
                fsa.xmlns = sep2::with_ns();
                Ok(Reply::xml(sep2::to_xml("FunctionSetAssignments", &fsa)))
            }
            (["fsa", "0"], _) => Ok(Reply::method_not_allowed("GET, HEAD")),
            (["cfg"], "GET") => self.configuration(caller),
            (["cfg"], _) => Ok(Reply::method_not_allowed("GET, HEAD")),
            (["cfg", "prcfg"], "GET") => self.price_cfg_list(caller, query),
            (["cfg", "prcfg"], "POST") => self.put_price_cfg(caller, None, body).await,
            (["cfg", "prcfg"], _) => Ok(Reply::method_not_allowed("GET, HEAD, POST")),
            (["cfg", "prcfg", rc], "GET") => self.price_cfg(caller, rc),
            (["cfg", "prcfg", rc], "PUT") => self.put_price_cfg(caller, Some(rc), body).await,
            (["cfg", "prcfg", rc], "DELETE") => self.delete_price_cfg(caller, rc).await,
            (["cfg", "prcfg", _], _) => Ok(Reply::method_not_allowed("GET, HEAD, PUT, DELETE")),
            (["frq"], "GET") => self.flow_list(caller, query, false, now),
            (["frq"], "POST") => self.post_flow_request(caller, body, now).await,
            (["frq"], _) => Ok(Reply::method_not_allowed("GET, HEAD, POST")),
            (["frq", id], "GET") => {
                let record = self.owned_flow(caller, id)?;
                let mut doc = market::request_document(&record);
                doc.xmlns = sep2::with_ns();
                Ok(Reply::xml(sep2::to_xml("FlowReservationRequest", &doc)))
            }
            (["frq", id], "PUT") => self.cancel_flow_request(caller, id, body, now).await,
            (["frq", _], _) => Ok(Reply::method_not_allowed("GET, HEAD, PUT")),
            (["frp"], "GET") => self.flow_list(caller, query, true, now),
            (["frp"], _) => Ok(Reply::method_not_allowed("GET, HEAD")),
            (["frp", id], "GET") => {
                let record = self.owned_flow(caller, id)?;
                if !market::answered(&record.flow) {
                    return Err(Refusal::NotFound);
                }
                let market = self.store.read()?.market()?.ok_or(Refusal::NotFound)?;
                let mut doc =
                    market::response_document(&record, &market, now, &self.settings.tariff);
                doc.xmlns = sep2::with_ns();
                Ok(Reply::xml(sep2::to_xml("FlowReservationResponse", &doc)))
            }
            (["frp", _], _) => Ok(Reply::method_not_allowed("GET, HEAD")),
            _ => Err(Refusal::NotFound),
        }
    }

    fn owned_flow(&self, caller: &MeterEntry, id: &str) -> Result<FlowRecord, Refusal> {
        let id: u64 = id.parse().map_err(|_| Refusal::NotFound)?;
        let record = self.store.read()?.flow(id)?.ok_or(Refusal::NotFound)?;
        if record.flow.lfdi != caller.lfdi_hex {
            return Err(Refusal::Forbidden(format!(
                "flow reservation {id} belongs to another device"
            )));
        }
        Ok(record)
    }

    fn flow_list(
        &self,
        caller: &MeterEntry,
        query: Option<&str>,
        responses: bool,
        now: i64,
    ) -> Result<Reply, Refusal> {
        let page = Page::parse(query)?;
        let reader = self.store.read()?;
        let mut records: Vec<FlowRecord> = reader
            .flows_of(&caller.lfdi_hex)?
            .into_iter()
            .filter(|r| !responses || market::answered(&r.flow))
            .filter(|r| {
                page.after
                    .is_none_or(|a| r.document.interval_requested.start >= a)
            })
            .collect();
        records.sort_by(flow_order);
        let all = records.len() as u32;
        let records = list_page(records, &page);
        let poll_rate = 60;
        Ok(Reply::xml(if responses {
            let market = reader.market()?;
            let items: Vec<_> = match market {
                Some(mk) => records
                    .iter()
                    .map(|r| market::response_document(r, &mk, now, &self.settings.tariff))
                    .collect(),
                None => Vec::new(),
            };
            sep2::to_xml(
                "FlowReservationResponseList",
                &m::FlowReservationResponseList {
                    xmlns: sep2::NS.into(),
                    all,
                    href: format!("/edev/{}/frp", caller.index),
                    results: items.len() as u32,
                    subscribable: 0,
                    poll_rate,
                    items,
                },
            )
        } else {
            let items: Vec<_> = records.iter().map(market::request_document).collect();
            sep2::to_xml(
                "FlowReservationRequestList",
                &m::FlowReservationRequestList {
                    xmlns: sep2::NS.into(),
                    all,
                    href: format!("/edev/{}/frq", caller.index),
                    results: items.len() as u32,
                    poll_rate,
                    items,
                },
            )
        }))
    }

    async fn post_flow_request(
        self: &std::sync::Arc<Self>,
        caller: &MeterEntry,
        body: &[u8],
        now: i64,
    ) -> Result<Reply, Refusal> {
        let (_, mut doc) =
            sep2::parse::<FlowReservationRequest>(utf8(body)?, &["FlowReservationRequest"])?;
        let market = self
            .store
            .read()?
            .market()?
            .ok_or(Refusal::Unavailable("the market is not known yet"))?;
        let judged = market::judge(&doc, caller, &market, now)?;
        if doc
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 32)
        {
            return Err(XmlError::values("description is at most 32 characters (String32)").into());
        }
        doc.mrid = doc.mrid.to_ascii_uppercase();
        doc.xmlns = None;
        doc.href = None;
        let who = caller.clone();
        let (record, created) = self
            .immediate(move |w| -> Result<(FlowRecord, bool), Refusal> {
                if let Some(existing) = w.flow_by_mrid(&who.lfdi_hex, &doc.mrid)? {
                    // The same request again (a retry after a lost answer) is the one stored.
                    return if existing.document == doc {
                        Ok((existing, false))
                    } else {
                        Err(XmlError::values("mRID names another request of this device").into())
                    };
                }
                let current = market.interval_at(now).unwrap_or(0);
                if w.open_flows_of(&who.lfdi_hex, current)? >= market::max_open_requests(&market) {
                    return Err(XmlError::limit(format!(
                        "at most {} open flow reservations per device",
                        market::max_open_requests(&market)
                    ))
                    .into());
                }
                let record = w.add_flow(FlowRecord {
                    flow: FlowRequest {
                        id: 0,
                        lfdi: who.lfdi_hex.clone(),
                        meter_index: who.index,
                        mrid: doc.mrid.clone(),
                        interval: judged.interval,
                        side: judged.side,
                        energy_wh: judged.energy_wh,
                        power_w: judged.power_w,
                        received_at: now,
                        state: FlowState::Requested,
                        changed_at: now,
                        price_limit: None,
                        limit_price: None,
                        quantity_wh: None,
                        reason: None,
                        filled_wh: None,
                        price: None,
                    },
                    document: doc.clone(),
                })?;
                Ok((record, true))
            })
            .await?;
        let location = market::request_href(&record.flow);
        if created {
            self.metrics.flow_requests.inc(match judged.side {
                keeper_protocol::market::FlowSide::Buy => "buy",
                keeper_protocol::market::FlowSide::Sell => "sell",
            });
            tracing::info!(meter = %caller.code, id = record.flow.id, interval = judged.interval,
                side = ?judged.side, wh = judged.energy_wh, "flow reservation requested");
            Ok(Reply::created(location))
        } else {
            Ok(Reply::no_content(Some(location)))
        }
    }

    /// PUT of a request: only its cancellation (RequestStatus 1), before its gate closes.
    async fn cancel_flow_request(
        self: &std::sync::Arc<Self>,
        caller: &MeterEntry,
        id: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Reply, Refusal> {
        let record = self.owned_flow(caller, id)?;
        let (_, doc) =
            sep2::parse::<FlowReservationRequest>(utf8(body)?, &["FlowReservationRequest"])?;
        if !doc.mrid.eq_ignore_ascii_case(&record.document.mrid) {
            return Err(XmlError::values("PUT may not change a request's mRID").into());
        }
        if doc.request_status.request_status != m::REQUEST_CANCELLED {
            return Err(XmlError::values(
                "a request can only be cancelled (RequestStatus 1); post a new one to change it",
            )
            .into());
        }
        let market = self
            .store
            .read()?
            .market()?
            .ok_or(Refusal::Unavailable("the market is not known yet"))?;
        if market
            .gate_of(record.flow.interval)
            .is_none_or(|g| g <= now)
        {
            return Err(
                XmlError::values("the interval's gate has closed: the request is final").into(),
            );
        }
        let flow_id = record.flow.id;
        let state = self
            .immediate(move |w| -> Result<FlowState, Refusal> {
                let mut r = w.flow(flow_id)?.ok_or(Refusal::NotFound)?;
                r.flow.state = match r.flow.state {
                    FlowState::Requested => FlowState::Cancelled,
                    // Placing: the order may be on chain already.
                    FlowState::Placing | FlowState::Placed => FlowState::CancelRequested,
                    s @ (FlowState::CancelRequested | FlowState::Cancelled) => return Ok(s),
                    FlowState::Rejected | FlowState::Filled => {
                        return Err(XmlError::values("the market has answered this request").into())
                    }
                };
                r.flow.changed_at = now;
                w.put_flow(&r)?;
                Ok(r.flow.state)
            })
            .await?;
        tracing::info!(meter = %caller.code, id = flow_id, ?state, "flow reservation cancelled");
        Ok(Reply::no_content(None))
    }

    fn configuration(&self, caller: &MeterEntry) -> Result<Reply, Refusal> {
        let n = self.store.read()?.price_cfgs_of(&caller.lfdi_hex)?.len() as u32;
        Ok(Reply::xml(sep2::to_xml(
            "Configuration",
            &m::Configuration {
                xmlns: sep2::NS.into(),
                href: format!("/edev/{}/cfg", caller.index),
                subscribable: 0,
                poll_rate: 900,
                current_locale: "en-US".into(),
                price_response_cfgs: sep2::ListLink {
                    all: n,
                    href: format!("/edev/{}/cfg/prcfg", caller.index),
                },
                user_device_name: caller.code.chars().take(32).collect(),
            },
        )))
    }

    fn presented_cfgs(&self, caller: &MeterEntry) -> Result<Vec<PriceResponseCfg>, Refusal> {
        Ok(self
            .store
            .read()?
            .price_cfgs_of(&caller.lfdi_hex)?
            .into_iter()
            .map(|(rc, mut cfg)| {
                cfg.xmlns = None;
                cfg.href = Some(format!("/edev/{}/cfg/prcfg/{rc}", caller.index));
                cfg
            })
            .collect())
    }

    fn price_cfg_list(&self, caller: &MeterEntry, query: Option<&str>) -> Result<Reply, Refusal> {
        let page = Page::parse(query)?;
        let items = self.presented_cfgs(caller)?;
        let all = items.len() as u32;
        let items = list_page(items, &page);
        Ok(Reply::xml(sep2::to_xml(
            "PriceResponseCfgList",
            &m::PriceResponseCfgList {
                xmlns: sep2::NS.into(),
                all,
                href: format!("/edev/{}/cfg/prcfg", caller.index),
                results: items.len() as u32,
                items,
            },
        )))
    }

    fn price_cfg(&self, caller: &MeterEntry, rc: &str) -> Result<Reply, Refusal> {
        let href = format!("/edev/{}/cfg/prcfg/{rc}", caller.index);
        let mut cfg = self
            .presented_cfgs(caller)?
            .into_iter()
            .find(|c| c.href.as_deref() == Some(href.as_str()))
            .ok_or(Refusal::NotFound)?;
        cfg.xmlns = sep2::with_ns();
        Ok(Reply::xml(sep2::to_xml("PriceResponseCfg", &cfg)))
    }

    /// POST (to the list) or PUT (to an item): the device's setting for the rate component
    /// its RateComponentLink names, replacing the one it had.
    async fn put_price_cfg(
        self: &std::sync::Arc<Self>,
        caller: &MeterEntry,
        item: Option<&str>,
        body: &[u8],
    ) -> Result<Reply, Refusal> {
        let (_, mut cfg) = sep2::parse::<PriceResponseCfg>(utf8(body)?, &["PriceResponseCfg"])?;
        let rc = market::rate_component_of(&cfg.rate_component.href).ok_or_else(|| {
            XmlError::values(
                "RateComponentLink must name /tp/0/rc/0 (import) or /tp/0/rc/1 (export)",
            )
        })?;
        if let Some(item) = item {
            if item != rc.to_string() {
                if item.parse::<u8>().is_ok_and(|i| u32::from(i) < CFG_ITEMS) {
                    return Err(XmlError::values(
                        "PUT may not move a setting to another rate component",
                    )
                    .into());
                }
                return Err(Refusal::NotFound);
            }
        }
        if cfg.consume_threshold < 0 || cfg.max_reduction_threshold < 0 {
            return Err(
                XmlError::values("price thresholds are not negative on this market").into(),
            );
        }
        cfg.xmlns = None;
        cfg.href = None;
        let who = caller.lfdi_hex.clone();
        let created = self
            .immediate(move |w| -> Result<bool, Refusal> {
                let had = w.price_cfg(&who, rc)?.is_some();
                w.put_price_cfg(&who, rc, &cfg)?;
                Ok(!had)
            })
            .await?;
        let location = format!("/edev/{}/cfg/prcfg/{rc}", caller.index);
        tracing::info!(meter = %caller.code, rate_component = rc, "price response set");
        Ok(if created && item.is_none() {
            Reply::created(location)
        } else {
            Reply::no_content(Some(location))
        })
    }

    async fn delete_price_cfg(
        self: &std::sync::Arc<Self>,
        caller: &MeterEntry,
        rc: &str,
    ) -> Result<Reply, Refusal> {
        let rc: u8 = rc.parse().map_err(|_| Refusal::NotFound)?;
        let who = caller.lfdi_hex.clone();
        let had = self
            .immediate(move |w| -> Result<bool, Refusal> { Ok(w.remove_price_cfg(&who, rc)?) })
            .await?;
        if had {
            Ok(Reply::no_content(None))
        } else {
            Err(Refusal::NotFound)
        }
    }
}
