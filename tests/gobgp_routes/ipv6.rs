//! IPv6 networks on real gobgpd: a cell's 2001:db8::/48 originated with the endpoint's IPv6
//! address as next hop, filtered in and out like IPv4, over a BGP session on IPv6 (`::1`, the
//! only IPv6 loopback address: the two speakers listen on different ports).
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use cellnet::sdn::gobgp::{self, GoBgp};
use cellnet::sdn::routes::{ExportRule, ImportRule, Origination, RouteFilter, RoutesOutcome, mark_of};
use cellnet::sdn::{AddressFamily, PeerConfig, SdnBackend, SpeakerConfig, SpeakerOutcome};
use tonic::transport::Endpoint;

use crate::gobgp_fixture::Gobgpd;
use crate::routes::*;

const A: u8 = 171;
const B: u8 = 172;
const LOOPBACK: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn port(last: u8) -> u16 {
    17_000 + u16::from(last)
}

/// A speaker whose BGP listens on `[::1]:<port(last)>`.
async fn v6_cell(last: u8) -> Cell {
    let gobgpd = Gobgpd::start(&format!("routes6-{last}"), addr(last), None);
    let client = GoBgp::connect(&gobgp::target(gobgpd.api_url()), Duration::from_secs(5)).unwrap();
    let config = SpeakerConfig {
        asn: 65000 + u32::from(last),
        router_id: addr(last),
        listen_address: LOOPBACK,
        listen_port: port(last),
    };
    let started = client.ensure_speaker(&config).await.unwrap();
    assert_eq!(started, SpeakerOutcome::Started);
    let channel = Endpoint::from_shared(gobgpd.api_url()).unwrap().connect_lazy();
    Cell {
        gobgpd,
        client,
        raw: cellnet::sdn::gobgp::proto::gobgp_api_client::GobgpApiClient::new(channel),
    }
}

fn v6_peer(remote: u8) -> PeerConfig {
    PeerConfig {
        remote_port: port(remote),
        hold_time: 9,
        keepalive_interval: 3,
        families: vec![AddressFamily::Ipv6Unicast],
        ..PeerConfig::new(LOOPBACK, 65000 + u32::from(remote), LOOPBACK, "cellnet:test/v6")
    }
}

#[tokio::test]
async fn an_ipv6_network_is_originated_and_filtered() {
    let began = Instant::now();
    let (a, b) = (v6_cell(A).await, v6_cell(B).await);
    let origin_a = Origination {
        mark: mark_of("v6-a"),
        next_hop: "2001:db8:ffff::a".parse().unwrap(),
        networks: nets(&["2001:db8:a::/48"]),
        owner: "cellnet:test/v6-a".into(),
    };
    let origin_b = Origination {
        mark: mark_of("v6-b"),
        next_hop: "2001:db8:ffff::b".parse().unwrap(),
        networks: nets(&["2001:db8:b::/48"]),
        owner: "cellnet:test/v6-b".into(),
    };
    let filter = RouteFilter {
        key: "v616".into(),
        neighbors: vec![LOOPBACK],
        import: ImportRule::Only(origin_b.networks.clone()),
        export: ExportRule::Only(origin_a.networks.clone()),
        evpn: None,
    };
    // B also announces one it does not declare, and A has one it must not export.
    let by_hand = [
        "global",
        "rib",
        "-a",
        "ipv6",
        "add",
        "2001:db8:66::/48",
        "nexthop",
        "2001:db8:ffff::b",
    ];
    b.gobgpd.cli(&by_hand).unwrap();
    let mine = [
        "global",
        "rib",
        "-a",
        "ipv6",
        "add",
        "2001:db8:99::/48",
        "nexthop",
        "2001:db8:ffff::a",
    ];
    a.gobgpd.cli(&mine).unwrap();
    writes(a.client.ensure_route_filter(&filter).await.unwrap());
    writes(a.client.ensure_origination(&origin_a).await.unwrap());
    writes(b.client.ensure_origination(&origin_b).await.unwrap());
    a.client.ensure_peer(&v6_peer(B)).await.unwrap();
    b.client.ensure_peer(&v6_peer(A)).await.unwrap();

    let counts = || async {
        let all = a
            .client
            .observe_routes(&origin_a, std::slice::from_ref(&filter))
            .await;
        all.unwrap()[&LOOPBACK].clone()
    };
    let exchanged = || async {
        let seen = counts().await;
        seen.missing_received.is_empty() && seen.missing_advertised.is_empty() && seen.received == 2
    };
    wait_until("IPv6 routes exchanged", ESTABLISH_TIMEOUT, [&a, &b], exchanged).await;
    println!("IPv6 routes exchanged after {:?}", began.elapsed());
    let seen = counts().await;
    assert_eq!(
        (seen.received, seen.accepted, seen.rejected, seen.advertised),
        (2, 1, 1, 1),
        "{seen:?}"
    );

    let on_b = rib6(&b).await;
    let from_a = on_b.iter().find(|p| p.net == net("2001:db8:a::/48"));
    let from_a = from_a.unwrap_or_else(|| panic!("2001:db8:a::/48 not on B: {on_b:?}"));
    assert_eq!(from_a.next_hop, Some(origin_a.next_hop), "{from_a:?}");
    assert!(
        !on_b.iter().any(|p| p.net == net("2001:db8:99::/48")),
        "exported: {on_b:?}"
    );
    let on_a = rib6(&a).await;
    assert!(
        on_a.iter()
            .any(|p| p.net == net("2001:db8:b::/48") && p.from == Some(LOOPBACK))
    );
    assert!(
        !on_a.iter().any(|p| p.net == net("2001:db8:66::/48")),
        "accepted: {on_a:?}"
    );

    assert_eq!(
        a.client.ensure_route_filter(&filter).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert_eq!(
        a.client.ensure_origination(&origin_a).await.unwrap(),
        RoutesOutcome::Unchanged
    );
}
