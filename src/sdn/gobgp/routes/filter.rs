//! Route filters on GoBGP: read cellnet's policy objects, plan, write.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;

use super::model::{self, Desired, Observed};
use super::names::{self, Direction};
use super::plan::{self, Write};
use super::wire;
use crate::sdn::gobgp::GoBgp;
use crate::sdn::gobgp::proto::{self, reset_peer_request};
use crate::sdn::routes::{RouteFilter, RoutesOutcome};
use crate::sdn::{SdnError, SessionState};

impl GoBgp {
    /// Makes the filter `filter.key` on this speaker exactly `filter`: cellnet's statements in
    /// `cellnet-import` / `cellnet-export`, those policies first in the global assignments, and
    /// a reset of each neighbour whose filtering changed. Writes nothing when all is in place, so
    /// calling it again is how drift (a statement or set member removed by hand) is repaired.
    pub async fn ensure_route_filter(&self, filter: &RouteFilter) -> Result<RoutesOutcome, SdnError> {
        names::check_key(&filter.key)?;
        if filter.neighbors.is_empty() {
            // An empty NEIGHBOR set matches every route, the fabric's and local ones included
            // (GoBGP's policy.md, "neighbor-sets"): a filter without neighbours would reject
            // everything.
            return Err(SdnError::InvalidConfig(format!(
                "route filter {}: no neighbours",
                filter.key
            )));
        }
        self.converge_filter(&filter.key, Some(filter)).await
    }

    /// Removes everything of the filter `key`, and cellnet's policies once no filter is left.
    /// The operator's policies, sets and assignment order stay as they are.
    pub async fn remove_route_filter(&self, key: &str) -> Result<RoutesOutcome, SdnError> {
        names::check_key(key)?;
        self.converge_filter(key, None).await
    }

    async fn converge_filter(
        &self,
        key: &str,
        filter: Option<&RouteFilter>,
    ) -> Result<RoutesOutcome, SdnError> {
        let desired = model::desired(key, filter);
        let clean_since = self.memo.filter_clean_since(key);
        let read_at = Instant::now();
        let (observed, policies) = self
            .read_filter_state(key, &desired, clean_since.is_some())
            .await?;
        // EVPN objects come after the unicast ones (they use the peers set and the policies)
        // and go before them.
        let evpn_wanted = filter.is_some_and(|f| f.evpn.is_some());
        let mut done = match evpn_wanted {
            false => self.converge_evpn(key, filter, &policies).await?,
            true => Vec::new(),
        };
        let plan = plan::filter_plan(key, &desired, &observed);
        if !plan.is_empty() {
            self.memo.filter_writing(key);
        }
        let sent = self.sent_before_narrowing(&plan).await?;
        for write in plan {
            if let Write::HardReset { neighbor } = write {
                done.extend(self.take_back(neighbor, sent.get(&neighbor)).await?);
                continue;
            }
            match self.apply_filter_write(&write).await? {
                Applied::Written(mut extra) => {
                    done.append(&mut extra);
                    done.push(write.to_string());
                }
                Applied::Skipped => {}
                Applied::Conflict(reason) => return Ok(RoutesOutcome::Conflict { reason }),
            }
        }
        if evpn_wanted {
            done.extend(self.converge_evpn(key, filter, &policies).await?);
        }
        if !done.is_empty() {
            tracing::info!(endpoint = %self.endpoint, key, writes = ?done, "GoBGP route filter changed");
        }
        // Every set of the filter is now one that its desired state names.
        self.memo.filter_done(key, clean_since.unwrap_or(read_at));
        Ok(RoutesOutcome::from_writes(done))
    }

    /// What each neighbour the plan would hard-reset is sent now, under the old export policy
    /// (GoBGP computes `ADJ_OUT` through the current policy when listed).
    async fn sent_before_narrowing(
        &self,
        plan: &[Write],
    ) -> Result<BTreeMap<IpAddr, BTreeSet<IpNet>>, SdnError> {
        let mut sent = BTreeMap::new();
        for write in plan {
            if let Write::HardReset { neighbor } = write
                && let Some(prefixes) = self.advertised_prefixes(*neighbor).await?
            {
                sent.insert(*neighbor, prefixes);
            }
        }
        Ok(sent)
    }

