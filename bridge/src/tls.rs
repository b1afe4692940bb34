//! TLS for the bridge: rustls with TLS 1.2 and 1.3, GCM suites plus the CCM suites IEEE 2030.5
//! mandates (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, from rustls-ccm), an ECDSA P-256 server
//! certificate, and mandatory client certificates checked by `DeviceCertVerifier`.
//!
//! rustls's WebPKI verifier refuses IEEE 2030.5 device certificates because they mark
//! certificatePolicies critical (webpki#281), so the verifier here checks the chain, dates and
//! extensions itself, and the handshake signature with aws-lc-rs.
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::prelude::*;

/// How the simulator and the keeper check the bridge's certificate.
pub use certs::verify::CampusServerVerifier;
use certs::verify::{
    bad, only_understood_critical_extensions, parse_whole, verify_signature, within_dates, SCHEMES,
};

use crate::directory::Directory;

fn tls_error(message: impl Into<String>) -> rustls::Error {
    rustls::Error::General(message.into())
}

/// The crypto provider: aws-lc-rs's suites (GCM, ChaCha20) first, then AES-CCM, and CCM-8
/// for TLS 1.2 only: IEEE 2030.5 requires TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 there, but
/// TLS 1.3's CCM-8 (an 8-byte tag, which RFC 8446 leaves out of its recommended suites) is
/// not offered. The server's order decides (`server_config`).
pub fn provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.extend(
        rustls_ccm::all_suites()
            .into_iter()
            .filter(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_CCM_8_SHA256),
    );
    provider
}

/// The IEEE 2030.5 certificate policy arc (1.3.6.1.4.1.40732.1.x): a device certificate's
/// certificatePolicies must name a policy under it.
const POLICY_ARC: &str = "1.3.6.1.4.1.40732.1.";
/// HardwareModuleName (RFC 4108), the otherName of a device certificate's subjectAltName.
const HARDWARE_MODULE_NAME: &str = "1.3.6.1.5.5.7.8.4";
/// Intermediate CAs allowed between a device certificate and a trusted root (a
/// manufacturer's CA and its issuing CA, as factory certificates chain).
pub const MAX_INTERMEDIATES: usize = 2;

/// Accepts a client certificate only if it belongs to a known, active meter (looked up by
/// LFDI first: a hash, before any parsing or signature check), follows the IEEE 2030.5
/// device profile (keyUsage digitalSignature, a 2030.5 policy, a HardwareModuleName, no
/// critical extension we do not understand, not a CA), is within its dates, and chains to a
/// trusted root (the campus CA or a configured manufacturer root) through at most
/// [`MAX_INTERMEDIATES`] intermediate CAs the client sends.
#[derive(Debug)]
pub struct DeviceCertVerifier {
    /// Parsed once; their DER is kept for the process's life.
    roots: Vec<X509Certificate<'static>>,
    hints: Vec<DistinguishedName>,
    directory: Arc<Directory>,
}

/// A CA that may issue certificates: basicConstraints CA, and keyCertSign if it has a
/// keyUsage.
fn may_issue(ca: &X509Certificate<'_>) -> bool {
    ca.is_ca()
        && ca
            .key_usage()
            .ok()
            .flatten()
            .is_none_or(|ku| ku.value.key_cert_sign())
}

impl DeviceCertVerifier {
    /// `roots`: DER of the trusted roots (the campus CA first).
    pub fn new(roots: Vec<Vec<u8>>, directory: Arc<Directory>) -> anyhow::Result<Self> {
        let mut parsed = Vec::new();
        let mut hints = Vec::new();
        for der in roots {
            let der: &'static [u8] = Box::leak(der.into_boxed_slice());
            let (_, ca) =
                X509Certificate::from_der(der).map_err(|e| anyhow::anyhow!("trusted root: {e}"))?;
            anyhow::ensure!(
                may_issue(&ca),
                "trusted root {} is not a CA that may sign certificates",
                ca.subject()
            );
            hints.push(DistinguishedName::from(ca.subject().as_raw().to_vec()));
            parsed.push(ca);
        }
        anyhow::ensure!(!parsed.is_empty(), "no trusted root");
        Ok(DeviceCertVerifier {
            roots: parsed,
            hints,
            directory,
        })
    }

