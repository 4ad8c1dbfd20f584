//! `spec.sdn`: the SDN controller that manages an endpoint's speaker, and how to reach it.
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DNS1123_SUBDOMAIN;

/// OpenDaylight defaults, the names its sample configuration uses.
pub const DEFAULT_ODL_RIB_ID: &str = "bgp-example";
pub const DEFAULT_ODL_NETWORK_INSTANCE: &str = "global-bgp";

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
    /// for GoBGP's gRPC API or `https://odl.example:8181` for OpenDaylight RESTCONF), without
    /// user information, query or fragment. The controller calls only URLs its operator allows
    /// (`--endpoint-allow`; otherwise reason `EndpointNotAllowed`).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(
        "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''"
    )
    .message("spec.sdn.url must be an http or https URL with a host"))]
    #[x_kube(validation = Rule::new("!self.matches('^[^:/?#]*://[^/?#]*@')")
        .message("spec.sdn.url must not contain user information (user:password@); put credentials in credentialsSecretRef"))]
    #[x_kube(validation = Rule::new("!self.contains('?')")
        .message("spec.sdn.url must not have a query (?...): cellnet appends its own paths to the URL"))]
    #[x_kube(validation = Rule::new("!self.contains('#')")
        .message("spec.sdn.url must not have a fragment (#...): cellnet appends its own paths to the URL"))]
    pub url: String,

    /// Secret in the same namespace with the keys `username` and `password` for the SDN API.
    /// The Secret must carry the label `cellnet.io/credentials: "true"` (reason
    /// `SecretNotPermitted` without it).
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
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
// A CA that is then not used to verify anything reads as protection that is not there.
#[x_kube(validation = Rule::new("!(has(self.caSecretRef) && self.insecureSkipVerify)")
    .message("spec.sdn.tls: caSecretRef and insecureSkipVerify exclude each other (a CA is only used to verify)")
    .field_path(".insecureSkipVerify"))]
pub struct TlsSpec {
    /// Secret in the same namespace whose key `ca.crt` holds the PEM CA bundle that signs the
    /// SDN API's certificate. Absent: the system trust roots. The Secret must carry the label
    /// `cellnet.io/credentials: "true"` (reason `SecretNotPermitted` without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretRef>,

    /// Skip verification of the SDN API's certificate. For lab use only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// OpenDaylight BGP settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
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

    /// IPv4 address of the application peer whose programmable RIB carries this cell's
    /// `spec.networks` (OpenDaylight BGP user guide, "BGP Application Peer and programmable
    /// RIB"). It names the peer and its RIB, and OpenDaylight uses it in its best-path decision,
    /// so no BGP neighbour of this speaker may use it (for example `192.0.2.250`). cellnet
    /// creates the application peer when it is absent and uses an existing one as it is.
    /// Absent: the networks are not announced and status says `Unsupported`. Changing it leaves
    /// cellnet's routes in the old peer's RIB: empty `spec.networks` first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 7, max = 15))]
    #[x_kube(validation = Rule::new("isIP(self) && ip(self).family() == 4")
        .message("spec.sdn.openDaylight.applicationPeer must be an IPv4 address, for example 192.0.2.250"))]
    pub application_peer: Option<String>,
}

impl Default for OpenDaylightSpec {
    fn default() -> Self {
        Self {
            rib_id: default_rib_id(),
            network_instance: default_network_instance(),
            application_peer: None,
        }
    }
}

fn default_rib_id() -> String {
    DEFAULT_ODL_RIB_ID.into()
}

fn default_network_instance() -> String {
    DEFAULT_ODL_NETWORK_INSTANCE.into()
}
