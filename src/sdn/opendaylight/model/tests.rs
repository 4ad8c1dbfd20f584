//! Unit tests of the bodies against the OpenDaylight BGP user guide's examples.
use super::*;
use crate::sdn::Password;

fn desired() -> PeerConfig {
    let (neighbor, local) = ("192.0.2.1".parse().unwrap(), "192.0.2.5".parse().unwrap());
    PeerConfig {
        remote_port: 1790,
        hold_time: 9,
        keepalive_interval: 3,
        families: vec![AddressFamily::Ipv4Unicast, AddressFamily::Ipv6Unicast],
        password: Some(Password::new("topsecret")),
        owned_record: true,
        ..PeerConfig::new(neighbor, 64999, local, "cellnet:ns/x")
    }
}

#[test]
fn documented_neighbour_body() {
    let body = create_body(neighbor(&desired(), 65000));
    assert_eq!(
        body,
        json!({"neighbor": [{
            "neighbor-address": "192.0.2.1",
            "config": {"peer-type": "EXTERNAL", "peer-as": 64999, "auth-password": "topsecret"},
            "timers": {"config": {"hold-time": 9}},
            "transport": {"config": {"remote-port": 1790, "passive-mode": false, "local-address": "192.0.2.5"}},
            "afi-safis": {"afi-safi": [
                {"afi-safi-name": "openconfig-bgp-types:IPV4-UNICAST"},
                {"afi-safi-name": "openconfig-bgp-types:IPV6-UNICAST"}
            ]}
        }]})
    );
    assert_eq!(peer_type(65000, 65000), "INTERNAL");
}

#[test]
fn what_the_server_returns_compares_equal() {
    let d = desired();
    // As a server would return it: prefixed, defaults filled in, decimal64 as a string.
    let observed = json!({
        "neighbor-address": "192.0.2.1",
        "config": {"peer-type": "EXTERNAL", "peer-as": 64999, "auth-password": "topsecret", "send-community": "NONE"},
        "timers": {"config": {"hold-time": "9.00", "connect-retry": 30}},
        "transport": {"config": {"remote-port": 1790, "passive-mode": "false", "local-address": "192.0.2.5"}},
        "afi-safis": {"afi-safi": [
            {"afi-safi-name": "openconfig-bgp-types:IPV6-UNICAST"},
            {"afi-safi-name": "IPV4-UNICAST"}
        ]},
        "state": {"session-state": "ESTABLISHED"}
    });
    assert_eq!(diff(&d, 65000, &observed), Vec::<&str>::new());
    let peer = observed_of(&observed);
    assert_eq!(peer.session, SessionState::Established);
    assert_eq!(peer.owner, None);
}

fn observed_of(v: &Value) -> ObservedPeer {
    observed(v).unwrap()
}

#[test]
fn changes_are_named_without_secrets() {
    let d = desired();
    let mut observed = neighbor(&d, 65000);
    observed["config"]["peer-as"] = json!(65001);
    observed["timers"]["config"]["hold-time"] = json!(90);
    observed["config"]["auth-password"] = json!("old");
    observed["afi-safis"] = json!({"afi-safi": [{"afi-safi-name": "openconfig-bgp-types:IPV4-UNICAST"}]});
    let fields = diff(&d, 65000, &observed);
    assert_eq!(fields, ["peer_asn", "hold_time", "families", "password"]);
    // A server that hides the password: no difference can be seen.
    observed["config"]
        .as_object_mut()
        .unwrap()
        .remove("auth-password");
    assert!(!diff(&d, 65000, &observed).contains(&"password"));
}

#[test]
fn reads_lists_and_states() {
    let all = json!({"bgp-openconfig-extensions:neighbors": {"neighbor": [
        {"neighbor-address": "192.0.2.1"},
        {"neighbor-address": "2001:db8::1", "state": {"session-state": "ACTIVE"}}
    ]}});
    let entries = neighbor_entries(&all);
    assert_eq!(entries.len(), 2);
    assert_eq!(observed_of(&entries[1]).session, SessionState::Active);
    assert_eq!(observed_of(&entries[0]).session, SessionState::Unknown);
    let one = json!({"bgp-openconfig-extensions:neighbor": [{"neighbor-address": "192.0.2.1"}]});
    assert_eq!(neighbor_entries(&one).len(), 1);
    // The guide's own example writes the module name as "bgp:openconfig-extensions".
    let state = json!({"bgp:openconfig-extensions:state": {"session-state": "OPENCONFIRM"}});
    assert_eq!(session_in_state(&state), SessionState::OpenConfirm);
    assert_eq!(
        global_config(&json!({"bgp-openconfig-extensions:config": {"router-id": "192.0.2.2", "as": 65000}})),
        Some((65000, Some("192.0.2.2".into())))
    );
    // Not AS numbers: out of range, negative, fractions.
    for bad in [
        json!(7777772165000_u64),
        json!(-1),
        json!(65000.5),
        json!("65000.5"),
    ] {
        assert_eq!(global_config(&json!({"config": {"as": bad}})), None, "{bad}");
    }
    assert_eq!(
        global_config(&json!({"config": {"as": "4200000000"}})),
        Some((4200000000, None))
    );
}

