//! What one endpoint declares: `spec.networks`, and the Neutron subnet unless
//! `announceSubnet: false`.
use ipnet::IpNet;

use crate::api::InfraEndpoint;

/// The name shown for the Neutron subnet among an endpoint's networks.
pub const NEUTRON_SUBNET_NAME: &str = "neutron-subnet";

/// One declared network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    pub net: IpNet,
    pub name: Option<String>,
}

/// The endpoint's networks, in declaration order, the Neutron subnet last, each prefix once.
/// The API server refuses malformed prefixes; one that still does not parse is skipped (it
/// cannot be announced, and status lists only what is).
pub fn declared(ep: &InfraEndpoint) -> Vec<Declared> {
    let mut out: Vec<Declared> = Vec::new();
    let from_spec = ep.spec.networks.iter().map(|n| (n.cidr.as_str(), n.name.clone()));
    let subnet = ep
        .spec
        .neutron
        .as_ref()
        .filter(|n| n.subnet.announce_subnet)
        .map(|n| (n.subnet.cidr.as_str(), Some(NEUTRON_SUBNET_NAME.to_string())));
    for (cidr, name) in from_spec.chain(subnet) {
        let Ok(net) = cidr.parse::<IpNet>().map(|n| n.trunc()) else {
            continue;
        };
        if !out.iter().any(|d| d.net == net) {
            out.push(Declared { net, name });
        }
    }
    out
}
