//! Step 1 (Kubernetes reads only): the two endpoints from the cache, the password from its
//! Secret, the SDN target of each managed side (its Secrets read), and the endpoints' network
//! conflicts (from the endpoint cache).
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::super::networks::{self, Conflict};
use super::super::problem::Problem;
use super::super::target::{self, Checked, SecretValue};
use super::super::{Context, error::Result};
use crate::api::{CellInterconnect, InfraEndpoint, Reason};
use crate::sdn::SdnTarget;

/// Everything the plan needs, read from Kubernetes.
pub struct Inputs {
    pub local: Arc<InfraEndpoint>,
    pub remote: Arc<InfraEndpoint>,
    pub password: Option<SecretValue>,
    /// The local speaker's API (the local side is always managed).
    pub local_target: Checked<SdnTarget>,
    /// The remote speaker's API; `None` for an external remote endpoint.
    pub remote_target: Option<Checked<SdnTarget>>,
    /// Each endpoint's networks that overlap another cell's (from the endpoint cache).
    pub local_conflicts: Vec<Conflict>,
    pub remote_conflicts: Vec<Conflict>,
}

/// A reference that cannot be followed; nothing is sent to any speaker.
#[derive(Clone, Debug, PartialEq)]
pub struct Unresolved {
    pub problem: Problem,
    pub local_cell: Option<String>,
    pub remote_cell: Option<String>,
}

pub enum Dereferenced {
    Ready(Box<Inputs>),
    Unresolved(Unresolved),
}

pub fn endpoint(ctx: &Context, ns: &str, name: &str) -> Option<Arc<InfraEndpoint>> {
    ctx.endpoints.get(&ObjectRef::new(name).within(ns))
}

/// The endpoint from the cache, or from the API server when the cache does not have it. For
/// deletion: right after a start the cache can still be filling while interconnects already
/// reconcile, and reading "missing" as "nothing to remove" dropped finalizers with the peers
/// still on the speakers (found by tests/faults_restart.rs).
pub async fn endpoint_for_cleanup(ctx: &Context, ns: &str, name: &str) -> Result<Option<Arc<InfraEndpoint>>> {
    if let Some(ep) = endpoint(ctx, ns, name) {
        return Ok(Some(ep));
    }
    let api: kube::Api<InfraEndpoint> = kube::Api::namespaced(ctx.client.clone(), ns);
    Ok(api.get_opt(name).await?.map(Arc::new))
}

/// Looks up both endpoints, the password and the managed sides' targets.
pub async fn dereference(cic: &CellInterconnect, ctx: &Context) -> Result<Dereferenced> {
    let ns = cic.namespace().unwrap_or_default();
    let (local_name, remote_name) = (&cic.spec.local_endpoint.name, &cic.spec.remote_endpoint.name);
    let local = endpoint(ctx, &ns, local_name);
    let remote = endpoint(ctx, &ns, remote_name);
    let unresolved = |problem| {
        Dereferenced::Unresolved(Unresolved {
            problem,
            local_cell: local.as_ref().map(|e| e.spec.cell.clone()),
            remote_cell: remote.as_ref().map(|e| e.spec.cell.clone()),
        })
    };
    let (Some(l), Some(r)) = (&local, &remote) else {
        let missing: Vec<String> = [(local_name, &local), (remote_name, &remote)]
            .iter()
            .filter(|(_, e)| e.is_none())
            .map(|(n, _)| format!("InfraEndpoint {ns}/{n} not found"))
            .collect();
        return Ok(unresolved(Problem::new(
            Reason::EndpointNotFound,
            missing.join("; "),
        )));
    };
    if !l.spec.is_managed() {
        let message = format!(
            "local endpoint {ns}/{local_name} (cell {}) has no spec.sdn; the local side must be SDN-managed",
            l.spec.cell
        );
        return Ok(unresolved(Problem::new(Reason::EndpointNotManaged, message)));
    }
    let password = match &cic.spec.bgp.password_secret_ref {
        None => None,
        Some(r) => match target::read_secret_key(ctx, &ns, &r.name, &r.key).await? {
            Ok(secret) => Some(secret),
            Err(problem) => return Ok(unresolved(problem.within("spec.bgp.passwordSecretRef"))),
        },
    };
    let local_target = target::resolve_target(ctx, l).await?;
    let remote_target = match r.spec.is_managed() {
        true => Some(target::resolve_target(ctx, r).await?),
        false => None,
    };
    let all = ctx.endpoints.state();
    Ok(Dereferenced::Ready(Box::new(Inputs {
        local_conflicts: networks::conflicts_of(l, &all),
        remote_conflicts: networks::conflicts_of(r, &all),
        local: l.clone(),
        remote: r.clone(),
        password,
        local_target,
        remote_target,
    })))
}
