//! The pure plan: which writes, in which order, and none in steady state.
use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{self, Desired, Member, Observed, ObservedStatement};
use super::names::{self, Direction};
use super::plan::{self, OwnPath, PathWrite, Write};
use super::wire;
use crate::sdn::routes::{ExportRule, ImportRule, Origination, RouteFilter};

const KEY: &str = "ab12";

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn filter(import: ImportRule) -> RouteFilter {
    RouteFilter {
        key: KEY.into(),
        neighbors: vec![ip("198.51.100.12")],
        import,
        export: ExportRule::Only(vec![net("192.0.2.0/25")]),
        evpn: None,
    }
}

fn only(nets: &[&str]) -> ImportRule {
    ImportRule::Only(nets.iter().map(|n| net(n)).collect())
}

/// What the speaker would hold once `desired` is in place, after the operator's `op` policy.
fn holding(desired: &Desired) -> Observed {
    let mut observed = Observed {
        sets: desired.sets.clone(),
        ..Default::default()
    };
    for direction in Direction::BOTH {
        let statements: Vec<ObservedStatement> = desired
            .statements
            .iter()
            .filter(|s| s.direction == direction)
            .map(|s| wire::statement_from_proto(direction, &wire::statement(s)))
            .collect();
        if !statements.is_empty() {
            observed.policies.insert(direction, statements);
        }
        let order = vec![direction.policy().to_owned(), "op".to_owned()];
        observed.assignments.insert(direction, order);
    }
    observed
}

fn plan_for(filter: Option<&RouteFilter>, observed: &Observed) -> Vec<Write> {
    plan::filter_plan(KEY, &model::desired(KEY, filter), observed)
}

fn position(writes: &[Write], wanted: impl Fn(&Write) -> bool) -> usize {
    writes
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("not planned: {writes:#?}"))
}

#[test]
fn a_new_filter_creates_sets_then_statements_then_goes_first() {
    let mut observed = Observed::default();
    observed
        .assignments
        .insert(Direction::Import, vec!["op-lp".into(), "op-accept".into()]);
    let writes = plan_for(Some(&filter(only(&["10.99.0.0/16"]))), &observed);
    let peers = position(&writes, |w| matches!(w, Write::AddMembers { neighbor: true, .. }));
    let statement = position(&writes, |w| matches!(w, Write::AddStatement(_)));
    let assign = position(&writes, |w| matches!(w, Write::Assign { .. }));
    assert!(peers < statement && statement < assign, "{writes:#?}");
    let import_order = writes.iter().find_map(|w| match w {
        Write::Assign {
            direction: Direction::Import,
            policies,
        } => Some(policies.clone()),
        _ => None,
    });
    assert_eq!(
        import_order.unwrap(),
        ["cellnet-import", "op-lp", "op-accept"],
        "ours first, the operator's in their order"
    );
    // v4 filtered by the set, v6 rejected entirely (no v6 network declared).
    let names: Vec<String> = writes
        .iter()
        .filter_map(|w| match w {
            Write::AddStatement(s) => Some(s.name.clone()),
            _ => None,
        })
        .collect();
    assert!(names.contains(&"cellnet-ab12-in-v4".to_owned()), "{names:?}");
    assert!(names.contains(&"cellnet-ab12-in-v6-all".to_owned()), "{names:?}");
    assert!(
        matches!(writes.last(), Some(Write::HardReset { .. })),
        "{writes:#?}"
    );
}

#[test]
fn steady_state_plans_nothing() {
    for rule in [
        ImportRule::Any,
        ImportRule::None,
        only(&["10.99.0.0/16", "2001:db8::/48"]),
    ] {
        let f = filter(rule);
        let observed = holding(&model::desired(KEY, Some(&f)));
        assert_eq!(plan_for(Some(&f), &observed), Vec::<Write>::new(), "{f:?}");
    }
}

