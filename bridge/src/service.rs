//! The IEEE 2030.5 resources the bridge serves, as a synchronous function from (caller,
//! request) to reply, so that it can be tested without sockets. `server` puts it behind
//! mutual TLS and HTTP/1.1.
//!
//! | path | methods |
//! |---|---|
//! | `/dcap`, `/tm` | GET |
//! | `/edev` (the caller only), `/edev/{i}`, `/edev/{i}/rg`, `/edev/{i}/fsa` | GET |
//! | `/mup` | GET (the caller's mirrors; `s`, `l`), POST (201/204 + Location) |
//! | `/mup/{id}` | GET, POST (MirrorMeterReading[List]), PUT, DELETE |
//! | `/edev/{i}/fsa/0`, `/edev/{i}/cfg` | GET |
//! | `/edev/{i}/cfg/prcfg` | GET, POST; `/{rc}`: GET, PUT, DELETE (`flow`) |
//! | `/edev/{i}/frq` | GET (`s`, `a`, `l`), POST; `/{id}`: GET, PUT (cancel) (`flow`) |
//! | `/edev/{i}/frp` | GET (`s`, `a`, `l`); `/{id}`: GET (`flow`) |
//! | `/tp`, `/tp/0`, `/tp/0/rc[/{r}[/rt]]`, `/tp/0/rc/{r}/tti`, `/acttti`, `/tti/{k}[/cti[/1]]` | GET (`pricing`) |
//! | `/dr`, `/dr/0`, `/dr/0/edc`, `/dr/0/actedc`, `/dr/0/edc/{id}` | GET (`drlc`) |
//! | `/rsps`, `/rsps/0` | GET; `/rsps/0/rsp`: GET, POST (DrResponse) (`drlc`) |
use std::sync::Arc;

use anyhow::Result;

mod drlc;
mod flow;
mod pricing;
use registry::identity::sfdi_check_digit;

use crate::directory::{Directory, MeterEntry};
use crate::normalize::{
    classify, measurements, register_readings, Flow, Measures, RegisterReading,
};

/// MirrorUsagePoint roleFlags of a mirror that is not the site's meter: isPEV (bit 2),
/// isDER (bit 3), isSubmeter (bit 6).
const NOT_SITE: u16 = 1 << 2 | 1 << 3 | 1 << 6;

/// Mirrors one device may hold (a site meter, its DERs, a few submeters).
pub const MAX_MIRRORS_PER_DEVICE: usize = 16;
/// MirrorMeterReadings one mirror may define (a site meter mirrors about a dozen).
pub const MAX_READINGS_PER_MIRROR: usize = 64;
/// Readings one post may carry (all MirrorMeterReadings together).
pub const MAX_READINGS_PER_POST: usize = 1_000;
use crate::store::{MirrorRecord, Store, StoredReading, Writer};
use sep2::{
    parse_hex, MirrorMeterReading, MirrorMeterReadingList, MirrorUsagePoint, ReasonCode, XmlError,
};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct Settings {
    /// How often meters should post (MirrorUsagePoint postRate, EndDevice postRate), seconds.
    pub post_rate_s: u32,
    /// How far ahead of the bridge's clock a reading may be, seconds (as the oracle allows).
    pub max_future_skew_s: u32,
    /// Plausibility slack, basis points (as the oracle's).
    pub tolerance_bps: u16,
    /// Unix time the bridge first registered its meters (EndDevice changedTime, Registration).
    pub registered_at: i64,
    /// The campus time zone (Time resource).
    pub clock: crate::clock::CampusClock,
    /// How long readings are kept, seconds: an older one is refused at once rather than
    /// stored and pruned within the hour.
    pub retention_s: i64,
    /// The campus tariff's identity and units (Pricing, mRIDs).
    pub tariff: crate::market::TariffSettings,
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<String>,
    pub location: Option<String>,
    pub allow: Option<&'static str>,
}

impl Reply {
    fn xml(body: String) -> Reply {
        Reply {
            status: 200,
            body: Some(body),
            location: None,
            allow: None,
        }
    }
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            location: None,
            allow: None,
        }
    }
    fn created(location: String) -> Reply {
        Reply {
            status: 201,
            body: None,
            location: Some(location),
            allow: None,
        }
    }
    fn no_content(location: Option<String>) -> Reply {
        Reply {
            status: 204,
            body: None,
            location,
            allow: None,
        }
    }
    pub fn bad_request(err: &XmlError) -> Reply {
        Reply {
            status: 400,
            body: Some(sep2::error_body(err.reason)),
            location: None,
            allow: None,
        }
    }
    fn method_not_allowed(allow: &'static str) -> Reply {
        Reply {
            status: 405,
            body: None,
            location: None,
            allow: Some(allow),
        }
    }
    pub fn too_large() -> Reply {
        Reply {
            status: 413,
            body: Some(sep2::error_body(ReasonCode::Format)),
            location: None,
            allow: None,
        }
    }
    fn internal() -> Reply {
        Reply::status(500)
    }
}

