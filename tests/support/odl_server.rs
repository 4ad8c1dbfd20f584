//! A stand-in for OpenDaylight's RFC 8040 RESTCONF northbound, exactly the subset cellnet uses.
//!
//! OpenDaylight itself (a Karaf JVM distribution) cannot run on the test machines, so this
//! server implements, as the OpenDaylight BGP user guide (bgpcep `docs/bgp/`) and RFC 8040
//! document them:
//! - the BGP instance root
//!   `/rests/data/openconfig-network-instance:network-instances/network-instance={instance}/openconfig-network-instance:protocols/protocol=openconfig-policy-types:BGP,{rib-id}/bgp-openconfig-extensions:bgp`
//!   (bgp-user-guide-bgp-peering.rst, "BGP Peering", RFC 8040 form);
//! - `GET  .../global/config` -> `200 {"bgp-openconfig-extensions:config": {"router-id", "as"}}`,
//!   `404` without an instance (bgp-user-guide-protocol-configuration.rst);
//! - `POST .../neighbors` with the guide's `{"neighbor": [{...}]}` -> `201 Created` (with
//!   `Location`), `409 Conflict` / `data-exists` for an existing neighbour (RFC 8040 4.4.1);
//! - `GET  .../neighbors` -> every neighbour, configuration and state (RFC 8040 `content`
//!   parameter, section 4.8.1: `config`, `nonconfig`, `all`), `404` when there is none;
//! - `GET | PUT | DELETE .../neighbors/neighbor={address}` -> `200` / `201` or `204` / `204`,
//!   `404` / `data-missing` for a missing neighbour (RFC 8040 sections 4.3, 4.5, 4.7);
//! - `GET  .../neighbors/neighbor={address}/state?content=nonconfig` -> `{"bgp-openconfig-extensions:state":
//!   {"session-state": ...}}` (bgp-user-guide-operational-state.rst, "BGP Neighbor Operational State");
//! - application peers' programmable RIBs, a neighbour's Adj-RIB-Out, Effective-RIB-In and
//!   prefix counters: see `odl_rib.rs`;
//! - `POST /rests/operations/bgp-peer-rpc:reset-session` with the guide's input
//!   `{"bgp-peer-rpc:input": {"peer-ref": "/rib:bgp-rib/rib:rib[rib:id=\"{rib-id}\"]/rib:peer[rib:peer-id=\"bgp://{address}\"]"}}`
//!   (bgp-user-guide-route-refresh.rst, "Peer Session Release"; RFC 8040 section 3.6 for the
//!   operations resource) -> `204` (an RPC without output, RFC 8040 4.4.2); bgpcep registers the
//!   RPC per peer of the RIB, which exists only while the neighbour has a session, so a
//!   neighbour that is not `ESTABLISHED` (or not configured) answers `404` / `data-missing`.
//!   Without a BGP stack the release is only counted ([`OdlServer::resets`]).
//! - a neighbour's graceful restart configuration and its families' operational state: see
//!   `odl_gr.rs`.
//!
//! Every request needs HTTP basic auth (`401` with `WWW-Authenticate` otherwise); bodies must be
//! `application/yang-data+json` (`415` otherwise), answers are `application/yang-data+json`;
//! errors carry the RFC 8040 section 7.1 body `{"ietf-restconf:errors": {"error": [{"error-type",
//! "error-tag", "error-message"}]}}`. Every request is recorded ([`OdlServer::requests`]) so that
//! tests can assert exactly what cellnet sent.
//!
//! State is kept in memory, session state included: a configured neighbour reports
//! `ESTABLISHED` (or what the test sets with [`OdlServer::set_session_state`]). A real `gobgpd`
//! behind it would not make the reported state more real: the state would still come from
//! this server's translation, not from OpenDaylight's BGP stack, and the tests here are about
//! what cellnet sends and how it reacts to what OpenDaylight answers, which an in-memory server
//! controls exactly (down, wrong credentials, foreign neighbours, any session state).
//!
//! Self-contained (axum, tokio, tokio-rustls, rustls, serde_json, std): include it with
//! `#[path = "support/odl_server.rs"] mod odl_server;` or through `mod support;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const YANG_JSON: &str = "application/yang-data+json";

