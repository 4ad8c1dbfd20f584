//! Unit tests of the conversions, against what GoBGP 3.10 reports.
use std::net::Ipv4Addr;

use tonic::Status;

use super::*;
use crate::sdn::gobgp::proto::{self, family, peer_state, watch_event_response};
use crate::sdn::{AddressFamily, Password, PeerConfig, SdnError, SdnEvent, SessionState, SpeakerConfig};

fn desired() -> PeerConfig {
    let (neighbor, local) = ("192.0.2.2".parse().unwrap(), "192.0.2.1".parse().unwrap());
    PeerConfig {
        remote_port: 1790,
        hold_time: 9,
        keepalive_interval: 3,
        ..PeerConfig::new(neighbor, 65002, local, "cellnet:ns/a")
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
    other.max_prefixes = Some(10);
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
            "max_prefixes",
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
        events_from_watch(event(
            Type::State,
            Some(peer(peer_state::SessionState::Established))
        )),
        vec![SdnEvent::Peer {
            neighbor: "192.0.2.2".parse().unwrap(),
            session: SessionState::Established
        }]
    );
    assert_eq!(events_from_watch(event(Type::EndOfInit, None)), vec![]);
    assert_eq!(
        events_from_watch(event(Type::State, None)),
        vec![SdnEvent::Resync]
    );
}

fn best_path(source: &str, family: AddressFamily) -> proto::Path {
    proto::Path {
        neighbor_ip: source.into(),
        family: Some(family_to_proto(family)),
        ..Default::default()
    }
}

