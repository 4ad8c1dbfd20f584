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

use support::cells::{self, TrafficCell, TrafficCells};
use support::packets::{Listener, exchange};
use support::report;

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
        let path = ["global", "rib", "add", network, "nexthop", &next_hop, "-a", "ipv4"];
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
