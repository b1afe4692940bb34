//! Demand response (`/dr/...`) and responses (`/rsps/...`): the campus's one
//! DemandResponseProgram, whose EndDeviceControls the energy office issues (`bridge dr`),
//! and the response set every device posts its DrResponses to (the events' `replyTo`).
//! A device reads and answers as itself: a response naming another device is refused.
use keeper_protocol::market::{DrEvent, DrResponseRecord};
use sep2::market::{self as m, DrResponse};
use sep2::XmlError;

use super::{list_page, Page, Refusal, Reply, Service};
use crate::directory::MeterEntry;
use crate::market;

/// Responses one device may post to one event (received, started, completed, and a few
/// changes of mind).
pub const MAX_RESPONSES_PER_EVENT: usize = 16;

/// EndDeviceControl list order: interval start ascending, creationTime descending, mRID
/// descending.
fn event_order(a: &DrEvent, b: &DrEvent) -> std::cmp::Ordering {
    let mrid = |e: &DrEvent| m::parse_mrid(&e.mrid).unwrap_or(0);
    a.request
        .start
        .cmp(&b.request.start)
        .then(b.created_at.cmp(&a.created_at))
        .then(mrid(b).cmp(&mrid(a)))
}

impl Service {
    /// `/dr/...`: `rest` after `dr`.
    pub(super) fn demand_response(
        &self,
        rest: &[&str],
        query: Option<&str>,
        now: i64,
    ) -> Result<Reply, Refusal> {
        let t = &self.settings.tariff;
        let mut events = self.store.read()?.dr_events()?;
        events.sort_by(event_order);
        let active = events.iter().filter(|e| market::dr_active(e, now)).count() as u32;
        Ok(Reply::xml(match rest {
            [] => {
                let page = Page::parse(query)?;
                let items = list_page(
                    vec![market::demand_response_program(
                        events.len() as u32,
                        active,
                        t,
                    )],
                    &page,
                );
                sep2::to_xml(
                    "DemandResponseProgramList",
                    &m::DemandResponseProgramList {
                        xmlns: sep2::NS.into(),
                        all: 1,
                        href: "/dr".into(),
                        results: items.len() as u32,
                        subscribable: 0,
                        poll_rate: 300,
                        items,
                    },
                )
            }
            ["0"] => {
                let mut p = market::demand_response_program(events.len() as u32, active, t);
                p.xmlns = sep2::with_ns();
                sep2::to_xml("DemandResponseProgram", &p)
            }
            ["0", list @ ("edc" | "actedc")] => {
                let page = Page::parse(query)?;
                let chosen: Vec<&DrEvent> = events
                    .iter()
                    .filter(|e| *list == "edc" || market::dr_active(e, now))
                    .filter(|e| page.after.is_none_or(|a| e.request.start >= a))
                    .collect();
                let all = chosen.len() as u32;
                let items = list_page(
                    chosen
                        .into_iter()
                        .map(|e| market::end_device_control(e, now))
                        .collect(),
                    &page,
                );
                sep2::to_xml(
                    "EndDeviceControlList",
                    &m::EndDeviceControlList {
                        xmlns: sep2::NS.into(),
                        all,
                        href: format!("/dr/0/{list}"),
                        results: items.len() as u32,
                        subscribable: 0,
                        items,
                    },
                )
            }
            ["0", "edc", id] => {
                let id: u64 = id.parse().map_err(|_| Refusal::NotFound)?;
                let e = events
                    .iter()
                    .find(|e| e.id == id)
                    .ok_or(Refusal::NotFound)?;
                let mut doc = market::end_device_control(e, now);
                doc.xmlns = sep2::with_ns();
                sep2::to_xml("EndDeviceControl", &doc)
            }
            _ => return Err(Refusal::NotFound),
        }))
    }

    fn response_set(&self) -> m::ResponseSet {
        m::ResponseSet {
            xmlns: None,
            href: "/rsps/0".into(),
            mrid: m::mrid(m::MridKind::ResponseSet, 0, self.settings.tariff.pen),
            description: "Campus demand response".into(),
            responses: sep2::ListLink {
                all: 0,
                href: "/rsps/0/rsp".into(),
            },
        }
    }

