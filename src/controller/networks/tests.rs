//! Unit tests of the pure networks rules: declarations, conflicts, origination, filters.
use std::sync::Arc;

use ipnet::IpNet;
use serde_json::{Value, json};

use super::*;
use crate::api::{CellInterconnect, InfraEndpoint};
use crate::sdn::routes::{ExportRule, ImportRule};

fn ep(name: &str, cell: &str, address: &str, networks: &[&str], managed: bool) -> InfraEndpoint {
    let nets: Vec<Value> = networks.iter().map(|c| json!({"cidr": c})).collect();
    let mut spec = json!({"cell": cell, "address": address, "asn": 65001, "networks": nets});
    if managed {
        spec["sdn"] = json!({"type": "GoBGP", "url": "http://x:50051"});
    }
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": spec,
    }))
    .unwrap()
}

fn cic(routes: Value, families: &[&str]) -> CellInterconnect {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
        "metadata": {"name": "a-b", "namespace": "ns"},
        "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"},
                 "bgp": {"addressFamilies": families}, "routes": routes},
    }))
    .unwrap()
}

fn nets(s: &[&str]) -> Vec<IpNet> {
    s.iter().map(|n| n.parse().unwrap()).collect()
}

#[test]
fn the_neutron_subnet_counts_unless_told_not_to() {
    let mut e = ep("a", "c1", "192.0.2.1", &["203.0.113.0/26"], true);
    e.spec.neutron = serde_json::from_value(json!({
        "cloudSecretRef": {"name": "s"}, "cloud": "c",
        "network": {"name": "n", "providerNetworkType": "flat", "physicalNetwork": "p"},
        "subnet": {"cidr": "192.0.2.0/24"}
    }))
    .ok();
    let all: Vec<IpNet> = declared(&e).into_iter().map(|d| d.net).collect();
    assert_eq!(all, nets(&["203.0.113.0/26", "192.0.2.0/24"]));
    e.spec.neutron.as_mut().unwrap().subnet.announce_subnet = false;
    assert_eq!(declared(&e).len(), 1);
}

#[test]
fn overlapping_networks_of_two_cells_conflict_but_one_cells_gateways_do_not() {
    let a = Arc::new(ep("a", "c1", "192.0.2.1", &["203.0.113.0/26"], true));
    let a2 = Arc::new(ep("a2", "c1", "192.0.2.3", &["203.0.113.0/26"], true));
    let c = Arc::new(ep("c", "c3", "192.0.2.4", &["203.0.113.0/24"], false));
    let all = vec![a.clone(), a2.clone()];
    assert!(
        conflicts_of(&a, &all).is_empty(),
        "redundant gateways of one cell"
    );
    let all = vec![a.clone(), a2, c.clone()];
    let found = conflicts_of(&a, &all);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].other.as_str(), found[0].other_cell.as_str()),
        ("c", "c3")
    );
    assert_eq!(
        conflicts_of(&c, &all).len(),
        2,
        "c conflicts with both of c1's endpoints"
    );
}

#[test]
fn origination_holds_back_conflicts_and_other_families() {
    let a = ep(
        "a",
        "c1",
        "192.0.2.1",
        &["203.0.113.0/26", "2001:db8::/48", "198.51.100.0/24"],
        true,
    );
    let c = Arc::new(ep("c", "c3", "192.0.2.4", &["198.51.100.128/25"], false));
    let conflicts = conflicts_of(&a, &[c]);
    let announced = origination(&a, &conflicts).unwrap();
    assert_eq!(announced.origination.networks, nets(&["203.0.113.0/26"]));
    assert_eq!(announced.withheld.len(), 2);
    assert_ne!(announced.origination.mark, 0);
}

#[test]
fn the_filter_follows_spec_routes() {
    let a = ep(
        "a",
        "c1",
        "192.0.2.1",
        &["203.0.113.0/26", "2001:db8:1::/48"],
        true,
    );
    let b = ep("b", "c2", "2001:db8::2", &["2001:db8:2::/48"], false);
    let v4 = cic(json!({}), &["ipv4-unicast"]);
    let f = route_filter(&v4, (&a, &[]), (&b, &[])).unwrap();
    assert_eq!(f.key, filter_key("ns", "a-b"));
    assert_eq!(f.neighbors, ["2001:db8::2".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(f.import, ImportRule::Only(nets(&["2001:db8:2::/48"])));
    assert_eq!(f.export, ExportRule::Only(nets(&["203.0.113.0/26"])));
    // The session carries IPv4 only: the other cell's IPv6 network is not expected.
    let carried_v4 = carried(&v4, (&a, &[]), (&b, &[]));
    assert!(carried_v4.expected_in.is_empty());
    let both = cic(
        json!({"import": "Any", "export": "None"}),
        &["ipv4-unicast", "ipv6-unicast"],
    );
    let f = route_filter(&both, (&a, &[]), (&b, &[])).unwrap();
    assert_eq!((f.import, f.export), (ImportRule::Any, ExportRule::None));
    assert_eq!(
        carried(&both, (&a, &[]), (&b, &[])).expected_in,
        nets(&["2001:db8:2::/48"])
    );
    let none = cic(json!({"import": "None"}), &["ipv4-unicast"]);
    assert!(carried(&none, (&a, &[]), (&b, &[])).is_empty());
}

#[test]
fn a_network_the_session_does_not_carry_is_reported() {
    let a = ep("a", "c1", "2001:db8::1", &["2001:db8:1::/48"], true);
    let b = ep("b", "c2", "2001:db8::2", &[], true);
    let v4 = cic(json!({}), &["ipv4-unicast"]);
    assert_eq!(
        carried(&v4, (&a, &[]), (&b, &[])).not_carried,
        nets(&["2001:db8:1::/48"])
    );
}
