//! IEEE 2030.5 resources as XML (application/sep+xml, namespace urn:ieee:std:2030.5:ns), shared
//! by the bridge (the server) and the simulator (its clients).
//!
//! Output follows the XSD's element order (struct field order here). Input is read with
//! quick-xml's serde support, which ignores unknown elements and attributes (clients send
//! 2023-schema extras); the root element's name and namespace are checked separately, since
//! quick-xml's serde layer does not look at namespaces.
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};

pub mod market;
pub mod xsd_order;

pub const NS: &str = "urn:ieee:std:2030.5:ns";
pub const MEDIA_TYPE: &str = "application/sep+xml";

/// IEEE 2030.5 Time.quality: 4 = obtained from a level-3 source (an NTP-synchronised host),
/// 7 = intentionally uncoordinated (the host clock is not synchronised).
pub const QUALITY_SYNCHRONISED: u8 = 4;
pub const QUALITY_UNCOORDINATED: u8 = 7;

/// The Time resource's fields other than href and pollRate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    pub current_time: i64,
    /// Standard (non-DST) offset from UTC, seconds.
    pub tz_offset: i32,
    /// What daylight-saving time adds, seconds (0 in a zone without DST).
    pub dst_offset: i32,
    /// This year's daylight-saving period, UTC (both 0 without DST).
    pub dst_start_time: i64,
    pub dst_end_time: i64,
    /// currentTime + tzOffset (+ dstOffset while DST is in effect).
    pub local_time: i64,
    pub quality: u8,
}

/// Why an input document was refused (the `Error` resource's reasonCode, IEEE 2030.5 §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonCode {
    /// Invalid request format.
    Format = 0,
    /// Invalid request values.
    Values = 1,
    /// A resource limit reached (too many requests of a device).
    ResourceLimit = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    pub reason: ReasonCode,
    pub message: String,
}

/// Longest error message kept: messages quote what clients sent, and go to logs.
pub const MAX_ERROR_MESSAGE: usize = 300;

impl XmlError {
    pub fn format(message: impl Into<String>) -> Self {
        XmlError {
            reason: ReasonCode::Format,
            message: bounded(message.into()),
        }
    }
    pub fn values(message: impl Into<String>) -> Self {
        XmlError {
            reason: ReasonCode::Values,
            message: bounded(message.into()),
        }
    }
    pub fn limit(message: impl Into<String>) -> Self {
        XmlError {
            reason: ReasonCode::ResourceLimit,
            message: bounded(message.into()),
        }
    }
}

/// `message`, cut to [`MAX_ERROR_MESSAGE`] bytes.
pub fn bounded(mut message: String) -> String {
    if message.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The root element's local name, after checking it is in the IEEE 2030.5 namespace.
pub fn root_element(body: &str) -> Result<String, XmlError> {
    let mut reader = quick_xml::Reader::from_str(body);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.name();
                let local = name.local_name().as_ref().to_string();
                let wanted_attr = match name.prefix() {
                    Some(p) => format!("xmlns:{}", p.as_ref()),
                    None => "xmlns".to_string(),
                };
                let mut namespace = None;
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| XmlError::format(format!("bad attribute: {e}")))?;
                    if attr.key.as_ref() == wanted_attr {
                        namespace = Some(attr.value.to_string());
                    }
                }
                return match namespace.as_deref() {
                    Some(NS) => Ok(local),
                    Some(other) => Err(XmlError::format(format!("namespace {other} is not {NS}"))),
                    None => Err(XmlError::format(format!(
                        "root element {local} has no {NS} namespace"
                    ))),
                };
            }
            Ok(Event::DocType(_)) => return Err(XmlError::format("DOCTYPE is not allowed")),
            Ok(Event::Eof) => return Err(XmlError::format("empty document")),
            Ok(Event::Text(t)) if !t.as_ref().trim().is_empty() => {
                return Err(XmlError::format("text before the root element"))
            }
            Ok(_) => continue,
            Err(e) => return Err(XmlError::format(format!("malformed XML: {e}"))),
        }
    }
}

