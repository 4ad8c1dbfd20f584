//! The networks between cells: what an endpoint declares (`InfraEndpoint.spec.networks`), what an
//! interconnect carries (`CellInterconnect.spec.routes`) and what each side sees
//! (`status.local.routes`, `status.remote.routes`).
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::infra_endpoint::DNS1123_LABEL;

/// Most networks one endpoint may declare.
pub const MAX_NETWORKS: usize = 64;
/// How many missing prefixes a side's status lists (the rest is counted).
pub const MAX_LISTED_MISSING: usize = 16;
/// Default of `spec.routes.maxPrefixes`.
pub const DEFAULT_MAX_PREFIXES: u32 = 1000;

/// One infrastructure network of a cell (management, storage, tunnel, provider...).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
// The canonical form makes duplicates visible to the list's map key and shows the fix.
#[x_kube(validation = Rule::new("isCIDR(self.cidr)")
    .message("spec.networks[].cidr must be an IPv4 or IPv6 prefix such as 192.0.2.0/25 or 2001:db8::/48")
    .field_path(".cidr"))]
#[x_kube(validation = Rule::new("!isCIDR(self.cidr) || string(cidr(self.cidr).masked()) == self.cidr")
    .message(Message::Expression(
        "'spec.networks[].cidr has host bits set or is not in canonical form: write %s'.format([string(cidr(self.cidr).masked())])".into()
    ))
    .field_path(".cidr")
    .reason(Reason::FieldValueInvalid))]
pub struct Network {
    /// The prefix, with no host bits set and in canonical form (for example `192.0.2.0/25` or
    /// `2001:db8:1::/48`). At most once per endpoint.
    #[schemars(length(min = 3, max = 43))]
    pub cidr: String,

    /// A name for people (DNS-1123 label, for example `storage`), shown in status and by
    /// `kubectl cellnet routes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS1123_LABEL))]
    pub name: Option<String>,
}

/// `spec.routes`: which networks the interconnect carries, in each direction.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutesSpec {
    /// What each managed side announces to the other: `Networks` (default: its own endpoint's
    /// `spec.networks`, and the Neutron subnet unless `announceSubnet: false`; nothing else it
    /// knows) or `None`.
    #[serde(default)]
    pub export: ExportPolicy,

    /// What each managed side accepts from the other: `RemoteNetworks` (default: exactly the
    /// prefixes the other endpoint declares), `Any` (whatever it sends) or `None`.
    #[serde(default)]
    pub import: ImportPolicy,

    /// More prefixes received on the session than this shuts the session down on the receiving
    /// side (with the speaker's own prefix limit, where it has one): 1 to 100000, default 1000.
    /// Counted per side and address family, before the import filter.
    #[serde(default = "default_max_prefixes")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_prefixes: u32,
}

impl Default for RoutesSpec {
    fn default() -> Self {
        Self {
            export: ExportPolicy::default(),
            import: ImportPolicy::default(),
            max_prefixes: DEFAULT_MAX_PREFIXES,
        }
    }
}

fn default_max_prefixes() -> u32 {
    DEFAULT_MAX_PREFIXES
}

/// `spec.routes.export`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ExportPolicy {
    /// Each managed side announces its own endpoint's networks.
    #[default]
    Networks,
    /// Nothing is announced.
    None,
}

/// `spec.routes.import`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ImportPolicy {
    /// Exactly the prefixes the other endpoint declares in `spec.networks`.
    #[default]
    RemoteNetworks,
    /// Whatever the other side sends (up to `maxPrefixes`).
    Any,
    /// Nothing.
    None,
}

/// `status.<side>.routes`: the routes exchanged on one side's session, as its speaker sees them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// Prefixes this side sends to the other.
    #[serde(default)]
    pub advertised: u64,
    /// Prefixes received from the other side, before the import filter.
    #[serde(default)]
    pub received: u64,
    /// Received prefixes the import filter let through.
    #[serde(default)]
    pub accepted: u64,
    /// Received prefixes the import filter dropped (cellnet's or the operator's own policy).
    #[serde(default)]
    pub rejected: u64,
    /// Networks the other cell declares that this side should accept but has not (at most 16;
    /// `missingCount` has them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// How many such networks there are.
    #[serde(default)]
    pub missing_count: u32,
    /// Networks this side would announce that the session does not carry (an IPv6 prefix on a
    /// session without `ipv6-unicast`): never silently dropped, listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_carried: Vec<String>,
    /// The speaker shut the session down because the other side sent more than `maxPrefixes`.
    #[serde(default)]
    pub prefix_limit_exceeded: bool,
}

/// `InfraEndpoint.status.networks[]`: one network of the endpoint and whether it is announced.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    /// The prefix.
    pub cidr: String,
    /// Its name in `spec.networks`, or `neutron-subnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the endpoint's speaker announces it.
    #[serde(default)]
    pub announced: bool,
    /// Why it is not announced, when it is not (for example the other cell's endpoint that
    /// declares an overlapping network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_default_to_networks_out_and_remote_networks_in() {
        let spec: RoutesSpec = serde_json::from_value(json!({})).unwrap();
        assert_eq!(spec, RoutesSpec::default());
        assert_eq!(spec.export, ExportPolicy::Networks);
        assert_eq!(spec.import, ImportPolicy::RemoteNetworks);
        assert_eq!(spec.max_prefixes, 1000);
    }

    #[test]
    fn empty_route_status_is_small() {
        assert_eq!(
            serde_json::to_value(RouteStatus::default()).unwrap(),
            json!({"advertised": 0, "received": 0, "accepted": 0, "rejected": 0, "missingCount": 0,
                   "prefixLimitExceeded": false})
        );
    }
}
