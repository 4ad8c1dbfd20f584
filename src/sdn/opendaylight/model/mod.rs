//! Pure: the JSON bodies cellnet sends to OpenDaylight and what it reads back.
//!
//! Field names, nesting and module prefixes follow the OpenDaylight BGP user guide
//! (bgpcep `docs/bgp/`), in RFC 7951 JSON as OpenDaylight's RFC 8040 northbound speaks it:
//! - bgp-user-guide-bgp-peering.rst, "BGP Peering" (basic neighbour: `neighbor-address`,
//!   `timers/config/hold-time`, `transport/config/remote-port`, `passive-mode`, `local-address`,
//!   `config/peer-type`, `afi-safis`), "External peering configuration" (`config/peer-as` with
//!   `peer-type` `EXTERNAL`), "MD5 authentication configuration" (`config/auth-password`) and
//!   "BGP Peer Group" (the JSON form of `afi-safis`: `{"afi-safi": [{"afi-safi-name":
//!   "openconfig-bgp-types:IPV4-UNICAST"}]}`);
//! - bgp-user-guide-operational-state.rst, "BGP Neighbor Operational State" (`session-state`);
//! - bgp-user-guide-protocol-configuration.rst, "Protocol Configuration" (global `router-id`, `as`).
//! - bgp-user-guide-graceful-restart-capability.rst, "Graceful Restart Timer" (the neighbour's
//!   `graceful-restart/config/restart-time`) and "BGP Neighbor Families Graceful Restart
//!   Configuration" (each family's `graceful-restart/config/enable`); the families' operational
//!   `graceful-restart/state` (`received`, `advertised`) from the operational-state guide,
//!   "BGP Neighbor Families Operational State".
use std::net::IpAddr;

use serde_json::{Value, json};

use crate::sdn::{AddressFamily, ObservedPeer, PeerConfig, PeerDiagnostics, SessionState};

pub mod app_rib;
pub mod rib_state;

/// `afi-safi-name` identities (openconfig-bgp-types), as the peer-group example of the
/// peering guide writes them in JSON.
pub fn afi_safi_name(family: AddressFamily) -> &'static str {
    match family {
        AddressFamily::Ipv4Unicast => "openconfig-bgp-types:IPV4-UNICAST",
        AddressFamily::Ipv6Unicast => "openconfig-bgp-types:IPV6-UNICAST",
        AddressFamily::L2vpnEvpn => "openconfig-bgp-types:L2VPN-EVPN",
    }
}

fn family_of(name: &str) -> Option<AddressFamily> {
    // An identityref may come back with or without its module prefix.
    match name.rsplit(':').next()? {
        "IPV4-UNICAST" => Some(AddressFamily::Ipv4Unicast),
        "IPV6-UNICAST" => Some(AddressFamily::Ipv6Unicast),
        "L2VPN-EVPN" => Some(AddressFamily::L2vpnEvpn),
        _ => None,
    }
}

/// `INTERNAL` when the peer is in our AS, else `EXTERNAL` ("Explicitly designate the peer as
/// internal or external. Default value is INTERNAL": always sent, never left to the default).
pub fn peer_type(local_asn: u32, peer_asn: u32) -> &'static str {
    if local_asn == peer_asn {
        "INTERNAL"
    } else {
        "EXTERNAL"
    }
}

