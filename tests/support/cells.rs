//! Two cells that carry real traffic: the namespaces, management and underlay links of a
//! [`CellPair`] (netns.rs), and in each cell
//! - its infrastructure addresses on its own `lo` (the kernel has no `dummy` links here),
//! - its speaker: gobgpd (configured by cellnet over the management link), BGP port 179,
//! - its fabric router: FRR (fabric.rs), an iBGP neighbour of the speaker, which installs what
//!   the speaker learns into the namespace's kernel table.
//!
//! The fabric router is a *static* neighbour in gobgpd's own TOML (passive, route-reflector
//! client), so cellnet's peers stay separate from it; the TOML's global config has the AS and
//! port cellnet is told, so cellnet finds the speaker started and agrees with it.
//!
//! ```text
//!   cell a ns                                         cell b ns
//!   lo: 192.0.2.x (cell networks), fabric /32         lo: ...
//!   FRR bgpd --iBGP-- gobgpd ==underlay eBGP== gobgpd --iBGP-- FRR bgpd
//!   zebra -> kernel table                             zebra -> kernel table
//! ```
//!
//! Addresses: the pair's own 198.51.100.x (the fabric /32s take offsets 13 and 14 of the
//! pair's /28, unused by netns.rs) and whatever documentation prefixes the test puts on `lo`.
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::fabric::{FABRIC_BGP_PORT, FabricRouter};
use super::gobgp::{ESTABLISHED, Gobgpd};
use super::netns::{self, CellPair, NetCell};
use super::report;

/// The speakers' BGP port inside the namespaces.
pub const BGP_PORT: u16 = 179;
/// How long the iBGP session between a fresh speaker and its fabric router may take.
const FABRIC_TIMEOUT: Duration = Duration::from_secs(30);

/// One cell: its speaker and fabric router (stopped on drop) and its addresses.
#[derive(Debug)]
pub struct TrafficCell {
    /// The cell's name (`spec.cell` of its endpoint).
    pub name: String,
    pub asn: u32,
    pub netns: String,
    /// The speaker's address: the next hop of the paths it originates.
    pub underlay: Ipv4Addr,
    // Fields drop in order: the daemons stop before the namespaces go (see `TrafficCells`).
    pub fabric: FabricRouter,
    pub speaker: Gobgpd,
}

/// Cells `a` and `b`; dropping them stops every daemon, then removes the namespaces.
#[derive(Debug)]
pub struct TrafficCells {
    pub a: TrafficCell,
    pub b: TrafficCell,
    pub pair: CellPair,
}

/// `None` when namespaces and FRR are both there, else why not (tests skip then).
pub fn unavailable() -> Option<String> {
    netns::unavailable().or_else(super::fabric::unavailable)
}

impl TrafficCells {
    /// Cells `<prefix>-a` (AS 65401) and `<prefix>-b` (AS 65402) with `a_lo` and `b_lo` (e.g.
    /// `192.0.2.1/26`) on their `lo`; returns once each speaker has its fabric router as an
    /// Established neighbour. Panics (with the logs) if that fails.
    pub fn create(prefix: &str, a_lo: &[&str], b_lo: &[&str]) -> TrafficCells {
        Self::create_with(prefix, a_lo, b_lo, false)
    }

    /// Like [`TrafficCells::create`], with graceful restart (RFC 4724) on each cell's fabric
    /// session too (`graceful`): the speaker advertises the capability with IPv4 unicast to its
    /// fabric router, and FRR, as helper, keeps the routes it learnt from a speaker that went
    /// away until the restarted speaker sends End-of-RIB. Without it, killing a speaker takes
    /// every route it gave FRR out of its own cell's kernel at once, whatever the interconnect
    /// says.
    pub fn create_with(prefix: &str, a_lo: &[&str], b_lo: &[&str], graceful: bool) -> TrafficCells {
        Self::create_fabric(
            prefix,
            a_lo,
            b_lo,
            Fabric {
                graceful,
                evpn: false,
            },
        )
    }

    /// Like [`TrafficCells::create`], each cell's fabric session carrying `l2vpn-evpn` too: FRR
    /// advertises the VNIs of the cell's VXLAN devices (`advertise-all-vni`) and programs the
    /// kernel's forwarding entries from the other cell's EVPN routes (segments.rs).
    pub fn create_evpn(prefix: &str, a_lo: &[&str], b_lo: &[&str]) -> TrafficCells {
        Self::create_fabric(
            prefix,
            a_lo,
            b_lo,
            Fabric {
                graceful: false,
                evpn: true,
            },
        )
    }

