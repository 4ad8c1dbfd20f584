//! Issue 16, "Proof with packets": the networks between cells, shown with real traffic.
//!
//! Each cell is a network namespace made here (tests/support/cells.rs): its infrastructure
//! addresses on its `lo`, its gobgpd (configured by cellnet through the gRPC API over the
//! management link), and FRR as its fabric router, which installs into the namespace's kernel
//! table what the speaker learns. The test never installs a route: a `proto bgp` route in a
//! cell's table got there from the other cell's speaker, through this cell's speaker and FRR.
//! TCP connections go between addresses of the cells' networks (tests/support/packets.rs).
//!
//! Four tests, run side by side (each with its own two cells), one control plane and one
//! controller (default settings) for the binary:
//! - `fabric_routers_install_what_the_speakers_learn`: the fixture alone, no cellnet;
//! - `declared_networks_carry_traffic_between_cells` (managed.rs): stages 1-5 of the issue on
//!   two cells whose speakers cellnet manages, then the deletion of every object;
//! - `undeclared_prefix_from_the_other_cell_is_rejected` (external.rs): stage 2 from the
//!   importing side.
//! - `graceful_restart_keeps_traffic_over_a_speaker_restart` (graceful.rs): issue 19 item 4, a
//!   cell's speaker killed and started again while connections between the cells are counted,
//!   without graceful restart (connections fail) and with it (none does). A managed cell never sends what it does not declare (its export filter), so
//!   the cell that announces an undeclared prefix is an external one, configured by hand.
//!
//! Without root, `ip netns` or FRR (`hack/prereqs.sh` installs it) the tests print why and skip.
mod support;

#[path = "networks_traffic/external.rs"]
mod external;
#[path = "networks_traffic/graceful.rs"]
mod graceful;
#[path = "networks_traffic/managed.rs"]
mod managed;
#[path = "networks_traffic/speakers.rs"]
mod speakers;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, RouteStatus};
use support::cells::{self, TrafficCell, TrafficCells};
use support::manifests;
use support::packets::{Listener, exchange};
use support::{ControlPlane, InterconnectStatusExt as _, report, wait_for};

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
        speakers::add_peer_by_hand(cell, other);
        speakers::add_path_by_hand(cell, network);
    }
    // Fresh sessions: both speakers dial, as in every test here.
    a.wait_route("192.0.2.128/25", true, READY_TIMEOUT);
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
/// A path deleted behind cellnet's back: the speaker's event requeues the endpoint at once (the
/// bench holds the goal, drift p99 < 5 s); this bound allows for a loaded machine.
const DRIFT_TIMEOUT: Duration = Duration::from_secs(30);
/// Status counts follow the speakers within a resync interval plus a reconcile.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a negative check watches that a route does not show up.
const QUIET: Duration = Duration::from_secs(3);
/// A prefix of cell b's that b does not declare: b announces it by hand.
const UNDECLARED: &str = "203.0.113.0/24";
/// What cell b declares (in both tests).
const B_NETWORKS: [&str; 1] = ["192.0.2.128/25"];

/// The shared control plane and one controller for this binary, default settings.
fn control_plane() -> &'static ControlPlane {
    support::controller::shared(&[]).0
}

fn endpoint_name(cell: &TrafficCell) -> String {
    format!("ep-{}", cell.name)
}

fn endpoint(cell: &TrafficCell, networks: &[&str]) -> manifests::Endpoint {
    manifests::endpoint(&endpoint_name(cell))
        .cell(&cell.name)
        .address(cell.underlay)
        .asn(cell.asn)
        .port(cells::BGP_PORT)
        .networks(networks)
}

/// The endpoint of `cell`, managed by cellnet through its speaker's API.
fn managed(cell: &TrafficCell, networks: &[&str]) -> String {
    endpoint(cell, networks).gobgp(&cell.speaker.api_url()).yaml()
}

/// The endpoint of `cell` as an external one: cellnet does not touch its speaker.
fn external(cell: &TrafficCell, networks: &[&str]) -> String {
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