    /// The checks on the certificate and its chain, apart from the meter directory.
    pub fn check_certificate(
        &self,
        der: &[u8],
        intermediates: &[CertificateDer<'_>],
        now: i64,
    ) -> Result<(), rustls::Error> {
        let cert = parse_whole(der)?;
        within_dates(&cert, now)?;
        check_device_profile(&cert)?;
        // Up the chain: a trusted root, or one of the client's intermediates.
        let parsed: Vec<X509Certificate<'_>> = intermediates
            .iter()
            .take(MAX_INTERMEDIATES + 1)
            .map(|c| parse_whole(c))
            .collect::<Result<_, _>>()?;
        let mut current = &cert;
        for depth in 0..=MAX_INTERMEDIATES {
            let issued_by = |ca: &X509Certificate<'_>| {
                ca.subject().as_raw() == current.issuer().as_raw()
                    && current.verify_signature(Some(ca.public_key())).is_ok()
            };
            if self.roots.iter().any(issued_by) {
                return Ok(());
            }
            if depth == MAX_INTERMEDIATES {
                break;
            }
            let Some(next) = parsed.iter().find(|ca| issued_by(ca)) else {
                break;
            };
            if !may_issue(next) {
                return Err(tls_error("an intermediate certificate is not a CA"));
            }
            within_dates(next, now)?;
            current = next;
        }
        Err(bad(rustls::CertificateError::UnknownIssuer))
    }
}

/// The IEEE 2030.5 device certificate profile's extensions: only understood ones critical,
/// keyUsage with digitalSignature (it signs the handshake), a certificate policy under the
/// 2030.5 arc, a HardwareModuleName, and not a CA.
fn check_device_profile(cert: &X509Certificate<'_>) -> Result<(), rustls::Error> {
    only_understood_critical_extensions(cert)?;
    if cert.is_ca() {
        return Err(tls_error("a CA certificate is not a device certificate"));
    }
    let key_usage = cert
        .key_usage()
        .map_err(|_| bad(rustls::CertificateError::BadEncoding))?;
    if !key_usage.is_some_and(|ku| ku.value.digital_signature()) {
        return Err(tls_error(
            "device certificate keyUsage lacks digitalSignature",
        ));
    }
    let ieee = cert
        .extensions()
        .iter()
        .any(|ext| match ext.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => policies
                .iter()
                .any(|info| info.policy_id.to_id_string().starts_with(POLICY_ARC)),
            _ => false,
        });
    if !ieee {
        return Err(tls_error(
            "device certificate names no IEEE 2030.5 policy (1.3.6.1.4.1.40732.1.x)",
        ));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|_| bad(rustls::CertificateError::BadEncoding))?;
    let hardware = san.is_some_and(|san| {
        san.value.general_names.iter().any(|name| {
            matches!(name, GeneralName::OtherName(oid, _) if oid.to_id_string() == HARDWARE_MODULE_NAME)
        })
    });
    if !hardware {
        return Err(tls_error(
            "device certificate subjectAltName has no HardwareModuleName",
        ));
    }
    Ok(())
}

impl ClientCertVerifier for DeviceCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The cheap check first: a certificate no registered meter has is refused before
        // any parsing or signature verification.
        let lfdi = sdk::identity::lfdi_from_certificate(end_entity);
        match self.directory.get(&lfdi) {
            None => return Err(bad(rustls::CertificateError::UnknownIssuer)),
            Some(meter) if !meter.active => return Err(bad(rustls::CertificateError::Revoked)),
            Some(_) => {}
        }
        self.check_certificate(end_entity, intermediates, now.as_secs() as i64)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// Always presents the bridge's certificate. Not `with_single_cert`: it parses the
/// certificate with webpki, which refuses the IEEE 2030.5 profile's critical
/// certificatePolicies (webpki#281).
#[derive(Debug)]
struct ServerCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for ServerCertificate {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The bridge's certificate and key, as both listeners present them.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
    let signing_key = provider().key_provider.load_private_key(key)?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(
        chain,
        signing_key,
    )))
}

/// The bridge's rustls server configuration for the meters (mutual TLS, IEEE 2030.5).
pub fn server_config(
    certified: Arc<rustls::sign::CertifiedKey>,
    verifier: Arc<DeviceCertVerifier>,
) -> anyhow::Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(ServerCertificate(certified)));
    // No session resumption: a resumed session skips the client-certificate check, so a
    // meter suspended since its last handshake would get back in. Meters keep their
    // connections open, so full handshakes are rare.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    // The strongest suite both sides have, in the provider's order, not the client's.
    config.ignore_client_order = true;
    Ok(config)
}

/// The keeper interface's server configuration when it is served off loopback
/// (`keeper_tls`): the bridge's certificate, no client certificate (the keeper
/// authenticates with its bearer token, now inside TLS), TLS 1.3 only: the keeper is ours
/// and speaks it.
pub fn keeper_server_config(
    certified: Arc<rustls::sign::CertifiedKey>,
) -> anyhow::Result<rustls::ServerConfig> {
    Ok(rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(ServerCertificate(certified))))
}

/// The LFDI of the client certificate of an established connection.
pub fn peer_lfdi(connection: &rustls::ServerConnection) -> Option<registry::identity::Lfdi> {
    let cert = connection.peer_certificates()?.first()?;
    Some(sdk::identity::lfdi_from_certificate(cert))
}
