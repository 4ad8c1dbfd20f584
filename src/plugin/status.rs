//! `kubectl cellnet status`: interconnects grouped by cell, both sides of each.
use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::document::{Kind, MachineFormat, to_text};
use super::output::{Color, Style, Table, age, coloured, plain, session_colour, shorten};
use super::selection::Inventory;
use super::{Ctx, EXIT_OK};
use crate::api::conditions::get_condition;
use crate::api::{AdminState, CellInterconnect, ConditionType, Reason, SdnKind, SessionState, SideStatus};

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

/// A condition of an object (Ready, RoutesExchanged...), as written (a newer controller may
/// write a reason this plugin does not know: it is shown as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl Ready {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }

    /// The reason as a [`Reason`]; `None` when this plugin does not know it.
    pub fn reason(&self) -> Option<Reason> {
        self.reason.parse().ok()
    }
}

/// `status reason: message`, as `diagnose` and the actions print it.
impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.reason, self.message)
    }
}

/// The condition `type_` among `conditions`, as written; `None` when absent.
pub fn condition_of(conditions: &[Condition], type_: ConditionType) -> Option<Ready> {
    get_condition(conditions, type_).map(|c| Ready {
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
    })
}

/// The Ready condition; `Unknown NoStatus` before the controller wrote status.
pub fn ready_of(cic: &CellInterconnect) -> Ready {
    cic.status
        .as_ref()
        .and_then(|s| condition_of(&s.conditions, ConditionType::Ready))
        .unwrap_or_else(|| Ready {
            status: "Unknown".into(),
            reason: Reason::NoStatus.to_string(),
            message: "the controller has not written status yet".into(),
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
    let ready = ready_of(cic);
    let (lc, rc) = inv.cells_of(cic);
    let status = cic.status.as_ref();
    json!({
        "namespace": cic.namespace(),
        "name": cic.name_any(),
        "ready": ready.status,
        "reason": ready.reason,
        "message": ready.message,
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
    let groups = by_cell(&inv, args.cell.as_deref());
    match args.output {
        Some(Format::Json) => print!(
            "{}",
            to_text(MachineFormat::Json, Kind::Status, document(&inv, &groups))?
        ),
        Some(Format::Yaml) => print!(
            "{}",
            to_text(MachineFormat::Yaml, Kind::Status, document(&inv, &groups))?
        ),
        _ if groups.is_empty() => println!("{}", nothing_to_show(&ctx.scope(), args.cell.as_deref())),
        _ => {
            let wide = args.output == Some(Format::Wide);
            // The namespace is shown with -A, and always in the wide table.
            let qualify = ctx.namespace.is_none() || wide;
            print!("{}", tables(&ctx.style, &inv, &groups, qualify, wide))
        }
    }
    Ok(EXIT_OK)
}

/// Interconnects by cell: each shows under both of its cells (`<unknown>` for a cell not known),
/// only under `only` when given.
fn by_cell<'a>(inv: &'a Inventory, only: Option<&str>) -> BTreeMap<String, Vec<&'a CellInterconnect>> {
    let mut groups: BTreeMap<String, Vec<&CellInterconnect>> = BTreeMap::new();
    for cic in &inv.interconnects {
        let (l, r) = inv.cells_of(cic);
        let l = l.unwrap_or_else(|| "<unknown>".into());
        let r = r.unwrap_or_else(|| "<unknown>".into());
        for cell in [l, r] {
            if only.is_some_and(|want| want != cell) {
                continue;
            }
            let list = groups.entry(cell).or_default();
            if !list.iter().any(|c| std::ptr::eq(*c, cic)) {
                list.push(cic);
            }
        }
    }
    groups
}

/// The `-o json` / `-o yaml` document: `{"cells": [{"cell", "interconnects"}]}`.
fn document(inv: &Inventory, groups: &BTreeMap<String, Vec<&CellInterconnect>>) -> Value {
    let cells: Vec<Value> = groups
        .iter()
        .map(|(cell, list)| {
            json!({"cell": cell, "interconnects": list.iter().map(|c| interconnect_json(inv, c)).collect::<Vec<_>>()})
        })
        .collect();
    json!({"cells": cells})
}

fn nothing_to_show(scope: &str, cell: Option<&str>) -> String {
    match cell {
        Some(cell) => format!("No CellInterconnect has an endpoint in cell {cell} in {scope}."),
        None => format!("No CellInterconnect in {scope}."),
    }
}

/// One table per cell, separated by an empty line.
fn tables(
    style: &Style,
    inv: &Inventory,
    groups: &BTreeMap<String, Vec<&CellInterconnect>>,
    qualify: bool,
    wide: bool,
) -> String {
    let mut out = vec![];
    for (cell, list) in groups {
        let mut table = Table::new(&header(wide)).indent(2);
        for cic in list {
            let (lc, rc) = inv.cells_of(cic);
            for row in interconnect_rows(cic, [lc, rc], qualify, wide) {
                table.row(row);
            }
        }
        out.push(format!(
            "{}\n{}",
            style.bold(&format!("CELL {cell}")),
            table.render(style)
        ));
    }
    out.join("\n")
}

fn header(wide: bool) -> Vec<&'static str> {
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
        header.extend(["PEER", "CONFIGURED", "SDN", "ADMIN", "HOLD/KA", "RESETS", "GR"]);
    }
    header.push("LAST ERROR");
    header
}

