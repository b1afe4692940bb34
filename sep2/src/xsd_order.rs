//! The element sequences of sep.xsd (IEEE 2030.5-2018, schema 2.1.0) for the documents we
//! serve and accept, flattened (base types' elements first), and a checker that walks a
//! document and refuses any element out of its type's order, unknown to it, or missing
//! when required. Transcribed from the schema's sequences (names, order and occurrence
//! only); tests run it over every document the bridge serves and every fixture a client
//! sends.
use quick_xml::events::Event;

/// One element of a sequence: its name, whether it is required, whether it repeats, and
/// the type of its content when that is checked too.
#[derive(Clone, Copy, Debug)]
pub struct Element {
    pub name: &'static str,
    pub required: bool,
    pub repeats: bool,
    pub of_type: Option<&'static str>,
}

const fn opt(name: &'static str) -> Element {
    Element {
        name,
        required: false,
        repeats: false,
        of_type: None,
    }
}
const fn req(name: &'static str) -> Element {
    Element {
        name,
        required: true,
        repeats: false,
        of_type: None,
    }
}
const fn opt_of(name: &'static str, of_type: &'static str) -> Element {
    Element {
        name,
        required: false,
        repeats: false,
        of_type: Some(of_type),
    }
}
const fn req_of(name: &'static str, of_type: &'static str) -> Element {
    Element {
        name,
        required: true,
        repeats: false,
        of_type: Some(of_type),
    }
}
const fn many_of(name: &'static str, of_type: &'static str) -> Element {
    Element {
        name,
        required: false,
        repeats: true,
        of_type: Some(of_type),
    }
}

const IDENTIFIED: [Element; 3] = [req("mRID"), opt("description"), opt("version")];
const FSA_BASE: [Element; 10] = [
    opt("CustomerAccountListLink"),
    opt("DemandResponseProgramListLink"),
    opt("DERProgramListLink"),
    opt("FileListLink"),
    opt("MessagingProgramListLink"),
    opt("PrepaymentListLink"),
    opt("ResponseSetListLink"),
    opt("TariffProfileListLink"),
    opt("TimeLink"),
    opt("UsagePointListLink"),
];
const EVENT: [Element; 6] = [
    req("mRID"),
    opt("description"),
    opt("version"),
    req("creationTime"),
    req_of("EventStatus", "EventStatus"),
    req_of("interval", "DateTimeInterval"),
];

