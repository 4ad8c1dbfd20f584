//! Reconciler of InfraEndpoints: the cell label, the in-use finalizer, the speaker's global
//! config (started on a bare speaker, never overwritten), and status.
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use super::Context;
use super::error::{Error, Result};
use super::neutron;
use super::problem::Problem;
use super::speaker_setup::{self, Ask};
use super::target;
use crate::api::conditions::{remove_condition, set_condition, set_progress};
use crate::api::{CELL_LABEL, CellInterconnect, ConditionType, InfraEndpoint, InfraEndpointStatus, SdnKind};
use crate::sdn::SpeakerOutcome;

/// Keeps an InfraEndpoint while a CellInterconnect refers to it.
pub const IN_USE_FINALIZER: &str = "cellnet.io/in-use";

const RESYNC: Duration = Duration::from_secs(300);

/// A status whose only change is the number of interconnects is written at most this often per
/// endpoint. During a bulk apply that number changes with every interconnect added (15 writes
/// per endpoint for 1,000 interconnects over 50 endpoints); the in-use finalizer, which is what
/// guards the endpoint, is still set at once.
const COUNT_ONLY_INTERVAL: Duration = Duration::from_secs(5);

/// When each endpoint's status was last written (by uid), to space out count-only writes.
#[derive(Default)]
pub struct StatusWrites(std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>);

impl StatusWrites {
    /// How long a count-only write of `uid` must still wait (`None`: it may go now).
    fn wait(&self, uid: &str) -> Option<Duration> {
        let last = *self.0.lock().unwrap().get(uid)?;
        COUNT_ONLY_INTERVAL
            .checked_sub(last.elapsed())
            .filter(|d| !d.is_zero())
    }

    fn wrote(&self, uid: &str) {
        self.0
            .lock()
            .unwrap()
            .insert(uid.into(), tokio::time::Instant::now());
    }

    fn forget(&self, uid: &str) {
        self.0.lock().unwrap().remove(uid);
    }
}

/// Whether `new` differs from `old` only in the number of interconnects.
fn count_only_change(old: &InfraEndpointStatus, new: &InfraEndpointStatus) -> bool {
    old.interconnects != new.interconnects
        && *old
            == InfraEndpointStatus {
                interconnects: old.interconnects,
                ..new.clone()
            }
}

fn key(ep: &InfraEndpoint) -> String {
    format!(
        "InfraEndpoint/{}/{}",
        ep.namespace().unwrap_or_default(),
        ep.name_any()
    )
}

/// Whether `cic` refers to the endpoint `name` in `namespace`.
pub fn refers_to(cic: &CellInterconnect, namespace: &str, name: &str) -> bool {
    cic.namespace().as_deref() == Some(namespace)
        && (cic.spec.local_endpoint.name == name || cic.spec.remote_endpoint.name == name)
}

