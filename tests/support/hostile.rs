//! Hostile SDN APIs for the bounds tests: a GoBGP gRPC API that floods, and an OpenDaylight
//! RESTCONF server whose every answer is a huge JSON array. Each counts what it sent.
//!
//! The GoBGP one follows the gRPC wire protocol over HTTP/2 (grpc/grpc
//! doc/PROTOCOL-HTTP2.md: `application/grpc`, 5-byte length-prefixed messages, `grpc-status` in
//! the trailers or in a trailers-only answer) with the messages of `apipb.GobgpApi`
//! (proto/gobgp/gobgp.proto, the protos cellnet's client is built from):
//! - `GetBgp`: a speaker not started yet (ASN 0), so cellnet calls `StartBgp`, which succeeds;
//! - `ListPeer`: [`LISTED_PEERS`] distinct peers (2001:db8::/32) with 512-byte descriptions;
//! - `WatchEvent`: an endless stream of peer events, each a new neighbour, Established and Idle
//!   in turn;
//! - anything else: `UNIMPLEMENTED` (status 12).
//!
//! Each runs on its own thread and runtime, so the test's blocking waits never slow it down.
use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cellnet::sdn::gobgp::proto;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Either, Empty, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;

/// What a hostile server sent so far.
#[derive(Default, Debug)]
pub struct Sent {
    /// Peers in `ListPeer` answers.
    pub listed_peers: AtomicU64,
    /// `WatchEvent` messages.
    pub events: AtomicU64,
    /// RESTCONF answers.
    pub answers: AtomicU64,
    /// Requests of any kind.
    pub requests: AtomicU64,
}

/// A hostile server on `host`, serving until the test binary exits.
pub struct Hostile {
    pub addr: SocketAddr,
    pub sent: Arc<Sent>,
}

impl Hostile {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Which HTTP the server speaks: gRPC needs HTTP/2, RESTCONF clients start with HTTP/1.1.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Http {
    One,
    Two,
}

fn serve<F>(host: Ipv4Addr, http: Http, handle: F) -> Hostile
where
    F: Fn(Request<Incoming>, Arc<Sent>) -> std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send>>
        + Send
        + Sync
        + Copy
        + 'static,
{
    let listener = std::net::TcpListener::bind((host, 0)).expect("bind the hostile server");
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(Sent::default());
    let counted = sent.clone();
    std::thread::Builder::new()
        .name(format!("hostile-{addr}"))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let sent = counted.clone();
                    let service = hyper::service::service_fn(move |req| {
                        sent.requests.fetch_add(1, Ordering::Relaxed);
                        let sent = sent.clone();
                        async move { Ok::<_, Infallible>(handle(req, sent).await) }
                    });
                    tokio::spawn(async move {
                        let io = TokioIo::new(stream);
                        if http == Http::Two {
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(io, service)
                                .await;
                        } else {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, service)
                                .await;
                        }
                    });
                }
            });
        })
        .unwrap();
    Hostile { addr, sent }
}

type Frames = futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>;
type Body = Either<StreamBody<Frames>, Empty<Bytes>>;

/// One gRPC message as a DATA frame.
fn grpc_frame(message: &impl prost::Message) -> Frame<Bytes> {
    let len = message.encoded_len();
    let mut buf = Vec::with_capacity(5 + len);
    buf.push(0);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    message.encode(&mut buf).unwrap();
    Frame::data(Bytes::from(buf))
}

fn grpc_ok_trailers() -> Frame<Bytes> {
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    Frame::trailers(trailers)
}

/// A gRPC answer of these messages and status OK.
fn grpc(messages: Frames) -> Response<Body> {
    let frames = messages.chain(futures::stream::once(async { Ok(grpc_ok_trailers()) }));
    Response::builder()
        .header("content-type", "application/grpc")
        .body(Either::Left(StreamBody::new(frames.boxed())))
        .unwrap()
}

