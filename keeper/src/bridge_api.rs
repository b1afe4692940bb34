//! A client of the bridge's keeper interface (its messages: the `keeper_protocol` crate,
//! which the bridge serves from `bridge/src/keeper_api.rs`): HTTP/1.1 with a bearer token,
//! plain on loopback or over TLS (the bridge's `keeper_tls`), the bridge's certificate
//! checked against the campus CA. The keeper reads unacknowledged batches and acknowledges
//! the ones confirmed on chain.
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use keeper_protocol::Route;
pub use keeper_protocol::{
    BatchPage, BridgeStatus, DecodedBatch, ExportedReading, MeterRecord, ReadingPage, SignedBatch,
    SyncReport,
};

/// A meter as the registry has it, as the bridge takes it (`PUT /v1/meters`).
pub fn meter_record(meter: &registry::Meter) -> MeterRecord {
    MeterRecord {
        lfdi: keeper_protocol::hex::encode(&meter.lfdi),
        index: meter.index,
        active: meter.status == registry::MeterStatus::Active,
        // The oracle's baseline: the later of the status and the capacity change.
        since: meter.status_changed_at.max(meter.capacity_changed_at),
        generation_w: meter.capacity.generation_w,
        storage_wh: meter.capacity.storage_wh,
        max_import_w: meter.capacity.max_import_w,
        max_discharge_w: meter.capacity.max_discharge_w,
    }
}

/// A whole request to the bridge must finish within this.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The bridge must finish a TLS handshake within this.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sends one request on a fresh connection and reads the whole answer.
async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// A client of one bridge's keeper interface.
#[derive(Clone)]
pub struct BridgeClient {
    pub addr: SocketAddr,
    token: String,
    tls: Option<BridgeTls>,
}

/// How the client reaches a bridge serving its keeper interface over TLS.
#[derive(Clone)]
struct BridgeTls {
    connector: tokio_rustls::TlsConnector,
    /// The name (DNS or IP address) the bridge's certificate must carry.
    name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for BridgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeClient")
            .field("addr", &self.addr)
            .field("tls", &self.tls.as_ref().map(|t| t.name.to_str()))
            .finish_non_exhaustive()
    }
}

impl BridgeClient {
    /// Plain HTTP: for a bridge on this host (a loopback address).
    pub fn new(addr: SocketAddr, token: impl Into<String>) -> Self {
        BridgeClient {
            addr,
            token: token.into(),
            tls: None,
        }
    }

    /// Over TLS, the bridge's certificate checked against the campus CA (`ca_pem`), and
    /// naming `server_name` (a host name or address; the address connected to if `None`).
    pub fn with_tls(
        addr: SocketAddr,
        token: impl Into<String>,
        ca_pem: &str,
        server_name: Option<&str>,
    ) -> Result<Self> {
        let ca = certs::pem_to_der(ca_pem, std::path::Path::new("bridge_ca"))?;
        let config = certs::verify::campus_client_config(ca.into()).context("campus CA")?;
        let name = match server_name {
            Some(name) => rustls::pki_types::ServerName::try_from(name.to_string())
                .with_context(|| format!("bridge server name {name:?}"))?,
            None => rustls::pki_types::ServerName::IpAddress(addr.ip().into()),
        };
        Ok(BridgeClient {
            addr,
            token: token.into(),
            tls: Some(BridgeTls {
                connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
                name,
            }),
        })
    }

