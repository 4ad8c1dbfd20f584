//! Ownership in one place. GoBGP peers carry cellnet's owner marker and the backend checks it
//! ([`Ownership::Marker`]); OpenDaylight neighbours cannot carry one, so cellnet keeps a ledger of
//! the neighbours it created ([`Ownership::Ledger`]).
//!
//! The ledger is `status.ownedPeers` of the CellInterconnect: only the controller may write the
//! status subresource, so a user who may edit the object cannot make cellnet adopt (and later
//! delete) a neighbour it did not create. It is written *before* the peer is created, so a crash
//! between the record and the create only leads to a create later, and every other status write
//! carries it over. Both sides' claims of one reconcile go out in one write, computed from one
//! read, so neither can erase the other's.
//!
//! Older controllers kept the ledger in the annotation `cellnet.io/owned-peers`. Anyone who may
//! edit the object may write that annotation, and a neighbour's existence on the backend does not
//! say who made it, so it is never read: its presence raises a Warning Event and an operator with
//! access to the status subresource moves it (docs/opendaylight.md, "Upgrading").
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::super::{Context, FIELD_MANAGER, error::Result};
use crate::api::{CellInterconnect, OwnedPeer};
use crate::sdn::{BackendKind, Ownership};

/// Where controllers before 0.x kept the ledger; ignored now (user-writable).
pub const OWNED_PEERS_ANNOTATION: &str = "cellnet.io/owned-peers";

/// How a backend kind tells cellnet's peers from others'.
pub fn ownership(kind: BackendKind) -> Ownership {
    match kind {
        BackendKind::GoBgp => Ownership::Marker,
        BackendKind::OpenDaylight => Ownership::Ledger,
    }
}

/// The peers cellnet recorded as its own, per speaker key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger(BTreeMap<String, BTreeSet<String>>);

impl Ledger {
    /// The ledger in `cic`'s status (the only place cellnet trusts).
    pub fn of(cic: &CellInterconnect) -> Self {
        let mut ledger = Self::default();
        for p in cic.status.iter().flat_map(|s| &s.owned_peers) {
            ledger
                .0
                .entry(p.speaker.clone())
                .or_default()
                .insert(p.neighbor.clone());
        }
        ledger
    }

    /// The ledger as `status.ownedPeers`, sorted.
    pub fn entries(&self) -> Vec<OwnedPeer> {
        let mut entries = Vec::new();
        for (speaker, set) in &self.0 {
            for neighbor in set {
                let (speaker, neighbor) = (speaker.clone(), neighbor.clone());
                entries.push(OwnedPeer { speaker, neighbor });
            }
        }
        entries
    }

    /// Whether the ledger says cellnet created `address` on `speaker`.
    pub fn owns(&self, speaker: &str, address: &str) -> bool {
        self.0.get(speaker).is_some_and(|set| set.contains(address))
    }

    pub fn claim(&mut self, speaker: &str, address: IpAddr) {
        self.0
            .entry(speaker.to_string())
            .or_default()
            .insert(address.to_string());
    }

    pub fn release(&mut self, speaker: &str, address: IpAddr) {
        if let Some(set) = self.0.get_mut(speaker) {
            set.remove(&address.to_string());
        }
        self.0.retain(|_, set| !set.is_empty());
    }

    /// Whether cellnet may change or remove the peer at `address`: always on marker backends
    /// (the backend checks the marker), only when recorded on ledger backends.
    pub fn may_touch(&self, kind: BackendKind, speaker: &str, address: IpAddr) -> bool {
        ownership(kind) == Ownership::Marker || self.owns(speaker, &address.to_string())
    }

