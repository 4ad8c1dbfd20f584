//! Issue 16, "Proof with packets": the networks between cells, shown with real traffic.
//!
//! Each cell is a network namespace made here (tests/support/cells.rs): its infrastructure
//! addresses on its `lo`, its gobgpd (configured by cellnet through the gRPC API over the
//! management link), and FRR as its fabric router, which installs into the namespace's kernel
//! table what the speaker learns. The test never installs a route: a `proto bgp` route in a
//! cell's table got there from the other cell's speaker, through this cell's speaker and FRR.
//! TCP connections go between addresses of the cells' networks (tests/support/packets.rs).
//!
//! Without root, `ip netns` or FRR (`hack/prereqs.sh` installs it) the tests print why and skip.
mod support;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, InfraEndpoint, RouteStatus};
use cellnet::sdn::routes::mark_of;
use kube::ResourceExt as _;
use serde_json::Value;
use support::cells::{self, TrafficCell, TrafficCells};
use support::manifests;
use support::packets::{Listener, exchange};
use support::{ControlPlane, InterconnectStatusExt as _, Kind as _, describe, namespace, report, wait_for};

/// A route learnt or withdrawn by BGP reaches the other kernel table: an UPDATE on two
/// established sessions and zebra's write, well under a second; fresh sessions take longer.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(30);
/// The port of the cells' test servers.
const PORT: u16 = 8080;

fn skip(test: &str) -> bool {
    match cells::unavailable() {
        Some(why) => {
            println!("SKIPPED {test}: {why}");
            true
        }
        None => false,
    }
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A server on `address` in `cell` that answers with the cell's name.
fn serve(cell: &TrafficCell, address: &str) -> Listener {
    Listener::start(&cell.netns, SocketAddrV4::new(v4(address), PORT), &cell.name)
}

/// Connects from `source` in `from` to the server `to`; panics unless `to`'s cell answers.
fn assert_connects(from: &TrafficCell, source: &str, to: &Listener, to_cell: &TrafficCell) -> Duration {
    let began = Instant::now();
    let answer = exchange(&from.netns, v4(source), to.address).unwrap_or_else(|e| {
        panic!(
            "{} -> {}: {e}\n{} bgp routes: {:?}\n{} bgp routes: {:?}",
            from.name,
            to_cell.name,
            from.name,
            from.bgp_routes(),
            to_cell.name,
            to_cell.bgp_routes()
        )
    });
    assert_eq!(answer, to_cell.name, "the server that answered");
    began.elapsed()
}

/// The fixture alone, no cellnet: paths added by hand on each speaker reach the other cell's
/// kernel table through FRR, and TCP goes through both ways. A failure here is the test
/// harness's (or the machine's), not cellnet's.
#[test]
fn fabric_routers_install_what_the_speakers_learn() {
    if skip("fabric_routers_install_what_the_speakers_learn") {
        return;
    }
    let cells = TrafficCells::create("hand", &["192.0.2.1/25"], &["192.0.2.129/25"]);
    let (a, b) = (&cells.a, &cells.b);
    let began = Instant::now();
    for (cell, other, network) in [(a, b, "192.0.2.0/25"), (b, a, "192.0.2.128/25")] {
        let peer = [
            "neighbor",
            "add",
            &other.underlay.to_string(),
            "as",
            &other.asn.to_string(),
        ];
        cell.speaker.cli(&peer).unwrap();
        let next_hop = cell.underlay.to_string();
        let path = [
            "global", "rib", "add", network, "nexthop", &next_hop, "-a", "ipv4",
        ];
        cell.speaker.cli(&path).unwrap();
    }
    a.wait_route("192.0.2.128/25", true, ROUTE_TIMEOUT);
    b.wait_route("192.0.2.0/25", true, ROUTE_TIMEOUT);
    report(&format!(
        "hand: paths added by hand in each other's kernel table in {:.1} s",
        began.elapsed().as_secs_f64()
    ));
    let (on_a, on_b) = (serve(a, "192.0.2.1"), serve(b, "192.0.2.129"));
    let there = assert_connects(a, "192.0.2.1", &on_b, b);
    let back = assert_connects(b, "192.0.2.129", &on_a, a);
    report(&format!(
        "hand: TCP a -> b in {:.3} s, b -> a in {:.3} s",
        there.as_secs_f64(),
        back.as_secs_f64()
    ));
}

// ---- with cellnet: the real controller and API server ----------------------------------------

/// Fresh sessions need 6-9 s (GoBGP's connect-retry timer); a loaded machine adds to it.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// The interconnects' hold time (9 s, manifests::interconnect) plus GoBGP's event, the reconcile
/// and the status write.
const DETECT_TIMEOUT: Duration = Duration::from_secs(25);
/// A session back after a cut or a re-enable: usually 5-10 s, but when both ends dial at once
/// gobgpd can sit in OpenSent until its 240 s hold timer ends (see tests/faults_network.rs).
const HEAL_TIMEOUT: Duration = Duration::from_secs(270);
/// The drift goal: a path deleted behind cellnet's back is back within the resync interval
/// (10 s by default) plus a reconcile.
const DRIFT_TIMEOUT: Duration = Duration::from_secs(30);
/// Status counts follow the speakers within a resync interval plus a reconcile.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a negative check watches that a route does not show up.
const QUIET: Duration = Duration::from_secs(3);
/// A prefix of cell b's that b does not declare: b announces it by hand.
const UNDECLARED: &str = "203.0.113.0/24";

/// The shared control plane and one controller for this binary, default settings.
fn control_plane() -> &'static ControlPlane {
    support::controller::shared(&[]).0
}

