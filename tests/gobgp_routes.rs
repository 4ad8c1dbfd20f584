//! The GoBGP routes API (issue #16) on two real gobgpd: A is the speaker cellnet manages, B is
//! the remote cell. One scenario, because a session takes 6-9 s to come up: origination, import
//! and export filtering, the operator's own policies and paths left alone, drift repaired with
//! zero writes in steady state, and a clean removal.
//!
//! The sessions run on 127.0.0.161/.162 (BGP port 1790, like tests/gobgp.rs) but the next hops
//! are TEST-NET addresses: GoBGP treats a 127/8 next hop as invalid and drops the path ("invalid
//! nexthop address"). Nothing forwards packets here, so the next hops need not be reachable.
#[path = "support/gobgp.rs"]
mod gobgp_fixture;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use cellnet::sdn::gobgp::proto::gobgp_api_client::GobgpApiClient;
use cellnet::sdn::gobgp::proto::{self, family};
use cellnet::sdn::gobgp::routes::wire;
use cellnet::sdn::gobgp::{self, GoBgp};
use cellnet::sdn::routes::{ExportRule, ImportRule, IpNet, Origination, RouteFilter, RoutesOutcome};
use cellnet::sdn::{
    AddressFamily, PeerConfig, PeerOutcome, SdnBackend, SessionState, SpeakerConfig, SpeakerOutcome,
};
use gobgp_fixture::Gobgpd;
use prost::Message as _;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

const BGP_PORT: u16 = 1790;
const KEY: &str = "ab16";
/// Bounds every wait for BGP to move routes (an UPDATE takes milliseconds once established).
const ROUTES_TIMEOUT: Duration = Duration::from_secs(15);
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// After a hard reset GoBGP keeps the session idle for the peer's `idle_hold_time_after_reset`
/// (30 s by default), then connects again.
const AFTER_RESET_TIMEOUT: Duration = Duration::from_secs(50);

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| net(s)).collect()
}

struct Cell {
    gobgpd: Gobgpd,
    client: GoBgp,
    raw: GobgpApiClient<Channel>,
}

