//! The operator's commands against a running bridge (`bridge deny`, `bridge allow`,
//! `bridge denied`): requests to its keeper interface, on the same host, with the token from
//! its data directory; over TLS (checked against the campus CA, as `localhost`) when
//! `keeper_tls` is on.
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use keeper_protocol::{DeniedList, DeniedMeter, DenyRequest, Route};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::BridgeConfig;

/// An answer: the HTTP status and the body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> Result<Answer> {
    stream.write_all(request).await?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status in the bridge's answer")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok(Answer {
        status,
        body: body.to_string(),
    })
}

/// Sends `route` (with a JSON `body`) to the bridge `config` describes.
pub async fn request(config: &BridgeConfig, route: Route, body: Option<String>) -> Result<Answer> {
    let token = crate::read_secret(&config.keeper_token_path())
        .context("the keeper token (run this as the bridge's user, with its configuration)")?;
    let mut addr = config.keeper_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let body = body.unwrap_or_default();
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        route.method(),
        route.path(),
        token.trim(),
        body.len()
    );
    let connect = tokio::net::TcpStream::connect(addr);
    let tcp = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .context("connecting to the bridge timed out")?
        .with_context(|| {
            format!("connect to the bridge's keeper interface at {addr} (is the bridge running?)")
        })?;
    let answer = async {
        if !config.keeper_tls {
            return exchange(tcp, request.as_bytes()).await;
        }
        let layout = certs::Layout::new(&config.pki_dir);
        let pem = std::fs::read_to_string(layout.ca_cert())
            .with_context(|| format!("campus CA {}", layout.ca_cert().display()))?;
        let ca =
            rustls_pki_types::CertificateDer::from(certs::pem_to_der(&pem, &layout.ca_cert())?);
        let verifier = Arc::new(crate::tls::CampusServerVerifier::new(ca)?);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .context("TLS with the bridge's keeper interface")?;
        exchange(stream, request.as_bytes()).await
    };
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .context("the bridge did not answer within 30 s")?
}

/// The error text of an answer (`{"error": ...}`), or its status.
fn why(answer: &Answer) -> String {
    serde_json::from_str::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {}", answer.status))
}

/// `bridge deny METER`: the meter refused at once; what the bridge keeps.
pub async fn deny(config: &BridgeConfig, meter: &str, reason: &str) -> Result<DeniedMeter> {
    let body = serde_json::to_string(&DenyRequest {
        meter: meter.to_string(),
        reason: reason.to_string(),
    })?;
    let answer = request(config, Route::Deny, Some(body)).await?;
    if answer.status != 200 {
        bail!("{}", why(&answer));
    }
    Ok(serde_json::from_str(&answer.body)?)
}

/// `bridge allow METER`: lifts a local denial.
pub async fn allow(config: &BridgeConfig, meter: &str) -> Result<()> {
    let body = serde_json::to_string(&DenyRequest {
        meter: meter.to_string(),
        reason: String::new(),
    })?;
    let answer = request(config, Route::Allow, Some(body)).await?;
    if answer.status != 204 {
        bail!("{}", why(&answer));
    }
    Ok(())
}

/// `bridge denied`: the local deny list.
pub async fn denied(config: &BridgeConfig) -> Result<Vec<DeniedMeter>> {
    let answer = request(config, Route::Denied, None).await?;
    if answer.status != 200 {
        bail!("{}", why(&answer));
    }
    Ok(serde_json::from_str::<DeniedList>(&answer.body)?.denied)
}

/// `bridge dr issue`: a campus demand-response event, as the bridge keeps it.
pub async fn dr_issue(
    config: &BridgeConfig,
    request: &keeper_protocol::market::DrEventRequest,
) -> Result<keeper_protocol::market::DrEvent> {
    let answer = self::request(
        config,
        Route::DrIssue,
        Some(serde_json::to_string(request)?),
    )
    .await?;
    if answer.status != 200 {
        bail!("{}", why(&answer));
    }
    Ok(serde_json::from_str(&answer.body)?)
}

/// `bridge dr cancel ID`.
pub async fn dr_cancel(config: &BridgeConfig, id: u64) -> Result<keeper_protocol::market::DrEvent> {
    let answer = request(config, Route::DrCancel(id), None).await?;
    match answer.status {
        200 => Ok(serde_json::from_str(&answer.body)?),
        404 => bail!("no demand-response event {id}"),
        _ => bail!("{}", why(&answer)),
    }
}

/// `bridge dr list`: every event, newest first, with each building's latest response.
pub async fn dr_events(
    config: &BridgeConfig,
) -> Result<Vec<keeper_protocol::market::DrEventSummary>> {
    let answer = request(config, Route::DrEvents, None).await?;
    if answer.status != 200 {
        bail!("{}", why(&answer));
    }
    Ok(serde_json::from_str::<keeper_protocol::market::DrEventList>(&answer.body)?.events)
}
