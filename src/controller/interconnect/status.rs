//! Pure: the status of a CellInterconnect from what the reconcile found, and what to do next.
//!
//! kstatus rules: `Reconciling` and `Stalled` are present only while true; a condition's
//! `lastTransitionTime` moves only when its status flips; the caller skips the write when the
//! result equals the current status.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::super::problem::Problem;
use super::dereference::Unresolved;
use super::route_status::{self, SideRoutes};
use super::segment_status::{self, SegmentsVerdict, SideSegments};
use crate::api::conditions::{remove_condition, set_condition, set_progress};
use crate::api::{CellInterconnectStatus, ConditionType, Reason, SdnKind, SessionState, SideStatus};
use crate::sdn;

/// What happened on one side (speaker) of the interconnect.
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    pub cell: String,
    pub sdn: SdnKind,
    /// The neighbour address configured on this side's speaker.
    pub peer_address: String,
    /// This side's speaker only listens (`spec.bgp.passiveSide`).
    pub passive: bool,
    /// Graceful restart negotiated on the session, if the speaker reports it.
    pub graceful_restart_negotiated: Option<bool>,
    pub result: SideResult,
    /// A managed side's routes, once its peer is in place.
    pub routes: Option<Box<SideRoutes>>,
    /// A managed side's L2 segments, when `spec.l2` is set.
    pub segments: Option<Box<SideSegments>>,
    /// What the speaker says about a session that is down, and what cellnet did about it (boxed:
    /// most sides are up, and `Outcome` holds two).
    pub health: Box<Health>,
}

/// A managed side's session beyond its state (see [`super::stuck`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// The speaker's counters and negotiated timers.
    pub diagnostics: sdn::PeerDiagnostics,
    /// Since when the configured session has not been Established (`notEstablishedSince`).
    pub down_since: Option<Time>,
    /// Past the stuck threshold: the state and the likely cause, in words.
    pub stuck: Option<String>,
    /// cellnet reset the peer in this reconcile.
    pub reset: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SideResult {
    /// Peer in place; what the speaker reports about it.
    Configured {
        session: sdn::SessionState,
        admin_down: bool,
        last_error: Option<String>,
    },
    /// Could not configure or read it.
    Failed(Problem),
    /// An external endpoint: cellnet does not configure it.
    External,
}

/// The outcome of one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Suspended,
    /// References could not be resolved; nothing was sent to any speaker.
    Unresolved(Unresolved),
    Sides {
        local: Side,
        remote: Side,
        password_version: Option<String>,
    },
    /// Deletion is waiting for a speaker (the finalizer stays).
    CleanupBlocked(Problem),
}

/// When to look at the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A transient failure: retry with the object's backoff.
    Backoff,
    /// Healthy (or administratively down): the rare safety-net resync.
    Resync,
    /// Waiting for a session or for a change: re-check its state soon.
    Recheck,
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
        passive: side.passive,
        graceful_restart_negotiated: side.graceful_restart_negotiated,
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
        SideResult::Failed(problem) => {
            new.message = Some(problem.message.clone());
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
    new.routes = side.routes.as_deref().and_then(route_status::route_status);
    if let Some(segments) = side.segments.as_deref() {
        (new.segments, new.segment_routes_rejected) = segment_status::segment_status(segments);
    }
    health_status(&mut new, &old, side, now);
    new
}

/// Stuck detection's fields: the outage's start, the resets, the negotiated timers.
fn health_status(new: &mut SideStatus, old: &SideStatus, side: &Side, now: &Time) {
    let health = &side.health;
    // Only a configured side that is not Established has one: a side that failed (its message
    // says why) starts a new count once its peer is configured again.
    new.not_established_since = health.down_since.clone();
    new.resets = old.resets.saturating_add(u32::from(health.reset));
    new.last_reset_time = if health.reset {
        Some(now.clone())
    } else {
        old.last_reset_time.clone()
    };
    new.negotiated_hold_time = health.diagnostics.negotiated_hold_time;
    new.negotiated_keepalive = health.diagnostics.negotiated_keepalive;
    if let Some(stuck) = &health.stuck {
        new.message = Some(stuck.clone());
    }
}

/// The overall judgement of both sides.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    pub stalled: bool,
    pub next: Next,
}

