//! The L2 step of the walk, without I/O: one step per stretched segment (issue 22): does each
//! managed side have the other cell's VTEP for it, and how many MACs and rejected EVPN routes.
use super::{Step, Verdict, step};
use crate::api::{CellInterconnect, SideStatus};

/// A step per segment the status lists; `None` entries: the interconnect has no `spec.l2`.
pub fn segments_steps(cic: &CellInterconnect) -> Vec<Step> {
    if cic.spec.l2.is_none() {
        return Vec::new();
    }
    let Some(status) = cic.status.as_ref() else {
        return vec![step(
            "L2 segments",
            Verdict::Unknown,
            vec!["no status yet".into()],
        )];
    };
    let cell = |c: &Option<String>| c.clone().unwrap_or_else(|| "?".into());
    let sides: [(&str, String, String, Option<&SideStatus>); 2] = [
        (
            "local",
            cell(&status.local_cell),
            cell(&status.remote_cell),
            status.local.as_ref(),
        ),
        (
            "remote",
            cell(&status.remote_cell),
            cell(&status.local_cell),
            status.remote.as_ref(),
        ),
    ];
    let mut vnis: Vec<(u32, String)> = sides
        .iter()
        .filter_map(|(_, _, _, s)| *s)
        .flat_map(|s| s.segments.iter().map(|g| (g.vni, g.name.clone())))
        .collect();
    vnis.sort();
    vnis.dedup();
    if vnis.is_empty() {
        let why = super::super::status::condition_of(
            &status.conditions,
            crate::api::ConditionType::SegmentsStretched,
        )
        .map(|c| format!("SegmentsStretched {c}"))
        .unwrap_or_else(|| "no segment in status yet".into());
        return vec![step("L2 segments", Verdict::Failed, vec![why])];
    }
    vnis.into_iter()
        .map(|(vni, name)| {
            let mut evidence = Vec::new();
            let mut ok = true;
            for (which, this, other, side) in &sides {
                let Some(side) = side.filter(|s| s.sdn != Some(crate::api::SdnKind::External)) else {
                    continue;
                };
                let seen = side.segments.iter().find(|g| g.vni == vni);
                let vteps = seen.map(|g| g.remote_vteps.join(",")).unwrap_or_default();
                if vteps.is_empty() {
                    ok = false;
                    evidence.push(format!("{which} (cell {this}) has no VTEP of cell {other} for VNI {vni}"));
                } else {
                    let macs = seen.map_or(0, |g| g.mac_count);
                    evidence.push(format!(
                        "{which} (cell {this}): VTEP(s) {vteps} of cell {other}, {macs} MAC(s), {} EVPN route(s) rejected",
                        side.segment_routes_rejected
                    ));
                }
            }
            let verdict = if ok { Verdict::Ok } else { Verdict::Failed };
            step(format!("L2 segment {name} (VNI {vni}) stretched"), verdict, evidence)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cic(status: serde_json::Value) -> CellInterconnect {
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "a-b", "namespace": "ns"},
            "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}, "l2": {}},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn a_side_without_the_other_vtep_fails_the_segment_naming_both_cells() {
        let c = cic(json!({"localCell": "c1", "remoteCell": "c2",
            "local": {"sdn": "GoBGP", "segments": [{"vni": 100, "name": "vip", "remoteVteps": ["203.0.113.2"], "macCount": 1}]},
            "remote": {"sdn": "GoBGP", "segments": [{"vni": 100, "name": "vip", "macCount": 0}]}}));
        let steps = segments_steps(&c);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].verdict, Verdict::Failed);
        assert!(steps[0].title.contains("vip (VNI 100)"));
        assert!(
            steps[0]
                .evidence
                .iter()
                .any(|e| e == "remote (cell c2) has no VTEP of cell c1 for VNI 100"),
            "{:?}",
            steps[0].evidence
        );
    }

    #[test]
    fn no_l2_spec_no_step() {
        let mut c = cic(json!({}));
        c.spec.l2 = None;
        assert!(segments_steps(&c).is_empty());
    }
}
