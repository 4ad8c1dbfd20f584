//! `CellInterconnect`: a desired BGP session between two InfraEndpoints.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::infra_endpoint::{DNS1123_SUBDOMAIN, SdnKind};
use super::routes::{RouteStatus, RoutesSpec};
use super::segments::{L2Spec, SegmentStatus};

/// Defaults of RFC 4271 section 10, as most BGP implementations use them.
pub const DEFAULT_HOLD_TIME: u16 = 90;
pub const DEFAULT_KEEPALIVE_INTERVAL: u16 = 30;

/// Desired state of a CellInterconnect: one BGP session on the underlay between a local,
/// SDN-managed InfraEndpoint and a remote one (managed or external).
// clippy reads the repeated `type_ = "string"` of the printer columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cellnet.io",
    version = "v1alpha1",
    kind = "CellInterconnect",
    namespaced,
    status = "CellInterconnectStatus",
    shortname = "cic",
    category = "cellnet",
    derive = "PartialEq",
    doc = "CellInterconnect is a desired BGP session on the underlay between two InfraEndpoints in the \
           same namespace. cellnet configures the local side and, when it is SDN-managed, the remote side.",
    printcolumn(
        name = "Local-Cell",
        type_ = "string",
        json_path = ".status.localCell",
        description = "Cell of the local endpoint"
    ),
    printcolumn(
        name = "Remote-Cell",
        type_ = "string",
        json_path = ".status.remoteCell",
        description = "Cell of the remote endpoint"
    ),
    printcolumn(
        name = "Session",
        type_ = "string",
        json_path = ".status.local.sessionState",
        description = "BGP session state seen by the local speaker"
    ),
    printcolumn(
        name = "Routes",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"RoutesExchanged\")].reason",
        description = "Whether the networks are exchanged (RoutesExchanged's reason)"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the interconnect is ready"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Local",
        type_ = "string",
        json_path = ".spec.localEndpoint.name",
        description = "Local InfraEndpoint",
        priority = 1
    ),
    printcolumn(
        name = "Remote",
        type_ = "string",
        json_path = ".spec.remoteEndpoint.name",
        description = "Remote InfraEndpoint",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.localEndpoint.name != self.remoteEndpoint.name")
    .message("spec.remoteEndpoint must name another InfraEndpoint than spec.localEndpoint")
    .field_path(".remoteEndpoint.name"))]
pub struct CellInterconnectSpec {
    /// The InfraEndpoint, in the same namespace, whose speaker initiates this session. It must be
    /// SDN-managed (have `spec.sdn`). Immutable: cellnet's peers are on that endpoint's speaker;
    /// create another CellInterconnect to join other endpoints.
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("spec.localEndpoint is immutable: create another CellInterconnect (and delete this one) to join other endpoints"))]
    pub local_endpoint: EndpointRef,

    /// The InfraEndpoint, in the same namespace, at the other end. When SDN-managed, cellnet
    /// configures both sides; when external, only the local side. Immutable, like
    /// `localEndpoint`.
    #[x_kube(validation = Rule::new("self == oldSelf")
        .message("spec.remoteEndpoint is immutable: create another CellInterconnect (and delete this one) to join other endpoints"))]
    pub remote_endpoint: EndpointRef,

    /// BGP session parameters.
    #[serde(default)]
    pub bgp: BgpSpec,

    /// Stop reconciling this interconnect and keep what is configured as it is (for maintenance).
    #[serde(default)]
    pub suspend: bool,

    /// Administrative state of the session: `Enabled` (default) or `Disabled` (the peers are
    /// kept but the session is shut down, with `adminMessage` sent as the RFC 8203 reason).
    #[serde(default)]
    pub admin_state: AdminState,

    /// Shutdown communication (RFC 8203/9003) sent to the peer when `adminState` is `Disabled`:
    /// UTF-8, at most 255 octets (fewer characters when it is not ASCII).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("bytes(self).size() <= 255")
        .message("spec.adminMessage must be at most 255 octets of UTF-8 (RFC 9003)"))]
    pub admin_message: Option<String>,

    /// Which networks the session carries: each side's own networks out, the other cell's
    /// declared networks in (the default), or less.
    #[serde(default)]
    pub routes: RoutesSpec,

    /// L2 segments stretched between the two cells over this session (BGP EVPN, VXLAN): the
    /// `l2vpn-evpn` family is negotiated on both managed sides and each accepts the other cell's
    /// EVPN routes for exactly these segments. Absent: no L2 (an L2 segment joins two broadcast
    /// domains, so it is asked for, never implied); `{}`: every segment both endpoints declare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<L2Spec>,
}

/// Reference to an InfraEndpoint in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct EndpointRef {
    /// Name of the InfraEndpoint.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,
}

/// Reference to one key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN))]
    pub name: String,

    /// Key within the Secret whose value is used.
    #[schemars(length(min = 1, max = 253), pattern(r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Administrative state of a session.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AdminState {
    #[default]
    Enabled,
    Disabled,
}

