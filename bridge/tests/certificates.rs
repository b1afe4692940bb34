//! Device certificates as real meters ship them: factory certificates chaining through a
//! manufacturer's CA and its issuing CA to a configured root, still pinned by the LFDI of a
//! registered meter; and the IEEE 2030.5 device profile's required extension contents.
use std::sync::Arc;

use bridge::directory::Directory;
use bridge::tls::DeviceCertVerifier;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params, KeyPair::generate().unwrap())
}

struct Chain {
    root: Vec<u8>,
    /// Issuing CA first, then the manufacturer CA under the root.
    intermediates: Vec<Vec<u8>>,
    device: Vec<u8>,
}

/// root -> `depth` intermediates -> device certificate made from `device`.
fn chain(depth: usize, device: CertificateParams) -> Chain {
    let (root_params, root_key) = ca("Meter Maker Root CA");
    let root = root_params.self_signed(&root_key).unwrap().der().to_vec();
    let mut issuer = Issuer::new(root_params, root_key);
    let mut intermediates = Vec::new();
    for i in 0..depth {
        let (params, key) = ca(&format!("Meter Maker CA {i}"));
        let cert = params.signed_by(&key, &issuer).unwrap();
        intermediates.insert(0, cert.der().to_vec());
        issuer = Issuer::new(params, key);
    }
    let key = KeyPair::generate().unwrap();
    let device = device.signed_by(&key, &issuer).unwrap().der().to_vec();
    Chain {
        root,
        intermediates,
        device,
    }
}

fn campus() -> sdk::CampusConfig {
    sdk::CampusConfig::load(&sdk::CampusConfig::in_repository()).unwrap()
}

/// A verifier trusting `root`, whose directory has ENG registered with `device` (every
/// other building with some other certificate).
fn verifier(root: &[u8], device: &[u8]) -> DeviceCertVerifier {
    let campus = campus();
    let certificates: Vec<(String, Vec<u8>)> = campus
        .buildings
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let der = if b.code == "ENG" {
                device.to_vec()
            } else {
                vec![i as u8; 8]
            };
            (b.code.clone(), der)
        })
        .collect();
    let directory = Arc::new(Directory::from_campus(&campus, &certificates).unwrap());
    DeviceCertVerifier::new(vec![root.to_vec()], directory).unwrap()
}

fn der(v: &[Vec<u8>]) -> Vec<CertificateDer<'static>> {
    v.iter().map(|d| CertificateDer::from(d.clone())).collect()
}

