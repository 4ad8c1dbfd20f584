//! Reconciler of CellInterconnects: resolve the endpoints and Secret, configure the peer on each
//! managed speaker, read the sessions, write status. Deletion removes cellnet's peers first.
mod desired;
mod ownership;
mod status;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

pub use desired::owner_marker;
use status::{Outcome, Side, SideResult};

use super::error::{Error, Result};
use super::speakers;
use super::target::{self, TargetProblem};
use super::{Context, FIELD_MANAGER};
use crate::api::{CellInterconnect, InfraEndpoint, SdnKind};
use crate::sdn::{Password, PeerOutcome, RemoveOutcome, SpeakerOutcome};

/// Finalizer that keeps the object until its peers are removed from every managed speaker.
pub const FINALIZER: &str = "cellnet.io/cleanup";
/// `Orphan` releases the object on deletion without touching any speaker.
pub const DELETION_POLICY_ANNOTATION: &str = "cellnet.io/deletion-policy";
/// Any new value forces an immediate reconcile (the watch sees the change).
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "cellnet.io/reconcile-requested-at";

/// Safety-net resync of a healthy object. Drift, speaker loss and restarts arrive through the
/// per-speaker watchers within seconds, so this is rare on purpose: in steady state, SDN reads
/// then grow with the number of speakers (one poll each per resync interval), not of objects.
const HEALTHY_RESYNC: Duration = Duration::from_secs(3600);
/// Re-check of a session that is coming up (speaker events usually arrive sooner).
const SESSION_RECHECK: Duration = Duration::from_secs(10);

fn key(cic: &CellInterconnect) -> String {
    format!(
        "CellInterconnect/{}/{}",
        cic.namespace().unwrap_or_default(),
        cic.name_any()
    )
}

