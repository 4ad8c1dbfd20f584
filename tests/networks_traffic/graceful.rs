//! Issue 19 item 4: graceful restart (RFC 4724) keeps traffic flowing while a cell's speaker
//! restarts. Cell a's gobgpd is killed (SIGKILL, as a crash) and started again at once from its
//! own config file only, with GoBGP's `-r` (its graceful restart guide, "Restarting speaker"):
//! its global settings and fabric neighbour, none of cellnet's peers or paths. cellnet must
//! configure it again. Meanwhile new TCP connections go from a's network to b's, one every
//! [`PROBE_PAUSE`], and every one that fails is counted.
//!
//! The path of such a connection needs two kernel routes, both learnt over BGP:
//! - in b's kernel, the route to a's network: b's speaker learnt it from a's speaker over the
//!   interconnect. With `gracefulRestart` on, b keeps it (stale) while a's speaker is away;
//!   off, b withdraws it as soon as the session drops.
//! - in a's kernel, the route to b's network: a's fabric router (FRR) learnt it from a's
//!   speaker, whose death drops that iBGP session too. So the fixture runs graceful restart on
//!   the fabric session as well (`TrafficCells::create_with(.., true)`), in both tests; only
//!   the interconnect's `spec.bgp.gracefulRestart` differs between them.
//!
//! One test on one pair of cells, in two rounds so that it can fail: without graceful restart
//! the restart must break connections; with it, the same restart must break none.
use std::time::{Duration, Instant};

use cellnet::api::CellInterconnect;
use serde_json::Value;

use crate::speakers::rib_paths;
use crate::support::cells::{TrafficCell, TrafficCells};
use crate::support::packets::{Listener, Probe, ProbeCounts};
use crate::support::{ControlPlane, InterconnectStatusExt as _, manifests, namespace, report, wait_for};
use crate::{
    B_NETWORKS, READY_TIMEOUT, ROUTE_TIMEOUT, assert_connects, cic, control_plane, delete_all, endpoint_name,
    managed, serve, skip, wait_ready_is,
};

const A_NETWORK: &str = "192.0.2.0/25";
const CIC: &str = "gr-a-b";
/// How long a's speaker stays down: a supervisor's restart delay, longer than FRR's first
/// reconnect attempt (see the fabric's connect timer in fabric.rs).
const DOWNTIME: Duration = Duration::from_secs(3);
/// Between two probe connections.
const PROBE_PAUSE: Duration = Duration::from_millis(100);
/// The restarted speaker's session back: cellnet notices the restart (its watcher retries after
/// 1 s), re-creates the peer, and the sessions's connect and OPEN follow; a loaded machine adds.
const BACK_TIMEOUT: Duration = Duration::from_secs(90);
/// The fabric router back and its routes fresh again: its connect-retry timer (30 s and FRR's
/// jitter, fabric.rs), plus a loaded machine.
const FRESH_TIMEOUT: Duration = Duration::from_secs(60);
/// Probing goes on this long once everything is back, so a late withdrawal would be seen.
const SETTLE: Duration = Duration::from_secs(3);

/// One test on one pair of cells (a test binary has four pairs at most): the restart without
/// graceful restart first, which must break connections (else this test proves nothing), then
/// graceful restart turned on and the same restart again, which must not.
#[tokio::test(flavor = "multi_thread")]
async fn graceful_restart_keeps_traffic_over_a_speaker_restart() {
    if skip("graceful_restart_keeps_traffic_over_a_speaker_restart") {
        return;
    }
    let cp = control_plane();
    let ns = "traffic-gr";
    namespace(cp, ns).await;
    let mut cells = TrafficCells::create_with("gr", &["192.0.2.1/25"], &["192.0.2.129/25"], true);
    let on_b = serve(&cells.b, "192.0.2.129");

    connect(cp, ns, &cells, false);
    let without = restart_a_speaker(&mut cells, &on_b, false);
    assert!(
        !without.probes.failed.is_empty(),
        "no connection failed over the restart without graceful restart ({} went through): \
         the restart with it proves nothing",
        without.probes.ok
    );
    wait_ready_is(cp, ns, CIC, "True", None, READY_TIMEOUT);

    connect(cp, ns, &cells, true);
    let with = restart_a_speaker(&mut cells, &on_b, true);
    assert!(
        with.b_kept_route,
        "b withdrew a's network while a's speaker was away"
    );
    assert!(
        with.probes.failed.is_empty(),
        "{} of {} connections failed over the restart: {:?}",
        with.probes.failed.len(),
        with.total(),
        with.probes.failed
    );
    let (obj, _) = wait_ready_is(cp, ns, CIC, "True", None, READY_TIMEOUT);
    assert_negotiated(&obj, true);
    delete_all(cp, ns);
}

/// What one restart showed.
struct Restart {
    probes: ProbeCounts,
    /// b's kernel still had its route to a's network while a's speaker was away.
    b_kept_route: bool,
}

impl Restart {
    fn total(&self) -> usize {
        self.probes.ok + self.probes.failed.len()
    }
}

