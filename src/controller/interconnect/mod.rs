//! Reconciler of CellInterconnects, as a pipeline of named steps:
//!
//! 1. [`dereference`] (Kubernetes reads): both endpoints, the password, each managed side's SDN target;
//! 2. [`plan`] (pure): each managed side's speaker config, peer and stale peer;
//! 3. [`apply`] (SDN I/O) in two halves around the [`ledger`] claim (Kubernetes write):
//!    prepare (speaker started, foreign neighbour looked for), execute (peer ensured, session read);
//! 4. [`report`] (pure): side results, Events, metrics, the ledger after; [`unstick`]: a side
//!    stuck for longer than the threshold ([`stuck`], pure) has its own peer reset (SDN I/O);
//!    [`status`] (pure): the new status and when to look again; [`first_report`]: a new link's
//!    first status and Events wait for its sessions (one write and one Event when they come up);
//! 5. [`publish`] (Kubernetes writes): status, Events, metrics.
//!
//! Deletion ([`cleanup`]) removes cellnet's peers first. Failures of SDN calls and missing
//! references end up in conditions; only Kubernetes API errors abort a reconcile.
mod apply;
mod cleanup;
mod dereference;
pub(crate) mod first_report;
pub(crate) mod ledger;
mod plan;
mod publish;
mod report;
mod route_status;
mod routes;
mod segment_status;
mod status;
mod stuck;
mod unstick;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

pub use ledger::OWNED_PEERS_ANNOTATION;
pub use plan::owner_marker;