async fn cell(last: u8) -> Cell {
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

fn peer(local: u8, remote: u8) -> PeerConfig {
    PeerConfig {
        neighbor: IpAddr::V4(addr(remote)),
        peer_asn: 65000 + u32::from(remote),
        remote_port: BGP_PORT,
        local_address: IpAddr::V4(addr(local)),
        hold_time: 9,
        keepalive_interval: 3,
        ebgp_multihop: None,
        families: vec![AddressFamily::Ipv4Unicast],
        password: None,
        owner: "cellnet:test/routes".into(),
        admin_down: false,
        admin_message: None,
        owned_record: false,
    }
}

/// One IPv4 path of a speaker's Loc-RIB, read through the gRPC API (the CLI's JSON shows
/// neither the path identifier nor the source).
#[derive(Debug)]
struct RibPath {
    net: IpNet,
    identifier: u32,
    from: Option<IpAddr>,
    next_hop: Option<IpAddr>,
    local_pref: Option<u32>,
}

async fn loc_rib(cell: &Cell) -> Vec<RibPath> {
    let request = proto::ListPathRequest {
        table_type: proto::TableType::Global as i32,
        family: Some(proto::Family {
            afi: family::Afi::Ip as i32,
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
async fn wait_for<F, Fut>(what: &str, cells: [&Cell; 2], check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until(what, ROUTES_TIMEOUT, cells, check).await;
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, cells: [&Cell; 2], mut check: F)
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

async fn established(cell: &Cell, neighbor: IpAddr) -> bool {
    let seen = cell.client.observe_peer(neighbor).await.unwrap();
    seen.is_some_and(|p| p.session == SessionState::Established)
}

/// Whether `on` holds a path for `prefix` received from `from` with next hop `next_hop`.
async fn has_route(on: &Cell, prefix: &str, from: Ipv4Addr, next_hop: &str) -> bool {
    loc_rib(on).await.iter().any(|p| {
        p.net == net(prefix) && p.from == Some(IpAddr::V4(from)) && p.next_hop == next_hop.parse().ok()
    })
}

async fn lacks_route(on: &Cell, prefix: &str) -> bool {
    !loc_rib(on).await.iter().any(|p| p.net == net(prefix))
}

fn cli_json(cell: &Cell, args: &[&str]) -> Value {
    let out = cell.gobgpd.cli(args).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// The operator's policies, the assignment without cellnet's policies (order and default), and
/// the operator's path with its age: any cellnet call that touched them changes this.
fn operator_view(a: &Cell) -> Value {
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
fn cellnet_names(a: &Cell) -> Vec<String> {
    let text = [
        a.gobgpd.cli(&["policy", "-j"]),
        a.gobgpd.cli(&["policy", "prefix", "-j"]),
        a.gobgpd.cli(&["policy", "neighbor", "-j"]),
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
fn operator_setup(a: &Cell) {
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

fn writes(outcome: RoutesOutcome) -> Vec<String> {
    match outcome {
        RoutesOutcome::Updated { writes } => writes,
        other => panic!("expected writes, got {other:?}"),
    }
}

#[tokio::test]
async fn routes_between_two_cells() {
    let began = Instant::now();
    let (a, b) = (cell(161).await, cell(162).await);
    let ab = IpAddr::V4(addr(162));
    let a_nets = nets(&["10.1.0.0/16", "10.1.1.0/24"]);
    let mut origin_a = Origination {
        mark: cellnet::sdn::routes::mark_of("endpoint-a-uid"),
        next_hop: "192.0.2.11".parse().unwrap(),
        networks: a_nets.clone(),
        owner: "cellnet:test/a".into(),
    };
    let origin_b = Origination {
        mark: cellnet::sdn::routes::mark_of("endpoint-b-uid"),
        next_hop: "192.0.2.12".parse().unwrap(),
        networks: nets(&["10.2.0.0/16", "10.3.0.0/16"]),
        owner: "cellnet:test/b".into(),
    };
    let filter = RouteFilter {
        key: KEY.into(),
        neighbors: vec![ab],
        import: ImportRule::Only(origin_b.networks.clone()),
        export: ExportRule::Only(a_nets.clone()),
    };
    operator_setup(&a);
    let untouched = operator_view(&a);
    // B announces a network it does not declare, by hand: its own path (identifier 0).
    b.gobgpd
        .cli(&["global", "rib", "add", "10.66.0.0/16", "nexthop", "192.0.2.12"])
        .unwrap();

    writes(a.client.ensure_route_filter(&filter).await.unwrap());
    writes(a.client.ensure_origination(&origin_a).await.unwrap());
    writes(b.client.ensure_origination(&origin_b).await.unwrap());
    assert_eq!(
        operator_view(&a),
        untouched,
        "cellnet's first ensure touched the operator's objects"
    );
    let order = cli_json(&a, &["global", "policy", "import", "-j"]);
    let order: Vec<&str> = order["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["cellnet-import", "op-lp", "op-accept"],
        "ours first, the operator's in their order"
    );

    assert_eq!(
        a.client.ensure_peer(&peer(161, 162)).await.unwrap().outcome,
        PeerOutcome::Created
    );
    assert_eq!(
        b.client.ensure_peer(&peer(162, 161)).await.unwrap().outcome,
        PeerOutcome::Created
    );
    let up = || established(&a, ab);
    wait_until("A-B session Established", ESTABLISH_TIMEOUT, [&a, &b], up).await;
    println!("established after {:?}", began.elapsed());

    // (1) A's networks reach B from A, with the endpoint's next hop; the operator's path on A
    // does not (cellnet's export filter).
    for prefix in ["10.1.0.0/16", "10.1.1.0/24"] {
        wait_for(prefix, [&a, &b], || {
            has_route(&b, prefix, addr(161), "192.0.2.11")
        })
        .await;
    }
    assert!(
        lacks_route(&b, "203.0.113.0/24").await,
        "the operator's path leaked to B"
    );

    // (2) What B declares is accepted, what it only announces is not, and counted as rejected.
    for prefix in ["10.2.0.0/16", "10.3.0.0/16"] {
        wait_for(prefix, [&a, &b], || {
            has_route(&a, prefix, addr(162), "192.0.2.12")
        })
        .await;
    }
    let counts = async || {
        a.client
            .observe_routes(&origin_a, std::slice::from_ref(&filter))
            .await
            .unwrap()[&ab]
            .clone()
    };
    wait_for("B's 3 paths counted on A", [&a, &b], || async {
        counts().await.received == 3
    })
    .await;
    let seen = counts().await;
    assert_eq!(
        (seen.received, seen.accepted, seen.rejected),
        (3, 2, 1),
        "{seen:?}"
    );
    assert_eq!((seen.advertised, seen.prefix_limit_hit), (2, false), "{seen:?}");
    assert!(
        seen.missing_received.is_empty() && seen.missing_advertised.is_empty(),
        "{seen:?}"
    );
    let rib = loc_rib(&a).await;
    assert!(
        !rib.iter().any(|p| p.net == net("10.66.0.0/16")),
        "undeclared network accepted: {rib:?}"
    );
    // (3) cellnet's reject won over the operator's accept-all, and the operator's local-pref
    // still applies to what cellnet let through.
    let accepted = rib.iter().find(|p| p.net == net("10.2.0.0/16")).unwrap();
    assert_eq!(accepted.local_pref, Some(200), "{accepted:?}");

    // (4) Steady state writes nothing; drift behind cellnet's back is repaired by the same calls.
    assert_eq!(
        a.client.ensure_route_filter(&filter).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert_eq!(
        a.client.ensure_origination(&origin_a).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    drift(&a, origin_a.mark).await;
    wait_for("10.1.0.0/16 withdrawn by hand", [&a, &b], || {
        lacks_route(&b, "10.1.0.0/16")
    })
    .await;
    let repaired = writes(a.client.ensure_origination(&origin_a).await.unwrap());
    assert_eq!(repaired, ["originate 10.1.0.0/16"]);
    let repaired = writes(a.client.ensure_route_filter(&filter).await.unwrap());
    assert!(
        repaired.contains(&format!("add statement cellnet-{KEY}-in-v4")),
        "{repaired:?}"
    );
    assert!(
        repaired.contains(&"put cellnet-import first".to_owned()),
        "{repaired:?}"
    );
    assert!(repaired.contains(&format!("soft reset in {ab}")), "{repaired:?}");
    wait_for("10.1.0.0/16 back on B", [&a, &b], || {
        has_route(&b, "10.1.0.0/16", addr(161), "192.0.2.11")
    })
    .await;
    assert_eq!(
        a.client.ensure_route_filter(&filter).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert_eq!(
        a.client.ensure_origination(&origin_a).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert!(
        lacks_route(&a, "10.66.0.0/16").await,
        "the repaired filter let 10.66.0.0/16 in"
    );
    assert_eq!(
        operator_view(&a),
        untouched,
        "a repair touched the operator's objects"
    );

    // (5) A network taken out of the origination is withdrawn from B.
    origin_a.networks = nets(&["10.1.0.0/16"]);
    assert_eq!(
        writes(a.client.ensure_origination(&origin_a).await.unwrap()),
        ["withdraw 10.1.1.0/24"]
    );
    wait_for("10.1.1.0/24 withdrawn", [&a, &b], || {
        lacks_route(&b, "10.1.1.0/24")
    })
    .await;
    assert!(has_route(&b, "10.1.0.0/16", addr(161), "192.0.2.11").await);

    // A narrower export: only a session reset takes back what was sent (research §4). A wider
    // one: a soft reset out sends it again, without a flap.
    let closed = RouteFilter {
        export: ExportRule::None,
        ..filter.clone()
    };
    let done = writes(a.client.ensure_route_filter(&closed).await.unwrap());
    assert!(done.contains(&format!("hard reset {ab}")), "{done:?}");
    wait_for("10.1.0.0/16 taken back", [&a, &b], || {
        lacks_route(&b, "10.1.0.0/16")
    })
    .await;
    wait_until("session back up", AFTER_RESET_TIMEOUT, [&a, &b], up).await;
    println!("session back after the hard reset at {:?}", began.elapsed());
    assert!(
        lacks_route(&b, "10.1.0.0/16").await,
        "sent again despite export None"
    );
    let done = writes(a.client.ensure_route_filter(&filter).await.unwrap());
    assert!(done.contains(&format!("soft reset out {ab}")), "{done:?}");
    assert!(!done.iter().any(|w| w.starts_with("hard reset")), "{done:?}");
    wait_for("10.1.0.0/16 sent again", [&a, &b], || {
        has_route(&b, "10.1.0.0/16", addr(161), "192.0.2.11")
    })
    .await;

    // Removal leaves nothing of cellnet's, and the operator's objects as they were.
    writes(a.client.remove_route_filter(KEY).await.unwrap());
    writes(a.client.withdraw_origination(origin_a.mark).await.unwrap());
    assert_eq!(cellnet_names(&a), Vec::<String>::new());
    let rib = loc_rib(&a).await;
    assert!(
        !rib.iter()
            .any(|p| p.from.is_none() && p.identifier == origin_a.mark),
        "{rib:?}"
    );
    assert_eq!(
        operator_view(&a),
        untouched,
        "removal touched the operator's objects"
    );
    wait_for("A's networks gone from B", [&a, &b], || {
        lacks_route(&b, "10.1.0.0/16")
    })
    .await;
    // Unfiltered again (soft reset in after the removal): the operator's accept-all applies.
    wait_for("10.66.0.0/16 accepted", [&a, &b], || {
        has_route(&a, "10.66.0.0/16", addr(162), "192.0.2.12")
    })
    .await;
    assert_eq!(
        a.client.remove_route_filter(KEY).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert_eq!(
        a.client.withdraw_origination(origin_a.mark).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    println!("scenario done in {:?}", began.elapsed());
}

/// What an operator (or a gobgpd hiccup) might do behind cellnet's back: withdraw one of its
/// paths, delete one of its statements, and move its policy to the end of the assignment.
async fn drift(a: &Cell, mark: u32) {
    let mut raw = a.raw.clone();
    let path = wire::withdrawal_path(net("10.1.0.0/16"), mark);
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
