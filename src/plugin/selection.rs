//! Which interconnects a command acts on: one by name, every one touching a cell, or all.
use std::collections::BTreeMap;

use clap::{ArgGroup, Args};
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::{Ctx, crds_missing, explain};
use crate::api::{CellInterconnect, InfraEndpoint};

/// `<interconnect> | --cell C | --all`.
#[derive(Args, Debug, Clone, Default)]
#[command(group(ArgGroup::new("target").required(true).args(["name", "cell", "all"])))]
pub struct Selection {
    /// The CellInterconnect to act on.
    pub name: Option<String>,
    /// Every CellInterconnect with an endpoint in this cell.
    #[arg(long, value_name = "CELL")]
    pub cell: Option<String>,
    /// Every CellInterconnect in the namespace (or in all with -A).
    #[arg(long)]
    pub all: bool,
}

/// Everything the read commands need, listed once.
pub struct Inventory {
    pub interconnects: Vec<CellInterconnect>,
    pub endpoints: Vec<InfraEndpoint>,
    /// (namespace, endpoint name) -> cell.
    cells: BTreeMap<(String, String), String>,
}

impl Inventory {
    pub async fn load(ctx: &Ctx) -> anyhow::Result<Self> {
        let (cics, eps): (Api<CellInterconnect>, Api<InfraEndpoint>) = match &ctx.namespace {
            Some(ns) => (
                Api::namespaced(ctx.client.clone(), ns),
                Api::namespaced(ctx.client.clone(), ns),
            ),
            None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
        };
        let lp = ListParams::default();
        let what = format!("list CellInterconnects in {}", ctx.scope());
        let interconnects = cics.list(&lp).await.map_err(|e| explain(e, &what))?.items;
        let what = format!("list InfraEndpoints in {}", ctx.scope());
        let endpoints = eps.list(&lp).await.map_err(|e| explain(e, &what))?.items;
        Ok(Self::new(interconnects, endpoints))
    }

    /// The inventory of these objects, sorted by namespace and name.
    pub fn new(mut interconnects: Vec<CellInterconnect>, mut endpoints: Vec<InfraEndpoint>) -> Self {
        interconnects.sort_by_key(|c| (c.namespace(), c.name_any()));
        endpoints.sort_by_key(|e| (e.namespace(), e.name_any()));
        let cells = endpoints
            .iter()
            .map(|e| {
                (
                    (e.namespace().unwrap_or_default(), e.name_any()),
                    e.spec.cell.clone(),
                )
            })
            .collect();
        Self {
            interconnects,
            endpoints,
            cells,
        }
    }

    /// The cells of an interconnect's local and remote endpoints (from the endpoints, else status).
    pub fn cells_of(&self, cic: &CellInterconnect) -> (Option<String>, Option<String>) {
        let ns = cic.namespace().unwrap_or_default();
        let status = cic.status.as_ref();
        let local = self
            .cells
            .get(&(ns.clone(), cic.spec.local_endpoint.name.clone()))
            .cloned()
            .or_else(|| status.and_then(|s| s.local_cell.clone()));
        let remote = self
            .cells
            .get(&(ns, cic.spec.remote_endpoint.name.clone()))
            .cloned()
            .or_else(|| status.and_then(|s| s.remote_cell.clone()));
        (local, remote)
    }

    pub fn touches(&self, cic: &CellInterconnect, cell: &str) -> bool {
        let (l, r) = self.cells_of(cic);
        l.as_deref() == Some(cell) || r.as_deref() == Some(cell)
    }
}

/// The interconnects `sel` names; an error when there is none.
pub async fn select(ctx: &Ctx, sel: &Selection) -> anyhow::Result<Vec<CellInterconnect>> {
    if let Some(name) = &sel.name {
        let Some(ns) = &ctx.namespace else {
            anyhow::bail!("a CellInterconnect named on the command line needs a namespace: use -n, not -A");
        };
        return match get_interconnect(ctx, ns, name).await? {
            Some(cic) => Ok(vec![cic]),
            None => anyhow::bail!(
                "CellInterconnect {ns}/{name} not found (list them with `kubectl get cellinterconnects -n {ns}`)"
            ),
        };
    }
    let inv = Inventory::load(ctx).await?;
    let chosen: Vec<CellInterconnect> = match &sel.cell {
        Some(cell) => inv
            .interconnects
            .iter()
            .filter(|c| inv.touches(c, cell))
            .cloned()
            .collect(),
        None => inv.interconnects.clone(),
    };
    if chosen.is_empty() {
        match &sel.cell {
            Some(cell) => anyhow::bail!(
                "no CellInterconnect has an endpoint in cell {cell} in {} (see `kubectl cellnet cells`)",
                ctx.scope()
            ),
            None => anyhow::bail!("no CellInterconnect in {}", ctx.scope()),
        }
    }
    Ok(chosen)
}

/// One CellInterconnect; `None` when it does not exist (an error when the CRDs are missing).
pub async fn get_interconnect(ctx: &Ctx, ns: &str, name: &str) -> anyhow::Result<Option<CellInterconnect>> {
    let api: Api<CellInterconnect> = Api::namespaced(ctx.client.clone(), ns);
    let what = format!("get CellInterconnect {ns}/{name}");
    match api.get(name).await {
        Ok(cic) => Ok(Some(cic)),
        Err(kube::Error::Api(s)) if s.code == 404 && !crds_missing(&s) => Ok(None),
        Err(e) => Err(explain(e, &what)),
    }
}

pub fn qualified(cic: &CellInterconnect) -> String {
    format!("{}/{}", cic.namespace().unwrap_or_default(), cic.name_any())
}