    /// Takes back from `neighbor` what the narrower export policy no longer allows. GoBGP's
    /// soft reset OUT sends the allowed paths and withdraws nothing (`softResetOut` ignores the
    /// filtered list), so only a session reset does, and it keeps the session idle for the
    /// peer's `idle_hold_time_after_reset` (30 s by default). Hence it is done only when a path
    /// that was being sent is no longer allowed; otherwise a soft reset OUT sends what is new.
    async fn take_back(
        &self,
        neighbor: IpAddr,
        before: Option<&BTreeSet<IpNet>>,
    ) -> Result<Vec<String>, SdnError> {
        let Some(before) = before else {
            return Ok(Vec::new()); // No session: nothing was sent.
        };
        let after = self.advertised_prefixes(neighbor).await?.unwrap_or_default();
        let reset = if before.is_subset(&after) {
            Write::ResetOut { neighbor }
        } else {
            Write::HardReset { neighbor }
        };
        match self.apply_filter_write(&reset).await? {
            Applied::Written(_) => Ok(vec![reset.to_string()]),
            Applied::Skipped | Applied::Conflict(_) => Ok(Vec::new()),
        }
    }

    /// cellnet's two policies, the global assignment order of both directions (one call), and
    /// the filter's sets by name, never a listing of all. `narrow`: only the sets that the
    /// desired state or the filter's listed statements name (the memo says no other is left).
    async fn read_filter_state(
        &self,
        key: &str,
        desired: &Desired,
        narrow: bool,
    ) -> Result<(Observed, Policies), SdnError> {
        let mut observed = Observed::default();
        let mut policies = Policies::new();
        for direction in Direction::BOTH {
            if let Some(policy) = self.policy(direction.policy()).await? {
                let statements = policy
                    .statements
                    .iter()
                    .map(|s| wire::statement_from_proto(direction, s))
                    .collect();
                observed.policies.insert(direction, statements);
                policies.insert(direction, policy);
            }
        }
        for (direction, assignment) in self.assignments().await? {
            let order = assignment.policies.into_iter().map(|p| p.name).collect();
            observed.assignments.insert(direction, order);
        }
        let named = named_sets(key, desired, &observed).filter(|_| narrow);
        for (name, neighbor) in names::all_sets(key) {
            if named.as_ref().is_some_and(|named| !named.contains(&name)) {
                continue;
            }
            if let Some(set) = self.defined_set(&name, neighbor).await? {
                observed.sets.insert(name, wire::set_from_proto(&set));
            }
        }
        Ok((observed, policies))
    }

    async fn apply_filter_write(&self, write: &Write) -> Result<Applied, SdnError> {
        match write {
            Write::AddMembers {
                set,
                neighbor,
                members,
            } => {
                self.add_defined_set(wire::defined_set(set, *neighbor, members))
                    .await?
            }
            Write::RemoveMembers {
                set,
                neighbor,
                members,
            } => {
                let set = wire::defined_set(set, *neighbor, members);
                self.delete_defined_set(set, false).await?
            }
            Write::DeleteSet { set, neighbor } => {
                self.delete_defined_set(wire::defined_set(set, *neighbor, &[]), true)
                    .await?
            }
            Write::AddStatement(statement) => return self.add_statement(statement).await,
            Write::DeleteStatement { direction, name } => {
                self.delete_policy_statement(direction.policy(), name).await?;
                self.delete_statement(name).await?
            }
            Write::Assign { direction, .. } => return self.put_first(*direction).await,
            Write::RemovePolicy { direction } => self.remove_policy(*direction).await?,
            Write::ResetIn { neighbor } => return self.reset(*neighbor, Reset::In).await,
            Write::ResetOut { neighbor } => return self.reset(*neighbor, Reset::Out).await,
            Write::HardReset { neighbor } => return self.reset(*neighbor, Reset::Hard).await,
            // Hard resets go through `take_back` first, which decides whether one is needed.
        }
        Ok(Applied::Written(Vec::new()))
    }

