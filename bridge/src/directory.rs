//! The meters the bridge serves: who may connect and what they may do, by LFDI.
//!
//! Built from the campus configuration and each building's device certificate; a meter can
//! be suspended at run time (and later synced from the on-chain registry).
use std::collections::HashMap;
use std::sync::RwLock;

use migrations::identity::{lfdi_hex, sfdi_from_certificate};
use migrations::CampusConfig;
use registry::identity::Lfdi;
use registry::MeterCapacity;

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

#[derive(Debug, Default)]
pub struct Directory {
    meters: RwLock<HashMap<Lfdi, MeterEntry>>,
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
            let lfdi = migrations::identity::lfdi_from_certificate(der);
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
        })
    }

    pub fn get(&self, lfdi: &Lfdi) -> Option<MeterEntry> {
        self.meters
            .read()
            .expect("directory lock")
            .get(lfdi)
            .cloned()
    }

    /// Suspends or reactivates a meter as of `since` (the chain's `status_changed_at`);
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

    /// Whether some meter has compact index `index` (without copying the directory).
    pub fn has_index(&self, index: u16) -> bool {
        self.meters
            .read()
            .expect("directory lock")
            .values()
            .any(|m| m.index == index)
    }

    pub fn all(&self) -> Vec<MeterEntry> {
        let mut all: Vec<MeterEntry> = self
            .meters
            .read()
            .expect("directory lock")
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|m| m.index);
        all
    }
}
