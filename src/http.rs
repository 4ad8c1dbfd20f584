//! The two HTTP endpoints of the controller: `/metrics` (Prometheus text format) on
//! `--metrics-bind-address`, `/healthz` and `/readyz` on `--health-probe-bind-address`.
//!
//! A deliberately small HTTP/1.1 responder on tokio's `TcpListener`: GET and HEAD of three fixed
//! paths, one request per connection (`Connection: close`), bounded request size and read time.
//! That is all kubelet probes and Prometheus scrapes need, and it adds no dependency (hyper's
//! server features would rebuild hyper, kube and tonic on every machine).
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

/// Largest request head accepted (request line and headers).
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

/// A response: status line, content type, body.
type Response = (u16, &'static str, String);

/// Serves `/metrics` from `registry` on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, registry: Arc<Registry>) {
    serve(listener, "metrics", move |path| match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &registry) {
                Ok(()) => (
                    200,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
                Err(err) => (500, "text/plain", format!("cannot encode metrics: {err}\n")),
            }
        }
        _ => (404, "text/plain", "not found; try /metrics\n".into()),
    })
    .await
}

/// Serves `/healthz` (alive: always 200 while the process serves) and `/readyz`.
pub async fn serve_probes(listener: TcpListener, readiness: Arc<Readiness>) {
    serve(listener, "health probes", move |path| match path {
        "/healthz" | "/livez" => (200, "text/plain", "ok\n".into()),
        "/readyz" => match readiness.check() {
            Ok(detail) => (200, "text/plain", format!("ok: {detail}\n")),
            Err(reason) => (503, "text/plain", format!("not ready: {reason}\n")),
        },
        _ => (404, "text/plain", "not found; try /healthz or /readyz\n".into()),
    })
    .await
}

/// Binds `addr`, with an error naming the flag.
pub async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({flag}): {e}"))
}

async fn serve<F>(listener: TcpListener, what: &'static str, handler: F)
where
    F: Fn(&str) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving {what}");
    }
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                warn!(error = %err, "{what}: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(err) = handle(stream, handler.as_ref()).await {
                debug!(%peer, error = %err, "{what}: bad request");
            }
        });
    }
}

async fn handle<F>(mut stream: TcpStream, handler: &F) -> std::io::Result<()>
where
    F: Fn(&str) -> Response,
{
    let mut buf = Vec::with_capacity(1024);
    let head_read = async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > MAX_REQUEST {
                break;
            }
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(READ_TIMEOUT, head_read)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request not sent in time"))??;
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let (code, content_type, body) = if buf.len() > MAX_REQUEST {
        (431, "text/plain", "request header fields too large\n".to_string())
    } else if method != "GET" && method != "HEAD" {
        (405, "text/plain", "method not allowed\n".to_string())
    } else {
        handler(path)
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let mut response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let server = tokio::spawn(serve_probes(listener, readiness.clone()));
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
        server.abort();
    }
}
