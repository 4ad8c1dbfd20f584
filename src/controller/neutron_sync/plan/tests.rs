use serde_json::json;

use super::*;
use crate::neutron::client::Pool;

fn ep(spec_neutron: serde_json::Value) -> InfraEndpoint {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": "ep1", "namespace": "ns", "uid": "u1"},
        "spec": {"cell": "c1", "address": "10.1.0.10", "asn": 65001, "neutron": spec_neutron},
    }))
    .unwrap()
}

fn spec() -> NeutronSpec {
    let ep = ep(json!({
        "cloudSecretRef": {"name": "s"}, "cloud": "c",
        "network": {"physicalNetwork": "physnet1", "networkType": "vlan", "segmentationId": 100},
        "subnet": {"cidr": "10.1.0.0/24", "gatewayIP": "10.1.0.1",
                   "allocationPools": [{"start": "10.1.0.100", "end": "10.1.0.200"}]},
        "bgp": {"localAs": 64600},
    }));
    ep.spec.neutron.unwrap()
}

fn network(spec: &NeutronSpec) -> Network {
    Network {
        id: "n1".into(),
        name: "cellnet-c1-ep1".into(),
        tags: vec![],
        external: spec.network.external,
        network_type: Some("vlan".into()),
        physical_network: Some("physnet1".into()),
        segmentation_id: Some(100),
        mtu: None,
        availability_zone_hints: vec![],
    }
}

fn subnet() -> Subnet {
    Subnet {
        id: "s1".into(),
        name: "cellnet-c1-ep1".into(),
        network_id: "n1".into(),
        cidr: "10.1.0.0/24".into(),
        gateway_ip: Some("10.1.0.1".into()),
        allocation_pools: vec![Pool {
            start: "10.1.0.100".into(),
            end: "10.1.0.200".into(),
        }],
        tags: vec![],
    }
}

fn speaker(peers: &[&str]) -> BgpSpeaker {
    BgpSpeaker {
        id: "sp1".into(),
        name: "cellnet-c1".into(),
        local_as: 64600,
        ip_version: 4,
        advertise_tenant_networks: true,
        advertise_floating_ip_host_routes: true,
        peers: peers.iter().map(|p| p.to_string()).collect(),
        networks: vec![],
    }
}

fn peer() -> BgpPeer {
    BgpPeer {
        id: "p1".into(),
        name: "cellnet-c1-ep1".into(),
        peer_ip: "10.1.0.10".into(),
        remote_as: 65001,
        auth_type: "none".into(),
    }
}

#[test]
fn names_and_tags_follow_the_cell_and_endpoint() {
    let ep = ep(json!(null));
    let spec = spec();
    assert_eq!(network_name(&ep, &spec), "cellnet-c1-ep1");
    assert_eq!(speaker_name(&ep), "cellnet-c1");
    assert_eq!(
        peer_name(&ep),
        "cellnet-c1-ep1-u1",
        "the uid marks the peer as this endpoint's"
    );
    assert_eq!(owner_tag(&ep), "cellnet.io/owner=u1");
    assert_eq!(cell_tag(&ep), "cellnet.io/cell=c1");
    let named = NeutronSpec {
        network: NeutronNetworkSpec {
            name: Some("infra".into()),
            ..spec.network.clone()
        },
        ..spec
    };
    assert_eq!(network_name(&ep, &named), "infra");
}

#[test]
fn tags_are_added_to_everyone_elses() {
    let ours = || {
        [
            "cellnet.io/cell=c1".to_string(),
            "cellnet.io/owner=u1".to_string(),
        ]
    };
    let theirs = vec!["team=net".to_string(), "cellnet.io/cell=c1".to_string()];
    assert_eq!(
        tags_to_set(&theirs, ours()),
        Some(vec![
            "team=net".to_string(),
            "cellnet.io/cell=c1".to_string(),
            "cellnet.io/owner=u1".to_string()
        ])
    );
    let all: Vec<String> = ours().into_iter().chain(["x".to_string()]).collect();
    assert_eq!(tags_to_set(&all, ours()), None, "nothing to write");
}

#[test]
fn a_network_is_created_kept_updated_or_replaced() {
    let spec = spec();
    let name = "cellnet-c1-ep1";
    let e = ep(json!(null));
    let p = provider(&e, &spec.network).unwrap();
    assert_eq!(network_change(&spec.network, &p, name, None), Change::Create);
    let same = network(&spec);
    assert_eq!(network_change(&spec.network, &p, name, Some(&same)), Change::Keep);
    let renamed = Network {
        name: "old".into(),
        mtu: Some(1400),
        ..same.clone()
    };
    let want_mtu = NeutronNetworkSpec {
        mtu: Some(9000),
        ..spec.network.clone()
    };
    assert_eq!(
        network_change(&want_mtu, &p, name, Some(&renamed)),
        Change::Update(json!({"name": name, "mtu": 9000}))
    );
    for moved in [
        Network {
            segmentation_id: Some(101),
            ..same.clone()
        },
        Network {
            physical_network: Some("physnet2".into()),
            ..same.clone()
        },
        Network {
            network_type: Some("flat".into()),
            ..same
        },
    ] {
        assert_eq!(
            network_change(&spec.network, &p, name, Some(&moved)),
            Change::Replace,
            "{moved:?}"
        );
    }
}

