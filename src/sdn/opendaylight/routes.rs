//! The networks between cells on OpenDaylight (issue #16): what the published BGP user guide
//! (bgpcep `docs/bgp/`) lets cellnet do, and an honest `Unsupported` for the rest.
//!
//! - **Origination** through an application peer and its programmable RIB
//!   (bgp-user-guide-bgp-application-peer.rst, "Application Peer configuration" and
//!   "Programmable RIB"; bgp-user-guide-ip-unicast-family.rst, "Programming"). The peer is
//!   `spec.sdn.openDaylight.applicationPeer`; without it, [`OpenDaylight::originate`] is
//!   `Unsupported` with what to set.
//! - **Ownership.** cellnet's routes are those with `path-id` = the origination mark; routes
//!   with any other path-id (an operator's, written by hand) are never changed or deleted, even
//!   for the same prefix: every PUT and DELETE URL carries the mark as its `path-id` key, so it
//!   cannot address another route. The application peer itself is an OpenDaylight neighbour,
//!   which cannot carry a marker (see `super`): cellnet creates it only when no neighbour has
//!   that address, uses an existing application peer as it is, refuses (a conflict) a regular
//!   neighbour at that address. It removes the peer only when this process created it (`201`)
//!   and a withdrawal leaves its RIB empty (no route of anyone's). A peer created before a
//!   controller restart stays (empty, it announces nothing): a durable record would be the
//!   controller's ledger, as for the interconnects' neighbours (record the address before the
//!   first origination when [`crate::sdn::SdnBackend::observe_peer`] finds it absent, then
//!   [`crate::sdn::SdnBackend::remove_peer`] after the last withdrawal; a create that lost a
//!   race, `409`, makes that `NotOwned`).
//! - **Filters.** bgp-user-guide-rib-config-policies.rst documents no prefix-set condition
//!   (its "Match ..." sections match neighbours, AS paths, communities, next hops, ...) and says
//!   "If policy is reconfigured, protocol must be re configured again", which would drop every
//!   session of the speaker. So only `import: Any` with `export: Networks` is accepted, and
//!   needs no write; every other rule is `Unsupported` and says what to set instead.
//! - **Counts** from "BGP Neighbor Families Operational State" (one read per neighbour), plus
//!   the neighbour's Adj-RIB-Out (which exported networks are sent) and, for an `Only` import
//!   rule (the controller asks with the expected networks, under `import: Any` too), its
//!   Effective-RIB-In, read as the application-peer guide reads a peer's tables.
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use reqwest::Method;

use super::OpenDaylight;
use super::model::app_rib::{self, Route, RouteFamily, RouteWrite};
use super::model::rib_state;
use crate::sdn::SdnError;
use crate::sdn::routes::{
    ExportRule, ImportRule, Origination, RouteCounts, RouteFilter, RoutesOutcome, check_mark,
};

/// What [`OpenDaylight::ensure_application_peer`] found or did.
enum AppPeer {
    Present,
    Created,
    /// A regular neighbour has that address.
    Regular,
}

impl OpenDaylight {
    /// Makes cellnet's routes in the application peer's RIB exactly the wanted networks: the
    /// peer created if absent, one POST per new network, one PUT per changed next hop, one
    /// DELETE per network no longer wanted. Steady state: three reads (peer, two tables).
    pub(super) async fn originate(&self, origination: &Origination) -> Result<RoutesOutcome, SdnError> {
        origination.check()?;
        let peer = self.application_peer_or_unsupported()?;
        let mut writes = Vec::new();
        match self.ensure_application_peer(peer).await? {
            AppPeer::Present => {}
            AppPeer::Created => writes.push(format!("create application peer {peer}")),
            AppPeer::Regular => {
                let reason = format!(
                    "spec.sdn.openDaylight.applicationPeer {peer} is a regular BGP neighbour on {}, \
                     not an application peer: choose an address no neighbour uses",
                    self.endpoint()
                );
                return Ok(RoutesOutcome::Conflict { reason });
            }
        }
        let held = self.application_routes(peer).await?;
        for write in app_rib::plan(origination, &held) {
            self.write_route(peer, origination, &write).await?;
            writes.push(write.to_string());
        }
        if !writes.is_empty() {
            tracing::info!(endpoint = %self.endpoint(), owner = %origination.owner, mark = origination.mark,
                ?writes, "OpenDaylight origination changed");
        }
        Ok(RoutesOutcome::from_writes(writes))
    }

