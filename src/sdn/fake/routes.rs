//! The fake speaker's routes: originations by mark and filters by key, as the real backends
//! keep them, and counts from what each neighbour "sends": by default exactly what the import
//! rule lets in (the other cell announces its networks), or what the test says.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::sdn::routes::{
    ExportRule, ImportRule, Origination, RouteCounts, RouteFilter, RoutesOutcome, normalized,
};

#[derive(Debug, Default)]
pub struct Routes {
    pub originations: BTreeMap<u32, Origination>,
    pub filters: BTreeMap<String, RouteFilter>,
    /// What a neighbour sends, when the test set it.
    pub sent_by: HashMap<IpAddr, Vec<IpNet>>,
    /// Neighbours whose prefix limit tripped.
    pub limit_hit: BTreeSet<IpAddr>,
}

fn written(what: String) -> RoutesOutcome {
    RoutesOutcome::Updated { writes: vec![what] }
}

impl Routes {
    pub fn ensure_origination(&mut self, o: &Origination) -> RoutesOutcome {
        let wanted = Origination {
            networks: normalized(&o.networks).into_iter().collect(),
            ..o.clone()
        };
        if self.originations.get(&o.mark) == Some(&wanted) {
            return RoutesOutcome::Unchanged;
        }
        self.originations.insert(o.mark, wanted);
        written(format!("originate {:?}", o.networks))
    }

    pub fn withdraw(&mut self, mark: u32) -> RoutesOutcome {
        match self.originations.remove(&mark) {
            Some(o) => written(format!("withdraw {:?}", o.networks)),
            None => RoutesOutcome::Unchanged,
        }
    }

    pub fn ensure_filter(&mut self, f: &RouteFilter) -> RoutesOutcome {
        if self.filters.get(&f.key) == Some(f) {
            return RoutesOutcome::Unchanged;
        }
        self.filters.insert(f.key.clone(), f.clone());
        written(format!("filter {}", f.key))
    }

    pub fn remove_filter(&mut self, key: &str) -> RoutesOutcome {
        match self.filters.remove(key) {
            Some(_) => written(format!("remove filter {key}")),
            None => RoutesOutcome::Unchanged,
        }
    }

    /// The counts towards `neighbor` under `filter` (the one asked about, as the real backends
    /// compute `missing_received` from it).
    pub fn counts(&self, origination: &Origination, filter: &RouteFilter, neighbor: IpAddr) -> RouteCounts {
        let allowed = match &filter.import {
            ImportRule::Only(nets) => Some(normalized(nets)),
            ImportRule::Any => None,
            ImportRule::None => Some(BTreeSet::new()),
        };
        let sent: BTreeSet<IpNet> = match self.sent_by.get(&neighbor) {
            Some(nets) => normalized(nets),
            None => allowed.clone().unwrap_or_default(),
        };
        let accepted: BTreeSet<IpNet> = match &allowed {
            Some(allowed) => sent.intersection(allowed).copied().collect(),
            None => sent.clone(),
        };
        let exported = match &filter.export {
            ExportRule::Only(nets) => normalized(nets),
            ExportRule::None => BTreeSet::new(),
        };
        let limit_hit = self.limit_hit.contains(&neighbor);
        RouteCounts {
            advertised: origination.wanted().intersection(&exported).count() as u64,
            received: sent.len() as u64,
            accepted: accepted.len() as u64,
            rejected: (sent.len() - accepted.len()) as u64,
            missing_advertised: Vec::new(),
            missing_received: allowed
                .map(|a| a.difference(&accepted).copied().collect())
                .unwrap_or_default(),
            prefix_limit_hit: limit_hit,
        }
    }
}