fn describe(side: &Side, other: &Side) -> String {
    format!(
        "cell {} -> cell {} ({})",
        side.cell, other.cell, side.peer_address
    )
}

fn failed(side: &Side) -> Option<&Problem> {
    match &side.result {
        SideResult::Failed(p) => Some(p),
        _ => None,
    }
}

/// Judges both sides: the session, then the routes when they decide `Ready`.
pub fn verdict(local: &Side, remote: &Side) -> Verdict {
    with_routes(
        session_verdict(local, remote),
        &route_status::routes_verdict(local, remote),
    )
}

/// A ready session is held back by routes that should be exchanged and are not.
fn with_routes(session: Verdict, routes: &route_status::RoutesVerdict) -> Verdict {
    if !session.ready || !routes.gates || routes.ok {
        return session;
    }
    Verdict {
        ready: false,
        reason: routes.reason,
        message: routes.message.clone(),
        stalled: routes.stalled,
        next: Next::Recheck,
    }
}

/// A ready interconnect is held back by stretched segments whose other cell's VTEP a side lacks
/// (or that the spec cannot stretch).
fn with_segments(v: Verdict, segments: Option<&SegmentsVerdict>) -> Verdict {
    match segments {
        Some(s) if v.ready && !s.ok => Verdict {
            ready: false,
            reason: s.reason,
            message: s.message.clone(),
            stalled: s.stalled,
            next: if s.stalled { Next::Resync } else { Next::Recheck },
        },
        _ => v,
    }
}

/// Judges the sessions of both sides: failures first (local before remote, they explain
/// everything after them), then an administrative shutdown, then sessions not up.
fn session_verdict(local: &Side, remote: &Side) -> Verdict {
    let pairs = [(local, remote), (remote, local)];
    // A transient failure on either side is retried with backoff, whichever explains the verdict.
    let transient = pairs.iter().any(|(s, _)| failed(s).is_some_and(|p| !p.stalled));
    let verdict = |ready, reason, message: String, stalled, next| Verdict {
        ready,
        reason,
        message,
        stalled,
        next: if transient { Next::Backoff } else { next },
    };
    if let Some((side, other, p)) = pairs.iter().find_map(|(s, o)| failed(s).map(|p| (s, o, p))) {
        let message = format!("{}: {}", describe(side, other), p.message);
        return verdict(false, p.reason, message, p.stalled, Next::Recheck);
    }
    let managed = pairs
        .iter()
        .filter(|(s, _)| matches!(s.result, SideResult::Configured { .. }));
    if managed
        .clone()
        .any(|(s, _)| matches!(s.result, SideResult::Configured { admin_down: true, .. }))
    {
        let message = format!(
            "session between cell {} and cell {} is administratively down",
            local.cell, remote.cell
        );
        return verdict(false, Reason::AdministrativelyDown, message, false, Next::Resync);
    }
    let stuck: Vec<String> = managed
        .clone()
        .filter_map(|(s, o)| {
            s.health
                .stuck
                .as_ref()
                .map(|why| format!("{}: {why}", describe(s, o)))
        })
        .collect();
    if !stuck.is_empty() {
        let message = format!("BGP session stuck: {}", stuck.join("; "));
        return verdict(false, Reason::SessionStuck, message, false, Next::Recheck);
    }
    let down: Vec<String> = managed
        .filter_map(|(s, o)| match &s.result {
            SideResult::Configured { session, .. } if *session != sdn::SessionState::Established => {
                Some(format!("{} is {session}", describe(s, o)))
            }
            _ => None,
        })
        .collect();
    if !down.is_empty() {
        let message = format!("BGP session not established: {}", down.join("; "));
        return verdict(
            false,
            Reason::SessionNotEstablished,
            message,
            false,
            Next::Recheck,
        );
    }
    let message = format!(
        "BGP session between cell {} and cell {} is Established",
        local.cell, remote.cell
    );
    verdict(true, Reason::SessionEstablished, message, false, Next::Resync)
}

