//! Deletion: remove cellnet's peers from every managed speaker before the finalizer goes.
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::warn;

use super::super::problem::Problem;
use super::super::speaker_setup::{self, Speaker};
use super::super::{Context, error::Error, error::Result, target};
use super::dereference::endpoint_for_cleanup;
use super::ledger::Ledger;
use super::plan::{owner_marker, recorded_peer};
use super::publish::{send_events, write_status};
use super::report::Notes;
use super::status::Outcome;
use super::{DELETION_POLICY_ANNOTATION, key};
use crate::api::{CellInterconnect, InfraEndpoint, Reason};
use crate::sdn::{RemoveOutcome, SdnError, SdnTarget};

/// Removes cellnet's peers from every managed speaker; keeps the finalizer while one is unreachable.
pub(super) async fn cleanup(cic: &CellInterconnect, ctx: &Context) -> Result<Action> {
    let ns = cic.namespace().unwrap_or_default();
    if cic
        .annotations()
        .get(DELETION_POLICY_ANNOTATION)
        .map(String::as_str)
        == Some("Orphan")
    {
        let note = "deletion policy Orphan: peers left on the speakers".to_string();
        ctx.publish(
            cic,
            EventType::Normal,
            Reason::Orphaned.as_str(),
            "DeletePeer",
            note,
        )
        .await;
        return Ok(Action::await_change());
    }
    let local = endpoint_for_cleanup(ctx, &ns, &cic.spec.local_endpoint.name).await?;
    let remote = endpoint_for_cleanup(ctx, &ns, &cic.spec.remote_endpoint.name).await?;
    // One Event per reason for both sides (kube's recorder keeps only the first note of a
    // repeated reason on an object).
    let mut notes = Notes::default();
    for (this, other) in [(&local, &remote), (&remote, &local)] {
        let Some(this) = this.as_ref().filter(|e| e.spec.is_managed()) else {
            continue;
        };
        if let Err(err) = cleanup_side(cic, ctx, this, other.as_deref(), &mut notes).await {
            send_events(ctx, cic, notes).await;
            return Err(err);
        }
    }
    send_events(ctx, cic, notes).await;
    ctx.backoffs.reset(&key(cic));
    Ok(Action::await_change())
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

/// The speaker of `this` side, or the error that keeps the finalizer.
async fn connect(
    ctx: &Context,
    cic: &CellInterconnect,
    this: &InfraEndpoint,
) -> Result<(SdnTarget, Speaker)> {
    let cell = this.spec.cell.clone();
    let target = match target::resolve_target(ctx, this).await? {
        Ok(t) => t,
        Err(p) => {
            warn!(interconnect = %key(cic), cell, problem = %p, "cannot reach the speaker to remove peers");
            let source = SdnError::InvalidConfig(p.message);
            return Err(Error::Sdn { cell, source });
        }
    };
    let speaker = speaker_setup::connect(ctx, &target).map_err(|source| Error::Sdn { cell, source })?;
    Ok((target, speaker))
}

async fn cleanup_side(
    cic: &CellInterconnect,
    ctx: &Context,
    this: &Arc<InfraEndpoint>,
    other: Option<&InfraEndpoint>,
    notes: &mut Notes,
) -> Result<()> {
    let cell = this.spec.cell.clone();
    let (target, speaker) = connect(ctx, cic, this).await?;
    let owner = owner_marker(&cic.namespace().unwrap_or_default(), &cic.name_any());
    let ledger = Ledger::of(cic);
    for addr in addresses(cic, this, other) {
        let Ok(ip) = addr.parse::<IpAddr>() else { continue };
        if !ledger.may_touch(target.kind, &speaker.key, ip) {
            continue; // never created by cellnet: not ours to remove
        }
        match speaker.backend.remove_peer(ip, &owner).await {
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
                let note = format!(
                    "cell {cell}: cannot remove peer {addr} ({source}); the finalizer stays and cellnet retries \
                     (annotate {DELETION_POLICY_ANNOTATION}=Orphan to release it without cleanup)"
                );
                let now = Time(k8s_openapi::jiff::Timestamp::now());
                let blocked = Problem {
                    reason: source.category(),
                    message: note.clone(),
                    stalled: false,
                };
                write_status(cic, ctx, &Outcome::CleanupBlocked(blocked), &now).await?;
                notes.add(EventType::Warning, Reason::CleanupBlocked, "DeletePeer", note);
                return Err(Error::Sdn { cell, source });
            }
        }
    }
    Ok(())
}
