//! The networks between cells, in backend-neutral terms: which prefixes a speaker originates
//! for its cell, and which prefixes it accepts from and sends to each remote cell.
//!
//! Two kinds of object, both owned by cellnet and recognisable on the speaker without a ledger:
//! - an [`Origination`] per speaker (its local InfraEndpoint), shared by all its interconnects;
//! - a [`RouteFilter`] per interconnect on that speaker, keyed by [`RouteFilter::key`].
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub use ipnet::IpNet;

use super::SdnError;

/// What one speaker originates for its local InfraEndpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origination {
    /// cellnet's mark on the paths it originates: non-zero, derived from the endpoint (see
    /// [`mark_of`]). Paths with another mark (an operator's, another endpoint's) are never touched.
    pub mark: u32,
    /// The next hop of every originated path: the endpoint's address. It reaches the remote cell
    /// unchanged (a locally originated path keeps its next hop on eBGP).
    pub next_hop: IpAddr,
    /// The cell's infrastructure networks.
    pub networks: Vec<IpNet>,
    /// Who asked for it (`cellnet:<namespace>/<endpoint>`), for logs.
    pub owner: String,
}

impl Origination {
    /// The networks, truncated to their prefix, sorted and without duplicates.
    pub fn wanted(&self) -> BTreeSet<IpNet> {
        normalized(&self.networks)
    }

    /// Refuses what no backend may write: mark 0, or a network of another family than its next
    /// hop.
    pub fn check(&self) -> Result<(), SdnError> {
        check_mark(self.mark)?;
        let v4 = self.next_hop.is_ipv4();
        if let Some(net) = self.networks.iter().find(|n| matches!(n, IpNet::V4(_)) != v4) {
            return Err(SdnError::InvalidConfig(format!(
                "network {net} cannot be originated with next hop {} (another address family)",
                self.next_hop
            )));
        }
        Ok(())
    }
}

/// Refuses mark 0: the identifier (GoBGP) or path-id (OpenDaylight, the guides' examples) of
/// every path written without one, an operator's by hand included; with it, cellnet's paths and
/// theirs would replace each other.
pub fn check_mark(mark: u32) -> Result<(), SdnError> {
    if mark == 0 {
        return Err(SdnError::InvalidConfig(
            "origination mark 0 is not cellnet's".into(),
        ));
    }
    Ok(())
}

/// What a speaker accepts from the neighbours of one interconnect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportRule {
    /// Everything (cellnet filters nothing).
    Any,
    /// Nothing, of any unicast family.
    None,
    /// Only exactly these prefixes (per family: a family with none is rejected entirely).
    Only(Vec<IpNet>),
}

/// What a speaker sends to the neighbours of one interconnect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportRule {
    /// Nothing, of any unicast family.
    None,
    /// Only exactly these prefixes (normally the cell's own networks): without an export filter
    /// the speaker re-advertises everything it knows, the fabric's and the operator's routes too.
    Only(Vec<IpNet>),
}

/// The filters of one interconnect on one speaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteFilter {
    /// Short, stable, unique per interconnect (e.g. 8 hex digits of a hash of `<ns>/<name>`);
    /// lowercase letters and digits only, as it becomes part of names on the speaker.
    pub key: String,
    /// The remote cell's speaker address(es): the filter applies to routes from / to them only.
    pub neighbors: Vec<IpAddr>,
    pub import: ImportRule,
    pub export: ExportRule,
    /// The L2 segments stretched to the neighbours (EVPN routes); `None`: no EVPN filter, and
    /// the side does not carry `l2vpn-evpn`.
    pub evpn: Option<EvpnFilter>,
}

