//! Step 2 (Kubernetes write): the in-use and Neutron finalizers and the cell label, in one merge
//! patch, only when something differs.
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::super::Context;
use super::super::error::Result;
use super::super::neutron_sync::{self, NeutronOutcome};
use super::super::target::Checked;
use super::IN_USE_FINALIZER;
use super::networks_step::{self, NETWORKS_FINALIZER};
use crate::api::{CELL_LABEL, InfraEndpoint};

/// The finalizers the endpoint should carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// A CellInterconnect refers to the endpoint.
    pub in_use: bool,
    /// `spec.neutron` is set (and the endpoint stays), or the cleanup of Neutron failed.
    pub neutron: bool,
    /// Networks announced on its speaker, or their withdrawal failed.
    pub networks: bool,
}

impl Wanted {
    /// From the number of interconnects that use the endpoint and the Neutron cleanup, if one
    /// ran (`released`).
    pub fn new(
        ep: &InfraEndpoint,
        users: usize,
        released: Option<&NeutronOutcome>,
        withdrawn: Option<&Checked<()>>,
    ) -> Self {
        let kept = |f: &str| ep.finalizers().iter().any(|x| x == f);
        Self {
            in_use: users > 0,
            neutron: neutron_sync::wants_finalizer(ep) || released.is_some_and(|o| o.problem().is_some()),
            // Kept while deleted and still in use: the withdrawal runs once the last
            // interconnect is gone.
            networks: networks_step::wants_finalizer(ep)
                || withdrawn.is_some_and(Result::is_err)
                || (withdrawn.is_none() && users > 0 && kept(NETWORKS_FINALIZER)),
        }
    }

    /// Nothing holds the endpoint any longer.
    pub fn none(self) -> bool {
        !self.in_use && !self.neutron && !self.networks
    }
}

/// The merge patch that brings finalizers and label to what is wanted; `None` when they are.
/// A deleted endpoint's label is left alone. The `resourceVersion` makes the patch fail on a
/// concurrent change rather than overwrite someone else's finalizer.
pub fn patch(ep: &InfraEndpoint, wanted: Wanted) -> Option<Value> {
    let has = |f: &str| ep.finalizers().iter().any(|x| x == f);
    let deleting = ep.meta().deletion_timestamp.is_some();
    let label_ok = ep.labels().get(CELL_LABEL) == Some(&ep.spec.cell);
    if has(IN_USE_FINALIZER) == wanted.in_use
        && has(neutron_sync::FINALIZER) == wanted.neutron
        && has(NETWORKS_FINALIZER) == wanted.networks
        && (label_ok || deleting)
    {
        return None;
    }
    let mut finalizers: Vec<String> = ep
        .finalizers()
        .iter()
        .filter(|f| ![IN_USE_FINALIZER, neutron_sync::FINALIZER, NETWORKS_FINALIZER].contains(&f.as_str()))
        .cloned()
        .collect();
    if wanted.in_use {
        finalizers.push(IN_USE_FINALIZER.into());
    }
    if wanted.neutron {
        finalizers.push(neutron_sync::FINALIZER.into());
    }
    if wanted.networks {
        finalizers.push(NETWORKS_FINALIZER.into());
    }
    let mut patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": ep.resource_version(),
    }});
    if !deleting {
        patch["metadata"]["labels"] = json!({ CELL_LABEL: ep.spec.cell });
    }
    Some(patch)
}

/// Applies [`patch`]; `true` when it wrote.
pub async fn update(ctx: &Context, ep: &InfraEndpoint, ns: &str, wanted: Wanted) -> Result<bool> {
    let Some(patch) = patch(ep, wanted) else {
        return Ok(false);
    };
    let api: Api<InfraEndpoint> = Api::namespaced(ctx.client.clone(), ns);
    api.patch(&ep.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(finalizers: &[&str], label: Option<&str>, deleting: bool) -> InfraEndpoint {
        let mut ep: InfraEndpoint = serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
            "metadata": {"name": "ep1", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                         "finalizers": finalizers},
            "spec": {"cell": "c1", "address": "10.0.0.1", "asn": 65001},
        }))
        .unwrap();
        if let Some(cell) = label {
            ep.labels_mut().insert(CELL_LABEL.into(), cell.into());
        }
        if deleting {
            ep.meta_mut().deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
            ));
        }
        ep
    }

    const IDLE: Wanted = Wanted {
        in_use: false,
        neutron: false,
        networks: false,
    };

    #[test]
    fn nothing_is_written_when_finalizers_and_label_are_right() {
        assert_eq!(patch(&ep(&[], Some("c1"), false), IDLE), None);
        let used = Wanted { in_use: true, ..IDLE };
        assert_eq!(patch(&ep(&[IN_USE_FINALIZER], Some("c1"), false), used), None);
        // A deleted endpoint's missing label is not worth a write.
        assert_eq!(patch(&ep(&[], None, true), IDLE), None);
    }

    #[test]
    fn one_patch_sets_finalizers_and_label_keeping_everyone_elses() {
        let want = Wanted {
            in_use: true,
            neutron: true,
            networks: false,
        };
        let p = patch(&ep(&["other.io/keep"], Some("old"), false), want).unwrap();
        assert_eq!(
            p,
            json!({"metadata": {
                "finalizers": ["other.io/keep", IN_USE_FINALIZER, neutron_sync::FINALIZER],
                "resourceVersion": "7",
                "labels": {CELL_LABEL: "c1"},
            }})
        );
    }

    #[test]
    fn a_deleted_endpoint_loses_its_finalizers_but_no_label_is_set() {
        let p = patch(
            &ep(&[IN_USE_FINALIZER, neutron_sync::FINALIZER], None, true),
            IDLE,
        )
        .unwrap();
        assert_eq!(p, json!({"metadata": {"finalizers": [], "resourceVersion": "7"}}));
        assert!(IDLE.none());
    }
}
