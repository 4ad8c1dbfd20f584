//! Pure conversions between cellnet's SDN types and GoBGP's protobuf messages.
//!
//! Everything here is side-effect free so that the "what would we write" logic (and so the
//! zero-writes-in-steady-state property) is unit-testable without a speaker.
use std::error::Error as _;
use std::net::IpAddr;

use tonic::{Code, Status};

use super::proto::{self, family, peer_state, watch_event_response};
use crate::sdn::{
    AddressFamily, OWNER_PREFIX, ObservedPeer, PeerConfig, SdnError, SdnEvent, SessionState, SpeakerConfig,
};

/// BGP's well-known port; GoBGP dials it when a peer's remote port is 0.
pub const BGP_PORT: u16 = 179;
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

/// The `Global` that `StartBgp` gets for a speaker.
pub fn global_from_speaker(config: &SpeakerConfig) -> proto::Global {
    proto::Global {
        asn: config.asn,
        router_id: config.router_id.to_string(),
        listen_port: i32::from(config.listen_port),
        listen_addresses: vec![config.listen_address.to_string()],
        ..Default::default()
    }
}

/// Why a running speaker's global config disagrees with ours, naming both values; `None` if it
/// agrees on the AS and the listen port (the only settings GoBGP cannot change without a restart).
pub fn speaker_conflict(running: &proto::Global, desired: &SpeakerConfig) -> Option<String> {
    let mut reasons = Vec::new();
    if running.asn != desired.asn {
        reasons.push(format!(
            "it runs AS {} but AS {} is wanted",
            running.asn, desired.asn
        ));
    }
    if running.listen_port != i32::from(desired.listen_port) {
        reasons.push(format!(
            "it listens on port {} but port {} is wanted",
            running.listen_port, desired.listen_port
        ));
    }
    (!reasons.is_empty()).then(|| format!("the speaker already has a global config: {}", reasons.join("; ")))
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
fn effective_multihop(desired: &PeerConfig) -> Option<u8> {
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

fn afi_safi(family: AddressFamily) -> proto::AfiSafi {
    proto::AfiSafi {
        config: Some(proto::AfiSafiConfig {
            family: Some(family_to_proto(family)),
            enabled: true,
        }),
        ..Default::default()
    }
}

/// The peer that `AddPeer` gets for `desired`. Every value GoBGP would otherwise default is set
/// explicitly, so that what `ListPeer` reports back compares equal to it.
pub fn new_peer(desired: &PeerConfig) -> proto::Peer {
    let multihop = effective_multihop(desired);
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
            ..Default::default()
        }),
        ebgp_multihop: Some(proto::EbgpMultihop {
            enabled: multihop.is_some(),
            multihop_ttl: multihop.map(u32::from).unwrap_or(0),
        }),
        afi_safis: effective_families(desired).into_iter().map(afi_safi).collect(),
        ..Default::default()
    }
}

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

/// The names of the settings in which the reported peer differs from `desired` (the
/// configuration only: the admin state is handled apart, see [`admin_down`]). Empty means
/// "nothing to write". Never contains a secret value, only the name `password`.
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
    if conf.auth_password != desired.password.as_ref().map(|p| p.expose()).unwrap_or("") {
        fields.push("password");
    }
    fields
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

    let multihop = effective_multihop(desired);
    peer.ebgp_multihop = Some(proto::EbgpMultihop {
        enabled: multihop.is_some(),
        multihop_ttl: multihop.map(u32::from).unwrap_or(0),
    });

    // Keep the reported entry of a family that stays (its sub-settings), add fresh ones.
    let mut afi_safis: Vec<proto::AfiSafi> = Vec::new();
    for family in effective_families(desired) {
        let existing = observed.afi_safis.iter().find(|a| {
            a.config
                .as_ref()
                .and_then(|c| c.family.as_ref())
                .and_then(family_from_proto)
                == Some(family)
        });
        let mut entry = existing.cloned().unwrap_or_else(|| afi_safi(family));
        if let Some(config) = entry.config.as_mut() {
            config.enabled = true;
        }
        entry.state = None;
        afi_safis.push(entry);
    }
    peer.afi_safis = afi_safis;
    peer
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
    })
}

