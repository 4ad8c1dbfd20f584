//! cellnet's policy objects on a GoBGP speaker as plain values: what a filter wants
//! ([`desired`]) and what was read back ([`Observed`]), compared by the [`plan`](super::plan).
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::names::{self, Direction, Family};
use crate::sdn::routes::{ExportRule, ImportRule, RouteFilter, normalized};

/// One member of a defined set. Neighbours are host prefixes (GoBGP refuses a bare address in a
/// NEIGHBOR set); prefixes match exactly their own length (`min == max == len`) unless someone else made
/// them, and then the plan removes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub net: IpNet,
    pub min: u8,
    pub max: u8,
}

impl Member {
    /// A member matching exactly `net`.
    pub fn exact(net: IpNet) -> Self {
        let len = net.prefix_len();
        Self {
            net: net.trunc(),
            min: len,
            max: len,
        }
    }

    /// The host prefix of a neighbour.
    pub fn host(address: IpAddr) -> Self {
        Self::exact(IpNet::from(address))
    }
}

/// A defined set of cellnet's: its kind and members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    /// NEIGHBOR (true) or PREFIX (false).
    pub neighbor: bool,
    pub members: BTreeSet<Member>,
}

/// One of cellnet's statements: `neighbor in <peers> ∧ family ∧ [prefix not in <set>] → REJECT`.
/// It never ACCEPTs, so that the operator's later policies still run on what it lets through.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Statement {
    pub name: String,
    pub direction: Direction,
    pub family: Family,
    /// The NEIGHBOR set (match ANY).
    pub peers: String,
    /// The PREFIX set the route must be in (match INVERT); `None`: reject the whole family.
    pub allowed: Option<String>,
}

/// A statement as read back: `shape` is `None` when it is not one cellnet would write (changed
/// by someone else): the plan replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedStatement {
    pub name: String,
    pub shape: Option<Statement>,
}

/// cellnet's objects on one speaker, as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The sets of the filter being planned, by name (absent: not there).
    pub sets: BTreeMap<String, Set>,
    /// The statements of `cellnet-import` / `cellnet-export`, all filters' (absent: no policy).
    pub policies: BTreeMap<Direction, Vec<ObservedStatement>>,
    /// The global assignment of each direction: policy names in evaluation order.
    pub assignments: BTreeMap<Direction, Vec<String>>,
}

/// What a filter wants on the speaker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub sets: BTreeMap<String, Set>,
    pub statements: Vec<Statement>,
    /// The filter has an EVPN part (its own plan, `evpn`): its statements sit in both of
    /// cellnet's policies and use the peers set, which must then stay and be assigned.
    pub evpn: bool,
}

/// The objects `filter` needs (`None`: none, the filter is being removed).
pub fn desired(key: &str, filter: Option<&RouteFilter>) -> Desired {
    let Some(filter) = filter else {
        return Desired::default();
    };
    let mut want = Desired {
        evpn: filter.evpn.is_some(),
        ..Default::default()
    };
    let rules = [
        (Direction::Import, allowed_import(&filter.import)),
        (Direction::Export, Some(allowed_export(&filter.export))),
    ];
    for (direction, allowed) in rules {
        let Some(allowed) = allowed else { continue };
        for family in Family::BOTH {
            let nets: BTreeSet<Member> = allowed
                .iter()
                .filter(|n| Family::of(n) == family)
                .map(|n| Member::exact(*n))
                .collect();
            want.statements
                .push(statement(key, direction, family, !nets.is_empty()));
            if !nets.is_empty() {
                let set = Set {
                    neighbor: false,
                    members: nets,
                };
                want.sets.insert(names::prefix_set(key, direction, family), set);
            }
        }
    }
    if !want.statements.is_empty() || want.evpn {
        let members = filter.neighbors.iter().map(|a| Member::host(*a)).collect();
        let peers = Set {
            neighbor: true,
            members,
        };
        want.sets.insert(names::peers_set(key), peers);
    }
    want
}

/// The networks an import rule lets in (`None`: everything, no statement at all).
fn allowed_import(rule: &ImportRule) -> Option<BTreeSet<IpNet>> {
    match rule {
        ImportRule::Any => None,
        ImportRule::None => Some(BTreeSet::new()),
        ImportRule::Only(nets) => Some(normalized(nets)),
    }
}

fn allowed_export(rule: &ExportRule) -> BTreeSet<IpNet> {
    match rule {
        ExportRule::None => BTreeSet::new(),
        ExportRule::Only(nets) => normalized(nets),
    }
}

/// The statement of one direction and family: with the allowed set when there are networks of
/// that family, else "reject the family" (an emptied prefix set and a created-empty one behave
/// oppositely under INVERT, seen on gobgpd 3.10: one matches nothing, the other everything, so
/// a set is never left empty).
fn statement(key: &str, direction: Direction, family: Family, with_set: bool) -> Statement {
    Statement {
        name: names::statement(key, direction, family, !with_set),
        direction,
        family,
        peers: names::peers_set(key),
        allowed: with_set.then(|| names::prefix_set(key, direction, family)),
    }
}