/// The flattened sequence of `type_name`, if this module knows it.
pub fn sequence(type_name: &str) -> Option<Vec<Element>> {
    let cat = |parts: &[&[Element]]| parts.concat();
    Some(match type_name {
        "DeviceCapability" => cat(&[
            &FSA_BASE,
            &[
                opt("EndDeviceListLink"),
                opt("MirrorUsagePointListLink"),
                opt("SelfDeviceLink"),
            ],
        ]),
        "EndDevice" => vec![
            opt("ConfigurationLink"),
            opt("DERListLink"),
            opt("deviceCategory"),
            opt("DeviceInformationLink"),
            opt("DeviceStatusLink"),
            opt("FileStatusLink"),
            opt("IPInterfaceListLink"),
            opt("lFDI"),
            opt("LoadShedAvailabilityListLink"),
            opt("LogEventListLink"),
            opt("PowerStatusLink"),
            req("sFDI"),
            req("changedTime"),
            opt("enabled"),
            opt("FlowReservationRequestListLink"),
            opt("FlowReservationResponseListLink"),
            opt("FunctionSetAssignmentsListLink"),
            opt("postRate"),
            opt("RegistrationLink"),
            opt("SubscriptionListLink"),
        ],
        "EndDeviceList" => vec![many_of("EndDevice", "EndDevice")],
        "FunctionSetAssignments" => cat(&[&FSA_BASE, &IDENTIFIED]),
        "FunctionSetAssignmentsList" => {
            vec![many_of("FunctionSetAssignments", "FunctionSetAssignments")]
        }
        "Configuration" => vec![
            req("currentLocale"),
            opt("PowerConfiguration"),
            opt("PriceResponseCfgListLink"),
            opt("TimeConfiguration"),
            req("userDeviceName"),
        ],
        "PriceResponseCfg" => vec![
            req("consumeThreshold"),
            req("maxReductionThreshold"),
            req("RateComponentLink"),
        ],
        "PriceResponseCfgList" => vec![many_of("PriceResponseCfg", "PriceResponseCfg")],
        "TariffProfile" => cat(&[
            &IDENTIFIED,
            &[
                opt("currency"),
                opt("pricePowerOfTenMultiplier"),
                req("primacy"),
                opt("rateCode"),
                opt("RateComponentListLink"),
                req("serviceCategoryKind"),
            ],
        ]),
        "TariffProfileList" => vec![many_of("TariffProfile", "TariffProfile")],
        "RateComponent" => cat(&[
            &IDENTIFIED,
            &[
                opt("ActiveTimeTariffIntervalListLink"),
                opt("flowRateEndLimit"),
                opt("flowRateStartLimit"),
                req("ReadingTypeLink"),
                req("roleFlags"),
                req("TimeTariffIntervalListLink"),
            ],
        ]),
        "RateComponentList" => vec![many_of("RateComponent", "RateComponent")],
        "TimeTariffInterval" => cat(&[
            &EVENT,
            &[
                opt("randomizeDuration"),
                opt("randomizeStart"),
                opt("ConsumptionTariffIntervalListLink"),
                req("touTier"),
            ],
        ]),
        "TimeTariffIntervalList" => vec![many_of("TimeTariffInterval", "TimeTariffInterval")],
        "ConsumptionTariffInterval" => vec![
            req("consumptionBlock"),
            Element {
                name: "EnvironmentalCost",
                required: false,
                repeats: true,
                of_type: None,
            },
            opt("price"),
            req("startValue"),
        ],
        "ConsumptionTariffIntervalList" => vec![many_of(
            "ConsumptionTariffInterval",
            "ConsumptionTariffInterval",
        )],
        "ReadingType" => vec![
            opt("accumulationBehaviour"),
            opt("calorificValue"),
            opt("commodity"),
            opt("conversionFactor"),
            opt("dataQualifier"),
            opt("flowDirection"),
            opt("intervalLength"),
            opt("kind"),
            opt("maxNumberOfIntervals"),
            opt("numberOfConsumptionBlocks"),
            opt("numberOfTouTiers"),
            opt("phase"),
            opt("powerOfTenMultiplier"),
            opt("subIntervalLength"),
            opt("supplyLimit"),
            opt("tieredConsumptionBlocks"),
            opt("uom"),
        ],
        "EventStatus" => vec![
            req("currentStatus"),
            req("dateTime"),
            req("potentiallySuperseded"),
            opt("potentiallySupersededTime"),
            opt("reason"),
        ],
        "DateTimeInterval" => vec![req("duration"), req("start")],
        "SignedRealEnergy" | "ActivePower" => vec![req("multiplier"), req("value")],
        "RequestStatus" => vec![req("dateTime"), req("requestStatus")],
        "FlowReservationRequest" => cat(&[
            &IDENTIFIED,
            &[
                req("creationTime"),
                opt("durationRequested"),
                req_of("energyRequested", "SignedRealEnergy"),
                req_of("intervalRequested", "DateTimeInterval"),
                req_of("powerRequested", "ActivePower"),
                req_of("RequestStatus", "RequestStatus"),
            ],
        ]),
        "FlowReservationRequestList" => {
            vec![many_of("FlowReservationRequest", "FlowReservationRequest")]
        }
        "FlowReservationResponse" => cat(&[
            &EVENT,
            &[
                req_of("energyAvailable", "SignedRealEnergy"),
                req_of("powerAvailable", "ActivePower"),
                req("subject"),
            ],
        ]),
        "FlowReservationResponseList" => {
            vec![many_of(
                "FlowReservationResponse",
                "FlowReservationResponse",
            )]
        }
        "DemandResponseProgram" => cat(&[
            &IDENTIFIED,
            &[
                opt("ActiveEndDeviceControlListLink"),
                opt("availabilityUpdatePercentChangeThreshold"),
                opt("availabilityUpdatePowerChangeThreshold"),
                opt("EndDeviceControlListLink"),
                req("primacy"),
            ],
        ]),
        "DemandResponseProgramList" => {
            vec![many_of("DemandResponseProgram", "DemandResponseProgram")]
        }
        "EndDeviceControl" => cat(&[
            &EVENT,
            &[
                opt("randomizeDuration"),
                opt("randomizeStart"),
                opt("ApplianceLoadReduction"),
                req("deviceCategory"),
                req("drProgramMandatory"),
                opt_of("DutyCycle", "DutyCycle"),
                req("loadShiftForward"),
                opt_of("Offset", "Offset"),
                opt("overrideDuration"),
                opt("SetPoint"),
                opt_of("TargetReduction", "TargetReduction"),
            ],
        ]),
        "EndDeviceControlList" => vec![many_of("EndDeviceControl", "EndDeviceControl")],
        "DutyCycle" => vec![req("normalValue")],
        "Offset" => vec![
            opt("coolingOffset"),
            opt("heatingOffset"),
            opt("loadAdjustmentPercentageOffset"),
        ],
        "TargetReduction" => vec![req("type"), req("value")],
        "ResponseSet" => cat(&[&IDENTIFIED, &[opt("ResponseListLink")]]),
        "ResponseSetList" => vec![many_of("ResponseSet", "ResponseSet")],
        "DrResponse" => vec![
            opt("createdDateTime"),
            req("endDeviceLFDI"),
            opt("status"),
            req("subject"),
            opt("ApplianceLoadReduction"),
            opt("AppliedTargetReduction"),
            opt_of("DutyCycle", "DutyCycle"),
            opt_of("Offset", "Offset"),
            opt("overrideDuration"),
            opt("SetPoint"),
        ],
        // Items are DrResponses here (`xsi:type`).
        "ResponseList" => vec![many_of("Response", "DrResponse")],
        "Error" => vec![opt("maxRetryDuration"), req("reasonCode")],
        _ => return None,
    })
}