#[test]
fn a_shape_change_adds_the_new_statement_before_dropping_the_old() {
    let before = filter(only(&["10.99.0.0/16"]));
    let observed = holding(&model::desired(KEY, Some(&before)));
    let writes = plan_for(Some(&filter(ImportRule::None)), &observed);
    let add = position(
        &writes,
        |w| matches!(w, Write::AddStatement(s) if s.name == "cellnet-ab12-in-v4-all"),
    );
    let drop = position(
        &writes,
        |w| matches!(w, Write::DeleteStatement { name, .. } if name == "cellnet-ab12-in-v4"),
    );
    let set = position(
        &writes,
        |w| matches!(w, Write::DeleteSet { set, .. } if set == "cellnet-ab12-in-v4"),
    );
    assert!(add < drop && drop < set, "{writes:#?}");
    assert!(writes.contains(&Write::ResetIn {
        neighbor: ip("198.51.100.12")
    }));
}

#[test]
fn members_are_added_before_others_are_removed() {
    let observed = holding(&model::desired(KEY, Some(&filter(only(&["10.1.0.0/16"])))));
    let writes = plan_for(Some(&filter(only(&["10.2.0.0/16"]))), &observed);
    let add = position(&writes, |w| matches!(w, Write::AddMembers { .. }));
    let remove = position(&writes, |w| matches!(w, Write::RemoveMembers { .. }));
    assert!(add < remove, "{writes:#?}");
    assert!(
        !writes.iter().any(|w| matches!(w, Write::AddStatement(_))),
        "{writes:#?}"
    );
    // Import only: the export side is untouched, so no session is reset.
    assert!(
        !writes
            .iter()
            .any(|w| matches!(w, Write::HardReset { .. } | Write::ResetOut { .. }))
    );
}

#[test]
fn a_statement_changed_by_hand_is_replaced_and_a_missing_one_restored() {
    let f = filter(only(&["10.99.0.0/16"]));
    let mut observed = holding(&model::desired(KEY, Some(&f)));
    let import = observed.policies.get_mut(&Direction::Import).unwrap();
    import[0].shape = None;
    import.remove(1);
    let writes = plan_for(Some(&f), &observed);
    let drop = position(&writes, |w| matches!(w, Write::DeleteStatement { .. }));
    let adds = writes
        .iter()
        .filter(|w| matches!(w, Write::AddStatement(_)))
        .count();
    assert_eq!(adds, 2, "{writes:#?}");
    assert!(drop < position(&writes, |w| matches!(w, Write::AddStatement(_))));
}

#[test]
fn only_a_narrower_export_resets_the_session() {
    let neighbor = ip("198.51.100.12");
    let open = filter(ImportRule::Any);
    let closed = RouteFilter {
        export: ExportRule::None,
        evpn: None,
        ..open.clone()
    };
    let writes = plan_for(Some(&closed), &holding(&model::desired(KEY, Some(&open))));
    assert!(writes.contains(&Write::HardReset { neighbor }), "{writes:#?}");
    let writes = plan_for(Some(&open), &holding(&model::desired(KEY, Some(&closed))));
    assert!(writes.contains(&Write::ResetOut { neighbor }), "{writes:#?}");
    assert!(
        !writes
            .iter()
            .any(|w| matches!(w, Write::HardReset { .. } | Write::ResetIn { .. }))
    );
}

#[test]
fn the_policy_is_put_back_first() {
    let f = filter(ImportRule::Any);
    let mut observed = holding(&model::desired(KEY, Some(&f)));
    observed
        .assignments
        .insert(Direction::Export, vec!["op".into(), "cellnet-export".into()]);
    let writes = plan_for(Some(&f), &observed);
    assert_eq!(
        writes,
        [Write::Assign {
            direction: Direction::Export,
            policies: vec!["cellnet-export".into(), "op".into()]
        }]
    );
}

#[test]
fn removing_the_last_filter_removes_the_policies_then_the_sets() {
    let f = filter(only(&["10.99.0.0/16"]));
    let observed = holding(&model::desired(KEY, Some(&f)));
    let writes = plan_for(None, &observed);
    assert!(
        !writes
            .iter()
            .any(|w| matches!(w, Write::Assign { .. } | Write::DeleteStatement { .. }))
    );
    let policy = position(&writes, |w| matches!(w, Write::RemovePolicy { .. }));
    let set = position(&writes, |w| matches!(w, Write::DeleteSet { .. }));
    assert!(policy < set, "{writes:#?}");
    let sets = writes
        .iter()
        .filter(|w| matches!(w, Write::DeleteSet { .. }))
        .count();
    assert_eq!(sets, 3, "peers, in-v4, out-v4: {writes:#?}");
    // Taking filters away only lets more through: soft resets, no session flap.
    assert!(writes.contains(&Write::ResetOut {
        neighbor: ip("198.51.100.12")
    }));
    assert!(!writes.iter().any(|w| matches!(w, Write::HardReset { .. })));
}

