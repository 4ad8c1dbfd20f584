//! Keystone v3: the token request for each kind of credential, the cached token (renewed before
//! it expires) and the Neutron URL from the catalog.
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tracing::debug;

use super::http::{error_message, neutron_base, read_text, transport};
use super::{NeutronClient, NeutronError};
use crate::neutron::Sensitive;
use crate::neutron::clouds::{Auth, NameOrId, NameOrIdDomain};

/// A token is renewed when it has less than this left, or less than half its lifetime.
pub const RENEW_BEFORE: Duration = Duration::from_secs(300);

pub(super) struct Token {
    value: Sensitive,
    issued_at: Timestamp,
    expires_at: Timestamp,
    network_url: String,
}

/// Whether a token issued at `issued_at` and expiring at `expires_at` must be renewed at `now`:
/// when less than min(300 s, half its lifetime) is left. A fixed 300 s made a Keystone that
/// issues tokens for 5 minutes or less answer a token request before every Neutron call.
pub fn needs_renewal(issued_at: Timestamp, expires_at: Timestamp, now: Timestamp) -> bool {
    let lifetime = (expires_at.as_second() - issued_at.as_second()).max(0);
    let margin = (RENEW_BEFORE.as_secs() as i64).min(lifetime / 2);
    expires_at.as_second() - now.as_second() < margin.max(1)
}

pub(super) fn keystone_tokens_url(auth_url: &str) -> String {
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

/// The body of a password token request, scoped to `project` when one is given.
fn password_auth(user: &NameOrId, password: &Sensitive, project: Option<&NameOrId>) -> Value {
    let mut b =
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user_json(user)}}}});
    b["auth"]["identity"]["password"]["user"]["password"] = json!(password.expose());
    if let Some(p) = project {
        b["auth"]["scope"] = json!({"project": user_json(p)});
    }
    b
}

/// The body of an application-credential token request: by id, or by name with its user.
fn application_credential_auth(
    id: Option<&String>,
    name: Option<&String>,
    user: Option<&NameOrId>,
    secret: &Sensitive,
) -> Value {
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

/// Keystone's status as an error (`Ok` for a success); `text` is the body.
fn check_keystone_status(status: StatusCode, text: &str, url: &str, cloud: &str) -> Result<(), NeutronError> {
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(NeutronError::Auth(format!(
            "Keystone at {url} refused the credentials of cloud {cloud:?} ({status}): {}",
            error_message(text)
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
            error_message(text)
        )));
    }
    Ok(())
}

impl NeutronClient {
    /// The Neutron base URL (`.../v2.0`) and the token to send, renewing it when needed.
    pub(super) async fn session(&self) -> Result<(String, Option<Sensitive>), NeutronError> {
        let (auth_url, body) = match &self.cloud.auth {
            Auth::None { endpoint } => return Ok((neutron_base(endpoint), None)),
            Auth::Password {
                auth_url,
                user,
                password,
                project,
            } => (auth_url, password_auth(user, password, project.as_ref())),
            Auth::ApplicationCredential {
                auth_url,
                id,
                name,
                user,
                secret,
            } => (
                auth_url,
                application_credential_auth(id.as_ref(), name.as_ref(), user.as_ref(), secret),
            ),
        };
        let mut cached = self.token.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|t| !needs_renewal(t.issued_at, t.expires_at, Timestamp::now()));
        if !fresh {
            *cached = Some(self.issue_token(auth_url, body).await?);
        }
        let t = cached.as_ref().expect("set above");
        Ok((neutron_base(&t.network_url), Some(t.value.clone())))
    }

    /// Keystone: a new token and the Neutron URL from the catalog (or the override).
    async fn issue_token(&self, auth_url: &str, body: Value) -> Result<Token, NeutronError> {
        let url = keystone_tokens_url(auth_url);
        let issued_at = Timestamp::now();
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
        check_keystone_status(status, &text, &url, &self.cloud.name)?;
        let value = subject.ok_or_else(|| {
            NeutronError::Protocol(format!("Keystone at {url} returned no X-Subject-Token"))
        })?;
        crate::body::check_json_values(text.as_bytes(), crate::body::MAX_JSON_VALUES)
            .map_err(|why| NeutronError::Protocol(format!("Keystone at {url}: {why}")))?;
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
            issued_at,
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
}
