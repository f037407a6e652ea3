//! The HTTP side: `GET /metrics` (Prometheus text: the keychain's metrics
//! and the plugin's own) and `GET /healthz` (the `Status` probe), over
//! HTTP/1.1 with hyper (already in the tree through tonic).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::service::{Inner, HEALTHZ_OK};

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A client gets this long to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes, then drops every open connection.
pub(crate) async fn serve(
    listener: TcpListener,
    inner: Arc<Inner>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        log::warn!("metrics listener: accept failed: {e}");
                        continue;
                    }
                };
                let inner = Arc::clone(&inner);
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let inner = Arc::clone(&inner);
                        async move { Ok::<_, Infallible>(respond(&inner, &req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc);
                    if let Err(e) = conn.await {
                        log::debug!("metrics connection: {e}");
                    }
                });
            }
            // Reap finished connections as we go.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

async fn respond(inner: &Arc<Inner>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path != "/metrics" && path != "/healthz" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /healthz\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path == "/healthz" {
        let probe = {
            let inner = Arc::clone(inner);
            tokio::task::spawn_blocking(move || inner.probe()).await
        };
        return match probe {
            Ok(h) if h.healthz == HEALTHZ_OK => plain(StatusCode::OK, "ok\n"),
            Ok(h) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", h.healthz)),
            Err(e) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("probe failed: {e}\n"),
            ),
        };
    }
    let body = crate::metrics_text(inner);
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT));
    r
}

fn plain(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
