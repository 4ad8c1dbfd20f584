//! Stages 1-5 of the issue on two cells whose speakers cellnet manages.
use std::time::{Duration, Instant};

use cellnet::api::InfraEndpoint;
use cellnet::sdn::routes::mark_of;
use kube::ResourceExt as _;
use serde_json::Value;

use crate::speakers::{add_operator_policy, add_path_by_hand, cellnet_objects, operator_state, rib_paths};
use crate::support::cells::TrafficCells;
use crate::support::packets::Listener;
use crate::support::{ControlPlane, Kind as _, describe, namespace, report, wait_for};
use crate::{
    B_NETWORKS, DETECT_TIMEOUT, DRIFT_TIMEOUT, HEAL_TIMEOUT, READY_TIMEOUT, ROUTE_TIMEOUT, STATUS_TIMEOUT,
    UNDECLARED, assert_connects, assert_fails, assert_never_routed, cic, control_plane, delete_all,
    endpoint_name, interconnect, managed, serve, side_routes, skip, wait_ready_is,
};

const A_NETWORKS: [&str; 2] = ["192.0.2.0/26", "192.0.2.64/26"];
const CIC: &str = "net-a-b";

/// Stages 1-5 of the "Proof with packets" on two cells whose speakers cellnet manages.
#[tokio::test(flavor = "multi_thread")]
async fn declared_networks_carry_traffic_between_cells() {
    if skip("declared_networks_carry_traffic_between_cells") {
        return;
    }
    let cp = control_plane();
    let ns = "traffic";
    namespace(cp, ns).await;
    let cells = TrafficCells::create("net", &["192.0.2.1/26", "192.0.2.65/26"], &["192.0.2.129/25"]);
    let (a, b) = (&cells.a, &cells.b);
    let (on_a, on_b) = (serve(a, "192.0.2.1"), serve(b, "192.0.2.129"));
    // The operators' own, before cellnet comes: a path b does not declare, a policy on a.
    add_path_by_hand(b, UNDECLARED);
    add_operator_policy(a);
    let operator_before = operator_state(a);

    stage_routes_and_traffic(cp, ns, &cells, &on_a, &on_b);
    assert_eq!(
        operator_state(a),
        operator_before,
        "cellnet changed the operator's policy on a"
    );
    stage_undeclared_stays_home(cp, ns, &cells);
    stage_drift(cp, ns, &cells, &on_b);
    stage_underlay_cut(cp, ns, &cells, &on_b);
    stage_admin_disabled(cp, ns, &cells, &on_a, &on_b);
    stage_network_removed(cp, ns, &cells, &on_b);

    stage_everything_deleted(cp, ns, &cells, &operator_before);
}

/// After every object is deleted: no route left in either kernel, nothing of cellnet's on either
/// speaker, and the operators' path, policy and fabric neighbours as they were.
fn stage_everything_deleted(
    cp: &ControlPlane,
    ns: &str,
    cells: &TrafficCells,
    operator_before: &(String, String, bool),
) {
    let (a, b) = (&cells.a, &cells.b);
    let took = delete_all(cp, ns);
    a.wait_route("192.0.2.128/25", false, ROUTE_TIMEOUT);
    b.wait_route("192.0.2.0/26", false, ROUTE_TIMEOUT);
    report(&format!(
        "traffic: all objects deleted in {:.1} s; the routes left both kernels",
        took.as_secs_f64()
    ));
    for cell in [a, b] {
        assert_eq!(
            cellnet_objects(cell),
            Vec::<String>::new(),
            "{}: cellnet's objects left",
            cell.name
        );
        let fabric = cell.speaker.session_state(cell.fabric.address.into());
        assert!(
            fabric.is_some(),
            "{}: the static fabric neighbour is gone",
            cell.name
        );
    }
    for (cell, prefix) in [(a, "192.0.2.0/26"), (b, "192.0.2.128/25")] {
        assert_eq!(
            rib_paths(cell, prefix),
            Vec::<Value>::new(),
            "{}: cellnet's path left",
            cell.name
        );
    }
    assert_eq!(
        operator_state(a),
        *operator_before,
        "the operator's policy on a changed"
    );
    assert_eq!(rib_paths(b, UNDECLARED).len(), 1, "b's own path is gone");
}

