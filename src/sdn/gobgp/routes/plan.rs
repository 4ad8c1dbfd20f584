//! The pure diff: from what a filter or an origination wants and what the speaker holds, the
//! GoBGP writes to make, in an order that never leaves a moment less filtered than both the old
//! and the new state. Nothing here does I/O; an empty plan is
//! what keeps a steady-state ensure at zero writes.
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::evpn::plan::is_evpn_statement;
use super::model::{Desired, Member, Observed, ObservedStatement, Statement};
use super::names::{self, Direction};
use crate::sdn::routes::Origination;

/// One GoBGP write of a filter plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// `AddDefinedSet` (creates the set, or appends: members already there are not resent,
    /// since GoBGP would store them twice, policy.go AddDefinedSet).
    AddMembers {
        set: String,
        neighbor: bool,
        members: Vec<Member>,
    },
    /// `DeleteDefinedSet{all: false}`: drops these members; never the last one of a set in use.
    RemoveMembers {
        set: String,
        neighbor: bool,
        members: Vec<Member>,
    },
    /// `DeleteDefinedSet{all: true}`, once no statement refers to the set.
    DeleteSet { set: String, neighbor: bool },
    /// `AddPolicy` of cellnet's policy with this one statement (creates the policy if needed).
    AddStatement(Statement),
    /// `DeletePolicy{statements: [name], all: false}` (the statement goes too).
    DeleteStatement { direction: Direction, name: String },
    /// `SetPolicyAssignment` of the global assignment in this order (cellnet's policy first,
    /// the others in their order), then read back.
    Assign {
        direction: Direction,
        policies: Vec<String>,
    },
    /// `DeletePolicyAssignment` of cellnet's policy only, then `DeletePolicy{all: true}`: in this
    /// order, since GoBGP lets an IMPORT-assigned policy be deleted and keeps applying it
    /// (its in-use check looks at EXPORT twice, policy.go DeletePolicy).
    RemovePolicy { direction: Direction },
    /// `ResetPeer{soft, IN}`: re-runs the import policy over what the neighbour sent.
    ResetIn { neighbor: IpAddr },
    /// `ResetPeer{soft, OUT}`: sends what the export policy now allows (withdraws nothing).
    ResetOut { neighbor: IpAddr },
    /// `ResetPeer{hard}`: the only way to take back what was sent and is no longer allowed
    /// (server.go softResetOut sends the allowed paths and drops the filtered list). Planned when the export side narrowed;
    /// done only if a path being sent is really no longer allowed (else a soft reset OUT), as
    /// GoBGP then holds the session idle for 30 s.
    HardReset { neighbor: IpAddr },
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets = |m: &[Member]| m.iter().map(|m| m.net.to_string()).collect::<Vec<_>>().join(",");
        match self {
            Self::AddMembers { set, members, .. } => write!(f, "add {} to {set}", nets(members)),
            Self::RemoveMembers { set, members, .. } => write!(f, "remove {} from {set}", nets(members)),
            Self::DeleteSet { set, .. } => write!(f, "delete set {set}"),
            Self::AddStatement(s) => write!(f, "add statement {}", s.name),
            Self::DeleteStatement { name, .. } => write!(f, "delete statement {name}"),
            Self::Assign { direction, .. } => write!(f, "put {} first", direction.policy()),
            Self::RemovePolicy { direction } => write!(f, "remove policy {}", direction.policy()),
            Self::ResetIn { neighbor } => write!(f, "soft reset in {neighbor}"),
            Self::ResetOut { neighbor } => write!(f, "soft reset out {neighbor}"),
            Self::HardReset { neighbor } => write!(f, "hard reset {neighbor}"),
        }
    }
}

/// The writes that turn `observed` into `desired` for the filter `key`.
///
/// Order: grow sets, add statements, put the policy first, drop statements, shrink and delete
/// sets, then reset the neighbours whose filtering changed. A set a statement refers to is never
/// empty, and a change of statement shape adds the new one before dropping the old.
pub fn filter_plan(key: &str, desired: &Desired, observed: &Observed) -> Vec<Write> {
    let mut writes = grow_sets(desired, observed);
    let (adds, drops) = statement_changes(key, desired, observed);
    // An altered statement goes before its replacement: GoBGP refuses a second one of that name.
    for (direction, name) in drops.iter().filter(|(_, n)| adds.iter().any(|a| a.name == *n)) {
        let (direction, name) = (*direction, name.clone());
        writes.push(Write::DeleteStatement { direction, name });
    }
    writes.extend(adds.iter().cloned().map(Write::AddStatement));
    for direction in Direction::BOTH {
        if let Some(policies) = assignment_fix(key, direction, desired, observed) {
            writes.push(Write::Assign { direction, policies });
        }
    }
    let emptied = emptied_policies(key, desired, observed);
    for (direction, name) in &drops {
        let replaced = adds.iter().any(|a| a.name == *name);
        if !emptied.contains(direction) && !replaced {
            let (direction, name) = (*direction, name.clone());
            writes.push(Write::DeleteStatement { direction, name });
        }
    }
    writes.extend(emptied.iter().map(|&direction| Write::RemovePolicy { direction }));
    writes.extend(shrink_sets(desired, observed));
    let changed = writes.clone();
    writes.extend(resets(key, &changed, &adds, &drops, desired, observed));
    writes
}

