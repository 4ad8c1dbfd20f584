//! What GoBGP reports (`ListPeer`, `WatchEvent`) in our terms.
use std::net::IpAddr;

use crate::sdn::gobgp::proto::{self, family, peer_state, watch_event_response};
use crate::sdn::{AddressFamily, OWNER_PREFIX, ObservedPeer, PeerDiagnostics, SdnEvent, SessionState};

/// GoBGP's AFI/SAFI pair as our family; `None` for families cellnet does not manage.
pub fn family_from_proto(family: &proto::Family) -> Option<AddressFamily> {
    let afi = family::Afi::try_from(family.afi).ok()?;
    let safi = family::Safi::try_from(family.safi).ok()?;
    match (afi, safi) {
        (family::Afi::Ip, family::Safi::Unicast) => Some(AddressFamily::Ipv4Unicast),
        (family::Afi::Ip6, family::Safi::Unicast) => Some(AddressFamily::Ipv6Unicast),
        (family::Afi::L2vpn, family::Safi::Evpn) => Some(AddressFamily::L2vpnEvpn),
        _ => None,
    }
}

/// GoBGP's `PeerState.SessionState` as ours.
pub fn session_from_proto(state: i32) -> SessionState {
    use peer_state::SessionState as S;
    match S::try_from(state) {
        Ok(S::Idle) => SessionState::Idle,
        Ok(S::Connect) => SessionState::Connect,
        Ok(S::Active) => SessionState::Active,
        Ok(S::Opensent) => SessionState::OpenSent,
        Ok(S::Openconfirm) => SessionState::OpenConfirm,
        Ok(S::Established) => SessionState::Established,
        Ok(S::Unknown) | Err(_) => SessionState::Unknown,
    }
}

/// The neighbour address of a reported peer.
pub fn neighbor_of(peer: &proto::Peer) -> Option<IpAddr> {
    let conf_address = peer
        .conf
        .as_ref()
        .map(|c| c.neighbor_address.as_str())
        .unwrap_or("");
    let state_address = peer
        .state
        .as_ref()
        .map(|s| s.neighbor_address.as_str())
        .unwrap_or("");
    conf_address.parse().or_else(|_| state_address.parse()).ok()
}

/// A reported peer's description.
pub fn description_of(peer: &proto::Peer) -> &str {
    peer.conf.as_ref().map(|c| c.description.as_str()).unwrap_or("")
}

/// The ownership marker in a description, if it carries one.
pub fn owner_of(description: &str) -> Option<String> {
    description
        .starts_with(OWNER_PREFIX)
        .then(|| description.to_owned())
}

/// What a conflict reports as the current owner: the description, if there is one.
pub fn conflict_owner(description: &str) -> Option<String> {
    (!description.is_empty()).then(|| description.to_owned())
}

/// Whether the peer is administratively down (`DisablePeer`, or created down).
pub fn admin_down(peer: &proto::Peer) -> bool {
    peer.state
        .as_ref()
        .is_some_and(|s| s.admin_state == peer_state::AdminState::Down as i32)
}

/// The session state of a reported peer.
pub fn session_of(peer: &proto::Peer) -> SessionState {
    peer.state
        .as_ref()
        .map(|s| session_from_proto(s.session_state))
        .unwrap_or_default()
}

/// A reported peer in our terms; `None` if it has no usable neighbour address (e.g. an
/// unnumbered peer on an interface, which cellnet never creates). Drops the password.
pub fn observed_peer(peer: &proto::Peer) -> Option<ObservedPeer> {
    let state = peer.state.clone().unwrap_or_default();
    // GoBGP 3 keeps no last error or notification text; the prefix-limit shutdown is the one
    // error state it reports.
    let last_error = (state.admin_state == peer_state::AdminState::PfxCt as i32)
        .then(|| "shut down by GoBGP: maximum prefix limit exceeded".to_owned());
    Some(ObservedPeer {
        neighbor: neighbor_of(peer)?,
        owner: owner_of(description_of(peer)),
        session: session_from_proto(state.session_state),
        admin_down: admin_down(peer),
        last_error,
        graceful_restart: graceful_restart_negotiated(peer),
        diagnostics: diagnostics_of(peer),
    })
}