/// A BGP address family (AFI/SAFI) negotiated on the session.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AddressFamily {
    Ipv4Unicast,
    Ipv6Unicast,
    L2vpnEvpn,
}

/// BGP session parameters.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
// RFC 4271 4.2: the hold time is zero or at least three seconds.
#[x_kube(validation = Rule::new("self.holdTime == 0 || self.holdTime >= 3")
    .message("spec.bgp.holdTime must be 0 or between 3 and 65535 seconds")
    .field_path(".holdTime"))]
#[x_kube(validation = Rule::new(
    "self.holdTime == 0 || (self.keepaliveInterval >= 1 && self.keepaliveInterval < self.holdTime)"
)
.message("spec.bgp.keepaliveInterval must be at least 1 and less than spec.bgp.holdTime (unless holdTime is 0)")
.field_path(".keepaliveInterval"))]
pub struct BgpSpec {
    /// Hold time in seconds proposed in the BGP OPEN: 0 (no keepalives) or 3 to 65535.
    #[serde(default = "default_hold_time")]
    #[schemars(range(max = 65535))]
    pub hold_time: u16,

    /// Seconds between KEEPALIVE messages; less than `holdTime` unless `holdTime` is 0.
    #[serde(default = "default_keepalive")]
    #[schemars(range(max = 65535))]
    pub keepalive_interval: u16,

    /// Maximum TTL for an eBGP session to a peer that is not directly connected, 1 to 255.
    /// Absent: directly connected (TTL 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255))]
    pub ebgp_multihop: Option<u8>,

    /// Secret key holding the TCP MD5 (RFC 2385) password of the session, for both sides.
    /// The Secret must carry the label `cellnet.io/credentials: "true"` (reason
    /// `SecretNotPermitted` without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,

    /// Address families to negotiate, each at most once: `ipv4-unicast`, `ipv6-unicast`,
    /// `l2vpn-evpn`.
    #[serde(default = "default_address_families")]
    #[schemars(length(min = 1, max = 3))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub address_families: Vec<AddressFamily>,

    /// Which side only listens when cellnet manages both: `Remote` (default), `Local` or `None`
    /// (both dial). Two speakers that dial each other at the same moment can both wait in
    /// OpenSent until GoBGP's 240 s OpenSent timer ends; with one side passive only the other
    /// opens the TCP connection. Ignored when the remote side is external (the local side
    /// always dials then). Changing it resets the session on both managed speakers.
    #[serde(default)]
    pub passive_side: PassiveSide,

    /// Graceful restart (RFC 4724) on both managed sides. Absent: off. With it on, a side whose
    /// speaker restarts (crash, upgrade) keeps being routed to by the other side for
    /// `restartTime` seconds while cellnet configures the restarted speaker again. Changing it
    /// resets the session on both managed speakers (capabilities are only sent in the OPEN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulRestart>,
}

/// `spec.bgp.gracefulRestart`: graceful restart (RFC 4724) of the session.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GracefulRestart {
    /// Advertise the graceful restart capability (and, on GoBGP, keep forwarding state for
    /// every address family of the session). When the other side's speaker restarts, this
    /// side keeps the routes it learnt from it, marked stale, until the session is back and
    /// the routes are sent again, or until `restartTime` ends.
    pub enabled: bool,

    /// Seconds the other side keeps this side's routes after this side's speaker went away
    /// (the Restart Time of the capability, 1 to 4095). Default 120.
    #[serde(default = "default_restart_time")]
    #[schemars(range(min = 1, max = 4095))]
    pub restart_time: u16,
}

/// RFC 4724's restart time is 12 bits; 120 s is the usual default (Cilium, FRR, Junos).
pub const DEFAULT_RESTART_TIME: u16 = 120;

fn default_restart_time() -> u16 {
    DEFAULT_RESTART_TIME
}

/// The side of an interconnect that waits for the other to connect (`spec.bgp.passiveSide`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PassiveSide {
    Local,
    #[default]
    Remote,
    None,
}