#[path = "odl_gr.rs"]
mod gr;
#[path = "odl_rib.rs"]
mod rib;

/// What the server is configured with.
#[derive(Clone, Debug)]
pub struct OdlConfig {
    pub username: String,
    pub password: String,
    pub rib_id: String,
    pub network_instance: String,
    /// The BGP instance's global config (AS, router id); `None`: no instance.
    pub global: Option<(u32, String)>,
}

impl OdlConfig {
    /// admin/admin (OpenDaylight's default), the guide's default names, AS `asn`.
    pub fn new(asn: u32, router_id: &str) -> Self {
        Self {
            username: "admin".into(),
            password: "admin".into(),
            rib_id: "bgp-example".into(),
            network_instance: "global-bgp".into(),
            global: Some((asn, router_id.into())),
        }
    }
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path as sent (percent-encoding kept).
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    /// Whether it carried the right basic-auth credentials.
    pub authorized: bool,
    /// Whether it carried any `Authorization` header.
    pub had_credentials: bool,
    pub body: Option<Value>,
    /// The status the server answered with.
    pub status: u16,
}

impl Recorded {
    /// `"POST /neighbors"`-style summary relative to the BGP instance root.
    pub fn short(&self) -> String {
        let rel = self
            .path
            .split_once("/bgp-openconfig-extensions:bgp")
            .map(|(_, r)| r.to_string())
            .unwrap_or_else(|| self.path.clone());
        format!("{} {rel} -> {}", self.method, self.status)
    }
}

struct Inner {
    config: OdlConfig,
    /// Neighbour configuration by address, as stored (what a config read returns).
    neighbors: BTreeMap<String, Value>,
    /// Session state per neighbour; absent: `default_session`.
    sessions: BTreeMap<String, String>,
    /// Reported for configured neighbours without an explicit state (`None`: no state at all).
    default_session: Option<String>,
    /// A neighbour "someone else" adds just before the next POST is processed (a race).
    race_next_create: Option<(String, u32)>,
    /// Application RIBs and what neighbours sent ([`rib`]).
    ribs: rib::Ribs,
    /// Whether each neighbour's peer sent the graceful restart capability (absent: it did).
    peer_graceful_restart: BTreeMap<String, bool>,
    requests: Vec<Recorded>,
    /// Neighbours whose session `reset-session` released, in order.
    resets: Vec<String>,
}

struct Running {
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// The server; stopped on drop. Runs on its own thread and runtime, so it serves sync and
/// async tests alike (and keeps serving while a test blocks).
pub struct OdlServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
    running: Option<Running>,
    /// Serves https with this server config when set.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS handshakes that failed (a client that did not trust the certificate, or gave up).
    failed_handshakes: Arc<AtomicUsize>,
}

impl OdlServer {
    /// Starts on a free port of 127.0.0.1.
    pub fn start(config: OdlConfig) -> OdlServer {
        Self::start_with(Ipv4Addr::LOCALHOST, config, None)
    }

    /// Starts serving https with this PEM certificate (chain) and key; the certificate must be
    /// valid for 127.0.0.1. Needs a rustls crypto provider installed in the process.
    pub fn start_tls(config: OdlConfig, cert_pem: &str, key_pem: &str) -> OdlServer {
        Self::start_tls_on(Ipv4Addr::LOCALHOST, config, cert_pem, key_pem)
    }

    /// Like [`OdlServer::start_tls`] on a free port of `ip` (a loopback address); the
    /// certificate is served as given, whatever names it holds.
    pub fn start_tls_on(ip: Ipv4Addr, config: OdlConfig, cert_pem: &str, key_pem: &str) -> OdlServer {
        Self::start_with(ip, config, Some(tls_config(cert_pem, key_pem)))
    }