#[test]
fn the_network_body_names_the_endpoint_and_only_set_options() {
    let spec = spec();
    let e = ep(json!(null));
    let p = provider(&e, &spec.network).unwrap();
    let body = network_body(&e, &spec.network, &p, "cellnet-c1-ep1");
    assert_eq!(body["provider:segmentation_id"], 100);
    assert_eq!(body["provider:network_type"], "vlan");
    assert_eq!(
        body["description"],
        "cellnet: infrastructure network of cell c1 (ns/ep1)"
    );
    assert!(body.get("mtu").is_none() && body.get("availability_zone_hints").is_none());
}

/// An endpoint with segment `vip` (VNI `vni`) and a vxlan network naming `segment`.
fn vxlan_ep(vni: u32, segment: &str) -> InfraEndpoint {
    let mut e = ep(json!({
        "cloudSecretRef": {"name": "s"}, "cloud": "c",
        "network": {"networkType": "vxlan", "segment": segment},
        "subnet": {"cidr": "10.1.0.0/24"},
    }));
    e.spec.l2_segments = serde_json::from_value(json!([{"name": "vip", "vni": vni}])).unwrap();
    e
}

#[test]
fn a_vxlan_network_takes_the_vni_of_its_segment_and_no_physical_network() {
    let e = vxlan_ep(10100, "vip");
    let want = &e.spec.neutron.as_ref().unwrap().network;
    let p = provider(&e, want).unwrap();
    let body = network_body(&e, want, &p, "n");
    assert_eq!(body["provider:network_type"], "vxlan");
    assert_eq!(body["provider:segmentation_id"], 10100);
    // Neutron refuses provider:physical_network on a tunnel network.
    assert!(body.get("provider:physical_network").is_none(), "{body}");
    let made = Network {
        id: "n1".into(),
        name: "n".into(),
        tags: vec![],
        external: true,
        network_type: Some("vxlan".into()),
        physical_network: None,
        segmentation_id: Some(10100),
        mtu: None,
        availability_zone_hints: vec![],
    };
    assert_eq!(network_change(want, &p, "n", Some(&made)), Change::Keep);
    // The segment's VNI changed: the network is replaced, as for a new VLAN ID.
    let moved = vxlan_ep(10101, "vip");
    let p = provider(&moved, want).unwrap();
    assert_eq!(network_change(want, &p, "n", Some(&made)), Change::Replace);
}

#[test]
fn a_vxlan_network_naming_an_undeclared_segment_changes_nothing() {
    let e = vxlan_ep(10100, "gone");
    let problem = provider(&e, &e.spec.neutron.as_ref().unwrap().network).unwrap_err();
    assert_eq!(problem.reason, Reason::SegmentNotDeclared);
    assert!(problem.message.contains("\"gone\""), "{}", problem.message);
}

#[test]
fn a_subnet_is_replaced_on_a_new_cidr_and_updated_in_place_otherwise() {
    let spec = spec();
    assert_eq!(subnet_change(&spec.subnet, None), Change::Create);
    assert_eq!(subnet_change(&spec.subnet, Some(&subnet())), Change::Keep);
    let moved = Subnet {
        cidr: "10.1.1.0/24".into(),
        ..subnet()
    };
    assert_eq!(subnet_change(&spec.subnet, Some(&moved)), Change::Replace);
    let drifted = Subnet {
        gateway_ip: None,
        allocation_pools: vec![],
        ..subnet()
    };
    assert_eq!(
        subnet_change(&spec.subnet, Some(&drifted)),
        Change::Update(json!({
            "gateway_ip": "10.1.0.1",
            "allocation_pools": [{"start": "10.1.0.100", "end": "10.1.0.200"}],
        }))
    );
    // No pools in the spec: Neutron's own are left alone.
    let no_pools = NeutronSubnetSpec {
        allocation_pools: vec![],
        ..spec.subnet.clone()
    };
    assert_eq!(subnet_change(&no_pools, Some(&subnet())), Change::Keep);
    let body = subnet_body("x", "n1", &no_pools);
    assert_eq!(
        (body["ip_version"].clone(), body["enable_dhcp"].clone()),
        (json!(4), json!(false))
    );
    assert!(body.get("allocation_pools").is_none());
}

