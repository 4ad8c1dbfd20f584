//! `InfraEndpoint`: one BGP speaker of one cell's infrastructure network.
//!
//! - this file: the kind itself ([`InfraEndpointSpec`] with its printer columns and CEL rules);
//! - [`sdn`]: how to reach the SDN controller that manages the speaker (`spec.sdn`);
//! - [`neutron`]: what Neutron is told about the endpoint's network (`spec.neutron`);
//! - [`status`]: what the controller writes back (`status`).
//!
//! Doc comments on the types and fields are the descriptions in the generated CRD (`crds/`).
use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

mod neutron;
mod sdn;
mod status;

#[cfg(test)]
mod tests;

pub use neutron::{
    AllocationPool, CloudSecretRef, DEFAULT_CLOUDS_KEY, NeutronBgpSpec, NeutronNetworkSpec,
    NeutronNetworkType, NeutronSpec, NeutronSubnetSpec,
};
pub use sdn::{
    DEFAULT_ODL_NETWORK_INSTANCE, DEFAULT_ODL_RIB_ID, OpenDaylightSpec, SdnSpec, SdnType, SecretRef, TlsSpec,
};
pub use status::{InfraEndpointStatus, NeutronStatus, SdnKind};

/// DNS-1123 label: what an OpenStack cell name must look like to be used as a label value too.
pub const DNS1123_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// DNS-1123 subdomain: a Kubernetes object name.
pub const DNS1123_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Default BGP TCP port.
pub const DEFAULT_BGP_PORT: u16 = 179;

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
// The earliest point to catch a Neutron network naming a segment the endpoint lacks (the
// controller reports `SegmentNotDeclared` for objects from before this rule).
#[x_kube(validation = Rule::new(
    "!has(self.neutron) || !has(self.neutron.network.segment) || (has(self.l2Segments) && self.l2Segments.exists(s, s.name == self.neutron.network.segment))"
)
.message("spec.neutron.network.segment must name a segment of spec.l2Segments")
.field_path(".neutron.network.segment")
.reason(Reason::FieldValueInvalid))]
// cellnet's peers and paths live on the speaker the endpoint names: pointing it at another
// speaker, or making it external, would leave them there with nothing to remove them.
#[x_kube(validation = Rule::new(
    "!has(oldSelf.sdn) || (has(self.sdn) && self.sdn.type == oldSelf.sdn.type && self.sdn.url == oldSelf.sdn.url)"
)
.message("spec.sdn.type and spec.sdn.url cannot change and spec.sdn cannot be removed: cellnet's peers and paths are on that speaker; create another InfraEndpoint for another speaker")
.field_path(".sdn.url"))]
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

    /// Free-form site metadata (rack, site, owner...). Kept and shown, never interpreted. At
    /// most 64 entries, keys up to 63 and values up to 1024 characters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64, "propertyNames" = {"maxLength": 63}, "additionalProperties" = {"type": "string", "maxLength": 1024}))]
    pub properties: BTreeMap<String, String>,

    /// Neutron: make this endpoint's network usable by the region's Neutron (a provider network
    /// and subnet, and optionally a BGP speaker for the cell peering with this endpoint),
    /// configured through Neutron's API. Absent: cellnet does not touch Neutron.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutron: Option<NeutronSpec>,

    /// The cell's infrastructure networks reachable through this endpoint (at most 64, each
    /// `cidr` once): announced by its speaker to the cells its interconnects join, and the only
    /// prefixes those cells accept from it (`spec.routes` of a CellInterconnect says otherwise).
    /// Several endpoints of one cell may declare the same networks (redundant gateways); two
    /// cells may not (both endpoints report `NetworksAnnounced=False`, reason `NetworkConflict`,
    /// naming the other, and neither network is announced until it is fixed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["cidr".into()]))]
    pub networks: Vec<crate::api::routes::Network>,

    /// The VXLAN tunnel address of the cell behind this endpoint (an IPv4 or IPv6 address): where
    /// other cells send the frames of its stretched L2 segments. Default: `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("spec.vtep must be an IPv4 or IPv6 address without a zone"))]
    pub vtep: Option<String>,

    /// The L2 segments (VXLAN networks) of the cell that interconnects may stretch to other
    /// cells (at most 256; each `name` and each `vni` once). The cell's fabric announces them
    /// with EVPN; cellnet carries them between cells where `spec.l2` of a CellInterconnect asks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(t, t.vni == s.vni))")
        .message("spec.l2Segments: each vni may appear only once"))]
    pub l2_segments: Vec<crate::api::segments::L2Segment>,
}

fn default_port() -> u16 {
    DEFAULT_BGP_PORT
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

    /// The VXLAN tunnel address: `vtep`, else `address`.
    pub fn effective_vtep(&self) -> &str {
        self.vtep.as_deref().unwrap_or(&self.address)
    }
}