/// Parses a document whose root must be `expected` (one of them).
pub fn parse<T: for<'de> Deserialize<'de>>(
    body: &str,
    expected: &[&str],
) -> Result<(String, T), XmlError> {
    let root = root_element(body)?;
    if !expected.contains(&root.as_str()) {
        return Err(XmlError::format(format!(
            "expected {}, got {root}",
            expected.join(" or ")
        )));
    }
    let value = quick_xml::de::from_str(body)
        .map_err(|e| XmlError::format(format!("malformed {root}: {e}")))?;
    Ok((root, value))
}

/// Serialises a resource with its root element name.
pub fn to_xml<T: Serialize>(root: &str, value: &T) -> String {
    let mut out = String::new();
    let ser = quick_xml::se::Serializer::with_root(&mut out, Some(root)).expect("valid root name");
    value.serialize(ser).expect("resources serialise");
    out
}

fn ns() -> String {
    NS.to_string()
}

// ---- HexBinary ----

/// Parses HexBinary (variable width, either case) into at most `max_bytes` bytes.
pub fn parse_hex(text: &str, max_bytes: usize) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.is_empty() || text.len() > 2 * max_bytes || !text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    // HexBinary may drop a leading zero digit.
    if text.len() % 2 == 1 {
        ::hex::decode(format!("0{text}")).ok()
    } else {
        ::hex::decode(text).ok()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode_upper(bytes)
}

/// A HexBinary integer (roleFlags, qualityFlags).
pub fn parse_hex_u16(text: &str) -> Option<u16> {
    let bytes = parse_hex(text, 2)?;
    Some(bytes.iter().fold(0u16, |acc, b| (acc << 8) | u16::from(*b)))
}

// ---- Output resources ----

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Link {
    #[serde(rename = "@href")]
    pub href: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ListLink {
    #[serde(rename = "@all")]
    pub all: u32,
    #[serde(rename = "@href")]
    pub href: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DeviceCapability {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@pollRate")]
    pub poll_rate: u32,
    #[serde(rename = "DemandResponseProgramListLink")]
    pub demand_response_programs: ListLink,
    #[serde(rename = "ResponseSetListLink")]
    pub response_sets: ListLink,
    #[serde(rename = "TariffProfileListLink")]
    pub tariff_profiles: ListLink,
    #[serde(rename = "TimeLink")]
    pub time_link: Link,
    #[serde(rename = "EndDeviceListLink")]
    pub end_device_list_link: ListLink,
    #[serde(rename = "MirrorUsagePointListLink")]
    pub mirror_usage_point_list_link: ListLink,
}

impl DeviceCapability {
    pub fn new(mirrors: u32) -> Self {
        let [dr, rsps, tp] = market::campus_list_links();
        DeviceCapability {
            xmlns: ns(),
            href: "/dcap".into(),
            poll_rate: 900,
            demand_response_programs: dr,
            response_sets: rsps,
            tariff_profiles: tp,
            time_link: Link { href: "/tm".into() },
            end_device_list_link: ListLink {
                all: 1,
                href: "/edev".into(),
            },
            mirror_usage_point_list_link: ListLink {
                all: mirrors,
                href: "/mup".into(),
            },
        }
    }
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Time {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@pollRate")]
    pub poll_rate: u32,
    #[serde(rename = "currentTime")]
    pub current_time: i64,
    #[serde(rename = "dstEndTime")]
    pub dst_end_time: i64,
    #[serde(rename = "dstOffset")]
    pub dst_offset: i32,
    #[serde(rename = "dstStartTime")]
    pub dst_start_time: i64,
    #[serde(rename = "localTime")]
    pub local_time: i64,
    /// 4: the host clock is synchronised (NTP); 7: it is not (see `clock`).
    pub quality: u8,
    #[serde(rename = "tzOffset")]
    pub tz_offset: i32,
}

impl Time {
    /// An uncoordinated clock in UTC (quality 7, no time zone).
    pub fn new(now: i64) -> Self {
        Time::local(&LocalTime {
            current_time: now,
            tz_offset: 0,
            dst_offset: 0,
            dst_start_time: 0,
            dst_end_time: 0,
            local_time: now,
            quality: QUALITY_UNCOORDINATED,
        })
    }

    pub fn local(t: &LocalTime) -> Self {
        Time {
            xmlns: ns(),
            href: "/tm".into(),
            poll_rate: 900,
            current_time: t.current_time,
            dst_end_time: t.dst_end_time,
            dst_offset: t.dst_offset,
            dst_start_time: t.dst_start_time,
            local_time: t.local_time,
            quality: t.quality,
            tz_offset: t.tz_offset,
        }
    }
}

/// What a client posts to /edev to register in band (the fields the bridge checks).
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct PostedEndDevice {
    #[serde(rename = "lFDI", default)]
    pub lfdi: Option<String>,
    #[serde(rename = "sFDI")]
    pub sfdi: u64,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EndDevice {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "ConfigurationLink")]
    pub configuration_link: Link,
    #[serde(rename = "lFDI")]
    pub lfdi: String,
    #[serde(rename = "sFDI")]
    pub sfdi: u64,
    #[serde(rename = "changedTime")]
    pub changed_time: i64,
    pub enabled: bool,
    #[serde(rename = "FlowReservationRequestListLink")]
    pub flow_requests_link: ListLink,
    #[serde(rename = "FlowReservationResponseListLink")]
    pub flow_responses_link: ListLink,
    #[serde(rename = "FunctionSetAssignmentsListLink")]
    pub fsa_list_link: ListLink,
    #[serde(rename = "postRate")]
    pub post_rate: u32,
    #[serde(rename = "RegistrationLink")]
    pub registration_link: Link,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EndDeviceList {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@all")]
    pub all: u32,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@results")]
    pub results: u32,
    #[serde(rename = "@subscribable")]
    pub subscribable: u8,
    #[serde(rename = "EndDevice")]
    pub end_devices: Vec<EndDevice>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Registration {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "dateTimeRegistered")]
    pub date_time_registered: i64,
    #[serde(rename = "pIN")]
    pub pin: u32,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ErrorBody {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "reasonCode")]
    pub reason_code: u8,
}

pub fn error_body(reason: ReasonCode) -> String {
    to_xml(
        "Error",
        &ErrorBody {
            xmlns: ns(),
            reason_code: reason as u8,
        },
    )
}

/// How many flow reservation requests and responses a device has (its EndDevice's links
/// say so).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounts {
    pub requests: u32,
    pub responses: u32,
}

