//! Our desired peer as the protobuf messages GoBGP is sent.
use std::net::IpAddr;

use super::from_proto::family_from_proto;
use crate::sdn::gobgp::proto::{self, family};
use crate::sdn::{AddressFamily, PeerConfig, SdnError};

/// GoBGP turns an enabled eBGP multihop with TTL 0 into this.
const DEFAULT_MULTIHOP_TTL: u8 = 255;

/// Our family as GoBGP's AFI/SAFI pair.
pub fn family_to_proto(family: AddressFamily) -> proto::Family {
    let (afi, safi) = match family {
        AddressFamily::Ipv4Unicast => (family::Afi::Ip, family::Safi::Unicast),
        AddressFamily::Ipv6Unicast => (family::Afi::Ip6, family::Safi::Unicast),
        AddressFamily::L2vpnEvpn => (family::Afi::L2vpn, family::Safi::Evpn),
    };
    proto::Family {
        afi: afi as i32,
        safi: safi as i32,
    }
}

/// Settings GoBGP cannot express; checked before anything is written.
pub fn check_supported(desired: &PeerConfig) -> Result<(), SdnError> {
    if desired.hold_time == 0 {
        // GoBGP replaces a hold time of 0 by its default of 90 s.
        return Err(SdnError::Unsupported(format!(
            "GoBGP cannot disable the hold timer (hold time 0) for neighbour {}",
            desired.neighbor
        )));
    }
    Ok(())
}

/// The families GoBGP will run: the desired ones, or (like GoBGP) the unicast family of the
/// neighbour's address when none is given. Sorted.
pub fn effective_families(desired: &PeerConfig) -> Vec<AddressFamily> {
    if desired.families.is_empty() {
        return vec![match desired.neighbor {
            IpAddr::V4(_) => AddressFamily::Ipv4Unicast,
            IpAddr::V6(_) => AddressFamily::Ipv6Unicast,
        }];
    }
    let mut families = desired.families.clone();
    families.sort();
    families.dedup();
    families
}

/// The keepalive GoBGP will run: a keepalive of 0 becomes a third of the hold time there.
pub fn effective_keepalive(desired: &PeerConfig) -> u64 {
    match desired.keepalive_interval {
        0 => u64::from(desired.hold_time) / 3,
        k => u64::from(k),
    }
}

/// The multihop TTL GoBGP will run (`None`: directly connected only).
pub(super) fn effective_multihop(desired: &PeerConfig) -> Option<u8> {
    desired
        .ebgp_multihop
        .map(|ttl| if ttl == 0 { DEFAULT_MULTIHOP_TTL } else { ttl })
}

fn password_of(desired: &PeerConfig) -> String {
    desired
        .password
        .as_ref()
        .map(|p| p.expose().to_owned())
        .unwrap_or_default()
}

fn multihop_of(desired: &PeerConfig) -> proto::EbgpMultihop {
    let multihop = effective_multihop(desired);
    proto::EbgpMultihop {
        enabled: multihop.is_some(),
        multihop_ttl: multihop.map(u32::from).unwrap_or(0),
    }
}

/// The prefix limit GoBGP will run: `None` for no limit (GoBGP reads a limit of 0 as none).
pub fn effective_max_prefixes(desired: &PeerConfig) -> Option<u32> {
    desired.max_prefixes.filter(|n| *n > 0)
}

/// One family's prefix limit: more paths than this in the neighbour's Adj-RIB-In of that family
/// and GoBGP sends a Cease (maximum number of prefixes reached) and keeps the peer down
/// (admin state `PFX_CT`) until it is enabled again. No warning threshold: status says it.
fn prefix_limit(family: AddressFamily, desired: &PeerConfig) -> Option<proto::PrefixLimit> {
    effective_max_prefixes(desired).map(|max_prefixes| proto::PrefixLimit {
        family: Some(family_to_proto(family)),
        max_prefixes,
        shutdown_threshold_pct: 0,
    })
}

fn afi_safi(family: AddressFamily, desired: &PeerConfig) -> proto::AfiSafi {
    proto::AfiSafi {
        config: Some(proto::AfiSafiConfig {
            family: Some(family_to_proto(family)),
            enabled: true,
        }),
        prefix_limits: prefix_limit(family, desired),
        mp_graceful_restart: Some(mp_graceful_restart(desired)),
        ..Default::default()
    }
}

/// Per family: with graceful restart on, GoBGP lists the family in its capability, so the
/// other side keeps that family's routes while this speaker restarts (GoBGP's guide,
/// "Restarting speaker": `afi-safis.mp-graceful-restart.config.enabled`).
fn mp_graceful_restart(desired: &PeerConfig) -> proto::MpGracefulRestart {
    proto::MpGracefulRestart {
        config: Some(proto::MpGracefulRestartConfig {
            enabled: desired.graceful_restart.is_some(),
        }),
        state: None,
    }
}

