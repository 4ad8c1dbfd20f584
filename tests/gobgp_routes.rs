//! The GoBGP routes API (issue #16) on two real gobgpd: A is the speaker cellnet manages, B is
//! the remote cell. One scenario, in phases, because a session takes 6-9 s to come up:
//! origination, import and export filtering, the operator's own policies and paths left alone,
//! drift repaired with zero writes in steady state, a narrower export, and a clean removal.
//! Beside it, in `gobgp_routes/`: the prefix limit, route events from the change stream, the
//! gRPC cost of a steady reconcile, and IPv6.
//!
//! The sessions run on 127.0.0.161/.162 (BGP port 1790, like tests/gobgp.rs) but the next hops
//! are TEST-NET addresses: GoBGP treats a 127/8 next hop as invalid and drops the path ("invalid
//! nexthop address"). Nothing forwards packets here, so the next hops need not be reachable.
#[path = "support/gobgp.rs"]
mod gobgp_fixture;
#[path = "support/routes.rs"]
mod routes;

#[path = "gobgp_routes/events.rs"]
mod events;
#[path = "gobgp_routes/evpn.rs"]
mod evpn;
#[path = "gobgp_routes/ipv6.rs"]
mod ipv6;
#[path = "gobgp_routes/prefix_limit.rs"]
mod prefix_limit;
#[path = "gobgp_routes/steady_cost.rs"]
mod steady_cost;

use std::net::IpAddr;
use std::time::Instant;

use cellnet::sdn::routes::{ExportRule, ImportRule, Origination, RouteFilter, RoutesOutcome, mark_of};
use cellnet::sdn::{PeerOutcome, SdnBackend, SdnError};
use routes::*;
use serde_json::Value;

/// The two cells and what cellnet wants on A.
struct Scenario {
    a: Cell,
    b: Cell,
    /// B's address: A's neighbour.
    ab: IpAddr,
    origin_a: Origination,
    filter: RouteFilter,
    /// The operator's objects on A as they were before cellnet's first call.
    untouched: Value,
    began: Instant,
}

#[tokio::test]
async fn routes_between_two_cells() {
    let s = set_up().await;
    origination_and_filters(&s).await;
    drift_is_repaired(&s).await;
    let s = withdrawn_network(s).await;
    narrower_export(&s).await;
    removal(&s).await;
    println!("scenario done in {:?}", s.began.elapsed());
}

/// The operator's objects on A, cellnet's on both, then the peers (so that nothing cellnet
/// wrote needed a reset) up to Established.
async fn set_up() -> Scenario {
    let began = Instant::now();
    let (a, b) = (cell(161).await, cell(162).await);
    let a_nets = nets(&["192.0.2.128/26", "192.0.2.192/26"]);
    let origin_a = Origination {
        mark: mark_of("endpoint-a-uid"),
        next_hop: "192.0.2.11".parse().unwrap(),
        networks: a_nets.clone(),
        owner: "cellnet:test/a".into(),
    };
    let origin_b = Origination {
        mark: mark_of("endpoint-b-uid"),
        next_hop: "192.0.2.12".parse().unwrap(),
        networks: nets(&["203.0.113.128/26", "203.0.113.192/26"]),
        owner: "cellnet:test/b".into(),
    };
    let ab = IpAddr::V4(addr(162));
    let filter = RouteFilter {
        key: KEY.into(),
        neighbors: vec![ab],
        import: ImportRule::Only(origin_b.networks.clone()),
        export: ExportRule::Only(a_nets),
        evpn: None,
    };
    operator_setup(&a);
    let untouched = operator_view(&a);
    // B announces a network it does not declare, by hand: its own path (identifier 0).
    let by_hand = ["global", "rib", "add", "203.0.113.64/26", "nexthop", "192.0.2.12"];
    b.gobgpd.cli(&by_hand).unwrap();

    writes(a.client.ensure_route_filter(&filter).await.unwrap());
    writes(a.client.ensure_origination(&origin_a).await.unwrap());
    writes(b.client.ensure_origination(&origin_b).await.unwrap());
    assert_eq!(
        operator_view(&a),
        untouched,
        "cellnet's first ensure touched the operator's objects"
    );
    assert_eq!(
        import_order(&a),
        ["cellnet-import", "op-lp", "op-accept"],
        "ours first, the operator's in their order"
    );

    let created = a.client.ensure_peer(&peer(161, 162)).await.unwrap();
    assert_eq!(created.outcome, PeerOutcome::Created);
    let created = b.client.ensure_peer(&peer(162, 161)).await.unwrap();
    assert_eq!(created.outcome, PeerOutcome::Created);
    let up = || established(&a, ab);
    wait_until("A-B session Established", ESTABLISH_TIMEOUT, [&a, &b], up).await;
    println!("established after {:?}", began.elapsed());
    Scenario {
        a,
        b,
        ab,
        origin_a,
        filter,
        untouched,
        began,
    }
}