type Cell = (String, Option<Color>);

/// Two rows: the local side, then the remote side (name, Ready and admin state on the first).
fn interconnect_rows(
    cic: &CellInterconnect,
    cells: [Option<String>; 2],
    qualify: bool,
    wide: bool,
) -> Vec<Vec<Cell>> {
    let ready = ready_of(cic);
    let ready_cell = if ready.is_true() {
        coloured(format!("True {}", ready.reason), Color::Green)
    } else {
        coloured(format!("{} {}", ready.status, ready.reason), Color::Red)
    };
    let name = if qualify {
        format!("{}/{}", cic.namespace().unwrap_or_default(), cic.name_any())
    } else {
        cic.name_any()
    };
    let status = cic.status.as_ref();
    let sides = [
        (
            "local",
            &cic.spec.local_endpoint.name,
            status.and_then(|s| s.local.as_ref()),
        ),
        (
            "remote",
            &cic.spec.remote_endpoint.name,
            status.and_then(|s| s.remote.as_ref()),
        ),
    ];
    let mut rows = vec![];
    for ((which, endpoint, side), cell) in sides.into_iter().zip(cells) {
        let first = rows.is_empty();
        let mut row = vec![
            plain(if first { name.clone() } else { String::new() }),
            if first { ready_cell.clone() } else { plain("") },
            plain(which),
            plain(cell.unwrap_or_else(|| "?".into())),
            plain(endpoint.clone()),
        ];
        let default = SideStatus::default();
        row.extend(side_cells(cic, side.unwrap_or(&default), first, wide));
        rows.push(row);
    }
    rows
}

/// The columns of one side from SESSION on.
fn side_cells(cic: &CellInterconnect, s: &SideStatus, first: bool, wide: bool) -> Vec<Cell> {
    let external = s.sdn == Some(SdnKind::External);
    let unless_external = |text: String| plain(if external { "-".into() } else { text });
    let session = if external {
        plain(Reason::External.as_str())
    } else {
        coloured(format!("{:?}", s.session_state), session_colour(s.session_state))
    };
    let error = side_error(s).unwrap_or_else(|| "-".into());
    let mut cells = vec![
        session,
        unless_external(since(s)),
        unless_external(s.flaps.to_string()),
    ];
    if wide {
        cells.extend([
            plain(s.peer_address.clone().unwrap_or_else(|| "-".into())),
            unless_external(s.configured.to_string()),
            plain(
                s.sdn
                    .and_then(|k| serde_json::to_value(k).ok())
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "-".into()),
            ),
            plain(if first { admin_state(cic) } else { "" }),
            unless_external(timers(s)),
            unless_external(s.resets.to_string()),
            plain(graceful_restart(s)),
            plain(shorten(&error, 400)),
        ]);
    } else {
        cells.push(plain(shorten(&error, 70)));
    }
    cells
}

/// The HOLD/KA column: the hold time and keepalive agreed on the session, where the speaker
/// reports them (`-` for what it does not).
pub fn timers(s: &SideStatus) -> String {
    let show = |v: Option<u16>| v.map_or_else(|| "-".to_string(), |v| format!("{v}s"));
    match (s.negotiated_hold_time, s.negotiated_keepalive) {
        (None, None) => "-".into(),
        (hold, keepalive) => format!("{}/{}", show(hold), show(keepalive)),
    }
}

/// The GR column: whether graceful restart was negotiated on this side's session (`-`: not
/// known: off, not established, or not reported).
fn graceful_restart(s: &SideStatus) -> &'static str {
    match s.graceful_restart_negotiated {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

/// The ADMIN column: suspended, else the admin state.
fn admin_state(cic: &CellInterconnect) -> &'static str {
    match (cic.spec.suspend, cic.spec.admin_state) {
        (true, _) => Reason::Suspended.as_str(),
        (false, AdminState::Disabled) => "Disabled",
        (false, AdminState::Enabled) => "Enabled",
    }
}

#[cfg(test)]
mod tests;
