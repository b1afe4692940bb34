//! The keeper interface's market routes: the keeper's market reports (published as the
//! campus tariff), the flow reservations it carries into orders and the outcome it reports
//! back, and the energy office's demand-response events (`bridge dr`).
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use keeper_protocol::market::{
    DrEvent, DrEventList, DrEventRequest, DrEventSummary, FlowRequestList, FlowState, FlowUpdate,
    MarketReport,
};

use super::{empty, json, read_json};
use crate::attestor::Attestor;
use crate::market::{self, TariffSettings};
use crate::server::now;

/// Largest market report or update body.
const MAX_MARKET_BODY: usize = 1 << 20;

fn refused(status: StatusCode, why: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": why.to_string() }))
}

/// The campus's clock (`Store::campus_now`); the bridge's own if the store cannot say.
fn campus_now(attestor: &Attestor) -> i64 {
    let wall = now();
    attestor.store.campus_now(wall).unwrap_or(wall)
}

/// Runs `f` as an immediate write on the store's dedicated thread.
async fn write<T: Send + 'static>(
    attestor: &Arc<Attestor>,
    f: impl FnOnce(&crate::store::Writer) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let store = attestor.store.clone();
    attestor
        .store
        .run_dedicated(move || store.write_immediate(f))
        .await?
}

pub(super) async fn market_report(
    attestor: &Arc<Attestor>,
    body: Incoming,
) -> Response<Full<Bytes>> {
    let report: MarketReport = match read_json(body, MAX_MARKET_BODY, "a MarketReport").await {
        Ok((r, _)) => r,
        Err(reply) => return reply,
    };
    // Gates and events go by the chain's clock (it decides them on chain).
    let wall = now();
    let at = if report.chain_time > 0 {
        report.chain_time
    } else {
        wall
    };
    let result = write(attestor, move |w| {
        w.set_market_clock(at - wall)?;
        market::apply_report(w, &report, at)
    })
    .await;
    match result {
        Ok(changed) => {
            if changed > 0 {
                tracing::info!(changed, "campus tariff updated");
            }
            empty(StatusCode::NO_CONTENT)
        }
        Err(e) => refused(StatusCode::BAD_REQUEST, format!("{e:#}")),
    }
}

pub(super) async fn flow_requests(
    attestor: &Arc<Attestor>,
    limit: usize,
    tariff: TariffSettings,
) -> Response<Full<Bytes>> {
    let a = attestor.clone();
    let list = tokio::task::spawn_blocking(move || -> anyhow::Result<FlowRequestList> {
        let reader = a.store.read()?;
        let market = reader.market()?;
        let mut requests = Vec::new();
        for record in reader.open_flows(limit)? {
            let mut flow = record.flow;
            let cfgs = reader.price_cfgs_of(&flow.lfdi)?;
            flow.price_limit = market::price_limit(&cfgs, flow.side, market.as_ref(), &tariff);
            requests.push(flow);
        }
        Ok(FlowRequestList { requests })
    })
    .await;
    match list {
        Ok(Ok(list)) => json(StatusCode::OK, &list),
        _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// Why an update does not follow the request's state.
#[derive(Debug)]
enum Transition {
    Unknown,
    Conflict(FlowState),
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transition::Unknown => write!(f, "no such request"),
            Transition::Conflict(s) => write!(f, "the request is {s:?}"),
        }
    }
}

impl std::error::Error for Transition {}

/// The state an update takes a request in `state` to, if it follows it.
pub fn next_state(state: FlowState, update: &FlowUpdate) -> Option<FlowState> {
    use FlowState::*;
    Some(match (update, state) {
        (FlowUpdate::Placing { .. }, Requested | Placing) => Placing,
        (FlowUpdate::Placed { .. }, Requested | Placing) => Placed,
        // Cancelled while the keeper placed it: the order is to be cancelled.
        (FlowUpdate::Placed { .. }, Cancelled) => CancelRequested,
        (FlowUpdate::Placed { .. }, s @ (Placed | CancelRequested)) => s,
        (FlowUpdate::Rejected { .. }, Requested | Placing) => Rejected,
        (FlowUpdate::Rejected { .. }, s @ (Cancelled | Rejected)) => s,
        (FlowUpdate::Cancelled, CancelRequested | Cancelled) => Cancelled,
        // A cancellation that came after the gate: the order stands and fills.
        (FlowUpdate::Filled { .. }, Placed | CancelRequested | Filled) => Filled,
        _ => return None,
    })
}

pub(super) async fn flow_update(
    attestor: &Arc<Attestor>,
    id: u64,
    body: Incoming,
) -> Response<Full<Bytes>> {
    let update: FlowUpdate = match read_json(body, MAX_MARKET_BODY, "a FlowUpdate").await {
        Ok((u, _)) => u,
        Err(reply) => return reply,
    };
    let at = now();
    let result = write(attestor, move |w| {
        let mut record = w.flow(id)?.ok_or(Transition::Unknown)?;
        let state = record.flow.state;
        let next = next_state(state, &update).ok_or(Transition::Conflict(state))?;
        if next != state {
            match &update {
                FlowUpdate::Placing {
                    limit_price,
                    quantity_wh,
                } => {
                    record.flow.limit_price = Some(*limit_price);
                    record.flow.quantity_wh = Some((*quantity_wh).min(record.flow.energy_wh));
                }
                FlowUpdate::Placed { limit_price } => record.flow.limit_price = Some(*limit_price),
                FlowUpdate::Rejected { reason } => {
                    record.flow.reason = Some(sep2::bounded(reason.clone()))
                }
                FlowUpdate::Filled { filled_wh, price } => {
                    record.flow.filled_wh = Some((*filled_wh).min(record.flow.energy_wh));
                    record.flow.price = Some(*price);
                }
                FlowUpdate::Cancelled => {}
            }
            record.flow.state = next;
            record.flow.changed_at = at;
            w.put_flow(&record)?;
        }
        Ok(record.flow)
    })
    .await;
    match result {
        Ok(flow) => {
            tracing::info!(id, state = ?flow.state, "flow reservation updated by the keeper");
            json(StatusCode::OK, &flow)
        }
        Err(e) => match e.downcast_ref::<Transition>() {
            Some(Transition::Unknown) => empty(StatusCode::NOT_FOUND),
            Some(t @ Transition::Conflict(_)) => refused(StatusCode::CONFLICT, t),
            None => empty(StatusCode::INTERNAL_SERVER_ERROR),
        },
    }
}