#[test]
fn a_speaker_with_another_endpoints_peer_is_not_replaced() {
    let bgp = spec().bgp.unwrap();
    let other_as = NeutronBgpSpec {
        local_as: 64601,
        ..bgp.clone()
    };
    assert_eq!(speaker_change(&bgp, 4, None, None), Ok(Change::Create));
    assert_eq!(
        speaker_change(&bgp, 4, Some("p1"), Some(&speaker(&["p1"]))),
        Ok(Change::Keep)
    );
    // Only our own peer on it: the speaker is replaced.
    assert_eq!(
        speaker_change(&other_as, 4, Some("p1"), Some(&speaker(&["p1"]))),
        Ok(Change::Replace)
    );
    assert_eq!(
        speaker_change(&bgp, 6, None, Some(&speaker(&[]))),
        Ok(Change::Replace)
    );
    // Another endpoint's peer on it: a conflict that names the speaker and both AS numbers.
    let p = speaker_change(&other_as, 4, Some("p1"), Some(&speaker(&["p1", "p2"]))).unwrap_err();
    assert_eq!((p.reason, p.stalled), (Reason::NeutronConflict, true));
    assert!(
        p.message.contains("runs AS 64600 with 1 other peer(s)"),
        "{}",
        p.message
    );
    assert!(p.message.contains("asks for AS 64601"), "{}", p.message);
    let quiet = NeutronBgpSpec {
        advertise_tenant_networks: false,
        ..bgp
    };
    assert_eq!(
        speaker_change(&quiet, 4, None, Some(&speaker(&[]))),
        Ok(Change::Update(json!({
            "advertise_tenant_networks": false,
            "advertise_floating_ip_host_routes": true,
        })))
    );
    let body = speaker_body(&ep(json!(null)), &quiet, 4);
    assert_eq!(
        (body["name"].clone(), body["local_as"].clone()),
        (json!("cellnet-c1"), json!(64600))
    );
}

#[test]
fn a_peer_is_replaced_when_address_as_or_password_changes() {
    let ep = ep(json!(null));
    let pw = PeerPassword {
        value: "secret".into(),
        secret_version: "7".into(),
    };
    assert_eq!(peer_change(&ep, None, None, None), Change::Create);
    assert_eq!(peer_change(&ep, None, None, Some(&peer())), Change::Keep);
    let spelled = BgpPeer {
        peer_ip: "10.1.0.010".into(),
        ..peer()
    };
    assert_eq!(
        peer_change(&ep, None, None, Some(&spelled)),
        Change::Replace,
        "not an IP: compared as text"
    );
    let other_as = BgpPeer {
        remote_as: 65002,
        ..peer()
    };
    assert_eq!(peer_change(&ep, None, None, Some(&other_as)), Change::Replace);
    // A password appears, then rotates (another Secret version), then stays.
    assert_eq!(peer_change(&ep, Some(&pw), None, Some(&peer())), Change::Replace);
    let md5 = BgpPeer {
        auth_type: "md5".into(),
        ..peer()
    };
    assert_eq!(
        peer_change(&ep, Some(&pw), Some("6"), Some(&md5)),
        Change::Replace
    );
    assert_eq!(peer_change(&ep, Some(&pw), Some("7"), Some(&md5)), Change::Keep);
    let body = peer_body(&ep, Some(&pw));
    assert_eq!(
        (body["auth_type"].clone(), body["password"].clone()),
        (json!("md5"), json!("secret"))
    );
    assert!(peer_body(&ep, None).get("password").is_none());
}

#[test]
fn addresses_compare_as_addresses() {
    assert!(same_ip("2001:db8::1", "2001:db8:0::1"));
    assert!(!same_ip("10.0.0.1", "10.0.0.2"));
    assert_eq!(ip_version("2001:db8::/64"), 6);
    assert_eq!(ip_version("10.0.0.0/8"), 4);
}

#[test]
fn the_message_says_what_is_in_place() {
    let spec = spec();
    let net = network(&spec);
    assert_eq!(
        configured_message("infra", &net, "10.1.0.0/24", None),
        "Neutron network infra (n1) with subnet 10.1.0.0/24"
    );
    assert_eq!(
        configured_message("infra", &net, "10.1.0.0/24", Some((&speaker(&[]), &peer()))),
        "Neutron network infra (n1) with subnet 10.1.0.0/24; BGP speaker cellnet-c1 (AS 64600) peers with 10.1.0.10 (AS 65001)"
    );
}

#[test]
fn only_a_peer_named_with_the_uid_or_a_matching_legacy_one_in_status_is_ours() {
    let ep = ep(json!(null));
    let ours = BgpPeer {
        name: "cellnet-c1-ep1-u1".into(),
        ..peer()
    };
    assert!(is_our_peer(&ep, &ours, false));
    let other_namespace = BgpPeer {
        name: "cellnet-c1-ep1-u2".into(),
        ..peer()
    };
    assert!(!is_our_peer(&ep, &other_namespace, true));
    let legacy = peer();
    assert!(
        !is_our_peer(&ep, &legacy, false),
        "found by name: could be anyone's"
    );
    let legacy_here = BgpPeer {
        peer_ip: ep.spec.address.clone(),
        remote_as: ep.spec.asn,
        ..peer()
    };
    assert!(is_our_peer(&ep, &legacy_here, true));
    let hand_made = BgpPeer {
        name: "operator-peer".into(),
        ..legacy_here.clone()
    };
    assert!(!is_our_peer(&ep, &hand_made, true));
    assert!(is_cells_speaker(&ep, &speaker(&[])));
    let foreign = BgpSpeaker {
        name: "operator-speaker".into(),
        ..speaker(&[])
    };
    assert!(!is_cells_speaker(&ep, &foreign));
}
