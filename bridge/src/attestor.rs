//! The attestor: turns each meter's latest verified readings into batches in the oracle's
//! format (`oracle::attestation`), signs them with the bridge's Ed25519 key, and keeps them in
//! the store until the keeper acknowledges them.
use std::path::Path;
use std::sync::Arc;

use anchor_lang::prelude::Pubkey;
use anyhow::{Context, Result};
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use oracle::attestation::{encode_batch, Reading};

use crate::directory::Directory;
use crate::normalize::Flow;
use crate::store::{Attested, SignedBatch, Store};

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Loads the attestor key from `path`, creating it (mode 0600) on first start.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey> {
    if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let bytes = crate::xml::parse_hex(text.trim(), 32)
            .filter(|b| b.len() == 32)
            .context("attestor key is not 64 hex digits")?;
        let secret: [u8; 32] = bytes.try_into().expect("32 bytes");
        return Ok(SigningKey::from_bytes(&secret));
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    crate::write_secret(path, &crate::xml::hex(&key.to_bytes()))?;
    Ok(key)
}

#[derive(Clone, Debug)]
pub struct AttestorSettings {
    /// The oracle program and the registry campus the batches are for.
    pub oracle_program: Pubkey,
    pub campus: Pubkey,
    /// Least time between two attested readings of a meter (the oracle's minimum interval).
    pub min_interval_s: u32,
    /// Readings per batch; 28 fit one transaction at quorum 1 (README).
    pub max_readings: usize,
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

impl Attestor {
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs one batch of the meters with new readings, if any; oldest meters first.
    pub fn attest_once(&self, now: i64) -> Result<Option<SignedBatch>> {
        let meters = self.directory.all();
        self.store.write(|w| -> Result<Option<SignedBatch>> {
            let mut readings = Vec::new();
            let mut attested = Vec::new();
            for meter in &meters {
                if readings.len() == self.settings.max_readings {
                    break;
                }
                let (Some(import), Some(export)) = (
                    w.latest(&meter.lfdi_hex, Flow::Import)?,
                    w.latest(&meter.lfdi_hex, Flow::Export)?,
                ) else {
                    continue;
                };
                let timestamp = import.timestamp.max(export.timestamp);
                let last = w.attested(&meter.lfdi_hex)?;
                if let Some(last) = last {
                    if u64::from(timestamp)
                        < u64::from(last.timestamp) + u64::from(self.settings.min_interval_s)
                    {
                        continue;
                    }
                }
                readings.push(Reading {
                    meter_index: meter.index,
                    timestamp,
                    import_wh: import.wh,
                    export_wh: export.wh,
                    quality: import.quality | export.quality,
                });
                attested.push((
                    meter.lfdi_hex.clone(),
                    Attested {
                        timestamp,
                        import_wh: import.wh,
                        export_wh: export.wh,
                    },
                ));
            }
            if readings.is_empty() {
                return Ok(None);
            }
            let sequence = w.next_batch_sequence()?;
            let message = encode_batch(
                &self.settings.oracle_program.to_bytes(),
                &self.settings.campus.to_bytes(),
                sequence,
                &readings,
            )
            .context("batch too large")?;
            let signature = self.key.sign(&message);
            let batch = SignedBatch {
                sequence,
                message: B64.encode(&message),
                attestor: B64.encode(self.public_key()),
                signature: B64.encode(signature.to_bytes()),
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
        self.store.write(|w| w.acknowledge(sequence))
    }
}