#[test]
fn removing_one_filter_keeps_the_others() {
    let f = filter(ImportRule::None);
    let mut observed = holding(&model::desired(KEY, Some(&f)));
    let other = ObservedStatement {
        name: "cellnet-cd34-in-v4-all".into(),
        shape: None,
    };
    observed.policies.get_mut(&Direction::Import).unwrap().push(other);
    let writes = plan_for(None, &observed);
    assert!(writes.contains(&Write::RemovePolicy {
        direction: Direction::Export
    }));
    assert!(!writes.contains(&Write::RemovePolicy {
        direction: Direction::Import
    }));
    let dropped: Vec<&str> = writes
        .iter()
        .filter_map(|w| match w {
            Write::DeleteStatement { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, ["cellnet-ab12-in-v4-all", "cellnet-ab12-in-v6-all"]);
}

#[test]
fn statements_and_sets_read_back_as_written() {
    let desired = model::desired(KEY, Some(&filter(only(&["10.99.0.0/16", "2001:db8::/48"]))));
    for s in &desired.statements {
        let back = wire::statement_from_proto(s.direction, &wire::statement(s));
        assert_eq!(back.shape.as_ref(), Some(s));
    }
    for (name, set) in &desired.sets {
        let members: Vec<Member> = set.members.iter().copied().collect();
        assert_eq!(
            &wire::set_from_proto(&wire::defined_set(name, set.neighbor, &members)),
            set
        );
    }
    let mut accept = wire::statement(&desired.statements[0]);
    accept.actions.as_mut().unwrap().route_action = 1;
    assert_eq!(wire::statement_from_proto(Direction::Import, &accept).shape, None);
}

#[test]
fn keys_cannot_overlap() {
    assert!(names::check_key("ab12").is_ok());
    for bad in ["", "ab-in", "AB", &"a".repeat(41)] {
        assert!(names::check_key(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn origination_adds_replaces_and_withdraws_only_what_differs() {
    let origination = Origination {
        mark: 7,
        next_hop: ip("198.51.100.11"),
        networks: vec![net("192.0.2.0/25"), net("192.0.2.128/25"), net("192.0.2.0/25")],
        owner: "cellnet:ns/a".into(),
    };
    let ours = [
        OwnPath {
            net: net("192.0.2.0/25"),
            next_hop: Some(ip("198.51.100.11")),
        },
        OwnPath {
            net: net("192.0.2.128/25"),
            next_hop: Some(ip("198.51.100.99")),
        },
        OwnPath {
            net: net("203.0.113.0/24"),
            next_hop: Some(ip("198.51.100.11")),
        },
    ];
    assert_eq!(
        plan::origination_plan(&origination, &ours),
        [
            PathWrite::Add(net("192.0.2.128/25")),
            PathWrite::Delete(net("203.0.113.0/24"))
        ]
    );
    assert_eq!(
        plan::origination_plan(&origination, &ours[..2])[..],
        [PathWrite::Add(net("192.0.2.128/25"))]
    );
}

#[test]
fn paths_carry_the_mark_and_read_back() {
    let path = wire::origination_path(net("192.0.2.0/25"), ip("198.51.100.11"), 7, 65001);
    assert_eq!(path.identifier, 7);
    assert_eq!(wire::prefix_of(&path), Some(net("192.0.2.0/25")));
    assert_eq!(wire::next_hop_of(&path), Some(ip("198.51.100.11")));
    let v6 = wire::origination_path(net("2001:db8::/48"), ip("2001:db8::1"), 7, 65001);
    assert_eq!(wire::next_hop_of(&v6), Some(ip("2001:db8::1")));
    assert!(
        wire::is_local(&path),
        "GoBGP lists local paths with neighbor_ip \"<nil>\""
    );
    let withdrawal = wire::withdrawal_path(net("192.0.2.0/25"), 7);
    assert_eq!(
        (withdrawal.identifier, wire::prefix_of(&withdrawal)),
        (7, Some(net("192.0.2.0/25")))
    );
}
