use super::*;
use crate::api::conditions::get_condition;

fn at(seconds: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
}

fn side(cell: &str, result: SideResult) -> Side {
    Side {
        cell: cell.into(),
        sdn: SdnKind::GoBgp,
        peer_address: "10.0.0.2".into(),
        passive: false,
        graceful_restart_negotiated: None,
        result,
        routes: None,
        segments: None,
        health: Default::default(),
    }
}

fn up(session: sdn::SessionState) -> SideResult {
    SideResult::Configured {
        session,
        admin_down: false,
        last_error: None,
    }
}

fn sides(local: SideResult, remote: SideResult) -> Outcome {
    Outcome::Sides {
        local: side("cell1", local),
        remote: side("cell2", remote),
        password_version: None,
    }
}

fn cond(s: &CellInterconnectStatus, t: ConditionType) -> Option<(&str, &str)> {
    get_condition(&s.conditions, t).map(|c| (c.status.as_str(), c.reason.as_str()))
}

#[test]
fn ready_only_when_every_managed_side_is_established() {
    let est = sdn::SessionState::Established;
    let s = compute(
        None,
        Some(1),
        &sides(up(est), up(sdn::SessionState::Active)),
        &at(10),
    );
    assert_eq!(
        cond(&s, ConditionType::Ready),
        Some(("False", "SessionNotEstablished"))
    );
    assert_eq!(
        cond(&s, ConditionType::Reconciling),
        Some(("True", "SessionNotEstablished"))
    );
    assert!(
        get_condition(&s.conditions, ConditionType::Ready)
            .unwrap()
            .message
            .contains("cell cell2")
    );
    let s = compute(Some(&s), Some(1), &sides(up(est), up(est)), &at(20));
    assert_eq!(
        cond(&s, ConditionType::Ready),
        Some(("True", "SessionEstablished"))
    );
    assert_eq!(
        cond(&s, ConditionType::Reconciling),
        None,
        "kstatus: dropped once false"
    );
    assert_eq!(s.observed_generation, Some(1));
    // External remote: only the local side counts.
    let s = compute(None, Some(1), &sides(up(est), SideResult::External), &at(10));
    assert_eq!(
        cond(&s, ConditionType::Ready),
        Some(("True", "SessionEstablished"))
    );
    assert_eq!(
        cond(&s, ConditionType::RemoteConfigured),
        Some(("False", "External"))
    );
}

#[test]
fn conflicts_stall_and_unreachable_reconciles() {
    let failed = |reason, stalled| {
        SideResult::Failed(Problem {
            reason,
            message: "boom".into(),
            stalled,
        })
    };
    let est = up(sdn::SessionState::Established);
    let s = compute(
        None,
        None,
        &sides(est.clone(), failed(Reason::PeerConflict, true)),
        &at(1),
    );
    assert_eq!(cond(&s, ConditionType::Stalled), Some(("True", "PeerConflict")));
    assert_eq!(cond(&s, ConditionType::Reconciling), None);
    let msg = &get_condition(&s.conditions, ConditionType::Ready)
        .unwrap()
        .message;
    assert!(msg.starts_with("cell cell2 -> cell cell1"), "{msg}");
    let s = compute(
        Some(&s),
        None,
        &sides(failed(Reason::SdnUnreachable, false), est),
        &at(2),
    );
    assert_eq!(cond(&s, ConditionType::Ready), Some(("False", "SdnUnreachable")));
    assert_eq!(cond(&s, ConditionType::Stalled), None);
    assert_eq!(
        cond(&s, ConditionType::Reconciling),
        Some(("True", "SdnUnreachable"))
    );
    // A failed read keeps "configured" as it was.
    assert!(s.local.as_ref().unwrap().configured);
}

#[test]
fn flaps_and_since_times() {
    let est = up(sdn::SessionState::Established);
    let idle = up(sdn::SessionState::Idle);
    let s1 = compute(None, None, &sides(est.clone(), est.clone()), &at(100));
    assert_eq!(s1.local.as_ref().unwrap().established_since, Some(at(100)));
    let s2 = compute(Some(&s1), None, &sides(est.clone(), est.clone()), &at(200));
    assert_eq!(
        s2, s1,
        "nothing changed: identical status, so the write is skipped"
    );
    let s3 = compute(Some(&s2), None, &sides(idle, est.clone()), &at(300));
    let local = s3.local.as_ref().unwrap();
    assert_eq!((local.flaps, local.established_since.clone()), (1, None));
    assert_eq!(local.last_transition_time, Some(at(300)));
    let ready = get_condition(&s3.conditions, ConditionType::Ready).unwrap();
    assert_eq!(ready.last_transition_time, at(300));
    let s4 = compute(Some(&s3), None, &sides(est.clone(), est), &at(400));
    let local = s4.local.as_ref().unwrap();
    assert_eq!((local.flaps, local.established_since.clone()), (1, Some(at(400))));
}