/// A `WatchEvent` message as an event, `None` for what we do not follow (table events, the end
/// of the initial dump).
pub fn event_from_watch(response: proto::WatchEventResponse) -> Option<SdnEvent> {
    use watch_event_response::peer_event::Type;
    match response.event? {
        watch_event_response::Event::Peer(event) => {
            if event.r#type == Type::EndOfInit as i32 {
                return None;
            }
            let Some(peer) = event.peer else {
                return Some(SdnEvent::Resync);
            };
            Some(match neighbor_of(&peer) {
                Some(neighbor) => SdnEvent::Peer {
                    neighbor,
                    session: session_of(&peer),
                },
                None => SdnEvent::Resync,
            })
        }
        watch_event_response::Event::Table(_) => None,
    }
}

/// A gRPC failure as an [`SdnError`] naming the endpoint.
///
/// A status with a source error comes from our side of the connection (connect, TLS, a broken
/// HTTP/2 stream): the speaker is unreachable. A status without one is the speaker's answer.
pub fn status_to_error(endpoint: &str, operation: &'static str, status: &Status) -> SdnError {
    let endpoint = endpoint.to_owned();
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => SdnError::AuthFailed {
            endpoint,
            message: status.message().to_owned(),
        },
        Code::Unavailable => SdnError::Unreachable {
            endpoint,
            message: describe(status),
        },
        _ if status.source().is_some() => SdnError::Unreachable {
            endpoint,
            message: describe(status),
        },
        _ => SdnError::Rejected {
            endpoint,
            operation,
            message: status.message().to_owned(),
        },
    }
}

