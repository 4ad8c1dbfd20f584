//! Pure: route counts of one neighbour from OpenDaylight's operational state.
//!
//! bgp-user-guide-operational-state.rst, "BGP Neighbor Family Operational State": each family of
//! a neighbour reports `state/prefixes` with `received` ("advertized by peer (adj-rib-in)"),
//! `installed` ("advertized by peer and installed (effective-rib-in)") and `sent` ("advertized
//! to peer (adj-rib-out)"); "Prefixes state is only provided once session is established".
//! "BGP Neighbor Families Operational State" returns every family of the neighbour in one
//! answer, which is what cellnet reads.
use std::collections::BTreeSet;

use ipnet::IpNet;
use serde_json::Value;

use super::member;
use crate::sdn::routes::{ExportRule, ImportRule, Origination, RouteCounts, RouteFilter, normalized};

/// The prefix counters of one family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefixes {
    pub received: u64,
    pub installed: u64,
    pub sent: u64,
}

/// The `state/prefixes` of every family in a `GET .../neighbor={address}/afi-safis` answer
/// (`{"bgp-openconfig-extensions:afi-safis": {"afi-safi": [...]}}`, or one entry as in the
/// single-family answer). Families without `prefixes` (no session yet) are left out, so an
/// empty result means the session is not established.
pub fn family_prefixes(body: &Value) -> Vec<Prefixes> {
    let list = member(body, "afi-safis")
        .and_then(|a| member(a, "afi-safi"))
        .or_else(|| member(body, "afi-safi"));
    let entries = match list {
        Some(Value::Array(entries)) => entries.as_slice(),
        Some(entry @ Value::Object(_)) => std::slice::from_ref(entry),
        _ => &[],
    };
    entries
        .iter()
        .filter_map(|e| member(e, "state").and_then(|s| member(s, "prefixes")))
        .map(|p| Prefixes {
            received: counter(member(p, "received")),
            installed: counter(member(p, "installed")),
            sent: counter(member(p, "sent")),
        })
        .collect()
}

/// A uint32 counter: a JSON number, or a string holding one; anything else counts 0.
fn counter(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// The networks of `origination` that `filter` exports: those that should reach the neighbour.
pub fn exported(origination: &Origination, filter: &RouteFilter) -> BTreeSet<IpNet> {
    match &filter.export {
        ExportRule::Only(nets) => origination
            .wanted()
            .intersection(&normalized(nets))
            .copied()
            .collect(),
        ExportRule::None => BTreeSet::new(),
    }
}

/// The networks `filter` accepts by name (`Only`); `Any` and `None` name none.
pub fn imported(filter: &RouteFilter) -> BTreeSet<IpNet> {
    match &filter.import {
        ImportRule::Only(nets) => normalized(nets),
        ImportRule::Any | ImportRule::None => BTreeSet::new(),
    }
}

/// One neighbour's counts: the families' counters summed (`rejected` = received - installed:
/// what the import policy dropped), the exported networks absent from its Adj-RIB-Out
/// (`sent_now`) and the named networks absent from its Effective-RIB-In (`installed_now`).
/// OpenDaylight documents no prefix limit, so `prefix_limit_hit` is always false.
pub fn counts(
    families: &[Prefixes],
    exported: &BTreeSet<IpNet>,
    sent_now: &BTreeSet<IpNet>,
    imported: &BTreeSet<IpNet>,
    installed_now: &BTreeSet<IpNet>,
) -> RouteCounts {
    let received: u64 = families.iter().map(|p| p.received).sum();
    let installed: u64 = families.iter().map(|p| p.installed).sum();
    RouteCounts {
        advertised: families.iter().map(|p| p.sent).sum(),
        received,
        accepted: installed,
        rejected: received.saturating_sub(installed),
        missing_advertised: exported.difference(sent_now).copied().collect(),
        missing_received: imported.difference(installed_now).copied().collect(),
        prefix_limit_hit: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_guides_family_state() {
        // "BGP Neighbor Family Operational State", JSON answer.
        let one = json!({"bgp-openconfig-extensions:afi-safi": [{
            "afi-safi-name": "openconfig-bgp-types:IPV4-UNICAST",
            "state": {"active": true, "prefixes": {"installed": 3, "sent": 0, "received": 3}}
        }]});
        assert_eq!(
            family_prefixes(&one),
            [Prefixes {
                received: 3,
                installed: 3,
                sent: 0
            }]
        );
        // "BGP Neighbor Families Operational State": no prefixes before the session is up.
        let all = json!({"bgp-openconfig-extensions:afi-safis": {"afi-safi": [
            {"afi-safi-name": "openconfig-bgp-types:IPV4-UNICAST", "state": {"active": false}},
            {"afi-safi-name": "openconfig-bgp-types:IPV6-UNICAST",
             "state": {"prefixes": {"installed": "1", "sent": 2, "received": 4}}}
        ]}});
        let families = family_prefixes(&all);
        assert_eq!(families.len(), 1);
        let nets = |v: &[&str]| v.iter().map(|n| n.parse().unwrap()).collect::<BTreeSet<IpNet>>();
        let c = counts(
            &families,
            &nets(&["192.0.2.0/24", "2001:db8:1::/48"]),
            &nets(&["2001:db8:1::/48"]),
            &nets(&["203.0.113.0/24"]),
            &BTreeSet::new(),
        );
        assert_eq!((c.advertised, c.received, c.accepted, c.rejected), (2, 4, 1, 3));
        assert_eq!(c.missing_advertised, ["192.0.2.0/24".parse::<IpNet>().unwrap()]);
        assert_eq!(c.missing_received, ["203.0.113.0/24".parse::<IpNet>().unwrap()]);
        assert!(!c.prefix_limit_hit);
    }
}
