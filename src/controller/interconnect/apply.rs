//! Step 3 (SDN I/O): one side's plan carried out on its speaker, in two halves around the
//! ledger claim: [`prepare`] (speaker started, and on ledger backends a look for a neighbour that
//! is not cellnet's) and [`execute`] (peer ensured, stale peer removed, session read, then the
//! [`routes`] step). Both
//! return facts, never text: the report step words them.
use std::net::IpAddr;

use super::super::Context;
use super::super::speaker_setup::{self, Ask, Speaker};
use super::ledger::{self, Ledger};
use super::plan::SidePlan;
use super::routes::{self, RoutesFacts};
use crate::sdn::{ObservedPeer, Ownership, PeerOutcome, RemoveOutcome, SdnError, SpeakerOutcome};

/// Why a side stopped short of a configured peer.
#[derive(Debug)]
pub enum Failure {
    /// An SDN call failed; `forget_started`: the speaker may have restarted bare.
    Sdn(SdnError),
    /// The speaker runs with another global config.
    SpeakerConflict(String),
    /// A neighbour at that address exists and the ledger does not say it is cellnet's.
    Unrecorded,
    /// The backend found the peer to be someone else's (`owner`: the marker it carries).
    NotOurs { owner: Option<String> },
    /// The peer was gone right after it was configured.
    Vanished,
}

impl From<SdnError> for Failure {
    fn from(e: SdnError) -> Self {
        Self::Sdn(e)
    }
}

/// A side after [`prepare`]: its speaker connected and started.
pub struct Prepared {
    pub plan: SidePlan,
    speaker: Speaker,
    pub started: bool,
    /// The ledger must record the neighbour before the create.
    pub claim: bool,
}

/// What [`execute`] did on one side.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub outcome: PeerOutcome,
    /// The peer as read (`None`: created a moment ago, no session yet).
    pub observed: Option<ObservedPeer>,
    pub stale_removed: Option<IpAddr>,
    /// The routes step (`None`: no filter to ensure).
    pub routes: Option<Box<RoutesFacts>>,
}

/// What happened on one managed side.
#[derive(Debug)]
pub struct SideFacts {
    pub started: bool,
    pub result: Result<Applied, Failure>,
}

impl SideFacts {
    fn failed(started: bool, failure: Failure) -> Self {
        Self {
            started,
            result: Err(failure),
        }
    }
}

/// Connects and starts the speaker; on ledger backends, checks that an unrecorded neighbour is
/// not there already (it would be someone else's).
pub async fn prepare(ctx: &Context, plan: SidePlan, ledger: &Ledger) -> Result<Prepared, SideFacts> {
    let fail = |f| SideFacts::failed(false, f);
    let speaker = speaker_setup::connect(ctx, &plan.target).map_err(|e| fail(e.into()))?;
    let outcome = speaker_setup::ensure(ctx, &plan.target, &speaker, &plan.speaker_config, Ask::IfUnknown)
        .await
        .map_err(|e| fail(e.into()))?;
    let started = match outcome {
        SpeakerOutcome::Conflict { reason } => return Err(fail(Failure::SpeakerConflict(reason))),
        SpeakerOutcome::Started => true,
        SpeakerOutcome::Unchanged => false,
    };
    let address = plan.peer.neighbor;
    let needs_record = ledger::ownership(plan.target.kind) == Ownership::Ledger;
    let claim = needs_record && !ledger.owns(&plan.speaker, &address.to_string());
    if claim {
        match speaker.backend.observe_peer(address).await {
            Err(e) => return Err(SideFacts::failed(started, e.into())),
            Ok(Some(_)) => return Err(SideFacts::failed(started, Failure::Unrecorded)),
            Ok(None) => {}
        }
    }
    let mut plan = plan;
    plan.peer.owned_record = needs_record;
    Ok(Prepared {
        plan,
        speaker,
        started,
        claim,
    })
}

/// Ensures the peer, removes the stale one (if cellnet's), and reads the session.
pub async fn execute(ctx: &Context, prepared: Prepared, ledger: &Ledger) -> SideFacts {
    let result = ensure_and_observe(ctx, &prepared, ledger).await;
    if matches!(result, Err(Failure::Sdn(_))) {
        // Perhaps restarted bare since we last looked: ask again next time.
        ctx.speakers.forget_started(&prepared.speaker.key);
    }
    SideFacts {
        started: prepared.started,
        result,
    }
}

async fn ensure_and_observe(ctx: &Context, p: &Prepared, ledger: &Ledger) -> Result<Applied, Failure> {
    let (plan, backend) = (&p.plan, &p.speaker.backend);
    let ensured = {
        let _timer = ctx.metrics.sdn_timer(&plan.target, "ensure_peer");
        backend.ensure_peer(&plan.peer).await?
    };
    if let PeerOutcome::Conflict { owner } = ensured.outcome {
        return Err(Failure::NotOurs { owner });
    }
    let stale_removed = remove_stale(p, ledger).await;
    let observed = match (&ensured.outcome, ensured.observed) {
        // No session yet on a peer made a moment ago: reading it back cost a call per side during
        // bulk applies. Its first move to Established arrives as a speaker event.
        (PeerOutcome::Created, _) => None,
        (_, Some(seen)) => Some(seen),
        (_, None) => {
            let _timer = ctx.metrics.sdn_timer(&plan.target, "observe_peer");
            Some(
                backend
                    .observe_peer(plan.peer.neighbor)
                    .await?
                    .ok_or(Failure::Vanished)?,
            )
        }
    };
    let routes = routes::exchange(ctx, backend.as_ref(), &plan.target, &plan.routes)
        .await
        .map(Box::new);
    Ok(Applied {
        outcome: ensured.outcome,
        observed,
        stale_removed,
        routes,
    })
}

/// Removes the peer this side had before its neighbour address changed, when it is cellnet's.
/// A failure is left for the next reconcile (the stale peer stays recorded in status).
async fn remove_stale(p: &Prepared, ledger: &Ledger) -> Option<IpAddr> {
    let old = p.plan.stale_peer?;
    if !ledger.may_touch(p.plan.target.kind, &p.plan.speaker, old) {
        return None;
    }
    match p.speaker.backend.remove_peer(old, &p.plan.peer.owner).await {
        Ok(RemoveOutcome::Removed) => Some(old),
        _ => None,
    }
}
