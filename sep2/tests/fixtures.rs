//! Raw documents a building's EMS sends (tests/fixtures): each follows sep.xsd's element
//! order (checked by `xsd_order`) and parses into what the bridge reads.
use sep2::market::{DrResponse, FlowReservationRequest, PriceResponseCfg};
use sep2::{parse, xsd_order};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every fixture, with its root type.
const FIXTURES: [(&str, &str); 5] = [
    ("flow_reservation_request.xml", "FlowReservationRequest"),
    (
        "flow_reservation_request_sell.xml",
        "FlowReservationRequest",
    ),
    (
        "flow_reservation_request_cancel.xml",
        "FlowReservationRequest",
    ),
    ("dr_response.xml", "DrResponse"),
    ("price_response_cfg.xml", "PriceResponseCfg"),
];

#[test]
fn every_fixture_follows_the_xsd_order() {
    let mut out_of_order = Vec::new();
    for (name, root) in FIXTURES {
        let text = fixture(name);
        // The extension element of another namespace is not ours to check.
        let ours = text.replace("<csipaus:extension>ignored</csipaus:extension>", "");
        if let Err(errors) = xsd_order::check(&ours, root) {
            out_of_order.push(format!("{name}: {errors:?}"));
        }
    }
    assert!(out_of_order.is_empty(), "{out_of_order:?}");
    assert_eq!(FIXTURES.len(), 5);
}

#[test]
fn a_flow_reservation_request_parses_with_its_signs_and_units() {
    let (_, buy): (_, FlowReservationRequest) = parse(
        &fixture("flow_reservation_request.xml"),
        &["FlowReservationRequest"],
    )
    .unwrap();
    assert_eq!(buy.energy_requested.wh(), Some(12_000));
    assert_eq!(buy.power_requested.watts(), Some(48_000));
    assert_eq!(
        (
            buy.interval_requested.start,
            buy.interval_requested.duration
        ),
        (1_800_000_000, 900)
    );
    assert_eq!(buy.request_status.request_status, 0);
    let (_, sell): (_, FlowReservationRequest) = parse(
        &fixture("flow_reservation_request_sell.xml"),
        &["FlowReservationRequest"],
    )
    .unwrap();
    assert_eq!(sell.energy_requested.wh(), Some(-2_500));
    assert_eq!(sell.power_requested.watts(), Some(-10_000));
    assert_eq!(sell.description, None);
    let (_, cancel): (_, FlowReservationRequest) = parse(
        &fixture("flow_reservation_request_cancel.xml"),
        &["FlowReservationRequest"],
    )
    .unwrap();
    assert_eq!(cancel.request_status.request_status, 1);
    assert_eq!(cancel.mrid, buy.mrid);
}

#[test]
fn a_dr_response_and_a_price_response_cfg_parse() {
    let (_, r): (_, DrResponse) = parse(&fixture("dr_response.xml"), &["DrResponse"]).unwrap();
    assert_eq!(
        (r.status, r.duty_cycle.map(|d| d.normal_value)),
        (Some(2), Some(60))
    );
    assert_eq!(r.end_device_lfdi.len(), 40);
    let (_, cfg): (_, PriceResponseCfg) =
        parse(&fixture("price_response_cfg.xml"), &["PriceResponseCfg"]).unwrap();
    assert_eq!(
        (cfg.consume_threshold, cfg.rate_component.href.as_str()),
        (180_000, "/tp/0/rc/0")
    );
}

#[test]
fn a_document_out_of_order_is_caught() {
    // energyRequested after intervalRequested: what a careless client might send.
    let text = fixture("flow_reservation_request.xml");
    let energy = text.find("  <energyRequested>").unwrap();
    let interval = text.find("  <intervalRequested>").unwrap();
    let power = text.find("  <powerRequested>").unwrap();
    let swapped = format!(
        "{}{}{}{}",
        &text[..energy],
        &text[interval..power],
        &text[energy..interval],
        &text[power..]
    );
    let errors = xsd_order::check(&swapped, "FlowReservationRequest").unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("out of the XSD's order")),
        "{errors:?}"
    );
}
