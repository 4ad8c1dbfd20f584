//! `kubectl cellnet diagnose`: walks the chain of one interconnect, says where it breaks.
//!
//! [`gather`] reads what the chain is made of (endpoints, Secrets, events), [`steps`] turns what
//! was read into verdicts with their evidence (pure), [`networks`] adds the networks announced and
//! the routes exchanged (pure), [`probe`] adds the optional TCP probes and [`render`] prints the
//! walk.
mod gather;
mod networks;
mod probe;
mod render;
mod steps;

use std::time::Duration;

use clap::Args;

use super::output::Color;
use super::status::ready_of;
use super::{Ctx, EXIT_OK, EXIT_UNHEALTHY};
use kube::ResourceExt as _;

use crate::api::{CellInterconnect, InfraEndpoint};

#[derive(Args, Debug, Clone, Default)]
pub struct DiagnoseArgs {
    /// The CellInterconnect to diagnose; without one, every CellInterconnect that is not Ready
    /// (in the namespace, or in all with -A).
    pub name: Option<String>,
    /// Also open a TCP connection to each endpoint's BGP port from here (round-trip time).
    #[arg(long)]
    pub probe: bool,
    /// Timeout of each --probe connection.
    #[arg(long, default_value = "3s", value_parser = super::parse_duration)]
    pub probe_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Failed,
    Unknown,
}

impl Verdict {
    fn label(self) -> (&'static str, Color) {
        match self {
            Self::Ok => ("OK", Color::Green),
            Self::Failed => ("FAILED", Color::Red),
            Self::Unknown => ("UNKNOWN", Color::Yellow),
        }
    }
}

/// Where a step sits in the stack: a failure lower down explains a failed BGP session above it
/// (a refused BGP port explains an Idle session), so the verdict names the deepest one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// Objects, Secrets, the controller, the speakers' APIs, routes: explained by nothing below.
    #[default]
    Config,
    /// A BGP session.
    Session,
    /// TCP to a BGP port (`--probe`).
    Transport,
}

/// One step of the walk, with its evidence.
#[derive(Debug)]
pub struct Step {
    pub title: String,
    pub verdict: Verdict,
    pub evidence: Vec<String>,
    pub layer: Layer,
}

fn step(title: impl Into<String>, verdict: Verdict, evidence: Vec<String>) -> Step {
    Step {
        title: title.into(),
        verdict,
        evidence,
        layer: Layer::Config,
    }
}

impl Step {
    fn at(mut self, layer: Layer) -> Self {
        self.layer = layer;
        self
    }
}

/// Each side (`local`, `remote`) with its InfraEndpoint, when it could be read.
type Endpoints = Vec<(&'static str, Option<InfraEndpoint>)>;

pub async fn run(ctx: &Ctx, args: &DiagnoseArgs) -> anyhow::Result<u8> {
    let Some(name) = &args.name else {
        return run_not_ready(ctx, args).await;
    };
    let Some(ns) = ctx.namespace.clone() else {
        anyhow::bail!("diagnose <name> needs one namespace: use -n, not -A");
    };
    let Some(cic) = super::selection::get_interconnect(ctx, &ns, name).await? else {
        anyhow::bail!(
            "CellInterconnect {ns}/{name} not found (list them with `kubectl get cellinterconnects -n {ns}`)"
        );
    };
    Ok(if diagnose(ctx, args, &ns, &cic).await {
        EXIT_OK
    } else {
        EXIT_UNHEALTHY
    })
}

/// Without a name: every interconnect that is not Ready, one walk each.
async fn run_not_ready(ctx: &Ctx, args: &DiagnoseArgs) -> anyhow::Result<u8> {
    let inv = super::selection::Inventory::load(ctx).await?;
    let broken: Vec<&CellInterconnect> = inv
        .interconnects
        .iter()
        .filter(|c| !ready_of(c).is_true())
        .collect();
    if broken.is_empty() {
        println!(
            "Every CellInterconnect in {} is Ready ({} in all); name one to walk its chain anyway.",
            ctx.scope(),
            inv.interconnects.len()
        );
        return Ok(EXIT_OK);
    }
    println!(
        "{} of {} CellInterconnects in {} are not Ready.\n",
        broken.len(),
        inv.interconnects.len(),
        ctx.scope()
    );
    for (i, cic) in broken.iter().enumerate() {
        if i > 0 {
            println!();
        }
        diagnose(ctx, args, &cic.namespace().unwrap_or_default(), cic).await;
    }
    Ok(EXIT_UNHEALTHY)
}

/// Walks one interconnect's chain and prints it; whether every step is ok.
async fn diagnose(ctx: &Ctx, args: &DiagnoseArgs, ns: &str, cic: &CellInterconnect) -> bool {
    let name = &cic.name_any();
    let mut steps = vec![steps::interconnect_exists(ns, cic)];
    let mut endpoints: Endpoints = vec![];
    for (which, ep_name) in steps::sides(cic) {
        let found = gather::endpoint(ctx, ns, ep_name).await;
        let (step, ep) = steps::endpoint_exists(which, ns, ep_name, found);
        steps.push(step);
        endpoints.push((which, ep));
    }
    steps.extend(gather::secret_steps(ctx, ns, cic, &endpoints).await);
    steps.extend(steps::controller_steps(cic));
    let ready = ready_of(cic);
    steps.extend(steps::chain(cic, &endpoints, &ready));
    steps.extend(networks::networks_steps(&endpoints));
    steps.extend(networks::routes_step(cic, &endpoints));
    steps.push(steps::ready_condition(&ready));
    steps.push(steps::recent_events(gather::events(ctx, ns, name).await));
    if args.probe {
        steps.extend(probe::steps(&endpoints, args.probe_timeout).await);
    }
    print!("{}", render::walk(&ctx.style, ns, name, &steps));
    steps.iter().all(|s| s.verdict == Verdict::Ok)
}
