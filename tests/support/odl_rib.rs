//! The RIB half of the RESTCONF test server: application peers' programmable RIBs, a
//! neighbour's Adj-RIB-Out and Effective-RIB-In, and its per-family prefix counters, as the
//! OpenDaylight BGP user guide (bgpcep `docs/bgp/`) documents them, in RFC 8040 form:
//! - `POST .../bgp-rib:application-rib={peer}/tables={afi},{safi}/bgp-inet:ipv4-routes` with
//!   `{"bgp-inet:ipv4-route": [{route-key, path-id, prefix, attributes}]}` (or unqualified)
//!   -> `201`, `409` when that `[route-key path-id]` exists, `400` when route-key is not the
//!   prefix ("IPv4 Route Key must be equal to prefix"): bgp-user-guide-ip-unicast-family.rst,
//!   "Programming";
//! - `GET` of the same table -> `{"bgp-inet:ipv4-routes": {"ipv4-route": [...]}}`, `404` empty;
//! - `PUT | DELETE .../bgp-inet:ipv4-routes/bgp-inet:ipv4-route={route-key},{path-id}` ->
//!   `201`/`204` | `204`/`404` (bgp-user-guide-bgp-application-peer.rst, "Programmable RIB";
//!   the key form of bgpcep's tests/tools/fastbgp/bgp_app_peer.py); the same for IPv6;
//! - `GET .../bgp-rib:bgp-rib/rib={rib}/peer=bgp%3A%2F%2F{address}/adj-rib-out|effective-rib-in/tables=.../bgp-inet:ipv4-routes?content=nonconfig`
//!   ("Programmable RIB": what the peer is sent, what it sent and was installed);
//! - `GET .../neighbors/neighbor={address}/afi-safis?content=nonconfig` -> each family with
//!   `state/prefixes {received, installed, sent}` once the session is established
//!   (bgp-user-guide-operational-state.rst, "BGP Neighbor Families Operational State" and
//!   "BGP Neighbor Family Operational State").
//!
//! What a neighbour is sent is simulated: every route of every configured application peer's
//! RIB (one per prefix, as without add-path), in the families the neighbour runs, while its
//! session is `ESTABLISHED`. What it sends is set by the test ([`super::OdlServer::set_received`]).
use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Inner, decode_key, error, yang};

const SAFI: &str = "bgp-types:unicast-subsequent-address-family";

/// One table: the routes by `(route-key, path-id)`.
pub type Table = BTreeMap<(String, u32), Value>;

/// The RIB state of the server.
#[derive(Default)]
pub struct Ribs {
    /// Per application peer, per family (`ipv4`/`ipv6`), its table.
    pub app: BTreeMap<String, BTreeMap<&'static str, Table>>,
    /// Per neighbour: the prefixes it sent that were installed, and those rejected.
    pub received: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

/// `ipv4` or `ipv6` from the `tables=` step and the container step, if they agree.
fn family_of(tables: &str, container: &str) -> Option<&'static str> {
    let keys = tables.strip_prefix("tables=")?;
    let (afi, safi) = keys.split_once(',')?;
    let (afi, safi) = (decode_key(afi)?, decode_key(safi)?);
    if safi != SAFI {
        return None;
    }
    match (afi.as_str(), container) {
        ("bgp-types:ipv4-address-family", "bgp-inet:ipv4-routes") => Some("ipv4"),
        ("bgp-types:ipv6-address-family", "bgp-inet:ipv6-routes") => Some("ipv6"),
        _ => None,
    }
}

fn family_of_prefix(prefix: &str) -> &'static str {
    if prefix.contains(':') { "ipv6" } else { "ipv4" }
}

fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "protocol", "invalid-value", message)
}

fn missing(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "protocol",
        "data-missing",
        &format!("Data does not exist for path {what}"),
    )
}

fn routes_body(family: &str, routes: Vec<Value>) -> Response {
    if routes.is_empty() {
        return missing(&format!("{family}-routes"));
    }
    yang(
        StatusCode::OK,
        Some(json!({ format!("bgp-inet:{family}-routes"): { format!("{family}-route"): routes } })),
    )
}

/// The one route of a body `{"ipv4-route": [..]}` or `{"bgp-inet:ipv4-route": [..]}`.
fn one_route(body: Option<&Value>, family: &str) -> Option<Value> {
    let list = format!("{family}-route");
    let b = body?;
    let entries = b
        .get(&list)
        .or_else(|| b.get(format!("bgp-inet:{list}")))?
        .as_array()?;
    (entries.len() == 1).then(|| entries[0].clone())
}

