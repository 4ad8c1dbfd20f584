//! Step 3b (SDN I/O): the endpoint's networks originated on its speaker (paths marked as the
//! endpoint's own, next hop its address), conflicts with other cells' endpoints held back; and,
//! on deletion, withdrawn before the networks finalizer goes.
use kube::{Resource, ResourceExt};

use super::super::Context;
use super::super::error::Result;
use super::super::networks::{self, Conflict};
use super::super::problem::Problem;
use super::super::speaker_setup;
use super::super::target::{self, Checked};
use crate::api::{InfraEndpoint, NetworkStatus, Reason};
use crate::sdn::{Origination, RoutesOutcome, SdnError};

/// Keeps a managed endpoint with networks until its paths are withdrawn from its speaker.
pub const NETWORKS_FINALIZER: &str = "cellnet.io/networks";

/// What the networks step found.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkFacts {
    /// `status.networks`.
    pub statuses: Vec<NetworkStatus>,
    /// `NetworksAnnounced`: `Ok(message)` or the problem.
    pub announced: std::result::Result<String, Problem>,
    /// The note of a `RoutesUpdated` (or, with `drift`, a `DriftRepaired`) Event.
    pub changed: Option<String>,
    pub drift: bool,
}

/// Whether the endpoint needs the networks finalizer: it is managed and announces, or may still
/// announce, networks.
pub fn wants_finalizer(ep: &InfraEndpoint) -> bool {
    ep.meta().deletion_timestamp.is_none() && ep.spec.is_managed() && has_networks(ep)
}

/// Declared networks, or networks status says were announced (to be withdrawn).
fn has_networks(ep: &InfraEndpoint) -> bool {
    !networks::declared(ep).is_empty()
        || ep
            .status
            .as_ref()
            .is_some_and(|s| s.networks.iter().any(|n| n.announced))
}

/// Originates the endpoint's networks; `None` without any (nothing to say, no SDN call).
pub async fn announce(ctx: &Context, ep: &InfraEndpoint) -> Result<Option<NetworkFacts>> {
    if !has_networks(ep) {
        return Ok(None);
    }
    let conflicts = networks::conflicts_of(ep, &ctx.endpoints.state());
    let statuses = statuses(ep, &conflicts);
    let conflict = conflict_problem(ep, &conflicts);
    let Some(announced) = networks::origination(ep, &conflicts).filter(|_| ep.spec.is_managed()) else {
        let result = conflict.map_or_else(|| Ok(external_message(ep)), Err);
        return Ok(Some(facts(statuses, result, None)));
    };
    let outcome = match originate(ctx, ep, &announced.origination).await? {
        Ok(outcome) => outcome,
        Err(problem) => return Ok(Some(facts(unannounced(statuses), Err(problem), None))),
    };
    let count = announced.origination.networks.len();
    let message = format!("cell {}: the speaker announces {count} network(s)", ep.spec.cell);
    let mut found = match outcome {
        RoutesOutcome::Conflict { reason } => {
            let problem = Problem {
                reason: Reason::SdnRejected,
                message: format!("cell {}: {reason}", ep.spec.cell),
                stalled: true,
            };
            facts(unannounced(statuses), Err(problem), None)
        }
        RoutesOutcome::Updated { writes } => {
            let note = format!(
                "cell {}: networks on the speaker: {}",
                ep.spec.cell,
                writes.join(", ")
            );
            facts(statuses, conflict.map_or(Ok(message), Err), Some(note))
        }
        RoutesOutcome::Unchanged => facts(statuses, conflict.map_or(Ok(message), Err), None),
    };
    found.drift = found.changed.is_some() && announced_before_unchanged_spec(ep);
    Ok(Some(found))
}

fn facts(
    statuses: Vec<NetworkStatus>,
    announced: std::result::Result<String, Problem>,
    changed: Option<String>,
) -> NetworkFacts {
    NetworkFacts {
        statuses,
        announced,
        changed,
        drift: false,
    }
}

