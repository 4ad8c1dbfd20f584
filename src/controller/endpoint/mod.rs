//! Reconciler of InfraEndpoints, as a pipeline of named steps:
//!
//! 1. [`dereference`] (Kubernetes reads): the CellInterconnects that refer to the endpoint;
//! 2. [`finalizers`] (Kubernetes write): the in-use and Neutron finalizers and the cell label, in
//!    one merge patch (the Neutron cleanup of [`neutron_step::release`] runs first when the
//!    Neutron finalizer is to go);
//! 3. [`speaker`] (SDN I/O): the speaker's global config, started on a bare speaker, never
//!    overwritten; then [`networks_step`]: the endpoint's networks originated on it (withdrawn,
//!    on deletion, before the networks finalizer goes);
//! 4. [`neutron_step`] (Neutron I/O): `spec.neutron` brought about;
//! 5. [`report`] (pure): the new status and when to look again;
//! 6. [`publish`] (Kubernetes writes): Events, then the status (count-only changes spaced out).
//!
//! Failures of SDN calls, Neutron and missing Secrets end up in conditions; only Kubernetes API
//! errors abort a reconcile.
mod dereference;
mod finalizers;
mod networks_step;
mod neutron_step;
mod publish;
mod report;
mod speaker;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::warn;

pub use publish::StatusWrites;

use super::Context;
use super::error::{Error, Result};
use super::neutron_sync::{self, NeutronOutcome};
use super::problem::Problem;
use crate::api::{CellInterconnect, InfraEndpoint, Reason};
use finalizers::Wanted;
use report::{Facts, Next, Phase};

/// Keeps an InfraEndpoint while a CellInterconnect refers to it.
pub const IN_USE_FINALIZER: &str = "cellnet.io/in-use";

/// The periodic check of an endpoint without `spec.neutron` (with it: the Neutron resync).
const RESYNC: Duration = Duration::from_secs(300);

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
    let users = dereference::users(&ctx, &ep, &ns).await?;
    // Neutron's and the networks' finalizers go only once their cleanup is done.
    let released = neutron_step::release(&ctx, &ep).await?;
    let withdrawn = networks_step::release(&ctx, &ep, users).await?;
    let wanted = Wanted::new(&ep, users, released.as_ref(), withdrawn.as_ref());
    let deleting = ep.meta().deletion_timestamp.is_some();
    if finalizers::update(&ctx, &ep, &ns, wanted).await? && deleting && wanted.none() {
        ctx.neutron.forget(&ep);
        ctx.endpoint_writes.forget(&ep.uid().unwrap_or_default());
        ctx.status_memo.forget(&ep.uid().unwrap_or_default());
        let label = crate::metrics::objects::object_label(ep.as_ref());
        ctx.metrics.objects.set_endpoint(&label, &ep.spec.cell, None);
        return Ok(Action::await_change());
    }
    let facts = match withdrawn {
        Some(Err(problem)) => Facts::stopped(
            Phase::CleanupFailed,
            users,
            Problem {
                stalled: false,
                ..problem
            },
            None,
        ),
        _ => facts(&ctx, &ep, users, released).await?,
    };
    let held = publish::publish(&ctx, &ep, &facts).await?;
    let resync = match ep.spec.neutron {
        Some(_) => neutron_sync::resync(&ctx),
        None => RESYNC,
    };
    Ok(requeue(&ctx, &ep, report::next(&facts, held, resync)))
}

/// What the speaker and Neutron steps find, unless the reconcile stops before them: on a failed
/// Neutron cleanup, or on a deletion that waits for the endpoint's interconnects.
async fn facts(
    ctx: &Context,
    ep: &InfraEndpoint,
    users: usize,
    released: Option<NeutronOutcome>,
) -> Result<Facts> {
    if let Some(problem) = released.as_ref().and_then(NeutronOutcome::problem) {
        // Retried with backoff whatever the problem: the finalizer holds the endpoint meanwhile.
        let problem = Problem {
            stalled: false,
            ..problem.clone()
        };
        return Ok(Facts::stopped(Phase::CleanupFailed, users, problem, released));
    }
    if ep.meta().deletion_timestamp.is_some() {
        let message = format!("deletion waits for {users} CellInterconnect(s) that refer to this endpoint");
        let problem = Problem::new(Reason::InUse, message);
        return Ok(Facts::stopped(Phase::InUse, users, problem, None));
    }
    let speaker = speaker::speaker(ctx, ep).await?;
    // Without a running speaker there is nothing to announce on (its verdict says why).
    let networks = match speaker.verdict.is_ready() {
        true => networks_step::announce(ctx, ep).await?,
        false => None,
    };
    // A successful cleanup (spec.neutron removed) clears status.neutron.
    let neutron = neutron_step::configure(ctx, ep).await?.or(released);
    let insecure = insecure_transport(speaker.insecure, neutron.as_ref());
    Ok(Facts {
        phase: Phase::Live,
        users,
        verdict: speaker
            .verdict
            .with_networks(networks.as_ref())
            .with_neutron(neutron.as_ref()),
        sdn_reachable: speaker.reachable,
        neutron,
        speaker_started: speaker.started,
        networks,
        insecure,
    })
}

/// The SDN API's and the cloud's transport risks, in one condition message.
fn insecure_transport(sdn: Option<String>, neutron: Option<&NeutronOutcome>) -> Option<String> {
    let cloud = neutron.and_then(|n| n.insecure.clone());
    match (sdn, cloud) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

fn requeue(ctx: &Context, ep: &InfraEndpoint, next: Next) -> Action {
    match next {
        Next::After(wait) => Action::requeue(wait),
        Next::Backoff => Action::requeue(ctx.backoffs.next_delay(&key(ep))),
        Next::Resync(every) => {
            ctx.backoffs.reset(&key(ep));
            Action::requeue(every)
        }
    }
}

pub fn error_policy(ep: Arc<InfraEndpoint>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoffs.next_delay(&key(ep.as_ref()));
    warn!(endpoint = %key(&ep), error = %err, retry_in = ?delay, "reconcile failed");
    ctx.metrics.reconcile_error("InfraEndpoint", err.reason());
    Action::requeue(delay)
}