    /// Whether requests go over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    async fn request(&self, route: Route, query: &str) -> Result<(StatusCode, Bytes)> {
        self.request_with(route, query, Bytes::new()).await
    }

    /// One request on a fresh connection; the whole exchange (connect, handshake, answer)
    /// within [`REQUEST_TIMEOUT`], so that a partitioned bridge cannot hang a pass.
    async fn request_with(
        &self,
        route: Route,
        query: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let method = Method::from_bytes(route.method().as_bytes()).expect("an HTTP method");
        let path = format!("{}{query}", route.path());
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, &path, body))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the bridge's keeper interface at {} did not answer within {} s",
                    self.addr,
                    REQUEST_TIMEOUT.as_secs()
                )
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| {
                format!("connect to the bridge's keeper interface at {}", self.addr)
            })?;
        let host = match self.tls.as_ref().map(|t| &t.name) {
            Some(rustls::pki_types::ServerName::DnsName(name)) => {
                format!("{}:{}", name.as_ref(), self.addr.port())
            }
            _ => self.addr.to_string(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        match &self.tls {
            None => send(stream, request).await,
            Some(tls) => {
                let stream = tokio::time::timeout(
                    TLS_HANDSHAKE_TIMEOUT,
                    tls.connector.connect(tls.name.clone(), stream),
                )
                .await
                .map_err(|_| {
                    anyhow::anyhow!("TLS handshake with the bridge at {} timed out", self.addr)
                })?
                .map_err(|e| {
                    let hint = if e.to_string().contains("NotValidForName") {
                        format!(
                            "the bridge's certificate does not name {:?}: set bridge_server_name \
                             to a name it carries, or add this one with `campus-pki --bridge-host` \
                             and restart the bridge",
                            tls.name.to_str()
                        )
                    } else {
                        "is the bridge's keeper_tls on, and bridge_ca the campus CA that issued \
                         its certificate?"
                            .to_string()
                    };
                    anyhow::Error::new(e).context(format!(
                        "TLS handshake with the bridge's keeper interface at {} ({hint})",
                        self.addr
                    ))
                })?;
                send(stream, request).await
            }
        }
    }

    pub async fn status(&self) -> Result<BridgeStatus> {
        let (status, body) = self.request(Route::Status, "").await?;
        if status != StatusCode::OK {
            bail!("bridge status: HTTP {status}");
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// The meters the bridge refuses locally (`bridge deny`).
    pub async fn denied(&self) -> Result<Vec<keeper_protocol::DeniedMeter>> {
        let (status, body) = self.request(Route::Denied, "").await?;
        if status != StatusCode::OK {
            bail!("bridge denied list: HTTP {status}");
        }
        Ok(serde_json::from_slice::<keeper_protocol::DeniedList>(&body)?.denied)
    }

    /// Unacknowledged batches, oldest first.
    pub async fn batches(&self, limit: usize) -> Result<Vec<SignedBatch>> {
        let (status, body) = self
            .request(Route::Batches, &format!("?limit={limit}"))
            .await?;
        if status != StatusCode::OK {
            bail!("bridge batches: HTTP {status}");
        }
        Ok(serde_json::from_slice::<keeper_protocol::BatchList>(&body)?.batches)
    }

    /// Tells the bridge every meter the registry has (it adds, updates and suspends to
    /// match).
    pub async fn sync_meters(&self, meters: &[MeterRecord]) -> Result<SyncReport> {
        let body = serde_json::to_vec(&keeper_protocol::MeterList {
            meters: meters.to_vec(),
        })?;
        let (status, reply) = self
            .request_with(Route::Meters, "", Bytes::from(body))
            .await?;
        if status != StatusCode::OK {
            bail!(
                "bridge meters: HTTP {status} {}",
                String::from_utf8_lossy(&reply)
            );
        }
        Ok(serde_json::from_slice(&reply)?)
    }

    /// Tells the bridge that batch `sequence` is confirmed on chain. The bridge takes only
    /// the oldest batch awaiting acknowledgement: out of order, the error names that one.
    pub async fn acknowledge(&self, sequence: u64) -> Result<()> {
        let (status, body) = self.request(Route::Acknowledge(sequence), "").await?;
        match status {
            StatusCode::NO_CONTENT => Ok(()),
            StatusCode::CONFLICT => {
                bail!("acknowledging batch {sequence}: {}", conflict_reason(&body))
            }
            other => bail!("acknowledging batch {sequence}: HTTP {other}"),
        }
    }

    /// Tells the bridge the chain's highest settled batch sequence; it signs nothing at or
    /// below it. Returns the floor the bridge keeps.
    pub async fn report_chain(&self, highest_sequence: u64) -> Result<u64> {
        let body = serde_json::to_vec(&keeper_protocol::ChainReport { highest_sequence })?;
        let (status, reply) = self
            .request_with(Route::Chain, "", Bytes::from(body))
            .await?;
        if status != StatusCode::OK {
            bail!(
                "reporting the chain's sequence to the bridge: HTTP {status} {}",
                String::from_utf8_lossy(&reply)
            );
        }
        Ok(serde_json::from_slice::<keeper_protocol::ChainFloor>(&reply)?.floor)
    }

    /// Has the bridge sign batch `sequence` again under a new sequence (the chain settled
    /// its sequence without it); returns the copy.
    pub async fn resign(&self, sequence: u64) -> Result<SignedBatch> {
        let (status, body) = self.request(Route::Resign(sequence), "").await?;
        match status {
            StatusCode::OK => Ok(serde_json::from_slice(&body)?),
            StatusCode::CONFLICT => {
                bail!("signing batch {sequence} again: {}", conflict_reason(&body))
            }
            other => bail!("signing batch {sequence} again: HTTP {other}"),
        }
    }

    /// Up to `limit` readings of the bridge's export queue after position `after`.
    pub async fn export_readings(&self, after: u64, limit: usize) -> Result<ReadingPage> {
        let (status, body) = self
            .request(
                Route::ExportReadings,
                &format!("?after={after}&limit={limit}"),
            )
            .await?;
        if status != StatusCode::OK {
            bail!("bridge export readings: HTTP {status}");
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// Up to `limit` signed batches after sequence `after`.
    pub async fn export_batches(&self, after: u64, limit: usize) -> Result<BatchPage> {
        let (status, body) = self
            .request(
                Route::ExportBatches,
                &format!("?after={after}&limit={limit}"),
            )
            .await?;
        if status != StatusCode::OK {
            bail!("bridge export batches: HTTP {status}");
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// Tells the bridge the history database has its queued readings (`readings`) or its
    /// batches through `through`.
    pub async fn export_acknowledge(&self, readings: bool, through: u64) -> Result<()> {
        let route = if readings {
            Route::ExportReadingsAck
        } else {
            Route::ExportBatchesAck
        };
        let body = serde_json::to_vec(&keeper_protocol::ExportAck { through })?;
        let (status, reply) = self.request_with(route, "", Bytes::from(body)).await?;
        if status != StatusCode::NO_CONTENT {
            bail!(
                "export acknowledgement through {through}: HTTP {status} {}",
                String::from_utf8_lossy(&reply)
            );
        }
        Ok(())
    }
}

/// The reason in a 409's body (`keeper_protocol::Conflict`).
fn conflict_reason(body: &[u8]) -> String {
    serde_json::from_slice::<keeper_protocol::Conflict>(body)
        .map(|c| c.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned())
}

/// The market through IEEE 2030.5 (keeper_protocol::market).
impl BridgeClient {
    /// Reports the market's parameters and recent clearings (published as the tariff).
    pub async fn report_market(
        &self,
        report: &keeper_protocol::market::MarketReport,
    ) -> Result<()> {
        let body = serde_json::to_vec(report)?;
        let (status, reply) = self
            .request_with(Route::Market, "", Bytes::from(body))
            .await?;
        if status != StatusCode::NO_CONTENT {
            bail!(
                "bridge market: HTTP {status} {}",
                String::from_utf8_lossy(&reply)
            );
        }
        Ok(())
    }

    /// Flow reservations with work for the keeper, oldest first.
    pub async fn flow_requests(
        &self,
        limit: usize,
    ) -> Result<Vec<keeper_protocol::market::FlowRequest>> {
        let (status, body) = self
            .request(Route::FlowRequests, &format!("?limit={limit}"))
            .await?;
        if status != StatusCode::OK {
            bail!("bridge flow requests: HTTP {status}");
        }
        Ok(serde_json::from_slice::<keeper_protocol::market::FlowRequestList>(&body)?.requests)
    }

    /// Tells the bridge what became of request `id`; the request as it now stands.
    pub async fn flow_update(
        &self,
        id: u64,
        update: &keeper_protocol::market::FlowUpdate,
    ) -> Result<keeper_protocol::market::FlowRequest> {
        let body = serde_json::to_vec(update)?;
        let (status, reply) = self
            .request_with(Route::FlowUpdate(id), "", Bytes::from(body))
            .await?;
        if status != StatusCode::OK {
            bail!(
                "bridge flow update {id}: HTTP {status} {}",
                String::from_utf8_lossy(&reply)
            );
        }
        Ok(serde_json::from_slice(&reply)?)
    }
}
