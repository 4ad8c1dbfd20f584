//! Step 4 (pure): what the facts of both sides mean: the side results that status is computed
//! from, the Events that tell the story of the link, the metrics to count, and the ledger after.
use kube::runtime::events::EventType;

use super::super::context::EVENT_NOTE_LIMIT as NOTE_LIMIT;
use super::super::problem::Problem;
use super::apply::{Applied, Failure, SideFacts};
use super::ledger::{self, Ledger};
use super::plan::{SideId, SidePlan};
use super::route_status::SideRoutes;
use super::segment_status::SideSegments;
use super::status::{self, SideResult};
use crate::api::{Reason, SideStatus};
use crate::sdn::{Ownership, PeerDiagnostics, PeerOutcome, RoutesOutcome, SessionState};

/// One Event: type, reason, action and the note for people.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub type_: EventType,
    pub reason: Reason,
    pub action: &'static str,
    pub text: String,
    /// A shorter note, for when the whole story would not fit in one Event.
    pub brief: Option<String>,
}

/// The Events of one reconcile, one per reason: both sides' notes go into one Event (a link's
/// Events, not a side's); [`Notes::one_story`] then tells the Normal ones as one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notes(pub Vec<Note>);

impl Notes {
    pub fn add(&mut self, type_: EventType, reason: Reason, action: &'static str, text: String) {
        self.add_note(Note {
            type_,
            reason,
            action,
            text,
            brief: None,
        });
    }

    /// `note`, merged into the note of the same reason if there is one.
    pub fn add_note(&mut self, note: Note) {
        let Some(same) = self.0.iter_mut().find(|n| n.reason == note.reason) else {
            self.0.push(note);
            return;
        };
        if same.brief.is_some() || note.brief.is_some() {
            let first = same.brief.take().unwrap_or_else(|| same.text.clone());
            let second = note.brief.as_deref().unwrap_or(&note.text);
            same.brief = Some(format!("{first}; {second}"));
        }
        same.text.push_str("; ");
        same.text.push_str(&note.text);
    }
}

/// The steps of a link's story, least telling first: the one Event of a reconcile is named after
/// the last of them that happened.
const STORY: [Reason; 6] = [
    Reason::SpeakerStarted,
    Reason::RoutesUpdated,
    Reason::PeerRemoved,
    Reason::PeerCreated,
    Reason::PeerUpdated,
    Reason::SessionEstablished,
];

impl Notes {
    /// The Normal notes told as one Event, named after the last step of the story among them
    /// (peers created, filters written and sessions Established in one Event instead of three,
    /// `kubectl describe` still reading every step); warnings stay Events of their own. Notes that
    /// would take the Event past [`NOTE_LIMIT`] (the least telling first) stay Events of their own.
    pub fn one_story(self) -> Notes {
        let (normal, mut out): (Vec<Note>, Vec<Note>) =
            self.0.into_iter().partition(|n| n.type_ == EventType::Normal);
        let rank = |n: &Note| STORY.iter().position(|r| *r == n.reason);
        let mut by_rank: Vec<usize> = (0..normal.len()).collect();
        by_rank.sort_by_key(|&i| std::cmp::Reverse(rank(&normal[i])));
        let Some(&last) = by_rank.first() else {
            return Notes(out);
        };
        // Whole if the whole story fits, else each note's brief where it has one.
        let whole: usize = normal.iter().map(|n| n.text.len() + 2).sum();
        let text_of = |n: &Note| match &n.brief {
            Some(brief) if whole > NOTE_LIMIT + 2 => brief.clone(),
            _ => n.text.clone(),
        };
        let mut told = vec![false; normal.len()];
        let mut length = 0;
        for i in by_rank {
            let more = text_of(&normal[i]).len() + if length == 0 { 0 } else { 2 };
            if i == last || length + more <= NOTE_LIMIT {
                told[i] = true;
                length += more;
            }
        }
        let text = (0..normal.len())
            .filter(|&i| told[i])
            .map(|i| text_of(&normal[i]))
            .collect::<Vec<_>>()
            .join("; ");
        let one = Note {
            text,
            brief: None,
            ..normal[last].clone()
        };
        let apart = normal.into_iter().zip(told).filter(|(_, t)| !t).map(|(n, _)| n);
        out.splice(0..0, std::iter::once(one).chain(apart));
        Notes(out)
    }
}