/// 1. Applied objects: each kernel gets a route to the other cell's networks, TCP goes both ways.
fn stage_routes_and_traffic(
    cp: &ControlPlane,
    ns: &str,
    cells: &TrafficCells,
    on_a: &Listener,
    on_b: &Listener,
) {
    let (a, b) = (&cells.a, &cells.b);
    let objects = [
        managed(a, &A_NETWORKS),
        managed(b, &B_NETWORKS),
        interconnect(CIC, a, b, "Enabled"),
    ];
    let began = Instant::now();
    cp.apply(ns, &objects.join("---\n"));
    a.wait_route("192.0.2.128/25", true, READY_TIMEOUT);
    for prefix in A_NETWORKS {
        b.wait_route(prefix, true, ROUTE_TIMEOUT);
    }
    let routed = began.elapsed();
    let (obj, _) = wait_ready_is(cp, ns, CIC, "True", None, READY_TIMEOUT);
    report(&format!(
        "traffic 1: apply -> routes in both kernels {:.1} s, -> Ready {:.1} s",
        routed.as_secs_f64(),
        began.elapsed().as_secs_f64()
    ));
    let exchanged = obj.condition("RoutesExchanged").map(|c| c.status.clone());
    assert_eq!(
        exchanged.as_deref(),
        Some("True"),
        "{}",
        describe(obj.conditions())
    );
    assert_connects(a, "192.0.2.1", on_b, b);
    assert_connects(a, "192.0.2.65", on_b, b);
    assert_connects(b, "192.0.2.129", on_a, a);
}

/// 2. b's own path (not declared) never leaves b, and is still there.
fn stage_undeclared_stays_home(cp: &ControlPlane, ns: &str, cells: &TrafficCells) {
    let (a, b) = (&cells.a, &cells.b);
    assert_never_routed(a, UNDECLARED);
    assert_eq!(
        rib_paths(a, UNDECLARED),
        Vec::<Value>::new(),
        "a's speaker got {UNDECLARED}"
    );
    assert_eq!(rib_paths(b, UNDECLARED).len(), 1, "b's own path");
    // b sends only what it declares, a gets just that.
    let (routes, _) = wait_for("route counts of both sides", STATUS_TIMEOUT, || {
        let obj = cic(cp, ns, CIC);
        let (local, remote) = side_routes(&obj);
        let hit = local
            .as_ref()
            .is_some_and(|l| l.advertised == 2 && l.received == 1)
            && remote
                .as_ref()
                .is_some_and(|r| r.advertised == 1 && r.received == 2);
        (
            hit.then(|| (local.clone(), remote.clone())),
            format!("{local:?} {remote:?}"),
        )
    });
    report(&format!("traffic 2: {UNDECLARED} stays on b; routes: {routes:?}"));
}

/// 4. A cellnet path deleted by hand on a's speaker is back, and so is the traffic.
fn stage_drift(cp: &ControlPlane, ns: &str, cells: &TrafficCells, on_b: &Listener) {
    let (a, b) = (&cells.a, &cells.b);
    let uid = cp
        .get::<InfraEndpoint>(ns, &endpoint_name(a))
        .and_then(|e| e.uid())
        .expect("a's endpoint and its uid");
    let mark = mark_of(&uid).to_string();
    let prefix = "192.0.2.0/26";
    let age_of = |paths: &[Value]| paths.first().and_then(|p| p["age"].as_i64());
    let before = rib_paths(a, prefix);
    assert_eq!(before.len(), 1, "one path for {prefix} on a: {before:?}");
    // The path's age is in seconds: a path made again must show a later one.
    std::thread::sleep(Duration::from_millis(1100));
    a.speaker
        .cli(&["global", "rib", "del", prefix, "-a", "ipv4", "identifier", &mark])
        .unwrap();
    let began = Instant::now();
    wait_for(&format!("{prefix} back on a's speaker"), DRIFT_TIMEOUT, || {
        let paths = rib_paths(a, prefix);
        let back = paths.len() == 1 && age_of(&paths) > age_of(&before);
        (back.then_some(()), format!("before {before:?}, now {paths:?}"))
    });
    let restored = began.elapsed();
    b.wait_route(prefix, true, ROUTE_TIMEOUT);
    assert_connects(a, "192.0.2.1", on_b, b);
    report(&format!(
        "traffic 4: path {prefix} (identifier {mark}) deleted by hand: back on the speaker in {:.1} s, \
         traffic again after {:.1} s",
        restored.as_secs_f64(),
        began.elapsed().as_secs_f64()
    ));
}

