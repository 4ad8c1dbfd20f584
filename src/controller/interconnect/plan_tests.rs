use serde_json::json;

use super::*;
use crate::sdn::BackendKind;

fn endpoint(name: &str, address: &str, asn: u32, port: u16) -> InfraEndpoint {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"cell": name, "address": address, "asn": asn, "port": port,
                 "sdn": {"type": "GoBGP", "url": "http://127.0.0.1:50051"}}
    }))
    .unwrap()
}

fn interconnect(extra_bgp: serde_json::Value) -> CellInterconnect {
    let mut bgp = json!({"holdTime": 9, "keepaliveInterval": 3});
    bgp.as_object_mut()
        .unwrap()
        .extend(extra_bgp.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
        "metadata": {"name": "a-b", "namespace": "ns", "generation": 2},
        "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}, "bgp": bgp}
    }))
    .unwrap()
}

fn target() -> SdnTarget {
    SdnTarget {
        kind: BackendKind::GoBgp,
        url: "http://127.0.0.1:50051".into(),
        ca_pem: None,
        insecure_skip_verify: false,
        credentials: None,
        open_daylight: None,
    }
}

/// `cic` with a status saying side `local` was configured with neighbour `peer` at `generation`.
fn with_status(mut cic: CellInterconnect, peer: &str, generation: i64, configured: bool) -> CellInterconnect {
    cic.status = Some(
        serde_json::from_value(json!({
            "observedGeneration": generation, "localCell": "a", "remoteCell": "b",
            "local": {"peerAddress": peer, "configured": configured, "sessionState": "Established"},
        }))
        .unwrap(),
    );
    cic
}

#[test]
fn local_and_mirror_peers() {
    let (a, b) = (
        endpoint("a", "127.0.0.11", 65011, 1790),
        endpoint("b", "127.0.0.12", 65012, 1791),
    );
    let cic = interconnect(json!({"ebgpMultihop": 2}));
    let local = peer_config(&cic, &a, &b, None).unwrap();
    assert_eq!(local.neighbor, "127.0.0.12".parse::<IpAddr>().unwrap());
    assert_eq!((local.peer_asn, local.remote_port), (65012, 1791));
    assert_eq!(local.local_address, "127.0.0.11".parse::<IpAddr>().unwrap());
    assert_eq!(
        (local.hold_time, local.keepalive_interval, local.ebgp_multihop),
        (9, 3, Some(2))
    );
    assert_eq!(local.families, [AddressFamily::Ipv4Unicast]);
    assert_eq!(local.owner, "cellnet:ns/a-b");
    assert!(!local.admin_down);
    let mirror = peer_config(&cic, &b, &a, None).unwrap();
    assert_eq!(
        (mirror.neighbor, mirror.peer_asn, mirror.remote_port),
        (local.local_address, 65011, 1790)
    );
}

#[test]
fn families_sorted_and_password_carried() {
    let (a, b) = (endpoint("a", "fd00::1", 1, 179), endpoint("b", "fd00::2", 2, 179));
    let cic = interconnect(json!({"addressFamilies": ["l2vpn-evpn", "ipv6-unicast"]}));
    let pw = Password::new("s3cret");
    let peer = peer_config(&cic, &a, &b, Some(&pw)).unwrap();
    assert_eq!(
        peer.families,
        [AddressFamily::Ipv6Unicast, AddressFamily::L2vpnEvpn]
    );
    assert_eq!(peer.password.as_ref().map(Password::expose), Some("s3cret"));
    assert!(!format!("{peer:?}").contains("s3cret"));
}

#[test]
fn owner_marker_names_namespace_and_object() {
    assert_eq!(owner_marker("ns", "a-b"), "cellnet:ns/a-b");
}

#[test]
fn a_changed_neighbour_leaves_the_old_one_to_remove() {
    let (a, b) = (
        endpoint("a", "127.0.0.11", 1, 179),
        endpoint("b", "127.0.0.12", 2, 179),
    );
    let cic = with_status(interconnect(json!({})), "127.0.0.99", 2, true);
    let plan = plan_side(&cic, (&a, &[]), (&b, &[]), Ok(target()), None).unwrap();
    assert_eq!(plan.stale_peer, Some("127.0.0.99".parse().unwrap()));
    let cic = with_status(interconnect(json!({})), "127.0.0.12", 2, true);
    let plan = plan_side(&cic, (&a, &[]), (&b, &[]), Ok(target()), None).unwrap();
    assert_eq!(plan.stale_peer, None, "the same neighbour is not stale");
}

#[test]
fn a_write_repairs_drift_only_when_the_spec_is_what_status_configured() {
    let (a, b) = (
        endpoint("a", "127.0.0.11", 1, 179),
        endpoint("b", "127.0.0.12", 2, 179),
    );
    let plan = |cic: &CellInterconnect| plan_side(cic, (&a, &[]), (&b, &[]), Ok(target()), None).unwrap();
    assert!(plan(&with_status(interconnect(json!({})), "127.0.0.12", 2, true)).write_repairs_drift);
    assert!(
        !plan(&with_status(interconnect(json!({})), "127.0.0.12", 1, true)).write_repairs_drift,
        "a new generation: the write applies the spec change"
    );
    assert!(
        !plan(&with_status(interconnect(json!({})), "127.0.0.12", 2, false)).write_repairs_drift,
        "never configured: the write is a create"
    );
    assert!(
        !plan(&interconnect(json!({}))).write_repairs_drift,
        "no status yet"
    );
}

