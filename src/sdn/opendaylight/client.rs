//! The RESTCONF (RFC 8040) client: URLs, one pooled reqwest client, basic auth, TLS, timeouts.
//!
//! Only OpenDaylight's RFC 8040 northbound (`/rests/data/...`, media type
//! `application/yang-data+json`, RFC 8040 section 5.2) is spoken; the draft `/restconf` API is
//! not. URLs are the RFC 8040 forms of the paths in the BGP user guide (see [`Paths`]).
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::errors;
use super::model::app_rib::RouteFamily;
use crate::sdn::{Credentials, SdnError, SdnTarget};

/// RFC 8040 section 5.2: the media type of YANG data in JSON (RFC 7951).
pub const YANG_JSON: &str = "application/yang-data+json";

/// Percent-encodes a list key value for a RESTCONF data resource URI (RFC 8040 section 3.5.3:
/// reserved characters in key values, such as the `:` of an IPv6 address or `,` `/` `=`, are
/// percent-encoded).
pub fn encode_key(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The resource paths, below the RESTCONF root.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The RIB's id (the protocol's name).
    rib_id: String,
    /// `.../protocol=openconfig-policy-types:BGP,{rib-id}/bgp-openconfig-extensions:bgp`
    bgp: String,
    /// `/rests/data/bgp-rib:bgp-rib/rib={rib-id}`: the RIB's operational state.
    rib: String,
}

/// The `tables={afi},{safi}` step and the routes container of one unicast family, as the IP
/// unicast guide names them (bgp-user-guide-ip-unicast-family.rst, "Programming":
/// `tables=bgp-types:ipv4-address-family,bgp-types:unicast-subsequent-address-family/bgp-inet:ipv4-routes`),
/// key values percent-encoded as bgpcep's own tool does (tests/tools/fastbgp/bgp_app_peer.py).
fn table(family: RouteFamily) -> String {
    let (afi, routes) = match family {
        RouteFamily::V4 => ("bgp-types:ipv4-address-family", "bgp-inet:ipv4-routes"),
        RouteFamily::V6 => ("bgp-types:ipv6-address-family", "bgp-inet:ipv6-routes"),
    };
    format!(
        "tables={},{}/{routes}",
        encode_key(afi),
        encode_key("bgp-types:unicast-subsequent-address-family")
    )
}

impl Paths {
    /// Paths for one BGP instance: `rib_id` is the protocol `name` ("bgp-example" in the guide),
    /// `network_instance` the openconfig network instance ("global-bgp").
    pub fn new(rib_id: &str, network_instance: &str) -> Self {
        // bgp-user-guide-bgp-peering.rst, "BGP Peering", RFC 8040 URL of the neighbour list:
        // /rests/data/openconfig-network-instance:network-instances/network-instance=global-bgp/
        //   openconfig-network-instance:protocols/protocol=openconfig-policy-types:BGP,bgp-example/
        //   bgp-openconfig-extensions:bgp/neighbors
        Self {
            rib_id: rib_id.to_string(),
            bgp: format!(
                "/rests/data/openconfig-network-instance:network-instances/network-instance={}\
                 /openconfig-network-instance:protocols/protocol=openconfig-policy-types:BGP,{}\
                 /bgp-openconfig-extensions:bgp",
                encode_key(network_instance),
                encode_key(rib_id)
            ),
            rib: format!("/rests/data/bgp-rib:bgp-rib/rib={}", encode_key(rib_id)),
        }
    }

    /// The neighbour list (POST creates, GET lists).
    pub fn neighbors(&self) -> String {
        format!("{}/neighbors", self.bgp)
    }

    /// One neighbour (GET, PUT, DELETE).
    pub fn neighbor(&self, address: &str) -> String {
        format!("{}/neighbors/neighbor={}", self.bgp, encode_key(address))
    }

