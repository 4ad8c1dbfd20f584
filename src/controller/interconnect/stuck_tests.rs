use super::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn counters(opens: u64, sent: u64, received: u64) -> PeerDiagnostics {
    PeerDiagnostics {
        opens_received: Some(opens),
        notifications_sent: Some(sent),
        notifications_received: Some(received),
        ..Default::default()
    }
}

const T: Duration = Duration::from_secs(30);

#[test]
fn threshold_is_three_hold_times_at_least_the_minimum() {
    assert_eq!(threshold(90, T), Duration::from_secs(270));
    assert_eq!(threshold(3, T), T);
    assert_eq!(threshold(0, Duration::from_secs(5)), Duration::from_secs(5));
}

#[test]
fn a_new_outage_starts_now_and_an_old_one_keeps_its_start() {
    assert_eq!(down_since(None, true, at(5)), Some(at(5)));
    assert_eq!(down_since(Some(at(1)), true, at(5)), Some(at(1)));
    assert_eq!(down_since(Some(at(1)), false, at(5)), None);
}

#[test]
fn stuck_after_the_threshold_and_reset_once() {
    let before = judge(at(0), None, T, at(29));
    assert!(!before.stuck && !before.reset_due);
    assert_eq!(before.next_check, Duration::from_secs(1));
    let first = judge(at(0), None, T, at(31));
    assert!(first.stuck && first.reset_due);
    // Reset at 31 s: the next one waits as long as the outage had lasted.
    let after = judge(at(0), Some(at(31)), T, at(40));
    assert!(after.stuck && !after.reset_due);
    assert_eq!(after.next_check, Duration::from_secs(22));
    assert!(judge(at(0), Some(at(31)), T, at(62)).reset_due);
}

#[test]
fn resets_back_off_to_at_most_an_hour() {
    let late = judge(at(0), Some(at(10_000)), T, at(10_000 + 3599));
    assert!(!late.reset_due);
    assert!(judge(at(0), Some(at(10_000)), T, at(10_000 + 3600)).reset_due);
}

#[test]
fn a_reset_of_an_earlier_outage_does_not_delay_this_one() {
    assert!(judge(at(100), Some(at(50)), T, at(131)).reset_due);
}

#[test]
fn counters_name_the_cause() {
    use SessionState::*;
    assert_eq!(
        cause(Active, &counters(0, 0, 0), false),
        Cause::NoOpen { passive: false }
    );
    assert_eq!(
        cause(Active, &counters(0, 0, 0), true),
        Cause::NoOpen { passive: true }
    );
    assert_eq!(cause(Idle, &counters(4, 4, 0), false), Cause::WeRejected);
    assert_eq!(cause(Active, &counters(3, 0, 3), false), Cause::TheyRejected);
    assert_eq!(cause(OpenSent, &counters(3, 0, 0), false), Cause::Waiting);
    assert_eq!(cause(Active, &PeerDiagnostics::default(), false), Cause::Unknown);
    // OpenDaylight: NOTIFICATION counts only.
    let odl = PeerDiagnostics {
        notifications_received: Some(2),
        ..Default::default()
    };
    assert_eq!(cause(Active, &odl, false), Cause::TheyRejected);
}

#[test]
fn a_rejected_open_names_the_declared_as() {
    let declared = Declared {
        peer_asn: 65098,
        local_asn: 65001,
        hold_time: 9,
        neighbor: "198.51.100.2".into(),
        port: 179,
    };
    let text = explain(Cause::WeRejected, &declared);
    assert!(text.contains("declared AS 65098"), "{text}");
    assert!(explain(Cause::NoOpen { passive: false }, &declared).contains("198.51.100.2:179"));
}
