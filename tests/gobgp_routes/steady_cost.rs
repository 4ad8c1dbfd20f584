//! What one reconcile of an interconnect side costs its speaker when nothing changed: the gRPC
//! calls of `ensure_route_filter` + `ensure_origination` + `observe_routes`, counted by the
//! client. Zero writes, and a bounded number of reads that does not grow with the speaker's table.
use std::net::IpAddr;
use std::time::Instant;

use cellnet::sdn::SdnBackend;
use cellnet::sdn::gobgp::CallCounts;
use cellnet::sdn::routes::{ExportRule, ImportRule, Origination, RouteFilter, RoutesOutcome, mark_of};

use crate::routes::*;

const A: u8 = 169;
const B: u8 = 170;
/// Reads of one steady reconcile of an IPv4 side: the filter's 3 sets, 2 policies and 1 read
/// of both assignments; one EXACT lookup of the originated prefixes; one `ListPeer` and
/// `ADJ_IN` + `ADJ_OUT` for the neighbour.
const STEADY_READS: u64 = 10;

/// One reconcile of A's side: what it did and the calls it made.
async fn reconcile(a: &Cell, filter: &RouteFilter, origin: &Origination) -> (Vec<RoutesOutcome>, CallCounts) {
    let before = a.client.calls();
    let outcomes = vec![
        a.client.ensure_route_filter(filter).await.unwrap(),
        a.client.ensure_origination(origin).await.unwrap(),
    ];
    let counts = a.client.observe_routes(origin, std::slice::from_ref(filter));
    counts.await.unwrap();
    (outcomes, a.client.calls().since(&before))
}

#[tokio::test]
async fn a_steady_reconcile_writes_nothing_and_reads_a_bounded_amount() {
    let began = Instant::now();
    let (a, b) = (cell(A).await, cell(B).await);
    let a_nets = nets(&["192.0.2.0/27", "192.0.2.32/27", "192.0.2.64/27", "192.0.2.96/27"]);
    let b_nets = nets(&[
        "203.0.113.0/27",
        "203.0.113.32/27",
        "203.0.113.64/27",
        "203.0.113.96/27",
    ]);
    let origin = Origination {
        mark: mark_of("cost-a"),
        next_hop: "198.51.100.1".parse().unwrap(),
        networks: a_nets.clone(),
        owner: "cellnet:test/cost-a".into(),
    };
    let origin_b = Origination {
        mark: mark_of("cost-b"),
        next_hop: "198.51.100.2".parse().unwrap(),
        networks: b_nets.clone(),
        owner: "cellnet:test/cost-b".into(),
    };
    let filter = RouteFilter {
        key: "cost16".into(),
        neighbors: vec![IpAddr::V4(addr(B))],
        import: ImportRule::Only(b_nets),
        export: ExportRule::Only(a_nets),
        evpn: None,
    };
    // The operator's table on A: 200 paths of their own, which a whole-table read would list.
    for i in 0..200u32 {
        let prefix = format!("198.18.{}.{}/30", i / 64, (i % 64) * 4);
        a.gobgpd
            .cli(&["global", "rib", "add", &prefix, "nexthop", "192.0.2.254"])
            .unwrap();
    }
    let (first, cold) = reconcile(&a, &filter, &origin).await;
    assert!(
        first.iter().all(|o| matches!(o, RoutesOutcome::Updated { .. })),
        "{first:?}"
    );
    println!("first reconcile (creates everything): {cold}");
    writes(b.client.ensure_origination(&origin_b).await.unwrap());
    a.client.ensure_peer(&peer(A, B)).await.unwrap();
    b.client.ensure_peer(&peer(B, A)).await.unwrap();
    let all_in = || async {
        let seen = a
            .client
            .observe_routes(&origin, std::slice::from_ref(&filter))
            .await
            .unwrap();
        let seen = &seen[&filter.neighbors[0]];
        seen.accepted == 4 && seen.missing_advertised.is_empty()
    };
    wait_until("routes exchanged", ESTABLISH_TIMEOUT, [&a, &b], all_in).await;
    println!("routes exchanged after {:?}", began.elapsed());

    let (outcomes, steady) = reconcile(&a, &filter, &origin).await;
    println!("steady reconcile: {steady}");
    assert_eq!(outcomes, [RoutesOutcome::Unchanged, RoutesOutcome::Unchanged]);
    assert_eq!(steady.writes(), 0, "{steady}");
    assert!(steady.total() <= STEADY_READS, "{steady}");
    // Our 4 paths looked up, the neighbour's 4 in and our 4 out: not the operator's 200.
    assert!(steady.destinations <= 12, "{steady}");
}
