//! Step 1 (Kubernetes reads): how many CellInterconnects refer to the endpoint.
use kube::api::Api;
use kube::{Resource, ResourceExt};

use super::super::Context;
use super::super::error::Result;
use super::refers_to;
use crate::api::{CellInterconnect, InfraEndpoint};

/// The CellInterconnects that refer to the endpoint: from the cache, or, when it has none, from
/// the API server. The interconnect cache is another watch than the one that woke this
/// reconcile (a new interconnect can be seen here first), and it can still be filling right
/// after a start; a missing in-use finalizer lets an endpoint go while its peers are on the
/// speakers.
///
/// A deleted endpoint always asks the API server: the event of its last interconnect's deletion
/// can arrive before the cache drops that interconnect, and counting it then kept the in-use
/// finalizer with nothing left to trigger another look (seen in tests/production.rs).
pub async fn users(ctx: &Context, ep: &InfraEndpoint, ns: &str) -> Result<usize> {
    let name = ep.name_any();
    let cached = ctx
        .interconnects
        .state()
        .iter()
        .filter(|c| refers_to(c, ns, &name))
        .count();
    if cached > 0 && ep.meta().deletion_timestamp.is_none() {
        return Ok(cached);
    }
    let cics: Api<CellInterconnect> = Api::namespaced(ctx.client.clone(), ns);
    let listed = cics.list(&Default::default()).await?;
    Ok(listed.items.iter().filter(|c| refers_to(c, ns, &name)).count())
}