/// `(route-key, path-id)` of a route entry, if route-key equals the prefix.
fn key_of(route: &Value) -> Result<(String, u32), &'static str> {
    let key = route["route-key"].as_str().ok_or("route-key is required")?;
    let prefix = route["prefix"].as_str().ok_or("prefix is required")?;
    if key != prefix {
        return Err("IPv4 Route Key must be equal to prefix");
    }
    let path_id = route["path-id"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .ok_or("path-id is required")?;
    Ok((key.to_owned(), path_id))
}

/// `/rests/data/bgp-rib:application-rib=...`
pub fn application_rib(inner: &mut Inner, method: &Method, rest: &str, body: Option<&Value>) -> Response {
    let steps: Vec<&str> = rest.split('/').collect();
    let [peer, tables, container, entry @ ..] = steps.as_slice() else {
        return missing(rest);
    };
    let (Some(peer), Some(family)) = (decode_key(peer), family_of(tables, container)) else {
        return bad("expected application-rib={peer}/tables={afi},{safi}/bgp-inet:{family}-routes");
    };
    let table = inner.ribs.app.entry(peer).or_default().entry(family).or_default();
    match (method.clone(), entry) {
        (Method::GET, []) => routes_body(family, table.values().cloned().collect()),
        (Method::POST, []) => {
            let Some(route) = one_route(body, family) else {
                return bad(&format!("expected {{\"{family}-route\": [one route]}}"));
            };
            let key = match key_of(&route) {
                Ok(k) => k,
                Err(m) => return bad(m),
            };
            if family_of_prefix(&key.0) != family {
                return bad("the prefix is not of this table's family");
            }
            if table.contains_key(&key) {
                return error(
                    StatusCode::CONFLICT,
                    "protocol",
                    "data-exists",
                    "Data already exists",
                );
            }
            table.insert(key, route);
            yang(StatusCode::CREATED, None)
        }
        (m, [step]) => {
            let list = format!("{family}-route=");
            let Some(keys) = step
                .strip_prefix(&format!("bgp-inet:{list}"))
                .or_else(|| step.strip_prefix(&list))
            else {
                return missing(step);
            };
            let Some((k, p)) = keys.split_once(',') else {
                return bad("expected {route-key},{path-id}");
            };
            let (Some(k), Ok(p)) = (decode_key(k), p.parse::<u32>()) else {
                return bad("bad key");
            };
            route_entry(table, &m, (k, p), body, family)
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "protocol",
            "operation-not-supported",
            "not supported by this test server",
        ),
    }
}

fn route_entry(
    table: &mut Table,
    method: &Method,
    key: (String, u32),
    body: Option<&Value>,
    family: &str,
) -> Response {
    match *method {
        Method::GET => match table.get(&key) {
            Some(r) => yang(
                StatusCode::OK,
                Some(json!({ format!("bgp-inet:{family}-route"): [r] })),
            ),
            None => missing(&key.0),
        },
        Method::DELETE => match table.remove(&key) {
            Some(_) => yang(StatusCode::NO_CONTENT, None),
            None => missing(&key.0),
        },
        Method::PUT => {
            let Some(route) = one_route(body, family) else {
                return bad(&format!("expected {{\"bgp-inet:{family}-route\": [one route]}}"));
            };
            // RFC 8040 section 4.5: the keys in the body must match the URI.
            if key_of(&route).ok() != Some(key.clone()) {
                return bad("the keys in the body do not match the URI");
            }
            let existed = table.insert(key, route).is_some();
            yang(
                if existed {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::CREATED
                },
                None,
            )
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "protocol",
            "operation-not-supported",
            "not supported by this test server",
        ),
    }
}

/// Whether the configured neighbour at `address` is an application peer.
fn is_application_peer(inner: &Inner, address: &str) -> bool {
    inner
        .neighbors
        .get(address)
        .is_some_and(|n| n["config"]["peer-group"] == "application-peers")
}

/// The families (`ipv4`, `ipv6`) a regular neighbour runs; IPv4 unicast when it names none.
fn families_of(neighbor: &Value) -> BTreeSet<&'static str> {
    let names: Vec<&str> = neighbor["afi-safis"]["afi-safi"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["afi-safi-name"].as_str()).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return BTreeSet::from(["ipv4"]);
    }
    names
        .iter()
        .filter_map(|n| match n.rsplit(':').next() {
            Some("IPV4-UNICAST") => Some("ipv4"),
            Some("IPV6-UNICAST") => Some("ipv6"),
            _ => None,
        })
        .collect()
}

