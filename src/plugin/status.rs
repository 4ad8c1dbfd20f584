//! `kubectl cellnet status`: interconnects grouped by cell, both sides of each.
use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use kube::ResourceExt;
use serde_json::{Value, json};

use super::output::{Color, Table, age, coloured, plain, session_colour, shorten};
use super::selection::Inventory;
use super::{Ctx, EXIT_OK};
use crate::api::conditions::get_condition;
use crate::api::{AdminState, CellInterconnect, ConditionType, SessionState, SideStatus};

#[derive(Args, Debug, Clone, Default)]
pub struct StatusArgs {
    /// Only interconnects with an endpoint in this cell.
    #[arg(long, value_name = "CELL")]
    pub cell: Option<String>,
    /// Output format: the default table, `wide` (more columns), `json` or `yaml`.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Wide,
    Json,
    Yaml,
}

/// Ready as (status, reason, message); `Unknown` before the controller wrote status.
pub fn ready_of(cic: &CellInterconnect) -> (String, String, String) {
    cic.status
        .as_ref()
        .and_then(|s| get_condition(&s.conditions, ConditionType::Ready))
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_else(|| {
            (
                "Unknown".into(),
                "NoStatus".into(),
                "the controller has not written status yet".into(),
            )
        })
}

/// When the current session state began: establishedSince when Established, else the last change.
pub fn since(side: &SideStatus) -> String {
    let t = if side.session_state == SessionState::Established {
        side.established_since
            .as_ref()
            .or(side.last_transition_time.as_ref())
    } else {
        side.last_transition_time.as_ref()
    };
    t.map(age).unwrap_or_else(|| "-".into())
}

/// The speaker's last error, else the controller's message about this side.
pub fn side_error(side: &SideStatus) -> Option<String> {
    side.last_error.clone().or_else(|| side.message.clone())
}

fn side_json(endpoint: &str, cell: Option<&String>, side: Option<&SideStatus>) -> Value {
    let mut v = json!({"endpoint": endpoint, "cell": cell});
    if let Some(side) = side
        && let (Value::Object(m), Ok(Value::Object(s))) = (&mut v, serde_json::to_value(side))
    {
        m.extend(s);
    }
    v
}

fn interconnect_json(inv: &Inventory, cic: &CellInterconnect) -> Value {
    let (ready, reason, message) = ready_of(cic);
    let (lc, rc) = inv.cells_of(cic);
    let status = cic.status.as_ref();
    json!({
        "namespace": cic.namespace(),
        "name": cic.name_any(),
        "ready": ready,
        "reason": reason,
        "message": message,
        "suspend": cic.spec.suspend,
        "adminState": cic.spec.admin_state,
        "adminMessage": cic.spec.admin_message,
        "generation": cic.metadata.generation,
        "observedGeneration": status.and_then(|s| s.observed_generation),
        "local": side_json(&cic.spec.local_endpoint.name, lc.as_ref(), status.and_then(|s| s.local.as_ref())),
        "remote": side_json(&cic.spec.remote_endpoint.name, rc.as_ref(), status.and_then(|s| s.remote.as_ref())),
    })
}

