//! Conflicts: two endpoints of different cells in one namespace declaring the same or
//! overlapping prefixes. Never resolved by guessing: neither prefix is announced or accepted on
//! the interconnects that join them until one declaration changes. Endpoints of the same cell may
//! declare the same networks (redundant gateways).
use std::sync::Arc;

use ipnet::IpNet;
use kube::ResourceExt;

use super::declared::declared;
use crate::api::InfraEndpoint;

/// One of this endpoint's networks overlaps one of another cell's endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// This endpoint's network.
    pub net: IpNet,
    /// The other endpoint (name) and its cell.
    pub other: String,
    pub other_cell: String,
    /// The other endpoint's overlapping network.
    pub other_net: IpNet,
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// The conflicts of `ep` with the other endpoints of its namespace among `all`, sorted by
/// network then endpoint. O(endpoints x networks) per call, on cached objects only.
pub fn conflicts_of(ep: &InfraEndpoint, all: &[Arc<InfraEndpoint>]) -> Vec<Conflict> {
    let mine = declared(ep);
    if mine.is_empty() {
        return Vec::new();
    }
    let ns = ep.namespace();
    let mut out = Vec::new();
    for other in all {
        if other.namespace() != ns || other.spec.cell == ep.spec.cell || other.name_any() == ep.name_any() {
            continue;
        }
        for theirs in declared(other) {
            for m in mine.iter().filter(|m| overlaps(&m.net, &theirs.net)) {
                out.push(Conflict {
                    net: m.net,
                    other: other.name_any(),
                    other_cell: other.spec.cell.clone(),
                    other_net: theirs.net,
                });
            }
        }
    }
    out.sort_by(|a, b| (a.net, &a.other).cmp(&(b.net, &b.other)));
    out
}
