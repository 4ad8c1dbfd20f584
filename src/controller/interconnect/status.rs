//! Pure: the status of a CellInterconnect from what the reconcile found.
//!
//! kstatus rules: `Reconciling` and `Stalled` are present only while true; a condition's
//! `lastTransitionTime` moves only when its status flips; the caller skips the write when the
//! result equals the current status.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::conditions::{set_condition, set_progress};
use crate::api::{CellInterconnectStatus, ConditionType, SdnKind, SessionState, SideStatus};
use crate::sdn;

/// What happened on one side (speaker) of the interconnect.
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    pub cell: String,
    pub sdn: SdnKind,
    /// The neighbour address configured on this side's speaker.
    pub peer_address: String,
    pub result: SideResult,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SideResult {
    /// Peer in place; what the speaker reports about it.
    Configured {
        session: sdn::SessionState,
        admin_down: bool,
        last_error: Option<String>,
    },
    /// Could not configure or read it; `reason` is a condition reason.
    Failed {
        reason: &'static str,
        message: String,
        stalled: bool,
    },
    /// An external endpoint: cellnet does not configure it.
    External,
}

/// The outcome of one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Suspended,
    /// References could not be resolved; nothing was sent to any speaker.
    Unresolved {
        reason: &'static str,
        message: String,
        local_cell: Option<String>,
        remote_cell: Option<String>,
    },
    Sides {
        local: Side,
        remote: Side,
        password_version: Option<String>,
    },
    /// Deletion is waiting for a speaker (the finalizer stays).
    CleanupBlocked {
        reason: &'static str,
        message: String,
    },
}

pub fn session_state(s: sdn::SessionState) -> SessionState {
    match s {
        sdn::SessionState::Idle => SessionState::Idle,
        sdn::SessionState::Connect => SessionState::Connect,
        sdn::SessionState::Active => SessionState::Active,
        sdn::SessionState::OpenSent => SessionState::OpenSent,
        sdn::SessionState::OpenConfirm => SessionState::OpenConfirm,
        sdn::SessionState::Established => SessionState::Established,
        sdn::SessionState::Unknown => SessionState::Unknown,
    }
}

/// New side status from the old one and this reconcile's result (flaps and since-times carry over).
fn side_status(old: Option<&SideStatus>, side: &Side, now: &Time) -> SideStatus {
    let old = old.cloned().unwrap_or_default();
    let mut new = SideStatus {
        sdn: Some(side.sdn),
        peer_address: Some(side.peer_address.clone()),
        flaps: old.flaps,
        ..Default::default()
    };
    let admin_down = matches!(side.result, SideResult::Configured { admin_down: true, .. });
    let state = match &side.result {
        SideResult::Configured {
            session, last_error, ..
        } => {
            new.configured = true;
            new.last_error = last_error.clone();
            session_state(*session)
        }
        SideResult::Failed { message, .. } => {
            new.message = Some(message.clone());
            // Keep what was configured before: a failed read does not unconfigure anything.
            new.configured = old.configured;
            SessionState::Unknown
        }
        SideResult::External => SessionState::Unknown,
    };
    new.session_state = state;
    if state == old.session_state {
        new.last_transition_time = old.last_transition_time.clone();
        new.established_since = old.established_since.clone();
    } else {
        new.last_transition_time = Some(now.clone());
        if state == SessionState::Established {
            new.established_since = Some(now.clone());
        } else if old.session_state == SessionState::Established
            && state != SessionState::Unknown
            && !admin_down
        {
            // A real session loss: not our own shutdown, not an API we merely cannot read.
            new.flaps = new.flaps.saturating_add(1);
        }
    }
    if state == SessionState::Established && new.established_since.is_none() {
        new.established_since = Some(now.clone());
    }
    new
}

struct Verdict {
    ready: bool,
    reason: &'static str,
    message: String,
    stalled: bool,
}

fn describe(side: &Side, other: &Side) -> String {
    format!(
        "cell {} -> cell {} ({})",
        side.cell, other.cell, side.peer_address
    )
}

