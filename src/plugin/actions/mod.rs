//! The commands that write: resync, suspend/resume, disable/enable.
//!
//! - `resync.rs`: request a reconcile (annotation), wait until the controller reports it handled;
//! - `suspend.rs`: `spec.suspend`;
//! - `admin.rs`: `spec.adminState` and the RFC 8203 shutdown message.
//!
//! Suspend and admin changes patch `spec` and, with `--wait`, wait for the controller to observe
//! the new generation ([`wait_observed`]).
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::selection::{Selection, qualified};
use super::status::ready_of;
use super::{Ctx, EXIT_OK, EXIT_UNHEALTHY, explain};
use crate::api::CellInterconnect;

mod admin;
mod resync;
mod suspend;

pub use admin::{DisableArgs, MAX_ADMIN_MESSAGE, set_admin};
pub use resync::{ResyncArgs, resync};
pub use suspend::set_suspend;

/// Field manager of the plugin's patches (shows in managedFields).
pub const FIELD_MANAGER: &str = "kubectl-cellnet";

/// `<interconnect> | --cell C`.
#[derive(Args, Debug, Clone, Default)]
#[command(group(ArgGroup::new("target").required(true).args(["name", "cell"])))]
pub struct TargetArgs {
    /// The CellInterconnect to act on.
    pub name: Option<String>,
    /// Every CellInterconnect with an endpoint in this cell.
    #[arg(long, value_name = "CELL")]
    pub cell: Option<String>,
    /// Wait until the controller has acted on the change, then print each Ready condition.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s", value_parser = super::parse_duration)]
    pub timeout: Duration,
}

impl TargetArgs {
    fn selection(&self) -> Selection {
        Selection {
            name: self.name.clone(),
            cell: self.cell.clone(),
            all: false,
        }
    }
}

fn describe_cells(cic: &CellInterconnect) -> String {
    match cic
        .status
        .as_ref()
        .map(|s| (s.local_cell.clone(), s.remote_cell.clone()))
    {
        Some((Some(l), Some(r))) => format!(" (cell {l} <-> cell {r})"),
        _ => String::new(),
    }
}

/// Patches `spec`; returns the generation the controller has to observe.
async fn patch_spec(ctx: &Ctx, cic: &CellInterconnect, spec: Value) -> anyhow::Result<i64> {
    let ns = cic.namespace().unwrap_or_default();
    let api: Api<CellInterconnect> = Api::namespaced(ctx.client.clone(), &ns);
    let what = format!("patch CellInterconnect {}", qualified(cic));
    let after = api
        .patch(
            &cic.name_any(),
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .map_err(|e| explain(e, &what))?;
    Ok(after.metadata.generation.unwrap_or_default())
}

/// `--wait`: until each (interconnect, generation) is observed, then prints its Ready condition.
async fn wait_observed(
    ctx: &Ctx,
    mut pending: Vec<(CellInterconnect, i64)>,
    timeout: Duration,
) -> anyhow::Result<u8> {
    let began = Instant::now();
    eprintln!(
        "waiting for the controller to act on {} interconnect(s) (timeout {timeout:?})",
        pending.len()
    );
    loop {
        let mut still = vec![];
        for (cic, generation) in pending {
            let ns = cic.namespace().unwrap_or_default();
            let Some(now) = super::selection::get_interconnect(ctx, &ns, &cic.name_any()).await? else {
                anyhow::bail!("CellInterconnect {} was deleted while waiting", qualified(&cic));
            };
            let observed = now
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if observed >= generation {
                let ready = ready_of(&now);
                println!(
                    "cellinterconnect {} after {:.1} s: Ready={ready}",
                    qualified(&now),
                    began.elapsed().as_secs_f64()
                );
            } else {
                still.push((cic, generation));
            }
        }
        if still.is_empty() {
            return Ok(EXIT_OK);
        }
        if began.elapsed() >= timeout {
            for (cic, generation) in &still {
                eprintln!(
                    "  generation {generation} of {} not observed in {timeout:?} (is cellnet-controller running?)",
                    qualified(cic)
                );
            }
            return Ok(EXIT_UNHEALTHY);
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
