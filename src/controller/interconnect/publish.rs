//! Step 5 (Kubernetes writes): status when it changed, the Events of the report, its metrics.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use tracing::info;

use super::super::{Context, error::Result, status_write};
use super::RECONCILE_REQUESTED_ANNOTATION;
use super::report::{Notes, Report, Tally};
use super::status::{self, Outcome};
use crate::api::CellInterconnect;

/// Writes the status computed from `outcome`, unless it equals the current one.
pub async fn write_status(
    cic: &CellInterconnect,
    ctx: &Context,
    outcome: &Outcome,
    now: &Time,
) -> Result<()> {
    let mut new = status::compute(cic.status.as_ref(), cic.meta().generation, outcome, now);
    if let Some(requested) = cic.annotations().get(RECONCILE_REQUESTED_ANNOTATION) {
        new.last_handled_reconcile_at = Some(requested.clone());
    }
    if cic.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let api: Api<CellInterconnect> =
        Api::namespaced(ctx.client.clone(), &cic.namespace().unwrap_or_default());
    status_write::replace_status(&api, &cic.name_any(), &new).await?;
    ctx.metrics.status_write("CellInterconnect");
    Ok(())
}

/// Queues the Events (one per reason) and logs them.
pub async fn send_events(ctx: &Context, cic: &CellInterconnect, notes: Notes) {
    let key = super::key(cic);
    for note in notes.0 {
        info!(interconnect = %key, reason = %note.reason, note = %note.text);
        ctx.publish(cic, note.type_, note.reason, note.action, note.text)
            .await;
    }
}

/// Counts what the report says happened.
pub fn count(ctx: &Context, tallies: &[Tally]) {
    for tally in tallies {
        match tally {
            Tally::SdnWrite(kind) => ctx.metrics.sdn_write(kind),
            Tally::DriftRepair { cell } => ctx.metrics.drift_repair(cell),
            Tally::Session { cell, peer, state } => ctx.metrics.set_session(cell, peer, state),
            Tally::SessionGone { cell, peer } => ctx.metrics.remove_session(cell, peer),
        }
    }
}

/// Events and metrics of a report.
pub async fn publish(ctx: &Context, cic: &CellInterconnect, report: &Report) {
    count(ctx, &report.tallies);
    send_events(ctx, cic, report.notes.clone()).await;
}
