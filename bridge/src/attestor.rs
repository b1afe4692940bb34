//! The attestor: turns each meter's latest measured (import, export) pair into batches in the
//! oracle's format (`oracle::attestation`), signs them with the bridge's Ed25519 key, and
//! keeps them in the store until the keeper acknowledges them.
//!
//! It attests only what the chain will accept: each pair is judged by the oracle's own rules
//! (`oracle::rules::assess`) against the meter's last *attested* reading, with the capacity,
//! status and limits the chain holds, and both registers of a reading were measured at the
//! same time (the store pairs them by timestamp). A pair the rules refuse is not signed; the
//! meter's next pair is judged against the same last attested reading.
use std::path::Path;
use std::sync::Arc;

use anchor_lang::prelude::Pubkey;
use anyhow::{Context, Result};
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use oracle::attestation::{batch_domain, batch_hash, encode_batch, meters_digest, Reading};
use oracle::rules::{assess, Battery, LastReading, MeterFacts, Verdict};
use oracle::ReadingLimits;

use crate::directory::Directory;
use crate::store::{Attested, SignedBatch, Store};

pub use keeper_protocol::B64;

/// Loads the attestor key from `path`, creating it (mode 0600) on first start. A store that
/// already holds signed batches (`batches_signed` > 0) and no key means a restore without the
/// key or the wrong volume: refused, since a new key would sign batches the oracle does not
/// trust, under sequences it may already have applied.
pub fn load_or_create_key(path: &Path, batches_signed: u64) -> Result<SigningKey> {
    if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let text = text.trim();
        anyhow::ensure!(
            text.len() == 64,
            "attestor key {} is not 64 hex digits",
            path.display()
        );
        let secret: [u8; 32] = keeper_protocol::hex::decode_array(text)
            .with_context(|| format!("attestor key {} is not 64 hex digits", path.display()))?;
        return Ok(SigningKey::from_bytes(&secret));
    }
    anyhow::ensure!(
        batches_signed == 0,
        "attestor key {} is missing but the store holds {batches_signed} signed batches: restore \
         the key beside the store (a new key would not be trusted by the oracle)",
        path.display()
    );
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    crate::write_secret(path, &keeper_protocol::hex::encode(&key.to_bytes()))?;
    Ok(key)
}

#[derive(Clone, Debug)]
pub struct AttestorSettings {
    /// The oracle program and the registry campus the batches are for.
    pub oracle_program: Pubkey,
    pub campus: Pubkey,
    /// The cluster's genesis hash (the oracle's domain binds batches to it); nothing is
    /// signed until it is known.
    pub cluster: Option<[u8; 32]>,
    /// The oracle's limits, so that nothing attested is refused on-chain.
    pub limits: ReadingLimits,
    /// Readings per batch (see README for how many fit one transaction).
    pub max_readings: usize,
}

impl AttestorSettings {
    /// The domain batches carry, once the cluster is known.
    pub fn domain(&self) -> Option<[u8; 32]> {
        self.cluster.map(|cluster| {
            batch_domain(
                &self.oracle_program.to_bytes(),
                &self.campus.to_bytes(),
                &cluster,
            )
        })
    }
}

pub struct Attestor {
    pub store: Arc<Store>,
    pub directory: Arc<Directory>,
    pub key: SigningKey,
    pub settings: AttestorSettings,
}

/// The registry's campus account, which batches name.
pub fn campus_address() -> Pubkey {
    Pubkey::find_program_address(&[registry::seeds::CAMPUS], &registry::ID).0
}

/// The oracle state account of a meter: what a batch commits to for each reading.
pub fn meter_state_address(oracle_program: &Pubkey, lfdi: &[u8; 20]) -> Pubkey {
    Pubkey::find_program_address(&[oracle::seeds::METER_STATE, lfdi], oracle_program).0
}