/// New sets and new members of existing ones.
fn grow_sets(desired: &Desired, observed: &Observed) -> Vec<Write> {
    let mut writes = Vec::new();
    for (name, want) in &desired.sets {
        let have = observed.sets.get(name).map(|s| &s.members);
        let members: Vec<Member> = want
            .members
            .iter()
            .filter(|m| !have.is_some_and(|h| h.contains(m)))
            .copied()
            .collect();
        if !members.is_empty() {
            let (set, neighbor) = (name.clone(), want.neighbor);
            writes.push(Write::AddMembers {
                set,
                neighbor,
                members,
            });
        }
    }
    writes
}

/// Members no longer wanted, and sets no longer wanted at all.
fn shrink_sets(desired: &Desired, observed: &Observed) -> Vec<Write> {
    let mut writes = Vec::new();
    for (name, have) in &observed.sets {
        let (set, neighbor) = (name.clone(), have.neighbor);
        let Some(want) = desired.sets.get(name).filter(|w| w.neighbor == have.neighbor) else {
            writes.push(Write::DeleteSet { set, neighbor });
            continue;
        };
        let members: Vec<Member> = have.members.difference(&want.members).copied().collect();
        if !members.is_empty() {
            writes.push(Write::RemoveMembers {
                set,
                neighbor,
                members,
            });
        }
    }
    writes
}

/// Statements to add (missing or altered) and to drop (altered or no longer wanted).
fn statement_changes(
    key: &str,
    desired: &Desired,
    observed: &Observed,
) -> (Vec<Statement>, Vec<(Direction, String)>) {
    let ours = names::filter_prefix(key);
    let mut adds = Vec::new();
    let mut drops = Vec::new();
    for direction in Direction::BOTH {
        let have = observed
            .policies
            .get(&direction)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for want in desired.statements.iter().filter(|s| s.direction == direction) {
            match have.iter().find(|h| h.name == want.name) {
                Some(h) if h.shape.as_ref() == Some(want) => {}
                Some(_) => {
                    // Changed by someone else: dropped, then written again (a short gap that
                    // the soft reset after the plan covers).
                    drops.push((direction, want.name.clone()));
                    adds.push(want.clone());
                }
                None => adds.push(want.clone()),
            }
        }
        // The EVPN statements have a plan of their own (`evpn`).
        let unicast = |h: &&ObservedStatement| h.name.starts_with(&ours) && !is_evpn_statement(&h.name);
        for h in have.iter().filter(unicast) {
            if !desired.statements.iter().any(|s| s.name == h.name) {
                drops.push((direction, h.name.clone()));
            }
        }
    }
    (adds, drops)
}

/// The directions whose cellnet policy is left without statements by this plan.
fn emptied_policies(key: &str, desired: &Desired, observed: &Observed) -> BTreeSet<Direction> {
    let ours = names::filter_prefix(key);
    Direction::BOTH
        .into_iter()
        .filter(|d| {
            let others = observed
                .policies
                .get(d)
                .is_some_and(|statements| statements.iter().any(|s| !s.name.starts_with(&ours)));
            let wanted = desired.evpn || desired.statements.iter().any(|s| s.direction == *d);
            observed.policies.contains_key(d) && !others && !wanted
        })
        .collect()
}

/// The assignment with cellnet's policy first and the others in their order, when the policy
/// will have statements (this filter's or others') and is not first already. Appending would let an operator's ACCEPT
/// shadow cellnet's REJECT (seen on gobgpd 3.10).
fn assignment_fix(
    key: &str,
    direction: Direction,
    desired: &Desired,
    observed: &Observed,
) -> Option<Vec<String>> {
    let ours = direction.policy();
    let others = names::filter_prefix(key);
    let kept = observed
        .policies
        .get(&direction)
        .is_some_and(|s| s.iter().any(|s| !s.name.starts_with(&others)));
    // The EVPN plan assigns a policy it creates itself; here only one that exists is kept first.
    let evpn = desired.evpn && observed.policies.contains_key(&direction);
    let wanted = evpn || desired.statements.iter().any(|s| s.direction == direction);
    if !wanted && !kept {
        return None;
    }
    let current = observed
        .assignments
        .get(&direction)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if current.first().map(String::as_str) == Some(ours) {
        return None;
    }
    Some(first_then_others(ours, current))
}