fn endpoint_name(cell: &TrafficCell) -> String {
    format!("ep-{}", cell.name)
}

fn endpoint(cell: &TrafficCell, networks: &[(&str, &str)]) -> manifests::Endpoint {
    manifests::endpoint(&endpoint_name(cell))
        .cell(&cell.name)
        .address(cell.underlay)
        .asn(cell.asn)
        .port(cells::BGP_PORT)
        .networks(networks)
}

/// The endpoint of `cell`, managed by cellnet through its speaker's API.
fn managed(cell: &TrafficCell, networks: &[(&str, &str)]) -> String {
    endpoint(cell, networks).gobgp(&cell.speaker.api_url()).yaml()
}

/// The endpoint of `cell` as an external one: cellnet does not touch its speaker.
fn external(cell: &TrafficCell, networks: &[(&str, &str)]) -> String {
    endpoint(cell, networks).yaml()
}

fn interconnect(name: &str, a: &TrafficCell, b: &TrafficCell, admin_state: &str) -> String {
    manifests::interconnect(name, &endpoint_name(a), &endpoint_name(b))
        .admin_state(admin_state)
        .yaml()
}

fn cic(cp: &ControlPlane, ns: &str, name: &str) -> CellInterconnect {
    cp.get::<CellInterconnect>(ns, name)
        .unwrap_or_else(|| panic!("{ns}/cic/{name} not found"))
}

/// `status.local.routes` and `status.remote.routes`.
fn side_routes(obj: &CellInterconnect) -> (Option<RouteStatus>, Option<RouteStatus>) {
    (
        obj.local().and_then(|s| s.routes.clone()),
        obj.remote().and_then(|s| s.routes.clone()),
    )
}

