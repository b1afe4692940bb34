//! Issuing the campus PKI's keys and certificates (rcgen).
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use sdk::identity::{lfdi_from_certificate, sfdi_from_certificate};
use sdk::CampusConfig;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::{
    der, pem_to_der, Layout, MeterIdentity, Pki, PkiError, Provenance, HW_TYPE_CAMPUS_METER,
    OID_CERTIFICATE_POLICIES, OID_HARDWARE_MODULE_NAME, OID_SUBJECT_ALT_NAME,
    POLICY_IEEE2030_5_DEVICE,
};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

fn cert_err(path: &Path) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError::Certificate {
        path: path.to_owned(),
        source,
    }
}

/// 9999-12-31 23:59:59 UTC: "no well-defined expiration" (RFC 5280 4.1.2.5), as IEEE 2030.5
/// device certificates use.
pub fn no_expiry() -> OffsetDateTime {
    let date = Date::from_calendar_date(9999, Month::December, 31).expect("valid date");
    let time = Time::from_hms(23, 59, 59).expect("valid time");
    PrimitiveDateTime::new(date, time).assume_utc()
}

fn named(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "GridTokenX campus (development)");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = named("GridTokenX Campus Dev CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = no_expiry();
    params
}

/// Parameters of an IEEE 2030.5 device certificate with hardware serial `serial`.
pub fn device_params(serial: &[u8]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = no_expiry();
    params.serial_number = Some(SerialNumber::from_slice(serial));
    params.use_authority_key_identifier_extension = true;

    let mut policies = CustomExtension::from_oid_content(
        OID_CERTIFICATE_POLICIES,
        der::certificate_policies(&[POLICY_IEEE2030_5_DEVICE]),
    );
    policies.set_criticality(true);
    let mut san = CustomExtension::from_oid_content(
        OID_SUBJECT_ALT_NAME,
        der::hardware_module_name_san(OID_HARDWARE_MODULE_NAME, HW_TYPE_CAMPUS_METER, serial),
    );
    san.set_criticality(true);
    params.custom_extensions = vec![policies, san];
    params
}

/// The bridge's server certificate, in the IEEE 2030.5 profile a device (the server is one)
/// carries: no well-defined expiration (clients that check reject a web-style 825-day
/// certificate), critical keyUsage digitalSignature + keyAgreement, the 2030.5 device policy
/// (critical); plus serverAuth and the host names and addresses clients connect to.
fn server_params(hosts: &[&str]) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = named("GridTokenX bridge");
    for host in hosts {
        params.subject_alt_names.push(match host.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*host).try_into()?),
        });
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = no_expiry();
    params.use_authority_key_identifier_extension = true;
    let mut policies = CustomExtension::from_oid_content(
        OID_CERTIFICATE_POLICIES,
        der::certificate_policies(&[POLICY_IEEE2030_5_DEVICE]),
    );
    policies.set_criticality(true);
    params.custom_extensions = vec![policies];
    Ok(params)
}

/// Writes a private key readable only by its owner; refuses to replace an existing file.
fn write_private_key(path: &Path, pem: &str) -> Result<(), PkiError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(pem.as_bytes()).map_err(io_err(path))
}

fn write_new(path: &Path, contents: &str) -> Result<(), PkiError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(contents.as_bytes()).map_err(io_err(path))
}

/// Replaces `path` atomically (a new file renamed over it, then the directory synced).
fn replace_file(path: &Path, contents: &str) -> Result<(), PkiError> {
    let tmp = path.with_extension("pem.new");
    let _ = fs::remove_file(&tmp);
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        file.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(())
}

/// Loads the key at `key_path`, or makes one. Returns it and whether it was created.
fn key_at(key_path: &Path, cert_path: &Path) -> Result<(KeyPair, Provenance), PkiError> {
    if key_path.exists() {
        let pem = fs::read_to_string(key_path).map_err(io_err(key_path))?;
        let key = KeyPair::from_pem(&pem).map_err(cert_err(key_path))?;
        return Ok((key, Provenance::Kept));
    }
    if cert_path.exists() {
        return Err(PkiError::OrphanCertificate(cert_path.to_owned()));
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_err(key_path))?;
    write_private_key(key_path, &key.serialize_pem())?;
    Ok((key, Provenance::Created))
}

/// Issues the certificate at `cert_path` if it is missing; returns its DER.
fn cert_at(
    cert_path: &Path,
    issue: impl FnOnce() -> Result<rcgen::Certificate, rcgen::Error>,
) -> Result<(Vec<u8>, Provenance), PkiError> {
    if cert_path.exists() {
        let pem = fs::read_to_string(cert_path).map_err(io_err(cert_path))?;
        return Ok((pem_to_der(&pem, cert_path)?, Provenance::Kept));
    }
    let cert = issue().map_err(cert_err(cert_path))?;
    write_new(cert_path, &cert.pem())?;
    Ok((cert.der().to_vec(), Provenance::Created))
}