    /// `/rsps/...`: `rest` after `rsps`.
    pub(super) async fn responses(
        self: &std::sync::Arc<Self>,
        caller: &MeterEntry,
        method: &str,
        rest: &[&str],
        query: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Reply, Refusal> {
        match (rest, method) {
            ([], "GET") => {
                let page = Page::parse(query)?;
                let items = list_page(vec![self.response_set()], &page);
                Ok(Reply::xml(sep2::to_xml(
                    "ResponseSetList",
                    &m::ResponseSetList {
                        xmlns: sep2::NS.into(),
                        all: 1,
                        href: "/rsps".into(),
                        results: items.len() as u32,
                        poll_rate: 900,
                        items,
                    },
                )))
            }
            ([], _) => Ok(Reply::method_not_allowed("GET, HEAD")),
            (["0"], "GET") => {
                let mut set = self.response_set();
                set.xmlns = sep2::with_ns();
                set.responses.all = self.own_responses(caller)?.len() as u32;
                Ok(Reply::xml(sep2::to_xml("ResponseSet", &set)))
            }
            (["0"], _) => Ok(Reply::method_not_allowed("GET, HEAD")),
            (["0", "rsp"], "GET") => {
                let page = Page::parse(query)?;
                let mut own = self.own_responses(caller)?;
                // createdDateTime descending, then endDeviceLFDI ascending (one device here).
                own.sort_by_key(|r| std::cmp::Reverse(r.0.created_at));
                let all = own.len() as u32;
                let items = list_page(own, &page)
                    .into_iter()
                    .map(|(r, subject)| DrResponse {
                        xmlns: None,
                        xsi_type: Some("DrResponse".into()),
                        href: None,
                        created_date_time: Some(r.created_at),
                        end_device_lfdi: r.lfdi.clone(),
                        status: (r.status != 0).then_some(r.status),
                        subject,
                        duty_cycle: r.duty_cycle_pct.map(|d| m::DutyCycle { normal_value: d }),
                        offset: r.reduce_percent.map(|p| m::Offset {
                            load_adjustment_percentage_offset: u16::from(p) * 100,
                        }),
                        override_duration: None,
                    })
                    .collect::<Vec<_>>();
                Ok(Reply::xml(sep2::to_xml(
                    "ResponseList",
                    &m::ResponseList {
                        xmlns: sep2::NS.into(),
                        xmlns_xsi: m::XSI.into(),
                        all,
                        href: "/rsps/0/rsp".into(),
                        results: items.len() as u32,
                        items,
                    },
                )))
            }
            (["0", "rsp"], "POST") => self.post_dr_response(caller, body, now).await,
            (["0", "rsp"], _) => Ok(Reply::method_not_allowed("GET, HEAD, POST")),
            _ => Err(Refusal::NotFound),
        }
    }

    /// The caller's responses, each with its event's mRID.
    fn own_responses(
        &self,
        caller: &MeterEntry,
    ) -> Result<Vec<(DrResponseRecord, String)>, Refusal> {
        let reader = self.store.read()?;
        let mut out = Vec::new();
        for e in reader.dr_events()? {
            for r in reader.dr_responses_of(e.id, &caller.lfdi_hex)? {
                out.push((r, e.mrid.clone()));
            }
        }
        Ok(out)
    }

    async fn post_dr_response(
        self: &std::sync::Arc<Self>,
        caller: &MeterEntry,
        body: &[u8],
        now: i64,
    ) -> Result<Reply, Refusal> {
        let text = std::str::from_utf8(body).map_err(|_| XmlError::format("body is not UTF-8"))?;
        let (_, posted) = sep2::parse::<DrResponse>(text, &["DrResponse", "Response"])?;
        let lfdi = sep2::parse_hex(&posted.end_device_lfdi, 20)
            .filter(|b| b.len() == 20)
            .ok_or_else(|| XmlError::values("endDeviceLFDI is not an LFDI"))?;
        if lfdi != caller.lfdi {
            return Err(Refusal::Forbidden("a response names another device".into()));
        }
        let subject = m::parse_mrid(&posted.subject)
            .ok_or_else(|| XmlError::values("subject is not an mRID"))?;
        let event = self
            .store
            .read()?
            .dr_events()?
            .into_iter()
            .find(|e| m::parse_mrid(&e.mrid) == Some(subject))
            .ok_or_else(|| XmlError::values("subject names no event of this program"))?;
        let record = DrResponseRecord {
            event: event.id,
            lfdi: caller.lfdi_hex.clone(),
            code: caller.code.clone(),
            status: posted.status.unwrap_or(0),
            created_at: posted.created_date_time.unwrap_or(now),
            received_at: now,
            duty_cycle_pct: posted.duty_cycle.map(|d| d.normal_value),
            reduce_percent: posted
                .offset
                .map(|o| (o.load_adjustment_percentage_offset / 100).min(100) as u8),
        };
        let status = record.status;
        self.immediate(move |w| -> Result<(), Refusal> {
            if w.dr_response_count(record.event, &record.lfdi)? >= MAX_RESPONSES_PER_EVENT {
                return Err(XmlError::limit(format!(
                    "at most {MAX_RESPONSES_PER_EVENT} responses per device per event"
                ))
                .into());
            }
            Ok(w.add_dr_response(&record)?)
        })
        .await?;
        self.metrics.dr_responses.inc(match status {
            m::RESPONSE_RECEIVED => "received",
            m::RESPONSE_STARTED => "started",
            m::RESPONSE_COMPLETED => "completed",
            m::RESPONSE_OPTED_OUT => "opted_out",
            _ => "other",
        });
        tracing::info!(meter = %caller.code, event = event.id, status, "demand-response answered");
        Ok(Reply::created("/rsps/0/rsp".into()))
    }
}