    /// The RPC that releases a neighbour's session (bgp-user-guide-route-refresh.rst, "Peer
    /// Session Release": `POST /restconf/operations/bgp-peer-rpc:reset-session`). The guide's
    /// "RFC8040 URL" line for it (`/rests/data/...?content=non-config`) is a data resource, which
    /// cannot be POSTed as an operation; RFC 8040 section 3.6 puts operations at
    /// `{+restconf}/operations/{module}:{rpc}`, which is what this is.
    pub fn reset_session(&self) -> &'static str {
        "/rests/operations/bgp-peer-rpc:reset-session"
    }

    /// The guide's input of [`Self::reset_session`]: the peer as an instance identifier into the
    /// RIB, keyed `bgp://{address}`.
    pub fn reset_session_input(&self, address: &str) -> serde_json::Value {
        let peer_ref = format!(
            "/rib:bgp-rib/rib:rib[rib:id=\"{}\"]/rib:peer[rib:peer-id=\"bgp://{address}\"]",
            self.rib_id
        );
        serde_json::json!({"bgp-peer-rpc:input": {"peer-ref": peer_ref}})
    }

    /// The instance's global configuration (bgp-user-guide-protocol-configuration.rst,
    /// "Protocol Configuration": `global/config` with `router-id` and `as`; the peering guide's
    /// "Route reflector configuration" addresses it as `.../bgp/global/config`).
    pub fn global_config(&self) -> String {
        format!("{}/global/config", self.bgp)
    }

    /// The per-family operational state of one neighbour, prefix counts included
    /// (bgp-user-guide-operational-state.rst, "BGP Neighbor Families Operational State"; each
    /// entry as in "BGP Neighbor Family Operational State").
    pub fn neighbor_families_state(&self, address: &str) -> String {
        format!("{}/afi-safis?content=nonconfig", self.neighbor(address))
    }

    /// One family's routes in the programmable RIB of application peer `peer` (POST creates a
    /// route, GET reads them). The guides print older URL forms
    /// (`bgp-rib:application-rib/10.25.1.9/tables=...` in bgp-user-guide-ip-unicast-family.rst,
    /// "Programming"; `.../tables/bgp-types:ipv4-address-family/...` in
    /// bgp-user-guide-bgp-application-peer.rst, "Programmable RIB"); this is their RFC 8040 form,
    /// the one bgpcep's test tools use (tests/variables/bgpfunctional/bgppolicies/app_peer_route/
    /// location.uri: `bgp-rib:application-rib=$IP/tables=bgp-types%3Aipv4-address-family,...`).
    pub fn app_routes(&self, peer: &str, family: RouteFamily) -> String {
        format!(
            "/rests/data/bgp-rib:application-rib={}/{}",
            encode_key(peer),
            table(family)
        )
    }

    /// One route of that RIB (PUT replaces, DELETE removes): list `ipv4-route` (`ipv6-route`)
    /// keyed `[route-key path-id]` (IP unicast guide, "IPv4 Unicast Route"), route-key being the
    /// prefix ("IPv4 Route Key must be equal to prefix"). bgp_app_peer.py deletes
    /// `.../bgp-inet:ipv4-routes/bgp-inet:ipv4-route=1.1.1.1%2F32,0` the same way.
    pub fn app_route(&self, peer: &str, prefix: &str, path_id: u32) -> String {
        let family = RouteFamily::of_prefix(prefix);
        let list = match family {
            RouteFamily::V4 => "bgp-inet:ipv4-route",
            RouteFamily::V6 => "bgp-inet:ipv6-route",
        };
        format!(
            "{}/{list}={},{path_id}",
            self.app_routes(peer, family),
            encode_key(prefix)
        )
    }

    /// One family of a neighbour's Adj-RIB-Out (`rib_table` `adj-rib-out`) or Effective-RIB-In
    /// (`effective-rib-in`), read with `content=nonconfig`. bgp-user-guide-bgp-application-peer.rst,
    /// "Programmable RIB" reads `.../rib=bgp-example/peer=bgp%3A%2F%2F10.25.1.9` (both tables)
    /// and `.../peer/bgp:%2F%2F192.0.2.1/adj-rib-out/tables/...` (older form); the peer key is
    /// `bgp://{address}`.
    pub fn peer_table(&self, address: &str, rib_table: &str, family: RouteFamily) -> String {
        format!(
            "{}/peer={}/{rib_table}/{}?content=nonconfig",
            self.rib,
            encode_key(&format!("bgp://{address}")),
            table(family)
        )
    }
}

/// A response with a success status: the status and the parsed body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

/// One RESTCONF server. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Restconf {
    http: reqwest::Client,
    /// The RESTCONF root without a trailing `/`, named in every error.
    endpoint: String,
    credentials: Option<Credentials>,
    timeout: Duration,
}

