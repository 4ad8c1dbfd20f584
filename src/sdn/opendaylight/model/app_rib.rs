//! Pure: the application peer and the routes of its programmable RIB, which carry a cell's
//! networks on OpenDaylight.
//!
//! - bgp-user-guide-bgp-application-peer.rst, "Application Peer configuration": a neighbour
//!   whose `config/peer-group` is `application-peers` ("It serves to distinguish Application
//!   Peer's from regular neighbors"); its address names it and its programmable RIB.
//! - bgp-user-guide-ip-unicast-family.rst, "IPv4 Unicast Route" / "IPv6 Unicast Route" (list
//!   `ipv4-route* [route-key path-id]`) and "Programming" (the JSON of a route: `route-key`
//!   equal to `prefix`, `path-id`, `attributes` with `origin`, `local-pref` and
//!   `ipv4-next-hop`/`ipv6-next-hop` `global`).
//!
//! cellnet's routes are those whose `path-id` is the origination mark: the RIB may hold routes
//! of others (another path-id, or written by hand), which are never changed or deleted.
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde_json::{Value, json};

use super::member;
use crate::sdn::routes::Origination;

/// The peer group that makes a neighbour an application peer.
pub const APPLICATION_PEERS: &str = "application-peers";

/// The unicast families of the programmable RIB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteFamily {
    V4,
    V6,
}

impl RouteFamily {
    pub const BOTH: [RouteFamily; 2] = [RouteFamily::V4, RouteFamily::V6];

    pub fn of(net: &IpNet) -> Self {
        match net {
            IpNet::V4(_) => Self::V4,
            IpNet::V6(_) => Self::V6,
        }
    }

    /// The family of a prefix as written (`192.0.2.0/24`, `2001:db8::/64`).
    pub fn of_prefix(prefix: &str) -> Self {
        if prefix.contains(':') { Self::V6 } else { Self::V4 }
    }

    fn list(self) -> &'static str {
        match self {
            Self::V4 => "ipv4-route",
            Self::V6 => "ipv6-route",
        }
    }

    fn next_hop(self) -> &'static str {
        match self {
            Self::V4 => "ipv4-next-hop",
            Self::V6 => "ipv6-next-hop",
        }
    }
}

/// Body of the create of application peer `address` (`POST .../neighbors`), exactly the
/// guide's "Application Peer configuration" JSON.
pub fn application_peer(address: Ipv4Addr) -> Value {
    json!({"neighbor": [{
        "neighbor-address": address.to_string(),
        "config": {"peer-group": APPLICATION_PEERS},
    }]})
}

/// Whether a neighbour entry is an application peer (its `config/peer-group`).
pub fn is_application_peer(entry: &Value) -> bool {
    member(entry, "config")
        .and_then(|c| member(c, "peer-group"))
        .and_then(Value::as_str)
        .is_some_and(|g| g == APPLICATION_PEERS)
}

/// One route as cellnet writes it: origin IGP, local preference 100 (the guide's values), the
/// endpoint's address as next hop, the mark as path-id.
pub fn route(net: IpNet, path_id: u32, next_hop: IpAddr) -> Value {
    let family = RouteFamily::of(&net);
    let mut attributes = json!({
        "origin": {"value": "igp"},
        "local-pref": {"pref": 100},
    });
    attributes[family.next_hop()] = json!({"global": next_hop.to_string()});
    json!({
        "route-key": net.to_string(),
        "path-id": path_id,
        "prefix": net.to_string(),
        "attributes": attributes,
    })
}

/// Body of a create (`POST .../bgp-inet:ipv4-routes`) and of a replace (`PUT
/// .../ipv4-route={key},{path-id}`): `{"bgp-inet:ipv4-route": [route]}`, module-qualified as RFC
/// 7951 section 4 wants a top-level member and as the application-peer guide writes both
/// ("Programmable RIB"; the IP unicast guide's "Programming" writes `ipv4-route` unqualified).
pub fn body(route: Value) -> Value {
    let family = RouteFamily::of_prefix(route["prefix"].as_str().unwrap_or_default());
    json!({ format!("bgp-inet:{}", family.list()): [route] })
}

