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

    /// Current state: `Ready`, `Reconciling`, `Stalled` (kstatus semantics) and `SpeakerConfigured`.
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
