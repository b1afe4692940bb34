//! Checking campus certificates with rustls, shared by the bridge (device certificates) and
//! its clients (the bridge's server certificate): the meters' simulator and the keeper.
//!
//! rustls's WebPKI verifier refuses certificates in the IEEE 2030.5 profile because they mark
//! certificatePolicies critical (webpki#281), so the checks here parse the certificate with
//! x509-parser, check issuer, dates and critical extensions, and verify handshake signatures
//! with aws-lc-rs.
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use x509_parser::prelude::*;

/// Extensions a campus certificate may mark critical.
pub const UNDERSTOOD_CRITICAL: &[&str] = &[
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.19", // basicConstraints
    "2.5.29.32", // certificatePolicies
    "2.5.29.37", // extKeyUsage
];

/// The handshake signatures [`verify_signature`] checks (the profile's ECDSA keys).
pub const SCHEMES: [SignatureScheme; 2] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
];

fn tls_error(message: impl Into<String>) -> rustls::Error {
    rustls::Error::General(message.into())
}

/// A certificate error as rustls reports it.
pub fn bad(e: rustls::CertificateError) -> rustls::Error {
    rustls::Error::InvalidCertificate(e)
}

/// Refuses a certificate marking critical an extension not in [`UNDERSTOOD_CRITICAL`].
pub fn only_understood_critical_extensions(
    cert: &X509Certificate<'_>,
) -> Result<(), rustls::Error> {
    match cert
        .extensions()
        .iter()
        .find(|e| e.critical && !UNDERSTOOD_CRITICAL.contains(&e.oid.to_id_string().as_str()))
    {
        Some(ext) => Err(tls_error(format!(
            "unsupported critical extension {}",
            ext.oid
        ))),
        None => Ok(()),
    }
}

/// Refuses a certificate outside its validity at `now` (Unix seconds).
pub fn within_dates(cert: &X509Certificate<'_>, now: i64) -> Result<(), rustls::Error> {
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(bad(rustls::CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(bad(rustls::CertificateError::Expired));
    }
    Ok(())
}

/// Parses a certificate that is exactly one DER certificate (no trailing bytes).
pub fn parse_whole(der: &[u8]) -> Result<X509Certificate<'_>, rustls::Error> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(bad(rustls::CertificateError::BadEncoding)),
    }
}

/// The handshake signature, verified with the certificate's public key (same ASN.1 ECDSA
/// format in TLS 1.2 and 1.3).
pub fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
    let (_, parsed) =
        X509Certificate::from_der(cert).map_err(|_| bad(rustls::CertificateError::BadEncoding))?;
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
        .map_err(|_| bad(rustls::CertificateError::BadSignature))
}

/// How a campus client checks the bridge's certificate: issued by the campus CA (signature
/// verified), within its dates, no critical extension beyond the 2030.5 profile's, not a CA,
/// for server authentication (if it has an extKeyUsage), and naming the host or address
/// connected to (exactly: no wildcards).
#[derive(Debug)]
pub struct CampusServerVerifier {
    ca: X509Certificate<'static>,
}

impl CampusServerVerifier {
    /// `ca`: the campus CA's DER. Refused (BadEncoding) if it is not one certificate.
    pub fn new(ca: CertificateDer<'static>) -> Result<Self, rustls::Error> {
        // Parsed once; its DER is kept for the process's life (one CA per client config).
        let der: &'static [u8] = Box::leak(ca.to_vec().into_boxed_slice());
        let ca = parse_whole(der)?;
        Ok(CampusServerVerifier { ca })
    }
}

impl ServerCertVerifier for CampusServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = parse_whole(end_entity)?;
        if cert.issuer().as_raw() != self.ca.subject().as_raw()
            || cert.verify_signature(Some(self.ca.public_key())).is_err()
        {
            return Err(bad(rustls::CertificateError::UnknownIssuer));
        }
        within_dates(&cert, now.as_secs() as i64)?;
        only_understood_critical_extensions(&cert)?;
        // A server's certificate: not a CA, and for server authentication if it says what
        // it is for.
        if cert.is_ca() {
            return Err(tls_error("the server's certificate is a CA certificate"));
        }
        let purpose = cert
            .extended_key_usage()
            .map_err(|_| bad(rustls::CertificateError::BadEncoding))?;
        if purpose.is_some_and(|eku| !eku.value.server_auth && !eku.value.any) {
            return Err(bad(rustls::CertificateError::InvalidPurpose));
        }
        let names = cert
            .subject_alternative_name()
            .map_err(|_| bad(rustls::CertificateError::BadEncoding))?;
        let matches = names.is_some_and(|san| {
            san.value
                .general_names
                .iter()
                .any(|n| match (n, server_name) {
                    (GeneralName::DNSName(d), ServerName::DnsName(s)) => {
                        d.eq_ignore_ascii_case(s.as_ref())
                    }
                    (GeneralName::IPAddress(bytes), ServerName::IpAddress(ip)) => {
                        match std::net::IpAddr::from(*ip) {
                            std::net::IpAddr::V4(v4) => *bytes == v4.octets().as_slice(),
                            std::net::IpAddr::V6(v6) => *bytes == v6.octets().as_slice(),
                        }
                    }
                    _ => false,
                })
        });
        if !matches {
            return Err(bad(rustls::CertificateError::NotValidForName));
        }
        Ok(ServerCertVerified::assertion())
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
}

/// A client configuration that trusts the bridge's server certificate as
/// [`CampusServerVerifier`] checks it, and presents no client certificate (the keeper, which
/// authenticates with its bearer token): TLS 1.3 and 1.2, aws-lc-rs's suites.
pub fn campus_client_config(
    ca: CertificateDer<'static>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let verifier = Arc::new(CampusServerVerifier::new(ca)?);
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .dangerous()
    .with_custom_certificate_verifier(verifier)
    .with_no_client_auth())
}