/// A route read back from a RIB table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `route-key` as stored (what its URL needs), else the prefix as written.
    pub key: String,
    pub net: IpNet,
    pub path_id: u32,
    pub next_hop: Option<IpAddr>,
}

/// The routes of a table body: `{"bgp-inet:ipv4-routes": {"ipv4-route": [...]}}` (a GET of the
/// routes container) or `{"ipv4-route": [...]}` / `{"bgp-inet:ipv4-route": [...]}`. Entries
/// without a readable prefix or path-id are left out: they cannot be cellnet's.
pub fn routes(body: &Value) -> Vec<Route> {
    let mut out = Vec::new();
    for family in RouteFamily::BOTH {
        let container = member(body, &format!("{}s", family.list())).unwrap_or(body);
        if let Some(Value::Array(entries)) = member(container, family.list()) {
            out.extend(entries.iter().filter_map(|e| parse_route(e, family)));
        }
    }
    out
}

fn parse_route(entry: &Value, family: RouteFamily) -> Option<Route> {
    let prefix = member(entry, "prefix")
        .or_else(|| member(entry, "route-key"))?
        .as_str()?;
    let key = member(entry, "route-key")
        .and_then(Value::as_str)
        .unwrap_or(prefix)
        .to_owned();
    let path_id = match member(entry, "path-id")? {
        Value::Number(n) => u32::try_from(n.as_u64()?).ok()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let next_hop = member(entry, "attributes")
        .and_then(|a| member(a, family.next_hop()))
        .and_then(|n| member(n, "global"))
        .and_then(Value::as_str)
        .and_then(|a| a.parse().ok());
    Some(Route {
        key,
        net: prefix.parse().ok()?,
        path_id,
        next_hop,
    })
}

/// One write to the programmable RIB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteWrite {
    /// `POST` of a new route.
    Add(IpNet),
    /// `PUT` of a route of ours whose next hop differs.
    Replace(IpNet),
    /// `DELETE` of a route of ours no longer wanted (by its stored key).
    Delete { key: String },
}

impl fmt::Display for RouteWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Add(net) => write!(f, "add route {net}"),
            Self::Replace(net) => write!(f, "replace route {net} (next hop)"),
            Self::Delete { key } => write!(f, "delete route {key}"),
        }
    }
}

