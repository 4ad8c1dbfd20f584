//! `kubectl cellnet routes`: the networks each interconnect carries, per side (advertised,
//! received, accepted, rejected, missing), and the networks of the endpoints they join.
use std::fmt::Write as _;

use clap::Args;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::document::{Kind, MachineFormat, to_text};
use super::output::{Color, Style, Table, coloured, plain};
use super::selection::Inventory;
use super::status::{Ready, condition_of};
use super::{Ctx, EXIT_OK};
use crate::api::{
    CellInterconnect, ConditionType, InfraEndpoint, NetworkStatus, Reason, RouteStatus, SdnKind, SideStatus,
};

#[derive(Args, Debug, Clone, Default)]
pub struct RoutesArgs {
    /// Only this CellInterconnect.
    pub name: Option<String>,
    /// Only interconnects with an endpoint in this cell.
    #[arg(long, value_name = "CELL")]
    pub cell: Option<String>,
    /// Output format: the default tables, `json` or `yaml` (a versioned document).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<MachineFormat>,
}

pub async fn run(ctx: &Ctx, args: &RoutesArgs) -> anyhow::Result<u8> {
    let inv = Inventory::load(ctx).await?;
    let chosen = select(&inv, args.name.as_deref(), args.cell.as_deref());
    if let (Some(name), true) = (&args.name, chosen.is_empty()) {
        anyhow::bail!(
            "no CellInterconnect {name}{} in {} (list them with `kubectl get cellinterconnects`)",
            args.cell
                .as_ref()
                .map(|c| format!(" with an endpoint in cell {c}"))
                .unwrap_or_default(),
            ctx.scope()
        );
    }
    let endpoints = endpoints_of(&inv, &chosen);
    match args.output {
        Some(format) => print!(
            "{}",
            to_text(format, Kind::Routes, document(&inv, &chosen, &endpoints))?
        ),
        None if chosen.is_empty() => println!("{}", nothing_to_show(&ctx.scope(), args.cell.as_deref())),
        None => print!(
            "{}",
            render(&ctx.style, &inv, &chosen, &endpoints, ctx.namespace.is_none())
        ),
    }
    Ok(EXIT_OK)
}

/// The interconnects named `name` (in any namespace of the scope) and touching `cell`.
fn select<'a>(inv: &'a Inventory, name: Option<&str>, cell: Option<&str>) -> Vec<&'a CellInterconnect> {
    inv.interconnects
        .iter()
        .filter(|c| name.is_none_or(|n| c.name_any() == n))
        .filter(|c| cell.is_none_or(|cell| inv.touches(c, cell)))
        .collect()
}

/// The endpoints the chosen interconnects join, each once, in inventory order.
fn endpoints_of<'a>(inv: &'a Inventory, chosen: &[&CellInterconnect]) -> Vec<&'a InfraEndpoint> {
    let named = |ep: &InfraEndpoint| {
        chosen.iter().any(|c| {
            c.namespace() == ep.namespace()
                && [&c.spec.local_endpoint.name, &c.spec.remote_endpoint.name].contains(&&ep.name_any())
        })
    };
    inv.endpoints.iter().filter(|ep| named(ep)).collect()
}

fn nothing_to_show(scope: &str, cell: Option<&str>) -> String {
    match cell {
        Some(cell) => format!("No CellInterconnect has an endpoint in cell {cell} in {scope}."),
        None => format!("No CellInterconnect in {scope}."),
    }
}

/// One side of an interconnect as the routes command shows it.
struct Side<'a> {
    which: &'static str,
    endpoint: &'a str,
    cell: String,
    /// The other side's cell (where the missing networks come from).
    other_cell: String,
    status: Option<&'a SideStatus>,
}

impl Side<'_> {
    fn routes(&self) -> Option<&RouteStatus> {
        self.status.and_then(|s| s.routes.as_ref())
    }

    fn external(&self) -> bool {
        self.status.and_then(|s| s.sdn) == Some(SdnKind::External)
    }
}

fn sides_of<'a>(inv: &Inventory, cic: &'a CellInterconnect) -> [Side<'a>; 2] {
    let (l, r) = inv.cells_of(cic);
    let l = l.unwrap_or_else(|| "?".into());
    let r = r.unwrap_or_else(|| "?".into());
    let status = cic.status.as_ref();
    [
        Side {
            which: "local",
            endpoint: &cic.spec.local_endpoint.name,
            cell: l.clone(),
            other_cell: r.clone(),
            status: status.and_then(|s| s.local.as_ref()),
        },
        Side {
            which: "remote",
            endpoint: &cic.spec.remote_endpoint.name,
            cell: r,
            other_cell: l,
            status: status.and_then(|s| s.remote.as_ref()),
        },
    ]
}

