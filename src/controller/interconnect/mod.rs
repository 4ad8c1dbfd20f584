//! Reconciler of CellInterconnects: resolve the endpoints and Secret, configure the peer on each
//! managed speaker, read the sessions, write status. Deletion removes cellnet's peers first.
mod cleanup;
mod desired;
mod ownership;
mod resolve;
mod side;
mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

pub use desired::owner_marker;
use status::{Outcome, Side, SideResult};

use super::Context;
use super::error::{Error, Result};
use crate::api::{CellInterconnect, SdnKind};

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
/// Re-check of an object whose endpoints or Secret are missing.
const UNRESOLVED_RECHECK: Duration = Duration::from_secs(10);
/// Re-check of a session that is not up. Its reaching Established arrives sooner as a speaker
/// event; the re-check refreshes the state shown in status (Idle, Active, ...). At 10 s, an
/// outage of 1,000 sessions flapping between Active and Connect cost up to 100 status writes/s.
const SESSION_RECHECK: Duration = Duration::from_secs(30);

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
    // The finalizer goes on before any peer is created, as kube's helper does; but in the same
    // reconcile, instead of ending it and waiting for the watch to bring the object back (which,
    // during a bulk apply, queued every object twice).
    let cic = if cic.meta().deletion_timestamp.is_none() && !cic.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = cic.finalizers().to_vec();
        finalizers.push(FINALIZER.into());
        let patch = json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": cic.resource_version(),
        }});
        let patched = api
            .patch(&cic.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        // Acted on below: its watch event needs no reconcile of its own.
        if let (Some(uid), Some(rv)) = (patched.uid(), patched.resource_version()) {
            ctx.own_writes.record(&uid, &rv);
        }
        Arc::new(patched)
    } else {
        cic
    };
    finalizer(&api, FINALIZER, cic, |event| async {
        match event {
            FinalizerEvent::Apply(cic) => apply(&cic, &ctx).await,
            FinalizerEvent::Cleanup(cic) => cleanup::cleanup(&cic, &ctx).await,
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

async fn apply(cic: &CellInterconnect, ctx: &Context) -> Result<Action> {
    let ns = cic.namespace().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    if cic.spec.suspend {
        write_status(cic, ctx, &Outcome::Suspended, &now).await?;
        return Ok(Action::await_change());
    }
    let (local, remote, password) = match resolve::resolve(cic, ctx).await? {
        Ok(resolved) => resolved,
        Err(outcome) => {
            write_status(cic, ctx, &outcome, &now).await?;
            // Watches on endpoints and Secrets bring it back when the reference appears; the
            // short re-check covers a reconcile that ran before the endpoint cache was filled
            // (seen after a leader change) and costs only cache reads.
            return Ok(Action::requeue(UNRESOLVED_RECHECK));
        }
    };
    let owner = owner_marker(&ns, &cic.name_any());
    let pw = password.as_ref().map(|(p, _)| p);
    let mut notes = side::Notes::default();
    let local_side = side::configure_side(cic, ctx, &owner, &local, &remote, pw, &mut notes).await?;
    let remote_side = if remote.spec.is_managed() {
        side::configure_side(cic, ctx, &owner, &remote, &local, pw, &mut notes).await?
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
        side::session_events(side, before, other, &mut notes);
        if let SideResult::Configured { session, .. } = &side.result {
            ctx.metrics
                .set_session(&side.cell, &side.peer_address, session.as_str());
        }
    }
    notes.publish(ctx, cic).await;
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
    super::status_write::replace_status(&api, &cic.name_any(), &new).await?;
    ctx.metrics.status_write("CellInterconnect");
    Ok(())
}