    /// Writes the ledger into the object's status when it differs from what was `stored` there;
    /// returns the object as written (later status writes of the reconcile start from it).
    pub async fn store(
        &self,
        ctx: &Context,
        cic: &CellInterconnect,
        stored: &Ledger,
    ) -> Result<Option<CellInterconnect>> {
        if self == stored {
            return Ok(None);
        }
        let api: Api<CellInterconnect> =
            Api::namespaced(ctx.client.clone(), &cic.namespace().unwrap_or_default());
        // A merge patch replaces the list whole; null removes it.
        let entries = self.entries();
        let value = if entries.is_empty() {
            serde_json::Value::Null
        } else {
            json!(entries)
        };
        let patch = json!({"status": {"ownedPeers": value}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let written = api
            .patch_status(&cic.name_any(), &params, &Patch::Merge(&patch))
            .await?;
        ctx.ledgers
            .wrote(&cic.uid().unwrap_or_default(), written.resource_version(), self);
        Ok(Some(written))
    }

    /// The ledger as the API server holds it: the cached object's, unless this controller wrote
    /// another one that the cache does not show yet; then it is read from the API server. (A
    /// reconcile soon after a claim, on a cache behind it, would otherwise find its own new
    /// neighbour unrecorded: a `PeerConflict` that stalls, or a neighbour left at deletion.)
    pub async fn current(ctx: &Context, cic: &CellInterconnect) -> Result<Self> {
        let cached = Self::of(cic);
        let uid = cic.uid().unwrap_or_default();
        if !ctx
            .ledgers
            .in_doubt(&uid, cic.resource_version().as_deref(), &cached)
        {
            return Ok(cached);
        }
        let api: Api<CellInterconnect> =
            Api::namespaced(ctx.client.clone(), &cic.namespace().unwrap_or_default());
        Ok(Self::of(&api.get_status(&cic.name_any()).await?))
    }
}

/// The ledger this controller last wrote to each interconnect, with the resourceVersion the write
/// produced: what tells a cache behind that write.
#[derive(Default)]
pub struct Written(Mutex<HashMap<String, (Option<String>, Ledger)>>);

impl Written {
    fn wrote(&self, uid: &str, resource_version: Option<String>, ledger: &Ledger) {
        let entry = (resource_version, ledger.clone());
        self.0.lock().unwrap().insert(uid.into(), entry);
    }

    /// Whether the cached object (at `cached_rv`, with ledger `cached`) may be behind our last
    /// write: it is not that write and shows another ledger.
    fn in_doubt(&self, uid: &str, cached_rv: Option<&str>, cached: &Ledger) -> bool {
        self.0
            .lock()
            .unwrap()
            .get(uid)
            .is_some_and(|(rv, ledger)| rv.as_deref() != cached_rv && ledger != cached)
    }

    pub fn forget(&self, uid: &str) {
        self.0.lock().unwrap().remove(uid);
    }
}

/// Whether `cic` carries an ownership annotation of an older controller (or a forged one).
pub fn legacy_annotation(cic: &CellInterconnect) -> bool {
    cic.annotations().contains_key(OWNED_PEERS_ANNOTATION)
}

/// The Warning said when [`legacy_annotation`] holds.
pub fn legacy_annotation_note() -> String {
    format!(
        "annotation {OWNED_PEERS_ANNOTATION} ignored: cellnet's ownership record is status.ownedPeers, which only \
         the controller writes; neighbours named only in the annotation are never changed or deleted \
         (see docs/opendaylight.md, Upgrading)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ODL: &str = "OpenDaylight|https://odl:8443";

    fn with(annotation: &str, owned: serde_json::Value) -> CellInterconnect {
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "x", "namespace": "ns", "annotations": {OWNED_PEERS_ANNOTATION: annotation}},
            "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}},
            "status": {"ownedPeers": owned}
        }))
        .unwrap()
    }

    #[test]
    fn reads_status_and_never_the_user_writable_annotation() {
        let forged = "{\"OpenDaylight|https://odl:8443\":[\"10.0.0.9\"]}";
        let cic = with(forged, json!([{"speaker": ODL, "neighbor": "10.0.0.2"}]));
        let ledger = Ledger::of(&cic);
        assert!(ledger.owns(ODL, "10.0.0.2"));
        assert!(!ledger.owns(ODL, "10.0.0.9"), "the annotation owns nothing");
        assert!(!ledger.owns("GoBgp|http://x", "10.0.0.2"));
        assert!(legacy_annotation(&cic));
        assert_eq!(
            ledger.entries(),
            vec![OwnedPeer {
                speaker: ODL.into(),
                neighbor: "10.0.0.2".into()
            }]
        );
    }

    #[test]
    fn claims_of_both_sides_are_kept_and_releases_drop_empty_speakers() {
        let mut ledger = Ledger::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        ledger.claim(ODL, b);
        ledger.claim("OpenDaylight|https://other", a);
        assert!(ledger.owns(ODL, "10.0.0.2") && ledger.owns("OpenDaylight|https://other", "10.0.0.1"));
        ledger.release(ODL, b);
        assert_eq!(ledger.0.len(), 1, "the emptied speaker is gone");
    }

    #[test]
    fn only_ledger_backends_need_a_record_to_touch_a_peer() {
        let ledger = Ledger::default();
        let addr: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(ledger.may_touch(BackendKind::GoBgp, "GoBgp|http://x", addr));
        assert!(!ledger.may_touch(BackendKind::OpenDaylight, ODL, addr));
    }

    #[test]
    fn a_cache_behind_our_last_ledger_write_is_in_doubt() {
        let written = Written::default();
        let mut claimed = Ledger::default();
        claimed.claim(ODL, "10.0.0.2".parse().unwrap());
        let empty = Ledger::default();
        // Nothing written by this controller: the cache is all there is.
        assert!(!written.in_doubt("u", Some("1"), &empty));
        written.wrote("u", Some("2".into()), &claimed);
        // The cache still at rv 1 without the claim: read the API server.
        assert!(written.in_doubt("u", Some("1"), &empty));
        // The cache shows the claim (at our rv, or later with it): no doubt.
        assert!(!written.in_doubt("u", Some("2"), &claimed));
        assert!(!written.in_doubt("u", Some("3"), &claimed));
        written.forget("u");
        assert!(!written.in_doubt("u", Some("1"), &empty));
    }
}
