//! The prefix limit (`PeerConfig.max_prefixes`) on real gobgpd: a neighbour that sends more trips
//! it, status and the peer say why, and only a higher limit brings the session back.
use std::net::IpAddr;
use std::time::Instant;

use cellnet::sdn::routes::{ExportRule, ImportRule, Origination, RouteCounts, RouteFilter, mark_of};
use cellnet::sdn::{PeerConfig, PeerOutcome, SdnBackend};

use crate::routes::*;

const A: u8 = 165;
const B: u8 = 166;

fn limited(max: u32) -> PeerConfig {
    PeerConfig {
        max_prefixes: Some(max),
        ..peer(A, B)
    }
}

async fn counts(a: &Cell, origination: &Origination, filter: &RouteFilter) -> RouteCounts {
    let all = a
        .client
        .observe_routes(origination, std::slice::from_ref(filter))
        .await;
    all.unwrap()[&filter.neighbors[0]].clone()
}

/// The session's uptime as GoBGP reports it: it changes only when the session was reset.
async fn uptime(a: &Cell, neighbor: IpAddr) -> Option<i64> {
    let request = cellnet::sdn::gobgp::proto::ListPeerRequest {
        address: neighbor.to_string(),
        enable_advertised: false,
    };
    let mut stream = a.raw.clone().list_peer(request).await.unwrap().into_inner();
    let peer = stream.message().await.unwrap()?.peer?;
    Some(peer.timers?.state?.uptime?.seconds)
}

#[tokio::test]
async fn more_prefixes_than_the_limit_shut_the_session_until_the_limit_is_raised() {
    let began = Instant::now();
    let (a, b) = (cell(A).await, cell(B).await);
    let ab = IpAddr::V4(addr(B));
    let sent = nets(&["203.0.113.0/26", "203.0.113.64/26", "203.0.113.128/26"]);
    let origin_b = Origination {
        mark: mark_of("limit-b"),
        next_hop: "192.0.2.66".parse().unwrap(),
        networks: sent,
        owner: "cellnet:test/limit-b".into(),
    };
    writes(b.client.ensure_origination(&origin_b).await.unwrap());
    let origin_a = Origination {
        mark: mark_of("limit-a"),
        next_hop: "192.0.2.65".parse().unwrap(),
        networks: Vec::new(),
        owner: "cellnet:test/limit-a".into(),
    };
    let filter = RouteFilter {
        key: "limit16".into(),
        neighbors: vec![ab],
        import: ImportRule::Any,
        export: ExportRule::None,
        evpn: None,
    };

    // B sends 3, A accepts 2: A shuts the session down (Cease, maximum number of prefixes).
    let created = a.client.ensure_peer(&limited(2)).await.unwrap();
    assert_eq!(created.outcome, PeerOutcome::Created);
    b.client.ensure_peer(&peer(B, A)).await.unwrap();
    let tripped = || async { counts(&a, &origin_a, &filter).await.prefix_limit_hit };
    wait_until("A's prefix limit tripped", ESTABLISH_TIMEOUT, [&a, &b], tripped).await;
    println!("limit tripped after {:?}", began.elapsed());
    let seen = a.client.observe_peer(ab).await.unwrap().unwrap();
    let why = seen.last_error.clone().unwrap_or_default();
    assert!(why.contains("maximum prefix limit"), "{seen:?}");
    assert!(
        !seen.admin_down,
        "a tripped limit is not an admin shutdown: {seen:?}"
    );
    let listed = cli_json(&a, &["neighbor", &ab.to_string(), "-j"]);
    assert_eq!(listed["state"]["admin_state"], 2, "PFX_CT in ListPeer: {listed}");

    // The same limit: nothing is written and the peer stays down (it would trip again).
    let again = a.client.ensure_peer(&limited(2)).await.unwrap();
    assert_eq!(again.outcome, PeerOutcome::Unchanged);
    assert!(counts(&a, &origin_a, &filter).await.prefix_limit_hit);

    // A higher limit: updated in place, then enabled; the session comes back with all 3.
    let raised = a.client.ensure_peer(&limited(5)).await.unwrap();
    let fields = vec!["max_prefixes"];
    assert_eq!(raised.outcome, PeerOutcome::Updated { fields });
    let up = || async {
        let seen = counts(&a, &origin_a, &filter).await;
        !seen.prefix_limit_hit && seen.received == 3
    };
    wait_until("session back with 3 paths", AFTER_RESET_TIMEOUT, [&a, &b], up).await;
    println!("back after the raise at {:?}", began.elapsed());
    assert_eq!(
        a.client.ensure_peer(&limited(5)).await.unwrap().outcome,
        PeerOutcome::Unchanged
    );

    // GoBGP changes a limit in place: raising it on a live session does not reset it.
    let before = uptime(&a, ab).await;
    assert!(before.is_some_and(|s| s > 0), "no uptime: {before:?}");
    let raised = a.client.ensure_peer(&limited(10)).await.unwrap();
    assert!(matches!(raised.outcome, PeerOutcome::Updated { .. }));
    assert!(established(&a, ab).await);
    assert_eq!(uptime(&a, ab).await, before, "the session was reset");

    // Lowered below what the neighbour already sent: trips at once.
    a.client.ensure_peer(&limited(2)).await.unwrap();
    wait_for("tripped by a lower limit", [&a, &b], tripped).await;
    println!("prefix limit scenario done in {:?}", began.elapsed());
}
