//! The cache-lag memo: `status.neutron` this process wrote last, per endpoint, until the
//! informer cache shows it. The cache can lag one watch event behind our own status write; a
//! reconcile that trusted the older ids (or the older applied password version) would replace
//! the BGP peer it had just made.
use kube::ResourceExt;

use super::NeutronClients;
use crate::api::InfraEndpoint;
use crate::api::infra_endpoint::NeutronStatus;

/// Our last write of `status.neutron` and the values the cache may still show instead of it.
#[derive(Default)]
pub(super) struct Written {
    latest: Option<NeutronStatus>,
    stale: Vec<Option<NeutronStatus>>,
}

/// Older values kept per endpoint: the cache catches up within one watch event; a long chain
/// means it never will.
const MAX_STALE: usize = 16;

impl NeutronClients {
    /// `status.neutron` as this process knows it: our own last write while the cache still
    /// shows a value it replaced. Someone else's write (a value we never saw) wins over the memo,
    /// and a cache that caught up drops it.
    pub fn known_status(&self, ep: &InfraEndpoint) -> Option<NeutronStatus> {
        let cached = ep.status.as_ref().and_then(|s| s.neutron.clone());
        let Some(uid) = ep.uid() else { return cached };
        let mut written = self.written.lock().expect("neutron status memo lock");
        match written.get(&uid) {
            Some(w) if w.latest != cached && w.stale.contains(&cached) => w.latest.clone(),
            Some(_) => {
                written.remove(&uid);
                cached
            }
            None => cached,
        }
    }

    /// Remembers that `after` was written over what the cache showed.
    pub fn remember_write(&self, ep: &InfraEndpoint, after: Option<NeutronStatus>) {
        let Some(uid) = ep.uid() else { return };
        let cached = ep.status.as_ref().and_then(|s| s.neutron.clone());
        let mut written = self.written.lock().expect("neutron status memo lock");
        let w = written.entry(uid).or_default();
        let previous = std::mem::replace(&mut w.latest, after);
        for old in [cached, previous] {
            if !w.stale.contains(&old) && old != w.latest {
                w.stale.push(old);
            }
        }
        // `while`, not `if`: a write can add two values (the cache's and our previous one).
        while w.stale.len() > MAX_STALE {
            w.stale.remove(0);
        }
    }

    /// Forgets an endpoint (deleted).
    pub fn forget(&self, ep: &InfraEndpoint) {
        if let Some(uid) = ep.uid() {
            self.written
                .lock()
                .expect("neutron status memo lock")
                .remove(&uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn ep(peer: Option<&str>) -> InfraEndpoint {
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
            "metadata": {"name": "ep1", "namespace": "ns", "uid": "u1"},
            "spec": {"cell": "c1", "address": "10.0.0.1", "asn": 65001},
            "status": {"neutron": {"bgpPeerId": peer}},
        }))
        .unwrap()
    }

    fn peer_of(s: Option<NeutronStatus>) -> Option<String> {
        s.and_then(|s| s.bgp_peer_id)
    }

    fn clients() -> NeutronClients {
        NeutronClients::new(Duration::from_secs(1), Duration::from_secs(1))
    }

    #[test]
    fn a_cache_behind_our_own_write_is_not_trusted() {
        let clients = clients();
        // Cache shows no peer; we wrote peer "a", then "b" before the cache caught up.
        let mut written = ep(None).status.unwrap().neutron;
        written.as_mut().unwrap().bgp_peer_id = Some("a".into());
        clients.remember_write(&ep(None), written.clone());
        assert_eq!(peer_of(clients.known_status(&ep(None))), Some("a".into()));
        written.as_mut().unwrap().bgp_peer_id = Some("b".into());
        clients.remember_write(&ep(None), written);
        for stale in [None, Some("a")] {
            assert_eq!(peer_of(clients.known_status(&ep(stale))), Some("b".into()));
        }
        // The cache caught up: the memo is dropped.
        assert_eq!(peer_of(clients.known_status(&ep(Some("b")))), Some("b".into()));
        assert!(clients.written.lock().unwrap().is_empty());
    }

    #[test]
    fn someone_elses_write_wins_over_the_memo() {
        let clients = clients();
        let mut written = ep(None).status.unwrap().neutron;
        written.as_mut().unwrap().bgp_peer_id = Some("a".into());
        clients.remember_write(&ep(None), written);
        assert_eq!(peer_of(clients.known_status(&ep(Some("x")))), Some("x".into()));
        // And the memo is gone: the older value is trusted again from now on.
        assert_eq!(peer_of(clients.known_status(&ep(None))), None);
    }

    #[test]
    fn a_forgotten_endpoint_trusts_the_cache_again() {
        let clients = clients();
        let mut written = ep(None).status.unwrap().neutron;
        written.as_mut().unwrap().bgp_peer_id = Some("a".into());
        clients.remember_write(&ep(None), written);
        clients.forget(&ep(None));
        assert_eq!(peer_of(clients.known_status(&ep(None))), None);
    }

    #[test]
    fn the_chain_of_stale_values_is_bounded() {
        let clients = clients();
        for i in 0..40 {
            let mut written = ep(None).status.unwrap().neutron;
            written.as_mut().unwrap().bgp_peer_id = Some(format!("p{i}"));
            clients.remember_write(&ep(None), written);
        }
        let memo = clients.written.lock().unwrap();
        assert_eq!(memo["u1"].stale.len(), MAX_STALE);
        assert_eq!(peer_of(memo["u1"].latest.clone()), Some("p39".into()));
    }
}