/// Cell a's speaker killed and started again while connections from a to b are probed; returns
/// once everything is back (cellnet's peer and paths, the session, the fabric's routes fresh).
fn restart_a_speaker(cells: &mut TrafficCells, on_b: &Listener, graceful: bool) -> Restart {
    assert_connects(&cells.a, "192.0.2.1", on_b, &cells.b);
    let probe = Probe::start(
        &cells.a.netns,
        "192.0.2.1".parse().unwrap(),
        on_b.address,
        PROBE_PAUSE,
    );
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    cells.a.speaker.kill();
    // b's speaker sees the connection close at once; its withdrawal (if any) reaches b's
    // kernel through FRR well within the downtime.
    std::thread::sleep(DOWNTIME);
    let b_kept_route = cells.b.has_route(A_NETWORK);
    let stale_on_b = stale_paths(&cells.b, A_NETWORK);
    cells.a.speaker.start_again(true);
    let restarted = Instant::now();
    let (a, b) = (&cells.a, &cells.b);
    let peer = b.underlay.into();
    let (_, recreated) = wait_for("cellnet's peer on a's restarted speaker", BACK_TIMEOUT, || {
        (a.speaker.neighbor_json(peer).map(|_| ()), String::new())
    });
    let established = a.speaker.wait_established(peer, BACK_TIMEOUT);
    let (_, paths_back) = wait_for("a's network originated again", BACK_TIMEOUT, || {
        let paths = rib_paths(a, A_NETWORK);
        (
            paths.iter().any(|p| !is_stale(p)).then_some(()),
            format!("{paths:?}"),
        )
    });
    a.wait_fabric_again(FRESH_TIMEOUT);
    b.wait_route(A_NETWORK, true, ROUTE_TIMEOUT);
    a.wait_route("192.0.2.128/25", true, ROUTE_TIMEOUT);
    let (_, fresh) = wait_for("a's fabric router has b's network fresh", FRESH_TIMEOUT, || {
        let stale = fabric_stale(a, "192.0.2.128/25");
        ((stale == Some(false)).then_some(()), format!("stale: {stale:?}"))
    });
    std::thread::sleep(SETTLE);
    let probes = probe.stop();
    let seen = Restart { probes, b_kept_route };
    report(&format!(
        "graceful restart {}: speaker a killed, API back in {:.1} s; b kept a's route: {} \
         ({} stale paths in b's RIB); after the start: cellnet's peer re-created in {:.1} s, \
         Established {:.1} s later, a's paths back {:.1} s later, a's fabric routes fresh {:.1} s \
         later; {} of {} connections failed{}",
        if graceful { "on" } else { "off" },
        (restarted - killed).as_secs_f64(),
        seen.b_kept_route,
        stale_on_b,
        recreated.as_secs_f64(),
        established.as_secs_f64(),
        paths_back.as_secs_f64(),
        fresh.as_secs_f64(),
        seen.probes.failed.len(),
        seen.total(),
        failure_span(&seen.probes)
    ));
    seen
}

/// Both endpoints managed, the interconnect with graceful restart on or off; returns once
/// both kernels route to the other cell and status says what was negotiated.
fn connect(cp: &ControlPlane, ns: &str, cells: &TrafficCells, graceful: bool) {
    let (a, b) = (&cells.a, &cells.b);
    let link = manifests::interconnect(CIC, &endpoint_name(a), &endpoint_name(b))
        .graceful_restart(graceful, 120)
        .yaml();
    let began = Instant::now();
    cp.apply(
        ns,
        &[managed(a, &[A_NETWORK]), managed(b, &B_NETWORKS), link].join("---\n"),
    );
    // Turning graceful restart on resets the session (a new OPEN): wait for the status that
    // says it was negotiated before the routes, which then are those of the new session.
    let (obj, _) = wait_for("status says what was negotiated", READY_TIMEOUT, || {
        let obj = cic(cp, ns, CIC);
        let sides = negotiated(&obj);
        let want = if graceful { Some(true) } else { None };
        ((sides == [want, want]).then_some(obj), format!("{sides:?}"))
    });
    a.wait_route("192.0.2.128/25", true, READY_TIMEOUT);
    b.wait_route(A_NETWORK, true, ROUTE_TIMEOUT);
    wait_ready_is(cp, ns, CIC, "True", None, READY_TIMEOUT);
    assert_negotiated(&obj, graceful);
    report(&format!(
        "{ns}: apply -> Ready with gracefulRestartNegotiated {:?} in {:.1} s",
        negotiated(&obj),
        began.elapsed().as_secs_f64()
    ));
}

fn negotiated(obj: &CellInterconnect) -> [Option<bool>; 2] {
    [obj.local(), obj.remote()].map(|s| s.and_then(|s| s.graceful_restart_negotiated))
}

/// Both sides say graceful restart was negotiated when it is on, and say nothing when off.
fn assert_negotiated(obj: &CellInterconnect, graceful: bool) {
    let want = if graceful { Some(true) } else { None };
    assert_eq!(
        negotiated(obj),
        [want, want],
        "status.<side>.gracefulRestartNegotiated"
    );
}

fn is_stale(path: &Value) -> bool {
    path["stale"].as_bool().unwrap_or(false)
}

/// How many paths to `prefix` the cell's speaker keeps as stale.
fn stale_paths(cell: &TrafficCell, prefix: &str) -> usize {
    rib_paths(cell, prefix).iter().filter(|p| is_stale(p)).count()
}

/// Whether FRR's best path to `prefix` in the cell's fabric router is stale (`None`: no path).
fn fabric_stale(cell: &TrafficCell, prefix: &str) -> Option<bool> {
    let out = cell
        .fabric
        .vtysh(&format!("show bgp ipv4 unicast {prefix} json"))
        .ok()?;
    let route: Value = serde_json::from_str(out.trim()).ok()?;
    let paths = route["paths"].as_array()?;
    (!paths.is_empty()).then(|| paths.iter().any(|p| p["stale"].as_bool().unwrap_or(false)))
}

/// When the failures began and ended, for the report.
fn failure_span(counts: &ProbeCounts) -> String {
    match (counts.failed.first(), counts.failed.last()) {
        (Some((first, why)), Some((last, _))) => format!(
            " (from {:.1} s to {:.1} s of probing; first: {why})",
            first.as_secs_f64(),
            last.as_secs_f64()
        ),
        _ => String::new(),
    }
}
