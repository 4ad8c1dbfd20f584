//! Which of our settings a reported peer does not have: what decides whether to write.
use std::net::IpAddr;

use super::BGP_PORT;
use super::from_proto::family_from_proto;
use super::to_proto::{effective_families, effective_keepalive, effective_max_prefixes, effective_multihop};
use crate::sdn::gobgp::proto;
use crate::sdn::{AddressFamily, PeerConfig};

/// The families a reported peer runs; `Err(())` if one of them is not ours to name.
fn observed_families(peer: &proto::Peer) -> Result<Vec<AddressFamily>, ()> {
    let mut families = Vec::new();
    for afi_safi in &peer.afi_safis {
        let Some(config) = &afi_safi.config else { continue };
        if !config.enabled {
            continue;
        }
        families.push(config.family.as_ref().and_then(family_from_proto).ok_or(())?);
    }
    families.sort();
    families.dedup();
    Ok(families)
}

/// The prefix limits of a reported peer's enabled families (`None`: no limit; GoBGP reports a
/// limit of 0 as no `prefix_limits` at all), in the order of its families.
pub(super) fn observed_limits(peer: &proto::Peer) -> Vec<Option<u32>> {
    peer.afi_safis
        .iter()
        .filter(|a| a.config.as_ref().is_some_and(|c| c.enabled))
        .map(|a| {
            a.prefix_limits
                .as_ref()
                .map(|l| l.max_prefixes)
                .filter(|n| *n > 0)
        })
        .collect()
}

/// The names of the settings in which the reported peer differs from `desired` (the
/// configuration only: the admin state is handled apart, see [`admin_down`]). Empty means
/// "nothing to write". Never contains a secret value, only the name `password`.
///
/// [`admin_down`]: super::admin_down
pub fn peer_diff(desired: &PeerConfig, observed: &proto::Peer) -> Vec<&'static str> {
    let conf = observed.conf.clone().unwrap_or_default();
    let transport = observed.transport.clone().unwrap_or_default();
    let timers = observed
        .timers
        .as_ref()
        .and_then(|t| t.config)
        .unwrap_or_default();
    let multihop = observed.ebgp_multihop.unwrap_or_default();

    let mut fields = Vec::new();
    if conf.peer_asn != desired.peer_asn {
        fields.push("peer_asn");
    }
    let remote_port = if transport.remote_port == 0 {
        u32::from(BGP_PORT)
    } else {
        transport.remote_port
    };
    if remote_port != u32::from(desired.remote_port) {
        fields.push("remote_port");
    }
    if transport.local_address.parse::<IpAddr>().ok() != Some(desired.local_address) {
        fields.push("local_address");
    }
    if transport.passive_mode != desired.passive {
        fields.push("passive_mode");
    }
    if timers.hold_time != u64::from(desired.hold_time) {
        fields.push("hold_time");
    }
    if timers.keepalive_interval != effective_keepalive(desired) {
        fields.push("keepalive_interval");
    }
    let observed_multihop = multihop.enabled.then_some(multihop.multihop_ttl);
    if observed_multihop != effective_multihop(desired).map(u32::from) {
        fields.push("ebgp_multihop");
    }
    if observed_families(observed).as_deref() != Ok(effective_families(desired).as_slice()) {
        fields.push("families");
    }
    if observed_limits(observed)
        .iter()
        .any(|limit| *limit != effective_max_prefixes(desired))
    {
        fields.push("max_prefixes");
    }
    if observed_graceful_restart(observed) != desired.graceful_restart {
        fields.push("graceful_restart");
    }
    if conf.auth_password != desired.password.as_ref().map(|p| p.expose()).unwrap_or("") {
        fields.push("password");
    }
    fields
}

/// Whether the peer is down because it tripped its prefix limit (`PFX_CT`): GoBGP then keeps it
/// idle until `EnablePeer`; neither a new limit nor the neighbour sending less brings it back.
pub fn prefix_limit_tripped(peer: &proto::Peer) -> bool {
    peer.state
        .as_ref()
        .is_some_and(|s| s.admin_state == proto::peer_state::AdminState::PfxCt as i32)
}

/// Whether `ensure_peer` should enable a peer that tripped its prefix limit: only when the
/// desired limit is higher than the one it tripped on (or there is no limit any more), and the
/// peer is not meant to be shut down. Never at the same limit: the neighbour would send the same
/// paths again and trip it again, a session flapping every few seconds. Changing the limit, or
/// `adminState` Disabled then Enabled (`DisablePeer`, `EnablePeer`), brings it back.
pub fn reenable_after_limit(desired: &PeerConfig, observed: &proto::Peer) -> bool {
    if desired.admin_down || !prefix_limit_tripped(observed) {
        return false;
    }
    // The lowest limit of its families is the one that can have tripped first.
    let tripped_at = observed_limits(observed).into_iter().flatten().min();
    match (effective_max_prefixes(desired), tripped_at) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(wanted), Some(before)) => wanted > before,
    }
}

/// The restart time of a reported peer whose graceful restart is on, with every enabled family
/// in the capability (what [`super::to_proto::new_peer`] writes); `None` when it is off. A peer
/// with graceful restart on but a family left out reads as `Some(0)`, which no desired restart
/// time (1 to 4095) equals, so it is rewritten.
fn observed_graceful_restart(peer: &proto::Peer) -> Option<u16> {
    let gr = peer.graceful_restart.as_ref().filter(|gr| gr.enabled)?;
    let every_family = peer
        .afi_safis
        .iter()
        .filter(|a| a.config.as_ref().is_some_and(|c| c.enabled))
        .all(|a| {
            a.mp_graceful_restart
                .as_ref()
                .and_then(|m| m.config)
                .is_some_and(|c| c.enabled)
        });
    Some(if every_family {
        u16::try_from(gr.restart_time).unwrap_or(0)
    } else {
        0
    })
}
