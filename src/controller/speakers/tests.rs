use super::watcher::worth_a_reconcile;
use super::*;
use crate::sdn::SessionState;

fn peer(last: u8, session: SessionState) -> ObservedPeer {
    ObservedPeer {
        neighbor: IpAddr::from([10, 0, 0, last]),
        owner: Some("cellnet:ns/x".into()),
        session,
        admin_down: false,
        last_error: None,
        diagnostics: Default::default(),
        graceful_restart: None,
    }
}

#[test]
fn only_reaching_or_leaving_established_requeues() {
    let mut seen = HashMap::new();
    let n = IpAddr::from([10, 0, 0, 1]);
    let steps = [
        (SessionState::Idle, false),
        (SessionState::Active, false),
        (SessionState::OpenConfirm, false),
        (SessionState::Established, true),
        (SessionState::Established, false),
        (SessionState::Idle, true),
        (SessionState::Active, false),
    ];
    for (session, want) in steps {
        assert_eq!(worth_a_reconcile(&mut seen, n, session), want, "{session:?}");
    }
}

#[test]
fn names_only_the_neighbours_that_changed() {
    let before = vec![
        peer(1, SessionState::Established),
        peer(2, SessionState::Established),
        peer(4, SessionState::Idle),
    ];
    let after = vec![
        peer(1, SessionState::Established),
        peer(2, SessionState::Idle),
        // Appeared, but not up: the peer a reconcile just created.
        peer(3, SessionState::Idle),
        // A session coming up: not a change that concerns its object.
        peer(4, SessionState::Active),
        peer(5, SessionState::Established),
    ];
    assert_eq!(
        changed_neighbors(&before, &after),
        [IpAddr::from([10, 0, 0, 2]), IpAddr::from([10, 0, 0, 5])]
    );
    let mut failed = after.clone();
    failed[3].last_error = Some("connection refused".into());
    failed[2].admin_down = true;
    assert_eq!(
        changed_neighbors(&after, &failed),
        [IpAddr::from([10, 0, 0, 3]), IpAddr::from([10, 0, 0, 4])],
        "a new error and an admin change count"
    );
    assert_eq!(
        changed_neighbors(&after, &before[..1]).len(),
        4,
        "vanished peers count too"
    );
    assert!(changed_neighbors(&before, &before).is_empty());
}
