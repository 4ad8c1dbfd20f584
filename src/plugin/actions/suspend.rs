//! `suspend` and `resume`: `spec.suspend`.
use serde_json::json;

use super::{TargetArgs, describe_cells, patch_spec, wait_observed};
use crate::plugin::selection::{qualified, select};
use crate::plugin::{Ctx, EXIT_OK};

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