/// A metric to count or set once the reconcile's writes are done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tally {
    /// An SDN write of this kind (`create_peer`, `update_peer`, `repair_peer`).
    SdnWrite(&'static str),
    DriftRepair {
        cell: String,
    },
    Session {
        cell: String,
        peer: String,
        state: &'static str,
    },
    /// A peer of this interconnect is gone from `cell`'s speaker: its session series goes too.
    SessionGone {
        cell: String,
        peer: String,
    },
}

/// What the reconcile found, in the terms of status, Events and metrics.
#[derive(Debug, Default)]
pub struct Report {
    pub sides: Vec<status::Side>,
    pub notes: Notes,
    pub tallies: Vec<Tally>,
}

/// One side as it ends up: planned and, for managed sides that could be planned, its facts.
pub enum Found {
    External(SideId),
    Unplanned(SideId, Problem),
    Applied(SideId, Box<SidePlan>, SideFacts),
}

/// Words the facts of both sides (local first) against the status they had before.
pub fn report(found: &[Found; 2], before: [Option<&SideStatus>; 2]) -> Report {
    let mut report = Report::default();
    for f in found {
        let (id, result) = side_result(f, &mut report.notes, &mut report.tallies);
        let routes = side_routes(f, &mut report.notes, &mut report.tallies);
        let segments = side_segments(f);
        report.sides.push(status::Side {
            cell: id.cell.clone(),
            sdn: id.sdn,
            peer_address: id.peer_address.clone(),
            passive: matches!(f, Found::Applied(_, plan, _) if plan.peer.passive),
            graceful_restart_negotiated: graceful_restart_negotiated(f),
            result,
            routes,
            segments,
            health: Box::new(status::Health {
                diagnostics: diagnostics_of(f),
                ..Default::default()
            }),
        });
    }
    for (i, before) in before.into_iter().enumerate() {
        let (side, other) = (&report.sides[i], &report.sides[1 - i]);
        session_events(side, before, other, &mut report.notes);
        if let SideResult::Configured { session, .. } = &side.result {
            report.tallies.push(Tally::Session {
                cell: side.cell.clone(),
                peer: side.peer_address.clone(),
                state: session.as_str(),
            });
        }
    }
    report
}

fn side_result<'a>(
    found: &'a Found,
    notes: &mut Notes,
    tallies: &mut Vec<Tally>,
) -> (&'a SideId, SideResult) {
    match found {
        Found::External(id) => (id, SideResult::External),
        Found::Unplanned(id, problem) => (id, SideResult::Failed(problem.clone())),
        Found::Applied(id, plan, facts) => {
            if facts.started {
                notes.add(
                    EventType::Normal,
                    Reason::SpeakerStarted,
                    "StartSpeaker",
                    started_note(id, plan),
                );
            }
            let result = match &facts.result {
                Ok(applied) => {
                    applied_notes(id, plan, applied, notes, tallies);
                    configured(plan, applied)
                }
                Err(failure) => SideResult::Failed(problem(plan, failure)),
            };
            (id, result)
        }
    }
}

/// What the speaker said about a managed side's session, when it was read.
fn diagnostics_of(found: &Found) -> PeerDiagnostics {
    match found {
        Found::Applied(_, _, facts) => facts
            .result
            .as_ref()
            .ok()
            .and_then(|a| a.observed.as_ref())
            .map(|p| p.diagnostics.clone())
            .unwrap_or_default(),
        _ => PeerDiagnostics::default(),
    }
}

/// A managed side's routes, with the Event of a filter write.
fn side_routes(found: &Found, notes: &mut Notes, tallies: &mut Vec<Tally>) -> Option<Box<SideRoutes>> {
    let Found::Applied(id, plan, facts) = found else {
        return None;
    };
    let routes = facts.result.as_ref().ok()?.routes.as_ref()?;
    let observed = match &routes.filter {
        Err(p) => Err(p.clone()),
        Ok(RoutesOutcome::Conflict { reason }) => Err(Problem::new(Reason::SdnRejected, reason.clone())),
        Ok(outcome) => {
            if let RoutesOutcome::Updated { writes } = outcome {
                routes_note(id, plan, writes, notes, tallies);
            }
            routes.counts.clone().unwrap_or_else(|| {
                Err(Problem::new(
                    Reason::InvalidEndpoint,
                    "the routes were not read: the endpoint's address is not an IP",
                ))
            })
        }
    };
    Some(Box::new(SideRoutes {
        expected_in: plan.routes.carried.expected_in.clone(),
        not_carried: plan.routes.carried.not_carried.clone(),
        observed,
    }))
}

