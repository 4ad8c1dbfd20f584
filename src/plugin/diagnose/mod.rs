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

use super::document::{Kind, MachineFormat, to_text};
use super::output::Color;
use super::status::ready_of;
use super::{Ctx, EXIT_OK, EXIT_UNHEALTHY};
use crate::api::InfraEndpoint;

#[derive(Args, Debug, Clone, Default)]
pub struct DiagnoseArgs {
    /// The CellInterconnect to diagnose.
    pub name: String,
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

/// One step of the walk, with its evidence.
#[derive(Debug)]
pub struct Step {
    pub title: String,
    pub verdict: Verdict,
    pub evidence: Vec<String>,
}

fn step(title: impl Into<String>, verdict: Verdict, evidence: Vec<String>) -> Step {
    Step {
        title: title.into(),
        verdict,
        evidence,
    }
}

/// Each side (`local`, `remote`) with its InfraEndpoint, when it could be read.
type Endpoints = Vec<(&'static str, Option<InfraEndpoint>)>;

pub async fn run(ctx: &Ctx, args: &DiagnoseArgs) -> anyhow::Result<u8> {
    let Some(ns) = ctx.namespace.clone() else {
        anyhow::bail!("diagnose needs one namespace: use -n, not -A");
    };
    let name = &args.name;
    let Some(cic) = super::selection::get_interconnect(ctx, &ns, name).await? else {
        anyhow::bail!(
            "CellInterconnect {ns}/{name} not found (list them with `kubectl get cellinterconnects -n {ns}`)"
        );
    };
    let mut steps = vec![steps::interconnect_exists(&ns, &cic)];
    let mut endpoints: Endpoints = vec![];
    for (which, ep_name) in steps::sides(&cic) {
        let found = gather::endpoint(ctx, &ns, ep_name).await;
        let (step, ep) = steps::endpoint_exists(which, &ns, ep_name, found);
        steps.push(step);
        endpoints.push((which, ep));
    }
    steps.extend(gather::secret_steps(ctx, &ns, &cic, &endpoints).await);
    steps.extend(steps::controller_steps(&cic));
    let ready = ready_of(&cic);
    steps.extend(steps::chain(&cic, &endpoints, &ready));
    steps.extend(networks::networks_steps(&endpoints));
    steps.extend(networks::routes_step(&cic, &endpoints));
    steps.push(steps::ready_condition(&ready));
    steps.push(steps::recent_events(gather::events(ctx, &ns, name).await));
    if args.probe {
        steps.extend(probe::steps(&endpoints, args.probe_timeout).await);
    }
    match args.output {
        Some(format) => print!(
            "{}",
            to_text(format, Kind::Diagnosis, render::document(&ns, name, &steps))?
        ),
        None => print!("{}", render::walk(&ctx.style, &ns, name, &steps)),
    }
    Ok(if steps.iter().all(|s| s.verdict == Verdict::Ok) {
        EXIT_OK
    } else {
        EXIT_UNHEALTHY
    })
}
