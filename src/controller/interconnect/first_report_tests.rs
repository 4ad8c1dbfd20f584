use kube::runtime::events::EventType;

use super::*;
use crate::api::{Reason, SdnKind};
use crate::controller::interconnect::report::Note;
use crate::controller::problem::Problem;

fn side(result: SideResult) -> Side {
    Side {
        cell: "a".into(),
        sdn: SdnKind::GoBgp,
        peer_address: "192.0.2.2".into(),
        passive: false,
        graceful_restart_negotiated: None,
        result,
        routes: None,
        segments: None,
        health: Default::default(),
    }
}

fn configured(session: SessionState) -> Side {
    side(SideResult::Configured {
        session,
        admin_down: false,
        last_error: None,
    })
}

fn note(reason: Reason, text: &str) -> Notes {
    let mut notes = Notes::default();
    notes.add(EventType::Normal, reason, "ConfigurePeer", text.into());
    notes
}

#[test]
fn a_new_link_coming_up_is_held_then_told_once_with_its_session() {
    let t0 = Instant::now();
    let coming = [configured(SessionState::Active), configured(SessionState::Idle)];
    let Decision::Hold { held, recheck } = decide(
        true,
        &coming,
        (None, note(Reason::PeerCreated, "created")),
        t0,
        false,
    ) else {
        panic!("not held")
    };
    assert_eq!(recheck, FIRST_REPORT_WINDOW);
    let up = [
        configured(SessionState::Established),
        configured(SessionState::Established),
    ];
    let later = t0 + Duration::from_secs(8);
    let Decision::Publish(notes) = decide(
        true,
        &up,
        (Some(held), note(Reason::SessionEstablished, "up")),
        later,
        false,
    ) else {
        panic!("held once Established")
    };
    let story = notes.one_story();
    assert_eq!(story.0.len(), 1, "one Event: {story:?}");
    assert_eq!(story.0[0].reason, Reason::SessionEstablished);
    assert_eq!(story.0[0].text, "created; up");
}

#[test]
fn a_session_that_does_not_come_up_is_reported_at_the_end_of_the_window() {
    let t0 = Instant::now();
    let coming = [configured(SessionState::Active), configured(SessionState::Active)];
    let Decision::Hold { held, .. } = decide(
        true,
        &coming,
        (None, note(Reason::PeerCreated, "created")),
        t0,
        false,
    ) else {
        panic!("not held")
    };
    let Decision::Hold { held, recheck } = decide(
        true,
        &coming,
        (Some(held), Notes::default()),
        t0 + Duration::from_secs(5),
        false,
    ) else {
        panic!("released early")
    };
    assert_eq!(
        recheck,
        Duration::from_secs(10),
        "the window counts from the first hold"
    );
    let end = t0 + FIRST_REPORT_WINDOW;
    let Decision::Publish(notes) = decide(true, &coming, (Some(held), Notes::default()), end, false) else {
        panic!("held past the window")
    };
    assert_eq!(notes.0[0].reason, Reason::PeerCreated, "the held Event is sent");
}

#[test]
fn only_a_first_report_of_two_managed_configured_sides_is_held() {
    let now = Instant::now();
    let coming = || [configured(SessionState::Active), configured(SessionState::Active)];
    let published = |d: Decision| matches!(d, Decision::Publish(_));
    assert!(
        published(decide(false, &coming(), (None, Notes::default()), now, false)),
        "status already written"
    );
    let external = [configured(SessionState::Active), side(SideResult::External)];
    assert!(
        published(decide(true, &external, (None, Notes::default()), now, false)),
        "an external side"
    );
    let failed = [
        configured(SessionState::Active),
        side(SideResult::Failed(Problem::new(Reason::SdnUnreachable, "down"))),
    ];
    assert!(
        published(decide(true, &failed, (None, Notes::default()), now, false)),
        "a failure"
    );
    let mut disabled = coming();
    disabled[0].result = SideResult::Configured {
        session: SessionState::Idle,
        admin_down: true,
        last_error: None,
    };
    assert!(
        published(decide(true, &disabled, (None, Notes::default()), now, false)),
        "admin down"
    );
}