/// A request refused for a reason the client should see.
#[derive(Debug)]
enum Refusal {
    BadRequest(XmlError),
    /// A register reading the bridge's checks refuse, and the reason's label (metrics).
    Reading(&'static str, XmlError),
    Forbidden(String),
    NotFound,
    /// The bridge cannot judge the request yet (503): the market is not known.
    Unavailable(&'static str),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Self {
        Refusal::Internal(e)
    }
}

impl From<XmlError> for Refusal {
    fn from(e: XmlError) -> Self {
        Refusal::BadRequest(e)
    }
}

pub struct Service {
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
    pub settings: Settings,
    pub metrics: Arc<crate::metrics::BridgeMetrics>,
}

/// The register readings one post stored: how many (a retry of a stored one not counted)
/// and the latest one's time.
#[derive(Clone, Copy, Debug, Default)]
struct Stored {
    readings: u64,
    latest: Option<u32>,
}

impl Stored {
    fn add(&mut self, timestamp: u32) {
        self.readings += 1;
        self.latest = Some(self.latest.map_or(timestamp, |t| t.max(timestamp)));
    }
}

/// The registration PIN of a device: five digits from its SFDI plus the SFDI-style check
/// digit (IEEE 2030.5 PINs are six digits including a check digit).
pub fn registration_pin(sfdi: u64) -> u32 {
    let base = (sfdi / 10) % 100_000;
    (base * 10 + sfdi_check_digit(base)) as u32
}

/// A list query: `s` start, `l` limit (default 1, IEEE 2030.5's), and on time-keyed lists
/// `a`, after: only items whose time (an interval's start) is at or after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    start: usize,
    limit: usize,
    after: Option<i64>,
}

impl Page {
    /// Parses the query, percent-decoded; other parameters are ignored.
    fn parse(query: Option<&str>) -> Result<Page, XmlError> {
        let mut page = Page {
            start: 0,
            limit: 1,
            after: None,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let bad = || XmlError::values(format!("query {key}={value} is not a number"));
            match key.as_ref() {
                "s" => page.start = value.parse().map_err(|_| bad())?,
                "l" => page.limit = value.parse::<usize>().map_err(|_| bad())?.min(255),
                "a" => page.after = Some(value.parse().map_err(|_| bad())?),
                _ => {}
            }
        }
        Ok(page)
    }
}

/// The items of a list's page (`s`, `l`), in the list's order.
fn list_page<T>(items: Vec<T>, page: &Page) -> Vec<T> {
    items
        .into_iter()
        .skip(page.start)
        .take(page.limit)
        .collect()
}