    /// Deletes every route with path-id `mark` from the application peer's RIB, and nothing
    /// else; then the peer itself if this process created it and its RIB is now empty (see the
    /// module docs). Without an application peer configured nothing can have been originated
    /// through this target.
    pub(super) async fn withdraw(&self, mark: u32) -> Result<RoutesOutcome, SdnError> {
        check_mark(mark)?;
        let Some(peer) = self.application_peer else {
            return Ok(RoutesOutcome::Unchanged);
        };
        let mut writes = Vec::new();
        let mut left = Vec::new();
        for route in self.application_routes(peer).await? {
            if route.path_id == mark {
                let write = RouteWrite::Delete { key: route.key };
                self.delete_route(peer, &write, mark).await?;
                writes.push(write.to_string());
            } else {
                left.push(route);
            }
        }
        if left.is_empty() && self.remove_created_application_peer(peer).await? {
            writes.push(format!("delete application peer {peer}"));
        }
        if !writes.is_empty() {
            tracing::info!(endpoint = %self.endpoint(), mark, ?writes, "OpenDaylight origination withdrawn");
        }
        Ok(RoutesOutcome::from_writes(writes))
    }

    /// Route counts of every neighbour of `filters`: one read of its families' state and, while
    /// its session is up, one read per family of its Adj-RIB-Out where exported networks should
    /// be and of its Effective-RIB-In where an `Only` import rule names networks.
    pub(super) async fn route_counts(
        &self,
        origination: &Origination,
        filters: &[RouteFilter],
    ) -> Result<BTreeMap<IpAddr, RouteCounts>, SdnError> {
        let mut counts = BTreeMap::new();
        for filter in filters {
            let exported = rib_state::exported(origination, filter);
            let imported = rib_state::imported(filter);
            for &neighbor in &filter.neighbors {
                let address = neighbor.to_string();
                let families = self.families_state(&address).await?;
                // No prefix state: no session, so nothing is sent or installed.
                let up = !families.is_empty();
                let sent = self
                    .table_prefixes(up, &address, "adj-rib-out", &exported)
                    .await?;
                let installed = self
                    .table_prefixes(up, &address, "effective-rib-in", &imported)
                    .await?;
                let count = rib_state::counts(&families, &exported, &sent, &imported, &installed);
                counts.insert(neighbor, count);
            }
        }
        Ok(counts)
    }

    fn application_peer_or_unsupported(&self) -> Result<Ipv4Addr, SdnError> {
        self.application_peer.ok_or_else(|| {
            SdnError::Unsupported(
                "originating networks on OpenDaylight needs an application peer (BGP user guide, \
                 \"BGP Application Peer and programmable RIB\"): set spec.sdn.openDaylight.applicationPeer \
                 to an IPv4 address no BGP neighbour of this speaker uses"
                    .into(),
            )
        })
    }