/// Waits until `Ready` has `status` (and `reason`); reports and returns the object.
fn wait_ready_is(
    cp: &ControlPlane,
    ns: &str,
    name: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> (CellInterconnect, Duration) {
    support::wait_condition::<CellInterconnect>(cp, ns, name, "Ready", status, reason, timeout)
}

/// Panics unless the connection fails; returns why it failed.
fn assert_fails(from: &TrafficCell, source: &str, to: &Listener) -> String {
    match exchange(&from.netns, v4(source), to.address) {
        Ok(answer) => panic!(
            "{source} -> {} went through ({answer:?}); {} bgp routes: {:?}",
            to.address,
            from.name,
            from.bgp_routes()
        ),
        Err(why) => why,
    }
}

/// `gobgp global rib add <prefix> nexthop <underlay>`: a path made by hand (identifier 0).
fn add_path_by_hand(cell: &TrafficCell, prefix: &str) {
    let next_hop = cell.underlay.to_string();
    let args = ["global", "rib", "add", prefix, "nexthop", &next_hop, "-a", "ipv4"];
    cell.speaker
        .cli(&args)
        .unwrap_or_else(|e| panic!("{}: {e}", cell.name));
}

/// The IPv4 paths of the speaker's RIB for `prefix`, as GoBGP's JSON.
fn rib_paths(cell: &TrafficCell, prefix: &str) -> Vec<Value> {
    let out = cell
        .speaker
        .cli(&["global", "rib", "-a", "ipv4", "-j"])
        .unwrap_or_else(|e| panic!("{}: {e}", cell.name));
    let rib: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
    rib[prefix].as_array().cloned().unwrap_or_default()
}

/// The operator's own global import policy on `cell`'s speaker, made with the CLI as a person
/// would (it rejects an IPv6 prefix that no test announces).
fn add_operator_policy(cell: &TrafficCell) {
    let commands: [&[&str]; 6] = [
        &["policy", "prefix", "add", "operator-nets", "2001:db8:ffff::/48"],
        &["policy", "statement", "add", "operator-stmt"],
        &[
            "policy",
            "statement",
            "operator-stmt",
            "add",
            "condition",
            "prefix",
            "operator-nets",
        ],
        &["policy", "statement", "operator-stmt", "add", "action", "reject"],
        &["policy", "add", "operator-policy", "operator-stmt"],
        &["global", "policy", "import", "add", "operator-policy"],
    ];
    for args in commands {
        cell.speaker
            .cli(args)
            .unwrap_or_else(|e| panic!("{}: {e}", cell.name));
    }
}

/// The operator's policy and prefix set as the CLI shows them, and whether the policy is still
/// assigned to the global import.
fn operator_state(cell: &TrafficCell) -> (String, String, bool) {
    let cli = |args: &[&str]| {
        cell.speaker
            .cli(args)
            .unwrap_or_else(|e| panic!("{}: {e}", cell.name))
    };
    let assigned = cli(&["global", "policy", "import"]).contains("Name operator-policy:");
    (
        cli(&["policy", "operator-policy"]),
        cli(&["policy", "prefix", "operator-nets"]),
        assigned,
    )
}

/// Every policy object on the speaker whose name says it is cellnet's, as the CLI lists them.
fn cellnet_objects(cell: &TrafficCell) -> Vec<String> {
    let lists: [&[&str]; 5] = [
        &["policy"],
        &["policy", "prefix"],
        &["policy", "neighbor"],
        &["global", "policy", "import"],
        &["global", "policy", "export"],
    ];
    lists
        .iter()
        .map(|args| cell.speaker.cli(args).unwrap_or_else(|e| e))
        .collect::<String>()
        .lines()
        .filter(|l| l.contains("cellnet-"))
        .map(str::to_owned)
        .collect()
}

/// Deletes every interconnect and endpoint of `ns` and waits until their finalizers are done.
fn delete_all(cp: &ControlPlane, ns: &str) -> Duration {
    for kind in ["cellinterconnects", "infraendpoints"] {
        let (ok, _, err) = cp.kubectl_run(&["delete", "-n", ns, kind, "--all", "--wait=false"]);
        assert!(ok, "{err}");
    }
    let (_, took) = wait_for(&format!("{ns} emptied"), Duration::from_secs(60), || {
        let (ok, out, err) =
            cp.kubectl_run(&["get", "-n", ns, "cellinterconnects,infraendpoints", "-o", "name"]);
        assert!(ok, "{err}");
        (out.trim().is_empty().then_some(()), out)
    });
    took
}

/// Panics if `cell`'s kernel gets a route to `prefix` within [`QUIET`].
fn assert_never_routed(cell: &TrafficCell, prefix: &str) {
    let began = Instant::now();
    while began.elapsed() < QUIET {
        assert!(
            !cell.has_route(prefix),
            "{}: the kernel has a route to {prefix}: {:?}",
            cell.name,
            cell.bgp_routes()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const A_NETWORKS: [(&str, &str); 2] = [("192.0.2.0/26", "mgmt"), ("192.0.2.64/26", "storage")];
const B_NETWORKS: [(&str, &str); 1] = [("192.0.2.128/25", "mgmt")];
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
    stage_undeclared_stays_home(cp, ns, &cells);
    stage_drift(cp, ns, &cells, &on_b);
    stage_underlay_cut(cp, ns, &cells, &on_b);
    stage_admin_disabled(cp, ns, &cells, &on_a, &on_b);
    stage_network_removed(cp, ns, &cells, &on_b);

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
        operator_before,
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
    for (prefix, _) in A_NETWORKS {
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
    let peer = [
        "neighbor",
        "add",
        &a.underlay.to_string(),
        "as",
        &a.asn.to_string(),
    ];
    b.speaker.cli(&peer).unwrap();
    add_path_by_hand(b, "192.0.2.128/25");
    add_path_by_hand(b, UNDECLARED);
    let cic_name = "hij-a-b";
    let objects = [
        managed(a, &[("192.0.2.0/25", "")]),
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

    let b_peers = b.speaker.neighbors_json();
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
    let peers = |v: &Value| {
        let list = v.as_array().cloned().unwrap_or_default();
        list.iter()
            .map(|p| p["conf"]["neighbor_address"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        peers(&b.speaker.neighbors_json()),
        peers(&b_peers),
        "b's peers changed"
    );
}
