//! The campus market over IEEE 2030.5, over real HTTPS with client certificates: Pricing
//! (cleared and indicative prices, versions, paging with s/a/l), FlowReservation (judged,
//! stored, carried by the keeper, cancelled before the gate, answered), PriceResponseCfg,
//! and DRLC (events the energy office issues, responses the devices post). Every document
//! served is checked against sep.xsd's element order; every bad request gets 400 with its
//! reasonCode and changes nothing; another device's resources are 403.
mod common;

use common::*;
use keeper_protocol::market::{
    ClearedInterval, DrEvent, DrEventList, DrEventRequest, FlowRequest, FlowRequestList, FlowSide,
    FlowState, FlowUpdate, MarketInfo, MarketReport,
};
use keeper_protocol::Route;
use sep2::xsd_order;

fn operator(b: &TestBridge) -> bridge::config::BridgeConfig {
    let mut config = b.config.clone();
    config.keeper_listen = b.running.keeper_addr;
    config
}

/// A keeper request: its status and body.
async fn keeper(b: &TestBridge, route: Route, body: Option<String>) -> (u16, String) {
    let answer = bridge::admin::request(&operator(b), route, body)
        .await
        .unwrap();
    (answer.status, answer.body)
}

/// A 15-minute market that started ten intervals before the current one (gate at the
/// interval's start, four intervals ahead), and the current interval.
fn market_now() -> (MarketInfo, u64) {
    let now = now();
    let market = MarketInfo {
        start_time: now - now % 900 - 10 * 900,
        interval_s: 900,
        gate_lead_s: 0,
        horizon: 4,
        min_price: 1_000,
        price_tick: 1_000,
        ticks: 512,
        fee_bps: 50,
        min_quantity_wh: 1,
    };
    (market, 10)
}

async fn report(b: &TestBridge, market: MarketInfo, cleared: Vec<ClearedInterval>) {
    let body = serde_json::to_string(&MarketReport {
        market,
        cleared,
        chain_time: 0,
    })
    .unwrap();
    let (status, text) = keeper(b, Route::Market, Some(body)).await;
    assert_eq!(status, 204, "{text}");
}

fn field<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

fn fields<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    xml.match_indices(&open)
        .map(|(i, _)| {
            let start = i + open.len();
            &xml[start..start + xml[start..].find('<').unwrap()]
        })
        .collect()
}

fn reason_code(body: &str) -> Option<u8> {
    field(body, "reasonCode").and_then(|c| c.parse().ok())
}

/// Asserts that `body` follows the XSD's order for `root`.
fn in_order(body: &str, root: &str) {
    if let Err(errors) = xsd_order::check(body, root) {
        panic!("{root} out of the XSD's order: {errors:?}\n{body}");
    }
}

fn frq_xml(mrid: &str, start: i64, wh: i64, watts: i64, status: u8) -> String {
    let power = sep2::market::ActivePower::of_watts(watts);
    format!(
        r#"<FlowReservationRequest xmlns="urn:ieee:std:2030.5:ns"><mRID>{mrid}</mRID><creationTime>{}</creationTime><energyRequested><multiplier>0</multiplier><value>{wh}</value></energyRequested><intervalRequested><duration>900</duration><start>{start}</start></intervalRequested><powerRequested><multiplier>{}</multiplier><value>{}</value></powerRequested><RequestStatus><dateTime>{}</dateTime><requestStatus>{status}</requestStatus></RequestStatus></FlowReservationRequest>"#,
        now(),
        power.multiplier,
        power.value,
        now()
    )
}

fn mrid(n: u64) -> String {
    sep2::market::mrid(sep2::market::MridKind::TariffProfile, 1_000 + n, 99)
}