impl std::fmt::Debug for Restconf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restconf")
            .field("endpoint", &self.endpoint)
            .field("username", &self.credentials.as_ref().map(|c| &c.username))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Restconf {
    /// Builds the client (no I/O). `timeout` bounds every request, connect included.
    pub fn new(target: &SdnTarget, timeout: Duration) -> Result<Self, SdnError> {
        crate::tls::install_crypto_provider();
        let endpoint = target.url.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| SdnError::InvalidConfig(format!("spec.sdn.url {endpoint:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SdnError::InvalidConfig(format!(
                "spec.sdn.url {endpoint:?}: the RESTCONF root must be http or https"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // A redirect would carry the basic-auth credentials to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cellnet/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &target.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| SdnError::InvalidConfig(format!("CA bundle for {endpoint}: {e}")))?;
            if certs.is_empty() {
                return Err(SdnError::InvalidConfig(format!(
                    "CA bundle for {endpoint} holds no certificate"
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        if target.insecure_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| SdnError::InvalidConfig(format!("HTTP client for {endpoint}: {e}")))?;
        Ok(Self {
            http,
            endpoint,
            credentials: target.credentials.clone(),
            timeout,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request. `Ok(None)` for 404 when `missing_ok` (RFC 8040 section 7: a missing
    /// resource is `404` / `data-missing`); every other non-2xx status is an error.
    pub async fn send(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        missing_ok: bool,
    ) -> Result<Option<Reply>, SdnError> {
        let url = format!("{}{}", self.endpoint, path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(reqwest::header::ACCEPT, YANG_JSON);
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(c.password.expose()));
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, YANG_JSON)
                .body(serde_json::to_vec(body).expect("json"));
        }
        let (status, bytes) = match request.send().await {
            Ok(response) => {
                let status = response.status();
                match crate::body::read_limited(response, crate::body::MAX_BODY).await {
                    Ok(bytes) => (status, bytes),
                    Err(crate::body::BodyError::Transport(e)) => {
                        return Err(self.transport(operation, &method, path, &e));
                    }
                    Err(crate::body::BodyError::TooLarge { limit }) => {
                        return Err(SdnError::Rejected {
                            endpoint: self.endpoint.to_string(),
                            operation,
                            message: format!("{method} {path}: the answer is larger than {limit} bytes"),
                        });
                    }
                }
            }
            Err(e) => return Err(self.transport(operation, &method, path, &e)),
        };
        tracing::debug!(endpoint = %self.endpoint, operation, %method, path, status = status.as_u16(), "RESTCONF call");
        if status == StatusCode::NOT_FOUND && missing_ok {
            return Ok(None);
        }
        if !status.is_success() {
            let err = errors::from_status(&self.endpoint, operation, status, &bytes);
            tracing::debug!(endpoint = %self.endpoint, operation, error = %err, "RESTCONF call failed");
            return Err(err);
        }
        Ok(Some(Reply {
            status,
            body: parse(&bytes).map_err(|message| SdnError::Rejected {
                endpoint: self.endpoint.clone(),
                operation,
                message,
            })?,
        }))
    }

    fn transport(
        &self,
        operation: &'static str,
        method: &Method,
        path: &str,
        e: &reqwest::Error,
    ) -> SdnError {
        // A refused certificate is no connection problem: say what TLS refused (SdnTlsFailed).
        let err = SdnError::tls_failure(&self.endpoint, e)
            .unwrap_or_else(|| errors::from_transport(&self.endpoint, self.timeout, e));
        tracing::debug!(endpoint = %self.endpoint, operation, %method, path, error = %err, "RESTCONF call failed");
        err
    }
}

/// The answer as JSON, refused before parsing when it holds more values than cellnet ever needs
/// (the parsed tree would take many times the body's size).
fn parse(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    crate::body::check_json_values(bytes, crate::body::MAX_JSON_VALUES)?;
    serde_json::from_slice(bytes).map_err(|e| format!("the response is not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8040_paths() {
        let p = Paths::new("bgp-example", "global-bgp");
        assert_eq!(
            p.neighbors(),
            "/rests/data/openconfig-network-instance:network-instances/network-instance=global-bgp\
             /openconfig-network-instance:protocols/protocol=openconfig-policy-types:BGP,bgp-example\
             /bgp-openconfig-extensions:bgp/neighbors"
        );
        assert!(p.neighbor("192.0.2.1").ends_with("/neighbors/neighbor=192.0.2.1"));
        assert!(p.neighbor("2001:db8::1").ends_with("/neighbor=2001%3Adb8%3A%3A1"));
        assert!(
            p.global_config()
                .ends_with("/bgp-openconfig-extensions:bgp/global/config")
        );
        assert!(p.neighbor_families_state("192.0.2.1").ends_with(
            "/bgp-openconfig-extensions:bgp/neighbors/neighbor=192.0.2.1/afi-safis?content=nonconfig"
        ));
    }

    #[test]
    fn rfc8040_paths_of_the_application_rib_and_the_peers() {
        let p = Paths::new("bgp-example", "global-bgp");
        // Exactly bgpcep's tests/variables/bgpfunctional/bgppolicies/app_peer_route/location.uri
        // with $IP = 10.25.1.9.
        assert_eq!(
            p.app_routes("10.25.1.9", RouteFamily::V4),
            "/rests/data/bgp-rib:application-rib=10.25.1.9/tables=bgp-types%3Aipv4-address-family,\
             bgp-types%3Aunicast-subsequent-address-family/bgp-inet:ipv4-routes"
        );
        assert!(
            p.app_route("10.25.1.9", "10.0.0.11/32", 7)
                .ends_with("/bgp-inet:ipv4-routes/bgp-inet:ipv4-route=10.0.0.11%2F32,7")
        );
        assert!(
            p.app_route("10.25.1.9", "2001:db8:30::/64", 7)
                .contains("tables=bgp-types%3Aipv6-address-family,")
        );
        assert!(
            p.app_route("10.25.1.9", "2001:db8:30::/64", 7)
                .ends_with("/bgp-inet:ipv6-route=2001%3Adb8%3A30%3A%3A%2F64,7")
        );
        assert_eq!(
            p.peer_table("192.0.2.1", "adj-rib-out", RouteFamily::V4),
            "/rests/data/bgp-rib:bgp-rib/rib=bgp-example/peer=bgp%3A%2F%2F192.0.2.1/adj-rib-out\
             /tables=bgp-types%3Aipv4-address-family,bgp-types%3Aunicast-subsequent-address-family\
             /bgp-inet:ipv4-routes?content=nonconfig"
        );
    }
}
