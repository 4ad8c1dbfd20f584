//! One Neutron call over HTTP, and how an answer becomes a value or a [`NeutronError`].
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{NeutronClient, NeutronError};
use crate::neutron::Sensitive;

/// The body as text, bounded by [`crate::body::MAX_BODY`]; a large one holds the turn of large
/// bodies until the text is dropped, so parse it before.
pub(super) async fn read_text(
    resp: reqwest::Response,
    what: &str,
    url: &str,
) -> Result<crate::body::Text, NeutronError> {
    match crate::body::read_limited(resp, crate::body::MAX_BODY).await {
        Ok(body) => Ok(body.into_text()),
        Err(crate::body::BodyError::Transport(e)) => Err(transport(what, url, &e)),
        Err(crate::body::BodyError::TooLarge { limit }) => Err(NeutronError::Protocol(format!(
            "{what} at {url}: the answer is larger than {limit} bytes"
        ))),
    }
}

pub(super) fn transport(what: &str, url: &str, e: &reqwest::Error) -> NeutronError {
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

/// Neutron's (`NeutronError.message`) or Keystone's (`error.message`) message from an error body,
/// else the body: a sanitised excerpt of at most [`crate::body::MAX_EXCERPT`] characters either
/// way, since it goes into status and the server is whatever the clouds.yaml names.
pub(super) fn error_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = v
        .pointer("/NeutronError/message")
        .or_else(|| v.pointer("/error/message"))
        .and_then(Value::as_str)
        .unwrap_or(body);
    crate::body::excerpt(message, crate::body::MAX_EXCERPT)
}

pub(super) fn neutron_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/v2.0") {
        url.to_string()
    } else {
        format!("{url}/v2.0")
    }
}

/// Neutron's answer `text` with `status` to `what` (`GET /networks/...`) as a value: `Ok(None)`
/// for 404, for an empty body and for JSON `null`. A 401 here is final (the caller renews the
/// token once before).
pub(super) fn answer(
    status: StatusCode,
    text: &str,
    base: &str,
    what: String,
) -> Result<Option<Value>, NeutronError> {
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(NeutronError::Auth(format!(
            "Neutron at {base} refused {what} ({status}): {}",
            error_message(text)
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
            message: error_message(text),
        });
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    crate::body::check_json_values(text.as_bytes(), crate::body::MAX_JSON_VALUES)
        .map_err(|why| NeutronError::Protocol(format!("Neutron at {base}: {what}: {why}")))?;
    let v: Value = serde_json::from_str(text)
        .map_err(|_| NeutronError::Protocol(format!("Neutron at {base}: {what} returned no JSON")))?;
    Ok((!v.is_null()).then_some(v))
}

pub(super) fn decode<T: DeserializeOwned>(v: &Value, path: &str) -> Result<T, NeutronError> {
    T::deserialize(v).map_err(|e| NeutronError::Protocol(format!("unexpected answer to {path}: {e}")))
}

/// Percent-encodes a path segment or query value.
pub(super) fn enc(s: &str) -> String {
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

impl NeutronClient {
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
            let (status, text) = self
                .send(&method, &base, path, token.as_ref(), body.as_ref())
                .await?;
            if status == StatusCode::UNAUTHORIZED && token.is_some() && !renewed {
                self.invalidate_token().await;
                renewed = true;
                continue;
            }
            return answer(status, &text, &base, format!("{method} {path}"));
        }
    }

    /// Sends one request to `{base}{path}`; the status and the (bounded) body.
    async fn send(
        &self,
        method: &Method,
        base: &str,
        path: &str,
        token: Option<&Sensitive>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, crate::body::Text), NeutronError> {
        let url = format!("{base}{path}");
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t.expose());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| transport("Neutron", base, &e))?;
        let status = resp.status();
        let text = read_text(resp, "Neutron", base).await?;
        Ok((status, text))
    }

    pub(super) async fn get_one<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Option<T>, NeutronError> {
        match self.call(Method::GET, path, None).await? {
            None => Ok(None),
            Some(v) => decode(&v[key], path).map(Some),
        }
    }

    pub(super) async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>, NeutronError> {
        match self.call(Method::GET, path, None).await? {
            None => Ok(vec![]),
            Some(v) => decode(&v[key], path),
        }
    }

    pub(super) async fn create<T: DeserializeOwned>(
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

    pub(super) async fn update(&self, path: &str, key: &str, body: Value) -> Result<(), NeutronError> {
        self.call(Method::PUT, path, Some(json!({ key: body }))).await?;
        Ok(())
    }

    /// DELETE; 404 counts as done.
    pub async fn delete(&self, path: &str) -> Result<(), NeutronError> {
        self.call(Method::DELETE, path, None).await.map(|_| ())
    }
}
