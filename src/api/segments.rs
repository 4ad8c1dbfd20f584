//! L2 between cells: the segments an endpoint can stretch (`InfraEndpoint.spec.l2Segments`,
//! `spec.vtep`), which of them an interconnect stretches (`CellInterconnect.spec.l2`) and what each
//! side sees (`status.<side>.segments`). The data plane is BGP EVPN with VXLAN (RFC 7432, 8365).
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::infra_endpoint::DNS1123_LABEL;

/// Most segments one endpoint may declare.
pub const MAX_SEGMENTS: usize = 256;
/// Largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = 16_777_215;
/// How many MAC addresses a segment's status lists (the rest is counted).
pub const MAX_LISTED_MACS: usize = 16;

/// One L2 segment (a VXLAN network) a cell can stretch to other cells.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct L2Segment {
    /// The segment's name (DNS-1123 label, for example `vip-net`): what `spec.l2.segments` of a
    /// CellInterconnect names. Once per endpoint; the same VNI must have the same name in every
    /// cell (`SegmentConflict` otherwise).
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub name: String,

    /// The VXLAN network identifier, 1 to 16777215: the VNI of the cell's VXLAN device for this
    /// segment. Once per endpoint.
    #[schemars(range(min = 1, max = 16777215))]
    pub vni: u32,
}

/// `CellInterconnect.spec.l2`: which L2 segments the interconnect stretches. Absent: none (an L2
/// segment joins two broadcast domains, so it is asked for, never implied).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct L2Spec {
    /// Names of the segments to stretch, each declared in `spec.l2Segments` of both endpoints
    /// (`SegmentNotDeclared` otherwise). Absent: every segment whose VNI both endpoints declare.
    /// An empty list is refused (it would read as "none" but mean "all"): to stretch nothing,
    /// remove `spec.l2`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub segments: Vec<String>,

    /// Route targets (RFC 4360) of the stretched segments, the same on both sides. Absent: the
    /// route target of each segment is derived from its VNI (`<any AS>:<VNI>`, as RFC 8365
    /// section 5.1.2.1 derives it in each cell from the cell's own AS), so each side accepts the
    /// other cell's routes for exactly the stretched VNIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_targets: Option<RouteTargets>,
}

/// Explicit route targets of an interconnect's segments, each written `<AS>:<number>` or
/// `<IPv4>:<number>` (for example `65001:100`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteTargets {
    /// EVPN routes from the other cell are accepted only when they carry one of these (at most
    /// 64). Empty: derived from the VNIs, as when `routeTargets` is absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 3, max = 21), pattern(ROUTE_TARGET)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub import: Vec<String>,

    /// Added to the EVPN routes each managed side sends to the other cell (at most 64), for a
    /// fabric that imports by these rather than by the VNI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 3, max = 21), pattern(ROUTE_TARGET)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub export: Vec<String>,
}

/// A route target: 2- or 4-octet AS, or IPv4 address, then the assigned number.
pub const ROUTE_TARGET: &str = r"^([0-9]{1,10}|[0-9]{1,3}(\.[0-9]{1,3}){3}):[0-9]{1,10}$";

/// `status.<side>.segments[]`: one stretched segment as that side's speaker sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentStatus {
    /// The segment's VNI.
    pub vni: u32,
    /// The segment's name.
    pub name: String,
    /// VXLAN tunnel endpoints of the other cell for this VNI (from its EVPN type-3, inclusive
    /// multicast, routes): where this cell floods the segment's broadcast traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_vteps: Vec<String>,
    /// MAC addresses the other cell announces on this VNI (EVPN type-2 routes; at most 16,
    /// `macCount` has them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<String>,
    /// How many MAC addresses the other cell announces on this VNI.
    #[serde(default)]
    pub mac_count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_empty_l2_spec_stretches_the_common_segments_with_derived_route_targets() {
        let spec: L2Spec = serde_json::from_value(json!({})).unwrap();
        assert!(spec.segments.is_empty());
        assert_eq!(spec.route_targets, None);
    }

    #[test]
    fn segment_status_is_small_when_nothing_is_seen() {
        let s = SegmentStatus {
            vni: 100,
            name: "vip".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            json!({"vni": 100, "name": "vip", "macCount": 0})
        );
    }
}
