//! The Neutron client: Keystone v3 token (cached, renewed before expiry), then typed Neutron calls.
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tracing::debug;

use super::Sensitive;
use super::clouds::{Auth, Cloud, NameOrId, NameOrIdDomain};

/// A token is renewed when it has less than this left.
pub const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// What went wrong talking to Neutron or Keystone; no secret in any message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeutronError {
    /// Connection refused, timeout, 5xx from a proxy...: retry with backoff.
    #[error("{0}")]
    Unreachable(String),
    /// 401/403 from Keystone or Neutron.
    #[error("{0}")]
    Auth(String),
    /// Neutron refused the call (400, 409...); `message` is Neutron's own.
    #[error("Neutron answered {status} to {what}: {message}")]
    Api {
        status: u16,
        what: String,
        message: String,
    },
    /// An answer that could not be understood.
    #[error("{0}")]
    Protocol(String),
}

impl NeutronError {
    /// Condition reason.
    pub fn reason(&self) -> crate::api::Reason {
        use crate::api::Reason;
        match self {
            Self::Unreachable(_) => Reason::NeutronUnreachable,
            Self::Auth(_) => Reason::NeutronAuthFailed,
            Self::Api { .. } => Reason::NeutronRejected,
            Self::Protocol(_) => Reason::NeutronError,
        }
    }

    /// Whether retrying without a change can help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Auth(_) | Self::Protocol(_) => true,
            Self::Api { status, .. } => *status >= 500,
        }
    }
}

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

struct Token {
    value: Sensitive,
    expires_at: Timestamp,
    network_url: String,
}

/// Whether a token expiring at `expires_at` must be renewed at `now`.
pub fn needs_renewal(expires_at: Timestamp, now: Timestamp) -> bool {
    expires_at.as_second() - now.as_second() < RENEW_BEFORE.as_secs() as i64
}

/// One cloud's client. Cheap to share (`Arc`); holds the cached token.
pub struct NeutronClient {
    http: reqwest::Client,
    cloud: Cloud,
    token: Mutex<Option<Token>>,
}

/// The body as text, bounded by [`crate::body::MAX_BODY`].
async fn read_text(resp: reqwest::Response, what: &str, url: &str) -> Result<String, NeutronError> {
    match crate::body::read_limited(resp, crate::body::MAX_BODY).await {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(crate::body::BodyError::Transport(e)) => Err(transport(what, url, &e)),
        Err(crate::body::BodyError::TooLarge { limit }) => Err(NeutronError::Protocol(format!(
            "{what} at {url}: the answer is larger than {limit} bytes"
        ))),
    }
}

fn transport(what: &str, url: &str, e: &reqwest::Error) -> NeutronError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's own message names the URL only, never headers or bodies.
    NeutronError::Unreachable(format!("{what} at {url}: {kind}"))
}

/// Neutron's (`NeutronError.message`) or Keystone's (`error.message`) message from an error body.
fn error_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v.pointer("/NeutronError/message")
        .or_else(|| v.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(300).collect())
}

fn neutron_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/v2.0") {
        url.to_string()
    } else {
        format!("{url}/v2.0")
    }
}

fn keystone_tokens_url(auth_url: &str) -> String {
    let url = auth_url.trim_end_matches('/');
    if url.ends_with("/v3") {
        format!("{url}/auth/tokens")
    } else {
        format!("{url}/v3/auth/tokens")
    }
}

fn user_json(u: &NameOrId) -> Value {
    match u {
        NameOrId::Id(id) => json!({"id": id}),
        NameOrId::Name { name, domain } => json!({"name": name, "domain": domain_json(domain)}),
    }
}

fn domain_json(d: &NameOrIdDomain) -> Value {
    match d {
        NameOrIdDomain::Id(id) => json!({"id": id}),
        NameOrIdDomain::Name(n) => json!({"name": n}),
    }
}