impl Attestor {
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs one batch of the meters with new, acceptable readings, if any; meters in
    /// registry-index order. `now` is the clock the rules judge ages and skew against.
    pub fn attest_once(&self, now: i64) -> Result<Option<SignedBatch>> {
        let Some(domain) = self.settings.domain() else {
            tracing::warn!("cluster genesis hash not configured: nothing is attested");
            return Ok(None);
        };
        let meters = self.directory.all();
        // Durable before visible: the keeper may fetch the batch as soon as it can see it.
        self.store
            .write_immediate(|w| -> Result<Option<SignedBatch>> {
                let mut readings = Vec::new();
                let mut states = Vec::new();
                let mut lfdis = Vec::new();
                let mut attested = Vec::new();
                for meter in &meters {
                    if readings.len() == self.settings.max_readings {
                        break;
                    }
                    let Some(pair) = w.pair(&meter.lfdi_hex)? else {
                        continue;
                    };
                    let last = w.attested(&meter.lfdi_hex)?;
                    if last.is_some_and(|l| l.timestamp >= pair.timestamp) {
                        continue;
                    }
                    let reading = Reading {
                        timestamp: pair.timestamp,
                        import_wh: pair.import_wh,
                        export_wh: pair.export_wh,
                        quality: pair.quality,
                    };
                    let facts = MeterFacts {
                        capacity: meter.capacity,
                        active_since: meter.active.then_some(meter.active_since),
                    };
                    let full = Battery::full(&meter.capacity);
                    let last_reading = last.map(|l| LastReading {
                        timestamp: i64::from(l.timestamp),
                        import_wh: l.import_wh,
                        export_wh: l.export_wh,
                        battery: Battery {
                            stored_bound_wh: l.stored_bound_wh.unwrap_or(full.stored_bound_wh),
                            stored_grid_wh: l.stored_grid_wh.unwrap_or(full.stored_grid_wh),
                        },
                    });
                    let battery = match assess(
                        last_reading.as_ref(),
                        &reading,
                        &facts,
                        &self.settings.limits,
                        now,
                    ) {
                        Ok(Verdict::Baseline { battery } | Verdict::Delta { battery, .. }) => {
                            battery
                        }
                        Err(reason) => {
                            // Not yet (too soon after the last) or never (implausible, stale, meter
                            // suspended): either way the chain would refuse it, so it is not signed.
                            if reason != oracle::OracleError::IntervalTooShort {
                                tracing::warn!(
                                    meter = %meter.code,
                                    timestamp = pair.timestamp,
                                    reason = %reason.name(),
                                    "reading not attested"
                                );
                            }
                            continue;
                        }
                    };
                    readings.push(reading);
                    states.push(
                        meter_state_address(&self.settings.oracle_program, &meter.lfdi).to_bytes(),
                    );
                    lfdis.push(meter.lfdi_hex.clone());
                    attested.push((
                        meter.lfdi_hex.clone(),
                        Attested {
                            timestamp: pair.timestamp,
                            import_wh: pair.import_wh,
                            export_wh: pair.export_wh,
                            stored_bound_wh: Some(battery.stored_bound_wh),
                            stored_grid_wh: Some(battery.stored_grid_wh),
                        },
                    ));
                }
                if readings.is_empty() {
                    return Ok(None);
                }
                let sequence = w.next_batch_sequence()?;
                let message =
                    encode_batch(&domain, sequence, &meters_digest(states.iter()), &readings)
                        .context("batch too large")?;
                let signature = self.key.sign(&message);
                let batch = SignedBatch {
                    sequence,
                    hash: keeper_protocol::hex::encode(&batch_hash(&message)),
                    message: B64.encode(&message),
                    attestor: B64.encode(self.public_key()),
                    signature: B64.encode(signature.to_bytes()),
                    meters: lfdis,
                    readings: readings.len() as u16,
                    created_at: now,
                    acknowledged: false,
                };
                w.put_batch(&batch)?;
                for (lfdi, a) in &attested {
                    w.set_attested(lfdi, a)?;
                }
                Ok(Some(batch))
            })
    }

    /// Marks batch `sequence` confirmed on-chain; false if it is unknown.
    pub fn acknowledge(&self, sequence: u64) -> Result<bool> {
        self.store.write_immediate(|w| w.acknowledge(sequence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::RegisteredMeter;
    use crate::normalize::{Flow, RegisterReading};
    use crate::store::StoredReading;
    use registry::MeterCapacity;

    const T0: i64 = 1_790_000_000;

    fn attestor(dir: &Path) -> (Attestor, String) {
        let store = Arc::new(Store::open(&dir.join("bridge.redb")).unwrap());
        let directory = Arc::new(Directory::default());
        let lfdi = [7u8; 20];
        directory.sync(&[RegisteredMeter {
            lfdi,
            index: 0,
            capacity: MeterCapacity {
                generation_w: 50_000,
                storage_wh: 30_000,
                max_import_w: 80_000,
                max_discharge_w: 15_000,
            },
            active: true,
            since: T0 - 60,
        }]);
        let attestor = Attestor {
            store,
            directory,
            key: SigningKey::from_bytes(&[1; 32]),
            settings: AttestorSettings {
                oracle_program: oracle::ID,
                campus: campus_address(),
                cluster: Some([2; 32]),
                limits: ReadingLimits {
                    max_future_skew_s: 60,
                    min_interval_s: 60,
                    max_age_s: 86_400,
                    tolerance_bps: 1_000,
                },
                max_readings: 25,
            },
        };
        (attestor, keeper_protocol::hex::encode(&lfdi))
    }

    fn post(a: &Attestor, lfdi: &str, timestamp: i64, import_wh: u64, export_wh: u64) {
        a.store
            .write_immediate(|w| -> Result<()> {
                for (flow, wh) in [(Flow::Import, import_wh), (Flow::Export, export_wh)] {
                    w.record_reading(&StoredReading {
                        lfdi: lfdi.to_string(),
                        mirror: 1,
                        mmr: format!("{flow:?}"),
                        reading: RegisterReading {
                            flow,
                            timestamp: timestamp as u32,
                            start: timestamp as u32 - 900,
                            wh,
                            quality: 0,
                        },
                        received_at: timestamp,
                    })?;
                }
                Ok(())
            })
            .unwrap();
    }

    /// The bridge judges the battery bound as the oracle does (`oracle::rules`), so it signs
    /// no reading the chain would skip: the 12-hour attack of issue 25 is attested for the
    /// 12 windows the battery covers, then not at all.
    #[test]
    fn the_attestor_keeps_the_battery_bound_as_the_oracle_does() {
        let dir = tempfile::tempdir().unwrap();
        let (a, lfdi) = attestor(dir.path());
        post(&a, &lfdi, T0, 1_000_000, 2_000_000);
        assert_eq!(a.attest_once(T0).unwrap().unwrap().readings, 1);
        let mut attested = Vec::new();
        for window in 1..=16i64 {
            let t = T0 + 900 * window;
            post(&a, &lfdi, t, 1_000_000, 2_000_000 + 16_250 * window as u64);
            if a.attest_once(t).unwrap().is_some() {
                attested.push(window);
            }
        }
        assert_eq!(attested, (1..=12).collect::<Vec<_>>());
        let last = a.store.read().unwrap().attested(&lfdi).unwrap().unwrap();
        assert_eq!(
            (last.export_wh, last.stored_bound_wh, last.stored_grid_wh),
            (2_000_000 + 12 * 16_250, Some(0), Some(0))
        );
    }
}