/// A managed side's L2 segments, when `spec.l2` is set.
fn side_segments(found: &Found) -> Option<Box<SideSegments>> {
    let Found::Applied(_, plan, facts) = found else {
        return None;
    };
    let stretched = plan.routes.segments.clone()?;
    let observed = facts
        .result
        .as_ref()
        .ok()
        .and_then(|a| a.routes.as_ref())
        .and_then(|r| r.segments.clone());
    Some(Box::new(SideSegments { stretched, observed }))
}

/// A filter write is drift repaired when the spec did not change since the side was configured.
fn routes_note(id: &SideId, plan: &SidePlan, writes: &[String], notes: &mut Notes, tallies: &mut Vec<Tally>) {
    let (cell, url) = (&id.cell, &plan.target.url);
    let what = writes.join(", ");
    if plan.write_repairs_drift {
        tallies.push(Tally::DriftRepair { cell: cell.clone() });
        tallies.push(Tally::SdnWrite("repair_routes"));
        let text = format!(
            "cell {cell}: route filters on speaker {url} were changed behind cellnet's back; restored ({what})"
        );
        notes.add(EventType::Warning, Reason::DriftRepaired, "ConfigureRoutes", text);
    } else {
        tallies.push(Tally::SdnWrite("update_routes"));
        let towards = format!(
            "cell {cell}: route filters towards {} on speaker {url}",
            plan.peer.neighbor
        );
        notes.add_note(Note {
            type_: EventType::Normal,
            reason: Reason::RoutesUpdated,
            action: "ConfigureRoutes",
            text: format!("{towards}: {what}"),
            brief: Some(format!("{towards}: {} changes", writes.len())),
        });
    }
}

fn started_note(id: &SideId, plan: &SidePlan) -> String {
    let c = &plan.speaker_config;
    format!(
        "cell {}: started BGP on speaker {} (AS {}, router id {})",
        id.cell, plan.target.url, c.asn, c.router_id
    )
}

/// Whether graceful restart was negotiated, as the speaker reports it; only asked of a side
/// with graceful restart on (off, a speaker may still report the other side's capability).
fn graceful_restart_negotiated(found: &Found) -> Option<bool> {
    let Found::Applied(_, plan, facts) = found else {
        return None;
    };
    plan.peer.graceful_restart?;
    facts.result.as_ref().ok()?.observed.as_ref()?.graceful_restart
}

fn configured(plan: &SidePlan, applied: &Applied) -> SideResult {
    match &applied.observed {
        Some(p) => SideResult::Configured {
            session: p.session,
            admin_down: p.admin_down,
            last_error: p.last_error.clone(),
        },
        None => SideResult::Configured {
            session: SessionState::Idle,
            admin_down: plan.peer.admin_down,
            last_error: None,
        },
    }
}

/// The problem a failure means for status.
pub fn problem(plan: &SidePlan, failure: &Failure) -> Problem {
    let neighbor = plan.peer.neighbor;
    match failure {
        Failure::Sdn(e) => Problem::from(e.clone()),
        Failure::SpeakerConflict(reason) => Problem::new(Reason::SpeakerConflict, reason.clone()),
        Failure::Unrecorded => Problem::new(
            Reason::PeerConflict,
            format!("speaker already has a neighbour {neighbor} that cellnet did not create; left untouched"),
        ),
        Failure::NotOurs { owner } => {
            let by = owner
                .as_ref()
                .map(|o| format!("owned by {o:?}"))
                .unwrap_or_else(|| "not created by cellnet".into());
            Problem::new(
                Reason::PeerConflict,
                format!("speaker already has a peer {neighbor} {by}; cellnet leaves it untouched"),
            )
        }
        Failure::Vanished => Problem::new(
            Reason::SdnRejected,
            "the peer vanished right after it was configured",
        ),
    }
}

/// Whether a write repairs drift rather than applying a spec change or a rotation.
fn repairs_drift(plan: &SidePlan, outcome: &PeerOutcome) -> bool {
    // A new password alone is a Secret rotation, not drift.
    let rotation = matches!(outcome, PeerOutcome::Updated { fields } if fields.as_slice() == ["password"]);
    plan.write_repairs_drift
        && !rotation
        && matches!(outcome, PeerOutcome::Created | PeerOutcome::Updated { .. })
}