#[test]
fn one_routes_event_per_source_of_a_bulk_update() {
    let v4 = AddressFamily::Ipv4Unicast;
    let mut paths: Vec<proto::Path> = (0..1000).map(|_| best_path("192.0.2.2", v4)).collect();
    paths.push(best_path("<nil>", AddressFamily::Ipv6Unicast));
    paths.extend((0..1000).map(|_| best_path("2001:db8::3", v4)));
    paths.push(best_path("192.0.2.4", AddressFamily::L2vpnEvpn));
    paths.push(best_path("<nil>", v4));
    let table = watch_event_response::Event::Table(watch_event_response::TableEvent { paths });
    let events = events_from_watch(proto::WatchEventResponse { event: Some(table) });
    let routes = |n: Option<&str>| SdnEvent::Routes {
        neighbor: n.map(|n| n.parse().unwrap()),
    };
    assert_eq!(
        events,
        vec![
            routes(Some("192.0.2.2")),
            routes(None),
            routes(Some("2001:db8::3"))
        ]
    );
    let empty = watch_event_response::Event::Table(Default::default());
    assert_eq!(
        events_from_watch(proto::WatchEventResponse { event: Some(empty) }),
        vec![]
    );
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

/// Whatever a server at the URL answers, status gets a short excerpt of it on one line.
#[test]
fn foreign_status_messages_are_excerpted() {
    let long = format!("line one\r\n{}", "z".repeat(5_000));
    let e = status_to_error("http://h:1", "AddPeer", &Status::unknown(long));
    let SdnError::Rejected { message, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!(message.chars().count(), crate::body::MAX_EXCERPT, "{message}");
    assert!(message.starts_with("line one  zzz"), "{message}");
}

fn limits_of(peer: &proto::Peer) -> Vec<Option<(proto::Family, u32)>> {
    peer.afi_safis
        .iter()
        .map(|a| {
            a.prefix_limits
                .as_ref()
                .map(|l| (l.family.unwrap(), l.max_prefixes))
        })
        .collect()
}

#[test]
fn prefix_limit_on_every_family_reads_back_unchanged() {
    let mut d = desired();
    d.families = vec![AddressFamily::Ipv4Unicast, AddressFamily::Ipv6Unicast];
    d.max_prefixes = Some(1000);
    let sent = new_peer(&d);
    let v4 = family_to_proto(AddressFamily::Ipv4Unicast);
    let v6 = family_to_proto(AddressFamily::Ipv6Unicast);
    assert_eq!(limits_of(&sent), vec![Some((v4, 1000)), Some((v6, 1000))]);
    assert!(peer_diff(&d, &as_reported(&sent)).is_empty());
    // No limit: GoBGP lists no `prefix_limits`; a limit of 0 is no limit there.
    d.max_prefixes = None;
    let sent = new_peer(&d);
    assert_eq!(limits_of(&sent), vec![None, None]);
    d.max_prefixes = Some(0);
    assert!(peer_diff(&d, &as_reported(&sent)).is_empty());
}

#[test]
fn a_changed_limit_is_one_update_then_nothing() {
    let mut d = desired();
    d.max_prefixes = Some(1000);
    let mut reported = as_reported(&new_peer(&d));
    // A warning threshold set by hand stays out of the comparison.
    reported.afi_safis[0]
        .prefix_limits
        .as_mut()
        .unwrap()
        .shutdown_threshold_pct = 80;
    assert!(peer_diff(&d, &reported).is_empty());
    for wanted in [Some(5000), None] {
        d.max_prefixes = wanted;
        assert_eq!(peer_diff(&d, &reported), vec!["max_prefixes"]);
        let update = updated_peer(&d, &reported);
        let v4 = family_to_proto(AddressFamily::Ipv4Unicast);
        assert_eq!(limits_of(&update), vec![wanted.map(|n| (v4, n))]);
        assert!(peer_diff(&d, &as_reported(&update)).is_empty());
    }
}

#[test]
fn a_tripped_peer_is_enabled_only_for_a_higher_limit() {
    let mut d = desired();
    d.max_prefixes = Some(10);
    let mut reported = as_reported(&new_peer(&d));
    assert!(!reenable_after_limit(&d, &reported), "not tripped");
    let state = reported.state.as_mut().unwrap();
    state.admin_state = peer_state::AdminState::PfxCt as i32;
    state.session_state = peer_state::SessionState::Idle as i32;
    assert!(prefix_limit_tripped(&reported));
    assert!(!admin_down(&reported), "PFX_CT is not an admin shutdown");
    let cases = [
        (Some(10), false, false),
        (Some(5), false, false),
        (Some(11), false, true),
        (None, false, true),
        (Some(11), true, false),
    ];
    for (limit, down, enable) in cases {
        d.max_prefixes = limit;
        d.admin_down = down;
        assert_eq!(
            reenable_after_limit(&d, &reported),
            enable,
            "{limit:?} down {down}"
        );
    }
}

#[test]
fn passive_mode_is_written_compared_and_updated() {
    let passive = PeerConfig {
        passive: true,
        ..desired()
    };
    let sent = new_peer(&passive);
    assert!(sent.transport.as_ref().unwrap().passive_mode);
    // Equal: nothing to write.
    assert!(peer_diff(&passive, &as_reported(&sent)).is_empty());
    // A dialling peer where we want a listening one, and the other way round.
    let dialling = as_reported(&new_peer(&desired()));
    assert!(!dialling.transport.as_ref().unwrap().passive_mode);
    assert_eq!(peer_diff(&passive, &dialling), vec!["passive_mode"]);
    assert_eq!(peer_diff(&desired(), &as_reported(&sent)), vec!["passive_mode"]);
    // The update turns it on and then agrees with what it wrote.
    let updated = updated_peer(&passive, &dialling);
    assert!(updated.transport.as_ref().unwrap().passive_mode);
    assert!(peer_diff(&passive, &updated).is_empty());
    assert!(
        !updated_peer(&desired(), &as_reported(&sent))
            .transport
            .unwrap()
            .passive_mode
    );
}

#[test]
fn graceful_restart_is_written_compared_and_updated() {
    let on = PeerConfig {
        graceful_restart: Some(120),
        families: vec![AddressFamily::Ipv4Unicast, AddressFamily::Ipv6Unicast],
        ..desired()
    };
    let sent = new_peer(&on);
    let gr = sent.graceful_restart.as_ref().unwrap();
    assert!(gr.enabled);
    assert_eq!(gr.restart_time, 120);
    // Every family is in the capability (GoBGP's "Restarting speaker" configuration).
    assert!(
        sent.afi_safis
            .iter()
            .all(|a| a.mp_graceful_restart.unwrap().config.unwrap().enabled)
    );
    assert!(peer_diff(&on, &as_reported(&sent)).is_empty());

    // Off: GoBGP reports graceful_restart with enabled false, which is what off means.
    let off = PeerConfig {
        families: on.families.clone(),
        ..desired()
    };
    let off_sent = as_reported(&new_peer(&off));
    assert!(!off_sent.graceful_restart.as_ref().unwrap().enabled);
    assert!(peer_diff(&off, &off_sent).is_empty());
    assert_eq!(peer_diff(&on, &off_sent), vec!["graceful_restart"]);
    assert_eq!(peer_diff(&off, &as_reported(&sent)), vec!["graceful_restart"]);

    // Another restart time, or a family left out of the capability, is rewritten.
    let longer = PeerConfig {
        graceful_restart: Some(300),
        ..on.clone()
    };
    assert_eq!(peer_diff(&longer, &as_reported(&sent)), vec!["graceful_restart"]);
    let mut one_family = as_reported(&sent);
    one_family.afi_safis[1].mp_graceful_restart = None;
    assert_eq!(peer_diff(&on, &one_family), vec!["graceful_restart"]);

    // The update turns it on for every family and then agrees with what it wrote.
    let updated = updated_peer(&on, &off_sent);
    assert!(peer_diff(&on, &updated).is_empty());
    assert!(peer_diff(&off, &updated_peer(&off, &as_reported(&sent))).is_empty());
}

#[test]
fn graceful_restart_negotiation_is_read_on_an_established_session() {
    let on = PeerConfig {
        graceful_restart: Some(120),
        ..desired()
    };
    let mut peer = as_reported(&new_peer(&on));
    let state = |advertised, received| proto::MpGracefulRestartState {
        advertised,
        received,
        ..Default::default()
    };
    peer.afi_safis[0].mp_graceful_restart.as_mut().unwrap().state = Some(state(true, true));
    assert_eq!(observed_peer(&peer).unwrap().graceful_restart, Some(true));
    // The other side did not send the capability.
    peer.afi_safis[0].mp_graceful_restart.as_mut().unwrap().state = Some(state(true, false));
    assert_eq!(observed_peer(&peer).unwrap().graceful_restart, Some(false));
    // Not established: nothing to say.
    peer.state.as_mut().unwrap().session_state = peer_state::SessionState::Active as i32;
    assert_eq!(observed_peer(&peer).unwrap().graceful_restart, None);
}