pub fn end_device(
    index: u16,
    lfdi: &[u8; 20],
    sfdi: u64,
    changed: i64,
    post_rate: u32,
    flows: FlowCounts,
) -> EndDevice {
    let href = format!("/edev/{index}");
    EndDevice {
        xmlns: None,
        configuration_link: Link {
            href: format!("{href}/cfg"),
        },
        lfdi: hex(lfdi),
        sfdi,
        changed_time: changed,
        enabled: true,
        flow_requests_link: ListLink {
            all: flows.requests,
            href: format!("{href}/frq"),
        },
        flow_responses_link: ListLink {
            all: flows.responses,
            href: format!("{href}/frp"),
        },
        fsa_list_link: ListLink {
            all: 1,
            href: format!("{href}/fsa"),
        },
        post_rate,
        registration_link: Link {
            href: format!("{href}/rg"),
        },
        href,
    }
}

pub fn with_ns() -> Option<String> {
    Some(ns())
}

/// One page of an EndDeviceList of `all` devices.
pub fn end_device_list(devices: Vec<EndDevice>, all: u32) -> EndDeviceList {
    let n = devices.len() as u32;
    EndDeviceList {
        xmlns: ns(),
        all,
        href: "/edev".into(),
        results: n,
        subscribable: 0,
        end_devices: devices,
    }
}

pub fn registration(index: u16, registered: i64, pin: u32) -> Registration {
    Registration {
        xmlns: ns(),
        href: format!("/edev/{index}/rg"),
        date_time_registered: registered,
        pin,
    }
}

/// A device's function-set assignments: the campus's one (DRLC, responses, pricing, time).
pub fn fsa_list(index: u16, pen: u32) -> market::FunctionSetAssignmentsList {
    let href = format!("/edev/{index}/fsa");
    market::FunctionSetAssignmentsList {
        xmlns: ns(),
        all: 1,
        results: 1,
        subscribable: 0,
        poll_rate: 900,
        items: vec![fsa(index, pen)],
        href,
    }
}

/// The campus's function-set assignment, as device `index` sees it.
pub fn fsa(index: u16, pen: u32) -> market::FunctionSetAssignments {
    market::FunctionSetAssignments::campus(
        format!("/edev/{index}/fsa/0"),
        market::mrid(market::MridKind::FunctionSetAssignments, 0, pen),
    )
}