    /// Serves this certificate from now on (a certificate renewed on the server): restarts on
    /// the same port with the same state, so open connections are closed.
    pub fn renew_certificate(&mut self, cert_pem: &str, key_pem: &str) {
        self.tls = Some(tls_config(cert_pem, key_pem));
        self.restart();
    }

    fn start_with(ip: Ipv4Addr, config: OdlConfig, tls: Option<Arc<rustls::ServerConfig>>) -> OdlServer {
        let listener = std::net::TcpListener::bind((ip, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(Inner {
            config,
            neighbors: BTreeMap::new(),
            sessions: BTreeMap::new(),
            default_session: Some("ESTABLISHED".into()),
            race_next_create: None,
            ribs: rib::Ribs::default(),
            peer_graceful_restart: BTreeMap::new(),
            requests: Vec::new(),
            resets: Vec::new(),
        }));
        let mut server = OdlServer {
            addr,
            state,
            running: None,
            tls,
            failed_handshakes: Arc::default(),
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = self.state.clone();
        let tls = self.tls.clone();
        let failed_handshakes = self.failed_handshakes.clone();
        let thread = std::thread::Builder::new()
            .name(format!("odl-server-{}", self.addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    let app = Router::new().fallback(handle).with_state(state);
                    match tls {
                        None => tokio::select! {
                            _ = axum::serve(listener, app) => {}
                            _ = rx => {}
                        },
                        Some(config) => {
                            let listener = TlsListener {
                                tcp: listener,
                                acceptor: tokio_rustls::TlsAcceptor::from(config),
                                failed: failed_handshakes,
                            };
                            tokio::select! {
                                _ = axum::serve(listener, app) => {}
                                _ = rx => {}
                            }
                        }
                    }
                });
                // Drops every open connection with the runtime: the port refuses from here on.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn server thread");
        self.running = Some(Running { shutdown: tx, thread });
    }

    /// How many TLS handshakes failed so far (each refused connection attempt of a client).
    pub fn failed_handshakes(&self) -> usize {
        self.failed_handshakes.load(Ordering::Relaxed)
    }

    /// The RESTCONF root, `http://<ip>:<port>` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops serving: connections are closed, new ones refused. State is kept.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.shutdown.send(());
            let _ = r.thread.join();
        }
    }