/// The per-side conditions (`LocalConfigured`, `RemoteConfigured`).
fn side_condition(
    conds: &mut Vec<Condition>,
    t: ConditionType,
    side: &Side,
    other: &Side,
    generation: Option<i64>,
    now: &Time,
) {
    let (ok, reason, message) = match &side.result {
        SideResult::Configured { .. } => (
            true,
            Reason::PeerConfigured,
            format!(
                "peer {} configured on the speaker of cell {}",
                side.peer_address, side.cell
            ),
        ),
        SideResult::Failed(p) => (
            false,
            p.reason,
            format!("{}: {}", describe(side, other), p.message),
        ),
        SideResult::External => (
            false,
            Reason::External,
            format!(
                "cell {} is an external endpoint; cellnet does not configure it",
                side.cell
            ),
        ),
    };
    set_condition(conds, t, ok, reason.as_str(), &message, generation, now);
}

/// `(ready, reason, message, stalled, reconciling)` of the whole object.
type Summary = (bool, Reason, String, bool, bool);

fn sides_status(
    status: &mut CellInterconnectStatus,
    local: &Side,
    remote: &Side,
    generation: Option<i64>,
    now: &Time,
) -> Summary {
    status.local_cell = Some(local.cell.clone());
    status.remote_cell = Some(remote.cell.clone());
    status.local = Some(side_status(status.local.as_ref(), local, now));
    status.remote = Some(side_status(status.remote.as_ref(), remote, now));
    let conds = &mut status.conditions;
    side_condition(
        conds,
        ConditionType::LocalConfigured,
        local,
        remote,
        generation,
        now,
    );
    side_condition(
        conds,
        ConditionType::RemoteConfigured,
        remote,
        local,
        generation,
        now,
    );
    let routes = route_status::routes_verdict(local, remote);
    let t = ConditionType::RoutesExchanged;
    set_condition(
        conds,
        t,
        routes.ok,
        routes.reason.as_str(),
        &routes.message,
        generation,
        now,
    );
    let session = session_verdict(local, remote);
    let t = ConditionType::SessionEstablished;
    set_condition(
        conds,
        t,
        session.ready,
        session.reason.as_str(),
        &session.message,
        generation,
        now,
    );
    let segments = segment_status::segments_verdict(local, remote);
    let t = ConditionType::SegmentsStretched;
    match &segments {
        Some(s) => {
            set_condition(conds, t, s.ok, s.reason.as_str(), &s.message, generation, now);
        }
        None => {
            remove_condition(conds, t);
        }
    }
    let v = with_segments(with_routes(session, &routes), segments.as_ref());
    let reconciling = !v.ready && !v.stalled && v.reason != Reason::AdministrativelyDown;
    (v.ready, v.reason, v.message, v.stalled, reconciling)
}

fn unresolved_status(
    status: &mut CellInterconnectStatus,
    u: &Unresolved,
    generation: Option<i64>,
    now: &Time,
) -> Summary {
    status.local_cell = u.local_cell.clone().or(status.local_cell.take());
    status.remote_cell = u.remote_cell.clone().or(status.remote_cell.take());
    let (reason, message) = (u.problem.reason.as_str(), &u.problem.message);
    for t in [
        ConditionType::LocalConfigured,
        ConditionType::RemoteConfigured,
        ConditionType::SessionEstablished,
        ConditionType::RoutesExchanged,
    ] {
        set_condition(&mut status.conditions, t, false, reason, message, generation, now);
    }
    (false, u.problem.reason, message.clone(), true, false)
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
    let (ready, reason, message, stalled, reconciling) = match outcome {
        Outcome::Suspended => (
            false,
            Reason::Suspended,
            "reconciliation is suspended (spec.suspend); speakers are left as they are".to_string(),
            false,
            false,
        ),
        Outcome::Unresolved(u) => unresolved_status(&mut status, u, generation, now),
        Outcome::Sides {
            local,
            remote,
            password_version,
        } => {
            status.applied_password_secret_version = password_version.clone();
            sides_status(&mut status, local, remote, generation, now)
        }
        Outcome::CleanupBlocked(p) => (false, p.reason, p.message.clone(), false, true),
    };
    let conds = &mut status.conditions;
    set_condition(
        conds,
        ConditionType::Ready,
        ready,
        reason.as_str(),
        &message,
        generation,
        now,
    );
    set_progress(
        conds,
        stalled,
        reconciling,
        reason.as_str(),
        &message,
        generation,
        now,
    );
    status
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
