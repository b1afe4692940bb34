//! Runs the campus: every building's model steps through simulated time and its meter posts
//! the registers every post rate; simulated time can run faster than real time.
use std::time::Duration;

use anyhow::Result;
use futures_util::future::join_all;

use super::meter::SimulatedMeter;
use super::profile::{BuildingModel, Registers};

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
    pub acknowledged: super::meter::Acknowledged,
}

pub struct Campus {
    pub models: Vec<BuildingModel>,
    pub meters: Vec<SimulatedMeter>,
}

impl Campus {
    /// Runs the options' span; returns each building's totals.
    pub async fn run(&mut self, options: &SimOptions) -> Result<Vec<BuildingSummary>> {
        let period = options.post_rate_s;
        let step = 60u32.min(period);
        let started = tokio::time::Instant::now();
        let first: Vec<Registers> = self.models.iter().map(|m| m.registers()).collect();
        join_all(
            self.meters
                .iter_mut()
                .zip(first)
                .map(|(meter, registers)| meter.connect(registers, options.start, period)),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;

        let mut t = options.start;
        let end = options.start + options.duration_s;
        while t + i64::from(period) <= end {
            // The models advance in one-minute steps between posts.
            let mut elapsed = 0;
            while elapsed < period {
                for model in &mut self.models {
                    model.step(t + i64::from(elapsed), step);
                }
                elapsed += step;
            }
            t += i64::from(period);
            if options.speed > 0.0 {
                let due = Duration::from_secs_f64((t - options.start) as f64 / options.speed);
                tokio::time::sleep_until(started + due).await;
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
            if options.progress_every_s > 0
                && (t - options.start) % options.progress_every_s < i64::from(period)
            {
                let acked: u64 = self.meters.iter().map(|m| m.acknowledged.readings).sum();
                println!(
                    "  simulated {:>6.1} h of {:.1} h, {acked} readings acknowledged",
                    (t - options.start) as f64 / 3600.0,
                    options.duration_s as f64 / 3600.0
                );
            }
        }
        Ok(self
            .models
            .iter()
            .zip(&self.meters)
            .map(|(model, meter)| BuildingSummary {
                code: model.code.clone(),
                registers: model.registers(),
                acknowledged: meter.acknowledged,
            })
            .collect())
    }
}
