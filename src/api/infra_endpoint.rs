//! `InfraEndpoint`: one BGP speaker of one cell's infrastructure network.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// DNS-1123 label: what an OpenStack cell name must look like to be used as a label value too.
pub const DNS1123_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// DNS-1123 subdomain: a Kubernetes object name.
pub const DNS1123_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Default BGP TCP port.
pub const DEFAULT_BGP_PORT: u16 = 179;
/// OpenDaylight defaults, the names its sample configuration uses.
pub const DEFAULT_ODL_RIB_ID: &str = "bgp-example";
pub const DEFAULT_ODL_NETWORK_INSTANCE: &str = "global-bgp";

/// Desired state of an InfraEndpoint: one BGP speaker on the underlay of one OpenStack cell (or an
/// external router that cellnet peers with but does not configure).
// clippy reads the repeated `type_ = "string"` of the printer columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cellnet.io",
    version = "v1alpha1",
    kind = "InfraEndpoint",
    namespaced,
    status = "InfraEndpointStatus",
    shortname = "iep",
    category = "cellnet",
    derive = "PartialEq",
    doc = "InfraEndpoint is one BGP speaker on the infrastructure network of one OpenStack cell, \
           either managed through its SDN controller or external (configured by someone else).",
    selectable = ".spec.cell",
    printcolumn(
        name = "Cell",
        type_ = "string",
        json_path = ".spec.cell",
        description = "OpenStack cell"
    ),
    printcolumn(
        name = "Address",
        type_ = "string",
        json_path = ".spec.address",
        description = "BGP speaker address"
    ),
    printcolumn(
        name = "ASN",
        type_ = "integer",
        json_path = ".spec.asn",
        description = "Autonomous system number"
    ),
    printcolumn(
        name = "SDN",
        type_ = "string",
        json_path = ".status.sdn",
        description = "SDN controller type, or External"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the endpoint is ready"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
// Without a router ID the controller falls back to the address, which only works for IPv4.
#[x_kube(validation = Rule::new(
    "has(self.routerId) || !isIP(self.address) || ip(self.address).family() == 4"
)
.message("spec.routerId is required when spec.address is an IPv6 address")
.field_path(".routerId")
.reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new(
    "!has(self.neutron) || (isIP(self.address) && isCIDR(self.neutron.subnet.cidr) && cidr(self.neutron.subnet.cidr).containsIP(self.address))"
)
.message("spec.neutron.subnet.cidr must contain spec.address")
.field_path(".neutron.subnet.cidr")
.reason(Reason::FieldValueInvalid))]
pub struct InfraEndpointSpec {
    /// OpenStack cell this endpoint belongs to, as a DNS-1123 label (for example `cell1`).
    /// Immutable: create a new InfraEndpoint to move a speaker to another cell.
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.cell is immutable"))]
    pub cell: String,

    /// IPv4 or IPv6 address of the BGP speaker on the underlay network, without a prefix length
    /// or zone (for example `192.0.2.10` or `2001:db8::10`).
    #[schemars(length(min = 1, max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("spec.address must be an IPv4 or IPv6 address without a zone"))]
    pub address: String,

    /// Autonomous system number of the speaker: 1 to 4294967295 (4-byte ASNs allowed).
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub asn: u32,

    /// TCP port the BGP speaker listens on, 1 to 65535.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,

    /// BGP router ID (an IPv4 address). Defaults to `address` when that is IPv4; required when
    /// `address` is IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 7, max = 15))]
    #[x_kube(validation = Rule::new("isIP(self) && ip(self).family() == 4").message("spec.routerId must be an IPv4 address"))]
    pub router_id: Option<String>,

    /// SDN controller that manages this speaker. Absent: an external endpoint (a router in a
    /// data centre, say) that cellnet peers with but never configures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdn: Option<SdnSpec>,

    /// Free-form site metadata (rack, site, owner...). Kept and shown, never interpreted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,

