use serde_json::json;

use super::*;

fn endpoint(name: &str, cell: &str) -> crate::api::InfraEndpoint {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"cell": cell, "address": "192.0.2.1", "asn": 65001},
    }))
    .unwrap()
}

/// Interconnect `local-remote`: local Established, remote external; Ready True.
fn interconnect(local: &str, remote: &str, spec: Value) -> CellInterconnect {
    let mut s = json!({"localEndpoint": {"name": local}, "remoteEndpoint": {"name": remote}});
    s.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
        "metadata": {"name": format!("{local}-{remote}"), "namespace": "ns"},
        "spec": s,
        "status": {
            "conditions": [{"type": "Ready", "status": "True",
                            "reason": Reason::SessionEstablished.as_str(), "message": "up",
                            "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            "local": {"sdn": "GoBGP", "peerAddress": "192.0.2.2", "sessionState": "Established",
                      "configured": true, "flaps": 2, "gracefulRestartNegotiated": true},
            "remote": {"sdn": serde_json::to_value(SdnKind::External).unwrap(), "peerAddress": "192.0.2.1",
                       "lastError": "hold timer expired"},
        },
    }))
    .unwrap()
}

fn inventory() -> Inventory {
    Inventory::new(
        vec![
            interconnect("a", "b", json!({})),
            interconnect("a", "c", json!({"suspend": true})),
            interconnect("c", "x", json!({"adminState": "Disabled"})),
        ],
        vec![
            endpoint("a", "cell1"),
            endpoint("b", "cell2"),
            endpoint("c", "cell1"),
        ],
    )
}

fn grouped(inv: &Inventory, only: Option<&str>) -> Vec<(String, Vec<String>)> {
    by_cell(inv, only)
        .into_iter()
        .map(|(cell, list)| (cell, list.iter().map(|c| c.name_any()).collect()))
        .collect()
}

#[test]
fn an_interconnect_shows_once_under_each_of_its_cells() {
    let inv = inventory();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        grouped(&inv, None),
        [
            ("<unknown>".to_string(), strings(&["c-x"])),
            ("cell1".to_string(), strings(&["a-b", "a-c", "c-x"])),
            ("cell2".to_string(), strings(&["a-b"])),
        ]
    );
    assert_eq!(
        grouped(&inv, Some("cell2")),
        [("cell2".to_string(), strings(&["a-b"]))]
    );
}

#[test]
fn the_table_shows_both_sides_and_an_external_side_without_session_details() {
    let inv = Inventory::new(
        vec![interconnect("a", "b", json!({}))],
        vec![endpoint("a", "cell1")],
    );
    let text = tables(
        &Style { colour: false },
        &inv,
        &by_cell(&inv, Some("cell1")),
        false,
        false,
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "CELL cell1");
    assert!(lines[1].starts_with("  INTERCONNECT   READY"), "{text}");
    let local: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        local,
        [
            "a-b",
            "True",
            Reason::SessionEstablished.as_str(),
            "local",
            "cell1",
            "a",
            "Established",
            "-",
            "2",
            "-"
        ]
    );
    let remote: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        remote,
        [
            "remote",
            "?",
            "b",
            Reason::External.as_str(),
            "-",
            "-",
            "hold",
            "timer",
            "expired"
        ]
    );
}

#[test]
fn the_wide_table_names_the_namespace_and_the_admin_state_once() {
    let inv = inventory();
    let text = tables(
        &Style { colour: false },
        &inv,
        &by_cell(&inv, Some("cell1")),
        true,
        true,
    );
    let admin = |name: &str| {
        let line = text.lines().find(|l| l.contains(name)).unwrap();
        line.split_whitespace().nth(12).unwrap().to_string()
    };
    assert_eq!(admin("ns/a-b"), "Enabled");
    assert_eq!(admin("ns/a-c"), Reason::Suspended.as_str());
    assert_eq!(admin("ns/c-x"), "Disabled");
    let second_rows: Vec<&str> = text.lines().filter(|l| l.contains(" remote ")).collect();
    assert_eq!(second_rows.len(), 3);
    for row in second_rows {
        for state in ["Enabled", "Disabled", Reason::Suspended.as_str()] {
            assert!(!row.contains(state), "{row}");
        }
    }
    assert!(text.contains("CONFIGURED   SDN"), "{text}");
    // GR: negotiated on the local (GoBGP) side, not known on the external one.
    let gr = |name: &str| {
        let line = text.lines().find(|l| l.contains(name)).unwrap();
        line.split_whitespace().nth(15).unwrap().to_string()
    };
    assert!(text.contains(" GR "), "{text}");
    assert_eq!(gr("ns/a-b"), "yes");
}

#[test]
fn nothing_to_show_says_where_it_looked() {
    assert_eq!(
        nothing_to_show("namespace ns", Some("cell9")),
        "No CellInterconnect has an endpoint in cell cell9 in namespace ns."
    );
    assert_eq!(
        nothing_to_show("any namespace", None),
        "No CellInterconnect in any namespace."
    );
}

#[test]
fn ready_is_shown_as_written_and_typed_when_known() {
    let cic = interconnect("a", "b", json!({}));
    let ready = ready_of(&cic);
    assert!(ready.is_true());
    assert_eq!(ready.reason(), Some(Reason::SessionEstablished));
    assert_eq!(
        ready.to_string(),
        format!("True {}: up", Reason::SessionEstablished)
    );
    let unknown = Ready {
        reason: "SomeNewReason".into(),
        ..ready
    };
    assert_eq!(unknown.reason(), None);
}