/// The status message followed by its chain of causes ("tcp connect error: Connection refused").
fn describe(status: &Status) -> String {
    let mut message = status.message().to_owned();
    let mut source = status.source();
    while let Some(err) = source {
        let text = err.to_string();
        // tonic's own wrapper says nothing the rest of the chain does not.
        if text != "transport error" && !message.contains(&text) {
            message = if message.is_empty() {
                text
            } else {
                format!("{message}: {text}")
            };
        }
        source = err.source();
    }
    if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::sdn::Password;

    fn desired() -> PeerConfig {
        PeerConfig {
            neighbor: "192.0.2.2".parse().unwrap(),
            peer_asn: 65002,
            remote_port: 1790,
            local_address: "192.0.2.1".parse().unwrap(),
            hold_time: 9,
            keepalive_interval: 3,
            ebgp_multihop: None,
            families: vec![AddressFamily::Ipv4Unicast],
            password: None,
            owner: "cellnet:ns/a".into(),
            admin_down: false,
            admin_message: None,
            owned_record: false,
        }
    }

    /// What GoBGP 3.10 reports for a peer created from `new_peer` (the parts we read), with the
    /// defaults it fills in on its own.
    fn as_reported(sent: &proto::Peer) -> proto::Peer {
        let mut peer = sent.clone();
        let conf = peer.conf.as_mut().unwrap();
        conf.local_asn = 65001;
        conf.r#type = proto::PeerType::External as i32;
        let timers = peer.timers.as_mut().unwrap().config.as_mut().unwrap();
        timers.connect_retry = 120;
        timers.idle_hold_time_after_reset = 30;
        peer.state = Some(proto::PeerState {
            neighbor_address: conf.neighbor_address.clone(),
            session_state: peer_state::SessionState::Established as i32,
            auth_password: conf.auth_password.clone(),
            ..Default::default()
        });
        peer
    }

    #[test]
    fn families_round_trip() {
        for family in [
            AddressFamily::Ipv4Unicast,
            AddressFamily::Ipv6Unicast,
            AddressFamily::L2vpnEvpn,
        ] {
            assert_eq!(family_from_proto(&family_to_proto(family)), Some(family));
        }
        let flowspec = proto::Family {
            afi: family::Afi::Ip as i32,
            safi: family::Safi::FlowSpecUnicast as i32,
        };
        assert_eq!(family_from_proto(&flowspec), None);
        assert_eq!(
            family_to_proto(AddressFamily::L2vpnEvpn),
            proto::Family { afi: 25, safi: 70 }
        );
    }

    #[test]
    fn session_states() {
        assert_eq!(session_from_proto(6), SessionState::Established);
        assert_eq!(session_from_proto(1), SessionState::Idle);
        assert_eq!(session_from_proto(3), SessionState::Active);
        assert_eq!(session_from_proto(4), SessionState::OpenSent);
        assert_eq!(session_from_proto(0), SessionState::Unknown);
        assert_eq!(session_from_proto(42), SessionState::Unknown);
    }

    #[test]
    fn what_we_send_reads_back_unchanged() {
        let mut d = desired();
        d.password = Some(Password::new("s3cret"));
        d.ebgp_multihop = Some(0);
        d.families = vec![AddressFamily::L2vpnEvpn, AddressFamily::Ipv4Unicast];
        let mut reported = as_reported(&new_peer(&d));
        // GoBGP reports multihop TTL 0 as 255.
        reported.ebgp_multihop.as_mut().unwrap().multihop_ttl = 255;
        assert_eq!(peer_diff(&d, &reported), Vec::<&str>::new());
    }

    #[test]
    fn defaults_are_made_explicit() {
        let mut d = desired();
        d.keepalive_interval = 0;
        d.families.clear();
        let sent = new_peer(&d);
        assert_eq!(
            sent.timers
                .as_ref()
                .unwrap()
                .config
                .as_ref()
                .unwrap()
                .keepalive_interval,
            3
        );
        assert_eq!(sent.afi_safis.len(), 1);
        assert_eq!(peer_diff(&d, &as_reported(&sent)), Vec::<&str>::new());
        d.neighbor = "2001:db8::2".parse().unwrap();
        assert_eq!(effective_families(&d), vec![AddressFamily::Ipv6Unicast]);
    }

    #[test]
    fn remote_port_zero_means_179() {
        let mut d = desired();
        d.remote_port = 179;
        let mut reported = as_reported(&new_peer(&d));
        reported.transport.as_mut().unwrap().remote_port = 0;
        assert!(peer_diff(&d, &reported).is_empty());
    }

    #[test]
    fn every_difference_is_named() {
        let d = desired();
        let mut other = desired();
        other.peer_asn = 65009;
        other.remote_port = 179;
        other.local_address = "192.0.2.9".parse().unwrap();
        other.hold_time = 30;
        other.keepalive_interval = 10;
        other.ebgp_multihop = Some(2);
        other.families = vec![AddressFamily::Ipv6Unicast];
        other.password = Some(Password::new("hunter2"));
        let reported = as_reported(&new_peer(&other));
        let diff = peer_diff(&d, &reported);
        assert_eq!(
            diff,
            vec![
                "peer_asn",
                "remote_port",
                "local_address",
                "hold_time",
                "keepalive_interval",
                "ebgp_multihop",
                "families",
                "password"
            ]
        );
        assert!(!format!("{diff:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_family_is_a_difference() {
        let d = desired();
        let mut reported = as_reported(&new_peer(&d));
        reported.afi_safis.push(proto::AfiSafi {
            config: Some(proto::AfiSafiConfig {
                family: Some(proto::Family {
                    afi: family::Afi::Ip as i32,
                    safi: family::Safi::FlowSpecUnicast as i32,
                }),
                enabled: true,
            }),
            ..Default::default()
        });
        assert_eq!(peer_diff(&d, &reported), vec!["families"]);
    }

    #[test]
    fn admin_state_is_not_a_config_difference() {
        let mut d = desired();
        let mut reported = as_reported(&new_peer(&d));
        reported.state.as_mut().unwrap().admin_state = peer_state::AdminState::Down as i32;
        assert!(admin_down(&reported));
        d.admin_down = false;
        assert!(peer_diff(&d, &reported).is_empty());
    }

    #[test]
    fn update_keeps_unmanaged_settings_and_applies_ours() {
        let d = desired();
        let reported = as_reported(&new_peer(&d));
        let mut wanted = desired();
        wanted.hold_time = 30;
        wanted.keepalive_interval = 10;
        wanted.families = vec![AddressFamily::Ipv4Unicast, AddressFamily::L2vpnEvpn];
        wanted.admin_down = true;
        let update = updated_peer(&wanted, &reported);
        assert!(update.state.is_none());
        let conf = update.conf.as_ref().unwrap();
        assert_eq!(conf.local_asn, 65001);
        assert!(conf.admin_down);
        let timers = update.timers.as_ref().unwrap().config.as_ref().unwrap();
        assert_eq!(
            (timers.hold_time, timers.keepalive_interval, timers.connect_retry),
            (30, 10, 120)
        );
        assert_eq!(update.afi_safis.len(), 2);
        // Once applied, the update is what GoBGP reports: no further writes.
        assert!(peer_diff(&wanted, &as_reported(&update)).is_empty());
    }

    #[test]
    fn observed_peer_drops_the_password() {
        let mut d = desired();
        d.password = Some(Password::new("s3cret"));
        let reported = as_reported(&new_peer(&d));
        let observed = observed_peer(&reported).unwrap();
        assert_eq!(observed.neighbor, d.neighbor);
        assert_eq!(observed.owner.as_deref(), Some("cellnet:ns/a"));
        assert_eq!(observed.session, SessionState::Established);
        assert!(!observed.admin_down);
        assert_eq!(observed.last_error, None);
        assert!(!format!("{observed:?}").contains("s3cret"));
        // The protobuf messages' own Debug redacts it too.
        assert!(!format!("{reported:?}").contains("s3cret"));
        assert!(format!("{reported:?}").contains("<redacted>"));
    }

    #[test]
    fn owners() {
        assert_eq!(owner_of("cellnet:ns/x"), Some("cellnet:ns/x".into()));
        assert_eq!(owner_of("hand-made"), None);
        assert_eq!(conflict_owner("hand-made"), Some("hand-made".into()));
        assert_eq!(conflict_owner(""), None);
    }

    #[test]
    fn speaker_config() {
        let desired = SpeakerConfig {
            asn: 65001,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            listen_address: "192.0.2.1".parse().unwrap(),
            listen_port: 1790,
        };
        let global = global_from_speaker(&desired);
        assert_eq!(global.listen_addresses, vec!["192.0.2.1".to_owned()]);
        assert_eq!(speaker_conflict(&global, &desired), None);
        let other = proto::Global {
            asn: 65099,
            listen_port: 179,
            ..global
        };
        let reason = speaker_conflict(&other, &desired).unwrap();
        assert!(reason.contains("65099") && reason.contains("65001"), "{reason}");
        assert!(reason.contains("179") && reason.contains("1790"), "{reason}");
    }

    #[test]
    fn hold_time_zero_is_unsupported() {
        let mut d = desired();
        d.hold_time = 0;
        assert!(matches!(check_supported(&d), Err(SdnError::Unsupported(_))));
        assert!(check_supported(&desired()).is_ok());
    }

    #[test]
    fn watch_events() {
        let peer = |state: peer_state::SessionState| proto::Peer {
            conf: Some(proto::PeerConf {
                neighbor_address: "192.0.2.2".into(),
                ..Default::default()
            }),
            state: Some(proto::PeerState {
                session_state: state as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let event = |r#type: watch_event_response::peer_event::Type, peer| proto::WatchEventResponse {
            event: Some(watch_event_response::Event::Peer(
                watch_event_response::PeerEvent {
                    r#type: r#type as i32,
                    peer,
                },
            )),
        };
        use watch_event_response::peer_event::Type;
        assert_eq!(
            event_from_watch(event(
                Type::State,
                Some(peer(peer_state::SessionState::Established))
            )),
            Some(SdnEvent::Peer {
                neighbor: "192.0.2.2".parse().unwrap(),
                session: SessionState::Established
            })
        );
        assert_eq!(event_from_watch(event(Type::EndOfInit, None)), None);
        assert_eq!(event_from_watch(event(Type::State, None)), Some(SdnEvent::Resync));
    }

    #[test]
    fn statuses() {
        let e = status_to_error(
            "http://h:1",
            "AddPeer",
            &Status::unknown("can't overwrite the existing peer"),
        );
        assert!(matches!(
            &e,
            SdnError::Rejected {
                operation: "AddPeer",
                ..
            }
        ));
        assert!(
            e.to_string().contains("http://h:1") && e.to_string().contains("overwrite"),
            "{e}"
        );
        let e = status_to_error("http://h:1", "GetBgp", &Status::unavailable("tcp connect error"));
        assert!(matches!(e, SdnError::Unreachable { .. }), "{e}");
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = status_to_error("http://h:1", "ListPeer", &Status::from_error(Box::new(io)));
        assert!(
            matches!(&e, SdnError::Unreachable { message, .. } if message.contains("reset by peer")),
            "{e}"
        );
        let e = status_to_error("http://h:1", "ListPeer", &Status::unauthenticated("no"));
        assert!(matches!(e, SdnError::AuthFailed { .. }));
    }
}
