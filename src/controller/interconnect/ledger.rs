//! Ownership in one place. GoBGP peers carry cellnet's owner marker and the backend checks it
//! ([`Ownership::Marker`]); OpenDaylight neighbours cannot carry one, so cellnet keeps a ledger of
//! the neighbours it created ([`Ownership::Ledger`]).
//!
//! The ledger is an annotation on the CellInterconnect, written *before* the peer is created: it
//! survives controller restarts and status loss (a backup restore drops status, not annotations),
//! and a crash between the record and the create only leads to a create later. Both sides'
//! claims of one reconcile go out in one write, computed from one read, so neither can erase the
//! other's.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::super::{Context, error::Result};
use crate::api::CellInterconnect;
use crate::sdn::{BackendKind, Ownership};

/// `{"<speaker key>": ["<neighbour address>", ...]}` as JSON.
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
    /// The ledger on `cic`; a broken annotation owns nothing.
    pub fn of(cic: &CellInterconnect) -> Self {
        Self(
            cic.annotations()
                .get(OWNED_PEERS_ANNOTATION)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default(),
        )
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

    /// Writes the ledger onto the object when it differs from what was `stored` there.
    pub async fn store(&self, ctx: &Context, cic: &CellInterconnect, stored: &Ledger) -> Result<()> {
        if self == stored {
            return Ok(());
        }
        let api: Api<CellInterconnect> =
            Api::namespaced(ctx.client.clone(), &cic.namespace().unwrap_or_default());
        let value = if self.0.is_empty() {
            serde_json::Value::Null
        } else {
            json!(serde_json::to_string(&self.0).expect("json"))
        };
        let patch = json!({"metadata": {"annotations": {OWNED_PEERS_ANNOTATION: value}}});
        api.patch(&cic.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ODL: &str = "OpenDaylight|https://odl:8443";

    fn with_annotation(value: &str) -> CellInterconnect {
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "x", "namespace": "ns", "annotations": {OWNED_PEERS_ANNOTATION: value}},
            "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}}
        }))
        .unwrap()
    }

    #[test]
    fn reads_the_annotation() {
        let ledger = Ledger::of(&with_annotation(
            "{\"OpenDaylight|https://odl:8443\":[\"10.0.0.2\"]}",
        ));
        assert!(ledger.owns(ODL, "10.0.0.2"));
        assert!(!ledger.owns(ODL, "10.0.0.3"));
        assert!(!ledger.owns("GoBgp|http://x", "10.0.0.2"));
        assert!(
            !Ledger::of(&with_annotation("not json")).owns(ODL, "10.0.0.2"),
            "a broken record owns nothing"
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
}