fn applied_notes(
    id: &SideId,
    plan: &SidePlan,
    applied: &Applied,
    notes: &mut Notes,
    tallies: &mut Vec<Tally>,
) {
    let (cell, url, neighbor) = (&id.cell, &plan.target.url, plan.peer.neighbor);
    if repairs_drift(plan, &applied.outcome) {
        tallies.push(Tally::DriftRepair { cell: cell.clone() });
        tallies.push(Tally::SdnWrite("repair_peer"));
        let text = format!(
            "cell {cell}: peer {neighbor} on speaker {url} was missing or changed behind cellnet's back; repaired"
        );
        notes.add(EventType::Warning, Reason::DriftRepaired, "ConfigurePeer", text);
    } else if applied.outcome == PeerOutcome::Created {
        tallies.push(Tally::SdnWrite("create_peer"));
        let text = format!(
            "cell {cell}: created BGP peer {neighbor} (AS {}) on speaker {url}",
            plan.peer.peer_asn
        );
        notes.add(EventType::Normal, Reason::PeerCreated, "ConfigurePeer", text);
    } else if let PeerOutcome::Updated { fields } = &applied.outcome {
        tallies.push(Tally::SdnWrite("update_peer"));
        let text = format!(
            "cell {cell}: updated BGP peer {neighbor} on speaker {url} ({})",
            fields.join(", ")
        );
        notes.add(EventType::Normal, Reason::PeerUpdated, "ConfigurePeer", text);
    }
    if let Some(old) = applied.stale_removed {
        tallies.push(Tally::SessionGone {
            cell: cell.clone(),
            peer: old.to_string(),
        });
        let text = format!("cell {cell}: removed stale BGP peer {old} on speaker {url}");
        notes.add(EventType::Normal, Reason::PeerRemoved, "ConfigurePeer", text);
    }
}

/// Events for what changed on one side since the last status: a session that came up or went
/// down, a speaker that became unreachable. So `kubectl describe` tells the story of a link.
pub fn session_events(
    side: &status::Side,
    before: Option<&SideStatus>,
    other: &status::Side,
    notes: &mut Notes,
) {
    use crate::api::SessionState as Api;
    let was = before.map(|b| b.session_state).unwrap_or_default();
    let link = format!(
        "cell {} -> cell {} ({})",
        side.cell, other.cell, side.peer_address
    );
    match &side.result {
        SideResult::Configured {
            session, admin_down, ..
        } => {
            let now = status::session_state(*session);
            if now == Api::Established && was != Api::Established {
                let text = format!("{link}: BGP session Established");
                notes.add(
                    EventType::Normal,
                    Reason::SessionEstablished,
                    "ObserveSession",
                    text,
                );
            } else if was == Api::Established && now != Api::Established && !admin_down {
                let text = format!("{link}: BGP session went down (now {now:?})");
                notes.add(EventType::Warning, Reason::SessionDown, "ObserveSession", text);
            }
        }
        // Once per outage: only when the side had no failure before (status keeps the message).
        SideResult::Failed(p)
            if matches!(p.reason, Reason::SdnUnreachable | Reason::SdnTlsFailed)
                && before.is_none_or(|b| b.message.is_none()) =>
        {
            notes.add(
                EventType::Warning,
                p.reason,
                "ObserveSession",
                format!("{link}: {}", p.message),
            );
        }
        _ => {}
    }
}

/// The ledger after this reconcile: claims stay (written before the creates), a neighbour that
/// turned out not to be ours and a removed stale peer leave it.
pub fn ledger_after(found: &[Found; 2], mut ledger: Ledger) -> Ledger {
    for f in found {
        let Found::Applied(_, plan, facts) = f else {
            continue;
        };
        if ledger::ownership(plan.target.kind) != Ownership::Ledger {
            continue;
        }
        match &facts.result {
            // A create that lost a race: the record written before it must not claim the
            // neighbour that won.
            Err(Failure::NotOurs { .. }) => ledger.release(&plan.speaker, plan.peer.neighbor),
            Ok(Applied {
                stale_removed: Some(old),
                ..
            }) => ledger.release(&plan.speaker, *old),
            _ => {}
        }
    }
    ledger
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