impl Default for BgpSpec {
    fn default() -> Self {
        Self {
            hold_time: DEFAULT_HOLD_TIME,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            ebgp_multihop: None,
            password_secret_ref: None,
            address_families: default_address_families(),
            passive_side: PassiveSide::default(),
            graceful_restart: None,
        }
    }
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn default_hold_time() -> u16 {
    DEFAULT_HOLD_TIME
}

fn default_keepalive() -> u16 {
    DEFAULT_KEEPALIVE_INTERVAL
}

fn default_address_families() -> Vec<AddressFamily> {
    vec![AddressFamily::Ipv4Unicast]
}

/// State of the BGP finite state machine (RFC 4271 section 8), or `Unknown`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum SessionState {
    #[default]
    Unknown,
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Observed state of one side of the session.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SideStatus {
    /// What manages this side: `GoBGP`, `OpenDaylight` or `External`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdn: Option<SdnKind>,

    /// Address of the peer as configured on this side's speaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address: Option<String>,

    /// BGP FSM state seen by this side: `Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm`,
    /// `Established`, or `Unknown` (not observed, or an external side).
    #[serde(default)]
    pub session_state: SessionState,

    /// When `sessionState` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,

    /// How many times the session went down from Established, as seen by this side.
    #[serde(default)]
    pub flaps: u32,

    /// Since when the session has been Established; absent while it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_since: Option<Time>,

    /// Since when this side's peer has been configured but its session not Established (absent
    /// while Established, administratively down or not configured). Kept across controller
    /// restarts: stuck detection counts from it (reason `SessionStuck`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_established_since: Option<Time>,

    /// How many times cellnet reset this side's session because it was stuck (not Established
    /// for longer than the threshold: 3 × `spec.bgp.holdTime`, at least the controller's
    /// `--session-stuck-minimum`, 30 s by default).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resets: u32,

    /// When cellnet last reset this side's session. A stuck session is reset at most once per
    /// threshold, the wait doubling with each reset of the same outage (at most an hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reset_time: Option<Time>,

    /// The hold time (seconds) agreed with the peer, while the session is Established and the
    /// speaker reports it (GoBGP does; see docs/failure-modes.md for each backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated_hold_time: Option<u16>,

    /// The keepalive interval (seconds) in use on the Established session, where the speaker
    /// reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated_keepalive: Option<u16>,

    /// The last error this side reported or met (SDN API error, BGP NOTIFICATION...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,

    /// Whether cellnet has configured this side's speaker (always false for an external side).
    #[serde(default)]
    pub configured: bool,

    /// This side's speaker only listens (transport passive mode): it waits for the other side
    /// to connect, per `spec.bgp.passiveSide`. Absent: it dials.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passive: bool,

    /// Whether graceful restart was negotiated on this side's session (both speakers sent the
    /// capability for at least one of its address families). Absent: not known (the session
    /// is not established, graceful restart is off, or the speaker does not report it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart_negotiated: Option<bool>,

    /// The routes exchanged on this side's session; absent until observed, and for an external
    /// side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<RouteStatus>,

    /// The stretched L2 segments as this side's speaker sees them: the other cell's VTEPs and
    /// MACs per VNI. Absent when `spec.l2` stretches nothing, and for an external side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentStatus>,

    /// EVPN routes from the other cell that this side did not accept because their VNI or
    /// route target is not one this interconnect stretches.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub segment_routes_rejected: u64,

    /// Human-readable detail about this side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed state of a CellInterconnect, written by the controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CellInterconnectStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Current state: `Ready`, `Reconciling`, `Stalled` (kstatus semantics), `LocalConfigured`,
    /// `RemoteConfigured`, `SessionEstablished` and `RoutesExchanged`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Cell of the local InfraEndpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_cell: Option<String>,

    /// Cell of the remote InfraEndpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_cell: Option<String>,

    /// The local side of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<SideStatus>,

    /// The remote side of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<SideStatus>,

    /// `metadata.resourceVersion` of the password Secret last applied to the speakers (never the
    /// password or a hash of it), so that a changed Secret is noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_password_secret_version: Option<String>,

    /// The value of the `cellnet.io/reconcile-requested-at` annotation that the controller last
    /// handled (Flux's `lastHandledReconcileAt` pattern), so tools can wait for a forced resync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// cellnet's ledger of the neighbours it created on speakers that cannot carry an owner
    /// marker (OpenDaylight). Written by the controller before each create, left alone by every
    /// other status write; cellnet changes or deletes such a neighbour only when it is listed here.
    /// It lives in status because only the controller may write `cellinterconnects/status`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owned_peers: Vec<OwnedPeer>,
}

/// A neighbour cellnet created on a speaker without owner markers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct OwnedPeer {
    /// The speaker: `<backend kind>|<SDN URL>`.
    pub speaker: String,
    /// The neighbour address configured on that speaker.
    pub neighbor: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bgp_defaults_when_absent() {
        let spec: CellInterconnectSpec =
            serde_json::from_value(json!({"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}}))
                .unwrap();
        assert_eq!(spec.bgp, BgpSpec::default());
        assert_eq!(spec.bgp.hold_time, 90);
        assert_eq!(spec.bgp.keepalive_interval, 30);
        assert_eq!(spec.bgp.address_families, [AddressFamily::Ipv4Unicast]);
        assert!(!spec.suspend);
        assert_eq!(spec.admin_state, AdminState::Enabled);
    }

    #[test]
    fn address_families_are_kebab_case() {
        let afs: Vec<AddressFamily> =
            serde_json::from_value(json!(["ipv4-unicast", "ipv6-unicast", "l2vpn-evpn"])).unwrap();
        assert_eq!(
            afs,
            [
                AddressFamily::Ipv4Unicast,
                AddressFamily::Ipv6Unicast,
                AddressFamily::L2vpnEvpn
            ]
        );
        assert!(serde_json::from_value::<AddressFamily>(json!("ipv4")).is_err());
    }

    #[test]
    fn empty_status_serializes_small() {
        let status = CellInterconnectStatus {
            local: Some(SideStatus::default()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({"local": {"sessionState": "Unknown", "flaps": 0, "configured": false}})
        );
    }
}