fn import_order(a: &Cell) -> Vec<String> {
    let assignment = cli_json(a, &["global", "policy", "import", "-j"]);
    let policies = assignment["policies"].as_array().cloned().unwrap_or_default();
    policies
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// (1) A's networks reach B from A with the endpoint's next hop, the operator's path on A does
/// not (export filter). (2) What B declares is accepted, what it only announces is not, and is
/// counted as rejected. (3) cellnet's reject wins over the operator's accept-all, and the
/// operator's local-pref still applies to what cellnet lets through.
async fn origination_and_filters(s: &Scenario) {
    let (a, b) = (&s.a, &s.b);
    for prefix in ["192.0.2.128/26", "192.0.2.192/26"] {
        wait_for(prefix, [a, b], || has_route(b, prefix, addr(161), "192.0.2.11")).await;
    }
    assert!(
        lacks_route(b, "203.0.113.0/24").await,
        "the operator's path leaked to B"
    );
    for prefix in ["203.0.113.128/26", "203.0.113.192/26"] {
        wait_for(prefix, [a, b], || has_route(a, prefix, addr(162), "192.0.2.12")).await;
    }
    let filters = std::slice::from_ref(&s.filter);
    let counts = async || a.client.observe_routes(&s.origin_a, filters).await.unwrap()[&s.ab].clone();
    wait_for("B's 3 paths counted on A", [a, b], || async {
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
    let rib = loc_rib(a).await;
    assert!(
        !rib.iter().any(|p| p.net == net("203.0.113.64/26")),
        "undeclared network accepted: {rib:?}"
    );
    let accepted = rib.iter().find(|p| p.net == net("203.0.113.128/26")).unwrap();
    assert_eq!(accepted.local_pref, Some(200), "{accepted:?}");
}

/// (4) Steady state writes nothing; a path withdrawn, a statement deleted and the policy moved
/// last behind cellnet's back are put back by the same calls, which then write nothing again.
async fn drift_is_repaired(s: &Scenario) {
    let (a, b, ab) = (&s.a, &s.b, s.ab);
    assert_eq!(
        a.client.ensure_route_filter(&s.filter).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert_eq!(
        a.client.ensure_origination(&s.origin_a).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    // The poll's digest of cellnet's policy objects: stable while nothing changes, different
    // after the hand changes, stable again once they are repaired (the statements' order may
    // differ from before: a repaired statement goes last in cellnet's policy).
    let digest = a.client.routes_digest().await.unwrap();
    assert_eq!(a.client.routes_digest().await.unwrap(), digest);
    drift(a, s.origin_a.mark).await;
    assert_ne!(
        a.client.routes_digest().await.unwrap(),
        digest,
        "hand changes unseen by the digest"
    );
    wait_for("192.0.2.128/26 withdrawn by hand", [a, b], || {
        lacks_route(b, "192.0.2.128/26")
    })
    .await;

    let repaired = writes(a.client.ensure_origination(&s.origin_a).await.unwrap());
    assert_eq!(repaired, ["originate 192.0.2.128/26"]);
    let repaired = writes(a.client.ensure_route_filter(&s.filter).await.unwrap());
    for expected in [
        // GoBGP 3.10 keeps a statement removed from its policy defined: cellnet deletes it first.
        format!("delete left-over statement cellnet-{KEY}-in-v4"),
        format!("add statement cellnet-{KEY}-in-v4"),
        "put cellnet-import first".to_owned(),
        format!("soft reset in {ab}"),
    ] {
        assert!(repaired.contains(&expected), "{expected} not in {repaired:?}");
    }
    let back = || has_route(b, "192.0.2.128/26", addr(161), "192.0.2.11");
    wait_for("192.0.2.128/26 back on B", [a, b], back).await;
    let repaired = a.client.routes_digest().await.unwrap();
    assert_eq!(
        a.client.routes_digest().await.unwrap(),
        repaired,
        "repaired: stable again"
    );
    assert_eq!(
        a.client.ensure_route_filter(&s.filter).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert_eq!(
        a.client.ensure_origination(&s.origin_a).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert!(
        lacks_route(a, "203.0.113.64/26").await,
        "the repaired filter let 203.0.113.64/26 in"
    );
    assert_eq!(
        operator_view(a),
        s.untouched,
        "a repair touched the operator's objects"
    );
}

/// (5) A network taken out of the origination is withdrawn from B, and only that one.
async fn withdrawn_network(mut s: Scenario) -> Scenario {
    s.origin_a.networks = nets(&["192.0.2.128/26"]);
    let done = writes(s.a.client.ensure_origination(&s.origin_a).await.unwrap());
    assert_eq!(done, ["withdraw 192.0.2.192/26"]);
    let (a, b) = (&s.a, &s.b);
    wait_for("192.0.2.192/26 withdrawn", [a, b], || {
        lacks_route(b, "192.0.2.192/26")
    })
    .await;
    assert!(has_route(b, "192.0.2.128/26", addr(161), "192.0.2.11").await);
    s
}

/// A narrower export: only a session reset takes back what was sent (GoBGP's soft reset out
/// withdraws nothing). A wider
/// one: a soft reset out sends it again, without a flap.
async fn narrower_export(s: &Scenario) {
    let (a, b, ab) = (&s.a, &s.b, s.ab);
    let closed = RouteFilter {
        export: ExportRule::None,
        ..s.filter.clone()
    };
    let done = writes(a.client.ensure_route_filter(&closed).await.unwrap());
    assert!(done.contains(&format!("hard reset {ab}")), "{done:?}");
    wait_for("192.0.2.128/26 taken back", [a, b], || {
        lacks_route(b, "192.0.2.128/26")
    })
    .await;
    let up = || established(a, ab);
    wait_until("session back up", AFTER_RESET_TIMEOUT, [a, b], up).await;
    println!("session back after the hard reset at {:?}", s.began.elapsed());
    assert!(
        lacks_route(b, "192.0.2.128/26").await,
        "sent again despite export None"
    );

    let done = writes(a.client.ensure_route_filter(&s.filter).await.unwrap());
    assert!(done.contains(&format!("soft reset out {ab}")), "{done:?}");
    assert!(!done.iter().any(|w| w.starts_with("hard reset")), "{done:?}");
    let sent = || has_route(b, "192.0.2.128/26", addr(161), "192.0.2.11");
    wait_for("192.0.2.128/26 sent again", [a, b], sent).await;
}

/// Removal leaves nothing of cellnet's on A, the operator's objects as they were, and B's
/// undeclared network accepted again (soft reset in after the removal).
async fn removal(s: &Scenario) {
    let (a, b) = (&s.a, &s.b);
    let mark = s.origin_a.mark;
    writes(a.client.remove_route_filter(KEY).await.unwrap());
    writes(a.client.withdraw_origination(mark).await.unwrap());
    assert_eq!(cellnet_names(a), Vec::<String>::new());
    let rib = loc_rib(a).await;
    assert!(
        !rib.iter().any(|p| p.from.is_none() && p.identifier == mark),
        "{rib:?}"
    );
    assert_eq!(
        operator_view(a),
        s.untouched,
        "removal touched the operator's objects"
    );
    wait_for("A's networks gone from B", [a, b], || {
        lacks_route(b, "192.0.2.128/26")
    })
    .await;
    let accepted = || has_route(a, "203.0.113.64/26", addr(162), "192.0.2.12");
    wait_for("203.0.113.64/26 accepted", [a, b], accepted).await;
    assert_eq!(
        a.client.remove_route_filter(KEY).await.unwrap(),
        RoutesOutcome::Unchanged
    );
    assert_eq!(
        a.client.withdraw_origination(mark).await.unwrap(),
        RoutesOutcome::Unchanged
    );
}

/// A path the speaker's own import policy drops as it is added (GoBGP answers OK and keeps
/// nothing) is a conflict naming it; the other networks are originated. Invalid requests are
/// refused before anything is written.
#[tokio::test]
async fn a_dropped_path_is_a_conflict_and_bad_requests_write_nothing() {
    let a = cell(163).await;
    for args in [
        &["policy", "prefix", "add", "op-blocked", "192.0.2.64/26"][..],
        &["policy", "statement", "add", "op-drop-st"],
        &[
            "policy",
            "statement",
            "op-drop-st",
            "add",
            "condition",
            "prefix",
            "op-blocked",
        ],
        &["policy", "statement", "op-drop-st", "add", "action", "reject"],
        &["policy", "add", "op-drop", "op-drop-st"],
        &["global", "policy", "import", "add", "op-drop"],
    ] {
        a.gobgpd.cli(args).unwrap_or_else(|e| panic!("{e}"));
    }
    let origination = Origination {
        mark: mark_of("endpoint-c-uid"),
        next_hop: "192.0.2.13".parse().unwrap(),
        networks: nets(&["192.0.2.0/26", "192.0.2.64/26"]),
        owner: "cellnet:test/c".into(),
    };
    let outcome = a.client.ensure_origination(&origination).await.unwrap();
    let RoutesOutcome::Conflict { reason } = outcome else {
        panic!("expected a conflict, got {outcome:?}")
    };
    assert!(
        reason.contains("192.0.2.64/26") && !reason.contains("192.0.2.0/26"),
        "{reason}"
    );
    let rib = loc_rib(&a).await;
    assert!(
        rib.iter()
            .any(|p| p.net == net("192.0.2.0/26") && p.identifier == origination.mark)
    );

    let invalid = [
        Origination {
            mark: 0,
            ..origination.clone()
        },
        Origination {
            networks: nets(&["2001:db8::/48"]),
            ..origination.clone()
        },
    ];
    for bad in invalid {
        let err = a.client.ensure_origination(&bad).await.unwrap_err();
        assert!(matches!(err, SdnError::InvalidConfig(_)), "{err}");
    }
    let filter = RouteFilter {
        key: "cd16".into(),
        neighbors: vec![],
        import: ImportRule::None,
        export: ExportRule::None,
        evpn: None,
    };
    for bad in [
        filter.clone(),
        RouteFilter {
            key: "cd-16".into(),
            neighbors: vec![IpAddr::V4(addr(164))],
            ..filter.clone()
        },
    ] {
        let err = a.client.ensure_route_filter(&bad).await.unwrap_err();
        assert!(matches!(err, SdnError::InvalidConfig(_)), "{err}");
    }
    assert_eq!(cellnet_names(&a), Vec::<String>::new());
}
