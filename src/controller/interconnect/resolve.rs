//! Step 1 (reads only): the two endpoints from the cache and the password from its Secret.
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::super::Context;
use super::super::error::Result;
use super::super::target::{self, TargetProblem};
use super::status::Outcome;
use crate::api::{CellInterconnect, InfraEndpoint};
use crate::sdn::Password;

pub(super) fn endpoint(ctx: &Context, ns: &str, name: &str) -> Option<Arc<InfraEndpoint>> {
    ctx.endpoints.get(&ObjectRef::new(name).within(ns))
}

/// The endpoint from the cache, or from the API server when the cache does not have it. For
/// deletion: right after a start the cache can still be filling while interconnects already
/// reconcile, and reading "missing" as "nothing to remove" dropped finalizers with the peers
/// still on the speakers (found by tests/faults_restart.rs).
pub(super) async fn endpoint_for_cleanup(
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<Option<Arc<InfraEndpoint>>> {
    if let Some(ep) = endpoint(ctx, ns, name) {
        return Ok(Some(ep));
    }
    let api: kube::Api<InfraEndpoint> = kube::Api::namespaced(ctx.client.clone(), ns);
    Ok(api.get_opt(name).await?.map(Arc::new))
}

/// Looks up both endpoints and the password; `Err(outcome)` says what is missing.
pub(super) async fn resolve(
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
                let msg = match &problem {
                    TargetProblem::SecretNotFound(m) | TargetProblem::Invalid(m) => m.clone(),
                    TargetProblem::NotManaged => format!("{problem:?}"),
                };
                return unresolved(problem.reason(), format!("spec.bgp.passwordSecretRef: {msg}"));
            }
        },
    };
    Ok(Ok((local, remote, password)))
}