#[test]
fn warnings_stay_events_of_their_own() {
    let mut notes = note(Reason::RoutesUpdated, "filters");
    notes.add(
        EventType::Normal,
        Reason::PeerCreated,
        "ConfigurePeer",
        "created".into(),
    );
    notes.add(
        EventType::Warning,
        Reason::SdnUnreachable,
        "ObserveSession",
        "gone".into(),
    );
    let story = notes.one_story();
    let reasons: Vec<Reason> = story.0.iter().map(|n| n.reason).collect();
    assert_eq!(reasons, [Reason::PeerCreated, Reason::SdnUnreachable]);
    assert_eq!(story.0[0].text, "filters; created");
}

#[test]
fn a_story_too_long_for_one_event_leaves_its_least_telling_notes_apart() {
    let long = "x".repeat(600);
    let mut notes = note(Reason::SpeakerStarted, &long);
    notes.add(
        EventType::Normal,
        Reason::PeerCreated,
        "ConfigurePeer",
        long.clone(),
    );
    notes.add(
        EventType::Normal,
        Reason::SessionEstablished,
        "ObserveSession",
        "up".into(),
    );
    let story = notes.one_story();
    let told: Vec<(Reason, usize)> = story.0.iter().map(|n| (n.reason, n.text.len())).collect();
    // Established and peer created fit in 1 KiB; the speaker's start is an Event of its own.
    assert_eq!(
        told,
        [
            (Reason::SessionEstablished, 600 + 2 + 2),
            (Reason::SpeakerStarted, 600)
        ]
    );
    assert!(story.0.iter().all(|n| n.text.len() <= 1024));
}

#[test]
fn a_long_story_tells_the_route_filters_briefly_to_stay_one_event() {
    let mut notes = note(Reason::PeerCreated, &"c".repeat(300));
    for side in ["a", "b"] {
        notes.add_note(Note {
            type_: EventType::Normal,
            reason: Reason::RoutesUpdated,
            action: "ConfigureRoutes",
            text: format!("{side}: {}", "w".repeat(400)),
            brief: Some(format!("{side}: 7 changes")),
        });
    }
    notes.add(
        EventType::Normal,
        Reason::SessionEstablished,
        "ObserveSession",
        "up".into(),
    );
    let story = notes.one_story();
    assert_eq!(story.0.len(), 1, "{story:?}");
    assert_eq!(
        story.0[0].text,
        format!("{}; a: 7 changes; b: 7 changes; up", "c".repeat(300))
    );
}

#[test]
fn in_a_bulk_apply_a_link_that_came_up_is_told_by_its_status_alone() {
    let t0 = Instant::now();
    let up = [
        configured(SessionState::Established),
        configured(SessionState::Established),
    ];
    let mut notes = note(Reason::PeerCreated, "created");
    notes.add(
        EventType::Warning,
        Reason::PeerNotOwned,
        "ConfigurePeer",
        "warned".into(),
    );
    let Decision::Publish(told) = decide(true, &up, (None, notes.clone()), t0, true) else {
        panic!("held once Established")
    };
    let reasons: Vec<Reason> = told.0.iter().map(|n| n.reason).collect();
    assert_eq!(reasons, [Reason::PeerNotOwned], "only the Warning stays an Event");

    // Alone (no bulk), the same link keeps its story.
    let Decision::Publish(alone) = decide(true, &up, (None, notes.clone()), t0, false) else {
        panic!("held once Established")
    };
    assert_eq!(alone.0.len(), 2);
    // In a bulk, a link whose window ended without its sessions keeps its Events.
    let coming = [configured(SessionState::Active), configured(SessionState::Idle)];
    let Decision::Hold { held, .. } = decide(true, &coming, (None, notes.clone()), t0, true) else {
        panic!("not held")
    };
    let end = t0 + FIRST_REPORT_WINDOW;
    let Decision::Publish(late) = decide(true, &coming, (Some(held), Notes::default()), end, true) else {
        panic!("held past the window")
    };
    assert_eq!(late.0.len(), 2);
    // And a later report (status written) is never quietened.
    let Decision::Publish(later) = decide(false, &up, (None, notes), t0, true) else {
        panic!("a later report held")
    };
    assert_eq!(later.0.len(), 2);
}

#[test]
fn a_bulk_is_ten_first_reports_held_at_once() {
    let reports = FirstReports::default();
    for i in 0..BULK_NEW_LINKS {
        assert!(!reports.bulk(), "{i} held");
        let held = Held {
            notes: Notes::default(),
            since: Instant::now(),
        };
        reports.hold(&i.to_string(), held);
    }
    assert!(reports.bulk());
    reports.take("0");
    assert!(!reports.bulk());
}