/// The neighbour's configured entry of family `name` (`{}` when it has none).
fn configured_family(neighbor: &Value, name: &str) -> Value {
    neighbor["afi-safis"]["afi-safi"]
        .as_array()
        .and_then(|list| {
            list.iter().find(|e| {
                e["afi-safi-name"].as_str().and_then(|n| n.rsplit(':').next()) == name.rsplit(':').next()
            })
        })
        .cloned()
        .unwrap_or_else(|| json!({}))
}

fn established(inner: &Inner, address: &str) -> bool {
    inner.neighbors.contains_key(address)
        && !is_application_peer(inner, address)
        && inner
            .sessions
            .get(address)
            .or(inner.default_session.as_ref())
            .is_some_and(|s| s == "ESTABLISHED")
}

/// What `address` is sent in `family`: one route per prefix from the application peers' RIBs.
fn adj_rib_out(inner: &Inner, address: &str, family: &str) -> Vec<Value> {
    let runs = inner
        .neighbors
        .get(address)
        .is_some_and(|n| families_of(n).contains(family));
    if !established(inner, address) || !runs {
        return Vec::new();
    }
    let mut by_prefix: BTreeMap<String, Value> = BTreeMap::new();
    for (peer, tables) in &inner.ribs.app {
        if !is_application_peer(inner, peer) {
            continue;
        }
        for ((key, _), route) in tables.get(family).into_iter().flatten() {
            by_prefix.entry(key.clone()).or_insert_with(|| route.clone());
        }
    }
    by_prefix.into_values().collect()
}

/// What `address` sent and was installed in `family`.
fn effective_rib_in(inner: &Inner, address: &str, family: &str) -> Vec<Value> {
    if !established(inner, address) {
        return Vec::new();
    }
    let (accepted, _) = inner.ribs.received.get(address).cloned().unwrap_or_default();
    accepted
        .into_iter()
        .filter(|p| family_of_prefix(p) == family)
        .map(|p| json!({"route-key": p, "path-id": 0, "prefix": p, "attributes": {"origin": {"value": "igp"}}}))
        .collect()
}

/// `/rests/data/bgp-rib:bgp-rib/rib={rib}/...` (`rest` after `rib=`).
pub fn bgp_rib(inner: &Inner, method: &Method, rest: &str, content: &str) -> Response {
    let steps: Vec<&str> = rest.split('/').collect();
    let [rib, peer, table, tables, container] = steps.as_slice() else {
        return missing(rest);
    };
    if *method != Method::GET || content != "nonconfig" {
        return bad("only GET with content=nonconfig of a peer's table is served");
    }
    let peer_id = peer.strip_prefix("peer=").and_then(decode_key);
    let address = peer_id.as_deref().and_then(|p| p.strip_prefix("bgp://"));
    let (Some(address), Some(family)) = (address, family_of(tables, container)) else {
        return bad(
            "expected peer=bgp%3A%2F%2F{address}/{table}/tables={afi},{safi}/bgp-inet:{family}-routes",
        );
    };
    if decode_key(rib).as_deref() != Some(inner.config.rib_id.as_str()) {
        return missing(rib);
    }
    let routes = match *table {
        "adj-rib-out" => adj_rib_out(inner, address, family),
        "effective-rib-in" => effective_rib_in(inner, address, family),
        _ => return missing(table),
    };
    routes_body(family, routes)
}

/// `GET .../neighbors/neighbor={address}/afi-safis`: each family the neighbour runs, with
/// prefix counters once the session is established.
pub fn families_state(inner: &Inner, address: &str) -> Response {
    let Some(neighbor) = inner.neighbors.get(address) else {
        return missing(&format!("neighbor={address}/afi-safis"));
    };
    let up = established(inner, address);
    let (accepted, rejected) = inner.ribs.received.get(address).cloned().unwrap_or_default();
    let list: Vec<Value> = families_of(neighbor)
        .into_iter()
        .map(|family| {
            let count = |list: &[String]| list.iter().filter(|p| family_of_prefix(p) == family).count();
            let name = format!("openconfig-bgp-types:{}-UNICAST", family.to_uppercase());
            let mut state = json!({"active": up});
            let configured = configured_family(neighbor, &name);
            if up {
                let installed = count(&accepted);
                state["prefixes"] = json!({
                    "installed": installed,
                    "sent": adj_rib_out(inner, address, family).len(),
                    "received": installed + count(&rejected),
                });
            }
            let mut entry = json!({"afi-safi-name": name, "state": state});
            if up {
                entry["graceful-restart"] = super::gr::family_state(inner, address, &configured);
            }
            entry
        })
        .collect();
    yang(
        StatusCode::OK,
        Some(json!({"bgp-openconfig-extensions:afi-safis": {"afi-safi": list}})),
    )
}
