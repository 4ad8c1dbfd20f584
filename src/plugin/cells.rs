//! `kubectl cellnet cells`: one line per cell.
use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::document::{Kind, MachineFormat, to_text};
use super::output::{Color, Table, coloured, plain};
use super::selection::Inventory;
use super::{Ctx, EXIT_OK};
use crate::api::{CellInterconnect, ConditionType, SdnKind, SessionState, SideStatus};

#[derive(Args, Debug, Clone, Default)]
pub struct CellsArgs {
    /// Output format: the default table, `json` or `yaml` (a versioned document).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<MachineFormat>,
}

#[derive(Default)]
struct CellLine {
    endpoints: BTreeSet<String>,
    interconnects: BTreeSet<String>,
    ready: BTreeSet<String>,
    /// (interconnect, session state) for every side in this cell that is not Established.
    down: BTreeSet<(String, String)>,
}

pub fn is_ready(cic: &CellInterconnect) -> bool {
    cic.status
        .as_ref()
        .is_some_and(|s| crate::api::conditions::is_true(&s.conditions, ConditionType::Ready))
}

/// The side of `cic` in `cell` is managed and its session is not Established.
fn side_down(side: Option<&SideStatus>) -> Option<SessionState> {
    match side {
        Some(s) if s.sdn == Some(SdnKind::External) => None,
        Some(s) if s.session_state == SessionState::Established => None,
        Some(s) => Some(s.session_state),
        None => Some(SessionState::Unknown),
    }
}

pub async fn run(ctx: &Ctx, args: &CellsArgs) -> anyhow::Result<u8> {
    let inv = Inventory::load(ctx).await?;
    let cells = by_cell(&inv, ctx.namespace.is_none());
    if let Some(format) = args.output {
        print!("{}", to_text(format, Kind::Cells, document(&cells))?);
        return Ok(EXIT_OK);
    }
    if cells.is_empty() {
        println!(
            "No cells: no InfraEndpoint or CellInterconnect in {}.",
            ctx.scope()
        );
        return Ok(EXIT_OK);
    }
    print!("{}", table(&cells).render(&ctx.style));
    Ok(EXIT_OK)
}

/// `namespace/name` across namespaces, `name` within one.
fn label<K: ResourceExt>(obj: &K, all_ns: bool) -> String {
    if all_ns {
        format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
    } else {
        obj.name_any()
    }
}

/// One line per cell: its endpoints and the interconnects with a side in it.
fn by_cell(inv: &Inventory, all_ns: bool) -> BTreeMap<String, CellLine> {
    let mut cells: BTreeMap<String, CellLine> = BTreeMap::new();
    for ep in &inv.endpoints {
        let line = cells.entry(ep.spec.cell.clone()).or_default();
        line.endpoints.insert(label(ep, all_ns));
    }
    for cic in &inv.interconnects {
        let (local, remote) = inv.cells_of(cic);
        let status = cic.status.as_ref();
        let sides = [
            (local, status.and_then(|s| s.local.as_ref())),
            (remote, status.and_then(|s| s.remote.as_ref())),
        ];
        for (i, (cell, side)) in sides.iter().enumerate() {
            let Some(cell) = cell.clone() else { continue };
            let line = cells.entry(cell).or_default();
            line.interconnects.insert(label(cic, all_ns));
            if is_ready(cic) {
                line.ready.insert(label(cic, all_ns));
            }
            // A broken link shows on both cells' rows: this side's state, else the other's (an
            // external side has none of its own). No status yet counts as not Established too.
            if let Some(state) = side_down(*side).or_else(|| side_down(sides[1 - i].1)) {
                line.down.insert((label(cic, all_ns), format!("{state:?}")));
            }
        }
    }
    cells
}

fn joined(set: &BTreeSet<String>, sep: &str) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(sep)
}

/// The `-o json` / `-o yaml` body: one object per cell, the table's columns as lists.
fn document(cells: &BTreeMap<String, CellLine>) -> Value {
    let cells: Vec<Value> = cells
        .iter()
        .map(|(cell, line)| {
            let down: Vec<Value> = line
                .down
                .iter()
                .map(|(name, state)| json!({"interconnect": name, "sessionState": state}))
                .collect();
            json!({
                "cell": cell,
                "endpoints": line.endpoints,
                "interconnects": line.interconnects,
                "ready": line.ready,
                "notEstablished": down,
            })
        })
        .collect();
    json!({ "cells": cells })
}

fn table(cells: &BTreeMap<String, CellLine>) -> Table {
    let mut table = Table::new(&["CELL", "ENDPOINTS", "INTERCONNECTS", "READY", "NOT-ESTABLISHED"]);
    for (cell, line) in cells {
        let ready = format!("{}/{}", line.ready.len(), line.interconnects.len());
        let all_ready = line.ready.len() == line.interconnects.len();
        let ready_colour = if all_ready { Color::Green } else { Color::Red };
        let down = match line.down.is_empty() {
            true => plain("-"),
            false => {
                let down: BTreeSet<String> = line.down.iter().map(|(n, s)| format!("{n} ({s})")).collect();
                coloured(joined(&down, ", "), Color::Red)
            }
        };
        let endpoints = match line.endpoints.is_empty() {
            true => "-".to_string(),
            false => joined(&line.endpoints, ","),
        };
        table.row(vec![
            plain(cell.clone()),
            plain(endpoints),
            plain(line.interconnects.len().to_string()),
            coloured(ready, ready_colour),
            down,
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn endpoint(name: &str, cell: &str, managed: bool) -> crate::api::InfraEndpoint {
        let mut spec = json!({"cell": cell, "address": "192.0.2.1", "asn": 65001});
        if managed {
            spec["sdn"] = json!({"type": "GoBGP", "url": "http://127.0.0.1:50051"});
        }
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
            "metadata": {"name": name, "namespace": "ns"}, "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn a_broken_link_to_an_external_cell_shows_on_both_rows() {
        let cic: CellInterconnect = serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "cell1-dc1", "namespace": "ns"},
            "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}},
            "status": {"local": {"sdn": "GoBGP", "sessionState": "Idle"},
                       "remote": {"sdn": "External", "sessionState": "Unknown"}}
        }))
        .unwrap();
        let inv = Inventory::new(
            vec![cic],
            vec![endpoint("a", "cell1", true), endpoint("b", "dc1", false)],
        );
        let cells = by_cell(&inv, false);
        for cell in ["cell1", "dc1"] {
            let down: Vec<&(String, String)> = cells[cell].down.iter().collect();
            assert_eq!(down, [&("cell1-dc1".to_string(), "Idle".to_string())], "{cell}");
        }
    }
}