/// The interconnect's RoutesExchanged condition, when the controller wrote one.
pub fn routes_exchanged(cic: &CellInterconnect) -> Option<Ready> {
    condition_of(&cic.status.as_ref()?.conditions, ConditionType::RoutesExchanged)
}

/// The endpoint's NetworksAnnounced condition, when the controller wrote one.
pub fn networks_announced(ep: &InfraEndpoint) -> Option<Ready> {
    condition_of(&ep.status.as_ref()?.conditions, ConditionType::NetworksAnnounced)
}

/// `a, b, c`, then `and N more (M in all)` when the status lists fewer than it counts.
pub fn missing_list(routes: &RouteStatus) -> String {
    let listed = routes.missing.join(", ");
    let count = (routes.missing_count as usize).max(routes.missing.len());
    match count - routes.missing.len() {
        0 => listed,
        more if listed.is_empty() => format!("{more} prefixes"),
        more => format!("{listed} and {more} more ({count} in all)"),
    }
}

/// What is wrong on one side, one sentence each with the reason it falls under: missing
/// networks, networks not carried (no reason: reported, not a failure), the prefix limit.
pub fn side_problems(
    cell: &str,
    other_cell: &str,
    routes: &RouteStatus,
    max_prefixes: u32,
) -> Vec<(Option<Reason>, String)> {
    let mut out = vec![];
    if routes.missing_count > 0 || !routes.missing.is_empty() {
        out.push((
            Some(Reason::RoutesMissing),
            format!(
                "cell {cell} has not accepted {} from cell {other_cell}",
                missing_list(routes)
            ),
        ));
    }
    if !routes.not_carried.is_empty() {
        out.push((
            None,
            format!(
                "cell {cell} does not send {} to cell {other_cell}: the session does not carry that \
                 address family (spec.bgp.addressFamilies)",
                routes.not_carried.join(", ")
            ),
        ));
    }
    if routes.prefix_limit_exceeded {
        out.push((
            Some(Reason::PrefixLimitExceeded),
            format!(
                "cell {cell} shut the session down: cell {other_cell} sent more than {max_prefixes} \
                 prefixes (spec.routes.maxPrefixes)"
            ),
        ));
    }
    out
}

/// The routes table, the details under it, then the endpoints' networks.
fn render(
    style: &Style,
    inv: &Inventory,
    chosen: &[&CellInterconnect],
    endpoints: &[&InfraEndpoint],
    qualify: bool,
) -> String {
    let mut table = Table::new(&[
        "INTERCONNECT",
        "ROUTES",
        "SIDE",
        "CELL",
        "ENDPOINT",
        "ADVERTISED",
        "RECEIVED",
        "ACCEPTED",
        "REJECTED",
        "MISSING",
        "MAX-PREFIXES",
    ]);
    let mut details = vec![];
    for cic in chosen {
        let name = label(*cic, qualify);
        let condition = routes_exchanged(cic);
        for (i, side) in sides_of(inv, cic).iter().enumerate() {
            let mut row = if i == 0 {
                vec![plain(name.clone()), condition_cell(condition.as_ref())]
            } else {
                vec![plain(""), plain("")]
            };
            row.extend([plain(side.which), plain(side.cell.clone()), plain(side.endpoint)]);
            row.extend(count_cells(side, cic.spec.routes.max_prefixes));
            table.row(row);
            if let Some(routes) = side.routes() {
                let max = cic.spec.routes.max_prefixes;
                for (_, problem) in side_problems(&side.cell, &side.other_cell, routes, max) {
                    details.push(format!("{name} {}: {problem}", side.which));
                }
            }
        }
        if let Some(c) = condition.filter(|c| !c.is_true()) {
            details.push(format!("{name}: {} {c}", ConditionType::RoutesExchanged));
        }
    }
    let mut out = table.render(style);
    for line in details {
        let _ = writeln!(out, "  {line}");
    }
    if !endpoints.is_empty() {
        out.push('\n');
        out.push_str(&networks(style, endpoints, qualify));
    }
    out
}

fn label<K: ResourceExt>(obj: &K, qualify: bool) -> String {
    if qualify {
        format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
    } else {
        obj.name_any()
    }
}

type Cell = (String, Option<Color>);

/// `True RoutesExchanged` in green, anything else in red, `-` before the controller wrote one.
fn condition_cell(condition: Option<&Ready>) -> Cell {
    match condition {
        None => plain("-"),
        Some(c) if c.is_true() => coloured(format!("True {}", c.reason), Color::Green),
        Some(c) => coloured(format!("{} {}", c.status, c.reason), Color::Red),
    }
}

