//! Step 4b: the first report of a new link, held until its sessions come up.
//!
//! A new link used to cost two status writes and two or three Events: "configured, session
//! Active" with `PeerCreated` (and `RoutesUpdated`), then "Established" with `SessionEstablished`
//! a few seconds later. During a bulk apply those writes are most of what the API server does
//! (docs/performance.md). When cellnet has just created both ends of a link, the session normally
//! comes up within seconds, so the first status and Events wait for it, up to
//! [`FIRST_REPORT_WINDOW`]: then one status write and one Event say both "peer created" and
//! "Established". A session that does not come up in the window gets its first status (and the
//! held Events) at the end of the window, as before.
//!
//! Only the first report is held (the status has no condition yet), only when both sides are
//! managed by cellnet and configured: with an external side the other cell's router decides when
//! the session comes up, and a failure is reported at once.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::events::EventType;

use super::report::Notes;
use super::status::{Side, SideResult};
use crate::sdn::SessionState;

/// How long the first report of a new link waits for its sessions. GoBGP dials a new peer after a
/// random 5-10 s (`connectLoop`: `MinConnectRetryInterval` 5 s, plus up to as much again), and the
/// handshake takes well under a second on a live link; 15 s leaves 5 s for a loaded speaker or
/// API server. A session that does not come up shows in status 15 s after its peers were created.
pub const FIRST_REPORT_WINDOW: Duration = Duration::from_secs(15);

/// From this many new links held at once (a bulk apply), a link whose first report finds both
/// sessions Established is told by its status alone (conditions with their times, each side's
/// `configured` and `establishedSince`), its Warnings still as Events: during a bulk apply one
/// Event per link was a fifth of the API server's writes (docs/performance.md). A link applied on
/// its own, or among a few, keeps its one Event.
pub const BULK_NEW_LINKS: usize = 10;

/// What a held first report carries to the next reconcile: its Events, and when it was first held.
#[derive(Debug)]
pub struct Held {
    pub notes: Notes,
    pub since: Instant,
}

/// The held first reports, by uid (in memory: after a restart the link is reported at once,
/// without the Events of what the previous leader did).
#[derive(Default)]
pub struct FirstReports(Mutex<HashMap<String, Held>>);

impl FirstReports {
    pub fn take(&self, uid: &str) -> Option<Held> {
        self.0.lock().unwrap().remove(uid)
    }

    pub fn hold(&self, uid: &str, held: Held) {
        self.0.lock().unwrap().insert(uid.into(), held);
    }

    /// Whether a bulk apply is under way: at least [`BULK_NEW_LINKS`] first reports held.
    pub fn bulk(&self) -> bool {
        self.0.lock().unwrap().len() >= BULK_NEW_LINKS
    }
}

/// What to do with a reconcile's report.
#[derive(Debug)]
pub enum Decision {
    /// Write nothing yet; look again after `recheck` (a session coming up requeues sooner).
    Hold { held: Held, recheck: Duration },
    /// Write status and send these Events (the held ones first).
    Publish(Notes),
}

/// Pure: whether this reconcile's report is held, given whether the status is still unwritten
/// (`first`), both sides as found, what an earlier reconcile held, this one's Events and whether
/// a bulk apply is under way (see [`BULK_NEW_LINKS`]).
pub fn decide(
    first: bool,
    sides: &[Side],
    (held, notes): (Option<Held>, Notes),
    now: Instant,
    bulk: bool,
) -> Decision {
    let (mut all, since) = match held {
        Some(h) => (h.notes, h.since),
        None => (Notes::default(), now),
    };
    for note in notes.0 {
        all.add_note(note);
    }
    let waited = now.saturating_duration_since(since);
    if first && coming_up(sides) && waited < FIRST_REPORT_WINDOW {
        let held = Held { notes: all, since };
        return Decision::Hold {
            held,
            recheck: FIRST_REPORT_WINDOW - waited,
        };
    }
    if first && bulk && all_established(sides) {
        all.0.retain(|n| n.type_ == EventType::Warning);
    }
    Decision::Publish(all)
}

/// Both sides managed, configured and Established: a link that came up cleanly.
fn all_established(sides: &[Side]) -> bool {
    let sessions = enabled_sessions(sides);
    sessions.len() == 2 && sessions.iter().all(|s| *s == SessionState::Established)
}

/// Both sides managed and configured, not both Established yet.
fn coming_up(sides: &[Side]) -> bool {
    let sessions = enabled_sessions(sides);
    sessions.len() == 2 && sessions.iter().any(|s| *s != SessionState::Established)
}

/// The sessions of the sides cellnet configured and did not disable.
fn enabled_sessions(sides: &[Side]) -> Vec<SessionState> {
    sides
        .iter()
        .filter_map(|s| match &s.result {
            SideResult::Configured {
                session,
                admin_down: false,
                ..
            } => Some(*session),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[path = "first_report_tests.rs"]
mod tests;
