//! Manifests as users write them, for `kubectl apply` in end-to-end tests: builders for
//! InfraEndpoints and CellInterconnects, and Secrets. A builder writes only the fields a test
//! sets (the API server fills in the defaults, as it does for a user's YAML); `yaml()` first
//! checks that the object reads as the typed API, so a builder typo fails at once. `typed()`
//! hands the object to tests that create it through the API instead.
use std::fmt::Display;

use cellnet::api::{CellInterconnect, InfraEndpoint};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The BGP port every test speaker uses (one port, many 127.x addresses).
pub const BGP_PORT: u16 = 1790;

fn object(kind: &str, name: &str) -> Value {
    json!({
        "apiVersion": "cellnet.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {},
    })
}

/// `object` as the typed `K`; panics if the API types cannot read it.
fn typed<K: DeserializeOwned>(object: &Value) -> K {
    serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("the builder made an object the API types cannot read: {e}\n{object}"))
}

/// `object` as YAML, after checking that it reads as `K`.
fn yaml_of<K: DeserializeOwned>(object: &Value) -> String {
    typed::<K>(object);
    serde_yaml::to_string(object).expect("a JSON value is YAML")
}

/// An InfraEndpoint named `name`; external (no `spec.sdn`) until [`Endpoint::gobgp`] or
/// [`Endpoint::opendaylight`]. `cell`, `address` and `asn` are required.
pub fn endpoint(name: &str) -> Endpoint {
    Endpoint(object("InfraEndpoint", name))
}

/// See [`endpoint`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Endpoint(Value);

impl Endpoint {
    fn spec(mut self, field: &str, value: Value) -> Self {
        self.0["spec"][field] = value;
        self
    }

    pub fn cell(self, cell: &str) -> Self {
        self.spec("cell", json!(cell))
    }

    pub fn address(self, address: impl Display) -> Self {
        self.spec("address", json!(address.to_string()))
    }

    pub fn asn(self, asn: u32) -> Self {
        self.spec("asn", json!(asn))
    }

    pub fn port(self, port: u16) -> Self {
        self.spec("port", json!(port))
    }

    /// Managed through GoBGP's gRPC API at `api_url`.
    pub fn gobgp(self, api_url: &str) -> Self {
        self.spec("sdn", json!({"type": "GoBGP", "url": api_url}))
    }

    /// Managed through OpenDaylight's RESTCONF root `url`, credentials in Secret `secret`.
    pub fn opendaylight(self, url: &str, secret: &str) -> Self {
        self.spec(
            "sdn",
            json!({"type": "OpenDaylight", "url": url, "credentialsSecretRef": {"name": secret}}),
        )
    }

    /// `spec.sdn.openDaylight.applicationPeer`: the application peer that carries `spec.networks`.
    pub fn application_peer(mut self, address: impl Display) -> Self {
        assert!(
            self.0["spec"]["sdn"]["type"] == "OpenDaylight",
            "application_peer() needs opendaylight() first"
        );
        self.0["spec"]["sdn"]["openDaylight"] = json!({"applicationPeer": address.to_string()});
        self
    }

    /// `spec.sdn.tls`: the CA bundle from Secret `ca_secret` and/or `insecureSkipVerify: true`.
    pub fn tls(mut self, ca_secret: Option<&str>, insecure_skip_verify: bool) -> Self {
        assert!(
            self.0["spec"]["sdn"].is_object(),
            "tls() needs gobgp() or opendaylight() first"
        );
        let mut tls = json!({});
        if let Some(name) = ca_secret {
            tls["caSecretRef"] = json!({"name": name});
        }
        if insecure_skip_verify {
            tls["insecureSkipVerify"] = json!(true);
        }
        self.0["spec"]["sdn"]["tls"] = tls;
        self
    }

    /// `spec.networks`: these prefixes, unnamed.
    pub fn networks(self, cidrs: &[&str]) -> Self {
        let networks: Vec<Value> = cidrs.iter().map(|c| json!({"cidr": c})).collect();
        self.spec("networks", Value::Array(networks))
    }

