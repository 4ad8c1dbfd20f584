use serde_json::json;

use super::*;

fn endpoint(name: &str, cell: &str, extra: Value) -> InfraEndpoint {
    let mut obj = json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"cell": cell, "address": "198.51.100.1", "asn": 65001,
                 "sdn": {"type": "GoBGP", "url": "http://127.0.0.1:50051"}},
    });
    // `spec` keys are merged into the spec above; other keys (status) are set as given.
    for (k, v) in extra.as_object().unwrap() {
        match (k.as_str(), v.as_object()) {
            ("spec", Some(spec)) => obj["spec"].as_object_mut().unwrap().extend(spec.clone()),
            _ => obj[k] = v.clone(),
        }
    }
    serde_json::from_value(obj).unwrap()
}

/// Interconnect `local-remote` with `status` (its local and remote sides and conditions).
fn interconnect(local: &str, remote: &str, status: Value) -> CellInterconnect {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
        "metadata": {"name": format!("{local}-{remote}"), "namespace": "ns"},
        "spec": {"localEndpoint": {"name": local}, "remoteEndpoint": {"name": remote},
                 "routes": {"maxPrefixes": 50}},
        "status": status,
    }))
    .unwrap()
}

fn condition(type_: ConditionType, status: &str, reason: Reason, message: &str) -> Value {
    json!({"type": type_.as_str(), "status": status, "reason": reason.as_str(), "message": message,
           "lastTransitionTime": "2024-01-01T00:00:00Z"})
}

fn routes(advertised: u64, accepted: u64) -> Value {
    json!({"advertised": advertised, "received": accepted, "accepted": accepted, "rejected": 0,
           "missingCount": 0})
}

/// cell1 <-> cell2 exchanging everything; cell1 <-> cell3 where cell3 misses 20 of cell1's
/// networks and hit its prefix limit; cell3 declared networks that conflict.
fn inventory() -> Inventory {
    let healthy = interconnect(
        "a",
        "b",
        json!({
            "conditions": [condition(ConditionType::RoutesExchanged, "True", Reason::RoutesExchanged, "ok")],
            "local": {"sdn": "GoBGP", "routes": routes(2, 1)},
            "remote": {"sdn": "GoBGP", "routes": routes(1, 2)},
        }),
    );
    let mut missing = routes(0, 0);
    missing["missing"] = json!(["192.0.2.0/25", "203.0.113.0/26"]);
    missing["missingCount"] = json!(20);
    missing["prefixLimitExceeded"] = json!(true);
    let mut not_carried = routes(1, 0);
    not_carried["notCarried"] = json!(["2001:db8:1::/48"]);
    let broken = interconnect(
        "a",
        "c",
        json!({
            "conditions": [condition(ConditionType::RoutesExchanged, "False", Reason::RoutesMissing,
                                     "cell cell3 has not accepted 192.0.2.0/25 from cell cell1")],
            "local": {"sdn": "GoBGP", "routes": not_carried},
            "remote": {"sdn": "GoBGP", "routes": missing},
        }),
    );
    let a = endpoint(
        "a",
        "cell1",
        json!({"status": {
            "conditions": [condition(ConditionType::NetworksAnnounced, "True", Reason::NetworksAnnounced, "")],
            "networks": [{"cidr": "192.0.2.0/25", "name": "mgmt", "announced": true},
                         {"cidr": "2001:db8:1::/48", "announced": true}],
        }}),
    );
    let b = endpoint(
        "b",
        "cell2",
        json!({"spec": {"networks": [{"cidr": "192.0.2.128/25", "name": "storage"}]}}),
    );
    let c = endpoint(
        "c",
        "cell3",
        json!({"status": {
            "conditions": [condition(ConditionType::NetworksAnnounced, "False", Reason::NetworkConflict,
                                     "192.0.2.0/26 overlaps 192.0.2.0/25 of InfraEndpoint a (cell cell1)")],
            "networks": [{"cidr": "192.0.2.0/26", "announced": false,
                          "message": "overlaps 192.0.2.0/25 of InfraEndpoint a"}],
        }}),
    );
    Inventory::new(vec![healthy, broken], vec![a, b, c])
}

fn names(list: &[&CellInterconnect]) -> Vec<String> {
    list.iter().map(|c| c.name_any()).collect()
}

