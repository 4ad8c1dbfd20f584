//! Pure: the status of a CellInterconnect from what the reconcile found.
//!
//! kstatus rules: `Reconciling` and `Stalled` are present only while true; a condition's
//! `lastTransitionTime` moves only when its status flips; the caller skips the write when the
//! result equals the current status.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::conditions::{remove_condition, set_condition};
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
        } else if old.session_state == SessionState::Established {
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
    if stalled {
        set_condition(
            conds,
            ConditionType::Stalled,
            true,
            reason,
            &message,
            generation,
            now,
        );
    } else {
        remove_condition(conds, ConditionType::Stalled);
    }
    if reconciling {
        set_condition(
            conds,
            ConditionType::Reconciling,
            true,
            reason,
            &message,
            generation,
            now,
        );
    } else {
        remove_condition(conds, ConditionType::Reconciling);
    }
    status
}