pub async fn reconcile(ep: Arc<InfraEndpoint>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_timer("InfraEndpoint");
    let ns = ep.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = ep.name_any();
    let api: Api<InfraEndpoint> = Api::namespaced(ctx.client.clone(), &ns);
    let mut users = ctx
        .interconnects
        .state()
        .iter()
        .filter(|c| refers_to(c, &ns, &name))
        .count();
    if users == 0 {
        // None in the cache: ask the API server. The interconnect cache is another watch than
        // the one that woke this reconcile (a new interconnect can be seen here first), and it
        // can still be filling right after a start; a missing in-use finalizer lets an endpoint
        // go while its peers are on the speakers.
        let cics: Api<CellInterconnect> = Api::namespaced(ctx.client.clone(), &ns);
        users = cics
            .list(&Default::default())
            .await?
            .items
            .iter()
            .filter(|c| refers_to(c, &ns, &name))
            .count();
    }
    let deleting = ep.meta().deletion_timestamp.is_some();

    // Neutron (spec.neutron) has its own finalizer: released once its cleanup is done.
    let has_neutron_fin = ep.finalizers().iter().any(|f| f == neutron::FINALIZER);
    let mut want_neutron_fin = neutron::wants_finalizer(&ep);
    let mut neutron_outcome = None;
    if has_neutron_fin && !want_neutron_fin {
        let outcome = neutron::cleanup(&ep, &ctx).await?;
        want_neutron_fin = !outcome.ok;
        neutron_outcome = Some(outcome);
    }

    // Label and finalizers in one merge patch, only when something differs.
    let has_finalizer = ep.finalizers().iter().any(|f| f == IN_USE_FINALIZER);
    let want_finalizer = users > 0;
    let label_ok = ep.labels().get(CELL_LABEL) == Some(&ep.spec.cell);
    if has_finalizer != want_finalizer || has_neutron_fin != want_neutron_fin || (!label_ok && !deleting) {
        let mut finalizers: Vec<String> = ep
            .finalizers()
            .iter()
            .filter(|f| *f != IN_USE_FINALIZER && *f != neutron::FINALIZER)
            .cloned()
            .collect();
        if want_finalizer {
            finalizers.push(IN_USE_FINALIZER.into());
        }
        if want_neutron_fin {
            finalizers.push(neutron::FINALIZER.into());
        }
        let mut patch = json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": ep.resource_version(),
        }});
        if !deleting {
            patch["metadata"]["labels"] = json!({ CELL_LABEL: ep.spec.cell });
        }
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        if deleting && !want_finalizer && !want_neutron_fin {
            ctx.neutron.forget(&ep);
            ctx.endpoint_writes.forget(&ep.uid().unwrap_or_default());
            return Ok(Action::await_change());
        }
    }
    if let Some(o) = neutron_outcome.as_ref().filter(|o| !o.ok) {
        let n = Some(o);
        if let Some(wait) =
            write_status(&ep, &ctx, users, None, (false, o.reason, &o.message, false), n).await?
        {
            return Ok(Action::requeue(wait));
        }
        return Ok(Action::requeue(ctx.backoffs.next_delay(&key(&ep))));
    }
    if deleting {
        // Still referenced: say so in status and wait for the interconnects to go.
        let msg = format!("deletion waits for {users} CellInterconnect(s) that refer to this endpoint");
        if let Some(wait) = write_status(&ep, &ctx, users, None, (false, "InUse", &msg, false), None).await? {
            return Ok(Action::requeue(wait));
        }
        return Ok(Action::await_change());
    }

    let mut now_reason: (bool, &str, String, bool);
    let mut reachable = None;
    if ep.spec.is_managed() {
        let outcome = speaker(&ep, &ctx).await?;
        reachable =
            Some(!matches!(&outcome, Err((r, _, _)) if *r == "SdnUnreachable" || *r == "SdnTlsFailed"));
        now_reason = match outcome {
            Ok(msg) => (true, "SpeakerConfigured", msg, false),
            Err((reason, msg, stalled)) => (false, reason, msg, stalled),
        };
    } else {
        now_reason = (
            true,
            "External",
            format!(
                "external endpoint of cell {}: cellnet does not configure it",
                ep.spec.cell
            ),
            false,
        );
    }
    if ep.spec.neutron.is_some() {
        let o = neutron::reconcile(&ep, &ctx).await?;
        if now_reason.0 && !o.ok {
            now_reason = (false, o.reason, o.message.clone(), o.stalled);
        }
        neutron_outcome = Some(o);
    }
    let (ok, reason, msg, stalled) = &now_reason;
    let n = neutron_outcome.as_ref();
    if let Some(wait) = write_status(&ep, &ctx, users, reachable, (*ok, reason, msg, *stalled), n).await? {
        return Ok(Action::requeue(wait));
    }
    if !ok && !stalled {
        return Ok(Action::requeue(ctx.backoffs.next_delay(&key(&ep))));
    }
    ctx.backoffs.reset(&key(&ep));
    if ep.spec.neutron.is_some() {
        return Ok(Action::requeue(neutron::resync(&ctx)));
    }
    Ok(Action::requeue(RESYNC))
}

/// Ensures the speaker's global config. `Err((reason, message, stalled))` when it is not in place.
async fn speaker(
    ep: &InfraEndpoint,
    ctx: &Context,
) -> Result<std::result::Result<String, (&'static str, String, bool)>> {
    let cell = &ep.spec.cell;
    let failed = |p: Problem| {
        Ok(Err((
            p.reason.as_str(),
            format!("cell {cell}: {}", p.message),
            p.stalled,
        )))
    };
    let target = match target::resolve_target(ctx, ep).await? {
        Ok(t) => t,
        Err(p) => return failed(p),
    };
    let config = match target::speaker_config(ep) {
        Ok(c) => c,
        Err(p) => return failed(p),
    };
    let outcome = match speaker_setup::connect(ctx, &target) {
        Ok(speaker) => speaker_setup::ensure(ctx, &target, &speaker, &config, Ask::Always).await,
        Err(e) => Err(e),
    };
    match outcome {
        Err(e) => failed(Problem::from(e)),
        Ok(SpeakerOutcome::Conflict { reason }) => Ok(Err((
            "SpeakerConflict",
            format!(
                "cell {cell}: speaker {} runs with another global config ({reason}); nothing changed",
                target.url
            ),
            true,
        ))),
        Ok(started_or_same) => {
            if started_or_same == SpeakerOutcome::Started {
                let note = format!(
                    "cell {cell}: started BGP on speaker {} (AS {}, router id {}, {}:{})",
                    target.url, config.asn, config.router_id, config.listen_address, config.listen_port
                );
                ctx.publish(ep, EventType::Normal, "SpeakerStarted", "StartSpeaker", note)
                    .await;
            }
            Ok(Ok(format!(
                "cell {cell}: speaker {} runs AS {}",
                target.url, config.asn
            )))
        }
    }
}

