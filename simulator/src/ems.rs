//! A building's energy-management system over IEEE 2030.5, as the campus simulator runs
//! one beside each meter: it tells the bridge its price limits (PriceResponseCfg), reads
//! the campus price for an interval (Pricing), reserves its forecast surplus or deficit
//! for it when the price suits (FlowReservation; the keeper turns the request into the
//! building's order, signed by the campus's order delegate), reads the market's answers,
//! and answers demand-response events (DRLC) by shedding load.
use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use sep2::market::{
    self as m, ConsumptionTariffIntervalList, EndDeviceControl, EndDeviceControlList,
    FlowReservationResponseList, TimeTariffIntervalList,
};

use crate::client::MeterClient;

/// What the EMS reserved for an interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub mrid: String,
    pub href: String,
    /// Positive: buying; negative: selling (IEEE 2030.5's sign).
    pub energy_wh: i64,
}

/// The market's answer to one of its reservations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub subject: String,
    /// What was filled, signed like the request.
    pub energy_wh: i64,
    pub status: u8,
    pub reason: Option<String>,
}

pub struct Ems {
    pub code: String,
    /// The EndDevice's index (`/edev/{index}`).
    pub index: u16,
    pub lfdi_hex: String,
    client: MeterClient,
    /// The highest price it buys at and the lowest it sells at, quote base units per kWh.
    pub bid: u64,
    pub ask: u64,
    /// Smallest reservation worth making, Wh.
    pub min_wh: u64,
    /// Most the building draws and delivers, W (its registered capacity).
    pub max_import_w: u64,
    pub max_export_w: u64,
    /// The building's peak load, W (to turn a kW reduction into a share).
    pub peak_load_w: f64,
    next_request: u64,
    /// Demand-response events seen, with the last status it answered.
    answered: BTreeMap<String, u8>,
    /// Responses posted (all statuses).
    pub responses_posted: u64,
}

fn price_of(body: &str) -> Result<Option<i64>> {
    let (_, list) =
        sep2::parse::<ConsumptionTariffIntervalList>(body, &["ConsumptionTariffIntervalList"])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(list.items.first().map(|c| i64::from(c.price)))
}

