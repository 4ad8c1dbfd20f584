//! Stage 2 from the importing side: the other cell is not cellnet's.
use std::time::Instant;

use serde_json::Value;

use crate::speakers::{add_path_by_hand, add_peer_by_hand, cellnet_objects, peer_addresses, rib_paths};
use crate::support::cells::TrafficCells;
use crate::support::{Kind as _, describe, namespace, report, wait_for};
use crate::{
    B_NETWORKS, READY_TIMEOUT, ROUTE_TIMEOUT, STATUS_TIMEOUT, UNDECLARED, assert_connects,
    assert_never_routed, cic, control_plane, delete_all, external, interconnect, managed, serve, side_routes,
    skip, wait_ready_is,
};

/// 2 (import side). A cell whose speaker cellnet does not manage (external endpoint, configured
/// by hand as another team would) announces its declared network and one it does not declare:
/// cellnet's side accepts only the declared one, counts the other as rejected, and leaves the
/// other cell's speaker alone, before and after the objects are deleted.
#[tokio::test(flavor = "multi_thread")]
async fn undeclared_prefix_from_the_other_cell_is_rejected() {
    if skip("undeclared_prefix_from_the_other_cell_is_rejected") {
        return;
    }
    let cp = control_plane();
    let ns = "traffic-hijack";
    namespace(cp, ns).await;
    let cells = TrafficCells::create("hij", &["192.0.2.1/25"], &["192.0.2.129/25"]);
    let (a, b) = (&cells.a, &cells.b);
    let (on_a, on_b) = (serve(a, "192.0.2.1"), serve(b, "192.0.2.129"));
    // b's operators: a session to a, b's network and one b does not declare.
    add_peer_by_hand(b, a);
    add_path_by_hand(b, "192.0.2.128/25");
    add_path_by_hand(b, UNDECLARED);
    let cic_name = "hij-a-b";
    let objects = [
        managed(a, &["192.0.2.0/25"]),
        external(b, &B_NETWORKS),
        interconnect(cic_name, a, b, "Enabled"),
    ];
    let began = Instant::now();
    cp.apply(ns, &objects.join("---\n"));
    a.wait_route("192.0.2.128/25", true, READY_TIMEOUT);
    b.wait_route("192.0.2.0/25", true, ROUTE_TIMEOUT);
    report(&format!(
        "hijack: apply -> routes in both kernels {:.1} s",
        began.elapsed().as_secs_f64()
    ));
    assert_never_routed(a, UNDECLARED);
    assert_eq!(
        rib_paths(a, UNDECLARED),
        Vec::<Value>::new(),
        "a's speaker took {UNDECLARED}"
    );
    let (local, _) = wait_for("a's route counts", STATUS_TIMEOUT, || {
        let obj = cic(cp, ns, cic_name);
        let (local, _) = side_routes(&obj);
        let hit = local
            .as_ref()
            .is_some_and(|l| l.received == 2 && l.accepted == 1 && l.rejected == 1);
        (
            hit.then(|| local.clone()),
            format!("{local:?} {}", describe(obj.conditions())),
        )
    });
    report(&format!(
        "hijack: {UNDECLARED} rejected by a; a's routes: {local:?}"
    ));
    wait_ready_is(cp, ns, cic_name, "True", None, READY_TIMEOUT);
    assert_connects(a, "192.0.2.1", &on_b, b);
    assert_connects(b, "192.0.2.129", &on_a, a);

    let b_peers = peer_addresses(b);
    delete_all(cp, ns);
    a.wait_route("192.0.2.128/25", false, ROUTE_TIMEOUT);
    assert_eq!(
        cellnet_objects(a),
        Vec::<String>::new(),
        "cellnet's objects left on a"
    );
    assert_eq!(
        cellnet_objects(b),
        Vec::<String>::new(),
        "cellnet wrote to the external b"
    );
    assert_eq!(rib_paths(b, UNDECLARED).len(), 1, "b's own path");
    assert_eq!(rib_paths(b, "192.0.2.128/25").len(), 1, "b's own path");
    assert_eq!(peer_addresses(b), b_peers, "b's peers changed");
}
