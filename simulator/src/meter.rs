//! One simulated meter speaking IEEE 2030.5 to the bridge: discovery, its MirrorUsagePoint,
//! then cumulative import and export readings every post rate. A reading that is not
//! acknowledged is retried with backoff; since the registers are cumulative, the newest
//! registers replace an unacknowledged older reading.
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::client::MeterClient;
use sep2::{
    DateTimeInterval, MirrorMeterReading, MirrorMeterReadingList, MirrorUsagePoint, Reading,
    ReadingType,
};

use crate::profile::Registers;

/// What a meter's registers looked like when the bridge last acknowledged them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Acknowledged {
    pub timestamp: i64,
    pub import_wh: u64,
    pub export_wh: u64,
    pub readings: u64,
}

pub struct SimulatedMeter {
    pub code: String,
    pub lfdi_hex: String,
    client: MeterClient,
    location: Option<String>,
    pub acknowledged: Acknowledged,
    /// Retries on connection errors and 5xx answers, with backoff doubling up to 5 s.
    pub max_retry: Duration,
}

/// A cumulative energy register in Wh: flowDirection 1 (import) or 19 (export).
pub fn cumulative_reading_type(flow: u8) -> ReadingType {
    ReadingType {
        accumulation_behaviour: Some(9),
        commodity: Some(1),
        data_qualifier: Some(0),
        flow_direction: Some(flow),
        kind: Some(12),
        power_of_ten_multiplier: Some(0),
        uom: Some(72),
        ..ReadingType::default()
    }
}

impl SimulatedMeter {
    pub fn new(code: &str, lfdi_hex: &str, client: MeterClient) -> Self {
        SimulatedMeter {
            code: code.to_string(),
            lfdi_hex: lfdi_hex.to_string(),
            client,
            location: None,
            acknowledged: Acknowledged::default(),
            max_retry: Duration::from_secs(60),
        }
    }

    /// The mRIDs of this meter's mirror and registers: its LFDI's first 12 bytes, then a
    /// suffix (mRIDs are 128-bit and must be unique per device).
    fn mrid(&self, suffix: &str) -> String {
        format!("{}{suffix}", &self.lfdi_hex[..24])
    }

    fn register(
        &self,
        suffix: &str,
        flow: u8,
        wh: u64,
        t: i64,
        period: u32,
        with_type: bool,
    ) -> MirrorMeterReading {
        MirrorMeterReading {
            xmlns: None,
            mrid: self.mrid(suffix),
            description: Some(if flow == 1 {
                "Cumulative import".into()
            } else {
                "Cumulative export".into()
            }),
            reading: Some(Reading {
                quality_flags: Some("01".into()),
                time_period: Some(DateTimeInterval {
                    duration: period,
                    start: t - i64::from(period),
                }),
                value: Some(wh as i64),
                ..Reading::default()
            }),
            reading_type: with_type.then(|| cumulative_reading_type(flow)),
            ..MirrorMeterReading::default()
        }
    }

    /// Sends one request, retrying connection failures and 5xx with backoff.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<crate::client::ClientResponse> {
        let started = tokio::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            match self.client.request(method, path, body.clone()).await {
                Ok(r) if r.status < 500 => return Ok(r),
                Ok(r) => {
                    tracing::warn!(meter = %self.code, status = r.status, "server error, retrying")
                }
                Err(e) => {
                    tracing::warn!(meter = %self.code, error = %e, "bridge unreachable, retrying")
                }
            }
            self.client.disconnect();
            if started.elapsed() + wait > self.max_retry {
                bail!(
                    "{}: no answer from the bridge for {:?}",
                    self.code,
                    self.max_retry
                );
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// Discovery (dcap, edev, mup) and the MirrorUsagePoint, created or found again.
    pub async fn connect(&mut self, registers: Registers, t: i64, period: u32) -> Result<()> {
        let dcap = self.send("GET", "/dcap", None).await?;
        if dcap.status != 200 || !dcap.body.contains("MirrorUsagePointListLink") {
            bail!(
                "{}: unexpected DeviceCapability ({}): {}",
                self.code,
                dcap.status,
                dcap.body
            );
        }
        let edev = self.send("GET", "/edev", None).await?;
        if !edev.body.contains(&self.lfdi_hex) {
            bail!("{}: the bridge does not list this device", self.code);
        }
        self.send("GET", "/mup?s=0&l=255", None).await?;
        let mup = MirrorUsagePoint {
            xmlns: sep2::with_ns(),
            mrid: self.mrid("00000001"),
            description: Some(format!("{} site meter", self.code)),
            role_flags: "03".into(),
            service_category_kind: 0,
            status: 1,
            device_lfdi: self.lfdi_hex.clone(),
            mirror_meter_readings: vec![
                self.register("0000000A", 1, registers.import_wh, t, period, true),
                self.register("0000000B", 19, registers.export_wh, t, period, true),
            ],
            ..MirrorUsagePoint::default()
        };
        let r = self
            .send("POST", "/mup", Some(sep2::to_xml("MirrorUsagePoint", &mup)))
            .await?;
        match r.status {
            201 | 204 => {
                self.location = Some(r.location.context("201/204 without Location")?);
                self.acknowledged = Acknowledged {
                    timestamp: t,
                    import_wh: registers.import_wh,
                    export_wh: registers.export_wh,
                    readings: self.acknowledged.readings + 2,
                };
                Ok(())
            }
            status => bail!(
                "{}: MirrorUsagePoint refused ({status}): {}",
                self.code,
                r.body
            ),
        }
    }

    /// Posts the registers at `t`; returns once the bridge acknowledged them.
    pub async fn post(&mut self, registers: Registers, t: i64, period: u32) -> Result<()> {
        let location = self.location.clone().context("post before connect")?;
        let list = MirrorMeterReadingList {
            xmlns: sep2::with_ns(),
            readings: vec![
                self.register("0000000A", 1, registers.import_wh, t, period, false),
                self.register("0000000B", 19, registers.export_wh, t, period, false),
            ],
        };
        let r = self
            .send(
                "POST",
                &location,
                Some(sep2::to_xml("MirrorMeterReadingList", &list)),
            )
            .await?;
        match r.status {
            201 | 204 => {
                self.acknowledged = Acknowledged {
                    timestamp: t,
                    import_wh: registers.import_wh,
                    export_wh: registers.export_wh,
                    readings: self.acknowledged.readings + 2,
                };
                Ok(())
            }
            // The bridge lost our mirror (e.g. deleted): create it again.
            404 => self.connect(registers, t, period).await,
            status => bail!("{}: readings refused ({status}): {}", self.code, r.body),
        }
    }
}
