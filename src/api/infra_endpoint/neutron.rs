//! `spec.neutron`: what Neutron is told about an endpoint's network (provider network, subnet,
//! BGP dynamic routing), through its own API.
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DNS1123_LABEL, DNS1123_SUBDOMAIN};

/// Key of the clouds.yaml Secret when `cloudSecretRef.key` is not given.
pub const DEFAULT_CLOUDS_KEY: &str = "clouds.yaml";

/// `spec.neutron`: what Neutron (one per region, shared by the cells) is told about this
/// endpoint's network, through its own API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NeutronSpec {
    /// Secret in the same namespace holding a standard OpenStack `clouds.yaml` (Keystone v3
    /// password or application credential, `region_name`, `interface`; or `auth_type: none`
    /// with `endpoint_override` for a Neutron without Keystone). The Secret must carry the label
    /// `cellnet.io/credentials: "true"` (reason `SecretNotPermitted` without it).
    pub cloud_secret_ref: CloudSecretRef,

    /// Name of the entry under `clouds:` in that file.
    #[schemars(length(min = 1, max = 253))]
    pub cloud: String,

    /// The provider network for this endpoint's infrastructure network.
    pub network: NeutronNetworkSpec,

    /// The subnet of that network.
    pub subnet: NeutronSubnetSpec,

    /// BGP dynamic routing (neutron-dynamic-routing): a BGP speaker for the cell, with this
    /// endpoint as its peer and the provider network as its gateway network. Absent: no BGP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NeutronBgpSpec>,
}

/// A key of a Secret in the same namespace that holds a `clouds.yaml`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct CloudSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,

    /// Key within the Secret (default `clouds.yaml`).
    #[serde(default = "default_clouds_key")]
    #[schemars(length(min = 1, max = 253), pattern(r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

fn default_clouds_key() -> String {
    DEFAULT_CLOUDS_KEY.into()
}

/// Neutron network type of the provider network.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NeutronNetworkType {
    // An untagged physical network.
    #[default]
    Flat,
    // A VLAN on the physical network.
    Vlan,
    // A VXLAN network: the VNI of one of the endpoint's L2 segments, no physical network.
    Vxlan,
}

impl NeutronNetworkType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Vlan => "vlan",
            Self::Vxlan => "vxlan",
        }
    }
}

/// `spec.neutron.network`: the provider network.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.networkType != 'vlan' || has(self.segmentationId)")
    .message("spec.neutron.network.segmentationId is required when networkType is vlan")
    .field_path(".segmentationId")
    .reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new("self.networkType == 'vlan' || !has(self.segmentationId)")
    .message("spec.neutron.network.segmentationId is allowed only when networkType is vlan (a vxlan network takes the VNI of its segment)")
    .field_path(".segmentationId")
    .reason(Reason::FieldValueForbidden))]
// Neutron refuses provider:physical_network on a tunnel network ("provider:physical_network
// specified for vxlan network", neutron/plugins/ml2/drivers/type_tunnel.py).
#[x_kube(validation = Rule::new("self.networkType == 'vxlan' || has(self.physicalNetwork)")
    .message("spec.neutron.network.physicalNetwork is required when networkType is flat or vlan")
    .field_path(".physicalNetwork")
    .reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new("self.networkType != 'vxlan' || !has(self.physicalNetwork)")
    .message("spec.neutron.network.physicalNetwork is not allowed when networkType is vxlan (Neutron refuses a physical network on a tunnel network)")
    .field_path(".physicalNetwork")
    .reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new("self.networkType != 'vxlan' || has(self.segment)")
    .message("spec.neutron.network.segment is required when networkType is vxlan")
    .field_path(".segment")
    .reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new("self.networkType == 'vxlan' || !has(self.segment)")
    .message("spec.neutron.network.segment is allowed only when networkType is vxlan")
    .field_path(".segment")
    .reason(Reason::FieldValueForbidden))]
pub struct NeutronNetworkSpec {
    /// Name of the Neutron network; default `cellnet-<cell>-<endpoint name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,

    /// `provider:physical_network`: the physical network name known to Neutron's ML2 config;
    /// required for `flat` and `vlan`, refused for `vxlan` (a tunnel network has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub physical_network: Option<String>,

    /// `provider:network_type`: `flat` (default), `vlan`, or `vxlan` (the VNI of `segment`).
    #[serde(default)]
    pub network_type: NeutronNetworkType,

    /// `provider:segmentation_id`: the VLAN ID, 1 to 4094; required for `vlan`, refused for `flat`
    /// and `vxlan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4094))]
    pub segmentation_id: Option<u16>,

    /// For `vxlan` (required there, refused otherwise): the name of one of the endpoint's
    /// `spec.l2Segments`, whose VNI becomes the network's `provider:segmentation_id`, so that
    /// Neutron's network is the segment the interconnects stretch. A changed VNI replaces the
    /// network, as a changed VLAN ID does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub segment: Option<String>,

    /// `router:external`: whether the network is external (default true).
    #[serde(default = "default_true")]
    pub external: bool,

    /// MTU of the network; default: what Neutron chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 68, max = 65535))]
    pub mtu: Option<u32>,

    /// Availability zone hints of the network (at most 16, each up to 255 characters, Neutron's
    /// own limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 255)))]
    pub availability_zone_hints: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// `spec.neutron.subnet`: the subnet of the provider network.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.gatewayIP) || (isCIDR(self.cidr) && isIP(self.gatewayIP) && cidr(self.cidr).containsIP(self.gatewayIP))"
)
.message("spec.neutron.subnet.gatewayIP must be an address inside cidr")
.field_path(".gatewayIP")
.reason(Reason::FieldValueInvalid))]
pub struct NeutronSubnetSpec {
    /// CIDR of the subnet (for example `192.0.2.0/24`); must contain `spec.address`.
    #[schemars(length(min = 1, max = 49))]
    #[x_kube(validation = Rule::new("isCIDR(self)").message("spec.neutron.subnet.cidr must be a CIDR"))]
    pub cidr: String,

    /// Gateway address inside the CIDR; absent: no gateway.
    #[serde(default, rename = "gatewayIP", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 45))]
    pub gateway_ip: Option<String>,

    /// Ranges Neutron allocates addresses from; absent: Neutron's default (the whole CIDR).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allocation_pools: Vec<AllocationPool>,

    /// Count this subnet's CIDR among the endpoint's networks (default true), so that the
    /// network Neutron uses is reachable from the other cells.
    #[serde(default = "default_true")]
    pub announce_subnet: bool,
}

/// An allocation pool of a subnet: first and last address.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AllocationPool {
    /// First address.
    #[schemars(length(min = 1, max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("allocation pool start must be an IP address"))]
    pub start: String,
    /// Last address.
    #[schemars(length(min = 1, max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("allocation pool end must be an IP address"))]
    pub end: String,
}

/// `spec.neutron.bgp`: neutron-dynamic-routing for the cell.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NeutronBgpSpec {
    /// `local_as` of the cell's Neutron BGP speaker, 1 to 4294967295 (read-only in Neutron:
    /// a change replaces the speaker).
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub local_as: u32,

    /// Advertise tenant networks (default true).
    #[serde(default = "default_true")]
    pub advertise_tenant_networks: bool,

    /// Advertise floating IP host routes (default true).
    #[serde(default = "default_true")]
    pub advertise_floating_ip_host_routes: bool,

    /// Secret key holding the TCP MD5 password of the peer; absent: no authentication. The
    /// Secret must carry the label `cellnet.io/credentials: "true"` (reason `SecretNotPermitted`
    /// without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<crate::api::SecretKeyRef>,
}
