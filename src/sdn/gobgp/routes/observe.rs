//! What each neighbour of the filters sends and gets: counts read from the Adj-RIBs.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::names::Family;
use super::wire;
use crate::sdn::gobgp::GoBgp;
use crate::sdn::gobgp::convert;
use crate::sdn::gobgp::proto::{self, peer_state};
use crate::sdn::routes::{ExportRule, ImportRule, Origination, RouteCounts, RouteFilter, normalized};
use crate::sdn::{SdnError, SessionState};

/// One neighbour's Adj-RIB-In and Adj-RIB-Out, all unicast families it runs.
#[derive(Default)]
struct Ribs {
    received: u64,
    accepted: BTreeSet<IpNet>,
    accepted_count: u64,
    rejected: u64,
    advertised: BTreeSet<IpNet>,
    advertised_count: u64,
}

impl GoBgp {
    /// Route counts for every neighbour of `filters`, from one `ListPeer` and, while the session
    /// is up, two `ListPath` per family (`ADJ_IN` with `enable_filtered`, `ADJ_OUT`).
    ///
    /// Rejected paths are those the import policy filters at read time: `ListPeer`'s own
    /// `accepted` ignores policy rejects (it only excludes AS loops and own ORIGINATOR_IDs), so
    /// it is not used.
    pub async fn observe_routes(
        &self,
        origination: &Origination,
        filters: &[RouteFilter],
    ) -> Result<BTreeMap<IpAddr, RouteCounts>, SdnError> {
        let mut counts = BTreeMap::new();
        for filter in filters {
            for &neighbor in &filter.neighbors {
                let count = self.neighbor_counts(origination, filter, neighbor).await?;
                counts.insert(neighbor, count);
            }
        }
        Ok(counts)
    }

    async fn neighbor_counts(
        &self,
        origination: &Origination,
        filter: &RouteFilter,
        neighbor: IpAddr,
    ) -> Result<RouteCounts, SdnError> {
        let peer = self.get_peer(neighbor).await?;
        let ribs = match &peer {
            Some(p) if convert::session_of(p) == SessionState::Established => self.ribs(p, neighbor).await?,
            _ => Ribs::default(),
        };
        let allowed_in = match &filter.import {
            ImportRule::Only(nets) => normalized(nets),
            ImportRule::Any | ImportRule::None => BTreeSet::new(),
        };
        let allowed_out = match &filter.export {
            ExportRule::Only(nets) => normalized(nets),
            ExportRule::None => BTreeSet::new(),
        };
        let originated = origination.wanted();
        Ok(RouteCounts {
            advertised: ribs.advertised_count,
            received: ribs.received,
            accepted: ribs.accepted_count,
            rejected: ribs.rejected,
            missing_advertised: originated
                .intersection(&allowed_out)
                .filter(|n| !ribs.advertised.contains(n))
                .copied()
                .collect(),
            missing_received: allowed_in.difference(&ribs.accepted).copied().collect(),
            prefix_limit_hit: peer
                .and_then(|p| p.state)
                .is_some_and(|s| s.admin_state == peer_state::AdminState::PfxCt as i32),
        })
    }

    async fn ribs(&self, peer: &proto::Peer, neighbor: IpAddr) -> Result<Ribs, SdnError> {
        let mut ribs = Ribs::default();
        for family in Family::BOTH.into_iter().filter(|f| runs(peer, *f)) {
            for path in self.adj_paths(neighbor, family, proto::TableType::AdjIn).await? {
                ribs.received += 1;
                if path.filtered {
                    ribs.rejected += 1;
                } else {
                    ribs.accepted_count += 1;
                    ribs.accepted.extend(wire::prefix_of(&path));
                }
            }
            for path in self.adj_paths(neighbor, family, proto::TableType::AdjOut).await? {
                ribs.advertised_count += 1;
                ribs.advertised.extend(wire::prefix_of(&path));
            }
        }
        Ok(ribs)
    }

    /// The prefixes sent to `neighbor` now (all unicast families it runs), `None` without an
    /// Established session.
    pub(super) async fn advertised_prefixes(
        &self,
        neighbor: IpAddr,
    ) -> Result<Option<BTreeSet<IpNet>>, SdnError> {
        let Some(peer) = self.get_peer(neighbor).await? else {
            return Ok(None);
        };
        if convert::session_of(&peer) != SessionState::Established {
            return Ok(None);
        }
        let mut sent = BTreeSet::new();
        for family in Family::BOTH.into_iter().filter(|f| runs(&peer, *f)) {
            let paths = self.adj_paths(neighbor, family, proto::TableType::AdjOut).await?;
            sent.extend(paths.iter().filter_map(wire::prefix_of));
        }
        Ok(Some(sent))
    }

    async fn adj_paths(
        &self,
        neighbor: IpAddr,
        family: Family,
        table: proto::TableType,
    ) -> Result<Vec<proto::Path>, SdnError> {
        let request = proto::ListPathRequest {
            table_type: table as i32,
            name: neighbor.to_string(),
            family: Some(wire::family(family)),
            enable_filtered: table == proto::TableType::AdjIn,
            ..Default::default()
        };
        let destinations = self.list_paths(request).await?;
        Ok(destinations.into_iter().flat_map(|d| d.paths).collect())
    }
}

/// Whether the peer runs this unicast family.
fn runs(peer: &proto::Peer, family: Family) -> bool {
    let wanted = wire::family(family);
    peer.afi_safis.iter().any(|a| {
        a.config
            .as_ref()
            .is_some_and(|c| c.enabled && c.family.as_ref() == Some(&wanted))
    })
}
