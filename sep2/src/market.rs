//! The campus market through IEEE 2030.5: Pricing (TariffProfile -> RateComponent ->
//! TimeTariffInterval -> ConsumptionTariffInterval), FlowReservation (requests a building's
//! EMS posts, the responses the market gives), DRLC (DemandResponseProgram ->
//! EndDeviceControl, and the devices' DrResponses), with the FunctionSetAssignments and
//! Configuration that link them. Fields are declared in sep.xsd's sequence order (base
//! types' elements first); `tests/xsd_order.rs` checks every document against it.
use serde::{Deserialize, Serialize};

use crate::{DateTimeInterval, Link, ListLink};

/// Our IANA Private Enterprise Number, in the low 32 bits of every mRID we create. The
/// default is 32473, the number RFC 5612 reserves for documentation: an operator sets the
/// campus's own (`pen` in the bridge's configuration).
pub const DOCUMENTATION_PEN: u32 = 32_473;

/// What an mRID the bridge creates names (its top byte), so that no two kinds collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MridKind {
    TariffProfile = 1,
    RateComponent = 2,
    TimeTariffInterval = 3,
    FlowReservationResponse = 4,
    DemandResponseProgram = 5,
    EndDeviceControl = 6,
    FunctionSetAssignments = 7,
    ResponseSet = 8,
}

/// A 128-bit mRID: `kind` in the top byte, `id` in bits 32..96, the PEN in the low 32 bits
/// (IEEE 2030.5 mRIDType), as 32 hex digits.
pub fn mrid(kind: MridKind, id: u64, pen: u32) -> String {
    let value = (u128::from(kind as u8) << 120) | (u128::from(id) << 32) | u128::from(pen);
    format!("{value:032X}")
}

/// The value of an mRID (HexBinary128, variable width): `None` if it is not one, or is the
/// value reserved for objects being created (all ones but the PEN).
pub fn parse_mrid(text: &str) -> Option<u128> {
    let bytes = crate::parse_hex(text, 16)?;
    let value = bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    (value >> 32 != (u128::MAX >> 32)).then_some(value)
}

// ---- shared pieces ----

/// EventStatus.currentStatus.
pub const EVENT_SCHEDULED: u8 = 0;
pub const EVENT_ACTIVE: u8 = 1;
pub const EVENT_CANCELLED: u8 = 2;
pub const EVENT_SUPERSEDED: u8 = 4;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct EventStatus {
    #[serde(rename = "currentStatus")]
    pub current_status: u8,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    #[serde(rename = "potentiallySuperseded")]
    pub potentially_superseded: bool,
    #[serde(
        rename = "potentiallySupersededTime",
        skip_serializing_if = "Option::is_none"
    )]
    pub potentially_superseded_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

impl EventStatus {
    /// An event's status at `now`: Scheduled before its start, Active from it (IEEE 2030.5
    /// says an event whose start has passed starts Active), or the given final status.
    pub fn at(start: i64, now: i64, changed: i64) -> EventStatus {
        EventStatus {
            current_status: if start <= now {
                EVENT_ACTIVE
            } else {
                EVENT_SCHEDULED
            },
            date_time: changed,
            potentially_superseded: false,
            potentially_superseded_time: None,
            reason: None,
        }
    }
}

/// SignedRealEnergy: value x 10^multiplier Wh.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignedRealEnergy {
    pub multiplier: i8,
    pub value: i64,
}

/// ActivePower: value x 10^multiplier W (value is an Int16).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActivePower {
    pub multiplier: i8,
    pub value: i16,
}

/// `value x 10^multiplier` as an exact integer, if it is one and fits i64.
pub fn scaled(value: i64, multiplier: i8) -> Option<i64> {
    if multiplier >= 0 {
        value.checked_mul(10i64.checked_pow(u32::from(multiplier.unsigned_abs()))?)
    } else {
        let divisor = 10i64.checked_pow(u32::from(multiplier.unsigned_abs()))?;
        (value % divisor == 0).then_some(value / divisor)
    }
}

impl SignedRealEnergy {
    pub fn wh(self) -> Option<i64> {
        scaled(self.value, self.multiplier)
    }
}

impl ActivePower {
    pub fn watts(self) -> Option<i64> {
        scaled(i64::from(self.value), self.multiplier)
    }

    /// `watts` with the smallest multiplier that fits an Int16 (rounded toward zero).
    pub fn of_watts(watts: i64) -> ActivePower {
        let mut multiplier = 0i8;
        let mut value = watts;
        while i16::try_from(value).is_err() {
            value /= 10;
            multiplier += 1;
        }
        ActivePower {
            multiplier,
            value: value as i16,
        }
    }
}

/// RequestStatus.requestStatus.
pub const REQUEST_REQUESTED: u8 = 0;
pub const REQUEST_CANCELLED: u8 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestStatus {
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    #[serde(rename = "requestStatus")]
    pub request_status: u8,
}

