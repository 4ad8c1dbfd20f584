//! The networks between cells on the OpenDaylight backend, against the RESTCONF test server:
//! origination through the application peer's programmable RIB, the route filters it can and
//! cannot do, and the counts it reads back (src/sdn/opendaylight/routes.rs).
#[path = "support/odl_server.rs"]
mod odl_server;

use std::net::IpAddr;
use std::time::Duration;

use cellnet::sdn::opendaylight::{self, OpenDaylight};
use cellnet::sdn::routes::{ExportRule, ImportRule, IpNet};
use cellnet::sdn::{
    OpenDaylightTarget, Origination, PeerConfig, RemoveOutcome, RouteFilter, RoutesOutcome, SdnBackend,
    SdnError,
};
use odl_server::{OdlConfig, OdlServer, YANG_JSON};
use serde_json::json;

const LOCAL_AS: u32 = 65020;
const APP_PEER: &str = "192.0.2.250";
const NEXT_HOP: &str = "198.51.100.20";
const MARK: u32 = 0x5eed_0001;
const V4_TABLE: &str = "tables=bgp-types%3Aipv4-address-family,bgp-types%3Aunicast-subsequent-address-family\
                        /bgp-inet:ipv4-routes";

fn server() -> OdlServer {
    OdlServer::start(OdlConfig::new(LOCAL_AS, "192.0.2.20"))
}

fn backend(server: &OdlServer, application_peer: Option<&str>) -> OpenDaylight {
    cellnet::tls::install_crypto_provider();
    let mut target = opendaylight::target(server.url(), "admin", "admin");
    target.open_daylight = Some(OpenDaylightTarget {
        application_peer: application_peer.map(|a| a.parse().unwrap()),
        ..target.open_daylight.unwrap()
    });
    OpenDaylight::connect(&target, Duration::from_secs(3)).expect("client")
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

fn origination(networks: &[&str]) -> Origination {
    Origination {
        mark: MARK,
        next_hop: NEXT_HOP.parse().unwrap(),
        networks: nets(networks),
        owner: "cellnet:ns/cell1-gw".into(),
    }
}

/// Every write so far, `METHOD path -> status`, paths below `/rests/data/`.
fn writes(server: &OdlServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| {
            let path = r.path.trim_start_matches("/rests/data/");
            format!("{} {path} -> {}", r.method, r.status)
        })
        .collect()
}

fn updated(writes: &[&str]) -> RoutesOutcome {
    RoutesOutcome::Updated {
        writes: writes.iter().map(|w| w.to_string()).collect(),
    }
}

fn key(prefix: &str, path_id: u32) -> (String, u32) {
    (prefix.to_owned(), path_id)
}

#[tokio::test]
async fn originates_into_the_application_rib_and_never_touches_other_routes() {
    let server = server();
    let odl = backend(&server, Some(APP_PEER));
    // An operator's routes in the same RIB: one for a prefix cellnet also announces.
    server.add_app_route_by_hand(APP_PEER, "203.0.113.0/24", 0, "198.51.100.99");
    server.add_app_route_by_hand(APP_PEER, "192.0.2.0/26", 42, "198.51.100.99");

    let wanted = origination(&["203.0.113.0/24", "192.0.2.128/25"]);
    assert_eq!(
        odl.ensure_origination(&wanted).await.unwrap(),
        updated(&[
            "create application peer 192.0.2.250",
            "add route 192.0.2.128/25",
            "add route 203.0.113.0/24"
        ])
    );
    let requests = server.requests();
    let posts: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts[0].path, format!("{}/neighbors", server.bgp_root()));
    assert_eq!(
        posts[0].body.clone().unwrap(),
        json!({"neighbor": [{"neighbor-address": "192.0.2.250", "config": {"peer-group": "application-peers"}}]}),
        "the guide's \"Application Peer configuration\""
    );
    assert_eq!(
        posts[1].path,
        format!("/rests/data/bgp-rib:application-rib=192.0.2.250/{V4_TABLE}"),
        "the RFC 8040 form of the guide's \"Programming\" URL"
    );
    assert_eq!(posts[1].content_type.as_deref(), Some(YANG_JSON));
    assert_eq!(
        posts[1].body.clone().unwrap(),
        json!({"bgp-inet:ipv4-route": [{
            "route-key": "192.0.2.128/25", "path-id": MARK, "prefix": "192.0.2.128/25",
            "attributes": {"origin": {"value": "igp"}, "local-pref": {"pref": 100},
                           "ipv4-next-hop": {"global": NEXT_HOP}}
        }]})
    );
    assert_eq!(
        server.app_route_keys(APP_PEER),
        [
            key("192.0.2.0/26", 42),
            key("192.0.2.128/25", MARK),
            key("203.0.113.0/24", 0),
            key("203.0.113.0/24", MARK)
        ]
    );

    // Steady state: reads only (the peer and the two tables).
    server.clear_requests();
    assert_eq!(
        odl.ensure_origination(&wanted).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert!(writes(&server).is_empty(), "{:?}", writes(&server));
    assert_eq!(server.requests().len(), 3);

    // A network removed from the endpoint: only that route goes.
    let fewer = origination(&["203.0.113.0/24"]);
    assert_eq!(
        odl.ensure_origination(&fewer).await.unwrap(),
        updated(&["delete route 192.0.2.128/25"])
    );
    assert_eq!(
        writes(&server),
        [format!(
            "DELETE bgp-rib:application-rib=192.0.2.250/{V4_TABLE}/bgp-inet:ipv4-route=192.0.2.128%2F25,{MARK} -> 204"
        )]
    );
    assert_eq!(
        server.app_route_keys(APP_PEER),
        [
            key("192.0.2.0/26", 42),
            key("203.0.113.0/24", 0),
            key("203.0.113.0/24", MARK)
        ]
    );

    // A new next hop is one PUT of that route.
    server.clear_requests();
    let moved = Origination {
        next_hop: "198.51.100.21".parse().unwrap(),
        ..fewer.clone()
    };
    assert_eq!(
        odl.ensure_origination(&moved).await.unwrap(),
        updated(&["replace route 203.0.113.0/24 (next hop)"])
    );
    let put = server.requests().into_iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.status, 204);
    assert_eq!(
        put.body.unwrap()["bgp-inet:ipv4-route"][0]["attributes"]["ipv4-next-hop"]["global"],
        "198.51.100.21"
    );

    // Withdrawn: ours only; the operator's routes stay, so does the peer that carries them
    // (although cellnet created it).
    assert_eq!(
        odl.withdraw_origination(MARK).await.unwrap(),
        updated(&["delete route 203.0.113.0/24"])
    );
    assert_eq!(
        server.app_route_keys(APP_PEER),
        [key("192.0.2.0/26", 42), key("203.0.113.0/24", 0)]
    );
    assert!(server.neighbor(APP_PEER).is_some());
    assert_eq!(
        odl.withdraw_origination(MARK).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    // A controller's ledger record would remove it like any neighbour cellnet created.
    let app_peer: IpAddr = APP_PEER.parse().unwrap();
    assert_eq!(
        odl.remove_peer(app_peer, "cellnet:ns/cell1-gw").await.unwrap(),
        RemoveOutcome::Removed
    );
}

