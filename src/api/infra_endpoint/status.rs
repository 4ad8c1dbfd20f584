//! `status`: what the controller writes back on an InfraEndpoint.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CloudSecretRef, SdnSpec, SdnType};

/// What manages an endpoint, as shown in status and printer columns.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum SdnKind {
    #[serde(rename = "GoBGP")]
    GoBgp,
    OpenDaylight,
    // No SDN controller: cellnet does not configure this endpoint.
    External,
}

impl From<Option<&SdnSpec>> for SdnKind {
    fn from(sdn: Option<&SdnSpec>) -> Self {
        match sdn.map(|s| s.type_) {
            Some(SdnType::GoBgp) => Self::GoBgp,
            Some(SdnType::OpenDaylight) => Self::OpenDaylight,
            None => Self::External,
        }
    }
}

/// Observed state of an InfraEndpoint, written by the controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InfraEndpointStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Current state: `Ready`, `Reconciling`, `Stalled` (kstatus semantics), `SpeakerConfigured`,
    /// with networks `NetworksAnnounced`, with `spec.neutron` `NeutronConfigured`, and, only while
    /// credentials go over plain http or TLS is not verified, `InsecureTransport`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// What manages this endpoint: `GoBGP`, `OpenDaylight` or `External` (mirrors `spec.sdn.type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdn: Option<SdnKind>,

    /// Whether the SDN API answered at the last attempt; absent for external endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdn_reachable: Option<bool>,

    /// How many CellInterconnects reference this endpoint.
    #[serde(default)]
    pub interconnects: u32,

    /// The endpoint's networks (`spec.networks` and the announced Neutron subnet) and whether its
    /// speaker announces each; absent without networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<crate::api::routes::NetworkStatus>,

    /// What cellnet created in Neutron for this endpoint (ids), present with `spec.neutron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutron: Option<NeutronStatus>,
}

/// `status.neutron`: the ids of the Neutron resources cellnet owns for this endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NeutronStatus {
    /// The cloud (clouds.yaml entry) these resources live in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// The Secret the cloud came from (kept so that cleanup works after `spec.neutron` is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_secret_ref: Option<CloudSecretRef>,
    /// Id of the provider network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// Id of the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// Id of the cell's BGP speaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_speaker_id: Option<String>,
    /// Id of the BGP peer that is this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_peer_id: Option<String>,
    /// `resourceVersion` of the password Secret applied to the peer (never the value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_password_secret_version: Option<String>,
    /// Whether Neutron (and Keystone) answered at the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
}
