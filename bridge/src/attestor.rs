//! The attestor: turns each meter's latest measured (import, export) pair into batches in the
//! oracle's format (`oracle::attestation`), signs them with the bridge's Ed25519 key, and
//! keeps them in the store until the keeper acknowledges them.
//!
//! It attests only what the chain will accept: each pair is judged by the oracle's own rules
//! (`oracle::rules::assess`) against the meter's last *attested* reading, with the capacity,
//! status and limits the chain holds, and both registers of a reading were measured at the
//! same time (the store pairs them by timestamp). A pair the rules refuse is not signed; the
//! meter's next pair is judged against the same last attested reading.
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anchor_lang::prelude::Pubkey;
use anyhow::{Context, Result};
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use oracle::attestation::{batch_domain, batch_hash, encode_batch, meters_digest, Reading};
use oracle::rules::{assess, Battery, LastReading, MeterFacts, Verdict};
use oracle::ReadingLimits;

use crate::directory::{Directory, MeterEntry};
use crate::store::{Acknowledged, Attested, SignedBatch, Store};

pub use keeper_protocol::B64;

/// Loads the attestor key from `path`, creating it (mode 0600) on first start. A store that
/// already holds signed batches (`batches_signed` > 0) and no key means a restore without the
/// key or the wrong volume: refused, since a new key would sign batches the oracle does not
/// trust, under sequences it may already have applied.
pub fn load_or_create_key(path: &Path, batches_signed: u64) -> Result<SigningKey> {
    if path.exists() {
        let text = crate::read_secret(path)?;
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

/// What a request to sign a batch again did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resigned {
    /// Signed again as this batch.
    As(SignedBatch),
    /// Acknowledged already, or replaced by (the sequence of) a copy.
    Settled(Option<u64>),
    Unknown,
    /// The batch is above the chain's floor (this one): it can still apply as it is.
    AboveFloor(u64),
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
    /// Signed batches the keeper has not acknowledged, at most: a round stops signing at
    /// this many (the readings wait in the store, the meters' latest ones are attested
    /// later), so a keeper that is away cannot grow the store without bound.
    pub max_pending_batches: u64,
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
    /// Where the next scan starts, and what the last round left waiting (held for a whole
    /// round).
    pub state: Mutex<RoundState>,
    /// The last round's report, apart: the status endpoint reads it without waiting for a
    /// round in progress.
    last: Mutex<Option<Round>>,
}

/// The attestor's memory between passes (not persisted: after a restart the first round
/// starts at the first meter and finds what waits again).
#[derive(Debug, Default)]
pub struct RoundState {
    /// Directory position the next scan starts at: a round that stops early (the backlog is
    /// full) resumes where it stopped, so no meter is starved by the ones before it.
    pub cursor: usize,
    /// Per meter (LFDI hex) with a reading newer than its last attested one, the timestamp
    /// of the first such reading a round saw; removed when the meter is attested, or when
    /// its reading is one the chain would refuse (counted apart).
    pub waiting_since: HashMap<String, i64>,
    /// Meters whose latest reading the rules refuse (not merely too soon): never attested
    /// as it stands, so not counted in the age.
    pub refused: HashSet<String>,
}

/// What one attestation round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub at: i64,
    /// The batches it signed, in order (sequences).
    pub batches: Vec<u64>,
    pub readings: usize,
    /// Meters whose latest reading the round looked at.
    pub visited: usize,
    /// The round stopped because `max_pending_batches` batches await the keeper.
    pub backlog_full: bool,
    /// Batches signed and not yet acknowledged after the round.
    pub pending_batches: u64,
    /// Meters with a reading newer than the chain's that the round left unattested (too
    /// soon after the last, or not reached), and how old the oldest such reading is.
    pub waiting_meters: usize,
    pub oldest_unattested_s: Option<i64>,
    /// Meters whose latest reading the chain would refuse.
    pub refused_meters: usize,
}

