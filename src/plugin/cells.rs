//! `kubectl cellnet cells`: one line per cell.
use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use super::output::{Color, Table, coloured, plain};
use super::selection::Inventory;
use super::{Ctx, EXIT_OK};
use crate::api::{CellInterconnect, ConditionType, SdnKind, SessionState, SideStatus};

#[derive(Default)]
struct CellLine {
    endpoints: BTreeSet<String>,
    interconnects: BTreeSet<String>,
    ready: BTreeSet<String>,
    /// "interconnect (state)" for every side in this cell that is not Established.
    down: BTreeSet<String>,
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

pub async fn run(ctx: &Ctx) -> anyhow::Result<u8> {
    let inv = Inventory::load(ctx).await?;
    let all_ns = ctx.namespace.is_none();
    let label = |c: &CellInterconnect| {
        if all_ns {
            format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any())
        } else {
            c.name_any()
        }
    };
    let mut cells: BTreeMap<String, CellLine> = BTreeMap::new();
    for ep in &inv.endpoints {
        let name = if all_ns {
            format!("{}/{}", ep.namespace().unwrap_or_default(), ep.name_any())
        } else {
            ep.name_any()
        };
        cells
            .entry(ep.spec.cell.clone())
            .or_default()
            .endpoints
            .insert(name);
    }
    for cic in &inv.interconnects {
        let (local, remote) = inv.cells_of(cic);
        let status = cic.status.as_ref();
        let sides = [
            (local, status.and_then(|s| s.local.as_ref())),
            (remote, status.and_then(|s| s.remote.as_ref())),
        ];
        for (cell, side) in sides {
            let Some(cell) = cell else { continue };
            let line = cells.entry(cell).or_default();
            line.interconnects.insert(label(cic));
            if is_ready(cic) {
                line.ready.insert(label(cic));
            }
            // No status yet counts as not Established too.
            if let Some(state) = side_down(side) {
                line.down.insert(format!("{} ({state:?})", label(cic)));
            }
        }
    }
    if cells.is_empty() {
        println!(
            "No cells: no InfraEndpoint or CellInterconnect in {}.",
            ctx.scope()
        );
        return Ok(EXIT_OK);
    }
    let mut table = Table::new(&["CELL", "ENDPOINTS", "INTERCONNECTS", "READY", "NOT-ESTABLISHED"]);
    for (cell, line) in &cells {
        let ready = format!("{}/{}", line.ready.len(), line.interconnects.len());
        let ready_colour = if line.ready.len() == line.interconnects.len() {
            Color::Green
        } else {
            Color::Red
        };
        let down = if line.down.is_empty() {
            plain("-")
        } else {
            coloured(
                line.down.iter().cloned().collect::<Vec<_>>().join(", "),
                Color::Red,
            )
        };
        let endpoints = if line.endpoints.is_empty() {
            "-".to_string()
        } else {
            line.endpoints.iter().cloned().collect::<Vec<_>>().join(",")
        };
        table.row(vec![
            plain(cell.clone()),
            plain(endpoints),
            plain(line.interconnects.len().to_string()),
            coloured(ready, ready_colour),
            down,
        ]);
    }
    print!("{}", table.render(&ctx.style));
    Ok(EXIT_OK)
}
