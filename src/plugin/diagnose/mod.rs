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
mod segments;
mod steps;

use std::time::Duration;

use clap::Args;

use super::document::{Kind, MachineFormat, to_text};
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
    /// Output format: the default walk, `json` or `yaml` (a versioned document; same exit status).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<MachineFormat>,
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
    let steps = walk(ctx, args, &ns, &cic).await;
    match args.output {
        Some(format) => print!(
            "{}",
            to_text(format, Kind::Diagnosis, render::document(&ns, name, &steps))?
        ),
        None => print!("{}", render::walk(&ctx.style, &ns, name, &steps)),
    }
    Ok(if all_ok(&steps) { EXIT_OK } else { EXIT_UNHEALTHY })
}

fn all_ok(steps: &[Step]) -> bool {
    steps.iter().all(|s| s.verdict == Verdict::Ok)
}

/// Without a name: every interconnect that is not Ready, one walk each (with `-o`, one
/// `DiagnosisList` document of their diagnoses).
async fn run_not_ready(ctx: &Ctx, args: &DiagnoseArgs) -> anyhow::Result<u8> {
    let inv = super::selection::Inventory::load(ctx).await?;
    let broken: Vec<&CellInterconnect> = inv
        .interconnects
        .iter()
        .filter(|c| !ready_of(c).is_true())
        .collect();
    if let Some(format) = args.output {
        let mut items = Vec::new();
        for cic in &broken {
            let ns = cic.namespace().unwrap_or_default();
            let steps = walk(ctx, args, &ns, cic).await;
            items.push(render::document(&ns, &cic.name_any(), &steps));
        }
        let body = serde_json::json!({ "items": items });
        print!("{}", to_text(format, Kind::DiagnosisList, body)?);
        return Ok(if broken.is_empty() {
            EXIT_OK
        } else {
            EXIT_UNHEALTHY
        });
    }
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
        let ns = cic.namespace().unwrap_or_default();
        let steps = walk(ctx, args, &ns, cic).await;
        print!("{}", render::walk(&ctx.style, &ns, &cic.name_any(), &steps));
    }
    Ok(EXIT_UNHEALTHY)
}

/// Walks one interconnect's chain: its steps with their verdicts.
async fn walk(ctx: &Ctx, args: &DiagnoseArgs, ns: &str, cic: &CellInterconnect) -> Vec<Step> {
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
    steps.extend(segments::segments_steps(cic));
    steps.push(steps::ready_condition(&ready));
    steps.push(steps::recent_events(gather::events(ctx, ns, name).await));
    if args.probe {
        steps.extend(probe::steps(&endpoints, args.probe_timeout).await);
    }
    steps
}
