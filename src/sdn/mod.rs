//! SDN backends: one module per controller API, all behind [`SdnBackend`].
//!
//! The reconcilers only speak in the types below; a backend translates them to its own API
//! (GoBGP's gRPC, OpenDaylight's RESTCONF, ...). Every operation acts on one speaker.
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use futures::stream::BoxStream;

pub mod error;
pub mod fake;
pub mod gobgp;
pub mod opendaylight;
pub mod routes;
pub use error::SdnError;
pub use routes::{Origination, RouteCounts, RouteFilter, RoutesOutcome, SegmentSeen, SegmentsSeen};

/// Prefix of the ownership marker that cellnet writes into every peer it creates.
pub const OWNER_PREFIX: &str = "cellnet:";

/// The global (router) configuration of one speaker, from the local InfraEndpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub listen_address: IpAddr,
    pub listen_port: u16,
}

/// What [`SdnBackend::ensure_speaker`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpeakerOutcome {
    /// The speaker had no global config; cellnet started it.
    Started,
    /// The speaker already runs with a matching config.
    Unchanged,
    /// The speaker runs with a config that disagrees; nothing was changed.
    Conflict { reason: String },
}

/// BGP address families cellnet can configure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressFamily {
    Ipv4Unicast,
    Ipv6Unicast,
    L2vpnEvpn,
}

/// A TCP MD5 password; `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret value, for the backend call that needs it and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The desired configuration of one BGP peer (neighbour) on one speaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Neighbour address: the remote endpoint's address.
    pub neighbor: IpAddr,
    pub peer_asn: u32,
    pub remote_port: u16,
    /// Source address of the session: the local endpoint's address.
    pub local_address: IpAddr,
    /// Seconds; 0 disables keepalives and the hold timer.
    pub hold_time: u16,
    pub keepalive_interval: u16,
    pub ebgp_multihop: Option<u8>,
    /// Sorted, without duplicates.
    pub families: Vec<AddressFamily>,
    pub password: Option<Password>,
    /// Ownership marker, `cellnet:<namespace>/<interconnect>`.
    pub owner: String,
    /// Administratively shut down (kept configured, session down).
    pub admin_down: bool,
    /// Shutdown communication sent with `admin_down` (RFC 8203).
    pub admin_message: Option<String>,
    /// cellnet's own ledger says it created this peer on this speaker. Only
    /// [`Ownership::Ledger`] backends use it.
    pub owned_record: bool,
    /// Most prefixes accepted from the neighbour per address family before the speaker shuts
    /// the session down (`spec.routes.maxPrefixes`); `None`: no limit. Backends without a
    /// prefix limit ignore it (the route status says so).
    pub max_prefixes: Option<u32>,
    /// Only listen for the neighbour's connection, never dial it (transport passive mode): one
    /// side of a pair cellnet manages on both ends, so that they never dial each other at once.
    pub passive: bool,
    /// Graceful restart (RFC 4724) with this restart time in seconds; `None`: off.
    pub graceful_restart: Option<u16>,
}

impl PeerConfig {
    /// A peer towards `neighbor` with BGP's defaults: port 179, hold time 90 s, keepalive 30 s,
    /// IPv4 unicast, no password, enabled. Callers set what differs with struct update syntax.
    pub fn new(neighbor: IpAddr, peer_asn: u32, local_address: IpAddr, owner: impl Into<String>) -> Self {
        Self {
            neighbor,
            peer_asn,
            remote_port: 179,
            local_address,
            hold_time: 90,
            keepalive_interval: 30,
            ebgp_multihop: None,
            families: vec![AddressFamily::Ipv4Unicast],
            password: None,
            owner: owner.into(),
            admin_down: false,
            admin_message: None,
            owned_record: false,
            max_prefixes: None,
            passive: false,
            graceful_restart: None,
        }
    }
}

/// BGP finite state machine states (RFC 4271 section 8.2.2), plus `Unknown`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
    #[default]
    Unknown,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "Idle",
            Self::Connect => "Connect",
            Self::Active => "Active",
            Self::OpenSent => "OpenSent",
            Self::OpenConfirm => "OpenConfirm",
            Self::Established => "Established",
            Self::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A peer as the speaker reports it. Passwords are never part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPeer {
    pub neighbor: IpAddr,
    /// The ownership marker if the peer carries one (`cellnet:...`), else `None`.
    pub owner: Option<String>,
    pub session: SessionState,
    pub admin_down: bool,
    /// The speaker's last error or notification for this peer, if it reports one.
    pub last_error: Option<String>,
    /// Whether graceful restart was negotiated on the established session (both ends sent the
    /// capability for one of its families); `None` while not established, or when the backend
    /// does not report it.
    pub graceful_restart: Option<bool>,
    /// What the speaker says about the session beyond its state; all unknown by default.
    pub diagnostics: PeerDiagnostics,
}

