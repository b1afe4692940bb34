//! The keeper's interface to the bridge: plain HTTP/1.1 on a local address, every request
//! carrying `Authorization: Bearer <token>` (the token file in the data directory, mode 0600).
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/status` | `{"attestor": <base64 key>, "oracle_program", "campus"}` |
//! | `GET /v1/batches?limit=N` | `{"batches": [SignedBatch...]}`: unacknowledged, oldest first |
//! | `POST /v1/batches/{sequence}/ack` | 204 once the batch is confirmed on-chain; 404 unknown |
//!
//! Unacknowledged batches are served again after a restart: they live in the store.
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::attestor::{Attestor, B64};

/// Loads the keeper token, creating a random one (mode 0600) on first start.
pub fn load_or_create_token(path: &Path) -> Result<String> {
    if path.exists() {
        let token =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        return Ok(token.trim().to_string());
    }
    let bytes: [u8; 32] = rand::random();
    let token = crate::xml::hex(&bytes);
    crate::write_secret(path, &token)?;
    Ok(token)
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("valid response")
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("valid response")
}

/// Compares without stopping at the first difference.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub async fn handle(
    attestor: Arc<Attestor>,
    token: Arc<String>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let authorised = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same_token(given.as_bytes(), token.as_bytes()));
    if !authorised {
        tracing::warn!(path = %req.uri().path(), "keeper request without a valid token");
        return Ok(empty(StatusCode::UNAUTHORIZED));
    }
    let segments: Vec<&str> = req
        .uri()
        .path()
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .collect();
    let reply = match (req.method().as_str(), segments.as_slice()) {
        ("GET", ["v1", "status"]) => json(
            StatusCode::OK,
            serde_json::json!({
                "attestor": B64.encode(attestor.public_key()),
                "oracle_program": attestor.settings.oracle_program.to_string(),
                "campus": attestor.settings.campus.to_string(),
            }),
        ),
        ("GET", ["v1", "batches"]) => {
            let limit = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("limit=")))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(100);
            let a = attestor.clone();
            match tokio::task::spawn_blocking(move || a.store.read()?.unacknowledged(limit)).await {
                Ok(Ok(batches)) => json(StatusCode::OK, serde_json::json!({ "batches": batches })),
                _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        ("POST", ["v1", "batches", sequence, "ack"]) => match sequence.parse::<u64>() {
            Ok(sequence) => {
                let a = attestor.clone();
                match tokio::task::spawn_blocking(move || a.acknowledge(sequence)).await {
                    Ok(Ok(true)) => {
                        tracing::info!(sequence, "batch acknowledged by the keeper");
                        empty(StatusCode::NO_CONTENT)
                    }
                    Ok(Ok(false)) => empty(StatusCode::NOT_FOUND),
                    _ => empty(StatusCode::INTERNAL_SERVER_ERROR),
                }
            }
            Err(_) => empty(StatusCode::NOT_FOUND),
        },
        (_, ["v1", "status"]) | (_, ["v1", "batches"]) | (_, ["v1", "batches", _, "ack"]) => {
            empty(StatusCode::METHOD_NOT_ALLOWED)
        }
        _ => empty(StatusCode::NOT_FOUND),
    };
    Ok(reply)
}

pub async fn serve(
    listener: TcpListener,
    attestor: Arc<Attestor>,
    token: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let token = Arc::new(token);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = shutdown.changed() => return,
        };
        let (attestor, token) = (attestor.clone(), token.clone());
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req| handle(attestor.clone(), token.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