/// The neighbour object of the guide's basic neighbour configuration, filled from `desired`.
///
/// - `timers/config/hold-time`: "Proposed number of seconds for value of the Hold Timer". The
///   guide documents no keepalive setting (the model's `keepalive-interval` leaf is not in it):
///   OpenDaylight's session sends keepalives at a third of the negotiated hold time (RFC 4271
///   section 4.4's suggestion), so `desired.keepalive_interval` is not sent.
/// - `connect-retry` is left at OpenDaylight's default (30 s).
/// - `transport/config/passive-mode` is `desired.passive` (`true`: OpenDaylight only accepts the
///   neighbour's connection and never connects out; `false`, the default: it connects out too),
///   and `local-address` is the session's source address ("Optional Local IP ... used to establish
///   connections to the remote peer").
/// - `auth-password` only when a password is set.
/// - `desired.max_prefixes` is not sent: the guides document no prefix limit for a neighbour
///   (the openconfig model's `prefix-limit` is not in them), so the route status says the
///   limit is not enforced on OpenDaylight (the controller reports it; `prefix_limit_hit` is
///   never set, see [`rib_state::counts`]).
pub fn neighbor(desired: &PeerConfig, local_asn: u32) -> Value {
    let mut config = json!({
        "peer-type": peer_type(local_asn, desired.peer_asn),
        "peer-as": desired.peer_asn,
    });
    if let Some(password) = &desired.password {
        config["auth-password"] = json!(password.expose());
    }
    let families: Vec<Value> = desired
        .families
        .iter()
        .map(|f| {
            let mut family = json!({"afi-safi-name": afi_safi_name(*f)});
            if desired.graceful_restart.is_some() {
                family["graceful-restart"] = json!({"config": {"enable": true}});
            }
            family
        })
        .collect();
    let mut neighbor = json!({
        "neighbor-address": desired.neighbor.to_string(),
        "config": config,
        "timers": {"config": {"hold-time": desired.hold_time}},
        "transport": {"config": {
            "remote-port": desired.remote_port,
            "passive-mode": desired.passive,
            "local-address": desired.local_address.to_string(),
        }},
        "afi-safis": {"afi-safi": families},
    });
    if let Some(restart_time) = desired.graceful_restart {
        neighbor["graceful-restart"] = json!({"config": {"restart-time": restart_time}});
    }
    neighbor
}

/// Body of the create (`POST .../neighbors`): the guide's `{"neighbor": [ ... ]}`.
pub fn create_body(neighbor: Value) -> Value {
    json!({ "neighbor": [neighbor] })
}

/// Body of the replace (`PUT .../neighbors/neighbor={address}`): RFC 8040 section 4.5 sends the
/// target resource itself, a one-entry list named with its module (RFC 7951 section 4).
pub fn replace_body(neighbor: Value) -> Value {
    json!({ "bgp-openconfig-extensions:neighbor": [neighbor] })
}

/// A member of a JSON object by name, with or without a module prefix (`"neighbor"` or
/// `"bgp-openconfig-extensions:neighbor"`): RFC 7951 prefixes only top-level members and
/// members from another module, and servers differ in what they prefix.
pub fn member<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.rsplit_once(':').is_some_and(|(_, local)| local == name))
            .map(|(_, v)| v)
    })
}

/// The neighbour entries of a `GET .../neighbors` body (`{"bgp-openconfig-extensions:neighbors":
/// {"neighbor": [...]}}`) or of a `GET .../neighbor={address}` body
/// (`{"bgp-openconfig-extensions:neighbor": [...]}`).
pub fn neighbor_entries(body: &Value) -> Vec<Value> {
    let list = member(body, "neighbors")
        .and_then(|n| member(n, "neighbor"))
        .or_else(|| member(body, "neighbor"));
    match list {
        Some(Value::Array(entries)) => entries.clone(),
        Some(entry @ Value::Object(_)) => vec![entry.clone()],
        _ => Vec::new(),
    }
}

fn path<'a>(value: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().try_fold(value, |v, name| member(v, name))
}

/// A number that may come as a JSON number or (RFC 7951 section 6.1, 64-bit and decimal64
/// types such as `hold-time`) as a string.
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn boolean(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        // The basic neighbour example of the guide writes `"passive-mode": "false"`.
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub fn address_of(entry: &Value) -> Option<IpAddr> {
    member(entry, "neighbor-address")
        .or_else(|| path(entry, &["config", "neighbor-address"]))?
        .as_str()?
        .parse()
        .ok()
}

/// openconfig `session-state` (bgp-user-guide-operational-state.rst, "BGP Neighbor Operational
/// State": `"session-state": "ESTABLISHED"`) to the RFC 4271 FSM state.
pub fn session_of(state: &str) -> SessionState {
    match state.rsplit(':').next().unwrap_or(state) {
        "IDLE" => SessionState::Idle,
        "CONNECT" => SessionState::Connect,
        "ACTIVE" => SessionState::Active,
        "OPENSENT" => SessionState::OpenSent,
        "OPENCONFIRM" => SessionState::OpenConfirm,
        "ESTABLISHED" => SessionState::Established,
        _ => SessionState::Unknown,
    }
}

/// The session state in a `state` container (`{"bgp-openconfig-extensions:state":
/// {"session-state": ...}}` from `.../neighbor={address}/state?content=nonconfig`, or the
/// `state` member of a neighbour entry).
pub fn session_in_state(state: &Value) -> SessionState {
    let inner = member(state, "state").unwrap_or(state);
    member(inner, "session-state")
        .and_then(Value::as_str)
        .map(session_of)
        .unwrap_or_default()
}

/// A neighbour entry as an [`ObservedPeer`]. OpenDaylight's neighbour has no free-text field,
/// so `owner` is always `None` (ownership rests on cellnet's record, see the module docs).
/// Without operational state in the entry (no session yet) the session is `Unknown`.
pub fn observed(entry: &Value) -> Option<ObservedPeer> {
    Some(ObservedPeer {
        neighbor: address_of(entry)?,
        owner: None,
        session: member(entry, "state").map(session_in_state).unwrap_or_default(),
        // The guide documents no administrative shutdown of a neighbour.
        admin_down: false,
        last_error: None,
        diagnostics: diagnostics(entry),
        graceful_restart: graceful_restart_negotiated(entry),
    })
}

/// The `graceful-restart` containers of a neighbour's families.
fn families_graceful_restart(entry: &Value) -> Vec<&Value> {
    match path(entry, &["afi-safis", "afi-safi"]) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|f| member(f, "graceful-restart"))
            .collect(),
        _ => Vec::new(),
    }
}

