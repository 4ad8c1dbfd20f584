//! `disable` and `enable`: `spec.adminState`, with the RFC 8203 shutdown communication.
use clap::Args;
use serde_json::json;

use super::{TargetArgs, describe_cells, patch_spec, wait_observed};
use crate::api::AdminState;
use crate::plugin::selection::{qualified, select};
use crate::plugin::{Ctx, EXIT_OK};

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