/// What a speaker reports about a session's messages and timers, where it reports it (`None`:
/// this backend does not say). Stuck detection reads the cause of a session that does not come
/// up from it. Neither GoBGP nor OpenDaylight reports the codes of the last NOTIFICATION or the
/// AS of a refused OPEN, so there is no field for them (docs/failure-modes.md, "Stuck sessions").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerDiagnostics {
    /// OPEN messages received from the neighbour (GoBGP: since the peer was configured).
    pub opens_received: Option<u64>,
    /// NOTIFICATION messages this speaker sent to the neighbour.
    pub notifications_sent: Option<u64>,
    /// NOTIFICATION messages received from the neighbour.
    pub notifications_received: Option<u64>,
    /// Hold time and keepalive interval agreed on the session (seconds), while it is up.
    pub negotiated_hold_time: Option<u16>,
    pub negotiated_keepalive: Option<u16>,
}

/// What [`SdnBackend::ensure_peer`] did, and the peer as it saw it when that already tells its
/// session (`observed: None`: just created, or its state just moved; ask
/// [`SdnBackend::observe_peer`] if needed). GoBGP reads the peer to compare it anyway; a second read
/// right after was half of the SDN calls of every reconcile of an existing peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ensured {
    pub outcome: PeerOutcome,
    pub observed: Option<ObservedPeer>,
}

impl From<PeerOutcome> for Ensured {
    fn from(outcome: PeerOutcome) -> Self {
        Self {
            outcome,
            observed: None,
        }
    }
}

/// How a backend kind tells cellnet's peers from everyone else's (the controller's ledger module
/// maps each [`BackendKind`] to one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Each peer carries cellnet's owner marker (`PeerConfig::owner`); the backend checks it
    /// before any change or removal.
    Marker,
    /// Peers cannot carry a marker: cellnet keeps its own ledger of the peers it created (written
    /// before the create), tells the backend through `PeerConfig::owned_record`, and asks it to
    /// remove only recorded peers.
    Ledger,
}

/// What [`SdnBackend::ensure_peer`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerOutcome {
    Created,
    /// Changed in place; `fields` names what differed (never a secret value).
    Updated {
        fields: Vec<&'static str>,
    },
    Unchanged,
    /// The neighbour exists without our marker (or with another owner's); nothing was changed.
    Conflict {
        owner: Option<String>,
    },
}

/// What [`SdnBackend::remove_peer`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoveOutcome {
    Removed,
    /// Nothing there: counts as done.
    Absent,
    /// The neighbour belongs to someone else; left alone.
    NotOwned,
}

/// What [`SdnBackend::reset_peer`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetOutcome {
    /// The session was dropped; the speaker starts it again.
    Reset,
    /// No such peer.
    Absent,
    /// The neighbour belongs to someone else; left alone.
    NotOwned,
    /// The peer is shut down on purpose; left as it is.
    ShutDown,
}

/// Something changed on a speaker; the watcher requeues the objects that use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdnEvent {
    /// A peer's session state or config changed.
    Peer { neighbor: IpAddr, session: SessionState },
    /// The routes from `neighbor` (or, with `None`, the speaker's own paths) changed: a path
    /// appeared or was withdrawn.
    Routes { neighbor: Option<IpAddr> },
    /// The stream cannot say what changed (e.g. it lagged); re-check everything on this speaker.
    Resync,
}

/// One speaker's SDN controller API.
#[async_trait::async_trait]
pub trait SdnBackend: Send + Sync {
    /// Starts the speaker from `config` if it has no global config; reports a conflict otherwise.
    async fn ensure_speaker(&self, config: &SpeakerConfig) -> Result<SpeakerOutcome, SdnError>;
    /// Every peer on the speaker, ours and others'.
    async fn list_peers(&self) -> Result<Vec<ObservedPeer>, SdnError>;
    /// Creates the peer, or updates only what differs; never touches a peer that is not
    /// cellnet's (see [`Ownership`]).
    async fn ensure_peer(&self, desired: &PeerConfig) -> Result<Ensured, SdnError>;
    /// Removes the peer at `neighbor` if it is cellnet's (`owner` on [`Ownership::Marker`] backends).
    async fn remove_peer(&self, neighbor: IpAddr, owner: &str) -> Result<RemoveOutcome, SdnError>;
    /// One peer as observed (`None` when absent), read alone: reading every peer of the speaker
    /// per object made reconciles O(peers).
    async fn observe_peer(&self, neighbor: IpAddr) -> Result<Option<ObservedPeer>, SdnError>;
    /// Drops and restarts the session with `neighbor` (a hard reset), when the peer is
    /// cellnet's (`owner` on [`Ownership::Marker`] backends, `owned_record` on ledger backends);
    /// a peer that is not cellnet's is left alone (`NotOwned`).
    async fn reset_peer(
        &self,
        neighbor: IpAddr,
        owner: &str,
        owned_record: bool,
    ) -> Result<ResetOutcome, SdnError>;
    /// A stream of changes, where the backend has one (`Ok(None)` otherwise: callers poll).
    async fn watch(&self) -> Result<Option<BoxStream<'static, SdnEvent>>, SdnError>;