/// On an established session, whether one family's operational `graceful-restart/state` says
/// the capability was both `advertised` and `received`; `None` before, or when the entry has no
/// such state (a read of the configuration only).
pub fn graceful_restart_negotiated(entry: &Value) -> Option<bool> {
    let established = member(entry, "state").map(session_in_state) == Some(SessionState::Established);
    let states: Vec<&Value> = families_graceful_restart(entry)
        .into_iter()
        .filter_map(|gr| member(gr, "state"))
        .collect();
    if !established || states.is_empty() {
        return None;
    }
    let flag = |state: &Value, name: &str| boolean(member(state, name)).unwrap_or(false);
    Some(
        states
            .iter()
            .any(|s| flag(s, "advertised") && flag(s, "received")),
    )
}

/// The restart time of a neighbour whose every family has graceful restart enabled; `None`
/// when none has (graceful restart off, as cellnet writes it), `Some(0)` for anything in
/// between or without a timer (rewritten: no desired restart time is 0).
fn observed_graceful_restart(observed: &Value) -> Option<u16> {
    let enabled: Vec<bool> = match path(observed, &["afi-safis", "afi-safi"]) {
        Some(Value::Array(list)) => list
            .iter()
            .map(|f| boolean(path(f, &["graceful-restart", "config", "enable"])).unwrap_or(false))
            .collect(),
        _ => Vec::new(),
    };
    let timer = number(path(observed, &["graceful-restart", "config", "restart-time"]));
    if !enabled.iter().any(|e| *e) && timer.is_none() {
        return None;
    }
    let all = !enabled.is_empty() && enabled.iter().all(|e| *e);
    Some(match timer {
        Some(t) if all && (1.0..=4095.0).contains(&t) => t as u16,
        _ => 0,
    })
}

/// What the neighbour's operational state says beyond the session state
/// (bgp-user-guide-operational-state.rst): "BGP Neighbor Operational State" counts UPDATE and
/// NOTIFICATION messages sent and received (no OPEN count, no NOTIFICATION codes); "BGP
/// Neighbor Timers Operational State" has `negotiated-hold-time` once the session is up (no
/// keepalive interval).
pub fn diagnostics(entry: &Value) -> PeerDiagnostics {
    let state = member(entry, "state");
    let count = |direction: &str| {
        state
            .and_then(|s| path(s, &["messages", direction, "NOTIFICATION"]))
            .and_then(|v| number(Some(v)))
            .map(|n| n as u64)
    };
    let hold = path(entry, &["timers", "state", "negotiated-hold-time"])
        .and_then(|v| number(Some(v)))
        .and_then(|n| u16::try_from(n as u64).ok());
    PeerDiagnostics {
        notifications_sent: count("sent"),
        notifications_received: count("received"),
        negotiated_hold_time: hold,
        ..Default::default()
    }
}