    /// Serves again on the same port, with the same state.
    pub fn restart(&mut self) {
        self.stop();
        let began = std::time::Instant::now();
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if began.elapsed() < Duration::from_secs(10) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// The stored configuration of a neighbour.
    /// The neighbours whose session `reset-session` released, in order.
    pub fn resets(&self) -> Vec<String> {
        self.lock().resets.clone()
    }

    pub fn neighbor(&self, address: &str) -> Option<Value> {
        self.lock().neighbors.get(address).cloned()
    }

    pub fn neighbor_addresses(&self) -> Vec<String> {
        self.lock().neighbors.keys().cloned().collect()
    }

    /// Adds a neighbour the way an operator would, bypassing the API (not recorded).
    pub fn add_neighbor_by_hand(&self, address: &str, peer_as: u32) {
        self.lock().neighbors.insert(
            address.to_string(),
            json!({"neighbor-address": address, "config": {"peer-type": "EXTERNAL", "peer-as": peer_as}}),
        );
    }

    /// Configures an application peer the way an operator would (not recorded): the guide's
    /// "Application Peer configuration".
    pub fn add_application_peer_by_hand(&self, address: &str) {
        self.lock().neighbors.insert(
            address.to_string(),
            json!({"neighbor-address": address, "config": {"peer-group": "application-peers"}}),
        );
    }

    /// Makes "someone else" add this neighbour right before the next POST is handled, as if
    /// they won a race with cellnet's read-then-create.
    pub fn race_next_create(&self, address: &str, peer_as: u32) {
        self.lock().race_next_create = Some((address.to_string(), peer_as));
    }

    /// Removes a neighbour behind cellnet's back (not recorded).
    pub fn remove_neighbor_by_hand(&self, address: &str) -> bool {
        self.lock().neighbors.remove(address).is_some()
    }

    /// Sets the session state one neighbour reports (`ESTABLISHED`, `ACTIVE`, ...).
    /// Whether the peer of neighbour `address` sent the graceful restart capability (what the
    /// families' `graceful-restart/state/received` says; default true).
    pub fn set_peer_graceful_restart(&self, address: &str, sent: bool) {
        self.lock().peer_graceful_restart.insert(address.to_owned(), sent);
    }

    pub fn set_session_state(&self, address: &str, state: &str) {
        self.lock()
            .sessions
            .insert(address.to_string(), state.to_string());
    }

    /// What configured neighbours report by default (`None`: no `state` container at all).
    pub fn set_default_session(&self, state: Option<&str>) {
        self.lock().default_session = state.map(str::to_owned);
    }

    /// Replaces the credentials the server accepts.
    pub fn set_credentials(&self, username: &str, password: &str) {
        let mut inner = self.lock();
        inner.config.username = username.into();
        inner.config.password = password.into();
    }

    /// Sets or removes the BGP instance's global config.
    pub fn set_global(&self, global: Option<(u32, &str)>) {
        self.lock().config.global = global.map(|(a, r)| (a, r.to_string()));
    }

    /// Every route of application peer `peer`'s RIB, both families, as stored.
    pub fn app_routes(&self, peer: &str) -> Vec<Value> {
        let inner = self.lock();
        let Some(tables) = inner.ribs.app.get(peer) else {
            return Vec::new();
        };
        tables.values().flat_map(|t| t.values().cloned()).collect()
    }

    /// `(prefix, path-id)` of every route of `peer`'s RIB, sorted.
    pub fn app_route_keys(&self, peer: &str) -> Vec<(String, u32)> {
        let mut keys: Vec<(String, u32)> = self
            .app_routes(peer)
            .iter()
            .map(|r| {
                (
                    r["prefix"].as_str().unwrap_or_default().to_owned(),
                    r["path-id"].as_u64().unwrap_or(0) as u32,
                )
            })
            .collect();
        keys.sort();
        keys
    }

    /// Writes a route into `peer`'s RIB the way an operator would, bypassing the API (not
    /// recorded); the guide's attributes.
    pub fn add_app_route_by_hand(&self, peer: &str, prefix: &str, path_id: u32, next_hop: &str) {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let route = json!({"route-key": prefix, "path-id": path_id, "prefix": prefix, "attributes": {
            "origin": {"value": "igp"}, "local-pref": {"pref": 100},
            format!("{family}-next-hop"): {"global": next_hop}}});
        self.lock()
            .ribs
            .app
            .entry(peer.to_owned())
            .or_default()
            .entry(family)
            .or_default()
            .insert((prefix.to_owned(), path_id), route);
    }

    /// Removes a route from `peer`'s RIB behind cellnet's back (not recorded).
    pub fn remove_app_route_by_hand(&self, peer: &str, prefix: &str, path_id: u32) -> bool {
        let mut inner = self.lock();
        let Some(tables) = inner.ribs.app.get_mut(peer) else {
            return false;
        };
        tables
            .values_mut()
            .any(|t| t.remove(&(prefix.to_owned(), path_id)).is_some())
    }

    /// What `neighbor` sends: prefixes the speaker installed (its Effective-RIB-In) and
    /// prefixes its import policy rejected.
    pub fn set_received(&self, neighbor: &str, installed: &[&str], rejected: &[&str]) {
        let owned = |l: &[&str]| l.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        self.lock()
            .ribs
            .received
            .insert(neighbor.to_owned(), (owned(installed), owned(rejected)));
    }

    /// The root of the BGP instance, as cellnet must address it.
    pub fn bgp_root(&self) -> String {
        let c = self.lock().config.clone();
        bgp_root(&c)
    }
}

impl Drop for OdlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server config with this PEM certificate (chain) and key, no client authentication.
fn tls_config(cert_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("TLS server config");
    Arc::new(config)
}

/// Accepts TCP connections and completes the TLS handshake; failed handshakes (a client that
/// does not trust the certificate) are dropped and the next connection is accepted.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    failed: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream)).await
            {
                return (tls, addr);
            }
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn bgp_root(c: &OdlConfig) -> String {
    format!(
        "/rests/data/openconfig-network-instance:network-instances/network-instance={}\
         /openconfig-network-instance:protocols/protocol=openconfig-policy-types:BGP,{}\
         /bgp-openconfig-extensions:bgp",
        encode_key(&c.network_instance),
        encode_key(&c.rib_id)
    )
}

/// RFC 8040 section 3.5.3 key encoding (what a client must send).
pub fn encode_key(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode_key(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An RFC 8040 section 7.1 error answer.
fn error(status: StatusCode, error_type: &str, tag: &str, message: &str) -> Response {
    let body = json!({"ietf-restconf:errors": {"error": [{
        "error-type": error_type, "error-tag": tag, "error-message": message
    }]}});
    yang(status, Some(body))
}

fn yang(status: StatusCode, body: Option<Value>) -> Response {
    let mut response = match body {
        Some(b) => (status, b.to_string()).into_response(),
        None => status.into_response(),
    };
    if response.status() != StatusCode::NO_CONTENT {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(YANG_JSON));
    }
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn handle(
    State(state): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.lock().unwrap_or_else(|p| p.into_inner());
    let auth = header_str(&headers, header::AUTHORIZATION);
    let expected = format!(
        "Basic {}",
        base64(format!("{}:{}", inner.config.username, inner.config.password).as_bytes())
    );
    let authorized = auth.as_deref() == Some(expected.as_str());
    let parsed_body = (!body.is_empty()).then(|| {
        serde_json::from_slice::<Value>(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
    });
    let mut record = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_owned),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        accept: header_str(&headers, header::ACCEPT),
        authorized,
        had_credentials: auth.is_some(),
        body: parsed_body.clone(),
        status: 0,
    };
    let response = if authorized {
        route(&mut inner, &method, &uri, &record, parsed_body)
    } else {
        // What OpenDaylight's AAA filter does: 401 before RESTCONF sees the request.
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "protocol",
            "access-denied",
            "authentication required",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"opendaylight\""),
        );
        r
    };
    record.status = response.status().as_u16();
    inner.requests.push(record);
    response
}

