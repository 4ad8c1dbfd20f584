//! Step 5 (Kubernetes writes): status when it changed, the Events of the report, its metrics.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use tracing::info;

use super::super::{Context, FIELD_MANAGER, error::Result, status_write};
use super::RECONCILE_REQUESTED_ANNOTATION;
use super::report::{Notes, Report, Tally};
use super::status::{self, Outcome};
use crate::api::{
    AdminState, CellInterconnect, CellInterconnectStatus, ConditionType, SdnKind, SessionState, conditions,
};
use crate::metrics::objects::{InterconnectLabels, InterconnectView, SideView, object_label};
use serde_json::json;

/// Sets the interconnect's series (`metrics::objects`) from the status computed from `outcome`,
/// and writes that status unless it equals the current one.
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
    // A deleting interconnect's series went at the start of its cleanup.
    if cic.meta().deletion_timestamp.is_none() {
        let key = object_label(cic);
        ctx.metrics
            .objects
            .set_interconnect(&key, &metrics_view(cic, &key, &new));
    }
    let uid = cic.uid().unwrap_or_default();
    let cached_rv = cic.resource_version();
    if ctx
        .status_memo
        .unchanged(&uid, cached_rv.as_deref(), cic.status.as_ref(), &new)
    {
        return Ok(());
    }
    let api: Api<CellInterconnect> =
        Api::namespaced(ctx.client.clone(), &cic.namespace().unwrap_or_default());
    let written = match cic.status.as_ref() {
        // Field by field, ownedPeers left out: a cache behind our last ledger write must not
        // erase it (only `Ledger::store` writes it).
        Some(old) => {
            let patch = keep_ledger_patch(old, &new).map_err(kube::Error::SerdeError)?;
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            api.patch_status(&cic.name_any(), &params, &Patch::<()>::Json(patch))
                .await?
        }
        None => status_write::replace_status(&api, &cic.name_any(), &new).await?,
    };
    ctx.status_memo
        .wrote(&uid, written.resource_version().as_deref(), &new);
    ctx.metrics.status_write("CellInterconnect");
    Ok(())
}

/// The per-interconnect series `new` gives (`metrics::objects`); external sides have none.
fn metrics_view(cic: &CellInterconnect, key: &str, new: &CellInterconnectStatus) -> InterconnectView {
    let cell = |c: &Option<String>| c.clone().unwrap_or_default();
    let paused = cic.spec.suspend || cic.spec.admin_state == AdminState::Disabled;
    let sides = [
        ("local", &new.local, &new.local_cell, &new.remote_cell),
        ("remote", &new.remote, &new.remote_cell, &new.local_cell),
    ];
    InterconnectView {
        labels: InterconnectLabels {
            interconnect: key.into(),
            local_cell: cell(&new.local_cell),
            remote_cell: cell(&new.remote_cell),
            paused: paused.to_string(),
        },
        ready: conditions::is_true(&new.conditions, ConditionType::Ready),
        sides: sides
            .into_iter()
            .filter_map(|(side, status, this, other)| {
                let s = status
                    .as_ref()
                    .filter(|s| s.sdn.is_some_and(|k| k != SdnKind::External))?;
                Some(SideView {
                    side,
                    cell: cell(this),
                    peer_cell: cell(other),
                    established: s.session_state == SessionState::Established,
                    flaps: s.flaps,
                    routes: s.routes.as_ref().map(|r| (r.accepted, r.missing_count)),
                })
            })
            .collect(),
    }
}

/// A JSON patch that makes every top-level status field but `ownedPeers` what `new` says: each
/// field of `new` set, each one only `old` had removed. (A field `old` had that the API server
/// no longer has means the cache is behind: the patch fails and the reconcile is retried.)
fn keep_ledger_patch(
    old: &CellInterconnectStatus,
    new: &CellInterconnectStatus,
) -> serde_json::Result<json_patch::Patch> {
    const LEDGER: &str = "ownedPeers";
    let (old, new) = (serde_json::to_value(old)?, serde_json::to_value(new)?);
    let empty = serde_json::Map::new();
    let (old, new) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut ops = Vec::new();
    for (field, value) in new.iter().filter(|(f, _)| *f != LEDGER) {
        ops.push(json!({"op": "add", "path": format!("/status/{field}"), "value": value}));
    }
    for field in old.keys().filter(|f| *f != LEDGER && !new.contains_key(*f)) {
        ops.push(json!({"op": "remove", "path": format!("/status/{field}")}));
    }
    serde_json::from_value(json!(ops))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{OwnedPeer, RouteStatus, SideStatus};

    #[test]
    fn the_series_name_both_cells_and_leave_external_sides_out() {
        let mut cic: CellInterconnect = serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "a-b", "namespace": "ns"},
            "spec": {"localEndpoint": {"name": "ep-a"}, "remoteEndpoint": {"name": "ep-b"}, "adminState": "Disabled"},
        }))
        .unwrap();
        let new = CellInterconnectStatus {
            local_cell: Some("a".into()),
            remote_cell: Some("b".into()),
            local: Some(SideStatus {
                sdn: Some(SdnKind::GoBgp),
                session_state: SessionState::Established,
                flaps: 2,
                routes: Some(RouteStatus {
                    accepted: 3,
                    missing_count: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            remote: Some(SideStatus {
                sdn: Some(SdnKind::External),
                ..Default::default()
            }),
            ..Default::default()
        };
        let view = metrics_view(&cic, "ns/a-b", &new);
        assert_eq!(
            (view.labels.local_cell.as_str(), view.labels.remote_cell.as_str()),
            ("a", "b")
        );
        assert_eq!(view.labels.paused, "true", "disabled on purpose");
        assert!(!view.ready);
        assert_eq!(
            view.sides,
            vec![SideView {
                side: "local",
                cell: "a".into(),
                peer_cell: "b".into(),
                established: true,
                flaps: 2,
                routes: Some((3, 1)),
            }]
        );
        cic.spec.admin_state = AdminState::Enabled;
        assert_eq!(metrics_view(&cic, "ns/a-b", &new).labels.paused, "false");
    }

    #[test]
    fn a_status_write_never_touches_the_ledger_even_from_a_cache_behind_it() {
        let owned = vec![OwnedPeer {
            speaker: "OpenDaylight|https://odl".into(),
            neighbor: "10.0.0.2".into(),
        }];
        // The API server has the ledger; the cache the reconcile read from does not yet.
        let mut doc = json!({"status": {"localCell": "a", "lastHandledReconcileAt": "x",
            "ownedPeers": serde_json::to_value(&owned).unwrap()}});
        let cached = CellInterconnectStatus {
            local_cell: Some("a".into()),
            last_handled_reconcile_at: Some("x".into()),
            ..Default::default()
        };
        let new = CellInterconnectStatus {
            local_cell: Some("b".into()),
            ..Default::default()
        };
        json_patch::patch(&mut doc, &keep_ledger_patch(&cached, &new).unwrap()).unwrap();
        let got: CellInterconnectStatus = serde_json::from_value(doc["status"].clone()).unwrap();
        assert_eq!(got.owned_peers, owned, "ledger kept");
        assert_eq!(got.local_cell.as_deref(), Some("b"));
        assert_eq!(
            got.last_handled_reconcile_at, None,
            "what the new status leaves out is gone"
        );
    }
}
