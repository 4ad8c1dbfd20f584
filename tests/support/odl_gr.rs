//! Graceful restart on the OpenDaylight test server, as bgpcep's
//! bgp-user-guide-graceful-restart-capability.rst and bgp-user-guide-operational-state.rst
//! document it:
//! - configuration: the neighbour's `graceful-restart/config/restart-time` ("Graceful Restart
//!   Timer", seconds; the capability's 12-bit field, so 0 to 4095 here; absent: the hold time is
//!   used) and each family's `graceful-restart/config/enable` ("BGP Neighbor Families Graceful
//!   Restart Configuration"); stored with the neighbour like the rest of its body;
//! - operational state: each family's `graceful-restart/state` with `received` ("True if the
//!   peer supports graceful restart") and `advertised` ("True if we support graceful restart"),
//!   on an established session. `advertised` follows the family's `enable`; `received` is what
//!   the test says the peer sent ([`super::OdlServer::set_peer_graceful_restart`], default true).
//!
//! Not served: the `restart-gracefully` RPC (cellnet never restarts a peer gracefully) and the
//! peer-group form.
use serde_json::{Value, json};

use super::Inner;

/// `Err` with the message of a `400 invalid-value` when the body's restart time is no timer.
pub fn check(entry: &Value) -> Result<(), String> {
    let Some(time) = entry.pointer("/graceful-restart/config/restart-time") else {
        return Ok(());
    };
    let seconds = match time {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match seconds {
        Some(0..=4095) => Ok(()),
        _ => Err(format!("graceful-restart restart-time {time} is not in 0..4095")),
    }
}

fn enabled(family: &Value) -> bool {
    match family.pointer("/graceful-restart/config/enable") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// The operational `graceful-restart/state` of one family of `address`'s neighbour.
pub fn family_state(inner: &Inner, address: &str, family: &Value) -> Value {
    let received = inner.peer_graceful_restart.get(address).copied().unwrap_or(true);
    json!({"state": {"received": received, "advertised": enabled(family),
                     "ll-received": false, "ll-advertised": false}})
}

/// `entry` (a neighbour as stored) with the operational state of each family's graceful restart.
pub fn with_families_state(inner: &Inner, address: &str, entry: &mut Value) {
    let Some(families) = entry
        .pointer_mut("/afi-safis/afi-safi")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for family in families {
        let state = family_state(inner, address, family);
        let container = family
            .as_object_mut()
            .map(|f| f.entry("graceful-restart").or_insert_with(|| json!({})));
        if let Some(Value::Object(gr)) = container {
            gr.insert("state".into(), state["state"].clone());
        }
    }
}
