//! What each managed side of an interconnect has on its speaker: the endpoint's origination
//! (shared by its interconnects) and one route filter per interconnect, from the endpoints'
//! declarations and the interconnect's `spec.routes`.
use std::net::IpAddr;

use ipnet::IpNet;
use kube::ResourceExt;

use super::conflicts::Conflict;
use super::declared::declared;
use crate::api::{self, CellInterconnect, ExportPolicy, ImportPolicy, InfraEndpoint};
use crate::controller::segments;
use crate::sdn::OWNER_PREFIX;
use crate::sdn::routes::{ExportRule, ImportRule, Origination, RouteFilter, mark_of};

/// What an endpoint's speaker originates, and the declared networks it does not (with why).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    pub origination: Origination,
    pub withheld: Vec<(IpNet, String)>,
}

/// The origination of `ep` (a managed endpoint with an IP address), without its conflicting
/// networks and without those of the other address family than its address: a path needs a
/// next hop of its own family, and the endpoint's address is that next hop.
pub fn origination(ep: &InfraEndpoint, conflicts: &[Conflict]) -> Option<Announced> {
    let next_hop: IpAddr = ep.spec.address.parse().ok()?;
    let mut networks = Vec::new();
    let mut withheld = Vec::new();
    for d in declared(ep) {
        if let Some(c) = conflicts.iter().find(|c| c.net == d.net) {
            let why = format!(
                "overlaps {} of InfraEndpoint {} (cell {})",
                c.other_net, c.other, c.other_cell
            );
            withheld.push((d.net, why));
        } else if d.net.addr().is_ipv4() != next_hop.is_ipv4() {
            withheld.push((
                d.net,
                format!("no next hop of its family: the endpoint's address is {next_hop}"),
            ));
        } else {
            networks.push(d.net);
        }
    }
    Some(Announced {
        origination: Origination {
            mark: mark_of(&ep.uid().unwrap_or_default()),
            next_hop,
            networks,
            owner: format!(
                "{OWNER_PREFIX}{}/{}",
                ep.namespace().unwrap_or_default(),
                ep.name_any()
            ),
        },
        withheld,
    })
}

/// The key of an interconnect's filters on a speaker: 8 hex digits of FNV-1a of
/// `<namespace>/<name>` (names on the speaker must be short; a clash needs ~65,000 interconnects
/// on one speaker to become likely).
pub fn filter_key(namespace: &str, name: &str) -> String {
    format!("{:08x}", mark_of(&format!("{namespace}/{name}")))
}

/// What one side of an interconnect should carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    /// The networks this side should accept from the other: what the other announces (for an
    /// external other: declares) and the import rule lets in, in the session's families.
    pub expected_in: Vec<IpNet>,
    /// This side's own networks that the session's families do not carry.
    pub not_carried: Vec<IpNet>,
}

impl Carried {
    /// Nothing to exchange in either direction: `RoutesExchanged` does not gate `Ready`.
    pub fn is_empty(&self) -> bool {
        self.expected_in.is_empty()
    }
}

fn carries(families: &[api::AddressFamily], net: &IpNet) -> bool {
    let family = match net {
        IpNet::V4(_) => api::AddressFamily::Ipv4Unicast,
        IpNet::V6(_) => api::AddressFamily::Ipv6Unicast,
    };
    families.contains(&family)
}

/// The networks an endpoint puts on the wire: a managed one its origination, an external one
/// what it declares (minus conflicts; cellnet cannot know more).
fn announced_by(ep: &InfraEndpoint, conflicts: &[Conflict]) -> Vec<IpNet> {
    match ep.spec.is_managed() {
        true => origination(ep, conflicts)
            .map(|a| a.origination.networks)
            .unwrap_or_default(),
        false => declared(ep)
            .into_iter()
            .map(|d| d.net)
            .filter(|n| !conflicts.iter().any(|c| c.net == *n))
            .collect(),
    }
}

/// What `this` side of `cic` carries towards `other` (both endpoints' conflicts given).
pub fn carried(
    cic: &CellInterconnect,
    this: (&InfraEndpoint, &[Conflict]),
    other: (&InfraEndpoint, &[Conflict]),
) -> Carried {
    let families = &cic.spec.bgp.address_families;
    let routes = &cic.spec.routes;
    let theirs = announced_by(other.0, other.1);
    let expected_in = match routes.import {
        ImportPolicy::None => Vec::new(),
        // The other side exports only when its interconnect end is managed by this same spec.
        _ if other.0.spec.is_managed() && routes.export == ExportPolicy::None => Vec::new(),
        ImportPolicy::RemoteNetworks | ImportPolicy::Any => {
            theirs.into_iter().filter(|n| carries(families, n)).collect()
        }
    };
    let not_carried = match routes.export {
        ExportPolicy::None => Vec::new(),
        ExportPolicy::Networks => announced_by(this.0, this.1)
            .into_iter()
            .filter(|n| !carries(families, n))
            .collect(),
    };
    Carried {
        expected_in,
        not_carried,
    }
}

/// The filter of `cic` on `this` side's speaker: towards the other endpoint's address, export
/// this endpoint's announced networks (or nothing), import the other's (or anything, or nothing).
pub fn route_filter(
    cic: &CellInterconnect,
    this: (&InfraEndpoint, &[Conflict]),
    other: (&InfraEndpoint, &[Conflict]),
) -> Option<RouteFilter> {
    let neighbor: IpAddr = other.0.spec.address.parse().ok()?;
    let routes = &cic.spec.routes;
    let import = match routes.import {
        ImportPolicy::Any => ImportRule::Any,
        ImportPolicy::None => ImportRule::None,
        ImportPolicy::RemoteNetworks => ImportRule::Only(announced_by(other.0, other.1)),
    };
    let export = match routes.export {
        ExportPolicy::None => ExportRule::None,
        ExportPolicy::Networks => ExportRule::Only(announced_by(this.0, this.1)),
    };
    // A segment problem stretches nothing (the interconnect's status says why).
    let stretched = segments::stretched(cic.spec.l2.as_ref(), this.0, other.0).unwrap_or_default();
    Some(RouteFilter {
        key: filter_key(&cic.namespace().unwrap_or_default(), &cic.name_any()),
        neighbors: vec![neighbor],
        import,
        export,
        evpn: segments::evpn_filter(cic.spec.l2.as_ref(), &stretched),
    })
}