#[test]
fn passive_mode_is_sent_and_compared() {
    let passive = PeerConfig {
        passive: true,
        ..desired()
    };
    let body = neighbor(&passive, 65000);
    assert_eq!(body["transport"]["config"]["passive-mode"], json!(true));
    assert!(diff(&passive, 65000, &body).is_empty());
    // The guide's string form, and a neighbour left at the default (absent: false).
    let mut observed = body.clone();
    observed["transport"]["config"]["passive-mode"] = json!("true");
    assert!(diff(&passive, 65000, &observed).is_empty());
    observed["transport"]["config"]
        .as_object_mut()
        .unwrap()
        .remove("passive-mode");
    assert_eq!(diff(&passive, 65000, &observed), ["passive_mode"]);
    assert_eq!(diff(&desired(), 65000, &body), ["passive_mode"]);
}

#[test]
fn notification_counts_and_negotiated_hold_time_from_the_operational_state() {
    // bgp-user-guide-operational-state.rst, "BGP Neighbor Operational State" and "BGP Neighbor
    // Timers Operational State", in one neighbour entry (content=all).
    let entry = json!({
        "neighbor-address": "192.0.2.1",
        "state": {"session-state": "ACTIVE", "messages": {
            "sent": {"UPDATE": 0, "NOTIFICATION": 3}, "received": {"UPDATE": 4, "NOTIFICATION": "1"}}},
        "timers": {"state": {"negotiated-hold-time": "180", "uptime": 1580676}}
    });
    let d = observed_of(&entry).diagnostics;
    assert_eq!(
        (d.notifications_sent, d.notifications_received),
        (Some(3), Some(1))
    );
    assert_eq!(d.negotiated_hold_time, Some(180));
    assert_eq!((d.opens_received, d.negotiated_keepalive), (None, None));
    let bare = observed_of(&json!({"neighbor-address": "192.0.2.1"})).diagnostics;
    assert_eq!(bare, Default::default());
}

#[test]
fn graceful_restart_is_sent_and_compared_as_the_guide_writes_it() {
    let on = PeerConfig {
        graceful_restart: Some(120),
        ..desired()
    };
    let body = neighbor(&on, 65000);
    // "Graceful Restart Timer" and "BGP Neighbor Families Graceful Restart Configuration".
    assert_eq!(body["graceful-restart"], json!({"config": {"restart-time": 120}}));
    for family in body["afi-safis"]["afi-safi"].as_array().unwrap() {
        assert_eq!(family["graceful-restart"], json!({"config": {"enable": true}}));
    }
    assert!(diff(&on, 65000, &body).is_empty());
    let off = neighbor(&desired(), 65000);
    assert!(off.get("graceful-restart").is_none());
    assert!(diff(&desired(), 65000, &off).is_empty());
    assert_eq!(diff(&on, 65000, &off), ["graceful_restart"]);
    assert_eq!(diff(&desired(), 65000, &body), ["graceful_restart"]);
    // Another timer, or a family without it, is rewritten; the string forms of RFC 7951 read.
    let mut observed = body.clone();
    observed["graceful-restart"]["config"]["restart-time"] = json!("300");
    assert_eq!(diff(&on, 65000, &observed), ["graceful_restart"]);
    observed["graceful-restart"]["config"]["restart-time"] = json!("120");
    observed["afi-safis"]["afi-safi"][0]["graceful-restart"]["config"]["enable"] = json!("true");
    assert!(diff(&on, 65000, &observed).is_empty());
    observed["afi-safis"]["afi-safi"][0]["graceful-restart"]["config"]["enable"] = json!(false);
    assert_eq!(diff(&on, 65000, &observed), ["graceful_restart"]);
}

#[test]
fn graceful_restart_negotiation_comes_from_the_families_state() {
    let on = PeerConfig {
        graceful_restart: Some(120),
        ..desired()
    };
    let mut entry = neighbor(&on, 65000);
    // Configuration only: nothing known.
    assert_eq!(observed_of(&entry).graceful_restart, None);
    entry["state"] = json!({"session-state": "ESTABLISHED"});
    let family = &mut entry["afi-safis"]["afi-safi"][0]["graceful-restart"];
    family["state"] = json!({"received": true, "advertised": true, "ll-received": false});
    assert_eq!(observed_of(&entry).graceful_restart, Some(true));
    entry["afi-safis"]["afi-safi"][0]["graceful-restart"]["state"]["received"] = json!(false);
    assert_eq!(observed_of(&entry).graceful_restart, Some(false));
    entry["state"] = json!({"session-state": "ACTIVE"});
    assert_eq!(observed_of(&entry).graceful_restart, None);
}