impl Service {
    /// Answers one request from the meter `caller` (already authenticated by TLS).
    pub async fn respond(
        self: &Arc<Self>,
        caller: &MeterEntry,
        method: &str,
        path: &str,
        query: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Reply {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let result = match (segments.as_slice(), method) {
            (["dcap"], "GET") => self.device_capability(caller),
            (["dcap"], _) => return Reply::method_not_allowed("GET, HEAD"),
            (["tm"], "GET") => {
                let quality = if crate::clock::host_clock_synchronised() {
                    crate::clock::QUALITY_SYNCHRONISED
                } else {
                    crate::clock::QUALITY_UNCOORDINATED
                };
                let local = self.settings.clock.at(now, quality);
                Ok(Reply::xml(sep2::to_xml("Time", &sep2::Time::local(&local))))
            }
            (["tm"], _) => return Reply::method_not_allowed("GET, HEAD"),
            (["edev"], "GET") => self.end_device_list(caller, query),
            (["edev"], "POST") => self.register_in_band(caller, body),
            (["edev"], _) => return Reply::method_not_allowed("GET, HEAD, POST"),
            (["edev", id], "GET") => self.end_device(caller, id, None),
            (["edev", id, sub @ ("rg" | "fsa")], "GET") => self.end_device(caller, id, Some(sub)),
            (["edev", _] | ["edev", _, "rg" | "fsa"], _) => {
                return Reply::method_not_allowed("GET, HEAD")
            }
            (["edev", id, rest @ ..], _) => {
                match (self.owned_device(caller, id), self.campus_now(now)) {
                    (Ok(()), Ok(now)) => {
                        self.device_market(caller, method, rest, query, body, now)
                            .await
                    }
                    (Err(refusal), _) | (_, Err(refusal)) => Err(refusal),
                }
            }
            (["tp", rest @ ..], "GET") => self
                .campus_now(now)
                .and_then(|now| self.pricing(rest, query, now)),
            (["tp", ..], _) => return Reply::method_not_allowed("GET, HEAD"),
            (["dr", rest @ ..], "GET") => self
                .campus_now(now)
                .and_then(|now| self.demand_response(rest, query, now)),
            (["dr", ..], _) => return Reply::method_not_allowed("GET, HEAD"),
            (["rsps", rest @ ..], _) => match self.campus_now(now) {
                Ok(now) => self.responses(caller, method, rest, query, body, now).await,
                Err(refusal) => Err(refusal),
            },
            (["mup"], "GET") => self.mirror_list(caller, query),
            (["mup"], "POST") => self.post_mirror(caller, body, now).await,
            (["mup"], _) => return Reply::method_not_allowed("GET, HEAD, POST"),
            (["mup", id], "GET") => self.get_mirror(caller, id),
            (["mup", id], "POST") => self.post_readings(caller, id, body, now).await,
            (["mup", id], "PUT") => self.put_mirror(caller, id, body, now).await,
            (["mup", id], "DELETE") => self.delete_mirror(caller, id).await,
            (["mup", _], _) => return Reply::method_not_allowed("GET, HEAD, POST, PUT, DELETE"),
            _ => Err(Refusal::NotFound),
        };
        // A refused post or put of a mirror: nothing of it stored, counted by its reason.
        if let (Err(refusal), ["mup", ..], "POST" | "PUT") = (&result, segments.as_slice(), method)
        {
            let reason = match refusal {
                Refusal::Reading(reason, _) => reason,
                Refusal::BadRequest(_) => "invalid_document",
                Refusal::Forbidden(_) => "forbidden",
                Refusal::NotFound => "unknown_mirror",
                Refusal::Unavailable(_) | Refusal::Internal(_) => "storage",
            };
            self.metrics.posts_refused.inc(reason);
        }
        match result {
            Ok(reply) => reply,
            Err(Refusal::BadRequest(e)) => {
                tracing::info!(meter = %caller.code, %method, %path, error = %e, "refused: bad request");
                Reply::bad_request(&e)
            }
            Err(Refusal::Reading(reason, e)) => {
                tracing::info!(meter = %caller.code, %method, %path, %reason, error = %e, "refused: reading");
                Reply::bad_request(&e)
            }
            Err(Refusal::Forbidden(why)) => {
                tracing::warn!(meter = %caller.code, %method, %path, %why, "refused: forbidden");
                Reply::status(403)
            }
            Err(Refusal::NotFound) => Reply::status(404),
            Err(Refusal::Unavailable(why)) => {
                tracing::info!(meter = %caller.code, %method, %path, %why, "refused: unavailable");
                Reply::status(503)
            }
            Err(Refusal::Internal(e)) => {
                tracing::error!(meter = %caller.code, %method, %path, error = %e, "internal error");
                Reply::internal()
            }
        }
    }

    fn device_capability(&self, caller: &MeterEntry) -> Result<Reply, Refusal> {
        let mirrors = self.store.read()?.mirrors_of(&caller.lfdi_hex)?.len() as u32;
        Ok(Reply::xml(sep2::to_xml(
            "DeviceCapability",
            &sep2::DeviceCapability::new(mirrors),
        )))
    }

    /// The caller's own EndDevice, paged (`s` start, `l` limit): a client that pages until
    /// it gets fewer than `l` results stops after the first page.
    fn end_device_list(&self, caller: &MeterEntry, query: Option<&str>) -> Result<Reply, Refusal> {
        let Page { start, limit, .. } = Page::parse(query)?;
        let me = sep2::end_device(
            caller.index,
            &caller.lfdi,
            caller.sfdi,
            self.settings.registered_at,
            self.settings.post_rate_s,
            self.flow_counts(caller)?,
        );
        let page = if start == 0 && limit > 0 {
            vec![me]
        } else {
            Vec::new()
        };
        Ok(Reply::xml(sep2::to_xml(
            "EndDeviceList",
            &sep2::end_device_list(page, 1),
        )))
    }

    /// In-band registration (POST /edev): a client announcing its EndDevice. Devices are
    /// registered on chain (the registry), so this only confirms the caller's own record:
    /// 201 + Location of its EndDevice when the sFDI (and lFDI, if sent) are its
    /// certificate's; 400 otherwise.
    fn register_in_band(&self, caller: &MeterEntry, body: &[u8]) -> Result<Reply, Refusal> {
        let text = std::str::from_utf8(body).map_err(|_| XmlError::format("body is not UTF-8"))?;
        let (_, posted) = sep2::parse::<sep2::PostedEndDevice>(text, &["EndDevice"])?;
        if posted.sfdi != caller.sfdi {
            return Err(XmlError::values(format!(
                "sFDI {} is not the certificate's {}",
                posted.sfdi, caller.sfdi
            ))
            .into());
        }
        if let Some(lfdi) = &posted.lfdi {
            if !lfdi.eq_ignore_ascii_case(&caller.lfdi_hex) {
                return Err(XmlError::values("lFDI is not the certificate's").into());
            }
        }
        tracing::info!(meter = %caller.code, "EndDevice registered in band");
        Ok(Reply::created(format!("/edev/{}", caller.index)))
    }

    fn end_device(
        &self,
        caller: &MeterEntry,
        id: &str,
        sub: Option<&str>,
    ) -> Result<Reply, Refusal> {
        self.owned_device(caller, id)?;
        let index = caller.index;
        let s = &self.settings;
        Ok(Reply::xml(match sub {
            None => {
                let mut device = sep2::end_device(
                    index,
                    &caller.lfdi,
                    caller.sfdi,
                    s.registered_at,
                    s.post_rate_s,
                    self.flow_counts(caller)?,
                );
                device.xmlns = sep2::with_ns();
                sep2::to_xml("EndDevice", &device)
            }
            Some("rg") => sep2::to_xml(
                "Registration",
                &sep2::registration(index, s.registered_at, registration_pin(caller.sfdi)),
            ),
            Some("fsa") => sep2::to_xml(
                "FunctionSetAssignmentsList",
                &sep2::fsa_list(index, s.tariff.pen),
            ),
            Some(_) => return Err(Refusal::NotFound),
        }))
    }

    /// `Store::campus_now`, refused as the store's failure.
    fn campus_now(&self, now: i64) -> Result<i64, Refusal> {
        Ok(self.store.campus_now(now)?)
    }

    /// The caller's own device, or why not: another device's (403) or none (404).
    fn owned_device(&self, caller: &MeterEntry, id: &str) -> Result<(), Refusal> {
        let index: u16 = id.parse().map_err(|_| Refusal::NotFound)?;
        if index == caller.index {
            Ok(())
        } else if self.directory.has_index(index) {
            Err(Refusal::Forbidden(format!(
                "EndDevice {index} belongs to another meter"
            )))
        } else {
            Err(Refusal::NotFound)
        }
    }

    /// How many flow reservation requests and responses the caller has.
    fn flow_counts(&self, caller: &MeterEntry) -> Result<sep2::FlowCounts, Refusal> {
        let flows = self.store.read()?.flows_of(&caller.lfdi_hex)?;
        Ok(sep2::FlowCounts {
            requests: flows.len() as u32,
            responses: flows
                .iter()
                .filter(|r| crate::market::answered(&r.flow))
                .count() as u32,
        })
    }

    /// Runs `f` as an immediate (durable) write on the store's dedicated thread.
    async fn immediate<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::store::Writer) -> Result<T, Refusal> + Send + 'static,
    ) -> Result<T, Refusal> {
        let store = self.store.clone();
        self.store
            .run_dedicated(move || store.write_immediate(f))
            .await?
    }

    fn mirror_list(&self, caller: &MeterEntry, query: Option<&str>) -> Result<Reply, Refusal> {
        let Page { start, limit, .. } = Page::parse(query)?;
        let mirrors = self.store.read()?.mirrors_of(&caller.lfdi_hex)?;
        let all = mirrors.len() as u32;
        let page = mirrors
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|m| self.presented(m))
            .collect();
        Ok(Reply::xml(sep2::to_xml(
            "MirrorUsagePointList",
            &sep2::mirror_usage_point_list(all, page, self.settings.post_rate_s),
        )))
    }

    /// A stored mirror as a GET shows it: with its href and the post rate.
    fn presented(&self, record: MirrorRecord) -> MirrorUsagePoint {
        let mut mup = record.mup;
        mup.href = Some(format!("/mup/{}", record.id));
        mup.post_rate = Some(self.settings.post_rate_s);
        mup
    }

    fn owned_mirror(
        &self,
        caller: &MeterEntry,
        id: &str,
        w: Option<&Writer>,
    ) -> Result<MirrorRecord, Refusal> {
        let id: u64 = id.parse().map_err(|_| Refusal::NotFound)?;
        let record = match w {
            Some(w) => w.mirror(id)?,
            None => self.store.read()?.mirror(id)?,
        }
        .ok_or(Refusal::NotFound)?;
        if record.lfdi != caller.lfdi_hex {
            return Err(Refusal::Forbidden(format!(
                "MirrorUsagePoint {id} belongs to another device"
            )));
        }
        Ok(record)
    }

    fn get_mirror(&self, caller: &MeterEntry, id: &str) -> Result<Reply, Refusal> {
        let record = self.owned_mirror(caller, id, None)?;
        let mut mup = self.presented(record);
        mup.xmlns = sep2::with_ns();
        Ok(Reply::xml(sep2::to_xml("MirrorUsagePoint", &mup)))
    }

    /// Checks a posted MirrorUsagePoint's identifiers; returns it with canonical (upper-case) hex.
    fn checked_mup(&self, caller: &MeterEntry, body: &[u8]) -> Result<MirrorUsagePoint, Refusal> {
        let text = std::str::from_utf8(body).map_err(|_| XmlError::format("body is not UTF-8"))?;
        let (_, mut mup): (_, MirrorUsagePoint) = sep2::parse(text, &["MirrorUsagePoint"])?;
        let lfdi = parse_hex(&mup.device_lfdi, 20)
            .filter(|b| b.len() == 20)
            .ok_or_else(|| {
                XmlError::values(format!(
                    "deviceLFDI {:?} is not 40 hex digits",
                    mup.device_lfdi
                ))
            })?;
        if lfdi != caller.lfdi {
            return Err(Refusal::Forbidden(
                "deviceLFDI differs from the client certificate's LFDI".into(),
            ));
        }
        let mrid = parse_hex(&mup.mrid, 16)
            .ok_or_else(|| XmlError::values(format!("mRID {:?} is not HexBinary128", mup.mrid)))?;
        sep2::parse_hex_u16(&mup.role_flags)
            .ok_or_else(|| XmlError::values("roleFlags is not HexBinary16"))?;
        mup.mrid = sep2::hex(&mrid);
        mup.device_lfdi = caller.lfdi_hex.clone();
        mup.xmlns = None;
        mup.href = None;
        mup.post_rate = None;
        Ok(mup)
    }

    async fn post_mirror(
        self: &Arc<Self>,
        caller: &MeterEntry,
        body: &[u8],
        now: i64,
    ) -> Result<Reply, Refusal> {
        let mut mup = self.checked_mup(caller, body)?;
        let posted = std::mem::take(&mut mup.mirror_meter_readings);
        let (this, who) = (self.clone(), caller.clone());
        // Runs in the writer's batch, and again if a later request of it refuses: it takes
        // copies of what it was posted.
        let (id, created, stored) = self
            .store
            .write_batched(move |w| -> Result<(u64, bool, Stored), Refusal> {
                let existing = match w.mirror_id(&who.lfdi_hex, &mup.mrid)? {
                    Some(id) => w.mirror(id)?,
                    None => None,
                };
                if existing.is_none() && w.mirror_count_of(&who.lfdi_hex)? >= MAX_MIRRORS_PER_DEVICE
                {
                    return Err(XmlError::values(format!(
                        "a device may hold at most {MAX_MIRRORS_PER_DEVICE} MirrorUsagePoints"
                    ))
                    .into());
                }
                // Overwrite (IEEE 2030.5 10.11.3 a4): the new definition replaces the old one.
                let mut mup = mup.clone();
                mup.mirror_meter_readings = existing
                    .as_ref()
                    .map(|r| r.mup.mirror_meter_readings.clone())
                    .unwrap_or_default();
                let id = w.put_mirror(existing.as_ref().map(|r| r.id), &who.lfdi_hex, &mup)?;
                let stored = this.apply_readings(w, &who, id, &mut mup, posted.clone(), now)?;
                w.put_mirror(Some(id), &who.lfdi_hex, &mup)?;
                Ok((id, existing.is_none(), stored))
            })
            .await?;
        self.counted(caller, stored);
        let location = format!("/mup/{id}");
        tracing::info!(meter = %caller.code, mirror = id, created, "MirrorUsagePoint posted");
        Ok(if created {
            Reply::created(location)
        } else {
            Reply::no_content(Some(location))
        })
    }

    async fn put_mirror(
        self: &Arc<Self>,
        caller: &MeterEntry,
        id: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Reply, Refusal> {
        let mut mup = self.checked_mup(caller, body)?;
        let posted = std::mem::take(&mut mup.mirror_meter_readings);
        let (this, who, id) = (self.clone(), caller.clone(), id.to_string());
        let stored = self
            .store
            .write_batched(move |w| -> Result<Stored, Refusal> {
                let record = this.owned_mirror(&who, &id, Some(w))?;
                if record.mup.mrid != mup.mrid {
                    return Err(
                        XmlError::values("PUT may not change a MirrorUsagePoint's mRID").into(),
                    );
                }
                let mut mup = mup.clone();
                mup.mirror_meter_readings = record.mup.mirror_meter_readings.clone();
                let stored =
                    this.apply_readings(w, &who, record.id, &mut mup, posted.clone(), now)?;
                w.put_mirror(Some(record.id), &who.lfdi_hex, &mup)?;
                Ok(stored)
            })
            .await?;
        self.counted(caller, stored);
        Ok(Reply::no_content(None))
    }

    async fn delete_mirror(
        self: &Arc<Self>,
        caller: &MeterEntry,
        id: &str,
    ) -> Result<Reply, Refusal> {
        // Refused before the writer when it can be: a refusal in a batch costs the others a
        // replay. Checked again in the batch (a concurrent delete).
        self.owned_mirror(caller, id, None)?;
        let (this, who, id) = (self.clone(), caller.clone(), id.to_string());
        self.store
            .write_batched(move |w| -> Result<(), Refusal> {
                let record = this.owned_mirror(&who, &id, Some(w))?;
                // Readings already accepted stay in the log: they were acknowledged.
                w.delete_mirror(&record)?;
                Ok(())
            })
            .await?;
        Ok(Reply::no_content(None))
    }

    async fn post_readings(
        self: &Arc<Self>,
        caller: &MeterEntry,
        id: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Reply, Refusal> {
        let text = std::str::from_utf8(body).map_err(|_| XmlError::format("body is not UTF-8"))?;
        let root = sep2::root_element(text)?;
        let posted = match root.as_str() {
            "MirrorMeterReading" => {
                vec![sep2::parse::<MirrorMeterReading>(text, &["MirrorMeterReading"])?.1]
            }
            "MirrorMeterReadingList" => {
                sep2::parse::<MirrorMeterReadingList>(text, &["MirrorMeterReadingList"])?
                    .1
                    .readings
            }
            other => {
                return Err(XmlError::format(format!(
                    "expected MirrorMeterReading or MirrorMeterReadingList, got {other}"
                ))
                .into())
            }
        };
        if posted.is_empty() {
            return Err(XmlError::values("MirrorMeterReadingList is empty").into());
        }
        let (this, who, mirror) = (self.clone(), caller.clone(), id.to_string());
        let (created, stored) = self
            .store
            .write_batched(move |w| -> Result<(bool, Stored), Refusal> {
                let record = this.owned_mirror(&who, &mirror, Some(w))?;
                let mut mup = record.mup.clone();
                let before = mup.mirror_meter_readings.len();
                let stored =
                    this.apply_readings(w, &who, record.id, &mut mup, posted.clone(), now)?;
                let created = mup.mirror_meter_readings.len() > before;
                // Most posts only carry readings: rewrite the mirror only if its definition changed.
                if mup != record.mup {
                    w.put_mirror(Some(record.id), &who.lfdi_hex, &mup)?;
                }
                Ok((created, stored))
            })
            .await?;
        self.counted(caller, stored);
        Ok(if created {
            Reply::created(format!("/mup/{id}"))
        } else {
            Reply::no_content(None)
        })
    }

    /// Checks and stores the readings of posted MirrorMeterReadings, and records their
    /// definitions (mRID, description, ReadingType) on `mup`.
    fn apply_readings(
        &self,
        w: &Writer,
        caller: &MeterEntry,
        mirror: u64,
        mup: &mut MirrorUsagePoint,
        posted: Vec<MirrorMeterReading>,
        now: i64,
    ) -> Result<Stored, Refusal> {
        let mut stored = Stored::default();
        // Only the site's own meter is attested: a mirror flagged as a DER, PEV or submeter
        // (roleFlags bits 3, 2, 6) measures part of the site, and is stored only.
        let site = sep2::parse_hex_u16(&mup.role_flags).is_some_and(|f| f & NOT_SITE == 0);
        // The device's attested registers (import, export), read once per post.
        let mut designated = w.designated_pair(&caller.lfdi_hex)?;
        let readings: usize = posted
            .iter()
            .map(|m| {
                m.reading_sets
                    .iter()
                    .map(|s| s.readings.len())
                    .sum::<usize>()
                    + usize::from(m.reading.is_some())
            })
            .sum();
        if readings > MAX_READINGS_PER_POST {
            return Err(XmlError::values(format!(
                "{readings} readings in one post: at most {MAX_READINGS_PER_POST}"
            ))
            .into());
        }
        for mut mmr in posted {
            let mrid = parse_hex(&mmr.mrid, 16).ok_or_else(|| {
                XmlError::values(format!(
                    "MirrorMeterReading mRID {:?} is not HexBinary128",
                    mmr.mrid
                ))
            })?;
            mmr.mrid = sep2::hex(&mrid);
            // mRIDs are globally unique (CSIP-AUS S-ALL-05 refuses a collision): a meter
            // whose firmware reuses another's fixed mRIDs is refused, and the log names both
            // meters so that an operator sees why.
            match w.mmr_owner(&mmr.mrid)? {
                Some(owner) if owner != caller.lfdi_hex => {
                    let other = sdk::identity::parse_lfdi_hex(&owner)
                        .and_then(|l| self.directory.get(&l))
                        .map_or(owner, |m| m.code);
                    return Err(Refusal::Forbidden(format!(
                        "MirrorMeterReading mRID {} is already used by meter {other} (mRIDs must be globally unique; check the meter's firmware)",
                        mmr.mrid
                    )));
                }
                Some(_) => {}
                None => w.set_mmr_owner(&mmr.mrid, &caller.lfdi_hex)?,
            }
            let existing = mup
                .mirror_meter_readings
                .iter()
                .find(|m| m.mrid == mmr.mrid);
            let known = existing.and_then(|m| m.reading_type.clone());
            let rt = mmr
                .reading_type
                .as_ref()
                .or(known.as_ref())
                .ok_or_else(|| {
                    XmlError::values(format!(
                        "MirrorMeterReading {} has no ReadingType (post it once with one)",
                        mmr.mrid
                    ))
                })?;
            let measures = classify(rt)?;
            // The attested register stays one: its ReadingType may not turn it into
            // something else (its readings would stop being checked and paired). The
            // designation outlives a change of its mirror's roleFlags; it is released only
            // with the mirror.
            let slot = |flow: Flow| match flow {
                Flow::Import => 0,
                Flow::Export => 1,
            };
            let held = [Flow::Import, Flow::Export]
                .into_iter()
                .find(|f| designated[slot(*f)].as_deref() == Some(mmr.mrid.as_str()));
            if let Some(flow) = held {
                if !matches!(measures, Measures::Register(f, _) if f == flow) {
                    return Err(XmlError::values(format!(
                        "MirrorMeterReading {} is the meter's attested {flow:?} register: its ReadingType may not change to this one",
                        mmr.mrid
                    ))
                    .into());
                }
            }
            let attested = match measures {
                Measures::Register(flow, _) if held == Some(flow) => true,
                // The first whole Wh register of a direction in a site mirror.
                Measures::Register(flow, _) if site && designated[slot(flow)].is_none() => {
                    w.designate(&caller.lfdi_hex, flow, &mmr.mrid)?;
                    designated[slot(flow)] = Some(mmr.mrid.clone());
                    true
                }
                _ => false,
            };
            match measures {
                // The device's attested register for this direction: the full checks.
                Measures::Register(..) if attested => {
                    for reading in register_readings(&mmr, known.as_ref())? {
                        if let Some(t) = self.accept(w, caller, mirror, &mmr.mrid, reading, now)? {
                            stored.add(t);
                        }
                    }
                }
                // Power quality, other registers: stored as posted, never attested.
                _ => {
                    for m in measurements(&mmr, rt)? {
                        self.within_retention(i64::from(m.end), now)?;
                        if let Err(stored) =
                            w.record_measurement(&caller.lfdi_hex, &mmr.mrid, &m)?
                        {
                            return Err(Refusal::Reading(
                                "conflict",
                                XmlError::values(format!(
                                    "MirrorMeterReading {} already has value {} at {}, not {}",
                                    mmr.mrid, stored.value, m.end, m.value
                                )),
                            ));
                        }
                    }
                }
            }
            // What a post leaves out of the definition stays as it was.
            let definition = MirrorMeterReading {
                xmlns: None,
                mrid: mmr.mrid.clone(),
                description: mmr
                    .description
                    .clone()
                    .or_else(|| existing.and_then(|m| m.description.clone())),
                reading_type: mmr.reading_type.clone().or(known),
                ..MirrorMeterReading::default()
            };
            let defined = mup.mirror_meter_readings.len();
            match mup
                .mirror_meter_readings
                .iter_mut()
                .find(|m| m.mrid == mmr.mrid)
            {
                Some(existing) => *existing = definition,
                None if defined >= MAX_READINGS_PER_MIRROR => {
                    return Err(XmlError::values(format!(
                        "a MirrorUsagePoint may define at most {MAX_READINGS_PER_MIRROR} MirrorMeterReadings"
                    ))
                    .into());
                }
                None => mup.mirror_meter_readings.push(definition),
            }
        }
        Ok(stored)
    }

    /// A reading that ends before the retention window would be pruned at the next pass:
    /// refused (and so never attested) instead.
    fn within_retention(&self, end: i64, now: i64) -> Result<(), Refusal> {
        let oldest = now.saturating_sub(self.settings.retention_s);
        if end < oldest {
            return Err(Refusal::Reading(
                "older_than_retention",
                XmlError::values(format!(
                    "reading ends at {end}, before the retention window (kept from {oldest})"
                )),
            ));
        }
        Ok(())
    }

    /// A post's stored readings, counted (after its commit: a batch may run it twice).
    fn counted(&self, caller: &MeterEntry, stored: Stored) {
        self.metrics.readings_accepted.add(stored.readings);
        if let Some(t) = stored.latest {
            self.metrics.reading_from(&caller.code, i64::from(t));
        }
    }

    /// Accepts one register reading if it continues the meter's register plausibly (later
    /// time, value not lower, delta within capacity x time); the same reading twice (a
    /// retry) is accepted once. The attestor asks the chain's full rules again, against the
    /// last attested reading, before it signs (`attestor`).
    fn accept(
        &self,
        w: &Writer,
        caller: &MeterEntry,
        mirror: u64,
        mmr: &str,
        reading: RegisterReading,
        now: i64,
    ) -> Result<Option<u32>, Refusal> {
        let last = w.latest(&caller.lfdi_hex, reading.flow)?;
        // A retry (the reply to an earlier post lost): the same reading again is accepted
        // and changes nothing; another value at the same time is a conflict. Only a
        // reading not after the latest can be one, so new readings skip the lookup.
        if last.is_some_and(|l| reading.timestamp <= l.timestamp) {
            if let Some(stored) = w.reading_at(&caller.lfdi_hex, mmr, reading.timestamp)? {
                if stored == reading.wh {
                    return Ok(None);
                }
                return Err(Refusal::Reading(
                    "conflict",
                    XmlError::values(format!(
                        "MirrorMeterReading {mmr} already has {stored} Wh at {}, not {}",
                        reading.timestamp, reading.wh
                    )),
                ));
            }
        }
        self.within_retention(i64::from(reading.timestamp), now)?;
        // The period may still be running (start = now, duration = postRate): its start
        // must not be ahead of the bridge's clock, nor its end more than a post period.
        let skew = i64::from(self.settings.max_future_skew_s);
        if i64::from(reading.start) > now + skew {
            return Err(Refusal::Reading(
                "ahead_of_clock",
                XmlError::values(format!(
                    "reading period starts at {}, ahead of the bridge clock {now}",
                    reading.start
                )),
            ));
        }
        if i64::from(reading.timestamp) > now + skew + i64::from(self.settings.post_rate_s) {
            return Err(Refusal::Reading(
                "ahead_of_clock",
                XmlError::values(format!(
                    "reading period ends at {}, more than a post period ({} s) after the bridge clock {now}",
                    reading.timestamp, self.settings.post_rate_s
                )),
            ));
        }
        if let Some(last) = last {
            if reading.timestamp <= last.timestamp {
                return Err(Refusal::Reading(
                    "not_after_last",
                    XmlError::values(format!(
                        "reading time {} is not after the last reading's {}",
                        reading.timestamp, last.timestamp
                    )),
                ));
            }
            if reading.wh < last.wh {
                return Err(Refusal::Reading(
                    "register_decreased",
                    XmlError::values(format!(
                        "cumulative register went down from {} to {} Wh",
                        last.wh, reading.wh
                    )),
                ));
            }
            // Power over time, as the oracle bounds it: if every step between raw readings
            // is within it, so is any span between the readings the attestor picks.
            let elapsed = u64::from(reading.timestamp - last.timestamp);
            let power = match reading.flow {
                crate::normalize::Flow::Import => caller.capacity.max_import_w,
                crate::normalize::Flow::Export => caller.capacity.max_export_w(),
            };
            let plausible = oracle::rules::within_bound(
                reading.wh - last.wh,
                power,
                elapsed,
                self.settings.tolerance_bps,
            )
            .map_err(|_| {
                Refusal::Reading(
                    "over_capacity",
                    XmlError::values("register delta overflows"),
                )
            })?;
            if !plausible {
                return Err(Refusal::Reading(
                    "over_capacity",
                    XmlError::values(format!(
                        "{} Wh in {elapsed} s is more than the meter's capacity allows",
                        reading.wh - last.wh
                    )),
                ));
            }
        }
        w.record_reading(&StoredReading {
            lfdi: caller.lfdi_hex.clone(),
            mirror,
            mmr: mmr.to_string(),
            reading,
            received_at: now,
        })?;
        Ok(Some(reading.timestamp))
    }
}
