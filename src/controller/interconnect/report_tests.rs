use std::net::IpAddr;

use super::*;
use crate::api::SdnKind;
use crate::controller::speakers::speaker_key;
use crate::sdn::{BackendKind, ObservedPeer, PeerConfig, SdnError, SdnTarget, SpeakerConfig};

fn id(cell: &str, peer: &str) -> SideId {
    SideId {
        cell: cell.into(),
        sdn: SdnKind::GoBgp,
        peer_address: peer.into(),
    }
}

fn plan(kind: BackendKind, neighbor: &str, repairs: bool) -> SidePlan {
    let url = "http://127.0.0.1:50051".to_string();
    SidePlan {
        speaker: speaker_key(kind, &url),
        target: SdnTarget {
            kind,
            url,
            ca_pem: None,
            insecure_skip_verify: false,
            credentials: None,
            open_daylight: None,
        },
        speaker_config: SpeakerConfig {
            asn: 65001,
            router_id: "192.0.2.1".parse().unwrap(),
            listen_address: "192.0.2.1".parse().unwrap(),
            listen_port: 179,
        },
        peer: PeerConfig {
            owned_record: kind == BackendKind::OpenDaylight,
            ..PeerConfig::new(
                neighbor.parse().unwrap(),
                65002,
                "192.0.2.1".parse().unwrap(),
                "cellnet:ns/a-b",
            )
        },
        stale_peer: None,
        write_repairs_drift: repairs,
        routes: Default::default(),
    }
}

fn applied(outcome: PeerOutcome, session: Option<SessionState>) -> SideFacts {
    SideFacts {
        started: false,
        result: Ok(Applied {
            outcome,
            observed: session.map(|session| ObservedPeer {
                neighbor: "192.0.2.2".parse().unwrap(),
                owner: Some("cellnet:ns/a-b".into()),
                session,
                admin_down: false,
                last_error: None,
                diagnostics: Default::default(),
                graceful_restart: None,
            }),
            stale_removed: None,
            routes: None,
        }),
    }
}

fn local(facts: SideFacts, repairs: bool) -> Found {
    Found::Applied(
        id("a", "192.0.2.2"),
        Box::new(plan(BackendKind::GoBgp, "192.0.2.2", repairs)),
        facts,
    )
}

fn external() -> Found {
    Found::External(id("b", "192.0.2.1"))
}

fn reasons(r: &Report) -> Vec<Reason> {
    r.notes.0.iter().map(|n| n.reason).collect()
}

fn side_status(state: crate::api::SessionState, message: Option<&str>) -> SideStatus {
    SideStatus {
        session_state: state,
        message: message.map(str::to_string),
        ..Default::default()
    }
}

#[test]
fn a_create_is_a_peer_created_event_and_reports_idle_without_a_read() {
    let r = report(
        &[local(applied(PeerOutcome::Created, None), false), external()],
        [None, None],
    );
    assert_eq!(reasons(&r), [Reason::PeerCreated]);
    assert!(
        r.notes.0[0]
            .text
            .starts_with("cell a: created BGP peer 192.0.2.2 (AS 65002)")
    );
    assert!(matches!(
        r.sides[0].result,
        SideResult::Configured {
            session: SessionState::Idle,
            ..
        }
    ));
    assert!(r.tallies.contains(&Tally::SdnWrite("create_peer")));
}

#[test]
fn a_write_when_the_spec_did_not_change_is_a_drift_repair_but_a_rotation_is_not() {
    let r = report(
        &[local(applied(PeerOutcome::Created, None), true), external()],
        [None, None],
    );
    assert_eq!(reasons(&r), [Reason::DriftRepaired]);
    assert_eq!(r.notes.0[0].type_, EventType::Warning);
    assert!(r.tallies.contains(&Tally::DriftRepair { cell: "a".into() }));
    let rotation = PeerOutcome::Updated {
        fields: vec!["password"],
    };
    let r = report(
        &[
            local(applied(rotation, Some(SessionState::Established)), true),
            external(),
        ],
        [None, None],
    );
    assert_eq!(reasons(&r), [Reason::PeerUpdated, Reason::SessionEstablished]);
    assert!(r.notes.0[0].text.ends_with("(password)"));
}