fn external_message(ep: &InfraEndpoint) -> String {
    format!(
        "cell {}: external endpoint; it announces its networks itself and the interconnects accept them",
        ep.spec.cell
    )
}

/// The spec did not change since status said its networks were announced: a write repairs drift.
fn announced_before_unchanged_spec(ep: &InfraEndpoint) -> bool {
    ep.status.as_ref().is_some_and(|s| {
        s.observed_generation == ep.meta().generation && s.networks.iter().any(|n| n.announced)
    })
}

/// Each declared network and whether it is announced.
fn statuses(ep: &InfraEndpoint, conflicts: &[Conflict]) -> Vec<NetworkStatus> {
    let withheld = networks::origination(ep, conflicts)
        .map(|a| a.withheld)
        .unwrap_or_default();
    networks::declared(ep)
        .into_iter()
        .map(|d| {
            let why = withheld.iter().find(|(n, _)| *n == d.net).map(|(_, w)| w.clone());
            NetworkStatus {
                cidr: d.net.to_string(),
                name: d.name,
                announced: ep.spec.is_managed() && why.is_none(),
                message: why,
            }
        })
        .collect()
}

fn unannounced(statuses: Vec<NetworkStatus>) -> Vec<NetworkStatus> {
    statuses
        .into_iter()
        .map(|s| NetworkStatus {
            announced: false,
            ..s
        })
        .collect()
}

fn conflict_problem(ep: &InfraEndpoint, conflicts: &[Conflict]) -> Option<Problem> {
    if conflicts.is_empty() {
        return None;
    }
    let each: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "{} overlaps {} of InfraEndpoint {} (cell {})",
                c.net, c.other_net, c.other, c.other_cell
            )
        })
        .collect();
    let message = format!(
        "cell {}: {}; neither is announced or accepted until one of them changes",
        ep.spec.cell,
        each.join("; ")
    );
    Some(Problem::new(Reason::NetworkConflict, message))
}

/// The origination on the endpoint's speaker.
async fn originate(
    ctx: &Context,
    ep: &InfraEndpoint,
    origination: &Origination,
) -> Result<Checked<RoutesOutcome>> {
    let target = match target::resolve_target(ctx, ep).await? {
        Ok(t) => t,
        Err(p) => return Ok(Err(p)),
    };
    let speaker = match speaker_setup::connect(ctx, &target) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.into())),
    };
    let _timer = ctx.metrics.sdn_timer(&target, "ensure_origination");
    Ok(speaker
        .backend
        .ensure_origination(origination)
        .await
        .map_err(|e| Problem::from(e).within(format!("cell {}: announcing its networks", ep.spec.cell))))
}

/// On deletion, once no interconnect uses the endpoint: withdraws its paths. `None`: nothing
/// was due; `Some(Err)`: the speaker could not be reached, the finalizer stays.
pub async fn release(ctx: &Context, ep: &InfraEndpoint, users: usize) -> Result<Option<Checked<()>>> {
    let has = ep.finalizers().iter().any(|f| f == NETWORKS_FINALIZER);
    if !has || wants_finalizer(ep) || users > 0 {
        return Ok(None);
    }
    if !ep.spec.is_managed() {
        return Ok(Some(Ok(())));
    }
    let target = match target::resolve_target(ctx, ep).await? {
        Ok(t) => t,
        // The operator does not let cellnet call this speaker (any more): nothing to withdraw.
        Err(p) if p.reason == Reason::EndpointNotAllowed => return Ok(Some(Ok(()))),
        Err(p) => return Ok(Some(Err(p))),
    };
    let withdrawn = match speaker_setup::connect(ctx, &target) {
        Err(e) => Err(e),
        Ok(speaker) => {
            let mark = crate::sdn::routes::mark_of(&ep.uid().unwrap_or_default());
            speaker.backend.withdraw_origination(mark).await
        }
    };
    Ok(Some(match withdrawn {
        Ok(_) | Err(SdnError::Unsupported(_)) => Ok(()),
        Err(e) => Err(Problem::from(e).within(format!("cell {}: withdrawing its networks", ep.spec.cell))),
    }))
}
