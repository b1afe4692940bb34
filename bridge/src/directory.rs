//! The meters the bridge serves: who may connect and what they may do, by LFDI.
//!
//! Bootstrapped from the campus configuration and each building's device certificate; the
//! registry on chain is the authority: the keeper pushes its meters (`sync`), which adds
//! meters registered since, updates index, capacity and status, and closes the door to
//! meters the registry does not have. The last push is kept in the store and applied again
//! at start, so a restart does not fall back to the campus file (a suspended meter stays
//! out). Over it, the operator's local deny list (`deny`, kept in the store too) refuses a
//! meter at once, whatever the registry says, until it is lifted.
use std::collections::HashMap;
use std::sync::RwLock;

use registry::identity::Lfdi;
use registry::MeterCapacity;
use sdk::identity::{lfdi_hex, sfdi_from_certificate};
use sdk::CampusConfig;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterEntry {
    pub code: String,
    /// The registry's compact index (position in the campus configuration).
    pub index: u16,
    pub lfdi: Lfdi,
    pub lfdi_hex: String,
    pub sfdi: u64,
    pub capacity: MeterCapacity,
    pub active: bool,
    /// When the meter's current active period began on chain (registration or
    /// reactivation), Unix seconds: nothing measured before it is attested. 0 until the
    /// chain's value is known.
    pub active_since: i64,
}

/// A meter as the registry on chain has it (what the keeper pushes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredMeter {
    pub lfdi: Lfdi,
    pub index: u16,
    pub capacity: MeterCapacity,
    /// Active (not suspended or retired).
    pub active: bool,
    /// Since when the oracle verifies it under its current status and capacity (the
    /// registry's `Meter::active_since`).
    pub since: i64,
}

/// What a `sync` changed (the keeper interface's answer).
pub use keeper_protocol::SyncReport;

#[derive(Debug, Default)]
pub struct Directory {
    meters: RwLock<HashMap<Lfdi, MeterEntry>>,
    /// The local deny list: these meters are inactive whatever the registry says.
    denied: RwLock<HashMap<Lfdi, keeper_protocol::DeniedMeter>>,
    /// A digest of the registry push last kept in the store (the keeper pushes every
    /// minute; an unchanged push is not written again).
    pub kept_push: std::sync::Mutex<Option<u64>>,
    /// Held while the deny list is read, changed, kept and applied (one change at a time).
    pub deny_edits: tokio::sync::Mutex<()>,
}

impl Directory {
    /// One entry per building, identified by the DER of its device certificate.
    pub fn from_campus(
        campus: &CampusConfig,
        certificates: &[(String, Vec<u8>)],
    ) -> anyhow::Result<Directory> {
        let mut meters = HashMap::new();
        for (index, building) in campus.buildings.iter().enumerate() {
            let Some((_, der)) = certificates.iter().find(|(code, _)| *code == building.code)
            else {
                anyhow::bail!("no device certificate for building {}", building.code);
            };
            let lfdi = sdk::identity::lfdi_from_certificate(der);
            let capacity = building
                .capacity()
                .ok_or_else(|| anyhow::anyhow!("{}: capacity overflows", building.code))?;
            meters.insert(
                lfdi,
                MeterEntry {
                    code: building.code.clone(),
                    index: u16::try_from(index)?,
                    lfdi,
                    lfdi_hex: lfdi_hex(&lfdi),
                    sfdi: sfdi_from_certificate(der),
                    capacity,
                    active: true,
                    active_since: 0,
                },
            );
        }
        Ok(Directory {
            meters: RwLock::new(meters),
            ..Directory::default()
        })
    }

    /// The meter as the bridge treats it: inactive if the registry or the deny list says so.
    pub fn get(&self, lfdi: &Lfdi) -> Option<MeterEntry> {
        let mut entry = self
            .meters
            .read()
            .expect("directory lock")
            .get(lfdi)
            .cloned()?;
        if entry.active && self.is_denied(lfdi) {
            entry.active = false;
        }
        Some(entry)
    }