/// An element, its child elements and its text.
#[derive(Debug)]
struct Node {
    name: String,
    children: Vec<Node>,
    text: String,
}

/// Elements whose type is a bounded string (String32), checked for their length.
const STRING32: [&str; 2] = ["description", "userDeviceName"];

fn local(e: &quick_xml::events::BytesStart) -> String {
    e.local_name().into_inner().to_string()
}

fn tree(xml: &str) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => stack.push(Node {
                name: local(&e),
                children: Vec::new(),
                text: String::new(),
            }),
            Event::Text(t) => {
                if let Some(node) = stack.last_mut() {
                    let text: &str = &t;
                    node.text.push_str(text);
                }
            }
            Event::Empty(e) => {
                let node = Node {
                    name: local(&e),
                    children: Vec::new(),
                    text: String::new(),
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced document")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::Eof => return Err("document ends early".into()),
            _ => {}
        }
    }
}

fn check_node(node: &Node, type_name: &str, path: &str, errors: &mut Vec<String>) {
    let Some(seq) = sequence(type_name) else {
        errors.push(format!("{path}: no sequence for type {type_name}"));
        return;
    };
    let mut at = 0usize;
    let mut seen = vec![0usize; seq.len()];
    for child in &node.children {
        let Some(found) = seq
            .iter()
            .enumerate()
            .skip(at)
            .find(|(_, e)| e.name == child.name)
            .map(|(i, _)| i)
        else {
            let known = seq.iter().any(|e| e.name == child.name);
            errors.push(format!(
                "{path}/{}: {}",
                child.name,
                if known {
                    "out of the XSD's order"
                } else {
                    "not an element of this type"
                }
            ));
            continue;
        };
        seen[found] += 1;
        if STRING32.contains(&child.name.as_str()) && child.text.chars().count() > 32 {
            errors.push(format!("{path}/{}: longer than 32 characters", child.name));
        }
        if seen[found] > 1 && !seq[found].repeats {
            errors.push(format!("{path}/{}: repeated", child.name));
        }
        at = found;
        if let Some(inner) = seq[found].of_type {
            check_node(child, inner, &format!("{path}/{}", child.name), errors);
        }
    }
    for (element, count) in seq.iter().zip(&seen) {
        if element.required && *count == 0 {
            errors.push(format!("{path}: missing required {}", element.name));
        }
    }
}

/// Checks `xml` (a document whose root is of type `type_name`) against the XSD's order.
pub fn check(xml: &str, type_name: &str) -> Result<(), Vec<String>> {
    let root = tree(xml).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    check_node(&root, type_name, &root.name, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_refuses_order_unknown_missing_and_repeated_elements() {
        let ok = r#"<RequestStatus xmlns="urn:ieee:std:2030.5:ns"><dateTime>1</dateTime><requestStatus>0</requestStatus></RequestStatus>"#;
        assert_eq!(check(ok, "RequestStatus"), Ok(()));
        let swapped = r#"<RequestStatus><requestStatus>0</requestStatus><dateTime>1</dateTime></RequestStatus>"#;
        assert!(check(swapped, "RequestStatus").unwrap_err()[0].contains("out of the XSD's order"));
        let unknown = r#"<RequestStatus><dateTime>1</dateTime><foo/><requestStatus>0</requestStatus></RequestStatus>"#;
        assert!(check(unknown, "RequestStatus").unwrap_err()[0].contains("not an element"));
        let missing = r#"<RequestStatus><dateTime>1</dateTime></RequestStatus>"#;
        assert!(check(missing, "RequestStatus").unwrap_err()[0].contains("missing required"));
        let twice = r#"<RequestStatus><dateTime>1</dateTime><dateTime>1</dateTime><requestStatus>0</requestStatus></RequestStatus>"#;
        assert!(check(twice, "RequestStatus").unwrap_err()[0].contains("repeated"));
        // Nested types are checked too.
        let nested = r#"<FlowReservationRequest><mRID>1</mRID><creationTime>1</creationTime><energyRequested><value>1</value><multiplier>0</multiplier></energyRequested><intervalRequested><duration>1</duration><start>1</start></intervalRequested><powerRequested><multiplier>0</multiplier><value>1</value></powerRequested><RequestStatus><dateTime>1</dateTime><requestStatus>0</requestStatus></RequestStatus></FlowReservationRequest>"#;
        let errors = check(nested, "FlowReservationRequest").unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("energyRequested/multiplier")),
            "{errors:?}"
        );
    }
}
