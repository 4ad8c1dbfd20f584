//! The EVPN part of a route filter (L2 segments between cells, issue #22) on real gobgpd: B
//! announces EVPN routes of two VNIs; A, with a filter stretching one of them, accepts exactly
//! that one, keeps it so under drift with zero writes in steady state, and a removal leaves no
//! cellnet object behind.
use std::net::IpAddr;
use std::time::Instant;

use cellnet::sdn::AddressFamily;
use cellnet::sdn::routes::{
    EvpnFilter, ExportRule, ImportRule, RouteFilter, RouteTargetMatch, RoutesOutcome,
};
use cellnet::sdn::{PeerConfig, SdnBackend};

use crate::routes::*;

const A: u8 = 173;
const B: u8 = 174;

fn evpn_peer(local: u8, remote: u8) -> PeerConfig {
    PeerConfig {
        families: vec![AddressFamily::Ipv4Unicast, AddressFamily::L2vpnEvpn],
        ..peer(local, remote)
    }
}

/// B's own EVPN routes for `vni`: an inclusive-multicast (type 3) route for its VTEP and a MAC
/// (type 2), with the route target `<B's AS>:<vni>` as FRR derives it.
fn announce(b: &Cell, vni: u32) {
    let mac = format!("02:00:00:00:{:02x}:01", vni % 256);
    let (rd, rt, vni) = (
        format!("198.51.100.{B}:{vni}"),
        format!("65{B}:{vni}"),
        vni.to_string(),
    );
    let vtep = format!("198.51.100.{B}");
    for args in [
        vec![
            "global",
            "rib",
            "-a",
            "evpn",
            "add",
            "multicast",
            &vtep,
            "etag",
            "0",
            "rd",
            &rd,
            "rt",
            &rt,
        ],
        vec![
            "global", "rib", "-a", "evpn", "add", "macadv", &mac, "0.0.0.0", "etag", "0", "label", &vni,
            "rd", &rd, "rt", &rt,
        ],
    ] {
        let mut args = args;
        args.extend(["encap", "vxlan", "nexthop", &vtep]);
        b.gobgpd.cli(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
}

/// How many EVPN destinations of A's table came from B with the route distinguisher of `vni`.
fn evpn_routes(a: &Cell, vni: u32) -> usize {
    let rib = cli_json(a, &["global", "rib", "-a", "evpn", "-j"]);
    let rd = format!("[rd:198.51.100.{B}:{vni}]");
    rib.as_object()
        .map(|m| m.keys().filter(|k| k.contains(&rd)).count())
        .unwrap_or(0)
}

/// Takes statement `name` out of `cellnet-import` and deletes it, as an operator might.
async fn delete_statement(a: &Cell, name: &str) {
    use cellnet::sdn::gobgp::proto;
    let request = proto::DeletePolicyRequest {
        policy: Some(proto::Policy {
            name: "cellnet-import".into(),
            statements: vec![proto::Statement {
                name: name.into(),
                ..Default::default()
            }],
        }),
        preserve_statements: false,
        all: false,
    };
    a.raw.clone().delete_policy(request).await.unwrap();
}

fn filter(ab: IpAddr) -> RouteFilter {
    RouteFilter {
        key: "evpn22".into(),
        neighbors: vec![ab],
        import: ImportRule::Any,
        export: ExportRule::None,
        evpn: Some(EvpnFilter {
            import: vec![RouteTargetMatch::Vni(100)],
            export: vec![],
        }),
    }
}

#[tokio::test]
async fn only_the_stretched_vnis_are_accepted_from_the_other_cell() {
    let began = Instant::now();
    let (a, b) = (cell(A).await, cell(B).await);
    let ab = IpAddr::V4(addr(B));
    a.client.ensure_peer(&evpn_peer(A, B)).await.unwrap();
    b.client.ensure_peer(&evpn_peer(B, A)).await.unwrap();
    wait_until("A-B Established", ESTABLISH_TIMEOUT, [&a, &b], || {
        established(&a, ab)
    })
    .await;
    announce(&b, 100);
    announce(&b, 200);
    wait_for("both VNIs at A before any filter", [&a, &b], || async {
        evpn_routes(&a, 100) == 2 && evpn_routes(&a, 200) == 2
    })
    .await;

    let f = filter(ab);
    let made = writes(a.client.ensure_route_filter(&f).await.unwrap());
    println!("filter written: {made:?}");
    assert!(made.iter().any(|w| w.contains("in-evpn-ok")), "{made:?}");
    wait_for("only VNI 100 accepted", [&a, &b], || async {
        evpn_routes(&a, 100) == 2 && evpn_routes(&a, 200) == 0
    })
    .await;
    let seen = a.client.observe_segments(ab).await.unwrap();
    let vtep: IpAddr = format!("198.51.100.{B}").parse().unwrap();
    assert_eq!(seen.by_vni.keys().copied().collect::<Vec<_>>(), [100], "{seen:?}");
    assert_eq!(
        seen.by_vni[&100].vteps.iter().copied().collect::<Vec<_>>(),
        [vtep]
    );
    assert_eq!(
        seen.by_vni[&100].macs.iter().cloned().collect::<Vec<_>>(),
        ["02:00:00:00:64:01"]
    );
    assert_eq!(seen.rejected, 2, "VNI 200's routes are rejected, and counted");
    assert_eq!(
        a.client.ensure_route_filter(&f).await.unwrap(),
        RoutesOutcome::Unchanged
    );

    // Drift: the accept statement removed by hand rejects everything; ensure puts it back first.
    let accept = "cellnet-evpn22-in-evpn-ok";
    delete_statement(&a, accept).await;
    wait_for("drift takes VNI 100 away", [&a, &b], || async {
        a.gobgpd.cli(&["neighbor", &ab.to_string(), "softresetin"]).ok();
        evpn_routes(&a, 100) == 0
    })
    .await;
    let repaired = writes(a.client.ensure_route_filter(&f).await.unwrap());
    assert!(repaired.iter().any(|w| w.contains(accept)), "{repaired:?}");
    wait_for("VNI 100 back after the repair", [&a, &b], || async {
        evpn_routes(&a, 100) == 2
    })
    .await;
    assert_eq!(
        a.client.ensure_route_filter(&f).await.unwrap(),
        RoutesOutcome::Unchanged
    );

    // Nothing stretched any more (spec.l2 kept): no set, only the reject; both VNIs rejected
    // over the same session (the family, and so the session, are left alone).
    let nothing = RouteFilter {
        evpn: Some(EvpnFilter {
            import: vec![],
            export: vec![],
        }),
        ..f.clone()
    };
    let shrunk = writes(a.client.ensure_route_filter(&nothing).await.unwrap());
    println!("accepting nothing: {shrunk:?}");
    wait_for("no VNI accepted", [&a, &b], || async {
        evpn_routes(&a, 100) == 0 && evpn_routes(&a, 200) == 0
    })
    .await;
    assert_eq!(a.client.observe_segments(ab).await.unwrap().rejected, 4);
    assert!(
        !cellnet_names(&a)
            .iter()
            .any(|n| n.ends_with("-in-rt") || n.ends_with("-in-evpn-ok")),
        "no set or accept statement when nothing is accepted: {:?}",
        cellnet_names(&a)
    );
    assert_eq!(
        a.client.ensure_route_filter(&nothing).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    // And a segment stretched again: the set comes back before its accept statement.
    writes(a.client.ensure_route_filter(&f).await.unwrap());
    wait_for("VNI 100 accepted again", [&a, &b], || async {
        evpn_routes(&a, 100) == 2 && evpn_routes(&a, 200) == 0
    })
    .await;
    assert!(established(&a, ab).await, "the session is still up");

    writes(a.client.remove_route_filter(&f.key).await.unwrap());
    assert_eq!(
        cellnet_names(&a),
        Vec::<String>::new(),
        "nothing of cellnet's left"
    );
    wait_for("both VNIs again without the filter", [&a, &b], || async {
        a.gobgpd.cli(&["neighbor", &ab.to_string(), "softresetin"]).ok();
        evpn_routes(&a, 100) == 2 && evpn_routes(&a, 200) == 2
    })
    .await;
    println!("evpn filter scenario done in {:?}", began.elapsed());
}
