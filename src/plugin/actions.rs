//! The commands that write: resync, suspend/resume, disable/enable.
use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use clap::{ArgAction, ArgGroup, Args};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::selection::{Selection, qualified, select};
use super::status::ready_of;
use super::{Ctx, EXIT_OK, EXIT_UNHEALTHY, explain};
use crate::api::{AdminState, CellInterconnect};
use crate::controller::interconnect::RECONCILE_REQUESTED_ANNOTATION;

/// Field manager of the plugin's patches (shows in managedFields).
pub const FIELD_MANAGER: &str = "kubectl-cellnet";
/// Without `status.lastHandledReconcileAt`, how long a quiet controller counts as "handled".
const QUIET_FALLBACK: Duration = Duration::from_secs(5);

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

#[derive(Args, Debug, Clone, Default)]
pub struct DisableArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Shutdown communication sent to the peer (RFC 8203), at most 255 bytes.
    #[arg(short = 'm', long, value_name = "TEXT", value_parser = admin_message)]
    pub message: Option<String>,
}

/// Longest `--message` (spec.adminMessage; the API rejects more).
pub const MAX_ADMIN_MESSAGE: usize = 255;

fn admin_message(text: &str) -> Result<String, String> {
    if text.len() > MAX_ADMIN_MESSAGE {
        return Err(format!(
            "{} bytes; the shutdown communication holds at most {MAX_ADMIN_MESSAGE} bytes",
            text.len()
        ));
    }
    Ok(text.to_owned())
}

#[derive(Args, Debug, Clone)]
pub struct ResyncArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Wait until the controller has handled the request (`--wait=false` to return at once).
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub wait: bool,
    /// How long to wait for the controller.
    #[arg(long, default_value = "60s", value_parser = super::parse_duration)]
    pub timeout: Duration,
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

pub async fn set_suspend(ctx: &Ctx, args: &TargetArgs, suspend: bool) -> anyhow::Result<u8> {
    let verb = if suspend { "suspended" } else { "resumed" };
    let mut acted = vec![];
    for cic in select(ctx, &args.selection()).await? {
        let generation = cic.metadata.generation.unwrap_or_default();
        if cic.spec.suspend == suspend {
            acted.push((cic.clone(), generation));
            println!(
                "cellinterconnect {}{} already {verb}",
                qualified(&cic),
                describe_cells(&cic)
            );
            continue;
        }
        let generation = patch_spec(ctx, &cic, json!({ "suspend": suspend })).await?;
        println!(
            "cellinterconnect {}{} {verb}",
            qualified(&cic),
            describe_cells(&cic)
        );
        acted.push((cic, generation));
    }
    if args.wait {
        return wait_observed(ctx, acted, args.timeout).await;
    }
    Ok(EXIT_OK)
}

/// `message`: `Some(m)` disables (with an optional message), `None` enables.
/// The message's length is checked when the arguments are parsed.
pub async fn set_admin(ctx: &Ctx, args: &TargetArgs, disable: Option<Option<&str>>) -> anyhow::Result<u8> {
    let mut acted = vec![];
    for cic in select(ctx, &args.selection()).await? {
        let (state, message) = match disable {
            Some(m) => (AdminState::Disabled, m.map(str::to_string)),
            None => (AdminState::Enabled, None),
        };
        if cic.spec.admin_state == state && cic.spec.admin_message == message {
            let verb = if disable.is_some() { "disabled" } else { "enabled" };
            println!(
                "cellinterconnect {}{} already {verb}",
                qualified(&cic),
                describe_cells(&cic)
            );
            acted.push((cic.clone(), cic.metadata.generation.unwrap_or_default()));
            continue;
        }
        let generation =
            patch_spec(ctx, &cic, json!({ "adminState": state, "adminMessage": message })).await?;
        match disable {
            Some(m) => println!(
                "cellinterconnect {}{} disabled: the controller shuts its BGP sessions down{}",
                qualified(&cic),
                describe_cells(&cic),
                m.map(|m| format!(" with message {m:?}")).unwrap_or_default()
            ),
            None => println!(
                "cellinterconnect {}{} enabled: the controller brings its BGP sessions back",
                qualified(&cic),
                describe_cells(&cic)
            ),
        }
        acted.push((cic, generation));
    }
    if args.wait {
        return wait_observed(ctx, acted, args.timeout).await;
    }
    Ok(EXIT_OK)
}