/// The peer's `graceful_restart`: on with the restart time, or off. Nothing else is set: the
/// deferral timer only matters to a speaker started with `-r`, and RFC 8538 (restart after a
/// NOTIFICATION) would keep routes on a session cellnet shuts down on purpose.
fn graceful_restart(desired: &PeerConfig, base: Option<proto::GracefulRestart>) -> proto::GracefulRestart {
    let mut gr = base.unwrap_or_default();
    gr.enabled = desired.graceful_restart.is_some();
    gr.restart_time = desired.graceful_restart.map(u32::from).unwrap_or(0);
    gr
}

/// The peer that `AddPeer` gets for `desired`. Every value GoBGP would otherwise default is set
/// explicitly, so that what `ListPeer` reports back compares equal to it.
pub fn new_peer(desired: &PeerConfig) -> proto::Peer {
    proto::Peer {
        conf: Some(proto::PeerConf {
            neighbor_address: desired.neighbor.to_string(),
            peer_asn: desired.peer_asn,
            description: desired.owner.clone(),
            auth_password: password_of(desired),
            // Starting shut down needs no RFC 8203 message: there is no session yet.
            admin_down: desired.admin_down,
            ..Default::default()
        }),
        timers: Some(proto::Timers {
            config: Some(proto::TimersConfig {
                hold_time: u64::from(desired.hold_time),
                keepalive_interval: effective_keepalive(desired),
                ..Default::default()
            }),
            state: None,
        }),
        transport: Some(proto::Transport {
            local_address: desired.local_address.to_string(),
            remote_port: u32::from(desired.remote_port),
            passive_mode: desired.passive,
            ..Default::default()
        }),
        ebgp_multihop: Some(multihop_of(desired)),
        graceful_restart: Some(graceful_restart(desired, None)),
        afi_safis: effective_families(desired)
            .into_iter()
            .map(|family| afi_safi(family, desired))
            .collect(),
        ..Default::default()
    }
}

/// The peer that `UpdatePeer` gets: what GoBGP reported, with our settings written over it.
///
/// Starting from the reported peer keeps the values we do not manage (local AS, peer type,
/// connect-retry timer, graceful restart...) as they are, since GoBGP applies no defaults on
/// update and resets the session when its config, transport or families change.
pub fn updated_peer(desired: &PeerConfig, observed: &proto::Peer) -> proto::Peer {
    let mut peer = observed.clone();
    peer.state = None;
    let conf = peer.conf.get_or_insert_with(Default::default);
    conf.neighbor_address = desired.neighbor.to_string();
    conf.peer_asn = desired.peer_asn;
    conf.description = desired.owner.clone();
    conf.auth_password = password_of(desired);
    // Were the update to recreate the peer, it comes back in the admin state we want.
    conf.admin_down = desired.admin_down;

    let timers = peer.timers.get_or_insert_with(Default::default);
    timers.state = None;
    let timers = timers.config.get_or_insert_with(Default::default);
    timers.hold_time = u64::from(desired.hold_time);
    timers.keepalive_interval = effective_keepalive(desired);

    let transport = peer.transport.get_or_insert_with(Default::default);
    transport.local_address = desired.local_address.to_string();
    transport.remote_port = u32::from(desired.remote_port);
    // A change of passive mode is a transport change: GoBGP 3.10 deletes and re-adds the
    // neighbour (Cease, "other configuration change"), so the session resets.
    transport.passive_mode = desired.passive;

    peer.ebgp_multihop = Some(multihop_of(desired));
    // A change of graceful restart is an OPEN change: GoBGP 3.10 resets the session.
    peer.graceful_restart = Some(graceful_restart(desired, peer.graceful_restart.take()));
    peer.afi_safis = updated_afi_safis(desired, observed);
    peer
}

/// The desired families, keeping the reported entry of a family that stays (its sub-settings)
/// and adding fresh ones, each with the desired prefix limit. A change of the limit alone is
/// applied in place by GoBGP 3.10 (`updatePrefixLimitConfig`: no session reset; a limit below
/// what the neighbour already sent trips at once).
fn updated_afi_safis(desired: &PeerConfig, observed: &proto::Peer) -> Vec<proto::AfiSafi> {
    let mut afi_safis: Vec<proto::AfiSafi> = Vec::new();
    for family in effective_families(desired) {
        let existing = observed.afi_safis.iter().find(|a| {
            a.config
                .as_ref()
                .and_then(|c| c.family.as_ref())
                .and_then(family_from_proto)
                == Some(family)
        });
        let mut entry = existing.cloned().unwrap_or_else(|| afi_safi(family, desired));
        if let Some(config) = entry.config.as_mut() {
            config.enabled = true;
        }
        entry.state = None;
        entry.prefix_limits = prefix_limit(family, desired);
        entry.mp_graceful_restart = Some(mp_graceful_restart(desired));
        afi_safis.push(entry);
    }
    afi_safis
}