/// Writes the status when it changed; `Some(wait)` when a count-only change must wait that long.
async fn write_status(
    ep: &InfraEndpoint,
    ctx: &Context,
    users: usize,
    reachable: Option<bool>,
    (ok, reason, message, stalled): (bool, &str, &str, bool),
    neutron: Option<&neutron::Outcome>,
) -> Result<Option<Duration>> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let generation = ep.meta().generation;
    let mut status: InfraEndpointStatus = ep.status.clone().unwrap_or_default();
    // Our own last Neutron write, when the cache has not shown it yet (never write older ids back).
    status.neutron = ctx.neutron.known_status(ep);
    status.observed_generation = generation;
    status.sdn = Some(SdnKind::from(ep.spec.sdn.as_ref()));
    status.sdn_reachable = reachable;
    status.interconnects = users as u32;
    let conds = &mut status.conditions;
    set_condition(conds, ConditionType::Ready, ok, reason, message, generation, &now);
    if ep.spec.is_managed() {
        set_condition(
            conds,
            ConditionType::SpeakerConfigured,
            ok,
            reason,
            message,
            generation,
            &now,
        );
    } else {
        remove_condition(conds, ConditionType::SpeakerConfigured);
    }
    if let Some(o) = neutron {
        neutron::fold_status(&mut status, o, generation, &now);
    }
    let conds = &mut status.conditions;
    set_progress(conds, stalled, !ok && !stalled, reason, message, generation, &now);
    if ep.status.as_ref() == Some(&status) {
        return Ok(None);
    }
    let uid = ep.uid().unwrap_or_default();
    if ep
        .status
        .as_ref()
        .is_some_and(|old| count_only_change(old, &status))
        && let Some(wait) = ctx.endpoint_writes.wait(&uid)
    {
        return Ok(Some(wait));
    }
    let api: Api<InfraEndpoint> = Api::namespaced(ctx.client.clone(), &ep.namespace().unwrap_or_default());
    super::status_write::replace_status(&api, &ep.name_any(), &status).await?;
    ctx.endpoint_writes.wrote(&uid);
    ctx.metrics.status_write("InfraEndpoint");
    if ep.status.as_ref().and_then(|s| s.neutron.as_ref()) != status.neutron.as_ref() {
        ctx.neutron.remember_write(ep, status.neutron.clone());
    }
    Ok(None)
}

pub fn error_policy(ep: Arc<InfraEndpoint>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoffs.next_delay(&key(&ep));
    warn!(endpoint = %key(&ep), error = %err, retry_in = ?delay, "reconcile failed");
    ctx.metrics.reconcile_error("InfraEndpoint", err.reason());
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_changed_count_is_a_count_only_change() {
        let old = InfraEndpointStatus {
            interconnects: 3,
            sdn_reachable: Some(true),
            ..Default::default()
        };
        let more = InfraEndpointStatus {
            interconnects: 4,
            ..old.clone()
        };
        assert!(count_only_change(&old, &more));
        let unreachable = InfraEndpointStatus {
            sdn_reachable: Some(false),
            ..more.clone()
        };
        assert!(
            !count_only_change(&old, &unreachable),
            "reachability must go at once"
        );
        assert!(!count_only_change(&old, &old.clone()), "no change at all");
    }

    #[test]
    fn a_count_only_write_waits_only_after_a_recent_write() {
        let writes = StatusWrites::default();
        assert_eq!(writes.wait("uid"), None, "never written: may go now");
        writes.wrote("uid");
        let wait = writes.wait("uid").expect("just written: must wait");
        assert!(wait <= COUNT_ONLY_INTERVAL);
        writes.forget("uid");
        assert_eq!(writes.wait("uid"), None);
    }
}
