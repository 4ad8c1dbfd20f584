//! Deletion of what cellnet created in Neutron for an endpoint, in reverse order: the BGP peer
//! (and the cell's speaker when it has no other peer), the subnet, the network.
use kube::ResourceExt;
use tracing::{info, warn};

use super::{NeutronOutcome, bgp, cell_of, credentials, plan};
use crate::api::infra_endpoint::{CloudSecretRef, NeutronStatus};
use crate::api::{InfraEndpoint, Reason};
use crate::controller::Context;
use crate::controller::error::Result;
use crate::controller::problem::Problem;
use crate::neutron::{NeutronClient, NeutronError};

/// `cellnet.io/deletion-policy: Orphan` releases the finalizer without touching Neutron.
const DELETION_POLICY: &str = "cellnet.io/deletion-policy";

/// The cloud to clean up in: the spec's while it is there, else the one status remembers
/// (`spec.neutron` removed). `None`: nothing was ever configured.
fn cloud_of(ep: &InfraEndpoint, status: &NeutronStatus) -> Option<(CloudSecretRef, String)> {
    match (&ep.spec.neutron, &status.cloud_secret_ref, &status.cloud) {
        (Some(spec), _, _) => Some((spec.cloud_secret_ref.clone(), spec.cloud.clone())),
        (None, Some(r), Some(c)) => Some((r.clone(), c.clone())),
        _ => None,
    }
}

/// Deletes what cellnet created for this endpoint. `Ok` in the outcome when all is gone (its
/// status is then `None`); otherwise the finalizer stays and the problem says why.
pub async fn cleanup(ep: &InfraEndpoint, ctx: &Context) -> Result<NeutronOutcome> {
    let _cell = ctx.neutron.lock_cell(&ep.spec.cell).await;
    let mut status = ctx.neutron.known_status(ep).unwrap_or_default();
    if ep.annotations().get(DELETION_POLICY).map(String::as_str) == Some("Orphan") {
        return Ok(NeutronOutcome::removed());
    }
    let Some((secret_ref, cloud)) = cloud_of(ep, &status) else {
        return Ok(NeutronOutcome::removed());
    };
    let (client, _) = match credentials::client(ctx, ep, &secret_ref, &cloud).await? {
        Ok(c) => c,
        // The operator does not let cellnet call this cloud (any more): nothing to remove there.
        Err(p) if p.reason == Reason::EndpointNotAllowed => {
            warn!(cell = %ep.spec.cell, endpoint = %ep.name_any(), problem = %p, "Neutron objects, if any, left in place");
            return Ok(NeutronOutcome::removed());
        }
        Err(p) => return Ok(NeutronOutcome::failed(status, p.within(cell_of(ep)))),
    };
    match remove_all(&client, ep, &mut status).await {
        Ok(()) => {
            info!(cell = %ep.spec.cell, endpoint = %ep.name_any(), "removed what cellnet created in Neutron");
            Ok(NeutronOutcome::removed())
        }
        Err(e) => {
            let problem = Problem::from(e).within(cell_of(ep)).within("cleanup");
            Ok(NeutronOutcome::failed(status, problem))
        }
    }
}

/// The BGP objects, the subnet, then every network with our owner tag.
async fn remove_all(
    client: &NeutronClient,
    ep: &InfraEndpoint,
    status: &mut NeutronStatus,
) -> Result<(), NeutronError> {
    let owner = &plan::owner_tag(ep);
    bgp::remove(client, ep, status).await?;
    if let Some(id) = status.subnet_id.clone() {
        if client
            .subnet(&id)
            .await?
            .is_some_and(|s| s.tags.iter().any(|t| t == owner))
        {
            client.delete(&format!("/subnets/{id}")).await?;
        }
        status.subnet_id = None;
    }
    for id in owned_networks(client, owner, status).await? {
        client.delete(&format!("/networks/{id}")).await?;
    }
    Ok(())
}

/// By owner tag, and the one in status when it carries the tag (a create whose status write was
/// lost is found by its tag).
async fn owned_networks(
    client: &NeutronClient,
    owner: &str,
    status: &NeutronStatus,
) -> Result<Vec<String>, NeutronError> {
    let mut nets: Vec<String> = client
        .networks_tagged(owner)
        .await?
        .into_iter()
        .map(|n| n.id)
        .collect();
    if let Some(id) = status.network_id.clone()
        && client
            .network(&id)
            .await?
            .is_some_and(|n| n.tags.iter().any(|t| t == owner))
        && !nets.contains(&id)
    {
        nets.push(id);
    }
    Ok(nets)
}