impl NeutronClient {
    /// A client for `cloud`; every request is bounded by `timeout`.
    pub fn new(cloud: Cloud, timeout: Duration) -> Result<Self, NeutronError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| NeutronError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            cloud,
            token: Mutex::new(None),
        })
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// Forgets the cached token (after a 401 from Neutron).
    pub async fn invalidate_token(&self) {
        *self.token.lock().await = None;
    }

    /// Keystone: a new token and the Neutron URL from the catalog (or the override).
    async fn issue_token(&self, auth_url: &str, body: Value) -> Result<Token, NeutronError> {
        let url = keystone_tokens_url(auth_url);
        let resp = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| transport("Keystone", &url, &e))?;
        let status = resp.status();
        let subject = resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(Sensitive::new);
        let text = read_text(resp, "Keystone", &url).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(NeutronError::Auth(format!(
                "Keystone at {url} refused the credentials of cloud {:?} ({status}): {}",
                self.cloud.name,
                error_message(&text)
            )));
        }
        if status.is_server_error() {
            return Err(NeutronError::Unreachable(format!(
                "Keystone at {url} answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(NeutronError::Auth(format!(
                "Keystone at {url} answered {status}: {}",
                error_message(&text)
            )));
        }
        let value = subject.ok_or_else(|| {
            NeutronError::Protocol(format!("Keystone at {url} returned no X-Subject-Token"))
        })?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|_| NeutronError::Protocol(format!("Keystone at {url} returned no JSON token")))?;
        let expires_at: Timestamp = body
            .pointer("/token/expires_at")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| NeutronError::Protocol("Keystone token has no expires_at".into()))?;
        let network_url = match &self.cloud.endpoint_override {
            Some(u) => u.clone(),
            None => self.catalog_network_url(&body)?,
        };
        debug!(cloud = %self.cloud.name, expires_at = %expires_at, network = %network_url, "Keystone token issued");
        Ok(Token {
            value,
            expires_at,
            network_url,
        })
    }

    fn catalog_network_url(&self, body: &Value) -> Result<String, NeutronError> {
        let empty = vec![];
        let catalog = body
            .pointer("/token/catalog")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        catalog
            .iter()
            .filter(|s| s["type"] == "network")
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| {
                e["interface"] == self.cloud.interface.as_str()
                    && self
                        .cloud
                        .region
                        .as_ref()
                        .is_none_or(|r| e["region_id"] == r.as_str() || e["region"] == r.as_str())
            })
            .and_then(|e| e["url"].as_str().map(str::to_string))
            .ok_or_else(|| {
                NeutronError::Protocol(format!(
                    "Keystone's catalog has no {} network endpoint{}",
                    self.cloud.interface,
                    self.cloud
                        .region
                        .as_ref()
                        .map(|r| format!(" in region {r}"))
                        .unwrap_or_default()
                ))
            })
    }

    /// The Neutron base URL (`.../v2.0`) and the token to send, renewing it when needed.
    async fn session(&self) -> Result<(String, Option<Sensitive>), NeutronError> {
        let body = match &self.cloud.auth {
            Auth::None { endpoint } => return Ok((neutron_base(endpoint), None)),
            Auth::Password {
                user,
                password,
                project,
                ..
            } => {
                let mut b = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user_json(user)}}}});
                b["auth"]["identity"]["password"]["user"]["password"] = json!(password.expose());
                if let Some(p) = project {
                    b["auth"]["scope"] = json!({"project": user_json(p)});
                }
                b
            }
            Auth::ApplicationCredential {
                id,
                name,
                user,
                secret,
                ..
            } => {
                let mut cred = json!({"secret": secret.expose()});
                if let Some(id) = id {
                    cred["id"] = json!(id);
                } else {
                    cred["name"] = json!(name);
                    if let Some(u) = user {
                        cred["user"] = user_json(u);
                    }
                }
                json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": cred}}})
            }
        };
        let auth_url = match &self.cloud.auth {
            Auth::Password { auth_url, .. } | Auth::ApplicationCredential { auth_url, .. } => {
                auth_url.clone()
            }
            Auth::None { .. } => unreachable!("handled above"),
        };
        let mut cached = self.token.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|t| !needs_renewal(t.expires_at, Timestamp::now()));
        if !fresh {
            *cached = Some(self.issue_token(&auth_url, body).await?);
        }
        let t = cached.as_ref().expect("set above");
        Ok((neutron_base(&t.network_url), Some(t.value.clone())))
    }

    /// One Neutron call; `Ok(None)` for 404 and for empty bodies. A 401 renews the token once.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, NeutronError> {
        let mut renewed = false;
        loop {
            let (base, token) = self.session().await?;
            let url = format!("{base}{path}");
            let mut req = self.http.request(method.clone(), &url);
            if let Some(t) = &token {
                req = req.header("X-Auth-Token", t.expose());
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| transport("Neutron", &base, &e))?;
            let status = resp.status();
            let text = read_text(resp, "Neutron", &base).await?;
            let what = format!("{method} {path}");
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if status == StatusCode::UNAUTHORIZED && token.is_some() && !renewed {
                self.invalidate_token().await;
                renewed = true;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(NeutronError::Auth(format!(
                    "Neutron at {base} refused {what} ({status}): {}",
                    error_message(&text)
                )));
            }
            if status == StatusCode::BAD_GATEWAY
                || status == StatusCode::SERVICE_UNAVAILABLE
                || status == StatusCode::GATEWAY_TIMEOUT
            {
                return Err(NeutronError::Unreachable(format!(
                    "Neutron at {base} answered {status} to {what}"
                )));
            }
            if !status.is_success() {
                return Err(NeutronError::Api {
                    status: status.as_u16(),
                    what,
                    message: error_message(&text),
                });
            }
            if text.trim().is_empty() {
                return Ok(None);
            }
            let v: Value = serde_json::from_str(&text)
                .map_err(|_| NeutronError::Protocol(format!("Neutron at {base}: {what} returned no JSON")))?;
            return Ok((!v.is_null()).then_some(v));
        }
    }

    async fn get_one<T: DeserializeOwned>(&self, path: &str, key: &str) -> Result<Option<T>, NeutronError> {
        match self.call(Method::GET, path, None).await? {
            None => Ok(None),
            Some(v) => decode(&v[key], path).map(Some),
        }
    }

    async fn list<T: DeserializeOwned>(&self, path: &str, key: &str) -> Result<Vec<T>, NeutronError> {
        match self.call(Method::GET, path, None).await? {
            None => Ok(vec![]),
            Some(v) => decode(&v[key], path),
        }
    }

    async fn create<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        body: Value,
    ) -> Result<T, NeutronError> {
        let v = self
            .call(Method::POST, path, Some(json!({ key: body })))
            .await?
            .ok_or_else(|| NeutronError::Protocol(format!("POST {path} returned nothing")))?;
        decode(&v[key], path)
    }

    async fn update(&self, path: &str, key: &str, body: Value) -> Result<(), NeutronError> {
        self.call(Method::PUT, path, Some(json!({ key: body }))).await?;
        Ok(())
    }

    /// DELETE; 404 counts as done.
    pub async fn delete(&self, path: &str) -> Result<(), NeutronError> {
        self.call(Method::DELETE, path, None).await.map(|_| ())
    }

    // Networks.
    pub async fn network(&self, id: &str) -> Result<Option<Network>, NeutronError> {
        self.get_one(&format!("/networks/{}", enc(id)), "network").await
    }
    pub async fn networks_named(&self, name: &str) -> Result<Vec<Network>, NeutronError> {
        self.list(&format!("/networks?name={}", enc(name)), "networks")
            .await
    }
    pub async fn networks_tagged(&self, tag: &str) -> Result<Vec<Network>, NeutronError> {
        self.list(&format!("/networks?tags={}", enc(tag)), "networks")
            .await
    }
    pub async fn create_network(&self, body: Value) -> Result<Network, NeutronError> {
        self.create("/networks", "network", body).await
    }
    pub async fn update_network(&self, id: &str, body: Value) -> Result<(), NeutronError> {
        self.update(&format!("/networks/{}", enc(id)), "network", body)
            .await
    }
    /// Sets the tags of a network or subnet (`PUT /{collection}/{id}/tags`). Tags with `/` cannot
    /// go through the one-tag URL, so callers pass the whole set (theirs and everyone else's).
    pub async fn set_tags(&self, collection: &str, id: &str, tags: &[String]) -> Result<(), NeutronError> {
        let path = format!("/{collection}/{}/tags", enc(id));
        match self
            .call(Method::PUT, &path, Some(json!({ "tags": tags })))
            .await?
        {
            Some(_) => Ok(()),
            None => Err(NeutronError::Api {
                status: 404,
                what: format!("PUT {path}"),
                message: format!("{collection} {id} not found"),
            }),
        }
    }

    // Subnets.
    pub async fn subnet(&self, id: &str) -> Result<Option<Subnet>, NeutronError> {
        self.get_one(&format!("/subnets/{}", enc(id)), "subnet").await
    }
    pub async fn subnets_of(&self, network_id: &str) -> Result<Vec<Subnet>, NeutronError> {
        self.list(&format!("/subnets?network_id={}", enc(network_id)), "subnets")
            .await
    }
    pub async fn create_subnet(&self, body: Value) -> Result<Subnet, NeutronError> {
        self.create("/subnets", "subnet", body).await
    }
    pub async fn update_subnet(&self, id: &str, body: Value) -> Result<(), NeutronError> {
        self.update(&format!("/subnets/{}", enc(id)), "subnet", body)
            .await
    }

    // BGP speakers and peers (neutron-dynamic-routing).
    pub async fn bgp_speaker(&self, id: &str) -> Result<Option<BgpSpeaker>, NeutronError> {
        self.get_one(&format!("/bgp-speakers/{}", enc(id)), "bgp_speaker")
            .await
    }
    pub async fn bgp_speakers_named(&self, name: &str) -> Result<Vec<BgpSpeaker>, NeutronError> {
        let all: Vec<BgpSpeaker> = self.list("/bgp-speakers", "bgp_speakers").await?;
        Ok(all.into_iter().filter(|s| s.name == name).collect())
    }
    pub async fn create_bgp_speaker(&self, body: Value) -> Result<BgpSpeaker, NeutronError> {
        self.create("/bgp-speakers", "bgp_speaker", body).await
    }
    pub async fn update_bgp_speaker(&self, id: &str, body: Value) -> Result<(), NeutronError> {
        self.update(&format!("/bgp-speakers/{}", enc(id)), "bgp_speaker", body)
            .await
    }
    /// `PUT /bgp-speakers/{id}/{action}` with `{key: value}` (add/remove peer or gateway network).
    pub async fn speaker_action(
        &self,
        id: &str,
        action: &str,
        key: &str,
        value: &str,
    ) -> Result<(), NeutronError> {
        self.call(
            Method::PUT,
            &format!("/bgp-speakers/{}/{action}", enc(id)),
            Some(json!({ key: value })),
        )
        .await
        .map(|_| ())
    }
    pub async fn bgp_peer(&self, id: &str) -> Result<Option<BgpPeer>, NeutronError> {
        self.get_one(&format!("/bgp-peers/{}", enc(id)), "bgp_peer").await
    }
    pub async fn bgp_peers_named(&self, name: &str) -> Result<Vec<BgpPeer>, NeutronError> {
        let all: Vec<BgpPeer> = self.list("/bgp-peers", "bgp_peers").await?;
        Ok(all.into_iter().filter(|p| p.name == name).collect())
    }
    pub async fn create_bgp_peer(&self, body: Value) -> Result<BgpPeer, NeutronError> {
        self.create("/bgp-peers", "bgp_peer", body).await
    }
}