    /// Neutron: make this endpoint's network usable by the region's Neutron (a provider network
    /// and subnet, and optionally a BGP speaker for the cell peering with this endpoint),
    /// configured through Neutron's API. Absent: cellnet does not touch Neutron.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutron: Option<NeutronSpec>,
}

fn default_port() -> u16 {
    DEFAULT_BGP_PORT
}

/// Type of SDN controller. More types will be added.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum SdnType {
    // GoBGP, driven through its gRPC API.
    #[serde(rename = "GoBGP")]
    GoBgp,
    // OpenDaylight, driven through RESTCONF.
    OpenDaylight,
}

/// How to reach and authenticate to the SDN controller that manages an endpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.openDaylight) || self.type == 'OpenDaylight'")
    .message("spec.sdn.openDaylight is only allowed when spec.sdn.type is OpenDaylight")
    .field_path(".openDaylight")
    .reason(Reason::FieldValueForbidden))]
pub struct SdnSpec {
    /// Type of SDN controller: `GoBGP` or `OpenDaylight`.
    #[serde(rename = "type")]
    pub type_: SdnType,

    /// Base URL of the SDN controller's API, http or https (for example `http://10.0.0.5:50051`
    /// for GoBGP's gRPC API or `https://odl.example:8181` for OpenDaylight RESTCONF).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(
        "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''"
    )
    .message("spec.sdn.url must be an http or https URL with a host"))]
    pub url: String,

    /// Secret in the same namespace with the keys `username` and `password` for the SDN API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// TLS settings for an https `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// OpenDaylight settings; only with `type: OpenDaylight` (defaults apply when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_daylight: Option<OpenDaylightSpec>,
}

impl SdnSpec {
    /// The OpenDaylight settings, with defaults when none are given.
    pub fn open_daylight_or_default(&self) -> OpenDaylightSpec {
        self.open_daylight.clone().unwrap_or_default()
    }
}

/// Reference to a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretRef {
    /// Name of the Secret, in the namespace of the referring object.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
}

/// TLS settings for talking to an SDN API over https.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Secret in the same namespace whose key `ca.crt` holds the PEM CA bundle that signs the
    /// SDN API's certificate. Absent: the system trust roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretRef>,

    /// Skip verification of the SDN API's certificate. For lab use only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// OpenDaylight BGP settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenDaylightSpec {
    /// ID of the BGP RIB in OpenDaylight's configuration.
    #[serde(default = "default_rib_id")]
    #[schemars(length(min = 1, max = 253))]
    pub rib_id: String,

    /// OpenConfig network instance that holds the BGP protocol.
    #[serde(default = "default_network_instance")]
    #[schemars(length(min = 1, max = 253))]
    pub network_instance: String,
}

impl Default for OpenDaylightSpec {
    fn default() -> Self {
        Self {
            rib_id: default_rib_id(),
            network_instance: default_network_instance(),
        }
    }
}

fn default_rib_id() -> String {
    DEFAULT_ODL_RIB_ID.into()
}

fn default_network_instance() -> String {
    DEFAULT_ODL_NETWORK_INSTANCE.into()
}

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

    /// Current state: `Ready`, `Reconciling`, `Stalled` (kstatus semantics), `SpeakerConfigured`
    /// and, with `spec.neutron`, `NeutronConfigured`.
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

    /// What cellnet created in Neutron for this endpoint (ids), present with `spec.neutron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutron: Option<NeutronStatus>,
}

/// Key of the clouds.yaml Secret when `cloudSecretRef.key` is not given.
pub const DEFAULT_CLOUDS_KEY: &str = "clouds.yaml";

/// `spec.neutron`: what Neutron (one per region, shared by the cells) is told about this
/// endpoint's network, through its own API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NeutronSpec {
    /// Secret in the same namespace holding a standard OpenStack `clouds.yaml` (Keystone v3
    /// password or application credential, `region_name`, `interface`; or `auth_type: none`
    /// with `endpoint_override` for a Neutron without Keystone).
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
}

