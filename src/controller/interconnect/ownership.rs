//! cellnet's own record of the peers it created, for backends whose peers cannot carry the
//! owner marker (OpenDaylight's neighbour has no free description field).
//!
//! The record is an annotation on the CellInterconnect, written *before* the peer is created:
//! it survives controller restarts and status loss (a backup restore drops status, not
//! annotations), and a crash between the record and the create only leads to a create later.
use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::super::{Context, error::Result};
use crate::api::CellInterconnect;

/// `{"<speaker key>": ["<neighbour address>", ...]}` as JSON.
pub const OWNED_PEERS_ANNOTATION: &str = "cellnet.io/owned-peers";

type Record = BTreeMap<String, BTreeSet<String>>;

fn read(cic: &CellInterconnect) -> Record {
    cic.annotations()
        .get(OWNED_PEERS_ANNOTATION)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// Whether the record says cellnet created `address` on `speaker`.
pub fn is_recorded(cic: &CellInterconnect, speaker: &str, address: &str) -> bool {
    read(cic).get(speaker).is_some_and(|set| set.contains(address))
}

async fn write(ctx: &Context, cic: &CellInterconnect, record: &Record) -> Result<()> {
    let api: Api<CellInterconnect> =
        Api::namespaced(ctx.client.clone(), &cic.namespace().unwrap_or_default());
    let value = if record.is_empty() {
        serde_json::Value::Null
    } else {
        json!(serde_json::to_string(record).expect("json"))
    };
    let patch = json!({"metadata": {"annotations": {OWNED_PEERS_ANNOTATION: value}}});
    api.patch(&cic.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Records that cellnet is about to create `address` on `speaker`.
pub async fn record(ctx: &Context, cic: &CellInterconnect, speaker: &str, address: &str) -> Result<()> {
    let mut record = read(cic);
    if record
        .entry(speaker.to_string())
        .or_default()
        .insert(address.to_string())
    {
        write(ctx, cic, &record).await?;
    }
    Ok(())
}

/// Drops `address` on `speaker` from the record (after the peer was removed).
pub async fn forget(ctx: &Context, cic: &CellInterconnect, speaker: &str, address: &str) -> Result<()> {
    let mut record = read(cic);
    let changed = record.get_mut(speaker).is_some_and(|set| set.remove(address));
    record.retain(|_, set| !set.is_empty());
    if changed {
        write(ctx, cic, &record).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_annotation() {
        let mut cic: CellInterconnect = serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "x", "namespace": "ns", "annotations": {
                OWNED_PEERS_ANNOTATION: "{\"OpenDaylight|https://odl:8443\":[\"10.0.0.2\"]}"
            }},
            "spec": {"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}}
        }))
        .unwrap();
        assert!(is_recorded(&cic, "OpenDaylight|https://odl:8443", "10.0.0.2"));
        assert!(!is_recorded(&cic, "OpenDaylight|https://odl:8443", "10.0.0.3"));
        assert!(!is_recorded(&cic, "GoBgp|http://x", "10.0.0.2"));
        cic.annotations_mut()
            .insert(OWNED_PEERS_ANNOTATION.into(), "not json".into());
        assert!(
            !is_recorded(&cic, "OpenDaylight|https://odl:8443", "10.0.0.2"),
            "a broken record owns nothing"
        );
    }
}
