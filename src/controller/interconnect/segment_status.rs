//! Pure: each side's stretched segments in status and the `SegmentsStretched` judgement of both
//! sides (L2 between cells).
use super::super::problem::Problem;
use super::super::segments::{SegmentProblem, Stretched};
use super::status::Side;
use crate::api::segments::MAX_LISTED_MACS;
use crate::api::{Reason, SegmentStatus};
use crate::sdn::SegmentsSeen;

/// One managed side's segments as the reconcile found them.
#[derive(Clone, Debug, PartialEq)]
pub struct SideSegments {
    /// The segments `spec.l2` stretches, or why none is.
    pub stretched: Result<Vec<Stretched>, SegmentProblem>,
    /// What this side's speaker receives from the other cell (`None`: not read, nothing is
    /// stretched or the filter failed), or why it could not be had.
    pub observed: Option<Result<SegmentsSeen, Problem>>,
}

/// `status.<side>.segments` and `segmentRoutesRejected`.
pub fn segment_status(s: &SideSegments) -> (Vec<SegmentStatus>, u64) {
    let (Ok(stretched), Some(Ok(seen))) = (&s.stretched, &s.observed) else {
        return (Vec::new(), 0);
    };
    let segments = stretched
        .iter()
        .map(|st| {
            let found = seen.by_vni.get(&st.vni);
            let macs: Vec<String> = found
                .map(|f| f.macs.iter().cloned().collect())
                .unwrap_or_default();
            SegmentStatus {
                vni: st.vni,
                name: st.name.clone(),
                remote_vteps: found
                    .map(|f| f.vteps.iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
                mac_count: macs.len() as u32,
                macs: macs.into_iter().take(MAX_LISTED_MACS).collect(),
            }
        })
        .collect();
    (segments, seen.rejected)
}

/// The `SegmentsStretched` condition (`None`: no side stretches anything and `spec.l2` is
/// absent), and whether it decides `Ready`.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentsVerdict {
    pub ok: bool,
    pub reason: Reason,
    pub message: String,
    pub stalled: bool,
}

/// Judges the segments of both sides: a problem of the spec first, then a side that could not
/// be read, then a stretched VNI whose other cell's VTEP a side lacks. `None` when `spec.l2` is
/// absent (no side carries segments).
pub fn segments_verdict(local: &Side, remote: &Side) -> Option<SegmentsVerdict> {
    let sides = [(local, remote), (remote, local)];
    let with: Vec<(&Side, &Side, &SideSegments)> = sides
        .iter()
        .filter_map(|(s, o)| s.segments.as_deref().map(|seg| (*s, *o, seg)))
        .collect();
    let first = with.first()?;
    if let Err(p) = &first.2.stretched {
        return Some(SegmentsVerdict {
            ok: false,
            reason: p.reason,
            message: p.message.clone(),
            stalled: true,
        });
    }
    let mut missing = Vec::new();
    for (side, other, seg) in &with {
        let Ok(stretched) = &seg.stretched else { continue };
        match &seg.observed {
            Some(Err(p)) => {
                return Some(SegmentsVerdict {
                    ok: false,
                    reason: p.reason,
                    message: format!(
                        "cell {}: the L2 segments could not be read: {}",
                        side.cell, p.message
                    ),
                    stalled: p.stalled,
                });
            }
            Some(Ok(seen)) => missing.extend(
                stretched
                    .iter()
                    .filter(|st| seen.by_vni.get(&st.vni).is_none_or(|f| f.vteps.is_empty()))
                    .map(|st| {
                        format!(
                            "cell {} has no VTEP of cell {} for segment {} (VNI {})",
                            side.cell, other.cell, st.name, st.vni
                        )
                    }),
            ),
            None if !stretched.is_empty() => missing.push(format!(
                "cell {}: the L2 segments were not read (the route filter failed)",
                side.cell
            )),
            None => {}
        }
    }
    let names: Vec<String> = match &first.2.stretched {
        Ok(s) => s.iter().map(|s| format!("{} (VNI {})", s.name, s.vni)).collect(),
        Err(_) => Vec::new(),
    };
    Some(if !missing.is_empty() {
        SegmentsVerdict {
            ok: false,
            reason: Reason::SegmentMissing,
            message: missing.join("; "),
            stalled: false,
        }
    } else if names.is_empty() {
        SegmentsVerdict {
            ok: true,
            reason: Reason::NoSegments,
            message: "spec.l2 stretches no segment: the endpoints declare none in common".into(),
            stalled: false,
        }
    } else {
        SegmentsVerdict {
            ok: true,
            reason: Reason::SegmentsStretched,
            message: format!(
                "segments {} stretched between cell {} and cell {}",
                names.join(", "),
                local.cell,
                remote.cell
            ),
            stalled: false,
        }
    })
}

#[cfg(test)]
#[path = "segment_status_tests.rs"]
mod tests;