pub async fn run(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<u8> {
    let inv = Inventory::load(ctx).await?;
    // cell -> interconnects touching it (an interconnect shows under both of its cells).
    let mut groups: BTreeMap<String, Vec<&CellInterconnect>> = BTreeMap::new();
    for cic in &inv.interconnects {
        let (l, r) = inv.cells_of(cic);
        let l = l.unwrap_or_else(|| "<unknown>".into());
        let r = r.unwrap_or_else(|| "<unknown>".into());
        for cell in [l.clone(), r.clone()] {
            if args.cell.as_ref().is_some_and(|want| *want != cell) {
                continue;
            }
            let list = groups.entry(cell).or_default();
            if !list.iter().any(|c| std::ptr::eq(*c, cic)) {
                list.push(cic);
            }
        }
    }
    match args.output {
        Some(Format::Json) | Some(Format::Yaml) => {
            let cells: Vec<Value> = groups
                .iter()
                .map(|(cell, list)| {
                    json!({"cell": cell, "interconnects": list.iter().map(|c| interconnect_json(&inv, c)).collect::<Vec<_>>()})
                })
                .collect();
            let doc = json!({"cells": cells});
            if args.output == Some(Format::Json) {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                print!("{}", serde_yaml::to_string(&doc)?);
            }
            return Ok(EXIT_OK);
        }
        _ => {}
    }
    if groups.is_empty() {
        match &args.cell {
            Some(cell) => println!(
                "No CellInterconnect has an endpoint in cell {cell} in {}.",
                ctx.scope()
            ),
            None => println!("No CellInterconnect in {}.", ctx.scope()),
        }
        return Ok(EXIT_OK);
    }
    let wide = args.output == Some(Format::Wide);
    let all_ns = ctx.namespace.is_none();
    let style = &ctx.style;
    let mut first = true;
    for (cell, list) in &groups {
        if !first {
            println!();
        }
        first = false;
        println!("{}", style.bold(&format!("CELL {cell}")));
        let mut header = vec![
            "INTERCONNECT",
            "READY",
            "SIDE",
            "CELL",
            "ENDPOINT",
            "SESSION",
            "SINCE",
            "FLAPS",
        ];
        if wide {
            header.extend(["PEER", "CONFIGURED", "SDN", "ADMIN"]);
        }
        header.push("LAST ERROR");
        let mut table = Table::new(&header).indent(2);
        for cic in list {
            let (ready, reason, _) = ready_of(cic);
            let ready_cell = if ready == "True" {
                coloured(format!("True {reason}"), Color::Green)
            } else {
                coloured(format!("{ready} {reason}"), Color::Red)
            };
            let (lc, rc) = inv.cells_of(cic);
            let status = cic.status.as_ref();
            let name = if all_ns || wide {
                format!("{}/{}", cic.namespace().unwrap_or_default(), cic.name_any())
            } else {
                cic.name_any()
            };
            let sides = [
                (
                    "local",
                    lc,
                    &cic.spec.local_endpoint.name,
                    status.and_then(|s| s.local.as_ref()),
                ),
                (
                    "remote",
                    rc,
                    &cic.spec.remote_endpoint.name,
                    status.and_then(|s| s.remote.as_ref()),
                ),
            ];
            for (i, (which, side_cell, endpoint, side)) in sides.into_iter().enumerate() {
                let default = SideStatus::default();
                let s = side.unwrap_or(&default);
                let external = s.sdn == Some(crate::api::SdnKind::External);
                let session = if external {
                    plain("External")
                } else {
                    coloured(format!("{:?}", s.session_state), session_colour(s.session_state))
                };
                let error = side_error(s).unwrap_or_else(|| "-".into());
                let mut row = vec![
                    plain(if i == 0 { name.clone() } else { String::new() }),
                    if i == 0 { ready_cell.clone() } else { plain("") },
                    plain(which),
                    plain(side_cell.unwrap_or_else(|| "?".into())),
                    plain(endpoint.clone()),
                    session,
                    plain(if external { "-".into() } else { since(s) }),
                    plain(if external { "-".into() } else { s.flaps.to_string() }),
                ];
                if wide {
                    let admin = match (cic.spec.suspend, cic.spec.admin_state) {
                        (true, _) => "Suspended",
                        (false, AdminState::Disabled) => "Disabled",
                        (false, AdminState::Enabled) => "Enabled",
                    };
                    row.extend([
                        plain(s.peer_address.clone().unwrap_or_else(|| "-".into())),
                        plain(if external {
                            "-".into()
                        } else {
                            s.configured.to_string()
                        }),
                        plain(
                            s.sdn
                                .and_then(|k| serde_json::to_value(k).ok())
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_else(|| "-".into()),
                        ),
                        plain(if i == 0 { admin } else { "" }),
                    ]);
                    row.push(plain(shorten(&error, 400)));
                } else {
                    row.push(plain(shorten(&error, 70)));
                }
                table.row(row);
            }
        }
        print!("{}", table.render(style));
    }
    Ok(EXIT_OK)
}