    /// `spec.l2Segments`: `(name, vni)` pairs.
    pub fn l2_segments(self, segments: &[(&str, u32)]) -> Self {
        let list: Vec<Value> = segments
            .iter()
            .map(|(n, v)| json!({"name": n, "vni": v}))
            .collect();
        self.spec("l2Segments", Value::Array(list))
    }

    /// `spec.vtep`.
    pub fn vtep(self, vtep: impl Display) -> Self {
        self.spec("vtep", json!(vtep.to_string()))
    }

    /// `spec.neutron` as written in a manifest (camelCase JSON).
    pub fn neutron(self, neutron: Value) -> Self {
        self.spec("neutron", neutron)
    }

    /// The manifest, for `kubectl apply`.
    pub fn yaml(&self) -> String {
        yaml_of::<InfraEndpoint>(&self.0)
    }

    /// The typed object, for `Api::create`.
    pub fn typed(&self) -> InfraEndpoint {
        typed(&self.0)
    }
}

/// A CellInterconnect `name` from endpoint `local` to endpoint `remote`, with test timers
/// (hold 9 s, keepalive 3 s).
pub fn interconnect(name: &str, local: &str, remote: &str) -> Interconnect {
    let mut object = object("CellInterconnect", name);
    object["spec"] = json!({
        "localEndpoint": {"name": local},
        "remoteEndpoint": {"name": remote},
        "bgp": {"holdTime": 9, "keepaliveInterval": 3},
    });
    Interconnect(object)
}

/// See [`interconnect`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Interconnect(Value);

impl Interconnect {
    /// The session's TCP MD5 password: key `key` of Secret `secret`.
    pub fn password(mut self, secret: &str, key: &str) -> Self {
        self.0["spec"]["bgp"]["passwordSecretRef"] = json!({"name": secret, "key": key});
        self
    }

    /// `spec.bgp.holdTime` and `keepaliveInterval` (seconds).
    pub fn timers(mut self, hold_time: u16, keepalive: u16) -> Self {
        self.0["spec"]["bgp"]["holdTime"] = json!(hold_time);
        self.0["spec"]["bgp"]["keepaliveInterval"] = json!(keepalive);
        self
    }

    /// `spec.adminState`: `Enabled` or `Disabled`.
    pub fn admin_state(mut self, state: &str) -> Self {
        self.0["spec"]["adminState"] = json!(state);
        self
    }

    /// `spec.bgp.gracefulRestart` with `enabled` and `restartTime` (seconds).
    pub fn graceful_restart(mut self, enabled: bool, restart_time: u16) -> Self {
        self.0["spec"]["bgp"]["gracefulRestart"] = json!({"enabled": enabled, "restartTime": restart_time});
        self
    }

    /// `spec.l2` as written in a manifest (camelCase JSON).
    pub fn l2(mut self, l2: Value) -> Self {
        self.0["spec"]["l2"] = l2;
        self
    }

    /// `spec.routes` as written in a manifest (camelCase JSON).
    pub fn routes(mut self, routes: Value) -> Self {
        self.0["spec"]["routes"] = routes;
        self
    }

    /// The manifest, for `kubectl apply`.
    pub fn yaml(&self) -> String {
        yaml_of::<CellInterconnect>(&self.0)
    }

    /// The typed object, for `Api::create`.
    pub fn typed(&self) -> CellInterconnect {
        typed(&self.0)
    }
}

/// A Secret `name` with `stringData` (the API server stores it base64 in `data`), labelled
/// `cellnet.io/credentials: "true"` as users must label the Secrets cellnet may use.
pub fn secret(name: &str, string_data: &[(&str, &str)]) -> String {
    let mut object = unlabelled_secret_json(name, string_data);
    object["metadata"]["labels"] = json!({"cellnet.io/credentials": "true"});
    serde_yaml::to_string(&object).expect("a JSON value is YAML")
}

/// A Secret as [`secret`] makes it but without the label: cellnet must not use it.
pub fn unlabelled_secret(name: &str, string_data: &[(&str, &str)]) -> String {
    serde_yaml::to_string(&unlabelled_secret_json(name, string_data)).expect("a JSON value is YAML")
}

fn unlabelled_secret_json(name: &str, string_data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = string_data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": data,
    })
}
