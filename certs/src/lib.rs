//! The development campus PKI: a CA, the bridge's TLS server certificate and one IEEE 2030.5
//! device certificate per meter. `ensure_pki` creates what is missing and never replaces an
//! existing key; the only certificate it replaces is the bridge's, when asked for more host
//! names (`ensure_pki_with`).
//!
//! Issuing (rcgen) is the default feature `issue`; the bridge reads the PKI's layout and PEM
//! files without it.
use std::path::{Path, PathBuf};

use registry::identity::Lfdi;

pub mod der;
#[cfg(feature = "issue")]
mod issue;
#[cfg(feature = "issue")]
pub use issue::*;
#[cfg(feature = "verify")]
pub mod verify;

/// certificatePolicies: IEEE 2030.5 device certificate policy (id-sep2 policy 1).
pub const POLICY_IEEE2030_5_DEVICE: &[u64] = &[1, 3, 6, 1, 4, 1, 40732, 1, 1];
/// HardwareModuleName (RFC 4108), the otherName device certificates carry.
pub const OID_HARDWARE_MODULE_NAME: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 8, 4];
/// hwType of the simulated meters: under the documentation enterprise number (RFC 5612).
pub const HW_TYPE_CAMPUS_METER: &[u64] = &[1, 3, 6, 1, 4, 1, 32473, 2030, 5, 1];
pub const OID_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
pub const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[cfg(feature = "issue")]
    #[error("{path}: {source}")]
    Certificate { path: PathBuf, source: rcgen::Error },
    #[error("{0}: exists without its private key; delete it or restore the key")]
    OrphanCertificate(PathBuf),
    #[error(
        "bridge host {0:?} is neither a DNS name nor an IP address (no port, scheme or wildcard)"
    )]
    BadHost(String),
    #[error("{0}: not issued by this campus CA for bridge.key, so not re-issued with more names; add them yourself, or delete it to have one made")]
    ForeignBridgeCertificate(PathBuf),
}

/// Where the PKI lives under its directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Layout { dir: dir.into() }
    }

    /// `certs/generated` in this repository.
    /// Where the binaries look by default: relative to the working directory (the
    /// repository root), never a path of the machine that built them.
    pub fn default_dir() -> PathBuf {
        PathBuf::from("certs/generated")
    }

    /// `certs/generated` of this source tree, wherever the tests run from.
    pub fn in_repository() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("generated")
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn bridge_cert(&self) -> PathBuf {
        self.dir.join("bridge.pem")
    }
    pub fn bridge_key(&self) -> PathBuf {
        self.dir.join("bridge.key")
    }
    pub fn meter_cert(&self, code: &str) -> PathBuf {
        self.dir.join("meters").join(format!("{code}.pem"))
    }
    pub fn meter_key(&self, code: &str) -> PathBuf {
        self.dir.join("meters").join(format!("{code}.key"))
    }
}

/// Whether a file was made by this run or kept from an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Created,
    Kept,
    /// Replaced for the same key (the bridge certificate, to name more hosts).
    Reissued,
}

/// One meter's device certificate and identity.
#[derive(Debug, Clone)]
pub struct MeterIdentity {
    pub code: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
    pub lfdi: Lfdi,
    pub sfdi: u64,
    pub provenance: Provenance,
}

#[derive(Debug, Clone)]
pub struct Pki {
    pub layout: Layout,
    pub ca: Provenance,
    pub bridge: Provenance,
    pub meters: Vec<MeterIdentity>,
}

/// The DER of the first certificate in a PEM file.
pub fn pem_to_der(pem: &str, path: &Path) -> Result<Vec<u8>, PkiError> {
    let invalid = || PkiError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no PEM certificate"),
    };
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    if body.is_empty() {
        return Err(invalid());
    }
    der::base64_decode(&body).ok_or_else(invalid)
}
