//! Step 4b, between the report and the status: each managed side's outage measured against the
//! stuck threshold ([`assess`], pure, from the times in status), and a stuck side's own peer
//! reset on its speaker ([`unstick`], SDN I/O). Only a side whose peer cellnet just ensured is
//! judged, and the backend checks ownership again before the reset: a peer that is not
//! cellnet's is never reset.
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;
use tracing::warn;

use super::super::Context;
use super::super::speaker_setup;
use super::plan::SidePlan;
use super::report::{Found, Report};
use super::status::{self, SideResult};
use super::stuck::{self, Declared};
use crate::api::{Reason, SideStatus};
use crate::sdn::{ResetOutcome, SessionState};

/// One side's outage as judged now.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub down_since: Option<Time>,
    /// The stuck text (state and likely cause) once past the threshold.
    pub stuck: Option<String>,
    pub reset_due: bool,
    /// When the next deadline (stuck, or the next reset) comes.
    pub next_check: Option<Duration>,
}

/// Judges one managed side whose peer is configured.
pub fn assess(
    side: &status::Side,
    plan: &SidePlan,
    before: Option<&SideStatus>,
    threshold: Duration,
    now: &Time,
) -> Assessment {
    let down = match &side.result {
        SideResult::Configured {
            session, admin_down, ..
        } => (!*admin_down && *session != SessionState::Established).then_some(*session),
        _ => None,
    };
    let since = before.and_then(|b| b.not_established_since.as_ref()).map(|t| t.0);
    let down_since = stuck::down_since(since, down.is_some(), now.0);
    let (Some(session), Some(since)) = (down, down_since) else {
        return Assessment {
            down_since: None,
            stuck: None,
            reset_due: false,
            next_check: None,
        };
    };
    let last_reset = before.and_then(|b| b.last_reset_time.as_ref()).map(|t| t.0);
    let judgement = stuck::judge(since, last_reset, threshold, now.0);
    let stuck = judgement.stuck.then(|| {
        let cause = stuck::cause(session, &side.health.diagnostics, plan.peer.passive);
        format!(
            "stuck in {session} for more than {} s: {}",
            threshold.as_secs(),
            stuck::explain(cause, &declared(plan))
        )
    });
    Assessment {
        down_since: Some(Time(since)),
        stuck,
        reset_due: judgement.reset_due,
        next_check: Some(judgement.next_check),
    }
}

fn declared(plan: &SidePlan) -> Declared {
    Declared {
        peer_asn: plan.peer.peer_asn,
        local_asn: plan.speaker_config.asn,
        hold_time: plan.peer.hold_time,
        neighbor: plan.peer.neighbor.to_string(),
        port: plan.peer.remote_port,
    }
}

/// Judges both sides, resets the stuck ones that are due, and words it; returns when to look
/// again at the latest (the next stuck or reset deadline).
pub async fn unstick(
    ctx: &Context,
    found: &[Found; 2],
    report: &mut Report,
    before: [Option<&SideStatus>; 2],
    threshold: Duration,
    now: &Time,
) -> Option<Duration> {
    let mut next: Option<Duration> = None;
    for (i, f) in found.iter().enumerate() {
        let Found::Applied(_, plan, facts) = f else {
            continue;
        };
        if facts.result.is_err() {
            continue;
        }
        let assessment = assess(&report.sides[i], plan, before[i], threshold, now);
        next = [next, assessment.next_check].into_iter().flatten().min();
        let reset = assessment.reset_due && reset(ctx, plan).await;
        if reset {
            let (side, other) = (&report.sides[i], &report.sides[1 - i].cell);
            let text = format!(
                "cell {} -> cell {other} ({}): {}; cellnet reset its peer",
                side.cell,
                side.peer_address,
                assessment.stuck.as_deref().unwrap_or("stuck")
            );
            report
                .notes
                .add(EventType::Warning, Reason::SessionReset, "ResetPeer", text);
        }
        let side = &mut report.sides[i];
        side.health.down_since = assessment.down_since;
        side.health.stuck = assessment.stuck;
        side.health.reset = reset;
    }
    next
}

/// Resets the side's peer if it is cellnet's; whether it was reset (a failure is retried at the
/// next reconcile, since no reset is recorded).
async fn reset(ctx: &Context, plan: &SidePlan) -> bool {
    let neighbor = plan.peer.neighbor;
    let outcome = match speaker_setup::connect(ctx, &plan.target) {
        Ok(speaker) => {
            let _timer = ctx.metrics.sdn_timer(&plan.target, "reset_peer");
            speaker
                .backend
                .reset_peer(neighbor, &plan.peer.owner, plan.peer.owned_record)
                .await
        }
        Err(e) => {
            warn!(%neighbor, speaker = %plan.target.url, error = %e, "cannot reset a stuck peer");
            return false;
        }
    };
    match outcome {
        Ok(ResetOutcome::Reset) => true,
        Ok(other) => {
            warn!(%neighbor, speaker = %plan.target.url, outcome = ?other, "stuck peer not reset");
            false
        }
        Err(e) => {
            warn!(%neighbor, speaker = %plan.target.url, error = %e, "cannot reset a stuck peer");
            false
        }
    }
}

#[cfg(test)]
#[path = "unstick_tests.rs"]
mod tests;