fn decode<T: DeserializeOwned>(v: &Value, path: &str) -> Result<T, NeutronError> {
    T::deserialize(v).map_err(|e| NeutronError::Protocol(format!("unexpected answer to {path}: {e}")))
}

/// Percent-encodes a path segment or query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_happens_before_expiry() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        assert!(!needs_renewal(
            Timestamp::from_second(1_000_000 + 3600).unwrap(),
            now
        ));
        assert!(needs_renewal(
            Timestamp::from_second(1_000_000 + 299).unwrap(),
            now
        ));
        assert!(needs_renewal(Timestamp::from_second(999_000).unwrap(), now));
    }

    #[test]
    fn urls_and_messages() {
        assert_eq!(neutron_base("http://n:9696/"), "http://n:9696/v2.0");
        assert_eq!(neutron_base("http://n:9696/v2.0"), "http://n:9696/v2.0");
        assert_eq!(
            keystone_tokens_url("http://k:5000/v3/"),
            "http://k:5000/v3/auth/tokens"
        );
        assert_eq!(
            keystone_tokens_url("http://k:5000"),
            "http://k:5000/v3/auth/tokens"
        );
        assert_eq!(
            error_message(r#"{"NeutronError": {"type": "X", "message": "in use", "detail": ""}}"#),
            "in use"
        );
        assert_eq!(
            error_message(r#"{"error": {"code": 401, "message": "nope"}}"#),
            "nope"
        );
        assert_eq!(enc("cellnet.io/cell=c1"), "cellnet.io%2Fcell%3Dc1");
    }
}