/// What differs between `desired` and the neighbour OpenDaylight reports, by cellnet's field
/// names (never a secret value). Fields OpenDaylight fills with defaults that cellnet does not
/// set (`connect-retry`, ...) are not compared.
///
/// The password: OpenDaylight keeps `auth-password` in its configuration datastore and returns it
/// on a read of the configuration; if a server does not return it, cellnet cannot tell whether
/// it changed and does not rewrite the neighbour for it (a rewrite drops the session, see
/// "Existing neighbor configuration can be reconfigured" in the peering guide). A password
/// change is then applied with the next change of another field.
pub fn diff(desired: &PeerConfig, local_asn: u32, observed: &Value) -> Vec<&'static str> {
    let config = member(observed, "config");
    let mut fields = config_diff(desired, local_asn, config);
    if number(path(observed, &["timers", "config", "hold-time"])) != Some(f64::from(desired.hold_time)) {
        fields.push("hold_time");
    }
    fields.extend(transport_diff(desired, path(observed, &["transport", "config"])));
    if observed_families(observed) != desired.families {
        fields.push("families");
    }
    if observed_graceful_restart(observed) != desired.graceful_restart {
        fields.push("graceful_restart");
    }
    if password_differs(desired, config) {
        fields.push("password");
    }
    fields
}

/// `peer_asn` and `peer_type`, from the neighbour's `config`.
fn config_diff(desired: &PeerConfig, local_asn: u32, config: Option<&Value>) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if number(config.and_then(|c| member(c, "peer-as"))) != Some(f64::from(desired.peer_asn)) {
        fields.push("peer_asn");
    }
    // peer-type defaults to INTERNAL when absent.
    let observed_type = config
        .and_then(|c| member(c, "peer-type"))
        .and_then(Value::as_str)
        .map(|t| t.rsplit(':').next().unwrap_or(t))
        .unwrap_or("INTERNAL");
    if observed_type != peer_type(local_asn, desired.peer_asn) {
        fields.push("peer_type");
    }
    fields
}

/// `remote_port`, `passive_mode` and `local_address`, from `transport/config`.
fn transport_diff(desired: &PeerConfig, transport: Option<&Value>) -> Vec<&'static str> {
    let get = |name: &str| transport.and_then(|t| member(t, name));
    let mut fields = Vec::new();
    // remote-port defaults to 179, passive-mode to false.
    let port = number(get("remote-port")).unwrap_or(179.0);
    if port != f64::from(desired.remote_port) {
        fields.push("remote_port");
    }
    if boolean(get("passive-mode")).unwrap_or(false) != desired.passive {
        fields.push("passive_mode");
    }
    let local = get("local-address")
        .and_then(Value::as_str)
        .and_then(|a| a.parse::<IpAddr>().ok());
    if local != Some(desired.local_address) {
        fields.push("local_address");
    }
    fields
}

/// The families of the neighbour's `afi-safis` that cellnet names, sorted.
fn observed_families(observed: &Value) -> Vec<AddressFamily> {
    let mut families: Vec<AddressFamily> = match path(observed, &["afi-safis", "afi-safi"]) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|e| member(e, "afi-safi-name").and_then(Value::as_str))
            .filter_map(family_of)
            .collect(),
        _ => Vec::new(),
    };
    families.sort();
    families.dedup();
    families
}

/// Whether the returned `auth-password` differs from ours; `false` when none is returned (it
/// cannot be compared, see [`diff`]).
fn password_differs(desired: &PeerConfig, config: Option<&Value>) -> bool {
    let password = config
        .and_then(|c| member(c, "auth-password"))
        .and_then(Value::as_str);
    match (password, &desired.password) {
        (Some(have), Some(want)) => have != want.expose(),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The global `config` of a `GET .../bgp/global/config` body:
/// `{"bgp-openconfig-extensions:config": {"router-id": "192.0.2.2", "as": 65000}}`.
///
/// `as` is a 32-bit AS number (`inet:as-number`, a uint32: a JSON number in RFC 7951); anything
/// else (a fraction, a negative or larger number) is no AS number and reads as `None`. (Found by
/// fuzzing, fuzz/regressions/restconf_json: `"as": 7777772165000` read as AS 4294967295.)
pub fn global_config(body: &Value) -> Option<(u32, Option<String>)> {
    let config = member(body, "config").unwrap_or(body);
    let asn = as_number(member(config, "as")?)?;
    let router_id = member(config, "router-id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((asn, router_id))
}

/// A uint32 leaf: a JSON integer (or, leniently, a string holding one) in range.
fn as_number(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