/// What a speaker accepts and sends of the neighbours' EVPN routes (RFC 7432): only routes of
/// the stretched segments come in, identified by their route targets; EVPN next hops pass
/// unchanged, so a cell's VTEP may differ from its peering address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvpnFilter {
    /// Accepted route targets (any other EVPN route from the neighbours is rejected, and counted).
    pub import: Vec<RouteTargetMatch>,
    /// Route targets added to the EVPN routes sent to the neighbours (`<AS>:<n>` or `<IPv4>:<n>`).
    pub export: Vec<String>,
}

/// One accepted route target.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteTargetMatch {
    /// Any global administrator with this VNI as the local administrator (RFC 8365 5.1.2.1
    /// derives `<AS>:<VNI>` from each cell's own AS, so the two cells' targets differ in the AS).
    Vni(u32),
    /// Exactly this route target, `<AS>:<n>` or `<IPv4>:<n>`.
    Exact(String),
}

/// What an `ensure_*` or `remove_*` call of the routes API found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutesOutcome {
    /// Everything was as wanted: nothing was written.
    Unchanged,
    /// Written: one short description per write, in the order they were made.
    Updated { writes: Vec<String> },
    /// The speaker will not hold what was wanted, and rewriting it would not help.
    Conflict { reason: String },
}

impl RoutesOutcome {
    /// `Unchanged` when nothing was written, else `Updated` with the writes.
    pub fn from_writes(writes: Vec<String>) -> Self {
        if writes.is_empty() {
            Self::Unchanged
        } else {
            Self::Updated { writes }
        }
    }
}

/// The routes exchanged with one neighbour, as its speaker sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteCounts {
    /// Paths sent to the neighbour (after the export filters), all unicast families.
    pub advertised: u64,
    /// Paths received from the neighbour, before the import filters.
    pub received: u64,
    /// Received paths the import filters let through.
    pub accepted: u64,
    /// Received paths the import filters (cellnet's or the operator's) dropped.
    pub rejected: u64,
    /// Originated networks the export rule allows that are not being sent to the neighbour.
    pub missing_advertised: Vec<IpNet>,
    /// Networks the import rule allows (`Only`) that the neighbour does not send, or that the
    /// speaker does not accept.
    pub missing_received: Vec<IpNet>,
    /// The speaker shut the session down: the neighbour sent more prefixes than allowed.
    pub prefix_limit_hit: bool,
}

/// The EVPN routes (RFC 7432) one neighbour sends, as the speaker sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentsSeen {
    /// What the import filter let through, by VNI.
    pub by_vni: BTreeMap<u32, SegmentSeen>,
    /// Routes the import filter rejected (another VNI or route target than the stretched ones).
    pub rejected: u64,
}

/// One VNI of a neighbour's accepted EVPN routes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentSeen {
    /// VXLAN tunnel endpoints, from inclusive-multicast (type 3) routes: where to flood.
    pub vteps: BTreeSet<IpAddr>,
    /// MAC addresses, from MAC/IP advertisement (type 2) routes, lowercase `aa:bb:...`.
    pub macs: BTreeSet<String>,
}

/// A non-zero origination mark for an endpoint: 32-bit FNV-1a of its UID, 0 mapped to 1 (0 is
/// the path identifier of every path added without one, the operator's included).
pub fn mark_of(uid: &str) -> u32 {
    let hash = uid.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash.max(1)
}

/// Prefixes truncated to their network address, sorted, without duplicates.
pub fn normalized(networks: &[IpNet]) -> BTreeSet<IpNet> {
    networks.iter().map(IpNet::trunc).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_stable_and_never_zero() {
        assert_eq!(mark_of("a"), mark_of("a"));
        assert_ne!(mark_of("a"), mark_of("b"));
        assert_ne!(mark_of(""), 0);
    }

    #[test]
    fn networks_are_truncated_and_deduplicated() {
        let nets: Vec<IpNet> = ["10.0.0.1/16", "10.0.0.0/16", "2001:db8::1/64"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let want: Vec<IpNet> = ["10.0.0.0/16", "2001:db8::/64"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(normalized(&nets).into_iter().collect::<Vec<_>>(), want);
    }
}
