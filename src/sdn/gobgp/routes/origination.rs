//! Originating a cell's networks on GoBGP: cellnet's local paths, told apart by their path
//! identifier (the origination mark).
use ipnet::IpNet;

use super::names::Family;
use super::plan::{self, OwnPath, PathWrite};
use super::wire;
use crate::sdn::SdnError;
use crate::sdn::gobgp::GoBgp;
use crate::sdn::gobgp::proto::{self, table_lookup_prefix};
use crate::sdn::routes::{Origination, RoutesOutcome, check_mark};

impl GoBgp {
    /// Makes cellnet's local paths with `origination.mark` exactly its networks, each with its
    /// next hop. Paths of others (another identifier, or received) are never touched, even for
    /// the same prefix: they coexist with ours (GoBGP's implicit withdraw only replaces a path of
    /// the same source and identifier, destination.go). Reports a conflict when the
    /// speaker's own global import policy drops a path as it is added (GoBGP answers OK and
    /// keeps nothing; a local path has no Adj-RIB-In to re-evaluate): adding it again would not
    /// help.
    ///
    /// Reads the whole Loc-RIB only when this client has not done so recently; otherwise EXACT
    /// lookups of the wanted networks and of those it may still hold ([`RoutesMemo`]) find the
    /// same paths of ours for a fraction of the table.
    ///
    /// [`RoutesMemo`]: super::RoutesMemo
    pub async fn ensure_origination(&self, origination: &Origination) -> Result<RoutesOutcome, SdnError> {
        origination.check()?;
        let (mark, wanted) = (origination.mark, origination.wanted());
        let known = self.memo.may_hold(mark);
        let ours = match &known {
            Some(held) => {
                let lookup: Vec<IpNet> = held.union(&wanted).copied().collect();
                self.own_paths(mark, Some(&lookup)).await?
            }
            None => self.own_paths(mark, None).await?,
        };
        let full = known.is_none();
        let writes = plan::origination_plan(origination, &ours);
        if writes.is_empty() {
            self.memo.holds(mark, wanted, full);
            return Ok(RoutesOutcome::Unchanged);
        }
        self.memo.writing(mark, &wanted);
        let asn = self.global().await?.asn;
        let mut added = Vec::new();
        for write in &writes {
            match *write {
                PathWrite::Add(net) => {
                    let path = wire::origination_path(net, origination.next_hop, origination.mark, asn);
                    self.add_path(path).await?;
                    added.push(net);
                }
                PathWrite::Delete(net) => {
                    self.delete_path(wire::withdrawal_path(net, origination.mark))
                        .await?
                }
            }
        }
        tracing::info!(endpoint = %self.endpoint, owner = %origination.owner, mark = origination.mark,
            writes = ?writes, "GoBGP origination changed");
        let kept = self.own_paths(origination.mark, Some(&added)).await?;
        let dropped: Vec<String> = added
            .iter()
            .filter(|net| !kept.iter().any(|p| p.net == **net))
            .map(ToString::to_string)
            .collect();
        if !dropped.is_empty() {
            let reason = format!(
                "the speaker's import policy dropped cellnet's path(s) for {}",
                dropped.join(", ")
            );
            return Ok(RoutesOutcome::Conflict { reason });
        }
        self.memo.holds(mark, wanted, full);
        Ok(RoutesOutcome::from_writes(
            writes.iter().map(ToString::to_string).collect(),
        ))
    }

    /// Withdraws every local path with identifier `mark`, one `DeletePath` each.
    pub async fn withdraw_origination(&self, mark: u32) -> Result<RoutesOutcome, SdnError> {
        check_mark(mark)?;
        let mut done = Vec::new();
        for path in self.own_paths(mark, None).await? {
            self.delete_path(wire::withdrawal_path(path.net, mark)).await?;
            done.push(PathWrite::Delete(path.net).to_string());
        }
        self.memo.forget_origination(mark);
        Ok(RoutesOutcome::from_writes(done))
    }

    /// cellnet's local paths (local, identifier `mark`) in the Loc-RIB of both unicast
    /// families: all of them, or those of `only`. GoBGP lists every path of a destination and
    /// has no "local only" filter, so the whole table is read without `only`: that is what
    /// finds a path of a network removed while cellnet was not looking.
    pub(super) async fn own_paths(
        &self,
        mark: u32,
        only: Option<&[IpNet]>,
    ) -> Result<Vec<OwnPath>, SdnError> {
        let mut ours = Vec::new();
        for family in Family::BOTH {
            let prefixes: Vec<proto::TableLookupPrefix> = match only {
                Some(nets) => {
                    let nets: Vec<_> = nets.iter().filter(|n| Family::of(n) == family).collect();
                    if nets.is_empty() {
                        continue;
                    }
                    nets.into_iter().map(|n| exact(*n)).collect()
                }
                None => Vec::new(),
            };
            let request = proto::ListPathRequest {
                table_type: proto::TableType::Global as i32,
                family: Some(wire::family(family)),
                prefixes,
                ..Default::default()
            };
            for destination in self.list_paths(request).await? {
                ours.extend(destination.paths.iter().filter_map(|p| own_path(p, mark)));
            }
        }
        Ok(ours)
    }
}

/// An EXACT lookup of one prefix (absent prefixes are simply not listed).
pub(super) fn exact(net: IpNet) -> proto::TableLookupPrefix {
    proto::TableLookupPrefix {
        prefix: net.to_string(),
        r#type: table_lookup_prefix::Type::Exact as i32,
    }
}

fn own_path(path: &proto::Path, mark: u32) -> Option<OwnPath> {
    (wire::is_local(path) && path.identifier == mark && !path.is_withdraw).then_some(())?;
    Some(OwnPath {
        net: wire::prefix_of(path)?,
        next_hop: wire::next_hop_of(path),
    })
}
