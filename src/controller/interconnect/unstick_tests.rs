use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::SdnKind;
use crate::controller::speakers::speaker_key;
use crate::sdn::{BackendKind, PeerConfig, PeerDiagnostics, SpeakerConfig};

fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(1_800_000_000 + secs).unwrap())
}

fn plan() -> SidePlan {
    let target = crate::sdn::gobgp::target("http://127.0.0.1:50051");
    SidePlan {
        speaker: speaker_key(BackendKind::GoBgp, &target.url),
        target,
        speaker_config: SpeakerConfig {
            asn: 65001,
            router_id: "192.0.2.1".parse().unwrap(),
            listen_address: "198.51.100.1".parse().unwrap(),
            listen_port: 179,
        },
        peer: PeerConfig::new(
            "198.51.100.2".parse().unwrap(),
            65098,
            "198.51.100.1".parse().unwrap(),
            "cellnet:ns/a-b",
        ),
        stale_peer: None,
        write_repairs_drift: false,
        routes: Default::default(),
    }
}

fn side(session: SessionState, opens: u64, sent: u64) -> status::Side {
    status::Side {
        cell: "a".into(),
        sdn: SdnKind::GoBgp,
        peer_address: "198.51.100.2".into(),
        passive: false,
        graceful_restart_negotiated: None,
        result: SideResult::Configured {
            session,
            admin_down: false,
            last_error: None,
        },
        routes: None,
        segments: None,
        health: Box::new(status::Health {
            diagnostics: PeerDiagnostics {
                opens_received: Some(opens),
                notifications_sent: Some(sent),
                notifications_received: Some(0),
                ..Default::default()
            },
            ..Default::default()
        }),
    }
}

fn down_since(t: Time) -> SideStatus {
    SideStatus {
        not_established_since: Some(t),
        ..Default::default()
    }
}

const T: Duration = Duration::from_secs(30);

#[test]
fn a_new_outage_is_not_stuck_yet() {
    let a = assess(&side(SessionState::Active, 0, 0), &plan(), None, T, &at(0));
    assert_eq!(a.down_since, Some(at(0)));
    assert_eq!((a.stuck, a.reset_due), (None, false));
    assert_eq!(a.next_check, Some(T));
}

#[test]
fn past_the_threshold_the_side_is_stuck_with_its_cause() {
    let before = down_since(at(0));
    let a = assess(
        &side(SessionState::Idle, 5, 5),
        &plan(),
        Some(&before),
        T,
        &at(31),
    );
    assert!(a.reset_due);
    let text = a.stuck.unwrap();
    assert!(text.starts_with("stuck in Idle for more than 30 s"), "{text}");
    assert!(text.contains("declared AS 65098"), "{text}");
}

#[test]
fn established_or_shut_down_sides_are_never_stuck() {
    let before = down_since(at(0));
    let up = assess(
        &side(SessionState::Established, 1, 0),
        &plan(),
        Some(&before),
        T,
        &at(99),
    );
    assert_eq!((up.down_since, up.stuck, up.reset_due), (None, None, false));
    let mut off = side(SessionState::Idle, 0, 0);
    off.result = SideResult::Configured {
        session: SessionState::Idle,
        admin_down: true,
        last_error: None,
    };
    let off = assess(&off, &plan(), Some(&before), T, &at(99));
    assert_eq!((off.stuck, off.reset_due), (None, false));
}

#[test]
fn after_a_reset_the_next_waits() {
    let before = SideStatus {
        last_reset_time: Some(at(31)),
        resets: 1,
        ..down_since(at(0))
    };
    let a = assess(
        &side(SessionState::Active, 0, 0),
        &plan(),
        Some(&before),
        T,
        &at(40),
    );
    assert!(a.stuck.is_some());
    assert!(!a.reset_due);
}
