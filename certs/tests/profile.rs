//! The generated certificates have the IEEE 2030.5 device profile, chain to the campus CA,
//! and the printed identities are what the bridge computes.
use std::os::unix::fs::PermissionsExt;

use certs::{ensure_pki, Layout, Provenance};
use sdk::identity::{lfdi_from_certificate, sfdi_from_certificate};
use sdk::CampusConfig;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

fn campus() -> CampusConfig {
    CampusConfig::load(&CampusConfig::in_repository()).unwrap()
}

#[test]
fn device_certificates_follow_the_ieee_2030_5_profile() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_pki(&Layout::new(dir.path()), &campus()).unwrap();
    assert_eq!(pki.meters.len(), 25);
    let ca_der = certs::pem_to_der(
        &std::fs::read_to_string(pki.layout.ca_cert()).unwrap(),
        &pki.layout.ca_cert(),
    )
    .unwrap();
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();

    for meter in &pki.meters {
        let (rest, cert) = X509Certificate::from_der(&meter.der).unwrap();
        assert!(rest.is_empty());
        // ECDSA P-256, signed with ecdsa-with-SHA256.
        assert_eq!(
            cert.signature_algorithm.algorithm,
            oid_registry::OID_SIG_ECDSA_WITH_SHA256
        );
        let spki = &cert.tbs_certificate.subject_pki;
        assert_eq!(
            spki.algorithm.algorithm,
            oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
        );
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap();
        assert_eq!(curve, oid_registry::OID_EC_P256);
        // Empty subject; never expires.
        assert_eq!(cert.subject().iter().count(), 0);
        assert_eq!(cert.validity().not_after.to_datetime().year(), 9999);
        assert_eq!(
            cert.validity().not_after.to_string(),
            "Dec 31 23:59:59 9999 +00:00"
        );

        let mut seen = (false, false, false);
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::KeyUsage(ku) => {
                    assert!(ext.critical, "keyUsage must be critical");
                    assert!(ku.digital_signature() && ku.key_agreement());
                    assert!(!ku.key_cert_sign());
                    seen.0 = true;
                }
                ParsedExtension::CertificatePolicies(policies) => {
                    assert!(ext.critical, "certificatePolicies must be critical");
                    let ids: Vec<String> = policies
                        .iter()
                        .map(|p| p.policy_id.to_id_string())
                        .collect();
                    assert_eq!(ids, ["1.3.6.1.4.1.40732.1.1"]);
                    seen.1 = true;
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    assert!(ext.critical, "subjectAltName must be critical");
                    let [GeneralName::OtherName(type_id, value)] = san.general_names.as_slice()
                    else {
                        panic!("expected one otherName, got {:?}", san.general_names);
                    };
                    assert_eq!(type_id.to_id_string(), "1.3.6.1.5.5.7.8.4");
                    // value: [0] { SEQUENCE { hwType OID, hwSerialNum OCTET STRING } }
                    let serial = format!("-{}", meter.code);
                    assert!(value.windows(serial.len()).any(|w| w == serial.as_bytes()));
                    seen.2 = true;
                }
                _ => {}
            }
        }
        assert_eq!(
            seen,
            (true, true, true),
            "{}: missing a profile extension",
            meter.code
        );
        // Chains to the campus CA.
        cert.verify_signature(Some(ca.public_key())).unwrap();
        assert_eq!(cert.issuer(), ca.subject());
        // The identity printed is SHA-256 of the DER, as the bridge computes it.
        assert_eq!(meter.lfdi, lfdi_from_certificate(&meter.der));
        assert_eq!(meter.sfdi, sfdi_from_certificate(&meter.der));
        assert_eq!(meter.sfdi, registry::identity::sfdi_from_lfdi(&meter.lfdi));
        assert!(registry::identity::sfdi_is_well_formed(meter.sfdi));
    }
    let lfdis: std::collections::HashSet<_> = pki.meters.iter().map(|m| m.lfdi).collect();
    assert_eq!(lfdis.len(), 25, "every meter has its own LFDI");
}

#[test]
fn private_keys_are_owner_only_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    let first = ensure_pki(&layout, &campus()).unwrap();
    assert_eq!(first.ca, Provenance::Created);
    let keys = [
        layout.ca_key(),
        layout.bridge_key(),
        layout.meter_key("ENG"),
    ];
    let before: Vec<String> = keys
        .iter()
        .map(|k| std::fs::read_to_string(k).unwrap())
        .collect();
    for key in &keys {
        let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }

    // Lose one meter's certificate and key: only that meter is made again.
    std::fs::remove_file(layout.meter_cert("GYM")).unwrap();
    std::fs::remove_file(layout.meter_key("GYM")).unwrap();
    let second = ensure_pki(&layout, &campus()).unwrap();
    assert_eq!(second.ca, Provenance::Kept);
    assert_eq!(second.bridge, Provenance::Kept);
    let after: Vec<String> = keys
        .iter()
        .map(|k| std::fs::read_to_string(k).unwrap())
        .collect();
    assert_eq!(before, after);
    for (a, b) in first.meters.iter().zip(&second.meters) {
        if a.code == "GYM" {
            assert_eq!(b.provenance, Provenance::Created);
            assert_ne!(a.lfdi, b.lfdi);
        } else {
            assert_eq!(b.provenance, Provenance::Kept);
            assert_eq!(a.lfdi, b.lfdi);
        }
    }
}