pub async fn reconcile(cic: Arc<CellInterconnect>, ctx: Arc<Context>) -> Result<Action> {
    let ns = cic.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<CellInterconnect> = Api::namespaced(ctx.client.clone(), &ns);
    let _timer = ctx.metrics.reconcile_timer("CellInterconnect");
    finalizer(&api, FINALIZER, cic, |event| async {
        match event {
            FinalizerEvent::Apply(cic) => apply(&cic, &ctx).await,
            FinalizerEvent::Cleanup(cic) => cleanup(&cic, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(cic: Arc<CellInterconnect>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoffs.next_delay(&key(&cic));
    warn!(interconnect = %key(&cic), error = %err, retry_in = ?delay, "reconcile failed");
    ctx.metrics.reconcile_error("CellInterconnect", err.reason());
    Action::requeue(delay)
}

fn endpoint(ctx: &Context, ns: &str, name: &str) -> Option<Arc<InfraEndpoint>> {
    ctx.endpoints.get(&ObjectRef::new(name).within(ns))
}

/// Looks up both endpoints and the password; `Err(outcome)` says what is missing.
async fn resolve(
    cic: &CellInterconnect,
    ctx: &Context,
) -> Result<std::result::Result<(Arc<InfraEndpoint>, Arc<InfraEndpoint>, Option<(Password, String)>), Outcome>>
{
    let ns = cic.namespace().unwrap_or_default();
    let (local_name, remote_name) = (&cic.spec.local_endpoint.name, &cic.spec.remote_endpoint.name);
    let local = endpoint(ctx, &ns, local_name);
    let remote = endpoint(ctx, &ns, remote_name);
    let cells = (
        local.as_ref().map(|e| e.spec.cell.clone()),
        remote.as_ref().map(|e| e.spec.cell.clone()),
    );
    let unresolved = |reason, message: String| {
        Ok(Err(Outcome::Unresolved {
            reason,
            message,
            local_cell: cells.0.clone(),
            remote_cell: cells.1.clone(),
        }))
    };
    let missing: Vec<String> = [(local_name, &local), (remote_name, &remote)]
        .iter()
        .filter(|(_, e)| e.is_none())
        .map(|(n, _)| format!("InfraEndpoint {ns}/{n} not found"))
        .collect();
    let (Some(local), Some(remote)) = (local, remote) else {
        return unresolved("EndpointNotFound", missing.join("; "));
    };
    if !local.spec.is_managed() {
        return unresolved(
            "EndpointNotManaged",
            format!(
                "local endpoint {ns}/{local_name} (cell {}) has no spec.sdn; the local side must be SDN-managed",
                local.spec.cell
            ),
        );
    }
    let password = match &cic.spec.bgp.password_secret_ref {
        None => None,
        Some(r) => match target::read_secret_key(ctx, &ns, &r.name, &r.key).await? {
            Ok((value, version)) => Some((Password::new(value), version)),
            Err(problem) => {
                let TargetProblem::SecretNotFound(msg) = problem else {
                    unreachable!()
                };
                return unresolved("SecretNotFound", format!("spec.bgp.passwordSecretRef: {msg}"));
            }
        },
    };
    Ok(Ok((local, remote, password)))
}

async fn apply(cic: &CellInterconnect, ctx: &Context) -> Result<Action> {
    let ns = cic.namespace().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    if cic.spec.suspend {
        write_status(cic, ctx, &Outcome::Suspended, &now).await?;
        return Ok(Action::await_change());
    }
    let (local, remote, password) = match resolve(cic, ctx).await? {
        Ok(resolved) => resolved,
        Err(outcome) => {
            write_status(cic, ctx, &outcome, &now).await?;
            // Watches on endpoints and Secrets bring it back when the reference appears.
            return Ok(Action::requeue(HEALTHY_RESYNC));
        }
    };
    let owner = owner_marker(&ns, &cic.name_any());
    let pw = password.as_ref().map(|(p, _)| p);
    let local_side = configure_side(cic, ctx, &owner, &local, &remote, pw).await?;
    let remote_side = if remote.spec.is_managed() {
        configure_side(cic, ctx, &owner, &remote, &local, pw).await?
    } else {
        Side {
            cell: remote.spec.cell.clone(),
            sdn: SdnKind::External,
            peer_address: local.spec.address.clone(),
            result: SideResult::External,
        }
    };
    let transient = [&local_side, &remote_side]
        .iter()
        .any(|s| matches!(&s.result, SideResult::Failed { stalled: false, .. }));
    let established = [&local_side, &remote_side].iter().all(|s| {
        matches!(
            &s.result,
            SideResult::External
                | SideResult::Configured {
                    session: crate::sdn::SessionState::Established,
                    ..
                }
                | SideResult::Configured { admin_down: true, .. }
        )
    });
    let old = cic.status.as_ref();
    for (side, before, other) in [
        (&local_side, old.and_then(|s| s.local.as_ref()), &remote_side),
        (&remote_side, old.and_then(|s| s.remote.as_ref()), &local_side),
    ] {
        session_events(cic, ctx, side, before, other).await;
        if let SideResult::Configured { session, .. } = &side.result {
            ctx.metrics
                .set_session(&side.cell, &side.peer_address, session.as_str());
        }
    }
    let outcome = Outcome::Sides {
        local: local_side,
        remote: remote_side,
        password_version: password.map(|(_, v)| v),
    };
    write_status(cic, ctx, &outcome, &now).await?;
    Ok(if transient {
        Action::requeue(ctx.backoffs.next_delay(&key(cic)))
    } else {
        ctx.backoffs.reset(&key(cic));
        if established {
            Action::requeue(HEALTHY_RESYNC)
        } else {
            Action::requeue(SESSION_RECHECK)
        }
    })
}

/// Configures the peer towards `other` on `this` endpoint's speaker and reads its session.
async fn configure_side(
    cic: &CellInterconnect,
    ctx: &Context,
    owner: &str,
    this: &InfraEndpoint,
    other: &InfraEndpoint,
    password: Option<&Password>,
) -> Result<Side> {
    let cell = this.spec.cell.clone();
    let mut side = Side {
        cell: cell.clone(),
        sdn: SdnKind::from(this.spec.sdn.as_ref()),
        peer_address: other.spec.address.clone(),
        result: SideResult::External,
    };
    let failed = |reason, message: String, stalled| SideResult::Failed {
        reason,
        message,
        stalled,
    };
    let target = match target::resolve_target(ctx, this).await? {
        Ok(t) => t,
        Err(p) => {
            let msg = match &p {
                TargetProblem::SecretNotFound(m) | TargetProblem::Invalid(m) => m.clone(),
                TargetProblem::NotManaged => "not SDN-managed".into(),
            };
            side.result = failed(p.reason(), msg, true);
            return Ok(side);
        }
    };
    let speaker_cfg = match target::speaker_config(this) {
        Ok(c) => c,
        Err(p) => {
            side.result = failed(p.reason(), format!("{p:?}"), true);
            return Ok(side);
        }
    };
    let mut desired = match desired::peer_config(cic, owner, this, other, password) {
        Ok(d) => d,
        Err(msg) => {
            side.result = failed("InvalidEndpoint", msg, true);
            return Ok(side);
        }
    };
    let sdn_failed = |e: crate::sdn::SdnError| {
        let stalled = !e.is_transient();
        failed(e.category(), e.to_string(), stalled)
    };
    let backend = match ctx.speakers.backend(&target) {
        Ok(b) => b,
        Err(e) => {
            side.result = sdn_failed(e);
            return Ok(side);
        }
    };
    let timer = ctx.metrics.sdn_timer(&target, "ensure_speaker");
    let speaker = backend.ensure_speaker(&speaker_cfg).await;
    drop(timer);
    match speaker {
        Err(e) => {
            side.result = sdn_failed(e);
            return Ok(side);
        }
        Ok(SpeakerOutcome::Conflict { reason }) => {
            side.result = failed("SpeakerConflict", reason, true);
            return Ok(side);
        }
        Ok(SpeakerOutcome::Started) => {
            let note = format!(
                "cell {cell}: started BGP on speaker {} (AS {}, router id {})",
                target.url, speaker_cfg.asn, speaker_cfg.router_id
            );
            ctx.publish(cic, EventType::Normal, "SpeakerStarted", "StartSpeaker", note)
                .await;
        }
        Ok(SpeakerOutcome::Unchanged) => {}
    }
    let speaker = speakers::speaker_key(target.kind, &target.url);
    let neighbor = desired.neighbor.to_string();
    if backend.needs_ownership_record() {
        if !ownership::is_recorded(cic, &speaker, &neighbor) {
            // No record: an existing neighbour is someone else's. Look before recording.
            match backend.list_peers().await {
                Err(e) => {
                    side.result = sdn_failed(e);
                    return Ok(side);
                }
                Ok(peers) if peers.iter().any(|p| p.neighbor == desired.neighbor) => {
                    side.result = failed(
                        "PeerConflict",
                        format!(
                            "speaker already has a neighbour {neighbor} that cellnet did not create; left untouched"
                        ),
                        true,
                    );
                    return Ok(side);
                }
                Ok(_) => ownership::record(ctx, cic, &speaker, &neighbor).await?,
            }
        }
        desired.owned_record = true;
    }
    let timer = ctx.metrics.sdn_timer(&target, "ensure_peer");
    let result = backend.ensure_peer(&desired).await;
    drop(timer);
    match result {
        Err(e) => {
            side.result = sdn_failed(e);
            return Ok(side);
        }
        Ok(PeerOutcome::Conflict { owner: found }) => {
            // A create that lost a race: the record written before it must not claim the
            // neighbour that won.
            if backend.needs_ownership_record() {
                ownership::forget(ctx, cic, &speaker, &neighbor).await?;
            }
            let by = found
                .map(|o| format!("owned by {o:?}"))
                .unwrap_or_else(|| "not created by cellnet".into());
            side.result = failed(
                "PeerConflict",
                format!(
                    "speaker already has a peer {} {by}; cellnet leaves it untouched",
                    desired.neighbor
                ),
                true,
            );
            return Ok(side);
        }
        Ok(ref outcome @ (PeerOutcome::Created | PeerOutcome::Updated { .. }))
            if repairs_drift(cic, this, outcome) =>
        {
            ctx.metrics.drift_repair(&cell);
            let note = format!(
                "cell {cell}: peer {} on speaker {} was missing or changed behind cellnet's back; repaired",
                desired.neighbor, target.url
            );
            info!(interconnect = %key(cic), %note);
            ctx.metrics.sdn_write("repair_peer");
            ctx.publish(cic, EventType::Warning, "DriftRepaired", "ConfigurePeer", note)
                .await;
        }
        Ok(PeerOutcome::Created) => {
            let note = format!(
                "cell {cell}: created BGP peer {} (AS {}) on speaker {}",
                desired.neighbor, desired.peer_asn, target.url
            );
            info!(interconnect = %key(cic), %note);
            ctx.metrics.sdn_write("create_peer");
            ctx.publish(cic, EventType::Normal, "PeerCreated", "ConfigurePeer", note)
                .await;
        }
        Ok(PeerOutcome::Updated { fields }) => {
            let note = format!(
                "cell {cell}: updated BGP peer {} on speaker {} ({})",
                desired.neighbor,
                target.url,
                fields.join(", ")
            );
            info!(interconnect = %key(cic), %note);
            ctx.metrics.sdn_write("update_peer");
            ctx.publish(cic, EventType::Normal, "PeerUpdated", "ConfigurePeer", note)
                .await;
        }
        Ok(PeerOutcome::Unchanged) => {}
    }
    // A peer whose neighbour address changed leaves the old one behind: remove it (ours only).
    let recorded = if this.spec.address == other.spec.address {
        None
    } else {
        recorded_peer(cic, this)
    };
    if let Some(old) = recorded.filter(|a| *a != neighbor)
        && let Ok(addr) = old.parse()
        && (!backend.needs_ownership_record() || ownership::is_recorded(cic, &speaker, &old))
        && let Ok(RemoveOutcome::Removed) = backend.remove_peer(addr, owner).await
    {
        ownership::forget(ctx, cic, &speaker, &old).await?;
        let note = format!(
            "cell {cell}: removed stale BGP peer {old} on speaker {}",
            target.url
        );
        ctx.publish(cic, EventType::Normal, "PeerRemoved", "ConfigurePeer", note)
            .await;
    }
    let timer = ctx.metrics.sdn_timer(&target, "list_peers");
    let peers = backend.list_peers().await;
    drop(timer);
    side.result = match peers {
        Err(e) => sdn_failed(e),
        Ok(peers) => match peers.into_iter().find(|p| p.neighbor == desired.neighbor) {
            Some(p) => SideResult::Configured {
                session: p.session,
                admin_down: p.admin_down,
                last_error: p.last_error,
            },
            None => failed(
                "SdnRejected",
                "the peer vanished right after it was configured".into(),
                false,
            ),
        },
    };
    Ok(side)
}

/// Events for what changed on one side since the last status: a session that came up or went
/// down, a speaker that became unreachable. So `kubectl describe` tells the story of a link.
async fn session_events(
    cic: &CellInterconnect,
    ctx: &Context,
    side: &Side,
    before: Option<&crate::api::SideStatus>,
    other: &Side,
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
                let note = format!("{link}: BGP session Established");
                ctx.publish(
                    cic,
                    EventType::Normal,
                    "SessionEstablished",
                    "ObserveSession",
                    note,
                )
                .await;
            } else if was == Api::Established && now != Api::Established && !admin_down {
                let note = format!("{link}: BGP session went down (now {now:?})");
                ctx.publish(cic, EventType::Warning, "SessionDown", "ObserveSession", note)
                    .await;
            }
        }
        // Once per outage: only when the side had no failure before (status keeps the message).
        SideResult::Failed { reason, message, .. }
            if *reason == "SdnUnreachable" && before.is_none_or(|b| b.message.is_none()) =>
        {
            let note = format!("{link}: {message}");
            ctx.publish(cic, EventType::Warning, "SdnUnreachable", "ObserveSession", note)
                .await;
        }
        _ => {}
    }
}

/// Whether a write on `this` side repairs drift: the spec did not change since the status that
/// says the peer was configured, so the speaker must have lost or changed it.
fn repairs_drift(cic: &CellInterconnect, this: &InfraEndpoint, outcome: &PeerOutcome) -> bool {
    // A new password alone is a Secret rotation, not drift.
    if matches!(outcome, PeerOutcome::Updated { fields } if fields.as_slice() == ["password"]) {
        return false;
    }
    let Some(status) = cic.status.as_ref() else {
        return false;
    };
    let side = if cic.spec.local_endpoint.name == this.name_any() {
        &status.local
    } else {
        &status.remote
    };
    status.observed_generation == cic.meta().generation && side.as_ref().is_some_and(|s| s.configured)
}

/// The neighbour address status says this side had configured (for removing stale peers).
fn recorded_peer(cic: &CellInterconnect, this: &InfraEndpoint) -> Option<String> {
    let status = cic.status.as_ref()?;
    let side = if Some(&this.spec.cell) == status.local_cell.as_ref()
        && cic.spec.local_endpoint.name == this.name_any()
    {
        status.local.as_ref()
    } else {
        status.remote.as_ref()
    };
    side?.peer_address.clone()
}

async fn write_status(cic: &CellInterconnect, ctx: &Context, outcome: &Outcome, now: &Time) -> Result<()> {
    let mut new = status::compute(cic.status.as_ref(), cic.meta().generation, outcome, now);
    if let Some(requested) = cic.annotations().get(RECONCILE_REQUESTED_ANNOTATION) {
        new.last_handled_reconcile_at = Some(requested.clone());
    }
    if cic.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let api: Api<CellInterconnect> =
        Api::namespaced(ctx.client.clone(), &cic.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "cellnet.io/v1alpha1",
        "kind": "CellInterconnect",
        "status": new,
    });
    api.patch_status(
        &cic.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    ctx.metrics.status_write("CellInterconnect");
    Ok(())
}

/// Removes cellnet's peers from every managed speaker; keeps the finalizer while one is unreachable.
async fn cleanup(cic: &CellInterconnect, ctx: &Context) -> Result<Action> {
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
    let local = endpoint(ctx, &ns, &cic.spec.local_endpoint.name);
    let remote = endpoint(ctx, &ns, &cic.spec.remote_endpoint.name);
    let pairs = [(local.clone(), remote.clone()), (remote, local)];
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
                    ctx.publish(cic, EventType::Normal, "PeerRemoved", "DeletePeer", note)
                        .await;
                }
                Ok(RemoveOutcome::Absent) => {}
                Ok(RemoveOutcome::NotOwned) => {
                    let note = format!("cell {cell}: peer {addr} is not cellnet's; left untouched");
                    ctx.publish(cic, EventType::Warning, "PeerNotOwned", "DeletePeer", note)
                        .await;
                }
                Err(source) => {
                    let note = format!(
                        "cell {cell}: cannot remove peer {addr} ({source}); the finalizer stays and cellnet retries \
                         (annotate {DELETION_POLICY_ANNOTATION}=Orphan to release it without cleanup)"
                    );
                    let now = Time(k8s_openapi::jiff::Timestamp::now());
                    let outcome = Outcome::CleanupBlocked {
                        reason: source.category(),
                        message: note.clone(),
                    };
                    write_status(cic, ctx, &outcome, &now).await?;
                    ctx.publish(cic, EventType::Warning, "CleanupBlocked", "DeletePeer", note)
                        .await;
                    return Err(Error::Sdn { cell, source });
                }
            }
        }
    }
    ctx.backoffs.reset(&key(cic));
    Ok(Action::await_change())
}