fn content_param(query: Option<&str>) -> &str {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("content="))
        .unwrap_or("all")
}

fn with_state(inner: &Inner, address: &str, config: &Value, content: &str) -> Value {
    let mut entry = match content {
        "nonconfig" => json!({"neighbor-address": address}),
        _ => config.clone(),
    };
    if content != "config" {
        let session = inner
            .sessions
            .get(address)
            .cloned()
            .or_else(|| inner.default_session.clone());
        if let Some(s) = session {
            if s == "ESTABLISHED" {
                gr::with_families_state(inner, address, &mut entry);
            }
            entry["state"] = json!({"session-state": s});
        }
    }
    entry
}

/// `bgp-peer-rpc:reset-session`: the peer named by `peer-ref` must be a peer of this RIB.
fn reset_session(inner: &mut Inner, body: Option<&Value>) -> Response {
    let peer_ref = body
        .and_then(|b| b.get("bgp-peer-rpc:input").or_else(|| b.get("input")))
        .and_then(|i| i.get("peer-ref"))
        .and_then(Value::as_str);
    let prefix = format!(
        "/rib:bgp-rib/rib:rib[rib:id=\"{}\"]/rib:peer[rib:peer-id=\"bgp://",
        inner.config.rib_id
    );
    let Some(address) = peer_ref
        .and_then(|r| r.strip_prefix(prefix.as_str()))
        .and_then(|r| r.strip_suffix("\"]"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "protocol",
            "invalid-value",
            "expected input peer-ref naming a peer of this RIB",
        );
    };
    let session = inner
        .sessions
        .get(address)
        .cloned()
        .or_else(|| inner.default_session.clone());
    if !inner.neighbors.contains_key(address) || session.as_deref() != Some("ESTABLISHED") {
        return error(
            StatusCode::NOT_FOUND,
            "protocol",
            "data-missing",
            &format!("no peer bgp://{address} in the RIB"),
        );
    }
    inner.resets.push(address.to_string());
    yang(StatusCode::NO_CONTENT, None)
}

