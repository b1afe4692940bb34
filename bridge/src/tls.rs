//! TLS for the bridge: rustls with TLS 1.2 and 1.3, GCM suites plus the CCM suites IEEE 2030.5
//! mandates (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, from rustls-ccm), an ECDSA P-256 server
//! certificate, and mandatory client certificates checked by `DeviceCertVerifier`.
//!
//! rustls's WebPKI verifier refuses IEEE 2030.5 device certificates because they mark
//! certificatePolicies critical (webpki#30), so the verifier here checks the chain, dates and
//! extensions itself, and the handshake signature with aws-lc-rs.
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::prelude::*;

use crate::directory::Directory;

/// Extensions a device certificate may mark critical.
const UNDERSTOOD_CRITICAL: &[&str] = &[
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.19", // basicConstraints
    "2.5.29.32", // certificatePolicies
    "2.5.29.37", // extKeyUsage
];

/// The crypto provider: aws-lc-rs's suites (GCM, ChaCha20) first, then AES-CCM and CCM-8.
pub fn provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.extend(rustls_ccm::all_suites());
    provider
}

fn tls_error(message: impl Into<String>) -> rustls::Error {
    rustls::Error::General(message.into())
}

/// Accepts a client certificate only if it was issued by the campus CA, is within its dates,
/// carries no critical extension we do not understand, is not a CA, and belongs to a known,
/// active meter.
#[derive(Debug)]
pub struct DeviceCertVerifier {
    ca_der: Vec<u8>,
    hints: Vec<DistinguishedName>,
    directory: Arc<Directory>,
}

impl DeviceCertVerifier {
    pub fn new(ca_der: Vec<u8>, directory: Arc<Directory>) -> anyhow::Result<Self> {
        let (_, ca) =
            X509Certificate::from_der(&ca_der).map_err(|e| anyhow::anyhow!("campus CA: {e}"))?;
        let hints = vec![DistinguishedName::from(ca.subject().as_raw().to_vec())];
        Ok(DeviceCertVerifier {
            ca_der,
            hints,
            directory,
        })
    }

    /// The checks on the certificate itself, apart from the meter directory.
    pub fn check_certificate(&self, der: &[u8], now: i64) -> Result<(), rustls::Error> {
        let (_, ca) = X509Certificate::from_der(&self.ca_der)
            .map_err(|_| tls_error("campus CA unreadable"))?;
        let (rest, cert) = X509Certificate::from_der(der).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if !rest.is_empty() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ));
        }
        if cert.issuer().as_raw() != ca.subject().as_raw() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ));
        }
        cert.verify_signature(Some(ca.public_key())).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
        })?;
        let validity = cert.validity();
        if now < validity.not_before.timestamp() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidYet,
            ));
        }
        if now > validity.not_after.timestamp() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired,
            ));
        }
        for ext in cert.extensions() {
            if ext.critical && !UNDERSTOOD_CRITICAL.contains(&ext.oid.to_id_string().as_str()) {
                return Err(tls_error(format!(
                    "unsupported critical extension {}",
                    ext.oid
                )));
            }
        }
        if cert.is_ca() {
            return Err(tls_error("a CA certificate is not a device certificate"));
        }
        Ok(())
    }
}

impl ClientCertVerifier for DeviceCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check_certificate(end_entity, now.as_secs() as i64)?;
        let lfdi = migrations::identity::lfdi_from_certificate(end_entity);
        match self.directory.get(&lfdi) {
            Some(meter) if meter.active => Ok(ClientCertVerified::assertion()),
            Some(meter) => Err(tls_error(format!("meter {} is suspended", meter.code))),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
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
        vec![
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
        ]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The handshake signature, verified with the certificate's public key (same ASN.1 ECDSA
/// format in TLS 1.2 and 1.3).
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
    let (_, parsed) = X509Certificate::from_der(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let key = parsed.public_key().subject_public_key.data.as_ref();
    let algorithm = match dss.scheme {
        SignatureScheme::ECDSA_NISTP256_SHA256 => &ECDSA_P256_SHA256_ASN1,
        SignatureScheme::ECDSA_NISTP384_SHA384 => &ECDSA_P384_SHA384_ASN1,
        _ => {
            return Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))
        }
    };
    UnparsedPublicKey::new(algorithm, key)
        .verify(message, dss.signature())
        .map(|_| HandshakeSignatureValid::assertion())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))
}

/// The bridge's rustls server configuration.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<DeviceCertVerifier>,
) -> anyhow::Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    // No session resumption: a resumed session skips the client-certificate check, so a
    // meter suspended since its last handshake would get back in. Meters keep their
    // connections open, so full handshakes are rare.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The LFDI of the client certificate of an established connection.
pub fn peer_lfdi(connection: &rustls::ServerConnection) -> Option<registry::identity::Lfdi> {
    let cert = connection.peer_certificates()?.first()?;
    Some(migrations::identity::lfdi_from_certificate(cert))
}
