//! L2 between cells, in pure functions: which segments an interconnect stretches (from
//! `spec.l2` and both endpoints' `spec.l2Segments`), and the EVPN part of each side's route
//! filter. A segment that cannot be stretched as asked stretches nothing: half a broadcast domain
//! is worse than none, and the condition names what to fix.
use std::collections::BTreeMap;

use crate::api::{InfraEndpoint, L2Spec, Reason};
use crate::sdn::routes::{EvpnFilter, RouteTargetMatch};

#[cfg(test)]
mod tests;

/// One segment an interconnect stretches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stretched {
    pub vni: u32,
    pub name: String,
}

/// Why the segments of `spec.l2` cannot be stretched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentProblem {
    pub reason: Reason,
    pub message: String,
}

/// The segments `l2` stretches between `local` and `remote`, sorted by VNI; empty when `l2` is
/// absent. Errors: a named segment one endpoint does not declare (`SegmentNotDeclared`), or one
/// VNI under two names, or one name with two VNIs, in the two cells (`SegmentConflict`).
pub fn stretched(
    l2: Option<&L2Spec>,
    local: &InfraEndpoint,
    remote: &InfraEndpoint,
) -> Result<Vec<Stretched>, SegmentProblem> {
    let Some(l2) = l2 else {
        return Ok(Vec::new());
    };
    let (mine, theirs) = (by_vni(local), by_vni(remote));
    let mut common = Vec::new();
    for (vni, name) in &mine {
        match theirs.get(vni) {
            Some(other) if other != name => return Err(vni_conflict(*vni, (local, name), (remote, other))),
            Some(_) => common.push(Stretched {
                vni: *vni,
                name: name.clone(),
            }),
            None => {}
        }
    }
    if let Some(p) = name_conflict(local, remote) {
        return Err(p);
    }
    if l2.segments.is_empty() {
        return Ok(common);
    }
    for name in &l2.segments {
        for ep in [local, remote] {
            if !ep.spec.l2_segments.iter().any(|s| &s.name == name) {
                return Err(not_declared(name, ep));
            }
        }
    }
    Ok(common
        .into_iter()
        .filter(|s| l2.segments.contains(&s.name))
        .collect())
}

/// The EVPN part of a side's route filter: accept the other cell's routes of exactly the
/// stretched VNIs (or the explicit route targets), add the export route targets. `None` when
/// `spec.l2` is absent; with `spec.l2` and nothing stretched (yet, or any more: a segment
/// problem) a filter that accepts nothing, so that the EVPN family stays on the session:
/// adding or removing a family resets the session (capabilities are negotiated in OPEN), which
/// would cut the cells' routes each time a segment is declared or un-declared.
pub fn evpn_filter(l2: Option<&L2Spec>, stretched: &[Stretched]) -> Option<EvpnFilter> {
    let l2 = l2?;
    if stretched.is_empty() {
        return Some(EvpnFilter {
            import: Vec::new(),
            export: Vec::new(),
        });
    }
    let explicit = l2.route_targets.as_ref();
    let import = match explicit.filter(|rt| !rt.import.is_empty()) {
        Some(rt) => rt.import.iter().cloned().map(RouteTargetMatch::Exact).collect(),
        None => stretched.iter().map(|s| RouteTargetMatch::Vni(s.vni)).collect(),
    };
    Some(EvpnFilter {
        import,
        export: explicit.map(|rt| rt.export.clone()).unwrap_or_default(),
    })
}

fn by_vni(ep: &InfraEndpoint) -> BTreeMap<u32, String> {
    ep.spec
        .l2_segments
        .iter()
        .map(|s| (s.vni, s.name.clone()))
        .collect()
}

fn describe(ep: &InfraEndpoint) -> String {
    format!(
        "InfraEndpoint {} (cell {})",
        ep.metadata.name.as_deref().unwrap_or_default(),
        ep.spec.cell
    )
}

fn vni_conflict(vni: u32, a: (&InfraEndpoint, &String), b: (&InfraEndpoint, &String)) -> SegmentProblem {
    SegmentProblem {
        reason: Reason::SegmentConflict,
        message: format!(
            "VNI {vni} is segment {:?} on {} but {:?} on {}: one VNI must have one name in every cell",
            a.1,
            describe(a.0),
            b.1,
            describe(b.0)
        ),
    }
}

fn name_conflict(local: &InfraEndpoint, remote: &InfraEndpoint) -> Option<SegmentProblem> {
    let theirs: BTreeMap<&str, u32> = remote
        .spec
        .l2_segments
        .iter()
        .map(|s| (s.name.as_str(), s.vni))
        .collect();
    let (s, other_vni) = local.spec.l2_segments.iter().find_map(|s| {
        theirs
            .get(s.name.as_str())
            .filter(|v| **v != s.vni)
            .map(|v| (s, *v))
    })?;
    Some(SegmentProblem {
        reason: Reason::SegmentConflict,
        message: format!(
            "segment {:?} is VNI {} on {} but VNI {other_vni} on {}: one segment must have one VNI in every cell",
            s.name,
            s.vni,
            describe(local),
            describe(remote)
        ),
    })
}

fn not_declared(name: &str, ep: &InfraEndpoint) -> SegmentProblem {
    SegmentProblem {
        reason: Reason::SegmentNotDeclared,
        message: format!(
            "spec.l2.segments names {name:?}, which {} does not declare in spec.l2Segments",
            describe(ep)
        ),
    }
}
