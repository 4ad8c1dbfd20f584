//! The EVPN part of a route filter on GoBGP (L2 segments between cells): read, plan
//! ([`plan`]), write ([`wire`]), beside the unicast part of the same filter.
pub mod observe;
pub mod plan;
pub mod wire;

use std::collections::BTreeSet;
use std::net::IpAddr;

use plan::{Names, Observed, Write};

use super::filter::{Applied, Policies};
use super::names::Direction;
use crate::sdn::SdnError;
use crate::sdn::gobgp::GoBgp;
use crate::sdn::gobgp::proto::{self, reset_peer_request};
use crate::sdn::routes::RouteFilter;

impl GoBgp {
    /// Makes the EVPN objects of filter `key` what `filter` wants (none when it has no EVPN
    /// part or is `None`), given cellnet's `policies` as just listed; returns the writes made,
    /// described. Without EVPN wanted or listed, it reads nothing more.
    pub(super) async fn converge_evpn(
        &self,
        key: &str,
        filter: Option<&RouteFilter>,
        policies: &Policies,
    ) -> Result<Vec<String>, SdnError> {
        let names = Names::of(key);
        let desired = plan::desired(filter.and_then(|f| f.evpn.as_ref()));
        let mut observed = observed_statements(&names, policies);
        if desired.is_none() && observed.import.is_empty() && observed.export.is_none() {
            return Ok(Vec::new());
        }
        observed.route_targets = self.route_targets(&names).await?;
        let writes = plan::plan(&names, desired.as_ref(), &observed);
        let neighbors = filter.map(|f| f.neighbors.clone()).unwrap_or_default();
        let added = writes.iter().any(|w| matches!(w, Write::AddStatement(_)));
        let mut done = Vec::new();
        for write in writes {
            if write == Write::ResetIn && added {
                // Before the resets: the statements work only once their policy is assigned.
                done.extend(self.assign_first().await?);
            }
            if let Some(text) = self.apply_evpn_write(&names, &write, &neighbors).await? {
                done.push(text);
            }
        }
        Ok(done)
    }

    /// cellnet's policies first in both global assignments (the unicast plan keeps them there).
    async fn assign_first(&self) -> Result<Vec<String>, SdnError> {
        let mut done = Vec::new();
        for direction in Direction::BOTH {
            match self.put_first(direction).await? {
                Applied::Written(_) => done.push(format!("put {} first", direction.policy())),
                Applied::Skipped => {}
                Applied::Conflict(reason) => {
                    return Err(SdnError::Rejected {
                        endpoint: self.endpoint.to_string(),
                        operation: "SetPolicyAssignment",
                        message: reason,
                    });
                }
            }
        }
        Ok(done)
    }

    async fn route_targets(&self, names: &Names) -> Result<Option<BTreeSet<String>>, SdnError> {
        let set = self
            .defined_set_of_type(&names.set, proto::DefinedType::ExtCommunity as i32)
            .await?;
        Ok(set.map(|s| s.list.into_iter().collect()))
    }

    /// One write; `None` when there was nothing to do (a reset of a neighbour without session).
    async fn apply_evpn_write(
        &self,
        names: &Names,
        write: &Write,
        neighbors: &[IpAddr],
    ) -> Result<Option<String>, SdnError> {
        let text = match write {
            Write::AddTargets(members) => {
                self.add_defined_set(wire::target_set(&names.set, members))
                    .await?;
                format!("add {} to {}", members.join(","), names.set)
            }
            Write::RemoveTargets(members) => {
                self.delete_defined_set(wire::target_set(&names.set, members), false)
                    .await?;
                format!("remove {} from {}", members.join(","), names.set)
            }
            Write::DeleteSet => {
                self.delete_defined_set(wire::target_set(&names.set, &[]), true)
                    .await?;
                format!("delete set {}", names.set)
            }
            Write::AddStatement(statement) => {
                let name = names.name_of(statement);
                if self.statement_exists(name).await? {
                    self.delete_statement(name).await?;
                }
                let policy = match statement {
                    plan::Statement::Pass { .. } => Direction::Export,
                    _ => Direction::Import,
                };
                self.add_policy(policy.policy(), wire::statement(names, statement))
                    .await?;
                format!("add statement {name}")
            }
            Write::DeleteStatement { import, name } => {
                let policy = if *import {
                    Direction::Import
                } else {
                    Direction::Export
                };
                self.delete_policy_statement(policy.policy(), name).await?;
                self.delete_statement(name).await?;
                format!("delete statement {name}")
            }
            Write::ResetIn | Write::ResetOut => {
                return self.soft_reset(neighbors, *write == Write::ResetIn).await;
            }
        };
        Ok(Some(text))
    }

    /// A soft reset of each Established neighbour of the filter, so that the changed policy
    /// applies to what was already received (in) or sent (out).
    async fn soft_reset(&self, neighbors: &[IpAddr], inbound: bool) -> Result<Option<String>, SdnError> {
        use reset_peer_request::SoftResetDirection as D;
        let mut reset = Vec::new();
        for neighbor in neighbors {
            let Some(peer) = self.get_peer(*neighbor).await? else {
                continue;
            };
            if crate::sdn::gobgp::convert::session_of(&peer) != crate::sdn::SessionState::Established {
                continue;
            }
            let direction = if inbound { D::In } else { D::Out };
            let request = proto::ResetPeerRequest {
                address: neighbor.to_string(),
                communication: String::new(),
                soft: true,
                direction: direction as i32,
            };
            self.reset_peer(request).await?;
            reset.push(neighbor.to_string());
        }
        let way = if inbound { "in" } else { "out" };
        Ok((!reset.is_empty()).then(|| format!("soft reset {way} {}", reset.join(","))))
    }
}

/// The filter's EVPN statements in cellnet's policies, in policy order.
fn observed_statements(names: &Names, policies: &Policies) -> Observed {
    let mut observed = Observed::default();
    for (direction, policy) in policies {
        for listed in policy.statements.iter().filter(|s| names.is_statement(&s.name)) {
            let entry = (listed.name.clone(), wire::shape_of(names, listed));
            match direction {
                Direction::Import => observed.import.push(entry),
                Direction::Export => observed.export = Some(entry),
            }
        }
    }
    observed
}
