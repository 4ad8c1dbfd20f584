//! The names cellnet gives its objects on a GoBGP speaker: every one starts with `cellnet-`, and
//! cellnet never lists by name, changes or deletes anything else.
//!
//! GoBGP keeps sets, statements and policies in one flat namespace each, with free-form names.
//! A filter's objects are all named `cellnet-<key>-...`, so that one filter's plan never touches
//! another's.
use crate::sdn::SdnError;

/// The name prefix of everything cellnet creates in GoBGP's policy configuration.
pub const PREFIX: &str = "cellnet-";

/// Route filtering direction: a global IMPORT or EXPORT policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Import,
    Export,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Import, Direction::Export];

    /// cellnet's one policy of this direction on a speaker, shared by all its filters.
    pub fn policy(self) -> &'static str {
        match self {
            Self::Import => "cellnet-import",
            Self::Export => "cellnet-export",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Import => "in",
            Self::Export => "out",
        }
    }
}

/// The unicast families cellnet filters (a prefix condition only ever matches its own family,
/// policy.go PrefixCondition.Evaluate returns false for another family before applying INVERT,
/// so each gets its own statement).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(net: &ipnet::IpNet) -> Self {
        match net {
            ipnet::IpNet::V4(_) => Self::V4,
            ipnet::IpNet::V6(_) => Self::V6,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::V4 => "v4",
            Self::V6 => "v6",
        }
    }
}

/// `cellnet-<key>-`: what every object of one filter starts with.
pub fn filter_prefix(key: &str) -> String {
    format!("{PREFIX}{key}-")
}

/// `cellnet-<key>-in-` / `cellnet-<key>-out-`: the start of a filter's sets and statements of
/// one direction.
pub fn direction_prefix(key: &str, direction: Direction) -> String {
    format!("{PREFIX}{key}-{}-", direction.tag())
}

/// The NEIGHBOR set of a filter: its neighbours as host prefixes.
pub fn peers_set(key: &str) -> String {
    format!("{PREFIX}{key}-peers")
}

/// The PREFIX set of the networks a filter allows in one direction and family.
pub fn prefix_set(key: &str, direction: Direction, family: Family) -> String {
    format!("{}{}", direction_prefix(key, direction), family.tag())
}

/// The statement of a filter for one direction and family. Its name says its shape: a
/// "reject what is not in the set" statement and a "reject all" one have different names, so a
/// change of shape adds the new statement before deleting the old one (no moment unfiltered).
pub fn statement(key: &str, direction: Direction, family: Family, reject_all: bool) -> String {
    let base = prefix_set(key, direction, family);
    if reject_all { format!("{base}-all") } else { base }
}

/// Every set name a filter can have, with whether it is the NEIGHBOR set.
pub fn all_sets(key: &str) -> Vec<(String, bool)> {
    let mut sets = vec![(peers_set(key), true)];
    for direction in Direction::BOTH {
        for family in Family::BOTH {
            sets.push((prefix_set(key, direction, family), false));
        }
    }
    sets
}

/// A filter key must be short and without `-`: with one, `cellnet-<key>-` could be the start of
/// another key's names (keys `ab` and `ab-in`), and one filter's plan would delete the other's.
pub fn check_key(key: &str) -> Result<(), SdnError> {
    let valid = !key.is_empty()
        && key.len() <= 40
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(SdnError::InvalidConfig(format!(
            "route filter key {key:?}: expected 1-40 characters of a-z and 0-9"
        )))
    }
}
