//! Deletion: remove cellnet's route filters and peers from every managed speaker before the
//! finalizer goes.
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::super::networks;
use super::super::problem::Problem;
use super::super::speaker_setup::{self, Speaker};
use super::super::target::{self, Checked};
use super::super::{Context, error::Error, error::Result};
use super::dereference::endpoint_for_cleanup;
use super::ledger::{self, Ledger};
use super::plan::{owner_marker, recorded_peer};
use super::publish::{send_events, write_status};
use super::report::Notes;
use super::status::Outcome;
use super::{DELETION_POLICY_ANNOTATION, key};
use crate::api::{CellInterconnect, InfraEndpoint, Reason};
use crate::sdn::{RemoveOutcome, RoutesOutcome, SdnError, SdnTarget};

/// Removes cellnet's peers from every managed speaker; keeps the finalizer while one is unreachable.
pub(super) async fn cleanup(cic: &CellInterconnect, ctx: &Context) -> Result<Action> {
    let ns = cic.namespace().unwrap_or_default();
    // Going away: no readiness alert for it while its peers are removed.
    ctx.metrics
        .objects
        .remove_interconnect(&crate::metrics::objects::object_label(cic));
    if cic
        .annotations()
        .get(DELETION_POLICY_ANNOTATION)
        .map(String::as_str)
        == Some("Orphan")
    {
        let note = "deletion policy Orphan: peers left on the speakers".to_string();
        ctx.publish(cic, EventType::Normal, Reason::Orphaned, "DeletePeer", note)
            .await;
        return Ok(Action::await_change());
    }
    let local = endpoint_for_cleanup(ctx, &ns, &cic.spec.local_endpoint.name).await?;
    let remote = endpoint_for_cleanup(ctx, &ns, &cic.spec.remote_endpoint.name).await?;
    // One Event per reason for both sides (kube's recorder keeps only the first note of a
    // repeated reason on an object).
    let mut notes = Notes::default();
    if ledger::legacy_annotation(cic) {
        let note = ledger::legacy_annotation_note();
        notes.add(EventType::Warning, Reason::PeerNotOwned, "DeletePeer", note);
    }
    for (this, other) in [(&local, &remote), (&remote, &local)] {
        let Some(this) = this.as_ref().filter(|e| e.spec.is_managed()) else {
            continue;
        };
        if let Some(blocked) = cleanup_side(cic, ctx, this, other.as_deref(), &mut notes).await? {
            return blocked_by(cic, ctx, blocked, notes).await;
        }
    }
    send_events(ctx, cic, notes).await;
    ctx.backoffs.reset(&key(cic));
    ctx.status_memo.forget(&cic.uid().unwrap_or_default());
    ctx.ledgers.forget(&cic.uid().unwrap_or_default());
    ctx.first_reports.take(&cic.uid().unwrap_or_default());
    Ok(Action::await_change())
}

/// A speaker that cannot be reached keeps the finalizer: status and a Warning say so, and the
/// error makes kube's finalizer helper keep it (retried with the object's backoff).
async fn blocked_by(
    cic: &CellInterconnect,
    ctx: &Context,
    problem: Problem,
    mut notes: Notes,
) -> Result<Action> {
    let note = format!(
        "{}; the finalizer stays and cellnet retries (annotate {DELETION_POLICY_ANNOTATION}=Orphan to release it \
         without cleanup)",
        problem.message
    );
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let blocked = Problem {
        message: note.clone(),
        stalled: false,
        ..problem
    };
    write_status(cic, ctx, &Outcome::CleanupBlocked(blocked.clone()), &now).await?;
    notes.add(EventType::Warning, Reason::CleanupBlocked, "DeletePeer", note);
    send_events(ctx, cic, notes).await;
    Err(Error::CleanupBlocked(blocked))
}

/// The current neighbour and the one status recorded (if the remote address changed).
fn addresses(
    cic: &CellInterconnect,
    this: &InfraEndpoint,
    other: Option<&InfraEndpoint>,
) -> BTreeSet<String> {
    let mut addresses: BTreeSet<String> = other.map(|o| o.spec.address.clone()).into_iter().collect();
    addresses.extend(recorded_peer(cic, this));
    addresses
}