fn verify(v: &DeviceCertVerifier, c: &Chain, intermediates: &[Vec<u8>]) -> Result<(), String> {
    v.verify_client_cert(
        &CertificateDer::from(c.device.clone()),
        &der(intermediates),
        UnixTime::now(),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn a_factory_certificate_chains_through_up_to_two_intermediates() {
    for depth in 0..=2 {
        let c = chain(depth, certs::device_params(b"MAKER-0001"));
        let v = verifier(&c.root, &c.device);
        assert_eq!(verify(&v, &c, &c.intermediates), Ok(()), "depth {depth}");
        // In any order the client sends them.
        let mut reversed = c.intermediates.clone();
        reversed.reverse();
        assert_eq!(verify(&v, &c, &reversed), Ok(()), "depth {depth}, reversed");
        if depth > 0 {
            let missing = verify(&v, &c, &c.intermediates[1..]);
            assert!(missing.is_err(), "depth {depth} without its issuing CA");
        }
    }
    let c = chain(3, certs::device_params(b"MAKER-0002"));
    let v = verifier(&c.root, &c.device);
    assert!(
        verify(&v, &c, &c.intermediates).is_err(),
        "three intermediates are too many"
    );
}

#[test]
fn a_chain_to_another_root_or_an_unregistered_certificate_is_refused() {
    let c = chain(1, certs::device_params(b"MAKER-0003"));
    let other = chain(1, certs::device_params(b"MAKER-0004"));
    // Registered, but its chain ends at a root the bridge does not trust.
    let v = verifier(&other.root, &c.device);
    assert!(verify(&v, &c, &c.intermediates).is_err());
    // Trusted chain, but no registered meter has this certificate.
    let v = verifier(&c.root, &other.device);
    let refused = verify(&v, &c, &c.intermediates).unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
}

#[test]
fn an_intermediate_that_is_not_a_ca_is_refused() {
    // The "intermediate" is a device certificate signed by the root.
    let (root_params, root_key) = ca("Root");
    let root = root_params.self_signed(&root_key).unwrap().der().to_vec();
    let root_issuer = Issuer::new(root_params, root_key);
    let fake_key = KeyPair::generate().unwrap();
    let mut fake_params = certs::device_params(b"NOT-A-CA");
    fake_params
        .distinguished_name
        .push(DnType::CommonName, "not a CA");
    let fake = fake_params.signed_by(&fake_key, &root_issuer).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut device_params = certs::device_params(b"MAKER-0005");
    device_params.distinguished_name = rcgen::DistinguishedName::new();
    let device = device_params
        .signed_by(&key, &Issuer::new(fake_params, fake_key))
        .unwrap()
        .der()
        .to_vec();
    let c = Chain {
        root,
        intermediates: vec![fake.der().to_vec()],
        device,
    };
    let v = verifier(&c.root, &c.device);
    let refused = verify(&v, &c, &c.intermediates).unwrap_err();
    assert!(refused.contains("not a CA"), "{refused}");
}

#[test]
fn the_device_profile_extensions_must_hold_what_the_standard_requires() {
    // No digitalSignature in keyUsage.
    let mut params = certs::device_params(b"MAKER-0010");
    params.key_usages = vec![KeyUsagePurpose::KeyAgreement];
    let c = chain(1, params);
    let refused = verify(&verifier(&c.root, &c.device), &c, &c.intermediates).unwrap_err();
    assert!(refused.contains("digitalSignature"), "{refused}");

    // No IEEE 2030.5 policy.
    let mut params = certs::device_params(b"MAKER-0011");
    params
        .custom_extensions
        .retain(|e| e.oid_components().collect::<Vec<_>>() != certs::OID_CERTIFICATE_POLICIES);
    let c = chain(1, params);
    let refused = verify(&verifier(&c.root, &c.device), &c, &c.intermediates).unwrap_err();
    assert!(refused.contains("policy"), "{refused}");

    // No HardwareModuleName (a DNS name instead).
    let mut params = certs::device_params(b"MAKER-0012");
    params
        .custom_extensions
        .retain(|e| e.oid_components().collect::<Vec<_>>() != certs::OID_SUBJECT_ALT_NAME);
    params.subject_alt_names = vec![rcgen::SanType::DnsName("meter.example".try_into().unwrap())];
    let c = chain(1, params);
    let refused = verify(&verifier(&c.root, &c.device), &c, &c.intermediates).unwrap_err();
    assert!(refused.contains("HardwareModuleName"), "{refused}");

    // An unknown critical extension.
    let mut params = certs::device_params(b"MAKER-0013");
    let mut odd = CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![0x05, 0x00]);
    odd.set_criticality(true);
    params.custom_extensions.push(odd);
    let c = chain(1, params);
    let refused = verify(&verifier(&c.root, &c.device), &c, &c.intermediates).unwrap_err();
    assert!(refused.contains("critical extension"), "{refused}");

    // The campus profile itself passes.
    let c = chain(1, certs::device_params(b"MAKER-0014"));
    assert_eq!(
        verify(&verifier(&c.root, &c.device), &c, &c.intermediates),
        Ok(())
    );
}

#[test]
fn the_bridge_server_certificate_follows_the_2030_5_profile_and_clients_check_its_name() {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use x509_parser::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let pki = certs::ensure_pki(&certs::Layout::new(dir.path()), &campus()).unwrap();
    let server = CertificateDer::from_pem_file(pki.layout.bridge_cert()).unwrap();
    let ca = CertificateDer::from_pem_file(pki.layout.ca_cert()).unwrap();
    let (_, cert) = X509Certificate::from_der(&server).unwrap();
    assert_eq!(
        cert.validity().not_after.to_datetime().year(),
        9999,
        "no well-defined expiration"
    );
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.digital_signature() && ku.value.key_agreement());
    let policies = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.32")
        .expect("certificatePolicies");
    assert!(policies.critical);
    match policies.parsed_extension() {
        ParsedExtension::CertificatePolicies(p) => assert!(p
            .iter()
            .any(|i| i.policy_id.to_id_string() == "1.3.6.1.4.1.40732.1.1")),
        other => panic!("{other:?}"),
    }

    let verifier = bridge::tls::CampusServerVerifier::new(ca).unwrap();
    let check = |name: &str| {
        verifier.verify_server_cert(
            &server,
            &[],
            &rustls::pki_types::ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
    };
    assert!(check("localhost").is_ok());
    assert!(check("127.0.0.1").is_ok());
    let refused = check("bridge.example").unwrap_err().to_string();
    assert!(refused.contains("NotValidForName"), "{refused}");
    // A certificate from another CA is refused.
    let other = tempfile::tempdir().unwrap();
    let other = certs::ensure_pki(&certs::Layout::new(other.path()), &campus()).unwrap();
    let foreign = CertificateDer::from_pem_file(other.layout.bridge_cert()).unwrap();
    assert!(verifier
        .verify_server_cert(
            &foreign,
            &[],
            &rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            &[],
            UnixTime::now()
        )
        .is_err());
}

#[test]
fn clients_refuse_a_server_certificate_that_is_a_ca_or_not_for_server_authentication() {
    use rcgen::ExtendedKeyUsagePurpose;
    use rustls::client::danger::ServerCertVerifier;
    let (root_params, root_key) = ca("Campus CA");
    let root = root_params.self_signed(&root_key).unwrap().der().to_vec();
    let issuer = Issuer::new(root_params, root_key);
    let issue = |is_ca: bool, purposes: Vec<ExtendedKeyUsagePurpose>| {
        let mut params = CertificateParams::new(vec!["bridge.campus.example".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "bridge");
        if is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        params.extended_key_usages = purposes;
        let key = KeyPair::generate().unwrap();
        CertificateDer::from(params.signed_by(&key, &issuer).unwrap().der().to_vec())
    };
    let verifier = bridge::tls::CampusServerVerifier::new(CertificateDer::from(root)).unwrap();
    let check = |cert: &CertificateDer<'_>| {
        verifier
            .verify_server_cert(
                cert,
                &[],
                &rustls::pki_types::ServerName::try_from("bridge.campus.example").unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    // For server authentication, or saying nothing of its purpose: accepted.
    check(&issue(false, vec![ExtendedKeyUsagePurpose::ServerAuth])).unwrap();
    check(&issue(false, Vec::new())).unwrap();
    // Another campus certificate naming the same host: refused.
    let client_only = check(&issue(false, vec![ExtendedKeyUsagePurpose::ClientAuth])).unwrap_err();
    assert!(client_only.contains("InvalidPurpose"), "{client_only}");
    let a_ca = check(&issue(true, vec![ExtendedKeyUsagePurpose::ServerAuth])).unwrap_err();
    assert!(a_ca.contains("is a CA certificate"), "{a_ca}");
}