#[test]
fn unusable_inputs_become_problems_not_errors() {
    let (a, b) = (
        endpoint("a", "not-an-ip", 1, 179),
        endpoint("b", "127.0.0.12", 2, 179),
    );
    let cic = interconnect(json!({}));
    let problem = plan_side(&cic, (&a, &[]), (&b, &[]), Ok(target()), None).unwrap_err();
    assert_eq!(problem.reason, Reason::InvalidEndpoint);
    assert!(problem.stalled);
    let secret = Problem::new(Reason::SecretNotFound, "Secret ns/x not found");
    assert_eq!(
        plan_side(&cic, (&b, &[]), (&a, &[]), Err(secret.clone()), None),
        Err(secret)
    );
}

#[test]
fn one_side_listens_only_when_both_are_managed() {
    // Default: the remote side listens.
    let cic = interconnect(json!({}));
    assert_eq!(cic.spec.bgp.passive_side, PassiveSide::Remote);
    let side = cic.spec.bgp.passive_side;
    assert!(!listens(side, true, true) && listens(side, false, true));
    assert!(listens(PassiveSide::Local, true, true) && !listens(PassiveSide::Local, false, true));
    for is_local in [true, false] {
        assert!(!listens(PassiveSide::None, is_local, true));
    }
    // An external remote: the local side dials whatever passiveSide says.
    for side in [PassiveSide::Local, PassiveSide::Remote, PassiveSide::None] {
        assert!(!listens(side, true, false));
    }
    let local = interconnect(json!({"passiveSide": "Local"}));
    assert_eq!(local.spec.bgp.passive_side, PassiveSide::Local);
    assert!(
        serde_json::from_value::<CellInterconnect>(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect", "metadata": {"name": "x"},
            "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"},
                     "bgp": {"passiveSide": "Both"}}
        }))
        .is_err()
    );
}

#[test]
fn stretched_segments_add_the_evpn_family_and_an_evpn_filter() {
    let with_segments = |name: &str, address: &str, asn: u32| {
        let mut ep = endpoint(name, address, asn, 179);
        ep.spec.l2_segments = vec![api::L2Segment {
            name: "vip".into(),
            vni: 100,
        }];
        ep
    };
    let (a, b) = (
        with_segments("a", "127.0.0.11", 65011),
        with_segments("b", "127.0.0.12", 65012),
    );
    let mut cic = interconnect(json!({}));
    let plain = plan_side(&cic, (&a, &[]), (&b, &[]), Ok(target()), None).unwrap();
    assert_eq!(plain.peer.families, [AddressFamily::Ipv4Unicast]);
    assert_eq!(
        plain.routes.filter.unwrap().evpn,
        None,
        "no spec.l2: nothing stretched"
    );

    cic.spec.l2 = Some(api::L2Spec::default());
    let side = plan_side(&cic, (&a, &[]), (&b, &[]), Ok(target()), None).unwrap();
    assert_eq!(
        side.peer.families,
        [AddressFamily::Ipv4Unicast, AddressFamily::L2vpnEvpn]
    );
    let evpn = side.routes.filter.unwrap().evpn.unwrap();
    assert_eq!(evpn.import, [crate::sdn::routes::RouteTargetMatch::Vni(100)]);

    // Nothing stretched (b no longer declares vip): the family stays, so the session is not
    // reset, and the filter accepts nothing.
    let plain_b = endpoint("b", "127.0.0.12", 65012, 179);
    let side = plan_side(&cic, (&a, &[]), (&plain_b, &[]), Ok(target()), None).unwrap();
    assert_eq!(
        side.peer.families,
        [AddressFamily::Ipv4Unicast, AddressFamily::L2vpnEvpn]
    );
    assert_eq!(side.routes.filter.unwrap().evpn.unwrap().import, []);
}

#[test]
fn graceful_restart_reaches_the_peer_only_when_enabled() {
    let (a, b) = (
        endpoint("a", "127.0.0.11", 65011, 1790),
        endpoint("b", "127.0.0.12", 65012, 1791),
    );
    let restart_time = |bgp| {
        peer_config(&interconnect(bgp), &a, &b, None)
            .unwrap()
            .graceful_restart
    };
    assert_eq!(restart_time(json!({})), None);
    assert_eq!(restart_time(json!({"gracefulRestart": {"enabled": false}})), None);
    // restartTime defaults to 120 s.
    assert_eq!(
        restart_time(json!({"gracefulRestart": {"enabled": true}})),
        Some(120)
    );
    assert_eq!(
        restart_time(json!({"gracefulRestart": {"enabled": true, "restartTime": 30}})),
        Some(30)
    );
}