/// 3a. The underlay cut: no traffic, status says the session is down; back by itself.
fn stage_underlay_cut(cp: &ControlPlane, ns: &str, cells: &TrafficCells, on_b: &Listener) {
    let (a, b) = (&cells.a, &cells.b);
    let generation = cic(cp, ns, CIC).metadata.generation;
    cells.set_underlay(false);
    let cut = Instant::now();
    let why = assert_fails(a, "192.0.2.1", on_b);
    let (obj, detected) = wait_ready_is(
        cp,
        ns,
        CIC,
        "False",
        Some("SessionNotEstablished"),
        DETECT_TIMEOUT,
    );
    let message = obj
        .condition("Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains(&a.name) && message.contains(&b.name),
        "names both cells: {message}"
    );
    report(&format!(
        "traffic 3: underlay cut: TCP fails ({why}); Ready=False SessionNotEstablished in {:.1} s: {message}",
        detected.as_secs_f64()
    ));
    cells.set_underlay(true);
    let restored = Instant::now();
    let (after, _) = wait_ready_is(cp, ns, CIC, "True", None, HEAL_TIMEOUT);
    a.wait_route("192.0.2.128/25", true, ROUTE_TIMEOUT);
    b.wait_route("192.0.2.0/26", true, ROUTE_TIMEOUT);
    assert_connects(a, "192.0.2.1", on_b, b);
    assert_eq!(after.metadata.generation, generation, "nobody changed the object");
    report(&format!(
        "traffic 3: underlay back: Ready and traffic in {:.1} s ({:.1} s after the cut)",
        restored.elapsed().as_secs_f64(),
        cut.elapsed().as_secs_f64()
    ));
}

/// 3b. `adminState: Disabled`: no traffic, status says so; `Enabled` again: traffic again.
fn stage_admin_disabled(cp: &ControlPlane, ns: &str, cells: &TrafficCells, on_a: &Listener, on_b: &Listener) {
    let (a, b) = (&cells.a, &cells.b);
    let began = Instant::now();
    cp.apply(ns, &interconnect(CIC, a, b, "Disabled"));
    let (obj, _) = wait_ready_is(cp, ns, CIC, "False", Some("AdministrativelyDown"), DETECT_TIMEOUT);
    a.wait_route("192.0.2.128/25", false, ROUTE_TIMEOUT);
    b.wait_route("192.0.2.0/26", false, ROUTE_TIMEOUT);
    let why = assert_fails(b, "192.0.2.129", on_a);
    let message = obj
        .condition("Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    report(&format!(
        "traffic 3: Disabled -> routes gone, TCP fails ({why}) in {:.1} s; Ready=False AdministrativelyDown: {message}",
        began.elapsed().as_secs_f64()
    ));
    let enabled = Instant::now();
    cp.apply(ns, &interconnect(CIC, a, b, "Enabled"));
    wait_ready_is(cp, ns, CIC, "True", None, HEAL_TIMEOUT);
    a.wait_route("192.0.2.128/25", true, ROUTE_TIMEOUT);
    b.wait_route("192.0.2.0/26", true, ROUTE_TIMEOUT);
    assert_connects(b, "192.0.2.129", on_a, a);
    assert_connects(a, "192.0.2.1", on_b, b);
    report(&format!(
        "traffic 3: Enabled -> Ready and traffic in {:.1} s",
        enabled.elapsed().as_secs_f64()
    ));
}

/// 5. A network taken out of a's `spec.networks` leaves b's kernel; the other stays.
fn stage_network_removed(cp: &ControlPlane, ns: &str, cells: &TrafficCells, on_b: &Listener) {
    let (a, b) = (&cells.a, &cells.b);
    let began = Instant::now();
    cp.apply(ns, &managed(a, &A_NETWORKS[..1]));
    let gone = b.wait_route("192.0.2.64/26", false, ROUTE_TIMEOUT);
    // Still routed (allowing for a session reset that takes routes back for a while).
    let kept = b.wait_route("192.0.2.0/26", true, HEAL_TIMEOUT);
    let why = assert_fails(a, "192.0.2.65", on_b);
    assert_connects(a, "192.0.2.1", on_b, b);
    report(&format!(
        "traffic 5: 192.0.2.64/26 removed: gone from b's kernel in {:.1} s (192.0.2.0/26 there after \
         {:.1} s more), TCP from it fails ({why}); total {:.1} s",
        gone.as_secs_f64(),
        kept.as_secs_f64(),
        began.elapsed().as_secs_f64()
    ));
}