    /// Adds a statement to cellnet's policy, first deleting a left-over definition of that name
    /// (one removed from the policy by hand stays defined, see [`GoBgp::delete_policy_statement`],
    /// and GoBGP refuses to define a name twice).
    async fn add_statement(&self, statement: &model::Statement) -> Result<Applied, SdnError> {
        let mut extra = Vec::new();
        if self.statement_exists(&statement.name).await? {
            self.delete_statement(&statement.name).await?;
            extra.push(format!("delete left-over statement {}", statement.name));
        }
        let policy = statement.direction.policy();
        self.add_policy(policy, wire::statement(statement)).await?;
        Ok(Applied::Written(extra))
    }

    /// Puts cellnet's policy first in the global assignment, the others after it in their
    /// order, keeping the default action. GoBGP has no compare-and-swap: read, write, read
    /// again; if someone changed the others in between, once more, then a conflict.
    pub(super) async fn put_first(&self, direction: Direction) -> Result<Applied, SdnError> {
        let ours = direction.policy();
        for _ in 0..2 {
            let before = self.assignment(direction).await?;
            let names: Vec<String> = before.policies.iter().map(|p| p.name.clone()).collect();
            if names.first().map(String::as_str) == Some(ours) {
                return Ok(Applied::Skipped);
            }
            let wanted = plan::first_then_others(ours, &names);
            self.set_assignment(direction, &wanted, before.default_action)
                .await?;
            let after = self.assignment(direction).await?;
            let now: Vec<String> = after.policies.into_iter().map(|p| p.name).collect();
            if now == wanted {
                return Ok(Applied::Written(Vec::new()));
            }
        }
        Ok(Applied::Conflict(format!(
            "the global {direction:?} policy assignment kept changing while {ours} was put first"
        )))
    }

    /// Unassigns cellnet's policy (only it), then deletes it with its statements.
    async fn remove_policy(&self, direction: Direction) -> Result<(), SdnError> {
        let name = direction.policy();
        let assigned = self.assignment(direction).await?;
        if assigned.policies.iter().any(|p| p.name == name) {
            self.delete_assignment(direction, name).await?;
        }
        self.delete_policy(name).await
    }

    /// A neighbour reset, only for a configured and Established peer: there is nothing to
    /// re-evaluate or take back otherwise, and a fresh session starts with the new policy.
    async fn reset(&self, neighbor: IpAddr, reset: Reset) -> Result<Applied, SdnError> {
        let Some(peer) = self.get_peer(neighbor).await? else {
            return Ok(Applied::Skipped);
        };
        if crate::sdn::gobgp::convert::session_of(&peer) != SessionState::Established {
            return Ok(Applied::Skipped);
        }
        use reset_peer_request::SoftResetDirection as D;
        let (soft, direction) = match reset {
            Reset::In => (true, D::In),
            Reset::Out => (true, D::Out),
            Reset::Hard => (false, D::In),
        };
        let request = proto::ResetPeerRequest {
            // Never empty: "" (or "all") resets every peer of the speaker (server.go ResetPeer).
            address: neighbor.to_string(),
            communication: if soft {
                String::new()
            } else {
                "cellnet: export filter narrowed".to_owned()
            },
            soft,
            direction: direction as i32,
        };
        self.reset_peer(request).await?;
        Ok(Applied::Written(Vec::new()))
    }
}

/// cellnet's policies as listed, by direction.
pub(super) type Policies = BTreeMap<Direction, proto::Policy>;

/// What applying one planned write did.
pub(super) enum Applied {
    /// Done, after the extra writes it needed (named).
    Written(Vec<String>),
    /// Not needed after all (already in place, or a reset of a peer with no session).
    Skipped,
    Conflict(String),
}

#[derive(Clone, Copy)]
enum Reset {
    In,
    Out,
    Hard,
}

/// The sets of filter `key` that its desired state or its listed statements refer to; `None`
/// when one of its statements was altered (it may refer to anything): then all are read.
fn named_sets(key: &str, desired: &Desired, observed: &Observed) -> Option<BTreeSet<String>> {
    let ours = names::filter_prefix(key);
    let mut named: BTreeSet<String> = desired.sets.keys().cloned().collect();
    let listed = observed.policies.values().flatten();
    let unicast = |s: &&model::ObservedStatement| {
        s.name.starts_with(&ours) && !super::evpn::plan::is_evpn_statement(&s.name)
    };
    for statement in listed.filter(unicast) {
        let shape = statement.shape.as_ref()?;
        named.insert(shape.peers.clone());
        named.extend(shape.allowed.clone());
    }
    Some(named)
}
