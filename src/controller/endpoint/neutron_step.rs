//! Step 4 (Neutron I/O, [`neutron_sync`]): the cleanup that releases the Neutron finalizer, and
//! the Neutron reconcile of `spec.neutron`.
use kube::ResourceExt;

use super::super::Context;
use super::super::error::Result;
use super::super::neutron_sync::{self, NeutronOutcome};
use crate::api::InfraEndpoint;

/// Runs the Neutron cleanup when the endpoint carries the Neutron finalizer but no longer wants
/// it (`spec.neutron` removed, or the endpoint deleted). `None`: no cleanup was due.
pub async fn release(ctx: &Context, ep: &InfraEndpoint) -> Result<Option<NeutronOutcome>> {
    let has = ep.finalizers().iter().any(|f| f == neutron_sync::FINALIZER);
    if !has || neutron_sync::wants_finalizer(ep) {
        return Ok(None);
    }
    Ok(Some(neutron_sync::cleanup(ep, ctx).await?))
}

/// Brings Neutron to `spec.neutron`; `None` when it is not set.
pub async fn configure(ctx: &Context, ep: &InfraEndpoint) -> Result<Option<NeutronOutcome>> {
    if ep.spec.neutron.is_none() {
        return Ok(None);
    }
    Ok(Some(neutron_sync::reconcile(ep, ctx).await?))
}