#[tokio::test]
async fn a_route_deleted_by_hand_is_restored_and_ipv6_keys_are_encoded() {
    let server = server();
    let odl = backend(&server, Some(APP_PEER));
    let v6 = Origination {
        next_hop: "2001:db8::20".parse().unwrap(),
        ..origination(&["2001:db8:20::/48"])
    };
    odl.ensure_origination(&v6).await.unwrap();
    let stored = server.app_routes(APP_PEER);
    assert_eq!(stored[0]["attributes"]["ipv6-next-hop"]["global"], "2001:db8::20");
    assert!(server.remove_app_route_by_hand(APP_PEER, "2001:db8:20::/48", MARK));
    server.clear_requests();
    assert_eq!(
        odl.ensure_origination(&v6).await.unwrap(),
        updated(&["add route 2001:db8:20::/48"])
    );
    // The last route gone, the application peer cellnet created goes too: nothing is left.
    assert_eq!(
        odl.withdraw_origination(MARK).await.unwrap(),
        updated(&[
            "delete route 2001:db8:20::/48",
            "delete application peer 192.0.2.250"
        ])
    );
    let deletes = writes(&server);
    assert!(
        deletes[1].ends_with("/bgp-inet:ipv6-route=2001%3Adb8%3A20%3A%3A%2F48,1592590337 -> 204"),
        "{deletes:?}"
    );
    assert!(
        deletes[2].ends_with("/neighbors/neighbor=192.0.2.250 -> 204"),
        "{deletes:?}"
    );
    assert!(server.app_routes(APP_PEER).is_empty());
    assert!(server.neighbor(APP_PEER).is_none());
    assert!(server.neighbor_addresses().is_empty());
}