// ---- Metering mirror (input and output) ----

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct DateTimeInterval {
    pub duration: u32,
    pub start: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct ReadingType {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href", skip_serializing_if = "Option::is_none", default)]
    pub href: Option<String>,
    #[serde(
        rename = "accumulationBehaviour",
        skip_serializing_if = "Option::is_none"
    )]
    pub accumulation_behaviour: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commodity: Option<u8>,
    #[serde(rename = "dataQualifier", skip_serializing_if = "Option::is_none")]
    pub data_qualifier: Option<u8>,
    #[serde(rename = "flowDirection", skip_serializing_if = "Option::is_none")]
    pub flow_direction: Option<u8>,
    #[serde(rename = "intervalLength", skip_serializing_if = "Option::is_none")]
    pub interval_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<u8>,
    #[serde(
        rename = "powerOfTenMultiplier",
        skip_serializing_if = "Option::is_none"
    )]
    pub power_of_ten_multiplier: Option<i8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uom: Option<u8>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Reading {
    #[serde(rename = "qualityFlags", skip_serializing_if = "Option::is_none")]
    pub quality_flags: Option<String>,
    #[serde(rename = "timePeriod", skip_serializing_if = "Option::is_none")]
    pub time_period: Option<DateTimeInterval>,
    #[serde(rename = "touTier", skip_serializing_if = "Option::is_none")]
    pub tou_tier: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MirrorReadingSet {
    #[serde(rename = "mRID")]
    pub mrid: String,
    #[serde(rename = "timePeriod")]
    pub time_period: DateTimeInterval,
    #[serde(rename = "Reading", default, skip_serializing_if = "Vec::is_empty")]
    pub readings: Vec<Reading>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MirrorMeterReading {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    pub xmlns: Option<String>,
    #[serde(rename = "mRID")]
    pub mrid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "lastUpdateTime", skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<i64>,
    #[serde(
        rename = "MirrorReadingSet",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reading_sets: Vec<MirrorReadingSet>,
    #[serde(rename = "Reading", skip_serializing_if = "Option::is_none")]
    pub reading: Option<Reading>,
    #[serde(rename = "ReadingType", skip_serializing_if = "Option::is_none")]
    pub reading_type: Option<ReadingType>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MirrorMeterReadingList {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    pub xmlns: Option<String>,
    #[serde(rename = "MirrorMeterReading", default)]
    pub readings: Vec<MirrorMeterReading>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MirrorUsagePoint {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    pub xmlns: Option<String>,
    #[serde(rename = "@href", skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(rename = "mRID")]
    pub mrid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "roleFlags")]
    pub role_flags: String,
    #[serde(rename = "serviceCategoryKind")]
    pub service_category_kind: u8,
    pub status: u8,
    #[serde(rename = "deviceLFDI")]
    pub device_lfdi: String,
    #[serde(
        rename = "MirrorMeterReading",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mirror_meter_readings: Vec<MirrorMeterReading>,
    #[serde(rename = "postRate", skip_serializing_if = "Option::is_none")]
    pub post_rate: Option<u32>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct MirrorUsagePointList {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@all")]
    pub all: u32,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@results")]
    pub results: u32,
    #[serde(rename = "@pollRate")]
    pub poll_rate: u32,
    #[serde(rename = "MirrorUsagePoint")]
    pub mirrors: Vec<MirrorUsagePoint>,
}

pub fn mirror_usage_point_list(
    all: u32,
    mirrors: Vec<MirrorUsagePoint>,
    post_rate: u32,
) -> MirrorUsagePointList {
    MirrorUsagePointList {
        xmlns: ns(),
        all,
        href: "/mup".into(),
        results: mirrors.len() as u32,
        poll_rate: post_rate,
        mirrors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_capability_xml_is_pinned() {
        assert_eq!(
            to_xml("DeviceCapability", &DeviceCapability::new(2)),
            concat!(
                r#"<DeviceCapability xmlns="urn:ieee:std:2030.5:ns" href="/dcap" pollRate="900">"#,
                r#"<DemandResponseProgramListLink all="1" href="/dr"/><ResponseSetListLink all="1" href="/rsps"/>"#,
                r#"<TariffProfileListLink all="1" href="/tp"/><TimeLink href="/tm"/>"#,
                r#"<EndDeviceListLink all="1" href="/edev"/><MirrorUsagePointListLink all="2" href="/mup"/></DeviceCapability>"#
            )
        );
    }

    #[test]
    fn time_xml_is_pinned() {
        assert_eq!(
            to_xml("Time", &Time::new(1_790_000_000)),
            r#"<Time xmlns="urn:ieee:std:2030.5:ns" href="/tm" pollRate="900"><currentTime>1790000000</currentTime><dstEndTime>0</dstEndTime><dstOffset>0</dstOffset><dstStartTime>0</dstStartTime><localTime>1790000000</localTime><quality>7</quality><tzOffset>0</tzOffset></Time>"#
        );
    }

    #[test]
    fn end_device_list_xml_is_pinned() {
        let list = end_device_list(
            vec![end_device(
                3,
                &[0xAB; 20],
                167_261_211_391,
                1_700_000_000,
                60,
                FlowCounts {
                    requests: 2,
                    responses: 1,
                },
            )],
            1,
        );
        assert_eq!(
            to_xml("EndDeviceList", &list),
            concat!(
                r#"<EndDeviceList xmlns="urn:ieee:std:2030.5:ns" all="1" href="/edev" results="1" subscribable="0">"#,
                r#"<EndDevice href="/edev/3"><ConfigurationLink href="/edev/3/cfg"/><lFDI>ABABABABABABABABABABABABABABABABABABABAB</lFDI><sFDI>167261211391</sFDI>"#,
                r#"<changedTime>1700000000</changedTime><enabled>true</enabled>"#,
                r#"<FlowReservationRequestListLink all="2" href="/edev/3/frq"/><FlowReservationResponseListLink all="1" href="/edev/3/frp"/>"#,
                r#"<FunctionSetAssignmentsListLink all="1" href="/edev/3/fsa"/>"#,
                r#"<postRate>60</postRate><RegistrationLink href="/edev/3/rg"/></EndDevice></EndDeviceList>"#
            )
        );
    }

    #[test]
    fn registration_fsa_and_error_xml_are_pinned() {
        assert_eq!(
            to_xml("Registration", &registration(3, 1_700_000_000, 123_455)),
            r#"<Registration xmlns="urn:ieee:std:2030.5:ns" href="/edev/3/rg"><dateTimeRegistered>1700000000</dateTimeRegistered><pIN>123455</pIN></Registration>"#
        );
        assert_eq!(
            to_xml(
                "FunctionSetAssignmentsList",
                &fsa_list(3, market::DOCUMENTATION_PEN)
            ),
            concat!(
                r#"<FunctionSetAssignmentsList xmlns="urn:ieee:std:2030.5:ns" all="1" href="/edev/3/fsa" results="1" subscribable="0" pollRate="900">"#,
                r#"<FunctionSetAssignments href="/edev/3/fsa/0" subscribable="0"><DemandResponseProgramListLink all="1" href="/dr"/>"#,
                r#"<ResponseSetListLink all="1" href="/rsps"/><TariffProfileListLink all="1" href="/tp"/><TimeLink href="/tm"/>"#,
                r#"<mRID>07000000000000000000000000007ED9</mRID><description>Campus market</description></FunctionSetAssignments>"#,
                r#"</FunctionSetAssignmentsList>"#
            )
        );
        assert_eq!(
            error_body(ReasonCode::Values),
            r#"<Error xmlns="urn:ieee:std:2030.5:ns"><reasonCode>1</reasonCode></Error>"#
        );
    }

    /// IEEE 2030.5 Annex C.14-style MirrorUsagePoint with one MirrorMeterReading.
    const MUP: &str = r#"<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns" xmlns:csipaus="https://csipaus.org/ns">
  <mRID>0600006CC8</mRID>
  <description>Gas Mirroring</description>
  <roleFlags>13</roleFlags>
  <serviceCategoryKind>0</serviceCategoryKind>
  <status>1</status>
  <deviceLFDI>247bd68e3378fe57ba604e3c8bdf9e3f78a3d743</deviceLFDI>
  <csipaus:extension>ignored</csipaus:extension>
  <MirrorMeterReading>
    <mRID>0700006CC8</mRID>
    <description>Cumulative Reading for Gas</description>
    <Reading><value>125</value></Reading>
    <ReadingType><accumulationBehaviour>9</accumulationBehaviour><commodity>1</commodity><dataQualifier>0</dataQualifier><flowDirection>1</flowDirection><kind>12</kind><powerOfTenMultiplier>3</powerOfTenMultiplier><uom>72</uom></ReadingType>
  </MirrorMeterReading>
</MirrorUsagePoint>"#;

    #[test]
    fn parses_a_mirror_usage_point_ignoring_unknown_elements() {
        let (root, mup): (_, MirrorUsagePoint) = parse(MUP, &["MirrorUsagePoint"]).unwrap();
        assert_eq!(root, "MirrorUsagePoint");
        assert_eq!(mup.mrid, "0600006CC8");
        assert_eq!(parse_hex_u16(&mup.role_flags), Some(0x13));
        assert_eq!(mup.mirror_meter_readings.len(), 1);
        let rt = mup.mirror_meter_readings[0].reading_type.as_ref().unwrap();
        assert_eq!(
            (rt.uom, rt.flow_direction, rt.power_of_ten_multiplier),
            (Some(72), Some(1), Some(3))
        );
        assert_eq!(
            mup.mirror_meter_readings[0].reading.as_ref().unwrap().value,
            Some(125)
        );
    }

    #[test]
    fn mirror_usage_point_output_follows_xsd_order() {
        let (_, mut mup): (_, MirrorUsagePoint) = parse(MUP, &["MirrorUsagePoint"]).unwrap();
        mup.xmlns = with_ns();
        mup.href = Some("/mup/1".into());
        mup.post_rate = Some(60);
        let xml = to_xml("MirrorUsagePoint", &mup);
        let order = [
            "<mRID>",
            "<description>",
            "<roleFlags>",
            "<serviceCategoryKind>",
            "<status>",
            "<deviceLFDI>",
            "<MirrorMeterReading>",
            "<postRate>",
        ];
        let positions: Vec<usize> = order.iter().map(|t| xml.find(t).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{xml}");
        assert!(
            xml.starts_with(r#"<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns" href="/mup/1">"#)
        );
    }

    #[test]
    fn root_namespace_is_checked() {
        let wrong = MUP.replace("urn:ieee:std:2030.5:ns\"", "urn:example\"");
        assert_eq!(root_element(&wrong).unwrap_err().reason, ReasonCode::Format);
        assert!(root_element("<MirrorUsagePoint><mRID>1</mRID></MirrorUsagePoint>").is_err());
        let prefixed = r#"<sep:MirrorUsagePoint xmlns:sep="urn:ieee:std:2030.5:ns"/>"#;
        assert_eq!(root_element(prefixed).unwrap(), "MirrorUsagePoint");
        assert!(root_element(
            r#"<!DOCTYPE x [<!ENTITY a "b">]><MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns"/>"#
        )
        .is_err());
        assert!(root_element("").is_err());
        assert!(root_element("<MirrorUsagePoint xmlns=\"urn:ieee:std:2030.5:ns\"><mRID>").is_ok());
    }

    #[test]
    fn malformed_documents_are_format_errors() {
        for body in ["<MirrorUsagePoint xmlns=\"urn:ieee:std:2030.5:ns\"><mRID>1</mRID>", "not xml", "<MirrorUsagePoint xmlns=\"urn:ieee:std:2030.5:ns\"><status>x</status></MirrorUsagePoint>"] {
            let err = parse::<MirrorUsagePoint>(body, &["MirrorUsagePoint"]).unwrap_err();
            assert_eq!(err.reason, ReasonCode::Format, "{body}");
        }
    }

    #[test]
    fn hex_binary_is_variable_width_and_case_insensitive() {
        assert_eq!(parse_hex("00", 20), Some(vec![0]));
        assert_eq!(parse_hex("abC", 2), Some(vec![0x0A, 0xBC]));
        assert_eq!(parse_hex_u16("13"), Some(0x13));
        assert_eq!(parse_hex("ZZ", 20), None);
        assert_eq!(parse_hex("", 20), None);
        assert_eq!(parse_hex(&"0".repeat(41), 20), None);
    }
}