    async fn ensure_application_peer(&self, peer: Ipv4Addr) -> Result<AppPeer, SdnError> {
        let address = IpAddr::V4(peer);
        if let Some(entry) = self.get_neighbor(address).await? {
            return Ok(kind_of(&entry));
        }
        self.set_lost_create(address, false);
        let created = self
            .rest
            .send(
                "create application peer",
                Method::POST,
                &self.paths.neighbors(),
                Some(&app_rib::application_peer(peer)),
                false,
            )
            .await;
        match created {
            Ok(_) => {
                tracing::info!(endpoint = %self.endpoint(), %peer, "created OpenDaylight application peer");
                *self.created_application_peer.lock().expect("created lock") = true;
                Ok(AppPeer::Created)
            }
            // RFC 8040 section 4.4.1: someone created it between our read and our create. Not
            // ours to remove; usable if it is an application peer.
            Err(SdnError::Rejected { message, .. }) if message.starts_with("HTTP 409") => {
                self.set_lost_create(address, true);
                let entry = self.get_neighbor(address).await?;
                Ok(entry.as_ref().map_or(AppPeer::Present, kind_of))
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the application peer if this process created it (and no `409` said otherwise);
    /// `true` when it was deleted.
    async fn remove_created_application_peer(&self, peer: Ipv4Addr) -> Result<bool, SdnError> {
        let address = IpAddr::V4(peer);
        if !*self.created_application_peer.lock().expect("created lock") || self.lost_create(address) {
            return Ok(false);
        }
        let path = self.paths.neighbor(&peer.to_string());
        let reply = self
            .rest
            .send("delete application peer", Method::DELETE, &path, None, true)
            .await?;
        *self.created_application_peer.lock().expect("created lock") = false;
        if reply.is_some() {
            tracing::info!(endpoint = %self.endpoint(), %peer, "deleted OpenDaylight application peer cellnet created");
        }
        Ok(reply.is_some())
    }

    /// Every route of the application peer's RIB, both families (a missing table is empty).
    async fn application_routes(&self, peer: Ipv4Addr) -> Result<Vec<Route>, SdnError> {
        let mut routes = Vec::new();
        for family in RouteFamily::BOTH {
            let path = self.paths.app_routes(&peer.to_string(), family);
            let reply = self
                .rest
                .send("read application RIB", Method::GET, &path, None, true)
                .await?;
            routes.extend(reply.map(|r| app_rib::routes(&r.body)).unwrap_or_default());
        }
        Ok(routes)
    }

    async fn write_route(&self, peer: Ipv4Addr, o: &Origination, write: &RouteWrite) -> Result<(), SdnError> {
        let peer_id = peer.to_string();
        match write {
            RouteWrite::Add(net) => {
                let body = app_rib::body(app_rib::route(*net, o.mark, o.next_hop));
                let path = self.paths.app_routes(&peer_id, RouteFamily::of(net));
                self.rest
                    .send("add route", Method::POST, &path, Some(&body), false)
                    .await?;
            }
            RouteWrite::Replace(net) => {
                let body = app_rib::body(app_rib::route(*net, o.mark, o.next_hop));
                let path = self.paths.app_route(&peer_id, &net.to_string(), o.mark);
                self.rest
                    .send("replace route", Method::PUT, &path, Some(&body), false)
                    .await?;
            }
            RouteWrite::Delete { .. } => self.delete_route(peer, write, o.mark).await?,
        }
        Ok(())
    }

    /// `DELETE` of one route of ours; already gone (404) is done.
    async fn delete_route(&self, peer: Ipv4Addr, write: &RouteWrite, mark: u32) -> Result<(), SdnError> {
        let RouteWrite::Delete { key } = write else {
            return Ok(());
        };
        let path = self.paths.app_route(&peer.to_string(), key, mark);
        self.rest
            .send("delete route", Method::DELETE, &path, None, true)
            .await?;
        Ok(())
    }

    /// The prefix counters of a neighbour's families; empty without a session (or neighbour).
    async fn families_state(&self, address: &str) -> Result<Vec<rib_state::Prefixes>, SdnError> {
        let path = self.paths.neighbor_families_state(address);
        let reply = self
            .rest
            .send("read neighbor families state", Method::GET, &path, None, true)
            .await?;
        Ok(reply
            .map(|r| rib_state::family_prefixes(&r.body))
            .unwrap_or_default())
    }

    /// Which of `wanted` are in one of the neighbour's tables (`adj-rib-out`,
    /// `effective-rib-in`), reading only the families of `wanted`, and nothing without a session.
    async fn table_prefixes(
        &self,
        up: bool,
        address: &str,
        table: &str,
        wanted: &BTreeSet<IpNet>,
    ) -> Result<BTreeSet<IpNet>, SdnError> {
        let mut found = BTreeSet::new();
        if !up {
            return Ok(found);
        }
        for family in RouteFamily::BOTH {
            if !wanted.iter().any(|n| RouteFamily::of(n) == family) {
                continue;
            }
            let path = self.paths.peer_table(address, table, family);
            let reply = self
                .rest
                .send("read neighbor RIB", Method::GET, &path, None, true)
                .await?;
            let routes = reply.map(|r| app_rib::routes(&r.body)).unwrap_or_default();
            found.extend(
                routes
                    .iter()
                    .map(|r| r.net.trunc())
                    .filter(|n| wanted.contains(n)),
            );
        }
        Ok(found)
    }
}

fn kind_of(entry: &serde_json::Value) -> AppPeer {
    if app_rib::is_application_peer(entry) {
        AppPeer::Present
    } else {
        AppPeer::Regular
    }
}

/// `import: Any` with `export: Networks` needs nothing on OpenDaylight (the export is what
/// the application peer originates); every other rule has no documented API.
pub(super) fn check_filter(filter: &RouteFilter) -> Result<RoutesOutcome, SdnError> {
    if filter.evpn.is_some() {
        return Err(evpn_unsupported());
    }
    match (&filter.import, &filter.export) {
        (ImportRule::Any, ExportRule::Only(_)) => Ok(RoutesOutcome::Unchanged),
        (ImportRule::Any, ExportRule::None) => Err(SdnError::Unsupported(
            "OpenDaylight sends its routes to every neighbour its RIB policy allows, and the \
             routing-policy guide (bgp-user-guide-rib-config-policies.rst) documents no prefix-set \
             condition to stop the cell's networks towards one: set spec.routes.export: Networks"
                .into(),
        )),
        _ => Err(SdnError::Unsupported(
            "OpenDaylight's routing-policy guide (bgp-user-guide-rib-config-policies.rst) documents \
             no prefix-set condition, and a changed policy needs the BGP protocol re-configured \
             (\"If policy is reconfigured, protocol must be re configured again\"): set \
             spec.routes.import: Any on interconnects with an OpenDaylight side"
                .into(),
        )),
    }
}

/// L2 segments have no documented OpenDaylight API: why, naming the guides.
pub(super) fn evpn_unsupported() -> SdnError {
    // Accepting only some route targets from one neighbour is a routing-policy change, and
    // the guide documents no next hop left unchanged: the VTEP would be rewritten.
    SdnError::Unsupported(
        "L2 segments: OpenDaylight's guides document the l2vpn-evpn family \
         (bgp-user-guide-evpn-family.rst) but no route-target condition for one neighbour in \
         bgp-user-guide-rib-config-policies.rst (\"If policy is reconfigured, protocol must be \
         re configured again\") and no unchanged EVPN next hop: stretch segments only between \
         GoBGP sides"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evpn_filter_is_unsupported_naming_the_guides() {
        let mut f = filter(ImportRule::Any, ExportRule::Only(vec![]));
        assert!(check_filter(&f).is_ok());
        f.evpn = Some(crate::sdn::routes::EvpnFilter {
            import: vec![crate::sdn::routes::RouteTargetMatch::Vni(100)],
            export: vec![],
        });
        let err = check_filter(&f).unwrap_err().to_string();
        assert!(err.contains("bgp-user-guide-rib-config-policies.rst"), "{err}");
    }

    fn filter(import: ImportRule, export: ExportRule) -> RouteFilter {
        RouteFilter {
            key: "0a1b2c3d".into(),
            neighbors: vec!["198.51.100.2".parse().unwrap()],
            import,
            export,
            evpn: None,
        }
    }

    #[test]
    fn only_import_any_with_export_networks_is_supported() {
        let nets = vec!["192.0.2.0/24".parse().unwrap()];
        assert_eq!(
            check_filter(&filter(ImportRule::Any, ExportRule::Only(nets.clone()))).unwrap(),
            RoutesOutcome::Unchanged
        );
        for (import, export, says) in [
            (
                ImportRule::Only(nets.clone()),
                ExportRule::Only(nets.clone()),
                "spec.routes.import: Any",
            ),
            (
                ImportRule::None,
                ExportRule::Only(nets.clone()),
                "spec.routes.import: Any",
            ),
            (ImportRule::Any, ExportRule::None, "spec.routes.export: Networks"),
        ] {
            let err = check_filter(&filter(import, export)).unwrap_err();
            assert!(matches!(err, SdnError::Unsupported(_)), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains(says) && text.contains("bgp-user-guide-rib-config-policies.rst"),
                "{text}"
            );
        }
    }

    #[test]
    fn marks_and_families_are_checked() {
        let o = Origination {
            mark: 0,
            next_hop: "198.51.100.1".parse().unwrap(),
            networks: vec!["192.0.2.0/24".parse().unwrap()],
            owner: "cellnet:ns/ep".into(),
        };
        assert!(matches!(o.check(), Err(SdnError::InvalidConfig(_))));
        let mixed = Origination {
            mark: 9,
            networks: vec!["2001:db8::/32".parse().unwrap()],
            ..o
        };
        assert!(mixed.check().unwrap_err().to_string().contains("2001:db8::/32"));
    }
}