/// The registry's campus account, which batches name.
pub fn campus_address() -> Pubkey {
    Pubkey::find_program_address(&[registry::seeds::CAMPUS], &registry::ID).0
}

/// The oracle state account of a meter: what a batch commits to for each reading.
pub fn meter_state_address(oracle_program: &Pubkey, lfdi: &[u8; 20]) -> Pubkey {
    Pubkey::find_program_address(&[oracle::seeds::METER_STATE, lfdi], oracle_program).0
}

/// What a scan decided about one meter.
#[derive(Clone, Debug)]
enum Seen {
    /// Nothing newer than its last attested reading.
    UpToDate,
    /// A newer reading the rules accept now: signed.
    Attested,
    /// A newer reading that is too soon after the last attested one: later.
    TooSoon(i64),
    /// A newer reading the rules refuse (implausible, stale, meter suspended).
    Refused,
}

impl Attestor {
    pub fn new(
        store: Arc<Store>,
        directory: Arc<Directory>,
        key: SigningKey,
        settings: AttestorSettings,
    ) -> Attestor {
        Attestor {
            store,
            directory,
            key,
            settings,
            state: Mutex::new(RoundState::default()),
            last: Mutex::new(None),
        }
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs one batch of the meters with new, acceptable readings, if any, scanning from the
    /// cursor (meters in registry-index order, wrapping); the cursor moves past the meters
    /// scanned. `now` is the clock the rules judge ages and skew against. It does not look
    /// at the backlog bound: the service runs rounds (`attest_round`), which do.
    pub fn attest_once(&self, now: i64) -> Result<Option<SignedBatch>> {
        let Some(domain) = self.settings.domain() else {
            tracing::warn!("cluster genesis hash not configured: nothing is attested");
            return Ok(None);
        };
        let meters = self.directory.all();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let start = state.cursor % meters.len().max(1);
        let (batch, visited) =
            self.sign_batch(&mut state, now, &domain, &meters, start, meters.len())?;
        state.cursor = (start + visited) % meters.len().max(1);
        Ok(batch)
    }

    /// One round: every meter with a new, acceptable reading is attested, in as many batches
    /// as it takes, each meter looked at once, starting from the cursor; the round stops
    /// early only when `max_pending_batches` signed batches await the keeper (the backlog is
    /// bounded; the next round resumes where this one stopped). Reports what it did and how
    /// old the oldest reading left unattested is.
    pub fn attest_round(&self, now: i64) -> Result<Round> {
        let mut round = Round {
            at: now,
            ..Round::default()
        };
        let Some(domain) = self.settings.domain() else {
            tracing::warn!("cluster genesis hash not configured: nothing is attested");
            return Ok(round);
        };
        let meters = self.directory.all();
        let n = meters.len();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut position = state.cursor % n.max(1);
        while round.visited < n {
            let pending = self.store.read()?.pending_batches()?;
            if pending >= self.settings.max_pending_batches {
                round.backlog_full = true;
                break;
            }
            let (batch, visited) = self.sign_batch(
                &mut state,
                now,
                &domain,
                &meters,
                position,
                n - round.visited,
            )?;
            round.visited += visited;
            position = (position + visited) % n;
            match batch {
                Some(b) => {
                    round.readings += usize::from(b.readings);
                    round.batches.push(b.sequence);
                }
                None => break,
            }
        }
        state.cursor = position;
        if round.backlog_full {
            // The meters the round did not reach: note those with newer readings, so their
            // wait shows in the age (a cheap look: no rules).
            let reader = self.store.read()?;
            for i in 0..n - round.visited {
                let meter = &meters[(position + i) % n];
                let Some(pair) = reader.pair(&meter.lfdi_hex)? else {
                    continue;
                };
                let last = reader.attested(&meter.lfdi_hex)?;
                if last.is_none_or(|l| l.timestamp < pair.timestamp) {
                    state
                        .waiting_since
                        .entry(meter.lfdi_hex.clone())
                        .or_insert(i64::from(pair.timestamp));
                }
            }
        }
        // Meters no longer in the directory wait for nothing.
        let known: HashSet<&str> = meters.iter().map(|m| m.lfdi_hex.as_str()).collect();
        state
            .waiting_since
            .retain(|lfdi, _| known.contains(lfdi.as_str()));
        state.refused.retain(|lfdi| known.contains(lfdi.as_str()));
        round.pending_batches = self.store.read()?.pending_batches()?;
        round.waiting_meters = state.waiting_since.len();
        round.oldest_unattested_s = state
            .waiting_since
            .values()
            .min()
            .map(|&t| now.saturating_sub(t).max(0));
        round.refused_meters = state.refused.len();
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(round.clone());
        Ok(round)
    }

    /// The last round's report, if a round has run.
    pub fn last_round(&self) -> Option<Round> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Scans up to `budget` meters from `start` (wrapping) and signs one batch of those with
    /// new, acceptable readings (at most `max_readings`); returns it, if any, and how many
    /// meters were scanned.
    fn sign_batch(
        &self,
        state: &mut RoundState,
        now: i64,
        domain: &[u8; 32],
        meters: &[MeterEntry],
        start: usize,
        budget: usize,
    ) -> Result<(Option<SignedBatch>, usize)> {
        let n = meters.len();
        if n == 0 {
            return Ok((None, 0));
        }
        let mut seen = Vec::new();
        // Durable before visible: the keeper may fetch the batch as soon as it can see it.
        let batch = self
            .store
            .write_immediate(|w| -> Result<Option<SignedBatch>> {
                let mut readings = Vec::new();
                let mut states = Vec::new();
                let mut lfdis = Vec::new();
                let mut attested = Vec::new();
                for i in 0..budget.min(n) {
                    if readings.len() == self.settings.max_readings {
                        break;
                    }
                    let meter = &meters[(start + i) % n];
                    let verdict = self.judge(w, meter, now)?;
                    seen.push((
                        meter.lfdi_hex.clone(),
                        verdict.as_ref().map(|v| v.0.clone()),
                    ));
                    let Some((Seen::Attested, Some((reading, a)))) = verdict else {
                        continue;
                    };
                    readings.push(reading);
                    states.push(
                        meter_state_address(&self.settings.oracle_program, &meter.lfdi).to_bytes(),
                    );
                    lfdis.push(meter.lfdi_hex.clone());
                    attested.push((meter.lfdi_hex.clone(), a));
                }
                if readings.is_empty() {
                    return Ok(None);
                }
                let batch = self.sign(
                    w,
                    domain,
                    &meters_digest(states.iter()),
                    &readings,
                    lfdis,
                    now,
                )?;
                for (lfdi, a) in &attested {
                    w.set_attested(lfdi, a)?;
                }
                Ok(Some(batch))
            })?;
        // The batch is durable (or nothing was signed): record what the scan saw.
        for (lfdi, verdict) in &seen {
            match verdict {
                None | Some(Seen::UpToDate) | Some(Seen::Attested) => {
                    state.waiting_since.remove(lfdi);
                    state.refused.remove(lfdi);
                }
                Some(Seen::TooSoon(timestamp)) => {
                    state.refused.remove(lfdi);
                    state
                        .waiting_since
                        .entry(lfdi.clone())
                        .or_insert(*timestamp);
                }
                Some(Seen::Refused) => {
                    state.waiting_since.remove(lfdi);
                    state.refused.insert(lfdi.clone());
                }
            }
        }
        Ok((batch, seen.len()))
    }

    /// Signs `readings` of `meters` (their states' digest `digest`) as a batch under the
    /// next sequence and stores it.
    fn sign(
        &self,
        w: &crate::store::Writer,
        domain: &[u8; 32],
        digest: &[u8; 32],
        readings: &[Reading],
        meters: Vec<String>,
        now: i64,
    ) -> Result<SignedBatch> {
        let sequence = w.next_batch_sequence()?;
        let message =
            encode_batch(domain, sequence, digest, readings).context("batch too large")?;
        let signature = self.key.sign(&message);
        let batch = SignedBatch {
            sequence,
            hash: keeper_protocol::hex::encode(&batch_hash(&message)),
            message: B64.encode(&message),
            attestor: B64.encode(self.public_key()),
            signature: B64.encode(signature.to_bytes()),
            meters,
            readings: readings.len() as u16,
            created_at: now,
            acknowledged: false,
            replaced_by: None,
        };
        w.put_batch(&batch)?;
        Ok(batch)
    }

    /// What the oracle's rules say of `meter`'s latest pair against its last attested
    /// reading: `None` when it has no pair yet; for an acceptable one, the reading and what
    /// becomes its attested record.
    #[allow(clippy::type_complexity)]
    fn judge(
        &self,
        w: &crate::store::Writer,
        meter: &MeterEntry,
        now: i64,
    ) -> Result<Option<(Seen, Option<(Reading, Attested)>)>> {
        let Some(pair) = w.pair(&meter.lfdi_hex)? else {
            return Ok(None);
        };
        let last = w.attested(&meter.lfdi_hex)?;
        if last.is_some_and(|l| l.timestamp >= pair.timestamp) {
            return Ok(Some((Seen::UpToDate, None)));
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
        match assess(
            last_reading.as_ref(),
            &reading,
            &facts,
            &self.settings.limits,
            now,
        ) {
            Ok(Verdict::Baseline { battery } | Verdict::Delta { battery, .. }) => {
                let attested = Attested {
                    timestamp: pair.timestamp,
                    import_wh: pair.import_wh,
                    export_wh: pair.export_wh,
                    stored_bound_wh: Some(battery.stored_bound_wh),
                    stored_grid_wh: Some(battery.stored_grid_wh),
                };
                Ok(Some((Seen::Attested, Some((reading, attested)))))
            }
            // Not yet: judged again by a later round.
            Err(oracle::OracleError::IntervalTooShort) => {
                Ok(Some((Seen::TooSoon(i64::from(pair.timestamp)), None)))
            }
            Err(reason) => {
                // Never as it stands (implausible, stale, meter suspended): the chain would
                // refuse it, so it is not signed; the meter's next reading is judged against
                // the same last attested one.
                tracing::warn!(
                    meter = %meter.code,
                    timestamp = pair.timestamp,
                    reason = %reason.name(),
                    "reading not attested"
                );
                Ok(Some((Seen::Refused, None)))
            }
        }
    }

    /// Marks batch `sequence` confirmed on-chain: only the oldest batch awaiting it.
    pub fn acknowledge(&self, sequence: u64) -> Result<Acknowledged> {
        self.store.write_immediate(|w| w.acknowledge(sequence))
    }

    /// Takes the chain's highest settled sequence (the keeper reads it from the oracle):
    /// nothing is signed at or below it from now on. Returns the floor kept (it never
    /// goes down).
    pub fn raise_chain_floor(&self, highest: u64) -> Result<u64> {
        self.store.write_immediate(|w| w.raise_chain_floor(highest))
    }

    /// Signs unacknowledged batch `sequence` again, the same readings under the next
    /// sequence, and retires it (acknowledged, `replaced_by` the copy): for a batch the
    /// chain settled without applying it (a store restored from a backup signed sequences
    /// the chain had; governance skipped it). Only at or below the chain's floor: above it
    /// the batch can still apply as it is. The chain refuses any reading of the copy that
    /// is not newer than the meter's last (`TimestampNotIncreasing`), so a copy of a batch
    /// that did apply mints nothing twice.
    pub fn resign(&self, sequence: u64, now: i64) -> Result<Resigned> {
        let Some(domain) = self.settings.domain() else {
            anyhow::bail!("cluster genesis hash not configured: nothing is signed");
        };
        self.store.write_immediate(|w| -> Result<Resigned> {
            let Some(old) = w.batch(sequence)? else {
                return Ok(Resigned::Unknown);
            };
            if old.acknowledged {
                return Ok(Resigned::Settled(old.replaced_by));
            }
            let floor = w.chain_floor()?;
            if sequence > floor {
                return Ok(Resigned::AboveFloor(floor));
            }
            let message = B64
                .decode(&old.message)
                .context("a stored batch's message is not base64")?;
            let parsed = oracle::attestation::Batch::parse(&message)
                .map_err(|e| anyhow::anyhow!("a stored batch's message: {e:?}"))?;
            let readings: Vec<Reading> = (0..parsed.len()).map(|i| parsed.reading(i)).collect();
            let copy = self.sign(
                w,
                &domain,
                parsed.meters,
                &readings,
                old.meters.clone(),
                now,
            )?;
            w.settle(old, Some(copy.sequence))?;
            Ok(Resigned::As(copy))
        })
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

    fn capacity() -> MeterCapacity {
        MeterCapacity {
            generation_w: 50_000,
            storage_wh: 30_000,
            max_import_w: 80_000,
            max_discharge_w: 15_000,
        }
    }

    /// An attestor over `n` registered meters (LFDIs 1.., hex) with a backlog bound.
    fn attestor_of(dir: &Path, n: usize, max_pending_batches: u64) -> (Attestor, Vec<String>) {
        let store = Arc::new(Store::open(&dir.join("bridge.redb")).unwrap());
        let directory = Arc::new(Directory::default());
        let lfdis: Vec<[u8; 20]> = (0..n)
            .map(|i| {
                let mut l = [7u8; 20];
                l[..2].copy_from_slice(&(i as u16).to_be_bytes());
                l
            })
            .collect();
        let registered: Vec<RegisteredMeter> = lfdis
            .iter()
            .enumerate()
            .map(|(i, lfdi)| RegisteredMeter {
                lfdi: *lfdi,
                index: i as u16,
                capacity: capacity(),
                active: true,
                since: T0 - 60,
            })
            .collect();
        directory.sync(&registered);
        let attestor = Attestor::new(
            store,
            directory,
            SigningKey::from_bytes(&[1; 32]),
            AttestorSettings {
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
                max_pending_batches,
            },
        );
        let hex = lfdis
            .iter()
            .map(|l| keeper_protocol::hex::encode(l))
            .collect();
        (attestor, hex)
    }

    fn attestor(dir: &Path) -> (Attestor, String) {
        let (a, lfdis) = attestor_of(dir, 1, 64);
        (a, lfdis[0].clone())
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

    /// After a restore from a backup the chain has settled sequences the bridge signs again:
    /// told the chain's highest, the bridge signs above it, and signs a batch the chain
    /// settled without it again under a new sequence (same readings, a valid signature),
    /// only at or below that floor, once.
    #[test]
    fn batches_the_chain_settled_without_them_are_signed_again_above_its_floor() {
        use ed25519_dalek::Verifier;
        let dir = tempfile::tempdir().unwrap();
        let (a, lfdis) = attestor_of(dir.path(), 3, 64);
        for lfdi in &lfdis {
            post(&a, lfdi, T0, 1_000, 2_000);
        }
        let old = a.attest_once(T0).unwrap().unwrap();
        assert_eq!(old.sequence, 1);
        // Not yet reported settled: it can still apply as it is.
        assert_eq!(a.resign(1, T0).unwrap(), Resigned::AboveFloor(0));
        assert_eq!(a.resign(9, T0).unwrap(), Resigned::Unknown);
        assert_eq!(a.raise_chain_floor(30).unwrap(), 30);
        let Resigned::As(copy) = a.resign(1, T0 + 5).unwrap() else {
            panic!("signed again")
        };
        assert_eq!(copy.sequence, 31);
        assert_eq!(
            (copy.meters.clone(), copy.readings),
            (old.meters.clone(), 3)
        );
        let (old_message, message) = (
            B64.decode(&old.message).unwrap(),
            B64.decode(&copy.message).unwrap(),
        );
        let (before, after) = (
            oracle::attestation::Batch::parse(&old_message).unwrap(),
            oracle::attestation::Batch::parse(&message).unwrap(),
        );
        assert_eq!(
            (after.sequence, after.meters, after.domain),
            (31, before.meters, before.domain)
        );
        for i in 0..3 {
            assert_eq!(after.reading(i), before.reading(i));
        }
        let signature: [u8; 64] = B64.decode(&copy.signature).unwrap().try_into().unwrap();
        assert!(a
            .key
            .verifying_key()
            .verify(&message, &ed25519_dalek::Signature::from_bytes(&signature))
            .is_ok());
        assert_eq!(
            copy.hash,
            keeper_protocol::hex::encode(&batch_hash(&message))
        );
        // The old batch is off the keeper's list, replaced; a retry finds the copy.
        let stored = a.store.read().unwrap().batch(1).unwrap().unwrap();
        assert!(stored.acknowledged);
        assert_eq!(stored.replaced_by, Some(31));
        assert_eq!(a.resign(1, T0 + 6).unwrap(), Resigned::Settled(Some(31)));
        let waiting: Vec<u64> = a
            .store
            .read()
            .unwrap()
            .unacknowledged(10)
            .unwrap()
            .iter()
            .map(|b| b.sequence)
            .collect();
        assert_eq!(waiting, vec![31]);
        assert_eq!(a.store.read().unwrap().pending_batches().unwrap(), 1);
        // New batches come after it.
        for lfdi in &lfdis {
            post(&a, lfdi, T0 + 120, 1_100, 2_100);
        }
        assert_eq!(a.attest_once(T0 + 120).unwrap().unwrap().sequence, 32);
    }

    fn attested_meters(a: &Attestor, sequences: &[u64]) -> Vec<String> {
        let all = a.store.read().unwrap().unacknowledged(usize::MAX).unwrap();
        let mut out = Vec::new();
        for s in sequences {
            let batch = all.iter().find(|b| b.sequence == *s).expect("batch stored");
            out.extend(batch.meters.clone());
        }
        out
    }

    /// Every meter with a new reading is attested in one round, in as many batches as it
    /// takes (the seeds' 10,000 meters need 400); the next round finds nothing new.
    #[test]
    fn a_round_attests_every_meter_with_a_new_reading() {
        let dir = tempfile::tempdir().unwrap();
        let (a, lfdis) = attestor_of(dir.path(), 60, 64);
        for lfdi in &lfdis {
            post(&a, lfdi, T0, 1_000, 2_000);
        }
        let round = a.attest_round(T0).unwrap();
        assert_eq!(
            (round.batches.len(), round.readings, round.visited),
            (3, 60, 60)
        );
        assert_eq!((round.waiting_meters, round.oldest_unattested_s), (0, None));
        assert_eq!(round.pending_batches, 3);
        let mut attested = attested_meters(&a, &round.batches);
        attested.sort();
        let mut all = lfdis.clone();
        all.sort();
        assert_eq!(attested, all);
        let again = a.attest_round(T0 + 10).unwrap();
        assert!(again.batches.is_empty());
        assert_eq!(a.last_round(), Some(again));
    }

    /// The backlog is bounded: a round stops at `max_pending_batches` unacknowledged
    /// batches, reports the meters it left waiting and the age of the oldest reading, and
    /// the next round starts with them (no meter is starved by those before it).
    #[test]
    fn a_full_backlog_pauses_signing_and_the_next_round_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, lfdis) = attestor_of(dir.path(), 60, 2);
        for lfdi in &lfdis {
            post(&a, lfdi, T0, 1_000, 2_000);
        }
        let round = a.attest_round(T0 + 30).unwrap();
        assert!(round.backlog_full);
        assert_eq!((round.batches.len(), round.readings), (2, 50));
        assert_eq!(round.waiting_meters, 10);
        assert_eq!(round.oldest_unattested_s, Some(30));
        // Nothing more while the keeper is away.
        let stalled = a.attest_round(T0 + 90).unwrap();
        assert!(stalled.backlog_full && stalled.batches.is_empty());
        assert_eq!(stalled.oldest_unattested_s, Some(90));
        for s in &round.batches {
            assert_eq!(a.acknowledge(*s).unwrap(), Acknowledged::Done);
        }
        // Meters 50..60 first, then the others' newer readings.
        for lfdi in &lfdis[..50] {
            post(&a, lfdi, T0 + 120, 1_100, 2_100);
        }
        let resumed = a.attest_round(T0 + 120).unwrap();
        let order = attested_meters(&a, &resumed.batches);
        assert_eq!(order[..10], lfdis[50..]);
        assert_eq!(order[10..], lfdis[..40]);
        assert!(resumed.backlog_full);
        assert_eq!(resumed.waiting_meters, 10);
        for s in &resumed.batches {
            assert_eq!(a.acknowledge(*s).unwrap(), Acknowledged::Done);
        }
        let last = a.attest_round(T0 + 130).unwrap();
        assert_eq!(attested_meters(&a, &last.batches), lfdis[40..50]);
        assert!(!last.backlog_full);
        assert_eq!((last.waiting_meters, last.oldest_unattested_s), (0, None));
    }

    /// One batch at a time (`attest_once`) also rotates: three calls cover 60 meters.
    #[test]
    fn single_batches_rotate_through_the_meters() {
        let dir = tempfile::tempdir().unwrap();
        let (a, lfdis) = attestor_of(dir.path(), 60, 64);
        for lfdi in &lfdis {
            post(&a, lfdi, T0, 1_000, 2_000);
        }
        let mut covered = Vec::new();
        for _ in 0..3 {
            covered.extend(a.attest_once(T0).unwrap().unwrap().meters);
        }
        covered.sort();
        let mut all = lfdis.clone();
        all.sort();
        assert_eq!(covered, all);
        assert!(a.attest_once(T0).unwrap().is_none());
    }

    /// A reading too soon after the last attested one waits (its age shows); one the rules
    /// refuse is counted apart and does not hold up the others.
    #[test]
    fn readings_that_wait_and_readings_refused_are_reported_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (a, lfdis) = attestor_of(dir.path(), 3, 64);
        for lfdi in &lfdis {
            post(&a, lfdi, T0, 1_000, 2_000);
        }
        assert_eq!(a.attest_round(T0).unwrap().readings, 3);
        // Meter 0: 20 s later (too soon: 60 s apart at least); meter 1: 10 MWh exported in
        // 15 minutes (beyond its capacity: refused); meter 2: plausible.
        post(&a, &lfdis[0], T0 + 20, 1_010, 2_010);
        post(&a, &lfdis[1], T0 + 900, 1_000, 10_000_000);
        post(&a, &lfdis[2], T0 + 900, 1_500, 4_000);
        let round = a.attest_round(T0 + 900).unwrap();
        assert_eq!(attested_meters(&a, &round.batches), vec![lfdis[2].clone()]);
        assert_eq!((round.waiting_meters, round.refused_meters), (1, 1));
        assert_eq!(round.oldest_unattested_s, Some(880));
        // Meter 0's next reading is attested; meter 1's next plausible one too.
        post(&a, &lfdis[0], T0 + 960, 1_100, 2_100);
        post(&a, &lfdis[1], T0 + 960, 1_100, 2_100);
        let round = a.attest_round(T0 + 960).unwrap();
        assert_eq!(round.readings, 2);
        assert_eq!(
            (
                round.waiting_meters,
                round.refused_meters,
                round.oldest_unattested_s
            ),
            (0, 0, None)
        );
    }
}