#[test]
fn a_certificate_without_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    ensure_pki(&layout, &campus()).unwrap();
    std::fs::remove_file(layout.meter_key("ENG")).unwrap();
    let err = ensure_pki(&layout, &campus()).unwrap_err();
    assert!(matches!(err, certs::PkiError::OrphanCertificate(p) if p == layout.meter_cert("ENG")));
}

#[test]
fn bridge_certificate_is_a_p256_server_certificate_for_localhost() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure_pki(&Layout::new(dir.path()), &campus()).unwrap();
    let pem = std::fs::read_to_string(pki.layout.bridge_cert()).unwrap();
    let der = certs::pem_to_der(&pem, &pki.layout.bridge_cert()).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(
        cert.signature_algorithm.algorithm,
        oid_registry::OID_SIG_ECDSA_WITH_SHA256
    );
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(names.iter().any(|n| n.contains("localhost")), "{names:?}");
}

/// The bridge certificate's DNS names and addresses, as text.
fn bridge_names(layout: &Layout) -> Vec<String> {
    let pem = std::fs::read_to_string(layout.bridge_cert()).unwrap();
    let der = certs::pem_to_der(&pem, &layout.bridge_cert()).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                std::net::IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()
            }
            GeneralName::IPAddress(b) => {
                std::net::IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()
            }
            other => panic!("unexpected name {other}"),
        })
        .collect()
}

/// The bridge certificate's public key.
fn bridge_public_key(layout: &Layout) -> Vec<u8> {
    let pem = std::fs::read_to_string(layout.bridge_cert()).unwrap();
    let der = certs::pem_to_der(&pem, &layout.bridge_cert()).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

#[test]
fn bridge_hosts_are_added_to_its_certificate_for_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    let first = ensure_pki(&layout, &campus()).unwrap();
    assert_eq!(first.bridge, Provenance::Created);
    assert_eq!(bridge_names(&layout), ["localhost", "127.0.0.1", "::1"]);
    let key = std::fs::read_to_string(layout.bridge_key()).unwrap();
    let public_key = bridge_public_key(&layout);
    let ca = std::fs::read_to_string(layout.ca_cert()).unwrap();

    // Asking for what it has changes nothing.
    let again = certs::ensure_pki_with(
        &layout,
        &campus(),
        &["LOCALHOST".into(), "127.0.0.1".into()],
    )
    .unwrap();
    assert_eq!(again.bridge, Provenance::Kept);

    // New names: re-issued for the same key by the same CA, the old names kept, the old
    // certificate beside it.
    let before = std::fs::read_to_string(layout.bridge_cert()).unwrap();
    let hosts = [
        "Bridge.Campus.Example".to_string(),
        " 10.20.0.5".to_string(),
    ];
    let more = certs::ensure_pki_with(&layout, &campus(), &hosts).unwrap();
    assert_eq!(more.bridge, Provenance::Reissued);
    assert_eq!(more.ca, Provenance::Kept);
    assert_eq!(
        bridge_names(&layout),
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "bridge.campus.example",
            "10.20.0.5"
        ]
    );
    assert_eq!(bridge_public_key(&layout), public_key);
    assert_eq!(std::fs::read_to_string(layout.bridge_key()).unwrap(), key);
    assert_eq!(std::fs::read_to_string(layout.ca_cert()).unwrap(), ca);
    assert_eq!(
        std::fs::read_to_string(layout.bridge_cert().with_extension("pem.bak")).unwrap(),
        before
    );
    assert!(!layout.bridge_cert().with_extension("pem.new").exists());

    // One more name later: the names added before stay.
    let third = certs::ensure_pki_with(&layout, &campus(), &["fd00::5".into()]).unwrap();
    assert_eq!(third.bridge, Provenance::Reissued);
    assert_eq!(
        bridge_names(&layout),
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "fd00::5",
            "bridge.campus.example",
            "10.20.0.5"
        ]
    );
    assert_eq!(bridge_public_key(&layout), public_key);
    // A run without names keeps it (names are never dropped).
    let later = ensure_pki(&layout, &campus()).unwrap();
    assert_eq!(later.bridge, Provenance::Kept);
    assert_eq!(bridge_names(&layout).len(), 6);
}

#[test]
fn a_bad_bridge_host_is_refused_before_anything_is_written() {
    for bad in [
        "",
        " ",
        "10.20.0.5:8444",
        "https://bridge",
        "*.campus.example",
        "two words",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("pki"));
        let err = certs::ensure_pki_with(&layout, &campus(), &[bad.to_string()]).unwrap_err();
        assert!(matches!(err, certs::PkiError::BadHost(_)), "{bad:?}: {err}");
        assert!(!layout.dir.exists(), "{bad:?}: nothing written");
    }
}

#[test]
fn a_bridge_certificate_from_elsewhere_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    ensure_pki(&layout, &campus()).unwrap();
    // The operator's own certificate (here: another CA's, for another key).
    let other = tempfile::tempdir().unwrap();
    let other = ensure_pki(&Layout::new(other.path()), &campus()).unwrap();
    std::fs::copy(other.layout.bridge_cert(), layout.bridge_cert()).unwrap();
    let theirs = std::fs::read_to_string(layout.bridge_cert()).unwrap();
    assert_eq!(
        ensure_pki(&layout, &campus()).unwrap().bridge,
        Provenance::Kept
    );
    let err =
        certs::ensure_pki_with(&layout, &campus(), &["bridge.campus.example".into()]).unwrap_err();
    assert!(
        matches!(&err, certs::PkiError::ForeignBridgeCertificate(p) if *p == layout.bridge_cert()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(layout.bridge_cert()).unwrap(),
        theirs
    );
}