#[test]
fn session_events_only_on_a_change_and_an_outage_only_once() {
    use crate::api::SessionState as Api;
    let up = || {
        local(
            applied(PeerOutcome::Unchanged, Some(SessionState::Established)),
            false,
        )
    };
    let was_up = side_status(Api::Established, None);
    let r = report(&[up(), external()], [Some(&was_up), None]);
    assert!(reasons(&r).is_empty(), "no change, no Event");
    let down = local(applied(PeerOutcome::Unchanged, Some(SessionState::Active)), false);
    let r = report(&[down, external()], [Some(&was_up), None]);
    assert_eq!(reasons(&r), [Reason::SessionDown]);
    assert!(
        r.notes.0[0]
            .text
            .starts_with("cell a -> cell b (192.0.2.2): BGP session went down")
    );
    let unreachable = || {
        let e = SdnError::Unreachable {
            endpoint: "http://127.0.0.1:50051".into(),
            message: "refused".into(),
        };
        local(
            SideFacts {
                started: false,
                result: Err(Failure::Sdn(e)),
            },
            false,
        )
    };
    let r = report(&[unreachable(), external()], [Some(&was_up), None]);
    assert_eq!(reasons(&r), [Reason::SdnUnreachable]);
    let already = side_status(Api::Unknown, Some("cannot reach"));
    let r = report(&[unreachable(), external()], [Some(&already), None]);
    assert!(reasons(&r).is_empty(), "once per outage: status already says it");
}

#[test]
fn failures_become_problems_with_their_reasons() {
    let p = plan(BackendKind::GoBgp, "192.0.2.2", false);
    let theirs = problem(
        &p,
        &Failure::NotOurs {
            owner: Some("cellnet:ns/other".into()),
        },
    );
    assert_eq!((theirs.reason, theirs.stalled), (Reason::PeerConflict, true));
    assert!(
        theirs.message.contains("owned by \"cellnet:ns/other\""),
        "{}",
        theirs.message
    );
    let unrecorded = problem(&p, &Failure::Unrecorded);
    assert!(unrecorded.message.contains("that cellnet did not create"));
    let vanished = problem(&p, &Failure::Vanished);
    assert_eq!((vanished.reason, vanished.stalled), (Reason::SdnRejected, false));
    let conflict = problem(&p, &Failure::SpeakerConflict("runs AS 1".into()));
    assert_eq!(
        (conflict.reason, conflict.message.as_str()),
        (Reason::SpeakerConflict, "runs AS 1")
    );
}

#[test]
fn both_sides_notes_share_one_event_per_reason() {
    let remote = Found::Applied(
        id("b", "192.0.2.1"),
        Box::new(plan(BackendKind::GoBgp, "192.0.2.1", false)),
        applied(PeerOutcome::Created, None),
    );
    let r = report(
        &[local(applied(PeerOutcome::Created, None), false), remote],
        [None, None],
    );
    assert_eq!(reasons(&r), [Reason::PeerCreated]);
    assert!(r.notes.0[0].text.contains("cell a: created") && r.notes.0[0].text.contains("; cell b: created"));
}

#[test]
fn the_ledger_forgets_a_lost_create_and_a_removed_stale_peer() {
    let odl = |facts| {
        Found::Applied(
            id("a", "192.0.2.2"),
            Box::new(plan(BackendKind::OpenDaylight, "192.0.2.2", false)),
            facts,
        )
    };
    let speaker = speaker_key(BackendKind::OpenDaylight, "http://127.0.0.1:50051");
    let (new, old): (IpAddr, IpAddr) = ("192.0.2.2".parse().unwrap(), "192.0.2.9".parse().unwrap());
    let mut ledger = Ledger::default();
    ledger.claim(&speaker, new);
    ledger.claim(&speaker, old);
    let lost = SideFacts {
        started: false,
        result: Err(Failure::NotOurs { owner: None }),
    };
    let after = ledger_after(&[odl(lost), external()], ledger.clone());
    assert!(!after.owns(&speaker, "192.0.2.2") && after.owns(&speaker, "192.0.2.9"));
    let mut moved = applied(PeerOutcome::Unchanged, Some(SessionState::Established));
    if let Ok(a) = moved.result.as_mut() {
        a.stale_removed = Some(old);
    }
    let after = ledger_after(&[odl(moved), external()], ledger.clone());
    assert!(after.owns(&speaker, "192.0.2.2") && !after.owns(&speaker, "192.0.2.9"));
    let gobgp = local(
        SideFacts {
            started: false,
            result: Err(Failure::NotOurs { owner: None }),
        },
        false,
    );
    assert_eq!(
        ledger_after(&[gobgp, external()], ledger.clone()),
        ledger,
        "marker backends keep no ledger"
    );
}