impl Ems {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        code: &str,
        index: u16,
        lfdi_hex: &str,
        client: MeterClient,
        bid: u64,
        ask: u64,
        max_import_w: u64,
        max_export_w: u64,
        peak_load_w: f64,
    ) -> Ems {
        Ems {
            code: code.to_string(),
            index,
            lfdi_hex: lfdi_hex.to_string(),
            client,
            bid,
            ask,
            min_wh: 100,
            max_import_w,
            max_export_w,
            peak_load_w,
            next_request: 1,
            answered: BTreeMap::new(),
            responses_posted: 0,
        }
    }

    /// Posts its price limits: `consumeThreshold` on the import rate (the most it buys at)
    /// and on the export rate (the least it sells at).
    pub async fn set_price_limits(&mut self) -> Result<()> {
        for (rc, limit) in [(0, self.bid), (1, self.ask)] {
            let body = format!(
                r#"<PriceResponseCfg xmlns="{}"><consumeThreshold>{limit}</consumeThreshold><maxReductionThreshold>{limit}</maxReductionThreshold><RateComponentLink href="/tp/0/rc/{rc}"/></PriceResponseCfg>"#,
                sep2::NS
            );
            let r = self
                .client
                .post(&format!("/edev/{}/cfg/prcfg", self.index), body)
                .await?;
            if r.status != 201 && r.status != 204 {
                bail!(
                    "{}: PriceResponseCfg refused: {} {}",
                    self.code,
                    r.status,
                    r.body
                );
            }
        }
        Ok(())
    }

    /// The campus's prices for the interval starting at `start` (import, export; per kWh in
    /// the tariff's units), if published (cleared or indicative).
    pub async fn price(&mut self, start: i64) -> Result<Option<(i64, i64)>> {
        let mut prices = [0i64; 2];
        for (rc, slot) in prices.iter_mut().enumerate() {
            let r = self
                .client
                .get(&format!("/tp/0/rc/{rc}/tti?a={start}&l=1"))
                .await?;
            let (_, list) =
                sep2::parse::<TimeTariffIntervalList>(&r.body, &["TimeTariffIntervalList"])
                    .map_err(|e| anyhow::anyhow!("{}: {e}", self.code))?;
            let Some(tti) = list.items.first().filter(|t| t.interval.start == start) else {
                return Ok(None);
            };
            let cti = self.client.get(&tti.consumption_intervals.href).await?;
            match price_of(&cti.body)? {
                Some(p) => *slot = p,
                None => return Ok(None),
            }
        }
        Ok(Some((prices[0], prices[1])))
    }

    /// Reserves `net_wh` (positive: a surplus to sell; negative: a deficit to buy) for the
    /// interval at `start`, unless the campus price says it would not trade: a buyer whose
    /// limit is under the price, a seller whose limit is over it. Returns the reservation.
    pub async fn reserve(
        &mut self,
        start: i64,
        duration_s: u32,
        net_wh: i64,
        now: i64,
    ) -> Result<Option<Reservation>> {
        let wh = net_wh.unsigned_abs();
        if wh < self.min_wh {
            return Ok(None);
        }
        if let Some((import, export)) = self.price(start).await? {
            let wont_trade = if net_wh < 0 {
                import > self.bid as i64
            } else {
                export < self.ask as i64
            };
            if wont_trade {
                return Ok(None);
            }
        }
        // The most the meter can move in the interval, and the power that takes.
        let max_w = if net_wh < 0 {
            self.max_import_w
        } else {
            self.max_export_w
        };
        let max_wh = max_w * u64::from(duration_s) / 3_600;
        let wh = wh.min(max_wh);
        if wh < self.min_wh {
            return Ok(None);
        }
        let power = (wh * 3_600).div_ceil(u64::from(duration_s)).min(max_w);
        let energy = if net_wh < 0 { wh as i64 } else { -(wh as i64) };
        let power = m::ActivePower::of_watts(if net_wh < 0 {
            power as i64
        } else {
            -(power as i64)
        });
        // The energy must fit the power as the bridge reads it (rounded to its multiplier).
        let fits = power.watts().is_some_and(|w| {
            u128::from(w.unsigned_abs()) * u128::from(duration_s) / 3_600 >= u128::from(wh)
        });
        let power = if fits {
            power
        } else {
            m::ActivePower {
                multiplier: power.multiplier,
                value: power.value.saturating_add(power.value.signum()),
            }
        };
        let mrid = format!(
            "{:08X}{:016X}{:08X}",
            u32::from(self.index),
            self.next_request,
            m::DOCUMENTATION_PEN
        );
        self.next_request += 1;
        let body = format!(
            r#"<FlowReservationRequest xmlns="{ns}"><mRID>{mrid}</mRID><description>EMS {code}</description><creationTime>{now}</creationTime><energyRequested><multiplier>0</multiplier><value>{energy}</value></energyRequested><intervalRequested><duration>{duration_s}</duration><start>{start}</start></intervalRequested><powerRequested><multiplier>{pm}</multiplier><value>{pv}</value></powerRequested><RequestStatus><dateTime>{now}</dateTime><requestStatus>0</requestStatus></RequestStatus></FlowReservationRequest>"#,
            ns = sep2::NS,
            code = self.code,
            pm = power.multiplier,
            pv = power.value,
        );
        let r = self
            .client
            .post(&format!("/edev/{}/frq", self.index), body)
            .await?;
        if r.status != 201 {
            bail!(
                "{}: flow reservation refused: {} {}",
                self.code,
                r.status,
                r.body
            );
        }
        Ok(Some(Reservation {
            mrid,
            href: r.location.context("201 without Location")?,
            energy_wh: energy,
        }))
    }

    /// The market's answers to its reservations.
    pub async fn answers(&mut self) -> Result<Vec<Answer>> {
        let r = self
            .client
            .get(&format!("/edev/{}/frp?l=255", self.index))
            .await?;
        let (_, list) =
            sep2::parse::<FlowReservationResponseList>(&r.body, &["FlowReservationResponseList"])
                .map_err(|e| anyhow::anyhow!("{}: {e}", self.code))?;
        Ok(list
            .items
            .into_iter()
            .map(|f| Answer {
                subject: f.subject,
                energy_wh: f.energy_available.wh().unwrap_or(0),
                status: f.event_status.current_status,
                reason: f.event_status.reason,
            })
            .collect())
    }

    /// Reads the campus's demand-response events at `now`, answers each (received when
    /// first seen, started once in effect, completed once over) and returns the share of
    /// load to shed now.
    pub async fn demand_response(&mut self, now: i64) -> Result<f64> {
        let r = self.client.get("/dr/0/edc?l=255").await?;
        let (_, list) = sep2::parse::<EndDeviceControlList>(&r.body, &["EndDeviceControlList"])
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.code))?;
        let mut shed: f64 = 0.0;
        for e in list.items {
            let end = e.interval.start + i64::from(e.interval.duration);
            let cancelled = e.event_status.current_status == m::EVENT_CANCELLED;
            let status = if cancelled {
                6
            } else if now >= end {
                m::RESPONSE_COMPLETED
            } else if now >= e.interval.start {
                m::RESPONSE_STARTED
            } else {
                m::RESPONSE_RECEIVED
            };
            if !cancelled && now >= e.interval.start && now < end {
                shed = shed.max(self.share(&e));
            }
            let last = self.answered.get(&e.mrid).copied();
            if last == Some(status) {
                continue;
            }
            // Never answered: received first.
            if last.is_none() && status != m::RESPONSE_RECEIVED {
                self.respond(&e, m::RESPONSE_RECEIVED, now).await?;
            }
            self.respond(&e, status, now).await?;
            self.answered.insert(e.mrid.clone(), status);
        }
        Ok(shed)
    }

    /// The share of load an event asks to shed.
    fn share(&self, e: &EndDeviceControl) -> f64 {
        if let Some(o) = e.offset {
            return f64::from(o.load_adjustment_percentage_offset) / 10_000.0;
        }
        if let Some(d) = e.duty_cycle {
            return 1.0 - f64::from(d.normal_value.min(100)) / 100.0;
        }
        if let Some(t) = e.target_reduction {
            if t.unit == m::UNIT_KW && self.peak_load_w > 0.0 {
                return (f64::from(t.value) * 1000.0 / self.peak_load_w).min(1.0);
            }
        }
        0.0
    }

    async fn respond(&mut self, e: &EndDeviceControl, status: u8, now: i64) -> Result<()> {
        let applied = match (e.offset, e.duty_cycle) {
            (Some(o), _) => format!(
                "<Offset><loadAdjustmentPercentageOffset>{}</loadAdjustmentPercentageOffset></Offset>",
                o.load_adjustment_percentage_offset
            ),
            (_, Some(d)) => format!("<DutyCycle><normalValue>{}</normalValue></DutyCycle>", d.normal_value),
            _ => String::new(),
        };
        let body = format!(
            r#"<DrResponse xmlns="{}"><createdDateTime>{now}</createdDateTime><endDeviceLFDI>{}</endDeviceLFDI><status>{status}</status><subject>{}</subject>{applied}</DrResponse>"#,
            sep2::NS,
            self.lfdi_hex,
            e.mrid
        );
        let r = self.client.post("/rsps/0/rsp", body).await?;
        if r.status != 201 {
            bail!("{}: DrResponse refused: {} {}", self.code, r.status, r.body);
        }
        self.responses_posted += 1;
        Ok(())
    }
}