    pub fn is_denied(&self, lfdi: &Lfdi) -> bool {
        self.denied
            .read()
            .expect("directory lock")
            .contains_key(lfdi)
    }

    /// A meter by its LFDI (hex, either case) or, failing that, its building code.
    pub fn find(&self, meter: &str) -> Option<MeterEntry> {
        let found = {
            let meters = self.meters.read().expect("directory lock");
            match sdk::identity::parse_lfdi_hex(meter).filter(|l| meters.contains_key(l)) {
                Some(lfdi) => lfdi,
                None => meters.values().find(|m| m.code == meter).map(|m| m.lfdi)?,
            }
        };
        self.get(&found)
    }

    /// Replaces the deny list (at start, from the store).
    pub fn set_denied(&self, denied: Vec<keeper_protocol::DeniedMeter>) {
        let mut map = self.denied.write().expect("directory lock");
        map.clear();
        for d in denied {
            if let Some(lfdi) = sdk::identity::parse_lfdi_hex(&d.lfdi) {
                map.insert(lfdi, d);
            }
        }
    }

    /// The deny list, by building code.
    pub fn denied(&self) -> Vec<keeper_protocol::DeniedMeter> {
        let mut out: Vec<_> = self
            .denied
            .read()
            .expect("directory lock")
            .values()
            .cloned()
            .collect();
        out.sort_by(|a, b| a.code.cmp(&b.code));
        out
    }

    /// Suspends or reactivates a meter as of `since` (the chain's `Meter::active_since`);
    /// returns false if it is unknown.
    pub fn set_active(&self, lfdi: &Lfdi, active: bool, since: i64) -> bool {
        match self.meters.write().expect("directory lock").get_mut(lfdi) {
            Some(entry) => {
                entry.active = active;
                entry.active_since = since;
                true
            }
            None => false,
        }
    }

    /// Makes the directory what the registry says: `registered` is every meter on chain.
    pub fn sync(&self, registered: &[RegisteredMeter]) -> SyncReport {
        let mut report = SyncReport::default();
        let mut meters = self.meters.write().expect("directory lock");
        for entry in meters.values_mut() {
            if entry.active && !registered.iter().any(|r| r.lfdi == entry.lfdi) {
                entry.active = false;
                entry.active_since = 0;
                report.unregistered += 1;
            }
        }
        for r in registered {
            match meters.get_mut(&r.lfdi) {
                Some(entry) => {
                    let before = entry.clone();
                    entry.index = r.index;
                    entry.capacity = r.capacity;
                    entry.active = r.active;
                    entry.active_since = r.since;
                    if *entry != before {
                        report.changed += 1;
                    }
                }
                None => {
                    let lfdi_hex = lfdi_hex(&r.lfdi);
                    meters.insert(
                        r.lfdi,
                        MeterEntry {
                            // Registered on chain after the bridge started: no building code
                            // in the campus file, so it goes by its LFDI (all of it: unique).
                            code: lfdi_hex.clone(),
                            index: r.index,
                            lfdi: r.lfdi,
                            lfdi_hex,
                            sfdi: registry::identity::sfdi_from_lfdi(&r.lfdi),
                            capacity: r.capacity,
                            active: r.active,
                            active_since: r.since,
                        },
                    );
                    report.added += 1;
                }
            }
        }
        report
    }

    /// Whether some meter has compact index `index` (without copying the directory).
    pub fn has_index(&self, index: u16) -> bool {
        self.meters
            .read()
            .expect("directory lock")
            .values()
            .any(|m| m.index == index)
    }

    pub fn all(&self) -> Vec<MeterEntry> {
        let denied = self.denied.read().expect("directory lock");
        let mut all: Vec<MeterEntry> = self
            .meters
            .read()
            .expect("directory lock")
            .values()
            .cloned()
            .map(|mut m| {
                m.active &= !denied.contains_key(&m.lfdi);
                m
            })
            .collect();
        all.sort_by_key(|m| m.index);
        all
    }
}
