//! The two HTTP endpoints of the controller: `/metrics` (Prometheus text format) on
//! `--metrics-bind-address`, `/healthz` and `/readyz` on `--health-probe-bind-address`.
//!
//! axum routes GET and HEAD of the fixed paths (404 with a hint elsewhere, 405 for other
//! methods); hyper serves each connection as HTTP/1.1 with one request per connection
//! (`Connection: close`), an 8 KiB request head (431 beyond) and a 5 s read timeout. That is all
//! kubelet probes and Prometheus scrapes need.
//!
//! Cost against the hand-written responder this replaced (issue #17, release build): 4 more crates
//! (axum, axum-core, matchit, httpdate), binary +1.4 % (stripped 18.08 -> 18.39 MB, +1.7 %), cold
//! build within the noise of a shared machine (CPU 422-480 s before, 440-484 s after).
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// Largest request head accepted (request line and headers; hyper answers 431 beyond it).
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/readyz` reports. Shared by the leader elector and the controllers.
///
/// - Without leader election: ready once both controllers' caches are synced.
/// - With leader election, the leader: ready once its caches are synced.
/// - With leader election, a standby: ready once it has read the Lease and knows another replica
///   holds it (standing by correctly), like controller-runtime, whose standbys pass `/readyz`.
///   A standby that cannot reach the API server is not ready.
/// - During shutdown: not ready, so no new scrape or rollout waits on a stopping replica.
#[derive(Debug, Default)]
pub struct Readiness {
    leader_elect: bool,
    caches_synced: AtomicBool,
    leading: AtomicBool,
    standby: AtomicBool,
    shutting_down: AtomicBool,
}

impl Readiness {
    pub fn new(leader_elect: bool) -> Self {
        Self {
            leader_elect,
            ..Default::default()
        }
    }

    pub fn set_caches_synced(&self, synced: bool) {
        self.caches_synced.store(synced, Ordering::SeqCst);
    }

    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::SeqCst);
        if leading {
            self.standby.store(false, Ordering::SeqCst);
        }
    }

    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::SeqCst);
    }

    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// `Ok(detail)` when ready, `Err(reason)` when not.
    pub fn check(&self) -> Result<&'static str, &'static str> {
        let synced = self.caches_synced.load(Ordering::SeqCst);
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err("shutting down");
        }
        if !self.leader_elect {
            return if synced {
                Ok("caches synced")
            } else {
                Err("caches not synced")
            };
        }
        if self.leading.load(Ordering::SeqCst) {
            return if synced {
                Ok("leading; caches synced")
            } else {
                Err("leading; caches not synced yet")
            };
        }
        if self.standby.load(Ordering::SeqCst) {
            Ok("standing by; another replica leads")
        } else {
            Err("leader election: lease not read yet")
        }
    }
}

/// Parses a Go-style bind address: `:8080` (all interfaces), `127.0.0.1:8080`, `[::1]:8080`.
/// `0` disables the server (`None`), as in controller-runtime.
pub fn parse_bind_address(text: &str) -> Result<Option<SocketAddr>, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: not a port (use :8080, 127.0.0.1:8080 or 0 to disable)"))?;
        return Ok(Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)));
    }
    text.parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| format!("{text:?}: not an address (use :8080, 127.0.0.1:8080 or 0 to disable)"))
}

const TEXT: &str = "text/plain";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn text(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, TEXT)], body).into_response()
}

/// Serves `/metrics` from `registry` on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, registry: Arc<Registry>) {
    let routes = Router::new().route("/metrics", get(move || async move { metrics(&registry) }));
    serve(
        listener,
        "metrics",
        with_fallbacks(routes, "not found; try /metrics\n"),
    )
    .await
}

fn metrics(registry: &Registry) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {err}\n"),
        ),
    }
}

/// Serves `/healthz` (alive: the watchdogs of [`crate::liveness`] are quiet) and `/readyz`;
/// runs the runtime heartbeat.
pub async fn serve_probes(
    listener: TcpListener,
    readiness: Arc<Readiness>,
    liveness: Arc<crate::liveness::Liveness>,
) {
    tokio::spawn(liveness.clone().heartbeat());
    let alive = get(move || async move {
        match liveness.check(std::time::Instant::now()) {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not alive: {why}\n")),
        }
    });
    let routes = Router::new()
        .route("/healthz", alive.clone())
        .route("/livez", alive)
        .route("/readyz", get(move || async move { ready(&readiness) }));
    let hint = "not found; try /healthz or /readyz\n";
    serve(listener, "health probes", with_fallbacks(routes, hint)).await
}

fn ready(readiness: &Readiness) -> Response {
    match readiness.check() {
        Ok(detail) => text(StatusCode::OK, format!("ok: {detail}\n")),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
    }
}

/// Any method but GET and HEAD (`get` routes answer both) is 405, on any path; an unknown path
/// is 404 with a hint.
fn with_fallbacks(routes: Router, hint: &'static str) -> Router {
    routes
        .method_not_allowed_fallback(|| async { method_not_allowed() })
        .fallback(move |method: Method| async move {
            if method == Method::GET || method == Method::HEAD {
                text(StatusCode::NOT_FOUND, hint.into())
            } else {
                method_not_allowed()
            }
        })
}

fn method_not_allowed() -> Response {
    text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n".into())
}

/// Binds `addr`, with an error naming the flag.
pub async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({flag}): {e}"))
}

/// Accepts connections until the task is dropped; hyper serves each one (HTTP/1.1, one request,
/// bounded head and read time) with `router`.
async fn serve(listener: TcpListener, what: &'static str, router: Router) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving {what}");
    }
    let mut http = http1::Builder::new();
    http.keep_alive(false)
        .max_buf_size(MAX_REQUEST)
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                warn!(error = %err, "{what}: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(%peer, error = %err, "{what}: bad request");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    #[test]
    fn bind_addresses() {
        assert_eq!(
            parse_bind_address(":8080").unwrap(),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_bind_address("127.0.0.1:9").unwrap(),
            Some("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(
            parse_bind_address("[::1]:80").unwrap(),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_bind_address("0").unwrap(), None);
        assert!(parse_bind_address(":http").is_err());
        assert!(parse_bind_address("localhost").is_err());
    }

    #[test]
    fn readiness_without_leader_election() {
        let r = Readiness::new(false);
        assert!(r.check().is_err());
        r.set_caches_synced(true);
        assert!(r.check().is_ok());
        r.set_shutting_down();
        assert_eq!(r.check(), Err("shutting down"));
    }

    #[test]
    fn readiness_with_leader_election() {
        let r = Readiness::new(true);
        assert!(r.check().is_err(), "lease not read yet");
        r.set_standby(true);
        assert_eq!(r.check(), Ok("standing by; another replica leads"));
        r.set_leading(true);
        assert!(r.check().is_err(), "leading but caches not synced");
        r.set_caches_synced(true);
        assert_eq!(r.check(), Ok("leading; caches synced"));
    }

    #[tokio::test]
    async fn serves_probes_over_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let readiness = Arc::new(Readiness::new(false));
        let liveness = Arc::new(crate::liveness::Liveness::new(Duration::from_millis(300)));
        let server = tokio::spawn(serve_probes(listener, readiness.clone(), liveness.clone()));
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        readiness.set_caches_synced(true);
        assert!(get("/readyz?verbose").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        // A reconcile stuck past the limit fails liveness, naming it; its end heals it.
        let stuck = liveness.reconciling("CellInterconnect/ns/a".into());
        tokio::time::sleep(Duration::from_millis(400)).await;
        let answer = get("/healthz").await;
        assert!(
            answer.starts_with("HTTP/1.1 503") && answer.contains("CellInterconnect/ns/a"),
            "{answer}"
        );
        drop(stuck);
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200 OK"));
        server.abort();
    }

    /// Sends `request` as is and reads the answer until the server closes the connection.
    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        // Until the server closes; a reset after an oversized request still leaves the answer.
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        let read_all = async {
            while let Ok(n @ 1..) = s.read(&mut chunk).await {
                out.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read_all)
            .await
            .expect("the server closes the connection after one answer");
        String::from_utf8_lossy(&out).to_lowercase()
    }

    #[tokio::test]
    async fn metrics_methods_and_limits_over_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut registry = Registry::default();
        crate::metrics::Metrics::default().register(&mut registry);
        let server = tokio::spawn(serve_metrics(listener, Arc::new(registry)));

        let get = exchange(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(get.starts_with("http/1.1 200 ok"), "{get}");
        assert!(
            get.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{get}"
        );
        assert!(get.contains("connection: close"), "{get}");
        assert!(get.trim_end().ends_with("# eof"), "{get}");

        let head = exchange(addr, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(head.starts_with("http/1.1 200 ok"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");

        for request in ["POST /metrics HTTP/1.1", "DELETE /elsewhere HTTP/1.1"] {
            let answer = exchange(
                addr,
                &format!("{request}\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
            )
            .await;
            assert!(answer.starts_with("http/1.1 405"), "{request}: {answer}");
        }
        let missing = exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(missing.starts_with("http/1.1 404"), "{missing}");
        assert!(missing.contains("try /metrics"), "{missing}");

        let huge = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(MAX_REQUEST)
        );
        let answer = exchange(addr, &huge).await;
        assert!(answer.starts_with("http/1.1 431"), "{answer}");

        // A client that never finishes its request is dropped after READ_TIMEOUT.
        let began = std::time::Instant::now();
        let idle = exchange(addr, "GET /metrics HTTP/1.1\r\n").await;
        assert!(idle.is_empty(), "{idle}");
        assert!(began.elapsed() >= READ_TIMEOUT, "{:?}", began.elapsed());
        server.abort();
    }
}