#[test]
fn planned_shutdowns_and_unreadable_speakers_are_not_flaps() {
    let est = up(sdn::SessionState::Established);
    let s = compute(None, None, &sides(est.clone(), est.clone()), &at(1));
    let down = SideResult::Configured {
        session: sdn::SessionState::Idle,
        admin_down: true,
        last_error: None,
    };
    let s = compute(Some(&s), None, &sides(down, est.clone()), &at(2));
    assert_eq!(s.local.as_ref().unwrap().flaps, 0, "our own disable");
    let s = compute(Some(&s), None, &sides(est.clone(), est.clone()), &at(3));
    let failed = SideResult::Failed(Problem::new(Reason::SdnUnreachable, "down"));
    let s = compute(Some(&s), None, &sides(failed, est), &at(4));
    assert_eq!(s.local.as_ref().unwrap().flaps, 0, "unknown is not down");
}

#[test]
fn suspended_and_admin_down() {
    let s = compute(None, None, &Outcome::Suspended, &at(1));
    assert_eq!(cond(&s, ConditionType::Ready), Some(("False", "Suspended")));
    assert_eq!(cond(&s, ConditionType::Reconciling), None);
    let down = SideResult::Configured {
        session: sdn::SessionState::Idle,
        admin_down: true,
        last_error: None,
    };
    let s = compute(None, None, &sides(down.clone(), down), &at(1));
    assert_eq!(
        cond(&s, ConditionType::Ready),
        Some(("False", "AdministrativelyDown"))
    );
    assert_eq!(cond(&s, ConditionType::Reconciling), None);
    assert_eq!(cond(&s, ConditionType::Stalled), None);
}

#[test]
fn the_verdict_decides_when_to_look_again() {
    let est = || side("a", up(sdn::SessionState::Established));
    let idle = side("b", up(sdn::SessionState::Idle));
    let failed = |reason| side("b", SideResult::Failed(Problem::new(reason, "x")));
    assert_eq!(verdict(&est(), &est()).next, Next::Resync);
    assert_eq!(verdict(&est(), &idle).next, Next::Recheck);
    assert_eq!(
        verdict(&est(), &failed(Reason::SdnUnreachable)).next,
        Next::Backoff
    );
    assert_eq!(verdict(&est(), &failed(Reason::PeerConflict)).next, Next::Recheck);
    // The local stalled failure explains the verdict; the remote transient one still backs off.
    let v = verdict(&failed(Reason::PeerConflict), &failed(Reason::SdnUnreachable));
    assert_eq!(
        (v.reason, v.stalled, v.next),
        (Reason::PeerConflict, true, Next::Backoff)
    );
    let down = side(
        "b",
        SideResult::Configured {
            session: sdn::SessionState::Idle,
            admin_down: true,
            last_error: None,
        },
    );
    let v = verdict(&est(), &down);
    assert_eq!((v.reason, v.next), (Reason::AdministrativelyDown, Next::Resync));
    let external = side("b", SideResult::External);
    assert_eq!(
        verdict(&est(), &external).next,
        Next::Resync,
        "external remote: the local side decides"
    );
}

#[test]
fn a_stuck_side_says_so_and_counts_its_resets() {
    let active = sdn::SessionState::Active;
    let mut local = side("cell1", up(active));
    local.health = Box::new(Health {
        diagnostics: Default::default(),
        down_since: Some(at(0)),
        stuck: Some("stuck in Active for more than 30 s: no OPEN ever received".into()),
        reset: true,
    });
    let outcome = Outcome::Sides {
        local,
        remote: side("cell2", up(sdn::SessionState::Established)),
        password_version: None,
    };
    let s = compute(None, Some(1), &outcome, &at(31));
    assert_eq!(cond(&s, ConditionType::Ready), Some(("False", "SessionStuck")));
    assert_eq!(
        cond(&s, ConditionType::Stalled),
        None,
        "a reset may still clear it"
    );
    let l = s.local.as_ref().unwrap();
    assert_eq!((l.not_established_since.clone(), l.resets), (Some(at(0)), 1));
    assert_eq!(l.last_reset_time, Some(at(31)));
    assert!(l.message.as_deref().unwrap().contains("no OPEN"));
    // The next reconcile without a reset keeps the count and the time; Established ends it.
    let Outcome::Sides { local, remote, .. } = &outcome else {
        unreachable!()
    };
    let mut up_again = local.clone();
    up_again.result = up(sdn::SessionState::Established);
    up_again.health = Box::default();
    let s = compute(
        Some(&s),
        Some(1),
        &Outcome::Sides {
            local: up_again,
            remote: remote.clone(),
            password_version: None,
        },
        &at(40),
    );
    let l = s.local.as_ref().unwrap();
    assert_eq!((l.not_established_since.clone(), l.resets), (None, 1));
    assert_eq!(l.last_reset_time, Some(at(31)));
    assert_eq!(
        cond(&s, ConditionType::Ready),
        Some(("True", "SessionEstablished"))
    );
}
