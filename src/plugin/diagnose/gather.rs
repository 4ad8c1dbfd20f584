//! What the walk reads from the API: the endpoints, the Secrets (to check them, never to print
//! their values) and the interconnect's events. API errors become evidence, not failures.
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams};

use super::super::{Ctx, explain};
use super::{Endpoints, Step, steps};
use crate::api::{CellInterconnect, InfraEndpoint};

/// The InfraEndpoint `ns/name`; `None` when it does not exist.
pub async fn endpoint(ctx: &Ctx, ns: &str, name: &str) -> anyhow::Result<Option<InfraEndpoint>> {
    let eps: Api<InfraEndpoint> = Api::namespaced(ctx.client.clone(), ns);
    eps.get_opt(name).await.map_err(|e| explain(e, "cannot read it"))
}

/// The Secret `ns/name`; `None` when it does not exist.
async fn secret(ctx: &Ctx, ns: &str, name: &str) -> anyhow::Result<Option<Secret>> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    api.get_opt(name).await.map_err(|e| explain(e, "cannot read it"))
}

/// A step per Secret the interconnect uses: its BGP password, then each managed endpoint's SDN
/// credentials and CA.
pub async fn secret_steps(ctx: &Ctx, ns: &str, cic: &CellInterconnect, endpoints: &Endpoints) -> Vec<Step> {
    let mut wanted: Vec<(&str, Option<&str>, String)> = vec![];
    if let Some(r) = &cic.spec.bgp.password_secret_ref {
        wanted.push((&r.name, Some(&r.key), format!("BGP password, key {}", r.key)));
    }
    for (which, ep) in endpoints {
        let Some(sdn) = ep.as_ref().and_then(|e| e.spec.sdn.as_ref()) else {
            continue;
        };
        if let Some(r) = &sdn.credentials_secret_ref {
            wanted.push((&r.name, None, format!("{which} SDN credentials")));
        }
        if let Some(r) = sdn.tls.as_ref().and_then(|t| t.ca_secret_ref.as_ref()) {
            wanted.push((&r.name, None, format!("{which} SDN CA")));
        }
    }
    let mut out = vec![];
    for (name, key, purpose) in wanted {
        let found = secret(ctx, ns, name).await;
        out.push(steps::secret_present(ns, name, key, &purpose, found));
    }
    out
}

/// The interconnect's events, in no particular order.
pub async fn events(ctx: &Ctx, ns: &str, name: &str) -> anyhow::Result<Vec<Event>> {
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind=CellInterconnect,involvedObject.name={name}"
    ));
    match events.list(&lp).await {
        Ok(list) => Ok(list.items),
        Err(e) => Err(explain(e, "cannot list events")),
    }
}