impl NeutronNetworkType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Vlan => "vlan",
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
#[x_kube(validation = Rule::new("self.networkType != 'flat' || !has(self.segmentationId)")
    .message("spec.neutron.network.segmentationId is not allowed when networkType is flat")
    .field_path(".segmentationId")
    .reason(Reason::FieldValueForbidden))]
pub struct NeutronNetworkSpec {
    /// Name of the Neutron network; default `cellnet-<cell>-<endpoint name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,

    /// `provider:physical_network`: the physical network name known to Neutron's ML2 config.
    #[schemars(length(min = 1, max = 64))]
    pub physical_network: String,

    /// `provider:network_type`: `flat` (default) or `vlan`.
    #[serde(default)]
    pub network_type: NeutronNetworkType,

    /// `provider:segmentation_id`: the VLAN ID, 1 to 4094; required for `vlan`, refused for `flat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4094))]
    pub segmentation_id: Option<u16>,

    /// `router:external`: whether the network is external (default true).
    #[serde(default = "default_true")]
    pub external: bool,

    /// MTU of the network; default: what Neutron chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 68, max = 65535))]
    pub mtu: Option<u32>,

    /// Availability zone hints of the network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
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

    /// Secret key holding the TCP MD5 password of the peer; absent: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<crate::api::SecretKeyRef>,
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

impl InfraEndpointSpec {
    /// The router ID to configure: `routerId`, else `address` when that is IPv4.
    pub fn effective_router_id(&self) -> Option<std::net::Ipv4Addr> {
        match &self.router_id {
            Some(id) => id.parse().ok(),
            None => self.address.parse().ok(),
        }
    }

    /// Whether cellnet configures this endpoint (it has an SDN controller).
    pub fn is_managed(&self) -> bool {
        self.sdn.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_in_on_deserialize() {
        let spec: InfraEndpointSpec =
            serde_json::from_value(json!({"cell": "cell1", "address": "10.0.0.1", "asn": 65001})).unwrap();
        assert_eq!(spec.port, 179);
        assert_eq!(spec.router_id, None);
        assert!(!spec.is_managed());
        assert_eq!(spec.effective_router_id(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(SdnKind::from(spec.sdn.as_ref()), SdnKind::External);
    }

    #[test]
    fn ipv6_address_has_no_router_id_fallback() {
        let spec: InfraEndpointSpec =
            serde_json::from_value(json!({"cell": "c", "address": "2001:db8::1", "asn": 1})).unwrap();
        assert_eq!(spec.effective_router_id(), None);
    }

    #[test]
    fn sdn_round_trips_with_camel_case() {
        let value = json!({
            "cell": "cell1", "address": "10.0.0.1", "asn": 65001, "port": 1790,
            "sdn": {
                "type": "OpenDaylight", "url": "https://odl:8181",
                "credentialsSecretRef": {"name": "odl"},
                "tls": {"caSecretRef": {"name": "ca"}, "insecureSkipVerify": true},
                "openDaylight": {"ribId": "r", "networkInstance": "n"}
            },
            "properties": {"site": "par1"}
        });
        let spec: InfraEndpointSpec = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(spec.sdn.as_ref().unwrap().type_, SdnType::OpenDaylight);
        assert_eq!(serde_json::to_value(&spec).unwrap(), value);
        let gobgp: SdnType = serde_json::from_value(json!("GoBGP")).unwrap();
        assert_eq!(gobgp, SdnType::GoBgp);
    }

    #[test]
    fn open_daylight_defaults() {
        let odl: OpenDaylightSpec = serde_json::from_value(json!({})).unwrap();
        assert_eq!(odl, OpenDaylightSpec::default());
        assert_eq!(odl.rib_id, "bgp-example");
        assert_eq!(odl.network_instance, "global-bgp");
    }
}