/// Issues a device certificate (IEEE 2030.5 profile) from the campus CA at `layout` for a new
/// key, valid from `not_before` to `not_after`: for tests and for adding a meter by hand.
/// Returns the certificate's DER and the private key's PEM; writes nothing.
pub fn issue_device_certificate(
    layout: &Layout,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<(Vec<u8>, String), PkiError> {
    let ca_pem = fs::read_to_string(layout.ca_key()).map_err(io_err(&layout.ca_key()))?;
    let ca_key = KeyPair::from_pem(&ca_pem).map_err(cert_err(&layout.ca_key()))?;
    let ca = Issuer::new(ca_params(), ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_err(&layout.dir))?;
    let mut params = device_params(serial);
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.signed_by(&key, &ca).map_err(cert_err(&layout.dir))?;
    Ok((cert.der().to_vec(), key.serialize_pem()))
}

/// Names the bridge's server certificate always carries: clients on the bridge's own host.
pub const LOCAL_BRIDGE_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Creates every missing part of the campus PKI under `layout.dir`, keeping what exists.
pub fn ensure_pki(layout: &Layout, campus: &CampusConfig) -> Result<Pki, PkiError> {
    ensure_pki_with(layout, campus, &[])
}

/// The host names and addresses (IP) in a certificate's subjectAltName, as text.
fn san_hosts(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A `--bridge-host` as it appears in a certificate: an address in its canonical text, a
/// DNS name in lower case. Refused: anything else (a port, a URL, a wildcard, which clients
/// here never match).
fn bridge_host(host: &str) -> Result<String, PkiError> {
    let refuse = || PkiError::BadHost(host.to_string());
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(ip.to_string());
    }
    if host.contains('*') {
        return Err(refuse());
    }
    match rustls_pki_types::ServerName::try_from(host) {
        Ok(rustls_pki_types::ServerName::DnsName(name)) => Ok(name.as_ref().to_ascii_lowercase()),
        _ => Err(refuse()),
    }
}

/// Whether `cert` was issued by the CA `ca` (its signature) for `key`.
fn issued_for(cert: &[u8], ca: &[u8], key: &KeyPair) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (Ok((_, cert)), Ok((_, ca))) = (
        X509Certificate::from_der(cert),
        X509Certificate::from_der(ca),
    ) else {
        return false;
    };
    cert.issuer().as_raw() == ca.subject().as_raw()
        && cert.verify_signature(Some(ca.public_key())).is_ok()
        && cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw()
}

/// As [`ensure_pki`], and the bridge's server certificate also names `bridge_hosts` (the
/// host names and addresses meters and a remote keeper connect to, beside the local ones).
/// An existing bridge certificate missing one of them is re-issued for the same key, with
/// every name it had (the old one kept as `bridge.pem.bak`): the only certificate this ever
/// replaces, and only if this CA issued it for that key.
pub fn ensure_pki_with(
    layout: &Layout,
    campus: &CampusConfig,
    bridge_hosts: &[String],
) -> Result<Pki, PkiError> {
    // The names first: nothing is written for a bad one.
    let requested = bridge_hosts
        .iter()
        .map(|h| bridge_host(h.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut hosts: Vec<String> = LOCAL_BRIDGE_HOSTS.iter().map(|h| h.to_string()).collect();
    for host in requested.iter() {
        if !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    fs::create_dir_all(layout.dir.join("meters")).map_err(io_err(&layout.dir))?;

    let (ca_key, ca_key_made) = key_at(&layout.ca_key(), &layout.ca_cert())?;
    let params = ca_params();
    let (ca_der, ca_cert_made) = cert_at(&layout.ca_cert(), || params.self_signed(&ca_key))?;
    let ca = Issuer::new(ca_params(), ca_key);
    let ca_made = if ca_key_made == Provenance::Created || ca_cert_made == Provenance::Created {
        Provenance::Created
    } else {
        Provenance::Kept
    };

    let (bridge_key, _) = key_at(&layout.bridge_key(), &layout.bridge_cert())?;
    let issue_bridge = |hosts: &[String]| {
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        server_params(&hosts)?.signed_by(&bridge_key, &ca)
    };
    let (bridge_der, mut bridge) = cert_at(&layout.bridge_cert(), || issue_bridge(&hosts))?;
    let has = san_hosts(&bridge_der);
    if bridge == Provenance::Kept && requested.iter().any(|h| !has.contains(h)) {
        // Only a certificate this CA issued for this key is re-issued; one from elsewhere
        // (an operator's own) is the operator's to change.
        if !issued_for(&bridge_der, &ca_der, &bridge_key) {
            return Err(PkiError::ForeignBridgeCertificate(layout.bridge_cert()));
        }
        // Keep every name the certificate had, add the new ones.
        for h in has {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        let cert = issue_bridge(&hosts).map_err(cert_err(&layout.bridge_cert()))?;
        let backup = layout.bridge_cert().with_extension("pem.bak");
        fs::copy(layout.bridge_cert(), &backup).map_err(io_err(&backup))?;
        replace_file(&layout.bridge_cert(), &cert.pem())?;
        bridge = Provenance::Reissued;
    }

    let mut meters = Vec::with_capacity(campus.buildings.len());
    for (i, building) in campus.buildings.iter().enumerate() {
        let (cert, key) = (
            layout.meter_cert(&building.code),
            layout.meter_key(&building.code),
        );
        let (meter_key, _) = key_at(&key, &cert)?;
        // Hardware serial: campus-unique and stable: "GTX-" then the building's position.
        let serial = format!("GTX-{:04}-{}", i + 1, building.code).into_bytes();
        let (der, provenance) =
            cert_at(&cert, || device_params(&serial).signed_by(&meter_key, &ca))?;
        meters.push(MeterIdentity {
            code: building.code.clone(),
            lfdi: lfdi_from_certificate(&der),
            sfdi: sfdi_from_certificate(&der),
            cert,
            key,
            der,
            provenance,
        });
    }
    Ok(Pki {
        layout: layout.clone(),
        ca: ca_made,
        bridge,
        meters,
    })
}