/// The writes that make cellnet's routes (path-id `origination.mark`) in `held` exactly the
/// wanted networks with the wanted next hop; adds first, so that no network is missing in
/// between. Routes with another path-id are not looked at.
pub fn plan(origination: &Origination, held: &[Route]) -> Vec<RouteWrite> {
    let ours: BTreeMap<&IpNet, &Route> = held
        .iter()
        .filter(|r| r.path_id == origination.mark)
        .map(|r| (&r.net, r))
        .collect();
    let wanted = origination.wanted();
    let mut writes: Vec<RouteWrite> = wanted
        .iter()
        .filter_map(|net| match ours.get(net) {
            None => Some(RouteWrite::Add(*net)),
            Some(r) if r.next_hop != Some(origination.next_hop) => Some(RouteWrite::Replace(*net)),
            Some(_) => None,
        })
        .collect();
    writes.extend(
        held.iter()
            .filter(|r| r.path_id == origination.mark && !wanted.contains(&r.net))
            .map(|r| RouteWrite::Delete { key: r.key.clone() }),
    );
    writes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn origination(networks: &[&str]) -> Origination {
        Origination {
            mark: 7,
            next_hop: "198.51.100.1".parse().unwrap(),
            networks: networks.iter().map(|n| net(n)).collect(),
            owner: "cellnet:ns/ep".into(),
        }
    }

    #[test]
    fn bodies_are_the_guides() {
        let peer = application_peer("10.25.1.9".parse().unwrap());
        assert_eq!(
            peer,
            json!({"neighbor": [{"neighbor-address": "10.25.1.9", "config": {"peer-group": "application-peers"}}]})
        );
        assert!(is_application_peer(&peer["neighbor"][0]));
        assert!(!is_application_peer(
            &json!({"neighbor-address": "10.25.1.9", "config": {"peer-as": 65000}})
        ));
        let r = route(net("10.0.0.11/32"), 7, "10.11.1.1".parse().unwrap());
        assert_eq!(
            body(r),
            json!({"bgp-inet:ipv4-route": [{
                "route-key": "10.0.0.11/32", "path-id": 7, "prefix": "10.0.0.11/32",
                "attributes": {"origin": {"value": "igp"}, "local-pref": {"pref": 100},
                               "ipv4-next-hop": {"global": "10.11.1.1"}}
            }]})
        );
        let v6 = route(net("2001:db8:30::/64"), 7, "2001:db8:1::6".parse().unwrap());
        assert_eq!(v6["attributes"]["ipv6-next-hop"]["global"], "2001:db8:1::6");
        assert!(body(v6).get("bgp-inet:ipv6-route").is_some());
    }

    #[test]
    fn reads_the_guides_answers() {
        // IP unicast guide, "Usage": a Loc-RIB table as it is read back.
        let body = json!({"bgp-inet:ipv4-routes": {"ipv4-route": [{
            "route-key": "193.0.2.1/32", "path-id": 0, "prefix": "193.0.2.1/32",
            "attributes": {"origin": {"value": "igp"}, "ipv4-next-hop": {"global": "10.0.0.1"}}
        }, {"prefix": "no path id/32"}]}});
        assert_eq!(
            routes(&body),
            [Route {
                key: "193.0.2.1/32".into(),
                net: net("193.0.2.1/32"),
                path_id: 0,
                next_hop: Some("10.0.0.1".parse().unwrap()),
            }]
        );
        let v6 = json!({"bgp-inet:ipv6-routes": {"ipv6-route": [{
            "route-key": "2a02:b80:0:1::/64", "path-id": "4294967295", "prefix": "2a02:b80:0:1::/64",
            "attributes": {"ipv6-next-hop": {"global": "2a02:b80:0:2::1"}}
        }]}});
        assert_eq!(routes(&v6)[0].path_id, u32::MAX);
        assert_eq!(routes(&json!(null)), []);
    }

    #[test]
    fn plans_only_our_routes() {
        let hop: IpAddr = "198.51.100.1".parse().unwrap();
        let held = |n: &str, id: u32, h: &str| Route {
            key: n.into(),
            net: net(n),
            path_id: id,
            next_hop: h.parse().ok(),
        };
        let o = origination(&["192.0.2.0/25", "192.0.2.128/25", "203.0.113.0/24"]);
        let rib = vec![
            held("192.0.2.0/25", 7, "198.51.100.1"),
            held("192.0.2.128/25", 7, "198.51.100.9"),
            held("198.51.100.0/24", 7, "198.51.100.1"),
            // Someone else's, for a prefix we want and one we do not.
            held("203.0.113.0/24", 0, "198.51.100.7"),
            held("10.0.0.0/8", 3, "198.51.100.7"),
        ];
        assert_eq!(
            plan(&o, &rib),
            [
                RouteWrite::Replace(net("192.0.2.128/25")),
                RouteWrite::Add(net("203.0.113.0/24")),
                RouteWrite::Delete {
                    key: "198.51.100.0/24".into()
                },
            ]
        );
        let steady: Vec<Route> = o
            .wanted()
            .iter()
            .map(|n| Route {
                key: n.to_string(),
                net: *n,
                path_id: 7,
                next_hop: Some(hop),
            })
            .collect();
        assert_eq!(plan(&o, &steady), []);
        assert_eq!(
            RouteWrite::Add(net("192.0.2.0/25")).to_string(),
            "add route 192.0.2.0/25"
        );
    }
}