/// The campus's function-set list links, as DeviceCapability and every device's
/// FunctionSetAssignments carry them: its one demand-response program, the response set
/// DrResponses go to, and the campus tariff.
pub fn campus_list_links() -> [ListLink; 3] {
    [("/dr", 1), ("/rsps", 1), ("/tp", 1)].map(|(href, all)| ListLink {
        all,
        href: href.into(),
    })
}

/// A FunctionSetAssignments: its links first, then its identity (the XSD's base-first order).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct FunctionSetAssignments {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@subscribable")]
    pub subscribable: u8,
    #[serde(
        rename = "DemandResponseProgramListLink",
        skip_serializing_if = "Option::is_none"
    )]
    pub demand_response_programs: Option<ListLink>,
    #[serde(
        rename = "ResponseSetListLink",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_sets: Option<ListLink>,
    #[serde(
        rename = "TariffProfileListLink",
        skip_serializing_if = "Option::is_none"
    )]
    pub tariff_profiles: Option<ListLink>,
    #[serde(rename = "TimeLink", skip_serializing_if = "Option::is_none", default)]
    pub time: Option<Link>,
    #[serde(rename = "mRID")]
    pub mrid: String,
    pub description: String,
}

impl FunctionSetAssignments {
    pub fn campus(href: String, mrid: String) -> FunctionSetAssignments {
        let [dr, rsps, tp] = campus_list_links();
        FunctionSetAssignments {
            xmlns: None,
            href,
            subscribable: 0,
            demand_response_programs: Some(dr),
            response_sets: Some(rsps),
            tariff_profiles: Some(tp),
            time: Some(Link { href: "/tm".into() }),
            mrid,
            description: "Campus market".into(),
        }
    }
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct FunctionSetAssignmentsList {
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
    #[serde(rename = "@pollRate")]
    pub poll_rate: u32,
    #[serde(rename = "FunctionSetAssignments", default)]
    pub items: Vec<FunctionSetAssignments>,
}

// ---- Configuration and PriceResponseCfg ----

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Configuration {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@subscribable")]
    pub subscribable: u8,
    #[serde(rename = "@pollRate")]
    pub poll_rate: u32,
    #[serde(rename = "currentLocale")]
    pub current_locale: String,
    #[serde(rename = "PriceResponseCfgListLink")]
    pub price_response_cfgs: ListLink,
    #[serde(rename = "userDeviceName")]
    pub user_device_name: String,
}

/// How a building responds to a rate component's price (posted by its EMS). On the campus
/// tariff, `consumeThreshold` is the building's price limit for that component: the highest
/// price it buys at (import) or the lowest it sells at (export); the keeper uses it as its
/// orders' limit.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PriceResponseCfg {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href", skip_serializing_if = "Option::is_none", default)]
    pub href: Option<String>,
    #[serde(rename = "consumeThreshold")]
    pub consume_threshold: i32,
    #[serde(rename = "maxReductionThreshold")]
    pub max_reduction_threshold: i32,
    #[serde(rename = "RateComponentLink")]
    pub rate_component: Link,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct PriceResponseCfgList {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@all")]
    pub all: u32,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@results")]
    pub results: u32,
    #[serde(rename = "PriceResponseCfg", default)]
    pub items: Vec<PriceResponseCfg>,
}

// ---- Pricing ----

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct TariffProfile {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "mRID")]
    pub mrid: String,
    pub description: String,
    pub version: u16,
    /// ISO 4217 numeric code of the quote token's currency.
    pub currency: u16,
    #[serde(rename = "pricePowerOfTenMultiplier")]
    pub price_power_of_ten_multiplier: i8,
    pub primacy: u8,
    #[serde(rename = "rateCode")]
    pub rate_code: String,
    #[serde(rename = "RateComponentListLink")]
    pub rate_components: ListLink,
    #[serde(rename = "serviceCategoryKind")]
    pub service_category_kind: u8,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct TariffProfileList {
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
    #[serde(rename = "@pollRate")]
    pub poll_rate: u32,
    #[serde(rename = "TariffProfile", default)]
    pub items: Vec<TariffProfile>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct RateComponent {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "mRID")]
    pub mrid: String,
    pub description: String,
    pub version: u16,
    #[serde(rename = "ActiveTimeTariffIntervalListLink")]
    pub active_intervals: ListLink,
    #[serde(rename = "ReadingTypeLink")]
    pub reading_type: Link,
    #[serde(rename = "roleFlags")]
    pub role_flags: String,
    #[serde(rename = "TimeTariffIntervalListLink")]
    pub intervals: ListLink,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct RateComponentList {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@all")]
    pub all: u32,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@results")]
    pub results: u32,
    #[serde(rename = "RateComponent", default)]
    pub items: Vec<RateComponent>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TimeTariffInterval {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@subscribable")]
    pub subscribable: u8,
    #[serde(rename = "mRID")]
    pub mrid: String,
    pub description: String,
    pub version: u16,
    #[serde(rename = "creationTime")]
    pub creation_time: i64,
    #[serde(rename = "EventStatus")]
    pub event_status: EventStatus,
    pub interval: DateTimeInterval,
    #[serde(rename = "ConsumptionTariffIntervalListLink")]
    pub consumption_intervals: ListLink,
    #[serde(rename = "touTier")]
    pub tou_tier: u8,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TimeTariffIntervalList {
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
    #[serde(rename = "TimeTariffInterval", default)]
    pub items: Vec<TimeTariffInterval>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ConsumptionTariffInterval {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "consumptionBlock")]
    pub consumption_block: u8,
    pub price: i32,
    #[serde(rename = "startValue")]
    pub start_value: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ConsumptionTariffIntervalList {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@all")]
    pub all: u32,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@results")]
    pub results: u32,
    #[serde(rename = "ConsumptionTariffInterval", default)]
    pub items: Vec<ConsumptionTariffInterval>,
}

// ---- Flow reservation ----

/// What a building's EMS posts to `/edev/{i}/frq`: energy for one market interval.
/// `energyRequested` is positive to take energy (buy) and negative to deliver it (sell), as
/// IEEE 2030.5 signs it (positive when charging).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FlowReservationRequest {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href", skip_serializing_if = "Option::is_none", default)]
    pub href: Option<String>,
    #[serde(rename = "mRID")]
    pub mrid: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<u16>,
    #[serde(rename = "creationTime")]
    pub creation_time: i64,
    #[serde(
        rename = "durationRequested",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub duration_requested: Option<u16>,
    #[serde(rename = "energyRequested")]
    pub energy_requested: SignedRealEnergy,
    #[serde(rename = "intervalRequested")]
    pub interval_requested: DateTimeInterval,
    #[serde(rename = "powerRequested")]
    pub power_requested: ActivePower,
    #[serde(rename = "RequestStatus")]
    pub request_status: RequestStatus,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct FlowReservationRequestList {
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
    #[serde(rename = "FlowReservationRequest", default)]
    pub items: Vec<FlowReservationRequest>,
}

/// The market's answer to a request, once its interval has cleared: what was filled.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FlowReservationResponse {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@subscribable")]
    pub subscribable: u8,
    #[serde(rename = "mRID")]
    pub mrid: String,
    pub description: String,
    pub version: u16,
    #[serde(rename = "creationTime")]
    pub creation_time: i64,
    #[serde(rename = "EventStatus")]
    pub event_status: EventStatus,
    pub interval: DateTimeInterval,
    #[serde(rename = "energyAvailable")]
    pub energy_available: SignedRealEnergy,
    #[serde(rename = "powerAvailable")]
    pub power_available: ActivePower,
    /// The request's mRID.
    pub subject: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FlowReservationResponseList {
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
    #[serde(rename = "@pollRate")]
    pub poll_rate: u32,
    #[serde(rename = "FlowReservationResponse", default)]
    pub items: Vec<FlowReservationResponse>,
}

// ---- DRLC ----

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DemandResponseProgram {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "mRID")]
    pub mrid: String,
    pub description: String,
    pub version: u16,
    #[serde(rename = "ActiveEndDeviceControlListLink")]
    pub active_controls: ListLink,
    #[serde(rename = "EndDeviceControlListLink")]
    pub controls: ListLink,
    pub primacy: u8,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DemandResponseProgramList {
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
    #[serde(rename = "@pollRate")]
    pub poll_rate: u32,
    #[serde(rename = "DemandResponseProgram", default)]
    pub items: Vec<DemandResponseProgram>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct DutyCycle {
    /// Largest share of the time the load may run, percent.
    #[serde(rename = "normalValue")]
    pub normal_value: u8,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    /// Load reduction, hundredths of a percent.
    #[serde(rename = "loadAdjustmentPercentageOffset")]
    pub load_adjustment_percentage_offset: u16,
}

/// TargetReduction.type: 1 = kW.
pub const UNIT_KW: u8 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetReduction {
    #[serde(rename = "type")]
    pub unit: u8,
    pub value: u16,
}

/// DeviceCategoryType bit 14: energy management system (the buildings' EMSs).
pub const CATEGORY_EMS: u32 = 1 << 14;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct EndDeviceControl {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@replyTo")]
    pub reply_to: String,
    /// 03: the device says it received the event and how it responds.
    #[serde(rename = "@responseRequired")]
    pub response_required: String,
    #[serde(rename = "@subscribable")]
    pub subscribable: u8,
    #[serde(rename = "mRID")]
    pub mrid: String,
    pub description: String,
    pub version: u16,
    #[serde(rename = "creationTime")]
    pub creation_time: i64,
    #[serde(rename = "EventStatus")]
    pub event_status: EventStatus,
    pub interval: DateTimeInterval,
    #[serde(rename = "deviceCategory")]
    pub device_category: String,
    #[serde(rename = "drProgramMandatory")]
    pub dr_program_mandatory: bool,
    #[serde(rename = "DutyCycle", skip_serializing_if = "Option::is_none", default)]
    pub duty_cycle: Option<DutyCycle>,
    #[serde(rename = "loadShiftForward")]
    pub load_shift_forward: bool,
    #[serde(rename = "Offset", skip_serializing_if = "Option::is_none", default)]
    pub offset: Option<Offset>,
    #[serde(
        rename = "TargetReduction",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub target_reduction: Option<TargetReduction>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct EndDeviceControlList {
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
    #[serde(rename = "EndDeviceControl", default)]
    pub items: Vec<EndDeviceControl>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ResponseSet {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "mRID")]
    pub mrid: String,
    pub description: String,
    #[serde(rename = "ResponseListLink")]
    pub responses: ListLink,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ResponseSetList {
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
    #[serde(rename = "ResponseSet", default)]
    pub items: Vec<ResponseSet>,
}

/// Response.status of a demand-response event (IEEE 2030.5 Table 27).
pub const RESPONSE_RECEIVED: u8 = 1;
pub const RESPONSE_STARTED: u8 = 2;
pub const RESPONSE_COMPLETED: u8 = 3;
pub const RESPONSE_OPTED_OUT: u8 = 4;

/// A device's response to an EndDeviceControl (posted to the event's `replyTo`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct DrResponse {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none", default)]
    pub xmlns: Option<String>,
    #[serde(rename = "@xsi:type", skip_serializing_if = "Option::is_none", default)]
    pub xsi_type: Option<String>,
    #[serde(rename = "@href", skip_serializing_if = "Option::is_none", default)]
    pub href: Option<String>,
    #[serde(
        rename = "createdDateTime",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub created_date_time: Option<i64>,
    #[serde(rename = "endDeviceLFDI")]
    pub end_device_lfdi: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u8>,
    /// The event's mRID.
    pub subject: String,
    #[serde(rename = "DutyCycle", skip_serializing_if = "Option::is_none", default)]
    pub duty_cycle: Option<DutyCycle>,
    #[serde(rename = "Offset", skip_serializing_if = "Option::is_none", default)]
    pub offset: Option<Offset>,
    #[serde(
        rename = "overrideDuration",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub override_duration: Option<u16>,
}

/// A ResponseList: its items are DrResponses, named `Response` with `xsi:type`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ResponseList {
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    #[serde(rename = "@xmlns:xsi")]
    pub xmlns_xsi: String,
    #[serde(rename = "@all")]
    pub all: u32,
    #[serde(rename = "@href")]
    pub href: String,
    #[serde(rename = "@results")]
    pub results: u32,
    #[serde(rename = "Response", default)]
    pub items: Vec<DrResponse>,
}

pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrids_carry_the_pen_in_their_low_32_bits_and_kinds_never_collide() {
        let a = mrid(MridKind::TimeTariffInterval, 7, DOCUMENTATION_PEN);
        assert_eq!(a.len(), 32);
        assert!(a.ends_with(&format!("{DOCUMENTATION_PEN:08X}")), "{a}");
        assert_ne!(a, mrid(MridKind::EndDeviceControl, 7, DOCUMENTATION_PEN));
        assert_eq!(
            parse_mrid(&a),
            Some(3u128 << 120 | 7u128 << 32 | u128::from(DOCUMENTATION_PEN))
        );
        // Variable width, either case; the value reserved for objects being created is not one.
        assert_eq!(parse_mrid("0a"), Some(10));
        assert_eq!(parse_mrid(&format!("{}{:08X}", "F".repeat(24), 5)), None);
        assert_eq!(parse_mrid("xyz"), None);
        assert_eq!(parse_mrid(&"1".repeat(33)), None);
    }

    #[test]
    fn scaled_values_are_exact_or_refused() {
        let e = SignedRealEnergy {
            multiplier: 3,
            value: -12,
        };
        assert_eq!(e.wh(), Some(-12_000));
        assert_eq!(scaled(1_500, -3), None);
        assert_eq!(scaled(15_000, -3), Some(15));
        assert_eq!(scaled(i64::MAX, 1), None);
        assert_eq!(scaled(1, 19), None);
        let p = ActivePower::of_watts(80_000);
        assert_eq!((p.multiplier, p.value), (1, 8_000));
        assert_eq!(p.watts(), Some(80_000));
        assert_eq!(ActivePower::of_watts(-7).value, -7);
    }
}