/// The speaker of `this` side, or the problem that keeps the finalizer.
async fn connect(ctx: &Context, this: &InfraEndpoint) -> Result<Checked<(SdnTarget, Speaker)>> {
    let cannot = |p: Problem| {
        let cell = &this.spec.cell;
        p.within(format!("cell {cell}: cannot reach the speaker to remove peers"))
    };
    let target = match target::resolve_target(ctx, this).await? {
        Ok(t) => t,
        Err(p) => return Ok(Err(cannot(p))),
    };
    Ok(match speaker_setup::connect(ctx, &target) {
        Ok(speaker) => Ok((target, speaker)),
        Err(e) => Err(cannot(e.into())),
    })
}

/// Removes cellnet's peers on `this` side; `Some(problem)` when a speaker blocks the deletion.
async fn cleanup_side(
    cic: &CellInterconnect,
    ctx: &Context,
    this: &Arc<InfraEndpoint>,
    other: Option<&InfraEndpoint>,
    notes: &mut Notes,
) -> Result<Option<Problem>> {
    let cell = this.spec.cell.clone();
    let (target, speaker) = match connect(ctx, this).await? {
        Ok(connected) => connected,
        // The operator does not let cellnet call this speaker (any more): nothing to remove there.
        Err(problem) if problem.reason == Reason::EndpointNotAllowed => {
            let note = format!("{}; peers, if any, left there", problem.message);
            notes.add(EventType::Warning, Reason::Orphaned, "DeletePeer", note);
            return Ok(None);
        }
        Err(problem) => return Ok(Some(problem)),
    };
    let peers = addresses(cic, this, other);
    if let Some(problem) = remove_filter(cic, ctx, (&cell, &peers), &target, &speaker).await {
        return Ok(Some(problem));
    }
    let owner = owner_marker(&cic.namespace().unwrap_or_default(), &cic.name_any());
    let ledger = Ledger::current(ctx, cic).await?;
    for addr in peers {
        let Ok(ip) = addr.parse::<IpAddr>() else { continue };
        if !ledger.may_touch(target.kind, &speaker.key, ip) {
            // Never recorded as created by cellnet: not ours to remove, whatever else says so.
            if let Ok(Some(_)) = speaker.backend.observe_peer(ip).await {
                let note = format!(
                    "cell {cell}: neighbour {addr} on speaker {} is not in cellnet's record (status.ownedPeers); \
                     left untouched",
                    target.url
                );
                notes.add(EventType::Warning, Reason::PeerNotOwned, "DeletePeer", note);
            }
            continue;
        }
        let removed = speaker.backend.remove_peer(ip, &owner).await;
        if matches!(removed, Ok(RemoveOutcome::Removed | RemoveOutcome::Absent)) {
            // Its session series would otherwise stay in cellnet_bgp_sessions forever.
            ctx.metrics.remove_session(&cell, &addr);
        }
        match removed {
            Ok(RemoveOutcome::Removed) => {
                ctx.metrics.sdn_write("delete_peer");
                let note = format!("cell {cell}: removed BGP peer {addr} from speaker {}", target.url);
                notes.add(EventType::Normal, Reason::PeerRemoved, "DeletePeer", note);
            }
            Ok(RemoveOutcome::Absent) => {}
            Ok(RemoveOutcome::NotOwned) => {
                let note = format!("cell {cell}: peer {addr} is not cellnet's; left untouched");
                notes.add(EventType::Warning, Reason::PeerNotOwned, "DeletePeer", note);
            }
            Err(source) => {
                let message = format!("cell {cell}: cannot remove peer {addr} ({source})");
                return Ok(Some(Problem::new(source.category(), message)));
            }
        }
    }
    Ok(None)
}

/// Removes the interconnect's route filter from `this` side's speaker, before its peer (the
/// filter names the neighbour). A backend without filters has nothing to remove.
async fn remove_filter(
    cic: &CellInterconnect,
    ctx: &Context,
    (cell, peers): (&str, &BTreeSet<String>),
    target: &SdnTarget,
    speaker: &Speaker,
) -> Option<Problem> {
    let key = networks::filter_key(&cic.namespace().unwrap_or_default(), &cic.name_any());
    match speaker.backend.remove_route_filter(&key).await {
        Ok(RoutesOutcome::Updated { .. }) => {
            ctx.metrics.sdn_write("remove_routes");
            ctx.speakers.wrote_routes(&speaker.key);
            None
        }
        Ok(_) | Err(SdnError::Unsupported(_)) => None,
        Err(source) => {
            // Said as the peers' removal: the filter goes first, the peers right after it.
            let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
            let message = format!(
                "cell {cell}: cannot remove peer {} and its route filter {key} from speaker {} ({source})",
                peers.join(", "),
                target.url
            );
            Some(Problem::new(source.category(), message))
        }
    }
}