#[tokio::test]
async fn origination_needs_an_application_peer_and_never_takes_a_regular_neighbour() {
    let server = server();
    let without = backend(&server, None);
    let err = without
        .ensure_origination(&origination(&["203.0.113.0/24"]))
        .await
        .unwrap_err();
    assert!(matches!(err, SdnError::Unsupported(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("set spec.sdn.openDaylight.applicationPeer"),
        "{err}"
    );
    assert!(server.requests().is_empty(), "refused before any request");
    assert_eq!(
        without.withdraw_origination(MARK).await.unwrap(),
        RoutesOutcome::Unchanged
    );

    // A regular neighbour at that address is someone's session: a conflict, nothing written.
    server.add_neighbor_by_hand(APP_PEER, 65001);
    let odl = backend(&server, Some(APP_PEER));
    let outcome = odl
        .ensure_origination(&origination(&["203.0.113.0/24"]))
        .await
        .unwrap();
    let RoutesOutcome::Conflict { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("not an application peer"), "{reason}");
    assert!(writes(&server).is_empty(), "{:?}", writes(&server));

    // An operator's application peer is used as it is.
    server.remove_neighbor_by_hand(APP_PEER);
    server.add_application_peer_by_hand(APP_PEER);
    assert_eq!(
        odl.ensure_origination(&origination(&["203.0.113.0/24"]))
            .await
            .unwrap(),
        updated(&["add route 203.0.113.0/24"])
    );
    assert_eq!(
        writes(&server),
        [format!(
            "POST bgp-rib:application-rib=192.0.2.250/{V4_TABLE} -> 201"
        )]
    );
    // Withdrawn, the RIB empty: the operator's peer stays.
    assert_eq!(
        odl.withdraw_origination(MARK).await.unwrap(),
        updated(&["delete route 203.0.113.0/24"])
    );
    assert!(server.neighbor(APP_PEER).is_some());
}

fn filter(import: ImportRule, export: ExportRule) -> RouteFilter {
    RouteFilter {
        key: "0a1b2c3d".into(),
        neighbors: vec!["198.51.100.11".parse().unwrap()],
        import,
        export,
        evpn: None,
    }
}

#[tokio::test]
async fn only_import_any_is_supported_and_needs_no_write() {
    let server = server();
    let odl = backend(&server, Some(APP_PEER));
    let ours = nets(&["203.0.113.0/24"]);
    let remote = nets(&["192.0.2.0/26"]);
    assert_eq!(
        odl.ensure_route_filter(&filter(ImportRule::Any, ExportRule::Only(ours.clone())))
            .await
            .unwrap(),
        RoutesOutcome::Unchanged
    );
    // spec.routes.import: RemoteNetworks (the default) and None.
    for import in [ImportRule::Only(remote), ImportRule::None] {
        let err = odl
            .ensure_route_filter(&filter(import, ExportRule::Only(ours.clone())))
            .await
            .unwrap_err();
        assert!(matches!(err, SdnError::Unsupported(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("bgp-user-guide-rib-config-policies.rst")
                && text.contains("spec.routes.import: Any"),
            "{text}"
        );
    }
    let err = odl
        .ensure_route_filter(&filter(ImportRule::Any, ExportRule::None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.routes.export: Networks"), "{err}");
    assert_eq!(
        odl.remove_route_filter("0a1b2c3d").await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert!(server.requests().is_empty(), "filters read and write nothing");
}

#[tokio::test]
async fn counts_come_from_the_neighbours_family_state_and_tables() {
    let server = server();
    let odl = backend(&server, Some(APP_PEER));
    let neighbor: IpAddr = "198.51.100.11".parse().unwrap();
    let peer = PeerConfig {
        owned_record: true,
        ..PeerConfig::new(neighbor, 65011, NEXT_HOP.parse().unwrap(), "cellnet:ns/a-b")
    };
    odl.ensure_peer(&peer).await.unwrap();
    let wanted = origination(&["203.0.113.0/24", "192.0.2.128/25"]);
    odl.ensure_origination(&wanted).await.unwrap();
    server.add_app_route_by_hand(APP_PEER, "192.0.2.0/26", 42, "198.51.100.99");
    server.set_received("198.51.100.11", &["192.0.2.64/26"], &["198.51.100.0/24"]);

    // Export only one of the two networks: the other is sent anyway (OpenDaylight does not
    // filter), the one exported is not missing.
    let any = filter(ImportRule::Any, ExportRule::Only(nets(&["203.0.113.0/24"])));
    server.clear_requests();
    let counts = odl
        .observe_routes(&wanted, std::slice::from_ref(&any))
        .await
        .unwrap();
    let c = &counts[&neighbor];
    assert_eq!((c.advertised, c.received, c.accepted, c.rejected), (3, 2, 1, 1));
    assert!(
        c.missing_advertised.is_empty() && c.missing_received.is_empty(),
        "{c:?}"
    );
    assert!(!c.prefix_limit_hit);
    let reads: Vec<String> = server.requests().iter().map(|r| r.short()).collect();
    assert_eq!(
        reads.len(),
        2,
        "family state and one Adj-RIB-Out table: {reads:?}"
    );
    assert_eq!(
        server.requests()[0].query.as_deref(),
        Some("content=nonconfig"),
        "operational state"
    );

    // Named imports: what the neighbour did not send (or was not installed) is missing.
    let named = filter(
        ImportRule::Only(nets(&["192.0.2.64/26", "192.0.2.0/27"])),
        ExportRule::Only(nets(&["203.0.113.0/24"])),
    );
    let counts = odl.observe_routes(&wanted, &[named]).await.unwrap();
    assert_eq!(counts[&neighbor].missing_received, nets(&["192.0.2.0/27"]));

    // No session: no prefix state, nothing sent, the exported network missing.
    server.set_session_state("198.51.100.11", "ACTIVE");
    server.clear_requests();
    let counts = odl.observe_routes(&wanted, &[any]).await.unwrap();
    let c = &counts[&neighbor];
    assert_eq!((c.advertised, c.received, c.accepted, c.rejected), (0, 0, 0, 0));
    assert_eq!(c.missing_advertised, nets(&["203.0.113.0/24"]));
    assert_eq!(server.requests().len(), 1, "no table read without a session");
}
