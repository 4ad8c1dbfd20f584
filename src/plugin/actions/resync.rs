//! `resync`: ask the controller to reconcile now (an annotation) and wait until it reports the
//! request handled (`status.lastHandledReconcileAt`, Flux's pattern).
use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use clap::{ArgAction, Args};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::FIELD_MANAGER;
use crate::api::CellInterconnect;
use crate::controller::interconnect::RECONCILE_REQUESTED_ANNOTATION;
use crate::plugin::selection::{Selection, qualified, select};
use crate::plugin::status::ready_of;
use crate::plugin::{Ctx, EXIT_OK, EXIT_UNHEALTHY, explain};

/// Without `status.lastHandledReconcileAt`, how long a quiet controller counts as "handled".
const QUIET_FALLBACK: Duration = Duration::from_secs(5);

#[derive(Args, Debug, Clone)]
pub struct ResyncArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Wait until the controller has handled the request (`--wait=false` to return at once).
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub wait: bool,
    /// How long to wait for the controller.
    #[arg(long, default_value = "60s", value_parser = crate::plugin::parse_duration)]
    pub timeout: Duration,
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

/// A requested resync, by qualified name: namespace, name, and the resourceVersion the
/// annotation patch left.
type Requested = BTreeMap<String, (String, String, String)>;
/// A handled request: qualified name, how, when, and the object as read then.
type Resynced = (String, Handled, Duration, Value);

pub async fn resync(ctx: &Ctx, args: &ResyncArgs) -> anyhow::Result<u8> {
    let chosen = select(ctx, &args.selection).await?;
    let value = k8s_openapi::jiff::Timestamp::now().to_string();
    let pending = request(ctx, &chosen, &value).await?;
    if !args.wait {
        return Ok(EXIT_OK);
    }
    wait_handled(ctx, pending, &value, args.timeout).await
}

/// Annotates each interconnect with the request `value`.
async fn request(ctx: &Ctx, chosen: &[CellInterconnect], value: &str) -> anyhow::Result<Requested> {
    let ar = ApiResource::erase::<CellInterconnect>(&());
    let mut pending = Requested::new();
    for cic in chosen {
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
    Ok(pending)
}

/// Polls until every request is handled (then prints the results) or `timeout` passes.
async fn wait_handled(
    ctx: &Ctx,
    mut pending: Requested,
    value: &str,
    timeout: Duration,
) -> anyhow::Result<u8> {
    let total = pending.len();
    let began = Instant::now();
    let mut results: Vec<Resynced> = vec![];
    let mut last_report = Instant::now();
    eprintln!("waiting for the controller to handle {total} request(s) (timeout {timeout:?})");
    while !pending.is_empty() {
        for done in poll(ctx, &pending, value, began).await? {
            pending.remove(&done.0);
            eprintln!(
                "  {}/{total} handled: {} after {:.1} s",
                total - pending.len(),
                done.0,
                began.elapsed().as_secs_f64()
            );
            results.push(done);
        }
        if pending.is_empty() {
            break;
        }
        if began.elapsed() >= timeout {
            for key in pending.keys() {
                eprintln!("  not handled in {timeout:?}: {key} (is cellnet-controller running?)");
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

/// Reads each pending interconnect once; the ones whose request is handled.
async fn poll(ctx: &Ctx, pending: &Requested, value: &str, began: Instant) -> anyhow::Result<Vec<Resynced>> {
    let ar = ApiResource::erase::<CellInterconnect>(&());
    let mut done = vec![];
    for (key, (ns, name, rv)) in pending {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
        let what = format!("get CellInterconnect {key}");
        let Some(obj) = api.get_opt(name).await.map_err(|e| explain(e, &what))? else {
            anyhow::bail!("CellInterconnect {key} was deleted while waiting");
        };
        let obj = serde_json::to_value(&obj)?;
        let h = handled(&obj, value, rv, began.elapsed());
        if h != Handled::No {
            done.push((key.clone(), h, began.elapsed(), obj));
        }
    }
    Ok(done)
}

fn print_results(results: &[Resynced]) {
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
mod tests {
    use super::*;

    fn obj(gen_: i64, observed: i64, rv: &str, last: Option<&str>) -> Value {
        let mut status = json!({"observedGeneration": observed});
        if let Some(l) = last {
            status["lastHandledReconcileAt"] = json!(l);
        }
        json!({"metadata": {"generation": gen_, "resourceVersion": rv}, "status": status})
    }

    #[test]
    fn handled_by_the_reported_value() {
        let zero = Duration::ZERO;
        assert_eq!(
            handled(&obj(1, 1, "5", Some("t1")), "t1", "5", zero),
            Handled::Yes
        );
        assert_eq!(
            handled(&obj(1, 1, "6", Some("t0")), "t1", "5", Duration::from_secs(99)),
            Handled::No
        );
    }

    #[test]
    fn fallback_without_the_field() {
        let zero = Duration::ZERO;
        assert_eq!(handled(&obj(2, 1, "6", None), "t", "5", zero), Handled::No);
        assert_eq!(handled(&obj(2, 2, "5", None), "t", "5", zero), Handled::No);
        assert_eq!(handled(&obj(2, 2, "6", None), "t", "5", zero), Handled::Assumed);
        assert_eq!(
            handled(&obj(2, 2, "5", None), "t", "5", QUIET_FALLBACK),
            Handled::Assumed
        );
    }
}