/// ADVERTISED to MAX-PREFIXES for one side: `-` for an external side or before any count.
fn count_cells(side: &Side, max_prefixes: u32) -> Vec<Cell> {
    let Some(r) = side.routes() else {
        let why = if side.external() { "external" } else { "-" };
        let mut cells = vec![plain(why)];
        cells.extend(std::iter::repeat_n(plain("-"), 4));
        cells.push(plain(max_prefixes.to_string()));
        return cells;
    };
    let missing = (r.missing_count as usize).max(r.missing.len());
    let limit = if r.prefix_limit_exceeded {
        coloured(format!("{max_prefixes} exceeded"), Color::Red)
    } else {
        plain(max_prefixes.to_string())
    };
    vec![
        plain(r.advertised.to_string()),
        plain(r.received.to_string()),
        plain(r.accepted.to_string()),
        plain(r.rejected.to_string()),
        if missing == 0 {
            plain("0")
        } else {
            coloured(missing.to_string(), Color::Red)
        },
        limit,
    ]
}

/// The networks of an endpoint: as its status reports them, else as declared (not yet reported).
pub fn networks_of(ep: &InfraEndpoint) -> Vec<NetworkStatus> {
    if let Some(reported) = ep.status.as_ref().map(|s| &s.networks)
        && !reported.is_empty()
    {
        return reported.clone();
    }
    let mut declared: Vec<NetworkStatus> = ep
        .spec
        .networks
        .iter()
        .map(|n| NetworkStatus {
            cidr: n.cidr.clone(),
            name: n.name.clone(),
            ..Default::default()
        })
        .collect();
    if let Some(subnet) = ep.spec.neutron.as_ref().map(|n| &n.subnet)
        && subnet.announce_subnet
    {
        declared.push(NetworkStatus {
            cidr: subnet.cidr.clone(),
            name: Some("neutron-subnet".into()),
            ..Default::default()
        });
    }
    declared
}

/// Whether the status reports this endpoint's networks (else they are only declared).
fn reported(ep: &InfraEndpoint) -> bool {
    ep.status.as_ref().is_some_and(|s| !s.networks.is_empty())
}

/// The table of the endpoints' networks, and their NetworksAnnounced condition when not True.
fn networks(style: &Style, endpoints: &[&InfraEndpoint], qualify: bool) -> String {
    let mut table = Table::new(&["ENDPOINT", "CELL", "NETWORK", "NAME", "ANNOUNCED", "MESSAGE"]);
    let mut details = vec![];
    for ep in endpoints {
        let name = label(*ep, qualify);
        let nets = networks_of(ep);
        let announced = |n: &NetworkStatus| match (ep.spec.is_managed(), reported(ep), n.announced) {
            (false, _, _) => plain("external"),
            (true, false, _) => plain("?"),
            (true, true, true) => coloured("True", Color::Green),
            (true, true, false) => coloured("False", Color::Red),
        };
        if nets.is_empty() {
            table.row(vec![
                plain(name.clone()),
                plain(ep.spec.cell.clone()),
                plain("-"),
                plain("-"),
                plain("-"),
                plain("no networks declared"),
            ]);
        }
        for (i, n) in nets.iter().enumerate() {
            let first = i == 0;
            table.row(vec![
                plain(if first { name.clone() } else { String::new() }),
                plain(if first {
                    ep.spec.cell.clone()
                } else {
                    String::new()
                }),
                plain(n.cidr.clone()),
                plain(n.name.clone().unwrap_or_else(|| "-".into())),
                announced(n),
                plain(n.message.clone().unwrap_or_else(|| "-".into())),
            ]);
        }
        if let Some(c) = networks_announced(ep).filter(|c| !c.is_true()) {
            details.push(format!("{name}: {} {c}", ConditionType::NetworksAnnounced));
        }
    }
    let mut out = table.render(style);
    for line in details {
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn condition_json(c: Option<Ready>) -> Value {
    c.map(|c| json!({"status": c.status, "reason": c.reason, "message": c.message}))
        .unwrap_or(Value::Null)
}

/// The `-o json` / `-o yaml` document: `{"interconnects": [...], "endpoints": [...]}`.
fn document(inv: &Inventory, chosen: &[&CellInterconnect], endpoints: &[&InfraEndpoint]) -> Value {
    let interconnects: Vec<Value> = chosen
        .iter()
        .map(|cic| {
            let [local, remote] = sides_of(inv, cic)
                .map(|s| json!({"endpoint": s.endpoint, "cell": s.cell, "routes": s.routes()}));
            json!({
                "namespace": cic.namespace(),
                "name": cic.name_any(),
                "spec": cic.spec.routes,
                "routesExchanged": condition_json(routes_exchanged(cic)),
                "local": local,
                "remote": remote,
            })
        })
        .collect();
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|ep| {
            json!({
                "namespace": ep.namespace(),
                "name": ep.name_any(),
                "cell": ep.spec.cell,
                "managed": ep.spec.is_managed(),
                "reported": reported(ep),
                "networksAnnounced": condition_json(networks_announced(ep)),
                "networks": networks_of(ep),
            })
        })
        .collect();
    json!({"interconnects": interconnects, "endpoints": endpoints})
}

#[cfg(test)]
mod tests;
