use serde_json::{Value, json};

use super::*;
use crate::api::{ConditionType, Reason};

fn condition(type_: ConditionType, status: &str, reason: Reason, message: &str) -> Value {
    json!({"type": type_.as_str(), "status": status, "reason": reason.as_str(), "message": message,
           "lastTransitionTime": "2024-01-01T00:00:00Z"})
}

/// A GoBGP endpoint of `cell` declaring `networks`, with `status` (null: none).
fn endpoint(name: &str, cell: &str, networks: Value, status: Value) -> InfraEndpoint {
    let mut obj = json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"cell": cell, "address": "198.51.100.1", "asn": 65001, "networks": networks,
                 "sdn": {"type": "GoBGP", "url": "http://127.0.0.1:50051"}},
    });
    if !status.is_null() {
        obj["status"] = status;
    }
    serde_json::from_value(obj).unwrap()
}

fn interconnect(status: Value) -> CellInterconnect {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
        "metadata": {"name": "a-b", "namespace": "ns"},
        "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}},
        "status": status,
    }))
    .unwrap()
}

fn pair() -> Endpoints {
    vec![
        (
            "local",
            Some(endpoint(
                "a",
                "cell1",
                json!([{"cidr": "192.0.2.0/25"}]),
                Value::Null,
            )),
        ),
        (
            "remote",
            Some(endpoint(
                "b",
                "cell2",
                json!([{"cidr": "192.0.2.128/25"}]),
                Value::Null,
            )),
        ),
    ]
}

#[test]
fn a_missing_network_is_the_first_evidence_of_a_failed_routes_step() {
    let missing = json!({"advertised": 1, "received": 0, "accepted": 0, "rejected": 0,
                         "missing": ["192.0.2.0/25"], "missingCount": 1});
    let fine = json!({"advertised": 0, "received": 1, "accepted": 1, "rejected": 0, "missingCount": 0});
    let cic = interconnect(json!({
        "conditions": [condition(ConditionType::RoutesExchanged, "False", Reason::RoutesMissing,
                                 "cell cell2 has not accepted 192.0.2.0/25 from cell cell1")],
        "local": {"routes": fine}, "remote": {"routes": missing},
    }));
    let step = routes_step(&cic, &pair()).unwrap();
    assert_eq!(step.title, "routes exchanged between cell cell1 and cell cell2");
    assert_eq!(step.verdict, Verdict::Failed);
    assert_eq!(
        step.evidence,
        [
            "cell cell2 has not accepted 192.0.2.0/25 from cell cell1 (RoutesMissing)",
            "RoutesExchanged False RoutesMissing: cell cell2 has not accepted 192.0.2.0/25 from cell cell1",
            "local (cell cell1): advertised 0, received 1, accepted 1, rejected 0",
            "remote (cell cell2): advertised 1, received 0, accepted 0, rejected 0",
        ]
    );
}

#[test]
fn the_prefix_limit_is_named_with_its_reason() {
    let hit = json!({"received": 1001, "prefixLimitExceeded": true});
    let cic = interconnect(json!({
        "conditions": [condition(ConditionType::RoutesExchanged, "False", Reason::PrefixLimitExceeded, "x")],
        "local": {"routes": hit},
    }));
    let step = routes_step(&cic, &pair()).unwrap();
    assert_eq!(step.verdict, Verdict::Failed);
    assert_eq!(
        step.evidence[0],
        "cell cell1 shut the session down: cell cell2 sent more than 1000 prefixes \
         (spec.routes.maxPrefixes) (PrefixLimitExceeded)"
    );
}

#[test]
fn routes_exchanged_is_ok_and_without_networks_there_is_no_step() {
    let cic = interconnect(json!({
        "conditions": [condition(ConditionType::RoutesExchanged, "True", Reason::RoutesExchanged, "all in")],
    }));
    let step = routes_step(&cic, &pair()).unwrap();
    assert_eq!(step.verdict, Verdict::Ok);
    assert_eq!(step.evidence, ["RoutesExchanged True RoutesExchanged: all in"]);
    let bare = |name, cell| Some(endpoint(name, cell, json!([]), Value::Null));
    let none: Endpoints = vec![("local", bare("a", "cell1")), ("remote", bare("b", "cell2"))];
    assert!(routes_step(&interconnect(json!({})), &none).is_none());
    // Networks declared, the controller has not said anything yet.
    let step = routes_step(&interconnect(json!({})), &pair()).unwrap();
    assert_eq!(step.verdict, Verdict::Unknown);
}

#[test]
fn a_conflict_fails_the_networks_step_and_names_the_other_endpoint() {
    let conflict = endpoint(
        "a",
        "cell1",
        json!([{"cidr": "192.0.2.0/25", "name": "mgmt"}, {"cidr": "203.0.113.0/26"}]),
        json!({
            "conditions": [condition(ConditionType::NetworksAnnounced, "False", Reason::NetworkConflict,
                                     "192.0.2.0/25 overlaps 192.0.2.0/24 of InfraEndpoint c (cell cell3)")],
            "networks": [{"cidr": "192.0.2.0/25", "name": "mgmt", "announced": false,
                          "message": "overlaps 192.0.2.0/24 of InfraEndpoint c (cell cell3)"},
                         {"cidr": "203.0.113.0/26", "announced": true}],
        }),
    );
    let announced = endpoint(
        "b",
        "cell2",
        json!([{"cidr": "192.0.2.128/25"}]),
        json!({"conditions": [condition(ConditionType::NetworksAnnounced, "True", Reason::NetworksAnnounced, "")],
               "networks": [{"cidr": "192.0.2.128/25", "announced": true}]}),
    );
    let steps = networks_steps(&vec![("local", Some(conflict)), ("remote", Some(announced))]);
    assert_eq!(steps[0].title, "local networks announced (cell cell1)");
    assert_eq!(steps[0].verdict, Verdict::Failed);
    assert_eq!(
        steps[0].evidence,
        [
            "NetworkConflict: 192.0.2.0/25 overlaps 192.0.2.0/24 of InfraEndpoint c (cell cell3)",
            "192.0.2.0/25 (mgmt): overlaps 192.0.2.0/24 of InfraEndpoint c (cell cell3)",
            "announced: 203.0.113.0/26",
        ]
    );
    assert_eq!(steps[1].verdict, Verdict::Ok);
    assert_eq!(steps[1].evidence, ["announced: 192.0.2.128/25"]);
}

#[test]
fn endpoints_without_networks_have_no_step_and_unreported_ones_are_unknown() {
    let steps = networks_steps(&pair());
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].verdict, Verdict::Unknown);
    assert_eq!(
        steps[0].evidence,
        ["declared 192.0.2.0/25; InfraEndpoint a has no NetworksAnnounced condition yet"]
    );
    let bare: Endpoints = vec![
        ("local", Some(endpoint("a", "cell1", json!([]), Value::Null))),
        ("remote", None),
    ];
    assert!(networks_steps(&bare).is_empty());
}
