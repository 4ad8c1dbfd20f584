use std::collections::BTreeMap;

use super::*;
use crate::api::SdnKind;
use crate::controller::interconnect::status::SideResult;
use crate::sdn::{SegmentSeen, SessionState};

fn stretched() -> Vec<Stretched> {
    vec![Stretched {
        vni: 100,
        name: "vip".into(),
    }]
}

fn seen(vteps: &[&str], macs: &[&str], rejected: u64) -> SegmentsSeen {
    let mut by_vni = BTreeMap::new();
    if !vteps.is_empty() || !macs.is_empty() {
        by_vni.insert(
            100,
            SegmentSeen {
                vteps: vteps.iter().map(|v| v.parse().unwrap()).collect(),
                macs: macs.iter().map(|m| m.to_string()).collect(),
            },
        );
    }
    SegmentsSeen { by_vni, rejected }
}

fn side(cell: &str, segments: Option<SideSegments>) -> Side {
    Side {
        cell: cell.into(),
        sdn: SdnKind::GoBgp,
        peer_address: "198.51.100.2".into(),
        passive: false,
        graceful_restart_negotiated: None,
        result: SideResult::Configured {
            session: SessionState::Established,
            admin_down: false,
            last_error: None,
        },
        routes: None,
        segments: segments.map(Box::new),
        health: Default::default(),
    }
}

fn with(observed: SegmentsSeen) -> Option<SideSegments> {
    Some(SideSegments {
        stretched: Ok(stretched()),
        observed: Some(Ok(observed)),
    })
}

#[test]
fn no_l2_spec_gives_no_condition() {
    assert_eq!(segments_verdict(&side("a", None), &side("b", None)), None);
}

#[test]
fn both_sides_with_the_other_cells_vtep_are_stretched() {
    let a = side("a", with(seen(&["198.51.100.2"], &["02:00:00:00:00:01"], 0)));
    let b = side("b", with(seen(&["198.51.100.1"], &[], 3)));
    let v = segments_verdict(&a, &b).unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.reason, Reason::SegmentsStretched);
    assert!(v.message.contains("vip (VNI 100)"), "{}", v.message);
    let (status, rejected) = segment_status(b.segments.as_deref().unwrap());
    assert_eq!(rejected, 3);
    assert_eq!(status[0].remote_vteps, ["198.51.100.1"]);
    let (status, _) = segment_status(a.segments.as_deref().unwrap());
    assert_eq!((status[0].macs.len(), status[0].mac_count), (1, 1));
}

#[test]
fn a_side_without_the_other_cells_vtep_names_cell_and_vni() {
    let a = side("a", with(seen(&["198.51.100.2"], &[], 0)));
    let b = side("b", with(seen(&[], &["02:00:00:00:00:01"], 0)));
    let v = segments_verdict(&a, &b).unwrap();
    assert!(!v.ok && !v.stalled);
    assert_eq!(v.reason, Reason::SegmentMissing);
    assert_eq!(
        v.message,
        "cell b has no VTEP of cell a for segment vip (VNI 100)"
    );
}

#[test]
fn a_spec_problem_stalls_and_is_named() {
    let problem = SegmentProblem {
        reason: Reason::SegmentNotDeclared,
        message: "spec.l2.segments names \"vip\", which InfraEndpoint b (cell b) does not declare".into(),
    };
    let bad = || {
        Some(SideSegments {
            stretched: Err(problem.clone()),
            observed: None,
        })
    };
    let v = segments_verdict(&side("a", bad()), &side("b", bad())).unwrap();
    assert!(!v.ok && v.stalled);
    assert_eq!((v.reason, v.message), (problem.reason, problem.message));
}

#[test]
fn macs_beyond_the_listed_ones_are_counted() {
    let macs: Vec<String> = (0..20).map(|i| format!("02:00:00:00:00:{i:02x}")).collect();
    let refs: Vec<&str> = macs.iter().map(String::as_str).collect();
    let s = with(seen(&["198.51.100.2"], &refs, 0)).unwrap();
    let (status, _) = segment_status(&s);
    assert_eq!((status[0].macs.len(), status[0].mac_count), (16, 20));
}