    fn create_fabric(prefix: &str, a_lo: &[&str], b_lo: &[&str], fabric: Fabric) -> TrafficCells {
        let began = Instant::now();
        let pair = CellPair::create();
        let a = TrafficCell::start(&format!("{prefix}-a"), 65401, &pair.a, a_lo, fabric);
        let b = TrafficCell::start(&format!("{prefix}-b"), 65402, &pair.b, b_lo, fabric);
        for cell in [&a, &b] {
            cell.wait_fabric();
        }
        report(&format!(
            "cells {} and {}: speakers and fabric routers up in {:.1} s",
            a.name,
            b.name,
            began.elapsed().as_secs_f64()
        ));
        TrafficCells { a, b, pair }
    }

    /// Cuts (`false`) or restores (`true`) the underlay, at cell `a`'s end.
    pub fn set_underlay(&self, up: bool) {
        self.pair.set_underlay(up);
    }
}

impl TrafficCell {
    fn start(name: &str, asn: u32, net: &NetCell, lo: &[&str], fabric: Fabric) -> TrafficCell {
        let graceful = fabric.graceful;
        let fabric_address = add(net.underlay, 4);
        let mut addresses = vec![format!("{fabric_address}/32")];
        addresses.extend(lo.iter().map(|a| a.to_string()));
        for address in &addresses {
            netns::ip(&["-n", &net.netns, "addr", "add", address, "dev", "lo"])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut toml = speaker_toml(asn, net.underlay, fabric_address, graceful);
        if graceful {
            toml.push_str(FABRIC_GRACEFUL_RESTART);
        }
        if fabric.evpn {
            toml.push_str(FABRIC_EVPN);
        }
        let speaker = Gobgpd::start_in_netns_with_config(name, &net.netns, net.api_host, net.underlay, &toml);
        let fabric = match fabric.evpn {
            true => FabricRouter::start_evpn(name, &net.netns, asn, fabric_address, net.underlay),
            false => FabricRouter::start(name, &net.netns, asn, fabric_address, net.underlay, graceful),
        };
        TrafficCell {
            name: name.to_owned(),
            asn,
            netns: net.netns.clone(),
            underlay: net.underlay,
            fabric,
            speaker,
        }
    }

    /// Waits (at most `timeout`) until the fabric router is an Established neighbour of the
    /// speaker again (after a restart of either); returns how long that took.
    pub fn wait_fabric_again(&self, timeout: Duration) -> Duration {
        let peer = self.fabric.address.into();
        let began = Instant::now();
        while self.speaker.session_state(peer) != Some(ESTABLISHED) {
            if began.elapsed() > timeout {
                panic!(
                    "{}: the fabric router {peer} is not Established on the speaker after \
                     {timeout:?}\npeers: {}\n--- gobgpd log ---\n{}\n{}",
                    self.name,
                    self.speaker.neighbors_json(),
                    self.speaker.log(),
                    self.fabric.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        began.elapsed()
    }

    fn wait_fabric(&self) {
        self.wait_fabric_again(FABRIC_TIMEOUT);
    }

    /// The `proto bgp` routes of the cell's kernel table, as `dst via gateway`.
    pub fn bgp_routes(&self) -> Vec<String> {
        let json = netns::ip(&["-n", &self.netns, "-j", "route", "show", "proto", "bgp"])
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        let routes: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_default();
        routes
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("{} via {}", str_of(&r["dst"]), str_of(&r["gateway"])))
            .collect()
    }

    /// Whether the kernel has a `proto bgp` route to exactly `prefix`.
    pub fn has_route(&self, prefix: &str) -> bool {
        self.bgp_routes()
            .iter()
            .any(|r| r.split(' ').next() == Some(prefix))
    }

    /// Waits (at most `timeout`) until the kernel has (`present`) or lacks a `proto bgp` route
    /// to `prefix`; returns how long that took. Panics with both tables and logs otherwise.
    pub fn wait_route(&self, prefix: &str, present: bool, timeout: Duration) -> Duration {
        let began = Instant::now();
        while self.has_route(prefix) != present {
            if began.elapsed() > timeout {
                panic!(
                    "{}: after {timeout:?} the kernel {} a route to {prefix}; bgp routes: {:?}\n\
                     speaker's RIB: {}\n{}",
                    self.name,
                    if present { "still lacks" } else { "still has" },
                    self.bgp_routes(),
                    self.speaker.cli(&["global", "rib"]).unwrap_or_else(|e| e),
                    self.fabric.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        began.elapsed()
    }
}

fn str_of(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn add(address: Ipv4Addr, offset: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) + offset)
}

/// gobgpd's own config: the global settings cellnet will ask for (same AS and port) and the
/// fabric router as a route-reflector client (it gets every path the speaker has).
///
/// The fabric router dials the speaker (`passive-mode` here), except with `graceful`: then the
/// speaker dials the fabric router's port 1179 from its own address, and FRR only listens (see
/// fabric.rs). After a restart, gobgpd dials 5 to 10 s after its start (GoBGP's first connect
/// attempt), by when cellnet has re-created the interconnect peer, so the speaker (`-r`)
/// holds its End-of-RIB to the fabric router back until that peer's routes are in or its
/// deferral timer ends. A fabric router that dialled first would get the End-of-RIB at once,
/// with none of the other cell's routes, and drop the stale ones it kept (seen: 73 of 117
/// connections failed, "Network is unreachable", until the interconnect was back 8 s later);
/// and FRR's own reconnect backs off while the speaker is down (70 s and more).
fn speaker_toml(asn: u32, underlay: Ipv4Addr, fabric: Ipv4Addr, graceful: bool) -> String {
    let transport = if graceful {
        format!("remote-port = {FABRIC_BGP_PORT}\n\x20   local-address = \"{underlay}\"")
    } else {
        "passive-mode = true".to_owned()
    };
    format!(
        "[global.config]\n\
         \x20 as = {asn}\n\
         \x20 router-id = \"{underlay}\"\n\
         \x20 port = {BGP_PORT}\n\
         [[neighbors]]\n\
         \x20 [neighbors.config]\n\
         \x20   neighbor-address = \"{fabric}\"\n\
         \x20   peer-as = {asn}\n\
         \x20 [neighbors.timers.config]\n\
         \x20   hold-time = 9\n\
         \x20   keepalive-interval = 3\n\
         \x20 [neighbors.transport.config]\n\
         \x20   {transport}\n\
         \x20 [neighbors.route-reflector.config]\n\
         \x20   route-reflector-client = true\n\
         \x20   route-reflector-cluster-id = \"{underlay}\"\n"
    )
}

/// What a cell's fabric session carries beside IPv4 unicast.
#[derive(Clone, Copy, Debug)]
struct Fabric {
    graceful: bool,
    evpn: bool,
}

/// Appended to the fabric neighbour of [`speaker_toml`]: both families on the session with the
/// cell's FRR (listing one family replaces GoBGP's default of IPv4 unicast alone).
const FABRIC_EVPN: &str = "\
\x20 [[neighbors.afi-safis]]
\x20   [neighbors.afi-safis.config]
\x20     afi-safi-name = \"ipv4-unicast\"
\x20 [[neighbors.afi-safis]]
\x20   [neighbors.afi-safis.config]
\x20     afi-safi-name = \"l2vpn-evpn\"
";

/// Appended to the fabric neighbour of [`speaker_toml`] (GoBGP's graceful restart guide,
/// "Restarting speaker": the neighbour's `graceful-restart` and its family's
/// `mp-graceful-restart`). `deferral-time`: how long a speaker started with `-r` waits for its
/// neighbours' End-of-RIB before it sends the fabric router what it has (GoBGP's default, 360 s,
/// would outlast FRR's stale-path timer).
const FABRIC_GRACEFUL_RESTART: &str = "\
\x20 [neighbors.graceful-restart.config]
\x20   enabled = true
\x20   restart-time = 120
\x20   deferral-time = 30
\x20 [[neighbors.afi-safis]]
\x20   [neighbors.afi-safis.config]
\x20     afi-safi-name = \"ipv4-unicast\"
\x20   [neighbors.afi-safis.mp-graceful-restart.config]
\x20     enabled = true
";
