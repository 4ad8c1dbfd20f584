//! Helpers of tests/gobgp_routes.rs: two cells' speakers, their Loc-RIBs read through the
//! gRPC API, the operator's objects, and drift made behind cellnet's back.
//!
//! Include with `#[path = "support/routes.rs"] mod routes;` after the gobgpd fixture
//! (`#[path = "support/gobgp.rs"] mod gobgp_fixture;`).
#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use cellnet::sdn::gobgp::proto::gobgp_api_client::GobgpApiClient;
use cellnet::sdn::gobgp::proto::{self, family};
use cellnet::sdn::gobgp::routes::wire;
use cellnet::sdn::gobgp::{self, GoBgp};
use cellnet::sdn::routes::{IpNet, RoutesOutcome};
use cellnet::sdn::{PeerConfig, SdnBackend, SessionState, SpeakerConfig, SpeakerOutcome};
use prost::Message as _;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use crate::gobgp_fixture::Gobgpd;

pub const BGP_PORT: u16 = 1790;
pub const KEY: &str = "ab16";
/// Bounds every wait for BGP to move routes (an UPDATE takes milliseconds once established).
pub const ROUTES_TIMEOUT: Duration = Duration::from_secs(15);
pub const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// After a hard reset GoBGP keeps the session idle for the peer's `idle_hold_time_after_reset`
/// (30 s by default), then connects again.
pub const AFTER_RESET_TIMEOUT: Duration = Duration::from_secs(50);

pub fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| net(s)).collect()
}

pub struct Cell {
    pub gobgpd: Gobgpd,
    pub client: GoBgp,
    pub raw: GobgpApiClient<Channel>,
}

pub async fn cell(last: u8) -> Cell {
    let gobgpd = Gobgpd::start(&format!("routes{last}"), addr(last), None);
    let client = GoBgp::connect(&gobgp::target(gobgpd.api_url()), Duration::from_secs(5)).unwrap();
    let config = SpeakerConfig {
        asn: 65000 + u32::from(last),
        router_id: addr(last),
        listen_address: IpAddr::V4(addr(last)),
        listen_port: BGP_PORT,
    };
    assert_eq!(
        client.ensure_speaker(&config).await.unwrap(),
        SpeakerOutcome::Started
    );
    let channel = Endpoint::from_shared(gobgpd.api_url()).unwrap().connect_lazy();
    Cell {
        gobgpd,
        client,
        raw: GobgpApiClient::new(channel),
    }
}

pub fn peer(local: u8, remote: u8) -> PeerConfig {
    PeerConfig {
        remote_port: BGP_PORT,
        hold_time: 9,
        keepalive_interval: 3,
        ..PeerConfig::new(
            IpAddr::V4(addr(remote)),
            65000 + u32::from(remote),
            IpAddr::V4(addr(local)),
            "cellnet:test/routes",
        )
    }
}

/// One unicast path of a speaker's Loc-RIB, read through the gRPC API (the CLI's JSON shows
/// neither the path identifier nor the source).
#[derive(Debug)]
pub struct RibPath {
    pub net: IpNet,
    pub identifier: u32,
    pub from: Option<IpAddr>,
    pub next_hop: Option<IpAddr>,
    pub local_pref: Option<u32>,
}

pub async fn loc_rib(cell: &Cell) -> Vec<RibPath> {
    rib_of(cell, family::Afi::Ip).await
}

/// The IPv6 unicast paths of a speaker's Loc-RIB.
pub async fn rib6(cell: &Cell) -> Vec<RibPath> {
    rib_of(cell, family::Afi::Ip6).await
}

async fn rib_of(cell: &Cell, afi: family::Afi) -> Vec<RibPath> {
    let request = proto::ListPathRequest {
        table_type: proto::TableType::Global as i32,
        family: Some(proto::Family {
            afi: afi as i32,
            safi: family::Safi::Unicast as i32,
        }),
        ..Default::default()
    };
    let mut stream = cell.raw.clone().list_path(request).await.unwrap().into_inner();
    let mut paths = Vec::new();
    while let Some(response) = stream.message().await.unwrap() {
        for path in response.destination.into_iter().flat_map(|d| d.paths) {
            let local_pref = path
                .pattrs
                .iter()
                .find(|a| a.type_url.ends_with(".LocalPrefAttribute"))
                .and_then(|a| proto::LocalPrefAttribute::decode(a.value.as_slice()).ok())
                .map(|a| a.local_pref);
            paths.push(RibPath {
                net: wire::prefix_of(&path).unwrap(),
                identifier: path.identifier,
                from: wire::source_of(&path),
                next_hop: wire::next_hop_of(&path),
                local_pref,
            });
        }
    }
    paths
}

/// Polls `check` until it holds; panics with both speakers' logs after `ROUTES_TIMEOUT`.
pub async fn wait_for<F, Fut>(what: &str, cells: [&Cell; 2], check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until(what, ROUTES_TIMEOUT, cells, check).await;
}

pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, cells: [&Cell; 2], mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        if start.elapsed() > timeout {
            panic!(
                "{what}: not within {timeout:?}\n--- A ---\n{}\n--- B ---\n{}",
                cells[0].gobgpd.log(),
                cells[1].gobgpd.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn established(cell: &Cell, neighbor: IpAddr) -> bool {
    let seen = cell.client.observe_peer(neighbor).await.unwrap();
    seen.is_some_and(|p| p.session == SessionState::Established)
}

/// Whether `on` holds a path for `prefix` received from `from` with next hop `next_hop`.
pub async fn has_route(on: &Cell, prefix: &str, from: Ipv4Addr, next_hop: &str) -> bool {
    loc_rib(on).await.iter().any(|p| {
        p.net == net(prefix) && p.from == Some(IpAddr::V4(from)) && p.next_hop == next_hop.parse().ok()
    })
}

pub async fn lacks_route(on: &Cell, prefix: &str) -> bool {
    !loc_rib(on).await.iter().any(|p| p.net == net(prefix))
}

pub fn cli_json(cell: &Cell, args: &[&str]) -> Value {
    let out = cell.gobgpd.cli(args).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// The operator's policies, the assignment without cellnet's policies (order and default), and
/// the operator's path with its age: any cellnet call that touched them changes this.
pub fn operator_view(a: &Cell) -> Value {
    let mut import = cli_json(a, &["global", "policy", "import", "-j"]);
    if let Some(policies) = import["policies"].as_array_mut() {
        policies.retain(|p| !p["name"].as_str().unwrap_or("").starts_with("cellnet-"));
    }
    serde_json::json!({
        "op-lp": cli_json(a, &["policy", "op-lp", "-j"]),
        "op-accept": cli_json(a, &["policy", "op-accept", "-j"]),
        "import": import,
        "path": cli_json(a, &["global", "rib", "-j", "203.0.113.0/24"]),
    })
}

/// Every name of cellnet's in the policy configuration (policies, sets, assignments).
pub fn cellnet_names(a: &Cell) -> Vec<String> {
    let text = [
        a.gobgpd.cli(&["policy", "-j"]),
        a.gobgpd.cli(&["policy", "prefix", "-j"]),
        a.gobgpd.cli(&["policy", "neighbor", "-j"]),
        a.gobgpd.cli(&["policy", "ext-community", "-j"]),
        a.gobgpd.cli(&["policy", "statement", "-j"]),
        a.gobgpd.cli(&["global", "policy", "import", "-j"]),
        a.gobgpd.cli(&["global", "policy", "export", "-j"]),
    ]
    .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
    .join("\n");
    text.split('"')
        .filter(|s| s.starts_with("cellnet-"))
        .map(str::to_owned)
        .collect()
}

/// An operator's import policies, assigned before cellnet's exists: one that sets local-pref
/// 200 and goes on, one that accepts everything. And an operator's own path.
pub fn operator_setup(a: &Cell) {
    for args in [
        &["policy", "statement", "add", "op-lp-st"][..],
        &[
            "policy",
            "statement",
            "op-lp-st",
            "add",
            "action",
            "local-pref",
            "200",
        ],
        &["policy", "add", "op-lp", "op-lp-st"],
        &["policy", "statement", "add", "op-accept-st"],
        &["policy", "statement", "op-accept-st", "add", "action", "accept"],
        &["policy", "add", "op-accept", "op-accept-st"],
        &["global", "policy", "import", "add", "op-lp", "op-accept"],
        &["global", "rib", "add", "203.0.113.0/24", "nexthop", "192.0.2.99"],
    ] {
        a.gobgpd.cli(args).unwrap_or_else(|e| panic!("{e}"));
    }
}

pub fn writes(outcome: RoutesOutcome) -> Vec<String> {
    match outcome {
        RoutesOutcome::Updated { writes } => writes,
        other => panic!("expected writes, got {other:?}"),
    }
}

/// What an operator (or a gobgpd hiccup) might do behind cellnet's back: withdraw one of its
/// paths, delete one of its statements, and move its policy to the end of the assignment.
pub async fn drift(a: &Cell, mark: u32) {
    let mut raw = a.raw.clone();
    let path = wire::withdrawal_path(net("192.0.2.128/26"), mark);
    let request = proto::DeletePathRequest {
        table_type: proto::TableType::Global as i32,
        family: path.family,
        path: Some(path),
        ..Default::default()
    };
    raw.delete_path(request).await.unwrap();
    let statement = proto::Statement {
        name: format!("cellnet-{KEY}-in-v4"),
        ..Default::default()
    };
    let request = proto::DeletePolicyRequest {
        policy: Some(proto::Policy {
            name: "cellnet-import".into(),
            statements: vec![statement],
        }),
        preserve_statements: false,
        all: false,
    };
    raw.delete_policy(request).await.unwrap();
    a.gobgpd
        .cli(&[
            "global",
            "policy",
            "import",
            "set",
            "op-lp",
            "op-accept",
            "cellnet-import",
        ])
        .unwrap();
}