#[test]
fn select_by_name_and_by_cell_on_either_side() {
    let inv = inventory();
    assert_eq!(names(&select(&inv, None, None)), ["a-b", "a-c"]);
    assert_eq!(names(&select(&inv, Some("a-c"), None)), ["a-c"]);
    assert_eq!(names(&select(&inv, None, Some("cell3"))), ["a-c"]);
    assert_eq!(names(&select(&inv, None, Some("cell1"))), ["a-b", "a-c"]);
    assert!(select(&inv, Some("a-b"), Some("cell3")).is_empty());
    let chosen = select(&inv, None, Some("cell2"));
    let eps: Vec<String> = endpoints_of(&inv, &chosen).iter().map(|e| e.name_any()).collect();
    assert_eq!(eps, ["a", "b"]);
}

#[test]
fn missing_prefixes_are_listed_then_counted() {
    let r = |missing: &[&str], count: u32| RouteStatus {
        missing: missing.iter().map(|s| s.to_string()).collect(),
        missing_count: count,
        ..Default::default()
    };
    assert_eq!(missing_list(&r(&["192.0.2.0/25"], 1)), "192.0.2.0/25");
    assert_eq!(
        missing_list(&r(&["192.0.2.0/25", "203.0.113.0/26"], 20)),
        "192.0.2.0/25, 203.0.113.0/26 and 18 more (20 in all)"
    );
    assert_eq!(missing_list(&r(&[], 3)), "3 prefixes");
}

#[test]
fn each_problem_of_a_side_is_one_sentence_naming_both_cells() {
    let r = RouteStatus {
        missing: vec!["192.0.2.0/25".into()],
        missing_count: 1,
        not_carried: vec!["2001:db8:2::/48".into()],
        prefix_limit_exceeded: true,
        ..Default::default()
    };
    let problems = side_problems("cell2", "cell1", &r, 1000);
    assert_eq!(
        problems,
        [
            (
                Some(Reason::RoutesMissing),
                "cell cell2 has not accepted 192.0.2.0/25 from cell cell1".to_string()
            ),
            (
                None,
                "cell cell2 does not send 2001:db8:2::/48 to cell cell1: the session does not carry that \
                 address family (spec.bgp.addressFamilies)"
                    .to_string()
            ),
            (
                Some(Reason::PrefixLimitExceeded),
                "cell cell2 shut the session down: cell cell1 sent more than 1000 prefixes \
                 (spec.routes.maxPrefixes)"
                    .to_string()
            ),
        ]
    );
    assert!(side_problems("a", "b", &RouteStatus::default(), 1).is_empty());
}

#[test]
fn the_table_shows_counts_per_side_then_what_is_wrong() {
    let inv = inventory();
    let chosen = select(&inv, None, None);
    let eps = endpoints_of(&inv, &chosen);
    let text = render(&Style { colour: false }, &inv, &chosen, &eps, false);
    let lines: Vec<&str> = text.lines().collect();
    let words = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>();
    assert!(lines[0].starts_with("INTERCONNECT   ROUTES"), "{text}");
    assert_eq!(
        words(1),
        [
            "a-b",
            "True",
            "RoutesExchanged",
            "local",
            "cell1",
            "a",
            "2",
            "1",
            "1",
            "0",
            "0",
            "50"
        ]
    );
    assert_eq!(words(2), ["remote", "cell2", "b", "1", "2", "2", "0", "0", "50"]);
    assert_eq!(
        words(3),
        [
            "a-c",
            "False",
            "RoutesMissing",
            "local",
            "cell1",
            "a",
            "1",
            "0",
            "0",
            "0",
            "0",
            "50"
        ]
    );
    assert_eq!(
        words(4),
        ["remote", "cell3", "c", "0", "0", "0", "0", "20", "50", "exceeded"]
    );
    let details: Vec<&str> = lines[5..9].iter().map(|l| l.trim()).collect();
    assert_eq!(
        details,
        [
            "a-c local: cell cell1 does not send 2001:db8:1::/48 to cell cell3: the session does not carry \
             that address family (spec.bgp.addressFamilies)",
            "a-c remote: cell cell3 has not accepted 192.0.2.0/25, 203.0.113.0/26 and 18 more (20 in all) \
             from cell cell1",
            "a-c remote: cell cell3 shut the session down: cell cell1 sent more than 50 prefixes \
             (spec.routes.maxPrefixes)",
            "a-c: RoutesExchanged False RoutesMissing: cell cell3 has not accepted 192.0.2.0/25 from cell cell1",
        ]
    );
    assert_eq!(lines[9], "");
}