pub(super) async fn dr_events(attestor: &Arc<Attestor>) -> Response<Full<Bytes>> {
    let a = attestor.clone();
    let list = tokio::task::spawn_blocking(move || -> anyhow::Result<DrEventList> {
        let reader = a.store.read()?;
        let mut events = Vec::new();
        for event in reader.dr_events()?.into_iter().rev() {
            // Each building's latest response.
            let mut latest: std::collections::BTreeMap<String, _> = Default::default();
            for r in reader.dr_responses(event.id)? {
                latest.insert(r.lfdi.clone(), r);
            }
            events.push(DrEventSummary {
                event,
                responses: latest.into_values().collect(),
            });
        }
        Ok(DrEventList { events })
    })
    .await;
    match list {
        Ok(Ok(list)) => json(StatusCode::OK, &list),
        _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

pub(super) async fn dr_issue(
    attestor: &Arc<Attestor>,
    body: Incoming,
    tariff: TariffSettings,
) -> Response<Full<Bytes>> {
    let request: DrEventRequest = match read_json(body, MAX_MARKET_BODY, "a DrEventRequest").await {
        Ok((r, _)) => r,
        Err(reply) => return reply,
    };
    let at = campus_now(attestor);
    if let Err(why) = market::check_dr_request(&request, at) {
        return refused(StatusCode::BAD_REQUEST, why);
    }
    let result = write(attestor, move |w| {
        let mut event = w.add_dr_event(DrEvent {
            id: 0,
            mrid: String::new(),
            created_at: at,
            request,
            cancelled_at: None,
            version: 0,
        })?;
        event.mrid = sep2::market::mrid(
            sep2::market::MridKind::EndDeviceControl,
            event.id,
            tariff.pen,
        );
        w.put_dr_event(&event)?;
        Ok(event)
    })
    .await;
    match result {
        Ok(event) => {
            tracing::info!(
                id = event.id,
                start = event.request.start,
                duration_s = event.request.duration_s,
                "demand-response event issued"
            );
            json(StatusCode::OK, &event)
        }
        Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

pub(super) async fn dr_cancel(attestor: &Arc<Attestor>, id: u64) -> Response<Full<Bytes>> {
    let at = campus_now(attestor);
    let result = write(attestor, move |w| {
        let mut event = w.dr_event(id)?.ok_or(Transition::Unknown)?;
        if !market::dr_current(&event, at) {
            return Ok(Err(event));
        }
        event.cancelled_at = Some(at);
        event.version = event.version.wrapping_add(1);
        w.put_dr_event(&event)?;
        Ok(Ok(event))
    })
    .await;
    match result {
        Ok(Ok(event)) => {
            tracing::info!(id, "demand-response event cancelled");
            json(StatusCode::OK, &event)
        }
        Ok(Err(_)) => refused(
            StatusCode::CONFLICT,
            "the event is over or already cancelled",
        ),
        Err(e) if e.downcast_ref::<Transition>().is_some() => empty(StatusCode::NOT_FOUND),
        Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FlowState::*;

    #[test]
    fn updates_follow_the_requests_state() {
        let placed = FlowUpdate::Placed { limit_price: 1 };
        let filled = FlowUpdate::Filled {
            filled_wh: 1,
            price: 1,
        };
        let rejected = FlowUpdate::Rejected { reason: "x".into() };
        let placing = FlowUpdate::Placing {
            limit_price: 1,
            quantity_wh: 1,
        };
        assert_eq!(next_state(Requested, &placing), Some(Placing));
        assert_eq!(next_state(Placing, &placed), Some(Placed));
        assert_eq!(next_state(Placing, &rejected), Some(Rejected));
        assert_eq!(next_state(Cancelled, &placing), None);
        assert_eq!(next_state(Requested, &placed), Some(Placed));
        assert_eq!(next_state(Cancelled, &placed), Some(CancelRequested));
        assert_eq!(next_state(Requested, &rejected), Some(Rejected));
        assert_eq!(next_state(Cancelled, &rejected), Some(Cancelled));
        assert_eq!(
            next_state(CancelRequested, &FlowUpdate::Cancelled),
            Some(Cancelled)
        );
        assert_eq!(next_state(Placed, &FlowUpdate::Cancelled), None);
        assert_eq!(next_state(Placed, &filled), Some(Filled));
        assert_eq!(next_state(CancelRequested, &filled), Some(Filled));
        assert_eq!(next_state(Requested, &filled), None);
        assert_eq!(next_state(Filled, &placed), None);
        assert_eq!(next_state(Rejected, &filled), None);
    }
}