#[tokio::test]
async fn pricing_publishes_cleared_and_indicative_prices_with_versions_and_paging() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    // Discovery: DeviceCapability and the device's FunctionSetAssignments link the tariff.
    let dcap = eng.get("/dcap").await.unwrap();
    in_order(&dcap.body, "DeviceCapability");
    assert!(dcap
        .body
        .contains(r#"<TariffProfileListLink all="1" href="/tp"/>"#));
    let fsa = eng.get("/edev/0/fsa").await.unwrap();
    in_order(&fsa.body, "FunctionSetAssignmentsList");
    assert!(
        fsa.body
            .contains(r#"<TariffProfileListLink all="1" href="/tp"/>"#),
        "{}",
        fsa.body
    );
    let one = eng.get("/edev/0/fsa/0").await.unwrap();
    in_order(&one.body, "FunctionSetAssignments");
    // Before the keeper reports the market: the tariff, no intervals.
    let tp = eng.get("/tp").await.unwrap();
    in_order(&tp.body, "TariffProfileList");
    assert!(
        tp.body.contains("<currency>764</currency>")
            && tp
                .body
                .contains("<pricePowerOfTenMultiplier>-6</pricePowerOfTenMultiplier>"),
        "{}",
        tp.body
    );
    let empty = eng.get("/tp/0/rc/0/tti").await.unwrap();
    assert!(empty.body.contains(r#"all="0""#), "{}", empty.body);

    let (market, k) = market_now();
    report(
        &b,
        market,
        vec![
            ClearedInterval {
                interval: k - 2,
                price: 40_000,
                volume_wh: 5_000,
            },
            ClearedInterval {
                interval: k - 1,
                price: 0,
                volume_wh: 0,
            },
        ],
    )
    .await;
    let rc = eng.get("/tp/0/rc?l=5").await.unwrap();
    in_order(&rc.body, "RateComponentList");
    // mRID descending: export (1) before import (0).
    let hrefs: Vec<_> = rc
        .body
        .match_indices("<RateComponent href=\"")
        .map(|(i, _)| &rc.body[i + 21..i + 32])
        .collect();
    assert_eq!(hrefs, ["/tp/0/rc/1\"", "/tp/0/rc/0\""], "{}", rc.body);
    in_order(&eng.get("/tp/0/rc/0").await.unwrap().body, "RateComponent");
    let rt = eng.get("/tp/0/rc/1/rt").await.unwrap();
    in_order(&rt.body, "ReadingType");
    assert!(
        rt.body.contains("<flowDirection>19</flowDirection>") && rt.body.contains("<uom>72</uom>")
    );

    // k - 2, k - 1 cleared; k .. k + 4 indicative at the last traded price.
    let all = eng.get("/tp/0/rc/0/tti?l=20").await.unwrap();
    in_order(&all.body, "TimeTariffIntervalList");
    assert!(
        all.body.contains(r#"all="7""#) && all.body.contains(r#"results="7""#),
        "{}",
        all.body
    );
    let starts: Vec<i64> = fields(&all.body, "start")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let expected: Vec<i64> = (k - 2..=k + 4)
        .map(|i| market.start_of(i).unwrap())
        .collect();
    assert_eq!(starts, expected, "interval start ascending");
    let descriptions = fields(&all.body, "description");
    assert!(
        descriptions[0].starts_with("Cleared: 5000 Wh"),
        "{descriptions:?}"
    );
    assert!(
        descriptions[1].starts_with("Cleared without a trade"),
        "{descriptions:?}"
    );
    assert!(
        descriptions[2..]
            .iter()
            .all(|d| d.starts_with("Indicative")),
        "{descriptions:?}"
    );
    // The current interval is Active, later ones Scheduled.
    assert_eq!(fields(&all.body, "currentStatus")[2..4], ["1", "0"]);
    // Paging: s and l, and a (intervals starting at or after it).
    let page = eng.get("/tp/0/rc/0/tti?s=2&l=2").await.unwrap();
    let starts: Vec<i64> = fields(&page.body, "start")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(starts, expected[2..4]);
    assert!(page.body.contains(r#"all="7""#) && page.body.contains(r#"results="2""#));
    let after = eng
        .get(&format!(
            "/tp/0/rc/0/tti?a={}&l=50",
            market.start_of(k + 1).unwrap()
        ))
        .await
        .unwrap();
    assert!(after.body.contains(r#"all="4""#), "{}", after.body);
    let default_limit = eng.get("/tp/0/rc/0/tti").await.unwrap();
    assert!(default_limit.body.contains(r#"results="1""#));
    // Prices: the clearing price to buy, net of the 0.5 % fee to sell.
    let cti = eng.get(&format!("/tp/0/rc/0/tti/{k}/cti")).await.unwrap();
    in_order(&cti.body, "ConsumptionTariffIntervalList");
    assert_eq!(field(&cti.body, "price"), Some("40000"));
    let sell = eng.get(&format!("/tp/0/rc/1/tti/{k}/cti/1")).await.unwrap();
    in_order(&sell.body, "ConsumptionTariffInterval");
    assert_eq!(field(&sell.body, "price"), Some("39800"));
    let tti = eng.get(&format!("/tp/0/rc/0/tti/{k}")).await.unwrap();
    in_order(&tti.body, "TimeTariffInterval");
    assert_eq!(field(&tti.body, "version"), Some("0"));
    let mrid_k = field(&tti.body, "mRID").unwrap().to_string();
    assert!(
        mrid_k.ends_with("00007ED9"),
        "our PEN in the low 32 bits: {mrid_k}"
    );

    // Interval k clears at 50,000: its version moves, its mRID stays; the indicative ones follow.
    report(
        &b,
        market,
        vec![ClearedInterval {
            interval: k,
            price: 50_000,
            volume_wh: 10,
        }],
    )
    .await;
    let tti = eng.get(&format!("/tp/0/rc/0/tti/{k}")).await.unwrap();
    assert_eq!(
        (field(&tti.body, "version"), field(&tti.body, "mRID")),
        (Some("1"), Some(mrid_k.as_str()))
    );
    assert!(field(&tti.body, "description")
        .unwrap()
        .starts_with("Cleared"));
    let next = eng
        .get(&format!("/tp/0/rc/0/tti/{}/cti/1", k + 1))
        .await
        .unwrap();
    assert_eq!(field(&next.body, "price"), Some("50000"));
    // The same report again changes nothing.
    report(
        &b,
        market,
        vec![ClearedInterval {
            interval: k,
            price: 50_000,
            volume_wh: 10,
        }],
    )
    .await;
    let again = eng.get(&format!("/tp/0/rc/0/tti/{k}")).await.unwrap();
    assert_eq!(field(&again.body, "version"), Some("1"));
    // The active list: the interval in effect now.
    let active = eng.get("/tp/0/rc/0/acttti?l=20").await.unwrap();
    assert!(active.body.contains(r#"all="1""#), "{}", active.body);
    assert_eq!(
        fields(&active.body, "start"),
        [market.start_of(k).unwrap().to_string()]
    );
    // Unknown resources and methods.
    assert_eq!(eng.get("/tp/0/rc/2").await.unwrap().status, 404);
    assert_eq!(
        eng.get(&format!("/tp/0/rc/0/tti/{}", k + 9))
            .await
            .unwrap()
            .status,
        404
    );
    let delete = eng.request("DELETE", "/tp", None).await.unwrap();
    assert_eq!(
        (delete.status, delete.allow.as_deref()),
        (405, Some("GET, HEAD"))
    );
    let bad = eng.get("/tp/0/rc/0/tti?l=x").await.unwrap();
    assert_eq!((bad.status, reason_code(&bad.body)), (400, Some(1)));
}

#[tokio::test]
async fn flow_reservations_are_judged_stored_carried_cancelled_and_answered() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let mut phys = b.meter("PHYS");
    let (market, k) = market_now();
    let start = |i: u64| market.start_of(i).unwrap();
    // Until the keeper reports the market, a request cannot be judged.
    let early = eng
        .post(
            "/edev/0/frq",
            frq_xml(&mrid(1), start(k + 2), 12_000, 48_000, 0),
        )
        .await
        .unwrap();
    assert_eq!(early.status, 503);
    report(
        &b,
        market,
        vec![ClearedInterval {
            interval: k - 1,
            price: 45_000,
            volume_wh: 1_000,
        }],
    )
    .await;

    // The building's price limit to buy: its PriceResponseCfg on the import rate.
    let cfg = |link: &str, threshold: i64| {
        format!(
            r#"<PriceResponseCfg xmlns="urn:ieee:std:2030.5:ns"><consumeThreshold>{threshold}</consumeThreshold><maxReductionThreshold>400000</maxReductionThreshold><RateComponentLink href="{link}"/></PriceResponseCfg>"#
        )
    };
    let posted = eng
        .post("/edev/0/cfg/prcfg", cfg("/tp/0/rc/0", 180_000))
        .await
        .unwrap();
    assert_eq!(
        (posted.status, posted.location.as_deref()),
        (201, Some("/edev/0/cfg/prcfg/0"))
    );
    for (body, code) in [
        (cfg("/tp/0/rc/7", 1), 1),
        (cfg("/tp/0/rc/1", -5), 1),
        (
            "<PriceResponseCfg xmlns=\"urn:ieee:std:2030.5:ns\"><consumeThreshold>x".to_string(),
            0,
        ),
    ] {
        let r = eng.post("/edev/0/cfg/prcfg", body).await.unwrap();
        assert_eq!(
            (r.status, reason_code(&r.body)),
            (400, Some(code)),
            "{}",
            r.body
        );
    }
    let moved = eng
        .request("PUT", "/edev/0/cfg/prcfg/1", Some(cfg("/tp/0/rc/0", 1)))
        .await
        .unwrap();
    assert_eq!(moved.status, 400);
    let list = eng.get("/edev/0/cfg/prcfg?l=5").await.unwrap();
    in_order(&list.body, "PriceResponseCfgList");
    assert!(
        list.body.contains(r#"all="1""#)
            && list
                .body
                .contains("<consumeThreshold>180000</consumeThreshold>")
    );
    let configuration = eng.get("/edev/0/cfg").await.unwrap();
    in_order(&configuration.body, "Configuration");
    assert!(configuration
        .body
        .contains("<userDeviceName>ENG</userDeviceName>"));
    assert_eq!(phys.get("/edev/0/cfg/prcfg").await.unwrap().status, 403);

    // A request to buy 12 kWh at up to 48 kW in interval k + 2.
    let body = frq_xml(&mrid(1), start(k + 2), 12_000, 48_000, 0);
    let created = eng.post("/edev/0/frq", body.clone()).await.unwrap();
    assert_eq!(
        (created.status, created.location.as_deref()),
        (201, Some("/edev/0/frq/1")),
        "{}",
        created.body
    );
    // A retry of the same request is the one stored; the same mRID for another is refused.
    let retry = eng.post("/edev/0/frq", body).await.unwrap();
    assert_eq!(
        (retry.status, retry.location.as_deref()),
        (204, Some("/edev/0/frq/1"))
    );
    let reuse = eng
        .post(
            "/edev/0/frq",
            frq_xml(&mrid(1), start(k + 2), 11_000, 48_000, 0),
        )
        .await
        .unwrap();
    assert_eq!((reuse.status, reason_code(&reuse.body)), (400, Some(1)));
    // Bad requests: 400 with the reason, nothing stored.
    for (body, code) in [
        (
            "<FlowReservationRequest xmlns=\"urn:ieee:std:2030.5:ns\"><mRID>".to_string(),
            0,
        ),
        (
            frq_xml(&mrid(2), start(k + 2), 12_000, 48_000, 0)
                .replace("urn:ieee:std:2030.5:ns", "urn:other"),
            0,
        ),
        (frq_xml(&mrid(2), start(k + 2), 0, 48_000, 0), 1),
        (frq_xml(&mrid(2), start(k + 2) + 60, 100, 1_000, 0), 1),
        (frq_xml(&mrid(2), start(k), 100, 1_000, 0), 1),
        (frq_xml(&mrid(2), start(k + 5), 100, 1_000, 0), 1),
        (frq_xml(&mrid(2), start(k + 2), 100, 900_000, 0), 1),
        (frq_xml(&mrid(2), start(k + 2), 12_001, 48_000, 0), 1),
        (frq_xml(&mrid(2), start(k + 2), 100, 1_000, 1), 1),
    ] {
        let r = eng.post("/edev/0/frq", body.clone()).await.unwrap();
        assert_eq!(
            (r.status, reason_code(&r.body)),
            (400, Some(code)),
            "{body}\n{}",
            r.body
        );
    }
    let list = eng.get("/edev/0/frq?l=10").await.unwrap();
    in_order(&list.body, "FlowReservationRequestList");
    assert!(list.body.contains(r#"all="1""#), "{}", list.body);
    let one = eng.get("/edev/0/frq/1").await.unwrap();
    in_order(&one.body, "FlowReservationRequest");
    let device = eng.get("/edev/0").await.unwrap();
    in_order(&device.body, "EndDevice");
    assert!(
        device
            .body
            .contains(r#"<FlowReservationRequestListLink all="1" href="/edev/0/frq"/>"#),
        "{}",
        device.body
    );
    // Another device: 403 on everything of this one.
    for path in ["/edev/0/frq", "/edev/0/frq/1", "/edev/0/frp", "/edev/0/cfg"] {
        assert_eq!(phys.get(path).await.unwrap().status, 403, "{path}");
    }
    let cancel = frq_xml(&mrid(1), start(k + 2), 12_000, 48_000, 1);
    assert_eq!(
        phys.request("PUT", "/edev/0/frq/1", Some(cancel.clone()))
            .await
            .unwrap()
            .status,
        403
    );
    // Its own device path, another device's request: 403 too.
    assert_eq!(phys.get("/edev/1/frq/1").await.unwrap().status, 403);

    // The keeper sees it with the building's price limit, and places it.
    let (status, text) = keeper(&b, Route::FlowRequests, None).await;
    assert_eq!(status, 200);
    let requests: FlowRequestList = serde_json::from_str(&text).unwrap();
    let r: &FlowRequest = &requests.requests[0];
    assert_eq!(
        (
            r.id,
            r.interval,
            r.side,
            r.energy_wh,
            r.power_w,
            r.state,
            r.price_limit
        ),
        (
            1,
            k + 2,
            FlowSide::Buy,
            12_000,
            48_000,
            FlowState::Requested,
            Some(180_000)
        )
    );
    let update = |u: FlowUpdate| Some(serde_json::to_string(&u).unwrap());
    let (status, text) = keeper(
        &b,
        Route::FlowUpdate(1),
        update(FlowUpdate::Placed {
            limit_price: 180_000,
        }),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<FlowRequest>(&text).unwrap().state,
        FlowState::Placed
    );
    // The building cancels before the gate: the keeper is asked to cancel the order.
    let put = eng
        .request("PUT", "/edev/0/frq/1", Some(cancel.clone()))
        .await
        .unwrap();
    assert_eq!(put.status, 204, "{}", put.body);
    let changed = eng
        .request(
            "PUT",
            "/edev/0/frq/1",
            Some(frq_xml(&mrid(9), start(k + 2), 12_000, 48_000, 1)),
        )
        .await
        .unwrap();
    assert_eq!((changed.status, reason_code(&changed.body)), (400, Some(1)));
    let (_, text) = keeper(&b, Route::FlowRequests, None).await;
    let requests: FlowRequestList = serde_json::from_str(&text).unwrap();
    assert_eq!(requests.requests[0].state, FlowState::CancelRequested);
    let (status, _) = keeper(&b, Route::FlowUpdate(1), update(FlowUpdate::Cancelled)).await;
    assert_eq!(status, 200);
    let read = eng.get("/edev/0/frq/1").await.unwrap();
    assert_eq!(field(&read.body, "requestStatus"), Some("1"));
    let (_, text) = keeper(&b, Route::FlowRequests, None).await;
    assert!(serde_json::from_str::<FlowRequestList>(&text)
        .unwrap()
        .requests
        .is_empty());

    // A sell of 8 kWh, placed and filled at 45,000 (6 kWh): the answer appears at /frp.
    let sell = eng
        .post(
            "/edev/0/frq",
            frq_xml(&mrid(3), start(k + 3), -8_000, -32_000, 0),
        )
        .await
        .unwrap();
    assert_eq!(sell.status, 201);
    let (status, text) = keeper(
        &b,
        Route::FlowUpdate(2),
        update(FlowUpdate::Filled {
            filled_wh: 6_000,
            price: 45_000,
        }),
    )
    .await;
    assert_eq!(status, 409, "a fill needs a placed order: {text}");
    keeper(
        &b,
        Route::FlowUpdate(2),
        update(FlowUpdate::Placed {
            limit_price: 30_000,
        }),
    )
    .await;
    let (status, _) = keeper(
        &b,
        Route::FlowUpdate(2),
        update(FlowUpdate::Filled {
            filled_wh: 6_000,
            price: 45_000,
        }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        keeper(&b, Route::FlowUpdate(99), update(FlowUpdate::Cancelled))
            .await
            .0,
        404
    );
    // A request the keeper could not place is answered too: nothing available, cancelled.
    eng.post(
        "/edev/0/frq",
        frq_xml(&mrid(4), start(k + 4), 500, 2_000, 0),
    )
    .await
    .unwrap();
    keeper(
        &b,
        Route::FlowUpdate(3),
        update(FlowUpdate::Rejected {
            reason: "no price limit".into(),
        }),
    )
    .await;
    let frp = eng.get("/edev/0/frp?l=10").await.unwrap();
    in_order(&frp.body, "FlowReservationResponseList");
    assert!(frp.body.contains(r#"all="2""#), "{}", frp.body);
    let filled = eng.get("/edev/0/frp/2").await.unwrap();
    in_order(&filled.body, "FlowReservationResponse");
    assert_eq!(field(&filled.body, "subject"), Some(mrid(3).as_str()));
    assert!(
        filled.body.contains(
            "<energyAvailable><multiplier>0</multiplier><value>-6000</value></energyAvailable>"
        ),
        "{}",
        filled.body
    );
    // 6 kWh in 15 minutes is 24 kW.
    assert!(
        filled.body.contains(
            "<powerAvailable><multiplier>0</multiplier><value>-24000</value></powerAvailable>"
        ),
        "{}",
        filled.body
    );
    let rejected = eng.get("/edev/0/frp/3").await.unwrap();
    assert_eq!(
        (
            field(&rejected.body, "currentStatus"),
            field(&rejected.body, "reason")
        ),
        (Some("2"), Some("no price limit"))
    );
    assert_eq!(eng.get("/edev/0/frp/1").await.unwrap().status, 404);
    // A request past its gate is final: the market now closes gates 45 minutes ahead.
    let late = eng
        .post(
            "/edev/0/frq",
            frq_xml(&mrid(5), start(k + 4), 100, 1_000, 0),
        )
        .await
        .unwrap();
    assert_eq!(late.status, 201);
    report(
        &b,
        MarketInfo {
            gate_lead_s: 3_600 + 900,
            ..market
        },
        vec![],
    )
    .await;
    let refused = eng
        .request(
            "PUT",
            "/edev/0/frq/4",
            Some(frq_xml(&mrid(5), start(k + 4), 100, 1_000, 1)),
        )
        .await
        .unwrap();
    assert_eq!(
        (refused.status, reason_code(&refused.body)),
        (400, Some(1)),
        "{}",
        refused.body
    );
    report(&b, market, vec![]).await;

    // At most 2 x (horizon + 1) open requests per device: then reasonCode 2.
    let mut n = 10;
    loop {
        let r = eng
            .post(
                "/edev/0/frq",
                frq_xml(&mrid(n), start(k + 1 + n % 4), 100, 1_000, 0),
            )
            .await
            .unwrap();
        if r.status != 201 {
            assert_eq!(
                (r.status, reason_code(&r.body)),
                (400, Some(2)),
                "{}",
                r.body
            );
            break;
        }
        n += 1;
        assert!(n < 30, "no limit");
    }
    let (_, text) = keeper(&b, Route::FlowRequests, Some(String::new())).await;
    assert_eq!(
        serde_json::from_str::<FlowRequestList>(&text)
            .unwrap()
            .requests
            .len(),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_response_events_reach_every_device_and_their_responses_are_kept() {
    let b = TestBridge::start().await;
    let mut eng = b.meter("ENG");
    let mut phys = b.meter("PHYS");
    let config = operator(&b);
    // In effect since a minute ago.
    let request = DrEventRequest {
        start: now() - 60,
        duration_s: 3_600,
        description: "Heat wave".into(),
        duty_cycle_pct: None,
        reduce_percent: Some(20),
        reduce_kw: None,
        mandatory: false,
    };
    let two = DrEventRequest {
        duty_cycle_pct: Some(50),
        ..request.clone()
    };
    assert!(bridge::admin::dr_issue(&config, &two).await.is_err());
    let event: DrEvent = bridge::admin::dr_issue(&config, &request).await.unwrap();
    assert_eq!(event.id, 1);
    let programs = eng.get("/dr").await.unwrap();
    in_order(&programs.body, "DemandResponseProgramList");
    in_order(
        &eng.get("/dr/0").await.unwrap().body,
        "DemandResponseProgram",
    );
    for list in ["/dr/0/edc", "/dr/0/actedc"] {
        let edc = phys.get(list).await.unwrap();
        in_order(&edc.body, "EndDeviceControlList");
        assert!(edc.body.contains(r#"all="1""#), "{}", edc.body);
        assert!(edc
            .body
            .contains("<loadAdjustmentPercentageOffset>2000</loadAdjustmentPercentageOffset>"));
        assert!(
            edc.body.contains(r#"replyTo="/rsps/0/rsp""#)
                && edc.body.contains(r#"responseRequired="03""#)
        );
    }
    let edc = eng.get("/dr/0/edc/1").await.unwrap();
    in_order(&edc.body, "EndDeviceControl");
    assert_eq!(field(&edc.body, "mRID"), Some(event.mrid.as_str()));
    in_order(&eng.get("/rsps").await.unwrap().body, "ResponseSetList");

    let response = |lfdi: &str, subject: &str, status: u8| {
        format!(
            r#"<DrResponse xmlns="urn:ieee:std:2030.5:ns"><createdDateTime>{}</createdDateTime><endDeviceLFDI>{lfdi}</endDeviceLFDI><status>{status}</status><subject>{subject}</subject></DrResponse>"#,
            now() + i64::from(status)
        )
    };
    let eng_lfdi = b.lfdi_hex("ENG");
    for status in [1, 2] {
        let r = eng
            .post("/rsps/0/rsp", response(&eng_lfdi, &event.mrid, status))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.location.as_deref()),
            (201, Some("/rsps/0/rsp")),
            "{}",
            r.body
        );
    }
    // Answering as another device, about no event, or malformed: refused, nothing kept.
    let r = phys
        .post("/rsps/0/rsp", response(&eng_lfdi, &event.mrid, 4))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let r = eng
        .post("/rsps/0/rsp", response(&eng_lfdi, &mrid(77), 1))
        .await
        .unwrap();
    assert_eq!((r.status, reason_code(&r.body)), (400, Some(1)));
    let r = eng
        .post(
            "/rsps/0/rsp",
            "<DrResponse xmlns=\"urn:ieee:std:2030.5:ns\"><status>".into(),
        )
        .await
        .unwrap();
    assert_eq!((r.status, reason_code(&r.body)), (400, Some(0)));
    let own = eng.get("/rsps/0/rsp?l=10").await.unwrap();
    in_order(&own.body, "ResponseList");
    assert!(
        own.body.contains(r#"all="2""#) && own.body.contains(r#"xsi:type="DrResponse""#),
        "{}",
        own.body
    );
    // createdDateTime descending: the later (started) first.
    assert_eq!(fields(&own.body, "status"), ["2", "1"]);
    assert!(phys
        .get("/rsps/0/rsp")
        .await
        .unwrap()
        .body
        .contains(r#"all="0""#));
    // The energy office sees each building's latest response.
    let (status, text) = keeper(&b, Route::DrEvents, None).await;
    assert_eq!(status, 200);
    let events: DrEventList = serde_json::from_str(&text).unwrap();
    let responses = &events.events[0].responses;
    assert_eq!(responses.len(), 1);
    assert_eq!(
        (responses[0].code.as_str(), responses[0].status),
        ("ENG", 2)
    );

    // The operator's commands: issue, list, cancel (exit codes say what happened).
    let operator = Operator::of(&b);
    let run = |args: &[&str]| operator.run(args);
    let text = output_text;
    let out = tokio::task::block_in_place(|| {
        run(&[
            "dr",
            "issue",
            "--minutes",
            "30",
            "--duty-cycle",
            "50",
            "--start",
            "+5",
        ])
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("issued event 2") && text(&out).contains("duty cycle 50 %"),
        "{}",
        text(&out)
    );
    let out = tokio::task::block_in_place(|| run(&["dr", "issue", "--minutes", "30"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("exactly one of"), "{}", text(&out));
    let out = tokio::task::block_in_place(|| run(&["dr", "cancel", "1"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = tokio::task::block_in_place(|| run(&["dr", "cancel", "1"]));
    assert_eq!(out.status.code(), Some(1));
    let out = tokio::task::block_in_place(|| run(&["dr", "list"]));
    assert!(
        text(&out).contains("cancelled at")
            && text(&out).contains("ENG (")
            && text(&out).contains("started"),
        "{}",
        text(&out)
    );
    // The cancellation shows: status Cancelled, version 1; no longer active (nor the event
    // that starts in 5 minutes, listed but not yet in effect).
    let edc = eng.get("/dr/0/edc/1").await.unwrap();
    assert_eq!(
        (
            field(&edc.body, "currentStatus"),
            field(&edc.body, "version")
        ),
        (Some("2"), Some("1"))
    );
    let active = eng.get("/dr/0/actedc").await.unwrap();
    assert!(active.body.contains(r#"all="0""#), "{}", active.body);
    let all = eng.get("/dr/0/edc").await.unwrap();
    assert!(all.body.contains(r#"all="2""#), "{}", all.body);
}