    // ---- Routes: the networks between cells (see [`routes`]). A backend that cannot do one of
    // these answers `SdnError::Unsupported`, which status reports as such. No method has a
    // default body: a wrapper (`Guarded`) that forgot one would silently answer the default.

    /// Makes cellnet's originated paths for one endpoint exactly `origination.networks`.
    async fn ensure_origination(&self, origination: &Origination) -> Result<RoutesOutcome, SdnError>;
    /// Withdraws every path cellnet originated with `mark`.
    async fn withdraw_origination(&self, mark: u32) -> Result<RoutesOutcome, SdnError>;
    /// Makes the filters of one interconnect on this speaker exactly `filter`.
    async fn ensure_route_filter(&self, filter: &RouteFilter) -> Result<RoutesOutcome, SdnError>;
    /// Removes the filters of interconnect `key` (cellnet's only).
    async fn remove_route_filter(&self, key: &str) -> Result<RoutesOutcome, SdnError>;
    /// A digest of cellnet's own route objects on the speaker (its filters and their place in
    /// the speaker's policy order), read in a few calls whatever the number of objects: the
    /// speaker poll compares it between rounds to notice a change made behind cellnet's back
    /// that no event reports. `Ok(None)`: the backend has none (its poll requeues every object).
    async fn routes_digest(&self) -> Result<Option<u64>, SdnError>;
    /// The EVPN routes `neighbor` sends: per VNI what the import filter accepted, and how many
    /// it rejected.
    async fn observe_segments(&self, neighbor: IpAddr) -> Result<SegmentsSeen, SdnError>;
    /// Route counts for every neighbour of `filters`.
    async fn observe_routes(
        &self,
        origination: &Origination,
        filters: &[RouteFilter],
    ) -> Result<BTreeMap<IpAddr, RouteCounts>, SdnError>;
}

/// Which backend speaks to a speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    GoBgp,
    OpenDaylight,
}

/// A username and password for SDN APIs that need them; `Debug` hides the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Password,
}

/// Everything needed to open a client to one speaker's API, resolved from an InfraEndpoint
/// (Secrets already read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdnTarget {
    pub kind: BackendKind,
    /// `http://host:port` or `https://host:port` (the RESTCONF root for OpenDaylight).
    pub url: String,
    /// PEM bundle of CAs to trust for `https` (else the system roots).
    pub ca_pem: Option<String>,
    pub insecure_skip_verify: bool,
    pub credentials: Option<Credentials>,
    /// OpenDaylight's settings (`spec.sdn.openDaylight`), for OpenDaylight targets.
    pub open_daylight: Option<OpenDaylightTarget>,
}

/// Where cellnet works inside one OpenDaylight (`spec.sdn.openDaylight`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenDaylightTarget {
    /// The BGP RIB, also the protocol's name (`bgp-example` in the BGP user guide).
    pub rib_id: String,
    /// The openconfig network instance holding the protocol (`global-bgp`).
    pub network_instance: String,
    /// The application peer whose programmable RIB carries the cell's networks; `None`: the
    /// endpoint's networks cannot be originated (see `opendaylight::routes`).
    pub application_peer: Option<Ipv4Addr>,
}

/// Opens the backend client of a speaker. The controller's speaker registry holds one, so that a
/// test can hand it an in-memory speaker instead of a real SDN API ([`fake::FakeConnector`]).
pub trait Connector: Send + Sync + fmt::Debug {
    /// A (lazily connecting) client for `target`; every call on it times out after `timeout`.
    fn connect(
        &self,
        target: &SdnTarget,
        timeout: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn SdnBackend>, SdnError>;
}

/// The real backends: GoBGP's gRPC and OpenDaylight's RESTCONF.
#[derive(Debug, Default)]
pub struct RealConnector;

impl Connector for RealConnector {
    fn connect(
        &self,
        target: &SdnTarget,
        timeout: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn SdnBackend>, SdnError> {
        connect(target, timeout)
    }
}

/// Opens a (lazily connecting) client for `target`; every call on it times out after `timeout`.
pub fn connect(
    target: &SdnTarget,
    timeout: std::time::Duration,
) -> Result<std::sync::Arc<dyn SdnBackend>, SdnError> {
    match target.kind {
        BackendKind::GoBgp => Ok(std::sync::Arc::new(gobgp::GoBgp::connect(target, timeout)?)),
        BackendKind::OpenDaylight => Ok(std::sync::Arc::new(opendaylight::OpenDaylight::connect(
            target, timeout,
        )?)),
    }
}
