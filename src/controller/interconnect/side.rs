//! Step 2 (SDN I/O): one side of an interconnect on its speaker: speaker started, peer ensured
//! (ownership respected), stale peer removed, session read, Events and metrics for what changed.
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tracing::info;

use super::super::Context;
use super::super::error::Result;
use super::super::speakers;
use super::super::target::{self, TargetProblem};
use super::status::{self, Side, SideResult};
use super::{desired, key, ownership};
use crate::api::{CellInterconnect, InfraEndpoint, SdnKind};
use crate::sdn::{Password, PeerOutcome, RemoveOutcome, SpeakerOutcome};

/// The Events of one reconcile, one per reason: both sides' notes go into one Event, which
/// halves the Events a bulk apply sends (a PeerCreated and a SessionEstablished per link, not per
/// side).
#[derive(Default)]
pub(super) struct Notes(Vec<(EventType, &'static str, &'static str, String)>);

impl Notes {
    pub(super) fn add(&mut self, type_: EventType, reason: &'static str, action: &'static str, note: String) {
        match self.0.iter_mut().find(|(_, r, _, _)| *r == reason) {
            Some((_, _, _, text)) => {
                text.push_str("; ");
                text.push_str(&note);
            }
            None => self.0.push((type_, reason, action, note)),
        }
    }

    pub(super) async fn publish(self, ctx: &Context, cic: &CellInterconnect) {
        for (type_, reason, action, note) in self.0 {
            ctx.publish(cic, type_, reason, action, note).await;
        }
    }
}

/// Configures the peer towards `other` on `this` endpoint's speaker and reads its session.
pub(super) async fn configure_side(
    cic: &CellInterconnect,
    ctx: &Context,
    owner: &str,
    this: &InfraEndpoint,
    other: &InfraEndpoint,
    password: Option<&Password>,
    notes: &mut Notes,
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
        failed(e.category().as_str(), e.to_string(), stalled)
    };
    let backend = match ctx.speakers.backend(&target) {
        Ok(b) => b,
        Err(e) => {
            side.result = sdn_failed(e);
            return Ok(side);
        }
    };
    let speaker = speakers::speaker_key(target.kind, &target.url);
    let started = if ctx.speakers.known_started(&speaker, &speaker_cfg) {
        Ok(SpeakerOutcome::Unchanged)
    } else {
        let _timer = ctx.metrics.sdn_timer(&target, "ensure_speaker");
        backend.ensure_speaker(&speaker_cfg).await
    };
    match started {
        Err(e) => {
            side.result = sdn_failed(e);
            return Ok(side);
        }
        Ok(SpeakerOutcome::Conflict { reason }) => {
            side.result = failed("SpeakerConflict", reason, true);
            return Ok(side);
        }
        Ok(SpeakerOutcome::Started) => {
            ctx.speakers.mark_started(&speaker, &speaker_cfg);
            let note = format!(
                "cell {cell}: started BGP on speaker {} (AS {}, router id {})",
                target.url, speaker_cfg.asn, speaker_cfg.router_id
            );
            notes.add(EventType::Normal, "SpeakerStarted", "StartSpeaker", note);
        }
        Ok(SpeakerOutcome::Unchanged) => ctx.speakers.mark_started(&speaker, &speaker_cfg),
    }
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
    let result = backend.ensure_peer_observed(&desired).await;
    drop(timer);
    let (result, seen) = match result {
        Ok((outcome, seen)) => (Ok(outcome), seen),
        Err(e) => (Err(e), None),
    };
    let just_created = matches!(result, Ok(PeerOutcome::Created));
    match result {
        Err(e) => {
            // Perhaps restarted bare since we last looked: ask again next time.
            ctx.speakers.forget_started(&speaker);
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
            notes.add(EventType::Warning, "DriftRepaired", "ConfigurePeer", note);
        }
        Ok(PeerOutcome::Created) => {
            let note = format!(
                "cell {cell}: created BGP peer {} (AS {}) on speaker {}",
                desired.neighbor, desired.peer_asn, target.url
            );
            info!(interconnect = %key(cic), %note);
            ctx.metrics.sdn_write("create_peer");
            notes.add(EventType::Normal, "PeerCreated", "ConfigurePeer", note);
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
            notes.add(EventType::Normal, "PeerUpdated", "ConfigurePeer", note);
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
        notes.add(EventType::Normal, "PeerRemoved", "ConfigurePeer", note);
    }
    if just_created {
        // No session yet on a peer made a moment ago: reading it back cost a call per side during
        // bulk applies. Its first move to Established arrives as a speaker event.
        side.result = SideResult::Configured {
            session: crate::sdn::SessionState::Idle,
            admin_down: desired.admin_down,
            last_error: None,
        };
        return Ok(side);
    }
    let observed = match seen {
        Some(p) => Ok(Some(p)),
        None => {
            let _timer = ctx.metrics.sdn_timer(&target, "observe_peer");
            backend.observe_peer(desired.neighbor).await
        }
    };
    side.result = match observed {
        Err(e) => sdn_failed(e),
        Ok(observed) => match observed {
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
pub(super) fn session_events(
    side: &Side,
    before: Option<&crate::api::SideStatus>,
    other: &Side,
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
                let note = format!("{link}: BGP session Established");
                notes.add(EventType::Normal, "SessionEstablished", "ObserveSession", note);
            } else if was == Api::Established && now != Api::Established && !admin_down {
                let note = format!("{link}: BGP session went down (now {now:?})");
                notes.add(EventType::Warning, "SessionDown", "ObserveSession", note);
            }
        }
        // Once per outage: only when the side had no failure before (status keeps the message).
        SideResult::Failed { reason, message, .. }
            if matches!(*reason, "SdnUnreachable" | "SdnTlsFailed")
                && before.is_none_or(|b| b.message.is_none()) =>
        {
            let note = format!("{link}: {message}");
            notes.add(EventType::Warning, reason, "ObserveSession", note);
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
pub(super) fn recorded_peer(cic: &CellInterconnect, this: &InfraEndpoint) -> Option<String> {
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