fn route(inner: &mut Inner, method: &Method, uri: &Uri, record: &Recorded, body: Option<Value>) -> Response {
    let no_data = || {
        error(
            StatusCode::NOT_FOUND,
            "protocol",
            "data-missing",
            "Request could not be completed because the relevant data model content does not exist",
        )
    };
    if inner.config.global.is_none() {
        return no_data();
    }
    let content = content_param(uri.query()).to_string();
    if matches!(*method, Method::POST | Method::PUT) && record.content_type.as_deref() != Some(YANG_JSON) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "protocol",
            "invalid-value",
            "expected Content-Type application/yang-data+json",
        );
    }
    if uri.path() == "/rests/operations/bgp-peer-rpc:reset-session" && *method == Method::POST {
        return reset_session(inner, body.as_ref());
    }
    if let Some(rest) = uri.path().strip_prefix("/rests/data/bgp-rib:application-rib=") {
        return rib::application_rib(inner, method, rest, body.as_ref());
    }
    if let Some(rest) = uri.path().strip_prefix("/rests/data/bgp-rib:bgp-rib/rib=") {
        return rib::bgp_rib(inner, method, rest, &content);
    }
    let root = bgp_root(&inner.config);
    let Some(rest) = uri.path().strip_prefix(root.as_str()) else {
        return no_data();
    };
    let missing = |what: &str| {
        error(
            StatusCode::NOT_FOUND,
            "protocol",
            "data-missing",
            &format!("Data does not exist for path {what}"),
        )
    };
    match (method.clone(), rest) {
        (Method::GET, "/global/config") => {
            let (asn, router_id) = inner.config.global.clone().expect("checked above");
            yang(
                StatusCode::OK,
                Some(json!({"bgp-openconfig-extensions:config": {"router-id": router_id, "as": asn}})),
            )
        }
        (Method::GET, "/neighbors") => {
            if inner.neighbors.is_empty() {
                return missing("neighbors");
            }
            let list: Vec<Value> = inner
                .neighbors
                .iter()
                .map(|(a, c)| with_state(inner, a, c, &content))
                .collect();
            yang(
                StatusCode::OK,
                Some(json!({"bgp-openconfig-extensions:neighbors": {"neighbor": list}})),
            )
        }
        (Method::POST, "/neighbors") => {
            let Some(entries) = body.as_ref().and_then(|b| {
                b.get("neighbor")
                    .or_else(|| b.get("bgp-openconfig-extensions:neighbor"))
                    .and_then(Value::as_array)
                    .cloned()
            }) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "protocol",
                    "malformed-message",
                    "expected {\"neighbor\": [...]}",
                );
            };
            let [entry] = entries.as_slice() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "protocol",
                    "malformed-message",
                    "exactly one neighbor expected",
                );
            };
            let Some(address) = entry["neighbor-address"].as_str().map(str::to_owned) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "protocol",
                    "missing-element",
                    "neighbor-address is required",
                );
            };
            if let Err(message) = gr::check(entry) {
                return error(StatusCode::BAD_REQUEST, "protocol", "invalid-value", &message);
            }
            if let Some((raced, peer_as)) = inner.race_next_create.take() {
                inner.neighbors.insert(
                    raced.clone(),
                    json!({"neighbor-address": raced, "config": {"peer-type": "EXTERNAL", "peer-as": peer_as}}),
                );
            }
            if inner.neighbors.contains_key(&address) {
                return error(
                    StatusCode::CONFLICT,
                    "protocol",
                    "data-exists",
                    &format!("Data already exists for neighbor {address}"),
                );
            }
            inner.neighbors.insert(address.clone(), entry.clone());
            let mut r = yang(StatusCode::CREATED, None);
            if let Ok(v) =
                HeaderValue::from_str(&format!("{root}/neighbors/neighbor={}", encode_key(&address)))
            {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r.headers_mut().remove(header::CONTENT_TYPE);
            r
        }
        (m, rest) if rest.starts_with("/neighbors/neighbor=") => {
            let key = &rest["/neighbors/neighbor=".len()..];
            let (key, sub) = key.split_once('/').unwrap_or((key, ""));
            let Some(address) = decode_key(key) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "protocol",
                    "invalid-value",
                    "bad key encoding",
                );
            };
            match (m, sub) {
                (Method::GET, "") => match inner.neighbors.get(&address) {
                    Some(c) => yang(
                        StatusCode::OK,
                        Some(
                            json!({"bgp-openconfig-extensions:neighbor": [with_state(inner, &address, c, &content)]}),
                        ),
                    ),
                    None => missing(&format!("neighbor={address}")),
                },
                (Method::GET, "afi-safis") => rib::families_state(inner, &address),
                (Method::GET, "state") => {
                    let state = inner
                        .neighbors
                        .get(&address)
                        .filter(|_| content != "config")
                        .and_then(|c| with_state(inner, &address, c, "nonconfig").get("state").cloned());
                    match state {
                        Some(s) => yang(
                            StatusCode::OK,
                            Some(json!({"bgp-openconfig-extensions:state": s})),
                        ),
                        None => missing(&format!("neighbor={address}/state")),
                    }
                }
                (Method::PUT, "") => {
                    let entry = body.as_ref().and_then(|b| {
                        b.get("bgp-openconfig-extensions:neighbor")
                            .or_else(|| b.get("neighbor"))
                            .and_then(Value::as_array)
                            .and_then(|a| (a.len() == 1).then(|| a[0].clone()))
                    });
                    let Some(entry) = entry else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "protocol",
                            "malformed-message",
                            "expected {\"bgp-openconfig-extensions:neighbor\": [one entry]}",
                        );
                    };
                    if entry["neighbor-address"].as_str() != Some(address.as_str()) {
                        // RFC 8040 section 4.5: the key in the body must match the URI.
                        return error(
                            StatusCode::BAD_REQUEST,
                            "protocol",
                            "invalid-value",
                            "the neighbor-address in the body does not match the URI",
                        );
                    }
                    if let Err(message) = gr::check(&entry) {
                        return error(StatusCode::BAD_REQUEST, "protocol", "invalid-value", &message);
                    }
                    let existed = inner.neighbors.insert(address, entry).is_some();
                    yang(
                        if existed {
                            StatusCode::NO_CONTENT
                        } else {
                            StatusCode::CREATED
                        },
                        None,
                    )
                }
                (Method::DELETE, "") => match inner.neighbors.remove(&address) {
                    Some(_) => {
                        inner.sessions.remove(&address);
                        yang(StatusCode::NO_CONTENT, None)
                    }
                    None => missing(&format!("neighbor={address}")),
                },
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "protocol",
                    "operation-not-supported",
                    "not supported by this test server",
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "protocol",
            "data-missing",
            "not part of this test server's subset",
        ),
    }
}
