//! What Neutron returns (the fields cellnet reads).
use serde::Deserialize;

/// A Neutron network (the fields cellnet reads).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(rename = "router:external", default)]
    pub external: bool,
    #[serde(rename = "provider:network_type", default)]
    pub network_type: Option<String>,
    #[serde(rename = "provider:physical_network", default)]
    pub physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id", default)]
    pub segmentation_id: Option<u32>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub availability_zone_hints: Vec<String>,
}

/// A Neutron subnet.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Subnet {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub network_id: String,
    pub cidr: String,
    #[serde(default)]
    pub gateway_ip: Option<String>,
    #[serde(default)]
    pub allocation_pools: Vec<Pool>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// An allocation pool as Neutron shows it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Pool {
    pub start: String,
    pub end: String,
}

/// A neutron-dynamic-routing BGP speaker.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BgpSpeaker {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub local_as: u32,
    pub ip_version: u8,
    #[serde(default)]
    pub advertise_tenant_networks: bool,
    #[serde(default)]
    pub advertise_floating_ip_host_routes: bool,
    #[serde(default)]
    pub peers: Vec<String>,
    #[serde(default)]
    pub networks: Vec<String>,
}

/// A neutron-dynamic-routing BGP peer (the password is never returned).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BgpPeer {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub peer_ip: String,
    pub remote_as: u32,
    #[serde(default)]
    pub auth_type: String,
}