fn unimplemented() -> Response<Body> {
    Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", "12")
        .body(Either::Right(Empty::new()))
        .unwrap()
}

fn neighbor(i: u64) -> String {
    Ipv6Addr::from(0x2001_0db8_00ff_u128 << 80 | u128::from(i)).to_string()
}

fn peer(i: u64, established: bool) -> proto::Peer {
    let session = if established {
        proto::peer_state::SessionState::Established
    } else {
        proto::peer_state::SessionState::Idle
    };
    proto::Peer {
        conf: Some(proto::PeerConf {
            neighbor_address: neighbor(i),
            peer_asn: 64_512,
            description: "x".repeat(512),
            ..Default::default()
        }),
        state: Some(proto::PeerState {
            neighbor_address: neighbor(i),
            session_state: session as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Peers in one `ListPeer` answer: some 200 MB once decoded, far beyond any sane speaker (finite,
/// so that a controller without limits shows its growth without taking the machine down).
pub const LISTED_PEERS: u64 = 300_000;

/// A GoBGP API that floods `ListPeer` and `WatchEvent` (see the module docs).
pub fn flooding_gobgp(host: Ipv4Addr) -> Hostile {
    serve(host, Http::Two, |req, sent| {
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            let _ = req.into_body().collect().await;
            let method = path.rsplit('/').next().unwrap_or_default();
            match method {
                "GetBgp" => grpc(
                    futures::stream::iter([Ok(grpc_frame(&proto::GetBgpResponse {
                        global: Some(proto::Global::default()),
                    }))])
                    .boxed(),
                ),
                "StartBgp" => grpc(futures::stream::iter([Ok(grpc_frame(&()))]).boxed()),
                "ListPeer" => grpc(
                    futures::stream::iter(0..LISTED_PEERS)
                        .map(move |i| {
                            sent.listed_peers.fetch_add(1, Ordering::Relaxed);
                            Ok(grpc_frame(&proto::ListPeerResponse {
                                peer: Some(peer(i, true)),
                            }))
                        })
                        .boxed(),
                ),
                "WatchEvent" => grpc(
                    futures::stream::iter(0u64..)
                        .map(move |i| {
                            sent.events.fetch_add(1, Ordering::Relaxed);
                            use proto::watch_event_response::{Event, PeerEvent, peer_event::Type};
                            Ok(grpc_frame(&proto::WatchEventResponse {
                                event: Some(Event::Peer(PeerEvent {
                                    r#type: Type::State as i32,
                                    peer: Some(peer(i / 2, i % 2 == 0)),
                                })),
                            }))
                        })
                        .boxed(),
                ),
                _ => unimplemented(),
            }
        })
    })
}

/// The JSON every answer of [`huge_opendaylight`] carries: one array of `values` zeros, just
/// under the 8 MiB cellnet reads.
pub fn huge_json(values: usize) -> Bytes {
    let mut body = String::with_capacity(values * 2 + 64);
    body.push_str("{\"openconfig-network-instance:neighbors\":{\"neighbor\":[");
    for i in 0..values {
        if i > 0 {
            body.push(',');
        }
        body.push('0');
    }
    body.push_str("]}}");
    Bytes::from(body)
}

/// An OpenDaylight RESTCONF server (RFC 8040 media type) whose every answer is `body`, 200 OK
/// (the first `body` of the test binary: handlers are plain functions).
pub fn huge_opendaylight(host: Ipv4Addr, body: Bytes) -> Hostile {
    static BODY: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BODY.get_or_init(|| body);
    serve(host, Http::One, |req, sent| {
        Box::pin(async move {
            let _ = req.into_body().collect().await;
            sent.answers.fetch_add(1, Ordering::Relaxed);
            let body = BODY.get().unwrap().clone();
            Response::builder()
                .header("content-type", "application/yang-data+json")
                .body(Either::Left(StreamBody::new(
                    futures::stream::iter([Ok(Frame::data(body))]).boxed(),
                )))
                .unwrap()
        })
    })
}