/// GoBGP's message counters and negotiated timers. GoBGP 3 counts messages by type but keeps no
/// NOTIFICATION codes, shutdown message or the AS of a refused OPEN (`PeerState` has no field
/// for them), so those stay unknown.
pub fn diagnostics_of(peer: &proto::Peer) -> PeerDiagnostics {
    let state = peer.state.as_ref();
    let messages = state.and_then(|s| s.messages.as_ref());
    let received = messages.and_then(|m| m.received.as_ref());
    let sent = messages.and_then(|m| m.sent.as_ref());
    let established = state.is_some_and(|s| s.session_state == peer_state::SessionState::Established as i32);
    // The timers' state holds the agreed values only while the session is up.
    let timers = peer
        .timers
        .as_ref()
        .and_then(|t| t.state.as_ref())
        .filter(|_| established);
    let seconds = |v: u64| u16::try_from(v).ok();
    PeerDiagnostics {
        opens_received: Some(received.map_or(0, |m| m.open)),
        notifications_sent: Some(sent.map_or(0, |m| m.notification)),
        notifications_received: Some(received.map_or(0, |m| m.notification)),
        negotiated_hold_time: timers.and_then(|t| seconds(t.negotiated_hold_time)),
        negotiated_keepalive: timers.and_then(|t| seconds(t.keepalive_interval)),
    }
}

/// On an established session, whether GoBGP both advertised and received the graceful restart
/// capability for one of its families (`afi_safis[].mp_graceful_restart.state`); `None` before.
pub fn graceful_restart_negotiated(peer: &proto::Peer) -> Option<bool> {
    if session_of(peer) != SessionState::Established {
        return None;
    }
    Some(peer.afi_safis.iter().any(|a| {
        a.mp_graceful_restart
            .as_ref()
            .and_then(|m| m.state.as_ref())
            .is_some_and(|s| s.advertised && s.received)
    }))
}

/// A `WatchEvent` message as events: a peer's change, or for a change of best paths one
/// [`SdnEvent::Routes`] per source (each neighbour once, the speaker's own paths once), however
/// many paths one bulk update changed. Nothing for the end of the initial dump or for families
/// cellnet does not route (EVPN, flowspec...).
pub fn events_from_watch(response: proto::WatchEventResponse) -> Vec<SdnEvent> {
    use watch_event_response::peer_event::Type;
    match response.event {
        Some(watch_event_response::Event::Peer(event)) => {
            if event.r#type == Type::EndOfInit as i32 {
                return Vec::new();
            }
            let event = match event.peer.as_ref().and_then(neighbor_of) {
                Some(neighbor) => SdnEvent::Peer {
                    neighbor,
                    session: event.peer.as_ref().map(session_of).unwrap_or_default(),
                },
                None => SdnEvent::Resync,
            };
            vec![event]
        }
        Some(watch_event_response::Event::Table(table)) => routes_changed(&table.paths),
        None => Vec::new(),
    }
}

/// One `Routes` event per distinct source of the unicast paths, in order of first appearance.
fn routes_changed(paths: &[proto::Path]) -> Vec<SdnEvent> {
    let mut sources: Vec<Option<IpAddr>> = Vec::new();
    for path in paths.iter().filter(|p| is_unicast(p)) {
        // GoBGP lists a local path's source as "<nil>".
        let source = path.neighbor_ip.parse::<IpAddr>().ok();
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    sources
        .into_iter()
        .map(|neighbor| SdnEvent::Routes { neighbor })
        .collect()
}

fn is_unicast(path: &proto::Path) -> bool {
    let family = path.family.as_ref().and_then(family_from_proto);
    matches!(
        family,
        Some(AddressFamily::Ipv4Unicast | AddressFamily::Ipv6Unicast)
    )
}
