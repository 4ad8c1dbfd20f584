//! Pure: whether a managed side's session is stuck (configured, not Established for longer than
//! the threshold), what the speaker's counters say about why, and whether cellnet should reset
//! its peer now. Every time comes from status (`notEstablishedSince`, `lastResetTime`), so a
//! controller restart neither forgets an outage nor resets sooner than the backoff allows.
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::sdn::{PeerDiagnostics, SessionState};

/// The longest wait between two resets of one outage.
const MAX_RESET_INTERVAL: Duration = Duration::from_secs(3600);

/// How long a session may stay down before it is stuck: 3 × the hold time, at least `minimum`.
pub fn threshold(hold_time: u16, minimum: Duration) -> Duration {
    Duration::from_secs(3 * u64::from(hold_time)).max(minimum)
}

/// What the speaker's counters make likely, for a session that does not come up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// No OPEN ever came from the neighbour: the TCP connection does not come up.
    NoOpen { passive: bool },
    /// The neighbour's OPEN came and this speaker answered with a NOTIFICATION.
    WeRejected,
    /// The neighbour sent a NOTIFICATION: it refused this speaker's OPEN (or closed the session).
    TheyRejected,
    /// OPENs are on their way but the session does not move on (a connection collision when
    /// both sides dial at once, or a neighbour that accepts TCP but does not answer).
    Waiting,
    /// The backend reports no counters, or they explain nothing.
    Unknown,
}

/// The likely cause from the state and the counters (GoBGP counts since the peer was
/// configured, so a session that worked before has non-zero counts: the state decides first).
/// OpenDaylight counts NOTIFICATIONs but no OPENs: without an OPEN count, "no OPEN" is never
/// concluded.
pub fn cause(state: SessionState, d: &PeerDiagnostics, passive: bool) -> Cause {
    let (sent, received) = (
        d.notifications_sent.unwrap_or(0),
        d.notifications_received.unwrap_or(0),
    );
    match state {
        SessionState::OpenSent | SessionState::OpenConfirm => Cause::Waiting,
        _ if d.opens_received == Some(0) => Cause::NoOpen { passive },
        _ if sent > 0 && sent >= received => Cause::WeRejected,
        _ if received > 0 => Cause::TheyRejected,
        _ => Cause::Unknown,
    }
}

/// What the side's configuration needs to word a cause.
pub struct Declared {
    /// The AS declared on the other endpoint (the peer AS this speaker expects).
    pub peer_asn: u32,
    /// This speaker's own AS (what the neighbour should expect).
    pub local_asn: u32,
    pub hold_time: u16,
    pub neighbor: String,
    pub port: u16,
}

/// The cause in words, with what to check.
pub fn explain(cause: Cause, d: &Declared) -> String {
    let (asn, local, hold, at) = (
        d.peer_asn,
        d.local_asn,
        d.hold_time,
        format!("{}:{}", d.neighbor, d.port),
    );
    match cause {
        Cause::NoOpen { passive: false } => format!(
            "no OPEN ever received: the TCP connection to {at} does not come up (nothing listening \
             on the peer's BGP port, a filter or route on the underlay, a wrong address, or a \
             TCP MD5 password only one side has)"
        ),
        Cause::NoOpen { passive: true } => format!(
            "no OPEN ever received: this side only listens and the peer {} never connected (is \
             the other side configured and able to reach this speaker?)",
            d.neighbor
        ),
        Cause::WeRejected => format!(
            "this speaker rejected the peer's OPEN (OPEN received, NOTIFICATION sent): check the \
             declared AS {asn}, hold time {hold} s, address families, password"
        ),
        Cause::TheyRejected => format!(
            "the peer rejected this speaker's OPEN (NOTIFICATION received): check the AS it \
             expects for this side ({local}), hold time, address families, password on the peer"
        ),
        Cause::Waiting => "OPEN sent but the session goes no further: a connection collision \
             (both sides dialling at once) or a peer that accepts TCP without answering"
            .to_string(),
        Cause::Unknown => "the speaker reports nothing that explains it".to_string(),
    }
}

/// When the side's current outage began: kept from before, or now for a new one; `None` when
/// the side is not down (Established, administratively down, not configured).
pub fn down_since(before: Option<Timestamp>, down: bool, now: Timestamp) -> Option<Timestamp> {
    down.then(|| before.unwrap_or(now))
}

/// The judgement of one down side at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub stuck: bool,
    /// Reset the peer now.
    pub reset_due: bool,
    /// When to look again (the next deadline, at most the caller's usual re-check).
    pub next_check: Duration,
}

/// Stuck from `since` + `threshold`; the first reset then, each next one after the time the
/// outage had lasted at the last reset (so: T, 2T, 4T, ...), never more than an hour apart.
pub fn judge(
    since: Timestamp,
    last_reset: Option<Timestamp>,
    threshold: Duration,
    now: Timestamp,
) -> Judgement {
    let elapsed = between(since, now);
    let stuck_at = threshold;
    // A reset from an earlier outage does not count for this one.
    let last = last_reset.filter(|r| *r >= since).map(|r| between(since, r));
    let next_reset_at = match last {
        None => stuck_at,
        Some(at) => at + at.max(threshold).min(MAX_RESET_INTERVAL),
    };
    let stuck = elapsed >= stuck_at;
    let reset_due = elapsed >= next_reset_at;
    let next_at = if reset_due {
        // After this reset, the next one is due `elapsed` later (capped).
        elapsed + elapsed.max(threshold).min(MAX_RESET_INTERVAL)
    } else {
        next_reset_at
    };
    Judgement {
        stuck,
        reset_due,
        next_check: next_at.saturating_sub(elapsed).max(Duration::from_secs(1)),
    }
}

fn between(from: Timestamp, to: Timestamp) -> Duration {
    let ms = to.as_millisecond().saturating_sub(from.as_millisecond());
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
#[path = "stuck_tests.rs"]
mod tests;
