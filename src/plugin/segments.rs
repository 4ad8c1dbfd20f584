//! `kubectl cellnet segments`: the L2 segments each interconnect stretches, per side: the other
//! cell's VTEPs and MACs per VNI, the EVPN routes rejected, and `SegmentsStretched`.
use clap::Args;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::document::{Kind, MachineFormat, to_text};
use super::output::{Color, Style, Table, coloured, plain};
use super::selection::Inventory;
use super::status::condition_of;
use super::{Ctx, EXIT_OK};
use crate::api::{CellInterconnect, ConditionType, SideStatus};

#[derive(Args, Debug, Clone, Default)]
pub struct SegmentsArgs {
    /// Only this CellInterconnect.
    pub name: Option<String>,
    /// Only interconnects with an endpoint in this cell.
    #[arg(long, value_name = "CELL")]
    pub cell: Option<String>,
    /// Output format: the default table, `json` or `yaml` (a versioned document).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<MachineFormat>,
}

pub async fn run(ctx: &Ctx, args: &SegmentsArgs) -> anyhow::Result<u8> {
    let inv = Inventory::load(ctx).await?;
    let chosen: Vec<&CellInterconnect> = inv
        .interconnects
        .iter()
        .filter(|c| c.spec.l2.is_some())
        .filter(|c| args.name.as_ref().is_none_or(|n| &c.name_any() == n))
        .filter(|c| args.cell.as_ref().is_none_or(|cell| inv.touches(c, cell)))
        .collect();
    if let (Some(name), true) = (&args.name, chosen.is_empty()) {
        anyhow::bail!("no CellInterconnect {name} with spec.l2 in {}", ctx.scope());
    }
    match args.output {
        Some(format) => print!("{}", to_text(format, Kind::Segments, document(&inv, &chosen))?),
        None if chosen.is_empty() => {
            println!("No CellInterconnect stretches L2 segments in {}.", ctx.scope())
        }
        None => print!("{}", render(&ctx.style, &inv, &chosen)),
    }
    Ok(EXIT_OK)
}

/// One row per side and stretched segment: what that side's speaker has of the other cell.
struct Row {
    interconnect: String,
    side: &'static str,
    cell: String,
    vni: u32,
    name: String,
    vteps: Vec<String>,
    macs: u32,
    rejected: u64,
}

fn rows(inv: &Inventory, cic: &CellInterconnect) -> Vec<Row> {
    let (l, r) = inv.cells_of(cic);
    let status = cic.status.as_ref();
    let sides: [(&'static str, Option<String>, Option<&SideStatus>); 2] = [
        ("local", l, status.and_then(|s| s.local.as_ref())),
        ("remote", r, status.and_then(|s| s.remote.as_ref())),
    ];
    let mut rows = Vec::new();
    for (side, cell, st) in sides {
        let Some(st) = st else { continue };
        for seg in &st.segments {
            rows.push(Row {
                interconnect: cic.name_any(),
                side,
                cell: cell.clone().unwrap_or_else(|| "?".into()),
                vni: seg.vni,
                name: seg.name.clone(),
                vteps: seg.remote_vteps.clone(),
                macs: seg.mac_count,
                rejected: st.segment_routes_rejected,
            });
        }
    }
    rows
}

/// `SegmentsStretched` as `(ok, reason, message)`, when the controller wrote it.
fn stretched(cic: &CellInterconnect) -> Option<(bool, String, String)> {
    let c = condition_of(&cic.status.as_ref()?.conditions, ConditionType::SegmentsStretched)?;
    Some((c.is_true(), c.reason.clone(), c.message.clone()))
}

fn render(style: &Style, inv: &Inventory, chosen: &[&CellInterconnect]) -> String {
    let mut table = Table::new(&[
        "INTERCONNECT",
        "SIDE",
        "CELL",
        "VNI",
        "SEGMENT",
        "REMOTE VTEPS",
        "MACS",
        "REJECTED",
        "STRETCHED",
    ]);
    for cic in chosen {
        let verdict = match stretched(cic) {
            Some((true, _, _)) => coloured("True", Color::Green),
            Some((false, reason, _)) => coloured(reason, Color::Red),
            None => plain("-"),
        };
        let rows = rows(inv, cic);
        if rows.is_empty() {
            table.row(vec![
                plain(cic.name_any()),
                plain("-"),
                plain("-"),
                plain("-"),
                plain("-"),
                plain("-"),
                plain("-"),
                plain("-"),
                verdict.clone(),
            ]);
        }
        for row in rows {
            let vteps = if row.vteps.is_empty() {
                coloured("none", Color::Red)
            } else {
                plain(row.vteps.join(","))
            };
            table.row(vec![
                plain(&row.interconnect),
                plain(row.side),
                plain(&row.cell),
                plain(row.vni.to_string()),
                plain(&row.name),
                vteps,
                plain(row.macs.to_string()),
                plain(row.rejected.to_string()),
                verdict.clone(),
            ]);
        }
    }
    table.render(style)
}

fn document(inv: &Inventory, chosen: &[&CellInterconnect]) -> Value {
    let interconnects: Vec<Value> = chosen
        .iter()
        .map(|cic| {
            let stretched = stretched(cic).map(|(ok, reason, message)| json!({"ok": ok, "reason": reason, "message": message}));
            let sides: Vec<Value> = rows(inv, cic)
                .into_iter()
                .map(|r| {
                    json!({"side": r.side, "cell": r.cell, "vni": r.vni, "name": r.name,
                           "remoteVteps": r.vteps, "macCount": r.macs, "rejected": r.rejected})
                })
                .collect();
            json!({"namespace": cic.namespace(), "name": cic.name_any(), "stretched": stretched, "segments": sides})
        })
        .collect();
    json!({ "interconnects": interconnects })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cic() -> CellInterconnect {
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "a-b", "namespace": "ns"},
            "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}, "l2": {}},
            "status": {
                "localCell": "c1", "remoteCell": "c2",
                "conditions": [{"type": "SegmentsStretched", "status": "False", "reason": "SegmentMissing",
                                "message": "cell c2 has no VTEP of cell c1 for segment vip (VNI 100)",
                                "lastTransitionTime": "2026-11-30T00:00:00Z"}],
                "local": {"sessionState": "Established", "configured": true, "segmentRoutesRejected": 2,
                          "segments": [{"vni": 100, "name": "vip", "remoteVteps": ["203.0.113.2"], "macs": ["02:00:00:00:00:01"], "macCount": 1}]},
                "remote": {"sessionState": "Established", "configured": true,
                           "segments": [{"vni": 100, "name": "vip", "macCount": 0}]}
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_document_lists_each_side_and_the_condition() {
        let c = cic();
        let inv = Inventory::new(vec![c.clone()], vec![]);
        let doc = document(&inv, &[&c]);
        let ic = &doc["interconnects"][0];
        assert_eq!(ic["stretched"]["reason"], "SegmentMissing");
        assert_eq!(ic["segments"][0]["remoteVteps"], json!(["203.0.113.2"]));
        assert_eq!(ic["segments"][0]["rejected"], 2);
        assert_eq!(ic["segments"][1]["remoteVteps"], json!([]));
    }

    #[test]
    fn the_table_shows_a_side_without_the_other_vtep() {
        let c = cic();
        let inv = Inventory::new(vec![c.clone()], vec![]);
        let text = render(&Style { colour: false }, &inv, &[&c]);
        assert!(
            text.contains("203.0.113.2") && text.contains("none") && text.contains("SegmentMissing"),
            "{text}"
        );
    }
}