use super::Context;
use super::error::{Error, Result};
use crate::api::{CellInterconnect, Reason};
use dereference::Dereferenced;
use ledger::Ledger;
use plan::{Side, SidePlan};
use report::Found;
use status::{Next, Outcome};

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
    let cic = with_finalizer(&api, cic, &ctx).await?;
    finalizer(&api, FINALIZER, cic, |event| async {
        match event {
            FinalizerEvent::Apply(cic) => apply(&cic, &ctx).await,
            FinalizerEvent::Cleanup(cic) => cleanup::cleanup(&cic, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// The finalizer goes on before any peer is created, as kube's helper does; but in the same
/// reconcile, instead of ending it and waiting for the watch to bring the object back (which,
/// during a bulk apply, queued every object twice).
async fn with_finalizer(
    api: &Api<CellInterconnect>,
    cic: Arc<CellInterconnect>,
    ctx: &Context,
) -> Result<Arc<CellInterconnect>> {
    if cic.meta().deletion_timestamp.is_some() || cic.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(cic);
    }
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
    Ok(Arc::new(patched))
}

pub fn error_policy(cic: Arc<CellInterconnect>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoffs.next_delay(&key(&cic));
    warn!(interconnect = %key(&cic), error = %err, retry_in = ?delay, "reconcile failed");
    ctx.metrics.reconcile_error("CellInterconnect", err.reason());
    Action::requeue(delay)
}

/// The pipeline for an object that is not being deleted.
async fn apply(cic: &CellInterconnect, ctx: &Context) -> Result<Action> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    if cic.spec.suspend {
        publish::write_status(cic, ctx, &Outcome::Suspended, &now).await?;
        return Ok(Action::await_change());
    }
    let inputs = match dereference::dereference(cic, ctx).await? {
        Dereferenced::Ready(inputs) => *inputs,
        Dereferenced::Unresolved(unresolved) => {
            publish::write_status(cic, ctx, &Outcome::Unresolved(unresolved), &now).await?;
            // Watches on endpoints and Secrets bring it back when the reference appears; the
            // short re-check covers a reconcile that ran before the endpoint cache was filled
            // (seen after a leader change) and costs only cache reads.
            return Ok(Action::requeue(UNRESOLVED_RECHECK));
        }
    };
    let password_version = inputs.password.as_ref().map(|s| s.version.clone());
    let sides = plan::plan(cic, inputs);
    let (found, ledger) = carry_out(ctx, cic, sides).await?;
    // The ledger was written to status by carry_out; the status written below keeps it.
    let cic = &with_ledger(cic, ledger);
    let old = cic.status.as_ref();
    let before = [
        old.and_then(|s| s.local.as_ref()),
        old.and_then(|s| s.remote.as_ref()),
    ];
    let mut report = report::report(&found, before);
    let threshold = stuck::threshold(cic.spec.bgp.hold_time, ctx.session_stuck_minimum);
    let deadline = unstick::unstick(ctx, &found, &mut report, before, threshold, &now).await;
    if let Some(recheck) = hold_first_report(ctx, cic, &mut report) {
        return Ok(Action::requeue(recheck));
    }
    publish::publish(ctx, cic, &report).await;
    let [local, remote]: [status::Side; 2] = report.sides.try_into().expect("two sides");
    let next = status::verdict(&local, &remote).next;
    let outcome = Outcome::Sides {
        local,
        remote,
        password_version,
    };
    publish::write_status(cic, ctx, &outcome, &now).await?;
    Ok(requeue(ctx, cic, next, deadline))
}

/// The first report of a new link waits for its sessions ([`first_report`]): held, only its
/// metrics are counted and the re-check is returned; else `report` gets the held Events before
/// its own, told as one story.
fn hold_first_report(ctx: &Context, cic: &CellInterconnect, report: &mut report::Report) -> Option<Duration> {
    let uid = cic.uid().unwrap_or_default();
    let first = cic.status.as_ref().is_none_or(|s| s.conditions.is_empty());
    let held = ctx.first_reports.take(&uid);
    let notes = std::mem::take(&mut report.notes);
    let bulk = ctx.first_reports.bulk();
    let now = std::time::Instant::now();
    match first_report::decide(first, &report.sides, (held, notes), now, bulk) {
        first_report::Decision::Hold { held, recheck } => {
            publish::count(ctx, &report.tallies);
            ctx.first_reports.hold(&uid, held);
            Some(recheck)
        }
        first_report::Decision::Publish(notes) => {
            report.notes = notes.one_story();
            None
        }
    }
}

/// Prepares both sides, claims in the ledger what they are about to create (one write for
/// both), executes them, and releases what turned out not to be cellnet's.
async fn carry_out(
    ctx: &Context,
    cic: &CellInterconnect,
    sides: [Side<SidePlan>; 2],
) -> Result<([Found; 2], Ledger)> {
    let stored = Ledger::current(ctx, cic).await?;
    if ledger::legacy_annotation(cic) {
        let note = ledger::legacy_annotation_note();
        ctx.publish(cic, EventType::Warning, Reason::PeerNotOwned, "RecordPeer", note)
            .await;
    }
    let mut staged = Vec::with_capacity(2);
    for side in sides {
        staged.push(match side {
            Side::External(id) => Err(Found::External(id)),
            Side::Managed(id, Err(problem)) => Err(Found::Unplanned(id, problem)),
            Side::Managed(id, Ok(plan)) => match apply::prepare(ctx, plan.clone(), &stored).await {
                Ok(prepared) => Ok((id, prepared)),
                Err(facts) => Err(Found::Applied(id, Box::new(plan), facts)),
            },
        });
    }
    let mut claimed = stored.clone();
    for (_, p) in staged.iter().flatten().filter(|(_, p)| p.claim) {
        claimed.claim(&p.plan.speaker, p.plan.peer.neighbor);
    }
    claimed.store(ctx, cic, &stored).await?;
    let mut found = Vec::with_capacity(2);
    for side in staged {
        found.push(match side {
            Err(found) => found,
            Ok((id, prepared)) => {
                let plan = Box::new(prepared.plan.clone());
                Found::Applied(id, plan, apply::execute(ctx, prepared, &claimed).await)
            }
        });
    }
    let found: [Found; 2] = found.try_into().map_err(|_| ()).expect("two sides");
    let after = report::ledger_after(&found, claimed.clone());
    after.store(ctx, cic, &claimed).await?;
    Ok((found, after))
}

/// `cic` with `ledger` as its status' record (what the API server holds after carry_out).
fn with_ledger(cic: &CellInterconnect, ledger: Ledger) -> CellInterconnect {
    let mut cic = cic.clone();
    let entries = ledger.entries();
    if cic.status.is_some() || !entries.is_empty() {
        cic.status.get_or_insert_default().owned_peers = entries;
    }
    cic
}

/// When to reconcile again; `deadline`: a session's next stuck or reset deadline, sooner than
/// the usual re-check when the threshold is short.
fn requeue(ctx: &Context, cic: &CellInterconnect, next: Next, deadline: Option<Duration>) -> Action {
    if next == Next::Backoff {
        return Action::requeue(ctx.backoffs.next_delay(&key(cic)));
    }
    ctx.backoffs.reset(&key(cic));
    Action::requeue(match next {
        Next::Resync => HEALTHY_RESYNC,
        _ => deadline.map_or(SESSION_RECHECK, |d| d.min(SESSION_RECHECK)),
    })
}
