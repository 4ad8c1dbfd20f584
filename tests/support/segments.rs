//! L2 segments in test cells (issue 22), as in shared/notes/networks.md "L2 between cells": per
//! cell and VNI a bridge `br<vni>` and a VXLAN device `vx<vni>` (`nolearning`: forwarding
//! entries come only from EVPN, which the cell's FRR programs), and hosts in namespaces of their
//! own on a veth into the bridge. Documentation addresses only (the segment's subnet is the
//! test's choice, e.g. 192.0.2.0/24).
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::Command;

use cellnet::sdn::gobgp::proto::gobgp_api_client::GobgpApiClient;
use cellnet::sdn::gobgp::proto::{self, family};
use tonic::transport::{Channel, Endpoint};

use super::cells::TrafficCell;
use super::gobgp::Gobgpd;
use super::netns;

/// The VXLAN UDP port (IANA).
const VXLAN_PORT: &str = "4789";

fn must(args: &[&str]) {
    if let Err(e) = netns::ip(args) {
        panic!("{e}");
    }
}

fn bridge(netns: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("bridge")
        .args(["-n", netns])
        .args(args)
        .output()
        .map_err(|e| format!("bridge {args:?}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "bridge {args:?}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Makes segment `vni` in `cell`: `br<vni>` with `vx<vni>` (local address `vtep`, which must be
/// on the cell's `lo` or an interface) enslaved, learning off.
pub fn add_segment(cell: &TrafficCell, vni: u32, vtep: Ipv4Addr) {
    let ns = &cell.netns;
    let (br, vx, id, local) = (
        format!("br{vni}"),
        format!("vx{vni}"),
        vni.to_string(),
        vtep.to_string(),
    );
    must(&["-n", ns, "link", "add", &br, "type", "bridge"]);
    must(&[
        "-n",
        ns,
        "link",
        "add",
        &vx,
        "type",
        "vxlan",
        "id",
        &id,
        "local",
        &local,
        "dstport",
        VXLAN_PORT,
        "nolearning",
    ]);
    must(&["-n", ns, "link", "set", &vx, "master", &br]);
    bridge(ns, &["link", "set", "dev", &vx, "learning", "off"]).unwrap_or_else(|e| panic!("{e}"));
    must(&["-n", ns, "link", "set", &vx, "up"]);
    must(&["-n", ns, "link", "set", &br, "up"]);
}

/// A host on a segment: its own namespace, one veth into the cell's bridge. Removed on drop.
#[derive(Debug)]
pub struct Host {
    pub netns: String,
    pub address: Ipv4Addr,
    /// The MAC address of its interface, lowercase.
    pub mac: String,
}

impl Host {
    /// Host `address`/`prefix_len` on segment `vni` of `cell` (one host per cell and segment).
    pub fn start(cell: &TrafficCell, vni: u32, address: Ipv4Addr, prefix_len: u8) -> Host {
        let host_ns = format!("{}h", cell.netns);
        let (cell_end, br) = (format!("h{vni}"), format!("br{vni}"));
        must(&["netns", "add", &host_ns]);
        let mut host = Host {
            netns: host_ns.clone(),
            address,
            mac: String::new(),
        };
        must(&["-n", &host_ns, "link", "set", "lo", "up"]);
        must(&[
            "-n",
            &cell.netns,
            "link",
            "add",
            &cell_end,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &host_ns,
        ]);
        must(&["-n", &cell.netns, "link", "set", &cell_end, "master", &br]);
        must(&["-n", &cell.netns, "link", "set", &cell_end, "up"]);
        let cidr = format!("{address}/{prefix_len}");
        must(&["-n", &host_ns, "addr", "add", &cidr, "dev", "eth0"]);
        must(&["-n", &host_ns, "link", "set", "eth0", "up"]);
        let json =
            netns::ip(&["-n", &host_ns, "-j", "link", "show", "eth0"]).unwrap_or_else(|e| panic!("{e}"));
        let links: serde_json::Value = serde_json::from_str(json.trim()).expect("ip -j link");
        let mac = links[0]["address"].as_str().unwrap_or_default().to_lowercase();
        host.mac = mac;
        host
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = netns::ip(&["netns", "del", &self.netns]);
    }
}

/// The remote VTEPs in `cell`'s forwarding database for segment `vni`: the `dst` of its
/// `vx<vni>` entries (the all-zero MAC is the flood entry of a type-3 route).
pub fn fdb_destinations(cell: &TrafficCell, vni: u32) -> Vec<String> {
    let out = bridge(&cell.netns, &["-j", "fdb", "show", "dev", &format!("vx{vni}")]).unwrap_or_default();
    let entries: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
    let mut dsts: Vec<String> = entries
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["dst"].as_str().map(str::to_owned))
        .collect();
    dsts.sort();
    dsts.dedup();
    dsts
}

fn api(speaker: &Gobgpd) -> GobgpApiClient<Channel> {
    let endpoint = Endpoint::from_shared(speaker.api_url()).expect("the speaker's API URL");
    GobgpApiClient::new(endpoint.connect_lazy())
}

/// The speaker's peer at `neighbor`, as its gRPC API lists it.
async fn listed_peer(speaker: &Gobgpd, neighbor: Ipv4Addr) -> Option<proto::Peer> {
    let mut client = api(speaker);
    let request = proto::ListPeerRequest {
        address: neighbor.to_string(),
        enable_advertised: false,
    };
    let mut stream = client.list_peer(request).await.ok()?.into_inner();
    stream.message().await.ok()?.and_then(|r| r.peer)
}

fn is_evpn(afi_safi: &proto::AfiSafi) -> bool {
    let family = afi_safi.config.as_ref().and_then(|c| c.family);
    family.is_some_and(|f| f.afi == family::Afi::L2vpn as i32 && f.safi == family::Safi::Evpn as i32)
}

/// Whether the speaker's peer at `neighbor` is configured with `l2vpn-evpn`.
pub async fn carries_evpn(speaker: &Gobgpd, neighbor: Ipv4Addr) -> bool {
    listed_peer(speaker, neighbor)
        .await
        .is_some_and(|p| p.afi_safis.iter().any(is_evpn))
}

/// Drift by hand: removes `l2vpn-evpn` from the speaker's peer at `neighbor` over gRPC
/// (`UpdatePeer` with the peer as listed, less that family; GoBGP resets the session).
pub async fn drop_evpn_family(speaker: &Gobgpd, neighbor: Ipv4Addr) {
    let mut peer = listed_peer(speaker, neighbor).await.expect("the peer to drift");
    assert!(peer.afi_safis.iter().any(is_evpn), "{:?}", peer.afi_safis);
    peer.state = None;
    if let Some(timers) = peer.timers.as_mut() {
        timers.state = None;
    }
    peer.afi_safis.retain(|a| !is_evpn(a));
    let mut client = api(speaker);
    let request = proto::UpdatePeerRequest {
        peer: Some(peer),
        do_soft_reset_in: false,
    };
    client.update_peer(request).await.expect("UpdatePeer");
}