#[test]
fn the_networks_table_says_what_is_announced_and_names_a_conflict() {
    let inv = inventory();
    let chosen = select(&inv, None, None);
    let eps = endpoints_of(&inv, &chosen);
    let text = networks(&Style { colour: false }, &eps, false);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines[0],
        ["ENDPOINT", "CELL", "NETWORK", "NAME", "ANNOUNCED", "MESSAGE"]
    );
    assert_eq!(lines[1], ["a", "cell1", "192.0.2.0/25", "mgmt", "True", "-"]);
    assert_eq!(lines[2], ["2001:db8:1::/48", "-", "True", "-"]);
    // Declared, not reported by the controller yet.
    assert_eq!(lines[3], ["b", "cell2", "192.0.2.128/25", "storage", "?", "-"]);
    assert_eq!(lines[4][..5], ["c", "cell3", "192.0.2.0/26", "-", "False"]);
    assert!(text.contains(
        "  c: NetworksAnnounced False NetworkConflict: 192.0.2.0/26 overlaps 192.0.2.0/25 of InfraEndpoint a"
    ));
}

#[test]
fn an_external_side_and_a_side_not_reported_yet_show_no_counts() {
    let inv = Inventory::new(
        vec![interconnect(
            "a",
            "x",
            json!({"local": {"sdn": "GoBGP"}, "remote": {"sdn": "External"}}),
        )],
        vec![],
    );
    let chosen = select(&inv, None, None);
    let text = render(&Style { colour: false }, &inv, &chosen, &[], true);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines[1],
        ["ns/a-x", "-", "local", "?", "a", "-", "-", "-", "-", "-", "50"]
    );
    assert_eq!(
        lines[2],
        ["remote", "?", "x", "external", "-", "-", "-", "-", "50"]
    );
    assert_eq!(lines.len(), 3, "{text}");
}

#[test]
fn a_neutron_subnet_counts_among_the_declared_networks_unless_not_announced() {
    let neutron = |announce: bool| {
        endpoint(
            "n",
            "cell1",
            json!({"spec": {"address": "192.0.2.10",
                "networks": [{"cidr": "203.0.113.0/26"}],
                "neutron": {"cloudSecretRef": {"name": "c"}, "cloud": "demo",
                            "network": {"physicalNetwork": "p"},
                            "subnet": {"cidr": "192.0.2.0/24", "announceSubnet": announce}}}}),
        )
    };
    let cidrs = |ep: &InfraEndpoint| networks_of(ep).into_iter().map(|n| n.cidr).collect::<Vec<_>>();
    assert_eq!(cidrs(&neutron(true)), ["203.0.113.0/26", "192.0.2.0/24"]);
    assert_eq!(cidrs(&neutron(false)), ["203.0.113.0/26"]);
}

#[test]
fn the_document_has_each_side_counts_and_the_conditions() {
    let inv = inventory();
    let chosen = select(&inv, Some("a-c"), None);
    let eps = endpoints_of(&inv, &chosen);
    let doc = document(&inv, &chosen, &eps);
    let cic = &doc["interconnects"][0];
    assert_eq!(cic["name"], "a-c");
    assert_eq!(cic["spec"]["maxPrefixes"], 50);
    assert_eq!(cic["routesExchanged"]["reason"], "RoutesMissing");
    assert_eq!(cic["remote"]["cell"], "cell3");
    assert_eq!(cic["remote"]["routes"]["missingCount"], 20);
    assert_eq!(cic["remote"]["routes"]["prefixLimitExceeded"], true);
    assert_eq!(cic["local"]["routes"]["notCarried"][0], "2001:db8:1::/48");
    assert_eq!(doc["endpoints"][1]["name"], "c");
    assert_eq!(
        doc["endpoints"][1]["networksAnnounced"]["reason"],
        "NetworkConflict"
    );
    assert_eq!(doc["endpoints"][1]["networks"][0]["announced"], false);
}

#[test]
fn nothing_to_show_says_where_it_looked() {
    assert_eq!(
        nothing_to_show("namespace ns", Some("cell9")),
        "No CellInterconnect has an endpoint in cell cell9 in namespace ns."
    );
}