/// `ours` followed by `current` without it, in their order.
pub fn first_then_others(ours: &str, current: &[String]) -> Vec<String> {
    std::iter::once(ours.to_owned())
        .chain(current.iter().filter(|p| *p != ours).cloned())
        .collect()
}

/// The neighbour resets a plan needs, after its other writes.
fn resets(
    key: &str,
    writes: &[Write],
    adds: &[Statement],
    drops: &[(Direction, String)],
    desired: &Desired,
    observed: &Observed,
) -> Vec<Write> {
    let peers_name = names::peers_set(key);
    let peers_changed = writes.iter().any(|w| touches_set(w, &peers_name));
    let touched = |direction: Direction| {
        peers_changed
            || adds.iter().any(|s| s.direction == direction)
            || drops.iter().any(|(d, _)| *d == direction)
            || writes
                .iter()
                .any(|w| touches_set(w, &names::direction_prefix(key, direction)))
    };
    let mut neighbors: BTreeSet<IpAddr> = BTreeSet::new();
    for sets in [&desired.sets, &observed.sets] {
        if let Some(set) = sets.get(&peers_name) {
            neighbors.extend(set.members.iter().map(|m| m.net.addr()));
        }
    }
    let export_narrowed = export_narrowed(key, writes, adds, observed);
    let mut resets = Vec::new();
    for &neighbor in &neighbors {
        if touched(Direction::Import) {
            resets.push(Write::ResetIn { neighbor });
        }
        if touched(Direction::Export) {
            resets.push(if export_narrowed {
                Write::HardReset { neighbor }
            } else {
                Write::ResetOut { neighbor }
            });
        }
    }
    resets
}

/// Whether the export side now sends less than before to some neighbour: a family newly
/// filtered or now rejected entirely, a statement altered by hand put back, an allowed network
/// removed, or a neighbour newly filtered. Only then is a session reset needed.
fn export_narrowed(key: &str, writes: &[Write], adds: &[Statement], observed: &Observed) -> bool {
    let out_sets = names::direction_prefix(key, Direction::Export);
    let had = observed
        .policies
        .get(&Direction::Export)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let narrowing = |add: &Statement| {
        let before: Vec<_> = [true, false]
            .map(|all| names::statement(key, Direction::Export, add.family, all))
            .into_iter()
            .filter(|name| had.iter().any(|h| h.name == *name))
            .collect();
        // A reject-all, a first statement for the family, or a replacement of the same name.
        add.allowed.is_none() || before.is_empty() || before.contains(&add.name)
    };
    adds.iter()
        .filter(|s| s.direction == Direction::Export)
        .any(narrowing)
        || writes.iter().any(|w| match w {
            Write::RemoveMembers { set, .. } => set.starts_with(&out_sets),
            Write::AddMembers { set, .. } => *set == names::peers_set(key),
            _ => false,
        })
}

/// Whether a set write concerns a set whose name starts with `start`.
fn touches_set(write: &Write, start: &str) -> bool {
    match write {
        Write::AddMembers { set, .. } | Write::RemoveMembers { set, .. } | Write::DeleteSet { set, .. } => {
            set.starts_with(start)
        }
        _ => false,
    }
}

/// One of cellnet's local paths as listed (`identifier == mark`, no neighbour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnPath {
    pub net: IpNet,
    pub next_hop: Option<IpAddr>,
}

/// A path write of an origination plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathWrite {
    /// `AddPath` with cellnet's identifier: creates the path, or replaces ours with the same
    /// prefix (GoBGP's implicit withdraw of the same source and identifier, destination.go).
    Add(IpNet),
    /// `DeletePath` with a `path` carrying cellnet's identifier: never one without a path, which
    /// deletes every local path of the family (server.go DeletePath).
    Delete(IpNet),
}

impl fmt::Display for PathWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Add(net) => write!(f, "originate {net}"),
            Self::Delete(net) => write!(f, "withdraw {net}"),
        }
    }
}

/// The path writes that make cellnet's local paths exactly `origination`'s networks. Only the
/// next hop is compared: an operator's import policy may change other attributes of local paths
/// (local-pref, communities: the global import policy runs on local paths too, server.go
/// propagateUpdate) and re-adding would not undo that.
pub fn origination_plan(origination: &Origination, ours: &[OwnPath]) -> Vec<PathWrite> {
    let wanted = origination.wanted();
    let mut writes: Vec<PathWrite> = wanted
        .iter()
        .filter(|net| {
            !ours
                .iter()
                .any(|p| p.net == **net && p.next_hop == Some(origination.next_hop))
        })
        .map(|net| PathWrite::Add(*net))
        .collect();
    let stale: BTreeSet<IpNet> = ours
        .iter()
        .map(|p| p.net)
        .filter(|n| !wanted.contains(n))
        .collect();
    writes.extend(stale.into_iter().map(PathWrite::Delete));
    writes
}
