//! A minimal IEEE 2030.5 client over mutual TLS: what the simulator's meters and the tests
//! use to talk to the bridge (or to any IEEE 2030.5 server that trusts the campus CA).
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: u16,
    pub location: Option<String>,
    pub allow: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// Which cipher suites the client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suites {
    /// rustls's defaults plus CCM.
    Default,
    /// Only TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 over TLS 1.2, as minimal IEEE 2030.5 clients.
    Ccm8Only,
    /// Only TLS_AES_128_CCM_8_SHA256 over TLS 1.3 (the bridge does not offer it).
    Tls13Ccm8Only,
    /// The defaults with ChaCha20-Poly1305 preferred (the bridge's order decides).
    ChaChaFirst,
}

pub fn client_config(
    ca: CertificateDer<'static>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    suites: Suites,
) -> Result<rustls::ClientConfig> {
    let server_verifier =
        Arc::new(bridge::tls::CampusServerVerifier::new(ca).context("campus CA")?);
    let mut provider = bridge::tls::provider();
    let versions: &[&rustls::SupportedProtocolVersion] = match suites {
        Suites::Default => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Suites::Ccm8Only => {
            provider.cipher_suites = vec![*rustls_ccm::TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8];
            &[&rustls::version::TLS12]
        }
        Suites::Tls13Ccm8Only => {
            provider.cipher_suites = vec![*rustls_ccm::TLS13_AES_128_CCM_8_SHA256];
            &[&rustls::version::TLS13]
        }
        Suites::ChaChaFirst => {
            provider
                .cipher_suites
                .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        }
    };
    // Not `with_client_auth_cert`: it parses the certificate with webpki, which refuses the
    // device profile's critical certificatePolicies (webpki#281).
    let signing_key = provider.key_provider.load_private_key(key)?;
    let certified = Arc::new(rustls::sign::CertifiedKey::new(vec![cert], signing_key));
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)?
            .dangerous()
            .with_custom_certificate_verifier(server_verifier)
            .with_client_cert_resolver(Arc::new(DeviceCertificate(certified))),
    )
}

/// Always presents the meter's device certificate.
#[derive(Debug)]
struct DeviceCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for DeviceCertificate {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.key.choose_scheme(schemes).map(|_| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// One meter's connection to the server, reused across requests and re-opened when lost.
/// TLS handshakes in flight at once that a process of simulated meters allows itself: under
/// the bridge's `max_handshakes_per_ip` (256), since the meters share one address.
pub const DEFAULT_MAX_HANDSHAKES: usize = 128;

/// How long a TLS handshake may take before the meter gives up on it (and retries).
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct MeterClient {
    connector: TlsConnector,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// The negotiated cipher suite of the current connection.
    pub suite: Option<rustls::CipherSuite>,
    /// Handshakes in flight at once across the clients sharing it: thousands of meters in
    /// one process (one IP address) connecting together stay under the bridge's per-address
    /// handshake limit instead of being turned away and retrying.
    handshakes: Option<Arc<tokio::sync::Semaphore>>,
    /// Connections open at once across the clients sharing it; with it, a client closes its
    /// connection after each request (for more meters than the process may hold files).
    connections: Option<Arc<tokio::sync::Semaphore>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl MeterClient {
    pub fn new(config: rustls::ClientConfig, addr: SocketAddr) -> Self {
        MeterClient {
            connector: TlsConnector::from(Arc::new(config)),
            addr,
            server_name: ServerName::try_from("localhost").expect("valid name"),
            sender: None,
            suite: None,
            handshakes: None,
            connections: None,
            permit: None,
        }
    }

    /// Shares `limit` (connections open at once) with the other clients given it; each
    /// request then opens and closes its own connection.
    pub fn with_connection_limit(mut self, limit: Arc<tokio::sync::Semaphore>) -> Self {
        self.connections = Some(limit);
        self
    }

    /// Shares `limit` (handshakes in flight at once) with the other clients given it.
    pub fn with_handshake_limit(mut self, limit: Arc<tokio::sync::Semaphore>) -> Self {
        self.handshakes = Some(limit);
        self
    }

    /// Opens the TLS connection (the handshake fails here for a refused certificate).
    pub async fn connect(&mut self) -> Result<()> {
        if let Some(limit) = &self.connections {
            if self.permit.is_none() {
                self.permit = Some(limit.clone().acquire_owned().await?);
            }
        }
        let _permit = match &self.handshakes {
            Some(limit) => Some(limit.clone().acquire_owned().await?),
            None => None,
        };
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connect {}", self.addr))?;
        let _ = tcp.set_nodelay(true);
        // A server that accepted but never answers (its slots or files exhausted) must not
        // hold this meter, or its handshake permit, for ever.
        let tls = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            self.connector.connect(self.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| anyhow::anyhow!("TLS handshake: no answer in {HANDSHAKE_TIMEOUT:?}"))?
        .context("TLS handshake")?;
        self.suite = tls.get_ref().1.negotiated_cipher_suite().map(|s| s.suite());
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    pub fn disconnect(&mut self) {
        self.sender = None;
        self.permit = None;
    }

    /// Sends one request, connecting first if needed.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<ClientResponse> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        sender.ready().await?;
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "localhost");
        if body.is_some() {
            builder = builder.header("Content-Type", sep2::MEDIA_TYPE);
        }
        let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.disconnect();
                return Err(e.into());
            }
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (status, location, allow, content_type) = (
            response.status().as_u16(),
            header("location"),
            header("allow"),
            header("content-type"),
        );
        let body = response.into_body().collect().await?.to_bytes();
        if self.connections.is_some() {
            // Bounded connections: this one goes back for another meter.
            self.disconnect();
        }
        Ok(ClientResponse {
            status,
            location,
            allow,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    pub async fn get(&mut self, path: &str) -> Result<ClientResponse> {
        self.request("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, body: String) -> Result<ClientResponse> {
        self.request("POST", path, Some(body)).await
    }
}
