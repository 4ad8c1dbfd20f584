use serde_json::json;

use super::*;
use crate::api::{L2Spec, RouteTargets};

fn ep(name: &str, cell: &str, segments: serde_json::Value) -> InfraEndpoint {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"cell": cell, "address": "198.51.100.1", "asn": 65001, "l2Segments": segments}
    }))
    .unwrap()
}

fn seg(vni: u32, name: &str) -> Stretched {
    Stretched {
        vni,
        name: name.into(),
    }
}

#[test]
fn no_l2_spec_stretches_nothing_even_when_both_declare_segments() {
    let a = ep("a", "c1", json!([{"name": "vip", "vni": 100}]));
    let b = ep("b", "c2", json!([{"name": "vip", "vni": 100}]));
    assert_eq!(stretched(None, &a, &b), Ok(vec![]));
    assert_eq!(evpn_filter(None, &[]), None);
}

#[test]
fn an_empty_l2_spec_stretches_every_common_vni() {
    let a = ep(
        "a",
        "c1",
        json!([{"name": "vip", "vni": 100}, {"name": "only-a", "vni": 7}, {"name": "db", "vni": 200}]),
    );
    let b = ep(
        "b",
        "c2",
        json!([{"name": "db", "vni": 200}, {"name": "vip", "vni": 100}, {"name": "only-b", "vni": 8}]),
    );
    let l2 = L2Spec::default();
    assert_eq!(
        stretched(Some(&l2), &a, &b),
        Ok(vec![seg(100, "vip"), seg(200, "db")])
    );
}

#[test]
fn named_segments_are_the_only_ones_stretched() {
    let a = ep(
        "a",
        "c1",
        json!([{"name": "vip", "vni": 100}, {"name": "db", "vni": 200}]),
    );
    let b = ep(
        "b",
        "c2",
        json!([{"name": "vip", "vni": 100}, {"name": "db", "vni": 200}]),
    );
    let l2 = L2Spec {
        segments: vec!["db".into()],
        ..Default::default()
    };
    assert_eq!(stretched(Some(&l2), &a, &b), Ok(vec![seg(200, "db")]));
}

#[test]
fn a_named_segment_one_side_lacks_is_not_declared_naming_the_endpoint_and_cell() {
    let a = ep("a", "c1", json!([{"name": "vip", "vni": 100}]));
    let b = ep("b", "c2", json!([]));
    let l2 = L2Spec {
        segments: vec!["vip".into()],
        ..Default::default()
    };
    let p = stretched(Some(&l2), &a, &b).unwrap_err();
    assert_eq!(p.reason, Reason::SegmentNotDeclared);
    assert!(
        p.message.contains("\"vip\"") && p.message.contains("InfraEndpoint b (cell c2)"),
        "{}",
        p.message
    );
}

#[test]
fn one_vni_under_two_names_or_one_name_with_two_vnis_is_a_conflict() {
    let a = ep("a", "c1", json!([{"name": "vip", "vni": 100}]));
    let b = ep("b", "c2", json!([{"name": "vip2", "vni": 100}]));
    let p = stretched(Some(&L2Spec::default()), &a, &b).unwrap_err();
    assert_eq!(p.reason, Reason::SegmentConflict);
    assert!(
        p.message.contains("VNI 100") && p.message.contains("\"vip2\""),
        "{}",
        p.message
    );

    let c = ep("c", "c3", json!([{"name": "vip", "vni": 101}]));
    let p = stretched(Some(&L2Spec::default()), &a, &c).unwrap_err();
    assert_eq!(p.reason, Reason::SegmentConflict);
    assert!(p.message.contains("VNI 101"), "{}", p.message);
}

#[test]
fn the_filter_matches_the_stretched_vnis_unless_route_targets_are_explicit() {
    let segs = [seg(100, "vip"), seg(200, "db")];
    let derived = evpn_filter(Some(&L2Spec::default()), &segs).unwrap();
    assert_eq!(
        derived.import,
        vec![RouteTargetMatch::Vni(100), RouteTargetMatch::Vni(200)]
    );
    assert!(derived.export.is_empty());

    let l2 = L2Spec {
        route_targets: Some(RouteTargets {
            import: vec!["65001:100".into()],
            export: vec!["65002:100".into()],
        }),
        ..Default::default()
    };
    let explicit = evpn_filter(Some(&l2), &segs).unwrap();
    assert_eq!(explicit.import, vec![RouteTargetMatch::Exact("65001:100".into())]);
    assert_eq!(explicit.export, vec!["65002:100".to_string()]);
}

#[test]
fn with_spec_l2_and_nothing_stretched_the_filter_accepts_nothing_but_stays() {
    let l2 = L2Spec {
        route_targets: Some(RouteTargets {
            import: vec!["65001:100".into()],
            export: vec!["65002:100".into()],
        }),
        ..Default::default()
    };
    // Kept (the EVPN family stays on the session), accepting and tagging nothing, explicit
    // route targets included: they belong to segments that are not stretched now.
    let empty = evpn_filter(Some(&l2), &[]).unwrap();
    assert_eq!(empty.import, Vec::<RouteTargetMatch>::new());
    assert!(empty.export.is_empty());
}
