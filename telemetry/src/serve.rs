//! The metrics listener: `GET /metrics`, `GET /ready`, `GET /health`, plain HTTP/1.1.
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why a process is not ready; empty when it is.
pub type Readiness = Vec<String>;

/// What a process exposes.
pub trait Endpoints: Send + Sync + 'static {
    /// The metrics, in the text exposition format.
    fn metrics(&self) -> String;
    /// What keeps it from doing its job now (empty: ready).
    fn readiness(&self) -> Readiness;
}

/// Scrapes served at once; more wait in the kernel's backlog (Prometheus scrapes serially).
const MAX_CONNECTIONS: usize = 8;

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

fn answer(
    endpoints: &dyn Endpoints,
    req: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "GET only\n".into());
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            endpoints.metrics(),
        ),
        "/ready" => {
            let reasons = endpoints.readiness();
            if reasons.is_empty() {
                text(StatusCode::OK, PLAIN, "ready\n".into())
            } else {
                let mut body = String::from("not ready:\n");
                for r in reasons {
                    body.push_str("- ");
                    body.push_str(&r.replace('\n', " "));
                    body.push('\n');
                }
                text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, body)
            }
        }
        "/health" => text(StatusCode::OK, PLAIN, "ok\n".into()),
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: /metrics, /ready or /health\n".into(),
        ),
    }
}

/// Serves `endpoints` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    endpoints: Arc<dyn Endpoints>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.changed() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let endpoints = endpoints.clone();
                async move { Ok::<_, Infallible>(answer(endpoints.as_ref(), &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = tokio::time::timeout(Duration::from_secs(60), conn).await {
                tracing::debug!(%peer, error = %e, "metrics connection timed out");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Fixed(Readiness);
    impl Endpoints for Fixed {
        fn metrics(&self) -> String {
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n".into()
        }
        fn readiness(&self) -> Readiness {
            self.0.clone()
        }
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn metrics_readiness_and_health_are_served() {
        for (reasons, ready) in [(vec![], true), (vec!["no pass yet".to_string()], false)] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(serve(listener, Arc::new(Fixed(reasons)), stopped));
            let metrics = get(addr, "/metrics").await;
            assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
            assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
            assert!(metrics.ends_with("a_total 1\n"), "{metrics}");
            let r = get(addr, "/ready").await;
            if ready {
                assert!(
                    r.starts_with("HTTP/1.1 200") && r.ends_with("ready\n"),
                    "{r}"
                );
            } else {
                assert!(r.starts_with("HTTP/1.1 503"), "{r}");
                assert!(r.ends_with("not ready:\n- no pass yet\n"), "{r}");
            }
            assert!(get(addr, "/health").await.starts_with("HTTP/1.1 200"));
            assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
            stop.send(true).unwrap();
            task.await.unwrap();
        }
    }
}
