//! Runs the campus: every building's model steps through simulated time and its meter posts
//! the registers every post rate; simulated time can run faster than real time.
use std::time::Duration;

use anyhow::Result;
use futures_util::future::join_all;

use crate::meter::SimulatedMeter;
use crate::profile::{BuildingModel, Registers};

#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Simulated start, Unix seconds.
    pub start: i64,
    /// Simulated duration, seconds.
    pub duration_s: i64,
    /// Seconds between posts (IEEE 2030.5 postRate).
    pub post_rate_s: u32,
    /// Simulated seconds per real second; 0 runs as fast as the bridge answers.
    pub speed: f64,
    /// Print progress every this many simulated seconds (0: never).
    pub progress_every_s: i64,
}

/// What one building did and what its meter got acknowledged.
#[derive(Clone, Debug)]
pub struct BuildingSummary {
    pub code: String,
    pub registers: Registers,
    pub acknowledged: crate::meter::Acknowledged,
}

pub struct Campus {
    pub models: Vec<BuildingModel>,
    pub meters: Vec<SimulatedMeter>,
}

impl Campus {
    /// Every meter's discovery and MirrorUsagePoint, with its registers at `start`.
    pub async fn connect(&mut self, start: i64, period: u32) -> Result<()> {
        let first: Vec<Registers> = self.models.iter().map(|m| m.registers()).collect();
        join_all(
            self.meters
                .iter_mut()
                .zip(first)
                .map(|(meter, registers)| meter.connect(registers, start, period)),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        Ok(())
    }

    /// Steps the models from `from` and has every meter post its registers at each post time
    /// up to `to` (the models advance in one-minute steps between posts). Returns the time of
    /// the last post. `speed` paces it against real time (0: as fast as the bridge answers;
    /// `started` is the real instant that simulated `paced_from` corresponds to).
    pub async fn advance(
        &mut self,
        from: i64,
        to: i64,
        period: u32,
        pace: Option<(tokio::time::Instant, i64, f64)>,
    ) -> Result<i64> {
        let step = 60u32.min(period);
        let mut t = from;
        while t + i64::from(period) <= to {
            let mut elapsed = 0;
            while elapsed < period {
                for model in &mut self.models {
                    model.step(t + i64::from(elapsed), step);
                }
                elapsed += step;
            }
            t += i64::from(period);
            if let Some((started, paced_from, speed)) = pace {
                if speed > 0.0 {
                    let due = Duration::from_secs_f64((t - paced_from) as f64 / speed);
                    tokio::time::sleep_until(started + due).await;
                }
            }
            let registers: Vec<Registers> = self.models.iter().map(|m| m.registers()).collect();
            join_all(
                self.meters
                    .iter_mut()
                    .zip(registers)
                    .map(|(meter, r)| meter.post(r, t, period)),
            )
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        }
        Ok(t)
    }

    /// Runs the options' span; returns each building's totals.
    pub async fn run(&mut self, options: &SimOptions) -> Result<Vec<BuildingSummary>> {
        let period = options.post_rate_s;
        let started = tokio::time::Instant::now();
        self.connect(options.start, period).await?;
        let end = options.start + options.duration_s;
        // Progress every `progress_every_s` (whole posts), or one stretch.
        let stretch = if options.progress_every_s > 0 {
            (options.progress_every_s / i64::from(period)).max(1) * i64::from(period)
        } else {
            options.duration_s.max(i64::from(period))
        };
        let mut t = options.start;
        while t + i64::from(period) <= end {
            let to = (t + stretch).min(end);
            t = self
                .advance(t, to, period, Some((started, options.start, options.speed)))
                .await?;
            if options.progress_every_s > 0 {
                let acked: u64 = self.meters.iter().map(|m| m.acknowledged.readings).sum();
                println!(
                    "  simulated {:>6.1} h of {:.1} h, {acked} readings acknowledged",
                    (t - options.start) as f64 / 3600.0,
                    options.duration_s as f64 / 3600.0
                );
            }
        }
        Ok(self.summaries())
    }

    pub fn summaries(&self) -> Vec<BuildingSummary> {
        self.models
            .iter()
            .zip(&self.meters)
            .map(|(model, meter)| BuildingSummary {
                code: model.code.clone(),
                registers: model.registers(),
                acknowledged: meter.acknowledged,
            })
            .collect()
    }
}
