//! Deletion: remove cellnet's peers from every managed speaker before the finalizer goes.
use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::{info, warn};

use super::super::Context;
use super::super::error::{Error, Result};
use super::super::speakers;
use super::super::target;
use super::resolve::endpoint_for_cleanup;
use super::side::{Notes, recorded_peer};
use super::status::Outcome;
use super::{DELETION_POLICY_ANNOTATION, key, owner_marker, ownership, write_status};
use crate::api::CellInterconnect;
use crate::sdn::RemoveOutcome;

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
        ctx.publish(cic, EventType::Normal, "Orphaned", "DeletePeer", note)
            .await;
        return Ok(Action::await_change());
    }
    let owner = owner_marker(&ns, &cic.name_any());
    let local = endpoint_for_cleanup(ctx, &ns, &cic.spec.local_endpoint.name).await?;
    let remote = endpoint_for_cleanup(ctx, &ns, &cic.spec.remote_endpoint.name).await?;
    let pairs = [(local.clone(), remote.clone()), (remote, local)];
    // One Event per reason for both sides (kube's recorder keeps only the first note of a
    // repeated reason on an object).
    let mut notes = Notes::default();
    for (this, other) in pairs {
        let Some(this) = this else { continue };
        if !this.spec.is_managed() {
            continue;
        }
        let cell = this.spec.cell.clone();
        // The current neighbour and the one status recorded (if the remote address changed).
        let mut addresses = BTreeSet::new();
        if let Some(other) = other {
            addresses.insert(other.spec.address.clone());
        }
        addresses.extend(recorded_peer(cic, &this));
        let target = match target::resolve_target(ctx, &this).await? {
            Ok(t) => t,
            Err(p) => {
                warn!(interconnect = %key(cic), cell, problem = ?p, "cannot reach the speaker to remove peers");
                return Err(Error::Sdn {
                    cell,
                    source: crate::sdn::SdnError::InvalidConfig(format!("{p:?}")),
                });
            }
        };
        let backend = ctx.speakers.backend(&target).map_err(|source| Error::Sdn {
            cell: cell.clone(),
            source,
        })?;
        let speaker = speakers::speaker_key(target.kind, &target.url);
        for addr in addresses {
            let Ok(ip) = addr.parse() else { continue };
            if backend.needs_ownership_record() && !ownership::is_recorded(cic, &speaker, &addr) {
                continue; // never created by cellnet: not ours to remove
            }
            match backend.remove_peer(ip, &owner).await {
                Ok(RemoveOutcome::Removed) => {
                    ctx.metrics.sdn_write("delete_peer");
                    let note = format!("cell {cell}: removed BGP peer {addr} from speaker {}", target.url);
                    info!(interconnect = %key(cic), %note);
                    notes.add(EventType::Normal, "PeerRemoved", "DeletePeer", note);
                }
                Ok(RemoveOutcome::Absent) => {}
                Ok(RemoveOutcome::NotOwned) => {
                    let note = format!("cell {cell}: peer {addr} is not cellnet's; left untouched");
                    notes.add(EventType::Warning, "PeerNotOwned", "DeletePeer", note);
                }
                Err(source) => {
                    let note = format!(
                        "cell {cell}: cannot remove peer {addr} ({source}); the finalizer stays and cellnet retries \
                         (annotate {DELETION_POLICY_ANNOTATION}=Orphan to release it without cleanup)"
                    );
                    let now = Time(k8s_openapi::jiff::Timestamp::now());
                    let outcome = Outcome::CleanupBlocked {
                        reason: source.category().as_str(),
                        message: note.clone(),
                    };
                    write_status(cic, ctx, &outcome, &now).await?;
                    notes.add(EventType::Warning, "CleanupBlocked", "DeletePeer", note);
                    notes.publish(ctx, cic).await;
                    return Err(Error::Sdn { cell, source });
                }
            }
        }
    }
    notes.publish(ctx, cic).await;
    ctx.backoffs.reset(&key(cic));
    Ok(Action::await_change())
}