/// Whether the controller has handled the request `value` on `obj`.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// `status.lastHandledReconcileAt` carries the value.
    Yes,
    /// The controller does not report it: status written for this generation after the request,
    /// or quiet for a while.
    Assumed,
    No,
}

pub fn handled(obj: &Value, value: &str, patched_rv: &str, quiet_for: Duration) -> Handled {
    let status = &obj["status"];
    match status.get("lastHandledReconcileAt").and_then(Value::as_str) {
        Some(v) if v == value => return Handled::Yes,
        Some(_) => return Handled::No,
        None => {}
    }
    let generation = obj["metadata"]["generation"].as_i64();
    let observed = status["observedGeneration"].as_i64();
    if generation.is_none() || observed != generation {
        return Handled::No;
    }
    let rv = obj["metadata"]["resourceVersion"].as_str().unwrap_or_default();
    if rv != patched_rv || quiet_for >= QUIET_FALLBACK {
        Handled::Assumed
    } else {
        Handled::No
    }
}

pub async fn resync(ctx: &Ctx, args: &ResyncArgs) -> anyhow::Result<u8> {
    let chosen = select(ctx, &args.selection).await?;
    let value = k8s_openapi::jiff::Timestamp::now().to_string();
    let ar = ApiResource::erase::<CellInterconnect>(&());
    let mut pending: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for cic in &chosen {
        let ns = cic.namespace().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
        let what = format!("annotate CellInterconnect {}", qualified(cic));
        let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_ANNOTATION: value}}});
        let after = api
            .patch(
                &cic.name_any(),
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| explain(e, &what))?;
        println!(
            "cellinterconnect {} resync requested ({RECONCILE_REQUESTED_ANNOTATION}={value})",
            qualified(cic)
        );
        pending.insert(
            qualified(cic),
            (ns, cic.name_any(), after.resource_version().unwrap_or_default()),
        );
    }
    if !args.wait {
        return Ok(EXIT_OK);
    }
    let total = pending.len();
    let began = Instant::now();
    let mut results: Vec<(String, Handled, Duration, Value)> = vec![];
    let mut last_report = Instant::now();
    eprintln!(
        "waiting for the controller to handle {total} request(s) (timeout {:?})",
        args.timeout
    );
    while !pending.is_empty() {
        let mut done = vec![];
        for (key, (ns, name, rv)) in &pending {
            let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
            let what = format!("get CellInterconnect {key}");
            let Some(obj) = api.get_opt(name).await.map_err(|e| explain(e, &what))? else {
                anyhow::bail!("CellInterconnect {key} was deleted while waiting");
            };
            let obj = serde_json::to_value(&obj)?;
            let h = handled(&obj, &value, rv, began.elapsed());
            if h != Handled::No {
                done.push(key.clone());
                results.push((key.clone(), h, began.elapsed(), obj));
            }
        }
        for key in &done {
            pending.remove(key);
            eprintln!(
                "  {}/{total} handled: {key} after {:.1} s",
                total - pending.len(),
                began.elapsed().as_secs_f64()
            );
        }
        if pending.is_empty() {
            break;
        }
        if began.elapsed() >= args.timeout {
            for key in pending.keys() {
                eprintln!(
                    "  not handled in {:?}: {key} (is cellnet-controller running?)",
                    args.timeout
                );
            }
            print_results(&results);
            return Ok(EXIT_UNHEALTHY);
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "  still waiting for {} of {total} after {:.0} s",
                pending.len(),
                began.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        let _ = std::io::stderr().flush();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    print_results(&results);
    Ok(EXIT_OK)
}

fn print_results(results: &[(String, Handled, Duration, Value)]) {
    for (key, h, _, obj) in results {
        let note = if *h == Handled::Assumed {
            " (assumed: the controller does not report status.lastHandledReconcileAt)"
        } else {
            ""
        };
        let summary = match serde_json::from_value::<CellInterconnect>(obj.clone()) {
            Ok(cic) => format!("Ready={}", ready_of(&cic)),
            Err(e) => format!("(cannot read status: {e})"),
        };
        println!("cellinterconnect {key} resynced{note}: {summary}");
    }
}

#[cfg(test)]
mod tests;