fn verdict(local: &Side, remote: &Side) -> Verdict {
    // Failures first, local side before remote: they explain everything after them.
    for (side, other) in [(local, remote), (remote, local)] {
        if let SideResult::Failed {
            reason,
            message,
            stalled,
        } = &side.result
        {
            return Verdict {
                ready: false,
                reason,
                message: format!("{}: {message}", describe(side, other)),
                stalled: *stalled,
            };
        }
    }
    let managed: Vec<(&Side, &Side)> = [(local, remote), (remote, local)]
        .into_iter()
        .filter(|(s, _)| matches!(s.result, SideResult::Configured { .. }))
        .collect();
    if managed
        .iter()
        .any(|(s, _)| matches!(s.result, SideResult::Configured { admin_down: true, .. }))
    {
        return Verdict {
            ready: false,
            reason: "AdministrativelyDown",
            message: format!(
                "session between cell {} and cell {} is administratively down",
                local.cell, remote.cell
            ),
            stalled: false,
        };
    }
    let down: Vec<String> = managed
        .iter()
        .filter_map(|(s, o)| match &s.result {
            SideResult::Configured { session, .. } if *session != sdn::SessionState::Established => {
                Some(format!("{} is {session}", describe(s, o)))
            }
            _ => None,
        })
        .collect();
    if !down.is_empty() {
        return Verdict {
            ready: false,
            reason: "SessionNotEstablished",
            message: format!("BGP session not established: {}", down.join("; ")),
            stalled: false,
        };
    }
    Verdict {
        ready: true,
        reason: "SessionEstablished",
        message: format!(
            "BGP session between cell {} and cell {} is Established",
            local.cell, remote.cell
        ),
        stalled: false,
    }
}

/// Computes the new status. `old` is the current status (for transition times and flap counts).
pub fn compute(
    old: Option<&CellInterconnectStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: &Time,
) -> CellInterconnectStatus {
    let mut status = old.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let conds = &mut status.conditions;
    let (ready, reason, message, stalled, reconciling) = match outcome {
        Outcome::Suspended => (
            false,
            "Suspended",
            "reconciliation is suspended (spec.suspend); speakers are left as they are".to_string(),
            false,
            false,
        ),
        Outcome::Unresolved {
            reason,
            message,
            local_cell,
            remote_cell,
        } => {
            status.local_cell = local_cell.clone().or(status.local_cell.take());
            status.remote_cell = remote_cell.clone().or(status.remote_cell.take());
            for t in [
                ConditionType::LocalConfigured,
                ConditionType::RemoteConfigured,
                ConditionType::SessionEstablished,
            ] {
                set_condition(conds, t, false, reason, message, generation, now);
            }
            (false, *reason, message.clone(), true, false)
        }
        Outcome::Sides {
            local,
            remote,
            password_version,
        } => {
            status.local_cell = Some(local.cell.clone());
            status.remote_cell = Some(remote.cell.clone());
            status.local = Some(side_status(status.local.as_ref(), local, now));
            status.remote = Some(side_status(status.remote.as_ref(), remote, now));
            status.applied_password_secret_version = password_version.clone();
            for (t, side, other) in [
                (ConditionType::LocalConfigured, local, remote),
                (ConditionType::RemoteConfigured, remote, local),
            ] {
                match &side.result {
                    SideResult::Configured { .. } => {
                        let msg = format!(
                            "peer {} configured on the speaker of cell {}",
                            side.peer_address, side.cell
                        );
                        set_condition(conds, t, true, "PeerConfigured", &msg, generation, now)
                    }
                    SideResult::Failed { reason, message, .. } => set_condition(
                        conds,
                        t,
                        false,
                        reason,
                        &format!("{}: {message}", describe(side, other)),
                        generation,
                        now,
                    ),
                    SideResult::External => {
                        let msg = format!(
                            "cell {} is an external endpoint; cellnet does not configure it",
                            side.cell
                        );
                        set_condition(conds, t, false, "External", &msg, generation, now)
                    }
                };
            }
            let v = verdict(local, remote);
            set_condition(
                conds,
                ConditionType::SessionEstablished,
                v.ready,
                v.reason,
                &v.message,
                generation,
                now,
            );
            let reconciling = !v.ready && !v.stalled && v.reason != "AdministrativelyDown";
            (v.ready, v.reason, v.message, v.stalled, reconciling)
        }
        Outcome::CleanupBlocked { reason, message } => (false, *reason, message.clone(), false, true),
    };
    set_condition(
        conds,
        ConditionType::Ready,
        ready,
        reason,
        &message,
        generation,
        now,
    );
    set_progress(conds, stalled, reconciling, reason, &message, generation, now);
    status
}

#[cfg(test)]
mod tests {
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
            result,
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
        let failed = |reason, stalled| SideResult::Failed {
            reason,
            message: "boom".into(),
            stalled,
        };
        let est = up(sdn::SessionState::Established);
        let s = compute(
            None,
            None,
            &sides(est.clone(), failed("PeerConflict", true)),
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
            &sides(failed("SdnUnreachable", false), est),
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
        let failed = SideResult::Failed {
            reason: "SdnUnreachable",
            message: "down".into(),
            stalled: false,
        };
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
}
